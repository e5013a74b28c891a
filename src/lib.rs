//! LibraryCache: a local, queryable, event-sourced snapshot of users' music libraries.
//!
//! The crate holds everything that is not a concept: the store back-ends, the engine that runs
//! actions and syncs, the sync language, the HTTP server, the trace runner and the CLI. See
//! ARCHITECTURE.md.

pub mod cli;
pub mod engine;
pub mod observe;
pub mod server;
pub mod store;
pub mod sync;
pub mod trace;
