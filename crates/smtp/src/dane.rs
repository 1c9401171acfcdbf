//! DANE for SMTP (RFC 7672, RFC 6698, RFC 7671): match a presented chain against a TLSA RRset.
//!
//! The input is about one host and one connection: the TLSA RRset of the host and the DNSSEC
//! status of what leads to it from the host (the address RRset of the connection's family and
//! the TLSA RRset itself). Whether the *domain's* MX RRset is secure is not an input: a probe is
//! shared by every domain using the address, and that judgement is the domain verdict's.
//!
//! - Only a DNSSEC-secure RRset counts; an insecure one gives `insecure`, a bogus answer
//!   (records or denial), or a failed TLSA lookup for a host whose addresses are secure,
//!   `bogus` (RFC 7672 §2.2: the sender must not deliver, not even in the clear).
//! - Usable records (RFC 7672 §3.1): DANE-TA(2) and DANE-EE(3), selector 0 (certificate) or 1
//!   (SubjectPublicKeyInfo), matching type 0 (exact), 1 (SHA-256) or 2 (SHA-512), with data of
//!   the right length. PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (§3.1.3), as are unknown
//!   parameters.
//! - A session that never reached EHLO checked nothing: `unverified` (or `unusable` when the
//!   RRset has no usable record, which DNS alone tells).
//! - A secure non-empty RRset makes TLS mandatory even when no record is usable (RFC 7672
//!   §2.2): no STARTTLS or no completed handshake is `no_tls`; with TLS and no usable record,
//!   `unusable`.
//! - DANE-EE(3) matches the leaf; names and validity dates are ignored (§3.1.1).
//! - DANE-TA(2) matches a certificate of the presented chain after the leaf, a full
//!   certificate given in the record (`2 0 0`), or a bare public key given in the record
//!   (`2 1 0`) that signed the top certificate of the chain (RFC 7671 §5.2.3: the anchor is
//!   then named by that certificate's issuer). The leaf must chain to the anchor with valid
//!   signatures and dates, and carry one of the reference names (§3.2.2): the TLSA base
//!   domain, the MX host name and the names of a secure CNAME expansion. A certificate without
//!   DNS subjectAltNames is matched on its subject CN instead (§3.2.2). The anchor's own dates
//!   are not checked.
//! - With TLS and no match: `mismatch`.

use mxray_model::{DaneVerdict, DnssecStatus, TlsaRecord};
use rustls::pki_types::{CertificateDer, Der, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256, Sha512};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::extensions::GeneralName;

/// What the DNS side knows about one host's TLSA RRset, for connections of one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaInput {
    /// The TLSA records (empty for a bogus denial or a failed lookup).
    pub records: Vec<TlsaRecord>,
    /// The weaker of the TLSA RRset's status and that of the address RRset the connection's
    /// address came from; `bogus` also for a failed TLSA lookup of a host with secure
    /// addresses.
    pub dnssec: DnssecStatus,
    /// Reference names a DANE-TA chain may match: the TLSA base domain first, then the MX host
    /// name and the names of a secure CNAME expansion.
    pub base_names: Vec<String>,
}

impl TlsaInput {
    /// A secure, non-empty RRset: DANE applies to this host, TLS is mandatory.
    pub fn requires_tls(&self) -> bool {
        self.dnssec == DnssecStatus::Secure && !self.records.is_empty()
    }
}

/// How far the session got, as far as DANE cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session<'a> {
    /// No successful EHLO/HELO: nothing about the host's TLS was seen.
    NotReached,
    /// EHLO done, but no STARTTLS offered or no completed handshake.
    NoTls,
    /// The handshake completed with this chain (leaf first).
    Tls(&'a [CertificateDer<'a>]),
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

/// Verifies a session against `tlsa`, now.
pub fn verify(session: Session<'_>, tlsa: &TlsaInput) -> DaneOutcome {
    verify_at(session, tlsa, UnixTime::now())
}

