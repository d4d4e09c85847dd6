//! The origin's side, pure: compile a state into a signed snapshot, diff two states into a signed
//! delta, sign watermarks. `issued_at` comes in as an argument like every other time.

use serde_bytes::ByteBuf;

use crate::content::Content;
use crate::delta::{diff, DeltaOps};
use crate::digest::digest;
use crate::keys::SecretKey;
use crate::wire::{
    decode_exact, parse, seal, DeltaPayload, Limits, MessageKind, SnapshotPayloadRef,
    WatermarkPayload, FORMAT_VERSION, MIN_FORMAT_VERSION,
};
use crate::{Error, State, MAX_EPOCH, MAX_WATERMARK};

/// A signed delta and what it does.
#[derive(Debug, Clone)]
pub struct DeltaOutput {
    pub bytes: Vec<u8>,
    pub revokes: bool,
    pub ops: DeltaOps,
}

/// The content of `state`, checked against every limit an edge applies, the index's among
/// them (it is built and dropped): what an edge would refuse is refused here, at the origin.
fn content_of(state: &State) -> Result<Content, Error> {
    let content = Content::from_state(state)?;
    Ok(crate::Index::build(content, &Limits::default())?.into_content())
}

/// The content digest of `state` (hex SHA-256 of its canonical tables): the same string an
/// evaluator holding that state reports as `status().digest`.
pub fn content_digest(state: &State) -> Result<String, Error> {
    Ok(crate::digest::hex(&digest(&content_of(state)?)))
}

/// An epoch past [`MAX_EPOCH`] would be refused by every edge: it is refused here.
fn check_epoch(epoch: u64) -> Result<(), Error> {
    if epoch > MAX_EPOCH {
        return Err(Error::InvalidArgument(format!(
            "epoch {epoch} is over the largest epoch, {MAX_EPOCH}"
        )));
    }
    Ok(())
}

/// The format version a message needs: the first, unless it carries conditions (2) or
/// identity (3).
fn version_for(without_conditions: bool, without_identity: bool) -> u8 {
    if !without_identity {
        FORMAT_VERSION
    } else if !without_conditions {
        2
    } else {
        MIN_FORMAT_VERSION
    }
}

/// A state as the origin keeps its latest epoch: with its content, checked against every limit
/// an edge applies, and that content's digest, built once. Snapshots and deltas are signed from
/// it without building either side's content again.
#[derive(Debug, Clone)]
pub struct Prepared {
    state: State,
    content: Content,
    digest: [u8; 32],
}

impl Prepared {
    /// Builds and checks the content of `state` (what an edge would refuse is refused here).
    pub fn new(state: State) -> Result<Prepared, Error> {
        let content = content_of(&state)?;
        Ok(Prepared::checked(state, content))
    }

