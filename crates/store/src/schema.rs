//! The storage schema: one column list per table, shared by the ClickHouse DDL, the Parquet
//! writer and reader, and the data dictionary.
//!
//! The column lists are not written down here: [`columns`] is the record struct's own,
//! derived by `#[derive(Columns)]` in `mxray-model` (names, types and nullability in field
//! order, the order RowBinary needs). This module adds what the model does not say: the
//! ClickHouse types ([`clickhouse_type`]), engines, keys, layouts and the migrations, whose
//! [`AddColumn`]s name the columns each version added (their types come from [`columns`]).
//!
//! Portability: the DDL is accepted by ClickHouse 18.16 (Debian 12's package) and by current
//! ClickHouse. Hence no `DateTime64`, `Map`, `IPv6`, `LowCardinality`, codecs, TTL, `Bool`, or
//! `Array(Tuple(..))` (18.16 silently flattens it into parallel arrays): the TLSA records of
//! `dns_hosts` are a `Nested` column, `tlsa.usage`, `tlsa.selector`, `tlsa.matching_type`,
//! `tlsa.data`, which both versions store as parallel arrays (query with `ARRAY JOIN tlsa`).

use mxray_model::columns::TLSA_FIELDS;
use mxray_model::RecordKind;

pub use mxray_model::columns::{Column, ColumnType};

/// The ClickHouse type of a column, portable to 18.16.
pub fn clickhouse_type(col: &Column) -> String {
    let base = match col.ty {
        ColumnType::Str => "String",
        ColumnType::U8 | ColumnType::Bool => "UInt8",
        ColumnType::U16 => "UInt16",
        ColumnType::U32 => "UInt32",
        ColumnType::U64 => "UInt64",
        ColumnType::Uuid => "UUID",
        ColumnType::Time => "DateTime",
        ColumnType::StrList => "Array(String)",
        ColumnType::Tlsa => {
            let fields: Vec<String> = TLSA_FIELDS
                .iter()
                .map(|f| format!("{} {}", f.name, clickhouse_type(f)))
                .collect();
            return format!("Nested({})", fields.join(", "));
        }
    };
    if col.nullable {
        format!("Nullable({base})")
    } else {
        base.to_owned()
    }
}

/// Every table, in a fixed order (the order of [`RecordKind::ALL`]).
pub const TABLES: &[RecordKind] = RecordKind::ALL;

/// The columns of a table, in model field order: derived from the record struct
/// (`#[derive(Columns)]`, [`mxray_model::columns`]), the current schema version's.
pub fn columns(kind: RecordKind) -> &'static [Column] {
    kind.columns()
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
pub fn engine_clause(kind: RecordKind) -> String {
    format!(
        "ENGINE = ReplacingMergeTree({}) {}",
        version_column(kind).unwrap_or(""),
        engine_keys(kind)
    )
}

/// The version column of a table's `ReplacingMergeTree` (the row with the highest wins).
fn version_column(kind: RecordKind) -> Option<&'static str> {
    match kind {
        // A scan is written when it starts (`running`) and again when it ends; the final row
        // must win whatever the insert order (a spilled `running` row may be loaded after the
        // `complete` one), hence the version column of [`extra_columns`].
        RecordKind::Scan => Some("row_version"),
        _ => None,
    }
}

/// Partitioning and sorting key of a table (see [`engine_clause`]).
fn engine_keys(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "PARTITION BY toYYYYMM(started_at) ORDER BY (scan_id, vantage)",
        RecordKind::Domain => {
            "PARTITION BY toYYYYMM(scanned_at) ORDER BY (domain, scanned_at, vantage, scan_id)"
        }
        RecordKind::DnsHost => {
            "PARTITION BY toYYYYMM(resolved_at) ORDER BY (host, resolved_at, vantage, scan_id)"
        }
        RecordKind::SmtpProbe => {
            "PARTITION BY toYYYYMM(probed_at) \
             ORDER BY (ip, port, probed_at, vantage, scan_id, ifNull(sni, ''))"
        }
        // Deduplicated by SHA-256 across all scans: no time partition (a certificate has no
        // scan date of its own, and a partition per month would keep one copy per month).
        RecordKind::Certificate => "ORDER BY sha256",
        RecordKind::MtaStsPolicy => {
            "PARTITION BY toYYYYMM(fetched_at) ORDER BY (domain, fetched_at, vantage, scan_id)"
        }
        RecordKind::CanaryResult => {
            "PARTITION BY toYYYYMM(probed_at) \
             ORDER BY (target_ip, target_port, probed_at, vantage, scan_id, \
             ifNull(local_port, 0))"
        }
    }
}

