//! Changes on standard input (`publish --stdin`): one JSON value a line, each one change (one
//! epoch): a whole model (an object with `version`), one operation, or an array of operations
//! applied together.
//!
//! Operations: `add_membership` / `remove_membership` {member, group}; `add_assignment`
//! {principal, role, resource, expires_at?} / `remove_assignment` {principal, role, resource};
//! `suspend` / `unsuspend` {subject}; `set_role` {role, actions}; `remove_role` {role};
//! `add_resource` {id, parent?}; `remove_resource` {id}; `move_resource` {id, parent};
//! `set_action` {action, tier, requires?} (without `requires`, the action keeps those it has);
//! `set_condition` {name, condition} (a condition as the model writes it); `remove_condition`
//! {name}. `add_assignment` takes `when` (a condition's name). Tokens and sessions:
//! `revoke_session` {sid, until}; `revoke_family` {family, claim?, until}; `sign_out`
//! {subject, at} (tokens of the subject issued before `at` are refused; a later sign-out
//! wins); `set_issuer` {issuer, audiences, jwks, subject, claims?, leeway_s?} (added or
//! replaced); `remove_issuer` {issuer}.

use edge_authz::Model;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    AddMembership {
        member: String,
        group: String,
    },
    RemoveMembership {
        member: String,
        group: String,
    },
    AddAssignment {
        principal: String,
        role: String,
        resource: String,
        #[serde(default)]
        expires_at: Option<u64>,
        #[serde(default)]
        when: Option<String>,
    },
    RemoveAssignment {
        principal: String,
        role: String,
        resource: String,
    },
    Suspend {
        subject: String,
    },
    Unsuspend {
        subject: String,
    },
    SetRole {
        role: String,
        actions: Vec<String>,
    },
    RemoveRole {
        role: String,
    },
    AddResource {
        id: String,
        #[serde(default)]
        parent: Option<String>,
    },
    RemoveResource {
        id: String,
    },
    MoveResource {
        id: String,
        parent: Option<String>,
    },
    SetAction {
        action: String,
        tier: edge_authz::Tier,
        #[serde(default)]
        requires: Option<Vec<String>>,
    },
    SetCondition {
        name: String,
        condition: edge_authz::condition::ConditionDef,
    },
    RemoveCondition {
        name: String,
    },
    RevokeSession {
        sid: String,
        until: u64,
    },
    RevokeFamily {
        family: String,
        #[serde(default)]
        claim: Option<String>,
        until: u64,
    },
    SignOut {
        subject: String,
        at: u64,
    },
    /// An issuer as the model writes it (checked when the model compiles).
    SetIssuer(serde_json::Map<String, Value>),
    RemoveIssuer {
        issuer: String,
    },
}

/// A change read from one line.
pub enum Change {
    Model(Box<Model>),
    Ops(Vec<Op>),
}

pub fn parse(line: &str) -> Result<Change, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let op =
        |v: Value| serde_json::from_value::<Op>(v).map_err(|e| format!("not an operation: {e}"));
    match v {
        Value::Object(ref m) if m.contains_key("version") => Model::from_value(v)
            .map(|m| Change::Model(Box::new(m)))
            .map_err(|e| format!("not a model: {e}")),
        Value::Array(items) => items
            .into_iter()
            .map(op)
            .collect::<Result<Vec<_>, _>>()
            .map(Change::Ops),
        v => op(v).map(|o| Change::Ops(vec![o])),
    }
}

fn missing(what: &str) -> String {
    format!("{what} does not exist")
}

