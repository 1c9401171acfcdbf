//! Faults under the Parquet sink, with the real binary and the lab (issue 19):
//! - the disk fills up (a small tmpfs): the scan ends with a clear error, the journal is intact
//!   and, once there is space again, `--resume` completes the scan with the same results as
//!   an uninterrupted one;
//! - SIGKILL while the outputs are being finished and renamed into place leaves every table
//!   file whole (the old one or the new one, never a torn one) and no manifest claiming a
//!   complete result that is not.
//!
//! The tmpfs needs a mount namespace: the test re-runs itself under `unshare --mount
//! --map-root-user` (as root or, where user namespaces are allowed, as anyone) and fails if
//! that is not possible. Nothing leaves loopback: the lab serves everything.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mxray_model::{Record, RecordKind};

const SYNTHETIC: &str = "150";
const INSIDE: &str = "MXRAY_TEST_IN_MOUNT_NAMESPACE";

/// A lab scan with short timeouts (the lab's tarpit would otherwise hold it for 20 s).
fn lab_scan(out: &Path, jsonl: &Path) -> Command {
    let mut c = common::mxray();
    c.args([
        "scan",
        "--lab",
        "--quiet",
        "--lab-domains",
        SYNTHETIC,
        "--timeout",
        "2",
    ])
    .arg("--out")
    .arg(out)
    .arg("--jsonl")
    .arg(jsonl);
    c
}

fn output(mut c: Command) -> Output {
    c.output().expect("run mxray")
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Domain verdicts by domain (each domain exactly once) from a JSON lines output.
fn verdicts(jsonl: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(jsonl).expect("read jsonl");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Record::Domain(d) =
            serde_json::from_str::<Record>(line).unwrap_or_else(|e| panic!("{e}: {line}"))
        {
            let v = format!(
                "{} {} {} {} {}",
                d.starttls, d.pkix, d.dane, d.mta_sts, d.stripping_suspected
            );
            assert!(
                out.insert(d.domain.clone(), v).is_none(),
                "{} twice",
                d.domain
            );
        }
    }
    out
}

fn journal_lines(dir: &Path) -> usize {
    std::fs::read(dir.join("journal.jsonl"))
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Every complete line of the journal is a JSON object (a torn last line is allowed: resume
/// cuts it off); returns the number of complete lines.
fn assert_journal_intact(dir: &Path) -> usize {
    let bytes = std::fs::read(dir.join("journal.jsonl")).expect("the journal survives");
    let text = String::from_utf8_lossy(&bytes);
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    let mut n = 0;
    for line in complete.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("journal line {n}: {e}"));
        assert!(v.get("domain").is_some(), "journal line {n} is not a unit");
        n += 1;
    }
    n
}

/// Row counts of the table files present in `dir`, each read whole (a torn file fails here).
fn table_rows(dir: &Path) -> BTreeMap<&'static str, usize> {
    let mut rows = BTreeMap::new();
    for kind in RecordKind::ALL {
        let path = dir.join(format!("{}.parquet", kind.table()));
        if path.exists() {
            let records = mxray_store::read_table_file(&path, *kind)
                .unwrap_or_else(|e| panic!("{} is torn: {e}", path.display()));
            rows.insert(kind.table(), records.len());
        }
    }
    rows
}

/// Waits until the scan writing to `dir` has journaled `n` domains (or ended).
fn wait_for_journal(child: &mut Child, dir: &Path, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if journal_lines(dir) >= n {
            return true;
        }
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "the scan made no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success(), "kill {sig}");
}

/// Runs this test again inside a private mount namespace; true when already inside.
fn in_mount_namespace(test: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("unshare")
        .args(["--mount", "--map-root-user", "--"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(INSIDE, "1")
        .output()
        .expect("run unshare (util-linux)");
    assert!(
        out.status.success(),
        "{test} inside a mount namespace failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the namespaced run did not run {test}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    false
}

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(ok.success(), "mount tmpfs on {}", dir.display());
        Tmpfs(dir.to_owned())
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount");
        assert!(ok.success(), "remount tmpfs");
    }

    /// Fills the file system: writes a file until the kernel says it is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn assert_disk_full_error(out: &Output) {
    assert!(!out.status.success(), "the scan must fail on a full disk");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mxray: error:") && err.contains("No space left on device"),
        "{err}"
    );
    // The cause is said once, not once per layer of the error chain.
    let line = err
        .lines()
        .find(|l| l.starts_with("mxray: error:"))
        .unwrap_or_default();
    assert_eq!(line.matches("No space left on device").count(), 1, "{err}");
}

/// Resumes the scan in `out` (on a disk with room again) and checks it now equals the
/// uninterrupted scan: same verdicts, each domain once, a manifest, every table complete.
fn resume_and_compare(out: &Path, jsonl: &Path, expected: &BTreeMap<String, String>) {
    let mut c = lab_scan(out, jsonl);
    c.arg("--resume");
    let o = output(c);
    assert_ok(&o, "--resume");
    assert_eq!(&verdicts(jsonl), expected);
    assert!(out.join("manifest.json").exists());
    let rows = table_rows(out);
    assert_eq!(rows.get("domains"), Some(&expected.len()), "{rows:?}");
}

