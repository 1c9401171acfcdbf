//! [`ClickHouseSink`]: batched, retried, spilling inserts into ClickHouse.
//!
//! Data flow: `Sink::write` sends each record over a bounded channel
//! ([`ClickHouseConfig::queue_rows`]) to one background task. The task keeps one batch per
//! table and sends it as one `INSERT` when it holds [`ClickHouseConfig::batch_rows`] rows or
//! when its first row is [`ClickHouseConfig::batch_interval`] old. While an insert runs the
//! channel fills and `write` waits: a slow database slows the scan down instead of growing
//! memory (one batch per table plus the channel). The rows of an insert stream to the server
//! as they are serialized, so client and server work at the same time.
//!
//! Failures: transient ones (network, timeouts, 5xx, too many parts, shutdown) are retried with
//! exponential backoff for up to [`ClickHouseConfig::spill_after`]; then the batch is written to
//! a Parquet spill directory ([`ClickHouseConfig::spill_dir`]) and the scan goes on. While
//! spilling, one batch per [`ClickHouseConfig::probe_interval`] is tried against the server
//! again; the first success ends the spilling. Bad-data errors are not retried: the batch is
//! saved as JSON lines under `<spill_dir>/rejected/` and reported with its table and row.
//!
//! Exactly once: a retried batch may have reached the server before the connection broke, and
//! a spilled batch may have too. Every table is a `ReplacingMergeTree` keyed on the record's
//! identity, so such duplicates collapse; read with `FINAL` for exact counts.

use std::path::PathBuf;
use std::time::Duration;

use mxray_model::{Record, RecordKind};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::ch::{self, ClickHouseConfig};
use crate::error::{classify, error_row, ErrorClass, StoreError};
use crate::parquet::{ParquetOptions, ParquetSink};
use crate::schema::TABLES;
use crate::sink::{count, BoxFuture, RejectedBatch, Sink, SinkReport, TableCounts};

// Records are the hot path and the common message: boxing them would cost one allocation each.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(Record),
    Flush(oneshot::Sender<Result<(), StoreError>>),
    Close(oneshot::Sender<Result<SinkReport, StoreError>>),
}

/// The ClickHouse sink. Create it with [`ClickHouseSink::connect`].
#[derive(Debug)]
pub struct ClickHouseSink {
    tx: Option<mpsc::Sender<Msg>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ClickHouseSink {
    /// Health check, `migrate`, then start the background batcher.
    pub async fn connect(config: ClickHouseConfig) -> Result<Self, StoreError> {
        let report = ch::migrate(&config).await?;
        if !report.applied.is_empty() {
            tracing::info!(database = %config.database, from = report.from, to = report.to,
                "ClickHouse schema migrated");
        }
        let (tx, rx) = mpsc::channel(config.queue_rows.max(1));
        let worker = Worker::new(config);
        let task = tokio::spawn(worker.run(rx));
        Ok(ClickHouseSink {
            tx: Some(tx),
            task: Some(task),
        })
    }

    async fn request<T>(
        &mut self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Msg,
    ) -> Result<T, StoreError> {
        let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
        let (otx, orx) = oneshot::channel();
        tx.send(make(otx)).await.map_err(|_| StoreError::Closed)?;
        orx.await.map_err(|_| StoreError::Closed)?
    }
}

impl Sink for ClickHouseSink {
    fn name(&self) -> &'static str {
        "clickhouse"
    }

    fn write(&mut self, record: Record) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(Msg::Record(record))
                .await
                .map_err(|_| StoreError::Closed)
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.request(Msg::Flush).await })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<SinkReport, StoreError>> {
        Box::pin(async move {
            let report = self.request(Msg::Close).await;
            self.tx = None;
            if let Some(task) = self.task.take() {
                let _ = task.await;
            }
            report
        })
    }
}

struct Batch {
    rows: Vec<Record>,
    since: Instant,
}

struct Worker {
    config: ClickHouseConfig,
    client: clickhouse::Client,
    batches: Vec<Batch>,
    inserted: TableCounts,
    spilled: TableCounts,
    rejected: Vec<RejectedBatch>,
    spill: Option<ParquetSink>,
    /// Spilling mode: when the last attempt against the server was made.
    spilling_since_probe: Option<Instant>,
    fatal: Option<StoreError>,
}

