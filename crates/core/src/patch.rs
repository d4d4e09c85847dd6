//! Applies a delta's operations directly to interned content, without going back to names.
//!
//! Old ids map to new ids through sorted merges, so every remap preserves order. Only the few
//! names a delta mentions are looked up (by binary search in the old tables); everything else moves
//! as integers. The result is checked in full by `Index::build`, and the caller compares its digest
//! with the signed one, so this is an optimisation of `State`-level application (`apply_ops`), not
//! a second definition of it: the tests hold the two to the same results.

use std::collections::{BTreeMap, BTreeSet};

use crate::content::{ConditionTables, Content, NONE};
use crate::delta::{edit_conditions, ConditionOps, DeltaOps};
use crate::names::{Names, Resources};
use crate::state::shorten;
use crate::{Error, Tier};

fn bad(msg: String) -> Error {
    Error::InvalidDelta(msg)
}

fn find(table: &Names, name: &str) -> Option<u32> {
    table.binary_search(name).ok().map(|i| i as u32)
}

/// Merges the kept old names (sorted) with added names (sorted, none among the old): the new
/// table and the old-to-new id map (`NONE` for removed names).
fn merge(old: &Names, removed: &[bool], added: &[&str]) -> (Names, Vec<u32>) {
    let mut out = Names::with_capacity(old.len() + added.len(), old.heap_bytes());
    let mut map = vec![NONE; old.len()];
    let mut add = added.iter().peekable();
    for (i, name) in old.iter().enumerate() {
        while let Some(a) = add.next_if(|a| **a < name) {
            out.push(a);
        }
        if !removed.get(i).copied().unwrap_or(false) {
            if let Some(m) = map.get_mut(i) {
                *m = out.len() as u32;
            }
            out.push(name);
        }
    }
    for a in add {
        out.push(a);
    }
    out.shrink_to_fit();
    (out, map)
}

fn remap(map: &[u32], id: u32) -> u32 {
    map.get(id as usize).copied().unwrap_or(NONE)
}

/// A table of names with some removed and some added, by name.
struct TableChange<'a> {
    removed: Vec<bool>,
    added: BTreeSet<&'a str>,
}

fn table_change<'a>(
    old: &Names,
    dels: impl Iterator<Item = &'a str>,
    sets: impl Iterator<Item = &'a str>,
    what: &str,
) -> Result<TableChange<'a>, Error> {
    let mut removed = vec![false; old.len()];
    for d in dels {
        let i = find(old, d).ok_or_else(|| {
            bad(format!(
                "removes {what} `{}` that does not exist",
                shorten(d)
            ))
        })?;
        if let Some(r) = removed.get_mut(i as usize) {
            *r = true;
        }
    }
    let mut added = BTreeSet::new();
    for s in sets {
        match find(old, s) {
            Some(i) if !removed.get(i as usize).copied().unwrap_or(true) => {}
            // Set after delete in the same delta, or new: either way it is (re)added by name.
            Some(i) => {
                if let Some(r) = removed.get_mut(i as usize) {
                    *r = false;
                }
            }
            None => {
                added.insert(s);
            }
        }
    }
    Ok(TableChange { removed, added })
}

/// Applies `ops` to `c`, table by table in the order the checks have always run (actions, roles,
/// resources, memberships, assignments, suspensions), then renumbers the subjects: the first
/// failing operation is the error, whatever follows it.
pub(crate) fn apply(c: &Content, ops: &DeltaOps) -> Result<Content, Error> {
    let actions = edit_actions(c, ops)?;
    let roles = edit_roles(c, ops, &actions)?;
    let resources = edit_resources(c, ops)?;
    let subjects = Subjects::new(c, ops);
    let memberships = edit_memberships(c, ops, &subjects)?;
    let assignments = edit_assignments(c, ops, &resources, &roles, &subjects)?;
    let suspended = edit_suspended(c, ops, &subjects)?;
    let (subject_names, renumber) = subjects.rebuild(&memberships, &assignments, &suspended);
    let mut out = Content {
        actions: actions.into_iter().collect(),
        roles: roles.table,
        resources: Resources::from_parts(resources.names, &resources.parents),
        subjects: subject_names,
        memberships: renumber.memberships(memberships),
        assignments: renumber.assignments(assignments),
        suspended: renumber.suspended(suspended),
        freshness: ops.freshness.unwrap_or(c.freshness),
        conditional: ConditionTables::default(),
        identity: c.identity.apply(&ops.identity)?,
    };
    out.conditional = edit_condition_tables(c, &out, &ops.conditional)?;
    Ok(out)
}