/// The column whose hash picks a row's shard on a cluster ([`Layout::Cluster`]): the first
/// column of the sorting key, so every copy of a record (a retried batch, a reloaded spill)
/// lands on the same shard and collapses there, and a domain's (or an IP's) history stays on
/// one shard.
pub fn shard_column(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scan_id",
        RecordKind::Domain | RecordKind::MtaStsPolicy => "domain",
        RecordKind::DnsHost => "host",
        RecordKind::SmtpProbe => "ip",
        RecordKind::Certificate => "sha256",
        RecordKind::CanaryResult => "target_ip",
    }
}

/// The sharding expression of a table's `Distributed` engine: a hash that is stable across
/// ClickHouse versions and machines (`cityHash64` of the column's text).
pub fn sharding_key(kind: RecordKind) -> String {
    let col = shard_column(kind);
    match kind {
        RecordKind::Scan => format!("cityHash64(toString({col}))"),
        _ => format!("cityHash64({col})"),
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

/// `CREATE TABLE IF NOT EXISTS` for one record table on a single server.
pub fn create_table(database: &str, kind: RecordKind) -> String {
    create_table_on(database, kind.table(), kind, &engine_clause(kind), true, "")
}

/// `CREATE TABLE IF NOT EXISTS db.name [ON CLUSTER]` with the columns of `kind` (and its
/// server-computed [`extra_columns`] when `with_extra`).
fn create_table_on(
    database: &str,
    name: &str,
    kind: RecordKind,
    engine: &str,
    with_extra: bool,
    on_cluster: &str,
) -> String {
    let extra: &[&str] = if with_extra { extra_columns(kind) } else { &[] };
    let cols: Vec<String> = column_definitions(columns(kind))
        .into_iter()
        .chain(extra.iter().map(|&c| c.to_owned()))
        .map(|c| format!("    {c}"))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{name}{on_cluster} (\n{}\n) {engine}",
        quote_ident(database),
        cols.join(",\n"),
    )
}

/// The column definitions of a `CREATE TABLE`: `name Type`, one per column, in order.
fn column_definitions(cols: &[Column]) -> Vec<String> {
    cols.iter()
        .map(|col| format!("{} {}", col.name, clickhouse_type(col)))
        .collect()
}

/// Name of the table that records applied migrations.
pub const MIGRATIONS_TABLE: &str = "schema_migrations";

const MIGRATIONS_COLUMNS: &str = "version UInt32,\n    description String,\n    \
                                  applied_at DateTime,\n    tool_version String";

/// `CREATE TABLE IF NOT EXISTS` for the migrations table (single server).
pub fn create_migrations_table(database: &str) -> String {
    Layout::Single.create_migrations_table(database)
}

/// Suffix of the per-node table that holds a shard's rows on a cluster (`domains_local`).
pub const LOCAL_SUFFIX: &str = "_local";

/// Where the tables live.
///
/// - `Single`: one server; each record table is a `ReplacingMergeTree` under its public name.
/// - `Cluster(name)`: a ClickHouse cluster defined in the servers' `remote_servers`, with
///   `{shard}` and `{replica}` macros (the `replica` value unique over the whole cluster). Each
///   record table is a `ReplicatedReplacingMergeTree` named `<table>_local` on every node
///   (replicated within its shard through ZooKeeper path `/clickhouse/tables/{shard}/<db>/<table>`)
///   and a `Distributed` table under the public name, sharded by [`sharding_key`]. Readers
///   and writers use the public names, so SQL written for one server runs unchanged. Every DDL
///   statement is `ON CLUSTER`. `schema_migrations` is replicated to every node (one ZooKeeper
///   path for all shards), so each node knows the cluster's schema version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One server.
    Single,
    /// A cluster of replicated shards, by its name in `remote_servers`.
    Cluster(String),
}

