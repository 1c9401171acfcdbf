//! `mxray`: the command-line front end. Glue only: it parses and validates options
//! ([`settings`]), builds the library objects, and maps failures to exit codes.
//!
//! Exit codes: 0 success; 1 mxray failed at run time (I/O, database); 2 usage or configuration
//! error (bad flag, unreadable file, out-of-range value) or a subcommand not built yet.

mod commands;

/// mimalloc: fewer cycles in malloc/free than glibc for the scan's many small, cross-thread
/// allocations (see docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod engines;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use settings::{Settings, SharedArgs, UsageError};

/// Internet-scale measurement of mail transport security: STARTTLS, DANE, MTA-STS and
/// STARTTLS stripping.
#[derive(Debug, Parser)]
#[command(name = "mxray", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    #[command(flatten)]
    shared: SharedArgs,

    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Full pipeline for a list of domains (plain, or Tranco "rank,domain" CSV; `-` = stdin).
    Scan(commands::scan::ScanArgs),
    /// DNS/TLSA collection only; prints JSON lines.
    Dns(commands::dns::DnsArgs),
    /// STARTTLS probe only; prints JSON lines.
    Smtp(commands::smtp::SmtpArgs),
    /// MTA-STS and TLS-RPT only; prints JSON lines.
    #[command(name = "mta-sts")]
    MtaSts(commands::mta_sts::MtaStsArgs),
    /// Create or upgrade the ClickHouse schema (--clickhouse URL).
    Migrate(commands::migrate::MigrateArgs),
    /// Ingest a Parquet result directory (or a spill) into ClickHouse (--clickhouse URL).
    Load(commands::load::LoadArgs),
    /// Adoption summary and stripping findings from ClickHouse or a result directory.
    Report(commands::report::ReportArgs),
    /// Run the loopback lab servers in the foreground.
    Lab(commands::lab::LabArgs),
    /// Path tampering canaries: `canary serve` (control server), `canary probe` (compare).
    Canary(commands::canary::CanaryArgs),
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // hickory logs every DNSSEC oddity of every zone at warn (with the whole message as
    // debug text); those are observations mxray records, not problems of the run.
    let default = match verbose {
        0 => "warn,hickory_net=error,hickory_proto=error,hickory_resolver=error",
        1 => "info,hickory_net=warn,hickory_proto=warn,hickory_resolver=warn",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and errors to stderr (exit 2).
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.verbose);
    // Every probe, fetch and DNS TCP fallback holds a socket; the default soft limit of 1024
    // open files is below the default concurrency. Raise it to the hard limit.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-files limit: {e}");
    }
    let settings = match Settings::resolve(&cli.shared) {
        Ok(s) => s,
        Err(e) => return usage_exit(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mxray: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Scan(a) => commands::scan::run(&settings, a).await,
            Command::Dns(a) => commands::dns::run(&settings, a).await,
            Command::Smtp(a) => commands::smtp::run(&settings, a).await,
            Command::MtaSts(a) => commands::mta_sts::run(&settings, a).await,
            Command::Migrate(a) => commands::migrate::run(&settings, a).await,
            Command::Load(a) => commands::load::run(&settings, a).await,
            Command::Report(a) => commands::report::run(&settings, a).await,
            Command::Lab(a) => commands::lab::run(&settings, a).await,
            Command::Canary(a) => commands::canary::run(&settings, a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<UsageError>() {
            Some(u) => usage_exit(u),
            None => {
                eprintln!("mxray: error: {}", error_text(&e));
                ExitCode::from(1)
            }
        },
    }
}

/// The error and its causes, each cause once: a message that already quotes its cause (as
/// `{path}: {source}` messages do) is not followed by the same text again.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

fn usage_exit(e: &UsageError) -> ExitCode {
    eprintln!("mxray: error: {e}");
    ExitCode::from(2)
}
