//! A campaign into a real ClickHouse cluster (scripts/clickhouse-cluster: ZooKeeper and four
//! clickhouse-server processes, two shards of two replicas, private directories and ports):
//! `mxray migrate --cluster` lays the database out; three lab scan shards write concurrently
//! through three different nodes; the replica one scanner writes through is killed with
//! SIGKILL in the middle and restarted. Afterwards every node's `count() FINAL` of every table
//! equals the count of the same records loaded into a single server, the two replicas of each
//! shard hold the same rows, and `report --campaign` from the cluster equals the report from
//! the single server.
//!
//! The single server is the test ClickHouse (MXRAY_TEST_CLICKHOUSE_URL, started by
//! scripts/test); the reference records are the scanners' own Parquet outputs loaded into it
//! with `mxray load`, so both sides hold exactly the same measurements.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mxray_model::{Record, RecordKind};
use mxray_store::schema::TABLES;
use mxray_store::ClickHouseConfig;

const CLUSTER: &str = "mxray_cluster";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/clickhouse-cluster")
}

/// The cluster of one test, stopped (exactly what it started) when dropped.
struct Cluster {
    state: tempfile::TempDir,
    urls: BTreeMap<String, String>,
}

impl Cluster {
    fn start() -> Cluster {
        let state = tempfile::tempdir().expect("tmp");
        let mut c = Cluster {
            state,
            urls: BTreeMap::new(),
        };
        let out = c.script(&["start"]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((node, url)) = line.split_once(' ') {
                c.urls.insert(node.to_owned(), url.to_owned());
            }
        }
        assert_eq!(c.urls.len(), 4, "four nodes: {:?}", c.urls);
        c
    }

