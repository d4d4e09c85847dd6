//! The Cloudflare Worker: the HTTP API of docs/http.md, over the state of docs/worker.md.
//!
//! - [`durable`]: the Durable Object `TenantAuthority`, one per tenant, the authority for the
//!   epoch, the watermark and `confirmed_at`, and the store of the signed messages;
//! - [`edge`]: each isolate's decoded evaluator per tenant and its sync with the authority;
//! - [`http`]: errors, configuration (`CORS_ORIGINS` for browsers among it), bodies.
//!
//! Freshness per tier: before answering, an isolate confirms the watermark with the authority
//! unless the decision's tier may reuse the last confirmation (`high`: never; `standard` and
//! `low`: for `CONFIRM_REUSE_MS_STANDARD` / `CONFIRM_REUSE_MS_LOW`). A batch or a listing takes
//! its strictest tier; an undeclared action counts as `high`.

pub mod durable;
mod edge;
mod http;

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use worker::js_sys;
use worker::{event, Context, Env, Headers, Method, Request, RequestInit, Response};

use self::edge::Edge;
use self::http::{body, json, ApiError, Config};
use edge_authz::token::Verdicts;
use edge_authz::{
    is_valid_tenant, Decision, MessageKind, Reason, Request as Check, Tier, TokenAnswer,
    TokenDecision,
};
use edge_authz_protocol::answers::{Counted, Health, Isolate, ReuseMs};
use edge_authz_protocol::feed::FeedQuery;
use edge_authz_protocol::Context as RequestContext;
use edge_authz_protocol::{
    parse_body, parse_check_many, AuthorizeBody, BodyError, CheckBody, Decisions, EdgeStatus,
    ErrorBody, Listing,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = js_sys::Date::now();
    let request_id = request_id(&req);
    let cors = match cors(&req, &env) {
        Ok(c) => c,
        Err(e) => return e.response(&request_id),
    };
    if let Some(c) = &cors {
        if req.method() == Method::Options {
            return c.preflight(&request_id);
        }
    }
    let mut resp = match route(req, &env, &request_id, started).await {
        Ok(r) => r,
        Err(e) => e.response(&request_id)?,
    };
    if let Some(c) = &cors {
        c.apply(resp.headers_mut())?;
    }
    // A relayed push is enforced before its answer and applied here after it: the index's
    // rebuild, the one part that grows with the tenant, once the answer has gone out (a timer
    // of 0 lets the runtime send it first).
    if edge::any_unsettled() {
        ctx.wait_until(async {
            worker::Delay::from(core::time::Duration::ZERO).await;
            edge::settle_all();
        });
    }
    Ok(resp)
}

/// The size of this isolate's wasm linear memory, in bytes.
fn wasm_memory_bytes() -> Option<f64> {
    use wasm_bindgen::JsCast;
    let memory = wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()?;
    Some(
        memory
            .buffer()
            .dyn_into::<js_sys::ArrayBuffer>()
            .ok()?
            .byte_length() as f64,
    )
}

/// The read endpoints a browser may call when `CORS_ORIGINS` allows its origin, and their
/// methods.
fn read_route(path: &str) -> Option<&'static str> {
    let mut segments = path.split('/').skip(1);
    let (Some("v1"), Some(_tenant), Some(op), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    match op {
        "check" | "check-many" | "authorize" => Some("POST, OPTIONS"),
        "resources" | "subjects" | "status" | "feed" => Some("GET, OPTIONS"),
        _ => None,
    }
}

/// CORS for a read endpoint called with an allowed `Origin`.
struct Cors {
    /// `access-control-allow-origin`: the request's origin, or `*`.
    allow_origin: String,
    /// `access-control-allow-methods` for a preflight.
    methods: &'static str,
}

/// The CORS answer this request gets: None unless it is for a read endpoint, carries an
/// `Origin`, and `CORS_ORIGINS` allows that origin. A malformed `CORS_ORIGINS` is an error.
fn cors(req: &Request, env: &Env) -> Result<Option<Cors>, ApiError> {
    let Some(methods) = read_route(&req.path()) else {
        return Ok(None);
    };
    let Some(origin) = req.headers().get("origin").ok().flatten() else {
        return Ok(None);
    };
    Ok(Config::get(env)?.cors.allow(&origin).map(|a| Cors {
        allow_origin: a.to_string(),
        methods,
    }))
}

