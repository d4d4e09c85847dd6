//! The command line, run as a process: exit codes, files, JSON lines.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edge-authz"))
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> Value {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn fails(dir: &Path, args: &[&str], needle: &str) {
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(1), "{args:?} should exit 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: stderr `{err}` lacks `{needle}`"
    );
}

/// Runs `check --requests -` on the example snapshot with `input` on standard input (written from
/// another thread, so a large input cannot deadlock against the output pipe).
fn batch(dir: &Path, input: Vec<u8>) -> Output {
    let mut child = bin()
        .current_dir(dir)
        .args([
            "check",
            "--snapshot",
            "snap.bin",
            "--public-key",
            "keys/origin.pub",
            "--now",
            "1500",
            "--requests",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/conformance/models/example.json"
        ),
        p.join("model.json"),
    )
    .unwrap();
    let text = std::fs::read_to_string(p.join("model.json")).unwrap();
    // The revoked model: alice leaves group:eng.
    let revoked = text.replace(r#"{ "member": "user:alice", "group": "group:eng" },"#, "");
    assert_ne!(text, revoked);
    std::fs::write(p.join("revoked.json"), revoked).unwrap();
    ok(p, &["keygen", "--out-dir", "keys"]);
    ok(
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
            "1000",
        ],
    );
    dir
}

