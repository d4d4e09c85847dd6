//! The evaluator's state machine: what it holds (one indexed snapshot, the watermark,
//! `confirmed_at`), how signed messages move it, and the decision gates 1 to 5 in front of the
//! index's gates 7 to 12. Every method that can fail builds the new state aside and commits it only
//! when nothing failed, so a rejected message leaves the evaluator exactly as it was.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::condition::{Conditions, Context};
use crate::content::Content;
use crate::digest::hex;
use crate::id::{is_valid_action_name, is_valid_id};
use crate::index::Index;
use crate::keys::PublicKey;
use crate::state::{ById, Freshness};
use crate::wire::{
    decode_exact, digest_bytes, parse, DeltaPayload, Limits, MessageKind, SnapshotPayload,
    WatermarkPayload,
};
use crate::{Decision, DecisionView, Error, Reason, State, Tier};

/// A decided token check: the decision, the token's subject once it passed gate 6, and what was
/// wrong when gate 6 refused it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenDecision {
    pub decision: Decision,
    pub subject: Option<String>,
    pub fault: Option<crate::token::Fault>,
}

/// What [`Evaluator::check_token`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenAnswer {
    Decided(TokenDecision),
    /// The verifier could not say whether the signature verifies: verify `signature` over
    /// `message` with `key` (JWK JSON) by `alg`, tell the verifier, and check again.
    Verify {
        alg: crate::Alg,
        key: String,
        message: Vec<u8>,
        signature: Vec<u8>,
    },
}

/// A request's fields looked up in one index ([`Evaluator::look_up_field`]): the subject's, action's
/// and resource's ids (`None`: a name the index does not hold), whether the action's name is
/// well formed, and whether the subject's and the resource's are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Looked {
    pub ids: [Option<u32>; 3],
    pub action_ok: bool,
    pub ids_ok: bool,
}

/// A request: subject, action, resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub subject: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
}

impl<'a> Request<'a> {
    pub fn new(subject: &'a str, action: &'a str, resource: &'a str) -> Self {
        Request {
            subject,
            action,
            resource,
        }
    }
}

/// What an evaluator is, and what it holds. Each constructor makes one kind and nothing turns an
/// evaluator into another, so a preview takes no signed message, a ledger holds no index, and a
/// signed evaluator always has keys.
enum Mode {
    /// [`Evaluator::new`], [`Evaluator::with_keys`]: takes messages signed by one of `keys` and
    /// answers checks from the index of the state it holds.
    Edge {
        keys: Vec<PublicKey>,
        held: Option<Held<Index>>,
    },
    /// [`Evaluator::ledger`]: takes the messages an edge takes, keeps only their content, and
    /// answers no check.
    Ledger {
        keys: Vec<PublicKey>,
        held: Option<Held<LedgerState>>,
    },
    /// [`Evaluator::preview`]: one compiled state, unsigned, at epoch 0; takes no message and
    /// skips gates 3 to 5 (docs/decisions.md, "Previews").
    Preview { index: Index },
}

/// A state taken from a signed message, at its epoch.
struct Held<T> {
    epoch: u64,
    state: T,
}

/// What a ledger holds of a state: its content, checked in full (its index was built, then
/// dropped), and its digest.
struct LedgerState {
    content: Content,
    digest: [u8; 32],
}

impl Mode {
    /// The trusted keys (none in a preview).
    fn keys(&self) -> &[PublicKey] {
        match self {
            Mode::Edge { keys, .. } | Mode::Ledger { keys, .. } => keys,
            Mode::Preview { .. } => &[],
        }
    }

    /// The epoch of the state held (a preview's is 0).
    fn epoch(&self) -> Option<u64> {
        match self {
            Mode::Edge { held, .. } => held.as_ref().map(|h| h.epoch),
            Mode::Ledger { held, .. } => held.as_ref().map(|h| h.epoch),
            Mode::Preview { .. } => Some(0),
        }
    }

    /// The content digest of the state held.
    fn digest(&self) -> Option<[u8; 32]> {
        match self {
            Mode::Edge { held, .. } => held.as_ref().map(|h| h.state.digest()),
            Mode::Ledger { held, .. } => held.as_ref().map(|h| h.state.digest),
            Mode::Preview { index } => Some(index.digest()),
        }
    }

    /// The epoch and the index that answer a check (a ledger has none).
    #[inline]
    fn answering(&self) -> Option<(u64, &Index)> {
        match self {
            Mode::Edge { held, .. } => held.as_ref().map(|h| (h.epoch, &h.state)),
            Mode::Preview { index } => Some((0, index)),
            Mode::Ledger { .. } => None,
        }
    }
}

/// What the gates of a delta decided (see [`Evaluator::delta_gates`]).
enum DeltaStep {
    /// The delta leads to the held epoch and content: nothing to apply.
    Held(u64),
    /// The delta applies to the held state; its result must have this digest.
    Apply([u8; 32]),
}

/// Table sizes of the loaded state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Counts {
    pub actions: usize,
    pub roles: usize,
    pub resources: usize,
    pub subjects: usize,
    pub members: usize,
    pub groups: usize,
    pub memberships: usize,
    pub assignments: usize,
    pub suspended: usize,
}

