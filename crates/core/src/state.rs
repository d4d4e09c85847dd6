//! `State`: the validated, canonical, name-keyed form of a tenant's authorization state.
//! Models compile into it, deltas apply to it, and `diff` compares two of them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::condition::{ConditionDef, Conditions};
use crate::error::{ModelError, ModelErrorKind as K};
use crate::id::{is_group, is_valid_action_name, is_valid_id, is_valid_tenant};
use crate::Tier;

/// Per-tier freshness bounds in milliseconds (docs/model.md, "Freshness bounds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freshness {
    pub low: u64,
    pub standard: u64,
    pub high: u64,
}

/// The bounds used when a model gives none: 5 minutes, 30 seconds, 5 seconds.
pub const DEFAULT_FRESHNESS: Freshness = Freshness {
    low: 300_000,
    standard: 30_000,
    high: 5_000,
};

impl Freshness {
    pub fn bound(&self, tier: Tier) -> u64 {
        match tier {
            Tier::Low => self.low,
            Tier::Standard => self.standard,
            Tier::High => self.high,
        }
    }

    pub(crate) fn to_array(self) -> [u64; 3] {
        [self.low, self.standard, self.high]
    }

    pub(crate) fn from_array([low, standard, high]: [u64; 3]) -> Self {
        Self {
            low,
            standard,
            high,
        }
    }
}

/// An assignment's identity. Field order is the canonical sort order: by resource, then principal,
/// then role (the order the index stores them in).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AssignmentKey {
    pub resource: String,
    pub principal: String,
    pub role: String,
}

impl AssignmentKey {
    pub fn new(resource: &str, principal: &str, role: &str) -> AssignmentKey {
        AssignmentKey {
            resource: resource.to_string(),
            principal: principal.to_string(),
            role: role.to_string(),
        }
    }
}

/// A map of `entries` by inserting each: collecting into a `BTreeMap` sorts first, and every
/// type sorted costs the wasm a stable sort of its own (several KB).
pub(crate) fn map_of<K: Ord, V>(entries: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut m = BTreeMap::new();
    for (k, v) in entries {
        m.insert(k, v);
    }
    m
}

/// A set of `items` by inserting each (see [`map_of`]).
pub(crate) fn set_of<K: Ord>(items: impl IntoIterator<Item = K>) -> BTreeSet<K> {
    let mut s = BTreeSet::new();
    for k in items {
        s.insert(k);
    }
    s
}

/// The validated state of one tenant, every collection sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub tenant: String,
    pub actions: BTreeMap<String, Tier>,
    pub roles: BTreeMap<String, BTreeSet<String>>,
    /// Resource id to its parent.
    pub resources: BTreeMap<String, Option<String>>,
    /// `(member, group)` pairs.
    pub memberships: BTreeSet<(String, String)>,
    /// Assignment to its expiry (`None`: never expires).
    pub assignments: BTreeMap<AssignmentKey, Option<u64>>,
    pub suspended: BTreeSet<String>,
    pub freshness: Freshness,
    /// Named conditions (docs/model.md, "Conditions").
    pub conditions: BTreeMap<String, ConditionDef>,
    /// The conditions an action requires of every grant (only actions that require some).
    pub requires: BTreeMap<String, BTreeSet<String>>,
    /// The condition an assignment holds under (only assignments that have one).
    pub when: BTreeMap<AssignmentKey, String>,
    /// Token issuers and session revocations (docs/model.md, "Tokens and sessions").
    pub identity: crate::Identity,
}

