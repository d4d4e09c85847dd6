//! The tenant authority's state machine, pure (the Worker's Durable Object persists it;
//! docs/worker.md, "Where the state lives").
//!
//! The authority is the one place that decides a tenant's epoch, watermark and `confirmed_at`.
//! It verifies and applies every pushed message with a ledger [`Evaluator`] of its own (the
//! content checked, no index: see [`Evaluator::ledger`]), and keeps the
//! signed messages an isolate needs to reach the same state: the last snapshot, then every delta
//! (bare, or carried by a watermark) applied after it, in order (the *log*), plus the watermark
//! message that set the current watermark and the latest one (heartbeats move `confirmed_at`).
//! Isolates replay those messages into their own evaluators, which verify the signatures again:
//! the authority is trusted for ordering, never for content.

pub use crate::sync::Head;
use crate::{Applied, Error, Evaluator, MessageKind, PublicKey, WatermarkApplied};

/// What one pushed message did, whatever its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    Snapshot(Applied),
    Delta(Applied),
    Watermark(WatermarkApplied),
}

/// Applies one signed message of any kind to an evaluator (the kind is read from its prefix).
/// A message that is not an edge-authz message is rejected as `bad_magic` without being decoded.
pub fn apply(ev: &mut Evaluator, bytes: &[u8]) -> Result<Pushed, Error> {
    match MessageKind::of(bytes) {
        Some(MessageKind::Snapshot) => ev.load_snapshot(bytes).map(Pushed::Snapshot),
        Some(MessageKind::Delta) => ev.apply_delta(bytes).map(Pushed::Delta),
        Some(MessageKind::Watermark) => ev.apply_watermark(bytes).map(Pushed::Watermark),
        None => Err(Error::BadMagic),
    }
}

/// What an edge that the origin pushes to does with a pushed message, as the authority does it
/// (the Worker's answers): [`apply`], but a snapshot of the epoch already held is refused
/// (`already_applied` with the same content, `epoch_conflict` with another).
pub fn receive(ev: &mut Evaluator, bytes: &[u8]) -> Result<Pushed, Error> {
    match MessageKind::of(bytes) {
        Some(MessageKind::Snapshot) => ev.load_newer_snapshot(bytes).map(Pushed::Snapshot),
        _ => apply(ev, bytes),
    }
}

/// One tenant's authority: its evaluator and the messages that rebuild its state.
pub struct Authority {
    ev: Evaluator,
    /// The snapshot, then the deltas and delta-carrying watermarks applied after it, each with
    /// the epoch it reached.
    log: Vec<(u64, Vec<u8>)>,
    /// The watermark message that raised the watermark to its current value.
    raised_by: Option<Vec<u8>>,
    /// The applied watermark message with the largest `issued_at` (the latest heartbeat).
    latest: Option<(u64, Vec<u8>)>,
}

impl Authority {
    pub fn new(tenant: &str, keys: Vec<PublicKey>) -> Result<Authority, Error> {
        Ok(Authority {
            ev: Evaluator::ledger(tenant, keys)?,
            log: Vec::new(),
            raised_by: None,
            latest: None,
        })
    }

    pub fn head(&self) -> Head {
        Head::of(&self.ev)
    }

    /// Loads a snapshot newer than the held epoch, which replaces the log. One of the held epoch
    /// is refused (`already_applied` or `epoch_conflict`) and changes nothing.
    pub fn push_snapshot(&mut self, bytes: &[u8]) -> Result<Applied, Error> {
        let applied = self.ev.load_newer_snapshot(bytes)?;
        if applied.applied {
            self.log = vec![(applied.epoch, bytes.to_vec())];
        }
        self.note_confirmation(bytes);
        Ok(applied)
    }

    /// Applies a delta on top of the held epoch; an applied one joins the log.
    pub fn push_delta(&mut self, bytes: &[u8]) -> Result<Applied, Error> {
        let applied = self.ev.apply_delta(bytes)?;
        if applied.applied {
            self.log.push((applied.epoch, bytes.to_vec()));
        }
        self.note_confirmation(bytes);
        Ok(applied)
    }

    /// Applies a watermark (or heartbeat). One whose carried delta applied joins the log.
    pub fn push_watermark(&mut self, bytes: &[u8]) -> Result<WatermarkApplied, Error> {
        let before = self.ev.watermark();
        let epoch_before = self.ev.epoch();
        let applied = self.ev.apply_watermark(bytes)?;
        if self.ev.epoch() != epoch_before {
            if let Some(e) = self.ev.epoch() {
                self.log.push((e, bytes.to_vec()));
            }
        }
        if applied.watermark > before || self.raised_by.is_none() {
            self.raised_by = Some(bytes.to_vec());
        }
        self.note_confirmation(bytes);
        Ok(applied)
    }

