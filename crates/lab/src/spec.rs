//! What the lab's servers are, as plain data: the address plan, how an SMTP host behaves
//! ([`HostSpec`], [`SmtpBehaviour`]), what is wrong with a certificate ([`CertKind`]), what an
//! MTA-STS policy host answers ([`PolicySpec`]), and the one question a server asks the running
//! world ([`PolicyLookup`]). No I/O, no keys; every other lab module may import this one, and it
//! imports none of them.

use std::net::Ipv4Addr;

// ------------------------------------------------------------------------ the address plan

/// The signed apex of the lab (the trust anchor's owner).
pub const APEX: &str = "lab.test";
/// The unsigned delegated child.
pub const INSECURE_CHILD: &str = "insecure.lab.test";
/// The child whose TLSA signatures are broken.
pub const BOGUS_CHILD: &str = "bogus.lab.test";
/// Main (authoritative) DNS address.
pub const DNS_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 53, 53);
/// Validating-resolver emulation address (for `--dnssec ad`).
pub const DNS_AD_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 53, 54);
/// Where every `mta-sts.<domain>` name points.
pub const HTTPS_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 44, 1);
/// The real server behind the stripping middlebox.
pub(crate) const STRIP_BACKEND_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 11, 1);
/// Where the lab canary is probed: the stripping middlebox in front of the embedded canary
/// (port [`crate::Lab::smtp_port`]). It masks `STARTTLS` for clients from 127.0.99.0/24 only.
pub const CANARY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 12, 1);
/// Where the embedded canary itself listens: its SMTP port (the middlebox's backend) and its
/// control endpoint, both on ephemeral ports.
pub const CANARY_BACKEND_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 12, 2);
/// Name on the lab canary's self-signed certificate.
pub const CANARY_NAME: &str = "canary.lab.test";
/// The lab's "isp" source range: 127.0.99.0/24.
pub const ISP_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 0, 99, 0), 24);
/// The source address the `isp` vantage binds.
pub const ISP_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 99, 1);

// ------------------------------------------------------------------------ certificates

/// What is wrong (or not) with the certificate a server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// Issued by the lab CA for the requested name, currently valid; chain is leaf + CA.
    Valid,
    /// Self-signed leaf for the requested name.
    SelfSigned,
    /// Issued by the lab CA for the requested name, expired 30 days ago.
    Expired,
    /// Issued by the lab CA, valid, but for `wrong-name.lab.test` only.
    WrongName,
    /// Issued by the lab CA, valid, the name in the subject CN only (no subjectAltName).
    CnOnly,
    /// Issued by the lab CA, valid, but the server sends the leaf alone (the CA omitted).
    LeafOnly,
}

impl CertKind {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            CertKind::Valid => "valid",
            CertKind::SelfSigned => "self-signed",
            CertKind::Expired => "expired",
            CertKind::WrongName => "wrong-name",
            CertKind::CnOnly => "cn-only",
            CertKind::LeafOnly => "leaf-only",
        }
    }
}

/// The name a [`CertKind::WrongName`] certificate is issued for.
pub const WRONG_NAME: &str = "wrong-name.lab.test";

// ------------------------------------------------------------------------ SMTP hosts

