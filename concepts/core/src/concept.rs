//! The `Concept` trait a concept implements, and its type-erased form the engine holds.
//!
//! A concept is written against typed events ([`Concept::Event`]). [`Typed`] erases the type so
//! the engine can hold every concept in one registry: it encodes events for the log and carries,
//! for each, a closure that applies the typed event inside the commit — the same `apply` a
//! rebuild calls on the decoded event, so live and rebuilt projections cannot drift apart.

use crate::{
    background::{BackgroundWork, Host},
    event::{Append, EventMeta, ExpectedVersion, PendingEvent},
    ActionError, ConceptSpec, ProjectionRead, ProjectionTxn, StoreFault,
};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// What an action or query knows about the invocation it runs in.
#[derive(Debug, Clone)]
pub struct ActionCtx {
    /// The flow this invocation belongs to (nil for a query outside any flow).
    pub flow: Uuid,
    /// The time of the action, from the engine's [`crate::Clock`]: the only time a concept may
    /// read (never the system clock).
    pub now: DateTime<Utc>,
}

impl ActionCtx {
    pub fn new(flow: Uuid, now: DateTime<Utc>) -> Self {
        ActionCtx { flow, now }
    }

    /// A new unique id (UUIDv7) whose time part is the action's time, not the system clock's.
    pub fn new_id(&self) -> Uuid {
        let secs = u64::try_from(self.now.timestamp()).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, self.now.timestamp_subsec_nanos());
        Uuid::new_v7(ts)
    }
}

/// What a successful action hands back: its output and the events it wants appended.
pub struct Decision<E> {
    pub output: Value,
    pub appends: Vec<(String, ExpectedVersion, Vec<E>)>,
}

impl<E> Decision<E> {
    /// An output with no state change.
    pub fn output_only(output: Value) -> Self {
        Decision {
            output,
            appends: Vec::new(),
        }
    }
}

/// A concept written against its own typed events.
pub trait Concept: Send + Sync + 'static {
    type Event: Serialize + DeserializeOwned + Send + 'static;

    /// Its name, actions and queries, with schemas.
    fn spec(&self) -> ConceptSpec;

    /// The type name of an event, as stored in the log.
    fn event_kind(event: &Self::Event) -> &'static str;

    /// Runs an action: read the projections, check preconditions, refuse or decide.
    fn perform(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        action: &str,
        input: Value,
    ) -> Result<Decision<Self::Event>, ActionError>;

    /// Runs a query against the projections.
    fn query(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        query: &str,
        input: Value,
    ) -> Result<Value, ActionError>;

    /// Derives projection rows from one event. Must depend only on the event, its meta and the
    /// current projection rows, so that replaying the log reproduces the projections exactly.
    fn apply(&self, meta: &EventMeta, event: &Self::Event, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault>;

    /// Told after one of its actions committed successfully (never for a refusal, a replay or
    /// a rebuild): the place to wake background work. Must not block.
    fn committed(&self, _action: &str, _output: &Value) {}

    /// The concept's background work (see [`crate::background`]), if it has any.
    fn background(self: Arc<Self>, _host: Arc<dyn Host>) -> Option<BackgroundWork> {
        None
    }
}

/// An action's outcome in the engine's terms: the output and the encoded appends.
#[derive(Debug)]
pub struct Performed {
    pub output: Value,
    pub appends: Vec<Append>,
}

/// A concept as the engine sees it: no event type, just bytes and closures.
pub trait DynConcept: Send + Sync {
    fn name(&self) -> &str;
    fn spec(&self) -> &ConceptSpec;
    fn perform(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        action: &str,
        input: Value,
    ) -> Result<Performed, ActionError>;
    fn query(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        query: &str,
        input: Value,
    ) -> Result<Value, ActionError>;
    /// Applies a stored event (as read back from the log) — what a rebuild replays.
    fn apply_stored(&self, meta: &EventMeta, data: &[u8], txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault>;
    /// See [`Concept::committed`].
    fn committed(&self, action: &str, output: &Value);
    /// See [`Concept::background`].
    fn background(&self, host: Arc<dyn Host>) -> Option<BackgroundWork>;
}

/// Erases a typed [`Concept`] into a [`DynConcept`].
pub struct Typed<C: Concept> {
    concept: Arc<C>,
    spec: ConceptSpec,
}

impl<C: Concept> Typed<C> {
    pub fn new(concept: C) -> Self {
        let spec = concept.spec();
        Typed {
            concept: Arc::new(concept),
            spec,
        }
    }
}

impl<C: Concept> DynConcept for Typed<C> {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn spec(&self) -> &ConceptSpec {
        &self.spec
    }

    fn perform(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        action: &str,
        input: Value,
    ) -> Result<Performed, ActionError> {
        let decision = self.concept.perform(ctx, view, action, input)?;
        let mut appends = Vec::with_capacity(decision.appends.len());
        for (stream, expected, events) in decision.appends {
            let mut pending = Vec::with_capacity(events.len());
            for event in events {
                let data = serde_json::to_vec(&event)
                    .map_err(|e| ActionError::internal(format!("could not encode an event: {e}")))?;
                let concept = Arc::clone(&self.concept);
                pending.push(PendingEvent {
                    kind: C::event_kind(&event).to_string(),
                    data,
                    apply: Box::new(move |meta, txn| concept.apply(meta, &event, txn)),
                });
            }
            appends.push(Append {
                stream,
                expected,
                events: pending,
            });
        }
        Ok(Performed {
            output: decision.output,
            appends,
        })
    }

    fn query(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        query: &str,
        input: Value,
    ) -> Result<Value, ActionError> {
        self.concept.query(ctx, view, query, input)
    }

    fn apply_stored(&self, meta: &EventMeta, data: &[u8], txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        let event: C::Event = serde_json::from_slice(data)
            .map_err(|e| StoreFault::new(format!("event {} ({}) does not decode: {e}", meta.seq, meta.kind)))?;
        self.concept.apply(meta, &event, txn)
    }

    fn committed(&self, action: &str, output: &Value) {
        self.concept.committed(action, output)
    }

    fn background(&self, host: Arc<dyn Host>) -> Option<BackgroundWork> {
        Arc::clone(&self.concept).background(host)
    }
}