/// [`verify`] at a given time (for DANE-TA chain dates).
pub fn verify_at(session: Session<'_>, tlsa: &TlsaInput, now: UnixTime) -> DaneOutcome {
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
    let chain = match session {
        Session::NotReached if usable.is_empty() => {
            return DaneOutcome::verdict(DaneVerdict::Unusable)
        }
        Session::NotReached => return DaneOutcome::verdict(DaneVerdict::Unverified),
        Session::NoTls => return DaneOutcome::verdict(DaneVerdict::NoTls),
        Session::Tls(_) if usable.is_empty() => return DaneOutcome::verdict(DaneVerdict::Unusable),
        Session::Tls(chain) => chain,
    };
    let Some(leaf) = chain.first() else {
        return DaneOutcome::verdict(DaneVerdict::Mismatch);
    };
    // DANE-EE first: the cheapest and the most common.
    for r in usable.iter().filter(|r| r.usage == 3) {
        if matches_cert(r, leaf) {
            return DaneOutcome {
                verdict: DaneVerdict::Valid,
                matched: Some((*r).clone()),
            };
        }
    }
    let names: Vec<&str> = tlsa.base_names.iter().map(String::as_str).collect();
    let leaf_names_ok = names_match(leaf, &names);
    for r in usable.iter().filter(|r| r.usage == 2) {
        if !leaf_names_ok {
            break;
        }
        if ta_record_validates(r, chain, now) {
            return DaneOutcome {
                verdict: DaneVerdict::Valid,
                matched: Some((*r).clone()),
            };
        }
    }
    DaneOutcome::verdict(DaneVerdict::Mismatch)
}

/// Whether DANE-TA record `r` is a trust anchor the chain validates to.
fn ta_record_validates(r: &TlsaRecord, chain: &[CertificateDer<'_>], now: UnixTime) -> bool {
    // Presented certificates after the leaf that the record matches (RFC 7671 §5.2.2).
    for c in chain.iter().skip(1).filter(|c| matches_cert(r, c)) {
        if let Ok(anchor) = webpki::anchor_from_trusted_cert(c) {
            if path_valid(chain, &anchor, now) {
                return true;
            }
        }
    }
    // An anchor given in full in DNS and not presented (RFC 7671 §5.2.3).
    if r.matching_type != 0 {
        return false;
    }
    let Ok(data) = hex::decode(&r.data) else {
        return false;
    };
    match r.selector {
        0 => {
            let der = CertificateDer::from(data);
            webpki::anchor_from_trusted_cert(&der)
                .map(|anchor| path_valid(chain, &anchor, now))
                .unwrap_or(false)
        }
        1 => {
            // A bare key: the anchor is whatever issued the top certificate with this key.
            let Some(top) = chain.last() else {
                return false;
            };
            let Ok((_, top_cert)) = x509_parser::parse_x509_certificate(top.as_ref()) else {
                return false;
            };
            let (Some(subject), Some(spki)) =
                (der_value(top_cert.issuer().as_raw()), der_value(&data))
            else {
                return false;
            };
            let anchor = TrustAnchor {
                subject: Der::from_slice(subject),
                subject_public_key_info: Der::from_slice(spki),
                name_constraints: None,
            };
            path_valid(chain, &anchor, now)
        }
        _ => false,
    }
}

/// The contents of a DER TLV (tag and length removed), when `der` is exactly one TLV.
fn der_value(der: &[u8]) -> Option<&[u8]> {
    let (&_tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() == len).then_some(rest)
}

/// Signatures and dates from the leaf through the presented intermediates to `anchor`.
fn path_valid(chain: &[CertificateDer<'_>], anchor: &TrustAnchor<'_>, now: UnixTime) -> bool {
    let Some(leaf) = chain.first() else {
        return false;
    };
    let Ok(leaf) = EndEntityCert::try_from(leaf) else {
        return false;
    };
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        std::slice::from_ref(anchor),
        &chain[1..],
        now,
        KeyUsage::server_auth(),
        None,
        None,
    )
    .is_ok()
}

/// Whether the certificate is for one of `names` (RFC 7672 §3.2.2 with RFC 6125 wildcards):
/// its DNS subjectAltNames, or its subject CNs when it has no DNS subjectAltName.
pub fn names_match(cert: &CertificateDer<'_>, names: &[&str]) -> bool {
    let Ok((_, c)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return false;
    };
    let mut presented: Vec<String> = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                presented.push((*d).to_owned());
            }
        }
    }
    if presented.is_empty() {
        presented = c
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect();
    }
    names
        .iter()
        .any(|want| presented.iter().any(|p| dns_name_matches(p, want)))
}

