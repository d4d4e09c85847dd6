//! `edge-authz replay`: recorded decisions decided again against a model (docs/cli.md, "replay").
use std::path::Path;

use crate::util::run;

use serde_json::{json, Value};

const EXAMPLE: &str = include_str!("../../../../tests/conformance/models/example.json");
/// Before alice's admin assignment expires (1798761600000), and after.
const BEFORE_EXPIRY: u64 = 1_790_000_000_000;
const AFTER_EXPIRY: u64 = 1_798_761_600_001;

/// `replay --json`: its exit code and report.
fn replay(dir: &Path, model: &str, log: &str, more: &[&str]) -> (i32, Value) {
    let mut args = vec!["replay", "--model", model, "--log", log, "--json"];
    args.extend_from_slice(more);
    let out = run(dir, &args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), report)
}

fn example() -> Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn write_json(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// A Worker log line (camelCase keys), with `extra` keys set or replaced.
fn line(subject: &str, action: &str, resource: &str, reason: &str, extra: Value) -> String {
    let mut l = json!({
        "event": "decision", "ts": BEFORE_EXPIRY, "requestId": "r", "tenant": "acme",
        "subject": subject, "action": action, "resource": resource,
        "allowed": reason == "granted", "reason": reason, "epoch": 1, "watermark": 0,
        "tier": "low", "digest": null, "latencyMs": 0,
    });
    for (k, v) in extra.as_object().unwrap() {
        l[k] = v.clone();
    }
    l.to_string()
}

/// The example model with alice's admin assignment removed and bob made a viewer of the roadmap.
fn changed() -> Value {
    let mut m = example();
    let assignments = m["assignments"].as_array_mut().unwrap();
    assignments.retain(|a| a["principal"] != "user:alice");
    assignments.push(json!({"principal": "user:bob", "role": "viewer", "resource": "doc:roadmap"}));
    m
}

#[test]
fn flips_in_both_directions_and_everything_else_counted() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write_json(p, "model.json", &example());
    write_json(p, "changed.json", &changed());
    let old_keys = r#"{"event":"decision","ts":1790000000000.0,"request_id":"old-1","tenant":"acme","subject":"user:alice","action":"export","resource":"workspace:eng","allowed":true,"reason":"granted","epoch":1,"watermark":0,"tier":"high","latency_ms":3}"#;
    let lines = [
        // 1: allowed -> denied (export).
        line("user:alice", "export", "doc:roadmap", "granted", json!({"requestId": "a-1"})),
        // 2: the old key style, allowed -> denied (export).
        old_keys.to_string(),
        // 3: unchanged: alice still reads through group:staff.
        line("user:alice", "read", "doc:roadmap", "granted", json!({})),
        // 4: denied -> allowed (bob's new viewer role).
        line("user:bob", "read", "doc:roadmap", "no_grant", json!({})),
        // 5: not a decision.
        r#"{"event":"sync","ts":1}"#.to_string(),
        // 6: malformed.
        "{not json".to_string(),
        // 7: another tenant.
        line("user:bob", "read", "doc:roadmap", "no_grant", json!({"tenant": "globex"})),
        // 8, 9: answered from no state.
        line("user:bob", "read", "doc:roadmap", "no_snapshot", json!({"epoch": null})),
        line("user:bob", "read", "doc:roadmap", "stale_snapshot", json!({})),
        // 10: a token check.
        line("user:alice", "export", "doc:roadmap", "granted", json!({"token": true})),
        // 11: blank, skipped without a count.
        String::new(),
        // 12: unchanged, with a reason: mallory is suspended either way.
        line("user:mallory", "read", "doc:roadmap", "suspended", json!({})),
        // 13: a decision without its subject.
        r#"{"event":"decision","ts":1,"action":"read","resource":"doc:roadmap","allowed":false,"reason":"no_grant"}"#.to_string(),
    ];
    std::fs::write(p.join("log.jsonl"), lines.join("\n") + "\n").unwrap();

    let (code, r) = replay(p, "changed.json", "log.jsonl", &[]);
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["tenant"], "acme");
    assert_eq!(r["lines"], 12);
    assert_eq!(r["decisions"], 8);
    assert_eq!(r["replayed"], 5);
    assert_eq!(r["flipped"], 3);
    assert_eq!(r["unchanged"], 2);
    assert_eq!(r["revoked"]["count"], 2);
    assert_eq!(r["revoked"]["byAction"]["export"]["count"], 2);
    assert_eq!(r["revoked"]["byReason"]["no_grant"]["count"], 2);
    let ex = &r["revoked"]["byAction"]["export"]["examples"];
    assert_eq!(ex[0]["line"], 1);
    assert_eq!(ex[0]["requestId"], "a-1");
    assert_eq!(ex[0]["before"], "granted");
    assert_eq!(ex[0]["after"], "no_grant");
    assert_eq!(ex[1]["requestId"], "old-1");
    assert_eq!(r["granted"]["count"], 1);
    assert_eq!(r["granted"]["byReason"]["no_grant"]["count"], 1);
    assert_eq!(
        r["granted"]["byAction"]["read"]["examples"][0]["subject"],
        "user:bob"
    );
    assert_eq!(
        r["notReplayable"],
        json!({"no_snapshot": 1, "stale_snapshot": 1, "token_check": 1})
    );
    assert_eq!(r["skipped"], json!({"notDecisions": 1, "otherTenant": 1}));
    assert_eq!(r["malformed"], 2);
    let bad: Vec<&Value> = r["malformedLines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["line"])
        .collect();
    assert_eq!(bad, [&json!(6), &json!(13)]);
    assert!(r.get("digest").is_none());

    // The same log against the model it was recorded under: nothing flips.
    let (code, r) = replay(p, "model.json", "log.jsonl", &[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["flipped"], 0);

    // --examples bounds the examples kept per group, not the counts.
    let (_, r) = replay(p, "changed.json", "log.jsonl", &["--examples", "1"]);
    assert_eq!(r["revoked"]["byAction"]["export"]["count"], 2);
    assert_eq!(
        r["revoked"]["byAction"]["export"]["examples"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The text report, and the malformed lines named on standard error.
    let out = run(
        p,
        &["replay", "--model", "changed.json", "--log", "log.jsonl"],
    );
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 flipped (2 allowed -> denied, 1 denied -> allowed)"),
        "{text}"
    );
    assert!(
        text.contains("line 1: user:alice export doc:roadmap"),
        "{text}"
    );
    assert!(text.contains("not replayable: 3"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("log.jsonl:6: not JSON"), "{err}");
    assert!(err.contains("log.jsonl:13:"), "{err}");
}

#[test]
fn decides_at_the_recorded_time_with_the_recorded_context() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let mut m = example();
    m["conditions"] = json!({"office": {"attr": "ip", "op": "in_cidr", "value": ["10.0.0.0/8"]}});
    m["assignments"]
        .as_array_mut()
        .unwrap()
        .push(json!({"principal": "user:carol", "role": "viewer", "resource": "org:acme", "when": "office"}));
    write_json(p, "model.json", &m);
    let mut moved = m.clone();
    moved["conditions"]["office"]["value"] = json!(["192.168.0.0/16"]);
    write_json(p, "moved.json", &moved);
    let lines = [
        // Recorded before expiry: granted, and still granted at its ts.
        line("user:alice", "export", "doc:roadmap", "granted", json!({})),
        // Its ts after the expiry: alice's admin is gone then.
        line(
            "user:alice",
            "export",
            "doc:roadmap",
            "granted",
            json!({"ts": AFTER_EXPIRY}),
        ),
        // Its context's now after the expiry wins over its ts.
        line(
            "user:alice",
            "export",
            "doc:roadmap",
            "granted",
            json!({"context": {"now": AFTER_EXPIRY}}),
        ),
        // Carol from the office, with the attribute the condition tests.
        line(
            "user:carol",
            "read",
            "doc:roadmap",
            "granted",
            json!({"context": {"ip": "10.1.2.3"}}),
        ),
    ];
    std::fs::write(p.join("log.jsonl"), lines.join("\n")).unwrap();
    let (code, r) = replay(p, "model.json", "log.jsonl", &[]);
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["flipped"], 2);
    let ex = &r["revoked"]["byAction"]["export"]["examples"];
    assert_eq!(ex[0]["line"], 2);
    assert_eq!(ex[0]["at"], AFTER_EXPIRY);
    assert_eq!(ex[1]["line"], 3);
    assert_eq!(ex[1]["context"], json!({"now": AFTER_EXPIRY}));
    // With the office moved, carol's recorded request fails its condition.
    let (_, r) = replay(p, "moved.json", "log.jsonl", &[]);
    assert_eq!(r["revoked"]["byReason"]["condition_failed"]["count"], 1);
    assert_eq!(
        r["revoked"]["byReason"]["condition_failed"]["examples"][0]["context"],
        json!({"ip": "10.1.2.3"})
    );
}

#[test]
fn digest_notes_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write_json(p, "model.json", &example());
    write_json(p, "changed.json", &changed());
    let status = run(p, &["status", "--model", "model.json"]);
    assert!(status.status.success());
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let digest = status["digest"].as_str().unwrap().to_string();
    let lines = [
        line(
            "user:alice",
            "export",
            "doc:roadmap",
            "granted",
            json!({"digest": digest}),
        ),
        line(
            "user:bob",
            "read",
            "doc:roadmap",
            "no_grant",
            json!({"digest": digest}),
        ),
    ];
    std::fs::write(p.join("log.jsonl"), lines.join("\n")).unwrap();
    let (code, r) = replay(p, "model.json", "log.jsonl", &["--digest"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        r["digest"],
        json!({"model": digest, "same": 2, "other": 0, "none": 0, "sameState": true, "flipsAtSame": 0})
    );
    let out = run(
        p,
        &[
            "replay",
            "--model",
            "model.json",
            "--log",
            "log.jsonl",
            "--digest",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("same state"));
    // Another model: another digest, and the flips.
    let (code, r) = replay(p, "changed.json", "log.jsonl", &["--digest"]);
    assert_eq!(code, 2);
    assert_eq!(r["digest"]["other"], 2);
    assert_eq!(r["digest"]["sameState"], false);
}

#[test]
fn input_errors_exit_1_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write_json(p, "model.json", &example());
    std::fs::write(p.join("log.jsonl"), "").unwrap();
    std::fs::write(p.join("bad.json"), r#"{"version": 1}"#).unwrap();
    for (args, needle) in [
        (
            vec!["replay", "--model", "missing.json", "--log", "log.jsonl"],
            "[io_error]",
        ),
        (
            vec!["replay", "--model", "model.json", "--log", "missing.jsonl"],
            "[io_error]",
        ),
        (
            vec!["replay", "--model", "bad.json", "--log", "log.jsonl"],
            "[invalid_model",
        ),
        (vec!["replay", "--log", "log.jsonl"], "--model"),
    ] {
        let out = run(p, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // An empty log: nothing to replay, nothing flips.
    let (code, r) = replay(p, "model.json", "log.jsonl", &[]);
    assert_eq!(code, 0);
    assert_eq!(r["decisions"], 0);
}
