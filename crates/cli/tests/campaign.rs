//! Campaigns with the real binary and the lab: three `--shard I/3` runs (one started the way a
//! Slurm job array starts it, `--shard auto`) agree on their campaign without coordination;
//! `report --campaign` over their directories equals the report of the same lab scanned
//! whole, refuses while a shard is missing, and uses one run of a shard that ran twice.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use mxray_model::{Record, RecordKind};

fn lab_shard(out: &Path, shard: Option<&str>, env: &[(&str, &str)]) {
    let mut c = common::mxray();
    c.args([
        "scan",
        "--lab",
        "--quiet",
        "--lab-domains",
        "60",
        "--timeout",
        "2",
    ])
    .arg("--out")
    .arg(out);
    if let Some(s) = shard {
        c.args(["--shard", s]);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run mxray");
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn scan_record(dir: &Path) -> mxray_model::ScanRecord {
    let recs = mxray_store::read_table_file(&dir.join("scans.parquet"), RecordKind::Scan)
        .expect("scans.parquet");
    match recs.as_slice() {
        [Record::Scan(s)] => s.clone(),
        other => panic!("expected one scan record, got {other:?}"),
    }
}

fn report(args: &[&str], dirs: &[&PathBuf]) -> Output {
    let mut c = common::mxray();
    c.arg("report").args(args);
    for d in dirs {
        c.arg(d);
    }
    c.output().expect("run mxray report")
}

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("report --json")
}

#[test]
fn shards_make_one_campaign_and_report_refuses_a_partial_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = |n: &str| tmp.path().join(n);
    let (whole, s0, s1, s2, s1_again) = (
        dir("whole"),
        dir("s0"),
        dir("s1"),
        dir("s2"),
        dir("s1-again"),
    );
    lab_shard(&whole, None, &[]);
    lab_shard(&s0, Some("0/3"), &[]);
    lab_shard(&s1, Some("1/3"), &[]);
    // Shard 2 as a Slurm array task (`sbatch --array=10-12`) starts it.
    lab_shard(
        &s2,
        Some("auto"),
        &[
            ("SLURM_ARRAY_TASK_ID", "12"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );

    // Every shard derived the same campaign on its own; the whole scan is another campaign.
    let ids: Vec<String> = [&s0, &s1, &s2]
        .iter()
        .map(|d| scan_record(d).campaign)
        .collect();
    assert!(ids[0].starts_with("c-"), "{ids:?}");
    assert!(ids.iter().all(|c| *c == ids[0]), "{ids:?}");
    assert_eq!(scan_record(&s2).shard, "2/3");
    assert_ne!(scan_record(&whole).campaign, ids[0]);
    let campaign = ids[0].as_str();

    // The campaign's report equals the whole scan's.
    let whole_report = json(&report(&["--json"], &[&whole]));
    assert!(
        whole_report["domains"]["default"].as_u64().unwrap_or(0) > 60,
        "{whole_report}"
    );
    let c = json(&report(
        &["--json", "--campaign", campaign],
        &[&s0, &s1, &s2],
    ));
    assert_eq!(c["complete"], true);
    assert_eq!(c["report"]["shares"], whole_report["shares"]);
    assert_eq!(c["report"]["domains"], whole_report["domains"]);

    // A missing shard: refused, with the shard named; --partial says it is partial.
    let o = report(&["--campaign", campaign], &[&s0, &s1]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("missing shards 2") && err.contains("incomplete"),
        "{err}"
    );
    let o = report(&["--campaign", campaign, "--partial"], &[&s0, &s1]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("PARTIAL CAMPAIGN") && out.contains("2 of 3 shards complete"),
        "{out}"
    );

    // Shard 1 run again (a retried node): one run per shard, nothing doubled.
    lab_shard(&s1_again, Some("1/3"), &[]);
    assert_eq!(scan_record(&s1_again).campaign, campaign);
    let c = json(&report(
        &["--json", "--campaign", campaign],
        &[&s0, &s1, &s2, &s1_again],
    ));
    assert_eq!(c["report"]["shares"], whole_report["shares"]);
    assert_eq!(c["report"]["domains"], whole_report["domains"]);
    let superseded = c["campaign"]["shards"][1]["superseded"]
        .as_array()
        .expect("superseded")
        .len();
    assert_eq!(superseded, 1);

    // An unknown campaign is an error, not an empty report.
    let o = report(&["--campaign", "c-nope"], &[&s0]);
    assert!(!o.status.success());

    // An explicit campaign name is written as given.
    let named = dir("named");
    let mut c = common::mxray();
    c.args([
        "scan",
        "--lab",
        "--quiet",
        "--lab-domains",
        "10",
        "--timeout",
        "2",
        "--campaign",
        "top1m-2026-12",
        "--shard",
        "0/2",
    ])
    .arg("--out")
    .arg(&named);
    assert!(c.output().expect("run").status.success());
    assert_eq!(scan_record(&named).campaign, "top1m-2026-12");
}