/// RFC 6125 §6.4: case-insensitive, trailing dots ignored; a wildcard only as the whole
/// left-most label, matching exactly one label.
fn dns_name_matches(presented: &str, reference: &str) -> bool {
    let p = presented.trim_end_matches('.').to_ascii_lowercase();
    let r = reference.trim_end_matches('.').to_ascii_lowercase();
    if p.is_empty() || r.is_empty() {
        return false;
    }
    match p.strip_prefix("*.") {
        Some(rest) => match r.split_once('.') {
            Some((first, tail)) => !first.is_empty() && tail == rest && rest.contains('.'),
            None => false,
        },
        None => p == r,
    }
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
        let v = |s: Session<'_>, t: TlsaInput| verify(s, &t).verdict;
        assert_eq!(
            v(Session::NoTls, input(vec![], DnssecStatus::Secure)),
            DaneVerdict::None
        );
        assert_eq!(
            v(Session::NoTls, input(recs.clone(), DnssecStatus::Insecure)),
            DaneVerdict::Insecure
        );
        assert_eq!(
            v(Session::NoTls, input(recs.clone(), DnssecStatus::Bogus)),
            DaneVerdict::Bogus
        );
        // RFC 7672 §2.2: a bogus denial (no records) is still bogus.
        assert_eq!(
            v(Session::NoTls, input(vec![], DnssecStatus::Bogus)),
            DaneVerdict::Bogus
        );
        assert_eq!(
            v(Session::NoTls, input(recs.clone(), DnssecStatus::Secure)),
            DaneVerdict::NoTls
        );
        assert_eq!(
            v(Session::NotReached, input(recs, DnssecStatus::Secure)),
            DaneVerdict::Unverified
        );
    }

    #[test]
    fn rfc7672_2_2_unusable_records_still_make_tls_mandatory() {
        let unusable = vec![rec(1, 1, 1, H32), rec(0, 0, 1, H32)];
        let t = input(unusable, DnssecStatus::Secure);
        assert!(t.requires_tls());
        assert_eq!(verify(Session::NoTls, &t).verdict, DaneVerdict::NoTls);
        assert_eq!(
            verify(Session::NotReached, &t).verdict,
            DaneVerdict::Unusable
        );
        assert_eq!(verify(Session::Tls(&[]), &t).verdict, DaneVerdict::Unusable);
    }

    #[test]
    fn rfc6125_wildcards_match_one_label() {
        assert!(dns_name_matches("mx.example.com", "MX.Example.com."));
        assert!(dns_name_matches("*.example.com", "mx.example.com"));
        assert!(!dns_name_matches("*.example.com", "a.mx.example.com"));
        assert!(!dns_name_matches("*.example.com", "example.com"));
        assert!(!dns_name_matches("*.com", "example.com"));
        assert!(!dns_name_matches("m*.example.com", "mx.example.com"));
    }

    #[test]
    fn der_value_strips_short_and_long_headers() {
        assert_eq!(der_value(&[0x30, 0x02, 1, 2]), Some(&[1u8, 2][..]));
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        assert_eq!(der_value(&long).map(<[u8]>::len), Some(0x80));
        assert_eq!(der_value(&[0x30, 0x05, 1]), None);
        assert_eq!(der_value(&[]), None);
    }
}
