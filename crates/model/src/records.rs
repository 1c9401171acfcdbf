//! The record types: the six of DESIGN.md and `canary_result`, one ClickHouse table each.
//!
//! Field names are the wire format: JSON keys, ClickHouse columns and Parquet columns are
//! spelled exactly as the Rust fields. Field order is the ClickHouse column order (RowBinary
//! is positional), so never reorder fields without a schema migration.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::columns::Columns;
use crate::vocab::*;
use crate::UtcTime;

/// One scan run: one row per scan and vantage (table `scans`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Columns)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct ScanRecord {
    /// Scan identifier, a UUID v7 (time-ordered). Shared by every record of the scan.
    #[cfg_attr(feature = "clickhouse", serde(with = "clickhouse::serde::uuid"))]
    pub scan_id: Uuid,
    /// Label of the network position the scan ran from (`--vantage`, default `default`).
    pub vantage: String,
    /// When the scan started (UTC).
    pub started_at: UtcTime,
    /// When the scan finished or was interrupted (UTC); null while running.
    pub finished_at: Option<UtcTime>,
    /// `running`, `complete` or `interrupted`.
    pub status: ScanStatus,
    /// Source address the scanner bound (`--source-ip`); null when the OS chose.
    pub source_ip: Option<String>,
    /// Reverse DNS name of the source address, when the vantage self-check found one.
    pub source_rdns: Option<String>,
    /// Result of the vantage's outbound port 25 self-check.
    pub port25_check: Port25Check,
    /// mxray version that produced the data (`CARGO_PKG_VERSION`).
    pub tool_version: String,
    /// Record schema version ([`crate::SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The full effective configuration, as a JSON object.
    pub config: String,
    /// Input name: a file path, `-` for stdin, or `lab`.
    pub input_name: String,
    /// SHA-256 (hex) of the input bytes.
    pub input_sha256: String,
    /// `I/N` shard of the input this scan covered (`0/1` when not sharded).
    pub shard: String,
    /// Domains read from the input after normalisation and de-duplication.
    pub domains_total: u64,
    /// Domains with a `domain` record written.
    pub domains_done: u64,
    /// Input lines rejected (not a domain name).
    pub input_errors: u64,
    /// `dns_host` records written.
    pub dns_hosts: u64,
    /// `smtp_probe` records written.
    pub smtp_probes: u64,
    /// Distinct certificates seen.
    pub certificates: u64,
    /// `mta_sts_policy` records written.
    pub mta_sts_policies: u64,
    /// The campaign this scan is a shard of: one logical scan split over `--shard I/N` runs,
    /// possibly on many machines (`--campaign`, default derived from the measurement settings,
    /// the shard count and the input checksum, so every shard agrees without coordination).
    /// Empty in records written before schema version 4.
    #[serde(default)]
    pub campaign: String,
}

/// The per-domain posture: one row per domain per scan and vantage (table `domains`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Columns)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct DomainRecord {
    /// See [`ScanRecord::scan_id`].
    #[cfg_attr(feature = "clickhouse", serde(with = "clickhouse::serde::uuid"))]
    pub scan_id: Uuid,
    /// See [`ScanRecord::vantage`].
    pub vantage: String,
    /// When the domain's verdict was assembled (UTC).
    pub scanned_at: UtcTime,
    /// The domain, lower-case A-label form, no trailing dot.
    pub domain: String,
    /// How the domain receives mail: `mx`, `null_mx`, `implicit`, `none`, `error`.
    pub mx_kind: MxKind,
    /// DNSSEC status of the MX RRset (or of its denial).
    pub mx_dnssec: DnssecStatus,
    /// Outcome of the MX lookup.
    pub mx_rcode: DnsOutcome,
    /// The mail hosts in preference order (lowest preference value first); for `implicit`
    /// the domain itself. Names lower-case, no trailing dot.
    pub mx_hosts: Vec<String>,
    /// STARTTLS offered and TLS completed on `all`, `some`, `none` of the MX hosts, or
    /// `unreachable` / `n/a`.
    pub starttls: StarttlsVerdict,
    /// PKIX validity over the MX hosts that completed TLS: `all`, `some`, `none`, `n/a`.
    pub pkix: PkixVerdict,
    /// DANE aggregate over the MX hosts (worst wins, see [`DaneVerdict::severity`]).
    pub dane: DaneVerdict,
    /// MTA-STS status of the domain.
    pub mta_sts: MtaStsStatus,
    /// The fetch failure class when `mta_sts` is `fetch_error`, else null.
    pub mta_sts_error: Option<MtaStsError>,
    /// Every MX host matches a policy `mx` pattern and offered STARTTLS (TLS 1.2+) with a
    /// PKIX-valid certificate for its name. Null without a valid policy.
    pub mta_sts_compliant: Option<bool>,
    /// A valid `v=TLSRPTv1` record with at least one `rua` is published at `_smtp._tls`.
    pub tls_rpt: bool,
    /// The `rua` URIs of the TLS-RPT record (empty without a valid record).
    pub tls_rpt_rua: Vec<String>,
    /// The failures a sending MTA would report for this domain (RFC 8460 result types),
    /// deduplicated and sorted.
    pub tlsrpt_results: Vec<TlsRptResult>,
    /// At least one stripping signal was seen on any of the domain's MX hosts.
    pub stripping_suspected: bool,
    /// The stripping signals seen on the domain's MX hosts, deduplicated and sorted.
    pub stripping_signals: Vec<StrippingSignal>,
    /// Errors met while assembling this domain, as `stage:class[: detail]` strings
    /// (e.g. `dns:timeout: MX example.com`).
    pub errors: Vec<String>,
    /// Some MX host completed TLS only below TLS 1.2 (every one of its probes on the delivery
    /// port that completed TLS has `tls_legacy`): counted in `starttls`, but a sender that
    /// requires TLS 1.2 or later (MTA-STS, RFC 8996) cannot use it. See docs/verdicts.md.
    #[serde(default)]
    pub tls_legacy: bool,
}

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TlsaRecord {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 full certificate, 1 SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching_type: u8,
    /// Certificate association data, lower-case hex.
    pub data: String,
}

