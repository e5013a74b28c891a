//! Times and durations as they appear in inputs and outputs: RFC 3339 times, and durations such
//! as `"30m"` or `"7d"` (LibraryCache's `maxAge`, Scheduling's `every`).

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

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not `<digits>` followed by one of the units.
    #[error("not a duration: {0:?} (expected seconds, or a number with ms, s, m, h or d)")]
    Malformed(String),
    /// Too long to represent.
    #[error("duration out of range: {0:?}")]
    OutOfRange(String),
}

/// A whole number of seconds as a duration, if it fits.
pub fn seconds(n: u64) -> Result<chrono::Duration, DurationError> {
    let millis = n
        .checked_mul(1000)
        .and_then(|m| i64::try_from(m).ok())
        .ok_or_else(|| DurationError::OutOfRange(n.to_string()))?;
    chrono::Duration::try_milliseconds(millis).ok_or_else(|| DurationError::OutOfRange(n.to_string()))
}

/// Parses a duration: bare seconds (`"90"`), or a whole number with a unit: `"500ms"`, `"90s"`,
/// `"30m"`, `"24h"`, `"7d"`. Surrounding spaces are ignored; nothing else is accepted.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, DurationError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| DurationError::Malformed(text.to_string()))?;
    let scale: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(DurationError::Malformed(text.to_string())),
    };
    let out_of_range = || DurationError::OutOfRange(text.to_string());
    let millis = n.checked_mul(scale).ok_or_else(out_of_range)?;
    let millis = i64::try_from(millis).map_err(|_| out_of_range())?;
    chrono::Duration::try_milliseconds(millis).ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_each_unit_and_as_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(chrono::Duration::milliseconds(500)));
        assert_eq!(parse_duration("90s"), Ok(chrono::Duration::seconds(90)));
        assert_eq!(parse_duration(" 30m "), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_duration("24h"), Ok(chrono::Duration::hours(24)));
        assert_eq!(parse_duration("7d"), Ok(chrono::Duration::days(7)));
        assert_eq!(parse_duration("45"), Ok(chrono::Duration::seconds(45)));
        assert_eq!(seconds(45), Ok(chrono::Duration::seconds(45)));
        for bad in ["", "s", "1.5h", "-1s", "10 s", "3w", "1h30m", "9999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert!(matches!(
            parse_duration("99999999999999999d"),
            Err(DurationError::OutOfRange(_))
        ));
        assert!(seconds(u64::MAX).is_err());
    }
}
