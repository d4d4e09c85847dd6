//! The catalogue of malformed and hostile inputs. Each is refused with its stable code and leaves
//! the evaluator's status, and its answers, exactly as they were.
use edge_authz::{
    compile_snapshot, diff_models, sign_raw, sign_watermark, Content, Evaluator, Limits,
    MessageKind, Request, State,
};
use serde_bytes::ByteBuf;

use crate::common::{example, other_key, revoked, test_key};

fn with_tenant(mut s: State, t: &str) -> State {
    s.tenant = t.into();
    s
}

/// The messages that build `edge()`, in order: snapshot 1, the delta to 2, watermark 2.
fn edge_setup() -> Vec<(Call, Vec<u8>)> {
    let k = test_key();
    vec![
        (
            Call::Snapshot,
            compile_snapshot(&example(), 1, 1_000, &k).unwrap(),
        ),
        (
            Call::Delta,
            diff_models(&example(), &revoked(), 1, 2, 1_100, &k)
                .unwrap()
                .bytes,
        ),
        (
            Call::Watermark,
            sign_watermark("acme", 2, 1_200, None, &k).unwrap(),
        ),
    ]
}

fn apply(ev: &mut Evaluator, call: Call, bytes: &[u8]) -> Result<(), edge_authz::Error> {
    match call {
        Call::Snapshot => ev.load_snapshot(bytes).map(|_| ()),
        Call::Delta => ev.apply_delta(bytes).map(|_| ()),
        Call::Watermark => ev.apply_watermark(bytes).map(|_| ()),
    }
}

/// An evaluator at epoch 2 (snapshot 1 plus a delta) with watermark 2.
fn edge() -> Evaluator {
    let mut ev = Evaluator::with_keys("acme", vec![test_key().public_key()]).unwrap();
    for (call, bytes) in edge_setup() {
        apply(&mut ev, call, &bytes).unwrap();
    }
    ev
}

/// The checks whose answers must not change (at `now` 1 500).
const CHECKS: [(&str, &str, &str); 4] = [
    ("user:alice", "read", "doc:roadmap"),
    ("user:alice", "export", "workspace:eng"),
    ("user:bob", "read", "org:acme"),
    ("group:eng", "read", "org:acme"),
];

