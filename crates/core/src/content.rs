//! `Content`: a state interned into dense integer ids, every table sorted. This is what a signed
//! snapshot carries and what the [`crate::Index`] is built from. `check` re-validates it, because a
//! decoder must never trust its input to be well formed, signed or not.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxBuildHasher;

type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuildHasher>;
type FxHashSet<K> = std::collections::HashSet<K, FxBuildHasher>;

use serde::{Deserialize, Serialize};

use crate::condition::{ConditionDef, Conditions};
use crate::error::{ModelError, ModelErrorKind as K};
use crate::id::{is_group, is_valid_action_name, is_valid_id};
use crate::names::{Names, Resources};
use crate::state::{map_of, set_of, shorten, AssignmentKey, Freshness, State};
use crate::wire::Limits;
use crate::Tier;

/// Marks "no parent" in dense parent arrays.
pub(crate) const NONE: u32 = u32::MAX;

/// The interned tables of one state. Ids are positions in the sorted name tables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Content {
    /// `(name, tier)`, sorted by name. Tier: 0 low, 1 standard, 2 high.
    pub actions: Vec<(String, u8)>,
    /// `(name, action ids ascending)`, sorted by name.
    pub roles: Vec<(String, Vec<u32>)>,
    /// `(id, parent resource)`, sorted by id.
    pub resources: Resources,
    /// Every subject that a membership, assignment or suspension names, sorted.
    pub subjects: Names,
    /// `(member, group)` subject ids, sorted.
    pub memberships: Vec<(u32, u32)>,
    /// `(resource, principal subject, role, expires_at)`, sorted.
    pub assignments: Vec<(u32, u32, u32, Option<u64>)>,
    /// Suspended subject ids, sorted.
    pub suspended: Vec<u32>,
    /// Freshness bounds in ms: low, standard, high.
    pub freshness: [u64; 3],
    /// The conditions, when the state has any. Last, and left out when empty, so that a state
    /// without conditions encodes exactly as format version 1 did.
    #[serde(default)]
    pub conditional: ConditionTables,
    /// Token issuers and session revocations, when the state has any; after the conditions,
    /// which are then written even when empty (format version 3).
    #[serde(default)]
    pub identity: crate::Identity,
}

/// A struct as a MessagePack array of its fields; the optional last two only when needed.
impl Serialize for Content {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let extra = usize::from(!self.conditional.is_empty() || !self.identity.is_empty())
            + usize::from(!self.identity.is_empty());
        let mut t = s.serialize_struct("Content", 8 + extra)?;
        t.serialize_field("actions", &self.actions)?;
        t.serialize_field("roles", &self.roles)?;
        t.serialize_field("resources", &self.resources)?;
        t.serialize_field("subjects", &self.subjects)?;
        t.serialize_field("memberships", &self.memberships)?;
        t.serialize_field("assignments", &self.assignments)?;
        t.serialize_field("suspended", &self.suspended)?;
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

/// A state's conditions (docs/model.md, "Conditions"), interned. On the wire: one string, the
/// JSON `[conditions, requires, when]` (docs/formats.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConditionTables {
    /// `(name, definition as the model's JSON)`, sorted by name; a condition's id is its place.
    pub conditions: Vec<(String, String)>,
    /// `(action, condition)`, sorted: each action's `requires`.
    pub requires: Vec<(u32, u32)>,
    /// `(assignment, condition)`, sorted: an assignment's `when` (the assignment by its place).
    pub when: Vec<(u32, u32)>,
}

impl Serialize for ConditionTables {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::wire::json_text as j;
        s.serialize_str(&format!(
            "[{},{},{}]",
            j::named_texts_json(&self.conditions),
            j::pairs(&self.requires),
            j::pairs(&self.when)
        ))
    }
}

impl<'de> Deserialize<'de> for ConditionTables {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_text(&text).ok_or_else(|| serde::de::Error::custom("malformed condition tables"))
    }
}

