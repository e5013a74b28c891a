//! The interface every measured cache implements (LibraryCache, and the SQLite baseline in either
//! durability): the same operations, fed the same request bodies the service receives over HTTP,
//! answering the same JSON text an HTTP client receives. [`CacheKind`] names a cache so that a
//! worker process can be told which one to open.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use librarycache::engine::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::BenchError;
use crate::ours::OursBackend;
use crate::sqlite_baseline::{Durability, SqliteCache};

/// A read the bench asks, by its name in the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Query {
    /// `_getLiked {userId}` → `{"trackIds": [...]}`.
    GetLiked,
    /// `_getPlaylist {playlistId}` → the playlist.
    GetPlaylist,
    /// `_getPlays {userId, since?, until?, limit?}` → `{"plays": [...]}`, newest first.
    GetPlays,
    /// `_getChanges {userId, sinceVersion?, limit?}` → the library's changes, oldest first.
    GetChanges,
    /// `_getTracks {userId, offset?, limit?}` → `{"tracks": [...], "total"}`, by track id.
    GetTracks,
    /// `_getStatus {userId}` → counts, times, version, staleness.
    GetStatus,
    /// `_resolvePlaylist {userId, nameOrUri}` → `{"playlists": [...]}`.
    ResolvePlaylist,
    /// `POST /api/liked {userId}`, a request path the default syncs answer → `{"userId",
    /// "trackIds"}`. On LibraryCache it is a flow (a recorded request, the `_getLiked` the sync
    /// runs, a recorded response) flushed before the answer; see the SQLite baseline for its
    /// counterpart there.
    LikedRequest,
}

impl Query {
    /// The query's name in the service (`_getLiked`), or the request path (`/liked`).
    pub fn name(self) -> &'static str {
        match self {
            Query::GetLiked => "_getLiked",
            Query::GetPlaylist => "_getPlaylist",
            Query::GetPlays => "_getPlays",
            Query::GetChanges => "_getChanges",
            Query::GetTracks => "_getTracks",
            Query::GetStatus => "_getStatus",
            Query::ResolvePlaylist => "_resolvePlaylist",
            Query::LikedRequest => "/liked",
        }
    }
}

/// Something that answers queries: a cache, or a second handle on it for another thread.
pub trait Reader: Send {
    /// Answers `query` for the request body `body` with the JSON text an HTTP client receives.
    /// An unknown user or playlist is [`BenchError::UnknownUser`] / [`BenchError::UnknownPlaylist`].
    fn query(&mut self, query: Query, body: &Bytes) -> Result<Bytes, BenchError>;
}

/// One open cache. Every operation takes the raw POST body and parses it itself (parsing is part
/// of the cost measured) and answers with the JSON text an HTTP client receives.
pub trait Cache: Reader {
    /// First load of a user's library (`{userId, tracks, likes, plays, playlists}`); refused with
    /// [`BenchError::AlreadyIngested`] if the user already has one. Answers `{userId, version,
    /// added, removed, updated}`.
    fn ingest(&mut self, body: &Bytes) -> Result<Bytes, BenchError>;
    /// Refresh from a complete read: each collection given replaces the cached one (plays are
    /// merged); collections omitted are left as they were. [`BenchError::UnknownUser`] for a new user.
    fn sync(&mut self, body: &Bytes) -> Result<Bytes, BenchError>;
    /// Add facts without removing any but those named (`unlikes`, `removedPlaylists`).
    fn merge(&mut self, body: &Bytes) -> Result<Bytes, BenchError>;
    /// The size of the cache's files on disk, in bytes.
    fn bytes_on_disk(&self) -> Result<u64, BenchError>;
    /// Rebuilds every derived structure from the cache's source of truth, returning how many
    /// events were replayed; `None` for a cache that has nothing to rebuild (SQLite's tables are
    /// the truth).
    fn rebuild(&mut self) -> Result<Option<u64>, BenchError> {
        Ok(None)
    }
    /// Another handle answering queries on the same cache, for a reader thread (SQLite: a
    /// connection of its own; LibraryCache: the same engine).
    fn reader(&self) -> Result<Box<dyn Reader>, BenchError>;
    /// The LibraryCache engine behind this cache, if it is one (to serve it over HTTP).
    fn engine(&self) -> Option<&Arc<Engine>> {
        None
    }
}

