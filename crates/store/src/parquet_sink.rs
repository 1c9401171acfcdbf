//! The Parquet sink (the embedded default output) and the reader `mxray load` uses.
//!
//! A result directory holds one file per table, `<table>.parquet`, plus `manifest.json`.
//! Files are written as `.<table>.parquet.partial` and renamed when complete, and the manifest
//! is written last (also through a rename): a directory with a manifest is complete, and a
//! crash never leaves a file that looks whole.
//!
//! Column encoding (readable as is by ClickHouse `file()`, chDB, DuckDB, pandas, polars):
//! strings and vocabulary values `BYTE_ARRAY (STRING)`; `scan_id` its canonical UUID text;
//! times `INT64 TIMESTAMP(MILLIS, UTC)`; unsigned integers `INT32/INT64 INTEGER(n, false)`;
//! booleans `BOOLEAN`; lists the standard three-level `LIST` of required elements; the TLSA
//! list a `LIST` of `STRUCT<usage, selector, matching_type, data>`. Row groups of
//! [`ParquetOptions::row_group_rows`] rows, zstd compression.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mxray_model::{Record, RecordKind, UtcTime, SCHEMA_VERSION};
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::writer::SerializedFileWriter;
use parquet::record::{Field, Row};
use parquet::schema::types::{Type, TypePtr};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::schema::{columns, Column, ColumnType, TABLES};
use crate::sink::{count, BoxFuture, Sink, SinkReport, TableCounts};

/// Name of the manifest file of a result directory.
pub const MANIFEST: &str = "manifest.json";

/// `format` value of a manifest.
pub const MANIFEST_FORMAT: &str = "mxray-parquet";

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

/// One table's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestTable {
    /// File name within the directory.
    pub file: String,
    /// Rows in the file.
    pub rows: u64,
    /// File size, bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// One scan described by the manifest (from the `scan` records written to the directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestScan {
    /// Scan id.
    pub scan_id: String,
    /// Vantage.
    pub vantage: String,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// End time, RFC 3339, when finished.
    pub finished_at: Option<String>,
    /// `running`, `complete`, `interrupted`.
    pub status: String,
    /// Domains in the input.
    pub domains_total: u64,
}

/// `manifest.json`: what a result directory holds, and the checksums `load` verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Record schema version of the files ([`mxray_model::SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// mxray version that wrote the directory.
    pub tool_version: String,
    /// When the directory was completed, RFC 3339.
    pub created_at: String,
    /// The scans whose `scan` records are in the directory.
    pub scans: Vec<ManifestScan>,
    /// Every table, by table name.
    pub tables: BTreeMap<String, ManifestTable>,
}

