//! Random mutations of valid signed messages and of model JSON: nothing panics, and every
//! refused message leaves the evaluator exactly as it was.
use edge_authz::{compile_snapshot, diff_models, sign_watermark, Evaluator, Model};
use proptest::prelude::*;

use crate::common::{example, example_json, revoked, test_key};

/// Three valid messages for an evaluator holding epoch 1: a snapshot at 2, a delta 1 -> 2, and
/// a watermark carrying that delta.
fn messages() -> [Vec<u8>; 3] {
    let k = test_key();
    let delta = diff_models(&example(), &revoked(), 1, 2, 2_000, &k)
        .unwrap()
        .bytes;
    [
        compile_snapshot(&revoked(), 2, 2_000, &k).unwrap(),
        delta.clone(),
        sign_watermark("acme", 2, 2_000, Some(&delta), &k).unwrap(),
    ]
}

fn edge() -> Evaluator {
    let k = test_key();
    let mut ev = Evaluator::with_keys("acme", vec![k.public_key()]).unwrap();
    ev.load_snapshot(&compile_snapshot(&example(), 1, 1_000, &k).unwrap())
        .unwrap();
    ev
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, x) => {
                if let Some(b) = bytes.get_mut(i % n) {
                    *b ^= x;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
            Mutation::Insert(i, x) => bytes.insert(i % (bytes.len() + 1), x),
            Mutation::Remove(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % n);
                }
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_messages_never_panic_or_half_apply(which in 0usize..3, muts in proptest::collection::vec(mutation(), 1..4)) {
        let msgs = messages();
        let original = msgs[which].clone();
        let bytes = mutate(original.clone(), &muts);
        prop_assume!(bytes != original);
        let mut ev = edge();
        let before = ev.status();
        let result = match which {
            0 => ev.load_snapshot(&bytes).map(|_| ()),
            1 => ev.apply_delta(&bytes).map(|_| ()),
            _ => ev.apply_watermark(&bytes).map(|_| ()),
        };
        match result {
            // Only a change outside the signed bytes can still verify (none exists but the
            // envelope's framing), and then the message is the original one.
            Ok(()) => prop_assert_ne!(ev.status(), before),
            Err(e) => {
                prop_assert!(!e.code().is_empty());
                prop_assert_eq!(ev.status(), before);
            }
        }
        let _ = edge_authz::inspect(&bytes, &[test_key().public_key()], &Default::default());
    }

    #[test]
    fn mutated_model_json_never_panics(muts in proptest::collection::vec(mutation(), 1..6)) {
        let text = mutate(example_json().into_bytes(), &muts);
        if let Ok(text) = String::from_utf8(text) {
            if let Ok(model) = Model::from_json(&text) {
                let _ = model.compile();
            }
        }
    }
}
