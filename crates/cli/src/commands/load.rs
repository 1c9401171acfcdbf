//! `mxray load`.

use std::process::ExitCode;

use crate::settings::Settings;

/// Arguments of `mxray load`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// A result directory (manifest.json + Parquet files) or a spill directory.
    pub dir: std::path::PathBuf,
}

pub(crate) async fn run(_settings: &Settings, _args: &LoadArgs) -> anyhow::Result<ExitCode> {
    super::not_built("mxray load", 6)
}
