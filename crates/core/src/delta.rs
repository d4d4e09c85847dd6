//! Deltas: the name-keyed operations that turn one state into the next, `diff` that computes them
//! and says whether they revoke anything, and `apply_ops` that applies them strictly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{shorten, AssignmentKey, Freshness, State};
use crate::{Error, Tier};

/// The operations of one delta. Removals are checked to exist and additions not to, so a delta
/// applies to exactly one state; the signed digests make that airtight.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeltaOps {
    /// Added or re-tiered actions: `(name, tier)`.
    pub actions_set: Vec<(String, u8)>,
    pub actions_del: Vec<String>,
    /// Added or changed roles: `(name, actions)`.
    pub roles_set: Vec<(String, Vec<String>)>,
    pub roles_del: Vec<String>,
    /// Added or moved resources: `(id, parent)`.
    pub resources_set: Vec<(String, Option<String>)>,
    pub resources_del: Vec<String>,
    /// `(member, group)`.
    pub memberships_add: Vec<(String, String)>,
    pub memberships_del: Vec<(String, String)>,
    /// Added assignments or changed expiries: `(resource, principal, role, expires_at)`.
    pub assignments_set: Vec<(String, String, String, Option<u64>)>,
    /// `(resource, principal, role)`.
    pub assignments_del: Vec<(String, String, String)>,
    pub suspended_add: Vec<String>,
    pub suspended_del: Vec<String>,
    /// New freshness bounds (low, standard, high), when they changed.
    pub freshness: Option<[u64; 3]>,
    /// Changes to conditions. Last, and left out when empty, so that a delta without them
    /// encodes exactly as format version 1 did.
    #[serde(default)]
    pub conditional: ConditionOps,
    /// Changes to token issuers and session revocations, applied last. After the conditions,
    /// which are then written even when empty (format version 3).
    #[serde(default)]
    pub identity: crate::IdentityOps,
}

/// A struct as a MessagePack array of its fields; the optional last two only when needed.
impl Serialize for DeltaOps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let extra = usize::from(!self.conditional.is_empty() || !self.identity.is_empty())
            + usize::from(!self.identity.is_empty());
        let mut t = s.serialize_struct("DeltaOps", 13 + extra)?;
        t.serialize_field("actions_set", &self.actions_set)?;
        t.serialize_field("actions_del", &self.actions_del)?;
        t.serialize_field("roles_set", &self.roles_set)?;
        t.serialize_field("roles_del", &self.roles_del)?;
        t.serialize_field("resources_set", &self.resources_set)?;
        t.serialize_field("resources_del", &self.resources_del)?;
        t.serialize_field("memberships_add", &self.memberships_add)?;
        t.serialize_field("memberships_del", &self.memberships_del)?;
        t.serialize_field("assignments_set", &self.assignments_set)?;
        t.serialize_field("assignments_del", &self.assignments_del)?;
        t.serialize_field("suspended_add", &self.suspended_add)?;
        t.serialize_field("suspended_del", &self.suspended_del)?;
        t.serialize_field("freshness", &self.freshness)?;
        if extra > 0 {
            t.serialize_field("conditional", &self.conditional)?;
        }
        if extra > 1 {
            t.serialize_field("identity", &self.identity)?;
        }
        t.end()
    }
}

/// A delta's changes to conditions (docs/model.md, "Conditions"), applied after every other
/// operation of the delta. On the wire: one string, the JSON `[set, del, requires, when]`
/// (docs/formats.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionOps {
    /// Added or changed conditions: `(name, definition as the model's JSON)`.
    pub set: Vec<(String, String)>,
    pub del: Vec<String>,
    /// Actions whose `requires` changed: `(action, the whole new list)`; empty removes it.
    pub requires: Vec<(String, Vec<String>)>,
    /// Assignments whose `when` changed: `(resource, principal, role, when)`; `None` removes it.
    pub when: Vec<(String, String, String, Option<String>)>,
}