/// What an evaluator holds: the `status()` object of docs/decisions.md, "Status".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub tenant: String,
    pub epoch: Option<u64>,
    pub watermark: u64,
    pub confirmed_at: Option<u64>,
    /// True when a snapshot is loaded and its epoch is below the watermark (gate 3 fails).
    pub stale: bool,
    pub preview: bool,
    pub counts: Counts,
    /// Each declared action and its risk tier, sorted by name; empty when nothing is loaded.
    pub actions: BTreeMap<String, Tier>,
    pub digest: Option<String>,
    pub key_ids: Vec<String>,
    pub freshness: Option<Freshness>,
    /// Approximate heap bytes of the loaded state.
    pub heap_bytes: usize,
}

/// What happened to a delta that rode on a watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaOutcome {
    Applied,
    AlreadyApplied,
    /// Not applied (a gap, or the edge is ahead): the watermark still took effect, so the edge
    /// refuses to answer until it catches up.
    Skipped(Error),
}

/// The result of applying a watermark message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkApplied {
    pub watermark: u64,
    pub epoch: Option<u64>,
    pub delta: Option<DeltaOutcome>,
}

/// The result of loading a snapshot or applying a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub epoch: u64,
    /// False when the message was already applied (a replay: nothing changed).
    pub applied: bool,
}

/// How far in this host's future a message may be issued (see [`Evaluator::set_clock`]).
pub const MAX_CLOCK_SKEW_MS: u64 = 1_000;

/// The largest epoch a message may carry: the largest integer a JavaScript number holds exactly,
/// so that every host follows every epoch.
pub const MAX_EPOCH: u64 = (1 << 53) - 1;

/// The largest watermark a message may raise: half the epoch range. A watermark raised too far by
/// mistake still leaves the origin room to issue a snapshot at it and go on from there.
pub const MAX_WATERMARK: u64 = 1 << 52;

/// The context of a request that gives none.
static NO_CONTEXT: Context = Context::EMPTY;

/// When and from what a decision is made. The two times (Unix ms): the **clock** is the host's
/// own time, and it alone judges freshness (gate 5); **`now`** is the time at which assignment
/// expiry is evaluated: a request may name it (a what-if), but it never moves the clock, so no
/// caller makes an old state fresh. A bare `u64` converts into both (the command line's `--now`,
/// tests). And the epoch the request needs at least (`at_least_epoch`, read your writes): held
/// below it, the answer is `pending` (gate 4). And the request's attributes, which conditions
/// test (docs/model.md, "Conditions"); none by default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct At<'a> {
    pub clock: u64,
    pub now: u64,
    pub at_least_epoch: Option<u64>,
    pub context: &'a Context,
}

impl At<'static> {
    /// The host's clock, with `now` at the same time.
    pub fn clock(clock: u64) -> At<'static> {
        At {
            clock,
            now: clock,
            at_least_epoch: None,
            context: &NO_CONTEXT,
        }
    }
}

impl<'a> At<'a> {
    /// The request's attributes.
    pub fn with_context<'b>(self, context: &'b Context) -> At<'b> {
        At {
            clock: self.clock,
            now: self.now,
            at_least_epoch: self.at_least_epoch,
            context,
        }
    }

    /// `now` moved to the request's time when it names one; the clock stays.
    pub fn with_now(self, now: Option<u64>) -> At<'a> {
        At {
            now: now.unwrap_or(self.clock),
            ..self
        }
    }

    /// The epoch the request needs at least, if it names one.
    pub fn with_at_least_epoch(self, at_least_epoch: Option<u64>) -> At<'a> {
        At {
            at_least_epoch,
            ..self
        }
    }
}

impl From<u64> for At<'static> {
    fn from(clock: u64) -> At<'static> {
        At::clock(clock)
    }
}

/// Holds one tenant's authorization state and answers checks against it.
pub struct Evaluator {
    tenant: String,
    /// Its kind, its keys and the state it holds.
    mode: Mode,
    /// This host's clock, when set: messages issued past it by more than the tolerance are
    /// refused (see [`Evaluator::set_clock`]).
    clock: Option<u64>,
    watermark: u64,
    confirmed_at: Option<u64>,
    limits: Limits,
}

impl Evaluator {
    /// A signed evaluator for `tenant` trusting the given base64 Ed25519 public keys.
    pub fn new(tenant: &str, public_keys: &[&str]) -> Result<Evaluator, Error> {
        let keys = public_keys
            .iter()
            .map(|k| PublicKey::from_base64(k))
            .collect::<Result<Vec<_>, _>>()?;
        Self::with_keys(tenant, keys)
    }

    pub fn with_keys(tenant: &str, keys: Vec<PublicKey>) -> Result<Evaluator, Error> {
        Self::signed(tenant, keys, |keys| Mode::Edge { keys, held: None })
    }

