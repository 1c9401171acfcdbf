//! `manifest.json`: what a result directory holds, with the size and SHA-256 of each file,
//! written last so that a directory with a manifest is complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use mxray_model::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// Name of the manifest file of a result directory.
pub const MANIFEST: &str = "manifest.json";

/// `format` value of a manifest.
pub const MANIFEST_FORMAT: &str = "mxray-parquet";

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