impl Serialize for ConditionOps {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::wire::json_text as j;
        let requires: Vec<String> = self
            .requires
            .iter()
            .map(|(a, names)| format!("[{},{}]", j::quote(a), j::strings(names)))
            .collect();
        let when: Vec<String> = self
            .when
            .iter()
            .map(|(r, p, role, w)| {
                let w = w.as_deref().map_or_else(|| "null".to_string(), j::quote);
                format!("[{},{},{},{w}]", j::quote(r), j::quote(p), j::quote(role))
            })
            .collect();
        s.serialize_str(&format!(
            "[{},{},[{}],[{}]]",
            j::named_texts_json(&self.set),
            j::strings(&self.del),
            requires.join(","),
            when.join(",")
        ))
    }
}

impl<'de> Deserialize<'de> for ConditionOps {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_text(&text)
            .ok_or_else(|| serde::de::Error::custom("malformed condition operations"))
    }
}

impl ConditionOps {
    /// The operations from their wire JSON; `None` when it is not that.
    pub(crate) fn from_text(text: &str) -> Option<ConditionOps> {
        use crate::wire::json_text as j;
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        match j::list(&v)?.as_slice() {
            [set, del, requires, when] => Some(ConditionOps {
                set: j::named_texts(set)?,
                del: j::string_list(del)?,
                requires: j::list(requires)?
                    .iter()
                    .map(|x| match x.as_array()?.as_slice() {
                        [a, names] => Some((j::string(a)?, j::string_list(names)?)),
                        _ => None,
                    })
                    .collect::<Option<_>>()?,
                when: j::list(when)?
                    .iter()
                    .map(|x| match x.as_array()?.as_slice() {
                        [r, p, role, w] => Some((
                            j::string(r)?,
                            j::string(p)?,
                            j::string(role)?,
                            if w.is_null() {
                                None
                            } else {
                                Some(j::string(w)?)
                            },
                        )),
                        _ => None,
                    })
                    .collect::<Option<_>>()?,
            }),
            _ => None,
        }
    }
}

impl ConditionOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.del.is_empty()
            && self.requires.is_empty()
            && self.when.is_empty()
    }
}

impl DeltaOps {
    pub fn is_empty(&self) -> bool {
        self.total() == 0 && self.freshness.is_none()
    }

    pub fn total(&self) -> usize {
        self.counts().values().sum()
    }

    /// Each kind of operation's count (those on conditions only when there are some).
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let conditional = [
            ("conditionsSet", self.conditional.set.len()),
            ("conditionsDel", self.conditional.del.len()),
            ("requiresSet", self.conditional.requires.len()),
            ("whenSet", self.conditional.when.len()),
        ];
        let conditional = conditional
            .into_iter()
            .filter(|_| !self.conditional.is_empty());
        let identity = self
            .identity
            .counts()
            .into_iter()
            .filter(|_| !self.identity.is_empty());
        let all = [
            ("actionsSet", self.actions_set.len()),
            ("actionsDel", self.actions_del.len()),
            ("rolesSet", self.roles_set.len()),
            ("rolesDel", self.roles_del.len()),
            ("resourcesSet", self.resources_set.len()),
            ("resourcesDel", self.resources_del.len()),
            ("membershipsAdd", self.memberships_add.len()),
            ("membershipsDel", self.memberships_del.len()),
            ("assignmentsSet", self.assignments_set.len()),
            ("assignmentsDel", self.assignments_del.len()),
            ("suspendedAdd", self.suspended_add.len()),
            ("suspendedDel", self.suspended_del.len()),
        ]
        .into_iter()
        .chain(conditional)
        .chain(identity);
        crate::state::map_of(all)
    }
}

/// What `diff` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub ops: DeltaOps,
    /// True when the change removes access in any way (see [`diff`]).
    pub revokes: bool,
}

/// How one map changed: entries added or changed `(key, old value, new value)`, keys removed.
struct Changes<'a, K, V> {
    set: Vec<(&'a K, Option<&'a V>, &'a V)>,
    removed: Vec<&'a K>,
}

fn changes<'a, K: Ord, V: PartialEq>(
    before: &'a BTreeMap<K, V>,
    after: &'a BTreeMap<K, V>,
) -> Changes<'a, K, V> {
    let set = after
        .iter()
        .filter_map(|(k, v)| match before.get(k) {
            Some(old) if old == v => None,
            old => Some((k, old, v)),
        })
        .collect();
    let removed = before.keys().filter(|k| !after.contains_key(*k)).collect();
    Changes { set, removed }
}

