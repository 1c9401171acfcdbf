//! Releases in the Hive-partitioned layout (`scripts/export-dataset`, format
//! [`HIVE_FORMAT`]): what their manifest says, how it is verified, and where each table's
//! records are.
//!
//! A release of that layout holds `table=<name>/vantage=<v>/date=<YYYY-MM-DD>/part-N.parquet`
//! for the measurement tables (the partition columns are in the path only: the files lack
//! `vantage`, and `date` is no record column), `table=certificates/part-N.parquet` and
//! `table=ip_asn/part-N.parquet` (not partitioned), and `manifest.json` listing every file with
//! its table, partition, rows, bytes, SHA-256 and schema version.
//!
//! [`DatasetManifest::read`] tells a flat result directory (`mxray scan --out`, format
//! [`MANIFEST_FORMAT`]) from a Hive-layout release by the manifest's `format`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use mxray_model::{RecordKind, SCHEMA_VERSION};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::parquet::{file_digest, Manifest, ManifestScan, TableReader, MANIFEST, MANIFEST_FORMAT};
use crate::schema::kind_of_table;

/// `format` value of a Hive-layout release's manifest.
pub const HIVE_FORMAT: &str = "mxray-parquet-hive";

/// Tables a release may carry that are no mxray record table: verified, never inserted by
/// `mxray load` (`ip_asn` is loaded by `scripts/load-asn`).
pub const REFERENCE_TABLES: &[&str] = &["ip_asn"];

/// One table of a Hive-layout release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HiveTable {
    /// Its directory within the release, `table=<name>`.
    pub path: String,
    /// Partition columns, in path order (`["vantage", "date"]`, or empty).
    #[serde(default)]
    pub partitioning: Vec<String>,
    /// The column whose UTC date is the `date` partition.
    #[serde(default)]
    pub date_column: Option<String>,
    /// The table's columns in mxray's order (the partition columns included).
    pub columns: Vec<String>,
    /// Rows over all its files.
    pub rows: u64,
    /// Bytes over all its files.
    pub bytes: u64,
    /// Number of files.
    pub files: u64,
}

/// One Parquet file of a Hive-layout release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HiveFile {
    /// Path within the release, `/`-separated.
    pub path: String,
    /// The table it belongs to.
    pub table: String,
    /// Its partition values (`vantage`, `date`), as in its path.
    #[serde(default)]
    pub partition: BTreeMap<String, String>,
    /// Rows in the file.
    pub rows: u64,
    /// File size, bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Record schema version of its columns.
    pub schema_version: u32,
}

/// `manifest.json` of a Hive-layout release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HiveManifest {
    /// Always [`HIVE_FORMAT`].
    pub format: String,
    /// Highest record schema version of the files.
    pub schema_version: u32,
    /// mxray version(s) that made the scans.
    pub tool_version: String,
    /// When the release was written, RFC 3339.
    pub created_at: String,
    /// The scans of the release.
    pub scans: Vec<ManifestScan>,
    /// Every table, by name.
    pub tables: BTreeMap<String, HiveTable>,
    /// Every Parquet file.
    pub files: Vec<HiveFile>,
}

/// The manifest of a directory `mxray load` and `mxray report` read, by layout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatasetManifest {
    /// `<table>.parquet` per table ([`MANIFEST_FORMAT`]).
    Flat(Manifest),
    /// `table=<name>/vantage=<v>/date=<d>/part-N.parquet` ([`HIVE_FORMAT`]).
    Hive(HiveManifest),
}

/// One file to read: its path and, for a partitioned table, the vantage of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TablePart {
    /// The Parquet file.
    pub path: PathBuf,
    /// Record kind of its rows.
    pub kind: RecordKind,
    /// `vantage` of every row, from the path, when the file lacks the column.
    pub vantage: Option<String>,
    /// Rows the manifest gives it.
    pub rows: u64,
}

impl TablePart {
    /// Open the file for reading (checks its columns).
    pub fn open(&self) -> Result<TableReader, StoreError> {
        match &self.vantage {
            Some(v) => TableReader::open_partition(&self.path, self.kind, v),
            None => TableReader::open(&self.path, self.kind),
        }
    }
}

