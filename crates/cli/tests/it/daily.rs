//! The command line as a daily tool: `explain`, `--fail-on-deny`, `--json-errors`, times in
//! RFC 3339, the freshness hint, a closed pipe, help with examples, completions and the man page.
use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use crate::util::{bin, run, run_with_stdin, stderr, stdout};

use serde_json::{json, Value};

/// A model with every kind of near miss for `user:bob export doc:q3`: an expired direct grant, a
/// group role without the action, the action on another document, a group bob is not in; a
/// condition for carol; a suspended group for mal.
const MODEL: &str = r#"{"version": 1, "tenant": "acme",
 "actions": {"read": {"tier": "low"}, "write": {"tier": "standard"},
             "export": {"tier": "high", "requires": ["office"]}},
 "roles": {"viewer": ["read"], "editor": ["read", "write"], "exporter": ["read", "export"]},
 "conditions": {"office": {"attr": "ip", "op": "in_cidr", "value": "10.0.0.0/8"}},
 "resources": [{"id": "org:acme"}, {"id": "workspace:eng", "parent": "org:acme"},
               {"id": "doc:q3", "parent": "workspace:eng"}, {"id": "doc:other", "parent": "org:acme"}],
 "memberships": [{"member": "user:bob", "group": "group:eng"},
                 {"member": "user:mal", "group": "group:contractors"},
                 {"member": "user:fin", "group": "group:finance"}],
 "assignments": [
  {"principal": "group:eng", "role": "editor", "resource": "workspace:eng"},
  {"principal": "user:bob", "role": "exporter", "resource": "doc:q3", "expires_at": 1000},
  {"principal": "user:bob", "role": "exporter", "resource": "doc:other"},
  {"principal": "group:finance", "role": "exporter", "resource": "org:acme"},
  {"principal": "user:carol", "role": "exporter", "resource": "doc:q3"},
  {"principal": "group:contractors", "role": "viewer", "resource": "org:acme"}],
 "suspended": ["group:contractors"]}"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.json"), MODEL).unwrap();
    dir
}

