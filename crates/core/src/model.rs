//! The model JSON of docs/model.md: wire DTOs with `deny_unknown_fields`, kept apart from
//! [`State`]. [`Model::compile`] is where a model is validated, once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::condition::{ConditionDef, Conditions};
use crate::content::Content;
use crate::error::{ModelError, ModelErrorKind as K};
use crate::identity::Identity;
use crate::state::{shorten, AssignmentKey, Entry, Freshness, Locate, State, DEFAULT_FRESHNESS};
use crate::wire::Limits;
use crate::Tier;

/// The model format version this build reads.
pub const MODEL_VERSION: u32 = 1;
/// More roles than this compiles with a warning (role-as-permission anti-pattern).
pub const ROLE_WARNING_THRESHOLD: usize = 20;

/// A JSON object kept as its entries in document order, duplicates included, so that compiling
/// can name a duplicate key instead of silently keeping the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entries<V>(pub Vec<(String, V)>);

impl<V> Entries<V> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

impl<V: Serialize> Serialize for Entries<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDef {
    pub tier: Tier,
    /// Conditions every grant of the action needs (docs/model.md, "Conditions").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipDef {
    pub member: String,
    pub group: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentDef {
    pub principal: String,
    pub role: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The condition the grant holds under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<u64>,
}

/// The model JSON, as written by people and by the origin's tooling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub version: u32,
    pub tenant: String,
    #[serde(default)]
    pub actions: Entries<ActionDef>,
    #[serde(default)]
    pub roles: Entries<Vec<String>>,
    #[serde(default)]
    pub resources: Vec<ResourceDef>,
    #[serde(default)]
    pub memberships: Vec<MembershipDef>,
    #[serde(default)]
    pub assignments: Vec<AssignmentDef>,
    #[serde(default)]
    pub suspended: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<FreshnessDef>,
    #[serde(default, skip_serializing_if = "Entries::is_empty")]
    pub conditions: Entries<ConditionDef>,
    /// The identity providers whose tokens edges accept (docs/model.md, "Tokens and sessions"),
    /// read by hand when compiling.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub issuers: serde_json::Value,
    /// Session revocations.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub sessions: serde_json::Value,
}

/// A compiled model: its canonical state, interned content, and any warnings.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub state: State,
    pub content: Content,
    pub warnings: Vec<String>,
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ModelError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let msg = inner.to_string();
    let kind = if msg.starts_with("unknown field") {
        K::UnknownField
    } else {
        K::InvalidJson
    };
    let at = if path == "." { String::new() } else { path };
    ModelError::new(kind, at, msg)
}

/// Where each entry of the model document stands, for error messages.
struct DocLocator {
    actions: BTreeMap<String, usize>,
    resources: BTreeMap<String, usize>,
    memberships: BTreeMap<(String, String), usize>,
    assignments: BTreeMap<AssignmentKey, usize>,
    suspended: BTreeMap<String, usize>,
}

impl Locate for DocLocator {
    fn at(&self, entry: Entry<'_>) -> String {
        let find = |m: &BTreeMap<String, usize>, k: &str, field: &str| {
            m.get(k).map(|i| format!("{field}[{i}]"))
        };
        match entry {
            Entry::Tenant => Some("tenant".to_string()),
            Entry::Action(a) => self.actions.get(a).map(|_| format!("actions.{a}")),
            Entry::Role(r) => Some(format!("roles.{r}")),
            Entry::Resource(r) => find(&self.resources, r, "resources"),
            Entry::Membership(m, g) => self
                .memberships
                .get(&(m.to_string(), g.to_string()))
                .map(|i| format!("memberships[{i}]")),
            Entry::Assignment(k) => self.assignments.get(k).map(|i| format!("assignments[{i}]")),
            Entry::Suspended(s) => find(&self.suspended, s, "suspended"),
        }
        .unwrap_or_else(|| crate::state::ById.at(entry))
    }
}

fn duplicate(at: String, what: &str, id: &str) -> ModelError {
    ModelError::new(
        K::DuplicateId,
        at,
        format!("duplicate {what} `{}`", shorten(id)),
    )
}

