//! The storage schema: one column list per table, shared by the ClickHouse DDL, the Parquet
//! writer and reader, and the data dictionary.
//!
//! The column lists mirror the field order of the `mxray-model` records (RowBinary is
//! positional); a test checks them against `clickhouse::Row::COLUMN_NAMES`.
//!
//! Portability: the DDL is accepted by ClickHouse 18.16 (Debian 12's package) and by current
//! ClickHouse. Hence no `DateTime64`, `Map`, `IPv6`, `LowCardinality`, codecs, TTL, `Bool`, or
//! `Array(Tuple(..))` (18.16 silently flattens it into parallel arrays): the TLSA records of
//! `dns_hosts` are a `Nested` column, `tlsa.usage`, `tlsa.selector`, `tlsa.matching_type`,
//! `tlsa.data`, which both versions store as parallel arrays (query with `ARRAY JOIN tlsa`).

use mxray_model::RecordKind;

/// The value type of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnType {
    /// UTF-8 text (vocabulary values too). ClickHouse `String`, Parquet `BYTE_ARRAY (STRING)`.
    Str,
    /// ClickHouse `UInt8`, Parquet `INT32 (INTEGER(8,false))`.
    U8,
    /// ClickHouse `UInt16`, Parquet `INT32 (INTEGER(16,false))`.
    U16,
    /// ClickHouse `UInt32`, Parquet `INT32 (INTEGER(32,false))`.
    U32,
    /// ClickHouse `UInt64`, Parquet `INT64 (INTEGER(64,false))`.
    U64,
    /// ClickHouse `UInt8` (0/1; 18.16 has no `Bool`), Parquet `BOOLEAN`.
    Bool,
    /// ClickHouse `UUID`, Parquet `BYTE_ARRAY (STRING)` in canonical text form.
    Uuid,
    /// A UTC instant, seconds. ClickHouse `DateTime`, Parquet `INT64 (TIMESTAMP(MILLIS, UTC))`.
    Time,
    /// A list of strings. ClickHouse `Array(String)`, Parquet `LIST<STRING>`.
    StrList,
    /// TLSA records. ClickHouse `Nested(usage UInt8, selector UInt8, matching_type UInt8,
    /// data String)`, Parquet `LIST<STRUCT<usage, selector, matching_type, data>>`.
    Tlsa,
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name: the model's field name.
    pub name: &'static str,
    /// Value type.
    pub ty: ColumnType,
    /// `Nullable(..)` in ClickHouse, `optional` in Parquet.
    pub nullable: bool,
}

impl Column {
    /// The ClickHouse type, portable to 18.16.
    pub fn clickhouse_type(&self) -> String {
        let base = match self.ty {
            ColumnType::Str => "String",
            ColumnType::U8 | ColumnType::Bool => "UInt8",
            ColumnType::U16 => "UInt16",
            ColumnType::U32 => "UInt32",
            ColumnType::U64 => "UInt64",
            ColumnType::Uuid => "UUID",
            ColumnType::Time => "DateTime",
            ColumnType::StrList => "Array(String)",
            ColumnType::Tlsa => {
                "Nested(usage UInt8, selector UInt8, matching_type UInt8, data String)"
            }
        };
        if self.nullable {
            format!("Nullable({base})")
        } else {
            base.to_owned()
        }
    }
}

const fn c(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        nullable: false,
    }
}

const fn n(name: &'static str, ty: ColumnType) -> Column {
    Column {
        name,
        ty,
        nullable: true,
    }
}

use ColumnType::*;

const SCANS: &[Column] = &[
    c("scan_id", Uuid),
    c("vantage", Str),
    c("started_at", Time),
    n("finished_at", Time),
    c("status", Str),
    n("source_ip", Str),
    n("source_rdns", Str),
    c("port25_check", Str),
    c("tool_version", Str),
    c("schema_version", U32),
    c("config", Str),
    c("input_name", Str),
    c("input_sha256", Str),
    c("shard", Str),
    c("domains_total", U64),
    c("domains_done", U64),
    c("input_errors", U64),
    c("dns_hosts", U64),
    c("smtp_probes", U64),
    c("certificates", U64),
    c("mta_sts_policies", U64),
    c("campaign", Str),
];

