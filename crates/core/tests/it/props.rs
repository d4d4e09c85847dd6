//! Property tests against a plainly written reference evaluator.
//!
//! The reference (`Reference` below) works straight from a `State`'s name-keyed maps and follows
//! docs/decisions.md ("Gates", 7 to 12) and the conformance README's "Semantics fixed here":
//! suspension inherited through nested groups, `now < expires_at`, and the grant choice (nearest
//! resource, then shortest group path, then principal id, then role name, byte order; the path is
//! the shortest subject-to-principal path, ties broken element by element in byte order). Paths
//! are found by enumerating every simple path, not by the index's algorithm.
//!
//! Models are generated as a plain name-keyed `Spec`, rendered to model JSON and compiled, so the
//! model codec is exercised on every case. Names are chosen so that byte order differs from
//! generation order (`group:B` < `group:_x` < `group:a` < `group:a-` ...).

use std::collections::{BTreeMap, BTreeSet};

use edge_authz::condition::{Attr, Context};
use edge_authz::{
    apply_ops, compile_snapshot, content_digest, diff, diff_models, id_type, inspect,
    sign_watermark, At, Error, Evaluator, Limits, MessageKind, Model, Prepared, Reason, Request,
    State, Tier,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::{state_of_value, test_key};

// ---------------------------------------------------------------------------------------------
// Names

const TENANT: &str = "t";
/// Members (any non-group type), in generation order; byte order is different on purpose.
const USERS: [&str; 12] = [
    "user:b",
    "user:a",
    "user:ab",
    "user:B",
    "agent:a",
    "user:a_",
    "service:z",
    "user:0",
    "user:Zed",
    "user:aa",
    "agent:b",
    "user:c",
];
const GROUPS: [&str; 8] = [
    "group:b", "group:a", "group:ab", "group:B", "group:a-", "group:c", "group:_x", "group:A",
];
const ACTIONS: [&str; 6] = ["read", "write", "del", "x", "a.b", "a-b"];
const ROLES: [&str; 5] = ["viewer", "editor", "b", "a", "ab"];
const RES_TYPES: [&str; 3] = ["org", "ws", "doc"];
const TIERS: [Tier; 3] = [Tier::Low, Tier::Standard, Tier::High];

const UNKNOWN_USER: &str = "user:zz";
const UNKNOWN_ACTION: &str = "nope";
const UNKNOWN_RESOURCE: &str = "doc:zz";
const TYPE_FILTERS: [Option<&str>; 5] = [None, None, Some("doc"), Some("org"), Some("ws")];

fn pick<T: Copy>(items: &[T], i: usize) -> T {
    items[i % items.len()]
}

// ---------------------------------------------------------------------------------------------
// The model generator: a plain, name-keyed spec

/// A model before compiling: names everywhere, plus the universe of users and groups requests
/// may name (some of which the model may never mention).
#[derive(Debug, Clone)]
struct Spec {
    users: Vec<String>,
    groups: Vec<String>,
    actions: BTreeMap<String, Tier>,
    roles: BTreeMap<String, BTreeSet<String>>,
    /// Resource id to parent.
    resources: BTreeMap<String, Option<String>>,
    /// (member, group)
    memberships: BTreeSet<(String, String)>,
    /// (principal, role, resource) to expiry.
    assignments: BTreeMap<(String, String, String), Option<u64>>,
    suspended: BTreeSet<String>,
    freshness: Option<(u64, u64, u64)>,
    /// Conditions by name (model JSON), each action's `requires`, each assignment's `when`.
    conditions: BTreeMap<String, Value>,
    requires: BTreeMap<String, BTreeSet<String>>,
    when: BTreeMap<(String, String, String), String>,
}

type RawAssignment = (bool, usize, usize, usize, Option<u64>);

#[derive(Debug, Clone)]
struct Raw {
    n_actions: usize,
    tiers: Vec<usize>,
    n_roles: usize,
    role_masks: Vec<u8>,
    /// (parent choice, type) per resource; resource i's parent is an index below i.
    resources: Vec<(Option<usize>, usize)>,
    n_users: usize,
    n_groups: usize,
    /// (member is a group, member, group)
    memberships: Vec<(bool, usize, usize)>,
    /// (principal is a group, principal, role, resource, expires_at)
    assignments: Vec<RawAssignment>,
    /// (is a group, which)
    suspended: Vec<(bool, usize)>,
    freshness: Option<(u64, u64, u64)>,
    conditions: RawConditions,
}

/// Conditions: each (kind, operator, literal, step_up, two earlier conditions it may name);
/// `requires` as (action, condition); `when` as (assignment, condition).
#[derive(Debug, Clone)]
struct RawConditions {
    defs: Vec<(usize, usize, usize, bool, usize, usize)>,
    requires: Vec<(usize, usize)>,
    when: Vec<(usize, usize)>,
}

const CONDS: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];

/// Condition `i`'s definition from its raw parts; `all`, `any` and `not` name earlier ones.
fn condition_def(
    i: usize,
    (kind, op, lit, step_up, r1, r2): (usize, usize, usize, bool, usize, usize),
) -> Value {
    let kind = if i == 0 { kind % 3 } else { kind % 6 };
    let abc = ["a", "b", "c"][lit % 3];
    let ab = ["a", "b"][lit % 2];
    let mut def = match kind {
        0 => {
            let ops = ["<", "<=", ">", ">=", "==", "!="];
            json!({"attr": "n", "op": ops[op % 6], "value": lit % 4})
        }
        1 => match op % 4 {
            0 => json!({"attr": "s", "op": "in", "value": ["a", abc]}),
            1 => json!({"attr": "s", "op": "not_in", "value": [abc]}),
            2 => json!({"attr": "s", "op": "==", "value": abc}),
            _ => json!({"attr": "s", "op": "!=", "value": abc}),
        },
        2 => json!({"attr": "l", "op": "contains", "value": ab}),
        3 => json!({"all": [CONDS[r1 % i], CONDS[r2 % i]]}),
        4 => json!({"any": [CONDS[r1 % i], CONDS[r2 % i]]}),
        _ => json!({"not": CONDS[r1 % i]}),
    };
    if step_up {
        def["step_up"] = json!(true);
    }
    def
}

