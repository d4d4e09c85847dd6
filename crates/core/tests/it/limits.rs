//! Every limit the core enforces (docs/limits.md), at its boundary: the limit itself is taken,
//! one more is refused with its stable code and a message that names the limit, and a refused
//! message leaves an edge's status and answers exactly as they were. Limits whose default is too
//! big to build in a test are lowered with `Evaluator::set_limits` / `compile_limited`.
use edge_authz::{
    compile_snapshot, sign_raw, AssignmentKey, Content, DeltaOps, Evaluator, Limits, MessageKind,
    Model, ModelErrorKind, Request, State, Status, Tier,
};
use serde_bytes::ByteBuf;
use serde_json::json;

use crate::common::{example, state_of_value, test_key};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A signed evaluator for `acme` trusting the suite's key.
fn fresh() -> Evaluator {
    Evaluator::with_keys("acme", vec![test_key().public_key()]).unwrap()
}

/// An edge holding the example at epoch 1.
fn edge() -> Evaluator {
    let mut ev = fresh();
    ev.load_snapshot(&compile_snapshot(&example(), 1, 1_000, &test_key()).unwrap())
        .unwrap();
    ev
}

/// What must not change when a message is refused: the status and a few answers.
fn observe(ev: &Evaluator) -> (Status, Vec<String>) {
    let answers = [
        ("user:alice", "read", "doc:roadmap"),
        ("user:alice", "export", "workspace:eng"),
        ("user:bob", "read", "org:acme"),
        ("user:u", "read", "doc:top"),
    ]
    .iter()
    .map(|(s, a, r)| serde_json::to_string(&ev.explain(&ev.check(Request::new(s, a, r), 1_500))))
    .map(Result::unwrap)
    .collect();
    (ev.status(), answers)
}

/// A signed snapshot of `content` for `acme`, whatever the content (the origin functions would
/// refuse to sign one past a limit; a hostile or buggy origin holding the key would not).
fn raw_snapshot(epoch: u64, content: &Content) -> Vec<u8> {
    let payload = rmp_serde::to_vec(&("acme", epoch, 1_300u64, content)).unwrap();
    sign_raw(MessageKind::Snapshot, &payload, &test_key())
}

/// A signed delta for `acme` from the held state, with any operations and a dummy result digest
/// (an edge builds the result before it compares digests).
fn raw_delta(ev: &Evaluator, epoch: u64, ops: &DeltaOps) -> Vec<u8> {
    let payload = rmp_serde::to_vec(&(
        "acme",
        ev.epoch().unwrap(),
        epoch,
        1_300u64,
        ByteBuf::from(ev.index().unwrap().digest().to_vec()),
        ByteBuf::from(vec![0u8; 32]),
        false,
        ops,
    ))
    .unwrap();
    sign_raw(MessageKind::Delta, &payload, &test_key())
}

/// A small valid model: `read` (low), `viewer` = [read], `doc:top`, nothing assigned.
fn base() -> State {
    state_of_value(json!({
        "version": 1, "tenant": "acme",
        "actions": {"read": {"tier": "low"}},
        "roles": {"viewer": ["read"]},
        "resources": [{"id": "doc:top"}],
    }))
}

fn assign(s: &mut State, principal: &str, role: &str, resource: &str) {
    s.assignments.insert(
        AssignmentKey {
            resource: resource.into(),
            principal: principal.into(),
            role: role.into(),
        },
        None,
    );
}

fn group(i: usize) -> String {
    format!("group:g{i:03}")
}

/// `user:u` in g000, g000 in g001, ..., g{n-1}: `user:u` is `n` groups deep in g{n-1}, which
/// is viewer on doc:top.
fn group_chain(n: usize) -> State {
    let mut s = base();
    s.memberships.insert(("user:u".into(), group(0)));
    for i in 1..n {
        s.memberships.insert((group(i - 1), group(i)));
    }
    assign(&mut s, &group(n - 1), "viewer", "doc:top");
    s
}

/// A chain of `n` resources r:000 <- r:001 <- ...: the last one is `n` levels deep.
fn resource_chain(n: usize) -> State {
    let mut s = base();
    for i in 0..n {
        let parent = (i > 0).then(|| format!("r:{:03}", i - 1));
        s.resources.insert(format!("r:{i:03}"), parent);
    }
    s
}

