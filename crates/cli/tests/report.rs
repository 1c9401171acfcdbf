//! `mxray report` on lab scans: a two-vantage scan lists the stripped path, and nothing else,
//! as a vantage disagreement; two epochs show exactly the regressed host.

mod common;

use common::{lab_scan, run_ok};

fn report_json(dirs: &[std::path::PathBuf]) -> serde_json::Value {
    let mut args: Vec<std::ffi::OsString> = vec!["report".into(), "--json".into()];
    args.extend(dirs.iter().map(|d| d.as_os_str().to_owned()));
    serde_json::from_slice(&run_ok(args).stdout).expect("json")
}

#[test]
fn two_vantage_report_finds_exactly_the_stripped_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let dirs: Vec<_> = ["clean", "isp"]
        .iter()
        .map(|v| dir.path().join(v))
        .collect();
    for (v, d) in ["clean", "isp"].iter().zip(&dirs) {
        lab_scan([
            std::ffi::OsStr::new("--vantage"),
            v.as_ref(),
            "--out".as_ref(),
            d.as_os_str(),
        ]);
    }
    let v = report_json(&dirs);
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
    let dirs: Vec<_> = ["epoch0", "epoch1"]
        .iter()
        .map(|e| dir.path().join(e))
        .collect();
    for (epoch, d) in ["0", "1"].iter().zip(&dirs) {
        lab_scan([
            std::ffi::OsStr::new("--lab-epoch"),
            epoch.as_ref(),
            "--out".as_ref(),
            d.as_os_str(),
        ]);
        // Probe times are seconds: keep the two scans apart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let v = report_json(&dirs);
    let reg = v["regressions"].as_array().expect("array");
    assert_eq!(reg.len(), 1, "{reg:?}");
    assert_eq!(reg[0]["sni"], "mx.regress.lab.test");
    assert_eq!(reg[0]["vantage"], "default");
    assert_eq!(reg[0]["signals"], serde_json::json!(["starttls_mangled"]));
    // One vantage only: no disagreement.
    assert_eq!(v["disagreements"].as_array().map(Vec::len), Some(0));
}
