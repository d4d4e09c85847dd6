//! The origin's side, pure: compile a state into a signed snapshot, diff two states into a signed
//! delta, sign watermarks. `issued_at` comes in as an argument like every other time.

use serde_bytes::ByteBuf;

use crate::content::Content;
use crate::delta::{diff, DeltaOps, Diff};
use crate::digest::digest;
use crate::id::{is_group, is_valid_id};
use crate::keys::SecretKey;
use crate::state::{shorten, AssignmentKey};
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

/// A next epoch patched from a kept one ([`Prepared::patch`]): its state, content and digest,
/// and the delta from the epoch it was patched from.
#[derive(Debug, Clone)]
pub struct Patch {
    next: Prepared,
    diff: Diff,
    /// The digest of the epoch it was patched from: the delta is signed from that one only.
    base: [u8; 32],
}

impl Patch {
    /// The next epoch, as the origin keeps it.
    pub fn prepared(&self) -> &Prepared {
        &self.next
    }

    pub fn into_prepared(self) -> Prepared {
        self.next
    }

    /// The delta's operations, in the order [`diff`] gives them.
    pub fn ops(&self) -> &DeltaOps {
        &self.diff.ops
    }

    /// Whether the change takes anything away, as [`diff`] says.
    pub fn revokes(&self) -> bool {
        self.diff.revokes
    }
}

impl Prepared {
    /// The next epoch, patched from this one by `ops` (the change's net operations) instead of
    /// compiled whole: the state patched, the content patched as an edge patches it and checked
    /// under the limits every edge applies, and the new digest. Equal to compiling the model the
    /// change makes (the same state, content, digest and delta), at the cost of the change
    /// rather than of the tenant.
    ///
    /// Takes memberships, assignments without a condition, resources, suspensions, token issuers
    /// and session revocations. Any other operation (actions, roles, freshness, conditions), an
    /// assignment that has or gets a condition, an entry listed twice, and anything a model's
    /// compile would refuse is an error (compile the model for its message: the errors here do
    /// not locate anything in a model).
    pub fn patch(&self, mut ops: DeltaOps) -> Result<Patch, Error> {
        let unsupported = !(ops.actions_set.is_empty()
            && ops.actions_del.is_empty()
            && ops.roles_set.is_empty()
            && ops.roles_del.is_empty()
            && ops.freshness.is_none()
            && ops.conditional.is_empty());
        if unsupported {
            return Err(Error::InvalidArgument(
                "a patch takes memberships, assignments, resources, suspensions, token issuers and session revocations only".into(),
            ));
        }
        let before = &self.state;
        canonical(&mut ops, before)?;
        check_additions(&ops, before)?;
        let mut state = before.clone();
        crate::delta::apply_ops(&mut state, &ops)?;
        // Token issuers and session revocations as `diff` writes them (what changed, in its
        // order), and whether they take anything away.
        let (identity, identity_revokes) = before.identity.diff(&state.identity);
        ops.identity = identity;
        // A moved or added resource's parent is declared, as a compile checks it (the patcher
        // refuses one that is not as well, without saying which resource names it).
        if let Some((id, p)) = ops.resources_set.iter().find_map(|(id, p)| {
            p.as_ref()
                .filter(|p| !state.resources.contains_key(*p))
                .map(|p| (id, p))
        }) {
            return Err(Error::InvalidArgument(format!(
                "resource `{}` has undeclared parent `{}`",
                shorten(id),
                shorten(p)
            )));
        }
        let content = crate::patch::apply(&self.content, &ops)?;
        let content = crate::Index::build(content, &Limits::default())?.into_content();
        let revokes = identity_revokes || patch_revokes(&ops, before, &state);
        Ok(Patch {
            next: Prepared::checked(state, content),
            diff: Diff { ops, revokes },
            base: self.digest,
        })
    }

    /// Signs the delta of `patch` (patched from this epoch, held at `base_epoch`) at `epoch`:
    /// the bytes [`Prepared::delta_to`] signs for the same two epochs.
    pub fn delta_by(
        &self,
        patch: &Patch,
        base_epoch: u64,
        epoch: u64,
        issued_at: u64,
        key: &SecretKey,
    ) -> Result<DeltaOutput, Error> {
        if patch.base != self.digest {
            return Err(Error::InvalidArgument(
                "the patch was made from another epoch's state".into(),
            ));
        }
        check_delta_epochs(base_epoch, epoch)?;
        let sides = (&self.digest, &patch.next.digest);
        Ok(seal_delta(
            &self.state.tenant,
            patch.diff.clone(),
            sides,
            base_epoch,
            epoch,
            issued_at,
            key,
        ))
    }
}

fn twice(what: &str, name: &str) -> Error {
    Error::InvalidArgument(format!("a patch lists {what} `{}` twice", shorten(name)))
}

/// Sorts `v` by `cmp` and refuses two entries that compare equal.
fn sorted_once<T>(
    v: &mut [T],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    what: &str,
    name: impl Fn(&T) -> &str,
) -> Result<(), Error> {
    v.sort_by(&cmp);
    match v.windows(2).find_map(|w| match w {
        [a, b] if cmp(a, b).is_eq() => Some(a),
        _ => None,
    }) {
        Some(a) => Err(twice(what, name(a))),
        None => Ok(()),
    }
}

