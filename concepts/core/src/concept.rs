//! The `Concept` trait a concept implements, the table that declares its actions once, and the
//! type-erased form the engine holds.
//!
//! A concept declares each action, system action and query once, in [`Concept::actions`]: its
//! name, its typed input and output (whose JSON Schemas the spec is made of) and the function
//! that runs it. The engine decodes an input once ([`DynConcept::decode`]) — from the request's
//! bytes, never through a copy — and runs the action on the decoded input as many times as a
//! conflict needs.
//!
//! A concept is written against typed events ([`Concept::Event`]). [`Typed`] erases the type so
//! the engine can hold every concept in one registry: it encodes events for the log and carries,
//! for each, a closure that applies the typed event inside the commit — the same `apply` a
//! rebuild calls on the decoded event, so live and rebuilt projections cannot drift apart.

use crate::{
    background::{BackgroundWork, Host},
    event::{Append, EventMeta, ExpectedVersion, PendingEvent},
    input::Input,
    ActionError, ActionKind, ActionSpec, Bytes, ConceptSpec, ProjectionRead, ProjectionTxn, StoreFault,
};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::any::Any;
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
pub struct Decision<E, O = Value> {
    pub output: O,
    pub appends: Vec<(String, ExpectedVersion, Vec<E>)>,
}

impl<E, O> Decision<E, O> {
    /// An output with no state change.
    pub fn output_only(output: O) -> Self {
        Decision {
            output,
            appends: Vec::new(),
        }
    }

    /// An output and the events to append to one stream.
    pub fn append(output: O, stream: impl Into<String>, expected: ExpectedVersion, events: Vec<E>) -> Self {
        Decision {
            output,
            appends: vec![(stream.into(), expected, events)],
        }
    }
}

/// A query's answer: a JSON value, JSON already written out (a large answer written straight
/// to bytes, which the HTTP layer sends as it is), or the query's typed output, serialised only
/// into the form the caller asks for (bytes for the HTTP layer, a value for a sync's `where`),
/// so neither pays for the other.
#[derive(Clone)]
pub enum Output {
    Value(Value),
    /// JSON text; it must be the serialisation of the query's output type.
    Json(Bytes),
    Typed(Arc<dyn Encode>),
}

/// A typed query output, serialisable as a JSON value or as JSON text.
pub trait Encode: Send + Sync {
    fn value(&self) -> Result<Value, serde_json::Error>;
    fn json(&self) -> Result<Vec<u8>, serde_json::Error>;
}

impl<T: Serialize + Send + Sync> Encode for T {
    fn value(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    fn json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

fn encode_failed(e: serde_json::Error) -> ActionError {
    ActionError::internal(format!("could not encode an output: {e}"))
}

impl Output {
    /// The answer as a JSON value (parsing written-out JSON).
    pub fn into_value(self) -> Result<Value, ActionError> {
        match self {
            Output::Value(v) => Ok(v),
            Output::Json(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ActionError::internal(format!("a query wrote invalid JSON: {e}"))),
            Output::Typed(t) => t.value().map_err(encode_failed),
        }
    }

    /// The answer as JSON text.
    pub fn into_bytes(self) -> Result<Bytes, ActionError> {
        match self {
            Output::Value(v) => serde_json::to_vec(&v).map(Bytes::from).map_err(encode_failed),
            Output::Json(bytes) => Ok(bytes),
            Output::Typed(t) => t.json().map(Bytes::from).map_err(encode_failed),
        }
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Output::Json(bytes) => f.debug_tuple("Json").field(bytes).finish(),
            Output::Typed(t) => f.debug_tuple("Typed").field(&t.value().ok()).finish(),
        }
    }
}

impl From<Value> for Output {
    fn from(v: Value) -> Self {
        Output::Value(v)
    }
}

/// An input decoded for one action (its typed input, boxed).
pub struct Decoded(Box<dyn Any + Send + Sync>);

impl Decoded {
    /// An input decoded by a [`DynConcept`] written by hand (not through [`Actions`]), such as
    /// an adapter for a concept served elsewhere.
    pub fn new<T: Any + Send + Sync>(input: T) -> Self {
        Decoded(Box::new(input))
    }

    /// The decoded input, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoded(..)")
    }
}

