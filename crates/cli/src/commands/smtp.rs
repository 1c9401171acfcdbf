//! `mxray smtp`.

use std::process::ExitCode;

use crate::settings::Settings;

/// Arguments of `mxray smtp`.
#[derive(Debug, clap::Args)]
pub(crate) struct SmtpArgs {
    /// Targets: HOST, IP, IP:PORT or [IPv6]:PORT.
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// SNI name to send (default: the host name when a HOST is given).
    #[arg(long)]
    pub sni: Option<String>,
}

pub(crate) async fn run(_settings: &Settings, _args: &SmtpArgs) -> anyhow::Result<ExitCode> {
    super::not_built("mxray smtp", 4)
}
