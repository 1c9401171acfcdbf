//! `--source-ip` once per address family: a destination of a family without a source is
//! recorded with its own class and never dialled from an address the OS would pick.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mxray_model::{ProbeErrorClass, ProbeResult, Record};

fn probes(stdout: &[u8]) -> Vec<mxray_model::SmtpProbeRecord> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| match serde_json::from_str::<Record>(l) {
            Ok(Record::SmtpProbe(p)) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn an_ipv6_destination_with_only_an_ipv4_source_is_no_source_address() {
    // A listener on ::1 that counts connections: none may arrive.
    let listener = TcpListener::bind("[::1]:0").expect("bind ::1");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || loop {
        if listener.accept().is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(10));
    });

    let target = format!("[::1]:{port}");
    let out = common::run_ok([
        "smtp",
        &target,
        "--allow-private",
        "--source-ip",
        "127.0.0.1",
        "--timeout",
        "2",
        "--jsonl",
        "-",
    ]);
    let p = probes(&out.stdout);
    assert_eq!(p.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(p[0].result, ProbeResult::Error);
    assert_eq!(p[0].error_class, Some(ProbeErrorClass::NoSourceAddress));
    assert!(!p[0].reached_ehlo);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no packet to ::1");

    // With a source of each family, the same destination is dialled (and answered by nobody
    // SMTP-like: the listener only accepts, so the probe ends without a greeting).
    let out = common::run_ok([
        "smtp",
        &target,
        "--allow-private",
        "--source-ip",
        "127.0.0.1",
        "--source-ip",
        "::1",
        "--timeout",
        "1",
        "--jsonl",
        "-",
    ]);
    let p = probes(&out.stdout);
    assert_eq!(p.len(), 1);
    assert_ne!(p[0].error_class, Some(ProbeErrorClass::NoSourceAddress));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