/// The condition tables of `new` (the patched content, all else done): the old ones by name,
/// edited by name, then interned in the new ids. Conditions are few; an assignment's `when`
/// moves by its names, so only the assignments that have one are looked up.
fn edit_condition_tables(
    old: &Content,
    new: &Content,
    ops: &ConditionOps,
) -> Result<ConditionTables, Error> {
    let t = &old.conditional;
    if t.is_empty() && ops.is_empty() {
        return Ok(ConditionTables::default());
    }
    let state = old.condition_names();
    let (mut conditions, mut requires, mut when) = state;
    edit_conditions(&mut conditions, &mut requires, &mut when, ops, |_, json| {
        Ok(json.to_string())
    })?;
    // Ids are places in name order: found by binary search.
    let names: Vec<&str> = conditions.keys().map(String::as_str).collect();
    let cond = |n: &str| {
        names
            .binary_search(&n)
            .map(|i| i as u32)
            .map_err(|_| bad(format!("names undeclared condition `{}`", shorten(n))))
    };
    let mut out = ConditionTables::default();
    for (a, names) in &requires {
        let id = new
            .actions
            .binary_search_by(|(n, _)| n.as_str().cmp(a))
            .map_err(|_| {
                bad(format!(
                    "action `{}` requires conditions but does not exist",
                    shorten(a)
                ))
            })?;
        for n in names {
            out.requires.push((id as u32, cond(n)?));
        }
    }
    out.requires.sort_unstable();
    let role_names: Names = new.roles.iter().map(|(n, _)| n).collect();
    for (k, n) in &when {
        let key = (
            find(new.resources.names(), &k.resource),
            find(&new.subjects, &k.principal),
            find(&role_names, &k.role),
        );
        let slot = match key {
            (Some(r), Some(p), Some(ro)) => new
                .assignments
                .binary_search_by_key(&(r, p, ro), |(r, p, ro, _)| (*r, *p, *ro))
                .ok(),
            _ => None,
        }
        .ok_or_else(|| {
            bad(format!(
                "a condition on an assignment of `{}` that does not exist",
                shorten(&k.principal)
            ))
        })?;
        out.when.push((slot as u32, cond(n)?));
    }
    out.when.sort_unstable();
    out.conditions = conditions.into_iter().collect();
    Ok(out)
}

/// Actions are few: they are edited by name. Returns the new `(name, tier)` table.
fn edit_actions(c: &Content, ops: &DeltaOps) -> Result<BTreeMap<String, u8>, Error> {
    let mut actions: BTreeMap<String, u8> = crate::state::map_of(c.actions.iter().cloned());
    for d in &ops.actions_del {
        actions.remove(d).ok_or_else(|| {
            bad(format!(
                "removes action `{}` that does not exist",
                shorten(d)
            ))
        })?;
    }
    for (n, t) in &ops.actions_set {
        Tier::from_u8(*t)
            .ok_or_else(|| bad(format!("action `{}` has an unknown tier {t}", shorten(n))))?;
        actions.insert(n.clone(), *t);
    }
    Ok(actions)
}

/// The roles after a delta.
struct Roles {
    /// `(name, action ids ascending)` in the new action ids, sorted by name.
    table: Vec<(String, Vec<u32>)>,
    /// The old role names (the ids the held assignments use).
    old_names: Names,
    /// The new role names (the ids the new assignments use).
    names: Names,
    /// Old role id to new role id (`NONE`: removed).
    map: Vec<u32>,
}