const DOMAINS: &[Column] = &[
    c("scan_id", Uuid),
    c("vantage", Str),
    c("scanned_at", Time),
    c("domain", Str),
    c("mx_kind", Str),
    c("mx_dnssec", Str),
    c("mx_rcode", Str),
    c("mx_hosts", StrList),
    c("starttls", Str),
    c("pkix", Str),
    c("dane", Str),
    c("mta_sts", Str),
    n("mta_sts_error", Str),
    n("mta_sts_compliant", Bool),
    c("tls_rpt", Bool),
    c("tls_rpt_rua", StrList),
    c("tlsrpt_results", StrList),
    c("stripping_suspected", Bool),
    c("stripping_signals", StrList),
    c("errors", StrList),
    c("tls_legacy", Bool),
];

const DNS_HOSTS: &[Column] = &[
    c("scan_id", Uuid),
    c("vantage", Str),
    c("resolved_at", Time),
    c("host", Str),
    c("addresses", StrList),
    c("cname_chain", StrList),
    c("address_rcode", Str),
    c("address_dnssec", Str),
    n("address_ttl", U32),
    n("tlsa_owner", Str),
    c("tlsa_rcode", Str),
    c("tlsa_dnssec", Str),
    n("tlsa_ttl", U32),
    c("tlsa", Tlsa),
    c("ede", StrList),
    c("errors", StrList),
    c("a_dnssec", Str),
    c("aaaa_dnssec", Str),
    c("attempt", U8),
];

const SMTP_PROBES: &[Column] = &[
    c("scan_id", Uuid),
    c("vantage", Str),
    c("probed_at", Time),
    c("ip", Str),
    c("port", U16),
    n("sni", Str),
    n("connect_ms", U32),
    n("greeting_ms", U32),
    n("ehlo_ms", U32),
    n("starttls_ms", U32),
    n("tls_ms", U32),
    c("total_ms", U32),
    c("result", Str),
    n("error_class", Str),
    n("error_detail", Str),
    c("banner", Str),
    c("ehlo_keywords", StrList),
    c("ehlo_raw", Str),
    c("starttls_advertised", Bool),
    n("starttls_reply_code", U16),
    n("starttls_reply_text", Str),
    n("tls_version", Str),
    n("cipher", Str),
    n("kx_group", Str),
    n("tls_alert", U8),
    c("chain_sha256", StrList),
    n("pkix_valid", Bool),
    n("pkix_error", Str),
    c("dane", Str),
    n("dane_match", Str),
    c("post_tls_ehlo_keywords", StrList),
    c("stripping_signals", StrList),
    c("tlsrpt_results", StrList),
    c("transcript", Str),
    c("reached_ehlo", Bool),
    c("starttls_forced", Bool),
    n("limiter_wait_ms", U32),
    c("attempt", U8),
    n("tls_engine", Str),
    n("tls_fallback_reason", Str),
    n("tls_fallback_detail", Str),
    c("tls_fallback_transcript", Str),
    c("tls_legacy", Bool),
];

const CERTIFICATES: &[Column] = &[
    c("scan_id", Uuid),
    c("vantage", Str),
    c("sha256", Str),
    c("der", Str),
    c("subject", Str),
    c("issuer", Str),
    c("sans", StrList),
    c("not_before", Time),
    c("not_after", Time),
    c("serial", Str),
    c("spki_sha256", Str),
    c("key_type", Str),
    c("signature_algorithm", Str),
    c("is_ca", Bool),
    c("self_issued", Bool),
];

const MTA_STS_POLICIES: &[Column] = &[
    c("scan_id", Uuid),
    c("vantage", Str),
    c("fetched_at", Time),
    c("domain", Str),
    c("txt_records", StrList),
    n("policy_id", Str),
    c("status", Str),
    n("error_class", Str),
    n("error_detail", Str),
    n("http_status", U16),
    n("content_type", Str),
    n("policy_raw", Str),
    n("mode", Str),
    c("mx_patterns", StrList),
    n("max_age", U32),
    c("warnings", StrList),
];

const CANARY_RESULTS: &[Column] = &[
    c("scan_id", Uuid),
    c("vantage", Str),
    c("probed_at", Time),
    c("target_ip", Str),
    c("target_port", U16),
    n("local_ip", Str),
    n("local_port", U16),
    c("implicit_tls", Bool),
    c("verdict", Str),
    n("error_class", Str),
    c("detail", Str),
    c("tampered_streams", StrList),
    n("divergence_stream", Str),
    n("divergence_kind", Str),
    n("divergence_offset", U32),
    n("divergence_line", U32),
    n("expected_excerpt", Str),
    n("actual_excerpt", Str),
    c("canary_log", Str),
    n("canary_saw_client", Str),
    c("cert_expected", StrList),
    c("cert_seen", StrList),
    c("report", Str),
];

