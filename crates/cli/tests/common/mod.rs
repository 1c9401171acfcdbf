//! Helpers shared by the binary's integration tests: run `mxray`, insist on success.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mxray_model::DomainVerdict;

/// A `mxray` command with RUST_LOG cleared (so stderr holds only what users see).
pub fn mxray() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mxray"));
    c.env_remove("RUST_LOG");
    c
}

/// Runs `mxray ARGS...` and returns its output, failing the test (with stderr) unless it
/// exited 0.
pub fn run_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = mxray();
    c.args(args);
    let out = c.output().expect("run mxray");
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `mxray scan --lab --quiet --timeout 2` with extra arguments (the tarpit case would otherwise
/// hold each scan for the 20 s greeting timeout).
pub fn lab_scan<I, S>(extra: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut args: Vec<std::ffi::OsString> = ["scan", "--lab", "--quiet", "--timeout", "2"]
        .iter()
        .map(Into::into)
        .collect();
    args.extend(extra.into_iter().map(|a| a.as_ref().to_owned()));
    run_ok(args)
}

/// `mxray lab --lab-dir DIR` running in its own process; killed when dropped.
pub struct RemoteLab(Child);

impl RemoteLab {
    /// Starts the lab on high ports and waits (at most 30 s) until it has written
    /// `DIR/lab.json`.
    pub fn start(lab_dir: &Path) -> RemoteLab {
        let child = Command::new(env!("CARGO_BIN_EXE_mxray"))
            .args(["lab", "--lab-ports", "high", "--lab-dir"])
            .arg(lab_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mxray lab");
        let lab = RemoteLab(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !lab_dir.join("lab.json").exists() {
            assert!(Instant::now() < deadline, "the lab did not write lab.json");
            std::thread::sleep(Duration::from_millis(100));
        }
        lab
    }
}

impl Drop for RemoteLab {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the verdicts of a scan (`got`, by domain) differ from the lab's (`want`), for a
/// readable failure message before `assert_eq!(got, want)`: one line per differing field,
/// found through the verdict's JSON form (so every field counts, without a list of them),
/// plus the domains missing from either side. Empty when `got == want`.
pub fn verdict_differences(
    got: &BTreeMap<String, DomainVerdict>,
    want: &BTreeMap<String, DomainVerdict>,
) -> String {
    let json = |v: &DomainVerdict| match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m,
        other => panic!("a verdict is not a JSON object: {other:?}"),
    };
    let mut out = Vec::new();
    for (domain, w) in want {
        match got.get(domain) {
            None => out.push(format!("{domain}: no domain record")),
            Some(g) if g == w => {}
            Some(g) => {
                let (g, w) = (json(g), json(w));
                for (field, wv) in &w {
                    let gv = g
                        .get(field)
                        .map_or_else(|| "(absent)".into(), |v| v.to_string());
                    if g.get(field) != Some(wv) {
                        out.push(format!("{domain}: {field} = {gv}, expected {wv}"));
                    }
                }
            }
        }
    }
    for domain in got.keys().filter(|d| !want.contains_key(*d)) {
        out.push(format!("{domain}: a domain record, but not a lab domain"));
    }
    if out.is_empty() {
        return String::new();
    }
    format!("{} differences:\n{}", out.len(), out.join("\n"))
}
