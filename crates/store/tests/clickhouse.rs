//! Against a real ClickHouse (MXRAY_TEST_CLICKHOUSE_URL, started by scripts/test through
//! scripts/clickhouse): migrations, every record type inserted and read back equal, Parquet
//! results loaded (twice), tampered results refused.

mod common;

use common::*;
use mxray_model::{examples, Record, RecordKind, SCHEMA_VERSION};
use mxray_store::schema::{self, TABLES};
use mxray_store::*;

async fn schema_snapshot(c: &ClickHouseConfig) -> Vec<(String, String, String)> {
    let mut cols: Vec<(String, String, String)> = c
        .client()
        .query(
            "SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name",
        )
        .bind(&c.database)
        .fetch_all()
        .await
        .expect("system.columns");
    let tables: Vec<(String, String)> = c
        .client()
        .query("SELECT name, engine_full FROM system.tables WHERE database = ? ORDER BY name")
        .bind(&c.database)
        .fetch_all()
        .await
        .expect("system.tables");
    cols.extend(tables.into_iter().map(|(n, e)| (n, "ENGINE".to_owned(), e)));
    cols
}

#[tokio::test]
async fn migrate_twice_leaves_the_same_schema() {
    let Some(c) = clickhouse("migrate_twice") else {
        return;
    };
    let first = migrate(&c).await.expect("first migrate");
    assert_eq!(first.from, 0);
    assert_eq!(first.to, SCHEMA_VERSION);
    let all_versions: Vec<u32> = schema::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(first.applied, all_versions);
    assert_eq!(all_versions.last(), Some(&SCHEMA_VERSION));
    let before = schema_snapshot(&c).await;
    let second = migrate(&c).await.expect("second migrate");
    assert_eq!(second.from, SCHEMA_VERSION);
    assert!(second.applied.is_empty());
    let after = schema_snapshot(&c).await;
    assert_eq!(before, after);
    for &k in TABLES {
        assert!(
            before.iter().any(|(t, _, _)| t == k.table()),
            "table {} missing",
            k.table()
        );
    }
    let stamps: u64 = c
        .client()
        .query(&format!(
            "SELECT count() FROM `{}`.schema_migrations FINAL",
            c.database
        ))
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(stamps, schema::MIGRATIONS.len() as u64);
    drop_database(&c).await;
}

