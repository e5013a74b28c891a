//! The contract every LibraryCache concept is built on.
//!
//! A concept is an independent state machine. Its *actions* read its projections, check their
//! preconditions and either refuse with an [`ActionError`] or hand back an output together with the
//! *events* that describe the change. The engine commits those events, the projection rows that
//! [`Concept::apply`] derives from them and its own records in one atomic commit. *Queries* read
//! projections only. Nothing in this crate knows about HTTP, the sync engine or any other concept.

pub mod background;
pub mod chunked;
pub mod clock;
pub mod concept;
pub mod error;
pub mod event;
pub mod fields;
pub mod input;
pub mod projection;
pub mod redact;
pub mod spec;
pub mod time;
pub mod track_name;

pub use background::{BackgroundWork, Host};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use concept::{ActionCtx, Actions, Concept, Decision, Decoded, DynConcept, Output, Performed, Typed};
pub use error::{ActionError, ErrorKind};
pub use event::{Append, EventMeta, ExpectedVersion, PendingEvent};
pub use input::Input;
pub use projection::{Bytes, Entries, ProjectionRead, ProjectionTxn, Rows, StoreFault, StoredEventData};
pub use spec::{ActionKind, ActionSpec, ConceptSpec};