impl ConditionTables {
    /// The tables from their wire JSON; `None` when it is not that.
    pub(crate) fn from_text(text: &str) -> Option<ConditionTables> {
        use crate::wire::json_text as j;
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        match j::list(&v)?.as_slice() {
            [c, r, w] => Some(ConditionTables {
                conditions: j::named_texts(c)?,
                requires: j::pair_list(r)?,
                when: j::pair_list(w)?,
            }),
            _ => None,
        }
    }
}

impl ConditionTables {
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty() && self.requires.is_empty() && self.when.is_empty()
    }

    /// Interns a state's conditions; `actions` and `assignments` are the state's, in order.
    fn from_state(state: &State) -> Result<ConditionTables, ModelError> {
        let mut out = ConditionTables::default();
        if state.conditions.is_empty() && state.requires.is_empty() && state.when.is_empty() {
            return Ok(out);
        }
        // Ids are places in name order: found by binary search.
        let names: Vec<&str> = state.conditions.keys().map(String::as_str).collect();
        let find = |n: &str| {
            names
                .binary_search(&n)
                .map(id32)
                .map_err(|_| missing("condition", n))
        };
        for (name, def) in &state.conditions {
            out.conditions.push((name.clone(), condition_json(def)));
        }
        for (a, (name, _)) in state.actions.iter().enumerate() {
            for c in state.requires.get(name).into_iter().flatten() {
                out.requires.push((id32(a), find(c)?));
            }
        }
        out.requires.sort_unstable();
        for (i, key) in state.assignments.keys().enumerate() {
            if let Some(c) = state.when.get(key) {
                out.when.push((id32(i), find(c)?));
            }
        }
        if out.when.len() != state.when.len()
            || state
                .requires
                .keys()
                .any(|a| !state.actions.contains_key(a))
        {
            return Err(ModelError::new(
                K::InvalidValue,
                "conditions",
                "a condition is attached to an action or assignment that does not exist",
            ));
        }
        Ok(out)
    }

    /// The conditions compiled (`check` also checks each reference).
    pub fn compile(&self) -> Result<Conditions, ModelError> {
        let mut defs = Vec::with_capacity(self.conditions.len());
        for (name, json) in &self.conditions {
            let def: ConditionDef = serde_json::from_str(json).map_err(|e| {
                ModelError::new(
                    K::InvalidValue,
                    format!("conditions.{}", shorten(name)),
                    format!("a condition that does not read: {e}"),
                )
            })?;
            defs.push((name.clone(), def));
        }
        Conditions::compile(&defs)
    }

    fn check(&self, n_actions: usize, n_assignments: usize) -> Result<(), ModelError> {
        if !is_strictly_sorted(&self.conditions.iter().map(|(n, _)| n).collect::<Vec<_>>()) {
            return invalid("conditions", "conditions are not sorted and unique".into());
        }
        self.compile()?;
        let n = self.conditions.len();
        if !is_strictly_sorted(&self.requires)
            || self
                .requires
                .iter()
                .any(|(a, c)| *a as usize >= n_actions || *c as usize >= n)
        {
            return invalid(
                "conditions",
                "an action's requires are not sorted, unique and in range".into(),
            );
        }
        if !is_strictly_sorted(&self.when.iter().map(|(a, _)| a).collect::<Vec<_>>())
            || self
                .when
                .iter()
                .any(|(a, c)| *a as usize >= n_assignments || *c as usize >= n)
        {
            return invalid(
                "conditions",
                "assignments' conditions are not sorted, unique and in range".into(),
            );
        }
        Ok(())
    }
}

/// A condition as the model's JSON writes it (what a snapshot carries and a digest covers).
pub(crate) fn condition_json(def: &ConditionDef) -> String {
    serde_json::to_string(def).unwrap_or_default()
}

fn missing(what: &str, name: &str) -> ModelError {
    ModelError::new(
        K::InvalidValue,
        name,
        format!("{what} `{}` is not declared", shorten(name)),
    )
}

