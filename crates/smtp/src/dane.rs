//! DANE for SMTP (RFC 7672, RFC 6698, RFC 7671): match a presented chain against a TLSA RRset.
//!
//! - Only a DNSSEC-secure RRset counts; an insecure one gives `insecure`, a bogus answer
//!   (records or denial) `bogus`.
//! - Usable records (RFC 7672 §3.1): DANE-TA(2) and DANE-EE(3), selector 0 (certificate) or 1
//!   (SubjectPublicKeyInfo), matching type 0 (exact), 1 (SHA-256) or 2 (SHA-512), with data of
//!   the right length. PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (§3.1.3), as are unknown
//!   parameters. A secure RRset with no usable record gives `unusable`.
//! - DANE-EE(3) matches the leaf; names and validity dates are ignored (§3.1.1).
//! - DANE-TA(2) matches any certificate of the presented chain (or, for `2 0 0`, the full
//!   certificate in the record); the leaf must then chain to it with valid signatures and
//!   dates, and carry (in its subjectAltName) one of the reference names: the TLSA base name
//!   and the MX host name (§3.2.2). The trust anchor's own dates are not checked.
//! - A secure usable RRset with no TLS at all is `no_tls`; with TLS and no match, `mismatch`.

use mxray_model::{DaneVerdict, DnssecStatus, TlsaRecord};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256, Sha512};
use webpki::{EndEntityCert, KeyUsage};

/// What the DNS side knows about one host's TLSA RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaInput {
    /// The TLSA records.
    pub records: Vec<TlsaRecord>,
    /// DNSSEC status of the TLSA RRset (the weakest along the MX/address/TLSA path).
    pub dnssec: DnssecStatus,
    /// Names a DANE-TA chain may match: the MX host and the TLSA base name.
    pub base_names: Vec<String>,
}

/// The DANE result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaneOutcome {
    /// Verdict in the DESIGN.md vocabulary.
    pub verdict: DaneVerdict,
    /// The record that matched, when `verdict` is `valid`.
    pub matched: Option<TlsaRecord>,
}

impl DaneOutcome {
    fn verdict(verdict: DaneVerdict) -> Self {
        DaneOutcome {
            verdict,
            matched: None,
        }
    }

    /// `usage selector matching_type` of the matched record, as the record's `dane_match`.
    pub fn match_label(&self) -> Option<String> {
        self.matched
            .as_ref()
            .map(|r| format!("{} {} {}", r.usage, r.selector, r.matching_type))
    }
}

/// Whether a record is usable for SMTP (RFC 7672 §3.1) and its data well-formed.
pub fn is_usable(r: &TlsaRecord) -> bool {
    let Ok(data) = hex::decode(&r.data) else {
        return false;
    };
    let len_ok = match r.matching_type {
        0 => !data.is_empty(),
        1 => data.len() == 32,
        2 => data.len() == 64,
        _ => false,
    };
    matches!(r.usage, 2 | 3) && matches!(r.selector, 0 | 1) && len_ok
}

