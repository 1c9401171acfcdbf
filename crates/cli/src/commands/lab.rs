//! `mxray lab`.

use std::process::ExitCode;

use crate::settings::Settings;

/// Arguments of `mxray lab`.
#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// Print the lab domains and the posture a correct scan reports, then exit.
    #[arg(long)]
    pub list: bool,
    /// Add N synthetic domains.
    #[arg(long, default_value_t = 0)]
    pub lab_domains: usize,
}

pub(crate) async fn run(_settings: &Settings, _args: &LabArgs) -> anyhow::Result<ExitCode> {
    super::not_built("mxray lab", 7)
}