/// A structural error of `what` (a table of [`Content`]).
fn invalid(what: &str, msg: String) -> Result<(), ModelError> {
    Err(ModelError::new(K::InvalidValue, what, msg))
}

fn id32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(NONE)
}

fn is_strictly_sorted<T: Ord>(v: &[T]) -> bool {
    v.windows(2).all(|w| matches!(w, [a, b] if a < b))
}

/// Compressed sparse rows: `start[i]..start[i + 1]` indexes the neighbours of node `i`.
pub(crate) fn csr(
    n: usize,
    edges: impl Iterator<Item = (u32, u32)> + Clone,
) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; n + 1];
    for (from, _) in edges.clone() {
        if let Some(c) = start.get_mut(from as usize + 1) {
            *c += 1;
        }
    }
    for i in 1..start.len() {
        let prev = start.get(i - 1).copied().unwrap_or(0);
        if let Some(c) = start.get_mut(i) {
            *c += prev;
        }
    }
    let mut fill = start.clone();
    let mut out = vec![0u32; start.last().copied().unwrap_or(0) as usize];
    for (from, to) in edges {
        if let Some(pos) = fill.get_mut(from as usize) {
            if let Some(slot) = out.get_mut(*pos as usize) {
                *slot = to;
            }
            *pos += 1;
        }
    }
    (start, out)
}

pub(crate) fn row<'a>(start: &[u32], items: &'a [u32], i: u32) -> &'a [u32] {
    let lo = start.get(i as usize).copied().unwrap_or(0) as usize;
    let hi = start.get(i as usize + 1).copied().unwrap_or(0) as usize;
    items.get(lo..hi).unwrap_or(&[])
}

