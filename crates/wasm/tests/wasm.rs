//! The npm package's bindings (`edge_authz_wasm`) under wasm-bindgen-test, in Node or, with
//! `WASM_BINDGEN_USE_BROWSER=1`, in headless Chromium: the answer words and grant ids the
//! JavaScript side decodes, errors as `Error` objects with a `code`, and a failed call changing
//! nothing.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: they fail loudly and index what they built"
)]

use edge_authz::Reason;
use edge_authz_wasm::{
    answer_layout, compile_snapshot_raw, diff_models_raw, key_pair_from_seed, sign_watermark_raw,
    RawEvaluator, ABSENT, HAS_GRANT, ID_FLAG, NOT_LOOKED, STALE_IDS,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const MODEL: &str = r#"{
  "version": 1, "tenant": "acme",
  "actions": { "read": { "tier": "low" }, "export": { "tier": "high" } },
  "roles": { "viewer": ["read"], "admin": ["read", "export"] },
  "resources": [ { "id": "org:acme" }, { "id": "doc:plan", "parent": "org:acme" } ],
  "memberships": [ { "member": "user:alice", "group": "group:eng" },
                   { "member": "group:eng", "group": "group:staff" } ],
  "assignments": [ { "principal": "group:staff", "role": "viewer", "resource": "org:acme" } ],
  "suspended": ["user:mallory"]
}"#;

const NOW: f64 = 1_000_000.0;

/// The answer word's layout as the package's JavaScript reads it (`answer_layout`).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layout {
    reasons: Vec<String>,
    tiers: Vec<Option<String>>,
    allowed: u32,
    reason_shift: u32,
    reason_mask: u32,
    tier_shift: u32,
    tier_mask: u32,
}

fn layout() -> Layout {
    serde_json::from_str(&answer_layout()).unwrap()
}

/// The reason a word names, decoded as the JavaScript side decodes it: by name.
fn reason(word: u32) -> Reason {
    let l = layout();
    let name = &l.reasons[((word >> l.reason_shift) & l.reason_mask) as usize];
    *Reason::ALL.iter().find(|r| r.as_str() == name).unwrap()
}

/// The allowed bit.
fn allowed(word: u32) -> u32 {
    u32::from(word & layout().allowed != 0)
}

/// The tier's index in the layout's `tiers` (0: none, 1 low, 2 standard, 3 high).
fn tier_of(word: u32) -> u32 {
    let l = layout();
    (word >> l.tier_shift) & l.tier_mask
}

#[wasm_bindgen_test]
fn the_layout_names_every_reason_and_tier_once_in_the_cores_order() {
    let l = layout();
    let reasons: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(l.reasons, reasons);
    assert_eq!(
        l.tiers,
        [
            None,
            Some("low".into()),
            Some("standard".into()),
            Some("high".into())
        ]
    );
    assert!(l.reasons.len() <= (l.reason_mask + 1) as usize);
}

fn code_of(e: JsValue) -> String {
    assert!(
        e.is_instance_of::<js_sys::Error>(),
        "errors are Error objects"
    );
    js_sys::Reflect::get(&e, &"code".into())
        .unwrap()
        .as_string()
        .unwrap()
}

fn keys() -> (String, String) {
    let pair = key_pair_from_seed(&[7; 32]).unwrap();
    (pair[0].clone(), pair[1].clone())
}

fn signed() -> (RawEvaluator, String) {
    let (public, secret) = keys();
    let mut ev = RawEvaluator::new("acme", vec![public]).unwrap();
    let snap = compile_snapshot_raw(MODEL, 1.0, &secret, NOW).unwrap();
    assert_eq!(ev.load_snapshot(&snap).unwrap(), vec![1.0, 1.0]);
    (ev, secret)
}

#[wasm_bindgen_test]
fn a_grant_comes_back_as_a_word_and_ids() {
    let (mut ev, _) = signed();
    let (word, out) = ev.check_str("user:alice", "read", "doc:plan", NOW, NOW);
    assert_eq!(allowed(word), 1);
    assert_eq!(reason(word), Reason::Granted);
    assert_eq!(tier_of(word), 1, "tier low");
    assert_ne!(word & HAS_GRANT, 0);
    // principal, role, resource, hops, then the path from the subject to the principal.
    let names: Vec<String> = [(0, out[0]), (1, out[1]), (2, out[2])]
        .iter()
        .map(|(k, id)| ev.name(*k, *id))
        .collect();
    assert_eq!(names, ["group:staff", "viewer", "org:acme"]);
    assert_eq!(out[3] as usize, out.len() - 4);
    let path: Vec<String> = out[4..].iter().map(|id| ev.name(0, *id)).collect();
    assert_eq!(path, ["user:alice", "group:eng", "group:staff"]);
}

