//! `Index`: checked content plus the derived arrays that make a check a handful of lookups with
//! no allocation. Built once per snapshot or delta; immutable afterwards.
//!
//! Role assignments are never expanded per member. A check walks the resource's ancestors; at
//! each one it looks at the assignments stored on that resource and asks whether the principal is
//! the subject or one of the groups in the subject's precomputed group closure.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use crate::content::{csr, row, Content, NONE};
use crate::digest::digest;
use crate::error::{ModelError, ModelErrorKind as K};
use crate::id::{id_type, is_group};
use crate::state::Freshness;
use crate::wire::Limits;
use crate::{GrantRef, GrantView, Reason, Tier};

type Names = HashMap<Box<str>, u32, FxBuildHasher>;

/// One assignment as the hot path sees it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    principal: u32,
    role: u32,
    /// `u64::MAX` when the assignment never expires.
    expires: u64,
}

/// One group in a subject's transitive closure.
#[derive(Debug, Clone, Copy)]
struct Hop {
    group: u32,
    /// Membership edges from the subject to `group` on a shortest path.
    dist: u32,
    /// The first group on the lexicographically smallest shortest path to `group`.
    next: u32,
}

/// Above this many assignments on one resource (relative to the subject's closure), a check
/// probes the resource's assignment list per principal instead of scanning it.
const SCAN_FACTOR: usize = 4;