#[test]
fn full_disk_ends_the_scan_clearly_and_resume_completes_it() {
    if !in_mount_namespace("full_disk_ends_the_scan_clearly_and_resume_completes_it") {
        return;
    }
    let work = tempfile::tempdir().expect("tmp");
    let expected_jsonl = work.path().join("expected.jsonl");
    assert_ok(
        &output(lab_scan(&work.path().join("expected"), &expected_jsonl)),
        "uninterrupted scan",
    );
    let expected = verdicts(&expected_jsonl);
    let domains = expected.len();

    // 1. Too small from the start: the journal itself cannot grow.
    let mnt = work.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let fs = Tmpfs::mount(&mnt, "256k");
    let (out, jsonl) = (mnt.join("out"), work.path().join("small.jsonl"));
    let o = output(lab_scan(&out, &jsonl));
    assert_disk_full_error(&o);
    let journaled = assert_journal_intact(&out);
    assert!(journaled < domains, "{journaled} of {domains}");
    assert!(!out.join("manifest.json").exists(), "an incomplete result");
    fs.resize("64m");
    resume_and_compare(&out, &jsonl, &expected);
    drop(fs);

    // 2. The disk fills up after every domain is journaled, while the Parquet files are
    //    being finished: the scan is stopped (SIGSTOP) right after its last journal line, the
    //    disk filled, and the scan continued. A scan that got past its Parquet files before
    //    the stop is tried again.
    let mut hit = false;
    for attempt in 0..6 {
        let mnt = work.path().join(format!("late{attempt}"));
        std::fs::create_dir(&mnt).expect("mkdir");
        let fs = Tmpfs::mount(&mnt, "64m");
        let (out, jsonl) = (
            mnt.join("out"),
            work.path().join(format!("late{attempt}.jsonl")),
        );
        let mut child = lab_scan(&out, &jsonl)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        if !wait_for_journal(&mut child, &out, domains) {
            let _ = child.wait();
            continue;
        }
        signal(&child, "-STOP");
        let filler = fs.fill();
        signal(&child, "-CONT");
        let o = child.wait_with_output().expect("wait");
        if o.status.success() {
            continue; // it had finished its files before the stop
        }
        assert_disk_full_error(&o);
        assert_eq!(assert_journal_intact(&out), domains);
        assert!(!out.join("manifest.json").exists(), "an incomplete result");
        std::fs::remove_file(filler).expect("free the space");
        resume_and_compare(&out, &jsonl, &expected);
        hit = true;
        break;
    }
    assert!(
        hit,
        "the disk never filled while the Parquet files were written"
    );
}

#[test]
fn sigkill_while_outputs_are_renamed_leaves_no_torn_file() {
    let work = tempfile::tempdir().expect("tmp");
    let expected_jsonl = work.path().join("expected.jsonl");
    assert_ok(
        &output(lab_scan(&work.path().join("expected"), &expected_jsonl)),
        "uninterrupted scan",
    );
    let expected = verdicts(&expected_jsonl);
    let domains = expected.len();

    // The "old" outputs: a scan stopped with SIGTERM after 20 domains closes its files.
    let old = work.path().join("old");
    let mut child = lab_scan(&old, &work.path().join("old.jsonl"))
        .arg("--concurrency")
        .arg("4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(wait_for_journal(&mut child, &old, 20), "ended too early");
    signal(&child, "-TERM");
    assert_eq!(child.wait().expect("wait").code(), Some(130));
    assert!(old.join("manifest.json").exists());
    let old_digests = digests(&old);
    assert_eq!(old_digests.len(), RecordKind::ALL.len());

    // Resume copies of it, killed at different moments after their last journal line, that
    // is while the seven table files are finished, renamed and the manifest written.
    let mut killed_before_manifest = 0;
    let mut new_files_seen = 0;
    for (i, delay_ms) in [0u64, 2, 5, 10, 20, 40].into_iter().enumerate() {
        let dir = work.path().join(format!("resume{i}"));
        copy_dir(&old, &dir);
        let jsonl = work.path().join(format!("resume{i}.jsonl"));
        let mut c = lab_scan(&dir, &jsonl);
        c.arg("--resume");
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        assert!(
            wait_for_journal(&mut child, &dir, domains),
            "resume ended early"
        );
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Every table file there reads whole (table_rows panics on a torn one), and is the
        // old file or a new one.
        let rows = table_rows(&dir);
        assert_eq!(
            rows.len(),
            RecordKind::ALL.len(),
            "a table file went missing"
        );
        let now = digests(&dir);
        new_files_seen += now
            .iter()
            .filter(|(t, d)| old_digests.get(*t) != Some(d))
            .count();
        // A manifest is there only over the files it describes: the resumed result, whole.
        match mxray_store::Manifest::read(&dir) {
            Ok(m) => {
                for (table, entry) in &m.tables {
                    assert_eq!(now.get(table.as_str()), Some(&entry.sha256), "{table}");
                    assert_eq!(
                        rows.get(table.as_str()).map(|&n| n as u64),
                        Some(entry.rows)
                    );
                }
                assert_eq!(&verdicts(&jsonl), &expected);
            }
            Err(_) => {
                assert!(
                    !dir.join("manifest.json").exists(),
                    "an unreadable manifest"
                );
                killed_before_manifest += 1;
                resume_and_compare(&dir, &jsonl, &expected);
            }
        }
    }
    assert!(
        killed_before_manifest > 0,
        "no kill landed before the manifest"
    );
    assert!(
        new_files_seen > 0,
        "no kill landed after a file was renamed"
    );
}

/// SHA-256 of every table file in `dir`, by table.
fn digests(dir: &Path) -> BTreeMap<&'static str, String> {
    RecordKind::ALL
        .iter()
        .filter_map(|k| {
            let path = dir.join(format!("{}.parquet", k.table()));
            path.exists().then(|| {
                let (_, sha) = mxray_store::file_digest(&path).expect("digest");
                (k.table(), sha)
            })
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}
