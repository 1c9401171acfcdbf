//! The canary's fixed bytes ([`CannedReplies`]), what a probe expects from it
//! ([`Expectation`]), and its certificate ([`Identity`]).

use std::fmt;

use mxray_smtp_reply::ReplyParser;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::CanaryError;

/// Host name in the default replies and the generated certificate. `.invalid` (RFC 2606):
/// it can never be a real mail host.
pub const DEFAULT_NAME: &str = "canary.mxray.invalid";

/// Every reply the canary can send, as exact wire bytes (CRLF included).
///
/// The defaults (documented per field) look like an ordinary ESMTP server so that
/// middleboxes treat the canary like any MX. Each value must be exactly one complete SMTP
/// reply; [`CannedReplies::validate`] checks that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CannedReplies {
    /// The greeting. Default `220 canary.mxray.invalid ESMTP mxray-canary\r\n`.
    pub greeting: String,
    /// Reply to EHLO before TLS, with STARTTLS. Default:
    /// `250-canary.mxray.invalid\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n`.
    pub ehlo: String,
    /// Reply to STARTTLS. Default `220 2.0.0 Ready to start TLS\r\n`.
    pub starttls: String,
    /// Reply to EHLO inside TLS (no STARTTLS). Default: the pre-TLS reply without the
    /// `STARTTLS` line.
    pub ehlo_tls: String,
    /// Reply to HELO. Default `250 canary.mxray.invalid\r\n`.
    pub helo: String,
    /// Reply to QUIT. Default `221 2.0.0 Bye\r\n`.
    pub quit: String,
    /// Reply to NOOP and RSET. Default `250 2.0.0 OK\r\n`.
    pub ok: String,
    /// Reply to MAIL, RCPT, DATA, BDAT: the canary never accepts mail. Default
    /// `550 5.7.1 This is a measurement canary; it accepts no mail\r\n`.
    pub refuse_mail: String,
    /// Reply to an unknown command (including a rewritten `STARTTLS`). Default
    /// `500 5.5.1 Command unrecognized\r\n`.
    pub unknown: String,
    /// Reply to STARTTLS inside TLS. Default `503 5.5.1 TLS already active\r\n`.
    pub bad_sequence: String,
}

impl Default for CannedReplies {
    fn default() -> Self {
        let n = DEFAULT_NAME;
        CannedReplies {
            greeting: format!("220 {n} ESMTP mxray-canary\r\n"),
            ehlo: format!(
                "250-{n}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n"
            ),
            starttls: "220 2.0.0 Ready to start TLS\r\n".into(),
            ehlo_tls: format!(
                "250-{n}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            ),
            helo: format!("250 {n}\r\n"),
            quit: "221 2.0.0 Bye\r\n".into(),
            ok: "250 2.0.0 OK\r\n".into(),
            refuse_mail: "550 5.7.1 This is a measurement canary; it accepts no mail\r\n".into(),
            unknown: "500 5.5.1 Command unrecognized\r\n".into(),
            bad_sequence: "503 5.5.1 TLS already active\r\n".into(),
        }
    }
}

impl CannedReplies {
    /// Checks that every value is exactly one complete SMTP reply ending in CRLF, with the
    /// right class of code for its role (2xx greeting/EHLO/HELO, 220 for STARTTLS, 221 QUIT).
    pub fn validate(&self) -> Result<(), CanaryError> {
        let fields: [(&str, &str, Option<u16>); 10] = [
            ("greeting", &self.greeting, Some(220)),
            ("ehlo", &self.ehlo, Some(250)),
            ("starttls", &self.starttls, Some(220)),
            ("ehlo_tls", &self.ehlo_tls, Some(250)),
            ("helo", &self.helo, Some(250)),
            ("quit", &self.quit, Some(221)),
            ("ok", &self.ok, Some(250)),
            ("refuse_mail", &self.refuse_mail, None),
            ("unknown", &self.unknown, None),
            ("bad_sequence", &self.bad_sequence, None),
        ];
        for (name, text, code) in fields {
            let bad = |why: &str| CanaryError::Replies(format!("{name}: {why}"));
            if !text.ends_with("\r\n") {
                return Err(bad("must end with CRLF"));
            }
            if text.lines().any(|l| l.len() > 510) {
                return Err(bad("a line is longer than 512 bytes with its CRLF"));
            }
            let mut p = ReplyParser::new(512, 8192);
            p.feed(text.as_bytes());
            let reply = match p.next_reply() {
                Ok(Some(r)) => r,
                Ok(None) => return Err(bad("not a complete reply")),
                Err(e) => return Err(bad(&e.to_string())),
            };
            if p.buffered() != 0 {
                return Err(bad("more than one reply"));
            }
            if let Some(c) = code {
                if reply.code != c {
                    return Err(bad(&format!("code must be {c}")));
                }
            }
        }
        let ehlo_has_starttls = self.ehlo.lines().skip(1).any(|l| {
            l.get(4..)
                .and_then(|k| k.split_whitespace().next())
                .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
        });
        if !ehlo_has_starttls {
            return Err(CanaryError::Replies(
                "ehlo: must advertise STARTTLS (that is what the canary tests)".into(),
            ));
        }
        Ok(())
    }
}

/// What a probe expects from a canary: the canary's fixed bytes in the order a probe's
/// dialogue (greeting, EHLO, STARTTLS, EHLO, QUIT) makes it send them, and the SHA-256 of
/// its certificate chain. Served by the canary's control endpoint (`EXPECT`) and printed by
/// `mxray canary serve`, so it can also be kept as a JSON file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The greeting.
    pub greeting: String,
    /// The EHLO reply before TLS.
    pub ehlo: String,
    /// The STARTTLS reply.
    pub starttls: String,
    /// The EHLO reply inside TLS.
    pub ehlo_tls: String,
    /// The QUIT reply.
    pub quit: String,
    /// SHA-256 (lower-case hex) of each certificate the canary presents, leaf first.
    pub cert_sha256: Vec<String>,
}

