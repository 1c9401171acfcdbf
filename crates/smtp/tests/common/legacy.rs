//! OpenSSL servers for the fallback tests: what rustls cannot talk to (TLS 1.0/1.1 only,
//! RSA keys under 2048 bits, CBC-only suites), with certificates made by OpenSSL and signed
//! by the rcgen test CA of `common` so PKIX can judge them with `--ca-file`.

use std::pin::Pin;
use std::sync::Arc;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use tokio::net::TcpStream;

use super::Cert;

/// Seconds since the epoch; certificates start an hour back so that one made this second is
/// not "not yet valid" to a check in the same second.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An RSA leaf for `name`, of `bits` bits, signed by the rcgen `ca` with SHA-256.
pub fn rsa_leaf(name: &str, bits: u32, ca: &Cert) -> (X509, PKey<Private>) {
    let key = PKey::from_rsa(Rsa::generate(bits).expect("rsa")).expect("pkey");
    let ca_cert = X509::from_pem(ca.pem.as_bytes()).expect("ca pem");
    let ca_key = PKey::private_key_from_pem(ca.key.serialize_pem().as_bytes()).expect("ca key");
    let mut n = X509NameBuilder::new().expect("name");
    n.append_entry_by_text("CN", name).expect("cn");
    let n = n.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    b.set_serial_number(
        &BigNum::from_u32(42)
            .expect("bn")
            .to_asn1_integer()
            .expect("int"),
    )
    .expect("serial");
    b.set_subject_name(&n).expect("subject");
    b.set_issuer_name(ca_cert.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::from_unix(unix_now() - 3600).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
        .expect("na");
    b.append_extension(BasicConstraints::new().build().expect("bc"))
        .expect("ext");
    let san = SubjectAlternativeName::new()
        .dns(name)
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .expect("san");
    b.append_extension(san).expect("ext");
    b.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    (b.build(), key)
}

/// An OpenSSL server context at security level 0 that speaks only `min..=max`, presenting
/// `leaf` and `ca` (when given), with `ciphers` (an OpenSSL cipher list).
pub fn acceptor(
    leaf: &X509,
    key: &PKey<Private>,
    ca: Option<&Cert>,
    min: SslVersion,
    max: SslVersion,
    ciphers: &str,
) -> Arc<SslAcceptor> {
    let mut b = SslAcceptor::mozilla_intermediate(SslMethod::tls_server()).expect("acceptor");
    b.set_security_level(0);
    b.set_min_proto_version(Some(min)).expect("min");
    b.set_max_proto_version(Some(max)).expect("max");
    b.set_cipher_list(ciphers).expect("ciphers");
    b.set_certificate(leaf).expect("cert");
    b.set_private_key(key).expect("key");
    if let Some(ca) = ca {
        b.add_extra_chain_cert(X509::from_pem(ca.pem.as_bytes()).expect("ca"))
            .expect("chain");
    }
    Arc::new(b.build())
}

/// Accepts one TLS connection with OpenSSL.
pub async fn accept(
    acceptor: &SslAcceptor,
    sock: TcpStream,
) -> std::io::Result<Pin<Box<tokio_openssl::SslStream<TcpStream>>>> {
    let ssl = openssl::ssl::Ssl::new(acceptor.context()).map_err(std::io::Error::other)?;
    let mut s = Box::pin(tokio_openssl::SslStream::new(ssl, sock).map_err(std::io::Error::other)?);
    s.as_mut()
        .accept()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(s)
}
