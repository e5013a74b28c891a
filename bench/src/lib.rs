//! LibraryCache's benchmark: a deterministic workload generator, the caches compared
//! (LibraryCache itself, [`ours`], and the SQLite cache a developer would otherwise write,
//! [`sqlite_baseline`], in two durabilities), the measurements each cache runs in a worker
//! process of its own ([`worker`], [`suite`], [`concurrent`]), LibraryCache over HTTP
//! ([`http`]), the orchestrating process that runs them and checks every answer
//! ([`orchestrate`]), the scaling run ([`scaling`], [`svg`]) and the report ([`report`]).

pub mod answers;
pub mod cache;
pub mod concurrent;
pub mod error;
pub mod http;
pub mod machine;
pub mod memory;
pub mod model;
pub mod orchestrate;
pub mod ours;
pub mod plan;
pub mod report;
pub mod scaling;
pub mod sqlite_baseline;
pub mod stats;
pub mod suite;
pub mod svg;
pub mod words;
pub mod worker;
pub mod workload;

pub use cache::{Cache, CacheKind, Query, Reader};
pub use error::BenchError;
pub use ours::{OursBackend, OursCache};
pub use sqlite_baseline::{Durability, SqliteCache};
pub use workload::{FreshLikes, LikesDelta, Sizes, Workload};
