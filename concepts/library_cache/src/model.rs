//! The concept's vocabulary on the wire: tracks, likes, plays, playlists, and the inputs and
//! outputs of every action and query (camelCase JSON, RFC 3339 times). The JSON Schemas the
//! engine validates against and the server publishes are derived from these types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A track's metadata. Fields the service does not know are kept and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genres: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isrc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Any other fields of the source's track object.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A liked song. Without `likedAt` it is stamped with the time of the action that first
/// records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Like {
    pub track_id: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liked_at: Option<String>,
}

/// One play: the pair (trackId, playedAt) is its identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Play {
    pub track_id: String,
    /// RFC 3339.
    pub played_at: String,
}

/// A playlist: its metadata and its entries (track ids, in order, repeats allowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Any other fields of the source's playlist object.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The input of `ingest` and `sync`: a complete read of the source. A collection omitted is
/// left as it is; a collection given replaces the cached one (plays are merged).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LibraryInput {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<Arc<Track>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likes: Option<Vec<Like>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plays: Option<Vec<Play>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlists: Option<Vec<Arc<Playlist>>>,
}

/// The input of `merge`: a delta from an incremental read. Nothing is removed unless named in
/// `unlikes` or `removedPlaylists`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeInput {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<Vec<Arc<Track>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likes: Option<Vec<Like>>,
    /// Track ids to unlike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlikes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plays: Option<Vec<Play>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlists: Option<Vec<Arc<Playlist>>>,
    /// Playlist ids to drop from the user's library.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_playlists: Option<Vec<String>>,
    /// Track ids to drop from the user's tracks (a track the user's library knew under another
    /// id: its likes and plays moved with `unlikes`/`likes` and `removedPlays`/`plays`). A track
    /// also given in `tracks` stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_tracks: Option<Vec<String>>,
    /// Plays to drop (the pair trackId + playedAt names one): plays otherwise only grow, but a
    /// play recorded under a track's other id, or to the minute where a precise time is now
    /// known, is replaced by the one given in `plays`. A play also given in `plays` stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_plays: Option<Vec<Play>>,
}

/// The input of `rekeyNamed`: the user, and the prefix of the ids a source gives tracks it knows
/// only by artist and title (e.g. `spotify-export:track:`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RekeyNamedInput {
    pub user_id: String,
    pub prefix: String,
}

/// The output of `rekeyNamed`: the library's version and what moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RekeyNamedOutput {
    pub user_id: String,
    pub version: u64,
    /// Tracks known only by name that took a namesake's id.
    pub rekeyed: u64,
    /// Their plays moved to the namesake (one it already had at that time counted too).
    pub plays: u64,
    /// Their likes moved to (or, when it was liked already, folded into) the namesake.
    pub likes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserInput {
    pub user_id: String,
}

/// Counts of what an action added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Added {
    pub tracks: u64,
    pub likes: u64,
    pub plays: u64,
    pub playlists: u64,
}

/// Counts of what an action removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Removed {
    pub tracks: u64,
    pub likes: u64,
    pub playlists: u64,
    /// Plays named in a merge's `removedPlays`.
    #[serde(default)]
    pub plays: u64,
}

/// Counts of what an action changed in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Updated {
    pub tracks: u64,
    pub playlists: u64,
}