fn explain(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["explain", "--model", "m.json", "--json", "--now", "5000"];
    all.extend(args);
    let out = run(dir, &all);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kinds(why: &Value) -> Vec<&str> {
    why["misses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect()
}

#[test]
fn explain_names_every_near_miss_of_a_denial() {
    let dir = setup();
    let p = dir.path();
    let why = explain(
        p,
        &[
            "--context",
            r#"{"ip": "10.1.2.3"}"#,
            "user:bob",
            "export",
            "doc:q3",
        ],
    );
    assert_eq!(why["decision"]["reason"], "no_grant");
    assert_eq!(why["gate"], 12);
    assert_eq!(
        kinds(&why),
        [
            "expired",
            "role_lacks_action",
            "other_resource",
            "not_member"
        ]
    );
    let m = &why["misses"];
    assert_eq!(m[0]["expiresAt"], 1000);
    assert_eq!(
        (&m[1]["principal"], &m[1]["role"], &m[1]["resource"]),
        (
            &json!("group:eng"),
            &json!("editor"),
            &json!("workspace:eng")
        )
    );
    assert_eq!(m[1]["path"], json!(["user:bob", "group:eng"]));
    assert_eq!(m[1]["actions"], json!(["read", "write"]));
    assert_eq!(m[2]["resource"], "doc:other");
    // Only groups are offered to join; carol's own assignment is not a miss of bob's.
    assert_eq!(m[3]["principal"], "group:finance");
    assert_eq!(m.as_array().unwrap().len(), 4);

    // Before the expiry, the same assignment grants, and every grant path is listed.
    let why = explain(
        p,
        &[
            "--context",
            r#"{"ip": "10.1.2.3", "now": 500}"#,
            "user:bob",
            "export",
            "doc:q3",
        ],
    );
    assert_eq!(why["decision"]["allowed"], true);
    assert_eq!(why["gate"], 10);
    assert_eq!(why["grants"][0], why["decision"]["grant"]);
    assert_eq!(why["misses"], json!([]));

    // In words, for a code review.
    let out = run(
        p,
        &[
            "explain",
            "--model",
            "m.json",
            "--now",
            "1970-01-01T00:00:05Z",
            "--context",
            r#"{"ip": "10.1.2.3"}"#,
            "user:bob",
            "export",
            "doc:q3",
        ],
    );
    let text = stdout(&out);
    assert!(text.starts_with("user:bob may not export doc:q3 (no_grant, gate 12"));
    for needle in [
        "group:eng holds editor on workspace:eng (user:bob > group:eng), which lacks export",
        "until it expired at 1970-01-01T00:00:01.000Z",
        "group:finance holds exporter on org:acme, which has export; user:bob is not in group:finance",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
}

#[test]
fn explain_names_failed_conditions_suspensions_and_typos() {
    let dir = setup();
    let p = dir.path();
    let why = explain(p, &["user:carol", "export", "doc:q3"]);
    assert_eq!(why["decision"]["reason"], "condition_failed");
    assert_eq!(kinds(&why)[0], "condition_failed");
    assert_eq!(why["misses"][0]["conditions"], json!(["office"]));
    assert_eq!(why["misses"][0]["missing"], json!(["ip"]));
    let words = stdout(&run(
        p,
        &[
            "explain",
            "--model",
            "m.json",
            "user:carol",
            "export",
            "doc:q3",
        ],
    ));
    assert!(
        words.contains("but condition `office` failed: attribute `ip` missing"),
        "{words}"
    );

    let why = explain(p, &["user:mal", "read", "doc:q3"]);
    assert_eq!(why["decision"]["reason"], "suspended");
    assert_eq!(kinds(&why), ["suspended"]);
    assert_eq!(
        why["misses"][0]["path"],
        json!(["user:mal", "group:contractors"])
    );

    let why = explain(p, &["user:bbo", "read", "doc:q3"]);
    assert_eq!(kinds(&why)[0], "unknown_subject");
    let words = stdout(&run(
        p,
        &["explain", "--model", "m.json", "user:bbo", "read", "doc:q3"],
    ));
    assert!(words.contains("did you mean user:bob?"), "{words}");
    let words = stdout(&run(
        p,
        &["explain", "--model", "m.json", "user:bob", "read", "doc:q4"],
    ));
    assert!(words.contains("did you mean doc:q3?"), "{words}");
    let words = stdout(&run(
        p,
        &[
            "explain", "--model", "m.json", "user:bob", "expor", "doc:q3",
        ],
    ));
    assert!(
        words.contains("its actions: export, read, write"),
        "{words}"
    );
}

/// A signed snapshot of MODEL issued at 1,000,000 ms, with its public key.
fn signed(p: &Path) {
    assert!(run(p, &["keygen", "--out-dir", "keys"]).status.success());
    let out = run(
        p,
        &[
            "compile",
            "m.json",
            "--epoch",
            "3",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "snap.bin",
            "--issued-at",
            "1000000",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_old_snapshot_answers_with_a_hint_and_now_takes_rfc3339() {
    let dir = setup();
    let p = dir.path();
    signed(p);
    let src = ["--snapshot", "snap.bin", "--public-key", "keys/origin.pub"];
    let check = |now: Option<&str>| {
        let mut args = vec!["check"];
        args.extend(src);
        if let Some(n) = now {
            args.extend(["--now", n]);
        }
        args.extend(["user:bob", "read", "doc:other"]);
        run(p, &args)
    };
    // On this host's clock the snapshot is decades old: refused, with what to do about it.
    let late = check(None);
    assert_eq!(late.status.code(), Some(0));
    let d: Value = serde_json::from_slice(&late.stdout).unwrap();
    assert_eq!(d["reason"], "freshness_exceeded");
    let hint = stderr(&late);
    assert!(hint.starts_with("hint: "), "{hint}");
    assert!(
        hint.contains("confirmed by the origin at 1970-01-01T00:16:40.000Z (1000000)"),
        "{hint}"
    );
    assert!(hint.contains("--now 1970-01-01T00:16:40.000Z"), "{hint}");
    // The time the hint names, in either form, answers from the snapshot.
    for now in [
        "1970-01-01T00:16:40.000Z",
        "1000000",
        "1970-01-01T01:16:40+01:00",
    ] {
        let out = check(Some(now));
        let d: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(d["reason"], "granted", "--now {now}");
        assert_eq!(stderr(&out), "", "--now {now}");
    }
    let bad = check(Some("yesterday"));
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("RFC 3339"), "{}", stderr(&bad));
}

#[test]
fn fail_on_deny_exits_2_on_any_denial() {
    let dir = setup();
    let p = dir.path();
    let one = |s: &str, flag: bool| {
        let mut args = vec!["check", "--model", "m.json", s, "read", "doc:other"];
        if flag {
            args.push("--fail-on-deny");
        }
        run(p, &args).status.code()
    };
    assert_eq!(one("user:bob", true), Some(0));
    assert_eq!(one("user:nobody", true), Some(2));
    assert_eq!(one("user:nobody", false), Some(0));
    let batch = |lines: &str| {
        let args = [
            "check",
            "--model",
            "m.json",
            "--requests",
            "-",
            "--fail-on-deny",
        ];
        let out = run_with_stdin(p, &args, lines.as_bytes());
        (out.status.code(), stdout(&out).lines().count())
    };
    assert_eq!(
        batch("[\"user:bob\",\"read\",\"doc:other\"]\n"),
        (Some(0), 1)
    );
    // Every decision is printed, and the run fails.
    assert_eq!(
        batch("[\"user:bob\",\"read\",\"doc:other\"]\n[\"user:x\",\"read\",\"doc:other\"]\n[\"user:bob\",\"read\",\"doc:other\"]\n"),
        (Some(2), 3)
    );
}

#[test]
fn json_errors_carry_a_stable_code() {
    let dir = setup();
    let p = dir.path();
    let error = |args: &[&str]| -> Value {
        let out = run(p, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(stdout(&out), "", "{args:?}");
        let e: Value = serde_json::from_str(stderr(&out).trim())
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stderr(&out)));
        e["error"].clone()
    };
    let e = error(&[
        "--json-errors",
        "check",
        "--model",
        "nope.json",
        "a:b",
        "read",
        "c:d",
    ]);
    assert_eq!(e["code"], "io_error");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("cannot read `nope.json`"));
    let e = error(&["check", "--model", "m.json", "a:b", "--json-errors"]);
    assert_eq!(e["code"], "usage");
    assert!(e["message"].as_str().unwrap().contains("<RESOURCE>"), "{e}");
    let e = error(&["chek", "--json-errors"]);
    assert_eq!(e["code"], "usage");
    std::fs::write(p.join("cycle.json"), MODEL.replace(
        r#"{"member": "user:fin", "group": "group:finance"}"#,
        r#"{"member": "group:finance", "group": "group:eng"}, {"member": "group:eng", "group": "group:finance"}"#,
    ))
    .unwrap();
    let e = error(&["--json-errors", "validate", "cycle.json"]);
    assert_eq!(e["code"], "invalid_model");
    assert_eq!(e["detail"], "group_cycle");
    assert!(!e["message"].as_str().unwrap().ends_with(']'), "{e}");
    // Without the flag: one line of text with the code.
    let out = run(p, &["validate", "cycle.json"]);
    let text = stderr(&out);
    assert!(
        text.starts_with("error: ") && text.trim_end().ends_with("[invalid_model/group_cycle]"),
        "{text}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    for args in [
        vec!["workload", "--users", "20000"],
        vec!["completions", "bash"],
        vec!["man"],
    ] {
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_closed_standard_error_costs_the_message_not_a_panic() {
    let dir = setup();
    let p = dir.path();
    signed(p);
    // The snapshot is decades old on this host's clock: `check` writes a hint on stderr.
    let mut child = bin()
        .current_dir(p)
        .args([
            "check",
            "--snapshot",
            "snap.bin",
            "--public-key",
            "keys/origin.pub",
        ])
        .args(["user:bob", "read", "doc:other"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["reason"], "freshness_exceeded");
}

#[test]
fn help_shows_examples() {
    // Every command's (checked on the definitions by the binary's unit test); here, as printed.
    for c in ["check", "explain", "test", "completions"] {
        let help = stdout(&run(Path::new("."), &[c, "--help"]));
        assert!(
            help.contains("\nExamples:\n  edge-authz "),
            "`{c} --help`:\n{help}"
        );
    }
}

#[test]
fn completions_and_man_page_come_from_the_definitions() {
    let p = Path::new(".");
    for (shell, needle) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef edge-authz"),
        ("fish", "complete -c edge-authz"),
    ] {
        let out = run(p, &["completions", shell]);
        assert!(out.status.success());
        let text = stdout(&out);
        assert!(text.contains(needle), "{shell}");
        assert!(
            text.contains("explain") && text.contains("fail-on-deny"),
            "{shell}"
        );
    }
    let man = stdout(&run(p, &["man"]));
    assert!(
        man.starts_with(".ie") || man.contains(".TH edge-authz"),
        "{}",
        &man[..200.min(man.len())]
    );
    for c in ["explain", "check", "impact", "replay", "test"] {
        assert!(man.contains(c), "the man page names {c}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["man", "--out-dir", "man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("man/edge-authz.1").exists());
    assert!(dir.path().join("man/edge-authz-check.1").exists());
}
