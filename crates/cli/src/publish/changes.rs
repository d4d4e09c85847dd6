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
//! {name}. `add_assignment` takes `when` (a condition's name).

use edge_authz::Model;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
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
        }
    }
    Ok(m)
}

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
}
