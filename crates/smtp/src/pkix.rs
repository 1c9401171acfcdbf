//! PKIX validity of a recorded chain for the MX host name (webpki roots plus `--ca-file`).

use std::sync::Arc;

use mxray_model::PkixError;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

use crate::SmtpError;

/// Checks chains against the Mozilla roots (webpki-roots) and any extra roots.
#[derive(Debug, Clone)]
pub struct PkixChecker {
    verifier: Arc<WebPkiServerVerifier>,
}

impl PkixChecker {
    /// Roots: webpki-roots plus every certificate in `extra_roots_pem` (PEM, may be empty).
    pub fn new(extra_roots_pem: &[u8]) -> Result<Self, SmtpError> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for (i, cert) in CertificateDer::pem_slice_iter(extra_roots_pem).enumerate() {
            let cert = cert.map_err(|e| SmtpError::CaFile(format!("PEM item {}: {e}", i + 1)))?;
            roots
                .add(cert)
                .map_err(|e| SmtpError::CaFile(format!("certificate {}: {e}", i + 1)))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| SmtpError::Tls(e.to_string()))?;
        Ok(PkixChecker { verifier })
    }

    /// `Ok` when `chain` (leaf first) leads to a trusted root and the leaf is valid for `name`
    /// at `now`; otherwise the first reason it is not.
    pub fn check(
        &self,
        chain: &[CertificateDer<'_>],
        name: &str,
        now: UnixTime,
    ) -> Result<(), PkixError> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(PkixError::BadCertificate);
        };
        let Ok(server_name) = ServerName::try_from(name) else {
            return Err(PkixError::Other);
        };
        match self
            .verifier
            .verify_server_cert(leaf, rest, &server_name, &[], now)
        {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(e)) => Err(classify(&e, leaf, chain.len())),
            Err(_) => Err(PkixError::Other),
        }
    }
}

fn classify(e: &CertificateError, leaf: &CertificateDer<'_>, chain_len: usize) -> PkixError {
    use CertificateError as C;
    match e {
        C::Expired | C::ExpiredContext { .. } => PkixError::Expired,
        C::NotValidYet | C::NotValidYetContext { .. } => PkixError::NotYetValid,
        C::UnknownIssuer if chain_len == 1 && self_issued(leaf) => PkixError::SelfSigned,
        C::UnknownIssuer => PkixError::UnknownIssuer,
        C::NotValidForName | C::NotValidForNameContext { .. } => PkixError::NameMismatch,
        C::BadSignature => PkixError::BadSignature,
        C::BadEncoding => PkixError::BadCertificate,
        _ => PkixError::Other,
    }
}

fn self_issued(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der.as_ref())
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}
