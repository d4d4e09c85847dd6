//! `edge-authz replay --model NEW.json --log DECISIONS.jsonl`: every recorded decision decided
//! again against a model, and the ones that flip (docs/cli.md, "replay"). Exit code 2 when a
//! decision flips, so that a policy change can be gated on what production actually asked.
//!
//! The log is the Worker's decision log (docs/worker.md, "Decision logs") or the npm package's
//! `onDecision` entries, one JSON object per line. Each decision is decided by a preview of the
//! model at its recorded time (the context's `now` when it names one, else the line's `ts`) with
//! its recorded context. Decisions that no state answered (`no_snapshot`, `stale_snapshot`,
//! `pending`, `freshness_exceeded`, `invalid_request`, the token gate's reasons) and token checks
//! are counted as not replayable rather than decided again; lines of another tenant are skipped
//! and counted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use edge_authz::{content_digest, Evaluator, Reason, Request};
use edge_authz_protocol::{read_context, MAX_NOW};
use serde::Serialize;
use serde_json::Value;

use crate::{load_model, print_json, Fail, MAX_LINE};

#[derive(Args)]
pub struct ReplayArgs {
    /// The model to decide the recorded requests with (JSON, as `validate` takes it).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The decision log: JSON lines (`-`: standard input). Lines that are not decision events
    /// are skipped; a malformed line is reported with its number and skipped.
    #[arg(long, value_name = "FILE")]
    log: String,
    /// Examples kept per group of flips (by action, by reason).
    #[arg(long, value_name = "N", default_value_t = 3)]
    examples: usize,
    /// Compare each line's `digest` with the model's content digest: a log recorded at this
    /// very state is noted "same state" (and should show no flips).
    #[arg(long)]
    digest: bool,
    /// Print the report as JSON (camelCase keys).
    #[arg(long)]
    json: bool,
}

/// The reasons of decisions that no held state answered: replay does not decide them again.
const NOT_REPLAYABLE: [Reason; 8] = [
    Reason::NoSnapshot,
    Reason::StaleSnapshot,
    Reason::Pending,
    Reason::FreshnessExceeded,
    Reason::InvalidRequest,
    Reason::TokenInvalid,
    Reason::TokenExpired,
    Reason::SessionRevoked,
];

/// Where a token check is counted among the not replayable decisions.
const TOKEN_CHECK: &str = "token_check";

/// Malformed lines listed in the report (all are counted).
const MALFORMED_LISTED: usize = 20;

/// One recorded decision, as read from a line.
struct Recorded {
    line: usize,
    request_id: Option<String>,
    ts: u64,
    tenant: Option<String>,
    subject: String,
    action: String,
    resource: String,
    context: Option<Value>,
    allowed: bool,
    reason: Reason,
    digest: Option<String>,
    token: bool,
}

/// A flip, as the report shows it.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Example {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    /// The time the request was decided again at (Unix ms).
    at: u64,
    subject: String,
    action: String,
    resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Value>,
    /// The recorded reason.
    before: &'static str,
    /// The reason the model gives.
    after: &'static str,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Group {
    count: usize,
    examples: Vec<Example>,
}

/// The flips of one direction.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Flips {
    count: usize,
    by_action: BTreeMap<String, Group>,
    /// By the denying side's reason: the model's for allowed→denied, the recorded one for
    /// denied→allowed.
    by_reason: BTreeMap<&'static str, Group>,
}

