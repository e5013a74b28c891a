//! RFC 3339 times as they appear in inputs and outputs.

use chrono::{DateTime, SecondsFormat, Utc};

/// Parses an RFC 3339 time, normalised to UTC.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Formats a time the way every output of the service does (UTC, `Z`, sub-seconds when present).
pub fn format_rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A time as a sortable integer (microseconds since the epoch).
pub fn micros(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`micros`].
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}