/// Whether an expiry moved earlier (`None` is "never").
pub(crate) fn earlier(before: Option<u64>, after: Option<u64>) -> bool {
    match (before, after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(b), Some(a)) => a < b,
    }
}

/// Compares two states of one tenant. `revokes` is true when anything that can deny a request
/// that was allowed changes: a removed membership, assignment, resource, action or role; a role
/// losing an action; a resource moved to another parent; a new suspension, or a new membership in a
/// suspended group (suspension is inherited); an earlier expiry; a
/// shorter freshness bound for any action (a stricter tier or a smaller bound); a condition
/// attached to an existing assignment or changed on it, a condition an action newly requires, or
/// a change to a condition that a grant or an action used (a changed definition may be stricter).
pub fn diff(before: &State, after: &State) -> Result<Diff, Error> {
    if before.tenant != after.tenant {
        return Err(Error::TenantMismatch {
            expected: before.tenant.clone(),
            found: after.tenant.clone(),
        });
    }
    let mut ops = DeltaOps::default();
    let mut revokes = false;

    let actions = changes(&before.actions, &after.actions);
    for (name, old, tier) in actions.set {
        revokes |=
            old.is_some_and(|old| after.freshness.bound(*tier) < before.freshness.bound(*old));
        ops.actions_set.push((name.clone(), tier.to_u8()));
    }
    let roles = changes(&before.roles, &after.roles);
    for (name, old, acts) in roles.set {
        revokes |= old.is_some_and(|old| !old.is_subset(acts));
        ops.roles_set
            .push((name.clone(), acts.iter().cloned().collect()));
    }
    let resources = changes(&before.resources, &after.resources);
    for (id, old, parent) in resources.set {
        // A moved resource loses what it inherited from its old ancestors.
        revokes |= old.is_some();
        ops.resources_set.push((id.clone(), parent.clone()));
    }
    // Removing an action, a role or a resource always takes something away.
    revokes |=
        !(actions.removed.is_empty() && roles.removed.is_empty() && resources.removed.is_empty());
    ops.actions_del = actions.removed.into_iter().cloned().collect();
    ops.roles_del = roles.removed.into_iter().cloned().collect();
    ops.resources_del = resources.removed.into_iter().cloned().collect();
    ops.memberships_add = after
        .memberships
        .difference(&before.memberships)
        .cloned()
        .collect();
    ops.memberships_del = before
        .memberships
        .difference(&after.memberships)
        .cloned()
        .collect();
    revokes |= !ops.memberships_del.is_empty();
    // Suspension is inherited through groups: joining a group that is suspended, or that belongs
    // to a suspended group, takes access away.
    if !ops.memberships_add.is_empty() && !after.suspended.is_empty() {
        let reaches = suspended_groups(after);
        revokes |= ops
            .memberships_add
            .iter()
            .any(|(_, g)| reaches.contains(g.as_str()));
    }
    let assignments = changes(&before.assignments, &after.assignments);
    for (k, old, exp) in assignments.set {
        revokes |= old.is_some_and(|old| earlier(*old, *exp));
        ops.assignments_set.push((
            k.resource.clone(),
            k.principal.clone(),
            k.role.clone(),
            *exp,
        ));
    }
    revokes |= !assignments.removed.is_empty();
    ops.assignments_del = assignments
        .removed
        .into_iter()
        .map(|k| (k.resource.clone(), k.principal.clone(), k.role.clone()))
        .collect();
    ops.suspended_add = after
        .suspended
        .difference(&before.suspended)
        .cloned()
        .collect();
    ops.suspended_del = before
        .suspended
        .difference(&after.suspended)
        .cloned()
        .collect();
    revokes |= !ops.suspended_add.is_empty();
    if before.freshness != after.freshness {
        ops.freshness = Some(after.freshness.to_array());
        revokes |= Tier::ALL
            .iter()
            .any(|t| after.freshness.bound(*t) < before.freshness.bound(*t));
    }
    revokes |= diff_conditions(before, after, &mut ops.conditional);
    let (identity, identity_revokes) = before.identity.diff(&after.identity);
    ops.identity = identity;
    revokes |= identity_revokes;
    Ok(Diff { ops, revokes })
}