/// Per MX host: addresses, CNAME chain and TLSA, resolved once per scan (table `dns_hosts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Columns)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct DnsHostRecord {
    /// See [`ScanRecord::scan_id`].
    #[cfg_attr(feature = "clickhouse", serde(with = "clickhouse::serde::uuid"))]
    pub scan_id: Uuid,
    /// See [`ScanRecord::vantage`].
    pub vantage: String,
    /// When the host was resolved (UTC).
    pub resolved_at: UtcTime,
    /// The MX host name as named by the MX record, lower-case, no trailing dot.
    pub host: String,
    /// IPv4 and IPv6 addresses (text form), A first then AAAA.
    pub addresses: Vec<String>,
    /// CNAME chain from `host` to the final name, excluding `host` itself.
    pub cname_chain: Vec<String>,
    /// Outcome of the address lookups (the better of A and AAAA).
    pub address_rcode: DnsOutcome,
    /// DNSSEC status of the address RRsets (the weaker of A and AAAA, and of the CNAMEs).
    pub address_dnssec: DnssecStatus,
    /// Smallest TTL of the address RRsets, seconds.
    pub address_ttl: Option<u32>,
    /// Owner name that gave the TLSA RRset (`_25._tcp.<name>`), RFC 7672 §2.2.2 order:
    /// the CNAME-expanded name first, then the original name. Null when none was found.
    pub tlsa_owner: Option<String>,
    /// Outcome of the TLSA lookup (of the last name tried when none gave records).
    pub tlsa_rcode: DnsOutcome,
    /// DNSSEC status of the TLSA RRset (or its denial).
    pub tlsa_dnssec: DnssecStatus,
    /// TTL of the TLSA RRset, seconds.
    pub tlsa_ttl: Option<u32>,
    /// The TLSA records.
    pub tlsa: Vec<TlsaRecord>,
    /// Extended DNS Errors (RFC 8914) returned by the resolver, as `code: text`.
    pub ede: Vec<String>,
    /// Errors of the lookups, as `qtype:class[: detail]`.
    pub errors: Vec<String>,
    /// DNSSEC status of the A RRset alone (and its CNAMEs): what DANE rests on for an IPv4
    /// connection, so an AAAA failure does not touch DANE over IPv4 (RFC 7672 §2.2).
    #[serde(default = "indeterminate")]
    pub a_dnssec: DnssecStatus,
    /// DNSSEC status of the AAAA RRset alone (and its CNAMEs), for IPv6 connections.
    #[serde(default = "indeterminate")]
    pub aaaa_dnssec: DnssecStatus,
    /// 1, or 2 for the second resolution of a host whose first one failed with a transient
    /// outcome (timeout, SERVFAIL), made late in the scan; both are written.
    #[serde(default = "first_attempt")]
    pub attempt: u8,
}

fn first_attempt() -> u8 {
    1
}

fn indeterminate() -> DnssecStatus {
    DnssecStatus::Indeterminate
}

