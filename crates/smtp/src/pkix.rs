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
            // The leaf's own key is never used to check a signature in the path: a chain
            // can validate with a key no current sender accepts.
            Ok(_) if weak_key(leaf) => Err(PkixError::WeakKey),
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(e)) => {
                let class = classify(&e, leaf, chain.len());
                match class {
                    // A signature webpki could not check: say why when the chain shows it.
                    PkixError::BadSignature | PkixError::Other => {
                        Err(weak_crypto(chain).unwrap_or(class))
                    }
                    _ => Err(class),
                }
            }
            Err(_) => Err(PkixError::Other),
        }
    }
}

/// Signature algorithms no validator accepts any more: MD2, MD5 and SHA-1 with RSA, DSA with
/// SHA-1, ECDSA with SHA-1 (OIDs of RFC 3279 §2.2 and RFC 5758).
const WEAK_SIGNATURE_OIDS: &[&str] = &[
    "1.2.840.113549.1.1.2",
    "1.2.840.113549.1.1.4",
    "1.2.840.113549.1.1.5",
    "1.3.14.3.2.29",
    "1.2.840.10040.4.3",
    "1.2.840.10045.4.1",
];

/// Why a chain whose signatures webpki could not verify fails, when it is weak cryptography:
/// a certificate signed with a weak algorithm (a root's own self-signature does not count,
/// nobody checks it), else an issuing certificate with a weak key.
fn weak_crypto(chain: &[CertificateDer<'_>]) -> Option<PkixError> {
    let parsed: Vec<_> = chain
        .iter()
        .filter_map(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .map(|(_, c)| c)
        .collect();
    let weak_sig = parsed.iter().any(|c| {
        c.subject().as_raw() != c.issuer().as_raw()
            && WEAK_SIGNATURE_OIDS
                .contains(&c.signature_algorithm.algorithm.to_id_string().as_str())
    });
    if weak_sig {
        return Some(PkixError::WeakSignature);
    }
    chain
        .iter()
        .skip(1)
        .any(|c| weak_key(c))
        .then_some(PkixError::WeakKey)
}

/// An RSA key shorter than 2048 bits, or a DSA key: what the CA/Browser Forum Baseline
/// Requirements (§6.1.5) no longer allow and what OpenSSL's default security level and
/// rustls refuse.
fn weak_key(der: &CertificateDer<'_>) -> bool {
    use x509_parser::public_key::PublicKey;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return false;
    };
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => rsa.key_size() < 2048,
        Ok(PublicKey::DSA(_)) => true,
        _ => false,
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
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};
    use rcgen::{CertificateParams, IsCa, Issuer, KeyPair};

    /// Seconds since the epoch; certificates start an hour back so that one made this second is
    /// not "not yet valid" to a check in the same second.
    fn unix_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    fn rsa(bits: u32) -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(bits).expect("rsa")).expect("pkey")
    }

    fn p256() -> PKey<Private> {
        let g = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        PKey::from_ec_key(EcKey::generate(&g).expect("ec")).expect("pkey")
    }

    /// A certificate for `cn` with `key`, signed by `issuer` (or itself) with `md`.
    fn cert(
        cn: &str,
        key: &PKey<Private>,
        issuer: Option<(&X509, &PKey<Private>)>,
        md: MessageDigest,
    ) -> X509 {
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", cn).expect("cn");
        let name = name.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        b.set_serial_number(
            &BigNum::from_u32(7)
                .expect("bn")
                .to_asn1_integer()
                .expect("serial"),
        )
        .expect("serial");
        b.set_subject_name(&name).expect("subject");
        b.set_pubkey(key).expect("pubkey");
        b.set_not_before(&Asn1Time::from_unix(unix_now() - 3600).expect("t"))
            .expect("nb");
        b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
            .expect("na");
        let (issuer_name, signer) = match issuer {
            Some((ca, ca_key)) => (ca.subject_name().to_owned().expect("n"), ca_key),
            None => (name.to_owned().expect("n"), key),
        };
        b.set_issuer_name(&issuer_name).expect("issuer");
        if issuer.is_none() {
            b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
                .expect("ext");
        } else {
            let ctx = b.x509v3_context(issuer.map(|i| &**i.0), None);
            let san = SubjectAlternativeName::new()
                .dns(cn)
                .build(&ctx)
                .expect("san");
            b.append_extension(san).expect("ext");
        }
        b.sign(signer, md).expect("sign");
        b.build()
    }

    fn der(c: &X509) -> CertificateDer<'static> {
        CertificateDer::from(c.to_der().expect("der"))
    }

    fn checker(root: &X509) -> PkixChecker {
        PkixChecker::new(&root.to_pem().expect("pem")).expect("checker")
    }

    #[test]
    fn a_leaf_key_under_2048_bits_is_a_weak_key() {
        let ca_key = p256();
        let ca = cert("weak key test CA", &ca_key, None, MessageDigest::sha256());
        let pk = checker(&ca);
        let now = UnixTime::now();
        let small = cert(
            "mx.weak.test",
            &rsa(1024),
            Some((&ca, &ca_key)),
            MessageDigest::sha256(),
        );
        assert_eq!(
            pk.check(&[der(&small), der(&ca)], "mx.weak.test", now),
            Err(PkixError::WeakKey)
        );
        let fine = cert(
            "mx.weak.test",
            &rsa(2048),
            Some((&ca, &ca_key)),
            MessageDigest::sha256(),
        );
        assert_eq!(
            pk.check(&[der(&fine), der(&ca)], "mx.weak.test", now),
            Ok(())
        );
        // Trust and names still come first: a small key for another name is a name mismatch.
        assert_eq!(
            pk.check(&[der(&small), der(&ca)], "other.test", now),
            Err(PkixError::NameMismatch)
        );
    }

    #[test]
    fn a_sha1_signature_in_the_chain_is_a_weak_signature() {
        let ca_key = rsa(2048);
        let ca = cert("sha1 test CA", &ca_key, None, MessageDigest::sha256());
        let pk = checker(&ca);
        let leaf = cert(
            "mx.sha1.test",
            &p256(),
            Some((&ca, &ca_key)),
            MessageDigest::sha1(),
        );
        assert_eq!(
            pk.check(&[der(&leaf), der(&ca)], "mx.sha1.test", UnixTime::now()),
            Err(PkixError::WeakSignature)
        );
        // A SHA-1 self-signature on the root itself is nobody's concern.
        let old_root_key = rsa(2048);
        let old_root = cert("sha1 root", &old_root_key, None, MessageDigest::sha1());
        let leaf = cert(
            "mx.ok.test",
            &p256(),
            Some((&old_root, &old_root_key)),
            MessageDigest::sha256(),
        );
        assert_eq!(
            checker(&old_root).check(&[der(&leaf)], "mx.ok.test", UnixTime::now()),
            Ok(())
        );
    }

    #[test]
    fn an_issuer_key_under_2048_bits_is_a_weak_key() {
        let ca_key = rsa(1024);
        let ca = cert("small CA", &ca_key, None, MessageDigest::sha256());
        let leaf = cert(
            "mx.small-ca.test",
            &p256(),
            Some((&ca, &ca_key)),
            MessageDigest::sha256(),
        );
        assert_eq!(
            checker(&ca).check(&[der(&leaf), der(&ca)], "mx.small-ca.test", UnixTime::now()),
            Err(PkixError::WeakKey)
        );
    }

    #[test]
    fn a_chain_longer_than_the_verifiers_budget_is_path_too_long() {
        // Root -> 9 intermediates -> leaf: webpki stops at 6 intermediates.
        let root_key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, "root");
        let root = p.self_signed(&root_key).expect("root");
        let mut issuer = Issuer::new(p, root_key);
        let mut intermediates = Vec::new();
        for i in 0..9 {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
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
