//! LibraryCache's benchmark: a deterministic workload generator, the SQLite cache it is compared with,
//! a runner that measures any [`cache::Cache`] on a workload, and the report writer.

pub mod cache;
pub mod error;
pub mod machine;
pub mod model;
pub mod report;
pub mod runner;
pub mod sqlite_baseline;
pub mod words;
pub mod workload;

pub use cache::{Backend, Cache};
pub use error::BenchError;
pub use runner::{Measurement, RunConfig, RunOutcome};
pub use sqlite_baseline::{SqliteBackend, SqliteCache};
pub use workload::{LikesDelta, Sizes, Workload};
