//! `GET /metrics`: the service's progress and health in the Prometheus text format (0.0.4).
//!
//! What the journals say is read at each scrape (they are the record: the figures survive a
//! restart): every tenant's epoch and watermark, each edge's lag and silence, the propagation
//! times from each change to each edge's acknowledgement as histograms per direction (a
//! revocation: until the edge enforced it; a grant: until it applied it; counted by the journal
//! as the acknowledgements are written, `Store::propagation`), and the jobs. The requests the
//! service answered are counted in memory, by API, tenant, method and status.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;

use super::http::{Incoming, Reply};
use crate::publish::status::{edge_state, job_counts};
use crate::publish::store::{Propagation, Store, PROPAGATION_BUCKETS_MS};

/// Requests answered, by (api, tenant, method, status).
#[derive(Default)]
pub struct Counters {
    requests: Mutex<BTreeMap<(String, String, String, u16), u64>>,
}

impl Counters {
    pub fn count(&self, req: &Incoming, reply: &Reply) {
        let segments: Vec<&str> = req.path.split('/').skip(1).collect();
        // Only names the service knows become labels: a scan of odd paths cannot grow the table.
        let (api, tenant) = match segments.as_slice() {
            ["v1", t, op @ ("changes" | "model" | "status")] => (*op, *t),
            ["scim", "v2", t, ..] => ("scim", *t),
            ["metrics"] => ("metrics", ""),
            ["healthz"] => ("healthz", ""),
            _ => ("other", ""),
        };
        let tenant = if reply.status == 401 || !edge_authz::is_valid_tenant(tenant) {
            ""
        } else {
            tenant
        };
        let method = match req.method.as_str() {
            m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE") => m,
            _ => "other",
        };
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((api.into(), tenant.into(), method.into(), reply.status))
                .or_insert(0) += 1;
        }
    }
}

/// A label value, escaped as the text format asks.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A histogram from its buckets' counts ([`PROPAGATION_BUCKETS_MS`], in seconds), cumulative.
fn histogram(out: &mut String, name: &str, labels: &str, h: &Propagation) {
    let mut n = 0u64;
    for (b, c) in PROPAGATION_BUCKETS_MS.iter().zip(&h.counts) {
        n += c;
        let le = *b as f64 / 1000.0;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
    }
    let total: u64 = h.counts.iter().sum();
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum_ms as f64 / 1000.0);
    let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
}

