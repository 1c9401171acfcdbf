//! Authentication of the control endpoint and of expectation files: HMAC-SHA256 under a
//! 32-byte key ([`ControlKey`]) that `mxray canary serve` generates and probes carry.
//!
//! Why: the control channel is how a probe learns what the canary sent and received. A path
//! that rewrites SMTP could rewrite those answers too and make a tampered session look clean,
//! and anyone who reaches the endpoint would read client addresses and EHLO names. With the
//! key:
//!
//! * every request carries a fresh random nonce and a MAC over the command and the nonce; the
//!   canary answers a request whose MAC fails with the fixed, unauthenticated [`REFUSAL`] line
//!   and closes, so a client without the key reads nothing;
//! * every answer carries a MAC over the request's command, its nonce and the answer's bytes,
//!   so an answer that was rewritten, replayed from another request, or made up by the path
//!   fails [`open_answer`];
//! * an expectation file ([`SignedExpectation`]) carries a MAC over the expectation's JSON.
//!
//! The channel is authenticated, not encrypted: a party on the path between probe and canary
//! can read answers (it sees the probe's SMTP session anyway), but cannot change them
//! unnoticed. Everything here is sans-io: strings and bytes in, strings and bytes out.
//!
//! Wire format (one line each, LF or CRLF):
//!
//! ```text
//! request: <command> <nonce: 32 hex> <mac: 64 hex>
//! answer:  <mac: 64 hex> <json>
//! ```
//!
//! The MAC inputs are length-prefixed (big-endian u32) parts after a context string, so no
//! request MAC can be replayed as an answer MAC or an expectation signature.

use std::fmt;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::expect::Expectation;
use crate::CanaryError;

/// Length of a control key, bytes.
pub const KEY_LEN: usize = 32;
/// Length of a request nonce, bytes.
pub const NONCE_LEN: usize = 16;
/// Length of a MAC (HMAC-SHA256), bytes.
pub const MAC_LEN: usize = 32;
/// What the canary answers (unauthenticated, since the client may not hold the key) to a
/// request whose MAC does not verify, before it closes the connection.
pub const REFUSAL: &str = r#"{"error":"unauthenticated"}"#;
/// Longest key file read (64 hex characters and a line end; slack for whitespace).
const MAX_KEY_FILE: u64 = 1024;

const REQUEST_CONTEXT: &[u8] = b"mxray-canary-control-v1 request";
const ANSWER_CONTEXT: &[u8] = b"mxray-canary-control-v1 answer";
const EXPECTATION_CONTEXT: &[u8] = b"mxray-canary-expectation-v1";
const FINGERPRINT_CONTEXT: &[u8] = b"mxray-canary-key-fingerprint-v1";

/// The shared secret of a canary and its probes: 32 random bytes, written as 64 lower-case
/// hex characters on one line. `Debug` shows only its [`fingerprint`](Self::fingerprint).
#[derive(Clone)]
pub struct ControlKey {
    bytes: [u8; KEY_LEN],
    key: hmac::Key,
}

impl PartialEq for ControlKey {
    fn eq(&self, other: &Self) -> bool {
        // Not secret-dependent timing that matters: both keys are local.
        self.bytes == other.bytes
    }
}

impl Eq for ControlKey {}

impl fmt::Debug for ControlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlKey")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

fn random<const N: usize>() -> Result<[u8; N], CanaryError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| CanaryError::Key("the system random generator failed".into()))?;
    Ok(out)
}

/// A fresh random request nonce.
pub fn new_nonce() -> Result<[u8; NONCE_LEN], CanaryError> {
    random()
}

