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

use crate::error::LabError;
use crate::spec::{CertKind, SmtpBehaviour, WRONG_NAME};

/// The OpenSSL servers of the lab: what rustls cannot serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LegacyTls {
    /// TLS 1.0 only, RSA-2048 leaf issued by the lab CA.
    Tls10Rsa2048,
    /// TLS 1.2, RSA-1024 leaf issued by the lab CA.
    Tls12Rsa1024,
}

impl LegacyTls {
    /// The OpenSSL server a behaviour needs, if rustls cannot serve it.
    pub(crate) fn of(behaviour: SmtpBehaviour) -> Option<LegacyTls> {
        match behaviour {
            SmtpBehaviour::LegacyTls10 => Some(LegacyTls::Tls10Rsa2048),
            SmtpBehaviour::WeakRsaKey => Some(LegacyTls::Tls12Rsa1024),
            _ => None,
        }
    }
}

/// Cap on cached leaf certificates; the cache is emptied when it is reached (bounded memory
/// with 100,000+ synthetic names).
const CACHE_CAP: usize = 20_000;

/// Issued chains by (defect, names).
type CertCache = HashMap<(CertKind, Vec<String>), Arc<CertifiedKey>>;

/// OpenSSL server contexts by (kind, names): a handful of case hosts, never pool hosts.
type OpensslCache = HashMap<(LegacyTls, Vec<String>), Arc<openssl::ssl::SslAcceptor>>;

/// The lab CA and the leaf certificate factory.
pub(crate) struct Pki {
    ca_issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    /// The CA key in PEM, for the OpenSSL-issued leaves.
    ca_key_pem: String,
    /// The CA's SubjectPublicKeyInfo (DER): the data of a DANE-TA `2 1 0` record.
    ca_spki: Vec<u8>,
    leaf_key: KeyPair,
    leaf_signing: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<CertCache>,
    openssl: Mutex<OpensslCache>,
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
        let ca_key_pem = ca_key.serialize_pem();
        let ca_spki = {
            use rcgen::PublicKeyData;
            ca_key.subject_public_key_info()
        };
        let ca_issuer = Issuer::new(params, ca_key);

