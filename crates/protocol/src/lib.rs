//! The shapes every edge-authz host speaks, defined once: request bodies and lines as the
//! command line, the npm package and the Worker read them; the request context; the JSON
//! answers (errors, push answers, decisions, listings, status); the feed between an authority
//! and its replicas. Hosts move bytes and values between their runtime and these.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        reason = "tests: they fail loudly and index what they built"
    )
)]

pub mod answers;
mod context;
pub mod feed;
#[cfg(feature = "jws")]
pub mod jws;
mod requests;

pub use answers::{
    http_status, CarriedDelta, Decisions, EdgeStatus, ErrorAnswer, ErrorBody, Listing, PushAnswer,
};
pub use context::{read_context, Context, MAX_NOW};
pub use requests::{
    list_context, parse_body, parse_check_many, parse_request_line, strict_json, AuthorizeBody,
    BodyError, CheckBody, CheckManyBody, RequestLine, StrictValue,
};
