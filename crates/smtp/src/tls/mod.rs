//! The two TLS engines behind one engine-neutral result.
//!
//! rustls ([`rustls_engine`]) is the first choice for every handshake: it is fast, memory-safe
//! and what the benchmarks measure. It speaks only TLS 1.2 and 1.3 with ECDHE and AEAD suites,
//! and verifies handshake signatures only with keys ring supports. A server beyond that
//! (TLS 1.0/1.1 only, RSA key exchange or CBC only, an RSA key under 2048 bits, DSA, SHA-1
//! handshake signatures) still delivers mail from Postfix and Exim, so it must be measured:
//! when rustls fails for a reason [`fallback::fallback_reason`] names, the prober runs a new
//! SMTP session and the handshake again with OpenSSL ([`openssl_engine`]: the system libssl at
//! security level 0, TLS 1.0 to 1.3, every cipher, no verification inside OpenSSL).
//!
//! Both engines report a [`Negotiated`] (version, cipher, key-exchange group, the DER chain)
//! or a [`HandshakeFailure`] (error class, alert, detail, and for rustls whether OpenSSL may
//! overcome it); the chain is judged afterwards by the same PKIX and DANE code whichever
//! engine captured it. Names are normalised so a column means one thing across engines:
//! `TLSv1.0` … `TLSv1.3`, cipher suites in rustls's IANA-style spelling
//! (`TLS13_AES_256_GCM_SHA384`, `TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA`), groups as rustls names
//! them (`X25519`, `secp256r1`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use mxray_model::{ProbeErrorClass, TlsFallbackReason};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::driver::Prefixed;

pub mod fallback;
pub mod openssl_engine;
pub mod rustls_engine;

/// The transport under TLS: the TCP connection, after any bytes the SMTP reader had already
/// taken off it.
pub type Transport = Prefixed<TcpStream>;

/// What a completed handshake showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLSv1.0`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3` (`SSLv3` should a library ever speak it).
    pub version: String,
    /// The cipher suite, IANA-style (see the module doc for the spelling).
    pub cipher: String,
    /// The key-exchange group (`X25519`, `secp256r1`, `DH 2048` for finite-field DHE with the
    /// server's own parameters); None for RSA key exchange.
    pub kx_group: Option<String>,
    /// The certificates the server sent, leaf first, as DER.
    pub chain: Vec<CertificateDer<'static>>,
}

/// A failed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeFailure {
    /// The probe's error class (`tls_alert`, `tls_incompatible`, `tls_reset`, `tls_error`).
    pub class: ProbeErrorClass,
    /// The alert the server sent, if the handshake ended with one.
    pub alert: Option<u8>,
    /// What the engine said.
    pub detail: String,
    /// Set when the failure is a limit of rustls that OpenSSL can overcome: the prober then
    /// retries in a new session with OpenSSL. Always None for OpenSSL failures.
    pub fallback: Option<TlsFallbackReason>,
}

/// An established TLS connection of either engine.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum TlsConnection {
    /// rustls.
    Rustls(Box<tokio_rustls::client::TlsStream<Transport>>),
    /// OpenSSL.
    Openssl(Pin<Box<tokio_openssl::SslStream<Transport>>>),
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TlsConnection::Rustls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            TlsConnection::Openssl(s) => s.as_mut().poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TlsConnection::Rustls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            TlsConnection::Openssl(s) => s.as_mut().poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TlsConnection::Rustls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            TlsConnection::Openssl(s) => s.as_mut().poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TlsConnection::Rustls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            TlsConnection::Openssl(s) => s.as_mut().poll_shutdown(cx),
        }
    }
}

/// True for a version below TLS 1.2 (RFC 8996 deprecates TLS 1.0 and 1.1; SSLv3 is RFC 7568's).
pub fn is_legacy_version(version: &str) -> bool {
    matches!(version, "TLSv1.0" | "TLSv1.1" | "SSLv3" | "SSLv2")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_versions() {
        for v in ["TLSv1.0", "TLSv1.1", "SSLv3"] {
            assert!(is_legacy_version(v), "{v}");
        }
        for v in ["TLSv1.2", "TLSv1.3", ""] {
            assert!(!is_legacy_version(v), "{v}");
        }
    }
}
