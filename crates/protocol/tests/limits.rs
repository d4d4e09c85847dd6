//! The limits of the host formats at their boundary: a request context's time and JSON nesting
//! in request bodies and request lines.
#![allow(clippy::panic, clippy::unwrap_used, reason = "tests: they fail loudly")]

use edge_authz_protocol::{
    parse_body, parse_request_line, read_context, BodyError, CheckBody, MAX_NOW,
};
use serde_json::json;

#[test]
fn context_now_is_at_most_2_pow_53_minus_1() {
    assert_eq!(MAX_NOW, (1u64 << 53) - 1);
    let now = |v: serde_json::Value| read_context(Some(&json!({ "now": v }))).map(|c| c.now);
    assert_eq!(now(json!(MAX_NOW)), Ok(Some(MAX_NOW)));
    assert_eq!(now(json!(0)), Ok(Some(0)));
    for bad in [
        json!(MAX_NOW + 1),
        json!(u64::MAX),
        json!(-1),
        json!(1.5),
        json!(9.007_199_254_740_992e15),
    ] {
        assert_eq!(now(bad.clone()), Err(()), "{bad}");
    }
}

#[test]
fn json_nesting_of_128_levels_is_refused_127_is_read() {
    // The Worker's bodies: the context is any JSON, so nesting reaches serde_json's recursion
    // limit of 128, which refuses the 128th level (the body's own object is the first). At 127
    // levels the body is JSON and its context is malformed (the decision is invalid_request); at
    // 128 the body is not JSON (400 invalid_json at the Worker).
    let body = |depth: usize| {
        format!(
            r#"{{"subject":"user:a","action":"read","resource":"doc:x","context":{}{}}}"#,
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    };
    let ok: CheckBody = parse_body(body(127).as_bytes()).unwrap();
    assert_eq!(read_context(ok.context.as_ref()), Err(()));
    match parse_body::<CheckBody>(body(128).as_bytes()) {
        Err(BodyError::NotJson(m)) => assert!(m.contains("recursion limit exceeded"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The command line's request lines, the same.
    assert!(parse_request_line(&body(127)).is_some());
    assert!(parse_request_line(&body(128)).is_none());
}