#[wasm_bindgen_test]
fn denials_carry_their_reason_and_tier() {
    let (mut ev, _) = signed();
    let cases = [
        (("user:alice", "export", "doc:plan"), Reason::NoGrant, 3),
        (("user:mallory", "read", "doc:plan"), Reason::Suspended, 1),
        (
            ("user:alice", "read", "doc:none"),
            Reason::UnknownResource,
            1,
        ),
        (("user:alice", "fly", "doc:plan"), Reason::UnknownAction, 0),
        (("not an id", "read", "doc:plan"), Reason::InvalidRequest, 1),
    ];
    for ((s, a, r), want, tier) in cases {
        let (word, out) = ev.check_str(s, a, r, NOW, NOW);
        assert_eq!(
            (allowed(word), reason(word), tier_of(word)),
            (0, want, tier),
            "{s} {a} {r}"
        );
        assert!(out.is_empty());
    }
    // A malformed context is passed as a negative time.
    let (word, _) = ev.check_str("user:alice", "read", "doc:plan", NOW, -1.0);
    assert_eq!(reason(word), Reason::InvalidRequest);
    // Past the low tier's default bound (300 s) since the snapshot was issued, by the clock.
    let (word, _) = ev.check_str("user:alice", "read", "doc:plan", NOW + 300_001.0, NOW);
    assert_eq!(reason(word), Reason::FreshnessExceeded);
    // A clock that is not a time fails closed.
    for clock in [-1.0, 0.5, f64::NAN, 2f64.powi(53)] {
        let (word, _) = ev.check_str("user:alice", "read", "doc:plan", clock, NOW);
        assert_eq!(
            (allowed(word), reason(word)),
            (0, Reason::InvalidRequest),
            "{clock}"
        );
    }
}

#[wasm_bindgen_test]
fn the_clock_judges_freshness_and_now_only_expiry() {
    let (mut ev, _) = signed();
    // `now` in the past does not make a state fresh at a late clock.
    let (word, _) = ev.check_str("user:alice", "read", "doc:plan", NOW + 300_001.0, 0.0);
    assert_eq!(reason(word), Reason::FreshnessExceeded);
    let (word, _) = ev.check_str("user:alice", "read", "doc:plan", NOW, NOW + 1e9);
    assert_eq!(reason(word), Reason::Granted);
    let out = ev.check_many_str(&[["user:alice", "read", "doc:plan"]], NOW + 300_001.0, NOW);
    assert_eq!(reason(out[0]), Reason::FreshnessExceeded);
    let listed = ev.list_resources("user:alice", "read", None, NOW + 300_001.0, NOW, -1.0, -1);
    assert_eq!(code_of(listed.unwrap_err()), "freshness_exceeded");
    let listed = ev
        .list_subjects("doc:plan", "read", NOW, 0.0, -1.0, -1)
        .unwrap();
    assert_eq!(listed, ["user:alice"]);
    assert_eq!(
        code_of(
            ev.list_subjects("doc:plan", "read", -1.0, NOW, -1.0, -1)
                .unwrap_err()
        ),
        "invalid_clock"
    );
}

#[wasm_bindgen_test]
fn a_message_from_the_future_is_refused_once_the_clock_is_set() {
    let (mut ev, secret) = signed();
    let before = ev.status();
    let year_2100 = 4_102_444_800_000.0;
    let beat = sign_watermark_raw("acme", 1.0, &secret, year_2100, None).unwrap();
    ev.set_clock(NOW).unwrap();
    assert_eq!(
        code_of(ev.apply_watermark(&beat).unwrap_err()),
        "clock_skew"
    );
    let snap = compile_snapshot_raw(MODEL, 2.0, &secret, NOW + 1_001.0).unwrap();
    assert_eq!(code_of(ev.load_snapshot(&snap).unwrap_err()), "clock_skew");
    assert_eq!(ev.status(), before);
    // Within the second of tolerance it is taken.
    let snap = compile_snapshot_raw(MODEL, 2.0, &secret, NOW + 1_000.0).unwrap();
    assert_eq!(ev.load_snapshot(&snap).unwrap(), vec![2.0, 1.0]);
    assert_eq!(
        code_of(ev.set_clock(f64::INFINITY).unwrap_err()),
        "invalid_clock"
    );
}