    /// Sets the clock the next pushes are judged by (see [`Evaluator::set_clock`]).
    pub fn set_clock(&mut self, now: Option<u64>) {
        self.ev.set_clock(now);
    }

    /// Applies a message of any kind (see [`apply`]).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Pushed, Error> {
        match MessageKind::of(bytes) {
            Some(MessageKind::Snapshot) => self.push_snapshot(bytes).map(Pushed::Snapshot),
            Some(MessageKind::Delta) => self.push_delta(bytes).map(Pushed::Delta),
            Some(MessageKind::Watermark) => self.push_watermark(bytes).map(Pushed::Watermark),
            None => Err(Error::BadMagic),
        }
    }

    /// The authority's evaluator (status, limits).
    pub fn evaluator(&self) -> &Evaluator {
        &self.ev
    }

    /// The snapshot and the messages applied after it, each with the epoch it reached.
    pub fn log(&self) -> &[(u64, Vec<u8>)] {
        &self.log
    }

    /// The watermark message that raised the watermark to its current value.
    pub fn raised_by(&self) -> Option<&[u8]> {
        self.raised_by.as_deref()
    }

    /// The applied message with the largest `issued_at`.
    pub fn latest(&self) -> Option<&[u8]> {
        self.latest.as_ref().map(|(_, b)| b.as_slice())
    }

    /// Rebuilds an authority from what [`Authority::log`], [`Authority::raised_by`] and
    /// [`Authority::latest`] returned, by pushing the messages again (so every signature is
    /// verified again). It reaches the same head as the authority they came from.
    pub fn restore<'a>(
        tenant: &str,
        keys: Vec<PublicKey>,
        messages: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Authority, Error> {
        let mut authority = Authority::new(tenant, keys)?;
        let mut seen: Vec<&[u8]> = Vec::new();
        for bytes in messages {
            // The stored watermark and latest messages may also be in the log.
            if !seen.contains(&bytes) {
                authority.push(bytes)?;
                seen.push(bytes);
            }
        }
        Ok(authority)
    }

    /// Keeps the message with the largest `issued_at` seen so far (it sets `confirmed_at`).
    fn note_confirmation(&mut self, bytes: &[u8]) {
        if let Some(at) = self.ev.confirmed_at() {
            if self.latest.as_ref().is_none_or(|(t, _)| at > *t) {
                self.latest = Some((at, bytes.to_vec()));
            }
        }
    }

    /// The signed messages that bring an evaluator holding `holder` (its epoch, watermark and
    /// `confirmed_at`; `None`: a new evaluator) to the authority's head, in order. An isolate
    /// applies them in turn; each is verified again there.
    ///
    /// The log after the holder's epoch (all of it when that epoch is not in the log), and the
    /// watermark and latest messages when the holder lacks what they set. Those two go *first*
    /// when the suffix does not hold them: when they are not in the log at all, a delta they
    /// carry was not applied by the authority
    /// (a gap when they arrived), so they must reach the holder before the log moves it to the
    /// delta's base epoch, or the holder would apply the delta that the authority did not and
    /// get ahead of it. For the same reason they are not sent again to a holder that has taken
    /// them.
    pub fn catch_up(&self, holder: Option<Head>) -> Vec<&[u8]> {
        let start = match holder.and_then(|h| h.epoch) {
            Some(e) => match self.log.iter().position(|(epoch, _)| *epoch == e) {
                Some(i) => i + 1,
                None => 0,
            },
            None => 0,
        };
        let head = self.head();
        let wants_watermark = holder.is_none_or(|h| h.watermark < head.watermark);
        let wants_confirmation = holder.is_none_or(|h| h.confirmed_at < head.confirmed_at);
        let suffix = self.log.get(start..).unwrap_or(&[]);
        // Sent with the suffix anyway. One earlier in the log than the holder's epoch is sent
        // again when the holder lacks what it set: a snapshot re-pushed to an authority that
        // lost its store is the latest confirmation of an epoch the holder already has.
        let in_suffix = |m: &[u8]| suffix.iter().any(|(_, b)| b.as_slice() == m);
        let mut out: Vec<&[u8]> = Vec::with_capacity(suffix.len() + 2);
        for (wanted, extra) in [
            (wants_watermark, self.raised_by.as_deref()),
            (
                wants_confirmation,
                self.latest.as_ref().map(|(_, b)| b.as_slice()),
            ),
        ] {
            if let Some(m) = extra.filter(|m| wanted && !in_suffix(m) && !out.contains(m)) {
                out.push(m);
            }
        }
        out.extend(suffix.iter().map(|(_, b)| b.as_slice()));
        out
    }
}
