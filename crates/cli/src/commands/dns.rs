//! `mxray dns`.

use std::process::ExitCode;

use crate::settings::Settings;

/// Arguments of `mxray dns`.
#[derive(Debug, clap::Args)]
pub(crate) struct DnsArgs {
    /// Domains to collect.
    #[arg(required = true)]
    pub domains: Vec<String>,
}

pub(crate) async fn run(_settings: &Settings, _args: &DnsArgs) -> anyhow::Result<ExitCode> {
    super::not_built("mxray dns", 3)
}
