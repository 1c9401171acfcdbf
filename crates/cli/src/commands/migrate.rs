//! `mxray migrate --clickhouse URL`: create or upgrade the ClickHouse schema.

use std::process::ExitCode;

use anyhow::Context;
use mxray_store::{migrate, ClickHouseConfig};

use crate::settings::{Settings, UsageError};

/// Arguments of `mxray migrate` (the database comes from `--clickhouse URL`).
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// Lay the database out for this ClickHouse cluster (its name in the servers'
    /// `remote_servers`): `ON CLUSTER` DDL, a `Replicated…MergeTree` `<table>_local` per node
    /// and a `Distributed` table under each public name. See docs/scale.md.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

pub(crate) async fn run(settings: &Settings, args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let url = settings
        .outputs
        .clickhouse
        .as_ref()
        .ok_or_else(|| UsageError("migrate needs --clickhouse URL".into()))?;
    let mut cfg = ClickHouseConfig::from_url(url.as_str())
        .map_err(|e| UsageError(format!("--clickhouse: {e}")))?;
    if let Some(cluster) = &args.cluster {
        cfg = cfg
            .with_cluster(cluster)
            .map_err(|e| UsageError(format!("--cluster: {e}")))?;
    }
    let report = migrate(&cfg).await.context("migration failed")?;
    if report.applied.is_empty() {
        println!(
            "database {}: schema version {} is current",
            report.database, report.to
        );
    } else {
        println!(
            "database {}: schema version {} -> {} (applied {:?}){}",
            report.database,
            report.from,
            report.to,
            report.applied,
            args.cluster
                .as_ref()
                .map(|c| format!(" on cluster {c}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
