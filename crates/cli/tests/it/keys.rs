//! Typed key files: keygen writes `edge-authz-public:` and `edge-authz-secret:` keys, a key of
//! the wrong kind is refused (`wrong_key_kind`) wherever a key file is read, and bare base64 key
//! files (what older files hold) are still read, with a warning once per file.
use std::path::Path;

use crate::util::{run, stderr};

use serde_json::Value;

const PUBLIC: &str = "edge-authz-public:";
const SECRET: &str = "edge-authz-secret:";

fn ok(dir: &Path, args: &[&str]) -> (Value, String) {
    let out = run(dir, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    (serde_json::from_slice(&out.stdout).unwrap(), stderr(&out))
}

/// Exits 1 with `wrong_key_kind` and `message`, echoing no key.
fn wrong_kind(dir: &Path, args: &[&str], message: &str) {
    let out = run(dir, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(err.contains("[wrong_key_kind]"), "{args:?}: {err}");
    assert!(err.contains(message), "{args:?}: {err}");
    for file in ["keys/origin.key", "keys/origin.pub"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let b64 = text.trim().split(':').next_back().unwrap();
        assert!(!err.contains(b64), "{args:?}: stderr echoes {file}: {err}");
    }
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/conformance/models/example.json"
        ),
        dir.path().join("model.json"),
    )
    .unwrap();
    dir
}

fn compile(key: &str) -> Vec<&str> {
    vec![
        "compile",
        "model.json",
        "--epoch",
        "1",
        "--secret-key",
        key,
        "-o",
        "snap.bin",
        "--issued-at",
        "1000",
    ]
}

fn check(keys: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec!["check", "--snapshot", "snap.bin", "--now", "2000"];
    for k in keys {
        args.extend(["--public-key", k]);
    }
    args.extend(["user:alice", "read", "doc:roadmap"]);
    args
}

#[test]
fn keygen_writes_typed_keys() {
    let dir = setup();
    let p = dir.path();
    let (out, err) = ok(p, &["keygen", "--out-dir", "keys"]);
    assert_eq!(err, "");
    let public = std::fs::read_to_string(p.join("keys/origin.pub")).unwrap();
    let secret = std::fs::read_to_string(p.join("keys/origin.key")).unwrap();
    assert!(
        public.starts_with(PUBLIC) && public.ends_with('\n'),
        "{public}"
    );
    assert!(secret.starts_with(SECRET) && secret.ends_with('\n'));
    assert_eq!(public.trim().len(), PUBLIC.len() + 44);
    assert_eq!(secret.trim().len(), SECRET.len() + 44);
    assert_eq!(out["publicKey"], public.trim());
    // The key id is of the 32 bytes, as ever: the core's, from the bare base64.
    let bare = edge_authz::PublicKey::from_base64(&public[PUBLIC.len()..]).unwrap();
    assert_eq!(out["keyId"], bare.id());
    // Typed files are read without a warning.
    let (snap, err) = ok(p, &compile("keys/origin.key"));
    assert_eq!(err, "");
    assert_eq!(snap["keyId"], bare.id());
    let (d, err) = ok(p, &check(&["keys/origin.pub"]));
    assert_eq!(err, "");
    assert_eq!(d["allowed"], true);
}

#[test]
fn a_key_of_the_wrong_kind_is_refused() {
    let dir = setup();
    let p = dir.path();
    ok(p, &["keygen", "--out-dir", "keys"]);
    let secret_for_public = "a secret key was given where a public key is expected";
    let public_for_secret = "a public key was given where a secret key is expected";
    wrong_kind(p, &compile("keys/origin.pub"), public_for_secret);
    assert!(!p.join("snap.bin").exists(), "nothing is signed");
    ok(p, &compile("keys/origin.key"));
    wrong_kind(p, &check(&["keys/origin.key"]), secret_for_public);
    wrong_kind(
        p,
        &check(&["keys/origin.pub", "keys/origin.key"]),
        secret_for_public,
    );
    wrong_kind(
        p,
        &["inspect", "snap.bin", "--public-key", "keys/origin.key"],
        secret_for_public,
    );
    wrong_kind(
        p,
        &[
            "watermark",
            "--tenant",
            "acme",
            "--watermark",
            "1",
            "--secret-key",
            "keys/origin.pub",
            "-o",
            "wm.bin",
        ],
        public_for_secret,
    );
    // The publisher reads its key before it reaches any edge.
    wrong_kind(
        p,
        &[
            "publish",
            "model.json",
            "--edge",
            "http://127.0.0.1:9",
            "--secret-key",
            "keys/origin.pub",
            "--state",
            "state",
        ],
        public_for_secret,
    );
}

#[test]
fn bare_key_files_still_work_with_a_warning_once_per_file() {
    let dir = setup();
    let p = dir.path();
    let (out, _) = ok(p, &["keygen", "--out-dir", "keys"]);
    for (typed, bare, prefix) in [
        ("keys/origin.pub", "bare.pub", PUBLIC),
        ("keys/origin.key", "bare.key", SECRET),
    ] {
        let text = std::fs::read_to_string(p.join(typed)).unwrap();
        std::fs::write(p.join(bare), text.strip_prefix(prefix).unwrap()).unwrap();
    }
    let (snap, err) = ok(p, &compile("bare.key"));
    assert_eq!(snap["keyId"], out["keyId"]);
    assert_eq!(
        err.matches("warning: bare.key holds a bare base64 key")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("keygen writes typed keys"), "{err}");
    // The same bare file given twice: one warning; a typed file beside it: none.
    let (d, err) = ok(p, &check(&["bare.pub", "keys/origin.pub", "bare.pub"]));
    assert_eq!(d["allowed"], true);
    assert_eq!(err.matches("warning:").count(), 1, "{err}");
    assert!(err.contains("warning: bare.pub holds a bare base64 key"));
    // The golden files' key is bare.
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden");
    let (info, err) = ok(
        p,
        &[
            "inspect",
            &format!("{golden}/snapshot-e1.bin"),
            "--public-key",
            &format!("{golden}/origin.pub"),
        ],
    );
    assert_eq!(info["signature"], "verified");
    assert!(err.contains("origin.pub holds a bare base64 key"), "{err}");
}
