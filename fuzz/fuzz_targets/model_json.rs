//! Model JSON through the parser and the compiler. A model that compiles answers in a preview;
//! signed as a snapshot it loads with the digest the origin computes; and when it is the example
//! tenant's, the delta from the example to it, applied to the example's snapshot, gives exactly
//! that digest too (a delta and a snapshot of the same state agree).
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz::{compile_snapshot, content_digest, diff_models, Evaluator, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = Model::from_json(text) else {
        return;
    };
    let Ok(compiled) = model.compile() else {
        return;
    };
    let state = compiled.state;
    let preview = Evaluator::preview(&state)
        .unwrap_or_else(|e| panic!("a compiled model's preview failed: {e}"));
    common::fingerprint(&preview);
    let digest = content_digest(&state).unwrap_or_else(|e| panic!("digest: {e}"));
    let snapshot = compile_snapshot(&state, 2, common::NOW, &common::key())
        .unwrap_or_else(|e| panic!("snapshot: {e}"));
    let mut signed = Evaluator::new(&state.tenant, &[&common::public_key()])
        .unwrap_or_else(|e| panic!("keys: {e}"));
    signed
        .load_snapshot(&snapshot)
        .unwrap_or_else(|e| panic!("a compiled model's snapshot was refused: {e}"));
    assert_eq!(signed.status().digest.as_deref(), Some(digest.as_str()));
    if state.tenant == common::TENANT {
        let out = diff_models(
            common::example_state(),
            &state,
            1,
            2,
            common::NOW,
            &common::key(),
        )
        .unwrap_or_else(|e| panic!("diff: {e}"));
        let mut ev = common::loaded();
        ev.apply_delta(&out.bytes)
            .unwrap_or_else(|e| panic!("the example's delta to a model was refused: {e}"));
        assert_eq!(ev.status().digest.as_deref(), Some(digest.as_str()));
    }
});