/// A database created by an mxray of schema version 1 (its DDL applied and stamped exactly as
/// that version did) is upgraded in place: the new table appears, the old rows stay, and the
/// new record type can be written and read back.
#[tokio::test]
async fn a_version_1_database_is_migrated_to_the_current_schema() {
    let Some(mut c) = clickhouse("migrate_v1") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    c.spill_dir = dir.path().join("spill");
    let client = c.client();
    let run = |sql: String| {
        let client = client.clone();
        async move { client.query(&sql).execute().await.expect(&sql) }
    };
    run(format!("CREATE DATABASE `{}`", c.database)).await;
    run(schema::create_migrations_table(&c.database)).await;
    let v1 = &schema::MIGRATIONS[0];
    assert_eq!(v1.version, 1);
    for &kind in v1.creates {
        run(schema::create_table(&c.database, kind)).await;
    }
    // Version 1 tables had none of the columns later migrations add.
    for m in &schema::MIGRATIONS[1..] {
        for add in m.add_columns {
            run(format!(
                "ALTER TABLE `{}`.{} DROP COLUMN {}",
                c.database,
                add.table.table(),
                add.column
            ))
            .await;
        }
    }
    run(format!(
        "INSERT INTO `{}`.schema_migrations (version, description, applied_at, tool_version) \
         VALUES (1, '{}', now(), '0.1.0')",
        c.database, v1.description
    ))
    .await;
    assert_eq!(schema_version(&c).await.expect("version"), 1);
    let tables_now = |c: &ClickHouseConfig| {
        let c = c.clone();
        async move {
            c.client()
                .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
                .bind(&c.database)
                .fetch_all::<String>()
                .await
                .expect("tables")
        }
    };
    let before = tables_now(&c).await;
    assert!(!before.iter().any(|t| t == "canary_results"), "{before:?}");
    // A version 1 row, written before the upgrade (omitted columns take their defaults).
    run(format!(
        "INSERT INTO `{}`.domains (domain) VALUES ('old.example')",
        c.database
    ))
    .await;
    run(format!(
        "INSERT INTO `{}`.dns_hosts (host, address_dnssec) VALUES ('mx.old.example', 'secure')",
        c.database
    ))
    .await;
    // Probes of before `reached_ehlo`: one that completed STARTTLS, one that failed after an
    // EHLO with STARTTLS, one that never got an answer.
    run(format!(
        "INSERT INTO `{}`.smtp_probes (ip, port, result, starttls_advertised) VALUES \
         ('192.0.2.1', 25, 'starttls_ok', 1), ('192.0.2.2', 25, 'error', 1), \
         ('192.0.2.3', 25, 'error', 0)",
        c.database
    ))
    .await;

    let report = migrate(&c).await.expect("migrate 1 -> latest");
    assert_eq!((report.from, report.to), (1, SCHEMA_VERSION));
    let later: Vec<u32> = schema::MIGRATIONS[1..].iter().map(|m| m.version).collect();
    assert_eq!(report.applied, later);
    // Rows written before a column existed read its default: a valid vocabulary word.
    let old_status: Vec<String> = c
        .client()
        .query(&format!(
            "SELECT a_dnssec FROM `{}`.dns_hosts WHERE host = 'mx.old.example'",
            c.database
        ))
        .fetch_all()
        .await
        .expect("a_dnssec");
    assert_eq!(old_status, vec!["indeterminate".to_owned()]);
    // ... and `reached_ehlo` is derived from the old fields, as the Parquet reader does.
    let reached: Vec<(String, bool)> = c
        .client()
        .query(&format!(
            "SELECT ip, reached_ehlo FROM `{}`.smtp_probes ORDER BY ip",
            c.database
        ))
        .fetch_all()
        .await
        .expect("reached_ehlo");
    assert_eq!(
        reached,
        vec![
            ("192.0.2.1".to_owned(), true),
            ("192.0.2.2".to_owned(), true),
            ("192.0.2.3".to_owned(), false)
        ]
    );
    // Migrating again adds nothing and fails on nothing.
    assert!(migrate(&c).await.expect("again").applied.is_empty());
    let after = tables_now(&c).await;
    assert!(after.iter().any(|t| t == "canary_results"), "{after:?}");

    let mut sink = ClickHouseSink::connect(c.clone()).await.expect("connect");
    sink.write(examples::canary_result().into())
        .await
        .expect("write");
    let report = sink.close().await.expect("close");
    assert!(report.is_clean(), "{report:?}");
    let back = read_table(&c, RecordKind::CanaryResult)
        .await
        .expect("read");
    assert_eq!(back, vec![Record::from(examples::canary_result())]);
    let old: Vec<String> = c
        .client()
        .query(&format!("SELECT domain FROM `{}`.domains", c.database))
        .fetch_all()
        .await
        .expect("old rows");
    assert_eq!(old, vec!["old.example".to_owned()]);
    drop_database(&c).await;
}

#[tokio::test]
async fn the_scan_dates_view_gives_every_scan_and_vantage_its_start_date() {
    let Some(c) = clickhouse("scan_dates_view") else {
        return;
    };
    migrate(&c).await.expect("migrate");
    // Two scans, one of them from two vantages; the second starts a second before midnight UTC.
    let day = 1_796_256_000; // 2026-12-03T00:00:00Z
    let mut a = examples::scan();
    a.started_at = mxray_model::UtcTime::from_unix(day + 3_600);
    let mut a_isp = a.clone();
    a_isp.vantage = "isp".into();
    let mut b = examples::scan();
    b.scan_id = uuid::Uuid::from_u128(0xb);
    b.started_at = mxray_model::UtcTime::from_unix(day - 1);
    let mut sink = ClickHouseSink::connect(c.clone()).await.expect("connect");
    for r in [a.clone(), a_isp, b.clone()] {
        sink.write(r.into()).await.expect("write");
    }
    assert!(sink.close().await.expect("close").is_clean());
    // Read from another session database: the view names its database's `scans` itself.
    let rows: Vec<(String, String, u16, i64)> = c
        .client()
        .with_database("default")
        .query(&format!(
            "SELECT toString(scan_id), vantage, toUInt16(scan_date), started \
             FROM `{}`.scan_dates ORDER BY started, vantage",
            c.database
        ))
        .fetch_all()
        .await
        .expect("scan_dates");
    let date = |secs: i64| u16::try_from(secs.div_euclid(86_400)).expect("date");
    assert_eq!(
        rows,
        vec![
            (
                b.scan_id.to_string(),
                "default".to_owned(),
                date(day - 1),
                day - 1
            ),
            (
                a.scan_id.to_string(),
                "default".to_owned(),
                date(day),
                day + 3_600
            ),
            (
                a.scan_id.to_string(),
                "isp".to_owned(),
                date(day),
                day + 3_600
            ),
        ]
    );
    drop_database(&c).await;
}

