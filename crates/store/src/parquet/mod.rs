//! The Parquet sink (the embedded default output) and the reader `mxray load` uses, by job:
//! `manifest` (`manifest.json` and file digests), `schema` (the Parquet schema of a table, from
//! the column list the model derives), `buffer` (column buffers filled through the model's
//! `RowVisitor`), `write` (row groups, file lifecycle, [`ParquetSink`]) and `read`
//! ([`TableReader`]).
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

mod buffer;
mod manifest;
mod read;
mod schema;
mod write;

pub use manifest::{file_digest, Manifest, ManifestScan, ManifestTable, MANIFEST, MANIFEST_FORMAT};
pub use read::{read_table_file, TableReader};
pub use schema::parquet_schema;
pub use write::{ParquetOptions, ParquetSink};

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::schema::{columns, ColumnType, TABLES};
    use mxray_model::{examples, Record, RecordKind};

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
}
