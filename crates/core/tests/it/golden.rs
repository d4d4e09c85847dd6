//! The golden files of format version 1 (tests/golden, described in its README): signed messages
//! committed as bytes, and tests/golden/golden.json recording what each one is and the decisions
//! an evaluator gives once they are loaded in order.
//!
//! These tests only read tests/golden. `GOLDEN_WRITE=1 cargo test -p edge-authz --test it golden`
//! writes it again from the committed models (tests/golden/models) and then checks it; nothing
//! else ever writes there. What each test pins:
//! - `golden_files_are_the_recorded_bytes`: the SHA-256 of every committed message and model, and
//!   no message file the manifest does not list;
//! - `golden_messages_are_format_version_1`: the 8-byte prefix (crates/core/src/wire.rs) and
//!   everything `inspect` reads from each message (kind, tenant, epochs, issued_at, digests,
//!   counts, the verified signature);
//! - `golden_messages_reproduce_byte_for_byte`: the origin functions, given the committed models,
//!   key, epochs and times, sign exactly the committed bytes (a change of the encoder fails here);
//! - `golden_decisions_after_loading_in_order`: an evaluator fed the committed files in order
//!   answers each with the recorded outcome, status (content digest included) and decisions;
//! - `golden_manifest_is_what_the_generator_writes`: golden.json as a whole, so that it cannot
//!   drift from the code that makes it.
//!
//! The command line (crates/cli/tests/it/golden.rs), the npm package (tests/js/golden.test.mjs) and
//! the Worker (tests/js/worker-golden.test.mjs) are held to the same files.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use edge_authz::{
    compile_snapshot, content_digest, diff_models, inspect, sign_watermark, At, DeltaOutcome,
    Evaluator, Limits, MessageKind, Model, Request, SecretKey, State, MAGIC, MIN_FORMAT_VERSION,
};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::common::test_key;

