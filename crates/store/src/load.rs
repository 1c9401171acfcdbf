//! `mxray load`: ingest a Parquet result directory, a release (flat or Hive-partitioned), or a
//! spill directory into ClickHouse.

use std::path::{Path, PathBuf};

use crate::ch::{self, ClickHouseConfig};
use crate::dataset::DatasetManifest;
use crate::error::{classify, ErrorClass, StoreError};
use crate::sink::{count, TableCounts};

/// What [`load_dir`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// The directory loaded.
    pub dir: PathBuf,
    /// Rows sent per table.
    pub rows: TableCounts,
    /// Parquet files read (one per table in a flat directory, every part of a Hive layout).
    pub files: usize,
    /// `true` for a Hive-partitioned release (`table=<name>/vantage=<v>/date=<d>/`).
    pub hive: bool,
}

/// Verify the manifest (every file's size and SHA-256), migrate the database, and insert every
/// table file in batches of [`ClickHouseConfig::batch_rows`]. The layout is the manifest's
/// `format`: a flat directory (`<table>.parquet`, what `mxray scan --out` writes) or a
/// Hive-partitioned release (`scripts/export-dataset`), whose parts lack `vantage` (it is
/// taken from their path). A release's `ip_asn` is verified but not inserted (that is
/// `scripts/load-asn`). Transient failures are retried with backoff up to
/// [`ClickHouseConfig::spill_after`]; then the load fails (nothing is spilled: the files are
/// already on disk). Running it twice stores every row once: the tables deduplicate on the
/// record key (read with `FINAL`).
///
/// Refused before anything is inserted: a missing or malformed manifest, a file whose size or
/// checksum differs from the manifest (truncated, tampered), a file whose row count or columns
/// differ, a part outside its table's directory or partition.
pub async fn load_dir(dir: &Path, config: &ClickHouseConfig) -> Result<LoadReport, StoreError> {
    let manifest = DatasetManifest::read(dir)?;
    manifest.verify(dir)?;
    // Open every file first, so that a wrong file is refused before any insert.
    let mut readers = Vec::new();
    for part in manifest.parts(dir)? {
        let reader = part.open()?;
        if reader.total_rows() != part.rows {
            return Err(StoreError::Manifest {
                path: part.path,
                message: format!(
                    "holds {} rows, the manifest says {}",
                    reader.total_rows(),
                    part.rows
                ),
            });
        }
        readers.push((part.kind, reader));
    }
    let files = readers.len();
    ch::migrate(config).await?;
    let client = config.client();
    let mut rows = TableCounts::new();
    for (kind, mut reader) in readers {
        loop {
            let chunk = reader.next_chunk(config.batch_rows.max(1))?;
            if chunk.is_empty() {
                break;
            }
            let started = tokio::time::Instant::now();
            let mut delay = config.retry_initial;
            loop {
                match ch::insert_batch(config, &client, kind, &chunk).await {
                    Ok(()) => break,
                    Err(e)
                        if classify(&e) == ErrorClass::Transient
                            && started.elapsed() + delay <= config.spill_after =>
                    {
                        tracing::debug!(table = kind.table(), error = %e, "load retry");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(config.retry_max);
                    }
                    Err(e) => {
                        return Err(StoreError::clickhouse(
                            format!("INSERT INTO {} (loading {})", kind.table(), dir.display()),
                            &e,
                        ))
                    }
                }
            }
            count(&mut rows, kind, chunk.len() as u64);
        }
    }
    Ok(LoadReport {
        dir: dir.to_owned(),
        rows,
        files,
        hive: matches!(manifest, DatasetManifest::Hive(_)),
    })
}
