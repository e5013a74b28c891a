//! The typed shape of what an app POSTs to LibraryCache (ingest, sync, merge): tracks, likes, plays,
//! playlists, and the body that carries them. Field names are camelCase on the wire; times are RFC 3339.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A track's metadata. Only `id` is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genres: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isrc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// A liked track. A like without `likedAt` is stamped with the time it was first recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Like {
    pub track_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liked_at: Option<DateTime<Utc>>,
}

/// One play of a track; the pair (trackId, playedAt) identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Play {
    pub track_id: String,
    pub played_at: DateTime<Utc>,
}

/// A playlist with its ordered entries (track ids, repeats allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Playlist {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collaborative: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub entries: Vec<String>,
}

/// The POST body of `ingest`, `sync` and `merge`. A collection that is absent (`None`) is not part of the
/// request: a sync leaves it as it was, which is different from an empty list (which clears it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Body {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<Track>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likes: Option<Vec<Like>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plays: Option<Vec<Play>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlists: Option<Vec<Playlist>>,
}

/// A borrowed [`Body`], for serializing a large library without copying it. Serializes to the same JSON.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_with_camel_case_and_absent_collections() -> Result<(), serde_json::Error> {
        let json = r#"{"userId":"u","likes":[{"trackId":"t","likedAt":"2020-01-02T03:04:05Z"},{"trackId":"s"}]}"#;
        let body: Body = serde_json::from_str(json)?;
        assert_eq!(body.tracks, None);
        assert_eq!(body.likes.as_ref().map(Vec::len), Some(2));
        assert_eq!(serde_json::to_string(&body)?, json);
        Ok(())
    }
}