#[test]
fn keygen_compile_inspect_check() {
    let dir = setup();
    let p = dir.path();
    let key = std::fs::read_to_string(p.join("keys/origin.pub")).unwrap();
    assert!(key.starts_with("edge-authz-public:"), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(p.join("keys/origin.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    fails(p, &["keygen", "--out-dir", "keys"], "--force");
    let info = ok(
        p,
        &["inspect", "snap.bin", "--public-key", "keys/origin.pub"],
    );
    assert_eq!(info["kind"], "snapshot");
    assert_eq!(info["epoch"], 1);
    assert_eq!(info["tenant"], "acme");
    assert_eq!(info["signature"], "verified");
    assert_eq!(info["counts"]["assignments"], 2);
    let d = ok(
        p,
        &[
            "check",
            "--snapshot",
            "snap.bin",
            "--public-key",
            "keys/origin.pub",
            "--now",
            "2000",
            "user:alice",
            "read",
            "doc:roadmap",
        ],
    );
    assert_eq!(d["allowed"], true);
    assert_eq!(d["grant"]["resource"], "workspace:eng");
    // A denial still exits 0.
    let d = ok(
        p,
        &[
            "check",
            "--snapshot",
            "snap.bin",
            "--public-key",
            "keys/origin.pub",
            "--now",
            "2000",
            "user:mallory",
            "read",
            "doc:roadmap",
        ],
    );
    assert_eq!(d["reason"], "suspended");
    let d = ok(
        p,
        &[
            "check",
            "--model",
            "model.json",
            "user:alice",
            "read",
            "doc:roadmap",
        ],
    );
    assert_eq!(d["epoch"], 0);
    assert_eq!(d["allowed"], true);
}

#[test]
fn batch_requests_stream_in_order() {
    let dir = setup();
    let p = dir.path();
    let input = [
        r#"["user:alice", "read", "doc:roadmap"]"#,
        r#"{"subject": "user:alice", "action": "export", "resource": "doc:roadmap", "context": {"now": 1798761600000}}"#,
        "",
        "not json",
        r#"{"subject": "user:alice", "action": "read", "resource": "doc:roadmap", "context": {"now": -1}}"#,
        r#"{"subject": "user:alice", "action": "read"}"#,
        r#"["user:bob", "read", "doc:roadmap"]"#,
        r#"{"subject": "user:alice", "action": "export", "resource": "doc:roadmap", "context": {"now": 1798761599999}}"#,
    ];
    let out = batch(p, input.join("\n").into_bytes());
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    // A line's own context moves `now` (alice's admin role expires at 1798761600000), never the
    // clock (`--now`): the high tier stays fresh.
    assert_eq!(
        reasons,
        [
            "granted",
            "no_grant",
            "invalid_request",
            "invalid_request",
            "invalid_request",
            "no_grant",
            "granted"
        ]
    );
    std::fs::write(p.join("reqs.jsonl"), input.join("\n")).unwrap();
    let out = run(
        p,
        &[
            "check",
            "--snapshot",
            "snap.bin",
            "--public-key",
            "keys/origin.pub",
            "--now",
            "1500",
            "--requests",
            "reqs.jsonl",
        ],
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 7);
}

#[test]
fn diff_and_watermark_carry_a_revocation() {
    let dir = setup();
    let p = dir.path();
    let d = ok(
        p,
        &[
            "diff",
            "model.json",
            "revoked.json",
            "--base-epoch",
            "1",
            "--epoch",
            "2",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "d2.bin",
            "--issued-at",
            "1100",
        ],
    );
    assert_eq!(d["revokes"], true);
    assert_eq!(d["counts"]["membershipsDel"], 1);
    let back = ok(
        p,
        &[
            "diff",
            "revoked.json",
            "model.json",
            "--base-epoch",
            "2",
            "--epoch",
            "3",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "d3.bin",
        ],
    );
    assert_eq!(back["revokes"], false);
    let base = [
        "check",
        "--snapshot",
        "snap.bin",
        "--public-key",
        "keys/origin.pub",
        "--now",
        "1500",
    ];
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        args.extend_from_slice(&["user:alice", "read", "org:acme"]);
        ok(p, &args)
    };
    assert_eq!(with(&[])["reason"], "granted");
    ok(
        p,
        &[
            "watermark",
            "--tenant",
            "acme",
            "--watermark",
            "2",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "w2.bin",
            "--issued-at",
            "1200",
        ],
    );
    assert_eq!(with(&["--watermark", "w2.bin"])["reason"], "stale_snapshot");
    let d = with(&["--delta", "d2.bin", "--watermark", "w2.bin"]);
    assert_eq!(
        (d["reason"].as_str(), d["epoch"].as_u64()),
        (Some("no_grant"), Some(2))
    );
    ok(
        p,
        &[
            "watermark",
            "--tenant",
            "acme",
            "--watermark",
            "2",
            "--delta",
            "d2.bin",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "w2d.bin",
            "--issued-at",
            "1200",
        ],
    );
    let d = with(&["--watermark", "w2d.bin"]);
    assert_eq!(
        (d["reason"].as_str(), d["watermark"].as_u64()),
        (Some("no_grant"), Some(2))
    );
    let st = ok(
        p,
        &[
            "status",
            "--snapshot",
            "snap.bin",
            "--public-key",
            "keys/origin.pub",
            "--watermark",
            "w2.bin",
        ],
    );
    assert_eq!(
        (
            st["epoch"].as_u64(),
            st["watermark"].as_u64(),
            st["stale"].as_bool()
        ),
        (Some(1), Some(2), Some(true))
    );
    assert_eq!(st["confirmedAt"], 1200);
    let info = ok(p, &["inspect", "w2d.bin"]);
    assert_eq!(info["delta"]["baseEpoch"], 1);
    assert_eq!(info["delta"]["revokes"], true);
}

#[test]
fn lists() {
    let dir = setup();
    let p = dir.path();
    let src = [
        "--snapshot",
        "snap.bin",
        "--public-key",
        "keys/origin.pub",
        "--now",
        "1500",
    ];
    let mut args = vec!["list-resources"];
    args.extend_from_slice(&src);
    args.extend_from_slice(&["--type", "doc", "user:alice", "write"]);
    assert_eq!(
        ok(p, &args)["resources"],
        serde_json::json!(["doc:roadmap"])
    );
    let mut args = vec!["list-subjects"];
    args.extend_from_slice(&src);
    args.extend_from_slice(&["org:acme", "read"]);
    assert_eq!(ok(p, &args)["subjects"], serde_json::json!(["user:alice"]));
}

#[test]
fn errors_exit_1_with_a_message() {
    let dir = setup();
    let p = dir.path();
    fails(p, &[], "Usage");
    fails(p, &["check", "--snapshot", "snap.bin"], "required");
    fails(
        p,
        &[
            "compile",
            "missing.json",
            "--epoch",
            "1",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "x.bin",
        ],
        "cannot read",
    );
    std::fs::write(
        p.join("bad.json"),
        r#"{"version": 1, "tenant": "acme", "roles": {"v": ["nope"]}}"#,
    )
    .unwrap();
    fails(
        p,
        &[
            "compile",
            "bad.json",
            "--epoch",
            "1",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "x.bin",
        ],
        "undeclared_action",
    );
    ok(p, &["keygen", "--out-dir", "other"]);
    fails(
        p,
        &[
            "check",
            "--snapshot",
            "snap.bin",
            "--public-key",
            "other/origin.pub",
            "user:a",
            "read",
            "doc:roadmap",
        ],
        "unknown_key",
    );
    std::fs::write(p.join("garbage.bin"), b"garbage").unwrap();
    fails(p, &["inspect", "garbage.bin"], "bad_magic");
    fails(
        p,
        &[
            "compile",
            "model.json",
            "--epoch",
            "0",
            "--secret-key",
            "keys/origin.key",
            "-o",
            "x.bin",
        ],
        "invalid_argument",
    );
    std::fs::write(p.join("bad.key"), "not base64!").unwrap();
    fails(
        p,
        &[
            "compile",
            "model.json",
            "--epoch",
            "1",
            "--secret-key",
            "bad.key",
            "-o",
            "x.bin",
        ],
        "invalid_key",
    );
    let out = run(p, &["--version"]);
    assert!(out.status.success());
}

#[test]
fn batch_survives_overlong_and_non_utf8_lines() {
    let dir = setup();
    let p = dir.path();
    let mut input = Vec::new();
    input.extend_from_slice(b"[\"user:alice\", \"read\", \"doc:roadmap\"]\n");
    // A line of 3 MiB, one just over the 1 MiB limit with its newline at the limit, then bad UTF-8.
    input.extend(std::iter::repeat_n(b'x', 3 << 20));
    input.push(b'\n');
    input.extend(std::iter::repeat_n(b'y', 1 << 20));
    input.push(b'\n');
    input.extend_from_slice(b"[\"user:\xff\", \"read\", \"doc:roadmap\"]\n");
    input.extend_from_slice(b"[\"user:bob\", \"read\", \"doc:roadmap\"]");
    let out = batch(p, input);
    assert!(out.status.success());
    let reasons: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "granted",
            "invalid_request",
            "invalid_request",
            "invalid_request",
            "no_grant"
        ]
    );
}

