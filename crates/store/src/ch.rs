//! ClickHouse access: configuration from a URL, health check, migrations, batch inserts and
//! reads, over the HTTP interface with RowBinary (the `clickhouse` crate, validation off, so
//! that ClickHouse 18.16 works too).

use std::path::PathBuf;
use std::time::Duration;

use clickhouse::Client;
use mxray_model::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::schema::{self, quote_ident, Layout, MIGRATIONS, MIGRATIONS_TABLE};

/// Where and how to write to ClickHouse. Build it with [`ClickHouseConfig::from_url`], then
/// adjust the public fields; every default is documented on its field.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClickHouseConfig {
    /// Server base URL without credentials or path, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// User name (URL user part). Default: none, i.e. ClickHouse's `default` user.
    pub user: Option<String>,
    /// Password (URL password part). Default: none.
    pub password: Option<String>,
    /// Database (URL path). Default `mxray`.
    pub database: String,
    /// Rows per INSERT and table. Default 50,000: large enough that ClickHouse makes few parts
    /// (it wants at most about one insert per second per table), small enough that a batch of
    /// `smtp_probe` rows stays within tens of MB.
    pub batch_rows: usize,
    /// A table's partial batch is sent at the latest this long after its first row. Default
    /// 2 s: a slow scan still shows up in the database promptly.
    pub batch_interval: Duration,
    /// Records queued between the scanner and the batcher. When full, `Sink::write` waits:
    /// this is the backpressure that keeps memory bounded by the batch size. Default 10,000.
    pub queue_rows: usize,
    /// Timeout of one request (send and response). Default 60 s.
    pub request_timeout: Duration,
    /// First retry delay after a transient failure; doubles per attempt. Default 250 ms.
    pub retry_initial: Duration,
    /// Longest delay between retries. Default 8 s.
    pub retry_max: Duration,
    /// How long a batch is retried before it is spilled to files. Default 60 s.
    pub spill_after: Duration,
    /// While spilling, how often one batch is tried against the server again. Default 1 s.
    pub probe_interval: Duration,
    /// Where spilled batches go (a Parquet result directory that `mxray load` ingests).
    /// Default `./mxray-spill/<uuid v7>/`, created only if something spills.
    pub spill_dir: PathBuf,
    /// `Some(name)`: [`migrate`] lays the database out for that ClickHouse cluster
    /// ([`Layout::Cluster`]: `ON CLUSTER` DDL, replicated local tables, Distributed public
    /// tables). Writers and readers need not set it: they use the public names either way.
    pub cluster: Option<String>,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("batch_rows", &self.batch_rows)
            .field("batch_interval", &self.batch_interval)
            .field("queue_rows", &self.queue_rows)
            .field("request_timeout", &self.request_timeout)
            .field("spill_after", &self.spill_after)
            .field("spill_dir", &self.spill_dir)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// Default database when the URL has no path.