fn raw_conditions() -> impl Strategy<Value = RawConditions> {
    (
        vec(
            (
                0usize..6,
                0usize..6,
                0usize..4,
                prop::bool::weighted(0.3),
                0usize..6,
                0usize..6,
            ),
            0..=6,
        ),
        vec((0usize..6, 0usize..6), 0..=3),
        vec((0usize..25, 0usize..6), 0..=8),
    )
        .prop_map(|(defs, requires, when)| RawConditions {
            defs,
            requires,
            when,
        })
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        (
            1usize..=6,
            vec(0usize..3, 6),
            1usize..=5,
            vec(any::<u8>(), 5),
        ),
        vec(
            (proptest::option::weighted(0.85, 0usize..25), 0usize..3),
            1..=25,
        ),
        (1usize..=12, 1usize..=8),
        vec((prop::bool::weighted(0.35), 0usize..12, 0usize..8), 0..=20),
        vec(
            (
                prop::bool::weighted(0.45),
                0usize..12,
                0usize..5,
                0usize..25,
                proptest::option::of(0u64..20),
            ),
            0..=25,
        ),
        vec((prop::bool::weighted(0.4), 0usize..12), 0..=4),
        proptest::option::of((5_000u64..400_000, 5_000u64..400_000, 5_000u64..400_000)),
        raw_conditions(),
    )
        .prop_map(
            |(
                (n_actions, tiers, n_roles, role_masks),
                resources,
                (n_users, n_groups),
                memberships,
                assignments,
                suspended,
                freshness,
                conditions,
            )| Raw {
                n_actions,
                tiers,
                n_roles,
                role_masks,
                resources,
                n_users,
                n_groups,
                memberships,
                assignments,
                suspended,
                freshness,
                conditions,
            },
        )
}

impl Raw {
    fn spec(&self) -> Spec {
        let users: Vec<String> = USERS[..self.n_users]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let groups: Vec<String> = GROUPS[..self.n_groups]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let actions: BTreeMap<String, Tier> = (0..self.n_actions)
            .map(|i| (ACTIONS[i].to_string(), TIERS[self.tiers[i]]))
            .collect();
        let roles = (0..self.n_roles)
            .map(|r| {
                let acts = (0..self.n_actions)
                    .filter(|j| self.role_masks[r] & (1 << j) != 0)
                    .map(|j| ACTIONS[j].to_string())
                    .collect();
                (ROLES[r].to_string(), acts)
            })
            .collect();
        let mut ids: Vec<String> = Vec::new();
        let mut resources = BTreeMap::new();
        for (i, (parent, ty)) in self.resources.iter().enumerate() {
            let id = format!("{}:{}", RES_TYPES[*ty], i);
            let parent = match parent {
                Some(p) if i > 0 => Some(ids[p % i].clone()),
                _ => None,
            };
            resources.insert(id.clone(), parent);
            ids.push(id);
        }
        let mut memberships = BTreeSet::new();
        for &(is_group, m, g) in &self.memberships {
            let gi = g % self.n_groups;
            if is_group {
                // group -> group edges only from a higher index to a lower one: no cycles.
                let mi = m % self.n_groups;
                if mi == gi {
                    continue;
                }
                let (hi, lo) = (mi.max(gi), mi.min(gi));
                memberships.insert((groups[hi].clone(), groups[lo].clone()));
            } else {
                memberships.insert((users[m % self.n_users].clone(), groups[gi].clone()));
            }
        }
        let mut assignments = BTreeMap::new();
        for &(is_group, p, r, res, exp) in &self.assignments {
            let principal = if is_group {
                groups[p % self.n_groups].clone()
            } else {
                users[p % self.n_users].clone()
            };
            assignments.insert(
                (
                    principal,
                    ROLES[r % self.n_roles].to_string(),
                    ids[res % ids.len()].clone(),
                ),
                exp,
            );
        }
        let suspended = self
            .suspended
            .iter()
            .map(|&(is_group, i)| {
                if is_group {
                    groups[i % self.n_groups].clone()
                } else {
                    users[i % self.n_users].clone()
                }
            })
            .collect();
        let rc = &self.conditions;
        let conditions: BTreeMap<String, Value> = rc
            .defs
            .iter()
            .enumerate()
            .map(|(i, d)| (CONDS[i].to_string(), condition_def(i, *d)))
            .collect();
        let names: Vec<String> = conditions.keys().cloned().collect();
        let mut requires: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut when = BTreeMap::new();
        if !names.is_empty() {
            let acts: Vec<String> = actions.keys().cloned().collect();
            for &(a, c) in &rc.requires {
                requires
                    .entry(pick_s(&acts, a))
                    .or_default()
                    .insert(pick_s(&names, c));
            }
            let keys: Vec<(String, String, String)> = assignments.keys().cloned().collect();
            for &(k, c) in &rc.when {
                if !keys.is_empty() {
                    when.insert(keys[k % keys.len()].clone(), pick_s(&names, c));
                }
            }
        }
        Spec {
            users,
            groups,
            actions,
            roles,
            resources,
            memberships,
            assignments,
            suspended,
            freshness: self.freshness,
            conditions,
            requires,
            when,
        }
    }
}

impl Spec {
    /// The model JSON (docs/model.md). `reversed` lists every array backwards, which must
    /// compile to the same state.
    fn to_json(&self, reversed: bool) -> Value {
        fn order<T>(mut v: Vec<T>, reversed: bool) -> Vec<T> {
            if reversed {
                v.reverse();
            }
            v
        }
        let mut actions = serde_json::Map::new();
        for (name, tier) in order(self.actions.iter().collect(), reversed) {
            let mut def = json!({ "tier": tier.as_str() });
            if let Some(r) = self.requires.get(name) {
                def["requires"] = json!(order(r.iter().collect(), reversed));
            }
            actions.insert(name.clone(), def);
        }
        let mut roles = serde_json::Map::new();
        for (name, acts) in order(self.roles.iter().collect(), reversed) {
            roles.insert(name.clone(), json!(order(acts.iter().collect(), reversed)));
        }
        let resources: Vec<Value> = order(self.resources.iter().collect(), reversed)
            .into_iter()
            .map(|(id, p)| match p {
                Some(p) => json!({ "id": id, "parent": p }),
                None => json!({ "id": id }),
            })
            .collect();
        let memberships: Vec<Value> = order(self.memberships.iter().collect(), reversed)
            .into_iter()
            .map(|(m, g)| json!({ "member": m, "group": g }))
            .collect();
        let assignments: Vec<Value> = order(self.assignments.iter().collect(), reversed)
            .into_iter()
            .map(|(k @ (p, r, res), exp)| {
                let mut a = json!({ "principal": p, "role": r, "resource": res });
                if let Some(e) = exp {
                    a["expires_at"] = json!(e);
                }
                if let Some(w) = self.when.get(k) {
                    a["when"] = json!(w);
                }
                a
            })
            .collect();
        let mut model = json!({
            "version": 1,
            "tenant": TENANT,
            "actions": actions,
            "roles": roles,
            "resources": resources,
            "memberships": memberships,
            "assignments": assignments,
            "suspended": order(self.suspended.iter().collect(), reversed),
        });
        if let Some((low, standard, high)) = self.freshness {
            model["freshness"] = json!({ "low": low, "standard": standard, "high": high });
        }
        if !self.conditions.is_empty() {
            let mut conditions = serde_json::Map::new();
            for (n, d) in order(self.conditions.iter().collect(), reversed) {
                conditions.insert(n.clone(), d.clone());
            }
            model["conditions"] = Value::Object(conditions);
        }
        model
    }