/// Puts `ops` in the order and form [`diff`] gives: each list sorted, nothing twice, nothing
/// both removed and added, and no entry set to what it already is.
fn canonical(ops: &mut DeltaOps, before: &State) -> Result<(), Error> {
    ops.resources_set
        .retain(|(id, p)| before.resources.get(id) != Some(p));
    ops.assignments_set.retain(|(r, p, role, e)| {
        let key = AssignmentKey::new(r, p, role);
        before.assignments.get(&key) != Some(e)
    });
    let by_id = |a: &(String, Option<String>), b: &(String, Option<String>)| a.0.cmp(&b.0);
    sorted_once(&mut ops.resources_set, by_id, "resource", |x| &x.0)?;
    sorted_once(&mut ops.resources_del, Ord::cmp, "resource", |x| x)?;
    sorted_once(&mut ops.memberships_add, Ord::cmp, "member", |x| &x.0)?;
    sorted_once(&mut ops.memberships_del, Ord::cmp, "member", |x| &x.0)?;
    type Set = (String, String, String, Option<u64>);
    let akey = |(r, p, role, _): &Set| (r.clone(), p.clone(), role.clone());
    let by_key = |a: &Set, b: &Set| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2));
    sorted_once(&mut ops.assignments_set, by_key, "assignment of", |x| &x.1)?;
    sorted_once(&mut ops.assignments_del, Ord::cmp, "assignment of", |x| {
        &x.1
    })?;
    sorted_once(&mut ops.suspended_add, Ord::cmp, "suspended", |x| x)?;
    sorted_once(&mut ops.suspended_del, Ord::cmp, "suspended", |x| x)?;
    let both = |a: &[String], b: &[String]| a.iter().find(|x| b.binary_search(x).is_ok()).cloned();
    let resources_set: Vec<String> = ops.resources_set.iter().map(|x| x.0.clone()).collect();
    if let Some(x) = both(&ops.resources_del, &resources_set)
        .or_else(|| both(&ops.suspended_add, &ops.suspended_del))
    {
        return Err(twice("removed and added", &x));
    }
    if let Some((m, _)) = ops
        .memberships_add
        .iter()
        .find(|x| ops.memberships_del.binary_search(x).is_ok())
    {
        return Err(twice("member removed and added", m));
    }
    if let Some(x) = ops
        .assignments_set
        .iter()
        .find(|x| ops.assignments_del.binary_search(&akey(x)).is_ok())
    {
        return Err(twice("assignment removed and set of", &x.1));
    }
    Ok(())
}

/// The checks a model's compile makes of an entry that the patch adds (ids, a group that is
/// one, a role that is declared), and no assignment the patch touches holds a condition.
fn check_additions(ops: &DeltaOps, before: &State) -> Result<(), Error> {
    let invalid = |what: &str, id: &str| {
        Error::InvalidArgument(format!(
            "{what} `{}` is not a valid `type:name` id",
            shorten(id)
        ))
    };
    let id = |what: &str, v: &str| {
        if is_valid_id(v) {
            Ok(())
        } else {
            Err(invalid(what, v))
        }
    };
    for (r, parent) in &ops.resources_set {
        id("resource", r)?;
        if let Some(p) = parent {
            id("parent", p)?;
        }
    }
    for (m, g) in &ops.memberships_add {
        id("member", m)?;
        id("group", g)?;
        if !is_group(g) {
            return Err(Error::InvalidArgument(format!(
                "`{}` is not a group",
                shorten(g)
            )));
        }
    }
    for (r, p, role, _) in &ops.assignments_set {
        id("principal", p)?;
        id("resource", r)?;
        if !before.roles.contains_key(role) {
            return Err(Error::InvalidArgument(format!(
                "assignment names undeclared role `{}`",
                shorten(role)
            )));
        }
    }
    for s in &ops.suspended_add {
        id("suspended subject", s)?;
    }
    if !before.when.is_empty() {
        let touched = ops
            .assignments_set
            .iter()
            .map(|(r, p, role, _)| (r, p, role))
            .chain(ops.assignments_del.iter().map(|(r, p, role)| (r, p, role)));
        for (r, p, role) in touched {
            let key = AssignmentKey::new(r, p, role);
            if before.when.contains_key(&key) {
                return Err(Error::InvalidArgument(format!(
                    "the assignment of `{}` holds under a condition: compile the model",
                    shorten(p)
                )));
            }
        }
    }
    Ok(())
}

/// Whether canonical `ops` from `before` to `after` take anything away, by the rules of [`diff`].
fn patch_revokes(ops: &DeltaOps, before: &State, after: &State) -> bool {
    let moved = ops
        .resources_set
        .iter()
        .any(|(id, _)| before.resources.contains_key(id));
    let earlier_expiry = ops.assignments_set.iter().any(|(r, p, role, e)| {
        let key = AssignmentKey::new(r, p, role);
        before
            .assignments
            .get(&key)
            .is_some_and(|old| crate::delta::earlier(*old, *e))
    });
    let into_suspended = !ops.memberships_add.is_empty() && !after.suspended.is_empty() && {
        let reaches = crate::delta::suspended_groups(after);
        ops.memberships_add
            .iter()
            .any(|(_, g)| reaches.contains(g.as_str()))
    };
    moved
        || earlier_expiry
        || into_suspended
        || !(ops.resources_del.is_empty()
            && ops.memberships_del.is_empty()
            && ops.assignments_del.is_empty()
            && ops.suspended_add.is_empty())
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
