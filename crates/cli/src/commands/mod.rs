//! One module per subcommand. Each exposes its clap `…Args` and
//! `run(&Settings, &Args) -> anyhow::Result<ExitCode>`.

pub(crate) mod dns;
pub(crate) mod lab;
pub(crate) mod load;
pub(crate) mod migrate;
pub(crate) mod mta_sts;
pub(crate) mod report;
pub(crate) mod scan;
pub(crate) mod smtp;

use std::process::ExitCode;

/// What a subcommand whose capability is not built yet does: say so, exit 2.
pub(crate) fn not_built(what: &str, issue: u32) -> anyhow::Result<ExitCode> {
    eprintln!("mxray: error: `{what}` is not implemented yet (tracked in issue {issue})");
    Ok(ExitCode::from(2))
}
