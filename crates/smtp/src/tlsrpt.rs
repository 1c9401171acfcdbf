//! The RFC 8460 result types a validating sender would put in a TLS report for one probe.
//!
//! The view is that of a sender that enforces the receiver's policy: DANE when DANE applies
//! to the host (the caller says so: for a probe record, the host's own TLSA RRset is secure;
//! for a domain, its MX RRset must be secure too), otherwise PKIX as MTA-STS requires. Whether
//! the domain publishes a policy at all (so whether anyone would really report) is for the
//! domain-level verdict to decide; this lists what *would* fail.
//!
//! A session that never reached EHLO reports nothing (an unreachable server is not a TLS
//! failure), and neither does a handshake that failed on mxray's own engine limits
//! (`tls_incompatible`): a sender with another TLS library may well succeed.

use mxray_model::{
    DaneVerdict, PkixError, ProbeErrorClass, ProbeResult, SmtpProbeRecord, TlsRptResult,
};

/// Whether the probe's own DANE result says DANE applies to the host (a secure TLSA RRset).
pub fn host_dane_applies(rec: &SmtpProbeRecord) -> bool {
    matches!(
        rec.dane,
        DaneVerdict::Valid
            | DaneVerdict::Mismatch
            | DaneVerdict::NoTls
            | DaneVerdict::Unusable
            | DaneVerdict::Unverified
    )
}

/// RFC 8460 result types for a finished probe record, sorted and deduplicated.
pub fn for_probe(rec: &SmtpProbeRecord, dane_applies: bool) -> Vec<TlsRptResult> {
    let mut out = Vec::new();
    if rec.dane == DaneVerdict::Bogus {
        out.push(TlsRptResult::DnssecInvalid);
    }
    if !rec.reached_ehlo {
        return out;
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
    } else if rec.result == ProbeResult::StarttlsOk && rec.pkix_valid == Some(false) {
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
    use mxray_model::examples;

    fn base() -> SmtpProbeRecord {
        let mut r = examples::smtp_probe();
        r.error_class = None;
        r.pkix_valid = Some(true);
        r.pkix_error = None;
        r.dane = DaneVerdict::None;
        r.reached_ehlo = true;
        r
    }

    #[test]
    fn clean_probe_reports_nothing() {
        assert!(for_probe(&base(), false).is_empty());
    }

    #[test]
    fn rfc8460_unreachable_servers_and_engine_limits_are_not_tls_failures() {
        let mut r = base();
        r.result = ProbeResult::Error;
        r.reached_ehlo = false;
        r.error_class = Some(ProbeErrorClass::Greeting5xx);
        r.pkix_valid = None;
        assert!(for_probe(&r, true).is_empty());
        let mut r = base();
        r.result = ProbeResult::Error;
        r.error_class = Some(ProbeErrorClass::TlsIncompatible);
        r.pkix_valid = None;
        assert!(for_probe(&r, false).is_empty());
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
            assert_eq!(for_probe(&r, false), vec![want]);
        }
    }

    #[test]
    fn dane_host_ignores_pkix_and_reports_tlsa_invalid() {
        let mut r = base();
        r.pkix_valid = Some(false);
        r.pkix_error = Some(PkixError::SelfSigned);
        r.dane = DaneVerdict::Mismatch;
        assert_eq!(for_probe(&r, true), vec![TlsRptResult::TlsaInvalid]);
        r.dane = DaneVerdict::Valid;
        assert!(for_probe(&r, true).is_empty());
    }

    #[test]
    fn no_starttls_and_bogus_dnssec() {
        let mut r = base();
        r.result = ProbeResult::NoStarttls;
        r.dane = DaneVerdict::Bogus;
        assert_eq!(
            for_probe(&r, false),
            vec![
                TlsRptResult::StarttlsNotSupported,
                TlsRptResult::DnssecInvalid
            ]
        );
    }
}
