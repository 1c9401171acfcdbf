//! Risky knobs, kept apart as rustls does: a certificate verifier that accepts every chain.
//!
//! A measurement client must complete the handshake with expired, self-signed or wrong-name
//! certificates so it can record them. [`RecordingVerifier`] therefore never rejects a
//! certificate; PKIX validity and DANE are judged afterwards on the recorded chain
//! ([`crate::pkix`], [`crate::dane`]) and become record fields. Handshake signatures are still
//! verified, so the recorded chain is the one whose key the server actually holds.
//!
//! Never use this verifier to protect data: mxray sends nothing but EHLO and QUIT over it.
//!
//! A handshake signature that fails because the server's key is one rustls (ring) cannot
//! verify at all (RSA under 2048 or over 8192 bits, DSA, curves other than P-256/P-384) is
//! reported as an [`EngineLimit`], so the failure is classed as mxray's own limit
//! (`tls_incompatible`) and never read as a broken or tampered handshake.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate chain; verifies handshake signatures with the given algorithms.
/// The server's key is of a kind mxray's TLS engine cannot verify; carried inside
/// `rustls::CertificateError::Other` so the handshake failure can be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's {key} key is not supported by rustls")]
pub struct EngineLimit {
    /// The key, as `certificate.key_type` names it (`RSA 1024`, `DSA`, ...).
    pub key: String,
}

/// Whether ring can verify handshake signatures made with a key of this description.
fn engine_supports(key: &str) -> bool {
    match key.strip_prefix("RSA ") {
        Some(bits) => bits
            .parse::<u32>()
            .is_ok_and(|b| (2048..=8192).contains(&b)),
        None => matches!(key, "EC P-256" | "EC P-384" | "Ed25519"),
    }
}

/// Replaces a signature failure by an [`EngineLimit`] when the key is one rustls cannot use.
fn explain(err: rustls::Error, cert: &CertificateDer<'_>) -> rustls::Error {
    match crate::cert::key_description(cert.as_ref()) {
        Some(key) if !engine_supports(&key) => {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                std::sync::Arc::new(EngineLimit { key }),
            )))
        }
        _ => err,
    }
}

#[derive(Debug, Clone)]
pub struct RecordingVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl RecordingVerifier {
    /// A verifier using `algs` (take them from the ring provider) for handshake signatures.
    pub fn new(algs: WebPkiSupportedAlgorithms) -> Self {
        RecordingVerifier { algs }
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algs).map_err(|e| explain(e, cert))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs).map_err(|e| explain(e, cert))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ring_cannot_verify_are_engine_limits() {
        for k in ["RSA 2048", "RSA 4096", "EC P-256", "EC P-384", "Ed25519"] {
            assert!(engine_supports(k), "{k}");
        }
        for k in [
            "RSA 1024",
            "RSA 512",
            "RSA 16384",
            "DSA",
            "EC P-521",
            "Ed448",
            "1.2.3.4",
        ] {
            assert!(!engine_supports(k), "{k}");
        }
    }
}
