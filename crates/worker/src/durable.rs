//! The Durable Object `TenantAuthority`, one per tenant: the authority for the tenant's epoch,
//! watermark and `confirmed_at`, and the store of the signed messages that rebuild that state.
//!
//! Storage: the object's own SQLite database. Every accepted message is written in the same
//! synchronous step that accepts it (no `await` between the in-memory change and the writes, so
//! the runtime commits them as one transaction, and its output gate holds the answer until they
//! are durable). A message is split into 1 MiB parts (a row holds at most 2 MB). A new snapshot
//! replaces the log.
//!
//! Internal protocol (the Worker is its only client, through the namespace binding):
//! - `POST /push?tenant=T`, body a signed message of any kind: its push answer (docs/http.md,
//!   "Push answers"; the protocol crate's `PushAnswer`);
//! - `GET /sync?tenant=T&after=E&watermark=W&confirmed=C` (the protocol crate's `feed`): a feed
//!   answer (`FeedAnswer`, MessagePack) with the authority's head and the messages that bring a
//!   holder of (E, W, C) to it, for the Worker's isolates;
//! - `GET /feed?tenant=T&after=E&watermark=W&confirmed=C&wait=MS`: the same for the Worker's
//!   public feed, at most 8 MiB, held up to `wait` ms until the head moves past the holder.

use std::cell::RefCell;

use futures_channel::oneshot;
use worker::{
    durable_object, DurableObject, Env, Headers, Request, Response, SqlStorageValue, State,
};

use super::http::{json, ApiError, Config};
use edge_authz::authority::{Authority, Pushed};
use edge_authz_protocol::feed::{self, FeedQuery};
use edge_authz_protocol::PushAnswer;

const PART: usize = 1 << 20;

/// Feed requests one object holds waiting at once; past it, a request is answered at once.
const MAX_WAITING: usize = 1000;

struct Held {
    tenant: String,
    authority: Authority,
    /// How many log entries the database holds.
    stored_log: usize,
}

#[durable_object]
pub struct TenantAuthority {
    state: State,
    env: Env,
    held: RefCell<Option<Held>>,
    /// Feed requests waiting for the head to move: each is told after every accepted push.
    waiting: RefCell<Vec<oneshot::Sender<()>>>,
}