    fn script(&self, args: &[&str]) -> Output {
        let out = Command::new(script())
            .args(args)
            .env("MXRAY_CLICKHOUSE_CLUSTER_DIR", self.state.path())
            .output()
            .expect("run scripts/clickhouse-cluster");
        assert!(
            out.status.success(),
            "clickhouse-cluster {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The last lines of every node's error log and stdout, for a failure message: a node
    /// that died or refused is otherwise only "client error (Connect)".
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for node in self.urls.keys() {
            for file in ["log/clickhouse-server.err.log", "log/stdout.log"] {
                let path = self.state.path().join(node).join(file);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                out.push_str(&format!("\n--- {node} {file}:\n{tail}"));
            }
        }
        out
    }

    /// `URL/DATABASE` of a node.
    fn db_url(&self, node: &str, db: &str) -> String {
        format!("{}{db}", self.urls[node])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .env("MXRAY_CLICKHOUSE_CLUSTER_DIR", self.state.path())
            .status();
    }
}

fn single_server() -> String {
    match std::env::var("MXRAY_TEST_CLICKHOUSE_URL") {
        Ok(url) => url,
        Err(_) => panic!(
            "MXRAY_TEST_CLICKHOUSE_URL is not set: this test needs the test ClickHouse \
             (run scripts/test, or scripts/clickhouse start)"
        ),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One `u64` answer of `sql` on the server of `url`.
fn query_u64(url: &str, sql: &str) -> u64 {
    let cfg = ClickHouseConfig::from_url(url).expect("url");
    runtime()
        .block_on(cfg.client().query(sql).fetch_one::<u64>())
        .unwrap_or_else(|e| panic!("{url}: {sql}: {e}"))
}

fn execute(url: &str, sql: &str) {
    let cfg = ClickHouseConfig::from_url(url).expect("url");
    runtime()
        .block_on(cfg.client().query(sql).execute())
        .unwrap_or_else(|e| panic!("{url}: {sql}: {e}"));
}

fn mxray_output(args: &[&str]) -> Output {
    let mut c = common::mxray();
    c.args(args);
    c.output().expect("run mxray")
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `mxray migrate --cluster` through `node`; its output.
fn migrate_cluster(cluster: &Cluster, node: &str, db: &str, what: &str) -> String {
    let out = mxray_output(&[
        "migrate",
        "--clickhouse",
        &cluster.db_url(node, db),
        "--cluster",
        CLUSTER,
    ]);
    if !out.status.success() {
        panic!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            cluster.log_tails()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `mxray scan --lab --lab-domains N` with `extra` arguments into ClickHouse at `url` and
/// Parquet at `out`, stderr to `log`, started in the background.
fn spawn_lab_scan(domains: &str, extra: &[&str], url: &str, out: &Path, log: &Path) -> Child {
    common::mxray()
        .args([
            "scan",
            "--lab",
            "--lab-domains",
            domains,
            "--timeout",
            "2",
            "--quiet",
        ])
        .args(extra)
        .args(["--clickhouse", url])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start mxray scan")
}

/// One of three shards, paced (300 new connections/s, some 10 s for its ~3,000) so that the
/// replica is killed while every scanner still writes, however fast the machine is.
fn scan_shard(shard: usize, url: &str, out: &Path, log: &Path) -> Child {
    let shard = format!("{shard}/3");
    spawn_lab_scan("6000", &["--shard", &shard, "--rate", "300"], url, out, log)
}

fn campaign_of(dir: &Path) -> String {
    let recs = mxray_store::read_table_file(&dir.join("scans.parquet"), RecordKind::Scan)
        .expect("scans.parquet");
    match recs.as_slice() {
        [Record::Scan(s)] => s.campaign.clone(),
        other => panic!("expected one scan record, got {other:?}"),
    }
}

#[test]
fn a_campaign_survives_a_killed_replica_and_equals_a_single_server() {
    let started = Instant::now();
    let cluster = Cluster::start();
    let db = "campaign";

    // The layout: idempotent, and a database of the other layout is refused.
    let first = migrate_cluster(&cluster, "s1r1", db, "migrate --cluster");
    assert!(first.contains("on cluster mxray_cluster"), "{first}");
    let again = migrate_cluster(&cluster, "s2r2", db, "migrate --cluster again");
    assert!(again.contains("is current"), "{again}");
    for node in cluster.urls.keys() {
        for &kind in TABLES {
            let engine_is = |table: &str, engine: &str| {
                query_u64(
                    &cluster.urls[node],
                    &format!(
                        "SELECT count() FROM system.tables WHERE database = '{db}' \
                         AND name = '{table}' AND engine = '{engine}'"
                    ),
                ) == 1
            };
            assert!(engine_is(kind.table(), "Distributed"), "{node} {kind:?}");
            assert!(
                engine_is(
                    &format!("{}_local", kind.table()),
                    "ReplicatedReplacingMergeTree"
                ),
                "{node} {kind:?}"
            );
        }
    }
    let solo = ok(
        mxray_output(&["migrate", "--clickhouse", &cluster.db_url("s1r1", "solo")]),
        "migrate a single-server database",
    );
    assert!(
        solo.contains(&format!("-> {}", mxray_model::SCHEMA_VERSION)),
        "{solo}"
    );
    let refused = mxray_output(&[
        "migrate",
        "--clickhouse",
        &cluster.db_url("s1r1", "solo"),
        "--cluster",
        CLUSTER,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("created for a single server"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Three shards through three nodes; the scanner of shard 1 writes through s1r2.
    let tmp = tempfile::tempdir().expect("tmp");
    let nodes = ["s1r1", "s1r2", "s2r1"];
    let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("s{i}"))).collect();
    let logs: Vec<PathBuf> = (0..3)
        .map(|i| tmp.path().join(format!("s{i}.log")))
        .collect();
    let mut scanners: Vec<Child> = (0..3)
        .map(|i| scan_shard(i, &cluster.db_url(nodes[i], db), &dirs[i], &logs[i]))
        .collect();

    // Kill s1r2 once rows are arriving, while every scanner still runs.
    let domains = format!("SELECT count() FROM {db}.domains");
    let deadline = Instant::now() + Duration::from_secs(60);
    while query_u64(&cluster.urls["s2r2"], &domains) == 0 {
        assert!(Instant::now() < deadline, "no rows reached the cluster");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    for (i, s) in scanners.iter_mut().enumerate() {
        assert!(
            s.try_wait().expect("try_wait").is_none(),
            "scanner {i} finished before the kill: the test would not test anything"
        );
    }
    cluster.script(&["kill", "s1r2"]);
    std::thread::sleep(Duration::from_secs(3));
    cluster.script(&["restart", "s1r2"]);

    for (i, mut s) in scanners.into_iter().enumerate() {
        let status = s.wait().expect("wait");
        let log = std::fs::read_to_string(&logs[i]).unwrap_or_default();
        assert!(status.success(), "scanner {i}: {log}");
        assert!(!log.contains("spill"), "scanner {i} spilled: {log}");
    }

    // Replication settles, then every node answers the same. On 18.16 `SYSTEM SYNC REPLICA`
    // can return before a restarted replica has even read the log entries it missed, so the
    // replicas are given a bounded time to converge; the assertions below still fail if they
    // never do.
    let local_counts = || -> BTreeMap<(&str, &str), u64> {
        let mut counts = BTreeMap::new();
        for (node, url) in &cluster.urls {
            for &kind in TABLES {
                let sql = format!("SELECT count() FROM {db}.{}_local FINAL", kind.table());
                counts.insert((node.as_str(), kind.table()), query_u64(url, &sql));
            }
        }
        counts
    };
    let converged = |c: &BTreeMap<(&str, &str), u64>| {
        TABLES.iter().all(|k| {
            let t = k.table();
            c[&("s1r1", t)] == c[&("s1r2", t)] && c[&("s2r1", t)] == c[&("s2r2", t)]
        })
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        for url in cluster.urls.values() {
            for &kind in TABLES {
                execute(
                    url,
                    &format!("SYSTEM SYNC REPLICA {db}.{}_local", kind.table()),
                );
            }
        }
        if converged(&local_counts()) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let single = single_server();
    let ref_db = format!("cluster_ref_{}", std::process::id());
    let ref_url = format!("{single}{ref_db}");
    for d in &dirs {
        ok(
            mxray_output(&["load", &d.to_string_lossy(), "--clickhouse", &ref_url]),
            "mxray load",
        );
    }
    let mut totals = BTreeMap::new();
    for &kind in TABLES {
        let t = kind.table();
        let expected = query_u64(&single, &format!("SELECT count() FROM {ref_db}.{t} FINAL"));
        totals.insert(t, expected);
        for (node, url) in &cluster.urls {
            let got = query_u64(url, &format!("SELECT count() FROM {db}.{t} FINAL"));
            assert_eq!(got, expected, "{t} through {node}");
        }
        // Each shard's replicas hold the same rows; the shards add up to the whole.
        let local = |node: &str| {
            query_u64(
                &cluster.urls[node],
                &format!("SELECT count() FROM {db}.{t}_local FINAL"),
            )
        };
        assert_eq!(local("s1r1"), local("s1r2"), "{t}: shard 01 replicas");
        assert_eq!(local("s2r1"), local("s2r2"), "{t}: shard 02 replicas");
        assert_eq!(local("s1r1") + local("s2r1"), expected, "{t}: shards");
    }
    assert!(totals["domains"] > 6000, "{totals:?}");
    // The library's view reads the whole cluster from every node, as the table does on one
    // server (three shard scans: three rows).
    let view = "SELECT count() FROM (SELECT DISTINCT scan_id, vantage, scan_date, started FROM";
    let expected = query_u64(&single, &format!("{view} {ref_db}.scan_dates)"));
    assert_eq!(expected, 3);
    for (node, url) in &cluster.urls {
        let got = query_u64(url, &format!("{view} {db}.scan_dates)"));
        assert_eq!(got, expected, "scan_dates through {node}");
    }
    assert!(
        totals["smtp_probes"] > 0 && totals["certificates"] > 0,
        "{totals:?}"
    );

    // The campaign's report is the same from the cluster and from one server.
    let campaign = campaign_of(&dirs[0]);
    for d in &dirs[1..] {
        assert_eq!(campaign_of(d), campaign, "shards agree on the campaign");
    }
    let report = |url: &str| {
        ok(
            mxray_output(&[
                "report",
                "--json",
                "--campaign",
                &campaign,
                "--clickhouse",
                url,
            ]),
            "report --campaign",
        )
    };
    let from_cluster: serde_json::Value =
        serde_json::from_str(&report(&cluster.db_url("s2r2", db))).expect("json");
    let from_single: serde_json::Value = serde_json::from_str(&report(&ref_url)).expect("json");
    assert_eq!(from_cluster["complete"], true, "{from_cluster}");
    assert_eq!(from_cluster, from_single);
    execute(&single, &format!("DROP DATABASE {ref_db}"));
    eprintln!(
        "cluster test: {totals:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Polls every node until no mutation of `db` is pending (at most 60 s).
fn wait_for_mutations(cluster: &Cluster, db: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (node, url) in &cluster.urls {
        while query_u64(
            url,
            &format!(
                "SELECT count() FROM system.mutations WHERE database = '{db}' AND is_done = 0"
            ),
        ) > 0
        {
            assert!(
                Instant::now() < deadline,
                "mutations still pending on {node}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The same campaign shard every time; `extra` arguments only pace it.
fn rerun_scan(url: &str, out: &Path, log: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["--campaign", "rerun-test"];
    args.extend_from_slice(extra);
    spawn_lab_scan("3000", &args, url, out, log)
}

#[test]
fn a_shard_rerun_without_its_directory_replaces_the_dead_attempt() {
    let cluster = Cluster::start();
    let db = "rerun";
    migrate_cluster(&cluster, "s1r1", db, "migrate --cluster");
    // An upgrade on the cluster: take the database back to schema version 3 (without
    // `scans.campaign` and the views), then migrate again: the column comes back on every
    // node, local and Distributed tables alike, and so do the views.
    let s1r1 = &cluster.urls["s1r1"];
    execute(
        s1r1,
        &format!("ALTER TABLE {db}.scans_local ON CLUSTER {CLUSTER} DROP COLUMN campaign"),
    );
    for url in cluster.urls.values() {
        execute(url, &format!("ALTER TABLE {db}.scans DROP COLUMN campaign"));
    }
    for view in mxray_store::schema::views() {
        execute(
            s1r1,
            &format!("DROP TABLE {db}.{} ON CLUSTER {CLUSTER}", view.name),
        );
    }
    execute(
        s1r1,
        &format!("ALTER TABLE {db}.schema_migrations DELETE WHERE version >= 4"),
    );
    wait_for_mutations(&cluster, db);
    let upgraded = migrate_cluster(&cluster, "s2r2", db, "migrate --cluster from version 3");
    assert!(
        upgraded.contains(&format!("3 -> {}", mxray_model::SCHEMA_VERSION)),
        "{upgraded}"
    );
    for (node, url) in &cluster.urls {
        let n = query_u64(
            url,
            &format!(
                "SELECT count() FROM system.columns WHERE database = '{db}' \
                 AND table IN ('scans', 'scans_local') AND name = 'campaign'"
            ),
        );
        assert_eq!(n, 2, "campaign column on {node}");
        for view in mxray_store::schema::views() {
            let n = query_u64(
                url,
                &format!(
                    "SELECT count() FROM system.tables WHERE database = '{db}' \
                     AND name = '{}' AND engine = 'View'",
                    view.name
                ),
            );
            assert_eq!(n, 1, "{} view on {node}", view.name);
        }
    }
    let tmp = tempfile::tempdir().expect("tmp");
    // The first attempt dies (SIGKILL, like its node) after some of its rows are stored. It
    // is paced (200 new connections/s: some 20 s for its ~4,500 connections) so that the kill
    // falls in its middle however fast the machine is; unpaced, a fast machine finished
    // nearly all 3,000 domains before its first rows were visible.
    let mut dead = rerun_scan(
        &cluster.db_url("s2r1", db),
        &tmp.path().join("dead"),
        &tmp.path().join("dead.log"),
        &["--rate", "200"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while query_u64(
        &cluster.urls["s1r2"],
        &format!("SELECT count() FROM {db}.domains"),
    ) == 0
    {
        assert!(Instant::now() < deadline, "no rows reached the cluster");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        dead.try_wait().expect("try_wait").is_none(),
        "finished too early"
    );
    dead.kill().expect("kill");
    dead.wait().expect("wait");
    let partial = query_u64(
        &cluster.urls["s1r2"],
        &format!("SELECT count() FROM {db}.domains FINAL"),
    );
    assert!(
        partial > 0 && partial < 3000,
        "partial attempt: {partial} domains"
    );

    // The retry runs elsewhere, without the first attempt's directory.
    let again_dir = tmp.path().join("again");
    let log = tmp.path().join("again.log");
    let status = rerun_scan(&cluster.db_url("s1r1", db), &again_dir, &log, &[])
        .wait()
        .expect("wait");
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("replaced the rows of 1 earlier unfinished attempt(s)"),
        "{stderr}"
    );
    for url in cluster.urls.values() {
        for &kind in TABLES {
            execute(
                url,
                &format!("SYSTEM SYNC REPLICA {db}.{}_local", kind.table()),
            );
        }
    }
    wait_for_mutations(&cluster, db);

    // The campaign now holds the retry's rows once, as if the shard had run once.
    let single = single_server();
    let ref_db = format!("rerun_ref_{}", std::process::id());
    let ref_url = format!("{single}{ref_db}");
    ok(
        mxray_output(&[
            "load",
            &again_dir.to_string_lossy(),
            "--clickhouse",
            &ref_url,
        ]),
        "mxray load",
    );
    for &kind in TABLES {
        let t = kind.table();
        if matches!(kind, RecordKind::Scan | RecordKind::Certificate) {
            continue;
        }
        let expected = query_u64(&single, &format!("SELECT count() FROM {ref_db}.{t} FINAL"));
        for (node, url) in &cluster.urls {
            let got = query_u64(url, &format!("SELECT count() FROM {db}.{t} FINAL"));
            assert_eq!(got, expected, "{t} through {node}");
        }
    }
    // Both attempts stay on record; the dead one as it was left (`running`).
    let statuses = |status: &str| {
        query_u64(
            &cluster.urls["s2r2"],
            &format!("SELECT count() FROM {db}.scans FINAL WHERE status = '{status}'"),
        )
    };
    assert_eq!((statuses("complete"), statuses("running")), (1, 1));
    let report = |url: &str| -> serde_json::Value {
        serde_json::from_str(&ok(
            mxray_output(&[
                "report",
                "--json",
                "--campaign",
                "rerun-test",
                "--clickhouse",
                url,
            ]),
            "report --campaign",
        ))
        .expect("json")
    };
    let (from_cluster, from_single) = (report(&cluster.db_url("s2r2", db)), report(&ref_url));
    assert_eq!(from_cluster["complete"], true, "{from_cluster}");
    assert_eq!(from_cluster["report"], from_single["report"]);
    // The campaign status names the dead attempt as superseded by the retry.
    let shard = &from_cluster["campaign"]["shards"][0];
    assert_eq!(shard["status"], "complete", "{shard}");
    assert_eq!(
        shard["superseded"].as_array().map(Vec::len),
        Some(1),
        "{shard}"
    );
    execute(&single, &format!("DROP DATABASE {ref_db}"));
}