#[wasm_bindgen_test]
fn check_many_answers_in_order_with_grants_after_the_words() {
    let (mut ev, _) = signed();
    let out = ev.check_many_str(
        &[
            ["user:alice", "read", "doc:plan"],
            ["user:bob", "read", "doc:plan"],
            ["group:eng", "read", "org:acme"],
        ],
        NOW,
        NOW,
    );
    let words = &out[..3];
    assert_eq!(
        words.iter().map(|w| reason(*w)).collect::<Vec<_>>(),
        [Reason::Granted, Reason::NoGrant, Reason::Granted]
    );
    // Two grants follow: alice's (path of 3) then group:eng's (path of 2).
    let first = &out[3..];
    assert_eq!(first[3], 3);
    let second = &first[4 + 3..];
    assert_eq!(second[3], 2);
    assert_eq!(ev.name(0, second[4]), "group:eng");
    assert_eq!(second.len(), 4 + 2);
}

#[wasm_bindgen_test]
fn errors_are_error_objects_with_codes_and_change_nothing() {
    let (mut ev, secret) = signed();
    let before = ev.status();
    assert_eq!(
        code_of(ev.load_snapshot(b"garbage").unwrap_err()),
        "bad_magic"
    );
    let other = key_pair_from_seed(&[9; 32]).unwrap();
    let forged = compile_snapshot_raw(MODEL, 2.0, &other[1], NOW).unwrap();
    assert_eq!(
        code_of(ev.load_snapshot(&forged).unwrap_err()),
        "unknown_key"
    );
    let gap = diff_models_raw(MODEL, MODEL, 5.0, 6.0, &secret, NOW).unwrap();
    assert_eq!(code_of(ev.apply_delta(&gap[1..]).unwrap_err()), "epoch_gap");
    let other_tenant = MODEL.replace("\"acme\"", "\"umbrella\"");
    let foreign = compile_snapshot_raw(&other_tenant, 2.0, &secret, NOW).unwrap();
    assert_eq!(
        code_of(ev.load_snapshot(&foreign).unwrap_err()),
        "tenant_mismatch"
    );
    assert_eq!(ev.status(), before);
    let bad = RawEvaluator::preview("{\"version\": 1}").err().unwrap();
    assert_eq!(code_of(bad.clone()), "invalid_model");
    let detail = js_sys::Reflect::get(&bad, &"detail".into()).unwrap();
    assert_eq!(detail.as_string().as_deref(), Some("invalid_json"));
    assert_eq!(
        code_of(compile_snapshot_raw(MODEL, 0.5, &secret, NOW).unwrap_err()),
        "invalid_argument"
    );
}