fn manifest_error(dir: &Path, message: String) -> StoreError {
    StoreError::Manifest {
        path: dir.join(MANIFEST),
        message,
    }
}

impl DatasetManifest {
    /// Read `<dir>/manifest.json` and parse it by its `format`.
    pub fn read(dir: &Path) -> Result<DatasetManifest, StoreError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| StoreError::Manifest {
            path: path.clone(),
            message: format!("cannot read the manifest ({e}); is this an mxray result directory?"),
        })?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| StoreError::Manifest {
                path: path.clone(),
                message: format!("malformed manifest: {e}"),
            })?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(HIVE_FORMAT) => {
                let m: HiveManifest =
                    serde_json::from_value(value).map_err(|e| StoreError::Manifest {
                        path: path.clone(),
                        message: format!("malformed manifest: {e}"),
                    })?;
                Ok(DatasetManifest::Hive(m))
            }
            Some(MANIFEST_FORMAT) => Manifest::read(dir).map(DatasetManifest::Flat),
            other => Err(StoreError::Manifest {
                path,
                message: format!(
                    "format is {other:?}, expected {MANIFEST_FORMAT:?} or {HIVE_FORMAT:?}"
                ),
            }),
        }
    }

    /// Check every file against its size and SHA-256 (and, for the Hive layout, its place:
    /// under its table's directory, in the partition the manifest gives it).
    pub fn verify(&self, dir: &Path) -> Result<(), StoreError> {
        match self {
            DatasetManifest::Flat(m) => m.verify(dir),
            DatasetManifest::Hive(m) => m.verify(dir),
        }
    }

    /// The files of the record tables to read, in manifest order: for a flat directory one per
    /// table, for a Hive-layout release every part. Reference tables ([`REFERENCE_TABLES`])
    /// are left out; an unknown table is an error.
    pub fn parts(&self, dir: &Path) -> Result<Vec<TablePart>, StoreError> {
        let mut out = Vec::new();
        match self {
            DatasetManifest::Flat(m) => {
                for (table, entry) in &m.tables {
                    let kind = kind_of_table(table)
                        .ok_or_else(|| manifest_error(dir, format!("unknown table {table:?}")))?;
                    out.push(TablePart {
                        path: dir.join(&entry.file),
                        kind,
                        vantage: None,
                        rows: entry.rows,
                    });
                }
            }
            DatasetManifest::Hive(m) => {
                for f in &m.files {
                    if REFERENCE_TABLES.contains(&f.table.as_str()) {
                        continue;
                    }
                    let kind = kind_of_table(&f.table).ok_or_else(|| {
                        manifest_error(dir, format!("unknown table {:?}", f.table))
                    })?;
                    let partitioned = m
                        .tables
                        .get(&f.table)
                        .is_some_and(|t| t.partitioning.iter().any(|p| p == "vantage"));
                    let vantage = if partitioned {
                        Some(path_partition(&f.path, "vantage").ok_or_else(|| {
                            manifest_error(dir, format!("{}: no vantage=<v> in the path", f.path))
                        })?)
                    } else {
                        None
                    };
                    out.push(TablePart {
                        path: join_relative(dir, &f.path)?,
                        kind,
                        vantage,
                        rows: f.rows,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The parts of one table ([`DatasetManifest::parts`] of that kind).
    pub fn table_parts(&self, dir: &Path, kind: RecordKind) -> Result<Vec<TablePart>, StoreError> {
        Ok(self
            .parts(dir)?
            .into_iter()
            .filter(|p| p.kind == kind)
            .collect())
    }
}

/// `dir` joined with a manifest's `/`-separated relative path; a path that is absolute, has
/// `..`, `.` or empty components, or a backslash, is refused.
fn join_relative(dir: &Path, rel: &str) -> Result<PathBuf, StoreError> {
    let bad = rel.is_empty()
        || rel.contains('\\')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || !Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if bad {
        return Err(manifest_error(
            dir,
            format!("file name {rel:?} leaves the directory"),
        ));
    }
    Ok(dir.join(rel))
}

/// The value of `key=<value>` among the directories of a relative path.
fn path_partition(rel: &str, key: &str) -> Option<String> {
    let mut dirs: Vec<&str> = rel.split('/').collect();
    dirs.pop();
    dirs.iter()
        .find_map(|d| d.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(str::to_owned)
}

impl HiveManifest {
    /// Check the schema version, every table's entry, and every file: its place (under its
    /// table's directory, `key=value` directories equal to its partition), size and SHA-256.
    /// The first mismatch is an error naming the file.
    pub fn verify(&self, dir: &Path) -> Result<(), StoreError> {
        if self.schema_version > SCHEMA_VERSION {
            return Err(manifest_error(
                dir,
                format!(
                    "schema version {} is newer than this mxray supports ({SCHEMA_VERSION})",
                    self.schema_version
                ),
            ));
        }
        let mut rows: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &self.files {
            let Some(table) = self.tables.get(&f.table) else {
                return Err(manifest_error(
                    dir,
                    format!("{}: table {:?} has no entry in \"tables\"", f.path, f.table),
                ));
            };
            if kind_of_table(&f.table).is_none() && !REFERENCE_TABLES.contains(&f.table.as_str()) {
                return Err(manifest_error(dir, format!("unknown table {:?}", f.table)));
            }
            if f.schema_version > SCHEMA_VERSION {
                return Err(manifest_error(
                    dir,
                    format!(
                        "{}: schema version {} is newer than this mxray supports \
                         ({SCHEMA_VERSION})",
                        f.path, f.schema_version
                    ),
                ));
            }
            let path = join_relative(dir, &f.path)?;
            if !f.path.starts_with(&format!("{}/", table.path)) {
                return Err(manifest_error(
                    dir,
                    format!(
                        "{}: not under its table's directory {}/",
                        f.path, table.path
                    ),
                ));
            }
            for key in &table.partitioning {
                let in_path = path_partition(&f.path, key);
                if in_path.is_none() || in_path.as_ref() != f.partition.get(key) {
                    return Err(manifest_error(
                        dir,
                        format!(
                            "{}: partition {key} is {:?} in the path, {:?} in the manifest",
                            f.path,
                            in_path,
                            f.partition.get(key)
                        ),
                    ));
                }
            }
            let (bytes, sha) = file_digest(&path)?;
            if bytes != f.bytes {
                return Err(StoreError::Manifest {
                    path,
                    message: format!(
                        "size is {bytes} bytes, the manifest says {} (truncated or replaced)",
                        f.bytes
                    ),
                });
            }
            if sha != f.sha256 {
                return Err(StoreError::Manifest {
                    path,
                    message: format!(
                        "SHA-256 is {sha}, the manifest says {} (the file was modified)",
                        f.sha256
                    ),
                });
            }
            *rows.entry(f.table.as_str()).or_default() += f.rows;
        }
        for (name, table) in &self.tables {
            let got = rows.get(name.as_str()).copied().unwrap_or(0);
            if got != table.rows {
                return Err(manifest_error(
                    dir,
                    format!(
                        "table {name}: its files hold {got} rows, the table entry says {}",
                        table.rows
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_come_from_directories_only() {
        let p = "table=domains/vantage=isp/date=2026-10-01/part-0.parquet";
        assert_eq!(path_partition(p, "vantage").as_deref(), Some("isp"));
        assert_eq!(path_partition(p, "date").as_deref(), Some("2026-10-01"));
        assert_eq!(path_partition("table=x/part-0.parquet", "vantage"), None);
        assert_eq!(path_partition("table=x/vantage=a", "vantage"), None);
    }

    #[test]
    fn paths_that_leave_the_release_are_refused() {
        let dir = Path::new("/r");
        for bad in [
            "../x.parquet",
            "/etc/passwd",
            "table=a/../../x",
            "a//b",
            "a\\b",
            "",
            "./a",
        ] {
            assert!(join_relative(dir, bad).is_err(), "{bad}");
        }
        assert_eq!(
            join_relative(dir, "table=a/vantage=v/part-0.parquet").expect("ok"),
            Path::new("/r/table=a/vantage=v/part-0.parquet")
        );
    }
}