/// Applies `ops` to a copy of `model`; an operation that names something absent (or adds what
/// is there) fails the whole change.
pub fn apply(model: &Model, ops: &[Op]) -> Result<Model, String> {
    let mut m = model.clone();
    for op in ops {
        match op {
            Op::AddMembership { member, group } => {
                if m.memberships
                    .iter()
                    .any(|x| &x.member == member && &x.group == group)
                {
                    return Err(format!("membership {member} in {group} exists"));
                }
                m.memberships.push(edge_authz::MembershipDef {
                    member: member.clone(),
                    group: group.clone(),
                });
            }
            Op::RemoveMembership { member, group } => {
                let before = m.memberships.len();
                m.memberships
                    .retain(|x| !(&x.member == member && &x.group == group));
                if m.memberships.len() == before {
                    return Err(missing(&format!("membership {member} in {group}")));
                }
            }
            Op::AddAssignment {
                principal,
                role,
                resource,
                expires_at,
                when,
            } => {
                let same = |x: &&edge_authz::AssignmentDef| {
                    &x.principal == principal && &x.role == role && &x.resource == resource
                };
                if m.assignments.iter().any(|x| same(&x)) {
                    return Err(format!(
                        "assignment {principal} {role} on {resource} exists"
                    ));
                }
                m.assignments.push(edge_authz::AssignmentDef {
                    principal: principal.clone(),
                    role: role.clone(),
                    resource: resource.clone(),
                    expires_at: *expires_at,
                    when: when.clone(),
                });
            }
            Op::RemoveAssignment {
                principal,
                role,
                resource,
            } => {
                let before = m.assignments.len();
                m.assignments.retain(|x| {
                    !(&x.principal == principal && &x.role == role && &x.resource == resource)
                });
                if m.assignments.len() == before {
                    return Err(missing(&format!(
                        "assignment {principal} {role} on {resource}"
                    )));
                }
            }
            Op::Suspend { subject } => {
                if m.suspended.contains(subject) {
                    return Err(format!("{subject} is already suspended"));
                }
                m.suspended.push(subject.clone());
            }
            Op::Unsuspend { subject } => {
                let before = m.suspended.len();
                m.suspended.retain(|s| s != subject);
                if m.suspended.len() == before {
                    return Err(format!("{subject} is not suspended"));
                }
            }
            Op::SetRole { role, actions } => match m.roles.0.iter_mut().find(|(n, _)| n == role) {
                Some((_, a)) => a.clone_from(actions),
                None => m.roles.0.push((role.clone(), actions.clone())),
            },
            Op::RemoveRole { role } => {
                let before = m.roles.0.len();
                m.roles.0.retain(|(n, _)| n != role);
                if m.roles.0.len() == before {
                    return Err(missing(&format!("role {role}")));
                }
            }
            Op::AddResource { id, parent } => {
                if m.resources.iter().any(|r| &r.id == id) {
                    return Err(format!("resource {id} exists"));
                }
                m.resources.push(edge_authz::ResourceDef {
                    id: id.clone(),
                    parent: parent.clone(),
                });
            }
            Op::RemoveResource { id } => {
                let before = m.resources.len();
                m.resources.retain(|r| &r.id != id);
                if m.resources.len() == before {
                    return Err(missing(&format!("resource {id}")));
                }
            }
            Op::MoveResource { id, parent } => {
                let r = m
                    .resources
                    .iter_mut()
                    .find(|r| &r.id == id)
                    .ok_or_else(|| missing(&format!("resource {id}")))?;
                r.parent.clone_from(parent);
            }
            Op::SetAction {
                action,
                tier,
                requires,
            } => match m.actions.0.iter_mut().find(|(n, _)| n == action) {
                Some((_, d)) => {
                    d.tier = *tier;
                    if let Some(r) = requires {
                        d.requires.clone_from(r);
                    }
                }
                None => {
                    let requires = requires.clone().unwrap_or_default();
                    let def = edge_authz::ActionDef {
                        tier: *tier,
                        requires,
                    };
                    m.actions.0.push((action.clone(), def));
                }
            },
            Op::SetCondition { name, condition } => {
                match m.conditions.0.iter_mut().find(|(n, _)| n == name) {
                    Some((_, d)) => d.clone_from(condition),
                    None => m.conditions.0.push((name.clone(), condition.clone())),
                }
            }
            Op::RemoveCondition { name } => {
                let before = m.conditions.0.len();
                m.conditions.0.retain(|(n, _)| n != name);
                if m.conditions.0.len() == before {
                    return Err(missing(&format!("condition {name}")));
                }
            }
            Op::RevokeSession { .. }
            | Op::RevokeFamily { .. }
            | Op::SignOut { .. }
            | Op::SetIssuer(_)
            | Op::RemoveIssuer { .. } => identity_op(&mut m, op)?,
        }
    }
    Ok(m)
}