/// One STARTTLS probe of an IP, port and SNI name (table `smtp_probes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Columns)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct SmtpProbeRecord {
    /// See [`ScanRecord::scan_id`].
    #[cfg_attr(feature = "clickhouse", serde(with = "clickhouse::serde::uuid"))]
    pub scan_id: Uuid,
    /// See [`ScanRecord::vantage`].
    pub vantage: String,
    /// When the probe started (UTC).
    pub probed_at: UtcTime,
    /// Destination IP address (text form).
    pub ip: String,
    /// Destination TCP port (25 unless `--smtp-port`).
    pub port: u16,
    /// SNI sent in the TLS ClientHello: the MX host name when known, else null.
    pub sni: Option<String>,
    /// TCP connect time, milliseconds.
    pub connect_ms: Option<u32>,
    /// Time from connect to the complete greeting, milliseconds.
    pub greeting_ms: Option<u32>,
    /// EHLO round trip (before TLS), milliseconds.
    pub ehlo_ms: Option<u32>,
    /// STARTTLS command round trip, milliseconds.
    pub starttls_ms: Option<u32>,
    /// TLS handshake duration, milliseconds.
    pub tls_ms: Option<u32>,
    /// Whole session, connect to close, milliseconds.
    pub total_ms: u32,
    /// `starttls_ok`, `no_starttls` or `error`.
    pub result: ProbeResult,
    /// Why the probe ended, when `result` is `error`.
    pub error_class: Option<ProbeErrorClass>,
    /// Human-readable detail of the error (capped).
    pub error_detail: Option<String>,
    /// The greeting text (code and all lines, capped).
    pub banner: String,
    /// EHLO keywords before TLS, upper-cased keyword with its parameters (e.g. `SIZE 10240000`).
    pub ehlo_keywords: Vec<String>,
    /// Raw EHLO (or HELO) reply before TLS, lossy UTF-8, capped.
    pub ehlo_raw: String,
    /// `STARTTLS` is among the pre-TLS EHLO keywords.
    pub starttls_advertised: bool,
    /// Reply code to the STARTTLS command (null when not sent).
    pub starttls_reply_code: Option<u16>,
    /// Reply text to the STARTTLS command.
    pub starttls_reply_text: Option<String>,
    /// Negotiated TLS version (`TLSv1.2`, `TLSv1.3`).
    pub tls_version: Option<String>,
    /// Negotiated cipher suite, IANA name.
    pub cipher: Option<String>,
    /// Negotiated key-exchange group (`X25519`, `secp256r1`, ...).
    pub kx_group: Option<String>,
    /// TLS alert code received from the server, if the handshake ended with one.
    pub tls_alert: Option<u8>,
    /// SHA-256 (hex) of each presented certificate, leaf first; see table `certificates`.
    pub chain_sha256: Vec<String>,
    /// The chain leads to a trusted root (webpki roots + `--ca-file`) and the leaf is valid for
    /// the SNI name. Null when TLS did not complete or no name was known.
    pub pkix_valid: Option<bool>,
    /// Why `pkix_valid` is false.
    pub pkix_error: Option<PkixError>,
    /// DANE result for this host (`none` when the host has no secure TLSA to check).
    pub dane: DaneVerdict,
    /// The TLSA record that matched, as `usage selector matching_type`.
    pub dane_match: Option<String>,
    /// EHLO keywords after TLS.
    pub post_tls_ehlo_keywords: Vec<String>,
    /// Stripping signals seen in this session.
    pub stripping_signals: Vec<StrippingSignal>,
    /// RFC 8460 result types this probe would produce in a TLS report.
    pub tlsrpt_results: Vec<TlsRptResult>,
    /// The dialogue, `C: `/`S: ` prefixed lines, capped (TLS bytes not included).
    pub transcript: String,
    /// The session reached a successful (`250`) EHLO or HELO. Only such sessions count for
    /// `starttls` and DANE: a host that never got this far was not seen lacking anything.
    /// Records written before schema 3 lack it: readers fill it with
    /// [`SmtpProbeRecord::reached_ehlo_before_v3`].
    #[serde(default)]
    pub reached_ehlo: bool,
    /// `STARTTLS` was sent although the EHLO reply did not advertise it (a secure TLSA RRset
    /// requires TLS on this host, or `--send-starttls-override always`); its reply is in
    /// `starttls_reply_code`, and a completed handshake raises `starttls_forced_ok`.
    #[serde(default)]
    pub starttls_forced: bool,
    /// Time spent waiting for mxray's own rate limiters before connecting, milliseconds (not
    /// part of `connect_ms`).
    #[serde(default)]
    pub limiter_wait_ms: Option<u32>,
    /// 1, or 2 for the second probe of a destination whose first one ended in a transient
    /// class (a timeout, `busy`, a 4xx greeting), made late in the scan at a low rate; both
    /// are written, the domain verdicts use the second.
    #[serde(default = "first_attempt")]
    pub attempt: u8,
    /// The TLS implementation that produced `tls_version`, `cipher`, `kx_group`, `tls_alert`
    /// and the chain: `rustls`, or `openssl` in a second session after rustls failed (then
    /// `tls_fallback_reason` says why). Null when no handshake was attempted.
    #[serde(default)]
    pub tls_engine: Option<TlsEngine>,
    /// Why the first session's rustls handshake was retried with OpenSSL; null without a
    /// retry. The record's other fields are the second session's.
    #[serde(default)]
    pub tls_fallback_reason: Option<TlsFallbackReason>,
    /// The first session's rustls error, as text (capped); null without a retry.
    #[serde(default)]
    pub tls_fallback_detail: Option<String>,
    /// The first (rustls) session's transcript when it was retried with OpenSSL, else empty.
    #[serde(default)]
    pub tls_fallback_transcript: String,
    /// TLS completed with a version below TLS 1.2 (`TLSv1.0`, `TLSv1.1`, `SSLv3`): deprecated
    /// by RFC 8996, possible only through the OpenSSL engine.
    #[serde(default)]
    pub tls_legacy: bool,
}

