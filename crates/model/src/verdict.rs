//! The verdict of a `domain` record, on its own: what a correct scan must report for a domain,
//! without the record's identity (scan, vantage, time, name) and diagnostics.
//!
//! [`DomainVerdict`] is what the lab's oracle expects per domain and vantage, and what a test
//! compares a scan's [`DomainRecord`] with through [`DomainRecord::verdict`], in one `==`.

use serde::{Deserialize, Serialize};

use crate::records::DomainRecord;
use crate::vocab::*;

/// The verdict fields of a [`DomainRecord`], with the same names, types, order and JSON form
/// (DESIGN.md "Verdict vocabularies of `domain`").
///
/// Not `#[non_exhaustive]` on purpose: the lab spells out its expected verdicts with struct
/// literals, so a new field here must be given a value in every expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainVerdict {
    /// See [`DomainRecord::mx_kind`].
    pub mx_kind: MxKind,
    /// See [`DomainRecord::mx_dnssec`].
    pub mx_dnssec: DnssecStatus,
    /// See [`DomainRecord::mx_hosts`] (preference order).
    pub mx_hosts: Vec<String>,
    /// See [`DomainRecord::starttls`].
    pub starttls: StarttlsVerdict,
    /// See [`DomainRecord::pkix`].
    pub pkix: PkixVerdict,
    /// See [`DomainRecord::dane`].
    pub dane: DaneVerdict,
    /// See [`DomainRecord::mta_sts`].
    pub mta_sts: MtaStsStatus,
    /// See [`DomainRecord::mta_sts_error`].
    pub mta_sts_error: Option<MtaStsError>,
    /// See [`DomainRecord::mta_sts_compliant`].
    pub mta_sts_compliant: Option<bool>,
    /// See [`DomainRecord::tls_rpt`].
    pub tls_rpt: bool,
    /// See [`DomainRecord::tlsrpt_results`] (deduplicated, sorted).
    pub tlsrpt_results: Vec<TlsRptResult>,
    /// See [`DomainRecord::stripping_suspected`].
    pub stripping_suspected: bool,
    /// See [`DomainRecord::stripping_signals`] (deduplicated, sorted).
    pub stripping_signals: Vec<StrippingSignal>,
    /// See [`DomainRecord::tls_legacy`].
    #[serde(default)]
    pub tls_legacy: bool,
}

impl DomainRecord {
    /// The record's verdict fields as a [`DomainVerdict`].
    ///
    /// Written with an exhaustive destructuring of `DomainRecord` (no `..`): adding a field to
    /// the record does not compile until this function says whether it is a verdict field
    /// (copied into [`DomainVerdict`]) or not (bound to `_` here). Not verdict fields: the
    /// record's identity (`scan_id`, `vantage`, `scanned_at`, `domain`), raw observations the
    /// verdicts are drawn from (`mx_rcode`, `tls_rpt_rua`) and diagnostics (`errors`).
    pub fn verdict(&self) -> DomainVerdict {
        let DomainRecord {
            scan_id: _,
            vantage: _,
            scanned_at: _,
            domain: _,
            mx_kind,
            mx_dnssec,
            mx_rcode: _,
            mx_hosts,
            starttls,
            pkix,
            dane,
            mta_sts,
            mta_sts_error,
            mta_sts_compliant,
            tls_rpt,
            tls_rpt_rua: _,
            tlsrpt_results,
            stripping_suspected,
            stripping_signals,
            errors: _,
            tls_legacy,
        } = self;
        DomainVerdict {
            mx_kind: *mx_kind,
            mx_dnssec: *mx_dnssec,
            mx_hosts: mx_hosts.clone(),
            starttls: *starttls,
            pkix: *pkix,
            dane: *dane,
            mta_sts: *mta_sts,
            mta_sts_error: *mta_sts_error,
            mta_sts_compliant: *mta_sts_compliant,
            tls_rpt: *tls_rpt,
            tlsrpt_results: tlsrpt_results.clone(),
            stripping_suspected: *stripping_suspected,
            stripping_signals: stripping_signals.clone(),
            tls_legacy: *tls_legacy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples;

    #[test]
    fn verdict_of_the_example_record() {
        let rec = examples::domain();
        let want = DomainVerdict {
            mx_kind: MxKind::Mx,
            mx_dnssec: DnssecStatus::Secure,
            mx_hosts: vec!["mx1.example.com".into(), "mx2.example.com".into()],
            starttls: StarttlsVerdict::Some,
            pkix: PkixVerdict::All,
            dane: DaneVerdict::Partial,
            mta_sts: MtaStsStatus::FetchError,
            mta_sts_error: Some(MtaStsError::Redirect),
            mta_sts_compliant: Some(false),
            tls_rpt: true,
            tlsrpt_results: vec![
                TlsRptResult::StarttlsNotSupported,
                TlsRptResult::StsPolicyFetchError,
            ],
            stripping_suspected: true,
            stripping_signals: vec![StrippingSignal::StarttlsMangled],
            tls_legacy: true,
        };
        assert_eq!(rec.verdict(), want);
    }

    #[test]
    fn a_changed_verdict_field_changes_the_verdict_and_identity_does_not() {
        let rec = examples::domain();
        let mut other = rec.clone();
        other.tls_legacy = false;
        assert_ne!(other.verdict(), rec.verdict());
        let mut other = rec.clone();
        other.scan_id = uuid::Uuid::nil();
        other.vantage = "isp".into();
        other.errors.clear();
        other.tls_rpt_rua.clear();
        assert_eq!(other.verdict(), rec.verdict());
    }

    #[test]
    fn json_round_trip_and_the_record_field_names() {
        let rec = examples::domain();
        let v = rec.verdict();
        let text = serde_json::to_string(&v).expect("serialize");
        let back: DomainVerdict = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, v);
        // Every verdict key is a record key with the same JSON value.
        let verdict = serde_json::to_value(&v).expect("verdict json");
        let record = serde_json::to_value(&rec).expect("record json");
        let (Some(verdict), Some(record)) = (verdict.as_object(), record.as_object()) else {
            panic!("not JSON objects: {verdict} {record}");
        };
        assert_eq!(verdict.len(), 14);
        for (k, val) in verdict {
            assert_eq!(record.get(k), Some(val), "field {k}");
        }
    }
}
