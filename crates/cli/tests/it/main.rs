//! The command line's integration tests, and the conformance suite run natively (the host the
//! command line is).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: they fail loudly, and index the outputs and fixtures they read"
)]

mod budget;
mod cli;
#[allow(
    dead_code,
    reason = "the core suite's fixtures (the example model, the test keys): not all are used here"
)]
#[path = "../../../core/tests/it/common.rs"]
mod common;
mod conformance;
mod daily;
mod golden;
mod impact;
mod keys;
mod limits;
mod replay;
mod testing;
mod tokens;
mod util;
