//! The origin's side, pure: compile a state into a signed snapshot, diff two states into a signed
//! delta, sign watermarks. `issued_at` comes in as an argument like every other time.

use serde_bytes::ByteBuf;

use crate::content::Content;
use crate::delta::{diff, DeltaOps};
use crate::digest::digest;
use crate::keys::SecretKey;
use crate::wire::{
    decode_exact, parse, seal, DeltaPayload, Limits, MessageKind, SnapshotPayload,
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

/// Signs a snapshot of `state` at `epoch` (at least 1).
pub fn compile_snapshot(
    state: &State,
    epoch: u64,
    issued_at: u64,
    key: &SecretKey,
) -> Result<Vec<u8>, Error> {
    if epoch == 0 {
        return Err(Error::InvalidArgument("epoch must be at least 1".into()));
    }
    check_epoch(epoch)?;
    let content = content_of(state)?;
    let version = version_for(content.conditional.is_empty(), content.identity.is_empty());
    Ok(seal(
        MessageKind::Snapshot,
        version,
        &SnapshotPayload {
            tenant: state.tenant.clone(),
            epoch,
            issued_at,
            content,
        },
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
    if epoch <= base_epoch {
        return Err(Error::InvalidArgument(format!(
            "the delta's epoch {epoch} must be greater than its base epoch {base_epoch}"
        )));
    }
    check_epoch(epoch)?;
    let d = diff(before, after)?;
    let base_digest = digest(&content_of(before)?);
    let result_digest = digest(&content_of(after)?);
    let payload = DeltaPayload {
        tenant: after.tenant.clone(),
        base_epoch,
        epoch,
        issued_at,
        base_digest: ByteBuf::from(base_digest.to_vec()),
        digest: ByteBuf::from(result_digest.to_vec()),
        revokes: d.revokes,
        ops: d.ops.clone(),
    };
    Ok(DeltaOutput {
        bytes: seal(
            MessageKind::Delta,
            version_for(d.ops.conditional.is_empty(), d.ops.identity.is_empty()),
            &payload,
            key,
        ),
        revokes: d.revokes,
        ops: d.ops,
    })
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
