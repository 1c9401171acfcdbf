//! The lab in a process of its own (`mxray lab --lab-dir DIR`) scanned from another
//! (`mxray scan --lab-remote DIR`) reports the same postures as the lab's table: what the
//! benchmarks use to measure the scanner alone.

mod common;

use std::collections::BTreeMap;

use mxray_lab::{LabOptions, PortChoice};
use mxray_model::{DomainRecord, DomainVerdict, Record};

#[test]
fn a_lab_served_by_another_process_scans_like_the_built_in_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab_dir = dir.path().join("lab");
    let _lab = common::RemoteLab::start(&lab_dir);

    let out = common::run_ok([
        "scan".as_ref(),
        "--lab-remote".as_ref(),
        lab_dir.as_os_str(),
        "--quiet".as_ref(),
        "--jsonl".as_ref(),
        "-".as_ref(),
        "--out".as_ref(),
        dir.path().join("out").as_os_str(),
    ]);
    let mut got: BTreeMap<String, DomainRecord> = BTreeMap::new();
    let mut tarpit_probes = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match serde_json::from_str::<Record>(line) {
            Ok(Record::Domain(d)) => {
                got.insert(d.domain.clone(), d);
            }
            Ok(Record::SmtpProbe(p)) if p.sni.as_deref() == Some("mx.tarpit.lab.test") => {
                tarpit_probes.push(p);
            }
            _ => {}
        }
    }
    // A transient failure gets a second attempt late in the scan; both are recorded.
    let mut attempts: Vec<u8> = tarpit_probes.iter().map(|p| p.attempt).collect();
    attempts.sort();
    assert_eq!(attempts, vec![1, 2], "{tarpit_probes:?}");
    assert!(tarpit_probes
        .iter()
        .all(|p| p.error_class == Some(mxray_model::ProbeErrorClass::GreetingTimeout)));
    let tarpit = got.get("tarpit.lab.test").expect("tarpit domain");
    assert!(
        tarpit
            .errors
            .iter()
            .any(|e| e.starts_with("attempt 1: smtp:greeting_timeout")),
        "{:?}",
        tarpit.errors
    );
    let expected = mxray_lab::expected_postures(&LabOptions {
        ports: PortChoice::High,
        ..LabOptions::default()
    })
    .expect("lab table");
    let want = mxray_lab::expected_verdicts(&expected, "default");
    let got: BTreeMap<String, DomainVerdict> = got
        .iter()
        .map(|(domain, rec)| (domain.clone(), rec.verdict()))
        .collect();
    assert_eq!(got, want, "{}", common::verdict_differences(&got, &want));
}
