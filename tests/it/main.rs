//! The one integration test binary: the public API, the conformance suite, hostile inputs,
//! property tests and the command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;
mod cli;
mod conformance;
mod diff;
mod props;
mod hostile;
mod model_errors;
