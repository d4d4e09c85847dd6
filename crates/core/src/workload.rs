//! A deterministic generated workload for benchmarks and scale tests (the same model for the
//! native, npm and Worker benchmarks): users in nested groups, a four-level resource tree,
//! assignments at every level, and one very large group. Behind the `workload` feature.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

/// Sizes of a generated workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    pub users: usize,
    /// Groups in three levels: a twentieth at the top, a fifth in the middle, the rest below.
    pub groups: usize,
    pub workspaces: usize,
    pub projects_per_workspace: usize,
    pub docs_per_project: usize,
    /// Assignments spread over every level of the resource tree.
    pub assignments: usize,
    /// Members of `group:everyone-big` (0 for none); the group holds as many assignments.
    pub big_group: usize,
    pub seed: u64,
}

impl Default for WorkloadSpec {
    /// The core benchmark's workload (bench/RESULTS.md, "The core").
    fn default() -> Self {
        WorkloadSpec {
            users: 10_000,
            groups: 500,
            workspaces: 20,
            projects_per_workspace: 10,
            docs_per_project: 50,
            assignments: 20_000,
            big_group: 5_000,
            seed: 42,
        }
    }
}

/// splitmix64: small, fast, deterministic on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % (n.max(1) as u64)) as usize
    }
}

pub const ACTIONS: [(&str, &str); 10] = [
    ("read", "low"),
    ("list", "low"),
    ("comment", "low"),
    ("write", "standard"),
    ("share", "standard"),
    ("delete", "standard"),
    ("manage", "standard"),
    ("export", "high"),
    ("pay", "high"),
    ("admin", "high"),
];

const ROLES: [(&str, &[&str]); 12] = [
    ("viewer", &["read", "list"]),
    ("commenter", &["read", "list", "comment"]),
    ("editor", &["read", "list", "comment", "write"]),
    ("publisher", &["read", "list", "write", "share"]),
    ("curator", &["read", "list", "write", "delete"]),
    (
        "manager",
        &["read", "list", "write", "share", "delete", "manage"],
    ),
    ("exporter", &["read", "list", "export"]),
    ("billing", &["read", "pay"]),
    ("auditor", &["read", "list", "export"]),
    (
        "owner",
        &[
            "read", "list", "comment", "write", "share", "delete", "manage", "export",
        ],
    ),
    (
        "admin",
        &[
            "read", "list", "comment", "write", "share", "delete", "manage", "export", "pay",
            "admin",
        ],
    ),
    ("guest", &["read"]),
];

/// The resource ids of a spec, parents before children: org, workspaces, projects, docs.
pub fn resource_ids(spec: &WorkloadSpec) -> Vec<(String, Option<String>)> {
    let mut out = vec![("org:acme".to_string(), None)];
    for w in 0..spec.workspaces {
        out.push((format!("workspace:w{w}"), Some("org:acme".to_string())));
    }
    for w in 0..spec.workspaces {
        for p in 0..spec.projects_per_workspace {
            out.push((
                format!("project:w{w}-p{p}"),
                Some(format!("workspace:w{w}")),
            ));
        }
    }
    for w in 0..spec.workspaces {
        for p in 0..spec.projects_per_workspace {
            for d in 0..spec.docs_per_project {
                out.push((
                    format!("doc:w{w}-p{p}-d{d}"),
                    Some(format!("project:w{w}-p{p}")),
                ));
            }
        }
    }
    out
}

/// The name of entry `i` of a table of `(name, ...)` (`""` past its end; the generator draws
/// every `i` below the table's length).
fn name_at<N: AsRef<str>, T>(table: &[(N, T)], i: usize) -> &str {
    table.get(i).map_or("", |(n, _)| n.as_ref())
}

