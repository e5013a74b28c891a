//! Field rules the schema cannot express: the shared ones (ids, times) from
//! `concept_core::fields`, and `maxAge`. Each refusal names the field path (`likes[3].likedAt`).

use concept_core::time::{parse_duration, seconds};
use concept_core::ActionError;

pub use concept_core::fields::{id, opt_time, time, MAX_ID};

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
