//! Token checks natively, per algorithm, on the shared token cases (tests/tokens/cases.json,
//! made by the `jose` library): the signature verified by the Rust crates the command line and
//! the Worker use, and the rest of a token check (parse, gate 6, the decision) with the
//! signature's verdict known, as the npm package's cache gives it. Prints how much of a check
//! verification is. `cargo bench -p edge-authz-protocol --features jws --bench tokens`;
//! `cargo test --benches --all-features` runs each once so it never rots.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark: a failure stops it loudly"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use edge_authz::condition::Context;
use edge_authz::token::Verify;
use edge_authz::{At, Evaluator, Model, SecretKey, TokenAnswer};
use edge_authz_protocol::jws;

fn bench(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/tokens/cases.json");
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let clock = all["clock"].as_u64().unwrap();
    let state = Model::from_value(all["model"].clone())
        .unwrap()
        .compile()
        .unwrap()
        .state;
    let key = SecretKey::from_seed([3; 32]);
    let mut ev = Evaluator::with_keys("acme", vec![key.public_key()]).unwrap();
    ev.set_clock(Some(clock));
    ev.load_snapshot(&edge_authz::compile_snapshot(&state, 1, clock, &key).unwrap())
        .unwrap();
    let ctx = Context::EMPTY;
    let at = At::clock(clock).with_context(&ctx);
    let mut g = c.benchmark_group("tokens");
    for alg in ["RS256", "ES256", "EdDSA"] {
        let case = all["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == format!("{alg} valid"))
            .unwrap();
        let token = case["token"].as_str().unwrap().to_string();
        let check = |verify: &mut dyn FnMut(&Verify<'_>) -> Option<bool>| match ev.check_token(
            &token,
            "read",
            "doc:roadmap",
            at,
            verify,
        ) {
            TokenAnswer::Decided(d) => assert!(d.decision.allowed),
            TokenAnswer::Verify { .. } => panic!("asked again"),
        };
        g.bench_function(format!("{alg} verified natively"), |b| {
            b.iter(|| check(&mut |v| Some(jws::verify(black_box(v)))))
        });
        g.bench_function(format!("{alg} verdict known"), |b| {
            b.iter(|| check(&mut |_| Some(true)))
        });
    }
    g.bench_function("check by subject", |b| {
        b.iter(|| {
            ev.check(
                edge_authz::Request::new("user:alice", "read", "doc:roadmap"),
                black_box(at),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
