//! One tenant's job: a thread that owns the tenant's publisher (its journal, its edges) and takes
//! the writes of every request in turn, so that writers are serialized per tenant and no epoch is
//! issued twice. Between writes it does the publisher's duties (retries, heartbeats).
//!
//! Reads that the journal answers alone (the model, the status) do not queue behind writes: they
//! open the journal for reading in the request's thread.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use edge_authz::Model;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use super::http::Reply;
use super::scim::{self, DirChange, Directory, GroupIdFrom, Outcome};
use super::ServeArgs;
use crate::publish::changes::{self, Change};
use crate::publish::store::Store;
use crate::publish::{Ended, Extra, Next, PublishArgs, Published, Publisher};
use crate::Fail;

pub enum Job {
    /// Operations (`POST .../changes`), or a whole model (`whole`: `PUT .../model`).
    Changes {
        whole: bool,
        body: Vec<u8>,
        key: Option<String>,
        hash: String,
        at: u64,
        reply: mpsc::Sender<Reply>,
    },
    Scim {
        call: ScimCall,
        at: u64,
        reply: mpsc::Sender<Reply>,
    },
}

/// A SCIM request, owned, for the tenant's thread.
pub struct ScimCall {
    pub method: String,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub if_match: Option<String>,
    pub base: String,
    pub group_id: GroupIdFrom,
}

struct Tenant {
    p: Publisher,
    dir: Directory,
    name: String,
}

/// Opens the tenant's journal (taking its lock) and starts its thread.
pub fn start(tenant: &str, args: &ServeArgs) -> Result<mpsc::Sender<Job>, Fail> {
    let pargs = PublishArgs {
        model: None,
        edges: args.edges.clone(),
        secret_key: Some(args.secret_key.clone()),
        state: args.state.clone(),
        watch: false,
        // The publisher's long-running mode: heartbeats while it waits on an edge.
        stdin: true,
        status: false,
        tenant: Some(tenant.to_string()),
        json: args.json,
        poll: 200,
        recover_watermark: false,
        push: args.push.clone(),
    };
    let p = Publisher::new(pargs, tenant, "serve")?;
    let dir = load_directory(&p.store)?;
    let (tx, rx) = mpsc::channel();
    let mut t = Tenant {
        p,
        dir,
        name: tenant.to_string(),
    };
    std::thread::Builder::new()
        .name(format!("tenant {tenant}"))
        .spawn(move || t.run(&rx))
        .map_err(|e| Fail(format!("cannot start the job of tenant `{tenant}`: {e}")))?;
    Ok(tx)
}

fn db_err(e: rusqlite::Error) -> Fail {
    Fail(format!("publisher journal: {e}"))
}

fn load_directory(store: &Store) -> Result<Directory, Fail> {
    let mut dir = Directory::default();
    let mut stmt = store
        .conn()
        .prepare("SELECT kind, id, body, version FROM scim")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(db_err)?;
    for row in rows {
        let (kind, id, body, version) = row.map_err(db_err)?;
        let (Some(kind), Ok(json)) = (scim::Kind::parse(&kind), serde_json::from_str(&body)) else {
            return Err(Fail(format!(
                "the SCIM resource {kind}/{id} in the journal is unreadable"
            )));
        };
        let version = u64::try_from(version).unwrap_or(0);
        dir.map_mut(kind)
            .insert(id, scim::Resource { json, version });
    }
    Ok(dir)
}

/// The SQL that stores SCIM rows.
fn store_rows(tx: &rusqlite::Transaction<'_>, rows: &[DirChange]) -> rusqlite::Result<()> {
    for c in rows {
        match c {
            DirChange::Put { kind, id, resource } => {
                tx.execute(
                    "INSERT INTO scim (kind, id, body, version) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (kind, id) DO UPDATE SET body = ?3, version = ?4",
                    params![
                        kind.as_str(),
                        id,
                        resource.json.to_string(),
                        i64::try_from(resource.version).unwrap_or(i64::MAX)
                    ],
                )?;
            }
            DirChange::Delete { kind, id } => {
                tx.execute(
                    "DELETE FROM scim WHERE kind = ?1 AND id = ?2",
                    params![kind.as_str(), id],
                )?;
            }
        }
    }
    Ok(())
}

