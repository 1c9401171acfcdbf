//! Which rustls handshake failures are retried with OpenSSL: a pure decision.
//!
//! A retry costs the server a second SMTP session, so it is made only when the failure is a
//! limit of rustls that OpenSSL (TLS 1.0 to 1.3, every cipher, security level 0) can
//! overcome:
//!
//! | rustls failure | reason |
//! | --- | --- |
//! | alert 70 `protocol_version` from the server | `protocol_version` (TLS 1.0/1.1-only servers) |
//! | alert 40 `handshake_failure` | `handshake_failure` (no common suite: RSA key exchange, CBC, DHE only; no common group or signature algorithm) |
//! | alert 71 `insufficient_security` | `insufficient_security` |
//! | `PeerIncompatible` (rustls found nothing in common in the ServerHello) | `peer_incompatible` |
//! | the handshake signature could not be verified with the server's key or certificate (`InvalidCertificate`: RSA < 2048 bits, DSA, P-521, X.509 v1, ... — the recording verifier accepts every chain, so a certificate error here comes only from that check) | `certificate_key` |
//! | `PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme` (SHA-1 signatures) | `signature_scheme` |
//!
//! Never retried: timeouts and the session deadline, resets and EOF during the handshake,
//! garbage or malformed records (`InvalidMessage`, `InvalidContentType`, ...), any other
//! alert (`bad_certificate`, `decode_error`, `unexpected_message`, ... which OpenSSL would
//! meet too), other protocol violations, and anything after a completed handshake. A
//! genuinely bad signature is retried once (rustls cannot tell it from a key it does not
//! support) and OpenSSL, which verifies handshake signatures whatever the verify mode, then
//! records the failure.

use std::io;

use mxray_model::TlsFallbackReason;
use rustls::{AlertDescription, PeerMisbehaved};

/// Why OpenSSL should be tried after this rustls handshake error, or None when it must not.
pub fn fallback_reason(err: &rustls::Error) -> Option<TlsFallbackReason> {
    match err {
        rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            Some(TlsFallbackReason::ProtocolVersion)
        }
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) => {
            Some(TlsFallbackReason::HandshakeFailure)
        }
        rustls::Error::AlertReceived(AlertDescription::InsufficientSecurity) => {
            Some(TlsFallbackReason::InsufficientSecurity)
        }
        rustls::Error::PeerIncompatible(_) => Some(TlsFallbackReason::PeerIncompatible),
        rustls::Error::InvalidCertificate(_) => Some(TlsFallbackReason::CertificateKey),
        rustls::Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme) => {
            Some(TlsFallbackReason::SignatureScheme)
        }
        _ => None,
    }
}

/// [`fallback_reason`] of the I/O error tokio-rustls returns for a failed handshake; plain I/O
/// errors (reset, EOF, ...) never lead to a retry.
pub fn fallback_reason_io(err: &io::Error) -> Option<TlsFallbackReason> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(fallback_reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{CertificateError, InvalidMessage, PeerIncompatible};

    fn io(e: rustls::Error) -> io::Error {
        // What tokio-rustls hands back for a failed handshake.
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn rustls_limits_are_retried_with_openssl() {
        use TlsFallbackReason as R;
        for (err, want) in [
            (
                rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
                R::ProtocolVersion,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
                R::HandshakeFailure,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::InsufficientSecurity),
                R::InsufficientSecurity,
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13),
                R::PeerIncompatible,
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
                R::PeerIncompatible,
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::NoKxGroupsInCommon),
                R::PeerIncompatible,
            ),
            // ring refuses RSA keys under 2048 bits: webpki says the signature is invalid.
            (
                rustls::Error::InvalidCertificate(CertificateError::BadSignature),
                R::CertificateKey,
            ),
            // DSA, or a key type without a verification algorithm.
            (
                rustls::Error::InvalidCertificate(
                    CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
                        signature_algorithm_id: Vec::new(),
                        public_key_algorithm_id: Vec::new(),
                    },
                ),
                R::CertificateKey,
            ),
            // X.509 v1 leaves do not parse as end-entity certificates in webpki.
            (
                rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
                R::CertificateKey,
            ),
            (
                rustls::Error::PeerMisbehaved(
                    PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
                ),
                R::SignatureScheme,
            ),
        ] {
            assert_eq!(fallback_reason(&err), Some(want), "{err:?}");
            assert_eq!(fallback_reason_io(&io(err.clone())), Some(want), "{err:?}");
        }
    }

    #[test]
    fn failures_openssl_would_meet_too_are_never_retried() {
        for err in [
            // Alerts about something other than the offer: OpenSSL would get them as well.
            rustls::Error::AlertReceived(AlertDescription::BadCertificate),
            rustls::Error::AlertReceived(AlertDescription::DecodeError),
            rustls::Error::AlertReceived(AlertDescription::UnexpectedMessage),
            rustls::Error::AlertReceived(AlertDescription::InternalError),
            rustls::Error::AlertReceived(AlertDescription::AccessDenied),
            rustls::Error::AlertReceived(AlertDescription::UnrecognisedName),
            // Garbage instead of TLS records, or broken records.
            rustls::Error::InvalidMessage(InvalidMessage::InvalidContentType),
            rustls::Error::InvalidMessage(InvalidMessage::MessageTooShort),
            rustls::Error::DecryptError,
            rustls::Error::PeerSentOversizedRecord,
            // Protocol violations other than the SHA-1 signature scheme.
            rustls::Error::PeerMisbehaved(PeerMisbehaved::SelectedUnofferedCipherSuite),
            rustls::Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare),
            rustls::Error::InappropriateMessage {
                expect_types: Vec::new(),
                got_type: rustls::ContentType::ApplicationData,
            },
            rustls::Error::General("anything".into()),
        ] {
            assert_eq!(fallback_reason(&err), None, "{err:?}");
            assert_eq!(fallback_reason_io(&io(err.clone())), None, "{err:?}");
        }
    }

    #[test]
    fn transport_failures_are_never_retried() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::TimedOut,
            io::ErrorKind::InvalidData,
        ] {
            assert_eq!(fallback_reason_io(&io::Error::from(kind)), None, "{kind:?}");
        }
        assert_eq!(fallback_reason_io(&io::Error::other("reset by peer")), None);
    }
}
