//! The shapes every edge-authz host speaks, defined once: request bodies and lines as the
//! command line, the npm package and the Worker read them, and the request context.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod context;
mod requests;

pub use context::{context_now, MAX_NOW};
pub use requests::{
    list_time, parse_body, parse_check_many, parse_request_line, strict_json, BodyError, CheckBody,
    CheckManyBody, RequestLine, StrictValue,
};