    fn state(&self) -> State {
        state_of_value(self.to_json(false))
    }

    /// Whether `from` reaches `to` through memberships (or is it).
    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n.clone()) {
                stack.extend(
                    self.memberships
                        .iter()
                        .filter(|(m, _)| *m == n)
                        .map(|(_, g)| g.clone()),
                );
            }
        }
        false
    }

    fn resource_ids(&self) -> Vec<String> {
        self.resources.keys().cloned().collect()
    }

    fn apply(&mut self, m: &Mutation) {
        let ids = self.resource_ids();
        match *m {
            Mutation::AddMembership(is_group, mi, gi) => {
                let group = pick_s(&self.groups, gi);
                let member = if is_group {
                    pick_s(&self.groups, mi)
                } else {
                    pick_s(&self.users, mi)
                };
                // Skip edges that would close a cycle (or are self edges).
                if !self.reaches(&group, &member) {
                    self.memberships.insert((member, group));
                }
            }
            Mutation::RemoveMembership(i) => {
                if let Some(e) = nth(&self.memberships, i) {
                    self.memberships.remove(&e);
                }
            }
            Mutation::AddAssignment(is_group, p, r, res, exp) => {
                let principal = if is_group {
                    pick_s(&self.groups, p)
                } else {
                    pick_s(&self.users, p)
                };
                let roles: Vec<String> = self.roles.keys().cloned().collect();
                if !roles.is_empty() && !ids.is_empty() {
                    self.assignments
                        .insert((principal, pick_s(&roles, r), pick_s(&ids, res)), exp);
                }
            }
            Mutation::RemoveAssignment(i) => {
                if let Some(k) = nth(&self.assignments.keys().cloned().collect(), i) {
                    self.assignments.remove(&k);
                    self.when.remove(&k);
                }
            }
            Mutation::Expiry(i, exp) => {
                if let Some(k) = nth(&self.assignments.keys().cloned().collect(), i) {
                    self.assignments.insert(k, exp);
                }
            }
            Mutation::Suspend(is_group, i) => {
                let s = if is_group {
                    pick_s(&self.groups, i)
                } else {
                    pick_s(&self.users, i)
                };
                self.suspended.insert(s);
            }
            Mutation::Unsuspend(i) => {
                if let Some(s) = nth(&self.suspended, i) {
                    self.suspended.remove(&s);
                }
            }
            Mutation::MoveResource(i, p) => {
                if ids.is_empty() {
                    return;
                }
                let id = pick_s(&ids, i);
                let parent = p.map(|p| pick_s(&ids, p));
                // Refuse a parent that is the resource or one of its descendants.
                let mut up = parent.clone();
                while let Some(u) = up {
                    if u == id {
                        return;
                    }
                    up = self.resources.get(&u).cloned().flatten();
                }
                self.resources.insert(id, parent);
            }
            Mutation::RemoveResource(i) => {
                if ids.len() < 2 {
                    return;
                }
                let id = pick_s(&ids, i);
                let parent = self.resources.remove(&id).flatten();
                for p in self.resources.values_mut() {
                    if p.as_deref() == Some(id.as_str()) {
                        *p = parent.clone();
                    }
                }
                self.assignments.retain(|(_, _, r), _| *r != id);
                self.when.retain(|(_, _, r), _| *r != id);
            }
            Mutation::AddResource(ty, p) => {
                let id = format!("{}:m{}", RES_TYPES[ty % 3], self.resources.len());
                let parent = p.filter(|_| !ids.is_empty()).map(|p| pick_s(&ids, p));
                self.resources.entry(id).or_insert(parent);
            }
            Mutation::DropRoleAction(r, a) => {
                let roles: Vec<String> = self.roles.keys().cloned().collect();
                if roles.is_empty() {
                    return;
                }
                if let Some(acts) = self.roles.get_mut(&pick_s(&roles, r)) {
                    if let Some(x) = nth(acts, a) {
                        acts.remove(&x);
                    }
                }
            }
            Mutation::AddRoleAction(r, a) => {
                let roles: Vec<String> = self.roles.keys().cloned().collect();
                let actions: Vec<String> = self.actions.keys().cloned().collect();
                if roles.is_empty() || actions.is_empty() {
                    return;
                }
                if let Some(acts) = self.roles.get_mut(&pick_s(&roles, r)) {
                    acts.insert(pick_s(&actions, a));
                }
            }
            Mutation::Retier(a, t) => {
                let actions: Vec<String> = self.actions.keys().cloned().collect();
                if !actions.is_empty() {
                    self.actions.insert(pick_s(&actions, a), TIERS[t % 3]);
                }
            }
            Mutation::RemoveAction(a) => {
                let actions: Vec<String> = self.actions.keys().cloned().collect();
                if actions.len() < 2 {
                    return;
                }
                let name = pick_s(&actions, a);
                self.actions.remove(&name);
                self.requires.remove(&name);
                for acts in self.roles.values_mut() {
                    acts.remove(&name);
                }
            }
            Mutation::Freshness(f) => self.freshness = f,
            Mutation::When(k, c) => {
                let keys: Vec<(String, String, String)> =
                    self.assignments.keys().cloned().collect();
                let names: Vec<String> = self.conditions.keys().cloned().collect();
                if keys.is_empty() {
                    return;
                }
                let key = keys[k % keys.len()].clone();
                match c.filter(|_| !names.is_empty()) {
                    Some(c) => self.when.insert(key, pick_s(&names, c)),
                    None => self.when.remove(&key),
                };
            }
            Mutation::Requires(a, c) => {
                let acts: Vec<String> = self.actions.keys().cloned().collect();
                let names: Vec<String> = self.conditions.keys().cloned().collect();
                if acts.is_empty() || names.is_empty() {
                    return;
                }
                let (a, c) = (pick_s(&acts, a), pick_s(&names, c));
                let set = self.requires.entry(a.clone()).or_default();
                if !set.remove(&c) {
                    set.insert(c);
                }
                if set.is_empty() {
                    self.requires.remove(&a);
                }
            }
            Mutation::Condition(i, d) => {
                // A new definition for a condition: a comparison only, so no cycle can form.
                let names: Vec<String> = self.conditions.keys().cloned().collect();
                if names.is_empty() {
                    return;
                }
                let name = pick_s(&names, i);
                self.conditions.insert(name, condition_def(0, d));
            }
        }
    }
}

fn pick_s(items: &[String], i: usize) -> String {
    items[i % items.len()].clone()
}

fn nth<T: Clone + Ord>(set: &BTreeSet<T>, i: usize) -> Option<T> {
    if set.is_empty() {
        None
    } else {
        set.iter().nth(i % set.len()).cloned()
    }
}

