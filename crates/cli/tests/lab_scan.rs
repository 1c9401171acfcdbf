//! End to end: `mxray scan --lab` reports, for every lab domain, the posture in the lab's table,
//! from the clean vantage and from the isp vantage (behind the stripping middlebox).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use mxray_lab::{LabOptions, PortChoice};
use mxray_model::{DomainRecord, DomainVerdict, Record};

fn scan(vantage: &str, epoch: u32, synthetic: usize) -> BTreeMap<String, DomainRecord> {
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
        .args(["--lab-domains", &synthetic.to_string()])
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

fn check(vantage: &str, epoch: u32, synthetic: usize) {
    let expected = mxray_lab::expected_postures(&LabOptions {
        ports: PortChoice::High,
        epoch,
        synthetic_domains: synthetic,
        ..LabOptions::default()
    })
    .expect("lab table");
    let want: BTreeMap<String, DomainVerdict> = mxray_lab::expected_verdicts(&expected, vantage);

    let got: BTreeMap<String, DomainVerdict> = scan(vantage, epoch, synthetic)
        .into_iter()
        .map(|(domain, rec)| (domain, rec.verdict()))
        .collect();
    // Every field of every domain's verdict, and a missing or extra domain record, in one
    // comparison; the message lists the differing fields first.
    assert_eq!(
        got,
        want,
        "vantage {vantage}, epoch {epoch}: {}",
        common::verdict_differences(&got, &want)
    );
}

#[test]
fn lab_scan_matches_expected_postures_clean_vantage() {
    check("clean", 0, 0);
}

#[test]
fn lab_scan_matches_expected_postures_isp_vantage() {
    check("isp", 0, 0);
}

#[test]
fn lab_scan_matches_expected_postures_epoch_1() {
    check("clean", 1, 0);
}

/// The synthetic population (`--lab-domains`: every pool profile, shared and distinct hosts)
/// is judged against its own expectations too, not only counted.
#[test]
fn lab_scan_of_synthetic_domains_matches_their_expected_postures() {
    check("clean", 0, 2000);
}

#[test]
fn lab_scan_of_synthetic_domains_matches_their_expected_postures_isp_vantage() {
    check("isp", 0, 2000);
}
