//! `edge-authz impact` (to be written).

use std::process::ExitCode;

use clap::Args;

use crate::Fail;

#[derive(Args)]
pub struct ImpactArgs {}

pub fn run(_args: ImpactArgs) -> Result<ExitCode, Fail> {
    Err(Fail("not yet".into()))
}