/// Whether `name` can be a cluster name (letters, digits, `_`; as in `remote_servers`).
pub fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl Layout {
    /// The layout a table's `engine_full` (from `system.tables`) shows: a
    /// `Distributed(cluster, ...)` table is a cluster's, anything else a single server's.
    pub fn of_engine(engine_full: &str) -> Layout {
        engine_full
            .trim()
            .strip_prefix("Distributed(")
            .and_then(|args| args.split(',').next())
            .map(|name| name.trim().trim_matches('\''))
            .filter(|name| valid_cluster_name(name))
            .map_or(Layout::Single, |name| Layout::Cluster(name.to_owned()))
    }

    fn on_cluster(&self) -> String {
        match self {
            Layout::Single => String::new(),
            Layout::Cluster(name) => format!(" ON CLUSTER {name}"),
        }
    }

    /// `CREATE DATABASE IF NOT EXISTS`.
    pub fn create_database(&self, database: &str) -> String {
        format!(
            "CREATE DATABASE IF NOT EXISTS {}{}",
            quote_ident(database),
            self.on_cluster()
        )
    }

    /// `CREATE TABLE IF NOT EXISTS` for [`MIGRATIONS_TABLE`].
    pub fn create_migrations_table(&self, database: &str) -> String {
        let engine = match self {
            Layout::Single => "ReplacingMergeTree()".to_owned(),
            Layout::Cluster(_) => format!(
                "ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/{MIGRATIONS_TABLE}', \
                 '{{replica}}')"
            ),
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {}.{MIGRATIONS_TABLE}{} (\n    {MIGRATIONS_COLUMNS}\n) \
             ENGINE = {engine} ORDER BY version",
            quote_ident(database),
            self.on_cluster()
        )
    }

    /// The table that stores `kind`'s rows on one server: the public name, or on a cluster
    /// the node's `<table>_local`.
    pub fn storage_table(&self, kind: RecordKind) -> String {
        match self {
            Layout::Single => kind.table().to_owned(),
            Layout::Cluster(_) => format!("{}{LOCAL_SUFFIX}", kind.table()),
        }
    }

    /// The statements that create `kind`'s table(s), in order.
    pub fn create_table(&self, database: &str, kind: RecordKind) -> Vec<String> {
        match self {
            Layout::Single => vec![create_table(database, kind)],
            Layout::Cluster(cluster) => {
                let local = self.storage_table(kind);
                let version = version_column(kind)
                    .map(|v| format!(", {v}"))
                    .unwrap_or_default();
                let engine = format!(
                    "ENGINE = ReplicatedReplacingMergeTree(\
                     '/clickhouse/tables/{{shard}}/{database}/{}', '{{replica}}'{version}) {}",
                    kind.table(),
                    engine_keys(kind)
                );
                // The Distributed table lists the inserted columns only: ClickHouse 18.16
                // refuses an insert into a Distributed table that has a MATERIALIZED column;
                // the local table computes it.
                let distributed = format!(
                    "ENGINE = Distributed({cluster}, '{database}', '{local}', {})",
                    sharding_key(kind)
                );
                let on = self.on_cluster();
                vec![
                    create_table_on(database, &local, kind, &engine, true, &on),
                    create_table_on(database, kind.table(), kind, &distributed, false, &on),
                ]
            }
        }
    }

    /// The statements that add a column: to the table, or on a cluster to the local tables
    /// (the `Distributed` table is then recreated with [`Layout::recreate_distributed`]:
    /// ClickHouse 18.16 refuses `ALTER ... ON CLUSTER` on a `Distributed` table over
    /// replicated shards).
    pub fn add_column(&self, database: &str, add: &AddColumn) -> Vec<String> {
        add.statement_for(database, &self.storage_table(add.table), &self.on_cluster())
            .into_iter()
            .collect()
    }

    /// `CREATE VIEW IF NOT EXISTS` for `view`, its tables qualified by `database`
    /// ([`View::select_in`]). On a cluster it is created on every node over the public
    /// (`Distributed`) tables, so it reads the whole cluster from any node (tested).
    pub fn create_view(&self, database: &str, view: &View) -> String {
        format!(
            "CREATE VIEW IF NOT EXISTS {}.{}{} AS\n{}",
            quote_ident(database),
            view.name,
            self.on_cluster(),
            view.select_in(database)
        )
    }

    /// On a cluster: drop and create again the `Distributed` table of `kind` with today's
    /// columns (it holds no data: inserts are synchronous). Nothing on a single server.
    pub fn recreate_distributed(&self, database: &str, kind: RecordKind) -> Vec<String> {
        match self {
            Layout::Single => Vec::new(),
            Layout::Cluster(_) => {
                let mut out = vec![format!(
                    "DROP TABLE IF EXISTS {}.{}{}",
                    quote_ident(database),
                    kind.table(),
                    self.on_cluster()
                )];
                out.extend(self.create_table(database, kind).into_iter().skip(1));
                out
            }
        }
    }
}

