//! mxray's DNS/TLSA collector: everything DANE (RFC 7672) and MTA-STS (RFC 8461) decisions
//! depend on, with the DNSSEC status of every RRset.
//!
//! What it does: per domain, the MX RRset (explicit, null MX per RFC 7505, implicit per
//! RFC 5321 §5.1, none, error) and the `_mta-sts` / `_smtp._tls` TXT records
//! ([`DnsCollector::domain`]); per MX host, deduplicated over the whole scan, the A/AAAA
//! addresses, the CNAME chain and the TLSA RRset at `_25._tcp.<host>` in RFC 7672 §2.2.2 order
//! ([`DnsCollector::host`]); plain address lookups ([`DnsCollector::addresses`]). Every lookup
//! records its outcome (`noerror`, `nodata`, `nxdomain`, `servfail`, `refused`, `timeout`,
//! `truncated`, `malformed`), its TTL, its Extended DNS Errors (RFC 8914) and its DNSSEC
//! status (`secure`, `insecure`, `bogus`, `indeterminate`) from either the AD bit of a
//! validating resolver ([`DnssecMode::Ad`]) or local validation with hickory's validator
//! ([`DnssecMode::Validate`]). A failure is data, never an `Err`.
//!
//! What it does not: no recursion of its own (it needs a resolver, or in `validate` mode an
//! authoritative server that serves every zone asked about); it never reads
//! `/etc/resolv.conf`; it does not interpret TLSA or MTA-STS records (the `smtp` and `mtasts`
//! crates do).
//!
//! Layout: [`wire`] is the pure part (query building, reply checks, CNAME following, status
//! rules), `transport` the thin UDP/TCP edge (rate limit per resolver, an AIMD limit on
//! queries in flight per resolver (`aimd`), timeout, stray datagrams ignored, retries on
//! timeout only, TCP on truncation or an oversized UDP reply) over `udp_pool`'s shared,
//! rotated sockets, `validate` adapts hickory's
//! `DnssecDnsHandle`, and [`DnsCollector`] ties them together with a bounded host cache.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mxray_dns::DnsError> {
//! use mxray_dns::{DnsCollector, DnsConfig};
//! let cfg = DnsConfig::new(vec!["127.0.0.1:53".parse().unwrap()]);
//! let dns = DnsCollector::new(cfg)?;
//! let d = dns.domain("example.test").await;
//! for host in &d.mx_hosts {
//!     let h = dns.host(host).await;
//!     println!("{} {:?} tlsa={} {}", h.host, h.addresses, h.tlsa.len(), h.tlsa_dnssec);
//! }
//! # Ok(()) }
//! ```

mod aimd;
mod collector;
mod config;
mod transport;
mod udp_pool;
mod validate;
pub mod wire;

pub use collector::{
    AddressLookup, DnsCollector, DomainDns, HostDns, MxEntry, RrsetLookup, TxtLookup,
};
pub use config::{DnsConfig, DnssecMode, TrustAnchorSet};
pub use transport::DnsStats;

/// At most this many MX hosts per domain are resolved and probed, by `mxray scan` and
/// `mxray dns` alike: a hostile zone can list thousands (a 64 KB MX RRset holds over 3,000),
/// and real domains list a handful. Use [`DomainDns::hosts_to_follow`].
pub const MAX_MX_HOSTS: usize = 16;

/// Failures of mxray itself (bad configuration). DNS failures are data in the records.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The configuration cannot work.
    #[error("DNS configuration: {0}")]
    Config(String),
    /// A trust-anchor file line could not be parsed.
    #[error("trust anchor line {line}: {reason}")]
    TrustAnchor {
        /// 1-based line number (0: the file could not be read).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}
