#![allow(
    clippy::disallowed_methods,
    reason = "a host of the core: it measures time"
)]
//! The core benchmark on the generated workload (10,000 users, 500 groups, 10,221 resources,
//! 20,000 assignments, one 5,000-member group holding 5,000 assignments). Prints compile time,
//! snapshot bytes, decode-and-index time, single-check latency and check_many throughput.
//! `cargo bench --bench core`; `cargo test --benches` runs each once so it never rots.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a benchmark: a failure stops it loudly, and it indexes the request sets it built"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edge_authz::workload::{generate, requests, RequestBatch, WorkloadSpec};
use edge_authz::{compile_snapshot, Evaluator, Model, Reason, Request, SecretKey};

const ISSUED_AT: u64 = 1_750_000_000_000;
const NOW: u64 = ISSUED_AT + 1_000;

fn bench(c: &mut Criterion) {
    let spec = WorkloadSpec::default();
    let json = generate(&spec).to_string();
    let key = SecretKey::from_seed([1; 32]);
    let (snapshot, ev) = compile_and_load(&json, &key);
    let reqs = requests(&spec, 100_000, 7);
    let batch = RequestBatch::new(&reqs);
    let refs: Vec<Request<'_>> = batch.requests();
    print_granted("requests", &ev, &refs);
    let big = big_group_requests(&spec);
    let big_batch = RequestBatch::new(&big);
    let big_refs: Vec<Request<'_>> = big_batch.requests();
    print_granted("big-group requests", &ev, &big_refs);

    bench_build(c, &json, &key, &snapshot);
    bench_check(c, &ev, &refs, &big_refs);
    bench_check_many(c, &ev, &refs);
    bench_conditions(c, &json, &key, &ev, &refs);
}

/// The workload with five conditions and a `when` on every tenth assignment (docs/model.md,
/// "Conditions").
fn with_conditions(json: &str) -> String {
    let mut m: serde_json::Value = serde_json::from_str(json).unwrap();
    m["conditions"] = serde_json::json!({
        "office": {"attr": "ip", "op": "in_cidr", "value": ["10.0.0.0/8", "2001:db8::/32"]},
        "managed": {"attr": "device", "op": "in", "value": ["managed", "compliant"]},
        "low_risk": {"attr": "risk_score", "op": "<", "value": 50},
        "mfa_recent": {"attr": "mfa_age_s", "op": "<=", "value": 900, "step_up": true},
        "trusted": {"any": ["office", "managed"]}
    });
    let names = ["office", "managed", "low_risk", "trusted"];
    for (i, a) in m["assignments"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        if i % 10 == 0 {
            a["when"] = serde_json::json!(names[(i / 10) % names.len()]);
        }
    }
    m.to_string()
}

