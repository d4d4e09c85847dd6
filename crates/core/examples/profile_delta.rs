#![allow(
    clippy::disallowed_methods,
    reason = "a host of the core: it measures time"
)]
//! Times applying a one-membership revocation delta to the benchmark workload.
#![allow(
    clippy::unwrap_used,
    reason = "a profiling tool: a failure stops it loudly"
)]
use std::time::Instant;

use edge_authz::workload::{generate, WorkloadSpec};
use edge_authz::{compile_snapshot, diff_models, Evaluator, Model, SecretKey};

fn main() {
    let key = SecretKey::from_seed([1; 32]);
    let before = Model::from_value(generate(&WorkloadSpec::default()))
        .unwrap()
        .compile()
        .unwrap()
        .state;
    let mut after = before.clone();
    let first = after.memberships.iter().next().unwrap().clone();
    after.memberships.remove(&first);
    let snap = compile_snapshot(&before, 1, 0, &key).unwrap();
    let t = Instant::now();
    let delta = diff_models(&before, &after, 1, 2, 0, &key).unwrap();
    println!(
        "diff and sign: {:?}, delta {} bytes, revokes {}",
        t.elapsed(),
        delta.bytes.len(),
        delta.revokes
    );
    for _ in 0..5 {
        let mut ev = Evaluator::with_keys("acme", vec![key.public_key()]).unwrap();
        ev.load_snapshot(&snap).unwrap();
        let t = Instant::now();
        ev.apply_delta(&delta.bytes).unwrap();
        println!("apply delta: {:?}", t.elapsed());
    }
}