/// Asserts that `state`, which breaks a limit, is refused everywhere with `limit_exceeded` and a
/// message containing `needle`: a preview, the origin's compile, model JSON, and an edge loading
/// it signed (`invalid_snapshot`, the held state unchanged).
fn refused_everywhere(state: &State, needle: &str) {
    let k = test_key();
    let e = Evaluator::preview(state)
        .err()
        .expect("preview accepted it");
    assert_eq!(
        (e.code(), e.detail()),
        ("invalid_model", Some("limit_exceeded")),
        "{e}"
    );
    assert!(e.to_string().contains(needle), "preview: {e}");

    let e = compile_snapshot(state, 2, 2_000, &k).unwrap_err();
    assert_eq!(
        (e.code(), e.detail()),
        ("invalid_model", Some("limit_exceeded")),
        "{e}"
    );
    assert!(e.to_string().contains(needle), "compile_snapshot: {e}");

    let text = serde_json::to_string(&Model::from_state(state)).unwrap();
    let e = Model::from_json(&text).unwrap().compile().unwrap_err();
    assert_eq!(e.kind, ModelErrorKind::LimitExceeded, "{e}");
    assert!(e.to_string().contains(needle), "model JSON: {e}");

    let mut ev = edge();
    let before = observe(&ev);
    let msg = raw_snapshot(2, &Content::from_state(state).unwrap());
    let e = ev.load_snapshot(&msg).unwrap_err();
    assert_eq!(e.code(), "invalid_snapshot", "{e}");
    assert!(e.to_string().contains(needle), "edge: {e}");
    assert_eq!(observe(&ev), before, "edge: state changed");
}

/// Asserts that `state` (at a limit, not past it) is taken everywhere.
fn accepted_everywhere(state: &State) {
    Evaluator::preview(state).unwrap();
    let snap = compile_snapshot(state, 2, 2_000, &test_key()).unwrap();
    let text = serde_json::to_string(&Model::from_state(state)).unwrap();
    Model::from_json(&text).unwrap().compile().unwrap();
    let mut ev = edge();
    assert_eq!(ev.load_snapshot(&snap).unwrap().epoch, 2);
}

// ---------------------------------------------------------------------------------------------
// Group nesting depth (MAX_GROUP_DEPTH, 255)

#[test]
fn group_nesting_of_255_loads_and_answers() {
    let s = group_chain(255);
    accepted_everywhere(&s);
    let ev = Evaluator::preview(&s).unwrap();
    let d = ev.check(Request::new("user:u", "read", "doc:top"), 1_500);
    assert!(d.allowed, "{:?}", d.reason);
    let view = ev.explain(&d);
    let path = view.grant.unwrap().path;
    assert_eq!(path.len(), 256, "the subject and its 255 groups");
    assert_eq!(path.last().copied(), Some("group:g254"));
}

#[test]
fn group_nesting_of_256_is_refused_with_limit_exceeded() {
    let s = group_chain(256);
    refused_everywhere(&s, "256 groups deep in `group:g255`, over the limit of 255");
    // The message names the subject, as every model error does.
    let e = Evaluator::preview(&s).err().unwrap();
    assert!(e.to_string().contains("`user:u`"), "{e}");
}

#[test]
fn a_delta_that_nests_groups_past_255_is_refused_and_changes_nothing() {
    let k = test_key();
    let mut ev = fresh();
    ev.load_snapshot(&compile_snapshot(&group_chain(255), 1, 1_000, &k).unwrap())
        .unwrap();
    let before = observe(&ev);
    assert!(before.1[3].contains("\"granted\""), "{}", before.1[3]);
    let ops = DeltaOps {
        memberships_add: vec![(group(254), group(255))],
        ..Default::default()
    };
    let e = ev.apply_delta(&raw_delta(&ev, 2, &ops)).unwrap_err();
    assert_eq!(e.code(), "invalid_delta", "{e}");
    assert!(e.to_string().contains("over the limit of 255"), "{e}");
    assert_eq!(observe(&ev), before);
}

/// The Worker's Durable Object holds a ledger (checked content, no index kept): it builds each
/// state's index to check it, so it refuses group nesting past the limit as an edge does.
#[test]
fn the_ledger_refuses_group_nesting_past_the_limit_as_an_edge_does() {
    let msg = raw_snapshot(2, &Content::from_state(&group_chain(256)).unwrap());
    let mut ledger = Evaluator::ledger("acme", vec![test_key().public_key()]).unwrap();
    let before = ledger.status();
    let l = ledger.load_snapshot(&msg).unwrap_err();
    let e = fresh().load_snapshot(&msg).unwrap_err();
    assert_eq!((l.code(), l.to_string()), (e.code(), e.to_string()));
    assert_eq!(e.code(), "invalid_snapshot", "{e}");
    assert!(e.to_string().contains("over the limit of 255"), "{e}");
    assert_eq!(ledger.status(), before);
}