pub const DEFAULT_DATABASE: &str = "mxray";

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn valid_database_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl ClickHouseConfig {
    /// Parse `http[s]://[user[:password]@]host[:port][/database]`.
    pub fn from_url(raw: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: redact(raw),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(invalid("the scheme must be http or https"));
        }
        let host = parsed.host_str().ok_or_else(|| invalid("no host"))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid("no query or fragment allowed"));
        }
        let path = parsed.path().trim_matches('/');
        let database = if path.is_empty() {
            DEFAULT_DATABASE.to_owned()
        } else {
            percent_decode(path)
        };
        if !valid_database_name(&database) {
            return Err(invalid(&format!(
                "database name {database:?} must be letters, digits and _"
            )));
        }
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let user = (!parsed.username().is_empty()).then(|| percent_decode(parsed.username()));
        let password = parsed.password().map(percent_decode);
        Ok(ClickHouseConfig {
            url: format!("{}://{host}{port}", parsed.scheme()),
            user,
            password,
            database,
            batch_rows: 50_000,
            batch_interval: Duration::from_secs(2),
            queue_rows: 10_000,
            request_timeout: Duration::from_secs(60),
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(8),
            spill_after: Duration::from_secs(60),
            probe_interval: Duration::from_secs(1),
            spill_dir: PathBuf::from("mxray-spill").join(Uuid::now_v7().to_string()),
            cluster: None,
        })
    }

    /// The same server, migrating for a cluster (`mxray migrate --cluster NAME`).
    pub fn with_cluster(mut self, cluster: &str) -> Result<Self, StoreError> {
        if !schema::valid_cluster_name(cluster) {
            return Err(StoreError::InvalidUrl {
                url: self.url.clone(),
                reason: format!("cluster name {cluster:?} must be letters, digits and _"),
            });
        }
        self.cluster = Some(cluster.to_owned());
        Ok(self)
    }

    /// The layout [`migrate`] creates.
    pub fn layout(&self) -> Layout {
        match &self.cluster {
            Some(name) => Layout::Cluster(name.clone()),
            None => Layout::Single,
        }
    }

    /// The same server with another database (tests use one database each).
    pub fn with_database(mut self, database: &str) -> Result<Self, StoreError> {
        if !valid_database_name(database) {
            return Err(StoreError::InvalidUrl {
                url: self.url.clone(),
                reason: format!("database name {database:?} must be letters, digits and _"),
            });
        }
        self.database = database.to_owned();
        Ok(self)
    }

    /// A client for this server, without a default database (every statement here names its
    /// database), RowBinary without validation (ClickHouse 18.16 lacks
    /// `RowBinaryWithNamesAndTypes`).
    ///
    /// Inserts into a `Distributed` table (a cluster's public tables) are synchronous
    /// (`insert_distributed_sync`): the server answers only when every shard's replica has the
    /// rows, so an acknowledged batch is never held in one node's send queue alone, and a
    /// failed batch is retried whole; the retry splits into the same per-shard blocks, which
    /// replicated tables deduplicate. On a single server the setting has no effect.
    pub fn client(&self) -> Client {
        let mut c = Client::default()
            .with_url(&self.url)
            .with_validation(false)
            .with_setting("insert_distributed_sync", "1");
        if let Some(u) = &self.user {
            c = c.with_user(u);
        }
        if let Some(p) = &self.password {
            c = c.with_password(p);
        }
        c
    }

    /// `db.table`, quoted.
    pub fn table(&self, table: &str) -> String {
        format!("{}.{}", quote_ident(&self.database), quote_ident(table))
    }
}

/// Remove the password from a URL for messages.
fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

pub(crate) async fn with_timeout<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = clickhouse::error::Result<T>>,
) -> clickhouse::error::Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(clickhouse::error::Error::TimedOut),
    }
}

/// `SELECT 1` against the server; returns its version string.
pub async fn health_check(config: &ClickHouseConfig) -> Result<String, StoreError> {
    let client = config.client();
    let timeout = config.request_timeout.min(Duration::from_secs(10));
    with_timeout(
        timeout,
        client.query("SELECT version()").fetch_one::<String>(),
    )
    .await
    .map_err(|e| StoreError::Unreachable {
        url: config.url.clone(),
        message: e.to_string(),
    })
}

