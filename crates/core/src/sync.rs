//! How a replica follows its authority (docs/worker.md, "Freshness per tier"): the policy
//! that decides, per decision, whether the last confirmation of the watermark may be reused,
//! how a sync's answer is replayed and judged, and the last guard on every answer. Pure: the
//! host (a Worker isolate, a Node service) does the I/O and passes its clock in, in ms.
//!
//! A replica holds a signed [`Evaluator`], the authority's [`Head`] as last reported, and when
//! it last confirmed that head. The authority is trusted for the order of the messages it
//! returns, never for their content: every message is verified again by the replica's
//! evaluator.

use crate::authority::apply;
use crate::{Decision, Evaluator, Reason, Tier};

/// Where an authority stands (or what a holder holds): its epoch (`None`: no snapshot), its
/// watermark and its `confirmed_at`. Replicas and publishers compare theirs with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub epoch: Option<u64>,
    pub watermark: u64,
    pub confirmed_at: Option<u64>,
}

impl Head {
    /// What `ev` holds.
    pub fn of(ev: &Evaluator) -> Head {
        Head {
            epoch: ev.epoch(),
            watermark: ev.watermark(),
            confirmed_at: ev.confirmed_at(),
        }
    }

    /// Each field the larger of the two (heads only move forward).
    pub fn max(self, other: Head) -> Head {
        Head {
            epoch: self.epoch.max(other.epoch),
            watermark: self.watermark.max(other.watermark),
            confirmed_at: self.confirmed_at.max(other.confirmed_at),
        }
    }
}

/// Whether `ev` has reached `head`: its epoch and its watermark at least the head's.
pub fn reaches(ev: &Evaluator, head: &Head) -> bool {
    ev.epoch() >= head.epoch && ev.watermark() >= head.watermark
}

/// Applies each message in order; one that fails (a replay racing another sync, a message this
/// evaluator already holds) is skipped, and [`reaches`] judges the result.
pub fn replay<'m>(ev: &mut Evaluator, messages: impl IntoIterator<Item = &'m [u8]>) {
    for m in messages {
        let _ = apply(ev, m);
    }
}

/// One replica: a signed evaluator that follows an authority.
pub struct Replica {
    ev: Evaluator,
    /// The authority's head at the last successful sync, or as a relayed push answered.
    head: Option<Head>,
    /// When the last successful sync started (the host's clock, ms).
    confirmed_ms: Option<u64>,
    /// When this replica relayed a push that the authority accepted (the host's clock, ms):
    /// until a sync that started after it confirms, no decision reuses a confirmation, whatever
    /// its tier, so the replica that took a change answers with it at once. (A sync that
    /// started before it may end after it, with the head from before the push: that one does
    /// not count.)
    pushed_at: Option<u64>,
    /// Pushes relayed and not yet applied here, each with the host's clock when it was relayed
    /// (see [`Replica::relayed`]), in order.
    relayed: Vec<(Vec<u8>, u64)>,
}

/// Relayed pushes kept unapplied at most; one more applies them first.
const MAX_RELAYED: usize = 16;

/// What a sync's messages did to a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// The replica reached the authority's head; the confirmation is recorded.
    Reached,
    /// The replica's state does not lead to the head (a new snapshot history, or a message
    /// that does not apply here): the host starts again from the authority's snapshot with a
    /// new evaluator ([`Replica::restart`]).
    Behind,
    /// A restart from an answer that stopped at its size limit: the replica took the part it
    /// was given (it leads further than what it held) and asks again from there, as after
    /// [`Replica::catch_up`]; no confirmation is recorded until it reaches the head.
    Partly,
}

impl Replica {
    pub fn new(ev: Evaluator) -> Replica {
        Replica {
            ev,
            head: None,
            confirmed_ms: None,
            pushed_at: None,
            relayed: Vec::new(),
        }
    }

    pub fn evaluator(&self) -> &Evaluator {
        &self.ev
    }