/// The whole exposition.
pub fn render(dir: &Path, tenants: &[String], counters: &Counters) -> String {
    let mut out = String::new();
    let now = crate::now_ms();
    let mut heads = String::new();
    let mut edges = String::new();
    let mut hist = String::new();
    let mut jobs = String::new();
    for t in tenants {
        let Ok(store) = Store::read_only(dir, t) else {
            continue;
        };
        let tl = format!("tenant=\"{}\"", label(t));
        let latest = store.latest_epoch().ok().flatten();
        let watermark = store.watermark().unwrap_or(0);
        let _ = writeln!(heads, "edge_authz_epoch{{{tl}}} {}", latest.unwrap_or(0));
        let _ = writeln!(heads, "edge_authz_watermark{{{tl}}} {watermark}");
        for e in store.edges().unwrap_or_default() {
            let el = format!("{tl},edge=\"{}\"", label(&e.url));
            let held = e.epoch.flatten().unwrap_or(0);
            let lag = latest.unwrap_or(0).saturating_sub(held);
            let _ = writeln!(edges, "edge_authz_edge_lag_epochs{{{el}}} {lag}");
            let silent = e
                .heard_at
                .map_or(-1.0, |h| now.saturating_sub(h) as f64 / 1000.0);
            let _ = writeln!(edges, "edge_authz_edge_silence_seconds{{{el}}} {silent}");
            let _ = writeln!(edges, "edge_authz_edge_failures{{{el}}} {}", e.failures);
            let caught = u8::from(edge_state(&e, latest, watermark) == "caught_up");
            let _ = writeln!(edges, "edge_authz_edge_caught_up{{{el}}} {caught}");
        }
        for (dir_label, revokes) in [("revocation", true), ("grant", false)] {
            let h = store.propagation(revokes).unwrap_or_default();
            let l = format!("{tl},direction=\"{dir_label}\"");
            histogram(&mut hist, "edge_authz_propagation_seconds", &l, &h);
        }
        if let Ok((count, over, unacked, interrupted)) = job_counts(store.conn()) {
            let _ = writeln!(jobs, "edge_authz_jobs_total{{{tl}}} {count}");
            let _ = writeln!(jobs, "edge_authz_jobs_over_budget_total{{{tl}}} {over}");
            let _ = writeln!(
                jobs,
                "edge_authz_jobs_unacknowledged_total{{{tl}}} {unacked}"
            );
            let _ = writeln!(
                jobs,
                "edge_authz_jobs_interrupted_total{{{tl}}} {interrupted}"
            );
        }
    }
    let family = |out: &mut String, name: &str, kind: &str, help: &str, body: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        out.push_str(body);
    };
    let pick = |body: &str, name: &str| -> String {
        body.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    family(
        &mut out,
        "edge_authz_epoch",
        "gauge",
        "The journal's latest epoch.",
        &pick(&heads, "edge_authz_epoch"),
    );
    family(
        &mut out,
        "edge_authz_watermark",
        "gauge",
        "The latest epoch that removed access.",
        &pick(&heads, "edge_authz_watermark"),
    );
    for (name, help) in [
        (
            "edge_authz_edge_lag_epochs",
            "Epochs the edge is behind the journal, at its last answer.",
        ),
        (
            "edge_authz_edge_silence_seconds",
            "Seconds since the edge last answered with success (-1: never).",
        ),
        (
            "edge_authz_edge_failures",
            "The edge's current run of failed pushes.",
        ),
        (
            "edge_authz_edge_caught_up",
            "1 when the edge holds the latest epoch and enforces the watermark.",
        ),
    ] {
        family(&mut out, name, "gauge", help, &pick(&edges, name));
    }
    family(
        &mut out,
        "edge_authz_propagation_seconds",
        "histogram",
        "From a change to an edge's acknowledgement: enforced for a revocation, applied for a grant.",
        &hist,
    );
    for (name, help) in [
        (
            "edge_authz_jobs_total",
            "Jobs run (one per change or catch-up).",
        ),
        (
            "edge_authz_jobs_over_budget_total",
            "Jobs that took longer than their time budget.",
        ),
        (
            "edge_authz_jobs_unacknowledged_total",
            "Revocations some edge did not acknowledge within the ack timeout.",
        ),
        (
            "edge_authz_jobs_interrupted_total",
            "Jobs a stop of the service interrupted.",
        ),
    ] {
        family(&mut out, name, "counter", help, &pick(&jobs, name));
    }
    let mut reqs = String::new();
    if let Ok(m) = counters.requests.lock() {
        for ((api, tenant, method, status), n) in m.iter() {
            let _ = writeln!(
                reqs,
                "edge_authz_requests_total{{api=\"{api}\",tenant=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                label(tenant)
            );
        }
    }
    family(
        &mut out,
        "edge_authz_requests_total",
        "counter",
        "Requests answered, by API (changes, model, status, scim, metrics), tenant, method and status.",
        &reqs,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        // 3, 7, 40 and 2,000 ms: the first, second, fourth and ninth buckets.
        let mut h = Propagation::default();
        for b in [0, 1, 3, 8] {
            if let Some(c) = h.counts.get_mut(b) {
                *c += 1;
            }
        }
        h.sum_ms = 2_050;
        let mut out = String::new();
        histogram(&mut out, "h", "t=\"a\"", &h);
        assert!(out.contains("h_bucket{t=\"a\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"a\",le=\"0.01\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"a\",le=\"0.05\"} 3\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"a\",le=\"2.5\"} 4\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"a\",le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("h_sum{t=\"a\"} 2.05\n"), "{out}");
        assert!(out.contains("h_count{t=\"a\"} 4\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"a\",le=\"1\"} 3\n"), "{out}");
        assert!(out.contains("h_bucket{t=\"a\",le=\"300\"} 4\n"), "{out}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
