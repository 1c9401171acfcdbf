//! `mxray report` on a two-vantage lab scan lists the stripped path, and nothing else, as a
//! vantage disagreement.

use std::process::Command;

#[test]
fn two_vantage_report_finds_exactly_the_stripped_path() {
    let dir = tempfile::tempdir().expect("tmp");
    for v in ["clean", "isp"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mxray"))
            .args([
                "scan",
                "--lab",
                "--quiet",
                "--timeout",
                "2",
                "--vantage",
                v,
                "--out",
            ])
            .arg(dir.path().join(v))
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mxray"))
        .args(["report", "--json"])
        .arg(dir.path().join("clean"))
        .arg(dir.path().join("isp"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let dis = v["disagreements"].as_array().expect("array");
    assert_eq!(dis.len(), 1, "{dis:?}");
    assert_eq!(dis[0]["sni"], "mx.stripped.lab.test");
    assert_eq!(dis[0]["with_tls"], serde_json::json!(["clean"]));
    assert_eq!(dis[0]["without_tls"][0][0], "isp");
    assert_eq!(
        dis[0]["without_tls"][0][1],
        serde_json::json!(["starttls_mangled"])
    );
    assert!(v["domains"]["clean"].as_u64().expect("count") > 20);
}

#[test]
fn lab_epochs_show_a_history_regression_for_exactly_the_regressed_host() {
    let dir = tempfile::tempdir().expect("tmp");
    for epoch in ["0", "1"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mxray"))
            .args([
                "scan",
                "--lab",
                "--quiet",
                "--timeout",
                "2",
                "--lab-epoch",
                epoch,
                "--out",
            ])
            .arg(dir.path().join(format!("epoch{epoch}")))
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Probe times are seconds: keep the two scans apart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_mxray"))
        .args(["report", "--json"])
        .arg(dir.path().join("epoch0"))
        .arg(dir.path().join("epoch1"))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let reg = v["regressions"].as_array().expect("array");
    assert_eq!(reg.len(), 1, "{reg:?}");
    assert_eq!(reg[0]["sni"], "mx.regress.lab.test");
    assert_eq!(reg[0]["vantage"], "default");
    assert_eq!(reg[0]["signals"], serde_json::json!(["starttls_mangled"]));
    // One vantage only: no disagreement.
    assert_eq!(v["disagreements"].as_array().map(Vec::len), Some(0));
}
