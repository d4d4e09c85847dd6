//! `publish --status`: what the journal says: the latest epoch, each edge's lag, the time from
//! each change to each edge's acknowledgement (revocations: enforced; grants: applied), and the
//! jobs that went over their time budget or were interrupted.

use rusqlite::params;
use serde_json::{json, Value};

use super::store::{EdgeRow, Store};
use super::{now_ms, Fail, PublishArgs};

fn db_err(e: rusqlite::Error) -> Fail {
    Fail(format!("publisher journal: {e}"))
}

/// p50, p99 and max of `v` (nearest rank), with the count.
pub fn summary(mut v: Vec<u64>) -> Value {
    if v.is_empty() {
        return json!({"count": 0});
    }
    v.sort_unstable();
    let rank = |q: f64| {
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v.get(i).copied().unwrap_or(0)
    };
    json!({"count": v.len(), "p50Ms": rank(0.5), "p99Ms": rank(0.99),
           "maxMs": v.last().copied().unwrap_or(0)})
}

pub(crate) fn latencies(store: &Store, revokes: bool, run: Option<i64>) -> Result<Vec<u64>, Fail> {
    let column = if revokes { "enforced_at" } else { "applied_at" };
    let sql = format!(
        "SELECT a.{column} - e.changed_at FROM acks a JOIN epochs e ON e.epoch = a.epoch
         WHERE e.revokes = ?1 AND e.kind IN ('revocation', 'grant') AND a.{column} IS NOT NULL
           AND (?2 IS NULL OR a.run = ?2)"
    );
    let mut stmt = store.conn().prepare(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(params![revokes, run], |r| r.get::<_, i64>(0))
        .map_err(db_err)?;
    rows.map(|r| r.map(|v| u64::try_from(v).unwrap_or(0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)
}

/// Where an edge stands against the journal's `latest` epoch and `watermark`, from its last
/// answer: `edge_ahead` (it holds a later epoch), `watermark_ahead` (its watermark is past the
/// latest epoch: it refuses every epoch up to it), `failing` (its last answer was an error),
/// `unknown` (never heard), `caught_up`, or `behind`.
pub fn edge_state(e: &EdgeRow, latest: Option<u64>, watermark: u64) -> &'static str {
    let epoch = e.epoch.flatten();
    let latest_or_0 = latest.unwrap_or(0);
    if epoch.is_some_and(|x| x > latest_or_0) {
        "edge_ahead"
    } else if e.watermark > latest_or_0 {
        "watermark_ahead"
    } else if e.last_error.is_some() {
        "failing"
    } else if e.heard_at.is_none() {
        "unknown"
    } else if latest.is_some() && epoch == latest && e.watermark >= watermark {
        "caught_up"
    } else {
        "behind"
    }
}

/// The journal's report: its latest epoch, the epochs by kind, each edge, the propagation
/// times, and the jobs.
pub fn report(store: &Store) -> Result<Value, Fail> {
    let c = store.conn();
    let latest = store.latest_epoch()?;
    let watermark = store.watermark()?;
    let now = now_ms();
    let kinds = epochs_by_kind(c)?;
    let last: Option<(String, i64, i64)> = c
        .query_row(
            "SELECT digest, issued_at, changed_at FROM epochs ORDER BY epoch DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok();
    let edges = edge_reports(store, latest, watermark, now)?;
    let run: Option<i64> = c
        .query_row("SELECT MAX(run) FROM acks", [], |r| r.get(0))
        .map_err(db_err)?;
    let jobs = job_counts(c)?;
    let over = recent_over_budget(c)?;
    let open = open_jobs(c)?;
    Ok(json!({
        "tenant": store.tenant,
        "epoch": latest,
        "watermark": watermark,
        "digest": last.as_ref().map(|l| l.0.clone()),
        "issuedAt": last.as_ref().map(|l| l.1),
        "epochs": kinds,
        "edges": edges,
        "propagation": {
            "lastRun": {
                "run": run,
                "revocation": summary(latencies(store, true, run)?),
                "grant": summary(latencies(store, false, run)?),
            },
            "all": {
                "revocation": summary(latencies(store, true, None)?),
                "grant": summary(latencies(store, false, None)?),
            },
        },
        "jobs": {"count": jobs.0, "overBudget": jobs.1, "unacknowledged": jobs.2,
                 "interrupted": jobs.3, "open": open, "recentOverBudget": over},
    }))
}

/// How many epochs of each kind the journal holds.
fn epochs_by_kind(c: &rusqlite::Connection) -> Result<serde_json::Map<String, Value>, Fail> {
    let mut kinds = serde_json::Map::new();
    let mut stmt = c
        .prepare("SELECT kind, COUNT(*) FROM epochs GROUP BY kind ORDER BY kind")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(db_err)?;
    for row in rows {
        let (k, n) = row.map_err(db_err)?;
        kinds.insert(k, n.into());
    }
    Ok(kinds)
}

/// Each edge as the journal last heard from it, against its `latest` epoch and `watermark`.
fn edge_reports(
    store: &Store,
    latest: Option<u64>,
    watermark: u64,
    now: u64,
) -> Result<Vec<Value>, Fail> {
    let c = store.conn();
    Ok(store
        .edges()?
        .into_iter()
        .map(|e| {
            let epoch = e.epoch.flatten();
            let lag = match (latest, epoch) {
                (Some(l), Some(e)) => Some(l.saturating_sub(e)),
                (Some(l), None) => Some(l),
                _ => None,
            };
            let pending: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM acks WHERE edge = ?1 AND applied_at IS NULL",
                    [&e.url],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            json!({"url": e.url, "state": edge_state(&e, latest, watermark),
                   "epoch": epoch, "watermark": e.watermark, "lag": lag,
                   "enforcesWatermark": e.watermark >= watermark || epoch.is_some_and(|x| x >= watermark),
                   "heardAt": e.heard_at, "heardAgoMs": e.heard_at.map(|h| now.saturating_sub(h)),
                   "unappliedEpochs": pending, "failures": e.failures, "lastError": e.last_error})
        })
        .collect())
}

/// The jobs: in all, over budget, unacknowledged, interrupted.
pub(crate) fn job_counts(c: &rusqlite::Connection) -> Result<(i64, i64, i64, i64), Fail> {
    c.query_row(
        "SELECT COUNT(*),
                COALESCE(SUM(outcome = 'over_budget'), 0),
                COALESCE(SUM(outcome = 'unacknowledged'), 0),
                COALESCE(SUM(outcome = 'interrupted'), 0) FROM jobs",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .map_err(db_err)
}

/// The last five jobs over their budget.
fn recent_over_budget(c: &rusqlite::Connection) -> Result<Vec<Value>, Fail> {
    let mut over = Vec::new();
    let mut stmt = c
        .prepare(
            "SELECT epoch, kind, ended_at - started_at, budget_ms, bytes FROM jobs
             WHERE outcome = 'over_budget' ORDER BY id DESC LIMIT 5",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(
                json!({"epoch": r.get::<_, Option<i64>>(0)?, "kind": r.get::<_, String>(1)?,
                      "ms": r.get::<_, i64>(2)?, "budgetMs": r.get::<_, i64>(3)?,
                      "bytes": r.get::<_, i64>(4)?}),
            )
        })
        .map_err(db_err)?;
    for row in rows {
        over.push(row.map_err(db_err)?);
    }
    Ok(over)
}

/// The jobs that have not ended (one running now, or one a crash left open).
fn open_jobs(c: &rusqlite::Connection) -> Result<Vec<Value>, Fail> {
    let mut stmt = c
        .prepare("SELECT id, epoch, kind, step FROM jobs WHERE ended_at IS NULL ORDER BY id")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(
                json!({"job": r.get::<_, i64>(0)?, "epoch": r.get::<_, Option<i64>>(1)?,
                      "kind": r.get::<_, String>(2)?, "step": r.get::<_, String>(3)?}),
            )
        })
        .map_err(db_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
}

fn ms(v: &Value) -> String {
    match v.get("count").and_then(Value::as_u64) {
        Some(0) | None => "none yet".into(),
        Some(n) => format!(
            "n={n} p50 {} ms, p99 {} ms, max {} ms",
            v["p50Ms"], v["p99Ms"], v["maxMs"]
        ),
    }
}

fn text(r: &Value) -> String {
    let mut out = String::new();
    let field = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    out.push_str(&format!(
        "tenant {}: epoch {}, watermark {}, digest {}\n",
        field(&r["tenant"]),
        field(&r["epoch"]),
        field(&r["watermark"]),
        field(&r["digest"])
    ));
    out.push_str(&format!("epochs by kind: {}\n", r["epochs"]));
    out.push_str("edges:\n");
    for e in r["edges"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}  epoch {}  lag {}  {}  watermark {}  heard {} ms ago  {}\n",
            field(&e["url"]),
            field(&e["epoch"]),
            field(&e["lag"]),
            field(&e["state"]),
            field(&e["watermark"]),
            field(&e["heardAgoMs"]),
            match &e["lastError"] {
                Value::Null => "ok".to_string(),
                v => format!("error: {}", field(v)),
            }
        ));
    }
    let at = |ptr: &str| r.pointer(ptr).cloned().unwrap_or(Value::Null);
    out.push_str(&format!(
        "propagation, change to acknowledgement (last run {}):\n  revocations (enforced): {}\n  grants (applied):       {}\n",
        field(&at("/propagation/lastRun/run")),
        ms(&at("/propagation/lastRun/revocation")),
        ms(&at("/propagation/lastRun/grant"))
    ));
    out.push_str(&format!(
        "  all runs: revocations {}; grants {}\n",
        ms(&at("/propagation/all/revocation")),
        ms(&at("/propagation/all/grant"))
    ));
    let j = &r["jobs"];
    out.push_str(&format!(
        "jobs: {} ({} over budget, {} unacknowledged, {} interrupted, {} open)\n",
        field(&j["count"]),
        field(&j["overBudget"]),
        field(&j["unacknowledged"]),
        field(&j["interrupted"]),
        j["open"].as_array().map_or(0, Vec::len)
    ));
    out
}

