//! `edge-authz impact`, run as a process: the flips, the grants lost and gained, the exit codes
//! (0, 2 when something is revoked, 1 with a code on bad input), `--now`, `--context`, and the
//! reach it compares equal to `--exhaustive`.
use std::path::Path;

use crate::util::run;

use serde_json::{json, Value};

/// Before the example's expiry of alice's admin (2027-01-01).
const NOW: &str = "2026-06-01T00:00:00Z";

fn example() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/conformance/models/example.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn setup(old: &Value, new: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.json"), old.to_string()).unwrap();
    std::fs::write(dir.path().join("new.json"), new.to_string()).unwrap();
    dir
}

/// `impact --json old.json new.json`: its exit code and report.
fn report(old: &Value, new: &Value, extra: &[&str]) -> (i32, Value) {
    let dir = setup(old, new);
    let mut args = vec!["impact", "--json", "old.json", "new.json"];
    args.extend(extra);
    if !extra.contains(&"--now") {
        args.extend(["--now", NOW]);
    }
    let out = run(dir.path(), &args);
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 2,
        "{args:?}: exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

fn text(old: &Value, new: &Value, extra: &[&str]) -> (i32, String) {
    let dir = setup(old, new);
    let mut args = vec!["impact", "--now", NOW, "old.json", "new.json"];
    args.extend(extra);
    let out = run(dir.path(), &args);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn fails(dir: &Path, args: &[&str], needle: &str) {
    let out = run(dir, args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: `{err}` lacks `{needle}`");
}

fn triples(flips: &Value) -> Vec<String> {
    flips
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}", f["subject"], f["action"], f["resource"]).replace('"', ""))
        .collect()
}

#[test]
fn no_change_exits_0_with_nothing() {
    let m = example();
    let (code, r) = report(&m, &m, &[]);
    assert_eq!(code, 0);
    assert_eq!(r["tenant"], "acme");
    assert_eq!(r["revoked"], json!([]));
    assert_eq!(r["granted"], json!([]));
    assert_eq!(
        r["counts"],
        json!({"revoked": 0, "granted": 0, "subjects": 0})
    );
    assert_eq!(r["notes"], json!([]));
    let (code, t) = text(&m, &m, &[]);
    assert_eq!(code, 0);
    assert!(t.contains("0 revoked, 0 granted"), "{t}");
}

#[test]
fn a_revocation_exits_2_with_the_grant_lost() {
    let old = example();
    let mut new = old.clone();
    // alice leaves group:eng: her read on org:acme came through group:eng > group:staff.
    new["memberships"] = json!([{ "member": "group:eng", "group": "group:staff" }]);
    let (code, r) = report(&old, &new, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        r["revoked"],
        json!([{
            "subject": "user:alice", "action": "read", "resource": "org:acme",
            "grant": { "principal": "group:staff", "role": "viewer", "resource": "org:acme",
                       "path": ["user:alice", "group:eng", "group:staff"] },
            "reason": "no_grant"
        }])
    );
    assert_eq!(r["granted"], json!([]));
    assert_eq!(
        r["counts"],
        json!({"revoked": 1, "granted": 0, "subjects": 1})
    );
    let (code, t) = text(&old, &new, &[]);
    assert_eq!(code, 2);
    assert!(
        t.contains(
            "REVOKED user:alice read org:acme (was: group:staff viewer on org:acme via \
             user:alice > group:eng > group:staff; now: no_grant)"
        ),
        "{t}"
    );
    let (_, t) = text(&old, &new, &["--group-by", "grant"]);
    assert!(
        t.contains("lost: group:staff viewer on org:acme (1 decision)"),
        "{t}"
    );
}

#[test]
fn a_grant_only_exits_0_with_the_grant_gained() {
    let old = example();
    let mut new = old.clone();
    new["assignments"].as_array_mut().unwrap().push(
        json!({ "principal": "user:bob", "role": "editor", "resource": "doc:roadmap", "expires_at": 4070908800000u64 }),
    );
    let (code, r) = report(&old, &new, &[]);
    assert_eq!(code, 0);
    assert_eq!(r["revoked"], json!([]));
    assert_eq!(
        triples(&r["granted"]),
        ["user:bob read doc:roadmap", "user:bob write doc:roadmap"]
    );
    assert_eq!(
        r["granted"][0]["grant"],
        json!({ "principal": "user:bob", "role": "editor", "resource": "doc:roadmap",
                "path": ["user:bob"], "expiresAt": 4070908800000u64 })
    );
    assert_eq!(r["granted"][0]["reason"], "no_grant");
    let (code, t) = text(&old, &new, &[]);
    assert_eq!(code, 0);
    assert!(
        t.contains(
            "GRANTED user:bob write doc:roadmap (now: user:bob editor on doc:roadmap until \
             2099-01-01T00:00:00.000Z; was: no_grant)"
        ),
        "{t}"
    );
}

#[test]
fn suspensions_removed_resources_and_actions_are_revocations() {
    let old = example();
    // Suspending group:eng suspends alice (inherited): everything she had.
    let mut new = old.clone();
    new["suspended"] = json!(["user:mallory", "group:eng"]);
    let (code, r) = report(&old, &new, &[]);
    assert_eq!(code, 2);
    assert_eq!(r["counts"]["revoked"], 7, "{r}");
    assert!(r["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["subject"] == "user:alice" && f["reason"] == "suspended"));
    // A resource removed: everything on it.
    let mut new = old.clone();
    new["resources"] =
        json!([{ "id": "org:acme" }, { "id": "workspace:eng", "parent": "org:acme" }]);
    let (code, r) = report(&old, &new, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        triples(&r["revoked"]),
        [
            "user:alice export doc:roadmap",
            "user:alice read doc:roadmap",
            "user:alice write doc:roadmap"
        ]
    );
    assert!(r["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["reason"] == "unknown_resource"));
    // An action removed: everything with it.
    let mut new = old.clone();
    new["actions"].as_object_mut().unwrap().remove("export");
    new["roles"]["admin"] = json!(["read", "write"]);
    let (code, r) = report(&old, &new, &[]);
    assert_eq!(code, 2);
    assert_eq!(
        triples(&r["revoked"]),
        [
            "user:alice export doc:roadmap",
            "user:alice export workspace:eng"
        ]
    );
    assert_eq!(r["revoked"][0]["reason"], "unknown_action");
}

#[test]
fn expiry_is_judged_at_now() {
    let old = example();
    let mut new = old.clone();
    // Bob's editor on the roadmap for June 2026 only.
    new["assignments"].as_array_mut().unwrap().push(json!({
        "principal": "user:bob", "role": "editor", "resource": "doc:roadmap",
        "expires_at": 1_782_864_000_000u64 // 2026-07-01
    }));
    let (_, r) = report(&old, &new, &["--now", "2026-06-15T00:00:00Z"]);
    assert_eq!(r["counts"]["granted"], 2);
    assert_eq!(r["now"], 1_781_481_600_000u64);
    let (_, r) = report(&old, &new, &["--now", "1782864000000"]);
    assert_eq!(r["counts"]["granted"], 0, "expired at its expires_at");
    // Alice's admin expires on 2027-01-01: moving the expiry earlier revokes only after then.
    let mut sooner = old.clone();
    sooner["assignments"][1]["expires_at"] = json!(1_782_864_000_000u64);
    let (code, _) = report(&old, &sooner, &["--now", "2026-06-15T00:00:00Z"]);
    assert_eq!(code, 0);
    let (code, r) = report(&old, &sooner, &["--now", "2026-08-01T00:00:00Z"]);
    assert_eq!(code, 2);
    // Write and export on both; her read still comes through group:staff.
    assert_eq!(
        triples(&r["revoked"]),
        [
            "user:alice export doc:roadmap",
            "user:alice write doc:roadmap",
            "user:alice export workspace:eng",
            "user:alice write workspace:eng"
        ]
    );
}

#[test]
fn conditions_are_decided_with_the_context() {
    let mut old = example();
    old["conditions"] =
        json!({ "office": { "attr": "ip", "op": "in_cidr", "value": ["10.0.0.0/8"] } });
    let mut new = old.clone();
    new["assignments"][0]["when"] = json!("office");
    // Without the attribute the condition fails: everyone's read through group:staff is lost.
    let (code, r) = report(&old, &new, &[]);
    assert_eq!(code, 2);
    assert_eq!(r["revoked"][0]["reason"], "condition_failed");
    // From the office it holds: nothing flips.
    let (code, r) = report(&old, &new, &["--context", r#"{"ip": "10.1.2.3"}"#]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["counts"]["revoked"], 0);
    // And a gained grant with a condition names it.
    let (_, r) = report(&new, &old, &[]);
    assert_eq!(r["granted"][0]["grant"].get("when"), None);
    let (_, r) = report(&old, &new, &["--context", r#"{"ip": "10.1.2.3"}"#]);
    assert_eq!(r["granted"], json!([]));
}

#[test]
fn what_it_cannot_decide_is_noted() {
    let old = example();
    let mut new = old.clone();
    new["freshness"]["high"] = json!(1000);
    new["sessions"] = json!({ "not_before": { "user:bob": 1_700_000_000_000u64 } });
    let (code, r) = report(&old, &new, &[]);
    assert_eq!(code, 0);
    assert_eq!(r["notes"], json!(["identity_changed", "freshness_changed"]));
    let (_, t) = text(&old, &new, &[]);
    assert!(
        t.contains("[identity_changed]") && t.contains("[freshness_changed]"),
        "{t}"
    );
}

#[test]
fn bad_input_exits_1_with_a_code() {
    let old = example();
    let mut other = old.clone();
    other["tenant"] = json!("globex");
    let dir = setup(&old, &other);
    let p = dir.path();
    fails(p, &["impact", "old.json", "new.json"], "[tenant_mismatch]");
    fails(p, &["impact", "old.json", "missing.json"], "[io_error]");
    std::fs::write(
        p.join("bad.json"),
        r#"{"version": 1, "tenant": "acme", "roles": {"r": ["nope"]}}"#,
    )
    .unwrap();
    fails(
        p,
        &["impact", "bad.json", "old.json"],
        "[invalid_model/undeclared_action]",
    );
    std::fs::write(p.join("junk.json"), "not json").unwrap();
    fails(
        p,
        &["impact", "old.json", "junk.json"],
        "[invalid_model/invalid_json]",
    );
    for context in ["[1]", "{", r#"{"now": 5}"#, r#"{"Bad": 1}"#] {
        fails(
            p,
            &["impact", "old.json", "old.json", "--context", context],
            "[invalid_context]",
        );
    }
    fails(
        p,
        &["impact", "old.json", "old.json", "--now", "yesterday"],
        "RFC 3339",
    );
    fails(p, &["impact", "old.json"], "NEW");
}

/// Edits of a generated workload (nested groups, several roles): the reach found from the
/// differences gives what comparing every action on every resource gives.
#[test]
fn the_reach_equals_the_exhaustive_comparison() {
    let out = run(
        Path::new("."),
        &[
            "workload",
            "--users",
            "60",
            "--groups",
            "12",
            "--assignments",
            "80",
            "--big-group",
            "15",
            "--docs-per-project",
            "1",
        ],
    );
    let base: Value = serde_json::from_slice(&out.stdout).unwrap();
    type Edit = fn(&mut Value);
    let edits: [(&str, Edit); 5] = [
        (
            "memberships",
            (|m: &mut Value| {
                let ms = m["memberships"].as_array_mut().unwrap();
                let (group, member) = (ms[0]["group"].clone(), ms[3]["member"].clone());
                ms.retain(|x| x["group"] != group && x["member"] != member);
            }),
        ),
        (
            "assignments",
            (|m: &mut Value| {
                let a = m["assignments"].as_array_mut().unwrap();
                a.drain(0..10);
                a[0]["expires_at"] = json!(1_700_000_000_000u64);
            }),
        ),
        (
            "suspension",
            (|m: &mut Value| {
                let g = m["memberships"][0]["group"].clone();
                m["suspended"] = json!([g, "user:u7"]);
            }),
        ),
        (
            "roles",
            (|m: &mut Value| {
                let roles = m["roles"].as_object_mut().unwrap();
                let first = roles.keys().next().unwrap().clone();
                roles[&first] = json!(["read"]);
            }),
        ),
        (
            "resources",
            (|m: &mut Value| {
                let rs = m["resources"].as_array_mut().unwrap();
                let last = rs.len() - 1;
                rs[last]["parent"] = rs[1]["id"].clone();
            }),
        ),
    ];
    for (label, edit) in &edits {
        let mut new = base.clone();
        edit(&mut new);
        let (code, fast) = report(&base, &new, &[]);
        let (_, slow) = report(&base, &new, &["--exhaustive"]);
        assert_eq!(fast, slow, "{label}");
        assert!(
            fast["counts"]["revoked"].as_u64().unwrap()
                + fast["counts"]["granted"].as_u64().unwrap()
                > 0,
            "{label}: {}",
            fast["counts"]
        );
        // Both directions: grants are the revocations the other way round.
        let (_, back) = report(&new, &base, &[]);
        assert_eq!(
            triples(&back["granted"]),
            triples(&fast["revoked"]),
            "{label}"
        );
        assert_eq!(code == 2, !fast["revoked"].as_array().unwrap().is_empty());
    }
}