// ---------------------------------------------------------------------------------------------
// Counts and depth checked on the content (Limits)

#[test]
fn resource_depth_64_is_taken_65_is_refused() {
    accepted_everywhere(&resource_chain(64));
    refused_everywhere(
        &resource_chain(65),
        "resource `r:064` is 65 levels deep, over the limit of 64",
    );
}

#[test]
fn actions_4096_are_taken_4097_are_refused() {
    let with_actions = |n: usize| {
        let mut s = base();
        for i in 1..n {
            s.actions.insert(format!("a{i:04}"), Tier::Low);
        }
        assert_eq!(s.actions.len(), n);
        s
    };
    accepted_everywhere(&with_actions(4096));
    refused_everywhere(&with_actions(4097), "4097 actions, over the limit of 4096");
}

#[test]
fn roles_4096_are_taken_4097_are_refused() {
    let with_roles = |n: usize| {
        let mut s = base();
        for i in 1..n {
            s.roles
                .insert(format!("r{i:04}"), ["read".to_string()].into());
        }
        assert_eq!(s.roles.len(), n);
        s
    };
    accepted_everywhere(&with_roles(4096));
    refused_everywhere(&with_roles(4097), "4097 roles, over the limit of 4096");
}

/// `max_entries` (4,000,000) lowered to 50, table by table: at the origin (`compile_limited`) and
/// at an edge (`set_limits`), where the refused snapshot leaves the held state as it was.
#[test]
fn entries_per_table_are_limited() {
    const N: usize = 50;
    let limits = Limits {
        max_entries: N,
        ..Limits::default()
    };
    // (table, a state with N entries in it, the same with N + 1)
    let resources = |n: usize| {
        let mut s = base();
        for i in 1..n {
            s.resources.insert(format!("doc:d{i}"), None);
        }
        s
    };
    let subjects = |n: usize| {
        let mut s = base();
        for i in 0..n {
            s.suspended.insert(format!("user:u{i}"));
        }
        s
    };
    // 8 users and 7 groups (15 subjects) give up to 56 memberships.
    let memberships = |n: usize| {
        let mut s = base();
        for i in 0..n {
            s.memberships
                .insert((format!("user:u{}", i / 7), format!("group:g{}", i % 7)));
        }
        s
    };
    // One principal, 17 resources, 3 roles: up to 51 assignments.
    let assignments = |n: usize| {
        let mut s = base();
        for r in ["editor", "owner"] {
            s.roles.insert(r.into(), ["read".to_string()].into());
        }
        for i in 0..n {
            let res = format!("doc:d{}", i / 3);
            s.resources.insert(res.clone(), None);
            assign(&mut s, "user:u", ["viewer", "editor", "owner"][i % 3], &res);
        }
        s
    };
    let tables: [(&str, &dyn Fn(usize) -> State); 4] = [
        ("resources", &resources),
        ("subjects", &subjects),
        ("memberships", &memberships),
        ("assignments", &assignments),
    ];
    let k = test_key();
    for (table, make) in tables {
        let (at, over) = (make(N), make(N + 1));
        let needle = format!("{} {table}, over the limit of {N}", N + 1);
        let model = |s: &State| {
            let text = serde_json::to_string(&Model::from_state(s)).unwrap();
            Model::from_json(&text).unwrap()
        };
        model(&at).compile_limited(&limits).unwrap();
        let e = model(&over).compile_limited(&limits).unwrap_err();
        assert_eq!(e.kind, ModelErrorKind::LimitExceeded, "{table}: {e}");
        assert!(e.to_string().contains(&needle), "{table}: {e}");

        let mut ev = edge();
        ev.set_limits(limits.clone());
        let before = observe(&ev);
        let e = ev
            .load_snapshot(&compile_snapshot(&over, 2, 2_000, &k).unwrap())
            .unwrap_err();
        assert_eq!(e.code(), "invalid_snapshot", "{table}: {e}");
        assert!(e.to_string().contains(&needle), "{table}: {e}");
        assert_eq!(observe(&ev), before, "{table}: state changed");
        let snap = compile_snapshot(&at, 2, 2_000, &k).unwrap();
        assert_eq!(ev.load_snapshot(&snap).unwrap().epoch, 2, "{table}");
    }
}

