//! The edge's memory budget at the origin: the command line refuses to compile past it.
use std::process::Command;

/// The default budget at the origin: the command line refuses to compile a tenant past it, with
/// `limit_exceeded` naming the index's size and the budget, and writes nothing.
#[test]
fn compile_refuses_a_tenant_past_the_default_budget() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_edge-authz");
    let run = |args: &[&str]| {
        Command::new(bin)
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["keygen", "--out-dir", "keys"]).status.success());
    let big = run(&[
        "workload",
        "--users",
        "120000",
        "--groups",
        "6000",
        "--assignments",
        "240000",
        "--docs-per-project",
        "600",
    ]);
    assert!(big.status.success());
    std::fs::write(dir.path().join("big.json"), &big.stdout).unwrap();
    let out = run(&[
        "compile",
        "big.json",
        "--epoch",
        "1",
        "--secret-key",
        "keys/origin.key",
        "-o",
        "big.snap",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limit_exceeded"), "{err}");
    assert!(
        err.contains("over the edge's memory budget of 36.0 MiB"),
        "{err}"
    );
    assert!(!dir.path().join("big.snap").exists());
}