#[derive(Debug)]
pub struct Index {
    content: Content,
    digest: [u8; 32],
    freshness: Freshness,
    subject_ids: Names,
    resource_ids: Names,
    action_ids: Names,
    action_tier: Vec<Tier>,
    role_words: usize,
    role_bits: Vec<u64>,
    res_parent: Vec<u32>,
    res_slot_start: Vec<u32>,
    slots: Vec<Slot>,
    children_start: Vec<u32>,
    children: Vec<u32>,
    closure_start: Vec<u32>,
    closure: Vec<Hop>,
    members_start: Vec<u32>,
    members: Vec<u32>,
    principal_start: Vec<u32>,
    principal_slots: Vec<u32>,
    suspended: Vec<bool>,
    members_count: usize,
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> Names {
    let mut m = Names::with_capacity_and_hasher(it.size_hint().0, FxBuildHasher);
    for (i, n) in it.enumerate() {
        m.insert(n.into(), u32::try_from(i).unwrap_or(NONE));
    }
    m
}

impl Index {
    /// Checks the content and builds the index.
    pub fn build(content: Content, limits: &Limits) -> Result<Index, ModelError> {
        content.check(limits)?;
        let n_subj = content.subjects.len();
        let n_res = content.resources.len();
        let n_actions = content.actions.len();
        let role_words = n_actions.div_ceil(64).max(1);
        let mut role_bits = vec![0u64; content.roles.len() * role_words];
        for (r, (_, acts)) in content.roles.iter().enumerate() {
            for a in acts {
                if let Some(w) = role_bits.get_mut(r * role_words + (*a as usize) / 64) {
                    *w |= 1u64 << (a % 64);
                }
            }
        }
        let res_parent: Vec<u32> = content.resources.iter().map(|(_, p)| p.unwrap_or(NONE)).collect();
        let (children_start, children) = csr(n_res, content.resources.iter().enumerate().filter_map(|(i, (_, p))| p.map(|p| (p, i as u32))));
        let (res_slot_start, _) = csr(n_res, content.assignments.iter().map(|(r, ..)| (*r, 0)));
        let slots = content
            .assignments
            .iter()
            .map(|(_, p, role, e)| Slot { principal: *p, role: *role, expires: e.unwrap_or(u64::MAX) })
            .collect();
        let (principal_start, principal_slots) = csr(n_subj, content.assignments.iter().enumerate().map(|(i, (_, p, ..))| (*p, i as u32)));
        let (groups_start, groups) = csr(n_subj, content.memberships.iter().copied());
        let (members_start, members) = csr(n_subj, content.memberships.iter().map(|(m, g)| (*g, *m)));

        // Group closures by breadth-first search over sorted group lists: the first discovery of a
        // group is along the lexicographically smallest shortest path.
        let mut closure_start = Vec::with_capacity(n_subj + 1);
        let mut closure: Vec<Hop> = Vec::new();
        let mut seen = vec![NONE; n_subj];
        let mut queue: Vec<Hop> = Vec::new();
        for s in 0..n_subj as u32 {
            closure_start.push(u32::try_from(closure.len()).unwrap_or(NONE));
            queue.clear();
            if let Some(x) = seen.get_mut(s as usize) {
                *x = s;
            }
            for g in row(&groups_start, &groups, s) {
                if let Some(x) = seen.get_mut(*g as usize) {
                    if *x != s {
                        *x = s;
                        queue.push(Hop { group: *g, dist: 1, next: *g });
                    }
                }
            }
            let mut head = 0;
            while let Some(h) = queue.get(head).copied() {
                head += 1;
                for g in row(&groups_start, &groups, h.group) {
                    if let Some(x) = seen.get_mut(*g as usize) {
                        if *x != s {
                            *x = s;
                            queue.push(Hop { group: *g, dist: h.dist + 1, next: h.next });
                        }
                    }
                }
            }
            if closure.len() + queue.len() > limits.max_closure_entries {
                return Err(ModelError::new(
                    K::LimitExceeded,
                    content.subjects.get(s as usize).map_or("", String::as_str),
                    format!("group closures exceed {} entries: group nesting is too wide or deep", limits.max_closure_entries),
                ));
            }
            queue.sort_unstable_by_key(|h| h.group);
            closure.extend_from_slice(&queue);
        }
        closure_start.push(u32::try_from(closure.len()).unwrap_or(NONE));

        let mut suspended = vec![false; n_subj];
        for s in &content.suspended {
            if let Some(x) = suspended.get_mut(*s as usize) {
                *x = true;
            }
        }
        let direct = suspended.clone();
        for s in 0..n_subj {
            let lo = closure_start.get(s).copied().unwrap_or(0) as usize;
            let hi = closure_start.get(s + 1).copied().unwrap_or(0) as usize;
            let inherited = closure.get(lo..hi).unwrap_or(&[]).iter().any(|h| direct.get(h.group as usize).copied().unwrap_or(false));
            if let Some(x) = suspended.get_mut(s) {
                *x |= inherited;
            }
        }
        let members_count = content.subjects.iter().filter(|s| !is_group(s)).count();
        Ok(Index {
            digest: digest(&content),
            freshness: content.freshness(),
            subject_ids: names(content.subjects.iter().map(String::as_str)),
            resource_ids: names(content.resources.iter().map(|(n, _)| n.as_str())),
            action_ids: names(content.actions.iter().map(|(n, _)| n.as_str())),
            action_tier: content.actions.iter().map(|(_, t)| Tier::from_u8(*t).unwrap_or(Tier::High)).collect(),
            role_words,
            role_bits,
            res_parent,
            res_slot_start,
            slots,
            children_start,
            children,
            closure_start,
            closure,
            members_start,
            members,
            principal_start,
            principal_slots,
            suspended,
            members_count,
            content,
        })
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    pub fn subject(&self, id: &str) -> Option<u32> {
        self.subject_ids.get(id).copied()
    }

    pub fn resource(&self, id: &str) -> Option<u32> {
        self.resource_ids.get(id).copied()
    }

    pub fn action(&self, name: &str) -> Option<u32> {
        self.action_ids.get(name).copied()
    }

    pub fn tier(&self, action: u32) -> Tier {
        self.action_tier.get(action as usize).copied().unwrap_or(Tier::High)
    }

    /// Whether the subject, or a group it belongs to, is suspended.
    pub fn is_suspended(&self, subject: u32) -> bool {
        self.suspended.get(subject as usize).copied().unwrap_or(false)
    }

    fn role_has(&self, role: u32, action: u32) -> bool {
        let w = self.role_bits.get(role as usize * self.role_words + action as usize / 64).copied().unwrap_or(0);
        w >> (action % 64) & 1 == 1
    }

    fn closure_of(&self, s: u32) -> &[Hop] {
        let lo = self.closure_start.get(s as usize).copied().unwrap_or(0) as usize;
        let hi = self.closure_start.get(s as usize + 1).copied().unwrap_or(0) as usize;
        self.closure.get(lo..hi).unwrap_or(&[])
    }

    fn slots_on(&self, r: u32) -> (usize, &[Slot]) {
        let lo = self.res_slot_start.get(r as usize).copied().unwrap_or(0) as usize;
        let hi = self.res_slot_start.get(r as usize + 1).copied().unwrap_or(0) as usize;
        (lo, self.slots.get(lo..hi).unwrap_or(&[]))
    }

    fn usable(&self, slot: &Slot, action: u32, now: u64) -> bool {
        now < slot.expires && self.role_has(slot.role, action)
    }

    /// Gate 8: the grant for a known subject, action and resource, if any. Nearest resource first,
    /// then the shortest group path, then principal and role in id order.
    pub fn find_grant(&self, s: u32, a: u32, r: u32, now: u64) -> Option<GrantRef> {
        let closure = self.closure_of(s);
        let mut y = r;
        loop {
            let (lo, slots) = self.slots_on(y);
            let mut best: Option<(u32, usize)> = None;
            if slots.len() <= SCAN_FACTOR * (closure.len() + 1) {
                for (i, slot) in slots.iter().enumerate() {
                    if !self.usable(slot, a, now) {
                        continue;
                    }
                    let d = if slot.principal == s {
                        0
                    } else {
                        match closure.binary_search_by_key(&slot.principal, |h| h.group) {
                            Ok(j) => closure.get(j).map_or(u32::MAX, |h| h.dist),
                            Err(_) => continue,
                        }
                    };
                    if best.is_none_or(|(bd, _)| d < bd) {
                        best = Some((d, i));
                        if d == 0 {
                            break;
                        }
                    }
                }
            } else {
                let probe = |p: u32| -> Option<usize> {
                    let start = slots.partition_point(|x| x.principal < p);
                    slots.get(start..)?.iter().take_while(|x| x.principal == p).position(|x| self.usable(x, a, now)).map(|k| start + k)
                };
                if let Some(k) = probe(s) {
                    best = Some((0, k));
                } else {
                    for h in closure {
                        if best.is_some_and(|(bd, _)| h.dist >= bd) {
                            continue;
                        }
                        if let Some(k) = probe(h.group) {
                            best = Some((h.dist, k));
                        }
                    }
                }
            }
            if let Some((_, i)) = best {
                return Some(GrantRef { assignment: u32::try_from(lo + i).unwrap_or(NONE), subject: s });
            }
            y = self.res_parent.get(y as usize).copied().unwrap_or(NONE);
            if y == NONE {
                return None;
            }
        }
    }

    /// Gates 5 to 9 for looked-up ids (gates 1 to 4 are the evaluator's).
    pub fn decide(&self, s: Option<u32>, a: Option<u32>, r: Option<u32>, now: u64) -> (Reason, Option<GrantRef>) {
        let Some(a) = a else { return (Reason::UnknownAction, None) };
        if s.is_some_and(|s| self.is_suspended(s)) {
            return (Reason::Suspended, None);
        }
        let Some(r) = r else { return (Reason::UnknownResource, None) };
        match s.and_then(|s| self.find_grant(s, a, r, now)) {
            Some(g) => (Reason::Granted, Some(g)),
            None => (Reason::NoGrant, None),
        }
    }

    fn subject_name(&self, s: u32) -> &str {
        self.content.subjects.get(s as usize).map_or("", String::as_str)
    }

    /// The names behind a grant, with the group path from the subject to the principal.
    pub fn explain(&self, g: &GrantRef) -> Option<GrantView<'_>> {
        let (r, p, role, _) = self.content.assignments.get(g.assignment as usize)?;
        let mut path = vec![self.subject_name(g.subject)];
        let mut cur = g.subject;
        while cur != *p {
            let c = self.closure_of(cur);
            let hop = c.get(c.binary_search_by_key(p, |h| h.group).ok()?)?;
            cur = hop.next;
            path.push(self.subject_name(cur));
        }
        Some(GrantView {
            principal: self.subject_name(*p),
            role: self.content.roles.get(*role as usize).map_or("", |(n, _)| n.as_str()),
            resource: self.content.resources.get(*r as usize).map_or("", |(n, _)| n.as_str()),
            path,
        })
    }