/// Every table, in a fixed order (the order of [`RecordKind::ALL`]).
pub const TABLES: &[RecordKind] = RecordKind::ALL;

/// The columns of a table, in model field order.
pub fn columns(kind: RecordKind) -> &'static [Column] {
    match kind {
        RecordKind::Scan => SCANS,
        RecordKind::Domain => DOMAINS,
        RecordKind::DnsHost => DNS_HOSTS,
        RecordKind::SmtpProbe => SMTP_PROBES,
        RecordKind::Certificate => CERTIFICATES,
        RecordKind::MtaStsPolicy => MTA_STS_POLICIES,
        RecordKind::CanaryResult => CANARY_RESULTS,
    }
}

/// The record kind stored in a table, from the table name (`smtp_probes` → `SmtpProbe`).
pub fn kind_of_table(table: &str) -> Option<RecordKind> {
    TABLES.iter().copied().find(|k| k.table() == table)
}

/// Engine, partitioning and ordering of a table.
///
/// Every table is a `ReplacingMergeTree` whose sorting key is the record's identity, so a row
/// inserted twice (a retried batch, a spill loaded again) collapses into one on merge; read with
/// `FINAL` (or `argMax`) for exact counts before merges happen. The key always determines the
/// partition, so duplicates can never sit in different partitions.
///
/// The sorting keys put the research questions first: per domain over time (`domains`,
/// `mta_sts_policies`: domain, then time), per IP over time (`smtp_probes`: ip, port, time),
/// per MX host (`dns_hosts`), per canary over time (`canary_results`: target, time; the local
/// port tells two probes of one scan apart); the vantage follows so one vantage's history is contiguous.
/// `scan_id` is a UUID v7 and therefore time-ordered as well.
pub fn engine_clause(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => {
            // A scan is written when it starts (`running`) and again when it ends; the final
            // row must win whatever the insert order (a spilled `running` row may be loaded
            // after the `complete` one), hence the version column of [`extra_columns`].
            "ENGINE = ReplacingMergeTree(row_version) PARTITION BY toYYYYMM(started_at) \
             ORDER BY (scan_id, vantage)"
        }
        RecordKind::Domain => {
            "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(scanned_at) \
             ORDER BY (domain, scanned_at, vantage, scan_id)"
        }
        RecordKind::DnsHost => {
            "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(resolved_at) \
             ORDER BY (host, resolved_at, vantage, scan_id)"
        }
        RecordKind::SmtpProbe => {
            "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(probed_at) \
             ORDER BY (ip, port, probed_at, vantage, scan_id, ifNull(sni, ''))"
        }
        RecordKind::Certificate => {
            // Deduplicated by SHA-256 across all scans: no time partition (a certificate has no
            // scan date of its own, and a partition per month would keep one copy per month).
            "ENGINE = ReplacingMergeTree() ORDER BY sha256"
        }
        RecordKind::MtaStsPolicy => {
            "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(fetched_at) \
             ORDER BY (domain, fetched_at, vantage, scan_id)"
        }
        RecordKind::CanaryResult => {
            "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(probed_at) \
             ORDER BY (target_ip, target_port, probed_at, vantage, scan_id, \
             ifNull(local_port, 0))"
        }
    }
}

/// Columns that exist only in ClickHouse, computed by the server (`MATERIALIZED`: not part of
/// `SELECT *`, never sent by mxray).
///
/// `scans.row_version` orders the rows of one scan for `ReplacingMergeTree`: finished rows
/// (`complete`, `interrupted`) beat `running` ones, then the later `finished_at` wins.
pub fn extra_columns(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::Scan => &[
            "row_version UInt64 MATERIALIZED (status != 'running') * 4294967296 \
             + toUInt32(ifNull(finished_at, started_at))",
        ],
        _ => &[],
    }
}

/// Quote an identifier for ClickHouse (backticks).
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for ch in name.chars() {
        match ch {
            '`' => out.push_str("\\`"),
            '\\' => out.push_str("\\\\"),
            _ => out.push(ch),
        }
    }
    out.push('`');
    out
}

/// `CREATE TABLE IF NOT EXISTS` for one record table.
pub fn create_table(database: &str, kind: RecordKind) -> String {
    let cols: Vec<String> = columns(kind)
        .iter()
        .map(|col| format!("    {} {}", col.name, col.clickhouse_type()))
        .chain(extra_columns(kind).iter().map(|c| format!("    {c}")))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (\n{}\n) {}",
        quote_ident(database),
        kind.table(),
        cols.join(",\n"),
        engine_clause(kind)
    )
}

