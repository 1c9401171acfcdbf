//! Collector configuration and the trust-anchor file parser.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKeyBuf};
use hickory_proto::rr::Name;

use crate::DnsError;

/// How the DNSSEC status of an answer is decided.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DnssecMode {
    /// Trust the AD bit of the configured resolver (`--dnssec ad`). Queries set DO. Meant for a
    /// validating resolver on loopback (Unbound). AD set: `secure`; NOERROR/NXDOMAIN without AD:
    /// `insecure`; SERVFAIL with a DNSSEC Extended DNS Error, or SERVFAIL that turns into an
    /// answer when re-asked with CD: `bogus`; anything else: `indeterminate`.
    Ad,
    /// Validate locally with hickory's DNSSEC validator (`--dnssec validate`), from the built-in
    /// root trust anchor plus these anchors. Works against a validating resolver (queries set
    /// CD) and against a plain authoritative server (RD is set and ignored).
    Validate {
        /// Extra trust anchors (`--trust-anchor FILE`).
        trust_anchors: TrustAnchorSet,
    },
}

/// Trust anchors from a file of DS or DNSKEY presentation lines (the format of Unbound's
/// `trust-anchor-file`, of `dnssec-keygen`'s `.key` and `dnssec-dsfromkey`'s output):
///
/// ```text
/// example.test. 3600 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0d...
/// example.test. IN DS 2371 13 2 C1B2...
/// ```
///
/// DNSKEY anchors are trusted as they are. A DS anchor is turned into the DNSKEY it covers by
/// asking for the zone's DNSKEY RRset once, at first use; if no key matches, the anchor is not
/// trusted and answers below it are never `secure`.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchorSet {
    /// DNSKEY anchors: owner name and key.
    pub dnskeys: Vec<(Name, DNSKEY)>,
    /// DS anchors: owner name and digest.
    pub ds: Vec<(Name, DS)>,
}

impl TrustAnchorSet {
    /// Reads and parses a trust-anchor file.
    pub fn from_file(path: &Path) -> Result<Self, DnsError> {
        let text = std::fs::read_to_string(path).map_err(|e| DnsError::TrustAnchor {
            line: 0,
            reason: format!("{}: {e}", path.display()),
        })?;
        Self::parse(&text)
    }

    /// Parses DS and DNSKEY presentation lines. Blank lines and `;` comments are skipped; any
    /// other line must be a DS or DNSKEY record (`owner [ttl] [class] TYPE rdata...`).
    pub fn parse(text: &str) -> Result<Self, DnsError> {
        let mut set = TrustAnchorSet::default();
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let line = raw.split(';').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |reason: &str| DnsError::TrustAnchor {
                line: line_no,
                reason: reason.to_owned(),
            };
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let owner = tokens.first().ok_or_else(|| err("empty line"))?;
            let mut name = Name::from_ascii(owner).map_err(|e| err(&format!("owner: {e}")))?;
            name.set_fqdn(true);
            let type_idx = tokens
                .iter()
                .position(|t| t.eq_ignore_ascii_case("DNSKEY") || t.eq_ignore_ascii_case("DS"))
                .ok_or_else(|| err("not a DS or DNSKEY record"))?;
            let rdata = &tokens[type_idx + 1..];
            if rdata.len() < 4 {
                return Err(err("too few fields"));
            }
            let num = |s: &str, what: &str| -> Result<u32, DnsError> {
                s.parse::<u32>()
                    .map_err(|_| err(&format!("bad {what}: {s}")))
            };
            if tokens[type_idx].eq_ignore_ascii_case("DNSKEY") {
                let flags = u16::try_from(num(rdata[0], "flags")?).map_err(|_| err("flags"))?;
                let alg = u8::try_from(num(rdata[2], "algorithm")?).map_err(|_| err("alg"))?;
                let key_b64: String = rdata[3..].concat();
                let key = base64_decode(&key_b64).ok_or_else(|| err("bad base64 key"))?;
                let dnskey =
                    DNSKEY::with_flags(flags, PublicKeyBuf::new(key, Algorithm::from_u8(alg)));
                set.dnskeys.push((name, dnskey));
            } else {
                let tag = u16::try_from(num(rdata[0], "key tag")?).map_err(|_| err("key tag"))?;
                let alg = u8::try_from(num(rdata[1], "algorithm")?).map_err(|_| err("alg"))?;
                let dt = u8::try_from(num(rdata[2], "digest type")?).map_err(|_| err("digest"))?;
                let digest = hex::decode(rdata[3..].concat()).map_err(|_| err("bad hex digest"))?;
                let ds = DS::new(tag, Algorithm::from_u8(alg), DigestType::from(dt), digest);
                set.ds.push((name, ds));
            }
        }
        Ok(set)
    }

    /// No anchors besides the built-in root.
    pub fn is_empty(&self) -> bool {
        self.dnskeys.is_empty() && self.ds.is_empty()
    }
}