/// Verifies `chain` (leaf first, DER; empty when TLS did not complete) against `tlsa`, now.
pub fn verify(chain: &[CertificateDer<'_>], tlsa: &TlsaInput, sni: Option<&str>) -> DaneOutcome {
    verify_at(chain, tlsa, sni, UnixTime::now())
}

/// [`verify`] at a given time (for DANE-TA chain dates).
pub fn verify_at(
    chain: &[CertificateDer<'_>],
    tlsa: &TlsaInput,
    sni: Option<&str>,
    now: UnixTime,
) -> DaneOutcome {
    // A bogus answer (records or denial) is a failure whatever it contained (RFC 7672 §2.2:
    // the sender must not deliver, not even in the clear).
    if tlsa.dnssec == DnssecStatus::Bogus {
        return DaneOutcome::verdict(DaneVerdict::Bogus);
    }
    if tlsa.records.is_empty() {
        return DaneOutcome::verdict(DaneVerdict::None);
    }
    if tlsa.dnssec != DnssecStatus::Secure {
        return DaneOutcome::verdict(DaneVerdict::Insecure);
    }
    let usable: Vec<&TlsaRecord> = tlsa.records.iter().filter(|r| is_usable(r)).collect();
    if usable.is_empty() {
        return DaneOutcome::verdict(DaneVerdict::Unusable);
    }
    if chain.is_empty() {
        return DaneOutcome::verdict(DaneVerdict::NoTls);
    }
    // DANE-EE first: the cheapest and the most common.
    for r in usable.iter().filter(|r| r.usage == 3) {
        if matches_cert(r, &chain[0]) {
            return DaneOutcome {
                verdict: DaneVerdict::Valid,
                matched: Some((*r).clone()),
            };
        }
    }
    let mut names: Vec<&str> = tlsa.base_names.iter().map(String::as_str).collect();
    if let Some(s) = sni {
        names.push(s);
    }
    for r in usable.iter().filter(|r| r.usage == 2) {
        // Candidates: the presented certificates after the leaf, and for `2 0 0` the record's
        // own certificate (RFC 7671 §5.2.2 allows an anchor that is not presented).
        let mut anchors: Vec<CertificateDer<'_>> = chain
            .iter()
            .skip(1)
            .filter(|c| matches_cert(r, c))
            .cloned()
            .collect();
        if r.selector == 0 && r.matching_type == 0 {
            if let Ok(der) = hex::decode(&r.data) {
                anchors.push(CertificateDer::from(der));
            }
        }
        for anchor in &anchors {
            if chain_valid_to(chain, anchor, &names, now) {
                return DaneOutcome {
                    verdict: DaneVerdict::Valid,
                    matched: Some((*r).clone()),
                };
            }
        }
    }
    DaneOutcome::verdict(DaneVerdict::Mismatch)
}

/// The bytes a record's selector picks from a certificate (None when it does not parse).
fn selected(selector: u8, cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    match selector {
        0 => Some(cert.as_ref().to_vec()),
        1 => x509_parser::parse_x509_certificate(cert.as_ref())
            .ok()
            .map(|(_, c)| c.tbs_certificate.subject_pki.raw.to_vec()),
        _ => None,
    }
}

/// Whether record `r` matches certificate `cert` (selector and matching type applied).
pub fn matches_cert(r: &TlsaRecord, cert: &CertificateDer<'_>) -> bool {
    let Ok(want) = hex::decode(&r.data) else {
        return false;
    };
    let Some(sel) = selected(r.selector, cert) else {
        return false;
    };
    match r.matching_type {
        0 => sel == want,
        1 => Sha256::digest(&sel).as_slice() == want.as_slice(),
        2 => Sha512::digest(&sel).as_slice() == want.as_slice(),
        _ => false,
    }
}

fn chain_valid_to(
    chain: &[CertificateDer<'_>],
    anchor_der: &CertificateDer<'_>,
    names: &[&str],
    now: UnixTime,
) -> bool {
    let Ok(anchor) = webpki::anchor_from_trusted_cert(anchor_der) else {
        return false;
    };
    let Ok(leaf) = EndEntityCert::try_from(&chain[0]) else {
        return false;
    };
    let path = leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        std::slice::from_ref(&anchor),
        &chain[1..],
        now,
        KeyUsage::server_auth(),
        None,
        None,
    );
    if path.is_err() {
        return false;
    }
    names.iter().any(|n| {
        ServerName::try_from(*n)
            .map(|sn| leaf.verify_is_valid_for_subject_name(&sn).is_ok())
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(u: u8, s: u8, m: u8, data: &str) -> TlsaRecord {
        TlsaRecord {
            usage: u,
            selector: s,
            matching_type: m,
            data: data.into(),
        }
    }

    fn input(records: Vec<TlsaRecord>, dnssec: DnssecStatus) -> TlsaInput {
        TlsaInput {
            records,
            dnssec,
            base_names: vec!["mx.example".into()],
        }
    }

    const H32: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn usability_rules() {
        assert!(is_usable(&rec(3, 1, 1, H32)));
        assert!(is_usable(&rec(2, 0, 1, H32)));
        assert!(
            !is_usable(&rec(1, 1, 1, H32)),
            "PKIX-EE is unusable for SMTP"
        );
        assert!(
            !is_usable(&rec(0, 0, 1, H32)),
            "PKIX-TA is unusable for SMTP"
        );
        assert!(!is_usable(&rec(3, 2, 1, H32)), "unknown selector");
        assert!(!is_usable(&rec(3, 1, 3, H32)), "unknown matching type");
        assert!(!is_usable(&rec(3, 1, 1, "abcd")), "wrong digest length");
        assert!(!is_usable(&rec(3, 1, 2, H32)), "SHA-512 needs 64 bytes");
        assert!(!is_usable(&rec(3, 1, 1, "zz")), "not hex");
    }

    #[test]
    fn dnssec_status_decides_before_matching() {
        let recs = vec![rec(3, 1, 1, H32)];
        assert_eq!(
            verify(&[], &input(vec![], DnssecStatus::Secure), None).verdict,
            DaneVerdict::None
        );
        assert_eq!(
            verify(&[], &input(recs.clone(), DnssecStatus::Insecure), None).verdict,
            DaneVerdict::Insecure
        );
        assert_eq!(
            verify(&[], &input(recs.clone(), DnssecStatus::Bogus), None).verdict,
            DaneVerdict::Bogus
        );
        assert_eq!(
            verify(&[], &input(recs, DnssecStatus::Secure), None).verdict,
            DaneVerdict::NoTls
        );
        let unusable = vec![rec(1, 1, 1, H32), rec(0, 0, 1, H32)];
        assert_eq!(
            verify(&[], &input(unusable, DnssecStatus::Secure), None).verdict,
            DaneVerdict::Unusable
        );
    }
}
