//! The first engine: rustls 0.23 with the ring provider, TLS 1.3 and 1.2, no resumption,
//! the recording verifier ([`crate::danger::RecordingVerifier`]).

use std::net::IpAddr;
use std::sync::Arc;

use mxray_net::tls::{self, ServerAuth};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use super::{fallback, HandshakeFailure, Negotiated, TlsConnection, Transport};
use crate::danger::RecordingVerifier;
use crate::probe::classify_tls_error;
use crate::SmtpError;

/// The client configuration every probe shares.
pub fn client_config() -> Result<Arc<ClientConfig>, SmtpError> {
    let verifier = Arc::new(RecordingVerifier::new(
        tls::provider().signature_verification_algorithms,
    ));
    let mut tls = tls::client_config(ServerAuth::Verifier(verifier))
        .map_err(|e| SmtpError::Tls(e.to_string()))?;
    // Every probe must see a full handshake and the whole chain.
    tls.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(tls))
}

/// Runs the handshake; `sni` is sent when it is a DNS name (None or an address: no SNI).
/// No timeout here: the caller bounds the future.
pub async fn connect(
    config: &Arc<ClientConfig>,
    sni: Option<&str>,
    ip: IpAddr,
    io: Transport,
) -> Result<(TlsConnection, Negotiated), HandshakeFailure> {
    // An IP ServerName makes rustls send no SNI at all.
    let server_name = sni
        .and_then(|s| ServerName::try_from(s.to_owned()).ok())
        .filter(|n| matches!(n, ServerName::DnsName(_)))
        .unwrap_or(ServerName::IpAddress(ip.into()));
    let connector = TlsConnector::from(config.clone());
    let tls = match connector.connect(server_name, io).await {
        Ok(tls) => tls,
        Err(e) => {
            let (class, alert, detail) = classify_tls_error(&e);
            return Err(HandshakeFailure {
                class,
                alert,
                detail,
                fallback: fallback::fallback_reason_io(&e),
            });
        }
    };
    let (_, conn) = tls.get_ref();
    let negotiated = Negotiated {
        version: conn
            .protocol_version()
            .map(tls::version_name)
            .unwrap_or_default(),
        cipher: conn
            .negotiated_cipher_suite()
            .map(|s| {
                s.suite()
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{:?}", s.suite()))
            })
            .unwrap_or_default(),
        kx_group: conn.negotiated_key_exchange_group().map(|g| {
            g.name()
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{:?}", g.name()))
        }),
        chain: conn
            .peer_certificates()
            .map(|c| c.to_vec())
            .unwrap_or_default(),
    };
    Ok((TlsConnection::Rustls(Box::new(tls)), negotiated))
}