/// The SQL that records an `Idempotency-Key`'s answer.
fn store_key(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    hash: &str,
    issued: Option<(u64, bool)>,
) -> rusqlite::Result<()> {
    // A change that issues no epoch is answered with the latest one.
    let (epoch, revokes, unchanged): (i64, bool, bool) = match issued {
        Some((e, r)) => (i64::try_from(e).unwrap_or(i64::MAX), r, false),
        None => (
            tx.query_row("SELECT COALESCE(MAX(epoch), 0) FROM epochs", [], |r| {
                r.get(0)
            })?,
            false,
            true,
        ),
    };
    tx.execute(
        "INSERT INTO idempotency (key, request, epoch, revokes, unchanged, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![key, hash, epoch, revokes, unchanged, crate::now_ms() as i64],
    )?;
    Ok(())
}

/// The reply to a change: 200 `{epoch, revokes, enforced}`, or 202 for a revocation that some
/// edge did not acknowledge within the ack timeout.
fn change_reply(epoch: u64, revokes: bool, unchanged: bool, enforced: bool) -> Reply {
    let status = if revokes && !enforced { 202 } else { 200 };
    let mut v = json!({"epoch": epoch, "revokes": revokes, "enforced": enforced});
    if unchanged {
        if let Some(o) = v.as_object_mut() {
            o.insert("unchanged".into(), json!(true));
        }
    }
    Reply::json(status, &v)
}

fn fail_reply(e: &Fail) -> Reply {
    let (code, detail) = e.code();
    let mut v = json!({"code": code, "message": e.message()});
    if let (Some(d), Some(o)) = (detail, v.as_object_mut()) {
        o.insert("detail".into(), json!(d));
    }
    Reply {
        code: Some(code.to_string()),
        ..Reply::json(500, &json!({ "error": v }))
    }
}

/// A model that does not compile: 422 with the model's error.
fn model_error(e: edge_authz::ModelError) -> Reply {
    let mut r = fail_reply(&Fail::from(e));
    r.status = 422;
    r
}