/// Runs one DDL statement. Every statement here is idempotent (`IF NOT EXISTS`, or checked
/// before), so a transient failure (a pooled connection the server had closed, a node still
/// starting, a ZooKeeper hiccup under `ON CLUSTER`) is retried a few times with backoff.
async fn execute(config: &ClickHouseConfig, sql: &str, context: &str) -> Result<(), StoreError> {
    let mut delay = config.retry_initial;
    let mut attempt = 1;
    loop {
        match with_timeout(config.request_timeout, config.client().query(sql).execute()).await {
            Ok(()) => return Ok(()),
            Err(e)
                if attempt < 5
                    && crate::error::classify(&e) == crate::error::ErrorClass::Transient =>
            {
                tracing::debug!(error = %e, attempt, "DDL retry");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(config.retry_max);
                attempt += 1;
            }
            Err(e) => return Err(StoreError::clickhouse(context, &e)),
        }
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The database.
    pub database: String,
    /// Schema version found before (0 for a new database).
    pub from: u32,
    /// Schema version now.
    pub to: u32,
    /// Versions applied by this run (empty when already current).
    pub applied: Vec<u32>,
}

/// The schema version recorded in `schema_migrations` (0 when none).
pub async fn schema_version(config: &ClickHouseConfig) -> Result<u32, StoreError> {
    let sql = format!(
        "SELECT toUInt32(max(version)) FROM {}",
        config.table(MIGRATIONS_TABLE)
    );
    with_timeout(
        config.request_timeout,
        config.client().query(&sql).fetch_one::<u32>(),
    )
    .await
    .map_err(|e| StoreError::clickhouse("read schema version", &e))
}

/// Create or upgrade the schema: the database, `schema_migrations`, and every migration newer
/// than the recorded version. Idempotent. Refuses a database whose recorded version is newer
/// than [`schema::latest_version`] ([`StoreError::SchemaTooNew`]).
pub async fn migrate(config: &ClickHouseConfig) -> Result<MigrationReport, StoreError> {
    health_check(config).await?;
    let layout = config.layout();
    let db = &config.database;
    execute(
        config,
        &layout.create_database(db),
        &format!("CREATE DATABASE {db}"),
    )
    .await?;
    execute(
        config,
        &layout.create_migrations_table(db),
        "CREATE TABLE schema_migrations",
    )
    .await?;
    let from = schema_version(config).await?;
    let supported = schema::latest_version();
    if from > supported {
        return Err(StoreError::SchemaTooNew {
            database: config.database.clone(),
            found: from,
            supported,
        });
    }
    let pending: Vec<&schema::Migration> = MIGRATIONS.iter().filter(|m| m.version > from).collect();
    // Writers connect to any node without `--cluster` and use the public names: a current
    // schema needs no check. A change, or an explicit cluster layout, must match what exists.
    if !pending.is_empty() || config.cluster.is_some() {
        check_layout(config, &layout).await?;
    }
    let mut applied = Vec::new();
    for m in pending {
        for &kind in m.creates {
            for stmt in layout.create_table(db, kind) {
                let context = stmt.lines().next().unwrap_or("DDL").trim_end_matches(" (");
                execute(config, &stmt, context).await?;
            }
        }
        let mut altered: Vec<RecordKind> = Vec::new();
        for add in m.add_columns {
            if !altered.contains(&add.table) {
                altered.push(add.table);
            }
            if column_exists(config, &layout.storage_table(add.table), add.column).await? {
                continue;
            }
            for stmt in layout.add_column(db, add) {
                execute(config, &stmt, &stmt).await?;
            }
        }
        for kind in altered {
            for stmt in layout.recreate_distributed(db, kind) {
                let context = stmt.lines().next().unwrap_or("DDL").trim_end_matches(" (");
                execute(config, &stmt, context).await?;
            }
        }
        for view in m.views {
            let stmt = layout.create_view(db, view);
            execute(config, &stmt, &format!("CREATE VIEW {}", view.name)).await?;
        }
        let insert = format!(
            "INSERT INTO {} (version, description, applied_at, tool_version) \
             VALUES (?, ?, now(), ?)",
            config.table(MIGRATIONS_TABLE)
        );
        with_timeout(
            config.request_timeout,
            config
                .client()
                .query(&insert)
                .bind(m.version)
                .bind(m.description)
                .bind(env!("CARGO_PKG_VERSION"))
                .execute(),
        )
        .await
        .map_err(|e| StoreError::clickhouse("record migration", &e))?;
        applied.push(m.version);
    }
    Ok(MigrationReport {
        database: config.database.clone(),
        from,
        to: from.max(applied.last().copied().unwrap_or(from)),
        applied,
    })
}

/// The layout of the configured database as it exists, from the engine of its `scans` table
/// (`None`: no such table yet).
pub(crate) async fn existing_layout(
    config: &ClickHouseConfig,
) -> Result<Option<Layout>, StoreError> {
    let engines: Vec<String> = with_timeout(
        config.request_timeout,
        config
            .client()
            .query("SELECT engine_full FROM system.tables WHERE database = ? AND name = ?")
            .bind(config.database.as_str())
            .bind(RecordKind::Scan.table())
            .fetch_all::<String>(),
    )
    .await
    .map_err(|e| StoreError::clickhouse("read system.tables", &e))?;
    Ok(engines.first().map(|e| Layout::of_engine(e)))
}

/// Refuses to migrate a cluster's database as a single server (the change would reach one
/// node only) or a single server's database as a cluster: the engine of the existing `scans`
/// table tells which it is.
async fn check_layout(config: &ClickHouseConfig, layout: &Layout) -> Result<(), StoreError> {
    let Some(found) = existing_layout(config).await? else {
        return Ok(()); // a new database
    };
    let distributed = matches!(found, Layout::Cluster(_));
    let advice = match (layout, distributed) {
        (Layout::Single, true) => {
            "it is laid out for a cluster: migrate it with `mxray migrate --cluster NAME`"
        }
        (Layout::Cluster(_), false) => {
            "it was created for a single server; a cluster needs a new database \
             (copy the data with INSERT ... SELECT)"
        }
        _ => return Ok(()),
    };
    Err(StoreError::LayoutMismatch {
        database: config.database.clone(),
        found: if distributed {
            "Distributed"
        } else {
            "ReplacingMergeTree"
        }
        .to_owned(),
        advice: advice.to_owned(),
    })
}

/// Whether `table` of the configured database has `column` (`system.columns`).
async fn column_exists(
    config: &ClickHouseConfig,
    table: &str,
    column: &str,
) -> Result<bool, StoreError> {
    let n: u64 = with_timeout(
        config.request_timeout,
        config
            .client()
            .query(
                "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
            )
            .bind(config.database.as_str())
            .bind(table)
            .bind(column)
            .fetch_one(),
    )
    .await
    .map_err(|e| StoreError::clickhouse("read system.columns", &e))?;
    Ok(n > 0)
}

/// `dns_hosts` as ClickHouse stores it: the TLSA list as the parallel arrays of a `Nested`
/// column (ClickHouse 18.16 cannot store `Array(Tuple(..))`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub(crate) struct DnsHostRow {
    #[serde(with = "clickhouse::serde::uuid")]
    scan_id: Uuid,
    vantage: String,
    resolved_at: UtcTime,
    host: String,
    addresses: Vec<String>,
    cname_chain: Vec<String>,
    address_rcode: DnsOutcome,
    address_dnssec: DnssecStatus,
    address_ttl: Option<u32>,
    tlsa_owner: Option<String>,
    tlsa_rcode: DnsOutcome,
    tlsa_dnssec: DnssecStatus,
    tlsa_ttl: Option<u32>,
    #[serde(rename = "tlsa.usage")]
    tlsa_usage: Vec<u8>,
    #[serde(rename = "tlsa.selector")]
    tlsa_selector: Vec<u8>,
    #[serde(rename = "tlsa.matching_type")]
    tlsa_matching_type: Vec<u8>,
    #[serde(rename = "tlsa.data")]
    tlsa_data: Vec<String>,
    ede: Vec<String>,
    errors: Vec<String>,
    a_dnssec: DnssecStatus,
    aaaa_dnssec: DnssecStatus,
    attempt: u8,
}