/// A small change to a model.
#[derive(Debug, Clone)]
enum Mutation {
    AddMembership(bool, usize, usize),
    RemoveMembership(usize),
    AddAssignment(bool, usize, usize, usize, Option<u64>),
    RemoveAssignment(usize),
    Expiry(usize, Option<u64>),
    Suspend(bool, usize),
    Unsuspend(usize),
    MoveResource(usize, Option<usize>),
    RemoveResource(usize),
    AddResource(usize, Option<usize>),
    DropRoleAction(usize, usize),
    AddRoleAction(usize, usize),
    Retier(usize, usize),
    RemoveAction(usize),
    Freshness(Option<(u64, u64, u64)>),
    /// Put (or, with `None`, take off) a condition on an assignment.
    When(usize, Option<usize>),
    /// Toggle a condition in an action's `requires`.
    Requires(usize, usize),
    /// Redefine a condition.
    Condition(usize, (usize, usize, usize, bool, usize, usize)),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = || 0usize..32;
    prop_oneof![
        4 => (any::<bool>(), i(), i()).prop_map(|(g, m, x)| Mutation::AddMembership(g, m, x)),
        3 => i().prop_map(Mutation::RemoveMembership),
        3 => (prop::bool::weighted(0.45), i(), i(), i(), proptest::option::of(0u64..20))
            .prop_map(|(g, p, r, x, e)| Mutation::AddAssignment(g, p, r, x, e)),
        3 => i().prop_map(Mutation::RemoveAssignment),
        3 => (i(), proptest::option::of(0u64..20)).prop_map(|(a, e)| Mutation::Expiry(a, e)),
        2 => (prop::bool::weighted(0.4), i()).prop_map(|(g, s)| Mutation::Suspend(g, s)),
        2 => i().prop_map(Mutation::Unsuspend),
        2 => (i(), proptest::option::of(i())).prop_map(|(r, p)| Mutation::MoveResource(r, p)),
        1 => i().prop_map(Mutation::RemoveResource),
        1 => (i(), proptest::option::of(i())).prop_map(|(t, p)| Mutation::AddResource(t, p)),
        2 => (i(), i()).prop_map(|(r, a)| Mutation::DropRoleAction(r, a)),
        1 => (i(), i()).prop_map(|(r, a)| Mutation::AddRoleAction(r, a)),
        1 => (i(), i()).prop_map(|(a, t)| Mutation::Retier(a, t)),
        1 => i().prop_map(Mutation::RemoveAction),
        1 => proptest::option::of((5_000u64..400_000, 5_000u64..400_000, 5_000u64..400_000)).prop_map(Mutation::Freshness),
        2 => (i(), proptest::option::of(i())).prop_map(|(k, c)| Mutation::When(k, c)),
        2 => (i(), i()).prop_map(|(a, c)| Mutation::Requires(a, c)),
        2 => (i(), (0usize..6, 0usize..6, 0usize..4, any::<bool>(), 0usize..6, 0usize..6))
            .prop_map(|(c, d)| Mutation::Condition(c, d)),
    ]
}

/// Model `a` and model `b` of the same tenant: most of the time `b` is a few mutations of `a`,
/// sometimes an independent model.
fn model_pair() -> impl Strategy<Value = (Spec, Spec)> {
    (
        raw(),
        vec(mutation(), 1..=4),
        prop::bool::weighted(0.2),
        raw(),
    )
        .prop_map(|(ra, muts, independent, rb)| {
            let a = ra.spec();
            let b = if independent {
                rb.spec()
            } else {
                let mut b = a.clone();
                for m in &muts {
                    b.apply(m);
                }
                b
            };
            (a, b)
        })
}

// ---------------------------------------------------------------------------------------------
// The reference evaluator

/// A grant: principal, role, resource, path, `when`.
type GrantT = (String, String, String, Vec<String>, Option<String>);
/// A decision: reason, grant, and for a refusal by conditions the failing conditions and the
/// missing attributes.
type Outcome = (Reason, Option<GrantT>, Vec<String>, Vec<String>);

/// A context for the reference: attribute name to its JSON value.
type RefCtx = BTreeMap<String, Value>;

/// The contexts requests are asked in: attributes `n` (a number), `s` (a string), `l` (a list of
/// strings), absent or of the wrong type in some.
fn ref_contexts() -> Vec<RefCtx> {
    [
        json!({}),
        json!({"n": 1, "s": "a", "l": ["a"]}),
        json!({"n": 3, "s": "b", "l": ["b"]}),
        json!({"n": "x", "s": 1, "l": "a"}),
        json!({"n": 0}),
        json!({"s": "a", "l": ["a", "b"]}),
        json!({"n": 2, "s": "c", "l": []}),
        json!({"n": 3.5, "s": "a", "l": ["b"]}),
    ]
    .into_iter()
    .map(|v| v.as_object().unwrap().clone().into_iter().collect())
    .collect()
}

