//! The interface every measured cache implements (LibraryCache on sled, and the SQLite baseline):
//! the same operations, fed the same JSON bytes the service receives over HTTP.

use std::path::Path;
use std::sync::Arc;

use librarycache::engine::Engine;

use crate::error::BenchError;

/// One open cache. Update operations take the raw POST body and must parse it themselves: parsing is part
/// of the cost being measured.
pub trait Cache: Send {
    /// First load of a user's library (`{userId, tracks, likes, plays, playlists}`); refused with
    /// [`BenchError::AlreadyIngested`] if the user already has one.
    fn ingest(&mut self, body: &[u8]) -> Result<(), BenchError>;
    /// Refresh from a complete read: each collection given replaces the cached one (plays are merged);
    /// collections omitted are left as they were. Refused with [`BenchError::UnknownUser`] for a new user.
    fn sync(&mut self, body: &[u8]) -> Result<(), BenchError>;
    /// Add facts without removing any (e.g. `{userId, likes: [...]}` for new likes).
    fn merge(&mut self, body: &[u8]) -> Result<(), BenchError>;
    /// The user's liked track ids: `likedAt` newest first, equal `likedAt` in the order the source listed them.
    fn get_liked(&mut self, user: &str) -> Result<Vec<String>, BenchError>;
    /// A playlist's entries in order, repeats included.
    fn get_playlist(&mut self, playlist: &str) -> Result<Vec<String>, BenchError>;
    /// The size of the cache's files on disk, in bytes.
    fn bytes_on_disk(&self) -> Result<u64, BenchError>;
    /// Rebuilds every derived structure from the cache's source of truth, returning how many events
    /// were replayed; `None` for a cache that has nothing to rebuild (the SQLite tables are the truth).
    fn rebuild(&mut self) -> Result<Option<u64>, BenchError> {
        Ok(None)
    }
    /// The LibraryCache engine behind this cache, if it is one (to serve it over HTTP).
    fn engine(&self) -> Option<&Arc<Engine>> {
        None
    }
}

/// A kind of cache: opens (creating when empty) a cache whose files live in a directory.
pub trait Backend {
    /// A short name for tables and error messages, e.g. `sqlite`.
    fn name(&self) -> &str;
    /// Opens the cache kept in `dir`, creating the directory and an empty cache if needed.
    fn open(&self, dir: &Path) -> Result<Box<dyn Cache>, BenchError>;
    /// Returns once a cache in `dir` that was just dropped has let go of its files (so that it can be
    /// reopened or removed). The default assumes dropping closes everything at once.
    fn wait_closed(&self, _dir: &Path) -> Result<(), BenchError> {
        Ok(())
    }
    /// A cold start: open the cache in `dir` and answer the first `_getLiked` for `user`.
    fn open_and_first_get_liked(&self, dir: &Path, user: &str) -> Result<(Box<dyn Cache>, Vec<String>), BenchError> {
        let mut cache = self.open(dir)?;
        let liked = cache.get_liked(user)?;
        Ok((cache, liked))
    }
}