impl From<&DnsHostRecord> for DnsHostRow {
    fn from(r: &DnsHostRecord) -> Self {
        DnsHostRow {
            scan_id: r.scan_id,
            vantage: r.vantage.clone(),
            resolved_at: r.resolved_at,
            host: r.host.clone(),
            addresses: r.addresses.clone(),
            cname_chain: r.cname_chain.clone(),
            address_rcode: r.address_rcode,
            address_dnssec: r.address_dnssec,
            address_ttl: r.address_ttl,
            tlsa_owner: r.tlsa_owner.clone(),
            tlsa_rcode: r.tlsa_rcode,
            tlsa_dnssec: r.tlsa_dnssec,
            tlsa_ttl: r.tlsa_ttl,
            tlsa_usage: r.tlsa.iter().map(|t| t.usage).collect(),
            tlsa_selector: r.tlsa.iter().map(|t| t.selector).collect(),
            tlsa_matching_type: r.tlsa.iter().map(|t| t.matching_type).collect(),
            tlsa_data: r.tlsa.iter().map(|t| t.data.clone()).collect(),
            ede: r.ede.clone(),
            errors: r.errors.clone(),
            a_dnssec: r.a_dnssec,
            aaaa_dnssec: r.aaaa_dnssec,
            attempt: r.attempt,
        }
    }
}

