//! The lab's certificates: a CA generated at start (rcgen), leaf certificates made on demand.
//!
//! Every leaf certificate, whatever its name or defect, carries the same leaf key, so a single
//! DANE-EE `3 1 1` TLSA record matches every lab server that presents a lab certificate; the
//! certificates differ in names, validity and issuer only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::LabError;

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
}

impl CertKind {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            CertKind::Valid => "valid",
            CertKind::SelfSigned => "self-signed",
            CertKind::Expired => "expired",
            CertKind::WrongName => "wrong-name",
        }
    }
}

/// The name a [`CertKind::WrongName`] certificate is issued for.
pub const WRONG_NAME: &str = "wrong-name.lab.test";

/// Cap on cached leaf certificates; the cache is emptied when it is reached (bounded memory
/// with 100,000+ synthetic names).
const CACHE_CAP: usize = 20_000;

/// Issued chains by (defect, names).
type CertCache = HashMap<(CertKind, Vec<String>), Arc<CertifiedKey>>;

/// The lab CA and the leaf certificate factory.
pub(crate) struct Pki {
    ca_issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    leaf_key: KeyPair,
    leaf_signing: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<CertCache>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("ca_pem", &self.ca_pem.len())
            .finish_non_exhaustive()
    }
}

fn pki_err(e: impl std::fmt::Display) -> LabError {
    LabError::Pki(e.to_string())
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "mxray lab");
    dn
}

impl Pki {
    /// Generates a fresh CA and leaf key.
    pub(crate) fn generate() -> Result<Self, LabError> {
        let now = OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate().map_err(pki_err)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("mxray lab CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365);
        let ca_cert = params.self_signed(&ca_key).map_err(pki_err)?;
        let ca_der = ca_cert.der().clone();
        let ca_pem = ca_cert.pem();
        let ca_issuer = Issuer::new(params, ca_key);

        let leaf_key = KeyPair::generate().map_err(pki_err)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let leaf_signing = rustls::crypto::ring::sign::any_supported_type(&der).map_err(pki_err)?;
        Ok(Pki {
            ca_issuer,
            ca_der,
            ca_pem,
            leaf_key,
            leaf_signing,
            cache: Mutex::default(),
        })
    }

    /// The CA certificate, PEM (what `--ca-file` takes).
    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// SHA-256 of the leaf key's SubjectPublicKeyInfo: the data of a DANE-EE `3 1 1` record
    /// that matches every lab leaf certificate.
    pub(crate) fn leaf_spki_sha256(&self) -> Vec<u8> {
        use rcgen::PublicKeyData;
        Sha256::digest(self.leaf_key.subject_public_key_info()).to_vec()
    }

    /// SHA-256 of the CA certificate: the data of a DANE-TA `2 0 1` record.
    pub(crate) fn ca_cert_sha256(&self) -> Vec<u8> {
        Sha256::digest(self.ca_der.as_ref()).to_vec()
    }

    /// The certificate chain and key for `names` with the given defect (cached).
    pub(crate) fn certified_key(
        &self,
        kind: CertKind,
        names: &[String],
    ) -> Result<Arc<CertifiedKey>, LabError> {
        let key = (kind, names.to_vec());
        if let Ok(cache) = self.cache.lock() {
            if let Some(ck) = cache.get(&key) {
                return Ok(ck.clone());
            }
        }
        let chain = self.issue(kind, names)?;
        let ck = Arc::new(CertifiedKey::new(chain, self.leaf_signing.clone()));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
            cache.insert(key, ck.clone());
        }
        Ok(ck)
    }

    /// Issues a chain (leaf first) for `names`.
    pub(crate) fn issue(
        &self,
        kind: CertKind,
        names: &[String],
    ) -> Result<Vec<CertificateDer<'static>>, LabError> {
        let now = OffsetDateTime::now_utc();
        let names: Vec<String> = match kind {
            CertKind::WrongName => vec![WRONG_NAME.to_owned()],
            _ => names.to_vec(),
        };
        let cn = names
            .first()
            .cloned()
            .unwrap_or_else(|| "lab.test".to_owned());
        let mut params = CertificateParams::new(names).map_err(pki_err)?;
        params.distinguished_name = dn(&cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let (nb, na) = match kind {
            CertKind::Expired => (now - Duration::days(60), now - Duration::days(30)),
            _ => (now - Duration::days(1), now + Duration::days(90)),
        };
        params.not_before = nb;
        params.not_after = na;
        match kind {
            CertKind::SelfSigned => {
                let cert = params.self_signed(&self.leaf_key).map_err(pki_err)?;
                Ok(vec![cert.der().clone()])
            }
            _ => {
                let cert = params
                    .signed_by(&self.leaf_key, &self.ca_issuer)
                    .map_err(pki_err)?;
                Ok(vec![cert.der().clone(), self.ca_der.clone()])
            }
        }
    }
}