        let leaf_key = KeyPair::generate().map_err(pki_err)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let leaf_signing = rustls::crypto::ring::sign::any_supported_type(&der).map_err(pki_err)?;
        Ok(Pki {
            ca_issuer,
            ca_der,
            ca_pem,
            ca_key_pem,
            ca_spki,
            leaf_key,
            leaf_signing,
            cache: Mutex::default(),
            openssl: Mutex::default(),
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

    /// The CA's SubjectPublicKeyInfo, DER: the data of a DANE-TA `2 1 0` record.
    pub(crate) fn ca_spki(&self) -> Vec<u8> {
        self.ca_spki.clone()
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
        let san = match kind {
            CertKind::CnOnly => Vec::new(),
            _ => names,
        };
        let mut params = CertificateParams::new(san).map_err(pki_err)?;
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
            CertKind::LeafOnly => {
                let cert = params
                    .signed_by(&self.leaf_key, &self.ca_issuer)
                    .map_err(pki_err)?;
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

    /// An OpenSSL server context for `names` (cached): an RSA leaf issued by the lab CA, chain
    /// leaf + CA, security level 0 so that old protocol versions and small keys are allowed.
    pub(crate) fn openssl_acceptor(
        &self,
        kind: LegacyTls,
        names: &[String],
    ) -> Result<Arc<openssl::ssl::SslAcceptor>, LabError> {
        use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
        let key = (kind, names.to_vec());
        if let Some(a) = self.openssl.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(a);
        }
        let (bits, version) = match kind {
            LegacyTls::Tls10Rsa2048 => (2048, SslVersion::TLS1),
            LegacyTls::Tls12Rsa1024 => (1024, SslVersion::TLS1_2),
        };
        let (leaf, leaf_key) = self.openssl_leaf(names, bits)?;
        let ca = openssl::x509::X509::from_der(self.ca_der.as_ref()).map_err(pki_err)?;
        let mut b = SslAcceptor::mozilla_intermediate(SslMethod::tls_server()).map_err(pki_err)?;
        b.set_security_level(0);
        b.set_min_proto_version(Some(version)).map_err(pki_err)?;
        b.set_max_proto_version(Some(version)).map_err(pki_err)?;
        b.set_cipher_list("ALL:@SECLEVEL=0").map_err(pki_err)?;
        b.set_certificate(&leaf).map_err(pki_err)?;
        b.set_private_key(&leaf_key).map_err(pki_err)?;
        b.add_extra_chain_cert(ca).map_err(pki_err)?;
        let a = Arc::new(b.build());
        if let Ok(mut c) = self.openssl.lock() {
            c.insert(key, a.clone());
        }
        Ok(a)
    }

    /// An RSA leaf of `bits` bits for `names`, issued by the lab CA (SHA-256).
    fn openssl_leaf(
        &self,
        names: &[String],
        bits: u32,
    ) -> Result<
        (
            openssl::x509::X509,
            openssl::pkey::PKey<openssl::pkey::Private>,
        ),
        LabError,
    > {
        use openssl::asn1::Asn1Time;
        use openssl::bn::BigNum;
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;
        use openssl::x509::extension::{
            BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName,
        };
        use openssl::x509::{X509NameBuilder, X509};
        let key = PKey::from_rsa(Rsa::generate(bits).map_err(pki_err)?).map_err(pki_err)?;
        let ca = X509::from_der(self.ca_der.as_ref()).map_err(pki_err)?;
        let ca_key = PKey::private_key_from_pem(self.ca_key_pem.as_bytes()).map_err(pki_err)?;
        let cn = names.first().map_or("lab.test", String::as_str);
        let mut n = X509NameBuilder::new().map_err(pki_err)?;
        n.append_entry_by_text("CN", cn).map_err(pki_err)?;
        let n = n.build();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut b = X509::builder().map_err(pki_err)?;
        b.set_version(2).map_err(pki_err)?;
        let mut serial = BigNum::new().map_err(pki_err)?;
        serial
            .rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)
            .map_err(pki_err)?;
        let serial = serial.to_asn1_integer().map_err(pki_err)?;
        b.set_serial_number(&serial).map_err(pki_err)?;
        b.set_subject_name(&n).map_err(pki_err)?;
        b.set_issuer_name(ca.subject_name()).map_err(pki_err)?;
        b.set_pubkey(&key).map_err(pki_err)?;
        let nb = Asn1Time::from_unix(now - 86400).map_err(pki_err)?;
        let na = Asn1Time::days_from_now(90).map_err(pki_err)?;
        b.set_not_before(&nb).map_err(pki_err)?;
        b.set_not_after(&na).map_err(pki_err)?;
        let bc = BasicConstraints::new().build().map_err(pki_err)?;
        b.append_extension(bc).map_err(pki_err)?;
        let eku = ExtendedKeyUsage::new()
            .server_auth()
            .build()
            .map_err(pki_err)?;
        b.append_extension(eku).map_err(pki_err)?;
        let mut san = SubjectAlternativeName::new();
        for name in names {
            san.dns(name);
        }
        let san = san
            .build(&b.x509v3_context(Some(&ca), None))
            .map_err(pki_err)?;
        b.append_extension(san).map_err(pki_err)?;
        b.sign(&ca_key, MessageDigest::sha256()).map_err(pki_err)?;
        Ok((b.build(), key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["mx.case.lab.test".to_owned()]
    }

    #[test]
    fn cn_only_leaf_has_no_subject_alt_name() {
        let pki = Pki::generate().expect("pki");
        let chain = pki.issue(CertKind::CnOnly, &names()).expect("issue");
        assert_eq!(chain.len(), 2);
        let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref()).expect("x509");
        assert!(leaf.subject_alternative_name().expect("ext").is_none());
        let cn: Vec<&str> = leaf
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .collect();
        assert_eq!(cn, vec!["mx.case.lab.test"]);
    }

    #[test]
    fn leaf_only_chain_omits_the_ca() {
        let pki = Pki::generate().expect("pki");
        let chain = pki.issue(CertKind::LeafOnly, &names()).expect("issue");
        assert_eq!(chain.len(), 1);
        let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref()).expect("x509");
        let (_, ca) = x509_parser::parse_x509_certificate(pki.ca_der.as_ref()).expect("x509");
        assert_eq!(leaf.issuer(), ca.subject());
        // The 2 1 0 anchor is the key that signed the leaf.
        assert_eq!(ca.public_key().raw, pki.ca_spki().as_slice());
    }

    #[test]
    fn openssl_leaves_are_rsa_of_the_stated_size_issued_by_the_lab_ca() {
        let pki = Pki::generate().expect("pki");
        for (kind, bits) in [
            (LegacyTls::Tls10Rsa2048, 2048),
            (LegacyTls::Tls12Rsa1024, 1024),
        ] {
            let (leaf, _) = pki.openssl_leaf(&names(), bits).expect("leaf");
            assert_eq!(leaf.public_key().expect("key").bits(), bits);
            let ca = openssl::x509::X509::from_der(pki.ca_der.as_ref()).expect("ca");
            assert!(leaf
                .verify(&ca.public_key().expect("ca key"))
                .expect("verify"));
            assert!(pki.openssl_acceptor(kind, &names()).is_ok());
        }
    }
}
