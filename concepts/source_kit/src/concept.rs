//! [`SourceConcept`]: a [`Source`] as a concept — the spec, the dispatch of actions and queries,
//! the rows, and the background work that runs the reads.

use crate::apply::{self, Event};
use crate::model::*;
use crate::secrets::Secrets;
use crate::{decide, queries, worker, Source};
use concept_core::{
    ActionCtx, ActionError, ActionKind, ActionSpec, Actions, BackgroundWork, Concept, Decision, EventMeta,
    ExpectedVersion, Host, ProjectionRead, ProjectionTxn, StoreFault,
};
use serde_json::Value;
use std::sync::Arc;

/// The concept a source makes: register it with `concept_core::Typed::new`.
pub struct SourceConcept<S: Source> {
    source: Arc<S>,
    /// Wakes the background work when a read is asked for.
    wake: Arc<tokio::sync::Notify>,
    /// Seals the credentials' secrets before they enter an event; opens them for a read.
    secrets: Secrets,
}

impl<S: Source> SourceConcept<S> {
    /// The concept with an ephemeral secrets key (see [`Secrets::default`]); a service gives it
    /// its key with [`SourceConcept::with_secrets`].
    pub fn new(source: S) -> Self {
        SourceConcept {
            source: Arc::new(source),
            wake: Arc::new(tokio::sync::Notify::new()),
            secrets: Secrets::default(),
        }
    }

    /// The concept sealing and opening credentials with `secrets`.
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    pub fn source(&self) -> &S {
        &self.source
    }
}

/// The update action's spec: `userId` plus the fields of `S::Update`.
fn update_spec<S: Source>(name: &str) -> ActionSpec {
    let mut spec = ActionSpec::of::<S::Update, UserOutput>(name, ActionKind::System);
    if let Value::Object(schema) = &mut spec.input {
        let mut properties = serde_json::Map::new();
        properties.insert("userId".into(), serde_json::json!({"type": "string"}));
        if let Some(Value::Object(rest)) = schema.remove("properties") {
            properties.extend(rest);
        }
        schema.insert("properties".into(), Value::Object(properties));
        let mut required = vec![Value::String("userId".into())];
        if let Some(Value::Array(rest)) = schema.remove("required") {
            required.extend(rest);
        }
        schema.insert("required".into(), Value::Array(required));
    }
    spec
}

type Decided<S, O> = Result<Decision<Event<S>, O>, ActionError>;

/// A decision of [`decide`] appended to the user's stream (at the version the view read).
fn appended<S: Source, O>(view: &dyn ProjectionRead, decided: decide::Decided<S, O>) -> Decided<S, O> {
    let (user, events, output) = decided;
    if events.is_empty() {
        return Ok(Decision::output_only(output));
    }
    let version = view.stream_version(&user)?;
    Ok(Decision::append(output, user, ExpectedVersion::Exact(version), events))
}

impl<S: Source> SourceConcept<S> {
    fn connect(&self, _: &ActionCtx, view: &dyn ProjectionRead, input: &S::Connect) -> Decided<S, UserOutput> {
        appended::<S, _>(view, decide::connect(&*self.source, &self.secrets, input)?)
    }

    fn disconnect(&self, _: &ActionCtx, view: &dyn ProjectionRead, input: &UserInput) -> Decided<S, UserOutput> {
        appended::<S, _>(view, decide::disconnect::<S>(view, input)?)
    }

    fn fetch(&self, ctx: &ActionCtx, view: &dyn ProjectionRead, input: &FetchInput) -> Decided<S, FetchOutput> {
        appended::<S, _>(view, decide::fetch(ctx, view, &*self.source, input)?)
    }

    fn confirm(&self, _: &ActionCtx, view: &dyn ProjectionRead, input: &ConfirmInput) -> Decided<S, ConfirmOutput> {
        appended::<S, _>(view, decide::confirm::<S>(view, input)?)
    }