/// The condition operations from `before` to `after`, and whether they can deny a request that
/// was allowed.
fn diff_conditions(before: &State, after: &State, ops: &mut ConditionOps) -> bool {
    let mut revokes = false;
    let conditions = changes(&before.conditions, &after.conditions);
    let used = used_conditions(before);
    for (name, old, def) in conditions.set {
        revokes |= old.is_some() && used.contains(&name.as_str());
        ops.set
            .push((name.clone(), crate::content::condition_json(def)));
    }
    revokes |= conditions
        .removed
        .iter()
        .any(|n| used.contains(&n.as_str()));
    ops.del = conditions.removed.into_iter().cloned().collect();
    let empty = std::collections::BTreeSet::new();
    let actions: std::collections::BTreeSet<&String> =
        crate::state::set_of(before.requires.keys().chain(after.requires.keys()));
    for a in actions {
        let (old, new) = (
            before.requires.get(a).unwrap_or(&empty),
            after.requires.get(a).unwrap_or(&empty),
        );
        if old != new {
            // A new requirement on an action that grants today.
            revokes |= before.actions.contains_key(a) && !new.is_subset(old);
            ops.requires
                .push((a.clone(), new.iter().cloned().collect()));
        }
    }
    let keys = before
        .when
        .keys()
        .chain(after.when.keys().filter(|k| !before.when.contains_key(*k)));
    for k in keys {
        let (old, new) = (before.when.get(k), after.when.get(k));
        if old != new {
            // A condition put on, or changed on, an assignment that grants today.
            revokes |= new.is_some() && before.assignments.contains_key(k);
            ops.when.push((
                k.resource.clone(),
                k.principal.clone(),
                k.role.clone(),
                new.cloned(),
            ));
        }
    }
    revokes
}

/// The conditions a state's grants and actions use, with every part of those.
fn used_conditions(state: &State) -> Vec<&str> {
    // At most 64 conditions: a vector is the smallest set.
    let mut out = Vec::new();
    let mut stack: Vec<&str> = state
        .requires
        .values()
        .flatten()
        .chain(state.when.values())
        .map(String::as_str)
        .collect();
    while let Some(n) = stack.pop() {
        if out.contains(&n) {
            continue;
        }
        out.push(n);
        if let Some(def) = state.conditions.get(n) {
            stack.extend(crate::condition::parts(def));
        }
    }
    out
}

/// Groups that are suspended or belong, directly or through nested groups, to a suspended group.
pub(crate) fn suspended_groups(state: &State) -> std::collections::BTreeSet<&str> {
    let mut members_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (m, g) in &state.memberships {
        members_of.entry(g.as_str()).or_default().push(m.as_str());
    }
    let mut out = std::collections::BTreeSet::new();
    let mut stack: Vec<&str> = state.suspended.iter().map(String::as_str).collect();
    while let Some(g) = stack.pop() {
        if out.insert(g) {
            stack.extend(members_of.get(g).into_iter().flatten().copied());
        }
    }
    out
}

fn bad(msg: String) -> Error {
    Error::InvalidDelta(msg)
}