/// The same contexts as the core takes them.
fn contexts() -> Vec<Context> {
    ref_contexts()
        .iter()
        .map(|c| {
            let attrs = c.iter().map(|(k, v)| {
                let a = match v {
                    Value::String(s) => Attr::Str(s.clone()),
                    Value::Number(n) => Attr::Num(n.as_f64().unwrap()),
                    Value::Bool(b) => Attr::Bool(*b),
                    Value::Array(l) => {
                        Attr::List(l.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    }
                    _ => unreachable!(),
                };
                (k.clone(), a)
            });
            Context::new(attrs).unwrap()
        })
        .collect()
}

/// A comparison on a context, plainly: `None` when the attribute is absent or of another type.
fn ref_compare(def: &Value, ctx: &RefCtx) -> Option<bool> {
    let v = ctx.get(def["attr"].as_str()?)?;
    let lit = &def["value"];
    match def["op"].as_str()? {
        op @ ("<" | "<=" | ">" | ">=") => {
            let (x, y) = (v.as_f64()?, lit.as_f64()?);
            Some(match op {
                "<" => x < y,
                "<=" => x <= y,
                ">" => x > y,
                _ => x >= y,
            })
        }
        op @ ("==" | "!=") => {
            let same = match (v, lit) {
                (Value::String(a), Value::String(b)) => a == b,
                (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                (Value::Bool(a), Value::Bool(b)) => a == b,
                _ => return None,
            };
            Some(same == (op == "=="))
        }
        op @ ("in" | "not_in") => {
            let x = v.as_str()?;
            let found = lit.as_array()?.iter().any(|y| y.as_str() == Some(x));
            Some(found == (op == "in"))
        }
        "contains" => {
            let items = v.as_array()?;
            if items.iter().any(|i| !i.is_string()) {
                return None;
            }
            Some(items.iter().any(|i| i == lit))
        }
        _ => None,
    }
}

/// A condition's truth, three-valued (`None`: undetermined), by recursion on its parts.
fn ref_truth(state: &State, name: &str, ctx: &RefCtx) -> Option<bool> {
    let def = &state.conditions[name];
    let parts = |k: &str| -> Vec<Option<bool>> {
        def[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| ref_truth(state, n.as_str().unwrap(), ctx))
            .collect()
    };
    if def.get("all").is_some() {
        let p = parts("all");
        if p.contains(&Some(false)) {
            Some(false)
        } else if p.contains(&None) {
            None
        } else {
            Some(true)
        }
    } else if def.get("any").is_some() {
        let p = parts("any");
        if p.contains(&Some(true)) {
            Some(true)
        } else if p.contains(&None) {
            None
        } else {
            Some(false)
        }
    } else if let Some(n) = def.get("not") {
        ref_truth(state, n.as_str().unwrap(), ctx).map(|b| !b)
    } else {
        ref_compare(def, ctx)
    }
}

/// The attributes of the undetermined comparisons within condition `name`.
fn ref_missing(state: &State, name: &str, ctx: &RefCtx, out: &mut BTreeSet<String>) {
    let def = &state.conditions[name];
    let mut any_part = false;
    for k in ["all", "any"] {
        for n in def.get(k).and_then(Value::as_array).into_iter().flatten() {
            any_part = true;
            ref_missing(state, n.as_str().unwrap(), ctx, out);
        }
    }
    if let Some(n) = def.get("not") {
        any_part = true;
        ref_missing(state, n.as_str().unwrap(), ctx, out);
    }
    if !any_part && ref_compare(def, ctx).is_none() {
        out.insert(def["attr"].as_str().unwrap().to_string());
    }
}

/// Every simple path from `subject` up through memberships, keeping for each reached subject
/// (the subject itself included, with the path `[subject]`) the shortest path, ties broken by
/// comparing paths element by element in byte order.
fn best_paths(state: &State, subject: &str) -> BTreeMap<String, Vec<String>> {
    fn walk(state: &State, path: &mut Vec<String>, best: &mut BTreeMap<String, Vec<String>>) {
        let Some(node) = path.last().cloned() else {
            return;
        };
        let better = match best.get(&node) {
            None => true,
            Some(old) => (path.len(), path.as_slice()) < (old.len(), old.as_slice()),
        };
        if better {
            best.insert(node.clone(), path.clone());
        }
        let groups: Vec<String> = state
            .memberships
            .iter()
            .filter(|(m, _)| *m == node)
            .map(|(_, g)| g.clone())
            .collect();
        for g in groups {
            if path.contains(&g) {
                continue; // simple paths only
            }
            path.push(g);
            walk(state, path, best);
            path.pop();
        }
    }
    let mut best = BTreeMap::new();
    walk(state, &mut vec![subject.to_string()], &mut best);
    best
}

/// The resource and its ancestors, with their distance from it.
fn ancestors(state: &State, resource: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let mut cur = Some(resource.to_string());
    let mut d = 0;
    while let Some(r) = cur {
        if out.contains_key(&r) {
            break;
        }
        cur = state.resources.get(&r).cloned().flatten();
        out.insert(r, d);
        d += 1;
    }
    out
}

fn ref_check(state: &State, subject: &str, action: &str, resource: &str, now: u64) -> Outcome {
    ref_check_in(state, subject, action, resource, now, &RefCtx::new())
}

fn ref_check_in(
    state: &State,
    subject: &str,
    action: &str,
    resource: &str,
    now: u64,
    ctx: &RefCtx,
) -> Outcome {
    let refused = |reason| (reason, None, Vec::new(), Vec::new());
    if !state.actions.contains_key(action) {
        return refused(Reason::UnknownAction);
    }
    let paths = best_paths(state, subject);
    if paths.keys().any(|p| state.suspended.contains(p)) {
        return refused(Reason::Suspended);
    }
    if !state.resources.contains_key(resource) {
        return refused(Reason::UnknownResource);
    }
    let chain = ancestors(state, resource);
    // Every candidate (conditions ignored), in the order of preference.
    let mut candidates = Vec::new();
    for (k, exp) in &state.assignments {
        let Some(&dist) = chain.get(&k.resource) else {
            continue;
        };
        let Some(path) = paths.get(&k.principal) else {
            continue;
        };
        if !state
            .roles
            .get(&k.role)
            .is_some_and(|acts| acts.contains(action))
        {
            continue;
        }
        if exp.is_some_and(|e| now >= e) {
            continue;
        }
        candidates.push((dist, path.len(), k.principal.clone(), k.role.clone(), k));
    }
    candidates.sort_by(|a, b| (a.0, a.1, &a.2, &a.3).cmp(&(b.0, b.1, &b.2, &b.3)));
    let requires: Vec<&String> = state.requires.get(action).into_iter().flatten().collect();
    let mut failing: Vec<BTreeSet<String>> = Vec::new();
    for (_, _, p, role, k) in &candidates {
        let when = state.when.get(*k);
        let failed: BTreeSet<String> = when
            .into_iter()
            .chain(requires.iter().copied())
            .filter(|c| ref_truth(state, c, ctx) != Some(true))
            .cloned()
            .collect();
        if failed.is_empty() {
            let path = paths[p].clone();
            let grant = (
                p.clone(),
                role.clone(),
                k.resource.clone(),
                path,
                when.cloned(),
            );
            return (Reason::Granted, Some(grant), Vec::new(), Vec::new());
        }
        failing.push(failed);
    }
    if failing.is_empty() {
        return refused(Reason::NoGrant);
    }
    let step_up = |c: &String| state.conditions[c].get("step_up") == Some(&json!(true));
    let by_step_up: Vec<&BTreeSet<String>> =
        failing.iter().filter(|f| f.iter().all(step_up)).collect();
    let (reason, named): (Reason, BTreeSet<String>) = if by_step_up.is_empty() {
        (
            Reason::ConditionFailed,
            failing.iter().flatten().cloned().collect(),
        )
    } else {
        (
            Reason::StepUpRequired,
            by_step_up.into_iter().flatten().cloned().collect(),
        )
    };
    let mut missing = BTreeSet::new();
    for c in &named {
        ref_missing(state, c, ctx, &mut missing);
    }
    (
        reason,
        None,
        named.into_iter().collect(),
        missing.into_iter().collect(),
    )
}

fn ref_list_resources(
    state: &State,
    subject: &str,
    action: &str,
    ty: Option<&str>,
    now: u64,
    ctx: &RefCtx,
) -> Result<Vec<String>, &'static str> {
    if !state.actions.contains_key(action) {
        return Err("unknown_action");
    }
    Ok(state
        .resources
        .keys()
        .filter(|r| ty.is_none_or(|t| id_type(r) == t))
        .filter(|r| ref_check_in(state, subject, action, r, now, ctx).0 == Reason::Granted)
        .cloned()
        .collect())
}

/// Subjects known to the state: those in memberships, assignments or the suspended list.
fn known_subjects(state: &State) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (m, g) in &state.memberships {
        out.insert(m.clone());
        out.insert(g.clone());
    }
    for k in state.assignments.keys() {
        out.insert(k.principal.clone());
    }
    out.extend(state.suspended.iter().cloned());
    out
}

