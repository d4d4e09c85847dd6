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
use std::time::Duration;

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
    #[command(flatten)]
    pub push: crate::publish::Pushing,
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

/// How long a request's head may take to arrive, and then its body.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
const BODY_DEADLINE: Duration = Duration::from_secs(30);

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
    let listener = std::net::TcpListener::bind(listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| Fail(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Fail(format!("cannot listen on {listen}: {e}")))?;
    let threads = usize::try_from(args.threads).unwrap_or(32);
    let service = Arc::new(Service {
        base: format!("http://{bound}"),
        tokens,
        tenants: Mutex::new(HashMap::new()),
        metrics: metrics::Counters::default(),
        args,
    });
    // Every tenant with a journal gets its job now: its edges hear heartbeats from the start.
    // A journal it cannot open (another publisher holds its lock, say) stops it here: a
    // service that answered for some tenants and not others would hide the conflict.
    for t in Store::tenants(&service.args.state) {
        if edge_authz::is_valid_tenant(&t) {
            service
                .job(&t, true)
                .map_err(|e| Fail(format!("tenant `{t}`: {}", e.0)))?;
        }
    }
    // Connections and bodies on a small runtime; the work that waits on a tenant's job or
    // reads a journal on its blocking threads (`--threads` of them at most).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(threads)
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Fail(format!("cannot start the server: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Fail(format!("cannot listen on {listen}: {e}")))?;
        eprintln!("edge-authz serve: listening on {}", service.base);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    eprintln!("warning: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                let handler = hyper::service::service_fn(move |req| {
                    let service = Arc::clone(&service);
                    async move { Ok::<_, std::convert::Infallible>(service.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEAD_DEADLINE)
                    .max_buf_size(64 * 1024)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                    .await;
            });
        }
    })
}

