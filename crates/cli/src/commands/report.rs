//! `mxray report`: adoption summary and stripping findings, from Parquet result directories
//! (one per vantage, several allowed) or from ClickHouse.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mxray_model::{Record, RecordKind};
use mxray_scan::report::Report;
use mxray_store::{read_table, ClickHouseConfig, TableReader};

use crate::settings::{Settings, UsageError};

/// Arguments of `mxray report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// Parquet result directories (e.g. one per vantage); or use --clickhouse.
    pub dirs: Vec<PathBuf>,
    /// Machine-readable output (JSON).
    #[arg(long)]
    pub json: bool,
    /// Stripping findings only, with evidence.
    #[arg(long)]
    pub stripping: bool,
}

fn feed(report: &mut Report, rec: &Record) {
    match rec {
        Record::Domain(d) => report.add_domain(d),
        Record::SmtpProbe(p) => report.add_probe(p),
        _ => {}
    }
}

pub(crate) async fn run(settings: &Settings, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    match (&settings.outputs.clickhouse, args.dirs.is_empty()) {
        (Some(url), true) => {
            let cfg = ClickHouseConfig::from_url(url.as_str())
                .map_err(|e| UsageError(format!("--clickhouse: {e}")))?;
            for kind in [RecordKind::Domain, RecordKind::SmtpProbe] {
                for rec in read_table(&cfg, kind).await.context("reading ClickHouse")? {
                    feed(&mut report, &rec);
                }
            }
        }
        (None, false) => {
            for dir in &args.dirs {
                for kind in [RecordKind::Domain, RecordKind::SmtpProbe] {
                    let path = dir.join(format!("{}.parquet", kind.table()));
                    let mut reader = TableReader::open(&path, kind)
                        .with_context(|| format!("reading {}", path.display()))?;
                    loop {
                        let chunk = reader.next_chunk(65_536)?;
                        if chunk.is_empty() {
                            break;
                        }
                        for rec in &chunk {
                            feed(&mut report, rec);
                        }
                    }
                }
            }
        }
        _ => {
            return Err(UsageError(
                "report reads either result directories or --clickhouse URL (one of them)".into(),
            )
            .into())
        }
    }
    report.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render(args.stripping));
    }
    Ok(ExitCode::SUCCESS)
}
