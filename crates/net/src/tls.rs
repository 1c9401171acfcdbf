//! The TLS client settings and names every mxray client shares: one rustls client
//! configuration builder (ring, TLS 1.3 and 1.2) and one spelling of protocol versions.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};

/// The crypto provider of every mxray TLS client (ring: no cmake, one provider).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How a client judges the server's certificate during the handshake.
#[derive(Debug)]
pub enum ServerAuth {
    /// Ordinary verification against these roots (the MTA-STS fetch, test clients).
    Roots(RootCertStore),
    /// A custom verifier: the SMTP probes' recording verifier, which accepts every chain so
    /// that it can be recorded and judged afterwards.
    Verifier(Arc<dyn ServerCertVerifier>),
}

/// A rustls client configuration with [`provider`], TLS 1.3 and 1.2, no client certificate.
/// Callers set what is theirs afterwards (ALPN, resumption).
///
/// Errors: only when the provider supports neither version, which ring always does.
pub fn client_config(auth: ServerAuth) -> Result<ClientConfig, rustls::Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    Ok(match auth {
        ServerAuth::Roots(roots) => builder.with_root_certificates(roots),
        ServerAuth::Verifier(v) => builder.dangerous().with_custom_certificate_verifier(v),
    }
    .with_no_client_auth())
}

/// The protocol versions and how the records spell them.
pub const VERSION_NAMES: [(ProtocolVersion, &str); 5] = [
    (ProtocolVersion::SSLv3, "SSLv3"),
    (ProtocolVersion::TLSv1_0, "TLSv1.0"),
    (ProtocolVersion::TLSv1_1, "TLSv1.1"),
    (ProtocolVersion::TLSv1_2, "TLSv1.2"),
    (ProtocolVersion::TLSv1_3, "TLSv1.3"),
];

/// A protocol version as the records spell it ([`VERSION_NAMES`]: `SSLv3`, `TLSv1.0` …
/// `TLSv1.3`, whichever engine negotiated it); anything else in rustls's debug spelling.
pub fn version_name(v: ProtocolVersion) -> String {
    match VERSION_NAMES.iter().find(|(known, _)| *known == v) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("{v:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_spelled_with_a_minor_number() {
        let names: Vec<String> = [0x0300, 0x0301, 0x0302, 0x0303, 0x0304]
            .into_iter()
            .map(|w| version_name(ProtocolVersion::from(w)))
            .collect();
        assert_eq!(names, ["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);
        assert_eq!(
            version_name(ProtocolVersion::from(0x7f1c)),
            "ProtocolVersion(0x7f1c)"
        );
    }

    #[test]
    fn client_configs_leave_alpn_and_resumption_to_the_caller() {
        let cfg = client_config(ServerAuth::Roots(RootCertStore::empty())).expect("config");
        assert!(cfg.alpn_protocols.is_empty());
        assert!(cfg.enable_sni);
        assert_eq!(
            cfg.crypto_provider().cipher_suites.len(),
            provider().cipher_suites.len()
        );
    }
}