/// Applies operations to a state, strictly: every removal must find its entry and every addition
/// must be new. References are not checked here; the caller validates the result as a whole.
pub fn apply_ops(state: &mut State, ops: &DeltaOps) -> Result<(), Error> {
    for name in &ops.actions_del {
        state.actions.remove(name).ok_or_else(|| {
            bad(format!(
                "removes action `{}` that does not exist",
                shorten(name)
            ))
        })?;
    }
    for (name, tier) in &ops.actions_set {
        let tier = Tier::from_u8(*tier).ok_or_else(|| {
            bad(format!(
                "action `{}` has an unknown tier {tier}",
                shorten(name)
            ))
        })?;
        state.actions.insert(name.clone(), tier);
    }
    for name in &ops.roles_del {
        state.roles.remove(name).ok_or_else(|| {
            bad(format!(
                "removes role `{}` that does not exist",
                shorten(name)
            ))
        })?;
    }
    for (name, acts) in &ops.roles_set {
        let set: std::collections::BTreeSet<String> = crate::state::set_of(acts.iter().cloned());
        if set.len() != acts.len() {
            return Err(bad(format!(
                "role `{}` lists an action twice",
                shorten(name)
            )));
        }
        state.roles.insert(name.clone(), set);
    }
    for id in &ops.resources_del {
        state.resources.remove(id).ok_or_else(|| {
            bad(format!(
                "removes resource `{}` that does not exist",
                shorten(id)
            ))
        })?;
    }
    for (id, parent) in &ops.resources_set {
        state.resources.insert(id.clone(), parent.clone());
    }
    for pair in &ops.memberships_del {
        if !state.memberships.remove(pair) {
            return Err(bad(format!(
                "removes membership `{}` in `{}` that does not exist",
                shorten(&pair.0),
                shorten(&pair.1)
            )));
        }
    }
    for pair in &ops.memberships_add {
        if !state.memberships.insert(pair.clone()) {
            return Err(bad(format!(
                "adds membership `{}` in `{}` that already exists",
                shorten(&pair.0),
                shorten(&pair.1)
            )));
        }
    }
    for (resource, principal, role) in &ops.assignments_del {
        let key = AssignmentKey {
            resource: resource.clone(),
            principal: principal.clone(),
            role: role.clone(),
        };
        state.assignments.remove(&key).ok_or_else(|| {
            bad(format!(
                "removes an assignment of `{}` that does not exist",
                shorten(principal)
            ))
        })?;
    }
    for (resource, principal, role, exp) in &ops.assignments_set {
        let key = AssignmentKey {
            resource: resource.clone(),
            principal: principal.clone(),
            role: role.clone(),
        };
        state.assignments.insert(key, *exp);
    }
    for s in &ops.suspended_del {
        if !state.suspended.remove(s) {
            return Err(bad(format!(
                "lifts suspension of `{}` that is not suspended",
                shorten(s)
            )));
        }
    }
    for s in &ops.suspended_add {
        if !state.suspended.insert(s.clone()) {
            return Err(bad(format!("suspends `{}` twice", shorten(s))));
        }
    }
    if let Some(f) = ops.freshness {
        state.freshness = Freshness::from_array(f);
    }
    apply_condition_ops(state, &ops.conditional)?;
    state.identity = state.identity.apply(&ops.identity)?;
    Ok(())
}

fn apply_condition_ops(state: &mut State, ops: &ConditionOps) -> Result<(), Error> {
    edit_conditions(
        &mut state.conditions,
        &mut state.requires,
        &mut state.when,
        ops,
        |name, json| {
            serde_json::from_str(json)
                .map_err(|e| bad(format!("condition `{}` does not read: {e}", shorten(name))))
        },
    )
}

/// Applies condition operations to tables kept by name (the state's, or a patch's whose
/// definitions stay as their JSON, read by `read`), strictly.
pub(crate) fn edit_conditions<V>(
    conditions: &mut BTreeMap<String, V>,
    requires: &mut BTreeMap<String, std::collections::BTreeSet<String>>,
    when: &mut BTreeMap<AssignmentKey, String>,
    ops: &ConditionOps,
    read: impl Fn(&str, &str) -> Result<V, Error>,
) -> Result<(), Error> {
    for name in &ops.del {
        conditions.remove(name).ok_or_else(|| {
            bad(format!(
                "removes condition `{}` that does not exist",
                shorten(name)
            ))
        })?;
    }
    for (name, json) in &ops.set {
        conditions.insert(name.clone(), read(name, json)?);
    }
    for (action, names) in &ops.requires {
        let set: std::collections::BTreeSet<String> = crate::state::set_of(names.iter().cloned());
        if set.len() != names.len() {
            return Err(bad(format!(
                "action `{}` requires a condition twice",
                shorten(action)
            )));
        }
        let old = if set.is_empty() {
            requires.remove(action)
        } else {
            requires.insert(action.clone(), set)
        };
        if names.is_empty() && old.is_none() {
            return Err(bad(format!(
                "removes the requirements of `{}`, which has none",
                shorten(action)
            )));
        }
    }
    for (resource, principal, role, w) in &ops.when {
        let key = AssignmentKey {
            resource: resource.clone(),
            principal: principal.clone(),
            role: role.clone(),
        };
        let old = match w {
            Some(w) => when.insert(key, w.clone()),
            None => when.remove(&key),
        };
        if w.is_none() && old.is_none() {
            return Err(bad(format!(
                "removes the condition of an assignment of `{}`, which has none",
                shorten(principal)
            )));
        }
    }
    Ok(())
}