    pub fn evaluator_mut(&mut self) -> &mut Evaluator {
        &mut self.ev
    }

    /// The authority's head as last known (the largest reported).
    pub fn head(&self) -> Option<Head> {
        self.head
    }

    /// What this replica holds, as it tells the authority when it asks for what it lacks.
    pub fn held(&self) -> Head {
        Head::of(&self.ev)
    }

    /// Whether a sync ever succeeded.
    pub fn ever_confirmed(&self) -> bool {
        self.confirmed_ms.is_some()
    }

    /// How long ago (ms) the watermark was last confirmed with the authority.
    pub fn confirmation_age(&self, now_ms: u64) -> Option<u64> {
        self.confirmed_ms.map(|t| now_ms.saturating_sub(t))
    }

    /// Whether a decision of this tier may reuse the last confirmation for `reuse_ms`. `high`
    /// never does, nor does a tier configured with a reuse of 0, nor any after this replica
    /// relayed a push that no later sync has confirmed.
    pub fn may_reuse(&self, tier: Tier, reuse_ms: u64, now_ms: u64) -> bool {
        tier != Tier::High
            && self.pushed_at.is_none()
            && reuse_ms > 0
            && self
                .confirmation_age(now_ms)
                .is_some_and(|age| age <= reuse_ms)
    }

    /// Whether a decision of this tier (needing at least `at_least_epoch`, if any) must wait
    /// for a sync with the authority first: when it may not reuse the last confirmation
    /// ([`Replica::may_reuse`]); when it needs an epoch this replica does not hold (read your
    /// writes: the authority may have it); or when what it holds is past the tier's freshness
    /// bound (the authority may have heard from the origin since: a reuse window longer than a
    /// bound must not turn a fresh authority's answer into `freshness_exceeded`).
    pub fn must_confirm(
        &self,
        tier: Tier,
        reuse_ms: u64,
        at_least_epoch: Option<u64>,
        now_ms: u64,
    ) -> bool {
        !self.may_reuse(tier, reuse_ms, now_ms)
            || at_least_epoch.is_some_and(|n| self.ev.epoch().is_none_or(|held| held < n))
            || !self.ev.is_fresh_for(tier, now_ms)
    }

    /// The tier a decision about `action` is confirmed at: the action's, `high` for an action
    /// the held state does not declare (or when nothing is held).
    pub fn tier_of(&self, action: &str) -> Tier {
        self.ev.action_tier(action).unwrap_or(Tier::High)
    }

