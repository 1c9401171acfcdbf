//! `mxray migrate`.

use std::process::ExitCode;

use crate::settings::Settings;

/// Arguments of `mxray migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {}

pub(crate) async fn run(_settings: &Settings, _args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    super::not_built("mxray migrate", 2)
}
