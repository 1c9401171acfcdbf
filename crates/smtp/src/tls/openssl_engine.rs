//! The second engine: OpenSSL through the `openssl` crate, dynamically linked against the
//! system's libssl (Debian: `libssl3`, built against `libssl-dev` via pkg-config), driven over
//! tokio by `tokio-openssl`.
//!
//! Configured to talk to anything a sending MTA built on OpenSSL would: security level 0,
//! TLS 1.0 to 1.3 (the lowest and highest versions the library was built with; Debian's has
//! no SSLv3), cipher list `ALL:@SECLEVEL=0` (RSA key exchange, CBC, 3DES, DHE with small
//! groups; TLS 1.3 suites are OpenSSL's defaults), `SSL_OP_ALL` (its interoperability
//! workarounds, among them `SSL_OP_LEGACY_SERVER_CONNECT` for servers without RFC 5746
//! renegotiation indication, which OpenSSL 3 otherwise refuses), no session cache and no
//! tickets (every probe sees a full handshake), SNI as given. Nothing is verified inside
//! OpenSSL (`SSL_VERIFY_NONE`): the chain is captured and judged by the same PKIX and DANE
//! code as a chain rustls captured. Handshake signatures are still checked by OpenSSL, so
//! the chain is the one whose key the server holds.
//!
//! Why `tokio-openssl` rather than a sans-io memory BIO: it is the tokio project's own thin
//! adapter over `openssl::ssl::SslStream` (a `Read`/`Write` wrapper that turns `Pending` into
//! `WouldBlock`), the same non-blocking loop a BIO pair would need, without any unsafe code of
//! ours (the workspace forbids it).
//!
//! Never use this configuration to protect data: mxray sends nothing but EHLO and QUIT over it.

use mxray_model::ProbeErrorClass;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslRef, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use rustls::pki_types::CertificateDer;
use rustls::ProtocolVersion;

use super::{HandshakeFailure, Negotiated, TlsConnection, Transport};
use crate::SmtpError;

/// OpenSSL's `SSL_AD_REASON_OFFSET`: a received alert is reported as reason 1000 + its code.
const ALERT_REASON_OFFSET: i32 = 1000;

// Reason codes of `include/openssl/sslerr.h` (OpenSSL 3.0) that mean "nothing in common":
// the server and OpenSSL at security level 0 still found no version, suite, group or
// acceptable key. Numbers rather than texts, which change between releases.
const SSL_R_NO_CIPHERS_AVAILABLE: i32 = 181;
const SSL_R_NO_PROTOCOLS_AVAILABLE: i32 = 191;
const SSL_R_NO_SHARED_CIPHER: i32 = 193;
const SSL_R_UNSUPPORTED_PROTOCOL: i32 = 258;
const SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED: i32 = 338;
const SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM: i32 = 118;
const SSL_R_DH_KEY_TOO_SMALL: i32 = 394;
const SSL_R_EE_KEY_TOO_SMALL: i32 = 399;
const SSL_R_CA_KEY_TOO_SMALL: i32 = 397;
const SSL_R_CA_MD_TOO_WEAK: i32 = 398;
const SSL_R_VERSION_TOO_LOW: i32 = 396;
// The peer closed the connection in the middle of the handshake.
const SSL_R_UNEXPECTED_EOF_WHILE_READING: i32 = 294;

/// The OpenSSL client context every fallback probe shares.
#[derive(Clone)]
pub struct OpensslEngine {
    ctx: SslContext,
}

impl std::fmt::Debug for OpensslEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpensslEngine")
            .field("library", &openssl::version::version())
            .finish()
    }
}

impl OpensslEngine {
    /// The context described in the module doc.
    pub fn new() -> Result<Self, SmtpError> {
        let err = |what: &str, e: openssl::error::ErrorStack| {
            SmtpError::Tls(format!("OpenSSL {what}: {e}"))
        };
        let mut b = SslContext::builder(SslMethod::tls_client()).map_err(|e| err("context", e))?;
        b.set_security_level(0);
        // None: the lowest and highest versions this libssl supports, whatever the system
        // openssl.cnf says (Debian's may raise MinProtocol).
        b.set_min_proto_version(None)
            .map_err(|e| err("min version", e))?;
        b.set_max_proto_version(None)
            .map_err(|e| err("max version", e))?;
        b.set_cipher_list("ALL:@SECLEVEL=0")
            .map_err(|e| err("cipher list", e))?;
        b.set_verify(SslVerifyMode::NONE);
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.clear_options(SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1);
        b.set_options(SslOptions::ALL | SslOptions::NO_TICKET | SslOptions::NO_COMPRESSION);
        Ok(OpensslEngine { ctx: b.build() })
    }

