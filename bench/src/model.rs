//! The wire types the benchmark generates and sends are the concept's own
//! (`library_cache::model`): the same `Track`, `Like`, `Play` and `Playlist`, and the same
//! `LibraryInput` (ingest, sync) and `MergeInput` (merge) the service decodes. Using them means
//! the workload is, by construction, JSON the service accepts, and the SQLite baseline parses
//! exactly the shape LibraryCache parses (unknown-field maps included).
//!
//! What the bench adds on top, and why:
//! - [`BodyRef`], a *borrowed* library body. The generator serialises the large library (100,000
//!   tracks) several times per run; an owned `LibraryInput` would need a deep copy of every track
//!   each time. It serialises to exactly the JSON of the owned type.
//! - [`parse_time`] / [`format_time`]: the concept keeps times as RFC 3339 strings on the wire;
//!   the generator needs them as instants to order likes and compute the expected answers.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use library_cache::model::{LibraryInput, Like, MergeInput, Play, Playlist, Track};

/// The body of `ingest` and `sync` (a complete read; [`LibraryInput`]).
pub type Body = LibraryInput;

/// A borrowed [`LibraryInput`] (or, with only `likes`, a [`MergeInput`]), for serialising a large
/// library without copying it. Serialises to the same JSON as the owned types.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyRef<'a> {
    pub user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracks: Option<&'a [Track]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likes: Option<&'a [Like]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plays: Option<&'a [Play]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playlists: Option<&'a [Playlist]>,
}

/// An RFC 3339 time as an instant in UTC (`None` if it is not RFC 3339).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    concept_core::time::parse_rfc3339(s)
}

/// An instant as the service writes times (UTC, `Z`, sub-seconds only when present).
pub fn format_time(t: &DateTime<Utc>) -> String {
    concept_core::time::format_rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_with_camel_case_and_absent_collections() -> Result<(), serde_json::Error> {
        let json = r#"{"userId":"u","likes":[{"trackId":"t","likedAt":"2020-01-02T03:04:05Z"},{"trackId":"s"}]}"#;
        let body: Body = serde_json::from_str(json)?;
        assert!(body.tracks.is_none());
        assert_eq!(body.likes.as_ref().map(Vec::len), Some(2));
        assert_eq!(serde_json::to_string(&body)?, json);
        let borrowed = BodyRef {
            user_id: &body.user_id,
            tracks: None,
            likes: body.likes.as_deref(),
            plays: None,
            playlists: None,
        };
        assert_eq!(serde_json::to_string(&borrowed)?, json);
        Ok(())
    }

    #[test]
    fn times_format_as_the_service_writes_them() {
        let t = parse_time("2020-01-02T05:04:05.250+02:00");
        assert_eq!(t.map(|t| format_time(&t)).as_deref(), Some("2020-01-02T03:04:05.250Z"));
        assert_eq!(parse_time("yesterday"), None);
    }
}
