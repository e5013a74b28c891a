//! The facts a LibraryCache action records. Each is the smallest change that describes what
//! happened to one user's library; large collections are split into events of at most
//! [`CHUNK`] facts, so no event holds "the whole library again".

use crate::model::{Playlist, Track};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The hash version new libraries are ingested with (see [`LibraryEvent::Ingested`]).
pub const HASH_VERSION: u32 = 2;

/// The most facts one event carries.
pub const CHUNK: usize = 1000;

/// A track in a user's library and the hash of the metadata the user's source last gave for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackRef {
    pub id: String,
    pub hash: u64,
}

/// A like as recorded: its time (stamped if the source gave none) and its place among likes of
/// equal time (`ord`, increasing in the order the source listed them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LikeFact {
    pub track_id: String,
    pub liked_at: String,
    pub ord: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayFact {
    pub track_id: String,
    pub played_at: String,
}

/// A playlist in a user's library and what identifies its current content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistRef {
    pub id: String,
    pub hash: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

/// How the library was last refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RefreshKind {
    Ingest,
    Sync,
    Merge,
    /// `touch`: checked and found current, nothing else changed.
    Touch,
    /// `rekeyNamed`: tracks known only by name took their namesakes' ids (the time of the last
    /// sync stays: nothing was read from a source).
    Rekey,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum LibraryEvent {
    /// The user's library was created (first ingest, or ingest after a clear). `hashVersion` 2:
    /// the hashes its events carry are of decoded fields ([`crate::rows::track_hash`]); absent
    /// (0) in libraries ingested before, whose hashes are of JSON text.
    Ingested {
        #[serde(default)]
        hash_version: u32,
    },
    /// Shared track metadata, new or changed (shared with the action's input, not copied).
    TracksSaved {
        tracks: Vec<Arc<Track>>,
    },
    /// Tracks entered the user's library.
    TracksAdded {
        tracks: Vec<TrackRef>,
    },
    /// Tracks already in the user's library whose metadata changed.
    TracksUpdated {
        tracks: Vec<TrackRef>,
    },
    TracksRemoved {
        track_ids: Vec<String>,
    },
    /// Likes recorded, or re-recorded with a new time.
    Liked {
        likes: Vec<LikeFact>,
    },
    Unliked {
        track_ids: Vec<String>,
    },
    PlaysAdded {
        plays: Vec<PlayFact>,
    },
    /// Plays a merge's `removedPlays` named (each replaced by one under another id or time).
    PlaysRemoved {
        plays: Vec<PlayFact>,
    },
    /// Shared playlist content, new or changed.
    PlaylistsSaved {
        playlists: Vec<Arc<Playlist>>,
    },
    /// Playlists entered the user's library.
    PlaylistsAdded {
        playlists: Vec<PlaylistRef>,
    },
    /// Playlists already in the user's library whose content changed.
    PlaylistsUpdated {
        playlists: Vec<PlaylistRef>,
    },
    PlaylistsRemoved {
        playlist_ids: Vec<String>,
    },
    /// The hashes of tracks and playlists whose content did not change, renewed in the form
    /// [`crate::rows::track_hash`] gives (a library ingested before it held hashes of JSON
    /// text). `complete`: every hash of the library is renewed now.
    Rehashed {
        tracks: Vec<TrackRef>,
        playlists: Vec<PlaylistRef>,
        complete: bool,
    },
    /// A refresh finished (sets the time of the last sync).
    Refreshed {
        kind: RefreshKind,
    },
    /// The user's cached library was forgotten.
    Cleared {},
}

impl LibraryEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            LibraryEvent::Ingested { .. } => "Ingested",
            LibraryEvent::TracksSaved { .. } => "TracksSaved",
            LibraryEvent::TracksAdded { .. } => "TracksAdded",
            LibraryEvent::TracksUpdated { .. } => "TracksUpdated",
            LibraryEvent::TracksRemoved { .. } => "TracksRemoved",
            LibraryEvent::Liked { .. } => "Liked",
            LibraryEvent::Unliked { .. } => "Unliked",
            LibraryEvent::PlaysAdded { .. } => "PlaysAdded",
            LibraryEvent::PlaysRemoved { .. } => "PlaysRemoved",
            LibraryEvent::PlaylistsSaved { .. } => "PlaylistsSaved",
            LibraryEvent::PlaylistsAdded { .. } => "PlaylistsAdded",
            LibraryEvent::PlaylistsUpdated { .. } => "PlaylistsUpdated",
            LibraryEvent::PlaylistsRemoved { .. } => "PlaylistsRemoved",
            LibraryEvent::Rehashed { .. } => "Rehashed",
            LibraryEvent::Refreshed { .. } => "Refreshed",
            LibraryEvent::Cleared {} => "Cleared",
        }
    }
}

/// Splits a collection into events of at most [`CHUNK`] facts.
pub fn chunked<T: Clone>(items: Vec<T>, make: impl Fn(Vec<T>) -> LibraryEvent) -> Vec<LibraryEvent> {
    items.chunks(CHUNK).map(|c| make(c.to_vec())).collect()
}