/// Name of the table that records applied migrations.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

/// `CREATE TABLE IF NOT EXISTS` for the migrations table.
pub fn create_migrations_table(database: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{MIGRATIONS_TABLE} (\n    version UInt32,\n    \
         description String,\n    applied_at DateTime,\n    tool_version String\n) \
         ENGINE = ReplacingMergeTree() ORDER BY version",
        quote_ident(database)
    )
}

/// One versioned schema migration.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Schema version reached after this migration; equal to `mxray_model::SCHEMA_VERSION` for
    /// the last one.
    pub version: u32,
    /// What it does, in words (stored in `schema_migrations`).
    pub description: &'static str,
    /// The statements, each idempotent (`IF NOT EXISTS`), for a database name.
    pub statements: fn(&str) -> Vec<String>,
    /// Columns added to existing tables. ClickHouse 18.16 has no `ADD COLUMN IF NOT EXISTS`,
    /// so `migrate` adds each one only when `system.columns` lacks it; the column's type comes
    /// from the table's column list ([`columns`]), so it is written down once.
    pub add_columns: &'static [AddColumn],
}

/// A column added to an existing table by a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddColumn {
    /// The table.
    pub table: RecordKind,
    /// The column (a name in [`columns`] of `table`).
    pub column: &'static str,
    /// SQL default for the rows written before the column existed (`None`: the type's own,
    /// i.e. 0, empty, NULL). Vocabulary columns need a valid word here.
    pub default: Option<&'static str>,
}

impl AddColumn {
    /// The `ALTER TABLE ... ADD COLUMN` statement (portable to 18.16: no `IF NOT EXISTS`).
    pub fn statement(&self, database: &str) -> Option<String> {
        let col = columns(self.table).iter().find(|c| c.name == self.column)?;
        let default = self
            .default
            .map(|d| format!(" DEFAULT {d}"))
            .unwrap_or_default();
        Some(format!(
            "ALTER TABLE {}.{} ADD COLUMN {} {}{default}",
            quote_ident(database),
            self.table.table(),
            col.name,
            col.clickhouse_type()
        ))
    }
}

/// The tables of schema version 1 (never changes: a version 1 database has exactly these).
const V1_TABLES: &[RecordKind] = &[
    RecordKind::Scan,
    RecordKind::Domain,
    RecordKind::DnsHost,
    RecordKind::SmtpProbe,
    RecordKind::Certificate,
    RecordKind::MtaStsPolicy,
];

fn v1(database: &str) -> Vec<String> {
    V1_TABLES
        .iter()
        .map(|&k| create_table(database, k))
        .collect()
}

fn v2(database: &str) -> Vec<String> {
    vec![create_table(database, RecordKind::CanaryResult)]
}

const V3_COLUMNS: &[AddColumn] = &[
    AddColumn {
        table: RecordKind::DnsHost,
        column: "a_dnssec",
        default: Some("'indeterminate'"),
    },
    AddColumn {
        table: RecordKind::DnsHost,
        column: "aaaa_dnssec",
        default: Some("'indeterminate'"),
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "reached_ehlo",
        default: Some(mxray_model::REACHED_EHLO_BEFORE_V3_SQL),
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "starttls_forced",
        default: None,
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "limiter_wait_ms",
        default: None,
    },
    AddColumn {
        table: RecordKind::DnsHost,
        column: "attempt",
        default: Some("1"),
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "attempt",
        default: Some("1"),
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "tls_engine",
        default: None,
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "tls_fallback_reason",
        default: None,
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "tls_fallback_detail",
        default: None,
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "tls_fallback_transcript",
        default: None,
    },
    AddColumn {
        table: RecordKind::SmtpProbe,
        column: "tls_legacy",
        default: None,
    },
    AddColumn {
        table: RecordKind::Domain,
        column: "tls_legacy",
        default: None,
    },
];

