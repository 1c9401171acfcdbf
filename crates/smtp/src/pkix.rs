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
        C::Other(o)
            if matches!(
                o.0.downcast_ref::<webpki::Error>(),
                Some(
                    webpki::Error::MaximumPathDepthExceeded
                        | webpki::Error::MaximumSignatureChecksExceeded
                        | webpki::Error::MaximumPathBuildCallsExceeded
                )
            ) =>
        {
            PkixError::PathTooLong
        }
        _ => PkixError::Other,
    }
}

fn self_issued(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der.as_ref())
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    #[test]
    fn a_chain_longer_than_the_verifiers_budget_is_path_too_long() {
        // Root -> 9 intermediates -> leaf: webpki stops at 6 intermediates.
        let root_key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, "root");
        let root = p.self_signed(&root_key).expect("root");
        let mut issuer = Issuer::new(p, root_key);
        let mut intermediates = Vec::new();
        for i in 0..9 {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name
                .push(rcgen::DnType::CommonName, format!("ca{i}"));
            let c = p.signed_by(&key, &issuer).expect("sign");
            intermediates.push(c.der().clone());
            issuer = Issuer::new(p, key);
        }
        let key = KeyPair::generate().expect("key");
        let p = CertificateParams::new(vec!["mx.example".to_string()]).expect("params");
        let leaf = p.signed_by(&key, &issuer).expect("leaf");
        let mut chain = vec![leaf.der().clone()];
        chain.extend(intermediates.into_iter().rev());
        let checker = PkixChecker::new(root.pem().as_bytes()).expect("roots");
        assert_eq!(
            checker.check(&chain, "mx.example", UnixTime::now()),
            Err(PkixError::PathTooLong)
        );
    }
}
