//! `certificate` records from DER (x509-parser). A certificate that does not parse still gets
//! a record with its hash and DER, and empty descriptive fields, so nothing seen is lost.

use base64::Engine as _;
use mxray_model::{CertificateRecord, UtcTime};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

/// SHA-256 of `der`, lower-case hex.
pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The `certificate` record of one DER certificate.
pub fn certificate_record(der: &[u8], scan_id: Uuid, vantage: &str) -> CertificateRecord {
    let mut rec = CertificateRecord {
        scan_id,
        vantage: vantage.to_owned(),
        sha256: sha256_hex(der),
        der: base64::engine::general_purpose::STANDARD.encode(der),
        subject: String::new(),
        issuer: String::new(),
        sans: Vec::new(),
        not_before: UtcTime::from_unix(0),
        not_after: UtcTime::from_unix(0),
        serial: String::new(),
        spki_sha256: String::new(),
        key_type: String::new(),
        signature_algorithm: String::new(),
        is_ca: false,
        self_issued: false,
    };
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        rec.key_type = "unparsable".into();
        return rec;
    };
    rec.subject = cert.subject().to_string();
    rec.issuer = cert.issuer().to_string();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => rec.sans.push((*d).to_owned()),
                GeneralName::IPAddress(b) => rec.sans.push(ip_text(b)),
                _ => {}
            }
        }
    }
    rec.not_before = UtcTime::from_unix(cert.validity().not_before.timestamp());
    rec.not_after = UtcTime::from_unix(cert.validity().not_after.timestamp());
    rec.serial = hex::encode(cert.raw_serial());
    rec.spki_sha256 = sha256_hex(cert.public_key().raw);
    rec.key_type = key_type(&cert);
    rec.signature_algorithm = sig_name(&cert.signature_algorithm.algorithm.to_id_string());
    rec.is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    rec.self_issued = cert.subject().as_raw() == cert.issuer().as_raw();
    rec
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => hex::encode(b),
    }
}

/// The key type and size of a DER certificate (`RSA 2048`, `EC P-256`, `Ed25519`, `DSA`, ...),
/// None when it does not parse.
pub fn key_description(der: &[u8]) -> Option<String> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, c)| key_type(&c))
}

fn key_type(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    match alg.as_str() {
        "1.3.101.112" => return "Ed25519".into(),
        "1.3.101.113" => return "Ed448".into(),
        _ => {}
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => "EC P-256".into(),
                "1.3.132.0.34" => "EC P-384".into(),
                "1.3.132.0.35" => "EC P-521".into(),
                other => format!("EC {other}"),
            }
        }
        Ok(PublicKey::DSA(_)) => "DSA".into(),
        _ => alg,
    }
}

fn sig_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => return other.to_owned(),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_der_still_yields_a_record() {
        let r = certificate_record(b"not a certificate", Uuid::nil(), "v");
        assert_eq!(r.sha256, sha256_hex(b"not a certificate"));
        assert_eq!(r.der, "bm90IGEgY2VydGlmaWNhdGU=");
        assert_eq!(r.key_type, "unparsable");
    }
}