    /// Every resource (optionally of one type) on which the subject may do the action, sorted.
    /// The subject must not be suspended (the caller's gate).
    pub fn resources_for(&self, s: u32, a: u32, type_filter: Option<&str>, now: u64) -> Vec<&str> {
        let mut marked = vec![false; self.content.resources.len()];
        let mut stack = Vec::new();
        let principals = std::iter::once(s).chain(self.closure_of(s).iter().map(|h| h.group));
        for p in principals {
            for slot_id in row(&self.principal_start, &self.principal_slots, p) {
                let usable = self.slots.get(*slot_id as usize).is_some_and(|x| self.usable(x, a, now));
                if let (true, Some((r, ..))) = (usable, self.content.assignments.get(*slot_id as usize)) {
                    stack.push(*r);
                }
            }
        }
        while let Some(r) = stack.pop() {
            match marked.get_mut(r as usize) {
                Some(m) if !*m => *m = true,
                _ => continue,
            }
            stack.extend_from_slice(row(&self.children_start, &self.children, r));
        }
        self.content
            .resources
            .iter()
            .zip(marked)
            .filter(|((id, _), m)| *m && type_filter.is_none_or(|t| id_type(id) == t))
            .map(|((id, _), _)| id.as_str())
            .collect()
    }

    /// Every member (not group), not suspended, who may do the action on the resource, sorted.
    pub fn subjects_for(&self, r: u32, a: u32, now: u64) -> Vec<&str> {
        let mut marked = vec![false; self.content.subjects.len()];
        let mut stack = Vec::new();
        let mut y = r;
        while y != NONE {
            let (_, slots) = self.slots_on(y);
            stack.extend(slots.iter().filter(|x| self.usable(x, a, now)).map(|x| x.principal));
            y = self.res_parent.get(y as usize).copied().unwrap_or(NONE);
        }
        while let Some(p) = stack.pop() {
            match marked.get_mut(p as usize) {
                Some(m) if !*m => *m = true,
                _ => continue,
            }
            stack.extend_from_slice(row(&self.members_start, &self.members, p));
        }
        self.content
            .subjects
            .iter()
            .zip(marked)
            .enumerate()
            .filter(|(i, (id, m))| *m && !is_group(id) && !self.is_suspended(*i as u32))
            .map(|(_, (id, _))| id.as_str())
            .collect()
    }

    /// Subjects that are not groups.
    pub fn members_count(&self) -> usize {
        self.members_count
    }
}