pub fn print(args: &PublishArgs) -> Result<(), Fail> {
    let tenants = match &args.tenant {
        Some(t) => vec![t.clone()],
        None => match args.model.as_deref() {
            Some(m) => vec![super::read_model(m)?.tenant],
            None => Store::tenants(&args.state),
        },
    };
    if tenants.is_empty() {
        return Err(Fail(format!("no journal in `{}`", args.state.display())));
    }
    let mut reports = Vec::new();
    for t in &tenants {
        reports.push(report(&Store::read_only(&args.state, t)?)?);
    }
    if args.json {
        let v = if reports.len() == 1 {
            reports.pop().unwrap_or(Value::Null)
        } else {
            Value::Array(reports)
        };
        crate::emit(&v.to_string())?;
    } else {
        for r in &reports {
            crate::emit_bytes(text(r).as_bytes())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{edge_state, summary};
    use crate::publish::store::EdgeRow;

    #[test]
    fn edge_states() {
        let row = |epoch: Option<u64>, watermark: u64, error: Option<&str>| EdgeRow {
            url: "http://127.0.0.1:1".into(),
            epoch: Some(epoch),
            watermark,
            heard_at: Some(1),
            last_error: error.map(str::to_string),
            failures: 0,
        };
        // The journal is at epoch 10 with watermark 8.
        let state = |r: &EdgeRow| edge_state(r, Some(10), 8);
        assert_eq!(state(&row(Some(10), 8, None)), "caught_up");
        assert_eq!(state(&row(Some(10), 10, None)), "caught_up");
        assert_eq!(state(&row(Some(10), 11, None)), "watermark_ahead");
        assert_eq!(state(&row(Some(3), 1_000, None)), "watermark_ahead");
        assert_eq!(state(&row(Some(11), 0, None)), "edge_ahead");
        assert_eq!(state(&row(Some(10), 7, None)), "behind");
        assert_eq!(state(&row(Some(9), 8, None)), "behind");
        assert_eq!(state(&row(Some(10), 8, Some("bad"))), "failing");
        assert_eq!(state(&row(None, 0, None)), "behind");
        assert_eq!(state(&EdgeRow::default()), "unknown");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).rev().collect();
        let s = summary(v);
        assert_eq!(s.get("count").and_then(|v| v.as_u64()), Some(100));
        assert_eq!(s.get("p50Ms").and_then(|v| v.as_u64()), Some(50));
        assert_eq!(s.get("p99Ms").and_then(|v| v.as_u64()), Some(99));
        assert_eq!(s.get("maxMs").and_then(|v| v.as_u64()), Some(100));
        assert_eq!(
            summary(vec![7]).get("p99Ms").and_then(|v| v.as_u64()),
            Some(7)
        );
        assert_eq!(
            summary(Vec::new()).get("count").and_then(|v| v.as_u64()),
            Some(0)
        );
    }
}