impl Model {
    /// Parses model JSON, naming the JSON path of a shape error (unknown field, wrong type).
    pub fn from_json(text: &str) -> Result<Model, ModelError> {
        Self::from_json_limited(text, &Limits::default())
    }

    pub fn from_json_limited(text: &str, limits: &Limits) -> Result<Model, ModelError> {
        if text.len() > limits.max_model_bytes {
            return Err(ModelError::new(
                K::LimitExceeded,
                "",
                format!(
                    "the model is {} bytes, over the limit of {}",
                    text.len(),
                    limits.max_model_bytes
                ),
            ));
        }
        let de = &mut serde_json::Deserializer::from_str(text);
        let model: Model = serde_path_to_error::deserialize(de).map_err(json_error)?;
        Ok(model)
    }

    /// Parses a model from an already parsed JSON value (as the JS API receives objects).
    pub fn from_value(value: serde_json::Value) -> Result<Model, ModelError> {
        serde_path_to_error::deserialize(value).map_err(json_error)
    }

    /// Drops the session revocations whose `until` is at or before `now` (ms), as the origin
    /// does before it compiles (docs/model.md, "Tokens and sessions"). Whether any went.
    pub fn drop_expired_sessions(&mut self, now: u64) -> bool {
        let mut dropped = false;
        if let serde_json::Value::Object(s) = &mut self.sessions {
            for table in ["revoked", "revoked_families"] {
                if let Some(serde_json::Value::Array(list)) = s.get_mut(table) {
                    let before = list.len();
                    // A malformed entry stays, for compiling to name.
                    list.retain(|e| {
                        e.get("until")
                            .and_then(|u| u.as_u64())
                            .is_none_or(|u| u > now)
                    });
                    dropped |= list.len() != before;
                }
            }
        }
        dropped
    }

    /// Validates the model and compiles it.
    pub fn compile(&self) -> Result<Compiled, ModelError> {
        self.compile_limited(&Limits::default())
    }

    /// Compiles the model as the origin keeps its latest epoch: a [`crate::Prepared`] (the
    /// content built and checked once, under the limits every edge applies), and the warnings.
    pub fn prepare(&self) -> Result<(crate::Prepared, Vec<String>), ModelError> {
        let c = self.compile()?;
        Ok((crate::Prepared::checked(c.state, c.content), c.warnings))
    }

    /// Validates the model and compiles it under `limits`: the version, each table without
    /// duplicates, the references between them, and the index an edge would build.
    pub fn compile_limited(&self, limits: &Limits) -> Result<Compiled, ModelError> {
        if self.version != MODEL_VERSION {
            return Err(ModelError::new(
                K::UnsupportedVersion,
                "version",
                format!(
                    "model version {} is not supported (this build reads version {MODEL_VERSION})",
                    self.version
                ),
            ));
        }
        // Conditions first, in document order: a duplicate or the first error is named as written.
        Conditions::compile(&self.conditions.0)?;
        let (state, loc) = self.to_state()?;
        state.check_references(&loc)?;
        let content = Content::from_state(&state)?;
        // Building the index checks everything an edge will check (including the closure limit),
        // so a model that compiles is one every edge can load.
        crate::Index::build(content.clone(), limits)?;
        let mut warnings = Vec::new();
        if state.roles.len() > ROLE_WARNING_THRESHOLD {
            warnings.push(format!(
                "the model declares {} roles (more than {ROLE_WARNING_THRESHOLD}): roles are meant to be a handful of sets of actions, not one per permission",
                state.roles.len()
            ));
        }
        Ok(Compiled {
            state,
            content,
            warnings,
        })
    }

