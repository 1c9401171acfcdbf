//! The RFC 8460 result types a validating sender would put in a TLS report for one probe.
//!
//! The view is that of a sender that enforces the receiver's policy: DANE when the host has a
//! DNSSEC-secure TLSA RRset, otherwise PKIX as MTA-STS requires. Whether the domain publishes
//! a policy at all (so whether anyone would really report) is for the domain-level verdict to
//! decide; the probe lists what *would* fail.

use mxray_model::{
    DaneVerdict, DnssecStatus, PkixError, ProbeErrorClass, ProbeResult, SmtpProbeRecord,
    TlsRptResult,
};

use crate::dane::TlsaInput;

/// RFC 8460 result types for a finished probe record, sorted and deduplicated.
pub fn for_probe(rec: &SmtpProbeRecord, tlsa: Option<&TlsaInput>) -> Vec<TlsRptResult> {
    let mut out = Vec::new();
    let dane_applies =
        tlsa.is_some_and(|t| !t.records.is_empty() && t.dnssec == DnssecStatus::Secure);
    if tlsa.is_some_and(|t| t.dnssec == DnssecStatus::Bogus) {
        out.push(TlsRptResult::DnssecInvalid);
    }
    let refused_starttls = matches!(
        rec.error_class,
        Some(ProbeErrorClass::Starttls4xx | ProbeErrorClass::Starttls5xx)
    );
    if rec.result == ProbeResult::NoStarttls || refused_starttls {
        out.push(TlsRptResult::StarttlsNotSupported);
    }
    let handshake_failed = matches!(
        rec.error_class,
        Some(
            ProbeErrorClass::TlsAlert
                | ProbeErrorClass::TlsIncompatible
                | ProbeErrorClass::TlsReset
                | ProbeErrorClass::TlsTimeout
                | ProbeErrorClass::TlsError
        )
    );
    if handshake_failed {
        out.push(TlsRptResult::ValidationFailure);
    }
    if dane_applies {
        if rec.dane == DaneVerdict::Mismatch {
            out.push(TlsRptResult::TlsaInvalid);
        }
    } else if rec.pkix_valid == Some(false) {
        out.push(
            rec.pkix_error
                .map_or(TlsRptResult::ValidationFailure, PkixError::tlsrpt_result),
        );
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::{examples, TlsaRecord};

    fn base() -> SmtpProbeRecord {
        let mut r = examples::smtp_probe();
        r.error_class = None;
        r.pkix_valid = Some(true);
        r.pkix_error = None;
        r.dane = DaneVerdict::None;
        r
    }

    fn secure_tlsa() -> TlsaInput {
        TlsaInput {
            records: vec![TlsaRecord {
                usage: 3,
                selector: 1,
                matching_type: 1,
                data: "00".into(),
            }],
            dnssec: DnssecStatus::Secure,
            base_names: vec!["mx1.example.com".into()],
        }
    }

    #[test]
    fn clean_probe_reports_nothing() {
        assert!(for_probe(&base(), None).is_empty());
    }

    #[test]
    fn pkix_failures_map_to_certificate_results() {
        for (err, want) in [
            (PkixError::Expired, TlsRptResult::CertificateExpired),
            (
                PkixError::NameMismatch,
                TlsRptResult::CertificateHostMismatch,
            ),
            (PkixError::SelfSigned, TlsRptResult::CertificateNotTrusted),
            (PkixError::BadSignature, TlsRptResult::ValidationFailure),
        ] {
            let mut r = base();
            r.pkix_valid = Some(false);
            r.pkix_error = Some(err);
            assert_eq!(for_probe(&r, None), vec![want]);
        }
    }

    #[test]
    fn dane_host_ignores_pkix_and_reports_tlsa_invalid() {
        let mut r = base();
        r.pkix_valid = Some(false);
        r.pkix_error = Some(PkixError::SelfSigned);
        r.dane = DaneVerdict::Mismatch;
        assert_eq!(
            for_probe(&r, Some(&secure_tlsa())),
            vec![TlsRptResult::TlsaInvalid]
        );
        r.dane = DaneVerdict::Valid;
        assert!(for_probe(&r, Some(&secure_tlsa())).is_empty());
    }

    #[test]
    fn no_starttls_and_bogus_dnssec() {
        let mut r = base();
        r.result = ProbeResult::NoStarttls;
        let mut t = secure_tlsa();
        t.dnssec = DnssecStatus::Bogus;
        assert_eq!(
            for_probe(&r, Some(&t)),
            vec![
                TlsRptResult::StarttlsNotSupported,
                TlsRptResult::DnssecInvalid
            ]
        );
    }
}