    /// The authority's answer to a sync that started at `started_ms`: `messages` (what this
    /// replica lacked, in order) are replayed, judged at the host's clock, and the head and
    /// the confirmation are recorded when they reach `head`.
    pub fn catch_up<'m>(
        &mut self,
        head: Head,
        messages: impl IntoIterator<Item = &'m [u8]>,
        started_ms: u64,
    ) -> Synced {
        // What was relayed here first: the authority's answer may have been read before it.
        let _ = self.settle();
        self.ev.set_clock(Some(started_ms));
        replay(&mut self.ev, messages);
        if reaches(&self.ev, &head) {
            self.confirmed(head, started_ms);
            Synced::Reached
        } else {
            Synced::Behind
        }
    }

    /// Starts again from `fresh` (a new evaluator of the same tenant and keys) and the
    /// authority's messages from its snapshot on. When they do not reach `head` either, the
    /// replica notes the head (so its guard holds the watermark) and keeps what it held
    /// ([`Synced::Behind`]), unless the answer was cut at its size limit (`cut`) and what the
    /// messages built holds a later epoch than this replica: then it takes that and goes on
    /// from there ([`Synced::Partly`]), so that a log longer than one answer can be followed.
    pub fn restart<'m>(
        &mut self,
        mut fresh: Evaluator,
        head: Head,
        messages: impl IntoIterator<Item = &'m [u8]>,
        started_ms: u64,
        cut: bool,
    ) -> Synced {
        fresh.set_clock(Some(started_ms));
        replay(&mut fresh, messages);
        if !reaches(&fresh, &head) {
            self.note_head(head);
            if cut && fresh.epoch() > self.ev.epoch() {
                self.ev = fresh;
                let _ = self.settle();
                return Synced::Partly;
            }
            return Synced::Behind;
        }
        self.ev = fresh;
        // A push relayed after the authority answered is not in its messages: it goes on top
        // (one the answer held fails harmlessly, as in a replay).
        let _ = self.settle();
        self.confirmed(head, started_ms);
        Synced::Reached
    }

    /// Records a successful sync that started at `started_ms`. Syncs of concurrent requests
    /// may finish out of order: the head and the time only move forward.
    fn confirmed(&mut self, head: Head, started_ms: u64) {
        self.note_head(head);
        self.confirmed_ms = Some(self.confirmed_ms.map_or(started_ms, |t| t.max(started_ms)));
        if self.pushed_at.is_some_and(|p| started_ms > p) {
            self.pushed_at = None;
        }
    }

    /// A push this replica relayed and the authority accepted, with the head its answer
    /// reported (`answered`). The head is noted at once: from now on the guard holds the
    /// answered watermark ([`Replica::guard`]) and no decision reuses a confirmation until a
    /// sync that started after now confirms ([`Replica::may_reuse`]), so a revocation is
    /// enforced here before the host acknowledges it. The message itself is kept, to be applied
    /// to this replica's own evaluator by [`Replica::settle`], which the host calls before it
    /// next decides (and may call as soon as its acknowledgement has gone out): applying a
    /// delta rebuilds the index, the one cost of a push that grows with the tenant, and it
    /// need not delay the acknowledgement. A sync applies what is kept before its messages.
    pub fn relayed(&mut self, message: Vec<u8>, answered: Option<Head>, now_ms: u64) {
        if let Some(h) = answered {
            self.note_head(h);
        }
        self.pushed_at = Some(now_ms);
        if self.relayed.len() >= MAX_RELAYED {
            let _ = self.settle();
        }
        self.relayed.push((message, now_ms));
    }

    /// Applies the relayed pushes kept unapplied, in order, each judged at the clock it was
    /// relayed at. The first error, for the host's log: a message that does not apply here
    /// (this replica is behind a delta's base) is dropped, and its watermark still holds through
    /// the guard until a sync catches up.
    pub fn settle(&mut self) -> Result<(), crate::Error> {
        let mut first = Ok(());
        for (message, at) in std::mem::take(&mut self.relayed) {
            self.ev.set_clock(Some(at));
            if let Err(e) = apply(&mut self.ev, &message) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Whether relayed pushes wait for [`Replica::settle`].
    pub fn unsettled(&self) -> bool {
        !self.relayed.is_empty()
    }

    /// What the authority reported, kept only where it moves the known head forward.
    pub fn note_head(&mut self, head: Head) {
        self.head = Some(self.head.map_or(head, |h| h.max(head)));
    }

    /// The authority's watermark as last reported (0 when none was).
    pub fn known_watermark(&self) -> u64 {
        self.head.map_or(0, |h| h.watermark)
    }

    /// The last line of defence: an "allowed" from an epoch older than the watermark the
    /// authority reported becomes `stale_snapshot`, even if this evaluator has not taken that
    /// watermark (it always should have; this holds if it somehow has not).
    pub fn guard(&self, d: Decision) -> Decision {
        let wm = self.known_watermark();
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

    /// Whether a listing must be refused as stale: the evaluator holds an epoch below the
    /// watermark the authority reported without having taken that watermark itself (the
    /// evaluator refuses a stale state on its own once it holds the watermark).
    pub fn stale_for_listing(&self) -> bool {
        let wm = self.known_watermark();
        self.ev.watermark() < wm && self.ev.epoch().is_some_and(|ep| ep < wm)
    }
}
