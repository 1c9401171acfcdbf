//! `mxray canary` with its control key, as a user runs it: `serve` writes a key (mode 0600)
//! and a signed expectation file, also with `--no-control`; `probe` with that file and key is
//! clean, with an altered file or another key it stops with a clear usage error; a probe
//! with a wrong key for a control endpoint is refused before any SMTP is sent. Loopback only.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Canary(Child);
impl Drop for Canary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `mxray canary serve` with these extra arguments and waits for `ready` to exist.
fn serve(smtp: u16, extra: &[&str], key: &Path, ready: &Path) -> Canary {
    let child = Command::new(env!("CARGO_BIN_EXE_mxray"))
        .args(["canary", "serve", "--listen", &format!("127.0.0.1:{smtp}")])
        .args(extra)
        .arg("--control-key")
        .arg(key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("canary");
    let canary = Canary(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() || std::fs::metadata(ready).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "canary did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    canary
}

fn probe(smtp: u16, expect: &str, key: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mxray"))
        .args(["--allow-private", "--timeout", "5", "canary", "probe"])
        .arg(format!("127.0.0.1:{smtp}"))
        .args(["--expect", expect, "--jsonl", "/dev/null"])
        .arg("--control-key")
        .arg(key)
        .output()
        .expect("run")
}

fn verdict(out: &Output) -> String {
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap_or_default();
    v["verdict"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn an_offline_expectation_file_is_signed_and_checked() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("canary.key");
    let file = dir.path().join("canary.json");
    let smtp = free_port();
    let _canary = serve(
        smtp,
        &["--no-control", "--expect-out", file.to_str().expect("path")],
        &key,
        &file,
    );
    let text = std::fs::read_to_string(&key).expect("key written");
    assert_eq!(text.trim().len(), 64, "one line of 64 hex characters");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
    }
    let signed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("file")).expect("json");
    assert_eq!(signed["hmac_sha256"].as_str().map(str::len), Some(64));

    let out = probe(smtp, file.to_str().expect("path"), &key);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(verdict(&out), "clean");

    // One reply altered in the file: refused before any probe.
    let altered = dir.path().join("altered.json");
    let body = std::fs::read_to_string(&file).expect("file");
    std::fs::write(&altered, body.replace("250-STARTTLS", "250-XXXXXXXA")).expect("write");
    let out = probe(smtp, altered.to_str().expect("path"), &key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not verify"), "{stderr}");
    assert!(out.stdout.is_empty(), "no probe, no report");

    // The right file with another canary's key.
    let other = dir.path().join("other.key");
    std::fs::write(&other, format!("{}\n", "ab".repeat(32))).expect("write");
    let out = probe(smtp, file.to_str().expect("path"), &other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not verify"), "{stderr}");
}

#[test]
fn a_wrong_key_for_the_control_endpoint_is_refused_before_probing() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("canary.key");
    let file = dir.path().join("canary.json");
    let (smtp, control) = (free_port(), free_port());
    let control_addr = format!("127.0.0.1:{control}");
    let _canary = serve(
        smtp,
        &[
            "--control",
            &control_addr,
            "--expect-out",
            file.to_str().expect("path"),
        ],
        &key,
        &file,
    );
    let out = probe(smtp, &control_addr, &key);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(verdict(&out), "clean");

    let other = dir.path().join("other.key");
    std::fs::write(&other, format!("{}\n", "cd".repeat(32))).expect("write");
    let out = probe(smtp, &control_addr, &other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the control key"), "{stderr}");
    assert!(out.stdout.is_empty(), "no probe, no report");
}
