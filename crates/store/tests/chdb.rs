//! Current ClickHouse through chDB (`pip install chdb`, MXRAY_PYTHON): the DDL that must also
//! run on 18.16 is accepted by today's engine, and the Parquet output reads back equal.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use mxray_model::{Record, UtcTime};
use mxray_store::schema::{self, columns, kind_of_table, ColumnType, TABLES};
use mxray_store::*;

fn run_check(py: &Path, mode: &str, arg: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chdb_check.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(mode)
        .arg(arg)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "chdb_check.py {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("chdb_check.py output is JSON")
}

#[test]
fn current_clickhouse_accepts_the_ddl() {
    let Some(py) = chdb_python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("ddl.json");
    let stmts = schema::ddl_statements("mxray_ddl_check");
    std::fs::write(&file, serde_json::to_vec(&stmts).expect("json")).expect("write");
    let tables = run_check(&py, "ddl", &file);
    let names: Vec<&str> = tables
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    let views: Vec<&str> = schema::views().map(|v| v.name).collect();
    let mut expected: Vec<&str> = TABLES.iter().map(|k| k.table()).collect();
    expected.push(schema::MIGRATIONS_TABLE);
    expected.extend(&views);
    expected.sort_unstable();
    assert_eq!(names, expected);
    for t in tables.as_array().expect("list") {
        let view = views.contains(&t["name"].as_str().unwrap_or_default());
        let engine = if view { "View" } else { "ReplacingMergeTree" };
        assert_eq!(t["engine"], engine, "{t}");
    }
}

#[tokio::test]
async fn chdb_reads_the_parquet_output_with_equal_contents() {
    let Some(py) = chdb_python() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let records = full_and_empty_records();
    let mut sink = ParquetSink::create(dir.path(), ParquetOptions::default()).expect("create");
    sink.write_batch(records.clone()).await.expect("write");
    sink.close().await.expect("close");

    let result = run_check(&py, "parquet", dir.path());
    let obj = result.as_object().expect("object");
    assert_eq!(obj.len(), TABLES.len());
    for (table, rows) in obj {
        let kind = kind_of_table(table).expect("table");
        let mut back = Vec::new();
        for row in rows.as_array().expect("rows") {
            let mut row = row.clone();
            // chDB prints times as ISO 8601 with milliseconds; the model writes RFC 3339
            // seconds. Same instant, other spelling.
            for col in columns(kind) {
                if col.ty == ColumnType::Time {
                    if let Some(s) = row[col.name].as_str() {
                        let t: UtcTime = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
                        row[col.name] = t.to_string().into();
                    }
                }
            }
            row["record"] = kind.as_str().into();
            let rec: Record = serde_json::from_str(&row.to_string())
                .unwrap_or_else(|e| panic!("{table}: {e}: {row}"));
            back.push(rec);
        }
        let expected = of_kind(&records, kind);
        assert_eq!(back, expected, "{table}");
    }
}
