//! What one isolate holds per tenant: a decoded evaluator reused across requests, the authority's
//! head as last confirmed, and when. [`sync`] brings it to the authority's head by replaying the
//! signed messages the Durable Object returns (each verified again here: the authority is
//! trusted for their order, never for their content).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use worker::{Env, Method, Request, RequestInit};

use super::http::{ApiError, Config};
use edge_authz::authority::{apply, Head};
use edge_authz::{Decision, Evaluator, Reason, Tier};

/// Tenants an isolate keeps decoded at once; past it, the least recently used one is dropped.
const MAX_TENANTS: usize = 32;

pub struct Edge {
    pub ev: Evaluator,
    /// The authority's head at the last successful sync.
    pub head: Option<Head>,
    /// When that sync happened (the isolate's clock, ms).
    pub confirmed_ms: Option<f64>,
    pub allowed: u64,
    pub denied: u64,
    /// When this isolate relayed a push that the authority accepted (the isolate's clock, ms, as
    /// the authority answered): until a sync that started after it confirms, every decision
    /// confirms, whatever the tier, so the isolate that took a change answers with it at once.
    /// (A sync that started before it may end after it, with the head from before the push:
    /// that one does not count.)
    pub pushed_at: Option<f64>,
    last_used: f64,
}

impl Edge {
    /// How long ago the watermark was last confirmed with the authority.
    pub fn confirmation_age(&self, now_ms: f64) -> Option<f64> {
        self.confirmed_ms.map(|t| (now_ms - t).max(0.0))
    }

    /// Whether a decision of this tier may reuse the last confirmation. `high` never does, nor
    /// does a tier configured with a reuse of 0, nor any after this isolate relayed a push.
    pub fn may_reuse(&self, tier: Tier, reuse_ms: f64, now_ms: f64) -> bool {
        tier != Tier::High
            && self.pushed_at.is_none()
            && reuse_ms > 0.0
            && self
                .confirmation_age(now_ms)
                .is_some_and(|age| age <= reuse_ms)
    }

    /// Records a successful sync that started at `now_ms`. Syncs of concurrent requests may
    /// finish out of order: the head and the time only move forward.
    fn confirmed(&mut self, head: Head, now_ms: f64) {
        self.note_head(head);
        self.confirmed_ms = Some(self.confirmed_ms.map_or(now_ms, |t| t.max(now_ms)));
        if self.pushed_at.is_some_and(|p| now_ms > p) {
            self.pushed_at = None;
        }
    }

    /// A push this isolate relayed and the authority accepted (`answer`, its JSON): applied to
    /// this isolate's own evaluator before the 200 goes out, so that it never answers below a
    /// message it acknowledged, however slow the authority is afterwards. Should the message
    /// not apply here (this isolate is behind a delta's base), the watermark the authority
    /// answered still holds through [`Edge::guard`], and every decision confirms until a sync
    /// catches up.
    pub fn relayed(&mut self, message: &[u8], answer: &str, now_ms: f64) {
        self.ev.set_clock(Some(now_ms.max(0.0) as u64));
        if let Err(e) = apply(&mut self.ev, message) {
            worker::console_warn!(
                "edge-authz: tenant {}: a relayed message does not apply here yet: {e}",
                self.ev.tenant()
            );
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            epoch: Option<u64>,
            watermark: Option<u64>,
        }
        if let Ok(a) = serde_json::from_str::<Answer>(answer) {
            self.note_head(Head {
                epoch: a.epoch,
                watermark: a.watermark.unwrap_or(0),
                confirmed_at: None,
            });
        }
        self.pushed_at = Some(now_ms);
    }

    /// What the authority reported, kept only if it moves the known head forward.
    fn note_head(&mut self, head: Head) {
        self.head = Some(match self.head {
            Some(h) => Head {
                epoch: h.epoch.max(head.epoch),
                watermark: h.watermark.max(head.watermark),
                confirmed_at: h.confirmed_at.max(head.confirmed_at),
            },
            None => head,
        });
    }

