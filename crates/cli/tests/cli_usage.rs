//! Bad input on the command line: one-line error naming the offending value, exit status 2,
//! never a panic.

use std::process::{Command, Output};

fn mxray(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mxray"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run mxray")
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let out = mxray(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: stderr lacks {needle:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
}

#[test]
fn unknown_flag() {
    assert_usage_error(&["scan", "--frobnicate"], "--frobnicate");
}

#[test]
fn unreadable_config_file() {
    assert_usage_error(
        &["dns", "example.com", "--config", "/nonexistent/mxray.toml"],
        "/nonexistent/mxray.toml",
    );
}

#[test]
fn invalid_clickhouse_url() {
    assert_usage_error(&["migrate", "--clickhouse", "not a url"], "not a url");
}

#[test]
fn out_of_range_values() {
    assert_usage_error(&["smtp", "127.0.0.1", "--rate", "0"], "--rate 0");
    assert_usage_error(&["smtp", "127.0.0.1", "--timeout", "-3"], "--timeout -3");
    assert_usage_error(&["scan", "--lab", "--shard", "5/2"], "5/2");
    assert_usage_error(&["scan", "--lab", "--smtp-port", "70000"], "70000");
    assert_usage_error(
        &["smtp", "127.0.0.1", "--per-prefix-rate", "0"],
        "--per-prefix-rate 0",
    );
    assert_usage_error(
        &["smtp", "127.0.0.1", "--send-starttls-override", "sometimes"],
        "sometimes",
    );
    // One source address per family: a second IPv4 one is a mistake, not a choice.
    assert_usage_error(
        &[
            "smtp",
            "127.0.0.1",
            "--source-ip",
            "127.0.0.2",
            "--source-ip",
            "127.0.0.3",
        ],
        "one per address family",
    );
    assert_usage_error(
        &["dns", "x.example", "--resolver", "resolver.example"],
        "resolver.example",
    );
}

#[test]
fn unreadable_ca_and_blocklist_files() {
    assert_usage_error(
        &["smtp", "127.0.0.1", "--ca-file", "/nonexistent/ca.pem"],
        "/nonexistent/ca.pem",
    );
    let dir = tempfile::tempdir().expect("tmp");
    let bl = dir.path().join("block.txt");
    std::fs::write(&bl, "10.0.0.0/8\nbogus-entry\n").expect("write");
    assert_usage_error(
        &[
            "smtp",
            "127.0.0.1",
            "--blocklist",
            bl.to_str().expect("utf8"),
        ],
        "bogus-entry",
    );
}

#[test]
fn canary_probes_need_a_readable_control_key_before_anything_is_sent() {
    // Port 9 on loopback: nothing is sent, since the key is checked first.
    for action in ["probe", "check"] {
        assert_usage_error(
            &["canary", action, "127.0.0.1:9", "--expect", "127.0.0.1:9"],
            "--control-key FILE is required",
        );
        assert_usage_error(
            &[
                "canary",
                action,
                "127.0.0.1:9",
                "--expect",
                "127.0.0.1:9",
                "--control-key",
                "/nonexistent/canary.key",
            ],
            "/nonexistent/canary.key",
        );
    }
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not a key\n").expect("write");
    let bad = bad.to_str().expect("utf-8 path");
    assert_usage_error(
        &[
            "canary",
            "probe",
            "127.0.0.1:9",
            "--expect",
            "127.0.0.1:9",
            "--control-key",
            bad,
        ],
        "64 hex characters",
    );
    assert_usage_error(
        &[
            "scan",
            "--lab",
            "--self-check",
            "127.0.0.1:9",
            "--self-check-expect",
            "127.0.0.1:9",
        ],
        "--self-check-key FILE is required",
    );
}

#[test]
fn help_and_version_succeed() {
    let out = mxray(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "scan", "dns", "smtp", "mta-sts", "migrate", "load", "report", "lab",
    ] {
        assert!(help.contains(sub), "help lacks {sub}");
    }
    let out = mxray(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}
