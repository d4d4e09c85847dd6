//! `edge-authz testing` (to be written).

use std::process::ExitCode;

use clap::Args;

use crate::Fail;

#[derive(Args)]
pub struct TestArgs {}

pub fn run(_args: TestArgs) -> Result<ExitCode, Fail> {
    Err(Fail("not yet".into()))
}