impl From<DnsHostRow> for DnsHostRecord {
    fn from(r: DnsHostRow) -> Self {
        let tlsa = r
            .tlsa_usage
            .iter()
            .zip(&r.tlsa_selector)
            .zip(&r.tlsa_matching_type)
            .zip(r.tlsa_data)
            .map(|(((&usage, &selector), &matching_type), data)| TlsaRecord {
                usage,
                selector,
                matching_type,
                data,
            })
            .collect();
        DnsHostRecord {
            scan_id: r.scan_id,
            vantage: r.vantage,
            resolved_at: r.resolved_at,
            host: r.host,
            addresses: r.addresses,
            cname_chain: r.cname_chain,
            address_rcode: r.address_rcode,
            address_dnssec: r.address_dnssec,
            address_ttl: r.address_ttl,
            tlsa_owner: r.tlsa_owner,
            tlsa_rcode: r.tlsa_rcode,
            tlsa_dnssec: r.tlsa_dnssec,
            tlsa_ttl: r.tlsa_ttl,
            tlsa,
            ede: r.ede,
            errors: r.errors,
            a_dnssec: r.a_dnssec,
            aaaa_dnssec: r.aaaa_dnssec,
            attempt: r.attempt,
        }
    }
}

async fn insert_picked<T>(
    client: &Client,
    table: &str,
    rows: &[Record],
    pick: fn(&Record) -> Option<&T>,
    timeout: Duration,
) -> clickhouse::error::Result<()>
where
    T: clickhouse::RowOwned + clickhouse::RowWrite,
{
    let mut insert = client
        .insert_unescaped::<T>(table)
        .await?
        .with_timeouts(Some(timeout), Some(timeout));
    for row in rows.iter().filter_map(pick) {
        insert.write(row).await?;
    }
    insert.end().await
}

/// INSERT one batch of records of one kind into its table. Records of another kind in `rows`
/// are skipped (the batcher never mixes kinds).
pub(crate) async fn insert_batch(
    config: &ClickHouseConfig,
    client: &Client,
    kind: RecordKind,
    rows: &[Record],
) -> clickhouse::error::Result<()> {
    let table = config.table(kind.table());
    let timeout = config.request_timeout;
    macro_rules! typed {
        ($variant:ident, $rows:expr) => {
            insert_picked(
                client,
                &table,
                $rows,
                |r| match r {
                    Record::$variant(x) => Some(x),
                    _ => None,
                },
                timeout,
            )
            .await
        };
    }
    match kind {
        RecordKind::Scan => typed!(Scan, rows),
        RecordKind::Domain => typed!(Domain, rows),
        RecordKind::DnsHost => {
            let converted: Vec<DnsHostRow> = rows
                .iter()
                .filter_map(|r| match r {
                    Record::DnsHost(x) => Some(DnsHostRow::from(x)),
                    _ => None,
                })
                .collect();
            let mut insert = client
                .insert_unescaped::<DnsHostRow>(&table)
                .await?
                .with_timeouts(Some(timeout), Some(timeout));
            for row in &converted {
                insert.write(row).await?;
            }
            insert.end().await
        }
        RecordKind::SmtpProbe => typed!(SmtpProbe, rows),
        RecordKind::Certificate => typed!(Certificate, rows),
        RecordKind::MtaStsPolicy => typed!(MtaStsPolicy, rows),
        RecordKind::CanaryResult => typed!(CanaryResult, rows),
    }
}

