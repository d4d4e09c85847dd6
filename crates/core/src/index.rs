//! `Index`: checked content plus the derived arrays that make a check a handful of lookups with
//! no allocation. Built once per snapshot or delta; immutable afterwards.
//!
//! Role assignments are never expanded per member. A check walks the resource's ancestors; at
//! each one it looks at the assignments stored on that resource and asks whether the principal is
//! the subject or one of the groups in the subject's precomputed group closure.

use std::sync::OnceLock;

use crate::condition::{Conditions, Context, Judge, Outcome};
use crate::content::{csr, row, Content, NONE};
use crate::digest::digest;
use crate::error::{ModelError, ModelErrorKind as K};
use crate::id::{id_type, is_group};
use crate::names::{NameTable, Names};
use crate::state::Freshness;
use crate::wire::Limits;
use crate::{GrantRef, GrantView, Reason, Tier};

/// One group in a subject's transitive closure (found by breadth-first search).
#[derive(Debug, Clone, Copy)]
struct Hop {
    group: u32,
    /// Membership edges from the subject to `group` on a shortest path.
    dist: u32,
    /// The first group on the lexicographically smallest shortest path to `group`.
    next: u32,
}

/// A closure entry's `(dist, next)` packed in one word: `dist` in the top 8 bits, `next` (a
/// subject id, below `MAX_SUBJECTS`) in the low 24.
const HOP_BITS: u32 = 24;
/// Most subjects an index holds (ids must fit `HOP_BITS`).
pub const MAX_SUBJECTS: usize = 1 << HOP_BITS;
/// Deepest group nesting: the most membership edges from a subject to a group it is in.
pub const MAX_GROUP_DEPTH: u32 = 255;

#[inline(always)]
fn hop_dist(m: u32) -> u32 {
    m >> HOP_BITS
}

#[inline(always)]
fn hop_next(m: u32) -> u32 {
    m & ((1 << HOP_BITS) - 1)
}

/// What a check needs of a subject, in one place: its closure's range and its suspension.
#[derive(Debug, Clone, Copy)]
struct SubjectRec {
    closure_lo: u32,
    closure_hi: u32,
    suspended: bool,
}

/// What a check needs of a resource, in one place.
#[derive(Debug, Clone, Copy)]
struct ResourceRec {
    parent: u32,
    slot_lo: u32,
    slot_hi: u32,
    /// Dense resources have an open-addressing table of their principals; `table_mask` is its
    /// size minus one, or 0 for a sparse resource (scanned instead).
    table_lo: u32,
    table_mask: u32,
    /// A blocked bloom filter of the dense resource's principals (words `bloom_lo ..=
    /// bloom_lo + bloom_mask`; a principal sets two bits of one word): most principals that hold
    /// nothing here are ruled out by one word read instead of a table probe.
    bloom_lo: u32,
    bloom_mask: u32,
}

/// How many group hops from subject `s` to principal `p` (0: `p` is `s`), given `s`'s closure;
/// `None` when `s` does not reach `p`.
#[inline(always)]
fn distance(s: u32, p: u32, groups: &[u32], meta: &[u32]) -> Option<u32> {
    if p == s {
        return Some(0);
    }
    let j = groups.binary_search(&p).ok()?;
    Some(meta.get(j).map_or(u32::MAX, |m| hop_dist(*m)))
}

/// A resource with more assignments than this gets a principal table.
const DENSE: usize = 12;
/// Marks an empty entry of a principal table.
const EMPTY: u32 = u32::MAX;

/// Where principal `p` is in a bloom filter of `mask + 1` words: the word's offset and the two
/// bits it must have. A multiplicative hash (the product's high bits depend on every bit of `p`):
/// the word from bits 32 and up, the bits from the top twelve.
#[inline(always)]
fn bloom_spot(p: u32, mask: u32) -> (usize, u64) {
    let h = u64::from(p).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let word = (h >> 32) as u32 & mask;
    let bits = (1u64 << (h >> 58)) | (1u64 << ((h >> 52) & 63));
    (word as usize, bits)
}

fn table_hash(p: u32) -> u32 {
    let h = p.wrapping_mul(0x9E37_79B1);
    h ^ (h >> 15)
}

/// The next index's serial number.
static SERIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(Debug)]
pub struct Index {
    /// This index's number, unique in the process: ids looked up in one index are answered
    /// from that index only (`Evaluator::check_looked`).
    serial: u64,
    /// What the index was built from; its name tables back the lookups.
    content: Content,
    /// Computed on first use: loading a snapshot does not need it, a delta does.
    digest: OnceLock<[u8; 32]>,
    freshness: Freshness,
    subject_ids: NameTable,
    resource_ids: NameTable,
    action_names: Names,
    action_ids: NameTable,
    action_tier: Vec<Tier>,
    role_words: usize,
    role_bits: Vec<u64>,
    res: Vec<ResourceRec>,
    /// Principal tables of dense resources: `(principal, first slot offset)`.
    table: Vec<(u32, u32)>,
    /// Bloom filter words of dense resources.
    bloom: Vec<u64>,
    /// The assignments' principals, resource by resource (slot `i` is `content.assignments[i]`):
    /// a scan reads principals only and reads role and expiry, from the content, for the
    /// principals that matter.
    slot_principal: Vec<u32>,
    children_start: Vec<u32>,
    children: Vec<u32>,
    subj: Vec<SubjectRec>,
    /// Every subject's closure groups, ascending, back to back (see `SubjectRec`).
    closure_groups: Vec<u32>,
    /// `(dist, next)` of each entry of `closure_groups`, packed (see `HOP_BITS`).
    closure_meta: Vec<u32>,
    members_start: Vec<u32>,
    members: Vec<u32>,
    principal_start: Vec<u32>,
    principal_slots: Vec<u32>,
    members_count: usize,
    /// The conditions, compiled; each action's `requires` as a mask (empty when no action has
    /// any); whether any assignment has a `when`. Without conditions a check takes the path it
    /// always took.
    conditions: Conditions,
    requires: Vec<u64>,
    has_when: bool,
}

