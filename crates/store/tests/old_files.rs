//! Files written by an older mxray stay readable with what the newer fields mean.
//!
//! `fixtures/smtp_probes-schema2.parquet` is the example dataset's probe table as schema 2
//! wrote it (before `reached_ehlo` and the later columns).

use std::path::Path;

use mxray_model::{ProbeResult, Record, RecordKind};
use mxray_store::read_table_file;

#[test]
fn schema_2_probes_read_with_reached_ehlo_derived_from_their_result() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_probes-schema2.parquet");
    let records = read_table_file(&path, RecordKind::SmtpProbe).expect("a schema 2 file reads");
    let probes: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::SmtpProbe(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(!probes.is_empty());
    let mut unanswered = 0;
    for p in &probes {
        let expected = p.result != ProbeResult::Error || p.starttls_advertised;
        assert_eq!(p.reached_ehlo, expected, "{} {:?}", p.ip, p.result);
        unanswered += usize::from(!p.reached_ehlo);
    }
    // Both kinds are in the file: sessions that got through EHLO and some that did not.
    assert!(
        unanswered > 0 && unanswered < probes.len(),
        "{unanswered} of {}",
        probes.len()
    );
}
