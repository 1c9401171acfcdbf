//! The domain field `tls_legacy`: some MX host completed TLS only below TLS 1.2. Pure.
//!
//! A host counts when it completed TLS on at least one address (on the delivery port: the
//! pipeline hands the verdict only those probes) and every address that completed TLS did so
//! with `tls_legacy` (TLS 1.0/1.1 through the OpenSSL engine). Such a host counts for
//! `starttls` like any other; this field lets researchers group the domains whose mail can
//! only travel over deprecated TLS (RFC 8996) to some MX host. See docs/verdicts.md.

use mxray_model::ProbeResult;

use crate::cached::ProbeFacts;
use crate::verdict::HostFacts;

/// Whether one host's TLS is legacy-only.
pub fn host_tls_legacy<P: ProbeFacts>(probes: &[&P]) -> bool {
    let mut with_tls = probes
        .iter()
        .filter(|p| p.result() == ProbeResult::StarttlsOk)
        .peekable();
    with_tls.peek().is_some() && with_tls.all(|p| p.tls_legacy())
}

/// The domain field: any MX host whose TLS is legacy-only.
pub fn tls_legacy<P: ProbeFacts>(hosts: &[HostFacts<'_, P>]) -> bool {
    hosts.iter().any(|h| host_tls_legacy(&h.probes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::{examples, SmtpProbeRecord};

    fn probe(ok: bool, legacy: bool) -> SmtpProbeRecord {
        let mut p = examples::smtp_probe();
        p.result = if ok {
            ProbeResult::StarttlsOk
        } else {
            ProbeResult::NoStarttls
        };
        p.tls_legacy = legacy;
        p
    }

    #[test]
    fn a_host_is_legacy_when_every_address_with_tls_is() {
        let (legacy, modern, plain) = (probe(true, true), probe(true, false), probe(false, false));
        assert!(host_tls_legacy(&[&legacy]));
        // An address without STARTTLS does not make the host modern, nor legacy.
        assert!(host_tls_legacy(&[&legacy, &plain]));
        assert!(!host_tls_legacy(&[&legacy, &modern]));
        assert!(!host_tls_legacy(&[&plain]));
        assert!(!host_tls_legacy::<SmtpProbeRecord>(&[]));
    }

    #[test]
    fn a_domain_is_legacy_when_any_mx_host_is() {
        let dns = examples::dns_host();
        let (legacy, modern) = (probe(true, true), probe(true, false));
        let hosts = vec![
            HostFacts {
                dns: &dns,
                probes: vec![&modern],
            },
            HostFacts {
                dns: &dns,
                probes: vec![&legacy],
            },
        ];
        assert!(tls_legacy(&hosts));
        assert!(!tls_legacy(&hosts[..1]));
    }
}
