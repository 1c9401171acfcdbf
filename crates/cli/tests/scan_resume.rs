//! `--shard` and `--resume` on lab scans: shards partition the scan; a scan killed with SIGKILL
//! or stopped with SIGTERM and resumed ends with the same domains and verdicts as an
//! uninterrupted one, no duplicates.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mxray_model::{DomainRecord, Record};

const SYNTHETIC: &str = "150";

fn mxray() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mxray"));
    // Short timeouts: the lab's tarpit would otherwise hold every scan for 20 s.
    c.args([
        "scan",
        "--lab",
        "--quiet",
        "--lab-domains",
        SYNTHETIC,
        "--timeout",
        "2",
    ]);
    c
}

/// Domain verdicts by domain name, asserting every domain appears once.
fn verdicts(jsonl: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(jsonl).expect("read jsonl");
    let mut out = BTreeMap::new();
    let mut probes = std::collections::HashSet::new();
    for line in text.lines() {
        match serde_json::from_str::<Record>(line).unwrap_or_else(|e| panic!("{e}: {line}")) {
            Record::Domain(d) => {
                let DomainRecord {
                    domain,
                    starttls,
                    pkix,
                    dane,
                    mta_sts,
                    stripping_suspected,
                    ..
                } = d;
                let v = format!("{starttls} {pkix} {dane} {mta_sts} {stripping_suspected}");
                assert!(
                    out.insert(domain.clone(), v).is_none(),
                    "{domain} written twice"
                );
            }
            Record::SmtpProbe(p) => {
                // One probe per destination and attempt (a transient failure gets a second).
                assert!(
                    probes.insert((p.ip.clone(), p.port, p.sni.clone(), p.attempt)),
                    "probe {} attempt {} twice",
                    p.ip,
                    p.attempt
                );
            }
            _ => {}
        }
    }
    out
}

fn run_ok(mut c: Command) {
    let out = c.output().expect("run");
    assert!(
        out.status.success(),
        "{:?}: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shards_together_equal_the_whole_scan() {
    let dir = tempfile::tempdir().expect("tmp");
    let whole = dir.path().join("whole.jsonl");
    let mut c = mxray();
    c.arg("--jsonl")
        .arg(&whole)
        .arg("--out")
        .arg(dir.path().join("whole"));
    run_ok(c);
    let all = verdicts(&whole);

    let mut union = BTreeMap::new();
    for i in 0..3 {
        let part = dir.path().join(format!("shard{i}.jsonl"));
        let mut c = mxray();
        c.arg("--shard")
            .arg(format!("{i}/3"))
            .arg("--jsonl")
            .arg(&part);
        c.arg("--out").arg(dir.path().join(format!("shard{i}")));
        run_ok(c);
        let got = verdicts(&part);
        assert!(!got.is_empty(), "shard {i} is empty");
        for (d, v) in got {
            assert!(union.insert(d.clone(), v).is_none(), "{d} in two shards");
        }
    }
    assert_eq!(union, all);
}

/// Interrupts a scan with `signal` once 20 domains are journaled, resumes it, and checks the
/// result equals an uninterrupted scan's.
fn interrupted_scan_resumes(signal: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let whole = dir.path().join("whole.jsonl");
    let mut c = mxray();
    c.arg("--jsonl")
        .arg(&whole)
        .arg("--out")
        .arg(dir.path().join("whole"));
    run_ok(c);
    let expected = verdicts(&whole);

    let out = dir.path().join("interrupted");
    let jsonl = dir.path().join("interrupted.jsonl");
    let mut c = mxray();
    c.arg("--jsonl")
        .arg(&jsonl)
        .arg("--out")
        .arg(&out)
        .arg("--concurrency")
        .arg("4");
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait until some domains are journaled, then send the signal.
    let journal = out.join("journal.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let lines = std::fs::read_to_string(&journal)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "scan made no progress");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "scan ended before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("reap");
    let journaled = std::fs::read_to_string(&journal)
        .expect("journal")
        .lines()
        .count();
    assert!(
        journaled < expected.len(),
        "interrupted too late: {journaled} of {}",
        expected.len()
    );
    if signal == "-TERM" {
        // A graceful stop: in-flight domains finished, outputs closed, scan marked interrupted.
        assert_eq!(status.code(), Some(130));
        let state = std::fs::read_to_string(out.join("scan-state.json")).expect("state");
        assert!(state.contains("\"interrupted\""), "{state}");
        assert!(
            out.join("manifest.json").exists(),
            "outputs were not closed"
        );
    }

    let mut c = mxray();
    c.arg("--jsonl")
        .arg(&jsonl)
        .arg("--out")
        .arg(&out)
        .arg("--resume");
    run_ok(c);
    assert_eq!(verdicts(&jsonl), expected);
    let state = std::fs::read_to_string(out.join("scan-state.json")).expect("state");
    assert!(state.contains("\"complete\""), "{state}");
}

#[test]
fn killed_scan_resumes_without_loss_or_duplicates() {
    interrupted_scan_resumes("-KILL");
}

#[test]
fn terminated_scan_stops_cleanly_and_resumes() {
    interrupted_scan_resumes("-TERM");
}