    fn progressed(&self, _: &ActionCtx, view: &dyn ProjectionRead, input: &ProgressInput) -> Decided<S, UserOutput> {
        appended::<S, _>(view, decide::progressed::<S>(view, input)?)
    }

    fn fetched(
        &self,
        _: &ActionCtx,
        view: &dyn ProjectionRead,
        input: &FetchedInput<S::Cursor>,
    ) -> Decided<S, FetchedOutput> {
        appended::<S, _>(view, decide::fetched::<S>(view, input)?)
    }

    fn failed(&self, _: &ActionCtx, view: &dyn ProjectionRead, input: &FailedInput) -> Decided<S, FailedOutput> {
        appended::<S, _>(view, decide::failed::<S>(view, input)?)
    }

    fn resume(&self, ctx: &ActionCtx, view: &dyn ProjectionRead, input: &ResumeInput) -> Decided<S, FetchOutput> {
        appended::<S, _>(view, decide::resume::<S>(ctx, view, input)?)
    }

    fn rekey(&self, _: &ActionCtx, view: &dyn ProjectionRead, input: &UserInput) -> Decided<S, RekeyOutput> {
        appended::<S, _>(view, decide::rekey::<S>(view, &self.secrets, input)?)
    }

    fn get_fetch(
        &self,
        _: &ActionCtx,
        view: &dyn ProjectionRead,
        input: UserInput,
    ) -> Result<FetchStatus, ActionError> {
        queries::get_fetch::<S>(view, input)
    }

    fn get_connection(
        &self,
        _: &ActionCtx,
        view: &dyn ProjectionRead,
        input: UserInput,
    ) -> Result<S::ConnectionOutput, ActionError> {
        queries::get_connection(view, &*self.source, input)
    }

    fn get_connections(
        &self,
        _: &ActionCtx,
        view: &dyn ProjectionRead,
        _: NoInput,
    ) -> Result<UsersOutput, ActionError> {
        queries::get_connections(view)
    }
}

impl<S: Source> Concept for SourceConcept<S> {
    type Event = Event<S>;

    fn actions(&self) -> Actions<Self> {
        let mut actions = Actions::new(S::NAME)
            .action("connect", Self::connect)
            .action("disconnect", Self::disconnect)
            .action("fetch", Self::fetch)
            .action("confirm", Self::confirm)
            .system("progressed", Self::progressed)
            .system("fetched", Self::fetched)
            .system("failed", Self::failed)
            .system("resume", Self::resume)
            .system("rekey", Self::rekey);
        if let Some(update) = S::UPDATE_ACTION {
            let name = format!("{}.{update}", S::NAME);
            actions = actions
                .system(
                    update,
                    move |c: &Self,
                          _: &ActionCtx,
                          view: &dyn ProjectionRead,
                          input: &Value|
                          -> Decided<S, UserOutput> {
                        appended::<S, _>(view, decide::updated(view, &*c.source, &c.secrets, &name, input)?)
                    },
                )
                .with_spec(update_spec::<S>(update));
        }
        actions
            .query("_getFetch", Self::get_fetch)
            .query("_getConnection", Self::get_connection)
            .query("_getConnections", Self::get_connections)
    }

    fn event_kind(event: &Event<S>) -> &'static str {
        event.kind()
    }

    fn apply(&self, meta: &EventMeta, event: &Event<S>, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        apply::apply(&*self.source, meta, event, txn)
    }

    fn committed(&self, action: &str, _output: &Value) {
        // A read stopped with a checkpoint wakes the work too: it waits for the read's retryAt.
        if matches!(action, "fetch" | "connect" | "disconnect" | "failed") {
            self.wake.notify_one();
        }
    }

    fn background(self: Arc<Self>, host: Arc<dyn Host>) -> Option<BackgroundWork> {
        Some(Box::pin(worker::run(
            Arc::clone(&self.source),
            Arc::clone(&self.wake),
            self.secrets.clone(),
            host,
        )))
    }
}