    /// A *ledger*: a signed evaluator that takes and refuses exactly the messages
    /// [`Evaluator::new`] does (signatures, tenant, epochs, digests, the content checked in full:
    /// each state's index is built, so that closures, group nesting and the memory budget are
    /// checked too, and dropped), but keeps only the content: about a third of the memory. It
    /// answers no check (every one is `no_snapshot`). The Worker's Durable Object holds one.
    pub fn ledger(tenant: &str, keys: Vec<PublicKey>) -> Result<Evaluator, Error> {
        Self::signed(tenant, keys, |keys| Mode::Ledger { keys, held: None })
    }

    /// A signed evaluator of the kind `mode` makes of the keys, holding nothing yet.
    fn signed(
        tenant: &str,
        keys: Vec<PublicKey>,
        mode: impl FnOnce(Vec<PublicKey>) -> Mode,
    ) -> Result<Evaluator, Error> {
        if !crate::id::is_valid_tenant(tenant) {
            return Err(Error::InvalidArgument(format!(
                "tenant `{}` is not a valid tenant name",
                crate::state::shorten(tenant)
            )));
        }
        if keys.is_empty() {
            return Err(Error::InvalidArgument(
                "a signed evaluator needs at least one trusted public key".into(),
            ));
        }
        Ok(Evaluator {
            tenant: tenant.to_string(),
            mode: mode(keys),
            clock: None,
            watermark: 0,
            confirmed_at: None,
            limits: Limits::default(),
        })
    }

    /// An unsigned preview evaluator over a compiled state (epoch 0; no watermark, no freshness).
    pub fn preview(state: &State) -> Result<Evaluator, Error> {
        let limits = Limits::default();
        state.check_references(&ById)?;
        let index = Index::build(Content::from_state(state)?, &limits)?;
        Ok(Evaluator {
            tenant: state.tenant.clone(),
            mode: Mode::Preview { index },
            clock: None,
            watermark: 0,
            confirmed_at: None,
            limits,
        })
    }

    /// Tells the evaluator this host's clock (Unix ms) for the messages that follow: one issued
    /// more than [`MAX_CLOCK_SKEW_MS`] after it is refused (`clock_skew`) and changes nothing.
    /// Such a message would stretch every freshness bound by the skew: `confirmed_at` comes from
    /// the origin's clock, `now` from the edge's. A message issued in the past is taken (it only
    /// shortens what is left of the bounds: an edge fails closed sooner, never later). `None`
    /// (the default) checks nothing; the Worker's Durable Object sets it before every push.
    pub fn set_clock(&mut self, now: Option<u64>) {
        self.clock = now;
    }

