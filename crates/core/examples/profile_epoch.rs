#![allow(
    clippy::disallowed_methods,
    reason = "a host of the core: it measures time"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a profiling tool: a failure stops it loudly"
)]
//! Times the origin's work for one epoch, from BEFORE.json to AFTER.json (two models of one
//! tenant), as the publisher and the origin service do it: the model compiled as the origin
//! keeps it (content, index check and digest built once), the delta signed from the previous
//! epoch's kept form, the model written as the journal keeps it, and the snapshot an edge that
//! needs one gets. Averages over ROUNDS (default 20). Beside it, in the same run, the same epoch
//! from the free functions, each of which builds the content it needs (`compile`,
//! `content_digest`, `compile_snapshot`, `diff_models`): what every epoch cost before the origin
//! kept its latest one. And the same epoch patched from the kept one (`Prepared::patch` with the
//! change's operations, here the delta's, then `Prepared::delta_by`), as the origin makes it
//! when a change is of the kinds a patch takes: asserted equal to the compiled one.
//!
//! `cargo run --release -p edge-authz --example profile_epoch -- BEFORE.json AFTER.json [ROUNDS]`
use std::time::{Duration, Instant};

use edge_authz::{compile_snapshot, content_digest, diff, diff_models, Model, SecretKey};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [before, after, rest @ ..] = args.as_slice() else {
        eprintln!("usage: profile_epoch BEFORE.json AFTER.json [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: u32 = rest.first().map_or(20, |n| n.parse().expect("ROUNDS"));
    let read = |p: &String| Model::from_json(&std::fs::read_to_string(p).unwrap()).unwrap();
    let key = SecretKey::from_seed([1; 32]);
    let before_model = read(before);
    let (before, _) = before_model.prepare().unwrap();
    let before_state = before_model.compile().unwrap().state;
    let after = read(after);
    let names = [
        "prepare (compile, content, index, digest)",
        "delta from the kept previous epoch",
        "model JSON for the journal",
        "snapshot (only when an edge needs one)",
    ];
    let mut steps = [Duration::ZERO; 4];
    let mut free = Duration::ZERO;
    let mut patched = Duration::ZERO;
    let ops = diff(before.state(), &after.compile().unwrap().state)
        .unwrap()
        .ops;
    let mut sizes = (0, 0, 0);
    for _ in 0..rounds {
        let t0 = Instant::now();
        let (next, _) = after.prepare().unwrap();
        let t1 = Instant::now();
        let delta = before.delta_to(&next, 1, 2, 0, &key).unwrap();
        let t2 = Instant::now();
        let text = serde_json::to_string(&after).unwrap();
        let t3 = Instant::now();
        let snapshot = next.snapshot(2, 0, &key).unwrap();
        let t4 = Instant::now();
        for (step, d) in steps.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            *step += d;
        }
        sizes = (delta.bytes.len(), text.len(), snapshot.len());
        let t5 = Instant::now();
        let state = after.compile().unwrap().state;
        let digest = content_digest(&state).unwrap();
        let snapshot2 = compile_snapshot(&state, 2, 0, &key).unwrap();
        let delta2 = diff_models(&before_state, &state, 1, 2, 0, &key).unwrap();
        free += t5.elapsed();
        let t6 = Instant::now();
        let patch = before.patch(ops.clone()).unwrap();
        let delta3 = before.delta_by(&patch, 1, 2, 0, &key).unwrap();
        patched += t6.elapsed();
        assert_eq!(patch.prepared().digest_hex(), next.digest_hex());
        assert_eq!(delta3.bytes, delta.bytes);
        assert_eq!(
            (digest, snapshot2, delta2.bytes),
            (next.digest_hex(), snapshot, delta.bytes)
        );
    }
    for (name, d) in names.iter().zip(steps) {
        println!(
            "{name:>42}: {:>7.2} ms",
            d.as_secs_f64() * 1e3 / f64::from(rounds)
        );
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(rounds);
    let kept = per(steps[0] + steps[1]);
    println!(
        "{:>42}: {kept:>7.2} ms (the free functions, each building its content: {:.2} ms, {:.2}x; with the snapshot signed every epoch as before)",
        "an epoch's origin work, without its snapshot",
        per(free),
        per(free) / kept
    );
    println!(
        "{:>42}: {:>7.2} ms ({:.2}x the compiled epoch's prepare and delta)",
        "the same epoch patched from the kept one",
        per(patched),
        per(patched) / kept
    );
    println!(
        "delta {} bytes, model {} bytes, snapshot {} bytes",
        sizes.0, sizes.1, sizes.2
    );
}
