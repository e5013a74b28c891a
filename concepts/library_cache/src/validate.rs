//! Field rules the schema cannot express: ids are non-empty and free of control characters,
//! times are RFC 3339. Each refusal names the field path (`likes[3].likedAt`).

use chrono::{DateTime, Utc};
use concept_core::time::{parse_duration, parse_rfc3339, seconds};
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

/// A duration: seconds, or `<n>ms`, `<n>s`, `<n>m`, `<n>h`, `<n>d` (parsed by
/// [`concept_core::time::parse_duration`], which Scheduling's `every` shares).
pub fn max_age(path: &str, value: &crate::model::MaxAge) -> Result<chrono::Duration, ActionError> {
    use crate::model::MaxAge;
    let parsed = match value {
        MaxAge::Seconds(s) => seconds(*s),
        MaxAge::Text(t) => parse_duration(t),
    };
    parsed.map_err(|_| {
        ActionError::invalid(
            "INVALID_DURATION",
            format!("`{path}` must be seconds or a duration such as \"500ms\", \"30m\", \"24h\" or \"7d\""),
        )
    })
}