impl DurableObject for TenantAuthority {
    fn new(state: State, env: Env) -> Self {
        TenantAuthority {
            state,
            env,
            held: RefCell::new(None),
            waiting: RefCell::new(Vec::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let query = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let tenant = query("tenant").unwrap_or_default();
        let answer = match url.path() {
            "/push" => match req.bytes().await {
                Ok(bytes) => self.push(&tenant, &bytes),
                Err(_) => Err(ApiError::bad_body("the body could not be read")),
            },
            path @ ("/sync" | "/feed") => match FeedQuery::parse(query) {
                Ok(q) if path == "/sync" => self.answer(&tenant, &q, usize::MAX),
                Ok(q) => self.feed(&tenant, q).await,
                Err(m) => Err(ApiError::new(400, "invalid_query", m)),
            },
            _ => Err(ApiError::new(404, "not_found", "no such path")),
        };
        match answer {
            Ok(r) => Ok(r),
            Err(e) => e.response(""),
        }
    }
}

fn storage_error(e: worker::Error) -> ApiError {
    worker::console_error!("edge-authz: durable object storage: {e}");
    ApiError::unavailable("the authority's storage failed; nothing was changed")
}

impl TenantAuthority {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    /// The tenant's authority, loaded from storage on first use.
    fn with_held<T>(
        &self,
        tenant: &str,
        f: impl FnOnce(&mut Held, &worker::SqlStorage) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let sql = self.sql();
        let mut slot = self.held.borrow_mut();
        if slot.as_ref().is_some_and(|h| h.tenant != tenant) {
            return Err(ApiError::new(400, "invalid_tenant", "wrong tenant"));
        }
        if slot.is_none() {
            *slot = Some(self.load(tenant, &sql)?);
        }
        match slot.as_mut() {
            Some(held) => {
                let out = f(held, &sql);
                if out
                    .as_ref()
                    .is_err_and(|e| e.code == "authority_unavailable")
                {
                    // The database may hold less than memory: reload it next time.
                    *slot = None;
                }
                out
            }
            None => Err(ApiError::unavailable("the authority is not loaded")),
        }
    }

    fn load(&self, tenant: &str, sql: &worker::SqlStorage) -> Result<Held, ApiError> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS messages (slot TEXT NOT NULL, seq INTEGER NOT NULL, \
             part INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (slot, seq, part))",
            None,
        )
        .map_err(storage_error)?;
        let cursor = sql
            .exec(
                "SELECT slot, seq, bytes FROM messages ORDER BY \
                 CASE slot WHEN 'log' THEN 0 WHEN 'raised' THEN 1 ELSE 2 END, seq, part",
                None,
            )
            .map_err(storage_error)?;
        let mut messages: Vec<((String, i64), Vec<u8>)> = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(storage_error)?;
            let (Some(SqlStorageValue::String(slot)), Some(SqlStorageValue::Integer(seq))) =
                (row.first(), row.get(1))
            else {
                return Err(ApiError::unavailable("unreadable authority storage"));
            };
            let Some(SqlStorageValue::Blob(part)) = row.get(2) else {
                return Err(ApiError::unavailable("unreadable authority storage"));
            };
            let key = (slot.clone(), *seq);
            match messages.last_mut() {
                Some((k, bytes)) if *k == key => bytes.extend_from_slice(part),
                _ => messages.push((key, part.clone())),
            }
        }
        let keys = Config::get(&self.env)?.public_keys()?;
        let stored = messages.iter().filter(|((s, _), _)| s == "log").count();
        let authority =
            Authority::restore(tenant, keys, messages.iter().map(|(_, b)| b.as_slice())).map_err(
                |e| {
                    worker::console_error!("edge-authz: restoring tenant {tenant}: {e}");
                    ApiError::unavailable(format!(
                        "the stored state of tenant `{tenant}` does not load ({}); push a snapshot",
                        e.code()
                    ))
                },
            )?;
        Ok(Held {
            tenant: tenant.to_string(),
            authority,
            stored_log: stored,
        })
    }

    fn push(&self, tenant: &str, bytes: &[u8]) -> Result<Response, ApiError> {
        self.with_held(tenant, |held, sql| {
            // Judged by this Durable Object's clock: a message issued too far in its future
            // would stretch every freshness bound (`clock_skew`, 400).
            held.authority
                .set_clock(Some(worker::js_sys::Date::now().max(0.0) as u64));
            let pushed = held
                .authority
                .push(bytes)
                .map_err(|e| ApiError::from_core(&e))?;
            persist(held, sql, &pushed, bytes)?;
            for w in self.waiting.borrow_mut().drain(..) {
                let _ = w.send(());
            }
            json(200, &PushAnswer::from(&pushed), "")
        })
    }

    /// The public feed: the answer at once when the head is past the holder (or the request
    /// does not wait), else when a push moves it or the wait ends, whichever comes first.
    async fn feed(&self, tenant: &str, q: FeedQuery) -> Result<Response, ApiError> {
        use futures_util::future::select;
        let head = self.with_held(tenant, |held, _| Ok(held.authority.head()))?;
        if q.wait_ms > 0 && !q.is_behind(&head) {
            // Until the next accepted push (which may not concern this holder: it is answered
            // anyway) or the end of the wait; at once when too many requests wait already.
            if let Some(told) = self.wait_for_push() {
                let delay = worker::Delay::from(core::time::Duration::from_millis(q.wait_ms));
                select(told, delay).await;
            }
        }
        self.answer(tenant, &q, feed::MAX_ANSWER_BYTES)
    }

    /// A receiver told at the next accepted push, unless too many requests wait already.
    fn wait_for_push(&self) -> Option<oneshot::Receiver<()>> {
        let mut waiting = self.waiting.borrow_mut();
        waiting.retain(|w| !w.is_canceled());
        if waiting.len() >= MAX_WAITING {
            return None;
        }
        let (tell, told) = oneshot::channel();
        waiting.push(tell);
        Some(told)
    }

    /// The feed answer for the holder `q` names (none: a new replica, which needs everything):
    /// the authority's head and what the holder lacks, at most `limit` bytes.
    fn answer(&self, tenant: &str, q: &FeedQuery, limit: usize) -> Result<Response, ApiError> {
        self.with_held(tenant, |held, _| {
            let head = held.authority.head();
            let holder = q.holder();
            let messages = if holder == Some(head) {
                Vec::new()
            } else {
                held.authority.catch_up(holder)
            };
            let body = feed::encode(head, &messages, limit).ok_or_else(|| {
                let size = messages.first().map_or(0, |m| m.len());
                ApiError::new(
                    413,
                    "too_large",
                    format!(
                        "the next message is {size} bytes, over the feed's limit of {limit}; \
                         this tenant cannot be followed through the feed"
                    ),
                )
            })?;
            let answer = || -> worker::Result<Response> {
                let headers = Headers::new();
                headers.set("content-type", "application/msgpack")?;
                headers.set("cache-control", "no-store")?;
                Ok(Response::from_bytes(body)?.with_headers(headers))
            };
            answer().map_err(|_| ApiError::unavailable("answer"))
        })
    }
}

/// Writes what a successful push changed: the log (rewritten after a new snapshot, appended
/// otherwise), and the watermark and latest-confirmation messages when this message is one.
fn persist(
    held: &mut Held,
    sql: &worker::SqlStorage,
    pushed: &Pushed,
    bytes: &[u8],
) -> Result<(), ApiError> {
    let log = held.authority.log();
    if matches!(pushed, Pushed::Snapshot(a) if a.applied) {
        sql.exec("DELETE FROM messages WHERE slot = 'log'", None)
            .map_err(storage_error)?;
        held.stored_log = 0;
    }
    for (seq, (_, m)) in log.iter().enumerate().skip(held.stored_log) {
        write(sql, "log", seq, m)?;
    }
    held.stored_log = log.len();
    for (slot, current) in [
        ("raised", held.authority.raised_by()),
        ("latest", held.authority.latest()),
    ] {
        if current == Some(bytes) {
            sql.exec(
                "DELETE FROM messages WHERE slot = ?",
                vec![SqlStorageValue::from(slot)],
            )
            .map_err(storage_error)?;
            write(sql, slot, 0, bytes)?;
        }
    }
    Ok(())
}

fn write(sql: &worker::SqlStorage, slot: &str, seq: usize, bytes: &[u8]) -> Result<(), ApiError> {
    for (part, chunk) in bytes.chunks(PART).enumerate() {
        sql.exec(
            "INSERT OR REPLACE INTO messages (slot, seq, part, bytes) VALUES (?, ?, ?, ?)",
            vec![
                SqlStorageValue::from(slot),
                SqlStorageValue::Integer(i64::try_from(seq).unwrap_or(i64::MAX)),
                SqlStorageValue::Integer(i64::try_from(part).unwrap_or(i64::MAX)),
                SqlStorageValue::Blob(chunk.to_vec()),
            ],
        )
        .map_err(storage_error)?;
    }
    Ok(())
}