fn answers(ev: &Evaluator) -> Vec<String> {
    CHECKS
        .iter()
        .map(|(s, a, r)| {
            serde_json::to_string(&ev.explain(&ev.check(Request::new(s, a, r), 1_500))).unwrap()
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Call {
    Snapshot,
    Delta,
    Watermark,
}

/// A signed snapshot payload with arbitrary content.
fn raw_snapshot(tenant: &str, epoch: u64, content: &Content) -> Vec<u8> {
    let payload = rmp_serde::to_vec(&(tenant, epoch, 1_300u64, content)).unwrap();
    sign_raw(MessageKind::Snapshot, &payload, &test_key())
}

fn content_of(s: &State) -> Content {
    Content::from_state(s).unwrap()
}

/// A signed delta payload from epoch 2 with arbitrary fields.
fn raw_delta(
    base_epoch: u64,
    epoch: u64,
    base_digest: Vec<u8>,
    digest: Vec<u8>,
    ops: &edge_authz::DeltaOps,
) -> Vec<u8> {
    let payload = rmp_serde::to_vec(&(
        "acme",
        base_epoch,
        epoch,
        1_300u64,
        ByteBuf::from(base_digest),
        ByteBuf::from(digest),
        true,
        ops,
    ))
    .unwrap();
    sign_raw(MessageKind::Delta, &payload, &test_key())
}

fn held_digest(ev: &Evaluator) -> Vec<u8> {
    ev.index().unwrap().digest().to_vec()
}

fn catalogue(ev: &Evaluator) -> Vec<(&'static str, Call, Vec<u8>, &'static str)> {
    let k = test_key();
    let good_snap = compile_snapshot(&revoked(), 3, 1_300, &k).unwrap();
    let good_delta = diff_models(&revoked(), &example(), 2, 3, 1_300, &k)
        .unwrap()
        .bytes;
    let mut flipped_sig = good_snap.clone();
    // The signature sits inside the envelope; flip a byte near the start of the envelope body.
    flipped_sig[8 + 1 + 17 + 2 + 5] ^= 0x40;
    let mut flipped_payload = good_snap.clone();
    let last = flipped_payload.len() - 3;
    flipped_payload[last] ^= 0x01;
    let mut future = good_snap.clone();
    future[7] = edge_authz::FORMAT_VERSION + 1;
    let mut wrong_magic = good_snap.clone();
    wrong_magic[0] = b'X';
    let mut unknown_kind = good_snap.clone();
    unknown_kind[6] = b'Q';
    let mut trailing = good_snap.clone();
    trailing.extend_from_slice(b"\x00\x01");
    let mut nested = b"EDGEAZS\x01".to_vec();
    nested.extend(std::iter::repeat_n(0x91u8, 5_000));
    nested.push(0x00);
    let mut huge_len = b"EDGEAZS\x01".to_vec();
    huge_len.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]);
    let wrong_shape = sign_raw(
        MessageKind::Snapshot,
        &rmp_serde::to_vec(&("acme", "one", 3u64)).unwrap(),
        &k,
    );
    let forged_kid = {
        // Signed by another key but claiming the trusted key's id.
        let other = sign_raw(
            MessageKind::Snapshot,
            &rmp_serde::to_vec(&("acme", 3u64, 1_300u64, content_of(&revoked()))).unwrap(),
            &other_key(),
        );
        let (_, sig, payload): (String, ByteBuf, ByteBuf) =
            rmp_serde::from_slice(&other[8..]).unwrap();
        let mut out = other[..8].to_vec();
        out.extend(rmp_serde::to_vec(&(k.public_key().id(), sig, payload)).unwrap());
        out
    };
    let mut cycle = content_of(&example());
    // group:eng in group:staff exists; add group:staff in group:eng (ids: subjects are sorted).
    let id = |c: &Content, s: &str| c.subjects.iter().position(|x| x == s).unwrap() as u32;
    let (eng, staff) = (id(&cycle, "group:eng"), id(&cycle, "group:staff"));
    cycle.memberships.push((staff, eng));
    cycle.memberships.sort();
    let mut out_of_range = content_of(&example());
    out_of_range.assignments[0].1 = 999;
    let mut unsorted = content_of(&example());
    let mut names: Vec<&str> = unsorted.subjects.iter().collect();
    names.swap(0, 1);
    unsorted.subjects = names.into_iter().collect();
    let mut bad_id = content_of(&example());
    bad_id.resources = bad_id
        .resources
        .iter()
        .enumerate()
        .map(|(i, (n, p))| (if i == 0 { "no colon" } else { n }, p))
        .collect();
    let mut res_cycle = content_of(&example());
    res_cycle.resources = res_cycle
        .resources
        .iter()
        .enumerate()
        .map(|(i, (n, p))| (n, [Some(1), Some(0)].get(i).copied().unwrap_or(p)))
        .collect();
    let mut bad_tier = content_of(&example());
    bad_tier.actions[0].1 = 7;
    let held = held_digest(ev);
    let target_digest = Evaluator::preview(&example())
        .unwrap()
        .index()
        .unwrap()
        .digest()
        .to_vec();
    let restore = edge_authz::diff(&revoked(), &example()).unwrap().ops;
    let mut missing = edge_authz::DeltaOps::default();
    missing
        .memberships_del
        .push(("user:nobody".into(), "group:eng".into()));
    let mut dangling = edge_authz::DeltaOps::default();
    dangling.roles_del.push("viewer".into());
    let too_many = edge_authz::DeltaOps {
        suspended_add: (0..50).map(|i| format!("user:u{i}")).collect(),
        ..Default::default()
    };
    let other_tenant_delta = diff_models(
        &with_tenant(revoked(), "other"),
        &with_tenant(example(), "other"),
        2,
        3,
        1_300,
        &k,
    )
    .unwrap()
    .bytes;
    let unknown_key_delta = diff_models(&revoked(), &example(), 2, 3, 1_300, &other_key())
        .unwrap()
        .bytes;
    let wm_bad_inner = {
        let inner = raw_delta(2, 4, held.clone(), target_digest.clone(), &restore);
        let payload =
            rmp_serde::to_vec(&("acme", 3u64, 1_300u64, Some(ByteBuf::from(inner)))).unwrap();
        sign_raw(MessageKind::Watermark, &payload, &k)
    };
    let wm_unknown_inner = {
        let inner = diff_models(&revoked(), &example(), 2, 3, 1_300, &other_key())
            .unwrap()
            .bytes;
        let payload =
            rmp_serde::to_vec(&("acme", 3u64, 1_300u64, Some(ByteBuf::from(inner)))).unwrap();
        sign_raw(MessageKind::Watermark, &payload, &k)
    };
    let wm_in_wm = {
        let inner = sign_watermark("acme", 3, 1_300, None, &k).unwrap();
        let payload =
            rmp_serde::to_vec(&("acme", 3u64, 1_300u64, Some(ByteBuf::from(inner)))).unwrap();
        sign_raw(MessageKind::Watermark, &payload, &k)
    };
    let mut flipped_wm = sign_watermark("acme", 9, 1_300, None, &k).unwrap();
    let n = flipped_wm.len() - 2;
    flipped_wm[n] ^= 0x01;

    vec![
        ("empty input", Call::Snapshot, vec![], "bad_magic"),
        (
            "random garbage",
            Call::Snapshot,
            b"\x93\x01\x02\x03garbage-that-is-not-a-message".to_vec(),
            "bad_magic",
        ),
        (
            "truncated header",
            Call::Snapshot,
            b"EDGE".to_vec(),
            "malformed",
        ),
        ("wrong magic", Call::Snapshot, wrong_magic, "bad_magic"),
        (
            "future format version",
            Call::Snapshot,
            future,
            "unsupported_version",
        ),
        (
            "unknown kind byte",
            Call::Snapshot,
            unknown_kind,
            "malformed",
        ),
        (
            "delta given as a snapshot",
            Call::Snapshot,
            good_delta.clone(),
            "wrong_kind",
        ),
        (
            "snapshot given as a delta",
            Call::Delta,
            good_snap.clone(),
            "wrong_kind",
        ),
        (
            "truncated snapshot",
            Call::Snapshot,
            good_snap[..good_snap.len() / 2].to_vec(),
            "malformed",
        ),
        ("trailing bytes", Call::Snapshot, trailing, "malformed"),
        ("deeply nested arrays", Call::Snapshot, nested, "malformed"),
        (
            "array claiming 4 billion items",
            Call::Snapshot,
            huge_len,
            "malformed",
        ),
        (
            "payload of the wrong shape",
            Call::Snapshot,
            wrong_shape,
            "malformed",
        ),
        (
            "flipped signature bit",
            Call::Snapshot,
            flipped_sig,
            "bad_signature",
        ),
        (
            "flipped payload bit",
            Call::Snapshot,
            flipped_payload,
            "bad_signature",
        ),
        (
            "signed by an unknown key",
            Call::Snapshot,
            compile_snapshot(&revoked(), 3, 1_300, &other_key()).unwrap(),
            "unknown_key",
        ),
        (
            "trusted key id, other key's signature",
            Call::Snapshot,
            forged_kid,
            "bad_signature",
        ),
        (
            "another tenant's snapshot",
            Call::Snapshot,
            compile_snapshot(&with_tenant(revoked(), "other"), 3, 1_300, &k).unwrap(),
            "tenant_mismatch",
        ),
        (
            "snapshot rollback",
            Call::Snapshot,
            compile_snapshot(&example(), 1, 1_300, &k).unwrap(),
            "rollback",
        ),
        (
            "same epoch, other content",
            Call::Snapshot,
            compile_snapshot(&example(), 2, 1_300, &k).unwrap(),
            "epoch_conflict",
        ),
        (
            "signed snapshot with a group cycle",
            Call::Snapshot,
            raw_snapshot("acme", 3, &cycle),
            "invalid_snapshot",
        ),
        (
            "signed snapshot with an id out of range",
            Call::Snapshot,
            raw_snapshot("acme", 3, &out_of_range),
            "invalid_snapshot",
        ),
        (
            "signed snapshot with unsorted subjects",
            Call::Snapshot,
            raw_snapshot("acme", 3, &unsorted),
            "invalid_snapshot",
        ),
        (
            "signed snapshot with a malformed id",
            Call::Snapshot,
            raw_snapshot("acme", 3, &bad_id),
            "invalid_snapshot",
        ),
        (
            "signed snapshot with a resource cycle",
            Call::Snapshot,
            raw_snapshot("acme", 3, &res_cycle),
            "invalid_snapshot",
        ),
        (
            "signed snapshot with an unknown tier",
            Call::Snapshot,
            raw_snapshot("acme", 3, &bad_tier),
            "invalid_snapshot",
        ),
        (
            "signed snapshot at epoch 0",
            Call::Snapshot,
            raw_snapshot("acme", 0, &content_of(&example())),
            "invalid_snapshot",
        ),
        (
            "delta with a gap",
            Call::Delta,
            diff_models(&revoked(), &example(), 5, 6, 1_300, &k)
                .unwrap()
                .bytes,
            "epoch_gap",
        ),
        (
            "delta rollback",
            Call::Delta,
            diff_models(&example(), &revoked(), 0, 1, 1_300, &k)
                .unwrap()
                .bytes,
            "rollback",
        ),
        (
            "delta to the held epoch, other content",
            Call::Delta,
            diff_models(&example(), &example(), 1, 2, 1_300, &k)
                .unwrap()
                .bytes,
            "epoch_conflict",
        ),
        (
            "delta from another base at the same epoch",
            Call::Delta,
            diff_models(&example(), &revoked(), 2, 3, 1_300, &k)
                .unwrap()
                .bytes,
            "digest_mismatch",
        ),
        (
            "another tenant's delta",
            Call::Delta,
            other_tenant_delta,
            "tenant_mismatch",
        ),
        (
            "delta signed by an unknown key",
            Call::Delta,
            unknown_key_delta,
            "unknown_key",
        ),
        (
            "delta removing what is not there",
            Call::Delta,
            raw_delta(2, 3, held.clone(), target_digest.clone(), &missing),
            "invalid_delta",
        ),
        (
            "delta leaving a dangling role",
            Call::Delta,
            raw_delta(2, 3, held.clone(), target_digest.clone(), &dangling),
            "invalid_delta",
        ),
        (
            "delta whose result is not its digest",
            Call::Delta,
            raw_delta(2, 3, held.clone(), vec![0; 32], &restore),
            "digest_mismatch",
        ),
        (
            "delta with a short digest",
            Call::Delta,
            raw_delta(2, 3, vec![1, 2, 3], target_digest.clone(), &restore),
            "malformed",
        ),
        (
            "delta not moving forward",
            Call::Delta,
            raw_delta(3, 3, held.clone(), target_digest.clone(), &restore),
            "invalid_delta",
        ),
        (
            "delta with too many operations",
            Call::Delta,
            raw_delta(2, 3, held.clone(), target_digest.clone(), &too_many),
            "limit_exceeded",
        ),
        (
            "another tenant's watermark",
            Call::Watermark,
            sign_watermark("other", 9, 1_300, None, &k).unwrap(),
            "tenant_mismatch",
        ),
        (
            "watermark signed by an unknown key",
            Call::Watermark,
            sign_watermark("acme", 9, 1_300, None, &other_key()).unwrap(),
            "unknown_key",
        ),
        (
            "watermark with a flipped bit",
            Call::Watermark,
            flipped_wm,
            "bad_signature",
        ),
        (
            "watermark carrying a delta to another epoch",
            Call::Watermark,
            wm_bad_inner,
            "invalid_delta",
        ),
        (
            "watermark carrying an unknown key's delta",
            Call::Watermark,
            wm_unknown_inner,
            "unknown_key",
        ),
        (
            "snapshot given as a watermark",
            Call::Watermark,
            good_snap,
            "wrong_kind",
        ),
        (
            "watermark carrying a watermark",
            Call::Watermark,
            wm_in_wm,
            "wrong_kind",
        ),
    ]
}

#[test]
fn hostile_inputs_are_refused_and_change_nothing() {
    let mut ev = edge();
    ev.set_limits(Limits {
        max_entries: 40,
        ..Limits::default()
    });
    let status = ev.status();
    let before = answers(&ev);
    let cases = catalogue(&ev);
    assert!(
        cases.len() >= 30,
        "the catalogue has {} entries",
        cases.len()
    );
    for (name, call, bytes, code) in &cases {
        let err = apply(&mut ev, *call, bytes)
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert_eq!(err.code(), *code, "{name}: {err}");
        assert!(!err.to_string().is_empty());
        assert_eq!(ev.status(), status, "{name}: status changed");
        assert_eq!(answers(&ev), before, "{name}: answers changed");
    }
    println!(
        "hostile catalogue: {} inputs refused, state unchanged",
        cases.len()
    );
}

/// The Durable Object's ledger (content, no index) refuses what an evaluator refuses, with the
/// same code, and answers no check.
#[test]
fn a_ledger_refuses_what_an_evaluator_refuses() {
    let ledger = || {
        let mut ev = Evaluator::ledger("acme", vec![test_key().public_key()]).unwrap();
        ev.set_limits(Limits {
            max_entries: 40,
            ..Limits::default()
        });
        for (call, bytes) in edge_setup() {
            apply(&mut ev, call, &bytes).unwrap();
        }
        ev
    };
    let full = edge();
    let l = ledger();
    let (fs, ls) = (full.status(), l.status());
    assert_eq!(
        (ls.epoch, ls.watermark, ls.confirmed_at, &ls.digest),
        (fs.epoch, fs.watermark, fs.confirmed_at, &fs.digest)
    );
    assert_eq!(ls.heap_bytes, 0);
    assert_eq!(
        l.check(Request::new("user:alice", "read", "doc:roadmap"), 1_500)
            .reason
            .as_str(),
        "no_snapshot"
    );
    let mut l = ledger();
    let before = l.status();
    for (name, call, bytes, code) in &catalogue(&full) {
        let e = apply(&mut l, *call, bytes)
            .err()
            .unwrap_or_else(|| panic!("{name}: the ledger took it"));
        assert_eq!(e.code(), *code, "{name}: {e}");
        assert_eq!(l.status(), before, "{name}: status changed");
    }
}

#[test]
fn oversized_messages_are_refused_before_decoding() {
    let mut ev = edge();
    let status = ev.status();
    ev.set_limits(Limits {
        max_message_bytes: 100,
        ..Limits::default()
    });
    let big = compile_snapshot(&revoked(), 3, 1_300, &test_key()).unwrap();
    assert!(big.len() > 100);
    for e in [
        ev.load_snapshot(&big).unwrap_err(),
        ev.apply_delta(&big).unwrap_err(),
        ev.apply_watermark(&big).unwrap_err(),
    ] {
        assert_eq!(e.code(), "too_large");
    }
    assert_eq!(ev.status(), status);
}

#[test]
fn preview_evaluators_take_no_signed_messages() {
    let mut ev = Evaluator::preview(&example()).unwrap();
    let status = ev.status();
    let k = test_key();
    assert_eq!(
        ev.load_snapshot(&compile_snapshot(&example(), 1, 0, &k).unwrap())
            .unwrap_err()
            .code(),
        "preview_mode"
    );
    assert_eq!(
        ev.apply_delta(
            &diff_models(&example(), &revoked(), 0, 1, 0, &k)
                .unwrap()
                .bytes
        )
        .unwrap_err()
        .code(),
        "preview_mode"
    );
    assert_eq!(
        ev.apply_watermark(&sign_watermark("acme", 5, 0, None, &k).unwrap())
            .unwrap_err()
            .code(),
        "preview_mode"
    );
    assert_eq!(ev.status(), status);
    assert!(status.preview);
}

#[test]
fn a_carried_delta_that_cannot_apply_still_raises_the_watermark() {
    let k = test_key();
    let mut ev = Evaluator::with_keys("acme", vec![k.public_key()]).unwrap();
    ev.load_snapshot(&compile_snapshot(&example(), 1, 1_000, &k).unwrap())
        .unwrap();
    // The revocation is epoch 3, computed from epoch 2 which this edge never saw.
    let delta = diff_models(&example(), &revoked(), 2, 3, 1_100, &k)
        .unwrap()
        .bytes;
    let a = ev
        .apply_watermark(&sign_watermark("acme", 3, 1_100, Some(&delta), &k).unwrap())
        .unwrap();
    assert_eq!(a.watermark, 3);
    assert!(
        matches!(a.delta, Some(edge_authz::DeltaOutcome::Skipped(ref e)) if e.code() == "epoch_gap")
    );
    let d = ev.check(Request::new("user:alice", "read", "doc:roadmap"), 1_200);
    assert_eq!(d.reason, edge_authz::Reason::StaleSnapshot);
    assert!(ev.status().stale);
}

#[test]
fn inspect_refuses_nested_watermarks() {
    let k = test_key();
    let mut msg = sign_watermark("acme", 1, 0, None, &k).unwrap();
    for _ in 0..3 {
        let payload = rmp_serde::to_vec(&("acme", 1u64, 0u64, Some(ByteBuf::from(msg)))).unwrap();
        msg = sign_raw(MessageKind::Watermark, &payload, &k);
    }
    let err = edge_authz::inspect(&msg, &[], &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "wrong_kind");
}

/// Writes the catalogue as JSON (target/tmp/hostile-catalogue.json) for the npm package's tests
/// (tests/js/hostile.test.*), which replay it through the JavaScript API.
#[test]
fn export_the_catalogue_for_the_js_tests() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let call = |c: Call| format!("{c:?}").to_lowercase();
    let setup: Vec<_> = edge_setup()
        .iter()
        .map(|(c, b)| serde_json::json!({"call": call(*c), "bytes": b64(b)}))
        .collect();
    // The package's evaluators have the default limits, not the `max_entries: 40` of the test
    // above: each entry also says what an evaluator with the default limits answers.
    let mut plain = edge();
    let entries: Vec<_> = catalogue(&plain)
        .iter()
        .map(|(name, c, b, code)| {
            let default = apply(&mut plain, *c, b)
                .err()
                .unwrap_or_else(|| panic!("{name}: accepted with the default limits"));
            serde_json::json!({"name": name, "call": call(*c), "bytes": b64(b), "code": code,
                               "code_default_limits": default.code()})
        })
        .collect();
    let checks: Vec<_> = CHECKS
        .iter()
        .zip(answers(&edge()))
        .map(|((s, a, r), d)| {
            let decision: serde_json::Value = serde_json::from_str(&d).unwrap();
            serde_json::json!({"request": [s, a, r], "now": 1_500, "decision": decision})
        })
        .collect();
    let doc = serde_json::json!({
        "tenant": "acme",
        "public_key": test_key().public_key().to_base64(),
        "setup": setup,
        "checks": checks,
        "limits": {"max_entries": 40},
        "entries": entries,
    });
    let path = concat!(env!("CARGO_TARGET_TMPDIR"), "/hostile-catalogue.json");
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    println!("wrote {path}: {} entries", entries.len());
}