/// Roles are few too: edited by name (their actions as names, since action ids move), then
/// interned against the new action table.
fn edit_roles(c: &Content, ops: &DeltaOps, actions: &BTreeMap<String, u8>) -> Result<Roles, Error> {
    let action_name = |i: u32| {
        c.actions
            .get(i as usize)
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    };
    let mut roles: BTreeMap<String, BTreeSet<String>> =
        crate::state::map_of(c.roles.iter().map(|(n, ids)| {
            (
                n.clone(),
                crate::state::set_of(ids.iter().map(|a| action_name(*a))),
            )
        }));
    for d in &ops.roles_del {
        roles
            .remove(d)
            .ok_or_else(|| bad(format!("removes role `{}` that does not exist", shorten(d))))?;
    }
    for (n, acts) in &ops.roles_set {
        let set: BTreeSet<String> = crate::state::set_of(acts.iter().cloned());
        if set.len() != acts.len() {
            return Err(bad(format!("role `{}` lists an action twice", shorten(n))));
        }
        roles.insert(n.clone(), set);
    }
    let action_names: Names = actions.keys().collect();
    let mut table = Vec::with_capacity(roles.len());
    for (n, acts) in &roles {
        let ids = acts
            .iter()
            .map(|a| {
                find(&action_names, a).ok_or_else(|| {
                    bad(format!(
                        "role `{}` names undeclared action `{}`",
                        shorten(n),
                        shorten(a)
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        table.push((n.clone(), ids));
    }
    let old_names: Names = c.roles.iter().map(|(n, _)| n).collect();
    let names: Names = roles.keys().collect();
    let map: Vec<u32> = old_names
        .iter()
        .map(|n| find(&names, n).unwrap_or(NONE))
        .collect();
    Ok(Roles {
        table,
        old_names,
        names,
        map,
    })
}

/// The resources after a delta.
struct ResourceTable {
    /// The new resource names, sorted.
    names: Names,
    /// Old resource id to new resource id (`NONE`: removed).
    map: Vec<u32>,
    /// Each new resource's parent, in new ids.
    parents: Vec<Option<u32>>,
}

/// Resources are many: the table is merged, the old parents move as integers, and only the
/// resources the delta sets are looked up by name.
fn edit_resources(c: &Content, ops: &DeltaOps) -> Result<ResourceTable, Error> {
    let old_res = c.resources.names();
    let rc = table_change(
        old_res,
        ops.resources_del.iter().map(String::as_str),
        ops.resources_set.iter().map(|(n, _)| n.as_str()),
        "resource",
    )?;
    let added: Vec<&str> = rc.added.iter().copied().collect();
    let (names, map) = merge(old_res, &rc.removed, &added);
    let set_parent: BTreeMap<&str, Option<&str>> = crate::state::map_of(
        ops.resources_set
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_deref())),
    );
    let mut parents: Vec<Option<u32>> = vec![None; names.len()];
    keep_parents(c, &map, &set_parent, &mut parents)?;
    set_parents(&names, &set_parent, &mut parents)?;
    Ok(ResourceTable {
        names,
        map,
        parents,
    })
}

/// The parents of the resources the delta keeps and does not set, renumbered: a kept parent the
/// delta removes is a dangling reference.
fn keep_parents(
    c: &Content,
    res_map: &[u32],
    set_parent: &BTreeMap<&str, Option<&str>>,
    parents: &mut [Option<u32>],
) -> Result<(), Error> {
    for (i, (name, p)) in c.resources.iter().enumerate() {
        let new = remap(res_map, i as u32);
        if new == NONE || set_parent.contains_key(name) {
            continue;
        }
        let p =
            match p {
                Some(p) => Some(Some(remap(res_map, p)).filter(|p| *p != NONE).ok_or_else(
                    || {
                        bad(format!(
                            "resource `{}` keeps a parent the delta removes",
                            shorten(name)
                        ))
                    },
                )?),
                None => None,
            };
        if let Some(slot) = parents.get_mut(new as usize) {
            *slot = p;
        }
    }
    Ok(())
}

/// The parents of the resources the delta sets, looked up by name in the new table.
fn set_parents(
    res_names: &Names,
    set_parent: &BTreeMap<&str, Option<&str>>,
    parents: &mut [Option<u32>],
) -> Result<(), Error> {
    for (n, p) in set_parent {
        let id = find(res_names, n)
            .ok_or_else(|| bad(format!("resource `{}` is missing", shorten(n))))?;
        let p = match p {
            Some(p) => Some(find(res_names, p).ok_or_else(|| {
                bad(format!(
                    "resource `{}` has undeclared parent `{}`",
                    shorten(n),
                    shorten(p)
                ))
            })?),
            None => None,
        };
        if let Some(slot) = parents.get_mut(id as usize) {
            *slot = p;
        }
    }
    Ok(())
}

/// Subject ids while a delta is applied: the old table's ids, then the names the delta adds as
/// extra ids `old.len() + k`, until [`Subjects::rebuild`] makes the new table.
struct Subjects<'a> {
    old: &'a Names,
    n_old: u32,
    extra: BTreeMap<&'a str, u32>,
}

impl<'a> Subjects<'a> {
    fn new(c: &'a Content, ops: &'a DeltaOps) -> Subjects<'a> {
        let n_old = c.subjects.len() as u32;
        let mut extra: BTreeMap<&str, u32> = BTreeMap::new();
        for name in ops
            .memberships_add
            .iter()
            .flat_map(|(m, g)| [m.as_str(), g.as_str()])
            .chain(ops.assignments_set.iter().map(|(_, p, _, _)| p.as_str()))
            .chain(ops.suspended_add.iter().map(String::as_str))
        {
            if find(&c.subjects, name).is_none() && !extra.contains_key(name) {
                let k = extra.len() as u32;
                extra.insert(name, n_old + k);
            }
        }
        Subjects {
            old: &c.subjects,
            n_old,
            extra,
        }
    }

    /// The subject's id in the old table, if it is there.
    fn old_id(&self, name: &str) -> Option<u32> {
        find(self.old, name)
    }

    /// The subject's id, old or extra (`NONE` for a name the delta does not mention).
    fn id(&self, name: &str) -> u32 {
        self.old_id(name)
            .or_else(|| self.extra.get(name).copied())
            .unwrap_or(NONE)
    }

    /// Whether `id` is in the old table.
    fn is_old(&self, id: u32) -> bool {
        id < self.n_old
    }

    /// The new subject table, from what the edited tables refer to, in name order; and the map
    /// from the ids used so far to its ids.
    fn rebuild(
        self,
        memberships: &[(u32, u32)],
        assignments: &[Assignment],
        suspended: &BTreeSet<u32>,
    ) -> (Names, Renumber) {
        let total = self.n_old as usize + self.extra.len();
        let mut referenced = vec![false; total];
        let mut mark = |i: u32| {
            if let Some(r) = referenced.get_mut(i as usize) {
                *r = true;
            }
        };
        memberships.iter().for_each(|(m, g)| {
            mark(*m);
            mark(*g);
        });
        assignments.iter().for_each(|(_, p, _, _)| mark(*p));
        suspended.iter().for_each(|s| mark(*s));
        let removed: Vec<bool> = referenced
            .iter()
            .take(self.n_old as usize)
            .map(|r| !r)
            .collect();
        let new_names: Vec<&str> = self
            .extra
            .iter()
            .filter(|(_, id)| referenced.get(**id as usize).copied().unwrap_or(false))
            .map(|(n, _)| *n)
            .collect();
        let (subjects, mut map) = merge(self.old, &removed, &new_names);
        map.resize(total, NONE);
        for (n, id) in &self.extra {
            if let Some(slot) = map.get_mut(*id as usize) {
                *slot = find(&subjects, n).unwrap_or(NONE);
            }
        }
        (subjects, Renumber(map))
    }
}

/// `(resource, principal, role, expires_at)`, as [`Content::assignments`] holds them.
type Assignment = (u32, u32, u32, Option<u64>);

/// Memberships: removals by old ids (each must exist, once), then the additions (each must be
/// new), in the ids of [`Subjects`]; not yet sorted.
fn edit_memberships(
    c: &Content,
    ops: &DeltaOps,
    subjects: &Subjects<'_>,
) -> Result<Vec<(u32, u32)>, Error> {
    let mut gone = vec![false; c.memberships.len()];
    for (m, g) in &ops.memberships_del {
        let key = (subjects.old_id(m), subjects.old_id(g));
        let at = match key {
            (Some(m), Some(g)) => c.memberships.binary_search(&(m, g)).ok(),
            _ => None,
        };
        let at = at
            .filter(|i| !gone.get(*i).copied().unwrap_or(true))
            .ok_or_else(|| {
                bad(format!(
                    "removes membership `{}` in `{}` that does not exist",
                    shorten(m),
                    shorten(g)
                ))
            })?;
        if let Some(x) = gone.get_mut(at) {
            *x = true;
        }
    }
    let mut kept: Vec<(u32, u32)> =
        Vec::with_capacity(c.memberships.len() + ops.memberships_add.len());
    kept.extend(
        c.memberships
            .iter()
            .zip(&gone)
            .filter(|(_, g)| !**g)
            .map(|(x, _)| *x),
    );
    for (m, g) in &ops.memberships_add {
        let pair = (subjects.id(m), subjects.id(g));
        if subjects.is_old(pair.0) && subjects.is_old(pair.1) && kept.binary_search(&pair).is_ok() {
            return Err(bad(format!(
                "adds membership `{}` in `{}` that already exists",
                shorten(m),
                shorten(g)
            )));
        }
        kept.push(pair);
    }
    Ok(kept)
}

/// Assignments: removals by old ids, then the rest into new resource and role ids (a survivor
/// on a removed resource or role is a dangling reference), then additions and new expiries,
/// pushed after what they replace (see [`Renumber::assignments`]). Vectors, not maps: a large
/// tenant's assignments are most of a delta's transient memory.
fn edit_assignments(
    c: &Content,
    ops: &DeltaOps,
    resources: &ResourceTable,
    roles: &Roles,
    subjects: &Subjects<'_>,
) -> Result<Vec<Assignment>, Error> {
    let gone = removed_assignments(c, ops, roles, subjects)?;
    let mut assignments: Vec<Assignment> =
        Vec::with_capacity(c.assignments.len() + ops.assignments_set.len());
    for ((r, p, role, e), g) in c.assignments.iter().zip(&gone) {
        if *g {
            continue;
        }
        let (r, p, role, e) = (*r, *p, *role, *e);
        let (r2, role2) = (remap(&resources.map, r), remap(&roles.map, role));
        if r2 == NONE || role2 == NONE {
            let name = |t: &Names, i: u32| shorten(t.get(i as usize).unwrap_or("?"));
            return Err(bad(format!(
                "the assignment of `{}` as `{}` on `{}` names a role or resource the delta removes",
                name(&c.subjects, p),
                name(&roles.old_names, role),
                name(c.resources.names(), r)
            )));
        }
        assignments.push((r2, p, role2, e));
    }
    for (res, p, role, e) in &ops.assignments_set {
        let r = find(&resources.names, res).ok_or_else(|| {
            bad(format!(
                "assignment names undeclared resource `{}`",
                shorten(res)
            ))
        })?;
        let ro = find(&roles.names, role).ok_or_else(|| {
            bad(format!(
                "assignment names undeclared role `{}`",
                shorten(role)
            ))
        })?;
        assignments.push((r, subjects.id(p), ro, *e));
    }
    Ok(assignments)
}

/// Which held assignments the delta removes (each must exist, once), by position.
fn removed_assignments(
    c: &Content,
    ops: &DeltaOps,
    roles: &Roles,
    subjects: &Subjects<'_>,
) -> Result<Vec<bool>, Error> {
    let mut gone = vec![false; c.assignments.len()];
    for (res, p, role) in &ops.assignments_del {
        let key = (
            find(c.resources.names(), res),
            subjects.old_id(p),
            find(&roles.old_names, role),
        );
        let at = match key {
            (Some(r), Some(p), Some(ro)) => c
                .assignments
                .binary_search_by_key(&(r, p, ro), |(r, p, ro, _)| (*r, *p, *ro))
                .ok()
                .filter(|i| !gone.get(*i).copied().unwrap_or(true)),
            _ => None,
        };
        match at.and_then(|i| gone.get_mut(i)) {
            Some(g) => *g = true,
            None => {
                return Err(bad(format!(
                    "removes an assignment of `{}` that does not exist",
                    shorten(p)
                )))
            }
        }
    }
    Ok(gone)
}

/// Suspensions: lifts (each must be suspended), then new ones (each must not be), in the ids of
/// [`Subjects`].
fn edit_suspended(
    c: &Content,
    ops: &DeltaOps,
    subjects: &Subjects<'_>,
) -> Result<BTreeSet<u32>, Error> {
    let mut suspended: BTreeSet<u32> = crate::state::set_of(c.suspended.iter().copied());
    for s in &ops.suspended_del {
        let id = subjects.old_id(s).unwrap_or(NONE);
        if !suspended.remove(&id) {
            return Err(bad(format!(
                "lifts suspension of `{}` that is not suspended",
                shorten(s)
            )));
        }
    }
    for s in &ops.suspended_add {
        if !suspended.insert(subjects.id(s)) {
            return Err(bad(format!("suspends `{}` twice", shorten(s))));
        }
    }
    Ok(suspended)
}

/// The map from the ids of [`Subjects`] to the rebuilt table's, applied to each edited table,
/// which is then sorted as [`Content`] keeps it.
struct Renumber(Vec<u32>);

impl Renumber {
    fn id(&self, i: u32) -> u32 {
        remap(&self.0, i)
    }

    fn memberships(&self, mut memberships: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
        for (m, g) in &mut memberships {
            (*m, *g) = (self.id(*m), self.id(*g));
        }
        memberships.sort_unstable();
        memberships
    }

    fn assignments(&self, mut assignments: Vec<Assignment>) -> Vec<Assignment> {
        for a in &mut assignments {
            a.1 = self.id(a.1);
        }
        // A stable sort keeps equal keys in push order; of those the last pushed (a set: a new
        // expiry) is the one that stays.
        assignments.sort_by_key(|(r, p, role, _)| (*r, *p, *role));
        assignments.dedup_by(|later, kept| {
            let same = (later.0, later.1, later.2) == (kept.0, kept.1, kept.2);
            if same {
                *kept = *later;
            }
            same
        });
        assignments
    }

    fn suspended(&self, suspended: BTreeSet<u32>) -> Vec<u32> {
        let mut suspended: Vec<u32> = suspended.into_iter().map(|s| self.id(s)).collect();
        suspended.sort_unstable();
        suspended
    }
}