type DecodeFn = Box<dyn Fn(&Input, &str) -> Result<Decoded, ActionError> + Send + Sync>;
type ActionFn<C, E> =
    Box<dyn Fn(&C, &ActionCtx, &dyn ProjectionRead, &Decoded) -> Result<Decision<E>, ActionError> + Send + Sync>;
type QueryFn<C> =
    Box<dyn Fn(&C, &ActionCtx, &dyn ProjectionRead, Decoded) -> Result<Output, ActionError> + Send + Sync>;

enum Run<C, E> {
    Action(ActionFn<C, E>),
    Query(QueryFn<C>),
}

/// One declared action, system action or query.
struct Binding<C, E> {
    spec: ActionSpec,
    decode: DecodeFn,
    run: Run<C, E>,
}

/// A concept's actions, system actions and queries, each declared once: name, typed input and
/// output, and the function that runs it.
///
/// ```ignore
/// Actions::new("Counter")
///     .action("add", |c: &Counter, ctx, view, input: &AddInput| -> Result<Decision<Event, Total>, _> { ... })
///     .query("_total", |c: &Counter, ctx, view, input: UserInput| -> Result<Total, _> { ... })
/// ```
pub struct Actions<C: Concept> {
    name: String,
    bindings: Vec<Binding<C, C::Event>>,
}

fn decoder<I: DeserializeOwned + Send + Sync + 'static>() -> DecodeFn {
    Box::new(|input: &Input, name: &str| Ok(Decoded(Box::new(input.decode::<I>(name)?))))
}

fn downcast<I: 'static>(d: &Decoded) -> Result<&I, ActionError> {
    d.0.downcast_ref::<I>()
        .ok_or_else(|| ActionError::internal("an input was decoded for another action"))
}

fn encode_output<O: Serialize>(o: &O) -> Result<Value, ActionError> {
    crate::input::encode(o)
}

impl<C: Concept> Actions<C> {
    pub fn new(name: impl Into<String>) -> Self {
        Actions {
            name: name.into(),
            bindings: Vec::new(),
        }
    }

