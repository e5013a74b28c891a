//! Field rules every concept shares and a schema cannot express: ids are non-empty and free of
//! control characters, times are RFC 3339. Each refusal names the field path (`likes[3].likedAt`).

use crate::time::parse_rfc3339;
use crate::ActionError;
use chrono::{DateTime, Utc};

/// The longest id accepted, in bytes.
pub const MAX_ID: usize = 1024;

/// An id: not empty (nor only spaces), at most [`MAX_ID`] bytes, no control characters.
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

/// An RFC 3339 time, normalised to UTC.
pub fn time(path: &str, value: &str) -> Result<DateTime<Utc>, ActionError> {
    parse_rfc3339(value).ok_or_else(|| {
        ActionError::invalid(
            "INVALID_TIME",
            format!("`{path}` is not an RFC 3339 time (e.g. 2025-10-16T22:53:29Z): {value:?}"),
        )
    })
}

/// [`time`] for an optional field.
pub fn opt_time(path: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ActionError> {
    value.map(|v| time(path, v)).transpose()
}