/// Names an entry of a state in error messages: a JSON path for a model, an id otherwise.
pub(crate) enum Entry<'a> {
    Tenant,
    Action(&'a str),
    Role(&'a str),
    Resource(&'a str),
    Membership(&'a str, &'a str),
    Assignment(&'a AssignmentKey),
    Suspended(&'a str),
}

pub(crate) trait Locate {
    fn at(&self, entry: Entry<'_>) -> String;
}

/// Locates entries by their ids (used for states that came from a delta, not from JSON).
pub(crate) struct ById;

impl Locate for ById {
    fn at(&self, entry: Entry<'_>) -> String {
        match entry {
            Entry::Tenant => "tenant".into(),
            Entry::Action(a) => format!("actions.{a}"),
            Entry::Role(r) => format!("roles.{r}"),
            Entry::Resource(r) => format!("resources[{r}]"),
            Entry::Membership(m, g) => format!("memberships[{m} in {g}]"),
            Entry::Assignment(k) => {
                format!("assignments[{} {} on {}]", k.principal, k.role, k.resource)
            }
            Entry::Suspended(s) => format!("suspended[{s}]"),
        }
    }
}

fn err(kind: K, at: String, message: String) -> ModelError {
    ModelError::new(kind, at, message)
}

fn check_id(id: &str, what: &str, loc: &dyn Locate, entry: Entry<'_>) -> Result<(), ModelError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(err(
            K::MalformedId,
            loc.at(entry),
            format!("{what} `{}` is not a valid `type:name` id", shorten(id)),
        ))
    }
}

/// Quotes user input in messages without letting a huge string through.
pub fn shorten(s: &str) -> String {
    if s.len() <= 80 {
        return s.escape_debug().to_string();
    }
    let mut end = 80;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s.get(..end).unwrap_or_default().escape_debug())
}

impl State {
    /// Checks ids, names and references. Structural checks (cycles, depth, limits) run when the
    /// state is interned into a [`crate::Content`].
    pub(crate) fn check_references(&self, loc: &dyn Locate) -> Result<(), ModelError> {
        if !is_valid_tenant(&self.tenant) {
            return Err(err(
                K::MalformedId,
                loc.at(Entry::Tenant),
                format!(
                    "tenant `{}` must match [a-z0-9][a-z0-9_-]* and be at most 64 bytes",
                    shorten(&self.tenant)
                ),
            ));
        }
        for (tier, bound) in Tier::ALL.iter().map(|t| (t, self.freshness.bound(*t))) {
            if bound == 0 {
                return Err(err(
                    K::InvalidValue,
                    format!("freshness.{}", tier.as_str()),
                    "a freshness bound must be at least 1 ms".into(),
                ));
            }
        }
        for name in self.actions.keys() {
            if !is_valid_action_name(name) {
                return Err(err(
                    K::MalformedId,
                    loc.at(Entry::Action(name)),
                    format!(
                        "action name `{}` must match [a-z][a-z0-9_.-]*",
                        shorten(name)
                    ),
                ));
            }
        }
        for (role, actions) in &self.roles {
            if !is_valid_action_name(role) {
                return Err(err(
                    K::MalformedId,
                    loc.at(Entry::Role(role)),
                    format!("role name `{}` must match [a-z][a-z0-9_.-]*", shorten(role)),
                ));
            }
            if let Some(a) = actions.iter().find(|a| !self.actions.contains_key(*a)) {
                return Err(err(
                    K::UndeclaredAction,
                    loc.at(Entry::Role(role)),
                    format!("role `{role}` names undeclared action `{}`", shorten(a)),
                ));
            }
        }
        for (id, parent) in &self.resources {
            check_id(id, "resource", loc, Entry::Resource(id))?;
            if let Some(p) = parent {
                if !self.resources.contains_key(p) {
                    return Err(err(
                        K::UndeclaredResource,
                        loc.at(Entry::Resource(id)),
                        format!("resource `{id}` has undeclared parent `{}`", shorten(p)),
                    ));
                }
            }
        }
        for (member, group) in &self.memberships {
            check_id(member, "member", loc, Entry::Membership(member, group))?;
            check_id(group, "group", loc, Entry::Membership(member, group))?;
            if !is_group(group) {
                return Err(err(
                    K::NotAGroup,
                    loc.at(Entry::Membership(member, group)),
                    format!("`{group}` is not a group (its type must be `group`)"),
                ));
            }
        }
        for key in self.assignments.keys() {
            check_id(&key.principal, "principal", loc, Entry::Assignment(key))?;
            check_id(&key.resource, "resource", loc, Entry::Assignment(key))?;
            if !self.roles.contains_key(&key.role) {
                return Err(err(
                    K::UndeclaredRole,
                    loc.at(Entry::Assignment(key)),
                    format!("assignment names undeclared role `{}`", shorten(&key.role)),
                ));
            }
            if !self.resources.contains_key(&key.resource) {
                return Err(err(
                    K::UndeclaredResource,
                    loc.at(Entry::Assignment(key)),
                    format!(
                        "assignment names undeclared resource `{}`",
                        shorten(&key.resource)
                    ),
                ));
            }
        }
        for s in &self.suspended {
            check_id(s, "suspended subject", loc, Entry::Suspended(s))?;
        }
        self.check_conditions(loc)
    }

    /// The conditions compile, and every `requires` and `when` names a declared condition on a
    /// declared action or an existing assignment.
    pub(crate) fn check_conditions(&self, loc: &dyn Locate) -> Result<(), ModelError> {
        if self.conditions.is_empty() && self.requires.is_empty() && self.when.is_empty() {
            return Ok(());
        }
        let defs: Vec<(String, ConditionDef)> = self
            .conditions
            .iter()
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        Conditions::compile(&defs)?;
        let undeclared = |at: String, name: &str| {
            err(
                K::UndeclaredCondition,
                at,
                format!("`{}` is not a declared condition", shorten(name)),
            )
        };
        for (action, names) in &self.requires {
            let at = format!("{}.requires", loc.at(Entry::Action(action)));
            if !self.actions.contains_key(action) {
                return Err(err(
                    K::UndeclaredAction,
                    at,
                    format!("`{}` is not a declared action", shorten(action)),
                ));
            }
            if let Some(n) = names.iter().find(|n| !self.conditions.contains_key(*n)) {
                return Err(undeclared(at, n));
            }
        }
        for (key, name) in &self.when {
            let at = format!("{}.when", loc.at(Entry::Assignment(key)));
            if !self.assignments.contains_key(key) {
                return Err(err(
                    K::InvalidValue,
                    at,
                    "a condition on an assignment that does not exist".into(),
                ));
            }
            if !self.conditions.contains_key(name) {
                return Err(undeclared(at, name));
            }
        }
        Ok(())
    }
}