impl Cors {
    fn apply(&self, headers: &mut Headers) -> worker::Result<()> {
        headers.set("access-control-allow-origin", &self.allow_origin)?;
        headers.set("access-control-expose-headers", "x-request-id")?;
        headers.set("vary", "Origin")
    }

    /// The answer to a preflight `OPTIONS`: 204 with what the browser may send.
    fn preflight(&self, rid: &str) -> worker::Result<Response> {
        let mut headers = Headers::new();
        self.apply(&mut headers)?;
        headers.set("access-control-allow-methods", self.methods)?;
        headers.set(
            "access-control-allow-headers",
            "authorization, content-type, x-request-id",
        )?;
        headers.set("access-control-max-age", "600")?;
        headers.set("x-request-id", rid)?;
        Ok(Response::empty()?.with_status(204).with_headers(headers))
    }
}

fn internal(e: worker::Error) -> ApiError {
    worker::console_error!("edge-authz: {e}");
    ApiError::new(500, "internal", "internal error")
}

/// The caller's request id (`x-request-id`, else Cloudflare's `cf-ray`) when it is a short
/// token, else a new one.
fn request_id(req: &Request) -> String {
    let given = ["x-request-id", "cf-ray"]
        .iter()
        .find_map(|h| req.headers().get(h).ok().flatten())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    given.unwrap_or_else(|| {
        // Math.random is enough for a correlation id; it is never a secret.
        let r = |bits: f64| (js_sys::Math::random() * bits) as u64;
        format!("{:08x}{:08x}", r(4_294_967_296.0), r(4_294_967_296.0))
    })
}

async fn route(mut req: Request, env: &Env, rid: &str, started: f64) -> Result<Response, ApiError> {
    let path = req.path();
    let method = req.method();
    if path == "/health" {
        return match method {
            Method::Get | Method::Head => json(200, &Health { ok: true }, rid),
            _ => Err(ApiError::method("GET, HEAD")),
        };
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let (tenant, op) = match segments.as_slice() {
        ["v1", tenant, op] => (tenant.to_string(), op.to_string()),
        _ => {
            return Err(ApiError::new(
                404,
                "not_found",
                format!("no route for {path}"),
            ))
        }
    };
    let allow = match op.as_str() {
        "check" | "check-many" | "authorize" | "delta" | "watermark" => "POST",
        "resources" | "subjects" | "status" | "feed" => "GET",
        "snapshot" => "PUT",
        _ => {
            return Err(ApiError::new(
                404,
                "not_found",
                format!("no route for {path}"),
            ))
        }
    };
    if method.to_string() != allow {
        return Err(ApiError::method(allow));
    }
    let config = Config::get(env)?;
    if !is_valid_tenant(&tenant) {
        return Err(ApiError::new(
            400,
            "invalid_tenant",
            "a tenant is 1 to 64 of a-z, 0-9, `_` and `-`",
        ));
    }
    if config
        .tenants
        .as_ref()
        .is_some_and(|t| !t.contains(&tenant))
    {
        return Err(ApiError::new(
            404,
            "unknown_tenant",
            "this Worker does not serve that tenant",
        ));
    }
    let ctx = Ctx {
        env,
        config: &config,
        tenant: &tenant,
        rid,
        started,
    };
    match op.as_str() {
        "snapshot" => ctx.push(&mut req, MessageKind::Snapshot).await,
        "delta" => ctx.push(&mut req, MessageKind::Delta).await,
        "watermark" => ctx.push(&mut req, MessageKind::Watermark).await,
        "feed" => {
            config.authorize_feed(&req)?;
            ctx.feed(&req).await
        }
        _ => {
            config.authorize(&req)?;
            match op.as_str() {
                "check" => ctx.check(&mut req).await,
                "authorize" => ctx.authorize(&mut req).await,
                "check-many" => ctx.check_many(&mut req).await,
                "status" => ctx.status().await,
                _ => ctx.list(&req, op == "resources").await,
            }
        }
    }
}

struct Ctx<'a> {
    env: &'a Env,
    config: &'a Config,
    tenant: &'a str,
    rid: &'a str,
    started: f64,
}

