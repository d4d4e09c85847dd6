//! Tokens: the input is a token (any bytes as text) checked against the shared token cases'
//! model (tests/tokens/cases.json: three issuer keys, revoked sessions and families, a
//! sign-out). Nothing panics; a token the strict reader refuses is `token_invalid` (malformed or
//! algorithm) whatever the verifier says; an allowed token passed every gate of gate 6 (its
//! issuer, key, audience and times hold and no session gate refuses it), with the subject its
//! issuer's template gives; with signatures verified natively, the same token is never allowed
//! when a verifier that accepts every signature refuses it.
#![no_main]

use edge_authz::token::{parse, Verify};
use edge_authz::{At, Evaluator, Model, Reason, SecretKey, TokenAnswer, TokenDecision};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CASES: &str = include_str!("../../tests/tokens/cases.json");

fn edge() -> &'static (Evaluator, u64) {
    static EDGE: OnceLock<(Evaluator, u64)> = OnceLock::new();
    EDGE.get_or_init(|| {
        let all: serde_json::Value = serde_json::from_str(CASES).unwrap_or_default();
        let clock = all["clock"].as_u64().unwrap_or(0);
        let state = match Model::from_value(all["model"].clone()).and_then(|m| m.compile()) {
            Ok(c) => c.state,
            Err(e) => panic!("the token cases' model: {e}"),
        };
        let key = SecretKey::from_seed([7; 32]);
        let mut ev = match Evaluator::with_keys("acme", vec![key.public_key()]) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        ev.set_clock(Some(clock));
        let snap = edge_authz::compile_snapshot(&state, 1, clock, &key);
        if let Err(e) = snap.map(|s| ev.load_snapshot(&s)) {
            panic!("{e}");
        }
        (ev, clock)
    })
}

fn check(ev: &Evaluator, token: &str, clock: u64, verify: &mut dyn FnMut(&Verify<'_>) -> Option<bool>) -> TokenDecision {
    let ctx = edge_authz::condition::Context::EMPTY;
    match ev.check_token(token, "read", "doc:roadmap", At::clock(clock).with_context(&ctx), verify) {
        TokenAnswer::Decided(d) => d,
        TokenAnswer::Verify { .. } => panic!("a verifier that answers is never asked again"),
    }
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let (ev, clock) = edge();
    let mut native = |v: &Verify<'_>| Some(edge_authz_protocol::jws::verify(v));
    let real = check(ev, &token, *clock, &mut native);
    let mut yes = |_: &Verify<'_>| Some(true);
    let forged = check(ev, &token, *clock, &mut yes);
    let gate6 = [Reason::TokenInvalid, Reason::TokenExpired, Reason::SessionRevoked];
    for d in [&real, &forged] {
        let reason = d.decision.reason;
        assert_eq!(d.fault.is_some(), gate6.contains(&reason), "{d:?}");
        assert_eq!(d.subject.is_some(), !gate6.contains(&reason), "{d:?}");
        if let Some(s) = &d.subject {
            assert!(edge_authz::is_valid_id(s), "{s}");
        }
        assert_eq!(d.decision.allowed, reason == Reason::Granted);
    }
    if parse(&token).is_err() {
        assert_eq!(real.decision.reason, Reason::TokenInvalid);
        assert_eq!(forged.decision.reason, Reason::TokenInvalid);
    }
    // A real signature can only refuse more: what the accept-all verifier refuses, a real one does.
    if !forged.decision.allowed {
        assert!(!real.decision.allowed, "{real:?} {forged:?}");
    }
    if real.decision.allowed {
        assert_eq!(real, forged);
    }
});