/// A decision of gates 7 to 12 for looked-up ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub reason: Reason,
    pub grant: Option<GrantRef>,
    /// The failing conditions and the comparisons that lacked their attribute (masks of
    /// condition ids), for a refusal by conditions.
    pub conditions: u64,
    pub missing: u64,
}

impl Decided {
    fn plain(reason: Reason, grant: Option<GrantRef>) -> Decided {
        Decided {
            reason,
            grant,
            conditions: 0,
            missing: 0,
        }
    }
}

/// Each role's actions as a bit set: `role_words` words per role. Returns `(role_words, bits)`.
fn role_bits(content: &Content) -> (usize, Vec<u64>) {
    let role_words = content.actions.len().div_ceil(64).max(1);
    let mut role_bits = vec![0u64; content.roles.len() * role_words];
    for (r, (_, acts)) in content.roles.iter().enumerate() {
        for a in acts {
            if let Some(w) = role_bits.get_mut(r * role_words + (*a as usize) / 64) {
                *w |= 1u64 << (a % 64);
            }
        }
    }
    (role_words, role_bits)
}

/// The resource records, and the principal tables and bloom filters of the dense resources.
struct ResourceTables {
    res: Vec<ResourceRec>,
    table: Vec<(u32, u32)>,
    bloom: Vec<u64>,
}

/// One record per resource: its parent and its assignment slots, and for a dense resource (more
/// than `DENSE` assignments) a principal table and a bloom filter, appended to the shared ones.
fn resource_tables(content: &Content, slot_principal: &[u32]) -> ResourceTables {
    let n_res = content.resources.len();
    let (res_slot_start, _) = csr(n_res, content.assignments.iter().map(|(r, ..)| (*r, 0)));
    let mut out = ResourceTables {
        res: Vec::with_capacity(n_res),
        table: Vec::new(),
        bloom: Vec::new(),
    };
    for (i, (_, parent)) in content.resources.iter().enumerate() {
        let lo = res_slot_start.get(i).copied().unwrap_or(0);
        let hi = res_slot_start.get(i + 1).copied().unwrap_or(0);
        let here = slot_principal.get(lo as usize..hi as usize).unwrap_or(&[]);
        let mut rec = ResourceRec {
            parent: parent.unwrap_or(NONE),
            slot_lo: lo,
            slot_hi: hi,
            table_lo: 0,
            table_mask: 0,
            bloom_lo: 0,
            bloom_mask: 0,
        };
        if here.len() > DENSE {
            (rec.table_lo, rec.table_mask) = principal_table(here, &mut out.table);
            (rec.bloom_lo, rec.bloom_mask) = bloom_filter(here, &mut out.bloom);
        }
        out.res.push(rec);
    }
    out
}

/// Appends an open-addressing table of a dense resource's principals (`here`, sorted) to
/// `table`: each distinct principal with the offset of its first slot. Returns where it starts
/// and its mask.
fn principal_table(here: &[u32], table: &mut Vec<(u32, u32)>) -> (u32, u32) {
    let size = (here.len() * 2).next_power_of_two();
    let mask = u32::try_from(size - 1).unwrap_or(0);
    let base = table.len();
    table.resize(base + size, (EMPTY, 0));
    for (k, principal) in here.iter().enumerate() {
        if k > 0 && here.get(k - 1) == Some(principal) {
            continue;
        }
        let mut at = table_hash(*principal) & mask;
        while let Some(e) = table.get_mut(base + at as usize) {
            if e.0 == EMPTY {
                *e = (*principal, u32::try_from(k).unwrap_or(0));
                break;
            }
            at = (at + 1) & mask;
        }
    }
    (u32::try_from(base).unwrap_or(0), mask)
}

/// Whether principal `p` may be in the bloom filter `words` (`mask + 1` of them, see
/// [`bloom_spot`]): false only when it is not.
#[inline(always)]
fn may_hold(words: &[u64], mask: u32, p: u32) -> bool {
    let (word, bits) = bloom_spot(p, mask);
    words.get(word).is_some_and(|w| w & bits == bits)
}

