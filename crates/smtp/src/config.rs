//! [`ProbeConfig`]: every knob of a probe, each default with its reason.

use std::time::Duration;

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

/// How a probe behaves. Build with `ProbeConfig::default()` and override fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeConfig {
    /// Name sent in EHLO/HELO. Default `mxray.invalid`; RFC 5321 §4.1.1.1 wants the client's
    /// FQDN, so real scans should pass one with matching forward and reverse DNS
    /// (`--ehlo-name`), or some servers will refuse the session.
    pub ehlo_name: String,
    /// Wait for the greeting. Default 20 s: postscreen's pre-greet pause is 6 s and some
    /// tarpits delay 10–15 s; RFC 5321's 5 minutes would let a tarpit hold a slot forever.
    pub greeting_timeout: Duration,
    /// Wait for each command reply (EHLO, HELO, STARTTLS, QUIT). Default 10 s, zgrab2's
    /// per-read default; a healthy MTA answers in milliseconds.
    pub command_timeout: Duration,
    /// The TLS handshake. Default 10 s.
    pub tls_timeout: Duration,
    /// The whole session, connect to close. Default 60 s: bounds the time any one server
    /// can hold a probe, whatever it does within the per-phase limits.
    pub session_deadline: Duration,
    /// Longest reply line accepted. Default 2048 bytes: RFC 5321 §4.5.3.1.5 allows 512; real
    /// servers exceed it a little, nobody legitimate by 4x.
    pub max_line: usize,
    /// Largest (multi-line) reply accepted. Default 16 KiB: the longest real EHLO replies are
    /// around 1 KiB.
    pub max_reply: usize,
    /// Transcript cap. Default 8 KiB: a full STARTTLS dialogue is about 1 KiB.
    pub max_transcript: usize,
    /// Extra trusted roots for the PKIX check (`--ca-file` contents, PEM), on top of the
    /// Mozilla roots from webpki-roots. Default none.
    pub extra_roots_pem: Vec<u8>,
    /// Probes in flight at once in this prober. Default 1000: each costs a socket and a few
    /// KiB, so this bounds memory and file descriptors, not politeness (that is the rate
    /// limits' job).
    pub concurrency: usize,
    /// When STARTTLS is sent without being advertised. Default [`StarttlsOverride::Policy`].
    pub starttls_override: StarttlsOverride,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            ehlo_name: "mxray.invalid".into(),
            greeting_timeout: Duration::from_secs(20),
            command_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(10),
            session_deadline: Duration::from_secs(60),
            max_line: 2048,
            max_reply: 16 * 1024,
            max_transcript: 8 * 1024,
            extra_roots_pem: Vec::new(),
            concurrency: 1000,
            starttls_override: StarttlsOverride::Policy,
        }
    }
}