#[tokio::test]
async fn a_database_with_a_newer_schema_is_refused_naming_both_versions() {
    let Some(c) = clickhouse("newer_schema") else {
        return;
    };
    migrate(&c).await.expect("migrate");
    c.client()
        .query(&format!(
            "INSERT INTO `{}`.schema_migrations (version, description, applied_at, tool_version) \
             VALUES (99, 'from the future', now(), '9.9.9')",
            c.database
        ))
        .execute()
        .await
        .expect("stamp");
    let err = migrate(&c).await.expect_err("must refuse");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("99") && msg.contains(&format!("schema version {SCHEMA_VERSION}")),
        "{msg}"
    );
    // The sink refuses too, before writing anything.
    let err = ClickHouseSink::connect(c.clone())
        .await
        .expect_err("sink must refuse");
    assert!(matches!(err, StoreError::SchemaTooNew { .. }));
    drop_database(&c).await;
}

#[tokio::test]
async fn every_record_type_is_inserted_and_read_back_equal() {
    let Some(mut c) = clickhouse("roundtrip") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    c.spill_dir = dir.path().join("spill");
    let records = full_and_empty_records();
    let mut sink = ClickHouseSink::connect(c.clone()).await.expect("connect");
    sink.write_batch(records.clone()).await.expect("write");
    // The same records again: the tables deduplicate on the record key.
    sink.write_batch(records.clone())
        .await
        .expect("write again");
    let report = sink.close().await.expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.total_rows(), 4 * TABLES.len() as u64);
    assert_eq!(report.total_spilled(), 0);
    assert_tables_hold(&c, &records).await;
    drop_database(&c).await;
}

#[tokio::test]
async fn a_scan_keeps_its_final_state_whatever_the_insert_order() {
    let Some(mut c) = clickhouse("scan_update") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    c.spill_dir = dir.path().join("spill");
    let mut running = examples::scan();
    running.status = mxray_model::ScanStatus::Running;
    running.finished_at = None;
    let mut other = examples::scan();
    other.vantage = "second".into();
    let mut other_running = other.clone();
    other_running.status = mxray_model::ScanStatus::Running;
    other_running.finished_at = None;
    let mut sink = ClickHouseSink::connect(c.clone()).await.expect("connect");
    // In order for one vantage; the `running` row last for the other (a spill loaded late).
    sink.write(running.into()).await.expect("write");
    sink.write(other.clone().into()).await.expect("write");
    sink.flush().await.expect("flush");
    sink.write(examples::scan().into()).await.expect("write");
    sink.write(other_running.into()).await.expect("write");
    sink.close().await.expect("close");
    let back = read_table(&c, RecordKind::Scan).await.expect("read");
    assert_eq!(
        sorted(back),
        sorted(vec![examples::scan().into(), other.into()])
    );
    drop_database(&c).await;
}

#[tokio::test]
async fn a_retried_campaign_shard_replaces_only_its_unfinished_attempts() {
    let Some(mut c) = clickhouse("supersede") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    c.spill_dir = dir.path().join("spill");
    migrate(&c).await.expect("migrate");
    let attempt = |n: u128, status: mxray_model::ScanStatus, started: i64| {
        let mut s = examples::scan();
        s.scan_id = uuid::Uuid::from_u128(0x0189_0000_0000_7000_8000_0000_0000_0000 + n);
        s.campaign = "camp".into();
        s.shard = "1/4".into();
        s.status = status;
        s.started_at = mxray_model::UtcTime::from_unix(started);
        s
    };
    use mxray_model::ScanStatus::{Complete, Running};
    let dead = attempt(1, Running, 1_700_000_000);
    let finished_before = attempt(2, Complete, 1_700_000_100);
    let mut other_shard = attempt(3, Running, 1_700_000_200);
    other_shard.shard = "2/4".into();
    let retry = attempt(4, Complete, 1_700_000_300);
    let mut sink = ClickHouseSink::connect(c.clone()).await.expect("connect");
    for s in [&dead, &finished_before, &other_shard, &retry] {
        register_attempt(&c, s).await.expect("register");
        let mut d = examples::domain();
        d.scan_id = s.scan_id;
        sink.write(d.into()).await.expect("write");
    }
    sink.close().await.expect("close");
    let r = supersede_attempts(
        &c,
        "camp",
        "1/4",
        &retry.vantage,
        retry.scan_id,
        retry.started_at,
        std::time::Duration::from_secs(30),
    )
    .await
    .expect("supersede");
    assert_eq!(r.attempts, vec![dead.scan_id]);
    assert!(r.finished);
    let left: Vec<String> = c
        .client()
        .query(&format!(
            "SELECT toString(scan_id) FROM `{}`.domains FINAL ORDER BY scan_id",
            c.database
        ))
        .fetch_all()
        .await
        .expect("domains");
    let ids = |v: &[&mxray_model::ScanRecord]| -> Vec<String> {
        v.iter().map(|s| s.scan_id.to_string()).collect()
    };
    assert_eq!(left, ids(&[&finished_before, &other_shard, &retry]));
    // Every attempt keeps its scan row.
    assert_eq!(
        read_table(&c, RecordKind::Scan).await.expect("read").len(),
        4
    );
    drop_database(&c).await;
}