impl Expectation {
    /// The expectation for a canary with these replies and certificate chain.
    pub fn new(replies: &CannedReplies, cert_sha256: Vec<String>) -> Self {
        Expectation {
            greeting: replies.greeting.clone(),
            ehlo: replies.ehlo.clone(),
            starttls: replies.starttls.clone(),
            ehlo_tls: replies.ehlo_tls.clone(),
            quit: replies.quit.clone(),
            cert_sha256,
        }
    }

    /// Server-to-client bytes before TLS: greeting, EHLO reply, STARTTLS reply (nothing for
    /// implicit TLS).
    pub fn plain_stream(&self, implicit_tls: bool) -> Vec<u8> {
        if implicit_tls {
            return Vec::new();
        }
        [&self.greeting, &self.ehlo, &self.starttls]
            .iter()
            .flat_map(|s| s.as_bytes())
            .copied()
            .collect()
    }

    /// Server-to-client bytes inside TLS: (greeting, for implicit TLS), EHLO reply, QUIT reply.
    pub fn tls_stream(&self, implicit_tls: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if implicit_tls {
            out.extend_from_slice(self.greeting.as_bytes());
        }
        out.extend_from_slice(self.ehlo_tls.as_bytes());
        out.extend_from_slice(self.quit.as_bytes());
        out
    }
}

/// The canary's TLS certificate chain and private key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("chain_sha256", &self.chain_sha256())
            .field("key", &"<private>")
            .finish()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// A fresh self-signed certificate (ECDSA P-256) for `names` (default
    /// [`DEFAULT_NAME`] when empty).
    pub fn generate(names: &[String]) -> Result<Self, CanaryError> {
        let names = if names.is_empty() {
            vec![DEFAULT_NAME.to_owned()]
        } else {
            names.to_vec()
        };
        let ck = rcgen::generate_simple_self_signed(names)
            .map_err(|e| CanaryError::Certificate(e.to_string()))?;
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
            .map_err(|e| CanaryError::Certificate(e.to_string()))?;
        Ok(Identity {
            chain: vec![ck.cert.der().clone()],
            key,
        })
    }

    /// A certificate chain (leaf first) and private key from PEM text.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CanaryError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CanaryError::Certificate(format!("certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(CanaryError::Certificate(
                "certificate PEM: no CERTIFICATE block".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| CanaryError::Certificate(format!("key PEM: {e}")))?;
        Ok(Identity { chain, key })
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// SHA-256 (hex) of each certificate, leaf first.
    pub fn chain_sha256(&self) -> Vec<String> {
        self.chain
            .iter()
            .map(|c| hex::encode(ring::digest::digest(&ring::digest::SHA256, c.as_ref())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_replies_are_valid_and_advertise_starttls_only_before_tls() {
        let r = CannedReplies::default();
        r.validate().expect("defaults valid");
        assert!(r.ehlo.contains("250-STARTTLS\r\n"));
        assert!(!r.ehlo_tls.contains("STARTTLS"));
    }

    #[test]
    fn invalid_replies_are_named() {
        let r = CannedReplies {
            quit: "221 bye\n".into(),
            ..Default::default()
        };
        assert!(r.validate().expect_err("bad").to_string().contains("quit"));
        let r = CannedReplies {
            ehlo: "250-a\r\n250 SIZE 1\r\n".into(),
            ..Default::default()
        };
        assert!(r
            .validate()
            .expect_err("bad")
            .to_string()
            .contains("STARTTLS"));
        let r = CannedReplies {
            greeting: "220 a\r\n220 b\r\n".into(),
            ..Default::default()
        };
        assert!(r
            .validate()
            .expect_err("bad")
            .to_string()
            .contains("greeting"));
    }

    #[test]
    fn expected_streams_follow_the_probe_dialogue() {
        let r = CannedReplies::default();
        let e = Expectation::new(&r, vec!["ab".into()]);
        assert_eq!(
            e.plain_stream(false),
            format!("{}{}{}", r.greeting, r.ehlo, r.starttls).into_bytes()
        );
        assert_eq!(
            e.tls_stream(false),
            format!("{}{}", r.ehlo_tls, r.quit).into_bytes()
        );
        assert!(e.plain_stream(true).is_empty());
        assert!(e.tls_stream(true).starts_with(r.greeting.as_bytes()));
        let json = serde_json::to_string(&e).expect("json");
        assert_eq!(serde_json::from_str::<Expectation>(&json).expect("back"), e);
    }

    #[test]
    fn generated_identity_round_trips_through_pem() {
        let ck = rcgen::generate_simple_self_signed(vec!["canary.test".to_owned()]).expect("gen");
        let id = Identity::from_pem(
            ck.cert.pem().as_bytes(),
            ck.signing_key.serialize_pem().as_bytes(),
        )
        .expect("pem");
        assert_eq!(id.chain().len(), 1);
        assert_eq!(id.chain_sha256()[0].len(), 64);
        assert!(Identity::from_pem(b"", b"").is_err());
    }
}