/// Appends a blocked bloom filter of a dense resource's principals to `bloom`: eight bits per
/// principal, two of them set in one word (on the benchmark workload one absent principal in
/// twenty passes; one bit per principal let one in five through). Returns its first word and its
/// mask (words minus one).
fn bloom_filter(here: &[u32], bloom: &mut Vec<u64>) -> (u32, u32) {
    let words = (here.len() * 8).div_ceil(64).next_power_of_two();
    let mask = u32::try_from(words - 1).unwrap_or(0);
    let lo = bloom.len();
    bloom.resize(lo + words, 0u64);
    for principal in here {
        let (word, bits) = bloom_spot(*principal, mask);
        if let Some(w) = bloom.get_mut(lo + word) {
            *w |= bits;
        }
    }
    (u32::try_from(lo).unwrap_or(0), mask)
}

/// Every subject's group closure, back to back: `start[s]..start[s + 1]` indexes `groups`
/// (ascending) and `meta` (their packed `(dist, next)`, see `HOP_BITS`).
struct Closures {
    start: Vec<u32>,
    groups: Vec<u32>,
    meta: Vec<u32>,
}

impl Closures {
    /// Group closures by breadth-first search over sorted group lists (`groups_start`,
    /// `groups`: each subject's groups, as CSR): the first discovery of a group is along the
    /// lexicographically smallest shortest path. Fails past `MAX_GROUP_DEPTH` or
    /// `max_closure_entries`.
    fn build(
        content: &Content,
        groups_start: &[u32],
        groups: &[u32],
        limits: &Limits,
    ) -> Result<Closures, ModelError> {
        let n_subj = content.subjects.len();
        let mut out = Closures {
            start: Vec::with_capacity(n_subj + 1),
            groups: Vec::new(),
            meta: Vec::new(),
        };
        let mut seen = vec![NONE; n_subj];
        let mut queue: Vec<Hop> = Vec::new();
        for s in 0..n_subj as u32 {
            out.start
                .push(u32::try_from(out.groups.len()).unwrap_or(NONE));
            search(groups_start, groups, s, &mut seen, &mut queue);
            out.check(content, s, &queue, limits)?;
            queue.sort_unstable_by_key(|h| h.group);
            out.groups.extend(queue.iter().map(|h| h.group));
            out.meta.extend(
                queue
                    .iter()
                    .map(|h| (h.dist << HOP_BITS) | hop_next(h.next)),
            );
        }
        out.start
            .push(u32::try_from(out.groups.len()).unwrap_or(NONE));
        out.groups.shrink_to_fit();
        out.meta.shrink_to_fit();
        Ok(out)
    }

    /// The limits on subject `s`'s closure (`queue`, in discovery order): its depth, and the
    /// entries of all closures so far.
    fn check(
        &self,
        content: &Content,
        s: u32,
        queue: &[Hop],
        limits: &Limits,
    ) -> Result<(), ModelError> {
        let name = |i: u32| content.subjects.get(i as usize).unwrap_or("");
        if let Some(deep) = queue.last().filter(|h| h.dist > MAX_GROUP_DEPTH) {
            return Err(ModelError::new(
                K::LimitExceeded,
                name(s),
                format!(
                    "`{}` is {} groups deep in `{}`, over the limit of {MAX_GROUP_DEPTH}",
                    crate::state::shorten(name(s)),
                    deep.dist,
                    crate::state::shorten(name(deep.group)),
                ),
            ));
        }
        if self.groups.len() + queue.len() > limits.max_closure_entries {
            return Err(ModelError::new(
                K::LimitExceeded,
                name(s),
                format!(
                    "group closures exceed {} entries: group nesting is too wide or deep",
                    limits.max_closure_entries
                ),
            ));
        }
        Ok(())
    }
}

/// The breadth-first search from subject `s` over its groups, into `queue` (cleared first) in
/// discovery order. `seen[g] == s` marks the groups this search found.
fn search(groups_start: &[u32], groups: &[u32], s: u32, seen: &mut [u32], queue: &mut Vec<Hop>) {
    queue.clear();
    if let Some(x) = seen.get_mut(s as usize) {
        *x = s;
    }
    for g in row(groups_start, groups, s) {
        if let Some(x) = seen.get_mut(*g as usize) {
            if *x != s {
                *x = s;
                queue.push(Hop {
                    group: *g,
                    dist: 1,
                    next: *g,
                });
            }
        }
    }
    let mut head = 0;
    while let Some(h) = queue.get(head).copied() {
        head += 1;
        for g in row(groups_start, groups, h.group) {
            if let Some(x) = seen.get_mut(*g as usize) {
                if *x != s {
                    *x = s;
                    queue.push(Hop {
                        group: *g,
                        dist: h.dist + 1,
                        next: h.next,
                    });
                }
            }
        }
    }
}

/// One record per subject: its closure's range, and whether it or a group in its closure is
/// suspended.
fn subject_records(content: &Content, closures: &Closures) -> Vec<SubjectRec> {
    let n_subj = content.subjects.len();
    let mut direct = vec![false; n_subj];
    for s in &content.suspended {
        if let Some(x) = direct.get_mut(*s as usize) {
            *x = true;
        }
    }
    (0..n_subj)
        .map(|s| {
            let lo = closures.start.get(s).copied().unwrap_or(0);
            let hi = closures.start.get(s + 1).copied().unwrap_or(0);
            let inherited = closures
                .groups
                .get(lo as usize..hi as usize)
                .unwrap_or(&[])
                .iter()
                .any(|g| direct.get(*g as usize).copied().unwrap_or(false));
            SubjectRec {
                closure_lo: lo,
                closure_hi: hi,
                suspended: inherited || direct.get(s).copied().unwrap_or(false),
            }
        })
        .collect()
}

