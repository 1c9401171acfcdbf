//! The writer: [`ParquetSink`] keeps one [`TableFile`] per table, buffers rows in
//! [`ColumnBuffers`], writes row groups, and on close renames each file into place and writes
//! the manifest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxray_model::{Record, RecordKind, UtcTime, SCHEMA_VERSION};
use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use super::buffer::{ColumnBuffers, Leaf, Values};
use super::manifest::{
    file_digest, Manifest, ManifestScan, ManifestTable, MANIFEST, MANIFEST_FORMAT,
};
use super::schema::parquet_schema;
use crate::error::StoreError;
use crate::schema::TABLES;
use crate::sink::{count, BoxFuture, Sink, SinkReport, TableCounts};

/// Tuning of the Parquet writer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ParquetOptions {
    /// Rows per row group (and per write to disk). Default 32,768: large enough for good
    /// compression.
    pub row_group_rows: usize,
    /// A row group is also written once a table's buffered values reach this many bytes, so
    /// memory is bounded by bytes whatever the rows hold (an `smtp_probe` row carries up to
    /// 8 KiB of transcript). Default 8 MiB per table: seven tables, at most ~56 MiB.
    pub row_group_bytes: usize,
    /// zstd level. Default 3 (zstd's own default: fast, and files a third of snappy's size).
    pub zstd_level: i32,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            row_group_rows: 32_768,
            row_group_bytes: 8 << 20,
            zstd_level: 3,
        }
    }
}

struct TableFile {
    kind: RecordKind,
    partial: PathBuf,
    path: PathBuf,
    writer: Option<SerializedFileWriter<BufWriter<File>>>,
    buf: ColumnBuffers,
    rows: u64,
}

impl TableFile {
    fn create(
        dir: &Path,
        kind: RecordKind,
        props: &Arc<WriterProperties>,
    ) -> Result<Self, StoreError> {
        let path = dir.join(format!("{}.parquet", kind.table()));
        let partial = dir.join(format!(".{}.parquet.partial", kind.table()));
        let file = File::create(&partial).map_err(|e| StoreError::io(&partial, e))?;
        let writer = SerializedFileWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            parquet_schema(kind)?,
            props.clone(),
        )
        .map_err(|e| StoreError::parquet(&partial, e))?;
        Ok(TableFile {
            kind,
            partial,
            path,
            writer: Some(writer),
            buf: ColumnBuffers::new(kind),
            rows: 0,
        })
    }

    fn push(&mut self, record: &Record) -> Result<(), StoreError> {
        let row = self.rows + self.buf.rows as u64;
        if let Err(message) = self.buf.push(record) {
            // Drop the partial row group: a row with a hole would shift every later value.
            self.buf.clear();
            return Err(StoreError::BadRow {
                table: self.kind.table(),
                row,
                message,
            });
        }
        Ok(())
    }

    fn write_row_group(&mut self) -> Result<(), StoreError> {
        if self.buf.rows == 0 {
            return Ok(());
        }
        let path = &self.partial;
        let pe = |e: parquet::errors::ParquetError| StoreError::parquet(path, e);
        let writer = self.writer.as_mut().ok_or(StoreError::Closed)?;
        let mut rg = writer.next_row_group().map_err(pe)?;
        for leaf in &mut self.buf.leaves {
            let mut col = rg
                .next_column()
                .map_err(pe)?
                .ok_or_else(|| StoreError::parquet(path, "schema has fewer columns than data"))?;
            let Leaf {
                values,
                def,
                rep,
                max_def,
                max_rep,
            } = leaf;
            let def = (*max_def > 0).then_some(&def[..]);
            let rep = (*max_rep > 0).then_some(&rep[..]);
            match values {
                Values::Bytes { data, ends } => {
                    // Moved, not copied: the values are not held twice while they are
                    // encoded (the buffer grows again for the next row group).
                    let all = bytes::Bytes::from(std::mem::take(data));
                    let mut start = 0;
                    let values: Vec<ByteArray> = ends
                        .iter()
                        .map(|&end| {
                            let v = ByteArray::from(all.slice(start..end));
                            start = end;
                            v
                        })
                        .collect();
                    col.typed::<ByteArrayType>().write_batch(&values, def, rep)
                }
                Values::I32(v) => col.typed::<Int32Type>().write_batch(v, def, rep),
                Values::I64(v) => col.typed::<Int64Type>().write_batch(v, def, rep),
                Values::Bool(v) => col.typed::<BoolType>().write_batch(v, def, rep),
            }
            .map_err(pe)?;
            col.close().map_err(pe)?;
        }
        rg.close().map_err(pe)?;
        self.rows += self.buf.rows as u64;
        self.buf.clear();
        Ok(())
    }

    /// Finish the file, rename it into place, return its manifest entry.
    fn finish(&mut self) -> Result<ManifestTable, StoreError> {
        self.write_row_group()?;
        let writer = self.writer.take().ok_or(StoreError::Closed)?;
        let mut inner = writer
            .into_inner()
            .map_err(|e| StoreError::parquet(&self.partial, e))?;
        inner
            .flush()
            .map_err(|e| StoreError::io(&self.partial, e))?;
        let file = inner
            .into_inner()
            .map_err(|e| StoreError::io(&self.partial, e.into_error()))?;
        file.sync_all()
            .map_err(|e| StoreError::io(&self.partial, e))?;
        drop(file);
        std::fs::rename(&self.partial, &self.path).map_err(|e| StoreError::io(&self.path, e))?;
        let (bytes, sha256) = file_digest(&self.path)?;
        Ok(ManifestTable {
            file: format!("{}.parquet", self.kind.table()),
            rows: self.rows,
            bytes,
            sha256,
        })
    }
}

