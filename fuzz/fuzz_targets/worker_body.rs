//! The bodies of the Worker's `check` and `check-many`, parsed as the Worker parses them, then
//! decided by an evaluator holding the example, the decisions written as JSON.
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz::Request;
use edge_authz_protocol::{parse_body, parse_check_many, read_context, CheckBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ev = common::loaded();
    let mut requests = Vec::new();
    let mut context = None;
    if let Ok(b) = parse_body::<CheckBody>(data) {
        requests.push((b.subject, b.action, b.resource));
        context = b.context;
    }
    if let Ok(b) = parse_check_many(data, 10_000) {
        requests.extend(b.requests);
        context = b.context;
    }
    let checks: Vec<Request<'_>> = requests
        .iter()
        .map(|(s, a, r)| Request::new(s, a, r))
        .collect();
    let mut out = Vec::new();
    match read_context(context.as_ref()) {
        Ok(c) => ev.check_many(&checks, c.at(common::NOW), &mut out),
        Err(()) => out.extend(checks.iter().map(|_| ev.reject_request())),
    }
    assert_eq!(out.len(), checks.len());
    for d in &out {
        serde_json::to_string(&ev.explain(d))
            .unwrap_or_else(|e| panic!("a decision does not serialize: {e}"));
    }
});