/// Finds a cycle in a directed graph given as CSR; returns its nodes, first node repeated last.
fn find_cycle(n: usize, start: &[u32], adj: &[u32]) -> Option<Vec<u32>> {
    // 0 unvisited, 1 on the stack, 2 done
    let mut color = vec![0u8; n];
    for root in 0..n {
        if color.get(root).copied() != Some(0) {
            continue;
        }
        let mut stack: Vec<(u32, usize)> = vec![(id32(root), 0)];
        if let Some(c) = color.get_mut(root) {
            *c = 1;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let nbrs = row(start, adj, node);
            if let Some(&to) = nbrs.get(*next) {
                *next += 1;
                match color.get(to as usize).copied() {
                    Some(0) => {
                        if let Some(c) = color.get_mut(to as usize) {
                            *c = 1;
                        }
                        stack.push((to, 0));
                    }
                    Some(1) => {
                        let from = stack.iter().position(|(v, _)| *v == to).unwrap_or(0);
                        let mut cycle: Vec<u32> = stack
                            .get(from..)
                            .unwrap_or(&[])
                            .iter()
                            .map(|(v, _)| *v)
                            .collect();
                        cycle.push(to);
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                if let Some(c) = color.get_mut(node as usize) {
                    *c = 2;
                }
                stack.pop();
            }
        }
    }
    None
}

impl Content {
    /// Interns a state. Fails only if the state references something it does not declare.
    pub fn from_state(state: &State) -> Result<Content, ModelError> {
        // Name -> id maps by hashing: interning looks up every reference once.
        fn ids<'a>(names: impl Iterator<Item = &'a str>) -> FxHashMap<&'a str, u32> {
            names.enumerate().map(|(i, n)| (n, id32(i))).collect()
        }
        let action_ids = ids(state.actions.keys().map(String::as_str));
        let resource_ids = ids(state.resources.keys().map(String::as_str));
        let role_ids = ids(state.roles.keys().map(String::as_str));
        let mut seen: FxHashSet<&str> = FxHashSet::default();
        for (m, g) in &state.memberships {
            seen.insert(m.as_str());
            seen.insert(g.as_str());
        }
        seen.extend(state.assignments.keys().map(|k| k.principal.as_str()));
        seen.extend(state.suspended.iter().map(String::as_str));
        let mut subject_names: Vec<&str> = seen.into_iter().collect();
        subject_names.sort_unstable();
        let subject_ids = ids(subject_names.iter().copied());
        let find = |m: &FxHashMap<&str, u32>, what: &str, n: &str| {
            m.get(n).copied().ok_or_else(|| missing(what, n))
        };

        let actions = state
            .actions
            .iter()
            .map(|(n, t)| (n.clone(), t.to_u8()))
            .collect();
        let mut roles = Vec::with_capacity(state.roles.len());
        for (name, acts) in &state.roles {
            let mut ids = acts
                .iter()
                .map(|a| find(&action_ids, "action", a))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort_unstable();
            roles.push((name.clone(), ids));
        }
        let mut resources = Resources::new();
        for (id, parent) in &state.resources {
            let p = match parent {
                Some(p) => Some(find(&resource_ids, "resource", p)?),
                None => None,
            };
            resources.push(id, p);
        }
        let mut memberships = Vec::with_capacity(state.memberships.len());
        for (m, g) in &state.memberships {
            memberships.push((
                find(&subject_ids, "subject", m)?,
                find(&subject_ids, "subject", g)?,
            ));
        }
        let mut assignments = Vec::with_capacity(state.assignments.len());
        for (k, exp) in &state.assignments {
            assignments.push((
                find(&resource_ids, "resource", &k.resource)?,
                find(&subject_ids, "subject", &k.principal)?,
                find(&role_ids, "role", &k.role)?,
                *exp,
            ));
        }
        let suspended = state
            .suspended
            .iter()
            .map(|s| find(&subject_ids, "subject", s))
            .collect::<Result<Vec<_>, _>>()?;
        // Ids follow name order, and the state's collections are ordered by name, so every
        // table is already sorted.
        Ok(Content {
            actions,
            roles,
            resources,
            subjects: subject_names.into_iter().collect(),
            memberships,
            assignments,
            suspended,
            freshness: state.freshness.to_array(),
            conditional: ConditionTables::from_state(state)?,
            identity: state.identity.clone(),
        })
    }

    /// Applies a delta's operations to this content, in ids: the same result as applying them to
    /// the `State` with [`crate::apply_ops`] and interning that, without leaving ids. The result
    /// is not yet checked (an `Index::build` does that).
    pub fn apply(&self, ops: &crate::DeltaOps) -> Result<Content, crate::Error> {
        crate::patch::apply(self, ops)
    }

    /// Turns ids back into names. Call only on checked content.
    pub fn to_state(&self, tenant: &str) -> State {
        let name = |t: &Names, i: u32| t.get(i as usize).unwrap_or_default().to_string();
        let action_names: Names = self.actions.iter().map(|(n, _)| n).collect();
        let role_names: Names = self.roles.iter().map(|(n, _)| n).collect();
        let resource_names = self.resources.names();
        let (conditions, requires, when) = self.condition_names();
        State {
            tenant: tenant.to_string(),
            actions: map_of(
                self.actions
                    .iter()
                    .map(|(n, t)| (n.clone(), Tier::from_u8(*t).unwrap_or(Tier::High))),
            ),
            roles: map_of(self.roles.iter().map(|(n, ids)| {
                (
                    n.clone(),
                    set_of(ids.iter().map(|a| name(&action_names, *a))),
                )
            })),
            resources: map_of(
                self.resources
                    .iter()
                    .map(|(n, p)| (n.to_string(), p.map(|p| name(resource_names, p)))),
            ),
            memberships: set_of(
                self.memberships
                    .iter()
                    .map(|(m, g)| (name(&self.subjects, *m), name(&self.subjects, *g))),
            ),
            assignments: map_of(self.assignments.iter().map(|(r, p, role, e)| {
                (
                    AssignmentKey {
                        resource: name(resource_names, *r),
                        principal: name(&self.subjects, *p),
                        role: name(&role_names, *role),
                    },
                    *e,
                )
            })),
            suspended: set_of(self.suspended.iter().map(|s| name(&self.subjects, *s))),
            freshness: Freshness::from_array(self.freshness),
            conditions: {
                let mut m = BTreeMap::new();
                for (n, j) in conditions {
                    if let Ok(def) = serde_json::from_str(&j) {
                        m.insert(n, def);
                    }
                }
                m
            },
            requires,
            when,
            identity: self.identity.clone(),
        }
    }

    /// The condition tables by name: definitions (as JSON), `requires`, and `when`.
    #[allow(
        clippy::type_complexity,
        reason = "the three tables of `State`, by name"
    )]
    pub(crate) fn condition_names(
        &self,
    ) -> (
        BTreeMap<String, String>,
        BTreeMap<String, BTreeSet<String>>,
        BTreeMap<AssignmentKey, String>,
    ) {
        let name = |t: &Names, i: u32| t.get(i as usize).unwrap_or_default().to_string();
        let action_names: Names = self.actions.iter().map(|(n, _)| n).collect();
        let role_names: Names = self.roles.iter().map(|(n, _)| n).collect();
        let resource_names = self.resources.names();
        let mut requires: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, c) in &self.conditional.requires {
            requires
                .entry(name(&action_names, *a))
                .or_default()
                .insert(self.condition_name(*c));
        }
        let mut when = BTreeMap::new();
        for (i, c) in &self.conditional.when {
            if let Some((r, p, role, _)) = self.assignments.get(*i as usize) {
                let key = AssignmentKey {
                    resource: name(resource_names, *r),
                    principal: name(&self.subjects, *p),
                    role: name(&role_names, *role),
                };
                when.insert(key, self.condition_name(*c));
            }
        }
        let mut conditions = BTreeMap::new();
        for (n, def) in &self.conditional.conditions {
            conditions.insert(n.clone(), def.clone());
        }
        (conditions, requires, when)
    }

    fn condition_name(&self, c: u32) -> String {
        self.conditional
            .conditions
            .get(c as usize)
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    /// Full structural validation: limits, sort order, id syntax, ranges, cycles, depth, table by
    /// table in the order of the fields (the first failure is the error).
    pub fn check(&self, limits: &Limits) -> Result<(), ModelError> {
        self.check_counts(limits)?;
        self.check_actions()?;
        self.check_roles()?;
        self.check_resources()?;
        self.check_resource_depth(limits)?;
        self.check_subjects()?;
        self.check_memberships()?;
        self.check_assignments()?;
        self.check_suspended()?;
        self.check_referenced()?;
        if self.freshness.contains(&0) {
            return invalid("freshness", "a freshness bound is zero".into());
        }
        self.conditional
            .check(self.actions.len(), self.assignments.len())
    }

    /// The number of entries of each table.
    fn check_counts(&self, limits: &Limits) -> Result<(), ModelError> {
        let limit = |what: &str, count: usize, max: usize| {
            if count > max {
                Err(ModelError::new(
                    K::LimitExceeded,
                    what,
                    format!("{count} {what}, over the limit of {max}"),
                ))
            } else {
                Ok(())
            }
        };
        limit("actions", self.actions.len(), limits.max_actions)?;
        limit("roles", self.roles.len(), limits.max_roles)?;
        limit("resources", self.resources.len(), limits.max_entries)?;
        limit("subjects", self.subjects.len(), limits.max_entries)?;
        limit("memberships", self.memberships.len(), limits.max_entries)?;
        limit("assignments", self.assignments.len(), limits.max_entries)?;
        limit("suspended", self.suspended.len(), limits.max_entries)?;
        limit("sessions", self.identity.len(), limits.max_entries)
    }

    fn check_actions(&self) -> Result<(), ModelError> {
        if !is_strictly_sorted(&self.actions.iter().map(|(n, _)| n).collect::<Vec<_>>()) {
            return invalid("actions", "actions are not sorted and unique".into());
        }
        for (n, t) in &self.actions {
            if !is_valid_action_name(n) || Tier::from_u8(*t).is_none() {
                return invalid(
                    "actions",
                    format!("action `{}` has a bad name or tier", shorten(n)),
                );
            }
        }
        Ok(())
    }

    fn check_roles(&self) -> Result<(), ModelError> {
        let n_actions = self.actions.len();
        if !is_strictly_sorted(&self.roles.iter().map(|(n, _)| n).collect::<Vec<_>>()) {
            return invalid("roles", "roles are not sorted and unique".into());
        }
        for (n, ids) in &self.roles {
            if !is_valid_action_name(n)
                || !is_strictly_sorted(ids)
                || ids.iter().any(|a| *a as usize >= n_actions)
            {
                return invalid(
                    "roles",
                    format!("role `{}` has a bad name or action list", shorten(n)),
                );
            }
        }
        Ok(())
    }

    /// Resource ids and parents (in range, not the resource itself); deeper cycles and the depth
    /// are [`Content::check_resource_depth`]'s.
    fn check_resources(&self) -> Result<(), ModelError> {
        let n_res = self.resources.len();
        if !self.resources.names().is_strictly_sorted() {
            return invalid("resources", "resources are not sorted and unique".into());
        }
        for (i, (n, p)) in self.resources.iter().enumerate() {
            if !is_valid_id(n) || p.is_some_and(|p| p as usize >= n_res || p as usize == i) {
                if p.is_some_and(|p| p as usize == i) {
                    return Err(ModelError::new(
                        K::ResourceCycle,
                        n,
                        format!("resource cycle: {n} -> {n}"),
                    ));
                }
                return invalid(
                    "resources",
                    format!("resource `{}` has a bad id or parent", shorten(n)),
                );
            }
        }
        Ok(())
    }

    fn check_subjects(&self) -> Result<(), ModelError> {
        if !self.subjects.is_strictly_sorted() {
            return invalid("subjects", "subjects are not sorted and unique".into());
        }
        if let Some(s) = self.subjects.iter().find(|s| !is_valid_id(s)) {
            return invalid(
                "subjects",
                format!("subject `{}` is not a valid id", shorten(s)),
            );
        }
        Ok(())
    }

    /// Memberships: sorted, in range, into groups only, and without a cycle.
    fn check_memberships(&self) -> Result<(), ModelError> {
        let n_subj = self.subjects.len();
        if !is_strictly_sorted(&self.memberships) {
            return invalid(
                "memberships",
                "memberships are not sorted and unique".into(),
            );
        }
        for (m, g) in &self.memberships {
            let (Some(mn), Some(gn)) = (
                self.subjects.get(*m as usize),
                self.subjects.get(*g as usize),
            ) else {
                return invalid(
                    "memberships",
                    "a membership refers to a subject out of range".into(),
                );
            };
            if !is_group(gn) {
                return Err(ModelError::new(
                    K::NotAGroup,
                    format!("memberships[{mn} in {gn}]"),
                    format!("`{gn}` is not a group"),
                ));
            }
        }
        let (start, adj) = csr(n_subj, self.memberships.iter().copied());
        if let Some(cycle) = find_cycle(n_subj, &start, &adj) {
            let names: Vec<&str> = cycle
                .iter()
                .map(|i| self.subjects.get(*i as usize).unwrap_or("?"))
                .collect();
            return Err(ModelError::new(
                K::GroupCycle,
                names.first().copied().unwrap_or(""),
                format!("group membership cycle: {}", names.join(" -> ")),
            ));
        }
        Ok(())
    }

    fn check_assignments(&self) -> Result<(), ModelError> {
        if !is_strictly_sorted(
            &self
                .assignments
                .iter()
                .map(|(r, p, role, _)| (r, p, role))
                .collect::<Vec<_>>(),
        ) {
            return invalid(
                "assignments",
                "assignments are not sorted and unique".into(),
            );
        }
        let (n_res, n_subj) = (self.resources.len(), self.subjects.len());
        if self.assignments.iter().any(|(r, p, role, _)| {
            *r as usize >= n_res || *p as usize >= n_subj || *role as usize >= self.roles.len()
        }) {
            return invalid(
                "assignments",
                "an assignment refers to an id out of range".into(),
            );
        }
        Ok(())
    }

    fn check_suspended(&self) -> Result<(), ModelError> {
        let n_subj = self.subjects.len();
        if !is_strictly_sorted(&self.suspended)
            || self.suspended.iter().any(|s| *s as usize >= n_subj)
        {
            return invalid(
                "suspended",
                "suspended subjects are not sorted, unique and in range".into(),
            );
        }
        Ok(())
    }

    /// Every subject in the table is named by a membership, an assignment or a suspension.
    fn check_referenced(&self) -> Result<(), ModelError> {
        let mut referenced = vec![false; self.subjects.len()];
        let mut mark = |i: u32| {
            if let Some(r) = referenced.get_mut(i as usize) {
                *r = true;
            }
        };
        self.memberships.iter().for_each(|(m, g)| {
            mark(*m);
            mark(*g);
        });
        self.assignments.iter().for_each(|(_, p, _, _)| mark(*p));
        self.suspended.iter().for_each(|s| mark(*s));
        if referenced.iter().any(|r| !r) {
            return invalid(
                "subjects",
                "the subject table lists a subject nothing refers to".into(),
            );
        }
        Ok(())
    }

    fn check_resource_depth(&self, limits: &Limits) -> Result<(), ModelError> {
        // depth[i]: 0 unknown, u32::MAX on the current walk, else depth + 1.
        let mut depth = vec![0u32; self.resources.len()];
        let parent = |i: u32| self.resources.parent(i as usize);
        let name = |i: u32| self.resources.name(i as usize).unwrap_or("?");
        for i in 0..self.resources.len() {
            let mut walk = Vec::new();
            let mut cur = Some(id32(i));
            let mut base = 0u32;
            while let Some(c) = cur {
                match depth.get(c as usize).copied() {
                    Some(0) => {
                        if let Some(d) = depth.get_mut(c as usize) {
                            *d = u32::MAX;
                        }
                        walk.push(c);
                        cur = parent(c);
                    }
                    Some(u32::MAX) => {
                        let from = walk.iter().position(|w| *w == c).unwrap_or(0);
                        let mut names: Vec<&str> = walk
                            .get(from..)
                            .unwrap_or(&[])
                            .iter()
                            .map(|w| name(*w))
                            .collect();
                        names.push(name(c));
                        return Err(ModelError::new(
                            K::ResourceCycle,
                            name(c),
                            format!("resource cycle: {}", names.join(" -> ")),
                        ));
                    }
                    Some(d) => {
                        base = d;
                        cur = None;
                    }
                    None => break,
                }
            }
            for (k, w) in walk.iter().rev().enumerate() {
                let d = base + id32(k) + 1;
                if d as usize > limits.max_depth {
                    return Err(ModelError::new(
                        K::LimitExceeded,
                        name(*w),
                        format!(
                            "resource `{}` is {d} levels deep, over the limit of {}",
                            name(*w),
                            limits.max_depth
                        ),
                    ));
                }
                if let Some(slot) = depth.get_mut(*w as usize) {
                    *slot = d;
                }
            }
        }
        Ok(())
    }

    /// Gives back spare capacity (a decoded vector grows by doubling).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.resources.shrink_to_fit();
        self.subjects.shrink_to_fit();
        self.memberships.shrink_to_fit();
        self.assignments.shrink_to_fit();
        self.suspended.shrink_to_fit();
    }

    pub(crate) fn freshness(&self) -> Freshness {
        Freshness::from_array(self.freshness)
    }
}