/// 2100-01-01: a clock fault at the origin, or a forged time.
const YEAR_2100: &str = "4102444800000";

#[test]
fn messages_from_the_future_are_refused_and_not_signed_unless_forced() {
    let dir = setup();
    let p = dir.path();
    fn sign<'a>(cmd: &[&'a str], out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend_from_slice(&["--secret-key", "keys/origin.key", "-o", out]);
        args.extend_from_slice(&["--issued-at", YEAR_2100]);
        args.extend_from_slice(extra);
        args
    }
    let compile = ["compile", "model.json", "--epoch", "1"];
    let diff = [
        "diff",
        "model.json",
        "revoked.json",
        "--base-epoch",
        "1",
        "--epoch",
        "2",
    ];
    let beat = ["watermark", "--tenant", "acme", "--watermark", "1"];
    // The signing commands refuse an --issued-at past the tolerance, naming the clock.
    for cmd in [&compile[..], &diff[..], &beat[..]] {
        let out = run(p, &sign(cmd, "x.bin", &[]));
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("[clock_skew]"), "{err}");
        assert!(err.contains("ahead of this host's clock"), "{err}");
        assert!(err.contains("--force-issued-at"), "{err}");
        assert!(!p.join("x.bin").exists());
    }
    // Within the tolerance: signed.
    let soon = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 500)
        .to_string();
    let mut args = sign(&compile, "soon.bin", &[]);
    let at = args.iter().position(|a| *a == YEAR_2100).unwrap();
    args[at] = &soon;
    ok(p, &args);
    // Forced, they are signed; every command that loads them refuses them by this host's clock.
    ok(p, &sign(&compile, "future.bin", &["--force-issued-at"]));
    ok(p, &sign(&beat, "beat.bin", &["--force-issued-at"]));
    fn with<'a>(cmd: &'a str, snapshot: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            cmd,
            "--snapshot",
            snapshot,
            "--public-key",
            "keys/origin.pub",
        ];
        args.extend_from_slice(extra);
        args
    }
    fails(p, &with("status", "future.bin", &[]), "clock_skew");
    fails(
        p,
        &with("status", "snap.bin", &["--watermark", "beat.bin"]),
        "clock_skew",
    );
    let alice = ["user:alice", "read", "doc:roadmap"];
    let mut args = with("check", "future.bin", &[]);
    args.extend_from_slice(&alice);
    fails(p, &args, "clock_skew");
    // `--now` is the clock of an offline check: long before the issue, refused...
    let mut args = with("check", "future.bin", &["--now", "2000"]);
    args.extend_from_slice(&alice);
    fails(p, &args, "clock_skew");
    let mut args = with(
        "check",
        "snap.bin",
        &["--watermark", "beat.bin", "--now", "2000"],
    );
    args.extend_from_slice(&alice);
    fails(p, &args, "clock_skew");
    let mut args = with("list-subjects", "future.bin", &["--now", "2000"]);
    args.extend_from_slice(&["org:acme", "read"]);
    fails(p, &args, "clock_skew");
    // ... and at that time, taken.
    let mut args = with("check", "future.bin", &["--now", YEAR_2100]);
    args.extend_from_slice(&alice);
    assert_eq!(ok(p, &args)["allowed"], true);
    let st = ok(p, &with("status", "soon.bin", &[]));
    assert_eq!(st["epoch"], 1);
}

