//! The integration tests, as one test binary (`cargo test --test it`): each file beside this one
//! is a module, named as its file (`foundation::on_sled::rebuild_reproduces_live_projections_byte_for_byte`),
//! and `common` holds the helpers they share (real stores, the real binary on a loopback port,
//! the local stand-ins for Spotify, Plex, Last.fm and Apple Music).
//!
//! One binary, because each test binary links the library, axum, postgres and headless_chrome
//! again: 31 of them were a large share of CI's time on two cores. None needs a process of its own.
//! The tests that drive the server, crash it or time it run the real `librarycache` binary as a
//! child (`common::server`), so the test process's own state never enters them; no test sets
//! environment variables or the working directory of the test process (children get theirs through
//! `Command`); every server, real or fake, binds port 0 and so gets a port no other test holds (the
//! real binary's is read from its log: `common::server::spawn_listening`, never picked by the test
//! and freed for the server, a window in which another test's server could take it and answer in
//! its place); and a figure that belongs to one child (the peak memory of an import in
//! `apple_library`) is read from that child's own `wait4`, never from all the children the process
//! ever had. The harness runs as many tests at once as before (one per core), only now from every
//! file rather than from one.
//!
//! Run one file's tests with a filter: `cargo test --test it -- crash::` (a filter is a
//! substring of `module::…::test`; add `--exact` for one test).
//!
//! To add a test file: write `tests/it/NAME.rs` starting with a `//!` line saying its job,
//! `use crate::common;` if it uses the helpers (the `on_each_store!` macro is in scope in every
//! module), and add `mod NAME;` below. A file in `tests/` itself (`tests/NAME.rs`) would be a
//! binary of its own again: only for a test that truly needs its own process, saying why at its
//! top. Fixtures stay in `tests/fixtures/` (reach them through `env!("CARGO_MANIFEST_DIR")`).

#[macro_use]
mod common;

mod apple_library;
mod apple_music;
mod bad_input;
mod browser;
mod cli;
mod concurrency;
mod crash;
mod durability;
mod engine;
mod external;
mod foundation;
mod fuzz;
mod http;
mod http_service;
mod idempotency;
mod lastfm;
mod library_model;
mod library_status;
mod load;
mod migrate;
mod multi_instance;
mod paging;
mod plex;
mod rate_limits;
mod safety;
mod scheduling;
mod secrets;
mod spotify;
mod spotify_export;
mod store_compaction;
mod traces;
mod upgrade;
