//! `mxray migrate --clickhouse URL`: create or upgrade the ClickHouse schema.

use std::process::ExitCode;

use anyhow::Context;
use mxray_store::{migrate, ClickHouseConfig};

use crate::settings::{Settings, UsageError};

/// Arguments of `mxray migrate` (the database comes from `--clickhouse URL`).
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {}

pub(crate) async fn run(settings: &Settings, _args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let url = settings
        .outputs
        .clickhouse
        .as_ref()
        .ok_or_else(|| UsageError("migrate needs --clickhouse URL".into()))?;
    let cfg = ClickHouseConfig::from_url(url.as_str())
        .map_err(|e| UsageError(format!("--clickhouse: {e}")))?;
    let report = migrate(&cfg).await.context("migration failed")?;
    if report.applied.is_empty() {
        println!(
            "database {}: schema version {} is current",
            report.database, report.to
        );
    } else {
        println!(
            "database {}: schema version {} -> {} (applied {:?})",
            report.database, report.from, report.to, report.applied
        );
    }
    Ok(ExitCode::SUCCESS)
}