/// Every row of a table, deduplicated (`FINAL`), in sorting-key order. For tests, checks and
/// small tables: it loads the whole table into memory.
pub async fn read_table(
    config: &ClickHouseConfig,
    kind: RecordKind,
) -> Result<Vec<Record>, StoreError> {
    let client = config.client();
    let table = config.table(kind.table());
    let sql = format!("SELECT ?fields FROM {table} FINAL");
    let context = format!("SELECT FROM {}", kind.table());
    macro_rules! fetch {
        ($ty:ty) => {
            with_timeout(
                config.request_timeout,
                client.query(&sql).fetch_all::<$ty>(),
            )
            .await
            .map_err(|e| StoreError::clickhouse(&context, &e))?
            .into_iter()
            .map(Record::from)
            .collect()
        };
    }
    Ok(match kind {
        RecordKind::Scan => fetch!(ScanRecord),
        RecordKind::Domain => fetch!(DomainRecord),
        RecordKind::DnsHost => with_timeout(
            config.request_timeout,
            client.query(&sql).fetch_all::<DnsHostRow>(),
        )
        .await
        .map_err(|e| StoreError::clickhouse(&context, &e))?
        .into_iter()
        .map(|r| Record::from(DnsHostRecord::from(r)))
        .collect(),
        RecordKind::SmtpProbe => fetch!(SmtpProbeRecord),
        RecordKind::Certificate => fetch!(CertificateRecord),
        RecordKind::MtaStsPolicy => fetch!(MtaStsPolicyRecord),
        RecordKind::CanaryResult => fetch!(CanaryResultRecord),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_become_config_fields() {
        let c = ClickHouseConfig::from_url("http://alice:s%40cret@127.0.0.1:8123/scans_2025")
            .expect("valid");
        assert_eq!(c.url, "http://127.0.0.1:8123");
        assert_eq!(c.user.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert_eq!(c.database, "scans_2025");
        assert!(
            !format!("{c:?}").contains("s@cret"),
            "Debug must hide the password"
        );

        let c = ClickHouseConfig::from_url("https://[::1]:8443").expect("valid");
        assert_eq!(c.url, "https://[::1]:8443");
        assert_eq!(c.database, DEFAULT_DATABASE);
        assert_eq!(c.user, None);
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, needle) in [
            ("ftp://127.0.0.1/x", "scheme"),
            ("http://127.0.0.1/bad-name", "database name"),
            ("http://127.0.0.1/x?y=1", "query"),
            ("not a url", "relative URL"),
        ] {
            let err = ClickHouseConfig::from_url(url).expect_err(url).to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
        let err = ClickHouseConfig::from_url("ftp://bob:hunter2@127.0.0.1/x")
            .expect_err("scheme")
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn dns_host_rows_round_trip() {
        let r = examples::dns_host();
        let row = DnsHostRow::from(&r);
        assert_eq!(row.tlsa_usage, vec![3]);
        assert_eq!(DnsHostRecord::from(row), r);
        use clickhouse::Row;
        assert!(DnsHostRow::COLUMN_NAMES.contains(&"tlsa.data"));
    }
}
