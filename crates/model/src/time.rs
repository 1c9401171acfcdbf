//! [`UtcTime`]: a UTC instant with second precision, the only time type in records.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A UTC instant, second precision.
///
/// JSON (and any human-readable format): an RFC 3339 string such as `2026-11-29T12:00:00Z`.
/// ClickHouse RowBinary (not human-readable): a `DateTime` column, i.e. `u32` Unix seconds;
/// this keeps the DDL portable to ClickHouse 18.16, which has no `DateTime64`. Sub-second
/// durations are recorded separately as milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(i64);

impl UtcTime {
    /// The current time, truncated to the second.
    pub fn now() -> Self {
        UtcTime(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// From Unix seconds.
    pub const fn from_unix(secs: i64) -> Self {
        UtcTime(secs)
    }

    /// Unix seconds.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// As a `time` value (UTC offset).
    pub fn to_offset_date_time(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Seconds clamped to what ClickHouse's `DateTime` (u32 seconds) can hold.
    pub fn clickhouse_secs(self) -> u32 {
        u32::try_from(self.0.max(0)).unwrap_or(u32::MAX)
    }
}

impl From<OffsetDateTime> for UtcTime {
    fn from(t: OffsetDateTime) -> Self {
        UtcTime(t.unix_timestamp())
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_offset_date_time().format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}", self.0),
        }
    }
}

impl std::str::FromStr for UtcTime {
    type Err = time::error::Parse;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OffsetDateTime::parse(s, &Rfc3339).map(UtcTime::from)
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u32(self.clickhouse_secs())
        }
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(UtcTime(i64::from(u32::deserialize(d)?)))
        }
    }
}
