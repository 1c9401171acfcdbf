//! [`StoreError`]: the one error type of this crate, and the retry classes of ClickHouse errors.

use std::path::PathBuf;
use std::sync::Arc;

/// Why a sink, a migration or a load failed. An `Err` here means mxray could not store data;
/// it never describes a scanned host.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The ClickHouse URL or a sink option is unusable.
    #[error("invalid ClickHouse URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (password removed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// ClickHouse did not answer the health check.
    #[error("ClickHouse at {url} is not reachable: {message}")]
    Unreachable {
        /// Server URL (no credentials).
        url: String,
        /// The last error.
        message: String,
    },
    /// A ClickHouse request failed (after retries, when the failure was transient).
    #[error("ClickHouse {context}: {message}")]
    ClickHouse {
        /// What was being done (`CREATE TABLE smtp_probes`, `INSERT INTO domains`, ...).
        context: String,
        /// The server's or client's message.
        message: String,
        /// Whether the failure class is transient (retrying later may succeed).
        transient: bool,
    },
    /// The database was migrated by a newer mxray: this binary must not write to it.
    #[error(
        "database {database:?} has schema version {found}, newer than this mxray supports \
         (schema version {supported}); upgrade mxray"
    )]
    SchemaTooNew {
        /// Database name.
        database: String,
        /// Version recorded in `schema_migrations`.
        found: u32,
        /// [`crate::schema::latest_version`].
        supported: u32,
    },
    /// The database is laid out for a cluster and mxray was asked to migrate it as a single
    /// server, or the other way round: migrating it would leave the nodes with different
    /// schemas.
    #[error("database {database:?} holds {found} tables; {advice}")]
    LayoutMismatch {
        /// Database name.
        database: String,
        /// What the server has (`Distributed` or `ReplacingMergeTree`).
        found: String,
        /// What to do instead.
        advice: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A Parquet file could not be written or read.
    #[error("{path}: parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet crate's message.
        message: String,
    },
    /// A result directory's manifest is missing, malformed, or does not match its files.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest or the data file at fault.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
    /// A row could not be converted between its record type and a file format.
    #[error("{table}: row {row}: {message}")]
    BadRow {
        /// Table.
        table: &'static str,
        /// Row number within the file or batch (0-based).
        row: u64,
        /// What is wrong.
        message: String,
    },
    /// The sink was used after `close`, or its background task ended.
    #[error("sink is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        StoreError::Parquet {
            path: path.into(),
            message: e.to_string(),
        }
    }

    pub(crate) fn clickhouse(context: impl Into<String>, e: &clickhouse::error::Error) -> Self {
        let class = classify(e);
        StoreError::ClickHouse {
            context: context.into(),
            message: e.to_string(),
            transient: class == ErrorClass::Transient,
        }
    }

    /// True for failures that may go away when retried (network, timeouts, 5xx, too many
    /// parts).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::ClickHouse {
                transient: true,
                ..
            } | StoreError::Unreachable { .. }
        )
    }
}

/// How a ClickHouse failure is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retry with backoff, then spill: connection refused/reset, timeouts, HTTP 5xx without a
    /// ClickHouse error, and the server codes of overload or shutdown.
    Transient,
    /// Never retried: the data or the statement is wrong (bad data, unknown table, syntax,
    /// type mismatch, ...). Retrying would fail the same way.
    Permanent,
}

/// ClickHouse error codes that are worth retrying (server overload, shutdown, network).
const TRANSIENT_CODES: &[u32] = &[
    159,  // TIMEOUT_EXCEEDED
    164,  // READONLY (a replica restarting)
    202,  // TOO_MANY_SIMULTANEOUS_QUERIES
    203,  // NO_FREE_CONNECTION
    209,  // SOCKET_TIMEOUT
    210,  // NETWORK_ERROR
    241,  // MEMORY_LIMIT_EXCEEDED
    242,  // TABLE_IS_READ_ONLY
    252,  // TOO_MANY_PARTS
    285,  // TOO_FEW_LIVE_REPLICAS
    319,  // UNKNOWN_STATUS_OF_INSERT
    394,  // QUERY_WAS_CANCELLED (server shutting down)
    425,  // SYSTEM_ERROR
    999,  // KEEPER_EXCEPTION
    1000, // POCO_EXCEPTION (network in the server)
];

/// The `Code: N` of a ClickHouse exception message.
pub fn error_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The `(at row N)` of a ClickHouse parse error (1-based in ClickHouse's message).
pub fn error_row(message: &str) -> Option<u64> {
    let rest = &message[message.find("(at row ")? + 8..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Classify a ClickHouse client error for retries.
pub fn classify(e: &clickhouse::error::Error) -> ErrorClass {
    use clickhouse::error::Error as E;
    match e {
        E::Network(_) | E::TimedOut => ErrorClass::Transient,
        E::BadResponse(msg) => classify_message(msg),
        _ => ErrorClass::Permanent,
    }
}

/// Classify a server error message (`Code: 252, e.displayText() = ...`, or an HTTP status line
/// when the body was empty).
pub fn classify_message(msg: &str) -> ErrorClass {
    match error_code(msg) {
        Some(code) if TRANSIENT_CODES.contains(&code) => ErrorClass::Transient,
        Some(_) => ErrorClass::Permanent,
        None => {
            // No ClickHouse code: a proxy or the HTTP layer answered. 5xx is transient.
            let status = msg
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<u16>().ok());
            match status {
                Some(s) if (500..600).contains(&s) => ErrorClass::Transient,
                _ if msg.contains("Connection reset") || msg.contains("connection closed") => {
                    ErrorClass::Transient
                }
                _ => ErrorClass::Permanent,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_rows_are_parsed_from_18_16_messages() {
        let msg = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected \
                   '\\t' before: 'x' (at row 3), e.what() = DB::Exception";
        assert_eq!(error_code(msg), Some(27));
        assert_eq!(error_row(msg), Some(3));
        assert_eq!(classify_message(msg), ErrorClass::Permanent);
    }

    #[test]
    fn too_many_parts_and_5xx_are_transient() {
        assert_eq!(
            classify_message("Code: 252, e.displayText() = DB::Exception: Too many parts (300)"),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_message("503 Service Unavailable"),
            ErrorClass::Transient
        );
        assert_eq!(classify_message("400 Bad Request"), ErrorClass::Permanent);
        assert_eq!(
            classify_message("Code: 60, e.displayText() = DB::Exception: Table x doesn't exist"),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn network_errors_are_transient() {
        let e = clickhouse::error::Error::Network("connection refused".into());
        assert_eq!(classify(&e), ErrorClass::Transient);
        assert_eq!(
            classify(&clickhouse::error::Error::TimedOut),
            ErrorClass::Transient
        );
        let e = clickhouse::error::Error::NotEnoughData;
        assert_eq!(classify(&e), ErrorClass::Permanent);
    }
}