#[test]
fn operations_per_delta_are_limited() {
    let mut ev = edge();
    ev.set_limits(Limits {
        max_entries: 20,
        ..Limits::default()
    });
    let before = observe(&ev);
    let ops = |n: usize| DeltaOps {
        suspended_add: (0..n).map(|i| format!("user:x{i}")).collect(),
        ..Default::default()
    };
    let e = ev.apply_delta(&raw_delta(&ev, 2, &ops(21))).unwrap_err();
    assert_eq!(e.code(), "limit_exceeded", "{e}");
    assert_eq!(e.to_string(), "delta has 21 entries, over the limit of 20");
    assert_eq!(observe(&ev), before);
    // 20 operations pass that gate and are applied; the result's tables are then checked
    // against the same limit (the example's 4 subjects and 20 more), and refused.
    let e = ev.apply_delta(&raw_delta(&ev, 2, &ops(20))).unwrap_err();
    assert_eq!(e.code(), "invalid_delta", "{e}");
    assert!(
        e.to_string().contains("24 subjects, over the limit of 20"),
        "{e}"
    );
    assert_eq!(observe(&ev), before);
}

#[test]
fn closure_entries_are_limited_at_an_edge() {
    // 100 users in g000, in a chain of 10 groups: 1,000 closure entries for the users, 45 for
    // the groups.
    let mut s = group_chain(10);
    for i in 0..99 {
        s.memberships.insert((format!("user:v{i:02}"), group(0)));
    }
    let k = test_key();
    let snap = compile_snapshot(&s, 2, 2_000, &k).unwrap();
    let mut ev = edge();
    ev.set_limits(Limits {
        max_closure_entries: 1_044,
        ..Limits::default()
    });
    let before = observe(&ev);
    let e = ev.load_snapshot(&snap).unwrap_err();
    assert_eq!(e.code(), "invalid_snapshot", "{e}");
    assert!(
        e.to_string().contains("group closures exceed 1044 entries"),
        "{e}"
    );
    assert_eq!(observe(&ev), before);
    ev.set_limits(Limits {
        max_closure_entries: 1_045,
        ..Limits::default()
    });
    assert_eq!(ev.load_snapshot(&snap).unwrap().epoch, 2);
}

// ---------------------------------------------------------------------------------------------
// Sizes

#[test]
fn message_size_at_the_default_64_mib() {
    let mut ev = edge();
    let before = observe(&ev);
    let limit = 64 << 20;
    assert_eq!(Limits::default().max_message_bytes, limit);
    let over = vec![0u8; limit + 1];
    for e in [
        ev.load_snapshot(&over).unwrap_err(),
        ev.apply_delta(&over).unwrap_err(),
        ev.apply_watermark(&over).unwrap_err(),
        edge_authz::inspect(&over, &[], &Limits::default()).unwrap_err(),
    ] {
        assert_eq!(e.code(), "too_large");
        assert_eq!(
            e.to_string(),
            format!("input is {} bytes, over the limit of {limit}", limit + 1)
        );
    }
    assert_eq!(observe(&ev), before);
    // Exactly the limit is read (and refused for what it is).
    let e = ev.load_snapshot(&over[..limit]).unwrap_err();
    assert_eq!(e.code(), "bad_magic");
    assert_eq!(observe(&ev), before);
}

#[test]
fn message_size_lowered_exactly_at_the_limit_is_taken() {
    let snap = compile_snapshot(&example(), 2, 2_000, &test_key()).unwrap();
    let mut ev = edge();
    ev.set_limits(Limits {
        max_message_bytes: snap.len() - 1,
        ..Limits::default()
    });
    let before = observe(&ev);
    let e = ev.load_snapshot(&snap).unwrap_err();
    assert_eq!(e.code(), "too_large");
    assert_eq!(observe(&ev), before);
    ev.set_limits(Limits {
        max_message_bytes: snap.len(),
        ..Limits::default()
    });
    assert_eq!(ev.load_snapshot(&snap).unwrap().epoch, 2);
}

#[test]
fn model_json_size_is_limited_before_parsing() {
    let text = serde_json::to_string(&Model::from_state(&example())).unwrap();
    let limits = |n: usize| Limits {
        max_model_bytes: n,
        ..Limits::default()
    };
    Model::from_json_limited(&text, &limits(text.len())).unwrap();
    let e = Model::from_json_limited(&text, &limits(text.len() - 1)).unwrap_err();
    assert_eq!(e.kind, ModelErrorKind::LimitExceeded);
    assert_eq!(
        e.message,
        format!(
            "the model is {} bytes, over the limit of {}",
            text.len(),
            text.len() - 1
        )
    );
    // Refused before parsing: the same with bytes that are not JSON at all.
    let junk = "x".repeat(1_001);
    let e = Model::from_json_limited(&junk, &limits(1_000)).unwrap_err();
    assert_eq!(e.kind, ModelErrorKind::LimitExceeded);
    assert_eq!(Limits::default().max_model_bytes, 256 << 20);
}

// ---------------------------------------------------------------------------------------------
// Identifiers