impl Tenant {
    fn run(&mut self, rx: &mpsc::Receiver<Job>) {
        loop {
            let next = match self.p.duties() {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("error: tenant `{}`: {}", self.name, e.0);
                    Instant::now() + Duration::from_secs(1)
                }
            };
            match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Ok(job) => self.take(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn take(&mut self, job: Job) {
        let (reply, to) = match job {
            Job::Changes {
                whole,
                body,
                key,
                hash,
                at,
                reply,
            } => (self.changes(&body, key.as_deref(), &hash, at, whole), reply),
            Job::Scim { call, at, reply } => (self.scim(call, at), reply),
        };
        // The crash tests' last step (EDGE_AUTHZ_PUBLISH_PAUSE, as the publisher's
        // `before_journal`, `after_journal`, `mid_push` and `before_ack`).
        self.p.pause_at_any("before_answer");
        let _ = to.send(reply);
    }

    /// The answer an `Idempotency-Key` was given, if it was: the same epoch, and for a
    /// revocation the edges' acknowledgement awaited again.
    fn replay(&mut self, key: &str, hash: &str, at: u64) -> Option<Reply> {
        let row: Option<(String, i64, bool, bool)> = self
            .p
            .store
            .conn()
            .query_row(
                "SELECT request, epoch, revokes, unchanged FROM idempotency WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .unwrap_or(None);
        let (request, epoch, revokes, unchanged) = row?;
        if request != hash {
            return Some(Reply::error(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for another request",
            ));
        }
        let epoch = u64::try_from(epoch).unwrap_or(0);
        let enforced = self.enforced(epoch, revokes, at);
        Some(
            change_reply(epoch, revokes, unchanged, enforced)
                .with("idempotent-replayed", "true".into()),
        )
    }

    /// Whether `epoch` is enforced everywhere: for a revocation, waited for (within the ack
    /// timeout); for a grant, whether every edge already applied it.
    fn enforced(&mut self, epoch: u64, revokes: bool, at: u64) -> bool {
        if !revokes {
            return self.p.every_edge(epoch, true);
        }
        if self.p.every_edge(epoch, false) {
            return true;
        }
        matches!(self.p.await_enforced(epoch, at), Ok(Ended::Done))
    }

    /// `POST .../changes` (operations) or `PUT .../model` (a whole model).
    fn changes(
        &mut self,
        body: &[u8],
        key: Option<&str>,
        hash: &str,
        at: u64,
        whole: bool,
    ) -> Reply {
        if let Some(r) = key.and_then(|k| self.replay(k, hash, at)) {
            return r;
        }
        let model = match self.parse(body, whole) {
            Ok(m) => m,
            Err(r) => return r,
        };
        let extra = |tx: &rusqlite::Transaction<'_>, issued: Option<(u64, bool)>| match key {
            Some(k) => store_key(tx, k, hash, issued),
            None => Ok(()),
        };
        self.publish(model, at, &extra)
    }

    /// Publishes `model` with `extra` in its transaction, and answers as a change does.
    fn publish(&mut self, model: (Model, Next), at: u64, extra: Extra<'_>) -> Reply {
        let (model, state) = model;
        match self.p.publish_with(model, Some(state), at, Some(extra)) {
            Ok(Published {
                epoch,
                revokes,
                unchanged,
                ended,
            }) => {
                let enforced = if revokes {
                    ended == Ended::Done
                } else {
                    self.p.every_edge(epoch, true)
                };
                change_reply(epoch, revokes, unchanged, enforced)
            }
            Err(e) => fail_reply(&e),
        }
    }

    /// The model a change makes: 400 for a body that is not one, 422 for one that does not
    /// apply or does not compile.
    fn parse(&self, body: &[u8], whole: bool) -> Result<(Model, Next), Reply> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Reply::error(400, "malformed_json", "the body is not UTF-8"))?;
        if let Err(e) = serde_json::from_str::<Value>(text) {
            return Err(Reply::error(
                400,
                "malformed_json",
                &format!("the body is not JSON: {e}"),
            ));
        }
        let model = if whole {
            let m = Model::from_json(text).map_err(model_error)?;
            if m.tenant != self.name {
                return Err(Reply::error(
                    422,
                    "tenant_mismatch",
                    &format!(
                        "the model is for tenant `{}`, not `{}`",
                        m.tenant, self.name
                    ),
                ));
            }
            m
        } else {
            let ops = match changes::parse(text) {
                Ok(Change::Ops(ops)) => ops,
                Ok(Change::Model(_)) => {
                    return Err(Reply::error(
                        400,
                        "invalid_operation",
                        &format!("a whole model goes to PUT /v1/{}/model", self.name),
                    ))
                }
                Err(e) => return Err(Reply::error(400, "invalid_operation", &e)),
            };
            let Some(cur) = &self.p.current else {
                return Err(Reply::error(
                    422,
                    "no_model",
                    &format!(
                        "tenant `{}` has no model yet: PUT /v1/{}/model first",
                        self.name, self.name
                    ),
                ));
            };
            let model = changes::apply(&cur.model, &ops)
                .map_err(|e| Reply::error(422, "change_not_applicable", &e))?;
            if let Some(next) = cur.patch(&model, &ops) {
                return Ok((model, next));
            }
            model
        };
        let (prepared, warnings) = model.prepare().map_err(model_error)?;
        for w in &warnings {
            eprintln!("warning: tenant `{}`: {w}", self.name);
        }
        Ok((model, Next::Whole(prepared)))
    }

