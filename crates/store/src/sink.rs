//! The [`Sink`] trait and the simple sinks: [`NullSink`], [`JsonlSink`], [`FanOut`].

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use mxray_model::{Record, RecordKind};

use crate::error::StoreError;

/// A boxed, sendable future: what [`Sink`] methods return, so that sinks can be boxed
/// (`Box<dyn Sink>`) and combined in a [`FanOut`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where records go. The pipeline pushes every record into one sink (often a [`FanOut`]);
/// a sink never drops a record silently: it stores it, spills it, or returns an `Err`.
///
/// Call [`Sink::close`] exactly once at the end; records written after it are refused.
pub trait Sink: Send + std::fmt::Debug {
    /// Short name for reports and logs (`clickhouse`, `parquet`, `jsonl`, `null`, `fanout`).
    fn name(&self) -> &'static str;

    /// Store one record. May wait (backpressure) when the destination is slow.
    fn write(&mut self, record: Record) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Store several records, in order.
    fn write_batch(&mut self, records: Vec<Record>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            for r in records {
                self.write(r).await?;
            }
            Ok(())
        })
    }

    /// Push buffered records to the destination (a batch insert, a row group, an OS write).
    fn flush(&mut self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Flush, finish the files or batches, and report what was stored.
    fn close(&mut self) -> BoxFuture<'_, Result<SinkReport, StoreError>>;
}

/// Rows per table, keyed by table name (`smtp_probes`, ...).
pub type TableCounts = BTreeMap<&'static str, u64>;

/// A batch the database refused as bad data: never retried, saved to a file instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedBatch {
    /// The table.
    pub table: &'static str,
    /// Rows in the batch.
    pub rows: u64,
    /// The offending row within the batch, when the server named it (1-based, as ClickHouse
    /// counts).
    pub row: Option<u64>,
    /// The server's message.
    pub message: String,
    /// JSON-lines file the batch was saved to.
    pub saved_to: PathBuf,
}

/// What a sink stored, returned by [`Sink::close`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkReport {
    /// Sink name ([`Sink::name`]).
    pub sink: &'static str,
    /// Where: a directory, a file, `-`, or a ClickHouse URL and database.
    pub location: String,
    /// Rows stored in the destination itself, per table.
    pub rows: TableCounts,
    /// Rows that went to the spill directory instead (ClickHouse sink only), per table.
    pub spilled: TableCounts,
    /// The spill directory, when anything spilled: ingest it with `mxray load`.
    pub spill_dir: Option<PathBuf>,
    /// Batches refused as bad data (ClickHouse sink only).
    pub rejected: Vec<RejectedBatch>,
    /// The reports of the sinks of a [`FanOut`].
    pub children: Vec<SinkReport>,
}

impl SinkReport {
    pub(crate) fn new(sink: &'static str, location: impl Into<String>) -> Self {
        SinkReport {
            sink,
            location: location.into(),
            ..SinkReport::default()
        }
    }

    /// Total rows stored (all tables), not counting spilled ones.
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }

    /// Total rows spilled.
    pub fn total_spilled(&self) -> u64 {
        self.spilled.values().sum()
    }

    /// No rejected batch here or in a child.
    pub fn is_clean(&self) -> bool {
        self.rejected.is_empty() && self.children.iter().all(SinkReport::is_clean)
    }
}

pub(crate) fn count(counts: &mut TableCounts, kind: RecordKind, n: u64) {
    *counts.entry(kind.table()).or_insert(0) += n;
}

/// Discards records, counting them. For benchmarks and dry runs.
#[derive(Debug, Default)]
pub struct NullSink {
    rows: TableCounts,
}

impl NullSink {
    /// A new null sink.
    pub fn new() -> Self {
        NullSink::default()
    }
}

impl Sink for NullSink {
    fn name(&self) -> &'static str {
        "null"
    }

    fn write(&mut self, record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        count(&mut self.rows, record.kind(), 1);
        Box::pin(async { Ok(()) })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<SinkReport, StoreError>> {
        let mut report = SinkReport::new("null", "");
        report.rows = std::mem::take(&mut self.rows);
        Box::pin(async move { Ok(report) })
    }
}