/// Every migration, oldest first. A migration's statements are frozen once released: a change to
/// an existing table is a new migration with [`Migration::add_columns`].
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description:
            "tables scans, domains, dns_hosts, smtp_probes, certificates, mta_sts_policies",
        statements: v1,
        add_columns: &[],
    },
    Migration {
        version: 2,
        description: "table canary_results (canary probe verdicts)",
        statements: v2,
        add_columns: &[],
    },
    Migration {
        version: 3,
        description: "per-domain DANE, retries, the second TLS engine: \
                      smtp_probes.reached_ehlo, starttls_forced, limiter_wait_ms, attempt, \
                      tls_engine, tls_fallback_reason, tls_fallback_detail, \
                      tls_fallback_transcript, tls_legacy; dns_hosts.a_dnssec, aaaa_dnssec, \
                      attempt; domains.tls_legacy",
        statements: |_| Vec::new(),
        add_columns: V3_COLUMNS,
    },
    Migration {
        version: 4,
        description: "scan campaigns: scans.campaign",
        statements: |_| Vec::new(),
        add_columns: &[AddColumn {
            table: RecordKind::Scan,
            column: "campaign",
            default: None,
        }],
    },
];

/// The schema version this binary creates and understands.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Every DDL statement of a fresh install, in order: the database, the migrations table, and
/// every migration. Used by `migrate` and by the chDB portability check.
pub fn ddl_statements(database: &str) -> Vec<String> {
    let mut out = vec![
        format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(database)),
        create_migrations_table(database),
    ];
    for m in MIGRATIONS {
        out.extend((m.statements)(database));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::Row;
    use mxray_model::*;

    fn names(kind: RecordKind) -> Vec<&'static str> {
        columns(kind).iter().map(|c| c.name).collect()
    }

    #[test]
    fn columns_follow_model_field_order() {
        assert_eq!(names(RecordKind::Scan), ScanRecord::COLUMN_NAMES);
        assert_eq!(names(RecordKind::Domain), DomainRecord::COLUMN_NAMES);
        assert_eq!(names(RecordKind::DnsHost), DnsHostRecord::COLUMN_NAMES);
        assert_eq!(names(RecordKind::SmtpProbe), SmtpProbeRecord::COLUMN_NAMES);
        assert_eq!(
            names(RecordKind::Certificate),
            CertificateRecord::COLUMN_NAMES
        );
        assert_eq!(
            names(RecordKind::MtaStsPolicy),
            MtaStsPolicyRecord::COLUMN_NAMES
        );
        assert_eq!(
            names(RecordKind::CanaryResult),
            CanaryResultRecord::COLUMN_NAMES
        );
    }

    #[test]
    fn every_table_is_created_by_exactly_one_migration() {
        for &k in TABLES {
            let creating: Vec<u32> = MIGRATIONS
                .iter()
                .filter(|m| {
                    (m.statements)("mxray")
                        .iter()
                        .any(|s| s.contains(&format!("`mxray`.{} (", k.table())))
                })
                .map(|m| m.version)
                .collect();
            assert_eq!(creating.len(), 1, "{}: {creating:?}", k.table());
        }
        let v2: Vec<String> = (MIGRATIONS[1].statements)("mxray");
        assert_eq!(v2.len(), 1);
        assert!(v2[0].contains("canary_results"), "{}", v2[0]);
    }

    #[test]
    fn nullable_columns_are_exactly_the_model_options() {
        // Null out one column at a time in a fully populated example: the model must accept it
        // exactly when the column is nullable.
        for record in examples::all() {
            let kind = record.kind();
            let value = serde_json::to_value(&record).expect("json");
            for col in columns(kind) {
                let mut v = value.clone();
                v[col.name] = serde_json::Value::Null;
                // From text: the model's UUID field only deserializes from a borrowed str.
                let accepted = serde_json::from_str::<Record>(&v.to_string()).is_ok();
                assert_eq!(accepted, col.nullable, "{}.{}", kind.table(), col.name);
            }
        }
    }

    #[test]
    fn last_migration_is_the_model_schema_version() {
        assert_eq!(latest_version(), SCHEMA_VERSION);
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            versions, sorted,
            "migration versions must be strictly increasing"
        );
    }

    #[test]
    fn ddl_avoids_types_clickhouse_18_16_lacks() {
        for stmt in ddl_statements("mxray") {
            for banned in [
                "DateTime64",
                "Map(",
                "IPv6",
                "LowCardinality",
                "CODEC",
                "TTL",
                "Bool",
                "Tuple(",
            ] {
                assert!(!stmt.contains(banned), "{banned} in {stmt}");
            }
        }
    }

    #[test]
    fn table_names_round_trip() {
        for &k in TABLES {
            assert_eq!(kind_of_table(k.table()), Some(k));
        }
        assert_eq!(kind_of_table("nope"), None);
    }
}
