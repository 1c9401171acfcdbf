//! One module per subcommand. Each exposes its clap `…Args` and
//! `run(&Settings, &Args) -> anyhow::Result<ExitCode>`.

pub(crate) mod canary;
pub(crate) mod dns;
pub(crate) mod lab;
pub(crate) mod load;
pub(crate) mod migrate;
pub(crate) mod mta_sts;
pub(crate) mod report;
pub(crate) mod scan;
pub(crate) mod smtp;