/// The body as `T`: 400 `invalid_json` when it is not JSON at all, `invalid_body` when it is
/// JSON of the wrong shape.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_body(bytes).map_err(body_error)
}

fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::NotJson(m) => {
            ApiError::new(400, "invalid_json", format!("the body is not JSON: {m}"))
        }
        BodyError::Shape(m) => {
            ApiError::bad_body(format!("the body does not fit the request: {m}"))
        }
        BodyError::TooMany { limit } => ApiError::new(
            413,
            "batch_too_large",
            format!("over the limit of {limit} requests per batch"),
        ),
    }
}

/// A request that names its own time (`context.now`, a listing's `now=`) is refused unless the
/// Worker allows it (`ALLOW_CONTEXT_NOW`); even then the time moves only expiry, never the clock.
fn context_time(config: &Config, given: RequestContext) -> Result<RequestContext, ApiError> {
    match given.now {
        Some(_) if !config.allow_context_now => Err(ApiError::new(
            400,
            "invalid_context",
            "this Worker decides at its own time: `context.now` (and a listing's `now`) needs \
             ALLOW_CONTEXT_NOW=true",
        )),
        _ => Ok(given),
    }
}

/// One decision as a log line (docs/worker.md, "Decision logs"): with the held state's digest
/// and the request's context as given, so that `edge-authz replay` can decide it again.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogLine<'a> {
    event: &'static str,
    ts: f64,
    request_id: &'a str,
    tenant: &'a str,
    subject: &'a str,
    action: &'a str,
    resource: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a serde_json::Value>,
    allowed: bool,
    reason: Reason,
    epoch: Option<u64>,
    watermark: u64,
    tier: Option<Tier>,
    digest: Option<&'a str>,
    /// A token check (`POST /authorize`): its subject is the one the token gave.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    token: bool,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
}

/// What a log line says of its request besides the decision.
struct Logged<'a> {
    /// Subject (empty for a token refused before it named one), action, resource.
    request: [&'a str; 3],
    /// The request's context as given (`None`: it had none).
    context: Option<&'a serde_json::Value>,
    /// The position within a batch.
    index: Option<usize>,
    /// A token check.
    token: bool,
}

