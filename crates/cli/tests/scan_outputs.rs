//! One lab scan into Parquet, JSON lines and the real ClickHouse at once: the three hold the same
//! records. ClickHouse comes from MXRAY_TEST_CLICKHOUSE_URL (scripts/test starts it).

mod common;

use std::collections::BTreeMap;

use common::{lab_scan, run_ok};

use mxray_model::{Record, RecordKind};
use mxray_store::{read_table, read_table_file, ClickHouseConfig};

const KINDS: [RecordKind; 6] = [
    RecordKind::Scan,
    RecordKind::Domain,
    RecordKind::DnsHost,
    RecordKind::SmtpProbe,
    RecordKind::Certificate,
    RecordKind::MtaStsPolicy,
];

/// Records of one kind as sorted JSON strings (a canonical, comparable form).
fn canonical(records: impl IntoIterator<Item = Record>) -> BTreeMap<RecordKind, Vec<String>> {
    let mut out: BTreeMap<RecordKind, Vec<String>> = BTreeMap::new();
    for r in records {
        out.entry(r.kind())
            .or_default()
            .push(serde_json::to_string(&r).expect("json"));
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

#[test]
fn parquet_jsonl_and_clickhouse_hold_the_same_records() {
    let Ok(url) = std::env::var("MXRAY_TEST_CLICKHOUSE_URL") else {
        if std::env::var("MXRAY_REQUIRE_SERVERS").is_ok_and(|v| v == "1") {
            panic!("MXRAY_REQUIRE_SERVERS=1 but MXRAY_TEST_CLICKHOUSE_URL is not set");
        }
        eprintln!("SKIP: MXRAY_TEST_CLICKHOUSE_URL is not set (run scripts/test)");
        return;
    };
    let db = format!("mxray_t_scan_outputs_{}", std::process::id());
    let ch_url = format!("{}/{db}", url.trim_end_matches('/'));
    let dir = tempfile::tempdir().expect("tmp");
    let out_dir = dir.path().join("out");
    let jsonl = dir.path().join("scan.jsonl");

    run_ok(["migrate", "--clickhouse", &ch_url]);
    lab_scan([
        std::ffi::OsStr::new("--clickhouse"),
        ch_url.as_ref(),
        "--out".as_ref(),
        out_dir.as_os_str(),
        "--jsonl".as_ref(),
        jsonl.as_os_str(),
    ]);

    let from_jsonl = canonical(
        std::fs::read_to_string(&jsonl)
            .expect("jsonl")
            .lines()
            .map(|l| serde_json::from_str::<Record>(l).expect("record")),
    );
    let mut parquet = Vec::new();
    for kind in KINDS {
        parquet.extend(
            read_table_file(&out_dir.join(format!("{}.parquet", kind.table())), kind)
                .expect("parquet"),
        );
    }
    let from_parquet = canonical(parquet);

    let rt = tokio::runtime::Runtime::new().expect("rt");
    let cfg = ClickHouseConfig::from_url(&ch_url).expect("url");
    let mut ch = Vec::new();
    for kind in KINDS {
        ch.extend(rt.block_on(read_table(&cfg, kind)).expect("clickhouse"));
    }
    let from_clickhouse = canonical(ch);
    let _ = rt.block_on(
        cfg.client()
            .query(&format!("DROP DATABASE IF EXISTS `{db}`"))
            .execute(),
    );

    for kind in KINDS {
        let j = from_jsonl.get(&kind).map(Vec::len).unwrap_or(0);
        assert!(j > 0, "no {kind} records");
        assert_eq!(
            from_parquet.get(&kind),
            from_jsonl.get(&kind),
            "{kind}: Parquet differs from JSONL"
        );
        assert_eq!(
            from_clickhouse.get(&kind),
            from_jsonl.get(&kind),
            "{kind}: ClickHouse differs from JSONL"
        );
    }
}