impl Manifest {
    /// Read and parse `<dir>/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, StoreError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| StoreError::Manifest {
            path: path.clone(),
            message: format!("cannot read the manifest ({e}); is this an mxray result directory?"),
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| StoreError::Manifest {
            path: path.clone(),
            message: format!("malformed manifest: {e}"),
        })?;
        if m.format != MANIFEST_FORMAT {
            return Err(StoreError::Manifest {
                path,
                message: format!("format is {:?}, expected {MANIFEST_FORMAT:?}", m.format),
            });
        }
        Ok(m)
    }

    /// Check every file against its size and SHA-256; the first mismatch is an error naming
    /// the file and both values.
    pub fn verify(&self, dir: &Path) -> Result<(), StoreError> {
        if self.schema_version > SCHEMA_VERSION {
            return Err(StoreError::Manifest {
                path: dir.join(MANIFEST),
                message: format!(
                    "schema version {} is newer than this mxray supports ({SCHEMA_VERSION})",
                    self.schema_version
                ),
            });
        }
        for (table, entry) in &self.tables {
            if crate::schema::kind_of_table(table).is_none() {
                return Err(StoreError::Manifest {
                    path: dir.join(MANIFEST),
                    message: format!("unknown table {table:?}"),
                });
            }
            if entry.file.contains('/') || entry.file.contains("..") {
                return Err(StoreError::Manifest {
                    path: dir.join(MANIFEST),
                    message: format!("file name {:?} leaves the directory", entry.file),
                });
            }
            let path = dir.join(&entry.file);
            let (bytes, sha) = file_digest(&path)?;
            if bytes != entry.bytes {
                return Err(StoreError::Manifest {
                    path,
                    message: format!(
                        "size is {bytes} bytes, the manifest says {} (truncated or replaced)",
                        entry.bytes
                    ),
                });
            }
            if sha != entry.sha256 {
                return Err(StoreError::Manifest {
                    path,
                    message: format!(
                        "SHA-256 is {sha}, the manifest says {} (the file was modified)",
                        entry.sha256
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Size and SHA-256 (hex) of a file.
pub fn file_digest(path: &Path) -> Result<(u64, String), StoreError> {
    let mut f = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| StoreError::io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

// ---------------------------------------------------------------------------------------------
// Schema

fn string_leaf(name: &str, rep: Repetition) -> parquet::errors::Result<Type> {
    Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
        .with_repetition(rep)
        .with_logical_type(Some(LogicalType::String))
        .build()
}

fn uint_leaf(name: &str, bits: i8, rep: Repetition) -> parquet::errors::Result<Type> {
    let physical = if bits == 64 {
        Physical::INT64
    } else {
        Physical::INT32
    };
    Type::primitive_type_builder(name, physical)
        .with_repetition(rep)
        .with_logical_type(Some(LogicalType::integer(bits, false)))
        .build()
}

fn list_of(name: &str, element: Type) -> parquet::errors::Result<Type> {
    let list = Type::group_type_builder("list")
        .with_repetition(Repetition::REPEATED)
        .with_fields(vec![Arc::new(element)])
        .build()?;
    Type::group_type_builder(name)
        .with_repetition(Repetition::REQUIRED)
        .with_logical_type(Some(LogicalType::List))
        .with_fields(vec![Arc::new(list)])
        .build()
}

fn column_type(col: &Column) -> parquet::errors::Result<Type> {
    let rep = if col.nullable {
        Repetition::OPTIONAL
    } else {
        Repetition::REQUIRED
    };
    match col.ty {
        ColumnType::Str | ColumnType::Uuid => string_leaf(col.name, rep),
        ColumnType::U8 => uint_leaf(col.name, 8, rep),
        ColumnType::U16 => uint_leaf(col.name, 16, rep),
        ColumnType::U32 => uint_leaf(col.name, 32, rep),
        ColumnType::U64 => uint_leaf(col.name, 64, rep),
        ColumnType::Bool => Type::primitive_type_builder(col.name, Physical::BOOLEAN)
            .with_repetition(rep)
            .build(),
        ColumnType::Time => Type::primitive_type_builder(col.name, Physical::INT64)
            .with_repetition(rep)
            .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::MILLIS)))
            .build(),
        ColumnType::StrList => list_of(col.name, string_leaf("element", Repetition::REQUIRED)?),
        ColumnType::Tlsa => {
            let fields = vec![
                Arc::new(uint_leaf("usage", 8, Repetition::REQUIRED)?),
                Arc::new(uint_leaf("selector", 8, Repetition::REQUIRED)?),
                Arc::new(uint_leaf("matching_type", 8, Repetition::REQUIRED)?),
                Arc::new(string_leaf("data", Repetition::REQUIRED)?),
            ];
            let element = Type::group_type_builder("element")
                .with_repetition(Repetition::REQUIRED)
                .with_fields(fields)
                .build()?;
            list_of(col.name, element)
        }
    }
}

/// The Parquet schema of a table.
pub fn parquet_schema(kind: RecordKind) -> Result<TypePtr, StoreError> {
    let fields = columns(kind)
        .iter()
        .map(|c| column_type(c).map(Arc::new))
        .collect::<parquet::errors::Result<Vec<_>>>()
        .map_err(|e| StoreError::parquet(kind.table(), e))?;
    let schema = Type::group_type_builder(kind.table())
        .with_fields(fields)
        .build()
        .map_err(|e| StoreError::parquet(kind.table(), e))?;
    Ok(Arc::new(schema))
}

// ---------------------------------------------------------------------------------------------
// Column buffers

#[derive(Debug)]
enum Values {
    /// Strings back to back in `data`; value `i` ends at `ends[i]` (one allocation per row
    /// group instead of one per value).
    Bytes {
        data: Vec<u8>,
        ends: Vec<usize>,
    },
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Values {
    /// Bytes allocated for the buffered values (capacity, not length: a growing buffer holds
    /// up to twice what it stores, and the bound is on memory).
    fn bytes(&self) -> usize {
        match self {
            Values::Bytes { data, ends } => data.capacity() + ends.capacity() * 8,
            Values::I32(v) => v.capacity() * 4,
            Values::I64(v) => v.capacity() * 8,
            Values::Bool(v) => v.capacity(),
        }
    }

    fn clear(&mut self) {
        match self {
            Values::Bytes { data, ends } => {
                data.clear();
                ends.clear();
            }
            Values::I32(v) => v.clear(),
            Values::I64(v) => v.clear(),
            Values::Bool(v) => v.clear(),
        }
    }
}

/// The buffered values and levels of one Parquet leaf column.
#[derive(Debug)]
struct Leaf {
    values: Values,
    def: Vec<i16>,
    rep: Vec<i16>,
    max_def: i16,
    max_rep: i16,
}

impl Leaf {
    fn new(ty: ColumnType, max_def: i16, max_rep: i16) -> Leaf {
        let values = match ty {
            ColumnType::Str | ColumnType::Uuid | ColumnType::StrList => Values::Bytes {
                data: Vec::new(),
                ends: Vec::new(),
            },
            ColumnType::U8 | ColumnType::U16 | ColumnType::U32 => Values::I32(Vec::new()),
            ColumnType::U64 | ColumnType::Time => Values::I64(Vec::new()),
            ColumnType::Bool => Values::Bool(Vec::new()),
            // Never a leaf type: a TLSA column has one leaf per struct field.
            ColumnType::Tlsa => Values::Bytes {
                data: Vec::new(),
                ends: Vec::new(),
            },
        };
        Leaf {
            values,
            def: Vec::new(),
            rep: Vec::new(),
            max_def,
            max_rep,
        }
    }

    fn clear(&mut self) {
        self.values.clear();
        self.def.clear();
        self.rep.clear();
    }
}

/// The leaves of one table, in schema (depth-first) order.
#[derive(Debug)]
struct Columns {
    kind: RecordKind,
    leaves: Vec<Leaf>,
    rows: usize,
}

const TLSA_FIELDS: [(&str, ColumnType); 4] = [
    ("usage", ColumnType::U8),
    ("selector", ColumnType::U8),
    ("matching_type", ColumnType::U8),
    ("data", ColumnType::Str),
];

impl Columns {
    fn new(kind: RecordKind) -> Columns {
        let mut leaves = Vec::new();
        for col in columns(kind) {
            match col.ty {
                ColumnType::StrList => leaves.push(Leaf::new(col.ty, 1, 1)),
                ColumnType::Tlsa => {
                    for (_, ty) in TLSA_FIELDS {
                        leaves.push(Leaf::new(ty, 1, 1));
                    }
                }
                ty => leaves.push(Leaf::new(ty, i16::from(col.nullable), 0)),
            }
        }
        Columns {
            kind,
            leaves,
            rows: 0,
        }
    }

    /// Append one record. On error the buffers may hold a partial row, so the caller must
    /// discard the row group (the sink turns it into an error).
    fn push(&mut self, record: &Record) -> Result<(), String> {
        let mut w = RowWriter {
            columns: columns(self.kind),
            leaves: &mut self.leaves,
            ci: 0,
            li: 0,
            error: None,
        };
        write_record(&mut w, record);
        if let Some(e) = w.error {
            return Err(e);
        }
        if w.ci != w.columns.len() {
            return Err(format!(
                "record of the wrong table for {}",
                self.kind.table()
            ));
        }
        self.rows += 1;
        Ok(())
    }

    fn clear(&mut self) {
        self.leaves.iter_mut().for_each(Leaf::clear);
        self.rows = 0;
    }

    /// Bytes held by the buffered values and levels of every leaf.
    fn bytes(&self) -> usize {
        self.leaves
            .iter()
            .map(|l| l.values.bytes() + (l.def.capacity() + l.rep.capacity()) * 2)
            .sum()
    }
}

/// Appends one record's values to the leaf buffers, column by column in schema order, checking
/// each call against the schema (a mismatch is a programming error the round-trip tests catch).
struct RowWriter<'a> {
    columns: &'static [Column],
    leaves: &'a mut [Leaf],
    ci: usize,
    li: usize,
    error: Option<String>,
}

impl RowWriter<'_> {
    /// The next column's first leaf, when the column has this type and nullability.
    fn next(&mut self, ty: ColumnType, nullable: bool) -> Option<&mut Leaf> {
        if self.error.is_some() {
            return None;
        }
        let Some(col) = self.columns.get(self.ci) else {
            self.error = Some("more values than columns".into());
            return None;
        };
        if col.ty != ty || col.nullable != nullable {
            self.error = Some(format!(
                "column {}: written as {ty:?}, nullable {nullable}",
                col.name
            ));
            return None;
        }
        self.ci += 1;
        let li = self.li;
        self.li += if ty == ColumnType::Tlsa {
            TLSA_FIELDS.len()
        } else {
            1
        };
        self.leaves.get_mut(li)
    }

    fn bytes(leaf: &mut Leaf, s: &str) {
        if let Values::Bytes { data, ends } = &mut leaf.values {
            data.extend_from_slice(s.as_bytes());
            ends.push(data.len());
        }
    }

    fn int32(leaf: &mut Leaf, n: u32) {
        if let Values::I32(v) = &mut leaf.values {
            // Unsigned 32-bit values are stored in INT32 by bit pattern (Parquet spec).
            v.push(n as i32);
        }
    }

    fn int64(leaf: &mut Leaf, n: i64) {
        if let Values::I64(v) = &mut leaf.values {
            v.push(n);
        }
    }

    fn boolean(leaf: &mut Leaf, b: bool) {
        if let Values::Bool(v) = &mut leaf.values {
            v.push(b);
        }
    }

    fn str(&mut self, s: &str) {
        if let Some(l) = self.next(ColumnType::Str, false) {
            Self::bytes(l, s);
        }
    }

    fn opt_str(&mut self, s: Option<&str>) {
        if let Some(l) = self.next(ColumnType::Str, true) {
            l.def.push(i16::from(s.is_some()));
            if let Some(s) = s {
                Self::bytes(l, s);
            }
        }
    }

    fn uuid(&mut self, u: &uuid::Uuid) {
        if let Some(l) = self.next(ColumnType::Uuid, false) {
            let mut buf = uuid::Uuid::encode_buffer();
            Self::bytes(l, u.hyphenated().encode_lower(&mut buf));
        }
    }

    fn time(&mut self, t: UtcTime) {
        if let Some(l) = self.next(ColumnType::Time, false) {
            Self::int64(l, t.unix().saturating_mul(1000));
        }
    }

    fn opt_time(&mut self, t: Option<UtcTime>) {
        if let Some(l) = self.next(ColumnType::Time, true) {
            l.def.push(i16::from(t.is_some()));
            if let Some(t) = t {
                Self::int64(l, t.unix().saturating_mul(1000));
            }
        }
    }

    fn uint(&mut self, ty: ColumnType, n: u32) {
        if let Some(l) = self.next(ty, false) {
            Self::int32(l, n);
        }
    }

    fn opt_uint(&mut self, ty: ColumnType, n: Option<u32>) {
        if let Some(l) = self.next(ty, true) {
            l.def.push(i16::from(n.is_some()));
            if let Some(n) = n {
                Self::int32(l, n);
            }
        }
    }

    fn u64(&mut self, n: u64) {
        if let Some(l) = self.next(ColumnType::U64, false) {
            // Unsigned 64-bit values are stored in INT64 by bit pattern.
            Self::int64(l, n as i64);
        }
    }

    fn bool(&mut self, b: bool) {
        if let Some(l) = self.next(ColumnType::Bool, false) {
            Self::boolean(l, b);
        }
    }

    fn opt_bool(&mut self, b: Option<bool>) {
        if let Some(l) = self.next(ColumnType::Bool, true) {
            l.def.push(i16::from(b.is_some()));
            if let Some(b) = b {
                Self::boolean(l, b);
            }
        }
    }

    fn list<'s>(&mut self, items: impl IntoIterator<Item = &'s str>) {
        if let Some(l) = self.next(ColumnType::StrList, false) {
            let mut n = 0;
            for s in items {
                Self::bytes(l, s);
                l.def.push(1);
                l.rep.push(i16::from(n > 0));
                n += 1;
            }
            if n == 0 {
                l.def.push(0);
                l.rep.push(0);
            }
        }
    }

    fn tlsa(&mut self, records: &[mxray_model::TlsaRecord]) {
        let li = self.li;
        if self.next(ColumnType::Tlsa, false).is_none() {
            return;
        }
        let Some(leaves) = self.leaves.get_mut(li..li + TLSA_FIELDS.len()) else {
            self.error = Some("tlsa: missing leaves".into());
            return;
        };
        for (k, leaf) in leaves.iter_mut().enumerate() {
            if records.is_empty() {
                leaf.def.push(0);
                leaf.rep.push(0);
            }
            for (i, t) in records.iter().enumerate() {
                match k {
                    0 => Self::int32(leaf, u32::from(t.usage)),
                    1 => Self::int32(leaf, u32::from(t.selector)),
                    2 => Self::int32(leaf, u32::from(t.matching_type)),
                    _ => Self::bytes(leaf, &t.data),
                }
                leaf.def.push(1);
                leaf.rep.push(i16::from(i > 0));
            }
        }
    }
}

fn strs(v: &[String]) -> impl Iterator<Item = &str> {
    v.iter().map(String::as_str)
}

/// The values of one record, in the column order of `schema.rs` (= model field order).
fn write_record(w: &mut RowWriter<'_>, record: &Record) {
    use ColumnType::{U16, U32, U8};
    match record {
        Record::Scan(r) => {
            w.uuid(&r.scan_id);
            w.str(&r.vantage);
            w.time(r.started_at);
            w.opt_time(r.finished_at);
            w.str(r.status.as_str());
            w.opt_str(r.source_ip.as_deref());
            w.opt_str(r.source_rdns.as_deref());
            w.str(r.port25_check.as_str());
            w.str(&r.tool_version);
            w.uint(U32, r.schema_version);
            w.str(&r.config);
            w.str(&r.input_name);
            w.str(&r.input_sha256);
            w.str(&r.shard);
            w.u64(r.domains_total);
            w.u64(r.domains_done);
            w.u64(r.input_errors);
            w.u64(r.dns_hosts);
            w.u64(r.smtp_probes);
            w.u64(r.certificates);
            w.u64(r.mta_sts_policies);
            w.str(&r.campaign);
        }
        Record::Domain(r) => {
            w.uuid(&r.scan_id);
            w.str(&r.vantage);
            w.time(r.scanned_at);
            w.str(&r.domain);
            w.str(r.mx_kind.as_str());
            w.str(r.mx_dnssec.as_str());
            w.str(r.mx_rcode.as_str());
            w.list(strs(&r.mx_hosts));
            w.str(r.starttls.as_str());
            w.str(r.pkix.as_str());
            w.str(r.dane.as_str());
            w.str(r.mta_sts.as_str());
            w.opt_str(r.mta_sts_error.map(|e| e.as_str()));
            w.opt_bool(r.mta_sts_compliant);
            w.bool(r.tls_rpt);
            w.list(strs(&r.tls_rpt_rua));
            w.list(r.tlsrpt_results.iter().map(|v| v.as_str()));
            w.bool(r.stripping_suspected);
            w.list(r.stripping_signals.iter().map(|v| v.as_str()));
            w.list(strs(&r.errors));
            w.bool(r.tls_legacy);
        }
        Record::DnsHost(r) => {
            w.uuid(&r.scan_id);
            w.str(&r.vantage);
            w.time(r.resolved_at);
            w.str(&r.host);
            w.list(strs(&r.addresses));
            w.list(strs(&r.cname_chain));
            w.str(r.address_rcode.as_str());
            w.str(r.address_dnssec.as_str());
            w.opt_uint(U32, r.address_ttl);
            w.opt_str(r.tlsa_owner.as_deref());
            w.str(r.tlsa_rcode.as_str());
            w.str(r.tlsa_dnssec.as_str());
            w.opt_uint(U32, r.tlsa_ttl);
            w.tlsa(&r.tlsa);
            w.list(strs(&r.ede));
            w.list(strs(&r.errors));
            w.str(r.a_dnssec.as_str());
            w.str(r.aaaa_dnssec.as_str());
            w.uint(U8, u32::from(r.attempt));
        }
        Record::SmtpProbe(r) => {
            w.uuid(&r.scan_id);
            w.str(&r.vantage);
            w.time(r.probed_at);
            w.str(&r.ip);
            w.uint(U16, u32::from(r.port));
            w.opt_str(r.sni.as_deref());
            w.opt_uint(U32, r.connect_ms);
            w.opt_uint(U32, r.greeting_ms);
            w.opt_uint(U32, r.ehlo_ms);
            w.opt_uint(U32, r.starttls_ms);
            w.opt_uint(U32, r.tls_ms);
            w.uint(U32, r.total_ms);
            w.str(r.result.as_str());
            w.opt_str(r.error_class.map(|e| e.as_str()));
            w.opt_str(r.error_detail.as_deref());
            w.str(&r.banner);
            w.list(strs(&r.ehlo_keywords));
            w.str(&r.ehlo_raw);
            w.bool(r.starttls_advertised);
            w.opt_uint(U16, r.starttls_reply_code.map(u32::from));
            w.opt_str(r.starttls_reply_text.as_deref());
            w.opt_str(r.tls_version.as_deref());
            w.opt_str(r.cipher.as_deref());
            w.opt_str(r.kx_group.as_deref());
            w.opt_uint(U8, r.tls_alert.map(u32::from));
            w.list(strs(&r.chain_sha256));
            w.opt_bool(r.pkix_valid);
            w.opt_str(r.pkix_error.map(|e| e.as_str()));
            w.str(r.dane.as_str());
            w.opt_str(r.dane_match.as_deref());
            w.list(strs(&r.post_tls_ehlo_keywords));
            w.list(r.stripping_signals.iter().map(|v| v.as_str()));
            w.list(r.tlsrpt_results.iter().map(|v| v.as_str()));
            w.str(&r.transcript);
            w.bool(r.reached_ehlo);
            w.bool(r.starttls_forced);
            w.opt_uint(U32, r.limiter_wait_ms);
            w.uint(U8, u32::from(r.attempt));
            w.opt_str(r.tls_engine.map(|e| e.as_str()));
            w.opt_str(r.tls_fallback_reason.map(|e| e.as_str()));
            w.opt_str(r.tls_fallback_detail.as_deref());
            w.str(&r.tls_fallback_transcript);
            w.bool(r.tls_legacy);
        }
        Record::Certificate(r) => {
            w.uuid(&r.scan_id);
            w.str(&r.vantage);
            w.str(&r.sha256);
            w.str(&r.der);
            w.str(&r.subject);
            w.str(&r.issuer);
            w.list(strs(&r.sans));
            w.time(r.not_before);
            w.time(r.not_after);
            w.str(&r.serial);
            w.str(&r.spki_sha256);
            w.str(&r.key_type);
            w.str(&r.signature_algorithm);
            w.bool(r.is_ca);
            w.bool(r.self_issued);
        }
        Record::MtaStsPolicy(r) => {
            w.uuid(&r.scan_id);
            w.str(&r.vantage);
            w.time(r.fetched_at);
            w.str(&r.domain);
            w.list(strs(&r.txt_records));
            w.opt_str(r.policy_id.as_deref());
            w.str(r.status.as_str());
            w.opt_str(r.error_class.map(|e| e.as_str()));
            w.opt_str(r.error_detail.as_deref());
            w.opt_uint(U16, r.http_status.map(u32::from));
            w.opt_str(r.content_type.as_deref());
            w.opt_str(r.policy_raw.as_deref());
            w.opt_str(r.mode.map(|m| m.as_str()));
            w.list(strs(&r.mx_patterns));
            w.opt_uint(U32, r.max_age);
            w.list(strs(&r.warnings));
        }
        Record::CanaryResult(r) => {
            w.uuid(&r.scan_id);
            w.str(&r.vantage);
            w.time(r.probed_at);
            w.str(&r.target_ip);
            w.uint(U16, u32::from(r.target_port));
            w.opt_str(r.local_ip.as_deref());
            w.opt_uint(U16, r.local_port.map(u32::from));
            w.bool(r.implicit_tls);
            w.str(r.verdict.as_str());
            w.opt_str(r.error_class.map(|e| e.as_str()));
            w.str(&r.detail);
            w.list(strs(&r.tampered_streams));
            w.opt_str(r.divergence_stream.as_deref());
            w.opt_str(r.divergence_kind.as_deref());
            w.opt_uint(U32, r.divergence_offset);
            w.opt_uint(U32, r.divergence_line);
            w.opt_str(r.expected_excerpt.as_deref());
            w.opt_str(r.actual_excerpt.as_deref());
            w.str(&r.canary_log);
            w.opt_str(r.canary_saw_client.as_deref());
            w.list(strs(&r.cert_expected));
            w.list(strs(&r.cert_seen));
            w.str(&r.report);
        }
        #[allow(unreachable_patterns)]
        _ => w.error = Some("record type unknown to the Parquet writer".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

struct TableFile {
    kind: RecordKind,
    partial: PathBuf,
    path: PathBuf,
    writer: Option<SerializedFileWriter<BufWriter<File>>>,
    buf: Columns,
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
            buf: Columns::new(kind),
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

// ---------------------------------------------------------------------------------------------
// Reader

fn field_to_json(field: &Field) -> Result<Value, String> {
    Ok(match field {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::Bool(*b),
        Field::Byte(n) => Value::from(*n),
        Field::Short(n) => Value::from(*n),
        Field::Int(n) => Value::from(*n),
        Field::Long(n) => Value::from(*n),
        Field::UByte(n) => Value::from(*n),
        Field::UShort(n) => Value::from(*n),
        Field::UInt(n) => Value::from(*n),
        Field::ULong(n) => Value::from(*n),
        Field::Str(s) => Value::String(s.clone()),
        Field::TimestampMillis(ms) => {
            Value::String(UtcTime::from_unix(ms.div_euclid(1000)).to_string())
        }
        Field::TimestampMicros(us) => {
            Value::String(UtcTime::from_unix(us.div_euclid(1_000_000)).to_string())
        }
        Field::ListInternal(list) => Value::Array(
            list.elements()
                .iter()
                .map(field_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Field::Group(row) => Value::Object(row_to_json(row)?),
        other => return Err(format!("unsupported Parquet value {other:?}")),
    })
}

fn row_to_json(row: &Row) -> Result<Map<String, Value>, String> {
    let mut obj = Map::new();
    for (name, field) in row.get_column_iter() {
        obj.insert(name.clone(), field_to_json(field)?);
    }
    Ok(obj)
}

/// Reads the records of one `<table>.parquet` file, in chunks (bounded memory).
pub struct TableReader {
    kind: RecordKind,
    path: PathBuf,
    rows: parquet::record::reader::RowIter<'static>,
    row: u64,
    total: u64,
    /// The file predates `smtp_probe.reached_ehlo` (schema < 3): derive it per row.
    derive_reached_ehlo: bool,
    /// The `vantage` of every row, when it is a partition of the path and not in the file.
    vantage: Option<String>,
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader")
            .field("path", &self.path)
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

impl TableReader {
    /// Open a table file and check that its columns are the table's. A file written before a
    /// migration added columns (they are appended, `ADD COLUMN`) has a prefix of them: its
    /// rows read with the added fields' defaults (null, empty, false), as ClickHouse fills
    /// the added columns of old rows.
    pub fn open(path: &Path, kind: RecordKind) -> Result<Self, StoreError> {
        Self::open_inner(path, kind, None)
    }

    /// Open one part of a Hive-partitioned table (`table=<t>/vantage=<v>/date=<d>/part-N`):
    /// the file holds the table's columns except `vantage`, which is `vantage` for every row.
    /// A file that also holds a `vantage` column is refused (readers adding the partition
    /// column would meet it twice).
    pub fn open_partition(
        path: &Path,
        kind: RecordKind,
        vantage: &str,
    ) -> Result<Self, StoreError> {
        Self::open_inner(path, kind, Some(vantage.to_owned()))
    }

    fn open_inner(
        path: &Path,
        kind: RecordKind,
        vantage: Option<String>,
    ) -> Result<Self, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| StoreError::parquet(path, e))?;
        let meta = reader.metadata().file_metadata();
        let names: Vec<&str> = meta
            .schema()
            .get_fields()
            .iter()
            .map(|f| f.name())
            .collect();
        let expected: Vec<&str> = columns(kind)
            .iter()
            .map(|c| c.name)
            .filter(|&c| vantage.is_none() || c != "vantage")
            .collect();
        if vantage.is_some() && names.contains(&"vantage") {
            return Err(StoreError::Manifest {
                path: path.to_owned(),
                message: "holds a vantage column, but vantage is a partition of the path in \
                          this layout"
                    .into(),
            });
        }
        if names.is_empty() || !expected.starts_with(&names) {
            return Err(StoreError::Manifest {
                path: path.to_owned(),
                message: format!(
                    "columns are not those of table {}{} (found {names:?})",
                    kind.table(),
                    if vantage.is_some() {
                        " without vantage"
                    } else {
                        ""
                    }
                ),
            });
        }
        let total = u64::try_from(meta.num_rows()).unwrap_or(0);
        let derive_reached_ehlo = kind == RecordKind::SmtpProbe && !names.contains(&"reached_ehlo");
        Ok(TableReader {
            kind,
            path: path.to_owned(),
            rows: reader.into_iter(),
            row: 0,
            total,
            derive_reached_ehlo,
            vantage,
        })
    }

    /// Rows in the file (from its footer).
    pub fn total_rows(&self) -> u64 {
        self.total
    }

    /// Up to `max` records; empty at the end of the file.
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::with_capacity(max.min(65_536));
        while out.len() < max {
            let Some(row) = self.rows.next() else { break };
            let row = row.map_err(|e| StoreError::parquet(&self.path, e))?;
            let bad = |message: String| StoreError::BadRow {
                table: self.kind.table(),
                row: self.row,
                message,
            };
            let mut obj = row_to_json(&row).map_err(bad)?;
            obj.insert("record".into(), Value::String(self.kind.as_str().into()));
            if let Some(v) = &self.vantage {
                obj.insert("vantage".into(), Value::String(v.clone()));
            }
            // Through text: the model's UUID field only deserializes from a borrowed str.
            let text = Value::Object(obj).to_string();
            let mut rec: Record = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            if let (true, Record::SmtpProbe(p)) = (self.derive_reached_ehlo, &mut rec) {
                p.reached_ehlo = p.reached_ehlo_before_v3();
            }
            out.push(rec);
            self.row += 1;
        }
        Ok(out)
    }
}

/// Every record of one table file (loads the whole file: for tests and small files).
pub fn read_table_file(path: &Path, kind: RecordKind) -> Result<Vec<Record>, StoreError> {
    let mut r = TableReader::open(path, kind)?;
    let mut all = Vec::new();
    loop {
        let chunk = r.next_chunk(65_536)?;
        if chunk.is_empty() {
            return Ok(all);
        }
        all.extend(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::examples;

    #[test]
    fn every_record_type_round_trips_through_parquet() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("scan");
        let mut sink = ParquetSink::create(&out, ParquetOptions::default()).expect("create");
        // The full examples, and a second copy with every option empty and every list empty.
        let mut records = examples::all();
        for r in examples::all() {
            let mut v = serde_json::to_value(&r).expect("json");
            let kind = r.kind();
            for col in columns(kind) {
                if col.nullable {
                    v[col.name] = Value::Null;
                } else if matches!(col.ty, ColumnType::StrList | ColumnType::Tlsa) {
                    v[col.name] = Value::Array(vec![]);
                }
            }
            records.push(serde_json::from_str(&v.to_string()).expect("emptied record"));
        }
        for r in &records {
            sink.write_sync(r).expect("write");
        }
        let report = sink.close_sync().expect("close");
        assert_eq!(report.total_rows(), 2 * TABLES.len() as u64);

        let manifest = Manifest::read(&out).expect("manifest");
        manifest.verify(&out).expect("verify");
        assert_eq!(manifest.tables.len(), TABLES.len());
        assert_eq!(manifest.tables["canary_results"].rows, 2);
        assert_eq!(manifest.tables["smtp_probes"].rows, 2);
        assert_eq!(manifest.scans.len(), 1);
        for &kind in TABLES {
            let back = read_table_file(&out.join(format!("{}.parquet", kind.table())), kind)
                .expect("read");
            let expected: Vec<Record> = records
                .iter()
                .filter(|r| r.kind() == kind)
                .cloned()
                .collect();
            assert_eq!(back, expected, "{}", kind.table());
        }
        // No partial files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

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
    fn many_row_groups_keep_order_and_count() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = ParquetOptions {
            row_group_rows: 100,
            ..ParquetOptions::default()
        };
        let mut sink = ParquetSink::create(dir.path(), opts).expect("create");
        let mut expected = Vec::new();
        for i in 0..1050u32 {
            let mut p = examples::smtp_probe();
            p.total_ms = i;
            p.ehlo_keywords.truncate((i % 4) as usize);
            let r = Record::from(p);
            sink.write_sync(&r).expect("write");
            expected.push(r);
        }
        sink.close_sync().expect("close");
        let back = read_table_file(
            &dir.path().join("smtp_probes.parquet"),
            RecordKind::SmtpProbe,
        )
        .expect("read");
        assert_eq!(back.len(), 1050);
        assert_eq!(back, expected);
    }

    #[test]
    fn tampered_and_truncated_files_fail_verification() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut sink = ParquetSink::create(dir.path(), ParquetOptions::default()).expect("create");
        for r in examples::all() {
            sink.write_sync(&r).expect("write");
        }
        sink.close_sync().expect("close");
        let manifest = Manifest::read(dir.path()).expect("manifest");

        let path = dir.path().join("domains.parquet");
        let original = std::fs::read(&path).expect("read");
        let mut tampered = original.clone();
        tampered[10] ^= 0xff;
        std::fs::write(&path, &tampered).expect("write");
        let err = manifest
            .verify(dir.path())
            .expect_err("tampered")
            .to_string();
        assert!(
            err.contains("domains.parquet") && err.contains("SHA-256"),
            "{err}"
        );

        std::fs::write(&path, &original[..original.len() / 2]).expect("write");
        let err = manifest
            .verify(dir.path())
            .expect_err("truncated")
            .to_string();
        assert!(
            err.contains("domains.parquet") && err.contains("truncated"),
            "{err}"
        );
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
