//! `mxray load`: ingest a Parquet result directory (or a spill directory) into ClickHouse.

use std::path::{Path, PathBuf};

use crate::ch::{self, ClickHouseConfig};
use crate::error::{classify, ErrorClass, StoreError};
use crate::parquet_sink::{Manifest, TableReader};
use crate::schema::kind_of_table;
use crate::sink::{count, TableCounts};

/// What [`load_dir`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// The directory loaded.
    pub dir: PathBuf,
    /// Rows sent per table.
    pub rows: TableCounts,
}

/// Verify the manifest (every file's size and SHA-256), migrate the database, and insert every
/// table file in batches of [`ClickHouseConfig::batch_rows`]. Transient failures are retried
/// with backoff up to [`ClickHouseConfig::spill_after`]; then the load fails (nothing is
/// spilled: the files are already on disk). Running it twice stores every row once: the tables
/// deduplicate on the record key (read with `FINAL`).
///
/// Refused before anything is inserted: a missing or malformed manifest, a file whose size or
/// checksum differs from the manifest (truncated, tampered), a file whose row count or columns
/// differ.
pub async fn load_dir(dir: &Path, config: &ClickHouseConfig) -> Result<LoadReport, StoreError> {
    let manifest = Manifest::read(dir)?;
    manifest.verify(dir)?;
    // Open every file first, so that a wrong file is refused before any insert.
    let mut readers = Vec::new();
    for (table, entry) in &manifest.tables {
        let kind = kind_of_table(table).ok_or_else(|| StoreError::Manifest {
            path: dir.join(crate::parquet_sink::MANIFEST),
            message: format!("unknown table {table:?}"),
        })?;
        let path = dir.join(&entry.file);
        let reader = TableReader::open(&path, kind)?;
        if reader.total_rows() != entry.rows {
            return Err(StoreError::Manifest {
                path,
                message: format!(
                    "holds {} rows, the manifest says {}",
                    reader.total_rows(),
                    entry.rows
                ),
            });
        }
        readers.push((kind, reader));
    }
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
    })
}
