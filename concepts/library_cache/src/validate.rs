//! Field rules the schema cannot express: ids are non-empty and free of control characters,
//! times are RFC 3339. Each refusal names the field path (`likes[3].likedAt`).

use chrono::{DateTime, Utc};
use concept_core::time::parse_rfc3339;
use concept_core::ActionError;

/// The longest id accepted, in bytes.
pub const MAX_ID: usize = 1024;

pub fn id(path: &str, value: &str) -> Result<(), ActionError> {
    if value.trim().is_empty() {
        return Err(ActionError::invalid("EMPTY_ID", format!("`{path}` must not be empty")));
    }
    if value.len() > MAX_ID {
        return Err(ActionError::invalid(
            "INVALID_ID",
            format!("`{path}` is longer than {MAX_ID} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ActionError::invalid(
            "INVALID_ID",
            format!("`{path}` must not contain control characters"),
        ));
    }
    Ok(())
}

pub fn time(path: &str, value: &str) -> Result<DateTime<Utc>, ActionError> {
    parse_rfc3339(value).ok_or_else(|| {
        ActionError::invalid(
            "INVALID_TIME",
            format!("`{path}` is not an RFC 3339 time (e.g. 2025-10-16T22:53:29Z): {value:?}"),
        )
    })
}

pub fn opt_time(path: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ActionError> {
    value.map(|v| time(path, v)).transpose()
}

/// A duration: seconds, or `<n>ms`, `<n>s`, `<n>m`, `<n>h`, `<n>d`.
pub fn max_age(path: &str, value: &crate::model::MaxAge) -> Result<chrono::Duration, ActionError> {
    use crate::model::MaxAge;
    let bad = || {
        ActionError::invalid(
            "INVALID_DURATION",
            format!("`{path}` must be seconds or a duration such as \"500ms\", \"30m\", \"24h\" or \"7d\""),
        )
    };
    let millis = match value {
        MaxAge::Seconds(s) => s.checked_mul(1000).ok_or_else(bad)?,
        MaxAge::Text(t) => {
            let t = t.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (n, unit) = t.split_at(split);
            let n: u64 = n.parse().map_err(|_| bad())?;
            let scale = match unit {
                "ms" => 1,
                "" | "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            n.checked_mul(scale).ok_or_else(bad)?
        }
    };
    let millis = i64::try_from(millis).map_err(|_| bad())?;
    chrono::Duration::try_milliseconds(millis).ok_or_else(bad)
}