/// The net effect of `ops` on `state` (the compiled form of the model they apply to) as delta
/// operations, for the origin to patch its kept epoch with instead of compiling `changed`, the
/// model they make: `None` when an operation is of another kind (roles, actions, conditions)
/// or puts a condition on an assignment, or when `changed`'s token issuers and session
/// revocations do not compile. Call it only after [`apply`] took `ops` (and made `changed`): it
/// trusts that each removal finds its entry and each addition is new, in order.
pub fn net_ops(
    state: &edge_authz::State,
    changed: &Model,
    ops: &[Op],
) -> Option<edge_authz::DeltaOps> {
    use edge_authz::AssignmentKey;
    use std::collections::BTreeMap;
    // Each entry the change touches, as it is after the change (`None`: absent).
    let mut members: BTreeMap<(&str, &str), bool> = BTreeMap::new();
    let mut assignments: BTreeMap<AssignmentKey, Option<Option<u64>>> = BTreeMap::new();
    let mut suspended: BTreeMap<&str, bool> = BTreeMap::new();
    let mut resources: BTreeMap<&str, Option<Option<String>>> = BTreeMap::new();
    let mut identity = false;
    for op in ops {
        match op {
            Op::AddMembership { member, group } => {
                members.insert((member, group), true);
            }
            Op::RemoveMembership { member, group } => {
                members.insert((member, group), false);
            }
            Op::AddAssignment {
                principal,
                role,
                resource,
                expires_at,
                when: None,
            } => {
                assignments.insert(
                    AssignmentKey::new(resource, principal, role),
                    Some(*expires_at),
                );
            }
            Op::RemoveAssignment {
                principal,
                role,
                resource,
            } => {
                assignments.insert(AssignmentKey::new(resource, principal, role), None);
            }
            Op::Suspend { subject } => {
                suspended.insert(subject, true);
            }
            Op::Unsuspend { subject } => {
                suspended.insert(subject, false);
            }
            Op::AddResource { id, parent } | Op::MoveResource { id, parent } => {
                resources.insert(id, Some(parent.clone()));
            }
            Op::RemoveResource { id } => {
                resources.insert(id, None);
            }
            Op::RevokeSession { .. }
            | Op::RevokeFamily { .. }
            | Op::SignOut { .. }
            | Op::SetIssuer(_)
            | Op::RemoveIssuer { .. } => identity = true,
            _ => return None,
        }
    }
    let mut d = edge_authz::DeltaOps::default();
    for ((m, g), now) in members {
        let pair = (m.to_string(), g.to_string());
        match (state.memberships.contains(&pair), now) {
            (false, true) => d.memberships_add.push(pair),
            (true, false) => d.memberships_del.push(pair),
            _ => {}
        }
    }
    for (k, now) in assignments {
        match (state.assignments.get(&k), now) {
            (Some(_), None) => d.assignments_del.push((k.resource, k.principal, k.role)),
            (before, Some(e)) if before != Some(&e) => {
                d.assignments_set.push((k.resource, k.principal, k.role, e));
            }
            _ => {}
        }
    }
    for (s, now) in suspended {
        match (state.suspended.contains(s), now) {
            (false, true) => d.suspended_add.push(s.to_string()),
            (true, false) => d.suspended_del.push(s.to_string()),
            _ => {}
        }
    }
    for (id, now) in resources {
        match (state.resources.get(id), now) {
            (Some(_), None) => d.resources_del.push(id.to_string()),
            (before, Some(p)) if before != Some(&p) => d.resources_set.push((id.to_string(), p)),
            _ => {}
        }
    }
    if identity {
        // The tables compiled from the changed model, as its compile would; the patch writes
        // the difference.
        fn present(v: &Value) -> Option<&Value> {
            Some(v).filter(|v| !v.is_null())
        }
        let after =
            edge_authz::Identity::from_model(present(&changed.issuers), present(&changed.sessions))
                .ok()?;
        d.identity = state.identity.diff(&after).0;
    }
    Some(d)
}

/// Replaces the entry of `list` whose `key` fields equal `entry`'s, or appends `entry`. A
/// revocation is never shortened by another: the later `until` of the two stays.
fn put(list: &mut Vec<Value>, entry: Value, key: &[&str]) {
    let same = |e: &Value| key.iter().all(|k| e.get(*k) == entry.get(*k));
    match list.iter_mut().find(|e| same(e)) {
        Some(e) => {
            let until = |v: &Value| v.get("until").and_then(Value::as_u64).unwrap_or(0);
            if until(&entry) >= until(e) {
                *e = entry;
            }
        }
        None => list.push(entry),
    }
}

/// `v`, set to `empty` first when it is absent (null).
fn or_new(v: &mut Value, empty: Value) -> &mut Value {
    if v.is_null() {
        *v = empty;
    }
    v
}