impl Index {
    /// Checks the content and builds the index: the subject limit, the per-resource principal
    /// tables, the group closures (and their limits), the per-subject records, and last the
    /// memory budget of the whole.
    pub fn build(mut content: Content, limits: &Limits) -> Result<Index, ModelError> {
        content.check(limits)?;
        content.shrink_to_fit();
        let n_subj = content.subjects.len();
        if n_subj > MAX_SUBJECTS {
            return Err(ModelError::new(
                K::LimitExceeded,
                "subjects",
                format!("{n_subj} subjects, over the limit of {MAX_SUBJECTS}"),
            ));
        }
        let n_res = content.resources.len();
        let (role_words, role_bits) = role_bits(&content);
        let (children_start, children) = csr(
            n_res,
            content
                .resources
                .iter()
                .enumerate()
                .filter_map(|(i, (_, p))| p.map(|p| (p, i as u32))),
        );
        let slot_principal: Vec<u32> = content.assignments.iter().map(|(_, p, ..)| *p).collect();
        let ResourceTables { res, table, bloom } = resource_tables(&content, &slot_principal);
        let (principal_start, principal_slots) = csr(
            n_subj,
            content
                .assignments
                .iter()
                .enumerate()
                .map(|(i, (_, p, ..))| (*p, i as u32)),
        );
        let (groups_start, groups) = csr(n_subj, content.memberships.iter().copied());
        let (members_start, members) =
            csr(n_subj, content.memberships.iter().map(|(m, g)| (*g, *m)));
        let closures = Closures::build(&content, &groups_start, &groups, limits)?;
        let subj = subject_records(&content, &closures);
        let members_count = content.subjects.iter().filter(|s| !is_group(s)).count();
        let action_names: Names = content.actions.iter().map(|(n, _)| n).collect();
        let conditions = content.conditional.compile()?;
        let mut requires = Vec::new();
        if !content.conditional.requires.is_empty() {
            requires = vec![0u64; content.actions.len()];
            for (a, c) in &content.conditional.requires {
                if let Some(m) = requires.get_mut(*a as usize) {
                    *m |= 1 << c;
                }
            }
        }
        let has_when = !content.conditional.when.is_empty();
        let index = Index {
            serial: SERIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            conditions,
            requires,
            has_when,
            digest: OnceLock::new(),
            freshness: content.freshness(),
            subject_ids: NameTable::build(&content.subjects),
            resource_ids: NameTable::build(content.resources.names()),
            action_ids: NameTable::build(&action_names),
            action_names,
            action_tier: content
                .actions
                .iter()
                .map(|(_, t)| Tier::from_u8(*t).unwrap_or(Tier::High))
                .collect(),
            role_words,
            role_bits,
            res,
            table,
            bloom,
            slot_principal,
            children_start,
            children,
            subj,
            closure_groups: closures.groups,
            closure_meta: closures.meta,
            members_start,
            members,
            principal_start,
            principal_slots,
            members_count,
            content,
        };
        index.check_memory(limits)?;
        Ok(index)
    }

    /// The edge's memory budget (`max_index_bytes`), for the content and the index together.
    fn check_memory(&self, limits: &Limits) -> Result<(), ModelError> {
        let bytes = self.heap_bytes();
        if bytes > limits.max_index_bytes {
            let mib = |b: usize| b as f64 / f64::from(1 << 20);
            return Err(ModelError::new(
                K::LimitExceeded,
                "index",
                format!(
                    "the index takes {:.1} MiB, over the edge's memory budget of {:.1} MiB \
                     (max_index_bytes): split the tenant or shrink it",
                    mib(bytes),
                    mib(limits.max_index_bytes)
                ),
            ));
        }
        Ok(())
    }

    /// The content, the derived arrays dropped.
    pub(crate) fn into_content(self) -> Content {
        self.content
    }