    fn check_clock(&self, issued_at: u64) -> Result<(), Error> {
        match self.clock {
            Some(now) if issued_at > now.saturating_add(MAX_CLOCK_SKEW_MS) => {
                Err(Error::ClockSkew {
                    issued_at,
                    now,
                    ahead: issued_at - now,
                    tolerance: MAX_CLOCK_SKEW_MS,
                })
            }
            _ => Ok(()),
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn is_preview(&self) -> bool {
        matches!(self.mode, Mode::Preview { .. })
    }

    pub fn epoch(&self) -> Option<u64> {
        self.mode.epoch()
    }

    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    pub fn confirmed_at(&self) -> Option<u64> {
        self.confirmed_at
    }

    /// Whether a decision of `tier` at `clock` passes the freshness gate (gate 5) with what is
    /// held: false when nothing is held or the origin was last heard more than the tier's bound
    /// ago. A preview has no freshness gate.
    pub fn is_fresh_for(&self, tier: Tier, clock: u64) -> bool {
        if self.is_preview() {
            return true;
        }
        self.index().is_some_and(|ix| {
            clock.saturating_sub(self.confirmed_at.unwrap_or(0)) <= ix.freshness().bound(tier)
        })
    }

    /// The loaded index, if any.
    pub fn index(&self) -> Option<&Index> {
        self.mode.answering().map(|(_, ix)| ix)
    }

    fn check_tenant(&self, tenant: &str) -> Result<(), Error> {
        if tenant == self.tenant {
            Ok(())
        } else {
            Err(Error::TenantMismatch {
                expected: self.tenant.clone(),
                found: crate::state::shorten(tenant),
            })
        }
    }

    fn open<T: crate::unpack::Unpack>(&self, bytes: &[u8], kind: MessageKind) -> Result<T, Error> {
        if self.is_preview() {
            return Err(Error::PreviewMode);
        }
        let env = parse(bytes, &self.limits)?.expect(kind)?;
        env.verify(self.mode.keys())?;
        decode_exact(env.payload, kind.as_str())
    }

    fn confirm(&mut self, issued_at: u64) {
        self.confirmed_at = Some(self.confirmed_at.map_or(issued_at, |c| c.max(issued_at)));
    }

    fn build(&self, content: Content) -> Result<Index, Error> {
        Index::build(content, &self.limits).map_err(|e| Error::InvalidSnapshot(e.to_string()))
    }

    /// Loads a signed snapshot. An older epoch is a rollback; the same epoch with the same content
    /// is a no-op; the same epoch with other content is `epoch_conflict`.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<Applied, Error> {
        self.load_snapshot_with(bytes, false)
    }

    /// [`Evaluator::load_snapshot`], but a snapshot of the epoch already held is refused
    /// (`already_applied`, or `epoch_conflict` when its content differs) and changes nothing,
    /// not even `confirmed_at`: the Worker's `PUT snapshot` answers 409 for it.
    pub fn load_newer_snapshot(&mut self, bytes: &[u8]) -> Result<Applied, Error> {
        self.load_snapshot_with(bytes, true)
    }

    fn load_snapshot_with(&mut self, bytes: &[u8], newer_only: bool) -> Result<Applied, Error> {
        let p: SnapshotPayload = self.open(bytes, MessageKind::Snapshot)?;
        self.check_tenant(&p.tenant)?;
        self.check_clock(p.issued_at)?;
        if p.epoch == 0 {
            return Err(Error::InvalidSnapshot("epoch 0 is reserved".into()));
        }
        if p.epoch > MAX_EPOCH {
            return Err(Error::InvalidSnapshot(format!(
                "epoch {} is over the largest epoch, {MAX_EPOCH}",
                p.epoch
            )));
        }
        if let Some(held) = self.mode.epoch() {
            if p.epoch < held {
                return Err(Error::Rollback {
                    incoming: p.epoch,
                    held,
                });
            }
            if p.epoch == held {
                if Some(crate::digest::digest(&p.content)) != self.mode.digest() {
                    return Err(Error::EpochConflict(p.epoch));
                }
                if newer_only {
                    return Err(Error::AlreadyApplied(p.epoch));
                }
                self.confirm(p.issued_at);
                return Ok(Applied {
                    epoch: p.epoch,
                    applied: false,
                });
            }
        }
        let index = self.build(p.content)?;
        match &mut self.mode {
            Mode::Edge { held, .. } => {
                *held = Some(Held {
                    epoch: p.epoch,
                    state: index,
                });
            }
            Mode::Ledger { held, .. } => {
                // Built to be checked as an edge checks it (closures, nesting, the memory budget),
                // then taken down to its content.
                let content = index.into_content();
                let digest = crate::digest::digest(&content);
                *held = Some(Held {
                    epoch: p.epoch,
                    state: LedgerState { content, digest },
                });
            }
            // `open` refused the message.
            Mode::Preview { .. } => return Err(Error::PreviewMode),
        }
        self.confirm(p.issued_at);
        Ok(Applied {
            epoch: p.epoch,
            applied: true,
        })
    }

    /// Everything about a delta but its operations: tenant, clock, epochs, the held state and the
    /// size. Says whether there is anything to apply, and the digest the result must have.
    fn delta_gates(&self, p: &DeltaPayload) -> Result<DeltaStep, Error> {
        self.check_tenant(&p.tenant)?;
        self.check_clock(p.issued_at)?;
        if p.epoch <= p.base_epoch {
            return Err(Error::InvalidDelta(format!(
                "epoch {} is not after base epoch {}",
                p.epoch, p.base_epoch
            )));
        }
        if p.epoch > MAX_EPOCH {
            return Err(Error::InvalidDelta(format!(
                "epoch {} is over the largest epoch, {MAX_EPOCH}",
                p.epoch
            )));
        }
        let base_digest = digest_bytes(&p.base_digest, "delta")?;
        let digest = digest_bytes(&p.digest, "delta")?;
        // The held digest is read only where it is needed: an index computes it on first use.
        let Some(held) = self.mode.epoch() else {
            return Err(Error::EpochGap {
                base: p.base_epoch,
                held: None,
            });
        };
        if p.epoch < held {
            return Err(Error::Rollback {
                incoming: p.epoch,
                held,
            });
        }
        if p.epoch == held {
            return if Some(digest) == self.mode.digest() {
                Ok(DeltaStep::Held(held))
            } else {
                Err(Error::EpochConflict(p.epoch))
            };
        }
        if p.base_epoch != held {
            return Err(Error::EpochGap {
                base: p.base_epoch,
                held: Some(held),
            });
        }
        if Some(base_digest) != self.mode.digest() {
            return Err(Error::DigestMismatch(
                "the delta's base is not the held state",
            ));
        }
        if p.ops.total() > self.limits.max_entries {
            return Err(Error::LimitExceeded {
                what: "delta",
                count: p.ops.total(),
                limit: self.limits.max_entries,
            });
        }
        Ok(DeltaStep::Apply(digest))
    }

    /// Takes a delta's payload: its gates, then its operations applied to the state held, which
    /// the result replaces only when it is whole and has the signed digest. Moves `confirmed_at`
    /// to the delta's `issued_at` when it is taken (applied, or already held).
    fn take_delta(&mut self, p: &DeltaPayload) -> Result<Applied, Error> {
        let digest = match self.delta_gates(p)? {
            DeltaStep::Held(epoch) => {
                self.confirm(p.issued_at);
                return Ok(Applied {
                    epoch,
                    applied: false,
                });
            }
            DeltaStep::Apply(digest) => digest,
        };
        match &mut self.mode {
            Mode::Edge { held, .. } => patch_index(held, p, digest, &self.limits)?,
            Mode::Ledger { held, .. } => patch_ledger(held, p, digest, &self.limits)?,
            // `open` refused the message.
            Mode::Preview { .. } => return Err(Error::PreviewMode),
        }
        self.confirm(p.issued_at);
        Ok(Applied {
            epoch: p.epoch,
            applied: true,
        })
    }

    /// Applies a signed delta. Its `base_epoch` must be the held epoch (else `epoch_gap`); a delta
    /// to the held epoch with the held content is a no-op; an older target is a `rollback`.
    pub fn apply_delta(&mut self, bytes: &[u8]) -> Result<Applied, Error> {
        let p: DeltaPayload = self.open(bytes, MessageKind::Delta)?;
        self.take_delta(&p)
    }

    /// Applies a signed watermark message: the watermark only rises and `confirmed_at` moves to its
    /// `issued_at`. A carried delta is applied when the evaluator is exactly at its base; otherwise
    /// the watermark still takes effect (the edge fails closed until it catches up).
    pub fn apply_watermark(&mut self, bytes: &[u8]) -> Result<WatermarkApplied, Error> {
        let p: WatermarkPayload = self.open(bytes, MessageKind::Watermark)?;
        self.check_tenant(&p.tenant)?;
        self.check_clock(p.issued_at)?;
        if p.watermark > MAX_WATERMARK {
            return Err(Error::WatermarkTooHigh {
                watermark: p.watermark,
                limit: MAX_WATERMARK,
            });
        }
        let mut outcome = None;
        if let Some(inner) = &p.delta {
            let d: DeltaPayload = self.open(inner, MessageKind::Delta)?;
            self.check_tenant(&d.tenant)?;
            if d.epoch != p.watermark {
                return Err(Error::InvalidDelta(format!(
                    "the carried delta reaches epoch {}, the watermark is {}",
                    d.epoch, p.watermark
                )));
            }
            outcome = Some(match self.take_delta(&d) {
                Ok(Applied { applied: true, .. }) => DeltaOutcome::Applied,
                Ok(Applied { applied: false, .. }) => DeltaOutcome::AlreadyApplied,
                Err(e) => DeltaOutcome::Skipped(e),
            });
        }
        self.watermark = self.watermark.max(p.watermark);
        self.confirm(p.issued_at);
        Ok(WatermarkApplied {
            watermark: self.watermark,
            epoch: self.epoch(),
            delta: outcome,
        })
    }

    fn decision(&self, reason: Reason, epoch: Option<u64>, tier: Option<Tier>) -> Decision {
        Decision {
            allowed: false,
            reason,
            epoch,
            watermark: self.watermark,
            tier,
            grant: None,
            conditions: 0,
            missing: 0,
        }
    }

    /// The decision for a request whose context could not be read: `no_snapshot` when nothing is
    /// loaded (gate 1 comes first), else `invalid_request`.
    pub fn reject_request(&self) -> Decision {
        match self.epoch() {
            None => self.decision(Reason::NoSnapshot, None, None),
            Some(epoch) => self.decision(Reason::InvalidRequest, Some(epoch), None),
        }
    }

    /// The error for a listing whose context could not be read: `no_snapshot` when nothing is
    /// loaded (gate 1 comes first), else `invalid_request`.
    pub fn reject_list(&self) -> Error {
        Self::refuse(self.reject_request(), "anything")
    }

    /// Gates 2 to 5 once the ids are looked up (`None`: not in the snapshot).
    fn early_gates(
        &self,
        (epoch, ix): (u64, &Index),
        action_ok: bool,
        ids_ok: bool,
        tier: Option<Tier>,
        at: &At<'_>,
    ) -> Option<Reason> {
        if !action_ok || !ids_ok {
            return Some(Reason::InvalidRequest);
        }
        if self.is_preview() {
            return None;
        }
        if epoch < self.watermark {
            return Some(Reason::StaleSnapshot);
        }
        if at.at_least_epoch.is_some_and(|n| epoch < n) {
            return Some(Reason::Pending);
        }
        // An unknown action has no tier: hold it to the strictest bound.
        let bound = ix.freshness().bound(tier.unwrap_or(Tier::High));
        if at.clock.saturating_sub(self.confirmed_at.unwrap_or(0)) > bound {
            return Some(Reason::FreshnessExceeded);
        }
        None
    }

    /// Gates 1 to 5 and 7 shared by the listings: the loaded index and the action's id, or the
    /// decision that refuses.
    fn gates(
        &self,
        action: &str,
        at: &At<'_>,
        ids_ok: impl FnOnce(&Index) -> bool,
    ) -> Result<(&Index, u32), Decision> {
        let Some((epoch, ix)) = self.mode.answering() else {
            return Err(self.decision(Reason::NoSnapshot, None, None));
        };
        let a = ix.action(action);
        let tier = a.map(|a| ix.tier(a));
        let action_ok = a.is_some() || is_valid_action_name(action);
        if let Some(reason) = self.early_gates((epoch, ix), action_ok, ids_ok(ix), tier, at) {
            return Err(self.decision(reason, Some(epoch), tier));
        }
        match a {
            Some(a) => Ok((ix, a)),
            None => Err(self.decision(Reason::UnknownAction, Some(epoch), None)),
        }
    }

    #[inline]
    fn lookup(ix: &Index, req: &Request<'_>) -> Looked {
        let ids = [
            ix.subject(req.subject),
            ix.action(req.action),
            ix.resource(req.resource),
        ];
        Looked {
            action_ok: ids[1].is_some() || is_valid_action_name(req.action),
            ids_ok: (ids[0].is_some() || is_valid_id(req.subject))
                && (ids[2].is_some() || is_valid_id(req.resource)),
            ids,
        }
    }

    /// Every gate, for a request looked up in `ix` (the index of `epoch`).
    #[inline]
    fn decide(&self, (epoch, ix): (u64, &Index), looked: Looked, at: At<'_>) -> Decision {
        let [s, a, r] = looked.ids;
        let tier = a.map(|a| ix.tier(a));
        if let Some(reason) =
            self.early_gates((epoch, ix), looked.action_ok, looked.ids_ok, tier, &at)
        {
            return self.decision(reason, Some(epoch), tier);
        }
        let d = ix.decide_in(s, a, r, at.now, at.context);
        Decision {
            allowed: d.reason == Reason::Granted,
            reason: d.reason,
            epoch: Some(epoch),
            watermark: self.watermark,
            tier,
            grant: d.grant,
            conditions: d.conditions,
            missing: d.missing,
        }
    }

    /// The held index's serial number ([`Index::serial`]), when one answers.
    pub fn index_serial(&self) -> Option<u64> {
        self.mode.answering().map(|(_, ix)| ix.serial())
    }

    /// One field of a request looked up in the held index: its id, `Some(None)` for a
    /// well-formed name the index does not hold, `None` for a malformed one or when nothing
    /// answers. `kind`: 0 the subject, 1 the action, 2 the resource.
    pub fn look_up_field(&self, kind: u8, name: &str) -> Option<Option<u32>> {
        let (_, ix) = self.mode.answering()?;
        let id = ix.id_of(kind, name);
        let valid = if kind == 1 {
            is_valid_action_name
        } else {
            is_valid_id
        };
        (id.is_some() || valid(name)).then_some(id)
    }

    /// Decides a request looked up in the index numbered `serial`, as [`Evaluator::check`]
    /// decides its names; `None`, nothing decided, when that index is not held now (or an id
    /// is not one of its).
    pub fn check_looked<'c>(
        &self,
        serial: u64,
        looked: Looked,
        at: impl Into<At<'c>>,
    ) -> Option<Decision> {
        let (epoch, ix) = self.mode.answering()?;
        (ix.serial() == serial && ix.holds(looked.ids))
            .then(|| self.decide((epoch, ix), looked, at.into()))
    }