/// Decodes standard base64 (with or without padding); `None` on any invalid character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in bytes {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// Everything the collector needs. Every default is documented on its field; build with
/// [`DnsConfig::new`] and override fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DnsConfig {
    /// Resolvers (or, in `validate` mode, possibly an authoritative server), spread over
    /// round-robin. No default: mxray never reads `/etc/resolv.conf`.
    pub resolvers: Vec<SocketAddr>,
    /// DNSSEC mode. Default [`DnssecMode::Ad`].
    pub mode: DnssecMode,
    /// Timeout of one attempt (UDP wait, or TCP connect + exchange). Default 2 s: a loopback
    /// Unbound answers cached names in well under a millisecond and cold ones in a few hundred.
    pub timeout: Duration,
    /// Attempts per query; retries happen only after a timeout, on the next resolver.
    /// Default 3.
    pub attempts: u32,
    /// Wait before retry `n` is `backoff * 2^(n-1)`. Default 100 ms.
    pub backoff: Duration,
    /// Queries per second per resolver (governor). Default 20,000: below what a loopback
    /// Unbound answers from cache on one core, so it only stops runaway bursts; 0 means
    /// unlimited.
    pub qps_per_resolver: u32,
    /// Queries in flight at once over all resolvers. Default 1,024.
    pub max_in_flight: usize,
    /// MX hosts kept in the per-scan host cache (FIFO eviction). Default 100,000: a few tens
    /// of MB, and provider MX hosts are hit early and often.
    pub host_cache_capacity: usize,
    /// EDNS UDP payload size advertised. Default 1,232 (the DNS flag day 2020 value); larger
    /// answers come back truncated and are retried over TCP.
    pub edns_payload: u16,
    /// Local address for UDP sockets (`--source-ip`). Default: the OS chooses.
    pub source_ip: Option<IpAddr>,
    /// Dialer for TCP fallbacks. Default `None`: plain connect to the configured resolver
    /// (the resolver is operator-chosen, typically loopback, so the scan policy does not apply).
    pub dialer: Option<mxray_net::Dialer>,
}

impl DnsConfig {
    /// Defaults as documented on each field, with these resolvers.
    pub fn new(resolvers: Vec<SocketAddr>) -> Self {
        DnsConfig {
            resolvers,
            mode: DnssecMode::Ad,
            timeout: Duration::from_secs(2),
            attempts: 3,
            backoff: Duration::from_millis(100),
            qps_per_resolver: 20_000,
            max_in_flight: 1_024,
            host_cache_capacity: 100_000,
            edns_payload: 1_232,
            source_ip: None,
            dialer: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::PublicKey as _;

    #[test]
    fn parses_dnskey_and_ds_lines() {
        let text = "; anchors\n\
            example.test. 3600 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0d xjjjZ+Y5\n\
            \n\
            example.test. IN DS 2371 13 2 c1b2ff00 AA\n";
        let set = TrustAnchorSet::parse(text).expect("parse");
        assert_eq!(set.dnskeys.len(), 1);
        assert_eq!(set.ds.len(), 1);
        let (name, key) = &set.dnskeys[0];
        assert_eq!(name.to_ascii(), "example.test.");
        assert_eq!(key.flags(), 257);
        assert_eq!(key.public_key().algorithm(), Algorithm::ECDSAP256SHA256);
        let (_, ds) = &set.ds[0];
        assert_eq!(ds.key_tag(), 2371);
        assert_eq!(ds.digest(), &[0xc1, 0xb2, 0xff, 0x00, 0xaa]);
    }

    #[test]
    fn rejects_other_records_with_line_number() {
        let err = TrustAnchorSet::parse("\nexample.test. IN A 192.0.2.1\n").expect_err("A line");
        assert!(
            matches!(err, DnsError::TrustAnchor { line: 2, .. }),
            "{err}"
        );
        assert!(TrustAnchorSet::parse("x. IN DS 1 13 2 zz").is_err());
        assert!(TrustAnchorSet::parse("x. IN DNSKEY 257 3 13 !!!").is_err());
    }

    #[test]
    fn base64_roundtrip_known_values() {
        assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("a?"), None);
    }
}
