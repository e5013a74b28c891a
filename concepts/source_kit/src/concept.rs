//! [`SourceConcept`]: a [`Source`] as a concept — the spec, the dispatch of actions and queries,
//! the rows, and the background work that runs the reads.

use crate::apply::{self, Event};
use crate::model::*;
use crate::secrets::Secrets;
use crate::{decide, queries, worker, Source};
use concept_core::input::{decode, encode};
use concept_core::{
    ActionCtx, ActionError, ActionKind, ActionSpec, BackgroundWork, Concept, ConceptSpec, Decision, EventMeta,
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

fn unknown<S: Source>(kind: &str, name: &str) -> ActionError {
    ActionError::not_found("UNKNOWN_ACTION", format!("{} has no {kind} named {name:?}", S::NAME))
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

impl<S: Source> Concept for SourceConcept<S> {
    type Event = Event<S>;

    fn spec(&self) -> ConceptSpec {
        use ActionKind::{Action, Query, System};
        let mut actions = vec![
            ActionSpec::of::<S::Connect, UserOutput>("connect", Action),
            ActionSpec::of::<UserInput, UserOutput>("disconnect", Action),
            ActionSpec::of::<FetchInput, FetchOutput>("fetch", Action),
            ActionSpec::of::<ConfirmInput, ConfirmOutput>("confirm", Action),
            ActionSpec::of::<ProgressInput, UserOutput>("progressed", System),
            ActionSpec::of::<FetchedInput<S::Cursor>, FetchedOutput>("fetched", System),
            ActionSpec::of::<FailedInput, FailedOutput>("failed", System),
            ActionSpec::of::<UserInput, RekeyOutput>("rekey", System),
        ];
        if let Some(update) = S::UPDATE_ACTION {
            actions.push(update_spec::<S>(update));
        }
        actions.extend([
            ActionSpec::of::<UserInput, FetchStatus>("_getFetch", Query),
            ActionSpec::of::<UserInput, S::ConnectionOutput>("_getConnection", Query),
            ActionSpec::of::<NoInput, UsersOutput>("_getConnections", Query),
        ]);
        ConceptSpec {
            name: S::NAME.to_string(),
            actions,
        }
    }

    fn event_kind(event: &Event<S>) -> &'static str {
        event.kind()
    }

    fn perform(
        &self,
        ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        action: &str,
        input: Value,
    ) -> Result<Decision<Event<S>>, ActionError> {
        let name = format!("{}.{action}", S::NAME);
        let source = &*self.source;
        let (user, events, output) = match action {
            "connect" => decide::connect(source, &self.secrets, decode(&name, input)?)?,
            "disconnect" => decide::disconnect::<S>(view, decode(&name, input)?)?,
            "fetch" => decide::fetch(ctx, view, source, decode(&name, input)?)?,
            "confirm" => decide::confirm::<S>(view, decode(&name, input)?)?,
            "progressed" => decide::progressed::<S>(view, decode(&name, input)?)?,
            "fetched" => decide::fetched::<S>(view, decode(&name, input)?)?,
            "failed" => decide::failed::<S>(view, decode(&name, input)?)?,
            "rekey" => decide::rekey::<S>(view, &self.secrets, decode(&name, input)?)?,
            other if S::UPDATE_ACTION == Some(other) => decide::updated(view, source, &self.secrets, &name, input)?,
            other => return Err(unknown::<S>("action", other)),
        };
        let appends = if events.is_empty() {
            Vec::new()
        } else {
            let version = view.stream_version(&user)?;
            vec![(user, ExpectedVersion::Exact(version), events)]
        };
        Ok(Decision { output, appends })
    }

    fn query(
        &self,
        _ctx: &ActionCtx,
        view: &dyn ProjectionRead,
        query: &str,
        input: Value,
    ) -> Result<Value, ActionError> {
        let name = format!("{}.{query}", S::NAME);
        match query {
            "_getFetch" => encode(&queries::get_fetch::<S>(view, decode(&name, input)?)?),
            "_getConnection" => encode(&queries::get_connection(view, &*self.source, decode(&name, input)?)?),
            "_getConnections" => {
                let _: NoInput = decode(&name, input)?;
                encode(&queries::get_connections(view)?)
            }
            other => Err(unknown::<S>("query", other)),
        }
    }

    fn apply(&self, meta: &EventMeta, event: &Event<S>, txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        apply::apply(&*self.source, meta, event, txn)
    }

    fn committed(&self, action: &str, _output: &Value) {
        if matches!(action, "fetch" | "connect" | "disconnect") {
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
