//! `mxray report`.

use std::process::ExitCode;

use crate::settings::Settings;

/// Arguments of `mxray report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// A Parquet result directory (instead of --clickhouse).
    pub dir: Option<std::path::PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Stripping findings only, with evidence.
    #[arg(long)]
    pub stripping: bool,
}

pub(crate) async fn run(_settings: &Settings, _args: &ReportArgs) -> anyhow::Result<ExitCode> {
    super::not_built("mxray report", 8)
}