/// The format version these files pin. A new version gets golden files of its own; these stay.
const PINNED_VERSION: u8 = 1;
const TENANT: &str = "acme";
/// The byte the suite's key's 32-byte seed repeats (`test_key` in common.rs).
const SEED_BYTE: u8 = 7;
/// 2026-01-01T00:00:00Z, when the snapshot is issued; each later message an hour after the last.
const T1: u64 = 1_767_225_600_000;
const HOUR: u64 = 3_600_000;
/// When user:alice's admin assignment expires (tests/golden/models/epoch1.json).
const ALICE_EXPIRES: u64 = 1_798_761_600_000;
/// The status fields recorded after each message: the core's `status()`
/// (crates/core/src/evaluator.rs) without `heapBytes`, an estimate that is not part of the format.
const STATUS_FIELDS: [&str; 11] = [
    "tenant",
    "epoch",
    "watermark",
    "confirmedAt",
    "stale",
    "preview",
    "digest",
    "counts",
    "actions",
    "freshness",
    "keyIds",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn read(rel: &str) -> Vec<u8> {
    let path = dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How one message is made: its file, and what the origin functions sign.
enum Make {
    Snapshot {
        model: &'static str,
        epoch: u64,
    },
    Delta {
        before: &'static str,
        after: &'static str,
        base_epoch: u64,
        epoch: u64,
    },
    /// A watermark, bare or carrying the delta `before` -> `after` issued at `delta_issued_at`.
    Watermark {
        watermark: u64,
        carries: Option<(&'static str, &'static str, u64, u64)>,
    },
}

struct Spec {
    file: &'static str,
    issued_at: u64,
    make: Make,
}

const MODELS: [&str; 3] = [
    "models/epoch1.json",
    "models/epoch2.json",
    "models/epoch3.json",
];

/// The messages, in the order they are loaded: a snapshot at epoch 1; the delta 1 -> 2 (grants and
/// a revocation); a bare watermark 3 (the evaluator holds epoch 2: stale until it catches up);
/// the watermark 3 again, carrying the delta 2 -> 3 (a suspension) issued with the bare one.
fn specs() -> [Spec; 4] {
    [
        Spec {
            file: "snapshot-e1.bin",
            issued_at: T1,
            make: Make::Snapshot {
                model: MODELS[0],
                epoch: 1,
            },
        },
        Spec {
            file: "delta-e1-e2.bin",
            issued_at: T1 + HOUR,
            make: Make::Delta {
                before: MODELS[0],
                after: MODELS[1],
                base_epoch: 1,
                epoch: 2,
            },
        },
        Spec {
            file: "watermark-w3.bin",
            issued_at: T1 + 2 * HOUR,
            make: Make::Watermark {
                watermark: 3,
                carries: None,
            },
        },
        Spec {
            file: "watermark-w3-delta-e2-e3.bin",
            issued_at: T1 + 3 * HOUR,
            make: Make::Watermark {
                watermark: 3,
                carries: Some((MODELS[1], MODELS[2], 2, T1 + 2 * HOUR)),
            },
        },
    ]
}

fn state(rel: &str) -> State {
    let text = String::from_utf8(read(rel)).unwrap();
    Model::from_json(&text)
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .compile()
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .state
}

/// Signs one message with the origin functions (crates/core/src/origin.rs).
fn sign(spec: &Spec, key: &SecretKey) -> Vec<u8> {
    match spec.make {
        Make::Snapshot { model, epoch } => {
            compile_snapshot(&state(model), epoch, spec.issued_at, key).unwrap()
        }
        Make::Delta {
            before,
            after,
            base_epoch,
            epoch,
        } => {
            diff_models(
                &state(before),
                &state(after),
                base_epoch,
                epoch,
                spec.issued_at,
                key,
            )
            .unwrap()
            .bytes
        }
        Make::Watermark { watermark, carries } => {
            let delta = carries.map(|(before, after, base_epoch, issued_at)| {
                diff_models(
                    &state(before),
                    &state(after),
                    base_epoch,
                    watermark,
                    issued_at,
                    key,
                )
                .unwrap()
                .bytes
            });
            sign_watermark(TENANT, watermark, spec.issued_at, delta.as_deref(), key).unwrap()
        }
    }
}

/// The requests asked after each message, whose latest one was issued at `at`: every gate's
/// answer a second later; expiry at a `now` past user:alice's and user:carol's assignments; the
/// `high` bound (5 s) passed but not the `standard` one (30 s); the `low` bound (300 s) passed.
fn requests(
    at: u64,
    loaded: bool,
) -> Vec<(&'static str, &'static str, &'static str, u64, Option<u64>)> {
    let t = at + 1_000;
    let mut out = vec![
        ("user:alice", "read", "doc:roadmap", t, None),
        ("user:alice", "read", "org:acme", t, None),
        ("user:alice", "export", "doc:roadmap", t, None),
        ("user:bob", "write", "doc:plan", t, None),
        ("user:bob", "read", "org:acme", t, None),
        ("user:carol", "comment", "doc:plan", t, None),
        ("user:mallory", "read", "org:acme", t, None),
        ("group:eng", "read", "doc:roadmap", t, None),
        ("user:alice", "fly", "doc:roadmap", t, None),
        ("alice", "read", "doc:roadmap", t, None),
        ("user:alice", "read", "doc:nope", t, None),
    ];
    if loaded {
        out.extend([
            (
                "user:alice",
                "export",
                "doc:roadmap",
                t,
                Some(ALICE_EXPIRES - 1),
            ),
            (
                "user:alice",
                "export",
                "doc:roadmap",
                t,
                Some(ALICE_EXPIRES),
            ),
            ("user:carol", "comment", "doc:plan", t, Some(ALICE_EXPIRES)),
            ("user:alice", "export", "doc:roadmap", at + 10_000, None),
            ("user:alice", "write", "doc:roadmap", at + 10_000, None),
            ("user:alice", "read", "doc:roadmap", at + 10_000, None),
            ("user:alice", "read", "doc:roadmap", at + 400_000, None),
            ("group:eng", "read", "doc:roadmap", at + 400_000, None),
        ]);
    }
    out
}

/// A decision as the hosts answer it, with `grant: null` when there is none.
fn decision(ev: &Evaluator, s: &str, a: &str, r: &str, clock: u64, now: Option<u64>) -> Value {
    let d = ev.check(Request::new(s, a, r), At::clock(clock).with_now(now));
    let mut v = serde_json::to_value(ev.explain(&d)).unwrap();
    if let Value::Object(m) = &mut v {
        m.entry("grant").or_insert(Value::Null);
    }
    v
}

fn status(ev: &Evaluator) -> Value {
    let all = serde_json::to_value(ev.status()).unwrap();
    let picked: Map<String, Value> = STATUS_FIELDS
        .iter()
        .map(|k| (k.to_string(), all[*k].clone()))
        .collect();
    Value::Object(picked)
}

/// Loads one message by its kind; the outcome as the hosts report it.
fn load(ev: &mut Evaluator, bytes: &[u8], issued_at: u64) -> Value {
    ev.set_clock(Some(issued_at));
    let kind = MessageKind::of(bytes).expect("a message");
    let out = match kind {
        MessageKind::Snapshot => ev
            .load_snapshot(bytes)
            .map(|a| json!({"epoch": a.epoch, "applied": a.applied})),
        MessageKind::Delta => ev
            .apply_delta(bytes)
            .map(|a| json!({"epoch": a.epoch, "applied": a.applied})),
        MessageKind::Watermark => ev.apply_watermark(bytes).map(|a| {
            let delta = a.delta.map(|d| match d {
                DeltaOutcome::Applied => "applied".to_string(),
                DeltaOutcome::AlreadyApplied => "already_applied".to_string(),
                DeltaOutcome::Skipped(e) => e.code().to_string(),
            });
            json!({"watermark": a.watermark, "epoch": a.epoch, "delta": delta})
        }),
    };
    ev.set_clock(None);
    out.unwrap_or_else(|e| panic!("{}: {e}", kind.as_str()))
}

fn stage(ev: &Evaluator, after: Option<&str>, at: u64) -> Value {
    let loaded = after.is_some();
    let asked: Vec<Value> = requests(at, loaded)
        .into_iter()
        .map(|(s, a, r, clock, now)| {
            json!({"check": {"subject": s, "action": a, "resource": r, "clock": clock, "now": now},
                   "decision": decision(ev, s, a, r, clock, now)})
        })
        .collect();
    json!({"after": after, "status": status(ev), "requests": asked})
}

fn key_json() -> Value {
    let pk = test_key().public_key();
    json!({"seed_byte": SEED_BYTE, "public_key": pk.to_base64(), "key_id": pk.id()})
}

/// Everything in tests/golden that is generated: the message files and golden.json, as the
/// generator makes them from the committed models.
struct Golden {
    messages: Vec<(&'static str, Vec<u8>)>,
    manifest: Value,
}

fn generate() -> Golden {
    assert_eq!(
        MIN_FORMAT_VERSION, PINNED_VERSION,
        "these golden files pin format version {PINNED_VERSION}; the core now writes version \
         {MIN_FORMAT_VERSION} for messages without conditions: give it golden files of its own \
         (tests/golden/README.md)"
    );
    let key = test_key();
    assert_eq!(
        key.to_base64(),
        SecretKey::from_seed([SEED_BYTE; 32]).to_base64()
    );
    let pk = key.public_key();
    let models: Vec<Value> = MODELS
        .iter()
        .map(|rel| {
            json!({"file": rel, "sha256": sha256(&read(rel)),
                          "digest": content_digest(&state(rel)).unwrap()})
        })
        .collect();
    let mut ev = Evaluator::with_keys(TENANT, vec![pk.clone()]).unwrap();
    let mut stages = vec![stage(&ev, None, T1 - HOUR)];
    let (mut messages, mut recorded) = (Vec::new(), Vec::new());
    for spec in specs() {
        let bytes = sign(&spec, &key);
        let info = serde_json::to_value(
            inspect(&bytes, std::slice::from_ref(&pk), &Limits::default()).unwrap(),
        )
        .unwrap();
        let mut m = json!({
            "file": spec.file,
            "sha256": sha256(&bytes),
            "bytes": bytes.len(),
            "kind": info["kind"],
            "tenant": info["tenant"],
            "issued_at": spec.issued_at,
        });
        let o = m.as_object_mut().unwrap();
        match spec.make {
            Make::Snapshot { model, epoch } => {
                o.insert("epoch".into(), json!(epoch));
                o.insert("digest".into(), info["digest"].clone());
                o.insert("made_from".into(), json!({"model": model}));
            }
            Make::Delta {
                before,
                after,
                base_epoch,
                epoch,
            } => {
                o.insert("base_epoch".into(), json!(base_epoch));
                o.insert("epoch".into(), json!(epoch));
                o.insert("revokes".into(), info["revokes"].clone());
                o.insert("base_digest".into(), info["baseDigest"].clone());
                o.insert("digest".into(), info["digest"].clone());
                o.insert(
                    "made_from".into(),
                    json!({"before": before, "after": after}),
                );
            }
            Make::Watermark { watermark, carries } => {
                o.insert("watermark".into(), json!(watermark));
                let carried = carries.map(|(before, after, base_epoch, issued_at)| {
                    let d = &info["delta"];
                    json!({"base_epoch": base_epoch, "epoch": watermark, "issued_at": issued_at,
                           "revokes": d["revokes"], "base_digest": d["baseDigest"],
                           "digest": d["digest"], "made_from": {"before": before, "after": after}})
                });
                o.insert(
                    "digest".into(),
                    carried
                        .as_ref()
                        .map_or(Value::Null, |c| c["digest"].clone()),
                );
                o.insert("carries".into(), carried.unwrap_or(Value::Null));
            }
        }
        o.insert("inspect".into(), info);
        o.insert("outcome".into(), load(&mut ev, &bytes, spec.issued_at));
        stages.push(stage(&ev, Some(spec.file), spec.issued_at));
        recorded.push(m);
        messages.push((spec.file, bytes));
    }
    let manifest = json!({
        "format_version": PINNED_VERSION,
        "about": "tests/golden/README.md",
        "regenerate": "GOLDEN_WRITE=1 cargo test -p edge-authz --test it golden",
        "tenant": TENANT,
        "key": key_json(),
        "models": models,
        "messages": recorded,
        "stages": stages,
    });
    Golden { messages, manifest }
}

/// `v` on one line, with a space after each `:` and `,`.
fn flat(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{}: {}", Value::from(k.as_str()), flat(x)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(flat).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// JSON with every value that fits on a line of 120 characters on one line.
fn render(v: &Value, indent: usize, out: &mut String) {
    let flat = flat(v);
    let (open, close, items): (char, char, Vec<(Option<&String>, &Value)>) = match v {
        Value::Object(m) => ('{', '}', m.iter().map(|(k, x)| (Some(k), x)).collect()),
        Value::Array(a) => ('[', ']', a.iter().map(|x| (None, x)).collect()),
        _ => return out.push_str(&flat),
    };
    if indent + flat.len() <= 120 || items.is_empty() {
        return out.push_str(&flat);
    }
    out.push(open);
    for (i, (k, x)) in items.iter().enumerate() {
        out.push('\n');
        out.push_str(&" ".repeat(indent + 2));
        if let Some(k) = k {
            out.push_str(&serde_json::to_string(k).unwrap());
            out.push_str(": ");
        }
        render(x, indent + 2, out);
        if i + 1 < items.len() {
            out.push(',');
        }
    }
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push(close);
}

/// With GOLDEN_WRITE=1 (and only then), writes tests/golden once for this test run.
fn written() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if std::env::var("GOLDEN_WRITE").as_deref() != Ok("1") {
            return;
        }
        let g = generate();
        for (file, bytes) in &g.messages {
            std::fs::write(dir().join(file), bytes).unwrap();
        }
        let mut text = String::new();
        render(&g.manifest, 0, &mut text);
        text.push('\n');
        std::fs::write(dir().join("golden.json"), text).unwrap();
        std::fs::write(
            dir().join("origin.pub"),
            format!("{}\n", test_key().public_key().to_base64()),
        )
        .unwrap();
        eprintln!("GOLDEN_WRITE=1: wrote {}", dir().display());
    });
}

fn manifest() -> Value {
    written();
    serde_json::from_slice(&read("golden.json")).expect("tests/golden/golden.json")
}

fn entries<'a>(m: &'a Value, key: &str) -> &'a Vec<Value> {
    m[key]
        .as_array()
        .unwrap_or_else(|| panic!("golden.json: no `{key}`"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("golden.json: `{key}` in {v}"))
}

