//! The command line's limits: request lines of at most 1 MiB.
use std::io::Write;
use std::process::{Command, Stdio};

use edge_authz::compile_snapshot;

use crate::common::{example, test_key};

/// `check --requests`: a line of 1 MiB (1,048,576 bytes, its newline included) is decided; one
/// byte more is an `invalid_request` decision, and the lines after it are decided as usual.
#[test]
fn cli_request_lines_are_limited_to_1_mib() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let bin = env!("CARGO_BIN_EXE_edge-authz");
    let k = test_key();
    std::fs::write(
        p.join("snap.bin"),
        compile_snapshot(&example(), 1, 1_000, &k).unwrap(),
    )
    .unwrap();
    std::fs::write(p.join("origin.pub"), k.public_key().to_base64()).unwrap();
    let request = r#"["user:alice", "read", "doc:roadmap"]"#;
    let padded = |len: usize| {
        let mut l = request.as_bytes().to_vec();
        l.resize(len - 1, b' ');
        l.push(b'\n');
        l
    };
    let mut input = padded(1 << 20);
    input.extend(padded((1 << 20) + 1));
    input.extend_from_slice(b"[\"user:bob\", \"read\", \"doc:roadmap\"]\n");
    let mut child = Command::new(bin)
        .current_dir(p)
        .args([
            "check",
            "--snapshot",
            "snap.bin",
            "--public-key",
            "origin.pub",
        ])
        .args(["--now", "1500", "--requests", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reasons: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"].to_string())
        .collect();
    assert_eq!(
        reasons,
        [r#""granted""#, r#""invalid_request""#, r#""no_grant""#]
    );
}