#[wasm_bindgen_test]
fn a_revocation_rides_on_a_watermark() {
    let (mut ev, secret) = signed();
    let after = MODEL.replace(r#"{ "member": "user:alice", "group": "group:eng" },"#, "");
    let delta = diff_models_raw(MODEL, &after, 1.0, 2.0, &secret, NOW).unwrap();
    assert_eq!(delta[0], 1, "removing a membership revokes");
    let bare = sign_watermark_raw("acme", 2.0, &secret, NOW, None).unwrap();
    let carried = sign_watermark_raw("acme", 2.0, &secret, NOW, Some(delta[1..].to_vec())).unwrap();
    let mut stale = signed().0;
    stale.apply_watermark(&bare).unwrap();
    let (word, _) = stale.check_str("user:alice", "read", "doc:plan", NOW, NOW);
    assert_eq!(reason(word), Reason::StaleSnapshot);
    let result = ev.apply_watermark(&carried).unwrap();
    assert!(result.contains("\"applied\":true"), "{result}");
    let (word, _) = ev.check_str("user:alice", "read", "doc:plan", NOW, NOW);
    assert_eq!(reason(word), Reason::NoGrant);
    assert_eq!(ev.epoch(), 2.0);
}

#[wasm_bindgen_test]
fn a_check_by_names_leaves_its_ids_and_a_check_by_ids_answers_the_same() {
    let (mut ev, _) = signed();
    let serial = ev.index_serial();
    assert!(serial >= 0.0);
    let cases = [
        ["user:alice", "read", "doc:plan"],
        ["user:alice", "export", "doc:plan"],
        ["user:mallory", "read", "doc:plan"],
        ["user:nobody", "read", "doc:plan"],
        ["user:alice", "delete", "doc:plan"],
        ["user:alice", "read", "doc:other"],
    ];
    for [s, a, r] in cases {
        let (by_names, out_names) = ev.check_str(s, a, r, NOW, NOW);
        let [is, ia, ir] = ev.looked();
        assert!(
            [is, ia, ir].iter().all(|c| *c != NOT_LOOKED),
            "{s} {a} {r}: every well-formed name has an id or ABSENT"
        );
        let by_ids = ev.check_ids(is, ia, ir, serial, NOW, NOW, -1.0, -1, false);
        assert_eq!(by_ids & !(1 << 8), by_names & !(1 << 8), "{s} {a} {r}");
        let (_, out_ids) = ev.check_str(s, a, r, NOW, NOW);
        assert_eq!(out_ids, out_names);
    }
    // Names the index does not hold come back ABSENT; malformed ones have nothing to keep.
    ev.check_str("user:nobody", "delete", "doc:other", NOW, NOW);
    assert_eq!(ev.looked(), [ABSENT, ABSENT, ABSENT]);
    ev.check_str("user:alice", "Not An Action", "doc:plan", NOW, NOW);
    let [s, a, _] = ev.looked();
    assert_ne!(
        s, NOT_LOOKED,
        "a held subject keeps its id whatever the action"
    );
    assert_eq!(a, NOT_LOOKED);
    ev.check_str("nocolon", "read", "doc:other", NOW, NOW);
    assert_eq!(ev.looked()[0], NOT_LOOKED);
    assert_eq!(ev.looked()[2], ABSENT, "each field is looked up on its own");
}

#[wasm_bindgen_test]
fn ids_of_another_index_are_never_answered() {
    let (mut ev, secret) = signed();
    let serial = ev.index_serial();
    ev.check_str("user:alice", "read", "doc:plan", NOW, NOW);
    let [s, a, r] = ev.looked();
    let w = ev.check_ids(s, a, r, serial + 1.0, NOW, NOW, -1.0, -1, false);
    assert_eq!(w, STALE_IDS);
    // Out of the index's range: refused as stale, never read.
    assert_eq!(
        ev.check_ids(1 << 20, a, r, serial, NOW, NOW, -1.0, -1, false),
        STALE_IDS
    );
    // A new state: the old serial is refused, by check and by check_many.
    let snap = compile_snapshot_raw(MODEL, 2.0, &secret, NOW).unwrap();
    ev.load_snapshot(&snap).unwrap();
    assert_ne!(ev.index_serial(), serial);
    assert_eq!(
        ev.check_ids(s, a, r, serial, NOW, NOW, -1.0, -1, false),
        STALE_IDS
    );
    let (res, _, _) = ev.check_many_fields(&[Err(s), Ok("read"), Ok("doc:plan")], serial, NOW);
    assert_eq!(res, STALE_IDS);
    // Nothing held: no serial, and no id is answered.
    let (public, _) = keys();
    let mut empty = RawEvaluator::new("acme", vec![public]).unwrap();
    assert_eq!(empty.index_serial(), -1.0);
    assert_eq!(
        empty.check_ids(0, 0, 0, 0.0, NOW, NOW, -1.0, -1, false),
        STALE_IDS
    );
}

#[wasm_bindgen_test]
fn check_many_takes_names_and_ids_mixed_and_hands_back_the_ids() {
    let (mut ev, _) = signed();
    let serial = ev.index_serial();
    let by_names = ev.check_many_str(
        &[
            ["user:alice", "read", "doc:plan"],
            ["user:nobody", "read", "doc:plan"],
            ["bad", "read", "doc:plan"],
        ],
        NOW,
        NOW,
    );
    ev.check_str("user:alice", "read", "doc:plan", NOW, NOW);
    let [s, a, r] = ev.looked();
    let fields = [
        Err(s),
        Ok("read"),
        Err(r),
        Ok("user:nobody"),
        Err(a),
        Ok("doc:plan"),
        Ok("bad"),
        Err(a),
        Err(r),
    ];
    let (res, lens, out) = ev.check_many_fields(&fields, serial, NOW);
    assert_eq!(res, 0);
    assert_eq!(out, by_names, "the same answers by ids as by names");
    // The names' ids come back in their fields' places; a malformed one has none.
    assert_eq!(lens[1], ID_FLAG | a);
    assert_eq!(lens[3], ID_FLAG | ABSENT);
    assert_eq!(lens[5], ID_FLAG | r);
    assert_eq!(lens[6], NOT_LOOKED);
    assert_eq!(lens[0], ID_FLAG | s, "an id given stays as it was");
}
