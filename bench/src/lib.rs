//! LibraryCache's benchmark: a deterministic workload generator, the two caches compared (LibraryCache
//! itself on sled, [`ours`], and the SQLite cache a developer would otherwise write, [`sqlite_baseline`]),
//! a runner that measures any [`cache::Cache`] on a workload, HTTP measurements of the real server on
//! loopback, and the report writer.

pub mod cache;
pub mod error;
pub mod http;
pub mod machine;
pub mod model;
pub mod ours;
pub mod report;
pub mod runner;
pub mod sqlite_baseline;
pub mod words;
pub mod workload;

pub use cache::{Backend, Cache};
pub use error::BenchError;
pub use ours::{OursBackend, OursCache};
pub use runner::{Measurement, Rebuild, RunConfig, RunOutcome};
pub use sqlite_baseline::{SqliteBackend, SqliteCache};
pub use workload::{LikesDelta, Sizes, Workload};
