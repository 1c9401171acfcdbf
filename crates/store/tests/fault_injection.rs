//! Fault injection (issue 6): the ClickHouse server is stopped (SIGTERM) or killed (SIGKILL)
//! while 100,000 records stream into it, and started again a few seconds later. Afterwards
//! every record is in the database exactly once (count and checksums), including the ones that
//! went through the spill directory and `load_dir`.
//!
//! Each test runs its own private server through `scripts/clickhouse` with its own state
//! directory, so stopping it disturbs no other test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use mxray_model::{examples, Record};
use mxray_store::*;

const RECORDS: u32 = 100_000;

struct Server {
    state: tempfile::TempDir,
    script: PathBuf,
}

impl Server {
    fn run(&self, action: &str) -> String {
        let out = Command::new("bash")
            .arg(&self.script)
            .arg(action)
            .env("MXRAY_CLICKHOUSE_DIR", self.state.path())
            .output()
            .expect("run scripts/clickhouse");
        assert!(
            out.status.success(),
            "scripts/clickhouse {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .env("MXRAY_CLICKHOUSE_DIR", self.state.path())
            .output();
    }
}

fn private_server() -> Option<Server> {
    let has_server = Path::new("/usr/sbin/clickhouse-server").exists()
        || Command::new("sh")
            .args([
                "-c",
                "command -v clickhouse-server || command -v clickhouse",
            ])
            .output()
            .is_ok_and(|o| o.status.success());
    if !has_server {
        missing("clickhouse-server is not installed (apt-get install clickhouse-server)");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/clickhouse");
    Some(Server {
        state: tempfile::tempdir().expect("tmp"),
        script,
    })
}

fn probe(i: u32) -> Record {
    let mut p = examples::smtp_probe();
    p.ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff);
    p.total_ms = i;
    Record::from(p)
}

async fn stream_through_outage(kill: bool) {
    let Some(server) = private_server() else {
        return;
    };
    let url = server.run("start");
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = ClickHouseConfig::from_url(&url)
        .expect("url")
        .with_database(&db_name(if kill { "sigkill" } else { "sigterm" }))
        .expect("db");
    c.batch_rows = 2_000;
    c.batch_interval = Duration::from_millis(200);
    c.retry_initial = Duration::from_millis(100);
    c.retry_max = Duration::from_millis(500);
    c.spill_after = Duration::from_millis(1_500);
    c.probe_interval = Duration::from_millis(300);
    c.request_timeout = Duration::from_secs(10);
    c.spill_dir = dir.path().join("spill");

    let mut sink = ClickHouseSink::connect(c.clone()).await.expect("connect");
    let mut outage = None;
    for i in 0..RECORDS {
        sink.write(probe(i)).await.expect("write");
        if i % 1_000 == 999 {
            // Pace the stream so the outage falls in the middle of it: slower while the
            // server is down or going down (ClickHouse 18.16 keeps serving open keep-alive
            // connections for up to ~15 s after SIGTERM), so records keep arriving across the
            // whole outage and after the restart.
            let in_outage = outage
                .as_ref()
                .is_some_and(|t: &std::thread::JoinHandle<()>| !t.is_finished());
            let pause = if in_outage { 400 } else { 100 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        if i == 20_000 {
            let state = server.state.path().to_owned();
            let script = server.script.clone();
            outage = Some(std::thread::spawn(move || {
                let run = |a: &str| {
                    let out = Command::new("bash")
                        .arg(&script)
                        .arg(a)
                        .env("MXRAY_CLICKHOUSE_DIR", &state)
                        .output()
                        .expect("scripts/clickhouse");
                    assert!(
                        out.status.success(),
                        "{a}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                };
                run(if kill { "kill" } else { "stop" });
                std::thread::sleep(Duration::from_secs(4));
                run("start");
            }));
        }
    }
    if let Some(t) = outage {
        t.join().expect("outage thread");
    }
    let report = sink.close().await.expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert!(
        report.total_spilled() > 0,
        "the outage must have spilled: {report:?}"
    );
    assert!(
        report.total_rows() > 0,
        "inserts must have resumed: {report:?}"
    );
    assert_eq!(
        report.total_rows() + report.total_spilled(),
        u64::from(RECORDS),
        "{report:?}"
    );
    let spill = report.spill_dir.clone().expect("spill dir");
    let loaded = load_dir(&spill, &c).await.expect("load spill");
    assert_eq!(loaded.rows.values().sum::<u64>(), report.total_spilled());

    let (n, sum, sum_sq, distinct): (u64, u64, u64, u64) = c
        .client()
        .query(&format!(
            "SELECT count(), sum(toUInt64(total_ms)), sum(toUInt64(total_ms) * total_ms), \
             uniqExact(ip) FROM `{}`.smtp_probes FINAL",
            c.database
        ))
        .fetch_one()
        .await
        .expect("count");
    let n_expected = u64::from(RECORDS);
    let sum_expected: u64 = (0..n_expected).sum();
    let sum_sq_expected: u64 = (0..n_expected).map(|i| i * i).sum();
    assert_eq!(n, n_expected, "every record exactly once");
    assert_eq!(distinct, n_expected);
    assert_eq!(sum, sum_expected);
    assert_eq!(sum_sq, sum_sq_expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_mid_stream_loses_and_duplicates_nothing() {
    stream_through_outage(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_stream_loses_and_duplicates_nothing() {
    stream_through_outage(true).await;
}