    /// The risk tier of a declared action of the loaded snapshot.
    pub fn action_tier(&self, action: &str) -> Option<Tier> {
        let ix = self.index()?;
        ix.action(action).map(|a| ix.tier(a))
    }

    /// Decides one request at the times `at` (the host's clock, and the request's `now`; a bare
    /// `u64` is both). Allocation-free.
    pub fn check<'c>(&self, req: Request<'_>, at: impl Into<At<'c>>) -> Decision {
        let at = at.into();
        match self.mode.answering() {
            None => self.decision(Reason::NoSnapshot, None, None),
            Some((epoch, ix)) => self.decide((epoch, ix), Self::lookup(ix, &req), at),
        }
    }

    /// Decides many requests at the same times, appending to `out`. Requests go through in blocks,
    /// stage by stage (look up the names of the whole block; read its records; read their first
    /// data; decide): the reads within a stage are independent of one another, so their cache
    /// misses overlap, where one check after another would wait for each miss in turn.
    pub fn check_many<'c>(
        &self,
        requests: &[Request<'_>],
        at: impl Into<At<'c>>,
        out: &mut Vec<Decision>,
    ) {
        let at = at.into();
        out.reserve(requests.len());
        let Some((epoch, ix)) = self.mode.answering() else {
            out.extend(
                requests
                    .iter()
                    .map(|_| self.decision(Reason::NoSnapshot, None, None)),
            );
            return;
        };
        self.staged((epoch, ix), requests, |req| Self::lookup(ix, req), at, out);
    }

    /// [`Evaluator::check_many`] for requests looked up in the index numbered `serial`: false,
    /// nothing decided, when that index is not held now (or an id is not one of its).
    pub fn check_many_looked<'c>(
        &self,
        serial: u64,
        requests: &[Looked],
        at: impl Into<At<'c>>,
        out: &mut Vec<Decision>,
    ) -> bool {
        let Some((epoch, ix)) = self.mode.answering() else {
            return false;
        };
        if ix.serial() != serial || !requests.iter().all(|l| ix.holds(l.ids)) {
            return false;
        }
        out.reserve(requests.len());
        self.staged((epoch, ix), requests, |l| *l, at.into(), out);
        true
    }

    /// Decides requests in blocks, stage by stage (look up the names of the whole block; read
    /// its records; read their first data; decide): the reads within a stage are independent
    /// of one another, so their cache misses overlap, where one check after another would wait
    /// for each miss in turn.
    #[inline]
    fn staged<T>(
        &self,
        (epoch, ix): (u64, &Index),
        requests: &[T],
        look: impl Fn(&T) -> Looked,
        at: At<'_>,
        out: &mut Vec<Decision>,
    ) {
        const BLOCK: usize = 32;
        let mut looked = [Looked::default(); BLOCK];
        let mut records = [(0, 0, 0); BLOCK];
        for block in requests.chunks(BLOCK) {
            for (l, req) in looked.iter_mut().zip(block) {
                *l = look(req);
            }
            let looked = looked.get(..block.len()).unwrap_or_default();
            for (a, l) in records.iter_mut().zip(looked) {
                *a = ix.warm_records(l.ids[0], l.ids[2]);
            }
            let sink = records
                .iter()
                .take(block.len())
                .fold(0, |acc, a| acc ^ ix.warm_data(*a));
            std::hint::black_box(sink);
            out.extend(looked.iter().map(|l| self.decide((epoch, ix), *l, at)));
        }
    }

    /// A decision with names: the grant's principal, role, resource and group path.
    pub fn explain(&self, d: &Decision) -> DecisionView<'_> {
        let ix = match self.mode.answering() {
            Some((epoch, ix)) if Some(epoch) == d.epoch => Some(ix),
            _ => None,
        };
        let grant = ix.zip(d.grant.as_ref()).and_then(|(ix, g)| ix.explain(g));
        let named = |mask: u64, f: fn(&Conditions, u64) -> Vec<&str>| {
            d.reason
                .is_conditional()
                .then(|| ix.map(|ix| f(ix.conditions(), mask)).unwrap_or_default())
        };
        DecisionView {
            allowed: d.allowed,
            reason: d.reason,
            epoch: d.epoch,
            watermark: d.watermark,
            tier: d.tier,
            grant,
            conditions: named(d.conditions, Conditions::names),
            missing: named(d.missing, Conditions::missing_attrs),
            subject: None,
            token_error: None,
        }
    }

    /// Decides a request that carries a token instead of a subject (docs/decisions.md, "Token
    /// checks"): gates 1 to 5 for the action and resource, then gate 6 admits the token
    /// (signature verified by `verify`, see [`crate::token::Verify`]), then the rest for the
    /// token's subject, with its mapped claims in place of the caller's attributes of the same
    /// names. Whatever `verify` says, the state decides: a key removed or a session revoked
    /// since is seen here.
    pub fn check_token(
        &self,
        token: &str,
        action: &str,
        resource: &str,
        at: At<'_>,
        verify: &mut dyn FnMut(&crate::token::Verify<'_>) -> Option<bool>,
    ) -> TokenAnswer {
        let done = |decision, subject, fault| {
            TokenAnswer::Decided(TokenDecision {
                decision,
                subject,
                fault,
            })
        };
        let Some((epoch, ix)) = self.mode.answering() else {
            return done(self.decision(Reason::NoSnapshot, None, None), None, None);
        };
        let a = ix.action(action);
        let tier = a.map(|a| ix.tier(a));
        let action_ok = a.is_some() || is_valid_action_name(action);
        let ids_ok = ix.resource(resource).is_some() || is_valid_id(resource);
        if let Some(reason) = self.early_gates((epoch, ix), action_ok, ids_ok, tier, &at) {
            return done(self.decision(reason, Some(epoch), tier), None, None);
        }
        let admitted = match ix.content().identity.admit(token, at.clock, verify) {
            crate::token::Admission::Admitted(a) => a,
            crate::token::Admission::Refused(f) => {
                return done(self.decision(f.reason(), Some(epoch), tier), None, Some(f))
            }
            crate::token::Admission::Verify {
                alg,
                key,
                message,
                signature,
            } => {
                return TokenAnswer::Verify {
                    alg,
                    key,
                    message,
                    signature,
                }
            }
        };
        let context = at.context.overridden(&admitted.mapped, admitted.attrs);
        let req = Request::new(&admitted.subject, action, resource);
        let d = self.decide(
            (epoch, ix),
            Self::lookup(ix, &req),
            at.with_context(&context),
        );
        done(d, Some(admitted.subject), None)
    }

    /// [`Evaluator::explain`] for a token check: with the token's subject or what was wrong.
    pub fn explain_token<'s>(&'s self, t: &'s TokenDecision) -> DecisionView<'s> {
        DecisionView {
            subject: t.subject.as_deref(),
            token_error: t.fault.map(crate::token::Fault::as_str),
            ..self.explain(&t.decision)
        }
    }

    fn refuse(d: Decision, what: &str) -> Error {
        Error::Refused {
            reason: d.reason,
            message: format!(
                "cannot list {what}: {}",
                d.reason.as_str().replace('_', " ")
            ),
        }
    }

    /// Resources (optionally of one type) on which `subject` may do `action`, sorted. Fails with
    /// the reason code when gates 1 to 5 or 7 refuse.
    pub fn list_resources<'c>(
        &self,
        subject: &str,
        action: &str,
        type_filter: Option<&str>,
        at: impl Into<At<'c>>,
    ) -> Result<Vec<String>, Error> {
        let at = at.into();
        let mut s = None;
        let type_ok = type_filter.is_none_or(|t| is_valid_id(&format!("{t}:x")));
        let (ix, a) = self
            .gates(action, &at, |ix| {
                s = ix.subject(subject);
                (s.is_some() || is_valid_id(subject)) && type_ok
            })
            .map_err(|d| Self::refuse(d, "resources"))?;
        match s {
            Some(s) if !ix.is_suspended(s) => Ok(ix
                .resources_for(s, a, type_filter, at.now, at.context)
                .into_iter()
                .map(str::to_string)
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// Members (not groups), not suspended, who may do `action` on `resource`, sorted.
    pub fn list_subjects<'c>(
        &self,
        resource: &str,
        action: &str,
        at: impl Into<At<'c>>,
    ) -> Result<Vec<String>, Error> {
        let at = at.into();
        let mut r = None;
        let (ix, a) = self
            .gates(action, &at, |ix| {
                r = ix.resource(resource);
                r.is_some() || is_valid_id(resource)
            })
            .map_err(|d| Self::refuse(d, "subjects"))?;
        match r {
            Some(r) => Ok(ix
                .subjects_for(r, a, at.now, at.context)
                .into_iter()
                .map(str::to_string)
                .collect()),
            None => Ok(Vec::new()),
        }
    }

    pub fn status(&self) -> Status {
        let ix = self.index();
        let counts = ix.map_or_else(Counts::default, |ix| {
            let c = ix.content();
            Counts {
                actions: c.actions.len(),
                roles: c.roles.len(),
                resources: c.resources.len(),
                subjects: c.subjects.len(),
                members: ix.members_count(),
                groups: c.subjects.len() - ix.members_count(),
                memberships: c.memberships.len(),
                assignments: c.assignments.len(),
                suspended: c.suspended.len(),
            }
        });
        Status {
            tenant: self.tenant.clone(),
            epoch: self.epoch(),
            watermark: self.watermark,
            confirmed_at: self.confirmed_at,
            stale: !self.is_preview() && self.epoch().is_some_and(|e| e < self.watermark),
            preview: self.is_preview(),
            counts,
            actions: ix.map_or_else(BTreeMap::new, |ix| {
                crate::state::map_of(
                    ix.content()
                        .actions
                        .iter()
                        .map(|(name, t)| (name.clone(), Tier::from_u8(*t).unwrap_or(Tier::High))),
                )
            }),
            digest: self.mode.digest().map(|d| hex(&d)),
            key_ids: self
                .mode
                .keys()
                .iter()
                .map(|k| k.id().to_string())
                .collect(),
            freshness: ix.map(Index::freshness),
            heap_bytes: ix.map_or(0, Index::heap_bytes),
        }
    }
}

/// An edge's delta, applied to the index in `held`, which the new state replaces. The held index
/// is taken down to its content while the new one is built (two whole indexes would be the
/// memory peak of a large tenant's delta); when the delta fails, it is built again from that
/// content, and `held` is as it was.
fn patch_index(
    held: &mut Option<Held<Index>>,
    p: &DeltaPayload,
    digest: [u8; 32],
    limits: &Limits,
) -> Result<(), Error> {
    let Some(Held {
        epoch: held_epoch,
        state: index,
    }) = held.take()
    else {
        return Err(Error::EpochGap {
            base: p.base_epoch,
            held: None,
        });
    };
    let held_digest = index.digest();
    let content = index.into_content();
    let built = crate::patch::apply(&content, &p.ops).and_then(|next| {
        let index = Index::build(next, limits).map_err(|e| Error::InvalidDelta(e.to_string()))?;
        if index.digest() == digest {
            Ok(index)
        } else {
            Err(mismatch())
        }
    });
    match built {
        Ok(index) => {
            *held = Some(Held {
                epoch: p.epoch,
                state: index,
            });
            Ok(())
        }
        Err(e) => {
            *held = Index::rebuild(content, held_digest).map(|index| Held {
                epoch: held_epoch,
                state: index,
            });
            Err(e)
        }
    }
}

/// A ledger's delta, applied to the content in `held`, which the new state replaces when it
/// builds (the checks an edge makes) and has the signed digest.
fn patch_ledger(
    held: &mut Option<Held<LedgerState>>,
    p: &DeltaPayload,
    digest: [u8; 32],
    limits: &Limits,
) -> Result<(), Error> {
    let Some(current) = held.as_ref() else {
        return Err(Error::EpochGap {
            base: p.base_epoch,
            held: None,
        });
    };
    let content = crate::patch::apply(&current.state.content, &p.ops)?;
    let content = Index::build(content, limits)
        .map_err(|e| Error::InvalidDelta(e.to_string()))?
        .into_content();
    if crate::digest::digest(&content) != digest {
        return Err(mismatch());
    }
    *held = Some(Held {
        epoch: p.epoch,
        state: LedgerState { content, digest },
    });
    Ok(())
}

fn mismatch() -> Error {
    Error::DigestMismatch("the delta's result differs from the signed digest")
}