/// The output of `ingest`, `sync` and `merge`: the library's new version and what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeOutput {
    pub user_id: String,
    pub version: u64,
    pub added: Added,
    pub removed: Removed,
    pub updated: Updated,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOutput {
    pub user_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetLikedInput {
    pub user_id: String,
    /// Only likes at or after this time (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub offset: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
    /// Continue after the page that answered this `nextCursor` (instead of `offset`: a cursor
    /// names a place in the list, so likes added or removed meanwhile shift nothing).
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetLikedOutput {
    /// Newest like first.
    pub track_ids: Vec<String>,
    /// When paged (`limit` or `cursor` given) and more likes follow: pass it as `cursor` for
    /// the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetPlaylistInput {
    pub playlist_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
/// The playlist as its source last gave it (unknown fields kept), beside the id asked for.
pub struct GetPlaylistOutput {
    pub playlist_id: String,
    #[serde(flatten)]
    pub playlist: Playlist,
}

/// A playlist without its entries, as `_getPlaylists` and `_resolvePlaylist` list them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistSummary {
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
    pub track_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistsOutput {
    pub playlists: Vec<PlaylistSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvePlaylistInput {
    pub user_id: String,
    /// A playlist name (case-insensitive), id or uri.
    pub name_or_uri: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetTracksInput {
    pub user_id: String,
    #[serde(default)]
    pub offset: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetTracksOutput {
    /// The tracks of the page, ordered by id.
    pub tracks: Vec<Track>,
    /// The number of tracks in the user's library.
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetTrackInput {
    pub track_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetPlaysInput {
    pub user_id: String,
    /// Only plays at or after this time (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Only plays before this time (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub limit: Option<u64>,
    /// Continue after the page that answered this `nextCursor` (a play's time and track: plays
    /// sharing a time are not skipped, and plays added meanwhile shift nothing).
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetPlaysOutput {
    /// Newest play first (plays of one time by track id).
    pub plays: Vec<Play>,
    /// When more plays follow this page: pass it as `cursor` for the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A duration: seconds, or a string such as `"500ms"`, `"90s"`, `"30m"`, `"24h"`, `"7d"`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MaxAge {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetStatusInput {
    pub user_id: String,
    /// How old the last sync may be before the library counts as stale (default 24h).
    #[serde(default)]
    pub max_age: Option<MaxAge>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusOutput {
    pub user_id: String,
    pub tracks: u64,
    pub likes: u64,
    pub plays: u64,
    pub playlists: u64,
    pub ingested_at: String,
    pub synced_at: String,
    pub version: u64,
    pub stale: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaleUsersInput {
    pub max_age: MaxAge,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaleUsersOutput {
    pub user_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetChangesInput {
    pub user_id: String,
    /// Only changes made by actions after this library version.
    #[serde(default)]
    pub since_version: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
    /// Continue after the page that answered this `nextCursor`: pages of exactly `limit`
    /// changes (a page may end inside an event), none skipped or repeated.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One change to a user's library, read from the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The library version the action that made the change left (its output's `version`).
    pub version: u64,
    /// The time of the action that made it.
    pub at: String,
    /// `liked`, `unliked`, `trackAdded`, `trackChanged`, `trackRemoved`, `playAdded`,
    /// `playRemoved`, `playlistAdded`, `playlistChanged`, `playlistRemoved`, `ingested`,
    /// `synced`, `merged`, `touched`, `rekeyed`, `cleared`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist_id: Option<String>,
    /// likedAt or playedAt, for likes and plays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangesOutput {
    pub changes: Vec<Change>,
    /// The library's current version.
    pub version: u64,
    /// Pass as `sinceVersion` to read the next page (pages end at an event: see `nextCursor`
    /// for exact pages).
    pub next_since_version: u64,
    /// Whether changes after this page remain.
    pub more: bool,
    /// When `more`: pass it as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The output of `_getLikes`: likes with their times, newest first (what an export keeps).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetLikesOutput {
    pub likes: Vec<Like>,
    /// How many likes the library has.
    pub total: u64,
}

/// The input of a query that takes no arguments (`_getUsers`): an empty object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsersOutput {
    /// Every user with a cached library, ordered by id.
    pub user_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetLikedTracksInput {
    pub user_id: String,
    #[serde(default)]
    pub offset: Option<u64>,
    /// The most tracks answered (default 1,000).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// Liked songs with their metadata, newest like first; a liked track without metadata is
/// `{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LikedTracksOutput {
    pub tracks: Vec<Track>,
    /// The number of liked songs in the user's library.
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetPlaylistTracksInput {
    pub playlist_id: String,
    #[serde(default)]
    pub offset: Option<u64>,
    /// The most entries answered (default 1,000).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// A playlist's entries with their metadata, in order (repeats kept); an entry without
/// metadata is `{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistTracksOutput {
    pub playlist_id: String,
    pub name: String,
    pub tracks: Vec<Track>,
    /// The number of entries in the playlist.
    pub total: u64,
}