    /// The last line of defence: an "allowed" from an epoch older than the watermark the
    /// authority reported becomes `stale_snapshot`, even if this evaluator has not taken that
    /// watermark (it always should have; this holds if it somehow has not).
    pub fn guard(&self, d: Decision) -> Decision {
        let wm = self.head.map_or(0, |h| h.watermark);
        if d.allowed && d.epoch.is_none_or(|e| e < wm) {
            Decision {
                allowed: false,
                reason: Reason::StaleSnapshot,
                grant: None,
                watermark: wm.max(d.watermark),
                ..d
            }
        } else {
            d
        }
    }
}

thread_local! {
    static EDGES: RefCell<HashMap<String, Rc<RefCell<Edge>>>> = RefCell::new(HashMap::new());
}

/// This isolate's state for `tenant`, created empty on first use.
pub fn edge(tenant: &str, config: &Config, now_ms: f64) -> Result<Rc<RefCell<Edge>>, ApiError> {
    EDGES.with(|edges| {
        let mut edges = edges.borrow_mut();
        if let Some(e) = edges.get(tenant) {
            e.borrow_mut().last_used = now_ms;
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
            ev,
            head: None,
            confirmed_ms: None,
            allowed: 0,
            denied: 0,
            pushed_at: None,
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

/// Asks the authority for its head and the messages this isolate lacks, and applies them.
pub async fn sync(
    env: &Env,
    tenant: &str,
    config: &Config,
    edge: &Rc<RefCell<Edge>>,
    now_ms: f64,
) -> Result<(), ApiError> {
    let held = {
        let e = edge.borrow();
        Head {
            epoch: e.ev.epoch(),
            watermark: e.ev.watermark(),
            confirmed_at: e.ev.confirmed_at(),
        }
    };
    let timeout = config.authority_timeout_ms;
    let (head, frames) = within(timeout, fetch(env, tenant, Some(held))).await?;
    let reached = {
        let mut e = edge.borrow_mut();
        e.ev.set_clock(Some(now_ms.max(0.0) as u64));
        replay(&mut e.ev, &frames);
        reaches(&e.ev, &head)
    };
    if !reached {
        // This isolate's state does not lead to the head (it was replaced by a new snapshot
        // history, or a message failed here): start again from the authority's snapshot.
        let (head2, frames) = within(timeout, fetch(env, tenant, None)).await?;
        let mut fresh = evaluator(tenant, config)?;
        fresh.set_clock(Some(now_ms.max(0.0) as u64));
        replay(&mut fresh, &frames);
        if !reaches(&fresh, &head2) {
            edge.borrow_mut().note_head(head2);
            return Err(ApiError::unavailable(
                "this edge could not reach the authority's epoch",
            ));
        }
        let mut e = edge.borrow_mut();
        e.ev = fresh;
        e.confirmed(head2, now_ms);
        return Ok(());
    }
    edge.borrow_mut().confirmed(head, now_ms);
    Ok(())
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

fn reaches(ev: &Evaluator, head: &Head) -> bool {
    ev.epoch() >= head.epoch && ev.watermark() >= head.watermark
}

/// Applies each message; one that fails (a replay racing another request's sync) is skipped,
/// and [`reaches`] decides whether the result is good enough.
fn replay(ev: &mut Evaluator, frames: &[u8]) {
    let mut rest = frames;
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        let Some((msg, tail)) = tail.split_at_checked(len) else {
            return;
        };
        let _ = apply(ev, msg);
        rest = tail;
    }
}

async fn fetch(env: &Env, tenant: &str, held: Option<Head>) -> Result<(Head, Vec<u8>), ApiError> {
    let mut url = format!("https://authority/sync?tenant={tenant}");
    if let Some(h) = held {
        if let Some(e) = h.epoch {
            url.push_str(&format!("&epoch={e}"));
        }
        url.push_str(&format!("&watermark={}", h.watermark));
        if let Some(c) = h.confirmed_at {
            url.push_str(&format!("&confirmed={c}"));
        }
    }
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
    let head: Head = resp
        .headers()
        .get("x-head")
        .ok()
        .flatten()
        .and_then(|h| serde_json::from_str(&h).ok())
        .ok_or_else(|| ApiError::unavailable("the authority's answer has no head"))?;
    let bytes = resp
        .bytes()
        .await
        .map_err(|_| ApiError::unavailable("the authority's answer could not be read"))?;
    Ok((head, bytes))
}
