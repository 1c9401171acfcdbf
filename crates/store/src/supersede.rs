//! [`supersede_attempts`]: a campaign shard that was run again (the scheduler retried it after
//! its node died, and its output directory died with it) replaces the rows of its earlier,
//! unfinished attempts in ClickHouse, so the campaign holds each shard's measurements once.
//!
//! Why deletion: a re-run measures again, so its rows carry a new `scan_id` and new
//! timestamps, and the tables' keys (the records' identities) cannot make the two attempts
//! collapse. The rule is narrow on purpose: only attempts of the same *named* campaign
//! (`--campaign`, or `campaign` in the config: the operator declared one logical scan), the
//! same shard and vantage, that started earlier and never finished (`status != 'complete'`).
//! A finished attempt is never touched (two complete runs of a shard are two measurements;
//! `report --campaign` picks one). The superseded attempts keep their `scan` row (status
//! `running` or `interrupted`), so the attempt stays on record; their data rows go, except
//! `certificates`, which belong to no scan (deduplicated by SHA-256).
//!
//! An attempt is known by the `running` scan row that [`register_attempt`] writes when it
//! starts (the scanner otherwise writes its `scan` record only at the end, which a killed
//! attempt never reaches); the final row replaces it (`scans` is versioned by `row_version`).

use std::time::Duration;

use mxray_model::{Record, RecordKind, ScanRecord, UtcTime};
use uuid::Uuid;

use crate::ch::{existing_layout, insert_batch, with_timeout, ClickHouseConfig};
use crate::error::StoreError;
use crate::schema::{quote_ident, Layout, TABLES};

/// The tables whose rows belong to one scan (`scan_id`) and go with a superseded attempt.
fn per_scan_tables() -> impl Iterator<Item = RecordKind> {
    TABLES
        .iter()
        .copied()
        .filter(|k| !matches!(k, RecordKind::Scan | RecordKind::Certificate))
}

/// The `ALTER TABLE ... DELETE` mutations that remove the rows of `attempts`.
pub(crate) fn delete_statements(database: &str, layout: &Layout, attempts: &[Uuid]) -> Vec<String> {
    let ids: Vec<String> = attempts
        .iter()
        .map(|id| format!("toUUID('{}')", id.hyphenated()))
        .collect();
    let on_cluster = match layout {
        Layout::Single => String::new(),
        Layout::Cluster(name) => format!(" ON CLUSTER {name}"),
    };
    per_scan_tables()
        .map(|k| {
            format!(
                "ALTER TABLE {}.{}{on_cluster} DELETE WHERE scan_id IN ({})",
                quote_ident(database),
                layout.storage_table(k),
                ids.join(", ")
            )
        })
        .collect()
}

/// Writes the `running` scan record of an attempt that starts, so that a later attempt of the
/// same campaign shard can find it if this one dies.
pub async fn register_attempt(
    config: &ClickHouseConfig,
    scan: &ScanRecord,
) -> Result<(), StoreError> {
    let rows = [Record::Scan(scan.clone())];
    insert_batch(config, &config.client(), RecordKind::Scan, &rows)
        .await
        .map_err(|e| StoreError::clickhouse("INSERT INTO scans (running attempt)", &e))
}

/// What [`supersede_attempts`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SupersedeReport {
    /// The superseded attempts (their data rows are deleted).
    pub attempts: Vec<Uuid>,
    /// Whether the deletions finished within the wait (on a cluster: on the node asked).
    pub finished: bool,
}

/// Deletes the data rows of earlier unfinished attempts of one campaign shard (see the
/// module doc), then waits up to `wait` for the deletions to finish.
pub async fn supersede_attempts(
    config: &ClickHouseConfig,
    campaign: &str,
    shard: &str,
    vantage: &str,
    keep: Uuid,
    started_at: UtcTime,
    wait: Duration,
) -> Result<SupersedeReport, StoreError> {
    let client = config.client();
    let sql = format!(
        "SELECT toString(scan_id) FROM {} FINAL WHERE campaign = ? AND shard = ? \
         AND vantage = ? AND status != 'complete' AND scan_id != toUUID(?) AND started_at < ?",
        config.table(RecordKind::Scan.table())
    );
    let ids: Vec<String> = with_timeout(
        config.request_timeout,
        client
            .query(&sql)
            .bind(campaign)
            .bind(shard)
            .bind(vantage)
            .bind(keep.hyphenated().to_string())
            .bind(started_at.clickhouse_secs())
            .fetch_all::<String>(),
    )
    .await
    .map_err(|e| StoreError::clickhouse("find earlier attempts", &e))?;
    let attempts: Vec<Uuid> = ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
    if attempts.is_empty() {
        return Ok(SupersedeReport {
            attempts,
            finished: true,
        });
    }
    let layout = existing_layout(config).await?.unwrap_or(Layout::Single);
    for stmt in delete_statements(&config.database, &layout, &attempts) {
        with_timeout(config.request_timeout, client.query(&stmt).execute())
            .await
            .map_err(|e| StoreError::clickhouse("delete superseded rows", &e))?;
    }
    let finished = mutations_done(config, wait).await?;
    Ok(SupersedeReport { attempts, finished })
}

/// Polls `system.mutations` of the configured database until none is pending or `wait` ends.
pub(crate) async fn mutations_done(
    config: &ClickHouseConfig,
    wait: Duration,
) -> Result<bool, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let pending: u64 = with_timeout(
            config.request_timeout,
            config
                .client()
                .query("SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0")
                .bind(config.database.as_str())
                .fetch_one::<u64>(),
        )
        .await
        .map_err(|e| StoreError::clickhouse("read system.mutations", &e))?;
        if pending == 0 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_reach_every_per_scan_table_but_not_scans_or_certificates() {
        let id = Uuid::parse_str("01890000-0000-7000-8000-000000000001").expect("uuid");
        let single = delete_statements("db", &Layout::Single, &[id]);
        assert_eq!(single.len(), TABLES.len() - 2);
        assert!(single.contains(
            &"ALTER TABLE `db`.domains DELETE WHERE scan_id IN \
              (toUUID('01890000-0000-7000-8000-000000000001'))"
                .to_owned()
        ));
        assert!(!single
            .iter()
            .any(|s| s.contains(".scans ") || s.contains("certificates")));
        let cluster = delete_statements("db", &Layout::Cluster("c".into()), &[id, id]);
        assert!(
            cluster[0].contains("_local ON CLUSTER c DELETE"),
            "{}",
            cluster[0]
        );
    }
}
