//! `mxray scan`.

use std::process::ExitCode;

use crate::settings::Settings;

/// Arguments of `mxray scan`.
#[derive(Debug, clap::Args)]
pub(crate) struct ScanArgs {
    /// Domains file (plain or Tranco CSV), or `-` for stdin.
    pub input: Option<String>,
    /// Scan the built-in loopback lab instead (starts it, scans it, stops it).
    #[arg(long)]
    pub lab: bool,
    /// With --lab: add N synthetic domains.
    #[arg(long, default_value_t = 0)]
    pub lab_domains: usize,
}

pub(crate) async fn run(_settings: &Settings, _args: &ScanArgs) -> anyhow::Result<ExitCode> {
    super::not_built("mxray scan", 8)
}