    /// The model's tables as a [`State`] (a duplicate entry is an error), and where each entry
    /// stands in the document. References are not checked yet.
    fn to_state(&self) -> Result<(State, DocLocator), ModelError> {
        let mut loc = DocLocator {
            actions: BTreeMap::new(),
            resources: BTreeMap::new(),
            memberships: BTreeMap::new(),
            assignments: BTreeMap::new(),
            suspended: BTreeMap::new(),
        };
        let state = State {
            tenant: self.tenant.clone(),
            actions: self.unique_actions(&mut loc)?,
            roles: self.unique_roles()?,
            resources: self.unique_resources(&mut loc)?,
            memberships: self.unique_memberships(&mut loc)?,
            assignments: self.unique_assignments(&mut loc)?,
            suspended: self.unique_suspended(&mut loc)?,
            freshness: self.freshness_bounds(),
            conditions: self.unique_conditions(),
            requires: self.requires(),
            when: self.when(),
            identity: Identity::from_model(
                Some(&self.issuers).filter(|v| !v.is_null()),
                Some(&self.sessions).filter(|v| !v.is_null()),
            )?,
        };
        Ok((state, loc))
    }

    /// The conditions (compiling them refused a duplicate).
    fn unique_conditions(&self) -> BTreeMap<String, crate::condition::ConditionDef> {
        let mut out = BTreeMap::new();
        for (n, d) in &self.conditions.0 {
            out.insert(n.clone(), d.clone());
        }
        out
    }

    /// The actions' `requires` (a name twice counts once).
    fn requires(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out = BTreeMap::new();
        for (n, d) in &self.actions.0 {
            if !d.requires.is_empty() {
                out.insert(n.clone(), crate::state::set_of(d.requires.iter().cloned()));
            }
        }
        out
    }

    /// The assignments' `when`.
    fn when(&self) -> BTreeMap<AssignmentKey, String> {
        let mut out = BTreeMap::new();
        for a in &self.assignments {
            if let Some(w) = &a.when {
                let key = AssignmentKey {
                    resource: a.resource.clone(),
                    principal: a.principal.clone(),
                    role: a.role.clone(),
                };
                out.insert(key, w.clone());
            }
        }
        out
    }

    fn unique_actions(&self, loc: &mut DocLocator) -> Result<BTreeMap<String, Tier>, ModelError> {
        let mut actions = BTreeMap::new();
        for (i, (name, def)) in self.actions.0.iter().enumerate() {
            if actions.insert(name.clone(), def.tier).is_some() {
                return Err(duplicate(format!("actions.{name}"), "action", name));
            }
            loc.actions.insert(name.clone(), i);
        }
        Ok(actions)
    }

    fn unique_roles(&self) -> Result<BTreeMap<String, BTreeSet<String>>, ModelError> {
        let mut roles = BTreeMap::new();
        for (name, list) in &self.roles.0 {
            let mut set = BTreeSet::new();
            for (j, a) in list.iter().enumerate() {
                if !set.insert(a.clone()) {
                    return Err(duplicate(
                        format!("roles.{name}[{j}]"),
                        "action in a role",
                        a,
                    ));
                }
            }
            if roles.insert(name.clone(), set).is_some() {
                return Err(duplicate(format!("roles.{name}"), "role", name));
            }
        }
        Ok(roles)
    }

    fn unique_resources(
        &self,
        loc: &mut DocLocator,
    ) -> Result<BTreeMap<String, Option<String>>, ModelError> {
        let mut resources = BTreeMap::new();
        for (i, r) in self.resources.iter().enumerate() {
            if resources.insert(r.id.clone(), r.parent.clone()).is_some() {
                return Err(duplicate(format!("resources[{i}].id"), "resource", &r.id));
            }
            loc.resources.insert(r.id.clone(), i);
        }
        Ok(resources)
    }

    fn unique_memberships(
        &self,
        loc: &mut DocLocator,
    ) -> Result<BTreeSet<(String, String)>, ModelError> {
        let mut memberships = BTreeSet::new();
        for (i, m) in self.memberships.iter().enumerate() {
            let pair = (m.member.clone(), m.group.clone());
            if !memberships.insert(pair.clone()) {
                return Err(duplicate(
                    format!("memberships[{i}]"),
                    "membership",
                    &format!("{} in {}", m.member, m.group),
                ));
            }
            loc.memberships.insert(pair, i);
        }
        Ok(memberships)
    }