/// How an SMTP host behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpBehaviour {
    /// Advertises STARTTLS, accepts it, completes TLS.
    Starttls,
    /// Does not advertise STARTTLS (and answers the command with 502).
    NoStarttls,
    /// Advertises STARTTLS, answers the command with `454 4.7.0 TLS not available`.
    Reject454,
    /// Advertises STARTTLS, answers `220`, then closes instead of a TLS handshake.
    TlsFailAfterReady,
    /// Accepts the connection and never greets (closes after two minutes).
    Tarpit,
    /// STARTTLS intact, but the greeting is a decorative multi-line banner of stars around
    /// words (`220-*** Authorized use only ***`), as many admins configure: not a PIX mask.
    DecorativeBanner,
    /// STARTTLS intact, and next to it an EHLO keyword of the X-mask family (`XXXXXXXA`): a
    /// server that was not stripped.
    MaskedKeywordBesideStarttls,
    /// EHLO omits STARTTLS, but the command is answered `220` and TLS completes: what a
    /// client sees behind a middlebox that rewrites only the EHLO reply.
    HiddenStarttls,
    /// STARTTLS, with a multi-line EHLO reply whose continuation lines carry other codes
    /// (`250-` / `251-`), which Postfix's client accepts (the last line's code counts).
    MixedCodeEhlo,
    /// STARTTLS, then TLS 1.0 only (OpenSSL, security level 0), RSA-2048 lab-CA certificate.
    LegacyTls10,
    /// STARTTLS, then TLS 1.2 (OpenSSL) with a lab-CA certificate on an RSA-1024 key, which
    /// rustls refuses.
    WeakRsaKey,
}

impl SmtpBehaviour {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            SmtpBehaviour::Starttls => "starttls",
            SmtpBehaviour::NoStarttls => "no-starttls",
            SmtpBehaviour::Reject454 => "starttls-454",
            SmtpBehaviour::TlsFailAfterReady => "tls-fail-after-220",
            SmtpBehaviour::Tarpit => "tarpit",
            SmtpBehaviour::DecorativeBanner => "decorative-banner",
            SmtpBehaviour::MaskedKeywordBesideStarttls => "x-keyword-beside-starttls",
            SmtpBehaviour::HiddenStarttls => "hidden-starttls",
            SmtpBehaviour::MixedCodeEhlo => "mixed-code-ehlo",
            SmtpBehaviour::LegacyTls10 => "tls1.0-only",
            SmtpBehaviour::WeakRsaKey => "rsa-1024",
        }
    }
}

/// What one simulated SMTP host is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The host's own name (greeting, EHLO reply, certificate when the client sends no SNI).
    pub name: String,
    /// Its behaviour.
    pub behaviour: SmtpBehaviour,
    /// What is wrong with its certificate.
    pub cert: CertKind,
    /// Fixed certificate names; `None`: the client's SNI (a `.lab.test` name) or `name`.
    pub cert_names: Option<Vec<String>>,
}

impl HostSpec {
    /// A host whose certificate names only `name`.
    pub(crate) fn named(name: &str, behaviour: SmtpBehaviour, cert: CertKind) -> Self {
        HostSpec {
            name: name.to_owned(),
            behaviour,
            cert,
            cert_names: Some(vec![name.to_owned()]),
        }
    }
}

// ------------------------------------------------------------------------ MTA-STS policies

/// The HTTPS answer for one `mta-sts.<domain>` host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` header value.
    pub content_type: String,
    /// Body.
    pub body: String,
    /// `Location` header (redirects).
    pub location: Option<String>,
    /// Certificate presented for this host.
    pub cert: CertKind,
}

impl PolicySpec {
    /// A valid policy served as `text/plain` with a valid certificate.
    pub fn policy(mode: &str, mx: &[&str]) -> Self {
        let mut body = format!("version: STSv1\r\nmode: {mode}\r\n");
        for m in mx {
            body.push_str(&format!("mx: {m}\r\n"));
        }
        body.push_str("max_age: 86400\r\n");
        PolicySpec {
            status: 200,
            content_type: "text/plain".into(),
            body,
            location: None,
            cert: CertKind::Valid,
        }
    }
}

/// What the HTTPS server asks the running world: the policy answer for a host name
/// (`mta-sts.<domain>`, lower case), `None` for a host the lab does not serve. The server
/// holds this lookup, not the world, so it cannot reach anything else.
pub(crate) trait PolicyLookup: Send + Sync + std::fmt::Debug {
    /// The answer for `host`.
    fn policy(&self, host: &str) -> Option<PolicySpec>;
}
