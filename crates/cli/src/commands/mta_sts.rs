//! `mxray mta-sts`.

use std::process::ExitCode;

use crate::settings::Settings;

/// Arguments of `mxray mta-sts`.
#[derive(Debug, clap::Args)]
pub(crate) struct MtaStsArgs {
    /// Policy domains.
    #[arg(required = true)]
    pub domains: Vec<String>,
}

pub(crate) async fn run(_settings: &Settings, _args: &MtaStsArgs) -> anyhow::Result<ExitCode> {
    super::not_built("mxray mta-sts", 5)
}
