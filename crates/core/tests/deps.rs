//! The core stays pure: no crate that reaches a host (JavaScript, the Workers runtime, the
//! operating system's randomness, a network client, a database, a command-line parser) is in its
//! dependency tree, for any target. Its own code is kept from I/O, clocks, threads and the
//! environment by clippy (`crates/core/clippy.toml`).
#![allow(
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "a test of the core's build: it runs cargo"
)]

use std::process::Command;

/// Crates that belong to a host, never to the core.
const HOST_CRATES: &[&str] = &[
    "wasm-bindgen",
    "js-sys",
    "web-sys",
    "worker",
    "getrandom",
    "clap",
    "rusqlite",
    "ureq",
    "tokio",
];

#[test]
fn the_core_reaches_no_host_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "--package",
            "edge-authz",
            "--edges",
            "normal,build",
            "--target",
            "all",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains(&"edge-authz"), "{tree}");
    assert!(names.contains(&"ed25519-dalek"), "{tree}");
    let reached: Vec<&&str> = HOST_CRATES.iter().filter(|c| names.contains(c)).collect();
    assert!(reached.is_empty(), "the core reaches {reached:?}:\n{tree}");
}
