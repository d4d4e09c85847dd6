//! Conditions through the whole core: compiled from the model, carried by snapshots (format
//! version 2 only when used) and deltas, patched in ids as `apply_ops` applies them by name, and
//! judged by `diff`: a change it does not mark as a revocation never turns an allowed check into
//! a denied one, whatever the context.

use edge_authz::condition::{Attr, Context};
use edge_authz::{
    compile_snapshot, diff, diff_models, Evaluator, Model, Reason, Request, State,
    MIN_FORMAT_VERSION,
};
use serde_json::{json, Value};

use crate::common::{state_of_value, test_key};

const T0: u64 = 1_796_212_800_000; // a Wednesday, 12:00 UTC

fn base() -> Value {
    json!({
        "version": 1, "tenant": "acme",
        "actions": {"read": {"tier": "low"}, "export": {"tier": "high", "requires": ["mfa_recent"]}},
        "roles": {"viewer": ["read"], "exporter": ["read", "export"]},
        "resources": [{"id": "org:acme"}, {"id": "doc:a", "parent": "org:acme"}],
        "memberships": [{"member": "user:alice", "group": "group:eng"}],
        "assignments": [
            {"principal": "group:eng", "role": "exporter", "resource": "org:acme"},
            {"principal": "user:bob", "role": "viewer", "resource": "doc:a", "when": "office"},
            {"principal": "user:carol", "role": "viewer", "resource": "org:acme"},
            {"principal": "user:erin", "role": "viewer", "resource": "org:acme", "when": "trusted"}
        ],
        "conditions": {
            "mfa_recent": {"attr": "mfa_age_s", "op": "<=", "value": 900, "step_up": true},
            "office": {"attr": "ip", "op": "in_cidr", "value": "10.0.0.0/8"},
            "managed": {"attr": "device", "op": "==", "value": "managed"},
            "trusted": {"any": ["office", "managed"]}
        }
    })
}

fn contexts() -> Vec<Context> {
    let ctx = |v: Vec<(&str, Attr)>| {
        Context::new(v.into_iter().map(|(k, a)| (k.to_string(), a))).unwrap()
    };
    vec![
        Context::default(),
        ctx(vec![("ip", Attr::Str("10.1.2.3".into()))]),
        ctx(vec![("ip", Attr::Str("192.0.2.1".into()))]),
        ctx(vec![("mfa_age_s", Attr::Num(60.0))]),
        ctx(vec![
            ("mfa_age_s", Attr::Num(60.0)),
            ("ip", Attr::Str("10.1.2.3".into())),
            ("device", Attr::Str("managed".into())),
        ]),
        ctx(vec![("device", Attr::Str("managed".into()))]),
    ]
}

const REQUESTS: [(&str, &str, &str); 7] = [
    ("user:alice", "read", "doc:a"),
    ("user:alice", "export", "doc:a"),
    ("user:bob", "read", "doc:a"),
    ("user:bob", "read", "org:acme"),
    ("user:carol", "read", "doc:a"),
    ("user:carol", "export", "doc:a"),
    ("user:erin", "read", "doc:a"),
];

/// Every request under every context: (allowed, reason).
fn answers(ev: &Evaluator) -> Vec<(bool, Reason)> {
    let mut out = Vec::new();
    for ctx in contexts() {
        for (s, a, r) in REQUESTS {
            let at = edge_authz::At::clock(T0).with_context(&ctx);
            let d = ev.check(Request::new(s, a, r), at);
            out.push((d.allowed, d.reason));
        }
    }
    out
}

fn preview(state: &State) -> Evaluator {
    Evaluator::preview(state).unwrap()
}

fn signed_at(state: &State, epoch: u64) -> Evaluator {
    let key = test_key();
    let mut ev = Evaluator::with_keys("acme", vec![key.public_key()]).unwrap();
    ev.set_clock(Some(T0));
    ev.load_snapshot(&compile_snapshot(state, epoch, T0, &key).unwrap())
        .unwrap();
    ev
}

#[test]
fn snapshots_use_version_2_only_with_conditions() {
    let key = test_key();
    let with = state_of_value(base());
    let mut without = base();
    without.as_object_mut().unwrap().remove("conditions");
    without["actions"]["export"] = json!({"tier": "high"});
    for a in without["assignments"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("when");
    }
    let without = state_of_value(without);
    let version = |s: &State| compile_snapshot(s, 1, T0, &key).unwrap()[7];
    assert_eq!(version(&with), 2);
    assert_eq!(version(&without), MIN_FORMAT_VERSION);
    // The state comes back whole from the snapshot, and as model JSON.
    let ev = signed_at(&with, 1);
    assert_eq!(answers(&ev), answers(&preview(&with)));
    let again = Model::from_state(&with).compile().unwrap().state;
    assert_eq!(again, with);
}

