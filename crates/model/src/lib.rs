//! mxray's shared vocabulary: the record types and verdict enums every other crate speaks.
//!
//! What it does: defines the six records of DESIGN.md ([`ScanRecord`], [`DomainRecord`],
//! [`DnsHostRecord`], [`SmtpProbeRecord`], [`CertificateRecord`], [`MtaStsPolicyRecord`]) and
//! the canary verdict [`CanaryResultRecord`], the verdict fields of a `domain` record on their
//! own ([`DomainVerdict`], from [`DomainRecord::verdict`]: what the lab expects per domain),
//! the verdict vocabularies ([`MxKind`], [`DaneVerdict`], [`MtaStsStatus`], ...), the tagged
//! [`Record`] used on JSON lines, and [`SCHEMA_VERSION`]. Field names are the wire format for
//! JSON, ClickHouse and Parquet alike; their rustdoc is the data dictionary. Each record struct
//! is also its table's column list ([`columns`]: `#[derive(Columns)]` gives the column names,
//! types and nullability in field order, and visits a record's values in that order), from which
//! `mxray-store` builds the ClickHouse DDL, the Parquet schema and the Parquet rows.
//!
//! What it does not: no I/O, no verdict logic beyond ordering ([`DaneVerdict::severity`]), no
//! DDL or Parquet types (that is `mxray-store`). The `clickhouse` feature (enabled by
//! `mxray-store` only) adds the `clickhouse::Row` derive and the RowBinary form of UUIDs;
//! without it the crate, and the crates that use it, compile no database client. The JSON form
//! is the same either way.
//!
//! ```
//! use mxray_model::{MxKind, Record, RecordKind};
//! assert_eq!(MxKind::NullMx.as_str(), "null_mx");
//! assert_eq!(serde_json::to_string(&MxKind::Implicit).unwrap(), "\"implicit\"");
//! assert_eq!(RecordKind::SmtpProbe.table(), "smtp_probes");
//! ```

// The `Columns` derive names this crate by its path, inside the crate too.
extern crate self as mxray_model;

pub mod columns;
mod records;
mod time;
mod verdict;
mod vocab;

pub use records::*;
pub use time::UtcTime;
pub use verdict::DomainVerdict;
pub use vocab::*;

use serde::{Deserialize, Serialize};

/// Version of the stored schema: the records' fields and the database's tables and views. Bump
/// it with every change to either, together with a ClickHouse migration in `mxray-store`.
///
/// History: 1, the six tables of DESIGN.md; 2, table `canary_results` ([`CanaryResultRecord`]);
/// 3, per-domain DANE judgement: `smtp_probe` gains `reached_ehlo`, `starttls_forced`,
/// `limiter_wait_ms`, `attempt`, `dns_host` gains `a_dnssec`, `aaaa_dnssec`, `attempt`; new
/// vocabulary values `dane=unverified`, signal `starttls_forced_ok`, error classes
/// `no_source_address`, `busy`, `tls_too_large`, `pkix_error=path_too_long`; and the second
/// TLS engine: `smtp_probe` gains `tls_engine`, `tls_fallback_reason`,
/// `tls_fallback_detail`, `tls_fallback_transcript`, `tls_legacy`, `domain` gains
/// `tls_legacy`; new `pkix_error` values `weak_key`, `weak_signature`; 4, `scan` gains
/// `campaign`; 5, the database view `scan_dates`; 6, the view `starttls_observations` (the records of versions 4 to 6 are the same, so their files have the
/// same columns).
pub const SCHEMA_VERSION: u32 = 6;

/// A string that is not part of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {vocabulary}")]
pub struct UnknownVariant {
    /// The vocabulary (Rust type name).
    pub vocabulary: &'static str,
    /// The rejected value.
    pub value: String,
}

/// Any record, tagged for JSON lines: `{"record": "smtp_probe", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    Scan(ScanRecord),
    Domain(DomainRecord),
    DnsHost(DnsHostRecord),
    SmtpProbe(SmtpProbeRecord),
    Certificate(CertificateRecord),
    MtaStsPolicy(MtaStsPolicyRecord),
    CanaryResult(CanaryResultRecord),
}

impl Record {
    /// Which table this record belongs to.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Scan(_) => RecordKind::Scan,
            Record::Domain(_) => RecordKind::Domain,
            Record::DnsHost(_) => RecordKind::DnsHost,
            Record::SmtpProbe(_) => RecordKind::SmtpProbe,
            Record::Certificate(_) => RecordKind::Certificate,
            Record::MtaStsPolicy(_) => RecordKind::MtaStsPolicy,
            Record::CanaryResult(_) => RecordKind::CanaryResult,
        }
    }
}

macro_rules! record_from {
    ($($ty:ident => $variant:ident),+) => {$(
        impl From<$ty> for Record {
            fn from(r: $ty) -> Self { Record::$variant(r) }
        }
    )+};
}
record_from!(
    ScanRecord => Scan,
    DomainRecord => Domain,
    DnsHostRecord => DnsHost,
    SmtpProbeRecord => SmtpProbe,
    CertificateRecord => Certificate,
    MtaStsPolicyRecord => MtaStsPolicy,
    CanaryResultRecord => CanaryResult
);

pub mod examples;