impl Flips {
    fn add(&mut self, ex: Example, reason: &'static str, keep: usize) {
        self.count += 1;
        for g in [
            self.by_action.entry(ex.action.clone()).or_default(),
            self.by_reason.entry(reason).or_default(),
        ] {
            g.count += 1;
            if g.examples.len() < keep {
                g.examples.push(ex.clone());
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Malformed {
    line: usize,
    error: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Skipped {
    /// JSON lines that are not decision events.
    not_decisions: usize,
    /// Decisions of another tenant than the model's.
    other_tenant: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DigestReport {
    /// The model's content digest.
    model: String,
    /// Replayed decisions recorded at the model's digest, at another, and with none.
    same: usize,
    other: usize,
    none: usize,
    /// Every replayed decision was recorded at the model's digest.
    same_state: bool,
    /// Flips among the decisions recorded at the model's digest (a faithful log has none).
    flips_at_same: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    tenant: String,
    /// Non-blank lines read.
    lines: usize,
    /// Decision events of the model's tenant.
    decisions: usize,
    replayed: usize,
    /// Replayed decisions with the same outcome (`reasonChanged` of them with another reason).
    unchanged: usize,
    reason_changed: usize,
    /// allowed→denied plus denied→allowed.
    flipped: usize,
    revoked: Flips,
    granted: Flips,
    /// Decisions not decided again, by recorded reason (`token_check`: a token check).
    not_replayable: BTreeMap<String, usize>,
    skipped: Skipped,
    malformed: usize,
    /// The first malformed lines.
    malformed_lines: Vec<Malformed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<DigestReport>,
}

impl Report {
    /// A line that cannot be replayed as read: counted, and the first ones listed (and warned
    /// about on standard error).
    fn note_malformed(&mut self, log: &str, line: usize, error: String) {
        self.malformed += 1;
        if self.malformed_lines.len() < MALFORMED_LISTED {
            eprintln!("warning: {log}:{line}: {error}");
            self.malformed_lines.push(Malformed { line, error });
        }
    }
}

pub fn run(args: ReplayArgs) -> Result<ExitCode, Fail> {
    let (state, _) = load_model(&args.model).map_err(|Fail(m)| {
        if m.ends_with(']') {
            Fail(m)
        } else {
            Fail(format!("{m} [cannot_read]"))
        }
    })?;
    let ev = Evaluator::preview(&state)?;
    let model_digest = args.digest.then(|| content_digest(&state)).transpose()?;
    let mut report = Report {
        tenant: state.tenant.clone(),
        lines: 0,
        decisions: 0,
        replayed: 0,
        unchanged: 0,
        reason_changed: 0,
        flipped: 0,
        revoked: Flips::default(),
        granted: Flips::default(),
        not_replayable: BTreeMap::new(),
        skipped: Skipped::default(),
        malformed: 0,
        malformed_lines: Vec::new(),
        digest: model_digest.map(|model| DigestReport {
            model,
            same: 0,
            other: 0,
            none: 0,
            same_state: false,
            flips_at_same: 0,
        }),
    };
    let mut reader = open(&args.log)?;
    let mut buf = Vec::new();
    let mut number = 0usize;
    while let Some(overlong) = next_line(&mut reader, &mut buf, &args.log)? {
        number += 1;
        let text = std::str::from_utf8(&buf).map(str::trim);
        if matches!(text, Ok("")) {
            continue;
        }
        report.lines += 1;
        let read = match text {
            _ if overlong => Err(format!("longer than {MAX_LINE} bytes")),
            Err(_) => Err("not UTF-8".to_string()),
            Ok(t) => parse_line(t, number),
        };
        let rec = match read {
            Ok(Some(r)) => r,
            Ok(None) => {
                report.skipped.not_decisions += 1;
                continue;
            }
            Err(error) => {
                report.note_malformed(&args.log, number, error);
                continue;
            }
        };
        if rec.tenant.as_deref().is_some_and(|t| t != state.tenant) {
            report.skipped.other_tenant += 1;
            continue;
        }
        replay(&ev, rec, &mut report, &args);
    }
    if report.malformed > MALFORMED_LISTED {
        eprintln!(
            "warning: {}: {} more malformed lines",
            args.log,
            report.malformed - MALFORMED_LISTED
        );
    }
    if let Some(d) = report.digest.as_mut() {
        d.same_state = d.same > 0 && d.same == report.replayed;
    }
    if args.json {
        print_json(&report)?;
    } else {
        crate::emit_bytes(text(&report, &args).as_bytes())?;
    }
    Ok(if report.flipped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn open(log: &str) -> Result<Box<dyn BufRead>, Fail> {
    if log == "-" {
        return Ok(Box::new(io::BufReader::new(io::stdin().lock())));
    }
    let f = fs::File::open(Path::new(log))
        .map_err(|e| Fail(format!("cannot read `{log}`: {e} [io_error]")))?;
    Ok(Box::new(io::BufReader::with_capacity(1 << 16, f)))
}

/// Reads the next line into `buf` (at most [`MAX_LINE`] bytes of it kept): `None` at the end,
/// else whether the line was longer.
fn next_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>, log: &str) -> Result<Option<bool>, Fail> {
    let err = |e: io::Error| Fail(format!("cannot read `{log}`: {e} [io_error]"));
    buf.clear();
    let n = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(err)?;
    if n == 0 {
        return Ok(None);
    }
    let overlong = buf.len() > MAX_LINE;
    if overlong && !buf.ends_with(b"\n") {
        // The rest of the line, skipped without being held.
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let m = (&mut *reader)
                .take(1 << 16)
                .read_until(b'\n', &mut rest)
                .map_err(err)?;
            if m == 0 || rest.ends_with(b"\n") {
                break;
            }
        }
    }
    Ok(Some(overlong))
}

/// A line as a recorded decision: `None` for JSON that is not a decision event, an error for a
/// line that cannot be read. A line with text before its JSON (a log collector's prefix) is read
/// from its `{"event":"decision"`.
fn parse_line(text: &str, line: usize) -> Result<Option<Recorded>, String> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => match text.find(r#"{"event":"decision""#) {
            Some(at) => serde_json::from_str(text.get(at..).unwrap_or_default())
                .map_err(|e| format!("not JSON: {e}"))?,
            None => return Err(format!("not JSON: {e}")),
        },
    };
    let Some(o) = value.as_object() else {
        return Ok(None);
    };
    if o.get("event").and_then(Value::as_str) != Some("decision") {
        return Ok(None);
    }
    let string = |k: &str| -> Result<String, String> {
        o.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("a decision without a string `{k}`"))
    };
    let optional = |keys: &[&str]| -> Result<Option<String>, String> {
        match keys.iter().find_map(|k| o.get(*k)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{}` is not a string", keys.join("` or `"))),
        }
    };
    let ts = o
        .get("ts")
        .and_then(Value::as_f64)
        .filter(|t| t.is_finite() && *t >= 0.0 && *t <= MAX_NOW as f64)
        .ok_or("a decision without a `ts` (Unix ms)")?;
    let allowed = o
        .get("allowed")
        .and_then(Value::as_bool)
        .ok_or("a decision without a boolean `allowed`")?;
    let reason_text = string("reason")?;
    let reason = Reason::ALL
        .into_iter()
        .find(|r| r.as_str() == reason_text)
        .ok_or_else(|| format!("unknown reason `{reason_text}`"))?;
    if allowed != (reason == Reason::Granted) {
        return Err(format!(
            "`allowed` is {allowed} with reason `{reason_text}`"
        ));
    }
    let context = match o.get("context") {
        None | Some(Value::Null) => None,
        Some(c) => Some(c.clone()),
    };
    Ok(Some(Recorded {
        line,
        request_id: optional(&["requestId", "request_id"])?,
        ts: ts as u64,
        tenant: optional(&["tenant"])?,
        subject: string("subject")?,
        action: string("action")?,
        resource: string("resource")?,
        context,
        allowed,
        reason,
        digest: optional(&["digest"])?,
        token: o.get("token").and_then(Value::as_bool) == Some(true),
    }))
}

/// Decides one recorded decision again and counts it.
fn replay(ev: &Evaluator, rec: Recorded, report: &mut Report, args: &ReplayArgs) {
    let not_replayable = if rec.token {
        Some(TOKEN_CHECK)
    } else {
        NOT_REPLAYABLE
            .contains(&rec.reason)
            .then(|| rec.reason.as_str())
    };
    if let Some(why) = not_replayable {
        report.decisions += 1;
        *report.not_replayable.entry(why.to_string()).or_default() += 1;
        return;
    }
    let Ok(context) = read_context(rec.context.as_ref()) else {
        let why = "its `context` is not a context, yet the decision is not `invalid_request`";
        report.note_malformed(&args.log, rec.line, why.to_string());
        return;
    };
    report.decisions += 1;
    let at = context.now.unwrap_or(rec.ts);
    let d = ev.check(
        Request::new(&rec.subject, &rec.action, &rec.resource),
        context.at(at),
    );
    report.replayed += 1;
    let mut same_digest = false;
    if let Some(dr) = report.digest.as_mut() {
        match rec.digest.as_deref() {
            Some(r) if r == dr.model => {
                dr.same += 1;
                same_digest = true;
            }
            Some(_) => dr.other += 1,
            None => dr.none += 1,
        }
    }
    if d.allowed == rec.allowed {
        report.unchanged += 1;
        if d.reason != rec.reason {
            report.reason_changed += 1;
        }
        return;
    }
    report.flipped += 1;
    if same_digest {
        if let Some(dr) = report.digest.as_mut() {
            dr.flips_at_same += 1;
        }
    }
    let ex = Example {
        line: rec.line,
        request_id: rec.request_id,
        at,
        subject: rec.subject,
        action: rec.action,
        resource: rec.resource,
        context: rec.context,
        before: rec.reason.as_str(),
        after: d.reason.as_str(),
    };
    if rec.allowed {
        report.revoked.add(ex, d.reason.as_str(), args.examples);
    } else {
        report.granted.add(ex, rec.reason.as_str(), args.examples);
    }
}

fn counts<K: std::fmt::Display>(groups: &BTreeMap<K, Group>) -> String {
    let mut by: Vec<(&K, &Group)> = groups.iter().collect();
    by.sort_by_key(|g| std::cmp::Reverse(g.1.count));
    by.iter()
        .map(|(k, g)| format!("{k} {}", g.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn example_line(out: &mut String, e: &Example) {
    let _ = write!(
        out,
        "    line {}: {} {} {} at {}",
        e.line,
        e.subject,
        e.action,
        e.resource,
        crate::times::rfc3339(e.at)
    );
    if let Some(c) = &e.context {
        let _ = write!(out, " with {c}");
    }
    if let Some(id) = &e.request_id {
        let _ = write!(out, " (request {id})");
    }
    let _ = writeln!(out, ": {} -> {}", e.before, e.after);
}

fn section(out: &mut String, title: &str, flips: &Flips) {
    if flips.count == 0 {
        return;
    }
    let _ = writeln!(out, "\n{title}: {}", flips.count);
    let _ = writeln!(out, "  by action: {}", counts(&flips.by_action));
    let _ = writeln!(out, "  by reason: {}", counts(&flips.by_reason));
    for (action, g) in &flips.by_action {
        let _ = writeln!(out, "  {action} ({}):", g.count);
        for e in &g.examples {
            example_line(out, e);
        }
    }
    for (reason, g) in &flips.by_reason {
        let _ = writeln!(out, "  {reason} ({}):", g.count);
        for e in &g.examples {
            example_line(out, e);
        }
    }
}

/// The readable report: totals, the flips of each direction, then what was not replayed.
fn text(r: &Report, args: &ReplayArgs) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replay of {} against {} (tenant {}): {} decisions, {} replayed, {} flipped \
         ({} allowed -> denied, {} denied -> allowed), {} unchanged",
        args.log,
        args.model.display(),
        r.tenant,
        r.decisions,
        r.replayed,
        r.flipped,
        r.revoked.count,
        r.granted.count,
        r.unchanged
    );
    if let Some(d) = &r.digest {
        if d.same_state {
            let _ = writeln!(
                out,
                "same state: every replayed decision was recorded at this model's digest {}",
                d.model
            );
        } else {
            let _ = writeln!(
                out,
                "digest {}: {} replayed decisions recorded at it, {} at another, {} without one",
                d.model, d.same, d.other, d.none
            );
        }
        if d.flips_at_same > 0 {
            let _ = writeln!(
                out,
                "note: {} flips among decisions recorded at this very state",
                d.flips_at_same
            );
        }
    }
    section(&mut out, "allowed -> denied", &r.revoked);
    section(&mut out, "denied -> allowed", &r.granted);
    if r.reason_changed > 0 {
        let _ = writeln!(out, "\nsame outcome, another reason: {}", r.reason_changed);
    }
    if !r.not_replayable.is_empty() {
        let total: usize = r.not_replayable.values().sum();
        let by: Vec<String> = r
            .not_replayable
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(out, "\nnot replayable: {total} ({})", by.join(", "));
    }
    let s = &r.skipped;
    if s.not_decisions + s.other_tenant > 0 {
        let _ = writeln!(
            out,
            "skipped: {} lines that are not decisions, {} decisions of other tenants",
            s.not_decisions, s.other_tenant
        );
    }
    if r.malformed > 0 {
        let lines: Vec<String> = r
            .malformed_lines
            .iter()
            .map(|m| m.line.to_string())
            .collect();
        let more = if r.malformed > r.malformed_lines.len() {
            ", ..."
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "malformed: {} ({} {}{more})",
            r.malformed,
            if r.malformed == 1 { "line" } else { "lines" },
            lines.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_key_styles_and_skips_other_events() {
        let new = r#"{"event":"decision","ts":1000,"requestId":"r1","tenant":"acme","subject":"user:a","action":"read","resource":"doc:x","allowed":true,"reason":"granted","epoch":1,"watermark":0,"tier":"low","digest":null,"latencyMs":0}"#;
        let old = r#"{"event":"decision","ts":1000.0,"request_id":"r2","tenant":"acme","subject":"user:a","action":"read","resource":"doc:x","allowed":false,"reason":"no_grant","epoch":1,"watermark":0,"tier":"low","latency_ms":0}"#;
        let r = parse_line(new, 1).ok().flatten();
        assert!(r.is_some_and(|r| r.request_id.as_deref() == Some("r1") && r.allowed));
        let r = parse_line(old, 2).ok().flatten();
        assert!(r.is_some_and(|r| r.request_id.as_deref() == Some("r2") && !r.allowed));
        let prefixed = format!("edge0 log: {new}");
        assert!(parse_line(&prefixed, 3).ok().flatten().is_some());
        assert!(matches!(parse_line(r#"{"event":"sync"}"#, 4), Ok(None)));
        assert!(matches!(parse_line("[1, 2]", 5), Ok(None)));
        assert!(parse_line("{not json", 6).is_err());
        assert!(parse_line(r#"{"event":"decision","ts":1}"#, 7).is_err());
    }
}
