//! The model's side: the subject id of a User or Group, and the edits a SCIM write makes to the
//! model (suspensions, renames, removals, memberships), copying the model only when one of them
//! changes something.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::publish::changes::Op;
use edge_authz::{is_valid_id, MembershipDef, Model};
use serde_json::{Map, Value};

use super::{get_ci, short, Error, GroupIdFrom, Kind, Res};

/// A name as an id can hold it: whitespace, control characters and `%` become `%XX`, one per
/// byte of their UTF-8 (`Engineering Team` gives `Engineering%20Team`).
pub(super) fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_whitespace() || c.is_control() || c == '%' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The subject id of a resource's representation: `user:{userName}`, `group:{displayName}` or
/// `group:{externalId}`.
pub(super) fn subject(kind: Kind, rep: &Map<String, Value>, from: GroupIdFrom) -> Res<String> {
    let (ty, attr) = match (kind, from) {
        (Kind::User, _) => ("user", "userName"),
        (Kind::Group, GroupIdFrom::DisplayName) => ("group", "displayName"),
        (Kind::Group, GroupIdFrom::ExternalId) => ("group", "externalId"),
    };
    let name = get_ci(rep, attr)
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        let why = if attr == "externalId" {
            " (groups are named by it here)"
        } else {
            ""
        };
        return Err(Error::bad(
            "invalidValue",
            format!("`{attr}` is required{why}"),
        ));
    }
    let id = format!("{ty}:{}", encode_name(name));
    if !is_valid_id(&id) {
        return Err(Error::bad(
            "invalidValue",
            format!(
                "`{attr}` `{}` is too long: at most 256 bytes once whitespace, control characters \
                 and `%` are percent-encoded",
                short(name)
            ),
        ));
    }
    Ok(id)
}

/// The model's edits of one write. A write that needs to change the model while there is none
/// is refused (409).
pub(super) struct Edit<'m> {
    base: Option<&'m Model>,
    new: Option<Model>,
    /// Memberships were added or subjects merged: check for cycles before answering.
    grew: bool,
    /// The edits as the change API's operations, in order, for the origin to patch its kept
    /// epoch with; `None` once an edit has none (a rename).
    ops: Option<Vec<Op>>,
}

fn no_model() -> Error {
    Error::new(409, "the tenant has no model yet: publish one first")
}

impl<'m> Edit<'m> {
    pub fn new(base: Option<&'m Model>) -> Self {
        Edit {
            base,
            new: None,
            grew: false,
            ops: Some(Vec::new()),
        }
    }

    fn cur(&self) -> Option<&Model> {
        self.new.as_ref().or(self.base)
    }

    fn record(&mut self, op: Op) {
        if let Some(ops) = &mut self.ops {
            ops.push(op);
        }
    }

    fn model(&mut self) -> Res<&mut Model> {
        if self.new.is_none() {
            self.new = Some(self.base.ok_or_else(no_model)?.clone());
        }
        self.new.as_mut().ok_or_else(no_model)
    }

    pub fn suspend(&mut self, id: &str) -> Res<()> {
        if !self
            .cur()
            .is_some_and(|m| m.suspended.iter().any(|s| s == id))
        {
            self.model()?.suspended.push(id.to_string());
            self.record(Op::Suspend {
                subject: id.to_string(),
            });
        }
        Ok(())
    }

    pub fn unsuspend(&mut self, id: &str) -> Res<()> {
        if self
            .cur()
            .is_some_and(|m| m.suspended.iter().any(|s| s == id))
        {
            self.model()?.suspended.retain(|s| s != id);
            self.record(Op::Unsuspend {
                subject: id.to_string(),
            });
        }
        Ok(())
    }

    /// Renames a subject in memberships, assignments and suspensions. Should the new id already
    /// be there, the two merge (duplicates dropped).
    pub fn rename(&mut self, old: &str, new: &str) -> Res<()> {
        let mentioned = |m: &Model| m.suspended.iter().any(|s| s == old) || in_grants(m, old);
        if old == new || !self.cur().is_some_and(mentioned) {
            return Ok(());
        }
        self.ops = None;
        let m = self.model()?;
        let swap = |s: &mut String| {
            if s == old {
                *s = new.to_string();
            }
        };
        for ms in &mut m.memberships {
            swap(&mut ms.member);
            swap(&mut ms.group);
        }
        m.assignments
            .iter_mut()
            .for_each(|a| swap(&mut a.principal));
        m.suspended.iter_mut().for_each(swap);
        let mut seen = BTreeSet::new();
        m.memberships
            .retain(|ms| seen.insert((ms.member.clone(), ms.group.clone())));
        let mut seen = BTreeSet::new();
        m.assignments
            .retain(|a| seen.insert((a.principal.clone(), a.role.clone(), a.resource.clone())));
        let mut seen = BTreeSet::new();
        m.suspended.retain(|s| seen.insert(s.clone()));
        self.grew = true;
        Ok(())
    }