impl Ctx<'_> {
    fn now_ms() -> f64 {
        js_sys::Date::now()
    }

    fn edge(&self) -> Result<Rc<RefCell<Edge>>, ApiError> {
        edge::edge(self.tenant, self.config, Self::now_ms())
    }

    /// Makes sure this isolate's knowledge of the watermark is fresh enough for `tier`. When
    /// the authority cannot be reached, `high` fails closed (503) and so does an isolate that
    /// never reached it; `standard` and `low` go on answering from what is held, still bounded
    /// by the model's freshness gate (the origin's `confirmed_at`).
    /// `at_least_epoch`: the epoch the request needs, which this isolate may lack.
    async fn confirm(
        &self,
        e: &Rc<RefCell<Edge>>,
        tier: Tier,
        at_least_epoch: Option<u64>,
    ) -> Result<(), ApiError> {
        let now = Self::now_ms();
        let (must, never) = {
            let r = &e.borrow().replica;
            (
                r.must_confirm(
                    tier,
                    self.config.reuse_ms(tier),
                    at_least_epoch,
                    edge::clock_ms(now),
                ),
                !r.ever_confirmed(),
            )
        };
        if !must {
            return Ok(());
        }
        match edge::sync(self.env, self.tenant, self.config, e, now).await {
            Ok(()) => Ok(()),
            Err(err) if tier == Tier::High || never => Err(err),
            Err(err) => {
                worker::console_warn!(
                    "edge-authz: tenant {}: answering {} from held state: {}",
                    self.tenant,
                    tier.as_str(),
                    err.message
                );
                Ok(())
            }
        }
    }

    /// The strictest tier among these actions (an undeclared one, or no snapshot, is `high`;
    /// tiers are ordered from `low` to `high`).
    fn strictest<'s>(e: &Edge, actions: impl Iterator<Item = &'s str>) -> Option<Tier> {
        actions.map(|a| e.replica.tier_of(a)).max()
    }

    async fn check(&self, req: &mut Request) -> Result<Response, ApiError> {
        let bytes = body(req, "application/json", self.config.max_check_bytes).await?;
        let b: CheckBody = parse_json(&bytes)?;
        let requests = [(b.subject, b.action, b.resource)];
        let e = self.edge()?;
        let decided = self
            .decide(&e, &requests, b.context.as_ref(), false)
            .await?;
        let ed = e.borrow();
        let view = decided.first().map(|d| ed.ev().explain(d));
        json(200, &view, self.rid)
    }

    /// `POST /v1/{tenant}/authorize`: a check by a token, its signature verified natively
    /// (docs/http.md, "Token checks").
    async fn authorize(&self, req: &mut Request) -> Result<Response, ApiError> {
        let bytes = body(req, "application/json", self.config.max_check_bytes).await?;
        let b: AuthorizeBody = parse_json(&bytes)?;
        drop(bytes);
        let e = self.edge()?;
        let given = match edge_authz_protocol::read_context(b.context.as_ref()) {
            Ok(c) => Ok(context_time(self.config, c)?),
            Err(()) => Err(()),
        };
        let tier = Self::strictest(&e.borrow(), std::iter::once(b.action.as_str()));
        let at_least = given.as_ref().ok().and_then(|c| c.at_least_epoch);
        if let Some(tier) = tier {
            self.confirm(&e, tier, at_least).await?;
        }
        let now_ms = Self::now_ms();
        let mut ed = e.borrow_mut();
        let t = match given {
            Err(()) => TokenDecision {
                decision: ed.ev().reject_request(),
                subject: None,
                fault: None,
            },
            Ok(given) => {
                let at = given.at(now_ms.max(0.0) as u64);
                let edge::Edge {
                    replica, verdicts, ..
                } = &mut *ed;
                // Verified natively once per token and key in this isolate.
                let mut verify = |v: &edge_authz::token::Verify<'_>| {
                    let f = Verdicts::fingerprint(v);
                    Some(verdicts.get(&f).unwrap_or_else(|| {
                        let ok = edge_authz_protocol::jws::verify(v);
                        verdicts.put(f, ok);
                        ok
                    }))
                };
                let ev = replica.evaluator();
                match ev.check_token(&b.token, &b.action, &b.resource, at, &mut verify) {
                    TokenAnswer::Decided(t) => t,
                    // A verifier that always answers is never asked again: refuse.
                    TokenAnswer::Verify { .. } => TokenDecision {
                        decision: ev.reject_request(),
                        subject: None,
                        fault: None,
                    },
                }
            }
        };
        let d = ed.replica.guard(t.decision);
        // Refused before gate 6 after all (a watermark seen since): no subject.
        let t = if d.reason == t.decision.reason {
            t
        } else {
            TokenDecision {
                subject: None,
                fault: None,
                ..t
            }
        };
        if d.allowed {
            ed.allowed += 1;
        } else {
            ed.denied += 1;
        }
        let latency_ms = Self::now_ms() - self.started;
        let subject = t.subject.as_deref().unwrap_or("");
        self.sample(
            &mut ed,
            &d,
            now_ms,
            latency_ms,
            Logged {
                request: [subject, &b.action, &b.resource],
                context: b.context.as_ref(),
                index: None,
                token: true,
            },
        );
        let t = TokenDecision { decision: d, ..t };
        json(200, &ed.ev().explain_token(&t), self.rid)
    }

    async fn check_many(&self, req: &mut Request) -> Result<Response, ApiError> {
        let bytes = body(req, "application/json", self.config.max_batch_bytes).await?;
        // Counted as it is read: a batch past the limit is refused before it is held whole.
        let b = parse_check_many(&bytes, self.config.max_batch).map_err(body_error)?;
        drop(bytes);
        let e = self.edge()?;
        let decided = self
            .decide(&e, &b.requests, b.context.as_ref(), true)
            .await?;
        let ed = e.borrow();
        let decisions = decided.iter().map(|d| ed.ev().explain(d)).collect();
        json(200, &Decisions { decisions }, self.rid)
    }

    /// Decides the requests (a batch when `many`), each through the replica's guard, counted
    /// and sampled into the log.
    async fn decide(
        &self,
        e: &Rc<RefCell<Edge>>,
        requests: &[(String, String, String)],
        context: Option<&serde_json::Value>,
        many: bool,
    ) -> Result<Vec<Decision>, ApiError> {
        let given = match edge_authz_protocol::read_context(context) {
            Ok(c) => Ok(context_time(self.config, c)?),
            Err(()) => Err(()),
        };
        let tier = Self::strictest(&e.borrow(), requests.iter().map(|r| r.1.as_str()));
        let at_least = given.as_ref().ok().and_then(|c| c.at_least_epoch);
        if let Some(tier) = tier {
            self.confirm(e, tier, at_least).await?;
        }
        let now_ms = Self::now_ms();
        let mut ed = e.borrow_mut();
        let decisions: Vec<Decision> = match given {
            Err(()) => requests.iter().map(|_| ed.ev().reject_request()).collect(),
            Ok(given) => {
                let now = given.at(now_ms.max(0.0) as u64);
                let checks: Vec<Check<'_>> = requests
                    .iter()
                    .map(|(s, a, r)| Check::new(s, a, r))
                    .collect();
                let mut out = Vec::with_capacity(checks.len());
                ed.replica
                    .evaluator_mut()
                    .check_many(&checks, now, &mut out);
                out
            }
        };
        let latency_ms = Self::now_ms() - self.started;
        let (mut allowed, mut denied) = (0, 0);
        let mut guarded = Vec::with_capacity(decisions.len());
        for (i, (d, (s, a, r))) in decisions.iter().zip(requests).enumerate() {
            let d = ed.replica.guard(*d);
            guarded.push(d);
            if d.allowed {
                allowed += 1;
            } else {
                denied += 1;
            }
            let logged = Logged {
                request: [s, a, r],
                context,
                index: many.then_some(i),
                token: false,
            };
            self.sample(&mut ed, &d, now_ms, latency_ms, logged);
        }
        ed.allowed += allowed;
        ed.denied += denied;
        Ok(guarded)
    }

    /// Prints a decision as a log line, sampled at the configured rate of its outcome.
    /// The digest is the held state's, kept by the edge per state ([`Edge::digest`]): read only
    /// for a line that is written.
    fn sample(&self, ed: &mut Edge, d: &Decision, ts: f64, latency_ms: f64, logged: Logged<'_>) {
        let rate = if d.allowed {
            self.config.sample_allowed
        } else {
            self.config.sample_denied
        };
        if rate > 0.0 && js_sys::Math::random() < rate {
            let [subject, action, resource] = logged.request;
            let line = LogLine {
                event: "decision",
                ts,
                request_id: self.rid,
                tenant: self.tenant,
                subject,
                action,
                resource,
                context: logged.context.filter(|c| !c.is_null()),
                allowed: d.allowed,
                reason: d.reason,
                epoch: d.epoch,
                watermark: d.watermark,
                tier: d.tier,
                digest: ed.digest(),
                token: logged.token,
                latency_ms,
                index: logged.index,
            };
            if let Ok(l) = serde_json::to_string(&line) {
                worker::console_log!("{l}");
            }
        }
    }

    async fn list(&self, req: &Request, resources: bool) -> Result<Response, ApiError> {
        let url = req.url().map_err(internal)?;
        let q = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let need = |name: &str| {
            q(name).ok_or_else(|| {
                ApiError::new(
                    400,
                    "invalid_query",
                    format!("the query parameter `{name}` is required"),
                )
            })
        };
        let action = need("action")?;
        let who = need(if resources { "subject" } else { "resource" })?;
        // The time: `now=<ms>`, or `context=<the JSON context of a check>`; as for a check, a
        // malformed one is `invalid_request`.
        let given =
            match edge_authz_protocol::list_context(q("now").as_deref(), q("context").as_deref()) {
                Ok(c) => Ok(context_time(self.config, c)?),
                Err(()) => Err(()),
            };
        let e = self.edge()?;
        let tier = Self::strictest(&e.borrow(), std::iter::once(action.as_str()));
        let at_least = given.as_ref().ok().and_then(|c| c.at_least_epoch);
        self.confirm(&e, tier.unwrap_or(Tier::High), at_least)
            .await?;
        let ed = e.borrow();
        // The evaluator refuses a stale state itself once it holds the watermark; this covers
        // the case where it somehow could not take it.
        if ed.replica.stale_for_listing() {
            return Err(ApiError::new(
                503,
                "stale_snapshot",
                "cannot list: stale snapshot",
            ));
        }
        let Ok(given) = given else {
            // Gate 1 before gate 2, as for a check.
            return Err(ApiError::from_core(&ed.ev().reject_list()));
        };
        let now = given.at(Self::now_ms().max(0.0) as u64);
        let listed = if resources {
            ed.ev()
                .list_resources(&who, &action, q("type").as_deref(), now)
                .map(Listing::Resources)
        } else {
            ed.ev()
                .list_subjects(&who, &action, now)
                .map(Listing::Subjects)
        }
        .map_err(|err| ApiError::from_core(&err))?;
        json(200, &listed, self.rid)
    }

    async fn status(&self) -> Result<Response, ApiError> {
        let e = self.edge()?;
        let now = Self::now_ms();
        let reached = edge::sync(self.env, self.tenant, self.config, &e, now).await;
        let ed = e.borrow();
        let status = EdgeStatus {
            status: ed.ev().status(),
            authority: reached.as_ref().ok().and(ed.replica.head()),
            authority_error: reached
                .as_ref()
                .err()
                .map(|err| ErrorBody::new(err.code, &err.message)),
            edge: Isolate {
                confirmed_ago_ms: ed.replica.confirmation_age(edge::clock_ms(now)),
                wasm_memory_bytes: wasm_memory_bytes(),
                decisions: Counted {
                    allowed: ed.allowed,
                    denied: ed.denied,
                },
                reuse_ms: ReuseMs {
                    high: 0,
                    standard: self.config.reuse_standard_ms,
                    low: self.config.reuse_low_ms,
                },
            },
        };
        json(200, &status, self.rid)
    }

    /// The authority's feed (docs/http.md, "The feed"): the query checked here, then answered,
    /// and held while it waits, by the tenant's Durable Object.
    async fn feed(&self, req: &Request) -> Result<Response, ApiError> {
        let url = req.url().map_err(internal)?;
        let q = FeedQuery::parse(|name| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
        .map_err(|m| ApiError::new(400, "invalid_query", m))?;
        let inner = format!(
            "https://authority/feed?tenant={}&{}",
            self.tenant,
            q.to_query()
        );
        let resp = edge::stub(self.env, self.tenant)?
            .fetch_with_str(&inner)
            .await
            .map_err(|e| ApiError::unavailable(format!("the authority did not answer: {e}")))?;
        // A fetched answer's headers are immutable: the answer goes out with new ones.
        let kind = resp.headers().get("content-type").ok().flatten();
        let headers = Headers::new();
        headers
            .set(
                "content-type",
                kind.as_deref().unwrap_or("application/msgpack"),
            )
            .and_then(|()| headers.set("cache-control", "no-store"))
            .and_then(|()| headers.set("x-request-id", self.rid))
            .map_err(internal)?;
        Ok(resp.with_headers(headers))
    }

    /// A signed message: checked here first (media type, size, magic, kind, version, tenant,
    /// a trusted key, then the signature, by the runtime's Ed25519, on the body as JavaScript
    /// holds it), so that an anonymous caller's refused body never enters this isolate's wasm
    /// memory and never reaches, or creates, the tenant's Durable Object. The authority then
    /// applies it, and this isolate takes the watermark it answered before it answers (no
    /// decision here is allowed below it, none reuses a confirmation), then applies the message
    /// to its own evaluator once the answer is out: a 200 means the message is enforced here and
    /// at the authority.
    async fn push(&self, req: &mut Request, kind: MessageKind) -> Result<Response, ApiError> {
        self.config.authorize_push(req)?;
        let limit = match kind {
            MessageKind::Snapshot => self.config.max_snapshot_bytes,
            _ => self.config.max_message_bytes,
        };
        let body = http::js_body(req, "application/msgpack", limit).await?;
        let total = body.length() as usize;
        let mut head = vec![0u8; total.min(edge_authz::PEEK_BYTES)];
        body.subarray(0, head.len() as u32).copy_to(&mut head);
        let core = edge_authz::Limits::default();
        let limits = edge_authz::Limits {
            max_message_bytes: limit.min(core.max_message_bytes),
            ..core
        };
        let keys = self.config.public_keys()?;
        let peeked = edge_authz::peek(&head, total, kind, self.tenant, &keys, &limits)
            .map_err(|e| ApiError::from_core(&e))?;
        if !verify::signature(&peeked, &body).await? {
            return Err(ApiError::from_core(&edge_authz::Error::BadSignature));
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(body.clone().into()));
        let url = format!("https://authority/push?tenant={}", self.tenant);
        let inner = Request::new_with_init(&url, &init).map_err(internal)?;
        let mut resp = edge::stub(self.env, self.tenant)?
            .fetch_with_request(inner)
            .await
            .map_err(|e| ApiError::unavailable(format!("the authority did not answer: {e}")))?;
        let status = resp.status_code();
        let text = resp
            .text()
            .await
            .map_err(|_| ApiError::unavailable("the authority's answer could not be read"))?;
        if status == 200 {
            let e = self.edge()?;
            let mut ed = e.borrow_mut();
            ed.relayed(body.to_vec(), &text, Self::now_ms());
        }
        http::json_text(status, text, self.rid).map_err(internal)
    }
}

