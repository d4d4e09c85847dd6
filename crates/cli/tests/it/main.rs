//! The command line's integration tests, and the conformance suite run natively (the host the
//! command line is).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod budget;
mod cli;
// The core suite's fixtures (the example model, the test keys); not all of them are used here.
#[allow(dead_code)]
#[path = "../../../core/tests/it/common.rs"]
mod common;
mod conformance;
mod golden;
mod limits;
