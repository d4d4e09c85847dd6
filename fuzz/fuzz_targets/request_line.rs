//! A line of `edge-authz check --requests`: parsed as the command line parses it, then decided
//! by an evaluator holding the example, the decision written as JSON.
#![no_main]
#[path = "common.rs"]
mod common;

use edge_authz::{Request};
use edge_authz_protocol::{parse_request_line, read_context};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ev = common::loaded();
    let decision = match parse_request_line(text.trim()) {
        Some(l) => match read_context(l.context.as_ref()) {
            Ok(c) => ev.check(
                Request::new(&l.subject, &l.action, &l.resource),
                c.at(common::NOW),
            ),
            Err(()) => ev.reject_request(),
        },
        None => ev.reject_request(),
    };
    serde_json::to_string(&ev.explain(&decision))
        .unwrap_or_else(|e| panic!("a decision does not serialize: {e}"));
});
