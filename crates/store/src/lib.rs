//! Record sinks for mxray: ClickHouse, Parquet files, JSON lines; ClickHouse migrations; and
//! `mxray load`.
//!
//! What it does: takes the records of `mxray-model` and stores each one exactly once.
//! - [`ClickHouseSink`]: batched inserts per table over HTTP/RowBinary, bounded queue
//!   (backpressure), retries with backoff for transient failures, spill to Parquet files when
//!   the server stays away, bad data set aside and reported. Idempotent thanks to
//!   `ReplacingMergeTree` tables keyed on each record's identity.
//! - [`ParquetSink`]: the embedded default, one `<table>.parquet` per table (zstd, row groups)
//!   plus `manifest.json` with row counts and SHA-256 of each file; files appear only whole.
//! - [`JsonlSink`] (`--jsonl`), [`NullSink`], and [`FanOut`] to write to several at once.
//! - [`migrate`]: versioned, idempotent DDL portable to ClickHouse 18.16 and current releases;
//!   refuses a database stamped with a newer schema. With [`ClickHouseConfig::cluster`] it lays
//!   the database out for a ClickHouse cluster ([`schema::Layout`]: replicated local tables
//!   under `Distributed` public names). [`load_dir`]: ingest a result or spill directory, or a
//!   release in either layout (flat `<table>.parquet`, or Hive-partitioned
//!   `table=<name>/vantage=<v>/date=<d>/part-N.parquet`: [`DatasetManifest`]), after
//!   verifying its manifest. [`supersede_attempts`]: a re-run campaign shard deletes the rows
//!   of its earlier unfinished attempts.
//!
//! What it does not: no scanning, no verdicts, no analysis SQL; it never decides what a record
//! means, and it lists no columns of its own: the tables' columns are the record structs' own
//! (`mxray_model::columns`, derived), from which [`schema`] builds the DDL and the Parquet code
//! its schema and rows. The only SQL here is the DDL, the reads of whole tables, and the
//! deletions of superseded attempts.
//!
//! Main types: [`Sink`] (the trait the pipeline writes to), [`SinkReport`],
//! [`ClickHouseConfig`], [`StoreError`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), mxray_store::StoreError> {
//! use mxray_store::{ClickHouseConfig, ClickHouseSink, FanOut, ParquetOptions, ParquetSink, Sink};
//! let ch = ClickHouseConfig::from_url("http://127.0.0.1:8123/mxray")?;
//! let mut sink = FanOut::new(vec![
//!     Box::new(ParquetSink::create("mxray-out/scan", ParquetOptions::default())?),
//!     Box::new(ClickHouseSink::connect(ch).await?),
//! ]);
//! for record in mxray_model::examples::all() {
//!     sink.write(record).await?;
//! }
//! let report = sink.close().await?;
//! assert!(report.is_clean());
//! # Ok(()) }
//! ```

mod ch;
mod ch_sink;
mod dataset;
mod dictionary;
pub mod error;
mod load;
mod parquet;
pub mod schema;
mod sink;
mod supersede;

pub use crate::parquet::{
    file_digest, parquet_schema, read_table_file, Manifest, ManifestScan, ManifestTable,
    ParquetOptions, ParquetSink, TableReader, MANIFEST, MANIFEST_FORMAT,
};
pub use ch::{
    health_check, migrate, read_table, schema_version, ClickHouseConfig, MigrationReport,
    DEFAULT_DATABASE,
};
pub use ch_sink::ClickHouseSink;
pub use dataset::{
    DatasetManifest, HiveFile, HiveManifest, HiveTable, TablePart, HIVE_FORMAT, REFERENCE_TABLES,
};
pub use dictionary::data_dictionary;
pub use error::StoreError;
pub use load::{load_dir, LoadReport};
pub use sink::{
    BoxFuture, FanOut, JsonlSink, NullSink, RejectedBatch, Sink, SinkReport, TableCounts,
};
pub use supersede::{register_attempt, supersede_attempts, SupersedeReport};