/// Where a request goes.
enum Route<'a> {
    Health,
    Metrics,
    Changes(&'a str),
    GetModel(&'a str),
    PutModel(&'a str),
    Status(&'a str),
    Scim(&'a str, Vec<&'a str>),
}

/// The body of a request: read under `limit` bytes and [`BODY_DEADLINE`]. Past the limit the
/// rest is read and dropped, up to [`http::DRAIN_BYTES`] more, so that an ordinary client still
/// sending gets its 413 rather than a reset connection (a body declared larger than that is
/// refused from its head and never read).
async fn read_body(mut body: hyper::body::Incoming, limit: usize) -> Result<Vec<u8>, Reply> {
    use http_body_util::BodyExt as _;
    let read = async {
        let mut out = Vec::new();
        let mut seen: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Reply::error(400, "bad_body", &format!("the body could not be read: {e}"))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len() as u64);
            if seen <= limit as u64 {
                out.extend_from_slice(&data);
            } else if seen > limit as u64 + http::DRAIN_BYTES {
                break;
            }
        }
        if seen > limit as u64 {
            return Err(http::too_large(limit));
        }
        Ok(out)
    };
    match tokio::time::timeout(BODY_DEADLINE, read).await {
        Err(_) => Err(Reply::error(
            408,
            "body_timeout",
            &format!(
                "the body did not arrive within {} s",
                BODY_DEADLINE.as_secs()
            ),
        )),
        Ok(r) => r,
    }
}

impl Service {
    async fn handle(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
        let (parts, body) = req.into_parts();
        let head = Incoming::read_head(&parts);
        let scim = head.path.starts_with("/scim/");
        // Everything that can be refused from the head is, before a byte of the body is read.
        let admitted = match self.admit(&head) {
            Ok(limit) => match limit {
                Some(limit) => read_body(body, limit).await,
                None => Ok(Vec::new()),
            },
            Err(r) => Err(r),
        };
        let reply = match admitted {
            Err(r) if scim => r.into_scim(),
            Err(r) => r,
            Ok(body) => {
                let service = Arc::clone(&self);
                let work = tokio::task::spawn_blocking(move || {
                    let r = service.route(&head, body);
                    (head, r)
                });
                match work.await {
                    Ok((h, r)) => {
                        self.metrics.count(&h, &r);
                        return http::response(r);
                    }
                    Err(_) => Reply::error(500, "internal", "the request's work failed"),
                }
            }
        };
        self.metrics.count(&Incoming::read_head(&parts), &reply);
        http::response(reply)
    }

    /// The route of a request: 404, 405 and 400 (the tenant) from its method and path.
    fn resolve<'a>(&self, req: &'a Incoming) -> Result<Route<'a>, Reply> {
        let segments: Vec<&str> = req.path.split('/').skip(1).collect();
        let method = req.method.as_str();
        let tenant_ok = |t: &str| {
            if edge_authz::is_valid_tenant(t) {
                Ok(())
            } else {
                Err(Reply::error(
                    400,
                    "invalid_tenant",
                    "a tenant is 1 to 64 of a-z, 0-9, `_` and `-`",
                ))
            }
        };
        match segments.as_slice() {
            ["healthz"] => match method {
                "GET" | "HEAD" => Ok(Route::Health),
                _ => Err(Reply::method("GET, HEAD")),
            },
            ["metrics"] => match method {
                "GET" => Ok(Route::Metrics),
                _ => Err(Reply::method("GET")),
            },
            ["v1", tenant, op @ ("changes" | "model" | "status")] => {
                let route = match (*op, method) {
                    ("changes", "POST") => Route::Changes(tenant),
                    ("model", "GET") => Route::GetModel(tenant),
                    ("model", "PUT") => Route::PutModel(tenant),
                    ("status", "GET") => Route::Status(tenant),
                    ("changes", _) => return Err(Reply::method("POST")),
                    ("model", _) => return Err(Reply::method("GET, PUT")),
                    _ => return Err(Reply::method("GET")),
                };
                tenant_ok(tenant)?;
                Ok(route)
            }
            ["scim", "v2", tenant, rest @ ..] => {
                tenant_ok(tenant)?;
                Ok(Route::Scim(
                    tenant,
                    rest.iter().copied().filter(|s| !s.is_empty()).collect(),
                ))
            }
            _ => Err(Reply::error(
                404,
                "not_found",
                &format!("no route for {}", req.path),
            )),
        }
    }

    /// Refusals from the head (route, token, media type, declared size); `Some(limit)` when a
    /// body is to be read.
    fn admit(&self, req: &Incoming) -> Result<Option<usize>, Reply> {
        const JSON: &[&str] = &["application/json"];
        const SCIM: &[&str] = &["application/scim+json", "application/json"];
        match self.resolve(req)? {
            Route::Health => Ok(None),
            Route::Metrics => self.tokens.check(req, None, Api::Metrics).map(|()| None),
            Route::GetModel(t) | Route::Status(t) => {
                self.tokens.check(req, Some(t), Api::Changes).map(|()| None)
            }
            Route::PutModel(t) => {
                self.tokens.check(req, Some(t), Api::Changes)?;
                req.body_head(self.args.max_model, JSON)?;
                Ok(Some(self.args.max_model))
            }
            Route::Changes(t) => {
                self.tokens.check(req, Some(t), Api::Changes)?;
                req.body_head(self.args.max_body, JSON)?;
                Ok(Some(self.args.max_body))
            }
            Route::Scim(t, _) => {
                self.tokens.check(req, Some(t), Api::Scim)?;
                // A request without a body goes on to the SCIM routes (a POST to a discovery
                // endpoint is their 405, a create without a body their 400).
                if matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") && req.has_body() {
                    req.body_head(self.args.max_body, SCIM)?;
                    Ok(Some(self.args.max_body))
                } else {
                    Ok(None)
                }
            }
        }
    }

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
        let stopped = || {
            // The job stopped (its journal failed): the next request starts a new one.
            if let Ok(mut map) = self.tenants.lock() {
                map.remove(tenant);
            }
            Reply::error(
                503,
                "tenant_unavailable",
                "the tenant's job stopped; try again",
            )
        };
        if tx.send(make(reply_tx)).is_err() {
            return stopped();
        }
        reply_rx.recv().unwrap_or_else(|_| stopped())
    }

    /// The work of an admitted request (on a blocking thread).
    fn route(&self, req: &Incoming, body: Vec<u8>) -> Reply {
        let route = match self.resolve(req) {
            Ok(r) => r,
            Err(r) => return r,
        };
        match route {
            Route::Health => Reply::json(200, &json!({"ok": true})),
            Route::Metrics => {
                let tenants: Vec<String> = Store::tenants(&self.args.state);
                Reply::text(
                    200,
                    metrics::render(&self.args.state, &tenants, &self.metrics),
                )
            }
            Route::Status(t) => tenant::status(&self.args.state, t),
            Route::GetModel(t) => tenant::model(&self.args.state, t),
            Route::PutModel(t) | Route::Changes(t) => {
                let whole = matches!(route, Route::PutModel(_));
                let key = match req.idempotency_key() {
                    Ok(k) => k,
                    Err(r) => return r,
                };
                let hash = http::request_hash(req, &body);
                let at = crate::now_ms();
                self.ask(t, whole, |reply| Job::Changes {
                    whole,
                    body,
                    key,
                    hash,
                    at,
                    reply,
                })
            }
            Route::Scim(tenant, rest) => {
                let call = tenant::ScimCall {
                    method: req.method.clone(),
                    segments: rest.iter().map(|s| s.to_string()).collect(),
                    query: req.query.clone(),
                    body,
                    if_match: req.header("if-match").map(str::to_string),
                    base: format!("{}/scim/v2/{tenant}", self.base),
                    group_id: self.args.scim_group_id,
                };
                let reply = self.ask(tenant, false, |reply| Job::Scim {
                    call,
                    at: crate::now_ms(),
                    reply,
                });
                if reply.code.as_deref() == Some("unknown_tenant") {
                    return scim_error(404, None, &format!("tenant `{tenant}` has no model here"));
                }
                reply.into_scim()
            }
        }
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