/// Ed25519 by the runtime's WebCrypto (workerd, like browsers and Node, has it): the signature
/// of a pushed message is checked on the bytes as JavaScript holds them.
mod verify {
    use wasm_bindgen::{JsCast, JsValue};
    use worker::js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
    use worker::wasm_bindgen_futures::JsFuture;

    use super::http::ApiError;
    use edge_authz::Peeked;

    fn unavailable(what: &str) -> ApiError {
        worker::console_error!("edge-authz: WebCrypto Ed25519: {what}");
        ApiError::new(500, "internal", "the signature could not be checked")
    }

    async fn call(target: &JsValue, name: &str, args: &Array) -> Result<JsValue, ApiError> {
        let f: Function = Reflect::get(target, &name.into())
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| unavailable(name))?;
        let promise: Promise = f
            .apply(target, args)
            .ok()
            .and_then(|p| p.dyn_into().ok())
            .ok_or_else(|| unavailable(name))?;
        JsFuture::from(promise).await.map_err(|_| unavailable(name))
    }

    /// Whether the peeked message's signature verifies over its prefix and payload.
    pub async fn signature(p: &Peeked, message: &Uint8Array) -> Result<bool, ApiError> {
        let subtle = Reflect::get(&worker::js_sys::global(), &"crypto".into())
            .and_then(|c| Reflect::get(&c, &"subtle".into()))
            .map_err(|_| unavailable("crypto.subtle"))?;
        let alg = Object::new();
        Reflect::set(&alg, &"name".into(), &"Ed25519".into())
            .map_err(|_| unavailable("algorithm"))?;
        let key = call(
            &subtle,
            "importKey",
            &Array::of5(
                &"raw".into(),
                &Uint8Array::from(p.key.to_bytes().as_slice()),
                &alg,
                &false.into(),
                &Array::of1(&"verify".into()),
            ),
        )
        .await?;
        let (at, len) = (p.payload_at as u32, p.payload_len as u32);
        let signed = Uint8Array::new_with_length(p.prefix.len() as u32 + len);
        signed.set(&Uint8Array::from(p.prefix.as_slice()), 0);
        signed.set(&message.subarray(at, at + len), p.prefix.len() as u32);
        let ok = call(
            &subtle,
            "verify",
            &Array::of4(
                &alg,
                &key,
                &Uint8Array::from(p.signature.as_slice()),
                &signed,
            ),
        )
        .await?;
        Ok(ok.as_bool() == Some(true))
    }
}