#[test]
fn golden_files_are_the_recorded_bytes() {
    let m = manifest();
    for e in entries(&m, "models").iter().chain(entries(&m, "messages")) {
        let file = text(e, "file");
        assert_eq!(
            sha256(&read(file)),
            text(e, "sha256"),
            "tests/golden/{file} is not the recorded file (its SHA-256 differs)"
        );
    }
    let listed: BTreeSet<&str> = entries(&m, "messages")
        .iter()
        .map(|e| text(e, "file"))
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    assert_eq!(
        present.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        listed,
        "the .bin files in tests/golden are the messages golden.json lists"
    );
    assert_eq!(m["key"], key_json(), "the key golden.json names");
    assert_eq!(
        String::from_utf8(read("origin.pub")).unwrap().trim(),
        text(&m["key"], "public_key")
    );
}

#[test]
fn golden_messages_are_format_version_1() {
    let m = manifest();
    assert_eq!(m["format_version"], json!(PINNED_VERSION));
    let pk = test_key().public_key();
    for e in entries(&m, "messages") {
        let file = text(e, "file");
        let bytes = read(file);
        let kind = MessageKind::of(&bytes).unwrap_or_else(|| panic!("{file}: no message prefix"));
        assert_eq!(kind.as_str(), text(e, "kind"), "{file}: kind");
        let mut prefix = MAGIC.to_vec();
        prefix.extend([
            text(e, "kind").as_bytes()[0].to_ascii_uppercase(),
            PINNED_VERSION,
        ]);
        assert_eq!(&bytes[..8], &prefix[..], "{file}: the 8-byte prefix");
        let info = inspect(&bytes, std::slice::from_ref(&pk), &Limits::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let info = serde_json::to_value(info).unwrap();
        assert_eq!(info, e["inspect"], "{file}: what inspect reads from it");
        assert_eq!(info["signature"], "verified", "{file}");
        assert_eq!(info["formatVersion"], json!(PINNED_VERSION), "{file}");
        assert_eq!(info["bytes"], e["bytes"], "{file}");
        for k in [
            "tenant",
            "issued_at",
            "epoch",
            "base_epoch",
            "watermark",
            "revokes",
        ] {
            if let Some(v) = e.get(k) {
                // The manifest's keys are the payload's names; inspect's are camelCase.
                let camel = k.replace("_epoch", "Epoch").replace("_at", "At");
                assert_eq!(&info[camel.as_str()], v, "{file}: `{k}`");
            }
        }
        // The content digest: the snapshot's, the delta's result, the carried delta's result.
        let digest = match kind {
            MessageKind::Watermark => info.get("delta").map_or(&Value::Null, |d| &d["digest"]),
            _ => &info["digest"],
        };
        assert_eq!(digest, &e["digest"], "{file}: the content digest");
    }
}

#[test]
fn golden_messages_reproduce_byte_for_byte() {
    written();
    let key = test_key();
    for spec in specs() {
        let committed = read(spec.file);
        let signed = sign(&spec, &key);
        if signed != committed {
            let at = signed.iter().zip(&committed).position(|(a, b)| a != b);
            panic!(
                "{}: the origin functions no longer sign the committed bytes ({} bytes now, {} \
                 committed, first difference at {:?}): the format-1 encoder changed",
                spec.file,
                signed.len(),
                committed.len(),
                at.unwrap_or(signed.len().min(committed.len()))
            );
        }
    }
}

#[test]
fn golden_decisions_after_loading_in_order() {
    let m = manifest();
    let pk = test_key().public_key();
    let mut ev = Evaluator::with_keys(text(&m, "tenant"), vec![pk]).unwrap();
    let stages = entries(&m, "stages");
    let messages = entries(&m, "messages");
    assert_eq!(
        stages.len(),
        messages.len() + 1,
        "a stage before each message and after the last"
    );
    let digests: Vec<&Value> = entries(&m, "models").iter().map(|e| &e["digest"]).collect();
    for (i, st) in stages.iter().enumerate() {
        let after = match i.checked_sub(1).map(|j| &messages[j]) {
            None => "nothing loaded".to_string(),
            Some(e) => {
                let file = text(e, "file");
                assert_eq!(st["after"], e["file"]);
                let issued_at = e["issued_at"].as_u64().unwrap();
                let outcome = load(&mut ev, &read(file), issued_at);
                assert_eq!(outcome, e["outcome"], "{file}: the outcome of loading it");
                file.to_string()
            }
        };
        assert_eq!(status(&ev), st["status"], "the status after {after}");
        if let Some(d) = st["status"]["digest"].as_str() {
            assert!(
                digests.contains(&&json!(d)),
                "after {after}: the digest {d} is a committed model's content digest"
            );
        }
        for r in entries(st, "requests") {
            let c = &r["check"];
            let (s, a, res) = (text(c, "subject"), text(c, "action"), text(c, "resource"));
            let clock = c["clock"].as_u64().unwrap();
            let now = c["now"].as_u64();
            assert_eq!(
                decision(&ev, s, a, res, clock, now),
                r["decision"],
                "after {after}: {s} {a} {res} at clock {clock}, now {now:?}"
            );
        }
    }
}

/// Where two JSON values first differ: the path, and both values there.
fn first_difference(at: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if x.contains_key(k) != y.contains_key(k) {
                    return Some(format!("{at}.{k}: {l} in one, absent in the other"));
                }
                first_difference(&format!("{at}.{k}"), l, r)
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(&format!("{at}[{i}]"), l, r)),
        _ => (a != b).then(|| format!("{at}: {a} committed, {b} generated")),
    }
}

#[test]
fn golden_manifest_is_what_the_generator_writes() {
    let committed = manifest();
    let generated = generate().manifest;
    if let Some(d) = first_difference("golden.json", &committed, &generated) {
        panic!("golden.json is not what the generator writes: {d}");
    }
}
