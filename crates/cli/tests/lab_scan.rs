//! End to end: `mxray scan --lab` reports, for every lab domain, the posture in the lab's table,
//! from the clean vantage and from the isp vantage (behind the stripping middlebox).

use std::collections::BTreeMap;
use std::process::Command;

use mxray_lab::{LabOptions, PortChoice};
use mxray_model::{DomainRecord, Record};

fn scan(vantage: &str, epoch: u32) -> BTreeMap<String, DomainRecord> {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_mxray"))
        .args([
            "scan",
            "--lab",
            "--quiet",
            "--jsonl",
            "-",
            "--vantage",
            vantage,
        ])
        .args(["--lab-epoch", &epoch.to_string()])
        // The tarpit case would hold each scan for the 20 s greeting timeout.
        .args(["--timeout", "3"])
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .expect("run mxray");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mxray scan --lab failed: {stderr}");
    let mut domains = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let rec: Record = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Record::Domain(d) = rec {
            assert_eq!(d.vantage, vantage);
            domains.insert(d.domain.clone(), d);
        }
    }
    domains
}

fn check(vantage: &str, epoch: u32) {
    let expected = mxray_lab::expected_postures(&LabOptions {
        ports: PortChoice::High,
        epoch,
        ..LabOptions::default()
    })
    .expect("lab table");

    let got = scan(vantage, epoch);
    let mut wrong = Vec::new();
    for e in &expected {
        let want = e.for_vantage(vantage);
        let Some(d) = got.get(&e.domain) else {
            wrong.push(format!("{}: no domain record", e.domain));
            continue;
        };
        let pairs = [
            ("mx_kind", d.mx_kind.to_string(), want.mx_kind.to_string()),
            (
                "mx_dnssec",
                d.mx_dnssec.to_string(),
                want.mx_dnssec.to_string(),
            ),
            (
                "mx_hosts",
                format!("{:?}", d.mx_hosts),
                format!("{:?}", want.mx_hosts),
            ),
            (
                "starttls",
                d.starttls.to_string(),
                want.starttls.to_string(),
            ),
            ("pkix", d.pkix.to_string(), want.pkix.to_string()),
            ("dane", d.dane.to_string(), want.dane.to_string()),
            ("mta_sts", d.mta_sts.to_string(), want.mta_sts.to_string()),
            (
                "mta_sts_error",
                format!("{:?}", d.mta_sts_error),
                format!("{:?}", want.mta_sts_error),
            ),
            (
                "mta_sts_compliant",
                format!("{:?}", d.mta_sts_compliant),
                format!("{:?}", want.mta_sts_compliant),
            ),
            ("tls_rpt", d.tls_rpt.to_string(), want.tls_rpt.to_string()),
            (
                "tlsrpt_results",
                format!("{:?}", d.tlsrpt_results),
                format!("{:?}", want.tlsrpt_results),
            ),
            (
                "stripping_suspected",
                d.stripping_suspected.to_string(),
                want.stripping_suspected.to_string(),
            ),
            (
                "stripping_signals",
                format!("{:?}", d.stripping_signals),
                format!("{:?}", want.stripping_signals),
            ),
            (
                "tls_legacy",
                d.tls_legacy.to_string(),
                want.tls_legacy.to_string(),
            ),
        ];
        for (field, have, should) in pairs {
            if have != should {
                wrong.push(format!(
                    "{} ({}): {field} = {have}, expected {should}",
                    e.domain, e.case
                ));
            }
        }
    }
    assert!(
        got.len() >= expected.len(),
        "{} domain records for {} lab domains",
        got.len(),
        expected.len()
    );
    assert!(
        wrong.is_empty(),
        "vantage {vantage}: {} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn lab_scan_matches_expected_postures_clean_vantage() {
    check("clean", 0);
}

#[test]
fn lab_scan_matches_expected_postures_isp_vantage() {
    check("isp", 0);
}

#[test]
fn lab_scan_matches_expected_postures_epoch_1() {
    check("clean", 1);
}
