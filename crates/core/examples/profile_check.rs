#![allow(
    clippy::disallowed_methods,
    reason = "a host of the core: it measures time"
)]
//! Times checks in one process so variants compare under the same noise:
//! `profile_check [hot|cold]` prints ns per check for a `check` loop, for the same checks by
//! ids looked up beforehand (`check_looked`: the decision without the name lookups), and for
//! `check_many`. `hot` goes over the same 1,000 requests again and again, `cold` over 100,000
//! spread over the tenant; `N` sets another count (`N=10 ... hot`: every line a check reads
//! stays in the first-level cache, which gives the floor of the instructions alone).
//! With `PART=check` or `PART=many` it only makes `TOTAL` such checks after one pass over the
//! requests, and prints how many were allowed: for instruction counts (cachegrind, the
//! difference of two totals), as `node bench/hotpath.mjs --instructions` runs it.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a profiling tool: a failure stops it loudly, and it indexes the requests it built"
)]
use std::time::Instant;

use edge_authz::workload::{generate, requests, RequestBatch, WorkloadSpec};
use edge_authz::{compile_snapshot, Evaluator, Looked, Model, Request, SecretKey};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "cold".into());
    let spec = WorkloadSpec::default();
    let key = SecretKey::from_seed([1; 32]);
    let state = Model::from_value(generate(&spec))
        .unwrap()
        .compile()
        .unwrap()
        .state;
    let snap = compile_snapshot(&state, 1, 0, &key).unwrap();
    let mut ev = Evaluator::with_keys("acme", vec![key.public_key()]).unwrap();
    ev.load_snapshot(&snap).unwrap();
    let n = std::env::var("N")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(if mode == "hot" { 1_000 } else { 100_000 });
    let reqs = requests(&spec, n, 7);
    let batch = RequestBatch::new(&reqs);
    let refs: Vec<Request<'_>> = batch.requests();
    let total: usize = std::env::var("TOTAL")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(5_000_000);
    let rounds = (total / n).max(1);
    let mut out = Vec::with_capacity(n);
    if let Ok(part) = std::env::var("PART") {
        ev.check_many(&refs, 1000, &mut out);
        let mut allowed = 0usize;
        let mut left = total;
        while left > 0 {
            let k = left.min(n);
            if part == "many" {
                out.clear();
                ev.check_many(&refs[..k], 1000, &mut out);
                allowed += out.iter().filter(|d| d.allowed).count();
            } else {
                for r in &refs[..k] {
                    allowed += usize::from(ev.check(*r, 1000).allowed);
                }
            }
            left -= k;
        }
        println!("{allowed}");
        return;
    }
    // The same requests by ids, looked up once, for the rows "by ids".
    let serial = ev.index_serial().unwrap();
    let looked: Vec<Looked> = refs
        .iter()
        .map(|r| Looked {
            ids: [(0, r.subject), (1, r.action), (2, r.resource)]
                .map(|(kind, name)| ev.look_up_field(kind, name).unwrap()),
            action_ok: true,
            ids_ok: true,
        })
        .collect();
    for round in 0..std::env::var("ROUNDS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(3)
    {
        let t = Instant::now();
        let mut allowed = 0usize;
        for _ in 0..rounds {
            for r in &refs {
                allowed += usize::from(ev.check(*r, 1000).allowed);
            }
        }
        let single = t.elapsed().as_nanos() as f64 / (rounds * n) as f64;
        let t = Instant::now();
        for _ in 0..rounds {
            out.clear();
            ev.check_many(&refs, 1000, &mut out);
        }
        let many = t.elapsed().as_nanos() as f64 / (rounds * n) as f64;
        let allowed_many = out.iter().filter(|d| d.allowed).count() * rounds;
        assert_eq!(allowed, allowed_many);
        let t = Instant::now();
        let mut by_ids = 0usize;
        for _ in 0..rounds {
            for l in &looked {
                by_ids += usize::from(ev.check_looked(serial, *l, 1000).unwrap().allowed);
            }
        }
        let ids = t.elapsed().as_nanos() as f64 / (rounds * n) as f64;
        assert_eq!(by_ids, allowed);
        let ix = ev.index().unwrap();
        let t = Instant::now();
        let mut found = 0usize;
        for _ in 0..rounds {
            for r in &refs {
                found += usize::from(ix.subject(r.subject).is_some())
                    + usize::from(ix.resource(r.resource).is_some());
            }
        }
        let lookups = t.elapsed().as_nanos() as f64 / (rounds * n) as f64;
        assert!(found > 0);
        println!("{mode} round {round}: subject+resource lookups {lookups:.0} ns");
        println!(
            "{mode} round {round}: check {single:.0} ns, by ids {ids:.0} ns, check_many {many:.0} ns ({:.2} M/s)",
            1e3 / many
        );
    }
}
