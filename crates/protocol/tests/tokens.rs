//! Token checks on the shared cases of tests/tokens/cases.json (tokens signed by the `jose`
//! library): the core's gate 6 with signatures verified natively, each case's reason, subject
//! and, where the case says what is wrong, the detail.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: they fail loudly"
)]

use edge_authz::condition::Context;
use edge_authz::token::Fault;
use edge_authz::{At, Evaluator, Model, SecretKey, TokenAnswer};
use edge_authz_protocol::jws;
use serde_json::Value;

fn cases() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/tokens/cases.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A signed evaluator holding the cases' model, confirmed at `clock`.
fn edge(model: &Value, clock: u64) -> Evaluator {
    let state = Model::from_value(model.clone())
        .unwrap()
        .compile()
        .unwrap()
        .state;
    let key = SecretKey::from_seed([7; 32]);
    let snap = edge_authz::compile_snapshot(&state, 1, clock, &key).unwrap();
    let mut e = Evaluator::with_keys("acme", vec![key.public_key()]).unwrap();
    e.set_clock(Some(clock));
    e.load_snapshot(&snap).unwrap();
    e
}

/// What a case's name says is wrong with its token.
fn fault_of(name: &str) -> Option<Fault> {
    let table = [
        ("wrong issuer", Fault::Issuer),
        ("wrong audience", Fault::Audience),
        ("unknown kid", Fault::Key),
        ("signed by another key", Fault::Signature),
        ("alg none", Fault::Algorithm),
        ("HS256", Fault::Algorithm),
        ("crit header", Fault::Algorithm),
        ("truncated", Fault::Malformed),
        ("oversized", Fault::Malformed),
        ("bad base64url", Fault::Malformed),
        ("duplicate header", Fault::Malformed),
        ("signed with the first issuer's key", Fault::Key),
        ("not yet valid", Fault::NotYetValid),
        ("expired", Fault::Expired),
        ("revoked session", Fault::SessionRevoked),
        ("revoked family", Fault::FamilyRevoked),
        ("before not_before", Fault::SignedOut),
    ];
    table
        .iter()
        .find(|(n, _)| name.contains(n))
        .map(|(_, f)| *f)
}

fn check(e: &Evaluator, case: &Value, clock: u64) -> edge_authz::TokenDecision {
    let ctx = Context::EMPTY;
    let at = At::clock(clock).with_context(&ctx);
    let mut verify = |v: &edge_authz::token::Verify<'_>| Some(jws::verify(v));
    match e.check_token(
        case["token"].as_str().unwrap(),
        case["action"].as_str().unwrap(),
        case["resource"].as_str().unwrap(),
        at,
        &mut verify,
    ) {
        TokenAnswer::Decided(d) => d,
        TokenAnswer::Verify { .. } => panic!("a synchronous verifier is never asked again"),
    }
}

#[test]
fn every_case_gets_its_reason_subject_and_detail() {
    let all = cases();
    let clock = all["clock"].as_u64().unwrap();
    let e = edge(&all["model"], clock);
    let mut seen = 0;
    for case in all["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let d = check(&e, case, clock);
        let view = e.explain_token(&d);
        let expect = &case["expect"];
        assert_eq!(
            view.reason.as_str(),
            expect["reason"].as_str().unwrap(),
            "{name}: {view:?}"
        );
        assert_eq!(view.allowed, expect["allowed"].as_bool().unwrap(), "{name}");
        assert_eq!(view.subject, expect["subject"].as_str(), "{name}");
        if let Some(f) = fault_of(name) {
            assert_eq!(d.fault, Some(f), "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 50, "{seen} cases");
}

#[test]
fn a_signature_is_asked_for_when_the_verifier_cannot_say() {
    let all = cases();
    let clock = all["clock"].as_u64().unwrap();
    let e = edge(&all["model"], clock);
    let case = &all["cases"][0];
    let ctx = Context::EMPTY;
    let mut unsure = |_: &edge_authz::token::Verify<'_>| None;
    let answer = e.check_token(
        case["token"].as_str().unwrap(),
        "read",
        "doc:roadmap",
        At::clock(clock).with_context(&ctx),
        &mut unsure,
    );
    let TokenAnswer::Verify { key, message, .. } = answer else {
        panic!("expected a request to verify, got {answer:?}");
    };
    assert!(key.contains("\"kty\""), "{key}");
    let token = case["token"].as_str().unwrap();
    assert_eq!(
        message,
        token.as_bytes()[..token.rfind('.').unwrap()].to_vec()
    );
}

#[test]
fn the_callers_attributes_never_stand_in_for_mapped_claims() {
    // The export case without `auth_time` asks for a step-up; a caller that says its own
    // `mfa_age_s` does not change that, because the issuer maps that attribute.
    let all = cases();
    let clock = all["clock"].as_u64().unwrap();
    let e = edge(&all["model"], clock);
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .unwrap()
                .ends_with("export without auth_time")
        })
        .unwrap();
    let ctx = edge_authz_protocol::read_context(Some(&serde_json::json!({"mfa_age_s": 1})))
        .unwrap()
        .attrs;
    let mut verify = |v: &edge_authz::token::Verify<'_>| Some(jws::verify(v));
    let TokenAnswer::Decided(d) = e.check_token(
        case["token"].as_str().unwrap(),
        "export",
        "workspace:eng",
        At::clock(clock).with_context(&ctx),
        &mut verify,
    ) else {
        panic!()
    };
    assert_eq!(d.decision.reason.as_str(), "step_up_required");
}

#[test]
fn a_stale_snapshot_refuses_before_the_token_is_read() {
    let all = cases();
    let clock = all["clock"].as_u64().unwrap();
    let e = edge(&all["model"], clock);
    // Past the high tier's bound: freshness (gate 5) comes before the token (gate 6), even for
    // a token that is garbage.
    let ctx = Context::EMPTY;
    let mut verify = |v: &edge_authz::token::Verify<'_>| Some(jws::verify(v));
    let TokenAnswer::Decided(d) = e.check_token(
        "not.a.token",
        "export",
        "workspace:eng",
        At::clock(clock + 60_000).with_context(&ctx),
        &mut verify,
    ) else {
        panic!()
    };
    assert_eq!(d.decision.reason.as_str(), "freshness_exceeded");
}