#[test]
fn id_lengths_at_and_past_their_limits() {
    let type64 = "t".repeat(64);
    let ok_id = format!("{type64}:{}", "n".repeat(256));
    let wide_id = format!("doc:{}", "é".repeat(128)); // 256 bytes of UTF-8
    let action = "a".repeat(128);
    let role = "r".repeat(128);
    let tenant = "t".repeat(64);
    let model = |tenant: &str, id: &str, action: &str, role: &str| {
        json!({
            "version": 1, "tenant": tenant,
            "actions": {action: {"tier": "low"}},
            "roles": {role: [action]},
            "resources": [{"id": id}],
            "assignments": [{"principal": id, "role": role, "resource": id}],
        })
        .to_string()
    };
    let compile = |text: String| Model::from_json(&text).and_then(|m| m.compile());
    for (tenant, id) in [(&tenant, &ok_id), (&tenant, &wide_id)] {
        let c = compile(model(tenant, id, &action, &role)).unwrap();
        let ev = Evaluator::preview(&c.state).unwrap();
        let d = ev.check(Request::new(id, &action, id), 1);
        assert!(d.allowed, "{id}: {:?}", d.reason);
    }
    let over: [(&str, String, &str); 6] = [
        ("type", format!("{type64}t:x"), "resources[0]"),
        ("name", format!("{ok_id}n"), "resources[0]"),
        (
            "name (UTF-8)",
            format!("doc:{}n", "é".repeat(128)),
            "resources[0]",
        ),
        ("action", format!("{action}a"), "actions"),
        ("role", format!("{role}r"), "roles"),
        ("tenant", format!("{tenant}t"), "tenant"),
    ];
    for (what, long, at) in &over {
        let text = match *what {
            "action" => model(&tenant, &ok_id, long, &role),
            "role" => model(&tenant, &ok_id, &action, long),
            "tenant" => model(long, &ok_id, &action, &role),
            _ => model(&tenant, long, &action, &role),
        };
        let e = compile(text).unwrap_err();
        assert_eq!(e.kind, ModelErrorKind::MalformedId, "{what}: {e}");
        assert!(e.at.starts_with(at), "{what}: at `{}`", e.at);
    }
    // In a request: the longest ids are looked up, one byte more is invalid_request.
    let ev = edge();
    let reason = |s: &str, a: &str, r: &str| ev.check(Request::new(s, a, r), 1_500).reason;
    assert_eq!(reason(&ok_id, "read", "org:acme").as_str(), "no_grant");
    assert_eq!(
        reason("user:alice", "read", &wide_id).as_str(),
        "unknown_resource"
    );
    for (what, long, _) in &over[..3] {
        assert_eq!(
            reason(long, "read", "org:acme").as_str(),
            "invalid_request",
            "{what}"
        );
        assert_eq!(
            reason("user:alice", "read", long).as_str(),
            "invalid_request",
            "{what}"
        );
    }
    assert_eq!(
        reason("user:alice", &action, "org:acme").as_str(),
        "unknown_action"
    );
    assert_eq!(
        reason("user:alice", &format!("{action}a"), "org:acme").as_str(),
        "invalid_request"
    );
    // A tenant: 64 bytes make an evaluator, 65 are invalid_argument.
    let k = vec![test_key().public_key()];
    Evaluator::with_keys(&tenant, k.clone()).unwrap();
    let e = Evaluator::with_keys(&format!("{tenant}t"), k)
        .err()
        .unwrap();
    assert_eq!(e.code(), "invalid_argument", "{e}");
}

#[test]
fn a_signed_snapshot_with_an_overlong_id_is_refused_and_changes_nothing() {
    let mut s = base();
    s.resources.insert(format!("{}:x", "t".repeat(65)), None);
    let mut ev = edge();
    let before = observe(&ev);
    let e = ev
        .load_snapshot(&raw_snapshot(2, &Content::from_state(&s).unwrap()))
        .unwrap_err();
    assert_eq!(e.code(), "invalid_snapshot", "{e}");
    assert!(e.to_string().contains("has a bad id or parent"), "{e}");
    assert_eq!(observe(&ev), before);
}

// ---------------------------------------------------------------------------------------------
// JSON nesting in a model

#[test]
fn model_json_nesting_is_a_wrong_type_long_before_the_recursion_limit() {
    // A model: nesting anywhere is a wrong type (invalid_json) long before the limit.
    let deep = format!(
        r#"{{"version":1,"tenant":"acme","resources":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let e = Model::from_json(&deep).unwrap_err();
    assert_eq!(e.kind, ModelErrorKind::InvalidJson, "{e}");
}