impl SmtpProbeRecord {
    /// `reached_ehlo` of a record written before the field existed (schema < 3), from the
    /// fields it has: a session that ended without `error` got through EHLO or HELO, and one
    /// that saw STARTTLS advertised had a successful EHLO. A session that failed after a
    /// `250` EHLO without STARTTLS is the only one this misses, and it counted as an error in
    /// those versions too. The same rule is the ClickHouse default of the migrated column
    /// ([`REACHED_EHLO_BEFORE_V3_SQL`]).
    pub fn reached_ehlo_before_v3(&self) -> bool {
        self.result != ProbeResult::Error || self.starttls_advertised
    }
}

/// [`SmtpProbeRecord::reached_ehlo_before_v3`] as a ClickHouse expression over the row.
pub const REACHED_EHLO_BEFORE_V3_SQL: &str = "result != 'error' OR starttls_advertised";

/// A certificate seen in any chain, deduplicated by SHA-256 (table `certificates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Columns)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct CertificateRecord {
    /// See [`ScanRecord::scan_id`] (the scan that first saw it).
    #[cfg_attr(feature = "clickhouse", serde(with = "clickhouse::serde::uuid"))]
    pub scan_id: Uuid,
    /// See [`ScanRecord::vantage`].
    pub vantage: String,
    /// SHA-256 of the DER, lower-case hex: the key of this table.
    pub sha256: String,
    /// The DER encoding, standard base64.
    pub der: String,
    /// Subject distinguished name (RFC 4514 string).
    pub subject: String,
    /// Issuer distinguished name (RFC 4514 string).
    pub issuer: String,
    /// DNS names and IP addresses of the subjectAltName extension.
    pub sans: Vec<String>,
    /// Validity start (UTC).
    pub not_before: UtcTime,
    /// Validity end (UTC).
    pub not_after: UtcTime,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the SubjectPublicKeyInfo DER, hex (what TLSA `1 1` matches).
    pub spki_sha256: String,
    /// Key type and size, e.g. `RSA 2048`, `EC P-256`, `Ed25519`.
    pub key_type: String,
    /// Signature algorithm, e.g. `sha256WithRSAEncryption`.
    pub signature_algorithm: String,
    /// Basic constraints CA flag.
    pub is_ca: bool,
    /// Subject equals issuer.
    pub self_issued: bool,
}

