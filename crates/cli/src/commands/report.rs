//! `mxray report`: adoption summary and stripping findings, from Parquet result directories
//! (one per vantage, several allowed) or from ClickHouse. One computation
//! ([`mxray_scan::report::Report`]), rendered as text, `--json`, `--html FILE` and `--png DIR`
//! (crate mxray-report).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mxray_model::{Record, RecordKind};
use mxray_report::asn::IpNetworks;
use mxray_report::html::PageOptions;
use mxray_scan::campaign::CampaignStatus;
use mxray_scan::report::Report;
use mxray_store::{read_table, ClickHouseConfig, DatasetManifest, TableReader};
use uuid::Uuid;

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
    /// Report exactly this campaign: one run per shard, all of its shards. Refuses (exit 1)
    /// while a shard is missing or incomplete, unless --partial.
    #[arg(long, value_name = "ID")]
    pub campaign: Option<String>,
    /// With --campaign: report an incomplete campaign anyway, marked partial.
    #[arg(long, requires = "campaign")]
    pub partial: bool,
    /// Also write the report as one self-contained HTML page (charts, sortable tables, the
    /// SQL behind every number; no network access when opened).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write the page's charts as PNG files into this directory (`<chart>.png`).
    #[arg(long, value_name = "DIR")]
    pub png: Option<PathBuf>,
    /// The destinations' networks for the stripping findings: the ip_asn table written by
    /// `scripts/load-asn --out` (Parquet).
    #[arg(long, value_name = "FILE.parquet")]
    pub ip_asn: Option<PathBuf>,
}

/// Where the records come from.
enum Source<'a> {
    ClickHouse(Box<ClickHouseConfig>),
    Dirs(&'a [PathBuf]),
}

impl Source<'_> {
    /// Where the records come from, for the page header.
    fn describe(&self) -> String {
        match self {
            Source::ClickHouse(cfg) => format!("ClickHouse table {}", cfg.table("domains")),
            Source::Dirs(dirs) => {
                let d: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                format!("Parquet directories {}", d.join(", "))
            }
        }
    }

    /// Streams every record of `kind` into `f`.
    async fn each(&self, kind: RecordKind, mut f: impl FnMut(&Record)) -> anyhow::Result<()> {
        match self {
            Source::ClickHouse(cfg) => {
                for rec in read_table(cfg, kind).await.context("reading ClickHouse")? {
                    f(&rec);
                }
            }
            Source::Dirs(dirs) => {
                for dir in *dirs {
                    // A published release in the Hive layout: the table's parts; otherwise a
                    // scan's (or a flat release's) `<table>.parquet`.
                    let readers: Vec<TableReader> = match DatasetManifest::read(dir) {
                        Ok(m @ DatasetManifest::Hive(_)) => m
                            .table_parts(dir, kind)?
                            .iter()
                            .map(|p| p.open())
                            .collect::<Result<_, _>>()
                            .with_context(|| format!("reading {}", dir.display()))?,
                        _ => {
                            let path = dir.join(format!("{}.parquet", kind.table()));
                            // Scan dates fall back to the records' own times without a scans
                            // file.
                            if kind == RecordKind::Scan && !path.exists() {
                                continue;
                            }
                            vec![TableReader::open(&path, kind)
                                .with_context(|| format!("reading {}", path.display()))?]
                        }
                    };
                    for mut reader in readers {
                        loop {
                            let chunk = reader.next_chunk(65_536)?;
                            if chunk.is_empty() {
                                break;
                            }
                            chunk.iter().for_each(&mut f);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

pub(crate) async fn run(settings: &Settings, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let source = match (&settings.outputs.clickhouse, args.dirs.is_empty()) {
        (Some(url), true) => Source::ClickHouse(Box::new(
            ClickHouseConfig::from_url(url.as_str())
                .map_err(|e| UsageError(format!("--clickhouse: {e}")))?,
        )),
        (None, false) => Source::Dirs(&args.dirs),
        _ => {
            return Err(UsageError(
                "report reads either result directories or --clickhouse URL (one of them)".into(),
            )
            .into())
        }
    };
    let campaign = match &args.campaign {
        None => None,
        Some(id) => {
            let mut scans = Vec::new();
            source
                .each(RecordKind::Scan, |r| {
                    if let Record::Scan(s) = r {
                        scans.push(s.clone());
                    }
                })
                .await?;
            let status = CampaignStatus::from_scans(id, &scans)?;
            if !status.is_complete() && !args.partial {
                eprint!("{}", status.render());
                eprintln!(
                    "mxray: error: campaign {id} is incomplete; the report would present part \
                     of it as the whole (run the missing shards, or --partial for a report \
                     marked partial)"
                );
                return Ok(ExitCode::from(1));
            }
            Some(status)
        }
    };
    let chosen: Option<HashSet<Uuid>> = campaign.as_ref().map(|c| c.chosen_scans().collect());
    let wanted = |scan_id: &Uuid| chosen.as_ref().is_none_or(|c| c.contains(scan_id));
    let networks = match &args.ip_asn {
        Some(path) => Some(IpNetworks::from_parquet(path)?),
        None => None,
    };
    let mut report = Report::default();
    for kind in [RecordKind::Scan, RecordKind::Domain, RecordKind::SmtpProbe] {
        source
            .each(kind, |rec| match rec {
                Record::Scan(s) if wanted(&s.scan_id) => report.add_scan(s),
                Record::Domain(d) if wanted(&d.scan_id) => report.add_domain(d),
                Record::SmtpProbe(p) if wanted(&p.scan_id) => report.add_probe(p),
                _ => {}
            })
            .await?;
    }
    report.finish();
    if let Some(t) = &networks {
        report.annotate_networks(|ip| t.lookup(ip));
    }
    if args.html.is_some() || args.png.is_some() {
        let charts = mxray_report::svg::charts(&report);
        if let Some(path) = &args.html {
            let mut options = PageOptions {
                source: source.describe(),
                ..PageOptions::default()
            };
            if let Some(c) = &campaign {
                options.title = format!(
                    "mxray report: campaign {}{}",
                    c.campaign,
                    if c.is_complete() { "" } else { " (PARTIAL)" }
                );
            }
            let page = mxray_report::html::page(&report, &charts, &options);
            write_atomically(path, page.as_bytes())?;
        }
        if let Some(dir) = &args.png {
            mxray_report::png::write_pngs(&charts, dir)?;
        }
    }
    if args.json {
        let out = match &campaign {
            Some(c) => serde_json::json!({
                "campaign": c,
                "complete": c.is_complete(),
                "report": report,
            }),
            None => serde_json::to_value(&report)?,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let Some(c) = &campaign {
            if !c.is_complete() {
                println!("PARTIAL CAMPAIGN: the figures below cover only the shards that ran.");
            }
            print!("{}", c.render());
        }
        print!("{}", report.render(args.stripping));
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a file whole or not at all (a temporary file beside it, then a rename).
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