/// Exactly `N` bytes from `2 * N` hex characters, or `None`.
fn hex_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl ControlKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CanaryError> {
        Ok(ControlKey::from_bytes(random()?))
    }

    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        ControlKey {
            bytes,
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        }
    }

    /// Parses the text form: 64 hex characters, surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<Self, CanaryError> {
        let t = text.trim();
        hex_exact::<KEY_LEN>(t)
            .map(ControlKey::from_bytes)
            .ok_or_else(|| {
                CanaryError::Key(format!(
                    "not a control key: expected {} hex characters on one line, got {} characters",
                    2 * KEY_LEN,
                    t.len()
                ))
            })
    }

    /// The text form: 64 lower-case hex characters.
    pub fn to_text(&self) -> String {
        hex::encode(self.bytes)
    }

    /// A short public name of the key (16 hex characters of a MAC under it), safe to print
    /// and log: two parties can compare it to see whether they hold the same key.
    pub fn fingerprint(&self) -> String {
        let tag = hmac::sign(&self.key, FINGERPRINT_CONTEXT);
        hex::encode(&tag.as_ref()[..8])
    }

    /// Reads a key file (the text form; at most 1 KiB).
    pub fn read_file(path: &Path) -> Result<Self, CanaryError> {
        let bad = |why: String| CanaryError::Key(format!("control key {}: {why}", path.display()));
        let f = std::fs::File::open(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let mut text = String::new();
        f.take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        ControlKey::parse(&text).map_err(|e| bad(e.to_string()))
    }

    /// Writes the key to a new file (never overwrites one), readable by its owner only
    /// (mode 0600 on Unix).
    pub fn write_new(&self, path: &Path) -> Result<(), CanaryError> {
        use std::io::Write as _;
        let bad = |why: String| CanaryError::Key(format!("control key {}: {why}", path.display()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .map_err(|e| bad(format!("cannot create: {e}")))?;
        writeln!(f, "{}", self.to_text())
            .and_then(|()| f.sync_all())
            .map_err(|e| bad(format!("cannot write: {e}")))
    }

    fn sign(&self, context: &[u8], parts: &[&[u8]]) -> hmac::Tag {
        hmac::sign(&self.key, &framed(context, parts))
    }

    /// Constant-time check of `tag` (ring's `hmac::verify`).
    fn verify(&self, context: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        hmac::verify(&self.key, &framed(context, parts), tag).is_ok()
    }
}

/// The MAC input: the context, then each part with its length (big-endian u32) first, so
/// that no two different part lists give the same bytes.
fn framed(context: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(context.len() + parts.iter().map(|p| p.len() + 4).sum::<usize>());
    out.extend_from_slice(context);
    for p in parts {
        let len = mxray_net::units::saturating_u32(p.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Why a control request was refused (the canary does not say which to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not `<command> <nonce> <mac>` with a hex nonce and MAC of the right lengths.
    #[error("malformed control request")]
    Malformed,
    /// The MAC does not verify under the canary's key.
    #[error("control request MAC does not verify")]
    BadMac,
}

/// Why a control answer was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The canary's [`REFUSAL`]: it did not accept the request's MAC (a wrong key, when no
    /// authenticated answer came before; anyone on the path can also send this line).
    #[error("the canary refused the request: its key is not this one")]
    Refused,
    /// The answer is not `<mac> <json>` or its MAC does not verify: it was not the canary's
    /// answer to this request.
    #[error("{0}")]
    Forged(String),
}

/// The request line (CRLF included) for `command` (e.g. `LOG 192.0.2.1:4000`) and `nonce`.
pub fn request_line(key: &ControlKey, command: &str, nonce: &[u8; NONCE_LEN]) -> String {
    let tag = key.sign(REQUEST_CONTEXT, &[command.as_bytes(), nonce]);
    format!(
        "{command} {} {}\r\n",
        hex::encode(nonce),
        hex::encode(tag.as_ref())
    )
}

/// Checks a request line (its line end already removed or not) and returns its command and
/// nonce.
pub fn open_request(
    key: &ControlKey,
    line: &str,
) -> Result<(String, [u8; NONCE_LEN]), RequestError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut parts = line.rsplitn(3, ' ');
    let (Some(mac), Some(nonce), Some(command)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(RequestError::Malformed);
    };
    let mac = hex_exact::<MAC_LEN>(mac).ok_or(RequestError::Malformed)?;
    let nonce = hex_exact::<NONCE_LEN>(nonce).ok_or(RequestError::Malformed)?;
    if command.is_empty() {
        return Err(RequestError::Malformed);
    }
    if !key.verify(REQUEST_CONTEXT, &[command.as_bytes(), &nonce], &mac) {
        return Err(RequestError::BadMac);
    }
    Ok((command.to_owned(), nonce))
}

/// The answer line (LF included) to `command` with `nonce`: the MAC, a space, the JSON.
pub fn answer_line(key: &ControlKey, command: &str, nonce: &[u8; NONCE_LEN], json: &str) -> String {
    let tag = key.sign(
        ANSWER_CONTEXT,
        &[command.as_bytes(), nonce, json.as_bytes()],
    );
    format!("{} {json}\n", hex::encode(tag.as_ref()))
}

/// Checks an answer line (without its line end) to the request `command` sent with `nonce`
/// and returns its JSON text.
pub fn open_answer<'a>(
    key: &ControlKey,
    command: &str,
    nonce: &[u8; NONCE_LEN],
    line: &'a [u8],
) -> Result<&'a str, AnswerError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line == REFUSAL.as_bytes() {
        return Err(AnswerError::Refused);
    }
    let forged = |why: &str| AnswerError::Forged(why.to_owned());
    let text = std::str::from_utf8(line).map_err(|_| forged("answer is not UTF-8"))?;
    let (mac, json) = text
        .split_once(' ')
        .ok_or_else(|| forged("answer has no MAC"))?;
    let mac = hex_exact::<MAC_LEN>(mac).ok_or_else(|| forged("answer has no MAC"))?;
    if !key.verify(
        ANSWER_CONTEXT,
        &[command.as_bytes(), nonce, json.as_bytes()],
        &mac,
    ) {
        return Err(forged(
            "answer MAC does not verify: rewritten, replayed or not from the canary",
        ));
    }
    Ok(json)
}