    /// Runs the handshake; `sni` is sent when given (a DNS name). No timeout here: the
    /// caller bounds the future.
    pub async fn connect(
        &self,
        sni: Option<&str>,
        io: Transport,
    ) -> Result<(TlsConnection, Negotiated), HandshakeFailure> {
        let setup = |e: openssl::error::ErrorStack| HandshakeFailure {
            class: ProbeErrorClass::TlsError,
            alert: None,
            detail: format!("OpenSSL setup: {e}"),
            fallback: None,
        };
        let mut ssl = Ssl::new(&self.ctx).map_err(setup)?;
        if let Some(name) = sni {
            ssl.set_hostname(name).map_err(setup)?;
        }
        ssl.set_connect_state();
        let mut stream = Box::pin(tokio_openssl::SslStream::new(ssl, io).map_err(setup)?);
        if let Err(e) = stream.as_mut().connect().await {
            return Err(classify(&e));
        }
        let negotiated = negotiated(stream.ssl());
        Ok((TlsConnection::Openssl(stream), negotiated))
    }
}

/// OpenSSL's version as the protocol's own number, so that both engines spell it alike.
fn wire_version(v: SslVersion) -> Option<ProtocolVersion> {
    [
        (SslVersion::SSL3, ProtocolVersion::SSLv3),
        (SslVersion::TLS1, ProtocolVersion::TLSv1_0),
        (SslVersion::TLS1_1, ProtocolVersion::TLSv1_1),
        (SslVersion::TLS1_2, ProtocolVersion::TLSv1_2),
        (SslVersion::TLS1_3, ProtocolVersion::TLSv1_3),
    ]
    .into_iter()
    .find_map(|(o, p)| (o == v).then_some(p))
}

fn negotiated(ssl: &SslRef) -> Negotiated {
    let version = match ssl.version2().and_then(wire_version) {
        Some(v) => mxray_net::tls::version_name(v),
        None => ssl.version_str().to_owned(),
    };
    let cipher = ssl
        .current_cipher()
        .map(|c| match c.standard_name() {
            Some(std) => cipher_name(std),
            // A suite without an RFC name (GOST and the like): OpenSSL's own name.
            None => c.name().to_owned(),
        })
        .unwrap_or_default();
    let chain = ssl
        .peer_cert_chain()
        .map(|stack| {
            stack
                .iter()
                .filter_map(|c| c.to_der().ok())
                .map(CertificateDer::from)
                .collect()
        })
        .unwrap_or_default();
    Negotiated {
        version,
        cipher,
        kx_group: kx_group(ssl),
        chain,
    }
}

/// rustls's spelling of an RFC cipher suite name: the TLS 1.3 suites carry the `TLS13_`
/// prefix there (`TLS13_AES_128_GCM_SHA256`), the others are the IANA names unchanged.
pub fn cipher_name(standard: &str) -> String {
    match standard {
        "TLS_AES_128_GCM_SHA256"
        | "TLS_AES_256_GCM_SHA384"
        | "TLS_CHACHA20_POLY1305_SHA256"
        | "TLS_AES_128_CCM_SHA256"
        | "TLS_AES_128_CCM_8_SHA256" => format!("TLS13_{}", &standard[4..]),
        other => other.to_owned(),
    }
}

/// The key-exchange group from the server's ephemeral key, named as rustls names groups;
/// finite-field DHE with the server's own parameters as `DH <bits>`; None for RSA key
/// exchange (no ephemeral key).
fn kx_group(ssl: &SslRef) -> Option<String> {
    let key = ssl.peer_tmp_key().ok()?;
    match key.id() {
        Id::X25519 => Some("X25519".into()),
        Id::X448 => Some("X448".into()),
        Id::DH | Id::DHX => Some(format!("DH {}", key.bits())),
        Id::EC => {
            let nid = key.ec_key().ok()?.group().curve_name()?;
            Some(curve_name(nid))
        }
        other => Some(format!("{other:?}")),
    }
}

fn curve_name(nid: Nid) -> String {
    match nid {
        Nid::X9_62_PRIME256V1 => "secp256r1".into(),
        Nid::SECP384R1 => "secp384r1".into(),
        Nid::SECP521R1 => "secp521r1".into(),
        other => other.short_name().unwrap_or("unknown").to_owned(),
    }
}

/// The probe's error class, alert and detail of a failed OpenSSL handshake.
fn classify(e: &openssl::ssl::Error) -> HandshakeFailure {
    let reasons: Vec<i32> = e
        .ssl_error()
        .map(|stack| stack.errors().iter().map(|x| x.reason_code()).collect())
        .unwrap_or_default();
    let alert = reasons
        .iter()
        .find(|&&r| (ALERT_REASON_OFFSET..ALERT_REASON_OFFSET + 256).contains(&r))
        .and_then(|&r| u8::try_from(r - ALERT_REASON_OFFSET).ok());
    let class = failure_class(e.code(), e.io_error().map(|io| io.kind()), &reasons, alert);
    let detail = match e.io_error() {
        Some(io) => format!("OpenSSL: {io}"),
        None => format!("OpenSSL: {e}"),
    };
    HandshakeFailure {
        class,
        alert,
        detail: match alert {
            Some(a) => format!("alert {a} ({detail})"),
            None => detail,
        },
        fallback: None,
    }
}

