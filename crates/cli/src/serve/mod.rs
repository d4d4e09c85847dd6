//! `edge-authz serve`: the origin as a service. The publisher's sequential job per tenant (one
//! thread each, owning the tenant's journal) behind an HTTP server bound where `--listen` says:
//!
//! - `POST /v1/{tenant}/changes`: operations (one, or an array that is one epoch); answered once
//!   the epoch is committed, and for a revocation once every edge enforces it (202 with
//!   `enforced: false` past the ack timeout). `Idempotency-Key` makes a retry return the first
//!   answer, and it is written in the epoch's own transaction.
//! - `GET` / `PUT /v1/{tenant}/model`, `GET /v1/{tenant}/status`.
//! - SCIM 2.0 under `/scim/v2/{tenant}/` (`scim`).
//! - `GET /metrics` (Prometheus text), `GET /healthz`.
//!
//! Writers authenticate with bearer tokens (`auth`); bodies are bounded; every answer that
//! reports a change is sent only after the journal holds it.

mod auth;
mod http;
mod metrics;
pub mod scim;
mod tenant;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};

use serde_json::json;

use crate::publish::store::{paths, Store};
use crate::Fail;
use auth::{Api, Tokens};
use http::{Incoming, Reply};
use tenant::Job;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The journals' folder (one SQLite database per tenant): the source of truth.
    #[arg(long, default_value = ".edge-authz", value_name = "DIR")]
    pub state: PathBuf,
    /// The origin's secret key file.
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// An edge's base URL (a Worker), repeat for each edge.
    #[arg(long = "edge", value_name = "URL", required = true)]
    pub edges: Vec<String>,
    /// The address to listen on (and nowhere else).
    #[arg(long, default_value = "127.0.0.1:8788", value_name = "ADDR")]
    pub listen: String,
    /// The writers' bearer tokens, one a line: `TOKEN [tenant=NAME]... [api=changes|scim|metrics]...`
    /// (no `tenant=`: every tenant; no `api=`: every API). `#` starts a comment.
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// How long a revocation waits for every edge's acknowledgement before 202 (ms).
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub ack_timeout: u64,
    /// Heartbeat interval (ms); by default a third of the model's smallest freshness bound.
    #[arg(long, value_name = "MS")]
    pub heartbeat: Option<u64>,
    /// The limit on one HTTP request to an edge (ms).
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    pub http_timeout: u64,
    /// A job's time budget (ms) before its size is counted: 1 ms more per 16 KiB it pushes.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub budget: u64,
    /// Issue a checkpoint (a snapshot-only epoch) after this many deltas.
    #[arg(long, default_value_t = 256, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
    /// A file holding the edges' push token (their `PUSH_TOKEN`); else EDGE_AUTHZ_PUSH_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub push_token_file: Option<PathBuf>,
    /// The largest request body of the change and SCIM APIs (bytes).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_body: usize,
    /// The largest model a `PUT /v1/{tenant}/model` takes (bytes).
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_model: usize,
    /// How a SCIM group's subject id is made: `group:{displayName}` or `group:{externalId}`.
    #[arg(long, value_enum, default_value_t = scim::GroupIdFrom::DisplayName)]
    pub scim_group_id: scim::GroupIdFrom,
    /// Requests handled at once (each waits on its tenant's job).
    #[arg(long, default_value_t = 32, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: u64,
    /// The publisher's events as JSON lines on stdout (else readable lines).
    #[arg(long)]
    pub json: bool,
}

/// What every request thread shares.
struct Service {
    args: ServeArgs,
    tokens: Tokens,
    tenants: Mutex<HashMap<String, mpsc::Sender<Job>>>,
    metrics: metrics::Counters,
    /// `http://ADDR`, for SCIM's absolute locations.
    base: String,
}