/// Which cache to open: what a worker process is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CacheKind {
    /// LibraryCache: the engine with the syncs of `syncs` (none when `None`), on sled, or on the
    /// PostgreSQL server at `postgres`.
    Ours {
        syncs: Option<PathBuf>,
        postgres: Option<String>,
    },
    /// The SQLite baseline.
    Sqlite { durability: Durability },
}

impl CacheKind {
    /// LibraryCache on sled with the repository's default syncs, as `serve` runs it.
    pub fn ours() -> CacheKind {
        let backend = OursBackend::new();
        CacheKind::Ours {
            syncs: backend.syncs().map(Path::to_path_buf),
            postgres: None,
        }
    }

    /// A short name for tables, directories and messages: `ours`, `ours-pg`, `sqlite-full`,
    /// `sqlite-normal`.
    pub fn name(&self) -> &'static str {
        match self {
            CacheKind::Ours { postgres: None, .. } => "ours",
            CacheKind::Ours { postgres: Some(_), .. } => "ours-pg",
            CacheKind::Sqlite {
                durability: Durability::Full,
            } => "sqlite-full",
            CacheKind::Sqlite {
                durability: Durability::Normal,
            } => "sqlite-normal",
        }
    }

    pub fn is_ours(&self) -> bool {
        matches!(self, CacheKind::Ours { .. })
    }

    fn ours_backend(syncs: &Option<PathBuf>, postgres: &Option<String>) -> OursBackend {
        let backend = OursBackend::with_syncs(syncs.clone());
        match postgres {
            Some(url) => backend.on_postgres(url),
            None => backend,
        }
    }

    /// Opens the cache kept in `dir`, creating the directory and an empty cache if needed.
    pub fn open(&self, dir: &Path) -> Result<Box<dyn Cache>, BenchError> {
        match self {
            CacheKind::Ours { syncs, postgres } => Ok(Box::new(Self::ours_backend(syncs, postgres).open_cache(dir)?)),
            CacheKind::Sqlite { durability } => Ok(Box::new(SqliteCache::open(dir, *durability)?)),
        }
    }

    /// Returns once a cache in `dir` that was just dropped has let go of its files (so that it
    /// can be reopened or removed).
    pub fn wait_closed(&self, dir: &Path) -> Result<(), BenchError> {
        match self {
            CacheKind::Ours { syncs, postgres } => Self::ours_backend(syncs, postgres).wait_closed(dir),
            CacheKind::Sqlite { .. } => Ok(()),
        }
    }
}

/// The body `{"userId": user}`.
pub fn user_body(user: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "userId": user }).to_string())
}

/// The liked track ids of `user` (parsed from `_getLiked`'s answer).
pub fn liked_ids(reader: &mut dyn Reader, user: &str) -> Result<Vec<String>, BenchError> {
    let answer = reader.query(Query::GetLiked, &user_body(user))?;
    strings(&answer, "trackIds")
}

/// A playlist's entries (parsed from `_getPlaylist`'s answer).
pub fn playlist_entries(reader: &mut dyn Reader, playlist: &str) -> Result<Vec<String>, BenchError> {
    let body = Bytes::from(serde_json::json!({ "playlistId": playlist }).to_string());
    let answer = reader.query(Query::GetPlaylist, &body)?;
    strings(&answer, "entries")
}

/// The list of strings under `field` of a JSON answer.
pub fn strings(answer: &[u8], field: &str) -> Result<Vec<String>, BenchError> {
    let value: Value = serde_json::from_slice(answer)?;
    let wrong = |detail: String| BenchError::WrongAnswer {
        cache: "a cache".to_owned(),
        operation: field.to_owned(),
        detail,
    };
    match value.get(field) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong(format!("{other} is not a string"))),
            })
            .collect(),
        _ => Err(wrong(format!("the answer has no list `{field}`"))),
    }
}

/// A field of a JSON answer as a number (e.g. `version`).
pub fn number(answer: &[u8], field: &str) -> Result<u64, BenchError> {
    let value: Value = serde_json::from_slice(answer)?;
    value
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| BenchError::WrongAnswer {
            cache: "a cache".to_owned(),
            operation: field.to_owned(),
            detail: format!("the answer has no number `{field}`"),
        })
}