/// A change to `base()`, whether `diff` must call it a revocation.
fn changes() -> Vec<(&'static str, Value, bool)> {
    let mut out = Vec::new();
    let mut m = base();
    m["conditions"]["office"]["value"] = json!("10.1.0.0/16");
    out.push(("a condition in use gets stricter", m, true));
    let mut m = base();
    m["conditions"]["managed"]["value"] = json!("byod");
    out.push(("a condition used through `any` changes", m, true));
    let mut m = base();
    m["conditions"]["unused"] = json!({"attr": "x", "op": "==", "value": 1});
    out.push(("a new condition nobody uses", m, false));
    let mut m = base();
    m["assignments"][2]["when"] = json!("office");
    out.push(("a condition put on an existing grant", m, true));
    let mut m = base();
    m["assignments"][1]["when"] = json!("trusted");
    out.push(("a grant's condition replaced", m, true));
    let mut m = base();
    m["assignments"][1].as_object_mut().unwrap().remove("when");
    out.push(("a grant's condition removed", m, false));
    let mut m = base();
    m["actions"]["read"]["requires"] = json!(["office"]);
    out.push(("an action requires a new condition", m, true));
    let mut m = base();
    m["actions"]["export"] = json!({"tier": "high"});
    out.push(("an action's requirement removed", m, false));
    let mut m = base();
    m["assignments"].as_array_mut().unwrap().push(
        json!({"principal": "user:dave", "role": "viewer", "resource": "doc:a", "when": "managed"}),
    );
    out.push(("a new grant with a condition", m, false));
    let mut m = base();
    m["conditions"]["mfa_recent"]["step_up"] = json!(false);
    out.push(("a condition in use changes its step-up", m, true));
    out
}

#[test]
fn diff_marks_the_changes_that_can_deny_and_deltas_patch_as_ops_apply() {
    let before = state_of_value(base());
    let key = test_key();
    for (what, model, must_revoke) in changes() {
        let after = state_of_value(model);
        let d = diff(&before, &after).unwrap();
        assert_eq!(d.revokes, must_revoke, "{what}: revokes");
        // Whatever diff says, no allowed answer turns into a denial unless it says revokes.
        let (old, new) = (answers(&preview(&before)), answers(&preview(&after)));
        let lost = old.iter().zip(&new).any(|(o, n)| o.0 && !n.0);
        assert!(
            d.revokes || !lost,
            "{what}: an allowed check was lost unmarked"
        );
        // The signed delta applies in ids to what `apply_ops` gives by name.
        let mut ev = signed_at(&before, 1);
        let delta = diff_models(&before, &after, 1, 2, T0, &key).unwrap();
        let expected_version = if delta.ops.conditional.is_empty() {
            1
        } else {
            2
        };
        assert_eq!(delta.bytes[7], expected_version, "{what}: format version");
        ev.apply_delta(&delta.bytes)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(answers(&ev), new, "{what}: decisions after the delta");
        let mut by_name = before.clone();
        edge_authz::apply_ops(&mut by_name, &d.ops).unwrap();
        assert_eq!(by_name, after, "{what}: apply_ops");
        // And back again.
        let back = diff_models(&after, &before, 2, 3, T0, &key).unwrap();
        ev.apply_delta(&back.bytes).unwrap();
        assert_eq!(answers(&ev), old, "{what}: decisions after undoing it");
    }
}

#[test]
fn a_delta_that_breaks_a_reference_is_refused_and_changes_nothing() {
    let before = state_of_value(base());
    let mut ev = signed_at(&before, 1);
    let status = ev.status();
    let mut ops = edge_authz::DeltaOps::default();
    ops.conditional.del.push("office".into());
    let mut by_name = before.clone();
    edge_authz::apply_ops(&mut by_name, &ops).unwrap();
    // A condition still in use: no model compiles to that, and no edge applies it.
    let key = test_key();
    let payload = edge_authz::sign_raw(
        edge_authz::MessageKind::Delta,
        &rmp_serde::to_vec(&(
            "acme",
            1u64,
            2u64,
            T0,
            serde_bytes::ByteBuf::from(unhex(&edge_authz::content_digest(&before).unwrap())),
            serde_bytes::ByteBuf::from(vec![0u8; 32]),
            true,
            &ops,
        ))
        .unwrap(),
        &key,
    );
    // Refused by the patch itself, before the result's digest is compared.
    assert_eq!(
        ev.apply_delta(&payload).unwrap_err().code(),
        "invalid_delta"
    );
    assert_eq!(ev.status(), status);
    assert_eq!(answers(&ev), answers(&preview(&before)));
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn listings_take_the_context() {
    let ev = preview(&state_of_value(base()));
    let none = Context::default();
    let office = Context::new([("ip".to_string(), Attr::Str("10.0.0.1".into()))]).unwrap();
    let list = |ctx: &Context| {
        ev.list_subjects("doc:a", "read", edge_authz::At::clock(T0).with_context(ctx))
            .unwrap()
    };
    assert_eq!(list(&none), ["user:alice", "user:carol"]);
    assert_eq!(
        list(&office),
        ["user:alice", "user:bob", "user:carol", "user:erin"]
    );
    let exports = |ctx: &Context| {
        ev.list_resources(
            "user:alice",
            "export",
            None,
            edge_authz::At::clock(T0).with_context(ctx),
        )
        .unwrap()
    };
    assert!(exports(&none).is_empty());
    let mfa = Context::new([("mfa_age_s".to_string(), Attr::Num(1.0))]).unwrap();
    assert_eq!(exports(&mfa), ["doc:a", "org:acme"]);
}