    /// Builds again the index of content that built before (with its digest), under no limit:
    /// the content passed them when it first built, and they may have been lowered since.
    /// Building is deterministic, so this does not fail; if it did, the caller holds nothing
    /// and fails closed.
    pub(crate) fn rebuild(content: Content, digest: [u8; 32]) -> Option<Index> {
        let index = Index::build(content, &Limits::unbounded()).ok()?;
        let _ = index.digest.set(digest);
        Some(index)
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    /// This index's number, unique in the process (no two indexes built share one).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Whether every id of `ids` (subject, action, resource; `None`: a name not held) is one
    /// of this index's.
    pub fn holds(&self, [s, a, r]: [Option<u32>; 3]) -> bool {
        let within = |id: Option<u32>, n: usize| id.is_none_or(|id| (id as usize) < n);
        within(s, self.subj.len()) && within(a, self.action_tier.len()) && within(r, self.res.len())
    }

    /// The content digest (SHA-256 of the canonical content stream), computed once.
    pub fn digest(&self) -> [u8; 32] {
        *self.digest.get_or_init(|| digest(&self.content))
    }

    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    pub fn subject(&self, id: &str) -> Option<u32> {
        self.subject_ids.get(&self.content.subjects, id)
    }

    pub fn resource(&self, id: &str) -> Option<u32> {
        self.resource_ids.get(self.content.resources.names(), id)
    }

    pub fn action(&self, name: &str) -> Option<u32> {
        self.action_ids.get(&self.action_names, name)
    }

    /// The id of a subject's (`kind` 0), an action's (1) or a resource's (2) name: one table
    /// lookup whatever the kind (one copy of the probe where code size counts).
    pub fn id_of(&self, kind: u8, name: &str) -> Option<u32> {
        let (table, names) = match kind {
            0 => (&self.subject_ids, &self.content.subjects),
            1 => (&self.action_ids, &self.action_names),
            _ => (&self.resource_ids, self.content.resources.names()),
        };
        table.get(names, name)
    }

    pub fn tier(&self, action: u32) -> Tier {
        self.action_tier
            .get(action as usize)
            .copied()
            .unwrap_or(Tier::High)
    }

    /// Whether the subject, or a group it belongs to, is suspended.
    pub fn is_suspended(&self, subject: u32) -> bool {
        self.subj.get(subject as usize).is_some_and(|r| r.suspended)
    }

    #[inline(always)]
    fn role_has(&self, role: u32, action: u32) -> bool {
        let w = self
            .role_bits
            .get(role as usize * self.role_words + action as usize / 64)
            .copied()
            .unwrap_or(0);
        w >> (action % 64) & 1 == 1
    }

    /// The subject's closure: groups ascending, and their packed `(dist, next)`.
    #[inline(always)]
    fn closure_of(&self, s: u32) -> (&[u32], &[u32]) {
        match self.subj.get(s as usize) {
            Some(r) => {
                let range = r.closure_lo as usize..r.closure_hi as usize;
                (
                    self.closure_groups.get(range.clone()).unwrap_or(&[]),
                    self.closure_meta.get(range).unwrap_or(&[]),
                )
            }
            None => (&[], &[]),
        }
    }

    /// Whether assignment slot `i` is unexpired at `now` and its role has the action.
    #[inline(always)]
    fn usable(&self, i: usize, action: u32, now: u64) -> bool {
        self.content
            .assignments
            .get(i)
            .is_some_and(|(_, _, role, exp)| {
                exp.is_none_or(|e| now < e) && self.role_has(*role, action)
            })
    }

    #[inline(always)]
    fn principals_on(&self, rec: &ResourceRec) -> &[u32] {
        self.slot_principal
            .get(rec.slot_lo as usize..rec.slot_hi as usize)
            .unwrap_or(&[])
    }

    /// A dense resource's bloom filter words.
    #[inline(always)]
    fn bloom_of(&self, rec: &ResourceRec) -> &[u64] {
        let lo = rec.bloom_lo as usize;
        self.bloom
            .get(lo..=lo + rec.bloom_mask as usize)
            .unwrap_or(&[])
    }

    /// In a dense resource, the offset of principal `p`'s first slot (its slots follow it).
    #[inline(always)]
    fn run_of(&self, rec: &ResourceRec, p: u32) -> Option<usize> {
        if !may_hold(self.bloom_of(rec), rec.bloom_mask, p) {
            return None;
        }
        self.table_run(rec, p)
    }

    /// [`Index::run_of`] past the bloom filter: the principal table's probe.
    #[inline(always)]
    fn table_run(&self, rec: &ResourceRec, p: u32) -> Option<usize> {
        let mut at = table_hash(p) & rec.table_mask;
        loop {
            let (key, first) = *self.table.get(rec.table_lo as usize + at as usize)?;
            if key == p {
                return Some(first as usize);
            }
            if key == EMPTY {
                return None;
            }
            at = (at + 1) & rec.table_mask;
        }
    }

    /// In a dense resource, the offset of the first usable slot of principal `p`, which passed
    /// the resource's bloom filter.
    #[inline(always)]
    fn probe(
        &self,
        rec: &ResourceRec,
        principals: &[u32],
        p: u32,
        a: u32,
        now: u64,
    ) -> Option<usize> {
        let first = self.table_run(rec, p)?;
        let base = rec.slot_lo as usize;
        principals
            .get(first..)?
            .iter()
            .take_while(|x| **x == p)
            .enumerate()
            .find(|(k, _)| self.usable(base + first + k, a, now))
            .map(|(k, _)| first + k)
    }

    /// Gate 10: the grant for a known subject, action and resource, if any. Nearest resource first,
    /// then the shortest group path, then principal and role in id order.
    pub fn find_grant(&self, s: u32, a: u32, r: u32, now: u64) -> Option<GrantRef> {
        let (groups, meta) = self.closure_of(s);
        let mut y = r;
        while let Some(rec) = self.res.get(y as usize) {
            let principals = self.principals_on(rec);
            let base = rec.slot_lo as usize;
            // (dist, slot offset) of the best usable assignment on this resource
            let mut best: Option<(u32, usize)> = None;
            if rec.table_mask == 0 {
                for (i, p) in principals.iter().enumerate() {
                    let Some(d) = distance(s, *p, groups, meta) else {
                        continue;
                    };
                    if best.is_none_or(|(bd, _)| d < bd) && self.usable(base + i, a, now) {
                        best = Some((d, i));
                        if d == 0 {
                            break;
                        }
                    }
                }
            } else {
                // The bloom test first and alone: most of the closure holds nothing here.
                let (words, mask) = (self.bloom_of(rec), rec.bloom_mask);
                if may_hold(words, mask, s) {
                    best = self.probe(rec, principals, s, a, now).map(|k| (0, k));
                }
                if best.is_none() {
                    for (j, g) in groups.iter().enumerate() {
                        if !may_hold(words, mask, *g) {
                            continue;
                        }
                        let d = meta.get(j).map_or(u32::MAX, |m| hop_dist(*m));
                        if best.is_some_and(|(bd, _)| d >= bd) {
                            continue;
                        }
                        if let Some(k) = self.probe(rec, principals, *g, a, now) {
                            best = Some((d, k));
                        }
                    }
                }
            }
            if let Some((_, i)) = best {
                return Some(GrantRef {
                    assignment: u32::try_from(rec.slot_lo as usize + i).unwrap_or(NONE),
                    subject: s,
                });
            }
            y = rec.parent;
        }
        None
    }

    /// Gates 7 to 12 for looked-up ids (gates 1 to 5 are the evaluator's), without a context.
    pub fn decide(
        &self,
        s: Option<u32>,
        a: Option<u32>,
        r: Option<u32>,
        now: u64,
    ) -> (Reason, Option<GrantRef>) {
        let d = self.decide_in(s, a, r, now, &Context::EMPTY);
        (d.reason, d.grant)
    }

    /// Gates 7 to 12 for looked-up ids, with the request's context.
    #[inline]
    pub fn decide_in(
        &self,
        s: Option<u32>,
        a: Option<u32>,
        r: Option<u32>,
        now: u64,
        ctx: &Context,
    ) -> Decided {
        let Some(a) = a else {
            return Decided::plain(Reason::UnknownAction, None);
        };
        if s.is_some_and(|s| self.is_suspended(s)) {
            return Decided::plain(Reason::Suspended, None);
        }
        let Some(r) = r else {
            return Decided::plain(Reason::UnknownResource, None);
        };
        let requires = self.requires_of(a);
        if requires == 0 && !self.has_when {
            return match s.and_then(|s| self.find_grant(s, a, r, now)) {
                Some(g) => Decided::plain(Reason::Granted, Some(g)),
                None => Decided::plain(Reason::NoGrant, None),
            };
        }
        let Some(s) = s else {
            return Decided::plain(Reason::NoGrant, None);
        };
        let mut judge = Judge::new(&self.conditions, requires, ctx, now);
        let grant = if self.has_when {
            self.find_conditional(s, a, r, now, &mut judge)
        } else {
            // Every candidate has the same conditions (the action's): the best one stands for all.
            self.find_grant(s, a, r, now).filter(|_| judge.offer(None))
        };
        match grant {
            Some(g) => Decided::plain(Reason::Granted, Some(g)),
            None => {
                let v = judge.refusal();
                let reason = match v.outcome {
                    Outcome::StepUpRequired => Reason::StepUpRequired,
                    Outcome::ConditionFailed => Reason::ConditionFailed,
                    Outcome::Granted | Outcome::NoGrant => Reason::NoGrant,
                };
                Decided {
                    reason,
                    grant: None,
                    conditions: v.conditions,
                    missing: v.missing,
                }
            }
        }
    }

    /// An action's `requires`, as a mask.
    #[inline(always)]
    fn requires_of(&self, a: u32) -> u64 {
        self.requires.get(a as usize).copied().unwrap_or(0)
    }

    /// The `when` of assignment slot `i`.
    fn when_of(&self, i: usize) -> Option<usize> {
        let w = &self.content.conditional.when;
        let i = u32::try_from(i).ok()?;
        w.binary_search_by_key(&i, |(slot, _)| *slot)
            .ok()
            .and_then(|k| w.get(k))
            .map(|(_, c)| *c as usize)
    }

    /// The `when` of a grant's assignment (a condition id).
    pub fn grant_when(&self, g: &GrantRef) -> Option<usize> {
        if self.has_when {
            self.when_of(g.assignment as usize)
        } else {
            None
        }
    }

    /// The compiled conditions.
    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    /// The grant of gate 10 when assignments have conditions: every candidate (unexpired, with
    /// the action) in the order `find_grant` prefers them (nearest resource, then shortest group
    /// path, then slot), offered to `judge` until one holds.
    fn find_conditional(
        &self,
        s: u32,
        a: u32,
        r: u32,
        now: u64,
        judge: &mut Judge<'_>,
    ) -> Option<GrantRef> {
        let (groups, meta) = self.closure_of(s);
        // (dist, slot offset): u32 pairs, a type the index sorts already.
        let mut found: Vec<(u32, u32)> = Vec::new();
        let mut y = r;
        while let Some(rec) = self.res.get(y as usize) {
            let principals = self.principals_on(rec);
            let base = rec.slot_lo as usize;
            found.clear();
            if rec.table_mask == 0 {
                for (i, p) in principals.iter().enumerate() {
                    let Some(d) = distance(s, *p, groups, meta) else {
                        continue;
                    };
                    if self.usable(base + i, a, now) {
                        found.push((d, i as u32));
                    }
                }
            } else {
                let own = std::iter::once((s, 0));
                let via = groups.iter().zip(meta).map(|(g, m)| (*g, hop_dist(*m)));
                for (p, d) in own.chain(via) {
                    let Some(first) = self.run_of(rec, p) else {
                        continue;
                    };
                    let run = principals.get(first..).unwrap_or(&[]);
                    for (k, _) in run.iter().enumerate().take_while(|(_, x)| **x == p) {
                        if self.usable(base + first + k, a, now) {
                            found.push((d, (first + k) as u32));
                        }
                    }
                }
            }
            found.sort_unstable();
            for (_, i) in &found {
                let i = *i as usize;
                if judge.offer(self.when_of(base + i)) {
                    return Some(GrantRef {
                        assignment: u32::try_from(base + i).unwrap_or(NONE),
                        subject: s,
                    });
                }
            }
            y = rec.parent;
        }
        None
    }

    /// The conditions that hold for a listing's context: `None` when the action's `requires`
    /// do not (nothing is listed), else a mask of the conditions that are true.
    fn listing_truths(&self, a: u32, ctx: &Context, now: u64) -> Option<u64> {
        if self.conditions.is_empty() {
            return Some(0);
        }
        let mut judge = Judge::new(&self.conditions, self.requires_of(a), ctx, now);
        if !judge.requires_hold() {
            return None;
        }
        Some(self.conditions.true_mask(ctx, now))
    }

    /// Whether slot `i` grants the action in a listing whose true conditions are `truths`.
    #[inline]
    fn listed(&self, i: usize, a: u32, now: u64, truths: u64) -> bool {
        self.usable(i, a, now)
            && (!self.has_when || self.when_of(i).is_none_or(|w| truths >> w & 1 == 1))
    }

    /// A subject's id (`""` for an id out of range).
    pub fn subject_name(&self, s: u32) -> &str {
        self.content.subjects.get(s as usize).unwrap_or("")
    }

    /// A role's name (`""` for an id out of range).
    pub fn role_name(&self, role: u32) -> &str {
        self.content
            .roles
            .get(role as usize)
            .map_or("", |(n, _)| n.as_str())
    }

    /// A resource's id (`""` for an id out of range).
    pub fn resource_name(&self, r: u32) -> &str {
        self.content.resources.name(r as usize).unwrap_or("")
    }

    /// The dense ids behind a grant: `(principal, role, resource)`, with the group path from the
    /// subject to the principal (subject ids) appended to `path`. Hosts that cache names by id
    /// (the npm package) turn these into strings without copying any.
    pub fn grant_ids(&self, g: &GrantRef, path: &mut Vec<u32>) -> Option<(u32, u32, u32)> {
        let (r, p, role, _) = self.content.assignments.get(g.assignment as usize)?;
        let start = path.len();
        path.push(g.subject);
        let mut cur = g.subject;
        // Each hop is one step closer to the principal, so the walk ends; the bound makes sure.
        let max_hops = self.closure_of(g.subject).0.len();
        while cur != *p {
            if path.len() - start > max_hops {
                path.truncate(start);
                return None;
            }
            let (groups, meta) = self.closure_of(cur);
            let hop = groups
                .binary_search(p)
                .ok()
                .and_then(|i| meta.get(i))
                .map(|m| hop_next(*m));
            match hop {
                Some(next) => cur = next,
                None => {
                    path.truncate(start);
                    return None;
                }
            }
            path.push(cur);
        }
        Some((*p, *role, *r))
    }

    /// An action's `requires`, as a mask of condition ids (for explanations).
    pub(crate) fn requires_mask(&self, a: u32) -> u64 {
        self.requires_of(a)
    }

    /// The `when` of assignment slot `i`, a condition id (for explanations).
    pub(crate) fn when_of_slot(&self, i: usize) -> Option<usize> {
        self.when_of(i)
    }

    /// The names on the shortest path from subject `s` to group `g` it is in, both included.
    pub(crate) fn path_between(&self, s: u32, g: u32) -> Option<Vec<&str>> {
        let mut path = vec![self.subject_name(s)];
        let mut cur = s;
        let max_hops = self.closure_of(s).0.len();
        while cur != g {
            if path.len() > max_hops {
                return None;
            }
            let (groups, meta) = self.closure_of(cur);
            let i = groups.binary_search(&g).ok()?;
            cur = hop_next(*meta.get(i)?);
            path.push(self.subject_name(cur));
        }
        Some(path)
    }

    /// The names behind a grant, with the group path from the subject to the principal.
    pub fn explain(&self, g: &GrantRef) -> Option<GrantView<'_>> {
        let mut ids = Vec::new();
        let (p, role, r) = self.grant_ids(g, &mut ids)?;
        Some(GrantView {
            principal: self.subject_name(p),
            role: self.role_name(role),
            resource: self.resource_name(r),
            path: ids.into_iter().map(|s| self.subject_name(s)).collect(),
            when: self
                .when_of(g.assignment as usize)
                .and_then(|w| self.conditions.get(w))
                .map(|c| c.name.as_str()),
        })
    }

