//! The golden files of format version 1 (tests/golden, its README) through the command line:
//! `edge-authz inspect` reads from each committed message what golden.json records, and
//! `edge-authz compile`, `diff` and `watermark`, given the committed models, the suite's key and
//! the recorded epochs and times, write the committed bytes. The files are checked and made by
//! crates/core/tests/it/golden.rs; nothing here writes to tests/golden.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::test_key;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(golden().join("golden.json")).unwrap()).unwrap()
}

/// Runs the command line in tests/golden; its standard output.
fn edge_authz(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_edge-authz"))
        .current_dir(golden())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "edge-authz {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("golden.json: `{key}` in {v}"))
}

fn number(v: &Value, key: &str) -> String {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("golden.json: `{key}` in {v}"))
        .to_string()
}

#[test]
fn golden_inspect_reads_what_golden_json_records() {
    let m = manifest();
    for e in m["messages"].as_array().unwrap() {
        let file = text(e, "file");
        let out = edge_authz(&["inspect", file, "--public-key", "origin.pub"]);
        let info: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(info, e["inspect"], "edge-authz inspect {file}");
    }
}

#[test]
fn golden_command_line_signs_the_committed_bytes() {
    let m = manifest();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("origin.key");
    std::fs::write(&key, test_key().to_base64()).unwrap();
    let key = key.to_str().unwrap();
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    // The times are in the past, but `--force-issued-at` keeps a machine whose clock is behind
    // them from refusing to sign.
    let signing = |issued_at: &str, to: &str| {
        [
            "--secret-key".to_string(),
            key.to_string(),
            "--issued-at".into(),
            issued_at.to_string(),
            "--force-issued-at".into(),
            "-o".into(),
            to.to_string(),
        ]
    };
    let diff = |from: &Value, base_epoch: &str, epoch: &str, issued_at: &str, to: &str| {
        let mut args = vec![
            "diff".to_string(),
            text(from, "before").into(),
            text(from, "after").into(),
            "--base-epoch".into(),
            base_epoch.into(),
            "--epoch".into(),
            epoch.into(),
        ];
        args.extend(signing(issued_at, to));
        args
    };
    for e in m["messages"].as_array().unwrap() {
        let file = text(e, "file");
        let to = out(file);
        let issued_at = number(e, "issued_at");
        let args: Vec<String> = match text(e, "kind") {
            "snapshot" => {
                let mut a = vec![
                    "compile".to_string(),
                    text(&e["made_from"], "model").into(),
                    "--epoch".into(),
                    number(e, "epoch"),
                ];
                a.extend(signing(&issued_at, &to));
                a
            }
            "delta" => diff(
                &e["made_from"],
                &number(e, "base_epoch"),
                &number(e, "epoch"),
                &issued_at,
                &to,
            ),
            _ => {
                let mut a = vec![
                    "watermark".to_string(),
                    "--tenant".into(),
                    text(e, "tenant").into(),
                    "--watermark".into(),
                    number(e, "watermark"),
                ];
                let c = &e["carries"];
                if !c.is_null() {
                    let carried = out(&format!("{file}.delta"));
                    let d = diff(
                        &c["made_from"],
                        &number(c, "base_epoch"),
                        &number(c, "epoch"),
                        &number(c, "issued_at"),
                        &carried,
                    );
                    edge_authz(&d.iter().map(String::as_str).collect::<Vec<_>>());
                    a.extend(["--delta".to_string(), carried]);
                }
                a.extend(signing(&issued_at, &to));
                a
            }
        };
        edge_authz(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            std::fs::read(&to).unwrap() == std::fs::read(golden().join(file)).unwrap(),
            "{file}: the command line no longer writes the committed bytes"
        );
    }
}
