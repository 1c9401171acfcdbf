//! `mxray load DIR --clickhouse URL`: ingest a Parquet result directory, a release (flat or
//! Hive-partitioned, told apart by the manifest's format) or a spill directory into ClickHouse,
//! after verifying every file against `manifest.json`.

use std::process::ExitCode;

use anyhow::Context;
use mxray_store::{load_dir, ClickHouseConfig};

use crate::settings::{Settings, UsageError};

/// Arguments of `mxray load`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// A result directory (manifest.json + Parquet files), a release of scripts/export-dataset
    /// (flat or table=<name>/vantage=<v>/date=<d>/part-N.parquet), or a spill directory.
    pub dir: std::path::PathBuf,
}

pub(crate) async fn run(settings: &Settings, args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let url = settings
        .outputs
        .clickhouse
        .as_ref()
        .ok_or_else(|| UsageError("load needs --clickhouse URL".into()))?;
    let cfg = ClickHouseConfig::from_url(url.as_str())
        .map_err(|e| UsageError(format!("--clickhouse: {e}")))?;
    if !args.dir.is_dir() {
        return Err(UsageError(format!("{}: not a directory", args.dir.display())).into());
    }
    let report = load_dir(&args.dir, &cfg)
        .await
        .with_context(|| format!("loading {} failed", args.dir.display()))?;
    let total: u64 = report.rows.values().sum();
    let per_table: Vec<String> = report
        .rows
        .iter()
        .map(|(table, n)| format!("{table} {n}"))
        .collect();
    println!(
        "loaded {total} rows from {} ({} layout, {} files) into database {} ({})",
        args.dir.display(),
        if report.hive { "hive" } else { "flat" },
        report.files,
        cfg.database,
        per_table.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