/// The model's `sessions` table `name` (an array), made if absent.
fn session_list<'m>(m: &'m mut Model, name: &str) -> Result<&'m mut Vec<Value>, String> {
    let s = or_new(&mut m.sessions, json!({}));
    let s = s
        .as_object_mut()
        .ok_or("the model's `sessions` is not an object")?;
    s.entry(name)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| format!("the model's `sessions.{name}` is not an array"))
}

fn identity_op(m: &mut Model, op: &Op) -> Result<(), String> {
    match op {
        Op::RevokeSession { sid, until } => {
            let list = session_list(m, "revoked")?;
            put(list, json!({"sid": sid, "until": until}), &["sid"]);
        }
        Op::RevokeFamily {
            family,
            claim,
            until,
        } => {
            let claim = claim
                .clone()
                .unwrap_or_else(|| edge_authz::identity::DEFAULT_FAMILY_CLAIM.to_string());
            let list = session_list(m, "revoked_families")?;
            put(
                list,
                json!({"family": family, "claim": claim, "until": until}),
                &["family", "claim"],
            );
        }
        Op::SignOut { subject, at } => {
            let s = or_new(&mut m.sessions, json!({}));
            let nb = s
                .as_object_mut()
                .ok_or("the model's `sessions` is not an object")?
                .entry("not_before")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .ok_or("the model's `sessions.not_before` is not an object")?;
            // A sign-out never moves an earlier one back.
            let at = nb
                .get(subject)
                .and_then(Value::as_u64)
                .map_or(*at, |old| old.max(*at));
            nb.insert(subject.clone(), json!(at));
        }
        Op::SetIssuer(issuer) => {
            let name = issuer
                .get("issuer")
                .cloned()
                .ok_or("set_issuer needs `issuer`")?;
            let list = or_new(&mut m.issuers, json!([]))
                .as_array_mut()
                .ok_or("the model's `issuers` is not an array")?;
            let entry = Value::Object(issuer.clone());
            match list.iter_mut().find(|i| i.get("issuer") == Some(&name)) {
                Some(i) => *i = entry,
                None => list.push(entry),
            }
        }
        Op::RemoveIssuer { issuer } => {
            let list = m
                .issuers
                .as_array_mut()
                .ok_or_else(|| missing(&format!("issuer {issuer}")))?;
            let before = list.len();
            list.retain(|i| i.get("issuer").and_then(Value::as_str) != Some(issuer));
            if list.len() == before {
                return Err(missing(&format!("issuer {issuer}")));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod patch_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Result<Model, String> {
        let text = include_str!("../../../../examples/acme.json");
        Model::from_json(text).map_err(|e| e.to_string())
    }

    fn ops(line: &str) -> Result<Vec<Op>, String> {
        match parse(line)? {
            Change::Ops(ops) => Ok(ops),
            Change::Model(_) => Err("a model".into()),
        }
    }

    #[test]
    fn operations_apply_and_absent_names_fail() -> Result<(), String> {
        let m = example()?;
        let removed = apply(
            &m,
            &ops(r#"{"op":"remove_membership","member":"user:alice","group":"group:eng"}"#)?,
        )?;
        assert_eq!(removed.memberships.len(), m.memberships.len() - 1);
        assert!(removed.compile().is_ok());
        // The same removal again names something absent: the whole change fails.
        let again = apply(
            &removed,
            &ops(r#"{"op":"remove_membership","member":"user:alice","group":"group:eng"}"#)?,
        );
        assert!(again.is_err_and(|e| e.contains("does not exist")));
        let several = apply(
            &m,
            &ops(r#"[{"op":"add_resource","id":"doc:x","parent":"org:acme"},
                    {"op":"add_assignment","principal":"user:bob","role":"viewer","resource":"doc:x"},
                    {"op":"set_role","role":"viewer","actions":["read","write"]},
                    {"op":"suspend","subject":"user:bob"},
                    {"op":"move_resource","id":"doc:roadmap","parent":"org:acme"},
                    {"op":"set_action","action":"delete","tier":"high"}]"#)?,
        )?;
        assert!(several.compile().is_ok());
        assert!(several.suspended.contains(&"user:bob".to_string()));
        assert!(several
            .resources
            .iter()
            .any(|r| r.id == "doc:roadmap" && r.parent.as_deref() == Some("org:acme")));
        // Adding what exists fails; an unknown operation or field does not parse.
        assert!(apply(&m, &ops(r#"{"op":"suspend","subject":"user:mallory"}"#)?).is_err());
        assert!(parse(r#"{"op":"frobnicate"}"#).is_err());
        assert!(parse(r#"{"op":"suspend","subject":"user:x","extra":1}"#).is_err());
        assert!(parse("[1, 2").is_err());
        assert!(matches!(
            parse(include_str!("../../../../examples/acme.json")),
            Ok(Change::Model(_))
        ));
        Ok(())
    }

    #[test]
    fn condition_operations_apply_and_diff_says_which_revoke() -> Result<(), String> {
        let m = example()?;
        let state = |m: &Model| m.compile().map(|c| c.state).map_err(|e| e.to_string());
        let revokes = |a: &Model, b: &Model| -> Result<bool, String> {
            edge_authz::diff(&state(a)?, &state(b)?)
                .map(|d| d.revokes)
                .map_err(|e| e.to_string())
        };
        let office = apply(
            &m,
            &ops(
                r#"[{"op":"set_condition","name":"office","condition":{"attr":"ip","op":"in_cidr","value":"10.0.0.0/8"}},
                    {"op":"set_condition","name":"mfa","condition":{"attr":"mfa_age_s","op":"<=","value":900,"step_up":true}},
                    {"op":"add_assignment","principal":"user:bob","role":"viewer","resource":"org:acme","when":"office"}]"#,
            )?,
        )?;
        // A new grant with a condition, new conditions: no revocation.
        assert!(!revokes(&m, &office)?);
        // A stricter condition in use, a requirement on an action: revocations.
        let stricter = apply(
            &office,
            &ops(
                r#"{"op":"set_condition","name":"office","condition":{"attr":"ip","op":"in_cidr","value":"10.1.0.0/16"}}"#,
            )?,
        )?;
        assert!(revokes(&office, &stricter)?);
        let required = apply(
            &office,
            &ops(r#"{"op":"set_action","action":"export","tier":"high","requires":["mfa"]}"#)?,
        )?;
        assert!(revokes(&office, &required)?);
        // set_action without `requires` keeps them; `[]` takes them off (a grant).
        let retiered = apply(
            &required,
            &ops(r#"{"op":"set_action","action":"export","tier":"standard"}"#)?,
        )?;
        let export = |m: &Model| {
            m.actions
                .0
                .iter()
                .find(|(n, _)| n == "export")
                .map(|(_, d)| d.requires.clone())
        };
        assert_eq!(export(&retiered), Some(vec!["mfa".to_string()]));
        let lifted = apply(
            &required,
            &ops(r#"{"op":"set_action","action":"export","tier":"high","requires":[]}"#)?,
        )?;
        assert_eq!(export(&lifted), Some(vec![]));
        assert!(!revokes(&required, &lifted)?);
        // A condition still in use cannot go; one no one uses can; an absent one is an error.
        let in_use = apply(
            &office,
            &ops(r#"{"op":"remove_condition","name":"office"}"#)?,
        )?;
        assert!(in_use
            .compile()
            .is_err_and(|e| e.kind.code() == "undeclared_condition"));
        let unused = apply(&office, &ops(r#"{"op":"remove_condition","name":"mfa"}"#)?)?;
        assert!(unused.compile().is_ok());
        assert!(apply(&m, &ops(r#"{"op":"remove_condition","name":"nope"}"#)?).is_err());
        // A malformed condition does not compile, naming it.
        let bad = apply(
            &m,
            &ops(
                r#"{"op":"set_condition","name":"bad","condition":{"attr":"ip","op":"in_cidr","value":"10.0.0.1/8"}}"#,
            )?,
        )?;
        assert!(bad
            .compile()
            .is_err_and(|e| e.at.starts_with("conditions.bad")));
        Ok(())
    }

    #[test]
    fn session_and_issuer_operations_apply_and_each_revocation_revokes() -> Result<(), String> {
        let m = example()?;
        let state = |m: &Model| m.compile().map(|c| c.state).map_err(|e| e.to_string());
        let revokes = |a: &Model, b: &Model| -> Result<bool, String> {
            edge_authz::diff(&state(a)?, &state(b)?)
                .map(|d| d.revokes)
                .map_err(|e| e.to_string())
        };
        let issuer = r#"{"op":"set_issuer","issuer":"https://idp.example/","audiences":["api"],
            "jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]},
            "subject":"user:{sub}","claims":{"amr":"amr"}}"#;
        let with_issuer = apply(&m, &ops(issuer)?)?;
        // A new issuer admits tokens: a grant.
        assert!(!revokes(&m, &with_issuer)?);
        assert_eq!(state(&with_issuer)?.identity.issuers.len(), 1);
        // Replacing it with another audience set drops `api`: a revocation.
        let narrowed = apply(
            &with_issuer,
            &ops(&issuer.replace(r#"["api"]"#, r#"["web"]"#))?,
        )?;
        assert_eq!(state(&narrowed)?.identity.issuers.len(), 1);
        assert!(revokes(&with_issuer, &narrowed)?);
        // Adding an audience only widens it.
        let widened = apply(
            &with_issuer,
            &ops(&issuer.replace(r#"["api"]"#, r#"["api","web"]"#))?,
        )?;
        assert!(!revokes(&with_issuer, &widened)?);
        for op in [
            r#"{"op":"revoke_session","sid":"s-1","until":4070908800000}"#,
            r#"{"op":"revoke_family","family":"rt-42","until":4070908800000}"#,
            r#"{"op":"sign_out","subject":"user:alice","at":1800000000000}"#,
            r#"{"op":"remove_issuer","issuer":"https://idp.example/"}"#,
        ] {
            let after = apply(&with_issuer, &ops(op)?)?;
            assert!(revokes(&with_issuer, &after)?, "{op}");
        }
        // The same revocation again changes nothing; an earlier sign-out keeps the later one.
        let revoked = apply(
            &with_issuer,
            &ops(r#"{"op":"revoke_session","sid":"s-1","until":9}"#)?,
        )?;
        let again = apply(
            &revoked,
            &ops(r#"{"op":"revoke_session","sid":"s-1","until":9}"#)?,
        )?;
        // An earlier `until` never shortens a revocation; a later one keeps it longer.
        let shorter = apply(
            &revoked,
            &ops(r#"{"op":"revoke_session","sid":"s-1","until":5}"#)?,
        )?;
        assert_eq!(state(&shorter)?.identity.revoked.get("s-1"), Some(&9));
        let longer = apply(
            &revoked,
            &ops(r#"{"op":"revoke_family","family":"x","until":5}"#)?,
        )?;
        let longer = apply(
            &longer,
            &ops(r#"{"op":"revoke_family","family":"x","until":50}"#)?,
        )?;
        assert_eq!(
            state(&longer)?
                .identity
                .families
                .get(&("fam".to_string(), "x".to_string())),
            Some(&50)
        );
        assert_eq!(state(&revoked)?, state(&again)?);
        let out = apply(
            &m,
            &ops(r#"{"op":"sign_out","subject":"user:alice","at":20}"#)?,
        )?;
        let earlier = apply(
            &out,
            &ops(r#"{"op":"sign_out","subject":"user:alice","at":10}"#)?,
        )?;
        assert_eq!(
            state(&earlier)?.identity.not_before.get("user:alice"),
            Some(&20)
        );
        // The family's claim defaults to `fam`.
        let fam = apply(
            &m,
            &ops(r#"{"op":"revoke_family","family":"rt-1","until":9}"#)?,
        )?;
        assert!(state(&fam)?
            .identity
            .families
            .contains_key(&("fam".to_string(), "rt-1".to_string())));
        // An absent issuer cannot go; a malformed one does not compile, naming its field.
        assert!(apply(&m, &ops(r#"{"op":"remove_issuer","issuer":"nope"}"#)?).is_err());
        let bad = apply(&m, &ops(&issuer.replace("user:{sub}", "user:"))?)?;
        assert!(bad.compile().is_err_and(|e| e.at == "issuers[0].subject"));
        assert!(parse(r#"{"op":"sign_out","subject":"user:a"}"#).is_err());
        // Expired revocations go when the origin compiles; later ones stay.
        let mut two = apply(
            &m,
            &ops(r#"[{"op":"revoke_session","sid":"old","until":100},
                     {"op":"revoke_session","sid":"new","until":300}]"#)?,
        )?;
        assert!(two.drop_expired_sessions(200));
        let kept: Vec<String> = state(&two)?.identity.revoked.into_keys().collect();
        assert_eq!(kept, vec!["new".to_string()]);
        Ok(())
    }
}