/// One JSON object per line, each with `"record": "<type>"` first (DESIGN.md `--jsonl`).
///
/// Writes to a file (created or truncated) or to standard output (`-`). The JSON is the
/// model's serde form: RFC 3339 times, vocabulary strings, `null` for absent values.
pub struct JsonlSink {
    out: Option<std::io::BufWriter<Box<dyn Write + Send>>>,
    location: String,
    rows: TableCounts,
    line: Vec<u8>,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink")
            .field("location", &self.location)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl JsonlSink {
    /// Open `path` for writing, or standard output when `path` is `-`.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        let (out, location): (Box<dyn Write + Send>, String) = if path == Path::new("-") {
            (Box::new(std::io::stdout()), "-".to_owned())
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
            }
            let f = std::fs::File::create(path).map_err(|e| StoreError::io(path, e))?;
            (Box::new(f), path.display().to_string())
        };
        Ok(Self::from_writer(out, location))
    }

    /// Write to any writer (tests, pipes).
    pub fn from_writer(out: Box<dyn Write + Send>, location: impl Into<String>) -> Self {
        JsonlSink {
            out: Some(std::io::BufWriter::with_capacity(1 << 16, out)),
            location: location.into(),
            rows: TableCounts::new(),
            line: Vec::with_capacity(4096),
        }
    }

    fn write_sync(&mut self, record: &Record) -> Result<(), StoreError> {
        let out = self.out.as_mut().ok_or(StoreError::Closed)?;
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(|e| StoreError::BadRow {
            table: record.kind().table(),
            row: self.rows.get(record.kind().table()).copied().unwrap_or(0),
            message: e.to_string(),
        })?;
        self.line.push(b'\n');
        out.write_all(&self.line)
            .map_err(|e| StoreError::io(&self.location, e))?;
        count(&mut self.rows, record.kind(), 1);
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn write(&mut self, record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        let r = self.write_sync(&record);
        Box::pin(async move { r })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), StoreError>> {
        let r = match self.out.as_mut() {
            Some(out) => out.flush().map_err(|e| StoreError::io(&self.location, e)),
            None => Err(StoreError::Closed),
        };
        Box::pin(async move { r })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<SinkReport, StoreError>> {
        let r = match self.out.take() {
            Some(mut out) => out
                .flush()
                .map_err(|e| StoreError::io(&self.location, e))
                .map(|()| {
                    let mut report = SinkReport::new("jsonl", self.location.clone());
                    report.rows = std::mem::take(&mut self.rows);
                    report
                }),
            None => Err(StoreError::Closed),
        };
        Box::pin(async move { r })
    }
}

/// Writes every record to several sinks, in order (e.g. Parquet files and ClickHouse).
#[derive(Debug)]
pub struct FanOut {
    sinks: Vec<Box<dyn Sink>>,
    rows: TableCounts,
}

impl FanOut {
    /// Combine sinks; records go to each, in the order given.
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        FanOut {
            sinks,
            rows: TableCounts::new(),
        }
    }
}

impl Sink for FanOut {
    fn name(&self) -> &'static str {
        "fanout"
    }

    fn write(&mut self, record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            count(&mut self.rows, record.kind(), 1);
            if let Some((last, rest)) = self.sinks.split_last_mut() {
                for s in rest {
                    s.write(record.clone()).await?;
                }
                last.write(record).await?;
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            for s in &mut self.sinks {
                s.flush().await?;
            }
            Ok(())
        })
    }

    /// Closes every sink even when one fails; returns the first error.
    fn close(&mut self) -> BoxFuture<'_, Result<SinkReport, StoreError>> {
        Box::pin(async move {
            let mut report = SinkReport::new("fanout", "");
            report.rows = std::mem::take(&mut self.rows);
            let mut first_err = None;
            for s in &mut self.sinks {
                match s.close().await {
                    Ok(r) => report.children.push(r),
                    Err(e) => {
                        tracing::error!(sink = s.name(), error = %e, "closing sink failed");
                        first_err.get_or_insert(e);
                    }
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(report),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::examples;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn jsonl_lines_carry_the_record_tag_and_read_back_equal() {
        let buf = Shared::default();
        let mut sink = JsonlSink::from_writer(Box::new(buf.clone()), "mem");
        for r in examples::all() {
            sink.write(r).await.expect("write");
        }
        let report = sink.close().await.expect("close");
        let n = examples::all().len();
        assert_eq!(report.total_rows(), n as u64);
        assert_eq!(report.rows.get("smtp_probes"), Some(&1));
        assert_eq!(report.rows.get("canary_results"), Some(&1));
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), n);
        assert!(
            lines[3].starts_with(r#"{"record":"smtp_probe","#),
            "{}",
            lines[3]
        );
        let back: Vec<Record> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("parse"))
            .collect();
        assert_eq!(back, examples::all());
        assert!(matches!(
            sink.write(examples::scan().into()).await,
            Err(StoreError::Closed)
        ));
    }

    #[tokio::test]
    async fn fanout_gives_every_sink_every_record() {
        let a = Shared::default();
        let mut fan = FanOut::new(vec![
            Box::new(JsonlSink::from_writer(Box::new(a.clone()), "a")),
            Box::new(NullSink::new()),
        ]);
        fan.write_batch(examples::all()).await.expect("write");
        fan.flush().await.expect("flush");
        let report = fan.close().await.expect("close");
        let n = examples::all().len() as u64;
        assert_eq!(report.total_rows(), n);
        assert_eq!(report.children.len(), 2);
        assert!(report.children.iter().all(|c| c.total_rows() == n));
        assert_eq!(
            String::from_utf8(a.0.lock().expect("lock").clone())
                .expect("utf8")
                .lines()
                .count() as u64,
            n
        );
    }
}