impl Worker {
    fn new(config: ClickHouseConfig) -> Worker {
        let client = config.client();
        Worker {
            batches: TABLES
                .iter()
                .map(|_| Batch {
                    rows: Vec::new(),
                    since: Instant::now(),
                })
                .collect(),
            client,
            config,
            inserted: TableCounts::new(),
            spilled: TableCounts::new(),
            rejected: Vec::new(),
            spill: None,
            spilling_since_probe: None,
            fatal: None,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let tick = self
            .config
            .batch_interval
            .min(Duration::from_millis(500))
            .max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Record(r)) => self.add(r).await,
                    Some(Msg::Flush(reply)) => {
                        self.ship_all().await;
                        let _ = reply.send(self.status());
                    }
                    Some(Msg::Close(reply)) => {
                        let _ = reply.send(self.finish().await);
                        return;
                    }
                    None => {
                        // Dropped without close: still store what we hold.
                        if let Err(e) = self.finish().await {
                            tracing::error!(error = %e, "ClickHouse sink dropped without close");
                        }
                        return;
                    }
                },
                _ = ticker.tick() => {
                    for i in 0..TABLES.len() {
                        let b = &self.batches[i];
                        if !b.rows.is_empty() && b.since.elapsed() >= self.config.batch_interval {
                            self.ship(i).await;
                        }
                    }
                }
            }
        }
    }

    fn status(&self) -> Result<(), StoreError> {
        match &self.fatal {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    async fn add(&mut self, r: Record) {
        let i = TABLES.iter().position(|&k| k == r.kind()).unwrap_or(0);
        let b = &mut self.batches[i];
        if b.rows.is_empty() {
            b.since = Instant::now();
        }
        b.rows.push(r);
        if b.rows.len() >= self.config.batch_rows {
            self.ship(i).await;
        }
    }

    async fn ship_all(&mut self) {
        for i in 0..TABLES.len() {
            self.ship(i).await;
        }
    }

    async fn ship(&mut self, i: usize) {
        let rows = std::mem::take(&mut self.batches[i].rows);
        if rows.is_empty() {
            return;
        }
        self.deliver(TABLES[i], rows).await;
    }

    /// Insert one batch: retry transient failures with backoff, spill after the deadline,
    /// set aside bad data.
    async fn deliver(&mut self, kind: RecordKind, rows: Vec<Record>) {
        if let Some(last) = self.spilling_since_probe {
            if last.elapsed() < self.config.probe_interval {
                self.spill(kind, rows);
                return;
            }
            self.spilling_since_probe = Some(Instant::now());
            match ch::insert_batch(&self.config, &self.client, kind, &rows).await {
                Ok(()) => {
                    tracing::warn!(table = kind.table(), "ClickHouse is back: spilling ends");
                    self.spilling_since_probe = None;
                    count(&mut self.inserted, kind, rows.len() as u64);
                }
                Err(e) if classify(&e) == ErrorClass::Transient => self.spill(kind, rows),
                Err(e) => self.reject(kind, rows, &e),
            }
            return;
        }
        let started = Instant::now();
        let mut delay = self.config.retry_initial;
        loop {
            match ch::insert_batch(&self.config, &self.client, kind, &rows).await {
                Ok(()) => {
                    count(&mut self.inserted, kind, rows.len() as u64);
                    return;
                }
                Err(e) if classify(&e) == ErrorClass::Transient => {
                    if started.elapsed() + delay > self.config.spill_after {
                        tracing::warn!(table = kind.table(), error = %e,
                            spill_dir = %self.config.spill_dir.display(),
                            "ClickHouse unavailable beyond the deadline: spilling to files");
                        self.spilling_since_probe = Some(Instant::now());
                        self.spill(kind, rows);
                        return;
                    }
                    tracing::debug!(table = kind.table(), error = %e, ?delay, "insert retry");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.config.retry_max);
                }
                Err(e) => {
                    self.reject(kind, rows, &e);
                    return;
                }
            }
        }
    }

    fn spill(&mut self, kind: RecordKind, rows: Vec<Record>) {
        if self.spill.is_none() {
            match ParquetSink::create(&self.config.spill_dir, ParquetOptions::default()) {
                Ok(s) => self.spill = Some(s),
                Err(e) => {
                    // Nowhere to put the rows: this is data loss, the one ERROR we log.
                    tracing::error!(error = %e, rows = rows.len(), table = kind.table(),
                        "cannot create the spill directory: rows lost");
                    self.fatal.get_or_insert(e);
                    return;
                }
            }
        }
        if let Some(s) = self.spill.as_mut() {
            for r in &rows {
                if let Err(e) = s.write_sync(r) {
                    tracing::error!(error = %e, table = kind.table(), "spill write failed: rows lost");
                    self.fatal.get_or_insert(e);
                    return;
                }
            }
            count(&mut self.spilled, kind, rows.len() as u64);
        }
    }

    fn reject(&mut self, kind: RecordKind, rows: Vec<Record>, e: &clickhouse::error::Error) {
        let message = e.to_string();
        let row = error_row(&message);
        let dir = self.config.spill_dir.join("rejected");
        let n = self.rejected.len();
        let path: PathBuf = dir.join(format!("{}-{n}.jsonl", kind.table()));
        let saved = std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::io(&dir, e))
            .and_then(|()| {
                let mut text = Vec::new();
                for r in &rows {
                    serde_json::to_writer(&mut text, r).map_err(|e| StoreError::BadRow {
                        table: kind.table(),
                        row: 0,
                        message: e.to_string(),
                    })?;
                    text.push(b'\n');
                }
                std::fs::write(&path, text).map_err(|e| StoreError::io(&path, e))
            });
        if let Err(se) = saved {
            tracing::error!(error = %se, "cannot save a rejected batch: rows lost");
            self.fatal.get_or_insert(se);
        }
        tracing::error!(table = kind.table(), rows = rows.len(), row = ?row, error = %message,
            saved_to = %path.display(), "ClickHouse refused a batch as bad data (not retried)");
        self.rejected.push(RejectedBatch {
            table: kind.table(),
            rows: rows.len() as u64,
            row,
            message,
            saved_to: path,
        });
    }

    async fn finish(&mut self) -> Result<SinkReport, StoreError> {
        self.ship_all().await;
        let mut report = SinkReport::new(
            "clickhouse",
            format!("{}/{}", self.config.url, self.config.database),
        );
        if let Some(mut s) = self.spill.take() {
            s.close_sync()?;
            report.spill_dir = Some(self.config.spill_dir.clone());
        }
        report.rows = std::mem::take(&mut self.inserted);
        report.spilled = std::mem::take(&mut self.spilled);
        report.rejected = std::mem::take(&mut self.rejected);
        self.status()?;
        Ok(report)
    }
}