/// An expectation file: the [`Expectation`] and an HMAC-SHA256 over its JSON under the
/// canary's control key (what `mxray canary serve --expect-out` writes, also with
/// `--no-control`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedExpectation {
    /// What probes must see.
    pub expectation: Expectation,
    /// HMAC-SHA256 (64 hex characters) of the expectation's compact JSON.
    pub hmac_sha256: String,
}

/// The signed bytes: the compact JSON of the expectation (serde's field order, so the same
/// expectation always gives the same bytes, whatever whitespace the file has).
fn expectation_bytes(exp: &Expectation) -> Result<Vec<u8>, CanaryError> {
    serde_json::to_vec(exp).map_err(|e| CanaryError::Key(format!("expectation JSON: {e}")))
}

impl SignedExpectation {
    /// Signs `exp` with `key`.
    pub fn sign(exp: &Expectation, key: &ControlKey) -> Result<Self, CanaryError> {
        let tag = key.sign(EXPECTATION_CONTEXT, &[&expectation_bytes(exp)?]);
        Ok(SignedExpectation {
            expectation: exp.clone(),
            hmac_sha256: hex::encode(tag.as_ref()),
        })
    }

    /// The expectation, when the signature verifies under `key`.
    pub fn verify(&self, key: &ControlKey) -> Result<&Expectation, CanaryError> {
        let ok = hex_exact::<MAC_LEN>(&self.hmac_sha256).is_some_and(|mac| {
            expectation_bytes(&self.expectation)
                .is_ok_and(|b| key.verify(EXPECTATION_CONTEXT, &[&b], &mac))
        });
        if ok {
            Ok(&self.expectation)
        } else {
            Err(CanaryError::Unauthenticated(
                "the expectation's signature does not verify with this control key: the file \
                 was altered, or it belongs to a canary with another key"
                    .into(),
            ))
        }
    }

    /// Reads an expectation file's bytes and verifies them. An unsigned expectation (the
    /// format before control keys) is refused with a message that says so.
    pub fn open(bytes: &[u8], key: &ControlKey) -> Result<Expectation, CanaryError> {
        match serde_json::from_slice::<SignedExpectation>(bytes) {
            Ok(signed) => signed.verify(key).cloned(),
            Err(e) => {
                if serde_json::from_slice::<Expectation>(bytes).is_ok() {
                    return Err(CanaryError::Unauthenticated(
                        "the expectation file is not signed (written before control keys?): \
                         write it again with `mxray canary serve --expect-out`"
                            .into(),
                    ));
                }
                Err(CanaryError::Unauthenticated(format!(
                    "not a signed expectation file: {e}"
                )))
            }
        }
    }
}