    fn add_action<I, O, F>(mut self, name: &str, kind: ActionKind, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + Send + Sync + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(&C, &ActionCtx, &dyn ProjectionRead, &I) -> Result<Decision<C::Event, O>, ActionError>
            + Send
            + Sync
            + 'static,
    {
        self.bindings.push(Binding {
            spec: ActionSpec::of::<I, O>(name, kind),
            decode: decoder::<I>(),
            run: Run::Action(Box::new(move |c, ctx, view, input| {
                let decision = handler(c, ctx, view, downcast::<I>(input)?)?;
                Ok(Decision {
                    output: encode_output(&decision.output)?,
                    appends: decision.appends,
                })
            })),
        });
        self
    }

    /// An action callers invoke: reads the projections, refuses or decides events.
    pub fn action<I, O, F>(self, name: &str, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + Send + Sync + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(&C, &ActionCtx, &dyn ProjectionRead, &I) -> Result<Decision<C::Event, O>, ActionError>
            + Send
            + Sync
            + 'static,
    {
        self.add_action(name, ActionKind::Action, handler)
    }

    /// A system action: raised only by the concept's own background work.
    pub fn system<I, O, F>(self, name: &str, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + Send + Sync + 'static,
        O: Serialize + JsonSchema + 'static,
        F: Fn(&C, &ActionCtx, &dyn ProjectionRead, &I) -> Result<Decision<C::Event, O>, ActionError>
            + Send
            + Sync
            + 'static,
    {
        self.add_action(name, ActionKind::System, handler)
    }

    /// A query (its name starts with `_`): reads the projections, answers a typed output.
    pub fn query<I, O, F>(mut self, name: &str, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + Send + Sync + 'static,
        O: Serialize + JsonSchema + Send + Sync + 'static,
        F: Fn(&C, &ActionCtx, &dyn ProjectionRead, I) -> Result<O, ActionError> + Send + Sync + 'static,
    {
        self.bindings.push(Binding {
            spec: ActionSpec::of::<I, O>(name, ActionKind::Query),
            decode: decoder::<I>(),
            run: Run::Query(Box::new(move |c, ctx, view, input| {
                let input = input
                    .0
                    .downcast::<I>()
                    .map_err(|_| ActionError::internal("an input was decoded for another query"))?;
                Ok(Output::Typed(Arc::new(handler(c, ctx, view, *input)?)))
            })),
        });
        self
    }

    /// A query that writes its answer straight to JSON text (a large answer: no value is
    /// built); `O` is the type that text is the serialisation of, for the schema.
    pub fn query_json<I, O, F>(mut self, name: &str, handler: F) -> Self
    where
        I: DeserializeOwned + JsonSchema + Send + Sync + 'static,
        O: JsonSchema + 'static,
        F: Fn(&C, &ActionCtx, &dyn ProjectionRead, I) -> Result<Bytes, ActionError> + Send + Sync + 'static,
    {
        self.bindings.push(Binding {
            spec: ActionSpec::of::<I, O>(name, ActionKind::Query),
            decode: decoder::<I>(),
            run: Run::Query(Box::new(move |c, ctx, view, input| {
                let input = input
                    .0
                    .downcast::<I>()
                    .map_err(|_| ActionError::internal("an input was decoded for another query"))?;
                Ok(Output::Json(handler(c, ctx, view, *input)?))
            })),
        });
        self
    }

    /// Marks the last declared action's input as open (fields beyond its schema are accepted).
    pub fn open_input(mut self) -> Self {
        if let Some(b) = self.bindings.last_mut() {
            b.spec = b.spec.clone().with_open_input();
        }
        self
    }

    /// Replaces the last declared action's spec (its name and kind stay): for an input whose
    /// schema is built rather than derived.
    pub fn with_spec(mut self, spec: ActionSpec) -> Self {
        if let Some(b) = self.bindings.last_mut() {
            b.spec = ActionSpec {
                name: b.spec.name.clone(),
                kind: b.spec.kind,
                ..spec
            };
        }
        self
    }

    /// Marks the last declared action's output as open.
    pub fn open_output(mut self) -> Self {
        if let Some(b) = self.bindings.last_mut() {
            b.spec = b.spec.clone().with_open_output();
        }
        self
    }

    /// The spec these declarations make.
    pub fn spec(&self) -> ConceptSpec {
        ConceptSpec {
            name: self.name.clone(),
            actions: self.bindings.iter().map(|b| b.spec.clone()).collect(),
        }
    }

    fn binding(&self, name: &str) -> Result<&Binding<C, C::Event>, ActionError> {
        self.bindings.iter().find(|b| b.spec.name == name).ok_or_else(|| {
            ActionError::not_found(
                "UNKNOWN_ACTION",
                format!("{} has no action or query named {name:?}", self.name),
            )
        })
    }
}

/// A concept written against its own typed events.
pub trait Concept: Send + Sync + Sized + 'static {
    type Event: Serialize + DeserializeOwned + Send + 'static;

    /// Its name and every action, system action and query, declared once.
    fn actions(&self) -> Actions<Self>;

    /// The type name of an event, as stored in the log.
    fn event_kind(event: &Self::Event) -> &'static str;

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
    /// Decodes an input for one action or query, once.
    fn decode(&self, action: &str, input: &Input) -> Result<Decoded, ActionError>;
    fn perform(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        action: &str,
        input: &Decoded,
    ) -> Result<Performed, ActionError>;
    fn query(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        query: &str,
        input: Decoded,
    ) -> Result<Output, ActionError>;
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
    actions: Actions<C>,
    spec: ConceptSpec,
}

impl<C: Concept> Typed<C> {
    pub fn new(concept: C) -> Self {
        let actions = concept.actions();
        let spec = actions.spec();
        Typed {
            concept: Arc::new(concept),
            actions,
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

    fn decode(&self, action: &str, input: &Input) -> Result<Decoded, ActionError> {
        let binding = self.actions.binding(action)?;
        (binding.decode)(input, &format!("{}.{action}", self.spec.name))
    }

    fn perform(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        action: &str,
        input: &Decoded,
    ) -> Result<Performed, ActionError> {
        let Run::Action(run) = &self.actions.binding(action)?.run else {
            return Err(ActionError::internal(format!("{}.{action} is a query", self.spec.name)));
        };
        let decision = run(&self.concept, ctx, view, input)?;
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
        input: Decoded,
    ) -> Result<Output, ActionError> {
        let Run::Query(run) = &self.actions.binding(query)?.run else {
            return Err(ActionError::internal(format!(
                "{}.{query} is not a query",
                self.spec.name
            )));
        };
        run(&self.concept, ctx, view, input)
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