/// One versioned schema migration.
#[derive(Debug, Clone)]
pub struct Migration {
    /// Schema version reached after this migration; equal to `mxray_model::SCHEMA_VERSION` for
    /// the last one.
    pub version: u32,
    /// What it does, in words (stored in `schema_migrations`).
    pub description: &'static str,
    /// The tables this migration creates (their DDL comes from [`Layout::create_table`]).
    pub creates: &'static [RecordKind],
    /// Columns added to existing tables. ClickHouse 18.16 has no `ADD COLUMN IF NOT EXISTS`,
    /// so `migrate` adds each one only when `system.columns` lacks it; the column's type comes
    /// from the table's column list ([`columns`]), so it is written down once.
    pub add_columns: &'static [AddColumn],
    /// Views this migration creates (after its tables and columns).
    pub views: &'static [View],
}

/// A view of the SQL library: a query over the record tables that several analysis queries
/// share. Its text is a file of `notebooks/sql/views/`, the one definition that both this DDL
/// and the chDB binding (`notebooks/mxray_sql.py`) read, so the two cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The view's name (the file's stem).
    pub name: &'static str,
    /// The file: a comment header, then one `SELECT` over unqualified public table names.
    pub file: &'static str,
}

impl View {
    /// The `SELECT` without its comment header, as written (unqualified table names).
    pub fn select(&self) -> String {
        self.file
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned()
    }

    /// The `SELECT` with every record table and view it reads (a name after `FROM` or `JOIN`)
    /// qualified by `database`. Needed on a cluster: the other nodes run an `ON CLUSTER` statement in
    /// their default database, so an unqualified name would point there (seen on 18.16:
    /// "Table default.scans doesn't exist").
    pub fn select_in(&self, database: &str) -> String {
        let select = self.select();
        let mut out = String::with_capacity(select.len() + 64);
        let mut after_source_keyword = false;
        for piece in select.split_inclusive(|c: char| c.is_whitespace()) {
            let word = piece.trim_end();
            // The name ends where the identifier does: `scans)` closes a subquery.
            let name_len = word
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(word.len());
            let name = &word[..name_len];
            let table = after_source_keyword
                && (RecordKind::ALL.iter().any(|k| k.table() == name)
                    || views().any(|v| v.name == name));
            if table {
                out.push_str(&format!("{}.{name}", quote_ident(database)));
                out.push_str(&piece[name.len()..]);
            } else {
                out.push_str(piece);
            }
            if !word.is_empty() {
                after_source_keyword =
                    word.eq_ignore_ascii_case("FROM") || word.eq_ignore_ascii_case("JOIN");
            }
        }
        out
    }
}