/// The MTA-STS (and TLS-RPT) findings of one domain (table `mta_sts_policies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Columns)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct MtaStsPolicyRecord {
    /// See [`ScanRecord::scan_id`].
    #[cfg_attr(feature = "clickhouse", serde(with = "clickhouse::serde::uuid"))]
    pub scan_id: Uuid,
    /// See [`ScanRecord::vantage`].
    pub vantage: String,
    /// When the policy was fetched (UTC).
    pub fetched_at: UtcTime,
    /// The policy domain.
    pub domain: String,
    /// Every TXT record at `_mta-sts.<domain>`, strings of a record concatenated.
    pub txt_records: Vec<String>,
    /// The `id` of the single valid `v=STSv1` TXT record.
    pub policy_id: Option<String>,
    /// Status in the `mta_sts` vocabulary.
    pub status: MtaStsStatus,
    /// Fetch failure class when `status` is `fetch_error`.
    pub error_class: Option<MtaStsError>,
    /// Why the TXT record, the fetch or the policy was rejected, in words.
    pub error_detail: Option<String>,
    /// HTTP status of the policy fetch.
    pub http_status: Option<u16>,
    /// `Content-Type` header as sent.
    pub content_type: Option<String>,
    /// The policy body, lossy UTF-8, capped at 64 KiB.
    pub policy_raw: Option<String>,
    /// Parsed `mode`.
    pub mode: Option<MtaStsMode>,
    /// Parsed `mx` patterns, in order.
    pub mx_patterns: Vec<String>,
    /// Parsed `max_age`, seconds.
    pub max_age: Option<u32>,
    /// Deviations tolerated by the lenient reading (media type parameters, junk lines,
    /// repeated keys, IP addresses in `mx`, ...).
    pub warnings: Vec<String>,
}

/// The verdict of one canary probe (`mxray canary probe`): whether the path between a vantage
/// and a canary we run rewrote the SMTP session, with the evidence (table `canary_results`).
/// The session itself is also an ordinary `smtp_probe` row with the same `scan_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Columns)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
pub struct CanaryResultRecord {
    /// See [`ScanRecord::scan_id`].
    #[cfg_attr(feature = "clickhouse", serde(with = "clickhouse::serde::uuid"))]
    pub scan_id: Uuid,
    /// See [`ScanRecord::vantage`].
    pub vantage: String,
    /// When the probe started (UTC).
    pub probed_at: UtcTime,
    /// The canary's SMTP address probed (text form).
    pub target_ip: String,
    /// The canary's SMTP port (25, 587, 465, ...).
    pub target_port: u16,
    /// The probe's local (source) address of the connection; null when it never connected.
    pub local_ip: Option<String>,
    /// The probe's local (source) port; null when it never connected.
    pub local_port: Option<u16>,
    /// Implicit TLS (port 465 style) instead of STARTTLS.
    pub implicit_tls: bool,
    /// `clean`, `tampered`, `blocked` (outbound SMTP filtered: never "no STARTTLS") or `error`.
    pub verdict: CanaryVerdict,
    /// How the session ended early, in the `smtp_probe` error vocabulary; null when it
    /// finished.
    pub error_class: Option<ProbeErrorClass>,
    /// The verdict in one line of words (capped).
    pub detail: String,
    /// The streams with proof of rewriting, in stream order: `server_plain` (canary to probe
    /// before TLS), `server_tls`, `client_plain` (probe to canary before TLS, from the
    /// canary's log), `client_tls`, `certificate`, `tls_handshake`, `control` (an answer of
    /// the canary's control endpoint failed authentication: the path to it rewrote, replayed or
    /// made it up).
    pub tampered_streams: Vec<String>,
    /// The stream of the first byte divergence (a tampered one first, else a truncated one).
    pub divergence_stream: Option<String>,
    /// How that stream diverged: `differ` (rewritten), `extra` (bytes added) or `truncated`
    /// (stopped early).
    pub divergence_kind: Option<String>,
    /// Offset (0-based) of the first differing byte in that stream.
    pub divergence_offset: Option<u32>,
    /// Line (1-based) of the first differing byte.
    pub divergence_line: Option<u32>,
    /// The expected bytes around the divergence, escaped (printable ASCII as is, `\r`, `\n`,
    /// `\t`, `\\`, and `\xNN` for any other byte).
    pub expected_excerpt: Option<String>,
    /// The bytes seen over the same window, escaped the same way.
    pub actual_excerpt: Option<String>,
    /// Whether the client direction was compared with the canary's log: `compared`,
    /// `not_found`, `unavailable`, `forged` (the control answer failed authentication; the
    /// verdict is `tampered`, stream `control`) or `not_asked`.
    pub canary_log: String,
    /// The client address and port the canary saw for this connection, when its log was
    /// fetched; it differs from `local_ip`/`local_port` behind NAT or a proxy.
    pub canary_saw_client: Option<String>,
    /// SHA-256 (hex) of each certificate the canary presents, leaf first.
    pub cert_expected: Vec<String>,
    /// SHA-256 (hex) of each certificate this probe was shown, leaf first.
    pub cert_seen: Vec<String>,
    /// The whole tamper report as one JSON object: every finding and both sides' bytes.
    pub report: String,
}
