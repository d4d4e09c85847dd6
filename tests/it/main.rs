//! The one integration test binary: the public API, the conformance suite, hostile inputs,
//! property tests and the command line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod authority;
mod budget;
mod cli;
mod clock;
mod common;
mod conformance;
mod diff;
mod hostile;
mod limits;
mod model_errors;
mod mutations;
mod props;
mod status;
