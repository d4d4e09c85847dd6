#![allow(
    clippy::disallowed_methods,
    reason = "a host of the core: it measures time"
)]
//! Loads the benchmark snapshot repeatedly for profiling, and says how much of a load is
//! building the index (the content checked, the name tables, closures and records): what a
//! snapshot carrying its index could at most save, before the bytes that index would add.
#![allow(
    clippy::unwrap_used,
    reason = "a profiling tool: a failure stops it loudly"
)]
use edge_authz::workload::{generate, WorkloadSpec};
use edge_authz::{compile_snapshot, Content, Evaluator, Index, Limits, Model, SecretKey};

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
    let load = t.elapsed() / 100;
    let content = Content::from_state(&state).unwrap();
    let limits = Limits::default();
    let mut build = std::time::Duration::ZERO;
    for _ in 0..100 {
        let c = content.clone();
        let t = std::time::Instant::now();
        let index = Index::build(c, &limits).unwrap();
        build += t.elapsed();
        drop(index);
    }
    let build = build / 100;
    println!(
        "{load:?} per load ({} bytes); building the index {build:?} of it ({:.0}%)",
        snap.len(),
        build.as_secs_f64() * 100.0 / load.as_secs_f64()
    );
}
