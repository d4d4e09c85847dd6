//! `status()`: the declared actions and their tiers, as the npm package and the Worker serialise
//! them.
use std::collections::BTreeMap;

use edge_authz::{compile_snapshot, diff_models, Evaluator, Tier};

use crate::common::{example, test_key};

fn tiers(pairs: &[(&str, Tier)]) -> BTreeMap<String, Tier> {
    pairs.iter().map(|(n, t)| (n.to_string(), *t)).collect()
}

#[test]
fn status_lists_the_actions_with_their_tiers() {
    let k = test_key();
    let mut ev = Evaluator::with_keys("acme", vec![k.public_key()]).unwrap();
    // Nothing loaded: an empty map, serialised as `{}`.
    assert!(ev.status().actions.is_empty());
    let v = serde_json::to_value(ev.status()).unwrap();
    assert_eq!(v["actions"], serde_json::json!({}));

    ev.load_snapshot(&compile_snapshot(&example(), 1, 1_000, &k).unwrap())
        .unwrap();
    let example_tiers = tiers(&[
        ("export", Tier::High),
        ("read", Tier::Low),
        ("write", Tier::Standard),
    ]);
    assert_eq!(ev.status().actions, example_tiers);
    assert_eq!(ev.status().counts.actions, 3);
    // camelCase JSON, keys sorted by name, tiers as strings.
    let json = serde_json::to_string(&ev.status()).unwrap();
    assert!(
        json.contains(r#""actions":{"export":"high","read":"low","write":"standard"}"#),
        "{json}"
    );

    // A delta that declares an action and changes a tier shows in the status.
    let mut next = example();
    next.actions.insert("comment".into(), Tier::Low);
    next.actions.insert("write".into(), Tier::High);
    ev.apply_delta(
        &diff_models(&example(), &next, 1, 2, 1_100, &k)
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert_eq!(
        ev.status().actions,
        tiers(&[
            ("comment", Tier::Low),
            ("export", Tier::High),
            ("read", Tier::Low),
            ("write", Tier::High),
        ])
    );

    // A preview evaluator lists them too.
    let pv = Evaluator::preview(&example()).unwrap();
    assert_eq!(pv.status().actions, example_tiers);
}
