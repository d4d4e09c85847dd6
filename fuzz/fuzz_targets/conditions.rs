//! Conditions and contexts: the input is a model's `conditions` object and a request context,
//! as JSON on two lines. The conditions go into the example model (the first one on the example's
//! first assignment, the last one required by `export`); a model that compiles answers every
//! request of a fixed grid under the context without panicking, a decision names conditions
//! exactly when conditions refused it, and the signed snapshot and the delta from the example
//! answer as the preview does. A context the hosts refuse is `invalid_request` for every request.
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz::{compile_snapshot, diff_models, Evaluator, Model, Reason, Request};
use libfuzzer_sys::fuzz_target;

const GRID: [(&str, &str, &str); 6] = [
    ("user:alice", "read", "doc:roadmap"),
    ("user:alice", "export", "doc:roadmap"),
    ("user:alice", "write", "workspace:eng"),
    ("group:eng", "export", "workspace:eng"),
    ("user:mallory", "read", "org:acme"),
    ("user:x", "read", "org:acme"),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (conditions, context) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(conditions) = serde_json::from_str::<serde_json::Value>(conditions) else {
        return;
    };
    let mut model: serde_json::Value = match serde_json::from_str(common::EXAMPLE) {
        Ok(m) => m,
        Err(e) => panic!("the example: {e}"),
    };
    let names: Vec<String> = conditions
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    model["conditions"] = conditions;
    if let (Some(first), Some(last)) = (names.first(), names.last()) {
        model["assignments"][0]["when"] = serde_json::json!(first);
        model["actions"]["export"]["requires"] = serde_json::json!([last]);
    }
    let Ok(state) = Model::from_value(model).and_then(|m| m.compile()).map(|c| c.state) else {
        return;
    };
    let preview = Evaluator::preview(&state).unwrap_or_else(|e| panic!("preview: {e}"));
    let context = serde_json::from_str::<serde_json::Value>(context).ok();
    let read = edge_authz_protocol::read_context(context.as_ref());
    let mut signed = common::empty();
    signed
        .load_snapshot(
            &compile_snapshot(&state, 2, common::NOW - 1000, &common::key())
                .unwrap_or_else(|e| panic!("snapshot: {e}")),
        )
        .unwrap_or_else(|e| panic!("a compiled model's snapshot was refused: {e}"));
    let mut patched = common::loaded();
    let delta = diff_models(common::example_state(), &state, 1, 2, common::NOW - 1000, &common::key())
        .unwrap_or_else(|e| panic!("diff: {e}"));
    patched
        .apply_delta(&delta.bytes)
        .unwrap_or_else(|e| panic!("the delta to a compiled model was refused: {e}"));
    for (s, a, r) in GRID {
        let answers: Vec<String> = [&preview, &signed, &patched]
            .iter()
            .map(|ev| {
                let d = match &read {
                    Ok(c) => ev.check(Request::new(s, a, r), c.at(common::NOW)),
                    Err(()) => ev.reject_request(),
                };
                let view = ev.explain(&d);
                assert_eq!(d.allowed, d.reason == Reason::Granted);
                assert_eq!(view.conditions.is_some(), d.reason.is_conditional());
                assert_eq!(view.missing.is_some(), d.reason.is_conditional());
                if read.is_err() {
                    assert_eq!(d.reason, Reason::InvalidRequest);
                }
                // The epoch and the freshness gate aside, every evaluator gives the same answer.
                format!("{:?} {:?} {:?} {:?}", d.reason, view.grant, view.conditions, view.missing)
            })
            .collect();
        if read.as_ref().is_ok_and(|c| c.now.is_none()) {
            assert_eq!(answers[1], answers[2], "the snapshot and the delta disagree");
        }
    }
});
