//! The core's integration tests: the public API, hostile inputs, limits, property tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    reason = "tests: they fail loudly, index fixtures they built, and read and write fixture files"
)]

mod authority;
mod budget;
mod clock;
mod common;
mod conditions;
mod diff;
mod golden;
mod hostile;
mod identity;
mod limits;
mod model_errors;
mod mutations;
mod props;
mod status;
mod sync;
