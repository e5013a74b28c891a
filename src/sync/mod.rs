//! The sync language front end: the syntax tree of `.sync` files ([`ast`]), their parser
//! ([`parse_sync_file`]) and directory loader ([`load_dir`], [`load_checked`]), and the static checker that holds them
//! against the concepts' action specs ([`check`]). The engine that matches and fires syncs is
//! elsewhere; it consumes the trees built here.
//!
//! ```text
//! # Answer GET-style requests for liked songs through the Requesting concept.
//! sync LikedSongs
//! when
//!     Requesting.request (path: "/liked", userId) : (request)
//! where
//!     LibraryCache._getLiked (userId) : (trackIds)
//! then
//!     Requesting.respond (request, trackIds)
//! ```

pub mod ast;
mod check;
mod display;
mod error;
pub(crate) mod lexer;
mod load;
mod names;
mod parse;
mod schema;

#[cfg(test)]
mod tests;

pub use ast::{ActionPattern, Arg, CmpOp, Expr, Invocation, Pos, Sync, SyncFile, Term, WhereClause};
pub use check::check;
pub use error::{SyncError, SyncErrors};
pub use load::{load_checked, load_dir};
pub use parse::{parse_sync_file, MAX_NESTING};