    /// Removes the memberships a subject is in or holds, and the assignments it holds.
    pub fn remove_subject(&mut self, id: &str) -> Res<()> {
        if self.cur().is_some_and(|m| in_grants(m, id)) {
            let m = self.model()?;
            let mut ops = Vec::new();
            m.memberships.retain(|ms| {
                let keep = ms.member != id && ms.group != id;
                if !keep {
                    ops.push(Op::RemoveMembership {
                        member: ms.member.clone(),
                        group: ms.group.clone(),
                    });
                }
                keep
            });
            m.assignments.retain(|a| {
                let keep = a.principal != id;
                if !keep {
                    ops.push(Op::RemoveAssignment {
                        principal: a.principal.clone(),
                        role: a.role.clone(),
                        resource: a.resource.clone(),
                    });
                }
                keep
            });
            ops.into_iter().for_each(|op| self.record(op));
        }
        Ok(())
    }

    pub fn add_membership(&mut self, member: &str, group: &str) -> Res<()> {
        let has = |m: &Model| {
            m.memberships
                .iter()
                .any(|ms| ms.member == member && ms.group == group)
        };
        if !self.cur().is_some_and(has) {
            self.model()?.memberships.push(MembershipDef {
                member: member.to_string(),
                group: group.to_string(),
            });
            self.grew = true;
            self.record(Op::AddMembership {
                member: member.to_string(),
                group: group.to_string(),
            });
        }
        Ok(())
    }

    pub fn remove_membership(&mut self, member: &str, group: &str) -> Res<()> {
        let has = |m: &Model| {
            m.memberships
                .iter()
                .any(|ms| ms.member == member && ms.group == group)
        };
        if self.cur().is_some_and(has) {
            self.model()?
                .memberships
                .retain(|ms| ms.member != member || ms.group != group);
            self.record(Op::RemoveMembership {
                member: member.to_string(),
                group: group.to_string(),
            });
        }
        Ok(())
    }

    /// The new model, when it differs from the current one, and the operations that make it
    /// (when every edit has some).
    pub fn finish(self) -> Res<(Option<Model>, Option<Vec<Op>>)> {
        let Some(new) = self.new else {
            return Ok((None, None));
        };
        if self.grew {
            if let Some(g) = group_cycle(&new) {
                return Err(Error::bad(
                    "invalidValue",
                    format!(
                        "`{}` would contain itself: group memberships may not form a cycle",
                        short(&g)
                    ),
                ));
            }
        }
        Ok(((self.base != Some(&new)).then_some(new), self.ops))
    }
}

fn in_grants(m: &Model, id: &str) -> bool {
    m.memberships
        .iter()
        .any(|ms| ms.member == id || ms.group == id)
        || m.assignments.iter().any(|a| a.principal == id)
}

/// A group on a cycle of group memberships, if there is one (depth-first, without recursion).
fn group_cycle(m: &Model) -> Option<String> {
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for ms in m
        .memberships
        .iter()
        .filter(|ms| ms.member.starts_with("group:"))
    {
        edges
            .entry(ms.member.as_str())
            .or_default()
            .push(ms.group.as_str());
    }
    // false: on the current path; true: done.
    let mut state: BTreeMap<&str, bool> = BTreeMap::new();
    for &start in edges.keys() {
        if state.contains_key(start) {
            continue;
        }
        state.insert(start, false);
        let mut stack = vec![(start, 0usize)];
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            let child = edges.get(node).and_then(|v| v.get(*next)).copied();
            *next += 1;
            match child {
                Some(c) => match state.get(c) {
                    Some(false) => return Some(c.to_string()),
                    Some(true) => {}
                    None => {
                        state.insert(c, false);
                        stack.push((c, 0));
                    }
                },
                None => {
                    state.insert(node, true);
                    stack.pop();
                }
            }
        }
    }
    None
}