/// Generates the workload model JSON.
pub fn generate(spec: &WorkloadSpec) -> Value {
    let mut rng = Rng::new(spec.seed);
    let top = (spec.groups / 20).max(1);
    let mid = (spec.groups / 5).max(1);
    let group = |i: usize| format!("group:g{i}");
    let mut memberships = BTreeSet::new();
    for g in top..spec.groups {
        // Middle groups join a top group; bottom groups join a middle group: three levels.
        let parent = if g < top + mid {
            rng.below(top)
        } else {
            top + rng.below(mid)
        };
        memberships.insert((group(g), group(parent)));
    }
    for u in 0..spec.users {
        let n = 1 + rng.below(5);
        for _ in 0..n {
            memberships.insert((format!("user:u{u}"), group(rng.below(spec.groups))));
        }
    }
    let big = "group:everyone-big";
    for u in 0..spec.big_group.min(spec.users) {
        memberships.insert((format!("user:u{u}"), big.to_string()));
    }
    let resources = resource_ids(spec);
    let n_ws = spec.workspaces;
    let n_proj = spec.workspaces * spec.projects_per_workspace;
    let docs_start = 1 + n_ws + n_proj;
    let mut assignments = BTreeMap::new();
    let mut tries = 0;
    while assignments.len() < spec.assignments && tries < spec.assignments * 4 {
        tries += 1;
        // 1% on the org, 9% on workspaces, 30% on projects, 60% on documents.
        let level = rng.below(100);
        let r = if level < 1 {
            0
        } else if level < 10 {
            1 + rng.below(n_ws)
        } else if level < 40 {
            1 + n_ws + rng.below(n_proj)
        } else {
            docs_start + rng.below(resources.len() - docs_start)
        };
        let principal = if rng.below(10) < 6 {
            group(rng.below(spec.groups))
        } else {
            format!("user:u{}", rng.below(spec.users))
        };
        let role = name_at(&ROLES, rng.below(ROLES.len()));
        let expires =
            (rng.below(10) == 0).then(|| 1_700_000_000_000u64 + rng.below(200_000_000_000) as u64);
        assignments.insert(
            (principal, role, name_at(&resources, r).to_string()),
            expires,
        );
    }
    let mut big_assigned = 0;
    let mut k = 0;
    while big_assigned < spec.big_group && k < resources.len() * ROLES.len() {
        let r = name_at(&resources, (docs_start + k) % resources.len());
        let role = name_at(&ROLES, (k / resources.len()) % ROLES.len());
        if let std::collections::btree_map::Entry::Vacant(v) =
            assignments.entry((big.to_string(), role, r.to_string()))
        {
            v.insert(None);
            big_assigned += 1;
        }
        k += 1;
    }
    json!({
        "version": 1,
        "tenant": "acme",
        "actions": ACTIONS.iter().map(|(a, t)| (a.to_string(), json!({"tier": t}))).collect::<serde_json::Map<_, _>>(),
        "roles": ROLES.iter().map(|(r, acts)| (r.to_string(), json!(acts))).collect::<serde_json::Map<_, _>>(),
        "resources": resources.iter().map(|(id, p)| match p { Some(p) => json!({"id": id, "parent": p}), None => json!({"id": id}) }).collect::<Vec<_>>(),
        "memberships": memberships.iter().map(|(m, g)| json!({"member": m, "group": g})).collect::<Vec<_>>(),
        "assignments": assignments.iter().map(|((p, r, res), e)| {
            let mut a = json!({"principal": p, "role": r, "resource": res});
            if let (Some(e), Some(a)) = (e, a.as_object_mut()) { a.insert("expires_at".into(), json!(e)); }
            a
        }).collect::<Vec<_>>(),
        "suspended": (0..spec.users / 500).map(|i| format!("user:u{}", i * 500 + 7)).collect::<Vec<_>>(),
        "freshness": {"low": 300_000, "standard": 30_000, "high": 5_000}
    })
}

/// `n` requests over the workload: users (a tenth of them members of the big group) on documents
/// and projects, with every action.
pub fn requests(spec: &WorkloadSpec, n: usize, seed: u64) -> Vec<(String, String, String)> {
    let mut rng = Rng::new(seed);
    let resources = resource_ids(spec);
    (0..n)
        .map(|_| {
            let u = format!("user:u{}", rng.below(spec.users));
            let a = name_at(&ACTIONS, rng.below(ACTIONS.len())).to_string();
            let r = name_at(&resources, rng.below(resources.len())).to_string();
            (u, a, r)
        })
        .collect()
}

/// Requests laid out as a host receives a batch: all strings in one buffer.
pub struct RequestBatch {
    text: String,
    /// Byte ranges of (subject, action, resource) in `text`.
    spans: Vec<[(u32, u32); 3]>,
}

impl RequestBatch {
    pub fn new(requests: &[(String, String, String)]) -> RequestBatch {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(requests.len());
        let push = |t: &mut String, x: &str| {
            let start = t.len() as u32;
            t.push_str(x);
            (start, t.len() as u32)
        };
        for (s, a, r) in requests {
            let span = [push(&mut text, s), push(&mut text, a), push(&mut text, r)];
            spans.push(span);
        }
        RequestBatch { text, spans }
    }

    pub fn requests(&self) -> Vec<crate::Request<'_>> {
        let get = |(a, b): (u32, u32)| self.text.get(a as usize..b as usize).unwrap_or("");
        self.spans
            .iter()
            .map(|[s, a, r]| crate::Request::new(get(*s), get(*a), get(*r)))
            .collect()
    }
}
