//! The Hive-partitioned release layout (`scripts/export-dataset`,
//! `table=<name>/vantage=<v>/date=<d>/part-N.parquet`): read back record for record, and
//! `mxray load` of it into the real ClickHouse (MXRAY_TEST_CLICKHOUSE_URL): the checked-in
//! example with the manifest's row counts, a corrupted or misplaced part refused naming the
//! file before anything is inserted. The export runs with MXRAY_PYTHON (the venv's python).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use mxray_model::Record;
use mxray_store::schema::TABLES;
use mxray_store::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A result directory of every example record (and their all-null twins), exported by
/// scripts/export-dataset in the Hive layout with one row per part.
async fn hive_release(py: &Path, tmp: &Path) -> (Vec<Record>, PathBuf) {
    let scan = tmp.join("scan");
    let records = full_and_empty_records();
    let mut sink = ParquetSink::create(&scan, ParquetOptions::default()).expect("create");
    sink.write_batch(records.clone()).await.expect("write");
    sink.close().await.expect("close");
    let release = tmp.join("release");
    let out = Command::new(py)
        .arg(repo().join("scripts/export-dataset"))
        .arg(&scan)
        .args(["--out"])
        .arg(&release)
        .args(["--title", "t", "--part-rows", "1"])
        .output()
        .expect("run scripts/export-dataset");
    assert!(
        out.status.success(),
        "export-dataset failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (records, release)
}

/// Copy of the checked-in example (datasets/example), to damage.
fn example_copy(tmp: &Path) -> PathBuf {
    let dst = tmp.join("example");
    let src = repo().join("datasets/example");
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).expect("prefix");
        let to = dst.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &to).expect("copy");
    }
    dst
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn hive_manifest(dir: &Path) -> HiveManifest {
    match DatasetManifest::read(dir).expect("manifest") {
        DatasetManifest::Hive(m) => m,
        _ => panic!("{}: not a Hive-layout release", dir.display()),
    }
}

#[tokio::test]
async fn hive_release_reads_back_every_record() {
    let Some(py) = chdb_python() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let (records, release) = hive_release(&py, tmp.path()).await;
    let manifest = DatasetManifest::read(&release).expect("manifest");
    manifest.verify(&release).expect("verify");
    let DatasetManifest::Hive(hive) = &manifest else {
        panic!("export-dataset wrote a flat release")
    };
    // One row per part: the cap splits the partitions (and certificates) into part-0, part-1, ...
    assert!(
        hive.files
            .iter()
            .any(|f| f.path.ends_with("/part-1.parquet")),
        "no partition was split"
    );
    assert!(hive
        .files
        .iter()
        .any(|f| f.path.starts_with("table=domains/vantage=other/date=")));
    for &kind in TABLES {
        let mut back = Vec::new();
        for part in manifest.table_parts(&release, kind).expect("parts") {
            let mut r = part.open().expect("open");
            back.extend(r.next_chunk(1_000).expect("read"));
        }
        let expected = of_kind(&records, kind);
        assert_eq!(sorted(back), sorted(expected), "{}", kind.table());
    }
}

#[tokio::test]
async fn hive_release_loads_into_clickhouse_equal_to_its_records() {
    let Some(py) = chdb_python() else { return };
    let Some(c) = clickhouse("hive_load") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let (records, release) = hive_release(&py, tmp.path()).await;
    let report = load_dir(&release, &c).await.expect("load");
    assert!(report.hive);
    assert_eq!(report.rows.values().sum::<u64>(), records.len() as u64);
    assert_tables_hold(&c, &records).await;
    drop_database(&c).await;
}

#[tokio::test]
async fn example_release_loads_with_the_manifest_row_counts() {
    let Some(c) = clickhouse("hive_example") else {
        return;
    };
    let dir = repo().join("datasets/example");
    let manifest = hive_manifest(&dir);
    let report = load_dir(&dir, &c).await.expect("load the example");
    assert!(report.hive);
    let parts = manifest
        .files
        .iter()
        .filter(|f| !REFERENCE_TABLES.contains(&f.table.as_str()))
        .count();
    assert_eq!(report.files, parts);
    for (name, table) in &manifest.tables {
        if REFERENCE_TABLES.contains(&name.as_str()) {
            assert_eq!(report.rows.get(name.as_str()), None, "{name} is not loaded");
            continue;
        }
        assert_eq!(
            report.rows.get(name.as_str()).copied().unwrap_or(0),
            table.rows,
            "{name} sent"
        );
        let stored: u64 = c
            .client()
            .query(&format!(
                "SELECT count() FROM `{}`.{name} FINAL",
                c.database
            ))
            .fetch_one()
            .await
            .expect("count");
        assert_eq!(stored, table.rows, "{name} stored");
    }
    drop_database(&c).await;
}

async fn database_exists(c: &ClickHouseConfig) -> bool {
    let exists: u8 = c
        .client()
        .query("SELECT count() > 0 FROM system.databases WHERE name = ?")
        .bind(&c.database)
        .fetch_one()
        .await
        .expect("query");
    exists == 1
}

#[tokio::test]
async fn corrupted_or_misplaced_part_is_refused_naming_the_file() {
    let Some(c) = clickhouse("hive_corrupt") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = example_copy(tmp.path());
    let manifest = hive_manifest(&dir);
    // The last part of the probes of the isp vantage.
    let victim = manifest
        .files
        .iter()
        .rfind(|f| f.table == "smtp_probes" && f.path.contains("vantage=isp/") && f.rows > 0)
        .expect("an isp probe part")
        .path
        .clone();
    let path = dir.join(&victim);
    let original = std::fs::read(&path).expect("read");

    let mut corrupted = original.clone();
    let mid = corrupted.len() / 2;
    corrupted[mid] ^= 0x01;
    std::fs::write(&path, &corrupted).expect("corrupt");
    let err = load_dir(&dir, &c).await.expect_err("corrupted").to_string();
    assert!(err.contains(&victim) && err.contains("SHA-256"), "{err}");

    std::fs::write(&path, &original[..original.len() - 10]).expect("truncate");
    let err = load_dir(&dir, &c).await.expect_err("truncated").to_string();
    assert!(err.contains(&victim) && err.contains("truncated"), "{err}");

    // Intact bytes in another vantage's directory: the path is what every reader takes the
    // vantage from, so a part moved there (manifest edited to match) is refused.
    std::fs::write(&path, &original).expect("restore");
    let text = std::fs::read_to_string(dir.join(MANIFEST)).expect("manifest");
    let moved = victim.replace("vantage=isp/", "vantage=clean/");
    let mut m: serde_json::Value = serde_json::from_str(&text).expect("json");
    for f in m["files"].as_array_mut().expect("files") {
        if f["path"] == victim.as_str() {
            f["path"] = moved.clone().into();
        }
    }
    std::fs::write(dir.join(MANIFEST), m.to_string()).expect("edit manifest");
    let err = load_dir(&dir, &c).await.expect_err("moved").to_string();
    assert!(
        err.contains(&moved) && err.contains("partition vantage"),
        "{err}"
    );

    assert!(!database_exists(&c).await, "something was inserted");
}