/// Writes a result directory: `<table>.parquet` for every table and `manifest.json`.
pub struct ParquetSink {
    dir: PathBuf,
    options: ParquetOptions,
    files: Vec<TableFile>,
    scans: BTreeMap<(String, String), ManifestScan>,
    rows: TableCounts,
    closed: bool,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("dir", &self.dir)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ParquetSink {
    /// Create the directory (and parents) and start every table's file. Refuses a directory
    /// that already holds a manifest: a finished result is never overwritten.
    pub fn create(dir: impl Into<PathBuf>, options: ParquetOptions) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        if dir.join(MANIFEST).exists() {
            return Err(StoreError::Manifest {
                path: dir.join(MANIFEST),
                message: "the directory already holds a finished result; choose another --out"
                    .into(),
            });
        }
        let level =
            ZstdLevel::try_new(options.zstd_level).map_err(|e| StoreError::parquet(&dir, e))?;
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(level))
                .set_created_by(format!("mxray {}", env!("CARGO_PKG_VERSION")))
                .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
                .build(),
        );
        let files = TABLES
            .iter()
            .map(|&k| TableFile::create(&dir, k, &props))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParquetSink {
            dir,
            options,
            files,
            scans: BTreeMap::new(),
            rows: TableCounts::new(),
            closed: false,
        })
    }

    /// The result directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Write one record (synchronously: encoding and compression are CPU work).
    pub fn write_sync(&mut self, record: &Record) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        let kind = record.kind();
        if let Record::Scan(s) = record {
            self.scans.insert(
                (s.scan_id.to_string(), s.vantage.clone()),
                ManifestScan {
                    scan_id: s.scan_id.to_string(),
                    vantage: s.vantage.clone(),
                    started_at: s.started_at.to_string(),
                    finished_at: s.finished_at.map(|t| t.to_string()),
                    status: s.status.to_string(),
                    domains_total: s.domains_total,
                },
            );
        }
        let idx = TABLES.iter().position(|&k| k == kind).unwrap_or(0);
        let file = &mut self.files[idx];
        file.push(record)?;
        // The byte count is a sum over the leaves: look at it every 64 rows.
        let rows = file.buf.rows;
        if rows >= self.options.row_group_rows
            || (rows % 64 == 0 && file.buf.bytes() >= self.options.row_group_bytes)
        {
            file.write_row_group()?;
        }
        count(&mut self.rows, kind, 1);
        Ok(())
    }

    /// Write every buffered row group to disk.
    pub fn flush_sync(&mut self) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        self.files
            .iter_mut()
            .try_for_each(TableFile::write_row_group)
    }

    /// Finish every file and write the manifest.
    pub fn close_sync(&mut self) -> Result<SinkReport, StoreError> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        self.closed = true;
        let mut tables = BTreeMap::new();
        for f in &mut self.files {
            tables.insert(f.kind.table().to_owned(), f.finish()?);
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: UtcTime::now().to_string(),
            scans: self.scans.values().cloned().collect(),
            tables,
        };
        let partial = self.dir.join(".manifest.json.partial");
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| StoreError::Manifest {
            path: partial.clone(),
            message: e.to_string(),
        })?;
        let mut f = File::create(&partial).map_err(|e| StoreError::io(&partial, e))?;
        f.write_all(&text)
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::io(&partial, e))?;
        std::fs::rename(&partial, self.dir.join(MANIFEST))
            .map_err(|e| StoreError::io(self.dir.join(MANIFEST), e))?;
        let mut report = SinkReport::new("parquet", self.dir.display().to_string());
        report.rows = std::mem::take(&mut self.rows);
        Ok(report)
    }
}

impl Sink for ParquetSink {
    fn name(&self) -> &'static str {
        "parquet"
    }

    fn write(&mut self, record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        let r = self.write_sync(&record);
        Box::pin(async move { r })
    }

    fn write_batch(&mut self, records: Vec<Record>) -> BoxFuture<'_, Result<(), StoreError>> {
        let r = records.iter().try_for_each(|rec| self.write_sync(rec));
        Box::pin(async move { r })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), StoreError>> {
        let r = self.flush_sync();
        Box::pin(async move { r })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<SinkReport, StoreError>> {
        let r = self.close_sync();
        Box::pin(async move { r })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parquet::read_table_file;
    use mxray_model::examples;

    #[test]
    fn row_groups_are_bounded_by_bytes_too() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = ParquetOptions {
            row_group_bytes: 64 * 1024,
            ..ParquetOptions::default()
        };
        let mut sink = ParquetSink::create(dir.path(), opts).expect("create");
        let mut p = examples::smtp_probe();
        p.transcript = "x".repeat(4096);
        let idx = TABLES
            .iter()
            .position(|&k| k == RecordKind::SmtpProbe)
            .expect("table");
        for _ in 0..1000 {
            sink.write_sync(&Record::from(p.clone())).expect("write");
            // 64 rows of 4 KiB transcripts exceed 64 KiB: never more than 64 rows buffered.
            assert!(
                sink.files[idx].buf.rows <= 64,
                "{}",
                sink.files[idx].buf.rows
            );
        }
        sink.close_sync().expect("close");
        let back = read_table_file(
            &dir.path().join("smtp_probes.parquet"),
            RecordKind::SmtpProbe,
        )
        .expect("read");
        assert_eq!(back.len(), 1000);
    }

    #[test]
    fn a_finished_directory_is_never_overwritten() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut sink = ParquetSink::create(dir.path(), ParquetOptions::default()).expect("create");
        sink.close_sync().expect("close");
        let err = ParquetSink::create(dir.path(), ParquetOptions::default()).expect_err("exists");
        assert!(
            err.to_string().contains("already holds a finished result"),
            "{err}"
        );
    }
}