    /// Every resource (optionally of one type) on which the subject may do the action, sorted.
    /// The subject must not be suspended (the caller's gate).
    pub fn resources_for(
        &self,
        s: u32,
        a: u32,
        type_filter: Option<&str>,
        now: u64,
        ctx: &Context,
    ) -> Vec<&str> {
        let Some(truths) = self.listing_truths(a, ctx, now) else {
            return Vec::new();
        };
        let mut marked = vec![false; self.content.resources.len()];
        let mut stack = Vec::new();
        let principals = std::iter::once(s).chain(self.closure_of(s).0.iter().copied());
        for p in principals {
            for slot_id in row(&self.principal_start, &self.principal_slots, p) {
                let usable = self.listed(*slot_id as usize, a, now, truths);
                if let (true, Some((r, ..))) =
                    (usable, self.content.assignments.get(*slot_id as usize))
                {
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
            .map(|((id, _), _)| id)
            .collect()
    }

    /// Every member (not group), not suspended, who may do the action on the resource, sorted.
    pub fn subjects_for(&self, r: u32, a: u32, now: u64, ctx: &Context) -> Vec<&str> {
        let Some(truths) = self.listing_truths(a, ctx, now) else {
            return Vec::new();
        };
        let mut marked = vec![false; self.content.subjects.len()];
        let mut stack = Vec::new();
        let mut y = r;
        while let Some(rec) = self.res.get(y as usize) {
            let base = rec.slot_lo as usize;
            stack.extend(
                self.principals_on(rec)
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| self.listed(base + i, a, now, truths))
                    .map(|(_, p)| *p),
            );
            y = rec.parent;
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
            .map(|(_, (id, _))| id)
            .collect()
    }

    /// The first memory a check of `(s, r)` reads: the subject's and the resource's records.
    /// `check_many` reads these for a block of requests before deciding any of them, so the
    /// processor overlaps their cache misses instead of waiting for each in turn.
    #[inline]
    pub(crate) fn warm_records(&self, s: Option<u32>, r: Option<u32>) -> (u32, u32, u32) {
        let c = s
            .and_then(|s| self.subj.get(s as usize))
            .map_or(NONE, |x| x.closure_lo);
        let rec = r.and_then(|r| self.res.get(r as usize));
        (
            c,
            rec.map_or(NONE, |x| x.slot_lo),
            rec.map_or(NONE, |x| x.parent),
        )
    }

    /// The second memory a check reads: the closure, the slots and the parent's record.
    #[inline]
    pub(crate) fn warm_data(&self, (c, slot, parent): (u32, u32, u32)) -> u32 {
        self.closure_groups.get(c as usize).copied().unwrap_or(0)
            ^ self.slot_principal.get(slot as usize).copied().unwrap_or(0)
            ^ self.res.get(parent as usize).map_or(0, |x| x.slot_lo)
    }

    /// Approximate heap bytes held by the content and the index, part by part.
    pub fn heap_parts(&self) -> Vec<(&'static str, usize)> {
        fn v<T>(x: &Vec<T>) -> usize {
            x.capacity() * std::mem::size_of::<T>()
        }
        let c = &self.content;
        vec![
            (
                "content.actions",
                v(&c.actions) + c.actions.iter().map(|(n, _)| n.capacity()).sum::<usize>(),
            ),
            (
                "content.roles",
                v(&c.roles)
                    + c.roles
                        .iter()
                        .map(|(n, a)| n.capacity() + v(a))
                        .sum::<usize>(),
            ),
            ("content.resources", c.resources.heap_bytes()),
            ("content.subjects", c.subjects.heap_bytes()),
            ("content.memberships", v(&c.memberships)),
            ("content.assignments", v(&c.assignments)),
            ("content.suspended", v(&c.suspended)),
            ("subject_ids", self.subject_ids.heap_bytes()),
            ("resource_ids", self.resource_ids.heap_bytes()),
            (
                "action_ids",
                self.action_ids.heap_bytes()
                    + self.action_names.heap_bytes()
                    + v(&self.action_tier)
                    + v(&self.role_bits),
            ),
            ("res", v(&self.res)),
            ("table+bloom", v(&self.table) + v(&self.bloom)),
            ("slot_principal", v(&self.slot_principal)),
            ("children", v(&self.children_start) + v(&self.children)),
            ("subj", v(&self.subj)),
            ("closure_groups", v(&self.closure_groups)),
            ("closure_meta", v(&self.closure_meta)),
            ("members", v(&self.members_start) + v(&self.members)),
            (
                "principal_slots",
                v(&self.principal_start) + v(&self.principal_slots),
            ),
        ]
    }

    /// Approximate heap bytes held by the content and the index.
    pub fn heap_bytes(&self) -> usize {
        self.heap_parts().iter().map(|(_, b)| b).sum()
    }

    /// Subjects that are not groups.
    pub fn members_count(&self) -> usize {
        self.members_count
    }
}
