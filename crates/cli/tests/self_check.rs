//! The vantage self-check of `mxray scan`: an open port 25 is recorded in the `scan` record;
//! a blocked one stops the scan (exit 3) instead of producing "no STARTTLS" for every domain.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mxray_model::{Port25Check, Record};

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

#[test]
fn open_vantage_is_recorded_and_blocked_vantage_does_not_scan() {
    let (smtp, control) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("canary.key");
    let canary = Canary(
        Command::new(env!("CARGO_BIN_EXE_mxray"))
            .args(["canary", "serve", "--listen", &format!("127.0.0.1:{smtp}")])
            .args(["--control", &format!("127.0.0.1:{control}")])
            .arg("--control-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("canary"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", control)).is_err() {
        assert!(Instant::now() < deadline, "canary did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let scan = |target: u16, out: &str| {
        Command::new(env!("CARGO_BIN_EXE_mxray"))
            .args(["scan", "--lab", "--quiet", "--timeout", "2", "--jsonl", "-"])
            .args(["--self-check", &format!("127.0.0.1:{target}")])
            .args(["--self-check-expect", &format!("127.0.0.1:{control}")])
            .arg("--self-check-key")
            .arg(&key)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .expect("run")
    };

    let out = scan(smtp, "open");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scan_record = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .find_map(|r| match r {
            Record::Scan(s) => Some(s),
            _ => None,
        })
        .expect("scan record");
    assert_eq!(scan_record.port25_check, Port25Check::Open);
    assert!(scan_record.source_ip.is_some());

    let closed = free_port();
    let out = scan(closed, "blocked");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("port 25 is blocked"));
    assert!(
        out.stdout.is_empty(),
        "a blocked vantage must write no records"
    );
    drop(canary);
}
