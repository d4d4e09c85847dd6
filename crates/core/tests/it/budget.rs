//! The edge's memory budget (`Limits::max_index_bytes`): a state whose index would pass it is
//! refused when compiled at the origin and when loaded at an edge, and leaves an edge as it was;
//! a delta that would pass it is refused the same way (the held state built again exactly).
use edge_authz::{compile_snapshot, diff_models, Evaluator, Limits, Request, State};

use crate::common::{example, test_key};

fn answers(ev: &Evaluator) -> Vec<String> {
    ["user:alice", "user:bob", "user:carol", "user:newcomer"]
        .iter()
        .flat_map(|s| ["read", "write", "export"].map(move |a| (*s, a)))
        .map(|(s, a)| {
            let d = ev.check(Request::new(s, a, "doc:roadmap"), 1_500);
            serde_json::to_string(&ev.explain(&d)).unwrap()
        })
        .collect()
}

/// The example with `n` more users in group:eng.
fn grown(n: usize) -> State {
    let mut s = example();
    for i in 0..n {
        s.memberships
            .insert((format!("user:extra{i}"), "group:eng".to_string()));
    }
    s
}

#[test]
fn an_edge_refuses_a_snapshot_or_delta_past_its_budget_and_keeps_what_it_held() {
    let k = test_key();
    let fresh = || Evaluator::with_keys("acme", vec![k.public_key()]).unwrap();
    let s1 = compile_snapshot(&example(), 1, 1_000, &k).unwrap();
    let mut probe = fresh();
    probe.load_snapshot(&s1).unwrap();
    let need = probe.status().heap_bytes;
    assert!(need > 0);

    // A budget one byte short: the snapshot is refused and nothing is loaded.
    let mut ev = fresh();
    ev.set_limits(Limits {
        max_index_bytes: need - 1,
        ..Limits::default()
    });
    let before = ev.status();
    let e = ev.load_snapshot(&s1).unwrap_err();
    assert_eq!(e.code(), "invalid_snapshot", "{e}");
    assert!(e.to_string().contains("max_index_bytes"), "{e}");
    assert_eq!(ev.status(), before);

    // The exact budget: it loads. A delta that grows the state past it is refused, and the
    // evaluator holds, and answers, exactly what it did.
    ev.set_limits(Limits {
        max_index_bytes: need,
        ..Limits::default()
    });
    ev.load_snapshot(&s1).unwrap();
    let (status, said) = (ev.status(), answers(&ev));
    let d = diff_models(&example(), &grown(500), 1, 2, 1_100, &k).unwrap();
    let e = ev.apply_delta(&d.bytes).unwrap_err();
    assert_eq!(e.code(), "invalid_delta", "{e}");
    assert!(e.to_string().contains("max_index_bytes"), "{e}");
    assert_eq!(ev.status(), status);
    assert_eq!(answers(&ev), said);

    // With room, the same delta applies.
    ev.set_limits(Limits::default());
    assert_eq!(ev.apply_delta(&d.bytes).unwrap().epoch, 2);
    assert!(ev.status().heap_bytes > need);
}
