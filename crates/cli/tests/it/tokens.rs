//! `check --token` on the shared cases of tests/tokens/cases.json (tokens signed by the `jose`
//! library): the command line verifies natively and answers each case as the other hosts do.
use std::path::Path;

use serde_json::Value;

fn cases() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/tokens/cases.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs the command line in `dir` with `stdin`; (exit code, stdout JSON or Null, stderr).
fn run(dir: &Path, args: &[&str], stdin: &str) -> (i32, Value, String) {
    let out = crate::util::run_with_stdin(dir, args, stdin.as_bytes());
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        crate::util::stderr(&out),
    )
}

/// A directory with keys and the cases' model compiled at `issued_at`.
fn signed_model(model: &Value, issued_at: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("model.json"), model.to_string()).unwrap();
    assert_eq!(run(p, &["keygen", "--out-dir", "keys"], "").0, 0);
    let at = issued_at.to_string();
    let (code, _, err) = run(
        p,
        &[
            "compile",
            "model.json",
            "--epoch",
            "1",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "snap.bin",
            "--issued-at",
            &at,
            "--force-issued-at",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    dir
}

#[test]
fn every_token_case_is_answered_as_the_cases_say() {
    let all = cases();
    let clock = all["clock"].as_u64().unwrap();
    let dir = signed_model(&all["model"], clock);
    let now = clock.to_string();
    for case in all["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (code, d, err) = run(
            dir.path(),
            &[
                "check",
                "--snapshot",
                "snap.bin",
                "--public-key",
                "keys/origin.pub",
                "--now",
                &now,
                "--token",
                "-",
                case["action"].as_str().unwrap(),
                case["resource"].as_str().unwrap(),
            ],
            case["token"].as_str().unwrap(),
        );
        assert_eq!(code, 0, "{name}: {err}");
        let expect = &case["expect"];
        assert_eq!(d["reason"], expect["reason"], "{name}: {d}");
        assert_eq!(d["allowed"], expect["allowed"], "{name}");
        assert_eq!(d.get("subject"), expect.get("subject"), "{name}");
        assert_eq!(d["epoch"], 1, "{name}");
    }
}

#[test]
fn a_token_on_the_command_line_and_a_subject_with_it_are_told_apart() {
    let all = cases();
    let clock = all["clock"].as_u64().unwrap();
    let dir = signed_model(&all["model"], clock);
    let now = clock.to_string();
    let token = all["cases"][0]["token"].as_str().unwrap();
    let base = [
        "check",
        "--snapshot",
        "snap.bin",
        "--public-key",
        "keys/origin.pub",
        "--now",
        &now,
        "--token",
        token,
    ];
    let args = |extra: &[&'static str]| -> Vec<String> {
        base.iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let argv = args(&["read", "doc:roadmap"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (code, d, _) = run(dir.path(), &argv, "");
    assert_eq!((code, d["reason"].as_str()), (0, Some("granted")));
    let argv = args(&["user:bob", "read", "doc:roadmap"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (code, _, err) = run(dir.path(), &argv, "");
    assert_eq!(code, 1);
    assert!(err.contains("the subject comes from the token"), "{err}");
}

#[test]
fn compiling_drops_session_entries_past_their_until() {
    let all = cases();
    let clock = all["clock"].as_u64().unwrap();
    let revoked_until = all["model"]["sessions"]["revoked"][0]["until"]
        .as_u64()
        .unwrap();
    let count = |issued_at: u64| {
        let dir = signed_model(&all["model"], issued_at);
        let (code, info, err) = run(dir.path(), &["inspect", "snap.bin"], "");
        assert_eq!(code, 0, "{err}");
        (
            info["counts"]["revokedSessions"].as_u64(),
            info["counts"]["revokedFamilies"].as_u64(),
            info["counts"]["issuers"].as_u64(),
        )
    };
    assert_eq!(count(clock), (Some(1), Some(1), Some(2)));
    assert_eq!(count(revoked_until), (Some(0), Some(0), Some(2)));
}
