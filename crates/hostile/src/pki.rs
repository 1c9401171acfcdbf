//! A CA generated at start and the two server identities the hostile servers present: a
//! normal leaf for every name, and a leaf inflated to 1 MB by a private extension.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::HostileError;

/// Size of the private extension that makes the huge certificate huge.
pub const HUGE_CERT_PADDING: usize = 1024 * 1024;

/// The hostile servers' certificates.
#[derive(Debug)]
pub(crate) struct Pki {
    ca_pem: String,
    normal: Arc<CertifiedKey>,
    huge: Arc<CertifiedKey>,
}

fn err(e: impl std::fmt::Display) -> HostileError {
    HostileError::Pki(e.to_string())
}

impl Pki {
    /// A fresh CA and two leaves for `names`, signed by it.
    pub(crate) fn generate(names: &[String]) -> Result<Pki, HostileError> {
        let now = OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "mxray hostile CA");
        ca.distinguished_name = dn;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = now - Duration::days(1);
        ca.not_after = now + Duration::days(30);
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let ca_der = ca_cert.der().clone();
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca, ca_key);

        let leaf_key = KeyPair::generate().map_err(err)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_supported_type(&der).map_err(err)?;
        let leaf = |padding: Option<usize>| -> Result<Arc<CertifiedKey>, HostileError> {
            let mut p = CertificateParams::new(names.to_vec()).map_err(err)?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "hostile.test");
            p.distinguished_name = dn;
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.not_before = now - Duration::days(1);
            p.not_after = now + Duration::days(30);
            if let Some(n) = padding {
                // An OCTET STRING of n zero bytes (long-form length, 3 bytes) under a private
                // OID, not critical: a valid, merely enormous certificate.
                let mut content = vec![0x04, 0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8];
                content.resize(content.len() + n, 0);
                p.custom_extensions = vec![CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 32473, 1, 1],
                    content,
                )];
            }
            let cert = p.signed_by(&leaf_key, &issuer).map_err(err)?;
            let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(), ca_der.clone()];
            Ok(Arc::new(CertifiedKey::new(chain, signing.clone())))
        };
        Ok(Pki {
            ca_pem,
            normal: leaf(None)?,
            huge: leaf(Some(HUGE_CERT_PADDING))?,
        })
    }

    /// The CA certificate, PEM (for `--ca-file`).
    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A TLS server configuration presenting the normal leaf, or the 1 MB one.
    pub(crate) fn server_config(&self, huge: bool) -> Result<Arc<ServerConfig>, HostileError> {
        let key = if huge { &self.huge } else { &self.normal };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(key.clone())));
        Ok(Arc::new(cfg))
    }
}

/// Always the same certificate, whatever the SNI. (Not `with_single_cert`: that parses the
/// certificate to check it against the key, and the point is to send what nobody should.)
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
