//! The reader `mxray load` uses: [`TableReader`] streams a table file's rows as records, in
//! chunks, through their JSON form (columns matched by name, so a file written before a
//! migration added columns reads too).

use std::fs::File;
use std::path::{Path, PathBuf};

use mxray_model::{Record, RecordKind, UtcTime};
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::record::{Field, Row};
use serde_json::{Map, Value};

use crate::error::StoreError;
use crate::schema::columns;

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
