//! Runs checks in a loop for profiling (`perf record --call-graph dwarf`).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use edge_authz::workload::{generate, requests, WorkloadSpec};
use edge_authz::{compile_snapshot, Evaluator, Model, Request, SecretKey};

fn main() {
    let spec = WorkloadSpec::default();
    let key = SecretKey::from_seed([1; 32]);
    let state = Model::from_value(generate(&spec)).unwrap().compile().unwrap().state;
    let snap = compile_snapshot(&state, 1, 0, &key).unwrap();
    let mut ev = Evaluator::with_keys("acme", vec![key.public_key()]).unwrap();
    ev.load_snapshot(&snap).unwrap();
    let reqs = requests(&spec, 1_000, 7);
    let refs: Vec<Request<'_>> = reqs.iter().map(|(s, a, r)| Request::new(s, a, r)).collect();
    let mut n = 0usize;
    let t = std::time::Instant::now();
    for _ in 0..5_000 {
        for r in &refs {
            n += usize::from(ev.check(*r, 1000).allowed);
        }
    }
    println!("{n} allowed, {:?} per check", t.elapsed() / 5_000_000);
}