fn ref_list_subjects(
    state: &State,
    resource: &str,
    action: &str,
    now: u64,
    ctx: &RefCtx,
) -> Result<Vec<String>, &'static str> {
    if !state.actions.contains_key(action) {
        return Err("unknown_action");
    }
    Ok(known_subjects(state)
        .into_iter()
        .filter(|s| id_type(s) != "group")
        .filter(|s| ref_check_in(state, s, action, resource, now, ctx).0 == Reason::Granted)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The evaluator side

fn ev_check(ev: &Evaluator, subject: &str, action: &str, resource: &str, now: u64) -> Outcome {
    ev_check_in(ev, subject, action, resource, now, &Context::default())
}

fn ev_check_in(
    ev: &Evaluator,
    subject: &str,
    action: &str,
    resource: &str,
    now: u64,
    ctx: &Context,
) -> Outcome {
    let at = At::clock(now).with_context(ctx);
    let d = ev.check(Request::new(subject, action, resource), at);
    assert_eq!(
        d.allowed,
        d.reason == Reason::Granted,
        "allowed and reason disagree: {d:?}"
    );
    let view = ev.explain(&d);
    let grant = view.grant.map(|g| {
        (
            g.principal.to_string(),
            g.role.to_string(),
            g.resource.to_string(),
            g.path.iter().map(|s| s.to_string()).collect(),
            g.when.map(str::to_string),
        )
    });
    assert_eq!(
        d.allowed,
        grant.is_some(),
        "a grant must come exactly with an allowed decision: {d:?}"
    );
    let own = |v: Option<Vec<&str>>| -> Vec<String> {
        v.unwrap_or_default()
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    (d.reason, grant, own(view.conditions), own(view.missing))
}

fn code<T>(r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| e.code().to_string())
}

fn preview(state: &State) -> Evaluator {
    Evaluator::preview(state).unwrap()
}

fn signed() -> Evaluator {
    Evaluator::with_keys(TENANT, vec![test_key().public_key()]).unwrap()
}

/// Every subject, action and resource either spec may name, plus unknown ones.
fn universe(specs: &[&Spec]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut subjects = BTreeSet::new();
    let mut actions = BTreeSet::new();
    let mut resources = BTreeSet::new();
    for s in specs {
        subjects.extend(s.users.iter().cloned());
        subjects.extend(s.groups.iter().cloned());
        actions.extend(s.actions.keys().cloned());
        resources.extend(s.resources.keys().cloned());
    }
    subjects.insert(UNKNOWN_USER.to_string());
    actions.insert(UNKNOWN_ACTION.to_string());
    resources.insert(UNKNOWN_RESOURCE.to_string());
    (
        subjects.into_iter().collect(),
        actions.into_iter().collect(),
        resources.into_iter().collect(),
    )
}

/// A short description of a model for failure messages.
fn show(spec: &Spec) -> String {
    serde_json::to_string(&spec.to_json(false)).unwrap()
}

/// Random requests: indices into the universe, and `now`.
fn requests() -> impl Strategy<Value = Vec<(usize, usize, usize, u64)>> {
    vec((0usize..64, 0usize..64, 0usize..64, 0u64..=25), 1..=40)
}

/// The times at which two states are compared exhaustively: both ends of the range plus a few
/// random ones (expiries lie in 0..20, so these straddle boundaries).
fn nows() -> impl Strategy<Value = Vec<u64>> {
    vec(0u64..=25, 3).prop_map(|mut v| {
        v.push(0);
        v.push(20);
        v.sort_unstable();
        v.dedup();
        v
    })
}

/// Case counts: the pure properties are cheap; the signed ones pay for ed25519 in debug builds
/// (about 15 ms an operation), so they run fewer cases. No failure persistence: nothing is
/// written next to the tests.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Property (a): a preview evaluator over `r`'s model decides, explains and lists exactly like
/// the reference for each request.
fn preview_agrees(r: &Raw, reqs: &[(usize, usize, usize, u64)]) -> Result<(), TestCaseError> {
    let spec = r.spec();
    let state = spec.state();
    let ev = preview(&state);
    let (subjects, actions, resources) = universe(&[&spec]);
    let (ref_ctxs, ctxs) = (ref_contexts(), contexts());
    for &(si, ai, ri, now) in reqs {
        let (s, a, res) = (
            pick_s(&subjects, si),
            pick_s(&actions, ai),
            pick_s(&resources, ri),
        );
        // The context: none when the model has no conditions, else one of the fixed ones.
        let c = if spec.conditions.is_empty() {
            0
        } else {
            (si * 7 + ri) % ctxs.len()
        };
        let (rc, ctx) = (&ref_ctxs[c], &ctxs[c]);
        let got = ev_check_in(&ev, &s, &a, &res, now, ctx);
        let want = ref_check_in(&state, &s, &a, &res, now, rc);
        prop_assert_eq!(
            &got,
            &want,
            "check({}, {}, {}, now {}, context {:?}) on {}",
            s,
            a,
            res,
            now,
            rc,
            show(&spec)
        );
        let d = ev.check(Request::new(&s, &a, &res), now);
        prop_assert_eq!(d.tier, state.actions.get(&a).copied());
        prop_assert_eq!(d.epoch, Some(0));

        let at = At::clock(now).with_context(ctx);
        let ty = pick(&TYPE_FILTERS, si + ri);
        let got = code(ev.list_resources(&s, &a, ty, at));
        let want = ref_list_resources(&state, &s, &a, ty, now, rc).map_err(str::to_string);
        prop_assert_eq!(
            &got,
            &want,
            "list_resources({}, {}, {:?}, now {}, context {:?}) on {}",
            s,
            a,
            ty,
            now,
            rc,
            show(&spec)
        );

        let got = code(ev.list_subjects(&res, &a, at));
        let want = ref_list_subjects(&state, &res, &a, now, rc).map_err(str::to_string);
        prop_assert_eq!(
            &got,
            &want,
            "list_subjects({}, {}, now {}, context {:?}) on {}",
            res,
            a,
            now,
            rc,
            show(&spec)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(384))]

    /// (a) A preview evaluator decides, explains and lists exactly like the reference.
    #[test]
    fn preview_matches_reference(r in raw(), reqs in requests()) {
        preview_agrees(&r, &reqs)?;
    }

    /// (a, dense) Resources with more assignments than a scan handles get a principal table and
    /// a bloom filter: with 13 to 60 more assignments on the first resources (most others'
    /// ancestors), a preview evaluator still agrees with the reference.
    #[test]
    fn dense_resources_match_reference(
        mut r in raw(),
        extra in vec((prop::bool::weighted(0.5), 0usize..12, 0usize..5, 0usize..3, proptest::option::weighted(0.2, 0u64..20)), 13..=60),
        reqs in requests(),
    ) {
        r.assignments.extend(extra);
        preview_agrees(&r, &reqs)?;
    }

    /// (b, unsigned part) `diff` + `apply_ops` turns a into b; diffing a state with itself is empty.
    #[test]
    fn diff_then_apply_ops_gives_b((sa, sb) in model_pair()) {
        let a = sa.state();
        let b = sb.state();
        let d = diff(&a, &b).unwrap();
        let mut patched = a.clone();
        apply_ops(&mut patched, &d.ops).unwrap();
        prop_assert_eq!(&patched, &b, "apply_ops(diff(a, b)) != b; a = {}, b = {}", show(&sa), show(&sb));
        // The evaluator applies deltas in ids (`Content::apply`): it must agree with `apply_ops`.
        let in_ids = edge_authz::Content::from_state(&a).unwrap().apply(&d.ops);
        prop_assert_eq!(in_ids.ok(), Some(edge_authz::Content::from_state(&b).unwrap()), "Content::apply; a = {}, b = {}", show(&sa), show(&sb));
        let same = diff(&a, &a).unwrap();
        prop_assert!(same.ops.is_empty() && !same.revokes);
        prop_assert_eq!(d.ops.is_empty(), a == b);
    }

    /// (d, model part) Model JSON: array order does not matter, and
    /// JSON -> State -> `Model::from_state` -> JSON -> State is the identity.
    #[test]
    fn model_json_round_trips(r in raw()) {
        let spec = r.spec();
        let state = spec.state();
        prop_assert_eq!(&state_of_value(spec.to_json(true)), &state);
        let text = serde_json::to_string(&Model::from_state(&state)).unwrap();
        let back = Model::from_json(&text).unwrap().compile().unwrap().state;
        prop_assert_eq!(&back, &state, "model JSON round trip: {}", text);
        let text2 = serde_json::to_string(&Model::from_state(&back)).unwrap();
        prop_assert_eq!(&text2, &text);
    }
}

proptest! {
    #![proptest_config(config(768))]

    /// (c) A change that denies any request a allowed is flagged as revoking; equivalently, a
    /// change not flagged denies nothing a allowed. Checked with preview evaluators on every
    /// request at a few times, and with the reference on a sample.
    #[test]
    fn revokes_is_sound((sa, sb) in model_pair(), nows in nows(), reqs in requests()) {
        let a = sa.state();
        let b = sb.state();
        let d = diff(&a, &b).unwrap();
        let (ev_a, ev_b) = (preview(&a), preview(&b));
        let (subjects, actions, resources) = universe(&[&sa, &sb]);
        for &now in &nows {
            for s in &subjects {
                for act in &actions {
                    for r in &resources {
                        let before = ev_a.check(Request::new(s, act, r), now).allowed;
                        let after = ev_b.check(Request::new(s, act, r), now);
                        prop_assert!(
                            !before || after.allowed || d.revokes,
                            "check({}, {}, {}, now {}) allowed by a, denied by b ({:?}), but diff(a, b).revokes is false;\n a = {}\n b = {}",
                            s, act, r, now, after.reason, show(&sa), show(&sb)
                        );
                    }
                }
            }
        }
        // With conditions, every context too (at one time).
        if !(sa.conditions.is_empty() && sb.conditions.is_empty()) {
            let now = nows[0];
            for (c, ctx) in contexts().iter().enumerate() {
                let at = At::clock(now).with_context(ctx);
                for s in &subjects {
                    for act in &actions {
                        for r in &resources {
                            let before = ev_a.check(Request::new(s, act, r), at).allowed;
                            let after = ev_b.check(Request::new(s, act, r), at);
                            prop_assert!(
                                !before || after.allowed || d.revokes,
                                "check({}, {}, {}, now {}, context {}) allowed by a, denied by b ({:?}), but diff(a, b).revokes is false;\n a = {}\n b = {}",
                                s, act, r, now, c, after.reason, show(&sa), show(&sb)
                            );
                        }
                    }
                }
            }
        }
        for &(si, ai, ri, now) in &reqs {
            let (s, act, r) = (pick_s(&subjects, si), pick_s(&actions, ai), pick_s(&resources, ri));
            let before = ref_check(&a, &s, &act, &r, now).0 == Reason::Granted;
            let after = ref_check(&b, &s, &act, &r, now);
            prop_assert!(
                !before || after.0 == Reason::Granted || d.revokes,
                "reference: check({}, {}, {}, now {}) allowed by a, denied by b ({:?}), but diff(a, b).revokes is false;\n a = {}\n b = {}",
                s, act, r, now, after.0, show(&sa), show(&sb)
            );
        }
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// (b, signed part) A signed evaluator holding a's snapshot and then the signed delta a -> b
    /// answers every request like a preview of b and holds the digest of b's snapshot.
    #[test]
    fn signed_delta_matches_preview_of_b((sa, sb) in model_pair(), nows in nows()) {
        let a = sa.state();
        let b = sb.state();
        let key = test_key();
        let d = diff(&a, &b).unwrap();

        let snap_a = compile_snapshot(&a, 1, 0, &key).unwrap();
        let delta = diff_models(&a, &b, 1, 2, 0, &key).unwrap();
        prop_assert_eq!(delta.revokes, d.revokes);
        prop_assert_eq!(&delta.ops, &d.ops);
        // The origin's kept form signs the same bytes without building either side again.
        let (pa, pb) = (Prepared::new(a.clone()).unwrap(), Prepared::new(b.clone()).unwrap());
        prop_assert_eq!(&pa.snapshot(1, 0, &key).unwrap(), &snap_a);
        prop_assert_eq!(&pa.delta_to(&pb, 1, 2, 0, &key).unwrap().bytes, &delta.bytes);
        prop_assert_eq!(pb.digest_hex(), content_digest(&b).unwrap());
        prop_assert_eq!(pb.state(), &b);
        let mut ev = signed();
        ev.load_snapshot(&snap_a).unwrap();
        let applied = ev.apply_delta(&delta.bytes).unwrap();
        prop_assert_eq!(applied.epoch, 2);
        prop_assert!(applied.applied);

        let snap_b = compile_snapshot(&b, 2, 0, &key).unwrap();
        let status = ev.status();
        prop_assert_eq!(&status.digest, &inspect(&snap_b, &[], &Limits::default()).unwrap().digest);
        let mut ev_b = signed();
        ev_b.load_snapshot(&snap_b).unwrap();
        prop_assert_eq!(&status.digest, &ev_b.status().digest);
        let pv = preview(&b);
        prop_assert_eq!(&status.digest, &pv.status().digest);
        prop_assert_eq!(status.epoch, Some(2));
        prop_assert!(!status.stale);

        // issued_at 0 and now <= 25: every freshness bound (>= 5000) holds.
        let (subjects, actions, resources) = universe(&[&sa, &sb]);
        for &now in &nows {
            for s in &subjects {
                for act in &actions {
                    for r in &resources {
                        let got = ev_check(&ev, s, act, r, now);
                        let want = ev_check(&pv, s, act, r, now);
                        prop_assert_eq!(&got, &want, "check({}, {}, {}, now {}); a = {}, b = {}", s, act, r, now, show(&sa), show(&sb));
                    }
                    prop_assert_eq!(code(ev.list_resources(s, act, None, now)), code(pv.list_resources(s, act, None, now)));
                }
            }
            for act in &actions {
                for r in &resources {
                    prop_assert_eq!(code(ev.list_subjects(r, act, now)), code(pv.list_subjects(r, act, now)));
                }
            }
        }
        if !sb.conditions.is_empty() {
            for ctx in &contexts() {
                for s in &subjects {
                    for act in &actions {
                        for r in &resources {
                            let got = ev_check_in(&ev, s, act, r, nows[0], ctx);
                            let want = ev_check_in(&pv, s, act, r, nows[0], ctx);
                            prop_assert_eq!(&got, &want, "check({}, {}, {}) with a context; a = {}, b = {}", s, act, r, show(&sa), show(&sb));
                        }
                    }
                }
            }
        }
    }

    /// (d, wire part) Snapshots and watermarks (bare and carrying a delta) round-trip through
    /// `inspect`; a signed evaluator loading the snapshot holds the preview's digest and answers
    /// like it (and like the reference).
    #[test]
    fn snapshot_and_watermark_round_trip(r in raw(), epoch in 1u64..1_000_000, issued_at in 0u64..1_000_000_000, wm in 1u64..1_000_000, reqs in requests()) {
        let spec = r.spec();
        let state = spec.state();
        let key = test_key();

        let snap = compile_snapshot(&state, epoch, issued_at, &key).unwrap();
        let ins = inspect(&snap, &[key.public_key()], &Limits::default()).unwrap();
        prop_assert_eq!(ins.kind, MessageKind::Snapshot);
        prop_assert_eq!(ins.epoch, Some(epoch));
        prop_assert_eq!(&ins.tenant, TENANT);
        prop_assert_eq!(ins.issued_at, issued_at);
        prop_assert_eq!(ins.signature, "verified");
        let mut ev = signed();
        prop_assert_eq!(ev.load_snapshot(&snap).unwrap().epoch, epoch);
        let pv = preview(&state);
        prop_assert_eq!(&ev.status().digest, &pv.status().digest);
        prop_assert_eq!(&ev.status().digest, &ins.digest);
        prop_assert_eq!(ev.status().counts, pv.status().counts);
        prop_assert_eq!(ev.confirmed_at(), Some(issued_at));
        let (subjects, actions, resources) = universe(&[&spec]);
        for &(si, ai, ri, dt) in &reqs {
            let (s, a, res) = (pick_s(&subjects, si), pick_s(&actions, ai), pick_s(&resources, ri));
            let now = issued_at + dt; // dt <= 25: within every freshness bound
            let got = ev_check(&ev, &s, &a, &res, now);
            prop_assert_eq!(&got, &ev_check(&pv, &s, &a, &res, now), "check({}, {}, {}, now {}) on {}", s, a, res, now, show(&spec));
            prop_assert_eq!(&got, &ref_check(&state, &s, &a, &res, now));
        }

        let bare = sign_watermark(TENANT, wm, issued_at, None, &key).unwrap();
        let ins = inspect(&bare, &[], &Limits::default()).unwrap();
        prop_assert_eq!(ins.kind, MessageKind::Watermark);
        prop_assert_eq!(ins.watermark, Some(wm));
        prop_assert_eq!(ins.issued_at, issued_at);
        prop_assert_eq!(&ins.tenant, TENANT);
        prop_assert!(ins.delta.is_none());

        let mut changed = spec.clone();
        changed.apply(&Mutation::Suspend(false, wm as usize));
        let next = changed.state();
        let delta = diff_models(&state, &next, epoch, epoch + wm, issued_at, &key).unwrap();
        let carrying = sign_watermark(TENANT, epoch + wm, issued_at + 1, Some(&delta.bytes), &key).unwrap();
        let ins = inspect(&carrying, &[], &Limits::default()).unwrap();
        prop_assert_eq!(ins.kind, MessageKind::Watermark);
        prop_assert_eq!(ins.watermark, Some(epoch + wm));
        prop_assert_eq!(ins.issued_at, issued_at + 1);
        prop_assert_eq!(&ins.tenant, TENANT);
        let inner = ins.delta.expect("the carried delta");
        prop_assert_eq!(inner.kind, MessageKind::Delta);
        prop_assert_eq!(inner.epoch, Some(epoch + wm));
        prop_assert_eq!(inner.base_epoch, Some(epoch));
        prop_assert_eq!(inner.issued_at, issued_at);
        prop_assert_eq!(&inner.tenant, TENANT);
        prop_assert_eq!(inner.revokes, Some(delta.revokes));

        // The carrying watermark moves the evaluator to `next` at once.
        let w = ev.apply_watermark(&carrying).unwrap();
        prop_assert_eq!(w.watermark, epoch + wm);
        prop_assert_eq!(w.epoch, Some(epoch + wm));
        prop_assert_eq!(&ev.status().digest, &preview(&next).status().digest);
        prop_assert!(!ev.status().stale);
    }
}

/// The minimal cases `revokes_is_sound` shrinks to (docs/decisions.md, "Watermarks and
/// fail-closed", and docs/model.md, "Suspension"): joining a suspended group, directly or through
/// a group, suspends the member, so the change removes access and must be flagged as a revocation.
#[test]
fn joining_a_suspended_group_revokes() {
    let model = |memberships: Value| {
        state_of_value(json!({
            "version": 1, "tenant": TENANT,
            "actions": {"read": {"tier": "low"}},
            "roles": {"viewer": ["read"]},
            "resources": [{"id": "org:0"}],
            "memberships": memberships,
            "assignments": [{"principal": "user:b", "role": "viewer", "resource": "org:0"}],
            "suspended": ["group:c"]
        }))
    };
    let cases = [
        (json!([]), json!([{"member": "user:b", "group": "group:c"}])),
        (
            json!([{"member": "user:b", "group": "group:x"}]),
            json!([{"member": "user:b", "group": "group:x"}, {"member": "group:x", "group": "group:c"}]),
        ),
    ];
    for (before, after) in cases {
        let (a, b) = (model(before), model(after));
        assert_eq!(
            ref_check(&a, "user:b", "read", "org:0", 0).0,
            Reason::Granted
        );
        assert_eq!(
            ref_check(&b, "user:b", "read", "org:0", 0).0,
            Reason::Suspended
        );
        assert_eq!(
            ev_check(&preview(&a), "user:b", "read", "org:0", 0).0,
            Reason::Granted
        );
        assert_eq!(
            ev_check(&preview(&b), "user:b", "read", "org:0", 0).0,
            Reason::Suspended
        );
        assert!(
            diff(&a, &b).unwrap().revokes,
            "user:b loses access, so diff must say revokes; ops: {:?}",
            diff(&a, &b).unwrap().ops
        );
    }
}