/// The same requests, the model without conditions and with them (a `when` on 10% of the
/// assignments) under a five-attribute context: what conditions cost a check.
fn bench_conditions(
    c: &mut Criterion,
    json: &str,
    key: &SecretKey,
    bare: &Evaluator,
    refs: &[Request<'_>],
) {
    let (_, ev) = compile_and_load(&with_conditions(json), key);
    let ctx = edge_authz::condition::Context::new([
        (
            "ip".to_string(),
            edge_authz::condition::Attr::Str("10.1.2.3".into()),
        ),
        (
            "device".to_string(),
            edge_authz::condition::Attr::Str("byod".into()),
        ),
        (
            "risk_score".to_string(),
            edge_authz::condition::Attr::Num(12.0),
        ),
        (
            "mfa_age_s".to_string(),
            edge_authz::condition::Attr::Num(60.0),
        ),
        (
            "amr".to_string(),
            edge_authz::condition::Attr::List(vec!["pwd".into(), "mfa".into()]),
        ),
    ])
    .unwrap();
    let at = edge_authz::At::clock(NOW).with_context(&ctx);
    let granted = refs
        .iter()
        .filter(|r| ev.check(**r, at).reason == Reason::Granted)
        .count();
    println!(
        "conditions (a when on 10% of assignments, a 5-attribute context): {granted} of {} granted",
        refs.len()
    );
    let mut g = c.benchmark_group("conditions");
    let mut i = 0usize;
    g.bench_function("single_cold_100k_bare", |b| {
        b.iter(|| {
            i = (i + 1) % refs.len();
            bare.check(black_box(refs[i]), NOW)
        })
    });
    g.bench_function("single_cold_100k_conditions", |b| {
        b.iter(|| {
            i = (i + 1) % refs.len();
            ev.check(black_box(refs[i]), at)
        })
    });
    let mut out = Vec::with_capacity(refs.len());
    g.throughput(Throughput::Elements(refs.len() as u64));
    g.bench_function("check_many_cold_100k_bare", |b| {
        b.iter(|| {
            out.clear();
            bare.check_many(black_box(refs), NOW, &mut out);
            out.len()
        })
    });
    g.bench_function("check_many_cold_100k_conditions", |b| {
        b.iter(|| {
            out.clear();
            ev.check_many(black_box(refs), at, &mut out);
            out.len()
        })
    });
    g.finish();
}

/// A signed edge trusting `key`, holding nothing.
fn new_edge(key: &SecretKey) -> Evaluator {
    Evaluator::with_keys("acme", vec![key.public_key()]).unwrap()
}

/// Compiles the model JSON into a snapshot and loads it once, printing the workload's counts,
/// the evaluator's heap, the snapshot's size and both times.
fn compile_and_load(json: &str, key: &SecretKey) -> (Vec<u8>, Evaluator) {
    let t = Instant::now();
    let compiled = Model::from_json(json).unwrap().compile().unwrap();
    let snapshot = compile_snapshot(&compiled.state, 1, ISSUED_AT, key).unwrap();
    let compile_once = t.elapsed();
    let mut ev = new_edge(key);
    let t = Instant::now();
    ev.load_snapshot(&snapshot).unwrap();
    let load_once = t.elapsed();
    let st = ev.status();
    println!(
        "workload: {} members, {} groups, {} resources, {} memberships, {} assignments; model JSON {} bytes",
        st.counts.members, st.counts.groups, st.counts.resources, st.counts.memberships, st.counts.assignments, json.len()
    );
    println!(
        "evaluator heap: {:.1} MiB",
        st.heap_bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "snapshot: {} bytes ({:.1} KiB); first compile {:?}, first decode+index {:?}",
        snapshot.len(),
        snapshot.len() as f64 / 1024.0,
        compile_once,
        load_once
    );
    (snapshot, ev)
}

/// Members of the big group on the documents it holds assignments on.
fn big_group_requests(spec: &WorkloadSpec) -> Vec<(String, String, String)> {
    (0..10_000)
        .map(|i| {
            (
                format!("user:u{}", (i * 7) % spec.big_group),
                "read".to_string(),
                format!("doc:w0-p{}-d{}", (i / 50) % 10, i % 50),
            )
        })
        .collect()
}

/// Prints how many of `refs` the evaluator grants.
fn print_granted(what: &str, ev: &Evaluator, refs: &[Request<'_>]) {
    let granted = refs
        .iter()
        .filter(|r| ev.check(**r, NOW).reason == Reason::Granted)
        .count();
    println!("{what}: {} generated, {granted} granted", refs.len());
}

/// The origin's compile-and-sign and an edge's decode-verify-and-index of the whole snapshot.
fn bench_build(c: &mut Criterion, json: &str, key: &SecretKey, snapshot: &[u8]) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("compile_and_sign", |b| {
        b.iter(|| {
            let c = Model::from_json(black_box(json))
                .unwrap()
                .compile()
                .unwrap();
            compile_snapshot(&c.state, 1, ISSUED_AT, key).unwrap()
        })
    });
    g.bench_function("decode_verify_and_index", |b| {
        b.iter(|| {
            let mut e = new_edge(key);
            e.load_snapshot(black_box(snapshot)).unwrap();
            e
        })
    });
    g.finish();
}

/// Single checks: cache-cold over 100,000 requests, cache-warm over 1,000, the big group, and a
/// check with its explanation.
fn bench_check(c: &mut Criterion, ev: &Evaluator, refs: &[Request<'_>], big_refs: &[Request<'_>]) {
    let mut g = c.benchmark_group("check");
    let mut i = 0usize;
    g.bench_function("single_cold_100k", |b| {
        b.iter(|| {
            i = (i + 1) % refs.len();
            ev.check(black_box(refs[i]), NOW)
        })
    });
    // The first 1,000 requests over and over: the index's hot path with warm caches.
    let mut h = 0usize;
    g.bench_function("single_hot_1k", |b| {
        b.iter(|| {
            h = (h + 1) % 1_000;
            ev.check(black_box(refs[h]), NOW)
        })
    });
    let mut j = 0usize;
    g.bench_function("single_big_group", |b| {
        b.iter(|| {
            j = (j + 1) % big_refs.len();
            ev.check(black_box(big_refs[j]), NOW)
        })
    });
    g.bench_function("single_explained", |b| {
        b.iter(|| {
            i = (i + 1) % refs.len();
            let d = ev.check(black_box(refs[i]), NOW);
            ev.explain(&d).grant.map(|g| g.path.len())
        })
    });
    g.finish();
}

/// 100,000 random requests over the whole tenant (cache-cold), and the first 1,000 of them again
/// and again (cache-warm).
fn bench_check_many(c: &mut Criterion, ev: &Evaluator, refs: &[Request<'_>]) {
    let mut g = c.benchmark_group("check_many");
    let mut out = Vec::with_capacity(refs.len());
    g.throughput(Throughput::Elements(refs.len() as u64));
    g.bench_function("cold_100k", |b| {
        b.iter(|| {
            out.clear();
            ev.check_many(black_box(refs), NOW, &mut out);
            out.len()
        })
    });
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("hot_1k", |b| {
        b.iter(|| {
            out.clear();
            ev.check_many(black_box(&refs[..1_000]), NOW, &mut out);
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
