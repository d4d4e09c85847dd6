//! `edge-authz replay` (to be written).

use std::process::ExitCode;

use clap::Args;

use crate::Fail;

#[derive(Args)]
pub struct ReplayArgs {}

pub fn run(_args: ReplayArgs) -> Result<ExitCode, Fail> {
    Err(Fail("not yet".into()))
}
