#![allow(
    clippy::disallowed_methods,
    reason = "a host of the core: it measures time"
)]
//! Loads the benchmark snapshot repeatedly for profiling.
#![allow(
    clippy::unwrap_used,
    reason = "a profiling tool: a failure stops it loudly"
)]
use edge_authz::workload::{generate, WorkloadSpec};
use edge_authz::{compile_snapshot, Evaluator, Model, SecretKey};

fn main() {
    let key = SecretKey::from_seed([1; 32]);
    let state = Model::from_value(generate(&WorkloadSpec::default()))
        .unwrap()
        .compile()
        .unwrap()
        .state;
    let snap = compile_snapshot(&state, 1, 0, &key).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..100 {
        let mut ev = Evaluator::with_keys("acme", vec![key.public_key()]).unwrap();
        ev.load_snapshot(&snap).unwrap();
    }
    println!("{:?} per load", t.elapsed() / 100);
}
