//! Shared helpers of the integration tests: servers from the environment, per-test databases,
//! example records.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use mxray_model::{examples, Record};
use mxray_store::schema::{columns, ColumnType};
use mxray_store::ClickHouseConfig;

/// True when the test must fail instead of skipping for a missing server or tool.
pub fn required() -> bool {
    std::env::var("MXRAY_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// Skip (return None) or fail when something the test needs is missing.
pub fn missing(what: &str) {
    if required() {
        panic!("MXRAY_REQUIRE_SERVERS=1 but {what}");
    }
    eprintln!("SKIP: {what} (run scripts/test, or set it up, to run this test)");
}

/// A unique database name for one test.
pub fn db_name(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("mxray_t_{test}_{}_{nanos}", std::process::id())
}

/// The test ClickHouse server (MXRAY_TEST_CLICKHOUSE_URL) with a fresh database name.
pub fn clickhouse(test: &str) -> Option<ClickHouseConfig> {
    let Ok(url) = std::env::var("MXRAY_TEST_CLICKHOUSE_URL") else {
        missing("MXRAY_TEST_CLICKHOUSE_URL is not set");
        return None;
    };
    let mut c = ClickHouseConfig::from_url(&url)
        .expect("MXRAY_TEST_CLICKHOUSE_URL")
        .with_database(&db_name(test))
        .expect("db name");
    c.request_timeout = std::time::Duration::from_secs(30);
    Some(c)
}

/// Drop a test database (best effort).
pub async fn drop_database(c: &ClickHouseConfig) {
    let _ = c
        .client()
        .query(&format!("DROP DATABASE IF EXISTS `{}`", c.database))
        .execute()
        .await;
}

/// The python of the venv (MXRAY_PYTHON) when it can import chdb.
pub fn chdb_python() -> Option<PathBuf> {
    let py = std::env::var_os("MXRAY_PYTHON").map(PathBuf::from);
    let Some(py) = py else {
        missing("MXRAY_PYTHON is not set (a python with chdb installed)");
        return None;
    };
    let ok = std::process::Command::new(&py)
        .args(["-c", "import chdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing(&format!("{} cannot import chdb", py.display()));
        return None;
    }
    Some(py)
}

/// Every example record, plus a second copy of each with every nullable column null, every list
/// empty, and a different identity (vantage `other`, another certificate hash) so that the
/// deduplicating tables keep both.
pub fn full_and_empty_records() -> Vec<Record> {
    let mut records = examples::all();
    for r in examples::all() {
        let kind = r.kind();
        let mut v = serde_json::to_value(&r).expect("json");
        for col in columns(kind) {
            if col.nullable {
                v[col.name] = serde_json::Value::Null;
            } else if matches!(col.ty, ColumnType::StrList | ColumnType::Tlsa) {
                v[col.name] = serde_json::Value::Array(vec![]);
            }
        }
        v["vantage"] = "other".into();
        if kind == mxray_model::RecordKind::Certificate {
            v["sha256"] = "00".repeat(32).into();
        }
        records.push(serde_json::from_str(&v.to_string()).expect("record"));
    }
    records
}

/// Sort records of one kind by their JSON text (tables return rows in key order).
pub fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    v.sort_by_key(|r| serde_json::to_string(r).expect("json"));
    v
}

/// The records of `kind` among `records`, in their order.
pub fn of_kind(records: &[Record], kind: mxray_model::RecordKind) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.kind() == kind)
        .cloned()
        .collect()
}

/// Every table of the database holds exactly `records` (of its kind), read with `FINAL`.
pub async fn assert_tables_hold(c: &ClickHouseConfig, records: &[Record]) {
    for &kind in mxray_store::schema::TABLES {
        let back = mxray_store::read_table(c, kind).await.expect("read");
        let expected = of_kind(records, kind);
        assert_eq!(sorted(back), sorted(expected), "{}", kind.table());
    }
}