    /// `content` is the content of `state`, and it built an index under the default limits.
    pub(crate) fn checked(state: State, mut content: Content) -> Prepared {
        content.shrink_to_fit();
        let digest = digest(&content);
        Prepared {
            state,
            content,
            digest,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The content digest (hex SHA-256), as an evaluator holding the state reports it.
    pub fn digest_hex(&self) -> String {
        crate::digest::hex(&self.digest)
    }

    /// Signs a snapshot of the state at `epoch` (at least 1).
    pub fn snapshot(&self, epoch: u64, issued_at: u64, key: &SecretKey) -> Result<Vec<u8>, Error> {
        check_snapshot_epoch(epoch)?;
        Ok(seal_snapshot(
            &self.state.tenant,
            &self.content,
            epoch,
            issued_at,
            key,
        ))
    }

    /// Signs the delta that turns this state (held at `base_epoch`) into `after` (at `epoch`).
    pub fn delta_to(
        &self,
        after: &Prepared,
        base_epoch: u64,
        epoch: u64,
        issued_at: u64,
        key: &SecretKey,
    ) -> Result<DeltaOutput, Error> {
        check_delta_epochs(base_epoch, epoch)?;
        let d = diff(&self.state, &after.state)?;
        let sides = (&self.digest, &after.digest);
        Ok(seal_delta(
            &after.state.tenant,
            d,
            sides,
            base_epoch,
            epoch,
            issued_at,
            key,
        ))
    }
}

fn check_snapshot_epoch(epoch: u64) -> Result<(), Error> {
    if epoch == 0 {
        return Err(Error::InvalidArgument("epoch must be at least 1".into()));
    }
    check_epoch(epoch)
}

fn check_delta_epochs(base_epoch: u64, epoch: u64) -> Result<(), Error> {
    if epoch <= base_epoch {
        return Err(Error::InvalidArgument(format!(
            "the delta's epoch {epoch} must be greater than its base epoch {base_epoch}"
        )));
    }
    check_epoch(epoch)
}

fn seal_snapshot(
    tenant: &str,
    content: &Content,
    epoch: u64,
    issued_at: u64,
    key: &SecretKey,
) -> Vec<u8> {
    let version = version_for(content.conditional.is_empty(), content.identity.is_empty());
    let payload = SnapshotPayloadRef {
        tenant,
        epoch,
        issued_at,
        content,
    };
    seal(MessageKind::Snapshot, version, &payload, key)
}

/// Signs the delta `d` between contents of digests `sides` (before, after).
fn seal_delta(
    tenant: &str,
    d: crate::Diff,
    (before, after): (&[u8; 32], &[u8; 32]),
    base_epoch: u64,
    epoch: u64,
    issued_at: u64,
    key: &SecretKey,
) -> DeltaOutput {
    let version = version_for(d.ops.conditional.is_empty(), d.ops.identity.is_empty());
    let payload = DeltaPayload {
        tenant: tenant.to_string(),
        base_epoch,
        epoch,
        issued_at,
        base_digest: ByteBuf::from(before.to_vec()),
        digest: ByteBuf::from(after.to_vec()),
        revokes: d.revokes,
        ops: d.ops,
    };
    let bytes = seal(MessageKind::Delta, version, &payload, key);
    DeltaOutput {
        bytes,
        revokes: payload.revokes,
        ops: payload.ops,
    }
}

/// Signs a snapshot of `state` at `epoch` (at least 1).
pub fn compile_snapshot(
    state: &State,
    epoch: u64,
    issued_at: u64,
    key: &SecretKey,
) -> Result<Vec<u8>, Error> {
    check_snapshot_epoch(epoch)?;
    let content = content_of(state)?;
    Ok(seal_snapshot(
        &state.tenant,
        &content,
        epoch,
        issued_at,
        key,
    ))
}

/// Signs the delta that turns `before` (held at `base_epoch`) into `after` (at `epoch`).
pub fn diff_models(
    before: &State,
    after: &State,
    base_epoch: u64,
    epoch: u64,
    issued_at: u64,
    key: &SecretKey,
) -> Result<DeltaOutput, Error> {
    check_delta_epochs(base_epoch, epoch)?;
    let d = diff(before, after)?;
    let base = digest(&content_of(before)?);
    let result = digest(&content_of(after)?);
    let sides = (&base, &result);
    Ok(seal_delta(
        &after.tenant,
        d,
        sides,
        base_epoch,
        epoch,
        issued_at,
        key,
    ))
}

/// Signs a watermark message; with `delta`, the revocation's delta rides along (it must be a
/// delta of the same tenant whose epoch is the watermark).
pub fn sign_watermark(
    tenant: &str,
    watermark: u64,
    issued_at: u64,
    delta: Option<&[u8]>,
    key: &SecretKey,
) -> Result<Vec<u8>, Error> {
    if !crate::id::is_valid_tenant(tenant) {
        return Err(Error::InvalidArgument(format!(
            "tenant `{}` is not a valid tenant name",
            crate::state::shorten(tenant)
        )));
    }
    if watermark > MAX_WATERMARK {
        return Err(Error::WatermarkTooHigh {
            watermark,
            limit: MAX_WATERMARK,
        });
    }
    if let Some(bytes) = delta {
        let env = parse(bytes, &Limits::default())?.expect(MessageKind::Delta)?;
        let p: DeltaPayload = decode_exact(env.payload, "delta")?;
        if p.tenant != tenant {
            return Err(Error::TenantMismatch {
                expected: tenant.to_string(),
                found: p.tenant,
            });
        }
        if p.epoch != watermark {
            return Err(Error::InvalidArgument(format!(
                "the carried delta reaches epoch {}, the watermark is {watermark}",
                p.epoch
            )));
        }
    }
    let payload = WatermarkPayload {
        tenant: tenant.to_string(),
        watermark,
        issued_at,
        delta: delta.map(|d| ByteBuf::from(d.to_vec())),
    };
    Ok(seal(
        MessageKind::Watermark,
        MIN_FORMAT_VERSION,
        &payload,
        key,
    ))
}