/// A canary's control endpoint and the key that authenticates it (this module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlEndpoint {
    /// Its address.
    pub addr: SocketAddr,
    /// The canary's control key.
    pub key: ControlKey,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::CannedReplies;

    fn key(b: u8) -> ControlKey {
        ControlKey::from_bytes([b; KEY_LEN])
    }

    #[test]
    fn keys_round_trip_as_one_hex_line_and_bad_text_is_named() {
        let k = ControlKey::generate().expect("random");
        assert_eq!(k.to_text().len(), 64);
        assert_eq!(
            ControlKey::parse(&format!("  {}\n", k.to_text())).expect("parse"),
            k
        );
        assert_ne!(ControlKey::generate().expect("random"), k);
        let e = ControlKey::parse("abc").expect_err("short");
        assert!(e.to_string().contains("64 hex characters"), "{e}");
        assert!(ControlKey::parse(&"zz".repeat(32)).is_err());
        assert!(
            !format!("{k:?}").contains(&k.to_text()),
            "Debug hides the key"
        );
        assert_eq!(k.fingerprint().len(), 16);
    }

    #[test]
    fn key_files_are_new_and_private() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("k");
        let k = key(7);
        k.write_new(&p).expect("write");
        assert_eq!(ControlKey::read_file(&p).expect("read"), k);
        assert!(k.write_new(&p).is_err(), "never overwrites");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let missing = ControlKey::read_file(&dir.path().join("none")).expect_err("missing");
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }

    #[test]
    fn a_request_verifies_only_under_its_key_and_unchanged() {
        let n = [3u8; NONCE_LEN];
        let line = request_line(&key(1), "LOG 127.0.0.1:25", &n);
        let (cmd, nonce) = open_request(&key(1), &line).expect("valid");
        assert_eq!((cmd.as_str(), nonce), ("LOG 127.0.0.1:25", n));
        assert_eq!(open_request(&key(2), &line), Err(RequestError::BadMac));
        let changed = line.replace("127.0.0.1:25", "127.0.0.1:26");
        assert_eq!(open_request(&key(1), &changed), Err(RequestError::BadMac));
        for bad in ["LOG 127.0.0.1:25", "EXPECT", "", "  ", "EXPECT 00 00"] {
            assert_eq!(
                open_request(&key(1), bad),
                Err(RequestError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_answer_is_bound_to_its_request_nonce_and_bytes() {
        let (k, n) = (key(1), [9u8; NONCE_LEN]);
        let line = answer_line(&k, "EXPECT", &n, r#"{"a":1}"#);
        let body = line.trim_end().as_bytes();
        assert_eq!(open_answer(&k, "EXPECT", &n, body), Ok(r#"{"a":1}"#));
        let forged = |r: Result<&str, AnswerError>| matches!(r, Err(AnswerError::Forged(_)));
        // Another nonce (a replay), another command, another key, one byte changed.
        assert!(forged(open_answer(&k, "EXPECT", &[8u8; NONCE_LEN], body)));
        assert!(forged(open_answer(&k, "LOG 127.0.0.1:1", &n, body)));
        assert!(forged(open_answer(&key(2), "EXPECT", &n, body)));
        let mut flipped = body.to_vec();
        let last = flipped.len() - 2;
        flipped[last] = b'2';
        assert!(forged(open_answer(&k, "EXPECT", &n, &flipped)));
        assert!(forged(open_answer(&k, "EXPECT", &n, br#"{"a":1}"#)));
        assert!(forged(open_answer(&k, "EXPECT", &n, b"\xff\xfe")));
        assert_eq!(
            open_answer(&k, "EXPECT", &n, REFUSAL.as_bytes()),
            Err(AnswerError::Refused)
        );
    }

    #[test]
    fn signed_expectations_verify_and_altered_ones_do_not() {
        let exp = Expectation::new(&CannedReplies::default(), vec!["ab".into()]);
        let signed = SignedExpectation::sign(&exp, &key(1)).expect("sign");
        let text = serde_json::to_string_pretty(&signed).expect("json");
        assert_eq!(
            SignedExpectation::open(text.as_bytes(), &key(1)).expect("verifies"),
            exp
        );
        assert!(SignedExpectation::open(text.as_bytes(), &key(2)).is_err());
        let altered = text.replace("250-STARTTLS", "250-XXXXXXXA");
        assert_ne!(altered, text);
        let e = SignedExpectation::open(altered.as_bytes(), &key(1)).expect_err("altered");
        assert!(e.to_string().contains("does not verify"), "{e}");
        let unsigned = serde_json::to_vec(&exp).expect("json");
        let e = SignedExpectation::open(&unsigned, &key(1)).expect_err("unsigned");
        assert!(e.to_string().contains("not signed"), "{e}");
    }
}
