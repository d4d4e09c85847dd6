//! What one isolate holds per tenant: a replica (the core's `sync::Replica`: a decoded evaluator
//! reused across requests, the authority's head as last confirmed, and when). [`sync`] fetches
//! the Durable Object's feed answer (what this isolate lacks); the replica replays and judges it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use worker::{Env, Method, Request, RequestInit};

use super::http::{ApiError, Config};
use edge_authz::sync::{Head, Replica, Synced};
use edge_authz::Evaluator;
use edge_authz_protocol::feed::{self, FeedQuery};
use edge_authz_protocol::PushAnswer;

/// Tenants an isolate keeps decoded at once; past it, the least recently used one is dropped.
const MAX_TENANTS: usize = 32;

/// One tenant in this isolate: the replica that follows the tenant's authority, and counts.
pub struct Edge {
    pub replica: Replica,
    pub allowed: u64,
    pub denied: u64,
    /// Token signature verdicts of this isolate (`POST /authorize`): a token verified once is
    /// not verified again; the held state decides every check.
    pub verdicts: edge_authz::token::Verdicts,
    /// The held state's digest and its hex, for the decision logs: the index keeps its digest
    /// once computed, and the hex is written again only when the state changes.
    digest: Option<([u8; 32], String)>,
    last_used: f64,
}

/// The isolate's clock (ms), as the core takes it.
pub fn clock_ms(now_ms: f64) -> u64 {
    now_ms.max(0.0) as u64
}

impl Edge {
    pub fn ev(&self) -> &Evaluator {
        self.replica.evaluator()
    }

    /// The held state's content digest (hex), `None` when nothing is held.
    pub fn digest(&mut self) -> Option<&str> {
        let held = self.ev().index()?.digest();
        if self.digest.as_ref().map(|(d, _)| d) != Some(&held) {
            let hex = held.iter().map(|b| format!("{b:02x}")).collect();
            self.digest = Some((held, hex));
        }
        self.digest.as_ref().map(|(_, hex)| hex.as_str())
    }

    /// A push this isolate relayed and the authority accepted (`answer`, its JSON): enforced
    /// here before the 200 goes out (the answered watermark guards every decision and none
    /// reuses a confirmation), applied to this isolate's evaluator once the answer is out
    /// ([`settle_all`]) or before this tenant's next request, whichever comes first
    /// ([`Replica::relayed`]).
    pub fn relayed(&mut self, message: Vec<u8>, answer: &str, now_ms: f64) {
        let answered = serde_json::from_str::<PushAnswer>(answer)
            .ok()
            .map(|a| a.head());
        self.replica.relayed(message, answered, clock_ms(now_ms));
    }

    /// Applies the relayed pushes kept unapplied ([`Replica::settle`]).
    fn settle(&mut self) {
        if !self.replica.unsettled() {
            return;
        }
        if let Err(e) = self.replica.settle() {
            worker::console_warn!(
                "edge-authz: tenant {}: a relayed message does not apply here yet: {e}",
                self.ev().tenant()
            );
        }
    }
}

/// Whether any tenant of this isolate keeps relayed pushes unapplied.
pub fn any_unsettled() -> bool {
    EDGES.with(|edges| {
        edges
            .borrow()
            .values()
            .any(|e| e.try_borrow().is_ok_and(|e| e.replica.unsettled()))
    })
}

/// Applies the relayed pushes every tenant of this isolate keeps unapplied (one in use by a
/// request is settled by that request's next access).
pub fn settle_all() {
    EDGES.with(|edges| {
        for e in edges.borrow().values() {
            if let Ok(mut e) = e.try_borrow_mut() {
                e.settle();
            }
        }
    });
}

thread_local! {
    static EDGES: RefCell<HashMap<String, Rc<RefCell<Edge>>>> = RefCell::new(HashMap::new());
}

/// This isolate's state for `tenant`, created empty on first use.
pub fn edge(tenant: &str, config: &Config, now_ms: f64) -> Result<Rc<RefCell<Edge>>, ApiError> {
    EDGES.with(|edges| {
        let mut edges = edges.borrow_mut();
        if let Some(e) = edges.get(tenant) {
            let mut held = e.borrow_mut();
            held.last_used = now_ms;
            // Relayed pushes apply before anything this request reads.
            held.settle();
            drop(held);
            return Ok(e.clone());
        }
        let ev = evaluator(tenant, config)?;
        if edges.len() >= MAX_TENANTS {
            let oldest = edges
                .iter()
                .min_by(|a, b| a.1.borrow().last_used.total_cmp(&b.1.borrow().last_used))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                edges.remove(&k);
            }
        }
        let e = Rc::new(RefCell::new(Edge {
            replica: Replica::new(ev),
            allowed: 0,
            denied: 0,
            verdicts: Default::default(),
            digest: None,
            last_used: now_ms,
        }));
        edges.insert(tenant.to_string(), e.clone());
        Ok(e)
    })
}