/// The class of an OpenSSL handshake failure from its error code, I/O error kind, reason
/// codes and received alert (pure, so it can be tested without a peer).
fn failure_class(
    code: ErrorCode,
    io_kind: Option<std::io::ErrorKind>,
    reasons: &[i32],
    alert: Option<u8>,
) -> ProbeErrorClass {
    if let Some(a) = alert {
        // The same alerts rustls classes as "no common version, suite or group".
        return if matches!(a, 40 | 70 | 71) {
            ProbeErrorClass::TlsIncompatible
        } else {
            ProbeErrorClass::TlsAlert
        };
    }
    let incompatible = [
        SSL_R_NO_CIPHERS_AVAILABLE,
        SSL_R_NO_PROTOCOLS_AVAILABLE,
        SSL_R_NO_SHARED_CIPHER,
        SSL_R_UNSUPPORTED_PROTOCOL,
        SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED,
        SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM,
        SSL_R_DH_KEY_TOO_SMALL,
        SSL_R_EE_KEY_TOO_SMALL,
        SSL_R_CA_KEY_TOO_SMALL,
        SSL_R_CA_MD_TOO_WEAK,
        SSL_R_VERSION_TOO_LOW,
    ];
    if reasons.iter().any(|r| incompatible.contains(r)) {
        return ProbeErrorClass::TlsIncompatible;
    }
    if reasons.contains(&SSL_R_UNEXPECTED_EOF_WHILE_READING) || code == ErrorCode::ZERO_RETURN {
        return ProbeErrorClass::TlsReset;
    }
    if code == ErrorCode::SYSCALL {
        use std::io::ErrorKind as K;
        return match io_kind {
            // SYSCALL without an I/O error: EOF in violation of the protocol.
            None
            | Some(K::ConnectionReset | K::UnexpectedEof | K::BrokenPipe | K::ConnectionAborted) => {
                ProbeErrorClass::TlsReset
            }
            Some(_) => ProbeErrorClass::TlsError,
        };
    }
    ProbeErrorClass::TlsError
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_builds_with_the_system_libssl() {
        let e = OpensslEngine::new().expect("context");
        assert!(format!("{e:?}").contains("OpenSSL"), "{e:?}");
    }

    #[test]
    fn tls13_suites_take_the_rustls_spelling() {
        assert_eq!(
            cipher_name("TLS_AES_256_GCM_SHA384"),
            "TLS13_AES_256_GCM_SHA384"
        );
        assert_eq!(
            cipher_name("TLS_CHACHA20_POLY1305_SHA256"),
            "TLS13_CHACHA20_POLY1305_SHA256"
        );
        assert_eq!(
            cipher_name("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        );
        assert_eq!(
            cipher_name("TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
        );
    }

    #[test]
    fn openssl_failures_are_classified() {
        use std::io::ErrorKind as K;
        let c = failure_class;
        assert_eq!(
            c(ErrorCode::SSL, None, &[1040], Some(40)),
            ProbeErrorClass::TlsIncompatible
        );
        assert_eq!(
            c(ErrorCode::SSL, None, &[1042], Some(42)),
            ProbeErrorClass::TlsAlert
        );
        assert_eq!(
            c(ErrorCode::SSL, None, &[SSL_R_UNSUPPORTED_PROTOCOL], None),
            ProbeErrorClass::TlsIncompatible
        );
        assert_eq!(
            c(ErrorCode::SSL, None, &[SSL_R_DH_KEY_TOO_SMALL], None),
            ProbeErrorClass::TlsIncompatible
        );
        // "wrong version number": the bytes were not TLS.
        assert_eq!(
            c(ErrorCode::SSL, None, &[267], None),
            ProbeErrorClass::TlsError
        );
        assert_eq!(
            c(
                ErrorCode::SSL,
                None,
                &[SSL_R_UNEXPECTED_EOF_WHILE_READING],
                None
            ),
            ProbeErrorClass::TlsReset
        );
        assert_eq!(
            c(ErrorCode::SYSCALL, None, &[], None),
            ProbeErrorClass::TlsReset
        );
        assert_eq!(
            c(ErrorCode::SYSCALL, Some(K::ConnectionReset), &[], None),
            ProbeErrorClass::TlsReset
        );
        assert_eq!(
            c(ErrorCode::SYSCALL, Some(K::PermissionDenied), &[], None),
            ProbeErrorClass::TlsError
        );
    }
}
