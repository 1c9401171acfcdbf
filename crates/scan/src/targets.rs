//! What to probe for one MX host, built in one place for `mxray scan` and `mxray smtp`: the
//! addresses, the name sent as SNI and checked by PKIX, and the host's TLSA input per address.
//!
//! Everything here depends on the host alone (its address records, CNAME chain and TLSA
//! RRset), never on a domain whose MX names it, so a probe shared by several domains is the
//! same whichever domain asked first.
//!
//! - SNI: the TLSA base domain when the TLSA RRset came from a name other than the MX host
//!   (a secure CNAME expansion, RFC 7672 §2.2.2), as RFC 7672 §8.1 and Postfix do; otherwise
//!   the MX host name.
//! - TLSA input: the RRset with the weaker of its own DNSSEC status and that of the address
//!   RRset the address came from (A for IPv4, AAAA for IPv6: an AAAA failure does not touch
//!   DANE over IPv4). A failed TLSA lookup (SERVFAIL, timeout, ...) or a bogus denial for a
//!   host whose address records are secure is `bogus`: RFC 7672 §2.2 forbids delivery there.
//! - Reference names for DANE-TA (RFC 7672 §3.2.2): the TLSA base domain, the MX host name,
//!   and the names of a secure CNAME expansion.

use std::net::IpAddr;

use mxray_dns::HostDns;
use mxray_model::{DnsOutcome, DnssecStatus};
use mxray_smtp::{ProbeTarget, TlsaInput};

/// At most this many addresses per MX host are probed.
pub const MAX_ADDRESSES_PER_HOST: usize = 8;

/// The owner prefix of SMTP TLSA records (RFC 7672 §2.2.1: port 25, TCP).
const TLSA_PREFIX: &str = "_25._tcp.";

/// The TLSA base domain: the owner name that gave the RRset, without `_25._tcp.`.
pub fn tlsa_base(host: &HostDns) -> Option<String> {
    host.tlsa_owner.as_deref().map(|o| {
        o.trim_end_matches('.')
            .strip_prefix(TLSA_PREFIX)
            .unwrap_or(o)
            .to_ascii_lowercase()
    })
}

/// The name sent as SNI and used for PKIX (see the module doc).
pub fn sni_name(host: &HostDns) -> String {
    tlsa_base(host).unwrap_or_else(|| host.host.clone())
}

/// The DNSSEC status of the address RRset `ip` came from.
pub fn family_status(host: &HostDns, ip: IpAddr) -> DnssecStatus {
    if ip.is_ipv4() {
        host.a_dnssec
    } else {
        host.aaaa_dnssec
    }
}

fn lookup_failed(outcome: DnsOutcome) -> bool {
    !matches!(
        outcome,
        DnsOutcome::NoError | DnsOutcome::NoData | DnsOutcome::NxDomain | DnsOutcome::NotQueried
    )
}