    fn unique_assignments(
        &self,
        loc: &mut DocLocator,
    ) -> Result<BTreeMap<AssignmentKey, Option<u64>>, ModelError> {
        let mut assignments = BTreeMap::new();
        for (i, a) in self.assignments.iter().enumerate() {
            let key = AssignmentKey {
                resource: a.resource.clone(),
                principal: a.principal.clone(),
                role: a.role.clone(),
            };
            if assignments.insert(key.clone(), a.expires_at).is_some() {
                return Err(duplicate(
                    format!("assignments[{i}]"),
                    "assignment",
                    &format!("{} {} on {}", a.principal, a.role, a.resource),
                ));
            }
            loc.assignments.insert(key, i);
        }
        Ok(assignments)
    }

    fn unique_suspended(&self, loc: &mut DocLocator) -> Result<BTreeSet<String>, ModelError> {
        let mut suspended = BTreeSet::new();
        for (i, s) in self.suspended.iter().enumerate() {
            if !suspended.insert(s.clone()) {
                return Err(duplicate(format!("suspended[{i}]"), "suspended subject", s));
            }
            loc.suspended.insert(s.clone(), i);
        }
        Ok(suspended)
    }

    /// The freshness bounds: the model's, each defaulting to [`DEFAULT_FRESHNESS`].
    fn freshness_bounds(&self) -> Freshness {
        match &self.freshness {
            None => DEFAULT_FRESHNESS,
            Some(f) => Freshness {
                low: f.low.unwrap_or(DEFAULT_FRESHNESS.low),
                standard: f.standard.unwrap_or(DEFAULT_FRESHNESS.standard),
                high: f.high.unwrap_or(DEFAULT_FRESHNESS.high),
            },
        }
    }

    /// The model JSON of a state (canonical order), for exporting a state back to people.
    pub fn from_state(state: &State) -> Model {
        Model {
            version: MODEL_VERSION,
            tenant: state.tenant.clone(),
            actions: Entries(
                state
                    .actions
                    .iter()
                    .map(|(k, t)| {
                        let requires = state.requires.get(k);
                        let requires = requires.into_iter().flatten().cloned().collect();
                        (k.clone(), ActionDef { tier: *t, requires })
                    })
                    .collect(),
            ),
            roles: Entries(
                state
                    .roles
                    .iter()
                    .map(|(k, a)| (k.clone(), a.iter().cloned().collect()))
                    .collect(),
            ),
            resources: state
                .resources
                .iter()
                .map(|(id, parent)| ResourceDef {
                    id: id.clone(),
                    parent: parent.clone(),
                })
                .collect(),
            memberships: state
                .memberships
                .iter()
                .map(|(m, g)| MembershipDef {
                    member: m.clone(),
                    group: g.clone(),
                })
                .collect(),
            assignments: state
                .assignments
                .iter()
                .map(|(k, e)| AssignmentDef {
                    principal: k.principal.clone(),
                    role: k.role.clone(),
                    resource: k.resource.clone(),
                    expires_at: *e,
                    when: state.when.get(k).cloned(),
                })
                .collect(),
            suspended: state.suspended.iter().cloned().collect(),
            freshness: Some(FreshnessDef {
                low: Some(state.freshness.low),
                standard: Some(state.freshness.standard),
                high: Some(state.freshness.high),
            }),
            conditions: Entries(
                state
                    .conditions
                    .iter()
                    .map(|(n, d)| (n.clone(), d.clone()))
                    .collect(),
            ),
            issuers: (!state.identity.issuers.is_empty())
                .then(|| serde_json::from_str(&state.identity.issuers_json()).ok())
                .flatten()
                .unwrap_or_default(),
            sessions: (!(state.identity.revoked.is_empty()
                && state.identity.families.is_empty()
                && state.identity.not_before.is_empty()))
            .then(|| serde_json::from_str(&state.identity.sessions_json()).ok())
            .flatten()
            .unwrap_or_default(),
        }
    }
}