    fn scim(&mut self, call: ScimCall, at: u64) -> Reply {
        let mut next_id = || new_id();
        let req = scim::Request {
            method: &call.method,
            segments: call.segments.iter().map(String::as_str).collect(),
            query: call.query.clone(),
            body: &call.body,
            if_match: call.if_match.as_deref(),
        };
        let mut ctx = scim::Ctx {
            model: self.p.current.as_ref().map(|c| &c.model),
            directory: &self.dir,
            now_ms: at,
            base: &call.base,
            group_id: call.group_id,
            new_id: &mut next_id,
        };
        let outcome = scim::handle(&req, &mut ctx);
        let (model, rows, reply) = match outcome {
            // A write that changes nothing (an identity provider's retry, say) still answers
            // only once every edge enforces the latest revocation: a retried deprovisioning
            // that was answered 503 waits for the edges again.
            Outcome::Reply(r) if is_write(&call.method) && (200..300).contains(&r.status) => {
                return self.after_enforced(scim_reply(r), at)
            }
            Outcome::Reply(r) => return scim_reply(r),
            Outcome::Write {
                model,
                ops,
                changes,
                reply,
            } => (model.map(|m| (m, ops)), changes, reply),
        };
        let extra = |tx: &rusqlite::Transaction<'_>, _: Option<(u64, bool)>| store_rows(tx, &rows);
        let result = match model {
            Some((m, ops)) => {
                let current = self.p.current.as_ref();
                let next = ops.and_then(|ops| current.and_then(|c| c.patch(&m, &ops)));
                self.p.publish_with(m, next, at, Some(&extra)).map(Some)
            }
            None => self.p.store.commit(&extra).map(|()| None),
        };
        match result {
            Err(e) => {
                // A model the write would leave uncompilable is the request's fault.
                let status = if e.code().0 == "invalid_model" {
                    400
                } else {
                    500
                };
                let kind = (status == 400).then_some("invalidValue");
                super::scim_error(status, kind, e.message())
            }
            Ok(published) => {
                self.dir.apply(&rows);
                match published {
                    Some(Published {
                        ended: Ended::Unacknowledged,
                        ..
                    }) => not_enforced(),
                    // A grant (answered after its one round of pushes), a revocation every
                    // edge enforces, or a write the model does not see (a name, an email).
                    _ => scim_reply(reply),
                }
            }
        }
    }

    /// `reply`, once every edge enforces the latest revocation (at once when they do); a 503
    /// past the ack timeout.
    fn after_enforced(&mut self, reply: Reply, at: u64) -> Reply {
        let watermark = self.p.current.as_ref().map_or(0, |c| c.watermark);
        if watermark == 0 || self.enforced(watermark, true, at) {
            reply
        } else {
            not_enforced()
        }
    }
}

fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

/// A SCIM write committed but not acknowledged by every edge within the ack timeout: the
/// identity provider is told to retry (and its retry waits for the edges again).
fn not_enforced() -> Reply {
    super::scim_error(
        503,
        None,
        "the change is committed but not yet enforced at every edge; retry",
    )
    .with("retry-after", "1".into())
}

fn scim_reply(r: scim::Reply) -> Reply {
    let mut out = match &r.body {
        Some(b) => Reply::scim(r.status, b),
        None => Reply {
            body: Vec::new(),
            ..Reply::scim(r.status, &Value::Null)
        },
    };
    if let Some(e) = r.etag {
        out = out.with("etag", e);
    }
    if let Some(l) = r.location {
        out = out.with("location", l);
    }
    if let Some(a) = r.allow {
        out = out.with("allow", a);
    }
    out
}

/// A new SCIM id: 128 random bits, hex.
fn new_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // No randomness: the time and a counter still make it unique in this process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let t = crate::now_ms();
        b[..8].copy_from_slice(&t.to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `GET /v1/{tenant}/status`: the report of `publish --status --json`.
pub fn status(dir: &std::path::Path, tenant: &str) -> Reply {
    if !crate::publish::store::paths(dir, tenant).0.exists() {
        return Reply::error(
            404,
            "unknown_tenant",
            &format!("tenant `{tenant}` has no journal here"),
        );
    }
    match Store::read_only(dir, tenant).and_then(|s| crate::publish::status::report(&s)) {
        Ok(v) => Reply::json(200, &v),
        Err(e) => fail_reply(&e),
    }
}

/// `GET /v1/{tenant}/model`: `{epoch, model}` as the journal holds them.
pub fn model(dir: &std::path::Path, tenant: &str) -> Reply {
    if !crate::publish::store::paths(dir, tenant).0.exists() {
        return Reply::error(
            404,
            "unknown_tenant",
            &format!("tenant `{tenant}` has no journal here"),
        );
    }
    let latest = Store::read_only(dir, tenant).and_then(|s| s.latest());
    match latest {
        Ok(Some(l)) => match serde_json::from_str::<Value>(&l.model) {
            Ok(m) => Reply::json(
                200,
                &json!({"epoch": l.epoch, "digest": l.digest, "model": m}),
            ),
            Err(e) => Reply::error(
                500,
                "journal_error",
                &format!("the journal's model is unreadable: {e}"),
            ),
        },
        Ok(None) => Reply::error(
            404,
            "no_model",
            &format!("tenant `{tenant}` has no model yet"),
        ),
        Err(e) => fail_reply(&e),
    }
}