#[tokio::test]
async fn bad_data_is_not_retried_but_reported_with_table_and_saved() {
    let Some(mut c) = clickhouse("bad_data") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    c.spill_dir = dir.path().join("spill");
    migrate(&c).await.expect("migrate");
    // Make the table incompatible with the rows: the server refuses the batch.
    c.client()
        .query(&format!("DROP TABLE `{}`.domains", c.database))
        .execute()
        .await
        .expect("drop");
    c.client()
        .query(&format!(
            "CREATE TABLE `{}`.domains (scan_id UInt8) ENGINE = Memory",
            c.database
        ))
        .execute()
        .await
        .expect("create");
    let mut sink = ClickHouseSink::connect(c.clone()).await.expect("connect");
    sink.write(examples::domain().into()).await.expect("write");
    sink.write(examples::smtp_probe().into())
        .await
        .expect("write");
    let report = sink.close().await.expect("close");
    assert_eq!(report.rows.get("smtp_probes"), Some(&1));
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let rej = &report.rejected[0];
    assert_eq!(rej.table, "domains");
    assert_eq!(rej.rows, 1);
    let saved = std::fs::read_to_string(&rej.saved_to).expect("saved batch");
    let back: Record = serde_json::from_str(saved.trim()).expect("jsonl");
    assert_eq!(back, Record::from(examples::domain()));
    drop_database(&c).await;
}

#[tokio::test]
async fn parquet_results_load_once_even_when_loaded_twice() {
    let Some(c) = clickhouse("load") else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("result");
    let records = full_and_empty_records();
    let mut sink = ParquetSink::create(&out, ParquetOptions::default()).expect("create");
    sink.write_batch(records.clone()).await.expect("write");
    sink.close().await.expect("close");

    let first = load_dir(&out, &c).await.expect("load");
    assert_eq!(first.rows.values().sum::<u64>(), 2 * TABLES.len() as u64);
    assert_eq!(first.rows.get("canary_results"), Some(&2));
    load_dir(&out, &c).await.expect("load again");
    assert_tables_hold(&c, &records).await;
    drop_database(&c).await;
}

#[tokio::test]
async fn load_refuses_truncated_or_tampered_files_before_inserting() {
    let Some(c) = clickhouse("load_tampered") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("result");
    let mut sink = ParquetSink::create(&out, ParquetOptions::default()).expect("create");
    sink.write_batch(examples::all()).await.expect("write");
    sink.close().await.expect("close");
    let path = out.join("smtp_probes.parquet");
    let original = std::fs::read(&path).expect("read");

    std::fs::write(&path, &original[..original.len() - 100]).expect("truncate");
    let err = load_dir(&out, &c).await.expect_err("truncated").to_string();
    assert!(
        err.contains("smtp_probes.parquet") && err.contains("truncated"),
        "{err}"
    );

    let mut tampered = original.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x01;
    std::fs::write(&path, &tampered).expect("tamper");
    let err = load_dir(&out, &c).await.expect_err("tampered").to_string();
    assert!(
        err.contains("smtp_probes.parquet") && err.contains("SHA-256"),
        "{err}"
    );

    std::fs::remove_file(out.join(MANIFEST)).expect("rm");
    let err = load_dir(&out, &c)
        .await
        .expect_err("no manifest")
        .to_string();
    assert!(err.contains("manifest"), "{err}");

    // Nothing was inserted: the database was never even created.
    let exists: u8 = c
        .client()
        .query("SELECT count() > 0 FROM system.databases WHERE name = ?")
        .bind(&c.database)
        .fetch_one()
        .await
        .expect("query");
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let c = ClickHouseConfig::from_url(&format!("http://127.0.0.1:{port}/x")).expect("url");
    let err = migrate(&c).await.expect_err("unreachable").to_string();
    assert!(
        err.contains("not reachable") && err.contains(&port.to_string()),
        "{err}"
    );
}