pub fn run(args: ServeArgs) -> Result<(), Fail> {
    let tokens = Tokens::load(&args.token_file)?;
    // The key and the edges are checked now (as the first tenant's job would), not on the first
    // request.
    crate::secret_key(&args.secret_key)?;
    let listen: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        Fail(format!(
            "--listen `{}` is not an IP:PORT address",
            args.listen
        ))
    })?;
    let server = tiny_http::Server::http(listen)
        .map_err(|e| Fail(format!("cannot listen on {listen}: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Fail("the server has no IP address".into()))?;
    let service = Arc::new(Service {
        base: format!("http://{bound}"),
        tokens,
        tenants: Mutex::new(HashMap::new()),
        metrics: metrics::Counters::default(),
        args,
    });
    // Every tenant with a journal gets its job now: its edges hear heartbeats from the start.
    for t in Store::tenants(&service.args.state) {
        if edge_authz::is_valid_tenant(&t) {
            if let Err(e) = service.job(&t, true) {
                eprintln!("warning: tenant `{t}`: {}", e.0);
            }
        }
    }
    eprintln!("edge-authz serve: listening on {}", service.base);
    let server = Arc::new(server);
    let workers: Vec<_> = (0..service.args.threads)
        .map(|_| {
            let server = Arc::clone(&server);
            let service = Arc::clone(&service);
            std::thread::spawn(move || loop {
                match server.recv() {
                    Ok(req) => service.answer(req),
                    Err(e) => eprintln!("warning: {e}"),
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

impl Service {
    /// The job of `tenant`: started when its journal exists (or `create`).
    fn job(&self, tenant: &str, create: bool) -> Result<Option<mpsc::Sender<Job>>, Fail> {
        let mut map = self
            .tenants
            .lock()
            .map_err(|_| Fail("the tenants' table is poisoned".into()))?;
        if let Some(tx) = map.get(tenant) {
            return Ok(Some(tx.clone()));
        }
        if !create && !paths(&self.args.state, tenant).0.exists() {
            return Ok(None);
        }
        let tx = tenant::start(tenant, &self.args)?;
        map.insert(tenant.to_string(), tx.clone());
        Ok(Some(tx))
    }

    /// Sends `job` to the tenant's thread and waits for its reply.
    fn ask(
        &self,
        tenant: &str,
        create: bool,
        make: impl FnOnce(mpsc::Sender<Reply>) -> Job,
    ) -> Reply {
        let tx = match self.job(tenant, create) {
            Ok(Some(tx)) => tx,
            Ok(None) => {
                return Reply::error(
                    404,
                    "unknown_tenant",
                    &format!("tenant `{tenant}` has no journal here: PUT /v1/{tenant}/model first"),
                )
            }
            Err(e) => return Reply::error(500, "journal_error", &e.0),
        };
        let (reply_tx, reply_rx) = mpsc::channel();
        if tx.send(make(reply_tx)).is_err() {
            // The job stopped (its journal failed): the next request starts a new one.
            if let Ok(mut map) = self.tenants.lock() {
                map.remove(tenant);
            }
            return Reply::error(
                503,
                "tenant_unavailable",
                "the tenant's job stopped; try again",
            );
        }
        reply_rx.recv().unwrap_or_else(|_| {
            if let Ok(mut map) = self.tenants.lock() {
                map.remove(tenant);
            }
            Reply::error(
                503,
                "tenant_unavailable",
                "the tenant's job stopped; try again",
            )
        })
    }

    fn answer(&self, mut raw: tiny_http::Request) {
        let req = Incoming::read_head(&raw);
        let reply = self.route(&req, &mut raw);
        self.metrics.count(&req, &reply);
        http::send(raw, &reply);
    }

    fn route(&self, req: &Incoming, raw: &mut tiny_http::Request) -> Reply {
        let segments: Vec<&str> = req.path.split('/').skip(1).collect();
        match segments.as_slice() {
            ["healthz"] => match req.method.as_str() {
                "GET" | "HEAD" => Reply::json(200, &json!({"ok": true})),
                _ => Reply::method("GET, HEAD"),
            },
            ["metrics"] => {
                if req.method != "GET" {
                    return Reply::method("GET");
                }
                if let Err(r) = self.tokens.check(req, None, Api::Metrics) {
                    return r;
                }
                let tenants: Vec<String> = Store::tenants(&self.args.state);
                Reply::text(
                    200,
                    metrics::render(&self.args.state, &tenants, &self.metrics),
                )
            }
            ["v1", tenant, op] => self.v1(req, raw, tenant, op),
            ["scim", "v2", tenant, rest @ ..] => self.scim(req, raw, tenant, rest),
            _ => Reply::error(404, "not_found", &format!("no route for {}", req.path)),
        }
    }

    fn v1(&self, req: &Incoming, raw: &mut tiny_http::Request, tenant: &str, op: &str) -> Reply {
        let allow = match op {
            "changes" => "POST",
            "model" => "GET, PUT",
            "status" => "GET",
            _ => return Reply::error(404, "not_found", &format!("no route for {}", req.path)),
        };
        if !allow.split(", ").any(|m| m == req.method) {
            return Reply::method(allow);
        }
        if !edge_authz::is_valid_tenant(tenant) {
            return Reply::error(
                400,
                "invalid_tenant",
                "a tenant is 1 to 64 of a-z, 0-9, `_` and `-`",
            );
        }
        if let Err(r) = self.tokens.check(req, Some(tenant), Api::Changes) {
            return r;
        }
        match (op, req.method.as_str()) {
            ("status", _) => tenant::status(&self.args.state, tenant),
            ("model", "GET") => tenant::model(&self.args.state, tenant),
            ("model", _) => {
                let body = match http::body(req, raw, self.args.max_model, &["application/json"]) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let key = match req.idempotency_key() {
                    Ok(k) => k,
                    Err(r) => return r,
                };
                let hash = http::request_hash(req, &body);
                self.ask(tenant, true, |reply| Job::PutModel {
                    body,
                    key,
                    hash,
                    at: crate::now_ms(),
                    reply,
                })
            }
            _ => {
                let body = match http::body(req, raw, self.args.max_body, &["application/json"]) {
                    Ok(b) => b,
                    Err(r) => return r,
                };
                let key = match req.idempotency_key() {
                    Ok(k) => k,
                    Err(r) => return r,
                };
                let hash = http::request_hash(req, &body);
                self.ask(tenant, false, |reply| Job::Changes {
                    body,
                    key,
                    hash,
                    at: crate::now_ms(),
                    reply,
                })
            }
        }
    }

    fn scim(
        &self,
        req: &Incoming,
        raw: &mut tiny_http::Request,
        tenant: &str,
        rest: &[&str],
    ) -> Reply {
        if !edge_authz::is_valid_tenant(tenant) {
            return scim_error(
                400,
                Some("invalidValue"),
                "a tenant is 1 to 64 of a-z, 0-9, `_` and `-`",
            );
        }
        if let Err(r) = self.tokens.check(req, Some(tenant), Api::Scim) {
            return r.into_scim();
        }
        let body = if matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
            match http::body(
                req,
                raw,
                self.args.max_body,
                &["application/scim+json", "application/json"],
            ) {
                Ok(b) => b,
                Err(r) => return r.into_scim(),
            }
        } else {
            Vec::new()
        };
        let scim_req = tenant::ScimCall {
            method: req.method.clone(),
            segments: rest
                .iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string())
                .collect(),
            query: req.query.clone(),
            body,
            if_match: req.header("if-match").map(str::to_string),
            base: format!("{}/scim/v2/{tenant}", self.base),
            group_id: self.args.scim_group_id,
        };
        let reply = self.ask(tenant, false, |reply| Job::Scim {
            call: scim_req,
            at: crate::now_ms(),
            reply,
        });
        if reply.status == 404 && reply.code.as_deref() == Some("unknown_tenant") {
            return scim_error(404, None, &format!("tenant `{tenant}` has no model here"));
        }
        reply
    }
}

/// A SCIM error body (RFC 7644 section 3.12).
fn scim_error(status: u16, scim_type: Option<&str>, detail: &str) -> Reply {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": detail,
    });
    if let (Some(t), Some(m)) = (scim_type, body.as_object_mut()) {
        m.insert("scimType".into(), json!(t));
    }
    Reply::scim(status, &body)
}
