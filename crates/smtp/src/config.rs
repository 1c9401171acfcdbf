//! [`ProbeConfig`]: every knob of a probe, each default with its reason.

use crate::driver::Limits;

/// When to send STARTTLS although the EHLO reply does not advertise it
/// (`--send-starttls-override`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StarttlsOverride {
    /// Only where the host's own DNS requires TLS (a secure TLSA RRset, RFC 7672 §2.2): the
    /// default, because a server there that accepts the command proves the EHLO reply was
    /// rewritten, and elsewhere a server may hide the keyword on purpose.
    #[default]
    Policy,
    /// On every host (zgrab2's `--send-starttls-override`).
    Always,
    /// Never.
    Never,
}

/// The submissions port: implicit TLS (RFC 8314 §3.3).
pub const IMPLICIT_TLS_PORT: u16 = 465;
/// The message submission port: STARTTLS like 25 (RFC 6409).
pub const SUBMISSION_PORT: u16 = 587;
/// The port MX delivery uses (RFC 5321).
pub const DELIVERY_PORT: u16 = 25;

/// The port whose probes the domain verdicts use when several are probed (`--smtp-port
/// 25,587,465`): 25, what MX delivery uses, when listed; else the first port given (a single
/// non-standard port stands in for 25, as in the lab). The other ports are probed and
/// recorded for adoption figures only.
pub fn delivery_port(ports: &[u16]) -> u16 {
    if ports.contains(&DELIVERY_PORT) {
        DELIVERY_PORT
    } else {
        ports.first().copied().unwrap_or(DELIVERY_PORT)
    }
}

/// Whether the host's TLSA RRset at `_25._tcp` (DANE for SMTP, RFC 7672) is checked on this
/// port: everywhere except the submission ports 465 and 587, which RFC 7672 does not cover
/// (their TLSA would live at `_465._tcp`/`_587._tcp`, which mxray does not look up).
pub fn dane_applies(port: u16) -> bool {
    !matches!(port, IMPLICIT_TLS_PORT | SUBMISSION_PORT)
}

/// How a probe behaves. Build with `ProbeConfig::default()` and override fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeConfig {
    /// Name sent in EHLO/HELO. Default `mxray.invalid`; RFC 5321 §4.1.1.1 wants the client's
    /// FQDN, so real scans should pass one with matching forward and reverse DNS
    /// (`--ehlo-name`), or some servers will refuse the session.
    pub ehlo_name: String,
    /// The bounds of each session: timeouts, line, reply and transcript caps
    /// ([`Limits`], with its defaults).
    pub limits: Limits,
    /// Extra trusted roots for the PKIX check (`--ca-file` contents, PEM), on top of the
    /// Mozilla roots from webpki-roots. Default none.
    pub extra_roots_pem: Vec<u8>,
    /// Probes in flight at once in this prober. Default 1000: each costs a socket and a few
    /// KiB, so this bounds memory and file descriptors, not politeness (that is the rate
    /// limits' job).
    pub concurrency: usize,
    /// When STARTTLS is sent without being advertised. Default [`StarttlsOverride::Policy`].
    pub starttls_override: StarttlsOverride,
    /// Ports on which the session is implicit TLS (RFC 8314 §3.3: TLS first, then greeting,
    /// EHLO, QUIT) instead of STARTTLS. Default `[465]`, the submissions port; 25 and 587 are
    /// STARTTLS.
    pub implicit_tls_ports: Vec<u16>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            ehlo_name: "mxray.invalid".into(),
            limits: Limits::default(),
            extra_roots_pem: Vec::new(),
            concurrency: 1000,
            starttls_override: StarttlsOverride::Policy,
            implicit_tls_ports: vec![IMPLICIT_TLS_PORT],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_port_is_25_when_listed_else_the_first() {
        assert_eq!(delivery_port(&[25]), 25);
        assert_eq!(delivery_port(&[587, 25, 465]), 25);
        assert_eq!(delivery_port(&[2525]), 2525);
        assert_eq!(delivery_port(&[465, 587]), 465);
        assert_eq!(delivery_port(&[]), 25);
    }

    #[test]
    fn dane_is_not_applied_on_the_submission_ports() {
        assert!(dane_applies(25) && dane_applies(2525));
        assert!(!dane_applies(465) && !dane_applies(587));
    }
}
