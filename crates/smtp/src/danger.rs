//! Risky knobs, kept apart as rustls does: a certificate verifier that accepts every chain.
//!
//! A measurement client must complete the handshake with expired, self-signed or wrong-name
//! certificates so it can record them. [`RecordingVerifier`] therefore never rejects a
//! certificate; PKIX validity and DANE are judged afterwards on the recorded chain
//! ([`crate::pkix`], [`crate::dane`]) and become record fields. Handshake signatures are still
//! verified, so the recorded chain is the one whose key the server actually holds.
//!
//! Never use this verifier to protect data: mxray sends nothing but EHLO and QUIT over it.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate chain; verifies handshake signatures with the given algorithms.
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
        verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