/// The host's TLSA input for connections to `ip`; None when there is nothing DANE-related
/// to check (no TLSA records and no failure that forbids delivery).
pub fn tlsa_input(host: &HostDns, ip: IpAddr) -> Option<TlsaInput> {
    let addr = family_status(host, ip);
    let base_names = || {
        let mut names: Vec<String> = Vec::new();
        let candidates = tlsa_base(host)
            .into_iter()
            .chain(std::iter::once(host.host.clone()))
            .chain(
                host.cname_chain
                    .iter()
                    .filter(|_| addr == DnssecStatus::Secure)
                    .cloned(),
            );
        for n in candidates {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    };
    if host.tlsa.is_empty() {
        let failed = lookup_failed(host.tlsa_outcome) || host.tlsa_dnssec == DnssecStatus::Bogus;
        return (failed && addr == DnssecStatus::Secure).then(|| TlsaInput {
            records: Vec::new(),
            dnssec: DnssecStatus::Bogus,
            base_names: base_names(),
        });
    }
    let statuses = [addr, host.tlsa_dnssec];
    let dnssec = if statuses.contains(&DnssecStatus::Bogus) {
        DnssecStatus::Bogus
    } else if statuses.iter().all(|s| *s == DnssecStatus::Secure) {
        DnssecStatus::Secure
    } else if statuses.contains(&DnssecStatus::Insecure) {
        DnssecStatus::Insecure
    } else {
        DnssecStatus::Indeterminate
    };
    Some(TlsaInput {
        records: host.tlsa.clone(),
        dnssec,
        base_names: base_names(),
    })
}

/// One probe target per address of the host (at most [`MAX_ADDRESSES_PER_HOST`]).
/// `sni_override` replaces the SNI name (`mxray smtp --sni`).
///
/// The TLSA RRset at `_25._tcp` covers SMTP delivery only: on the submission ports
/// ([`mxray_smtp::dane_applies`]) a target carries no TLSA input and its SNI is the MX host
/// name itself.
pub fn host_targets(host: &HostDns, port: u16, sni_override: Option<&str>) -> Vec<ProbeTarget> {
    let dane = mxray_smtp::dane_applies(port);
    let sni = sni_override.map(str::to_owned).unwrap_or_else(|| {
        if dane {
            sni_name(host)
        } else {
            host.host.clone()
        }
    });
    host.addresses
        .iter()
        .take(MAX_ADDRESSES_PER_HOST)
        .map(|ip| ProbeTarget {
            ip: *ip,
            port,
            sni: Some(sni.clone()),
            tlsa: if dane { tlsa_input(host, *ip) } else { None },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::{TlsaRecord, UtcTime};

    fn host() -> HostDns {
        HostDns {
            resolved_at: UtcTime::from_unix(0),
            host: "mx.example.com".into(),
            addresses: vec![
                "192.0.2.1".parse().expect("ip"),
                "2001:db8::1".parse().expect("ip"),
            ],
            cname_chain: vec![],
            address_outcome: DnsOutcome::NoError,
            address_dnssec: DnssecStatus::Secure,
            a_dnssec: DnssecStatus::Secure,
            aaaa_dnssec: DnssecStatus::Secure,
            address_ttl: None,
            tlsa_owner: Some("_25._tcp.mx.example.com".into()),
            tlsa_outcome: DnsOutcome::NoError,
            tlsa_dnssec: DnssecStatus::Secure,
            tlsa_ttl: None,
            tlsa: vec![TlsaRecord {
                usage: 3,
                selector: 1,
                matching_type: 1,
                data: "00".repeat(32),
            }],
            ede: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn rfc7672_2_2_an_aaaa_failure_does_not_downgrade_dane_over_ipv4() {
        let mut h = host();
        h.aaaa_dnssec = DnssecStatus::Indeterminate;
        h.address_dnssec = DnssecStatus::Indeterminate;
        let v4 = tlsa_input(&h, h.addresses[0]).expect("tlsa");
        assert_eq!(v4.dnssec, DnssecStatus::Secure);
        let v6 = tlsa_input(&h, h.addresses[1]).expect("tlsa");
        assert_eq!(v6.dnssec, DnssecStatus::Indeterminate);
    }

    #[test]
    fn rfc7672_2_2_a_failed_tlsa_lookup_behind_secure_addresses_is_bogus() {
        let mut h = host();
        h.tlsa.clear();
        h.tlsa_owner = None;
        h.tlsa_outcome = DnsOutcome::ServFail;
        h.tlsa_dnssec = DnssecStatus::Indeterminate;
        let t = tlsa_input(&h, h.addresses[0]).expect("bogus input");
        assert_eq!(t.dnssec, DnssecStatus::Bogus);
        // Insecure addresses: DANE does not apply, the failure forbids nothing.
        h.a_dnssec = DnssecStatus::Insecure;
        assert_eq!(tlsa_input(&h, h.addresses[0]), None);
        // A plain "no TLSA" is nothing at all.
        let mut h = host();
        h.tlsa.clear();
        h.tlsa_outcome = DnsOutcome::NxDomain;
        assert_eq!(tlsa_input(&h, h.addresses[0]), None);
    }

    #[test]
    fn rfc7672_8_1_sni_is_the_tlsa_base_domain() {
        let mut h = host();
        h.cname_chain = vec!["mail.provider.example".into()];
        h.tlsa_owner = Some("_25._tcp.mail.provider.example".into());
        assert_eq!(sni_name(&h), "mail.provider.example");
        let t = tlsa_input(&h, h.addresses[0]).expect("tlsa");
        assert_eq!(
            t.base_names,
            vec!["mail.provider.example", "mx.example.com"]
        );
        let targets = host_targets(&h, 25, None);
        assert_eq!(targets.len(), 2);
        assert!(targets
            .iter()
            .all(|t| t.sni.as_deref() == Some("mail.provider.example")));
        // Without TLSA: the MX host name.
        h.tlsa.clear();
        h.tlsa_owner = None;
        assert_eq!(sni_name(&h), "mx.example.com");
    }
}