#[test]
fn watermarks_leave_room_for_later_epochs() {
    let dir = setup();
    let p = dir.path();
    let sign = |watermark: &str, extra: &[&str]| {
        let mut args = vec![
            "watermark",
            "--tenant",
            "acme",
            "--watermark",
            watermark,
            "--secret-key",
            "keys/origin.key",
            "-o",
            "w.bin",
        ];
        args.extend_from_slice(extra);
        run(p, &args)
    };
    let refused = |out: Output, code: &str| {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(code), "{err}");
        assert!(!p.join("w.bin").exists());
    };
    refused(sign("18446744073709551615", &[]), "watermark_too_high");
    refused(sign("9007199254740991", &[]), "watermark_too_high");
    refused(sign("4503599627370497", &[]), "watermark_too_high");
    assert!(sign("4503599627370496", &[]).status.success());
    std::fs::remove_file(p.join("w.bin")).unwrap();

    // With the publisher's journal, no watermark above its latest epoch. An edge that cannot be
    // reached still leaves the journal at epoch 1.
    let out = run(
        p,
        &[
            "publish",
            "model.json",
            "--state",
            "journal",
            "--secret-key",
            "keys/origin.key",
            "--edge",
            "http://127.0.0.1:1",
            "--http-timeout",
            "500",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    refused(sign("2", &["--state", "journal"]), "watermark_ahead");
    let out = sign("2", &["--state", "journal"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(1)"));
    refused(sign("2", &["--journal", "journal"]), "watermark_ahead");
    assert!(sign("1", &["--state", "journal"]).status.success());
    std::fs::remove_file(p.join("w.bin")).unwrap();
    refused(sign("1", &["--state", "elsewhere"]), "no journal");
}

#[test]
fn a_push_token_that_cannot_be_read_is_a_usage_error() {
    let dir = setup();
    let p = dir.path();
    let publish = |token: &[&str], env: Option<&str>| {
        let mut args = vec![
            "publish",
            "model.json",
            "--state",
            "journal",
            "--secret-key",
            "keys/origin.key",
            "--edge",
            "http://127.0.0.1:1",
            "--http-timeout",
            "200",
        ];
        args.extend_from_slice(token);
        let mut cmd = bin();
        cmd.current_dir(p).args(&args);
        match env {
            Some(v) => cmd.env("EDGE_AUTHZ_PUSH_TOKEN", v),
            None => cmd.env_remove("EDGE_AUTHZ_PUSH_TOKEN"),
        };
        cmd.output().unwrap()
    };
    let refused = |out: Output, needle: &str, secret: &str| {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "stderr `{err}` lacks `{needle}`");
        assert!(!err.contains(secret), "{err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
        // Nothing issued: the token is read before the journal is opened.
        assert!(!p.join("journal").exists());
    };
    std::fs::write(p.join("empty.token"), " \n\n").unwrap();
    refused(
        publish(&["--push-token-file", "empty.token"], None),
        "--push-token-file: `empty.token` is empty",
        "\n\n",
    );
    refused(
        publish(&["--push-token-file", "absent.token"], Some("fine")),
        "--push-token-file: cannot read `absent.token`",
        "fine",
    );
    std::fs::write(p.join("two.token"), "s3cret-one\ns3cret-two\n").unwrap();
    refused(
        publish(&["--push-token-file", "two.token"], None),
        "more than one line",
        "s3cret",
    );
    refused(
        publish(&[], Some("s3cret with space")),
        "EDGE_AUTHZ_PUSH_TOKEN holds characters",
        "s3cret",
    );
    // A good token (an edge that cannot be reached): the journal starts at epoch 1.
    std::fs::write(p.join("good.token"), "s3cret-good\n").unwrap();
    let out = publish(&["--push-token-file", "good.token"], Some("s3cret bad"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"));
}

#[test]
fn check_takes_a_context_and_names_the_conditions_that_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let model = serde_json::json!({
        "version": 1, "tenant": "acme",
        "actions": {"read": {"tier": "low"}, "export": {"tier": "high", "requires": ["mfa_recent"]}},
        "roles": {"exporter": ["read", "export"]},
        "resources": [{"id": "org:acme"}],
        "assignments": [{"principal": "user:alice", "role": "exporter", "resource": "org:acme", "when": "office"}],
        "conditions": {
            "office": {"attr": "ip", "op": "in_cidr", "value": "10.0.0.0/8"},
            "mfa_recent": {"attr": "mfa_age_s", "op": "<=", "value": 900, "step_up": true}
        }
    });
    std::fs::write(p.join("m.json"), model.to_string()).unwrap();
    let check = |context: Option<&str>| {
        let mut args = vec!["check", "--model", "m.json"];
        if let Some(c) = context {
            args.extend(["--context", c]);
        }
        args.extend(["user:alice", "export", "org:acme"]);
        ok(p, &args)
    };
    let d = check(Some(r#"{"ip": "10.1.2.3", "mfa_age_s": 60}"#));
    assert_eq!(d["reason"], "granted");
    assert_eq!(d["grant"]["when"], "office");
    let d = check(Some(r#"{"ip": "10.1.2.3"}"#));
    assert_eq!(d["reason"], "step_up_required");
    assert_eq!(d["conditions"], serde_json::json!(["mfa_recent"]));
    assert_eq!(d["missing"], serde_json::json!(["mfa_age_s"]));
    let d = check(None);
    assert_eq!(d["reason"], "condition_failed");
    assert_eq!(d["conditions"], serde_json::json!(["mfa_recent", "office"]));
    assert_eq!(d["missing"], serde_json::json!(["ip", "mfa_age_s"]));
    // A malformed context is an invalid_request decision, exit 0, never a usage error.
    for bad in [
        "{",
        r#"{"ip": null}"#,
        r#"{"Ip": "x"}"#,
        "[1]",
        r#"{"n": NaN}"#,
    ] {
        assert_eq!(check(Some(bad))["reason"], "invalid_request", "{bad}");
    }
    // Listings take it too.
    let listed = ok(
        p,
        &[
            "list-subjects",
            "--model",
            "m.json",
            "--context",
            r#"{"ip": "10.0.0.1", "mfa_age_s": 1}"#,
            "org:acme",
            "export",
        ],
    );
    assert_eq!(listed["subjects"], serde_json::json!(["user:alice"]));
    let listed = ok(
        p,
        &["list-subjects", "--model", "m.json", "org:acme", "read"],
    );
    assert_eq!(listed["subjects"], serde_json::json!([]));
    // In a batch, the lines without a context take --context.
    let mut child = bin()
        .current_dir(p)
        .args([
            "check",
            "--model",
            "m.json",
            "--context",
            r#"{"ip": "10.0.0.1"}"#,
            "--requests",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"[\"user:alice\", \"read\", \"org:acme\"]\n{\"subject\": \"user:alice\", \"action\": \"read\", \"resource\": \"org:acme\", \"context\": {\"ip\": \"192.0.2.1\"}}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let reasons: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(reasons, ["granted", "condition_failed"]);
}
