//! LibraryCache: a local, queryable, event-sourced snapshot of users' music libraries.
//!
//! The crate holds everything that is not a concept: the store back-ends, the engine that runs
//! actions and syncs, the sync language, the HTTP server, the trace runner and the CLI, and
//! [`App`]: the service with this build's concepts, to which an application adds its own. See
//! ARCHITECTURE.md.

pub mod app;
pub mod cli;
pub mod engine;
pub mod external;
pub mod observe;
pub mod server;
pub mod store;
pub mod sync;
pub mod trace;

pub use app::App;