fn evaluator(tenant: &str, config: &Config) -> Result<Evaluator, ApiError> {
    Evaluator::with_keys(tenant, config.public_keys()?)
        .map_err(|e| ApiError::new(500, "misconfigured", format!("tenant `{tenant}`: {e}")))
}

/// The tenant's Durable Object.
pub fn stub(env: &Env, tenant: &str) -> Result<worker::Stub, ApiError> {
    env.durable_object("AUTHORITY")
        .and_then(|ns| ns.id_from_name(tenant)?.get_stub())
        .map_err(|e| {
            worker::console_error!("edge-authz: durable object binding AUTHORITY: {e}");
            ApiError::new(500, "misconfigured", "the AUTHORITY binding is missing")
        })
}

/// Asks the authority for its head and the messages this isolate lacks, and applies them; when
/// what it holds does not lead there, starts again from the authority's snapshot.
pub async fn sync(
    env: &Env,
    tenant: &str,
    config: &Config,
    edge: &Rc<RefCell<Edge>>,
    now_ms: f64,
) -> Result<(), ApiError> {
    let started = clock_ms(now_ms);
    let held = edge.borrow().replica.held();
    let timeout = config.authority_timeout_ms;
    let body = within(timeout, fetch(env, tenant, Some(held))).await?;
    let answer = read(&body)?;
    let synced = edge
        .borrow_mut()
        .replica
        .catch_up(answer.head, answer.messages(), started);
    if synced == Synced::Reached {
        return Ok(());
    }
    let body = within(timeout, fetch(env, tenant, None)).await?;
    let answer = read(&body)?;
    let fresh = evaluator(tenant, config)?;
    match edge.borrow_mut().replica.restart(
        fresh,
        answer.head,
        answer.messages(),
        started,
        answer.more,
    ) {
        Synced::Reached => Ok(()),
        // The authority's answers to its isolates are not cut (no size limit on `/sync`).
        Synced::Behind | Synced::Partly => Err(ApiError::unavailable(
            "this edge could not reach the authority's epoch",
        )),
    }
}

/// `f`, or `authority_unavailable` once `ms` have passed without its answer.
async fn within<T>(
    ms: u64,
    f: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    use futures_util::future::{select, Either};
    let delay = worker::Delay::from(core::time::Duration::from_millis(ms));
    match select(std::pin::pin!(f), delay).await {
        Either::Left((out, _)) => out,
        Either::Right(_) => Err(ApiError::unavailable(format!(
            "the authority did not answer within {ms} ms"
        ))),
    }
}

/// A feed answer, or `authority_unavailable` for bytes that are not one.
fn read(body: &[u8]) -> Result<feed::FeedAnswer<'_>, ApiError> {
    feed::decode(body)
        .ok_or_else(|| ApiError::unavailable("the authority's answer is not a feed answer"))
}

/// The authority's feed answer for a holder of `held` (`None`: everything from the snapshot).
async fn fetch(env: &Env, tenant: &str, held: Option<Head>) -> Result<Vec<u8>, ApiError> {
    let url = format!(
        "https://authority/sync?tenant={tenant}&{}",
        FeedQuery::of(held, 0).to_query()
    );
    let mut init = RequestInit::new();
    init.with_method(Method::Get);
    let req = Request::new_with_init(&url, &init)
        .map_err(|_| ApiError::unavailable("could not build the sync request"))?;
    let mut resp = stub(env, tenant)?
        .fetch_with_request(req)
        .await
        .map_err(|e| ApiError::unavailable(format!("the authority did not answer: {e}")))?;
    if resp.status_code() != 200 {
        let text = resp.text().await.unwrap_or_default();
        return Err(ApiError::unavailable(format!(
            "the authority answered {}: {}",
            resp.status_code(),
            text.chars().take(300).collect::<String>()
        )));
    }
    resp.bytes()
        .await
        .map_err(|_| ApiError::unavailable("the authority's answer could not be read"))
}
