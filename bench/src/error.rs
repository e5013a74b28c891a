//! The one error type of the benchmark crate: what a cache, the generator or the runner can fail with.

use std::path::PathBuf;

/// Anything that can go wrong while generating, caching, measuring or reporting.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A request body or a report could not be (de)serialized.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The SQLite baseline's database refused an operation.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// `ingest` for a user who already has a cached library (the service answers 409).
    #[error("user {0} already has a cached library")]
    AlreadyIngested(String),
    /// `sync`, `merge` or `_getLiked` for a user without a cached library (the service answers 404).
    #[error("user {0} has no cached library")]
    UnknownUser(String),
    /// `_getPlaylist` for a playlist that is not cached (the service answers 404).
    #[error("playlist {0} is not cached")]
    UnknownPlaylist(String),
    /// A time that is not RFC 3339 or cannot be stored as microseconds since the epoch.
    #[error("time {0:?} is not an RFC 3339 time in the storable range")]
    BadTime(String),
    /// A cache under measurement gave an answer that differs from the expected one.
    #[error("{cache} answered {operation} wrongly: {detail}")]
    WrongAnswer {
        cache: String,
        operation: String,
        detail: String,
    },
    /// A worker process (a cache measured in a process of its own) failed or answered nothing
    /// readable.
    #[error("the worker for {task} failed: {detail}")]
    Worker { task: String, detail: String },
    /// A failure inside a cache implementation that has its own error type (e.g. the service's engine).
    #[error("{cache}: {source}")]
    Backend {
        cache: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BenchError {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BenchError {
        let path = path.into();
        move |source| BenchError::Io { action, path, source }
    }
}