/// `scan_dates`: the UTC start date (and start second) of every scan and vantage, which the
/// library's per-date queries join on.
pub const SCAN_DATES: View = View {
    name: "scan_dates",
    file: include_str!("../../../notebooks/sql/views/scan_dates.sql"),
};

/// `starttls_observations`: per scan date, vantage and destination whose sessions reached an
/// EHLO answer, whether STARTTLS was offered: what the stripping queries compare.
pub const STARTTLS_OBSERVATIONS: View = View {
    name: "starttls_observations",
    file: include_str!("../../../notebooks/sql/views/starttls_observations.sql"),
};

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
    /// The `ALTER TABLE ... ADD COLUMN` statement on a single server (portable to 18.16: no
    /// `IF NOT EXISTS`).
    pub fn statement(&self, database: &str) -> Option<String> {
        self.statement_for(database, self.table.table(), "")
    }

    fn statement_for(&self, database: &str, table: &str, on_cluster: &str) -> Option<String> {
        let col = columns(self.table).iter().find(|c| c.name == self.column)?;
        let default = self
            .default
            .map(|d| format!(" DEFAULT {d}"))
            .unwrap_or_default();
        Some(format!(
            "ALTER TABLE {}.{table}{on_cluster} ADD COLUMN {} {}{default}",
            quote_ident(database),
            col.name,
            clickhouse_type(col)
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
        creates: V1_TABLES,
        add_columns: &[],
        views: &[],
    },
    Migration {
        version: 2,
        description: "table canary_results (canary probe verdicts)",
        creates: &[RecordKind::CanaryResult],
        add_columns: &[],
        views: &[],
    },
    Migration {
        version: 3,
        description: "per-domain DANE, retries, the second TLS engine: \
                      smtp_probes.reached_ehlo, starttls_forced, limiter_wait_ms, attempt, \
                      tls_engine, tls_fallback_reason, tls_fallback_detail, \
                      tls_fallback_transcript, tls_legacy; dns_hosts.a_dnssec, aaaa_dnssec, \
                      attempt; domains.tls_legacy",
        creates: &[],
        add_columns: V3_COLUMNS,
        views: &[],
    },
    Migration {
        version: 4,
        description: "scan campaigns: scans.campaign",
        creates: &[],
        add_columns: &[AddColumn {
            table: RecordKind::Scan,
            column: "campaign",
            default: None,
        }],
        views: &[],
    },
    Migration {
        version: 5,
        description: "view scan_dates (the scan dates the SQL library groups by)",
        creates: &[],
        add_columns: &[],
        views: &[SCAN_DATES],
    },
    Migration {
        version: 6,
        description: "view starttls_observations (shared by the stripping queries)",
        creates: &[],
        add_columns: &[],
        views: &[STARTTLS_OBSERVATIONS],
    },
];

/// The schema version this binary creates and understands.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Every DDL statement of a fresh install on one server, in order: the database, the
/// migrations table, and every migration. Used by the chDB portability check.
pub fn ddl_statements(database: &str) -> Vec<String> {
    let layout = Layout::Single;
    let mut out = vec![
        layout.create_database(database),
        layout.create_migrations_table(database),
    ];
    for m in MIGRATIONS {
        for &k in m.creates {
            out.extend(layout.create_table(database, k));
        }
        out.extend(m.views.iter().map(|v| layout.create_view(database, v)));
    }
    out
}

/// Every view of the current schema, in creation order (a view after the views it reads).
pub fn views() -> impl Iterator<Item = &'static View> {
    MIGRATIONS.iter().flat_map(|m| m.views.iter())
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
    fn a_view_reads_its_own_database_tables_on_every_node() {
        let view = View {
            name: "v",
            file: "-- View: v\nSELECT a.scan_id, count() AS n\nFROM scans AS a\n\
                   INNER JOIN domains AS d ON d.scan_id = a.scan_id\n\
                   WHERE a.vantage IN (SELECT vantage FROM\n    scans)\nGROUP BY a.scan_id",
        };
        assert_eq!(
            view.select_in("m x"),
            "SELECT a.scan_id, count() AS n\nFROM `m x`.scans AS a\n\
             INNER JOIN `m x`.domains AS d ON d.scan_id = a.scan_id\n\
             WHERE a.vantage IN (SELECT vantage FROM\n    `m x`.scans)\nGROUP BY a.scan_id"
        );
        let ddl = Layout::Cluster("c".into()).create_view("mxray", &SCAN_DATES);
        assert!(ddl.contains(" ON CLUSTER c AS\n"), "{ddl}");
        assert!(ddl.contains("FROM `mxray`.scans\n"), "{ddl}");
        assert!(
            !SCAN_DATES.select().contains('`'),
            "the file names unqualified tables"
        );
    }

    #[test]
    fn every_view_file_is_created_after_the_views_it_reads() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../notebooks/sql/views");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("notebooks/sql/views")
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_suffix(".sql")
                    .map(str::to_owned)
            })
            .collect();
        files.sort();
        let mut created: Vec<&str> = views().map(|v| v.name).collect();
        created.sort_unstable();
        assert_eq!(
            files, created,
            "every view file is created by a migration, once"
        );
        let mut before: Vec<&str> = Vec::new();
        for view in views() {
            let qualified = view.select_in("db");
            for other in views() {
                if qualified.contains(&format!("`db`.{} ", other.name)) {
                    assert!(
                        before.contains(&other.name),
                        "{} reads {} before it exists",
                        view.name,
                        other.name
                    );
                }
            }
            before.push(view.name);
        }
        assert!(STARTTLS_OBSERVATIONS
            .select_in("db")
            .contains("INNER JOIN `db`.scan_dates AS s"));
    }

    #[test]
    fn a_new_model_field_is_a_new_column_of_the_ddl() {
        // What adding a field to a record does: the derive puts it in the column list, in
        // field order, with the type its Rust type names; the DDL follows.
        #[derive(mxray_model::columns::Columns)]
        #[allow(dead_code)]
        struct Probe {
            scan_id: uuid::Uuid,
            probed_at: UtcTime,
            ip: String,
            port: u16,
            sni: Option<String>,
            dane: DaneVerdict,
            tlsa: Vec<TlsaRecord>,
            signals: Vec<StrippingSignal>,
            pkix_valid: Option<bool>,
            added_in_v5: Option<u32>,
        }
        use mxray_model::columns::Columns as _;
        assert_eq!(
            column_definitions(Probe::COLUMNS),
            [
                "scan_id UUID",
                "probed_at DateTime",
                "ip String",
                "port UInt16",
                "sni Nullable(String)",
                "dane String",
                "tlsa Nested(usage UInt8, selector UInt8, matching_type UInt8, data String)",
                "signals Array(String)",
                "pkix_valid Nullable(UInt8)",
                "added_in_v5 Nullable(UInt32)",
            ]
        );
    }

    #[test]
    fn columns_are_in_rowbinary_order() {
        // RowBinary is positional: the DDL's column order (our derive) must be the order the
        // `clickhouse::Row` derive serializes the fields in.
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
                .filter(|m| m.creates.contains(&k))
                .map(|m| m.version)
                .collect();
            assert_eq!(creating.len(), 1, "{}: {creating:?}", k.table());
        }
        assert_eq!(MIGRATIONS[1].creates, &[RecordKind::CanaryResult]);
    }

    #[test]
    fn cluster_ddl_is_replicated_local_tables_under_distributed_public_names() {
        let layout = Layout::Cluster("c1".into());
        for &k in TABLES {
            let stmts = layout.create_table("db", k);
            assert_eq!(stmts.len(), 2, "{stmts:?}");
            let (local, dist) = (&stmts[0], &stmts[1]);
            assert!(
                local.starts_with(&format!(
                    "CREATE TABLE IF NOT EXISTS `db`.{}_local ON CLUSTER c1 (",
                    k.table()
                )),
                "{local}"
            );
            assert!(
                local.contains(&format!(
                    "ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/db/{}', '{{replica}}'",
                    k.table()
                )),
                "{local}"
            );
            // Same keys as on one server.
            assert!(local.ends_with(engine_keys(k)), "{local}");
            assert!(
                dist.starts_with(&format!(
                    "CREATE TABLE IF NOT EXISTS `db`.{} ON CLUSTER c1 (",
                    k.table()
                )),
                "{dist}"
            );
            assert!(
                dist.ends_with(&format!(
                    "ENGINE = Distributed(c1, 'db', '{}_local', {})",
                    k.table(),
                    sharding_key(k)
                )),
                "{dist}"
            );
            assert!(!dist.contains("MATERIALIZED"), "{dist}");
        }
        let scans = layout.create_table("db", RecordKind::Scan);
        assert!(
            scans[0].contains("'{replica}', row_version)"),
            "{}",
            scans[0]
        );
        assert!(scans[0].contains("row_version UInt64 MATERIALIZED"));
        let mig = layout.create_migrations_table("db");
        assert!(mig.contains("ON CLUSTER c1"), "{mig}");
        assert!(
            mig.contains("'/clickhouse/tables/all/db/schema_migrations'"),
            "{mig}"
        );
        assert_eq!(
            layout.create_database("db"),
            "CREATE DATABASE IF NOT EXISTS `db` ON CLUSTER c1"
        );
    }

    #[test]
    fn the_shard_column_leads_the_sorting_key() {
        // Every copy of a record must land on the shard that can collapse it: the shard
        // column is the first column of the record's identity.
        for &k in TABLES {
            let keys = engine_keys(k);
            let order = &keys[keys.find("ORDER BY ").expect("order") + 9..];
            let first = order
                .trim_start_matches('(')
                .split([',', ')'])
                .next()
                .expect("first");
            assert_eq!(first.trim(), shard_column(k), "{}", k.table());
            assert!(sharding_key(k).contains(shard_column(k)));
        }
    }

    #[test]
    fn cluster_add_column_alters_local_then_recreates_distributed() {
        let add = &MIGRATIONS[3].add_columns[0];
        let cluster = Layout::Cluster("c1".into());
        assert_eq!(
            cluster.add_column("db", add),
            vec!["ALTER TABLE `db`.scans_local ON CLUSTER c1 ADD COLUMN campaign String"]
        );
        let again = cluster.recreate_distributed("db", RecordKind::Scan);
        assert_eq!(again[0], "DROP TABLE IF EXISTS `db`.scans ON CLUSTER c1");
        assert_eq!(again[1], cluster.create_table("db", RecordKind::Scan)[1]);
        assert_eq!(again.len(), 2);
        assert_eq!(
            Layout::Single.add_column("db", add),
            vec!["ALTER TABLE `db`.scans ADD COLUMN campaign String"]
        );
        assert!(Layout::Single
            .recreate_distributed("db", RecordKind::Scan)
            .is_empty());
    }

    #[test]
    fn layout_from_the_engine() {
        assert_eq!(
            Layout::of_engine("Distributed(mxray_cluster, 'db', 'scans_local', cityHash64(x))"),
            Layout::Cluster("mxray_cluster".into())
        );
        assert_eq!(
            Layout::of_engine("ReplacingMergeTree(row_version) ORDER BY x"),
            Layout::Single
        );
        assert_eq!(Layout::of_engine("Distributed('a b', x)"), Layout::Single);
    }

    #[test]
    fn cluster_names() {
        assert!(valid_cluster_name("mxray_cluster"));
        for bad in ["", "a b", "c;DROP", "1c", "`x`"] {
            assert!(!valid_cluster_name(bad), "{bad}");
        }
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
