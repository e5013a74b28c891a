//! The contract every LibraryCache concept is built on.
//!
//! A concept is an independent state machine. Its *actions* read its projections, check their
//! preconditions and either refuse with an [`ActionError`] or hand back an output together with the
//! *events* that describe the change. The engine commits those events, the projection rows that
//! [`Concept::apply`] derives from them and its own records in one atomic commit. *Queries* read
//! projections only. Nothing in this crate knows about HTTP, the sync engine or any other concept.
//!
//! # Writing a concept
//!
//! A concept is a type implementing [`Concept`]: its events, its actions and queries declared
//! once in an [`Actions`] table (name, typed input and output, the function that runs it; the
//! JSON Schemas of `GET /api/schema` and the sync checker come from those types), and `apply`,
//! the one place its rows are written. A counter:
//!
//! ```
//! use concept_core::*;
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! struct Add { user_id: String, by: u64 }
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(rename_all = "camelCase")]
//! struct User { user_id: String }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct Total { total: u64 }
//!
//! #[derive(Serialize, Deserialize)]
//! enum CounterEvent { Added { user: String, by: u64 } }
//!
//! struct Counter;
//!
//! fn total<V: ProjectionRead + ?Sized>(view: &V, user: &str) -> Result<u64, StoreFault> {
//!     let row = view.get(user.as_bytes())?;
//!     Ok(row.map_or(0, |b| u64::from_be_bytes(b[..8].try_into().unwrap_or_default())))
//! }
//!
//! impl Concept for Counter {
//!     type Event = CounterEvent;
//!
//!     fn actions(&self) -> Actions<Self> {
//!         Actions::new("Counter")
//!             .action("add", |_: &Counter, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: &Add| {
//!                 if input.by == 0 {
//!                     return Err(ActionError::invalid("NOTHING_TO_ADD", "`by` must be at least 1"));
//!                 }
//!                 let now = total(view, &input.user_id)? + input.by;
//!                 let version = view.stream_version(&input.user_id)?;
//!                 Ok(Decision::append(
//!                     Total { total: now },
//!                     input.user_id.clone(),
//!                     ExpectedVersion::Exact(version),
//!                     vec![CounterEvent::Added { user: input.user_id.clone(), by: input.by }],
//!                 ))
//!             })
//!             .query("_getTotal", |_: &Counter, _ctx: &ActionCtx, view: &dyn ProjectionRead, input: User| {
//!                 Ok(Total { total: total(view, &input.user_id)? })
//!             })
//!     }
//!
//!     fn event_kind(_: &CounterEvent) -> &'static str {
//!         "added"
//!     }
//!
//!     fn apply(&self, _meta: &EventMeta, event: &CounterEvent, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
//!         let CounterEvent::Added { user, by } = event;
//!         let now = total(&*txn, user)? + by;
//!         txn.put(user.as_bytes(), now.to_be_bytes().to_vec());
//!         Ok(())
//!     }
//! }
//! ```
//!
//! `librarycache::App::standard().concept(Counter).main()` then serves it beside the standard
//! concepts (`examples/notifying` in the repository is a whole application: a concept, its
//! `.concept` spec, a sync composing it with LibraryCache, a trace).
//!
//! What a concept may and may not do:
//! - **Only its own state.** It reads and writes its own rows and streams (the engine gives it a
//!   view of its own key space only) and never names another concept: what it needs from one,
//!   a sync passes in its input (`when LibraryCache.merge … then Notifying.notify …`).
//! - **Only the action's time.** It reads [`ActionCtx::now`] (and makes ids with
//!   [`ActionCtx::new_id`]), never the system clock, so traces replay it on any day.
//! - **Rows only in `apply`.** Actions decide events; `apply` derives rows from an event, its
//!   [`EventMeta`] and the current rows alone, so a rebuild from the log gives the same rows.
//! - **Refusals are values.** A refusal is an [`ActionError`] with a code and one sentence; it
//!   changes nothing. A concurrent change of the same stream is caught by the expected version
//!   and the engine decides again.
//! - **Background work** (a timer, a read of an outside service) runs through a [`Host`] and
//!   reports by raising the concept's own system actions ([`Actions::system`]).

pub mod background;
pub mod chunked;
pub mod clock;
pub mod concept;
pub mod error;
pub mod event;
pub mod fields;
pub mod input;
pub mod memory;
pub mod projection;
pub mod redact;
pub mod spec;
pub mod time;
pub mod track_name;

pub use background::{BackgroundWork, Host};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use concept::{ActionCtx, Actions, Concept, Decision, Decoded, DynConcept, Encode, Output, Performed, Typed};
pub use error::{ActionError, ErrorKind};
pub use event::{Append, EventMeta, ExpectedVersion, PendingEvent};
pub use input::Input;
pub use projection::{Bytes, Entries, ProjectionRead, ProjectionTxn, Rows, StoreFault, StoredEventData};
pub use spec::{ActionKind, ActionSpec, ConceptSpec};
