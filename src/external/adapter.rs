//! An external concept as the engine holds it: a `DynConcept` whose actions and queries are
//! POSTs to the service that implements it, and whose callbacks (system actions the service
//! raises over HTTP) are recorded as they come.
//!
//! The engine runs every action on a blocking thread (the server's `spawn_blocking`, a
//! background raise's, or the command line's own), so `perform` and `query` make the call with
//! reqwest's blocking client and return its answer like any decision: an output and no events,
//! or an `ActionError` that the engine records as `{error, code}`. An external concept has no
//! rows and no events of its own; what it did is the action records the engine writes.
//!
//! Each call carries `Idempotency-Key` (the flow, the action and a hash of the input: the same
//! call in the same flow, tried again or redelivered after a crash, carries the same key) and
//! `X-Flow-Id`. A call that times out, cannot connect or gets a 5xx without an `{error, code}`
//! body is tried again up to `retries` times when it is idempotent (a query, or an action
//! declared `idempotent`); what is still failing is refused `UPSTREAM_UNAVAILABLE` (could not
//! connect), `UPSTREAM_TIMEOUT` or `UPSTREAM_FAILED`, all 503, and recorded with the whole input
//! in the flow.

use super::declaration::Declaration;
use super::stand_in::StandIn;
use concept_core::{
    ActionCtx, ActionError, ActionKind, BackgroundWork, ConceptSpec, Decoded, DynConcept, ErrorKind, EventMeta, Host,
    Input, Output, Performed, ProjectionRead, ProjectionTxn, StoreFault,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use uuid::Uuid;

/// The largest answer read from a service, in bytes.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The pause before the first retry; doubled for each one after.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// An external concept: its declaration and the HTTP client its calls go through.
pub struct External {
    decl: Declaration,
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
    /// A trace's answers, given in place of the service (no call is made).
    stand_in: Option<Arc<StandIn>>,
}

/// Why one try of a call did not give an answer.
enum Failure {
    /// The connection was refused or broke before an answer (or the URL is unreachable).
    Unavailable(String),
    TimedOut,
    /// An answer without a usable `{error, code}` body: worth another try when 5xx.
    Status(u16, String),
}

impl External {
    pub fn new(decl: Declaration) -> Self {
        External {
            decl,
            client: OnceLock::new(),
            stand_in: None,
        }
    }

    /// The concept answering from a trace's `answer` lines instead of its service.
    pub fn with_stand_in(mut self, stand_in: Arc<StandIn>) -> Self {
        self.stand_in = Some(stand_in);
        self
    }

    pub fn declaration(&self) -> &Declaration {
        &self.decl
    }

    /// The client, built on first use (on the thread that makes the call, never inside the
    /// async runtime: reqwest's blocking client runs its own).
    fn client(&self) -> Result<&reqwest::blocking::Client, ActionError> {
        self.client
            .get_or_init(|| {
                reqwest::blocking::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| ActionError::internal(format!("cannot make an HTTP client: {e}")))
    }

    /// The idempotency key of calling `action` with `input` in `flow` (a query, outside any
    /// flow: the action and the input only).
    fn key(&self, flow: Uuid, action: &str, body: &[u8]) -> String {
        let digest = Sha256::digest(body);
        let hash: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        if flow.is_nil() {
            format!("{}.{action}.{hash}", self.decl.name())
        } else {
            format!("{flow}.{}.{action}.{hash}", self.decl.name())
        }
    }

    /// POSTs `input` to `{url}/{action}`, trying again as the declaration allows; the answer,
    /// or the refusal the flow records.
    fn call(&self, flow: Uuid, action: &str, input: &Value) -> Result<Value, ActionError> {
        if let Some(stand_in) = &self.stand_in {
            return stand_in.answer(self.decl.name(), action, input);
        }
        let name = format!("{}.{action}", self.decl.name());
        let url = format!("{}/{action}", self.decl.url);
        let body = serde_json::to_vec(input).map_err(|e| ActionError::internal(format!("{name}: {e}")))?;
        let key = self.key(flow, action, &body);
        let client = self.client()?;
        let tries = if self.decl.retryable(action) {
            self.decl.retries + 1
        } else {
            1
        };
        let mut failure = Failure::Unavailable("not called".into());
        for attempt in 0..tries {
            if attempt > 0 {
                // A pause between tries, not a reading of time: nothing decided depends on it.
                std::thread::sleep(FIRST_BACKOFF * 2u32.saturating_pow(attempt - 1));
            }
            let mut request = client
                .post(&url)
                .timeout(self.decl.timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", &key);
            // A query runs outside any flow (the engine reads committed state): no flow to name.
            if !flow.is_nil() {
                request = request.header("X-Flow-Id", flow.to_string());
            }
            let sent = request.body(body.clone()).send();
            failure = match sent {
                Ok(response) => match self.answer(&name, response) {
                    Ok(result) => return result,
                    Err(f) => f,
                },
                Err(e) if e.is_timeout() => Failure::TimedOut,
                Err(e) => Failure::Unavailable(without_url(&e)),
            };
            if let Failure::Status(status, _) = &failure {
                if *status < 500 {
                    break;
                }
            }
        }
        let tried = if tries > 1 {
            format!(" ({tries} tries)")
        } else {
            String::new()
        };
        let shown = concept_core::redact::redact_url(&url);
        Err(match failure {
            Failure::Unavailable(why) => ActionError::new(
                ErrorKind::Unavailable,
                "UPSTREAM_UNAVAILABLE",
                format!("{name}: the service at {shown} could not be reached{tried}: {why}; the call is recorded in the flow and can be made again"),
            ),
            Failure::TimedOut => ActionError::new(
                ErrorKind::Unavailable,
                "UPSTREAM_TIMEOUT",
                format!(
                    "{name}: the service at {shown} did not answer within {:?}{tried}",
                    self.decl.timeout
                ),
            ),
            Failure::Status(status, why) => ActionError::new(
                ErrorKind::Unavailable,
                "UPSTREAM_FAILED",
                format!("{name}: the service at {shown} answered {status}{tried}: {why}"),
            ),
        })
    }

    /// What one answer comes to: `Ok(result)` for a final one (an output, a checked refusal),
    /// `Err` for a failed try.
    fn answer(&self, name: &str, response: reqwest::blocking::Response) -> Result<Result<Value, ActionError>, Failure> {
        let status = response.status().as_u16();
        if response.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
            return Ok(Err(ActionError::internal(format!(
                "{name}: the service's answer is larger than {MAX_ANSWER} bytes"
            ))));
        }
        let bytes = match response.bytes() {
            Ok(b) => b,
            Err(e) if e.is_timeout() => return Err(Failure::TimedOut),
            Err(e) => return Err(Failure::Unavailable(without_url(&e))),
        };
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            return Ok(match body {
                Some(v) => Ok(v),
                None => Err(ActionError::new(
                    ErrorKind::Internal,
                    "UPSTREAM_INVALID_ANSWER",
                    format!("{name}: the service answered {status} with a body that is not JSON"),
                )),
            });
        }
        // A refusal in the house format: recorded with the service's own code.
        if let Some((error, code)) = body.as_ref().and_then(refusal) {
            return Ok(Err(ActionError::new(kind_of(status), code, format!("{name}: {error}"))));
        }
        let text = String::from_utf8_lossy(&bytes);
        let text: String = text.chars().take(200).collect();
        Err(Failure::Status(
            status,
            if text.trim().is_empty() {
                "no {error, code} body".into()
            } else {
                format!("no {{error, code}} body: {text:?}")
            },
        ))
    }

    /// Checks an output against the declared schema's shape: an object (a query: or a list of
    /// objects) with every required field.
    fn checked(&self, action: &str, output: Value) -> Result<Value, ActionError> {
        let name = format!("{}.{action}", self.decl.name());
        let Some(spec) = self.decl.spec.action(action) else {
            return Ok(output);
        };
        let bad = |why: String| {
            ActionError::new(
                ErrorKind::Internal,
                "UPSTREAM_INVALID_ANSWER",
                format!("{name}: the service's answer {why}"),
            )
        };
        let rows: Vec<&Value> = match (&output, spec.kind) {
            (Value::Array(items), ActionKind::Query) => items.iter().collect(),
            (Value::Object(_), _) => vec![&output],
            _ => return Err(bad("is not a JSON object".into())),
        };
        for (i, row) in rows.iter().enumerate() {
            let Value::Object(fields) = row else {
                return Err(bad(format!("has item {i} that is not an object")));
            };
            if let Some(missing) = required(&spec.output).into_iter().find(|r| !fields.contains_key(*r)) {
                return Err(bad(format!("lacks the required field `{missing}`")));
            }
        }
        Ok(output)
    }
}

/// `{error, code}` of a refusal body, if it is one.
fn refusal(body: &Value) -> Option<(String, String)> {
    let error = body.get("error")?.as_str()?;
    let code = body.get("code")?.as_str()?;
    let valid = !code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (error.to_string(), code.to_string()))
}

/// The class of a refusal from the status the service answered it with.
fn kind_of(status: u16) -> ErrorKind {
    match status {
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::Invalid,
        503 => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

/// A transport error's sentence without the URL (named once by the caller, redacted).
fn without_url(e: &reqwest::Error) -> String {
    let mut why = e.to_string();
    if let Some(url) = e.url() {
        why = why.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    concept_core::redact::redact_text(&why)
}

/// The names a schema lists as `required`.
fn required(schema: &Value) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl DynConcept for External {
    fn name(&self) -> &str {
        self.decl.name()
    }

    fn spec(&self) -> &ConceptSpec {
        &self.decl.spec
    }

    /// The input as a JSON object with every field its schema requires (and none beyond its
    /// properties when it says `additionalProperties: false`); the service checks the rest.
    fn decode(&self, action: &str, input: &Input) -> Result<Decoded, ActionError> {
        let name = format!("{}.{action}", self.decl.name());
        let spec = self.decl.spec.action(action).ok_or_else(|| {
            ActionError::not_found(
                "UNKNOWN_ACTION",
                format!("{} has no action or query named {action:?}", self.decl.name()),
            )
        })?;
        let value = input.to_value()?;
        let Value::Object(fields) = &value else {
            return Err(ActionError::invalid(
                "INVALID_INPUT",
                format!("{name}: the input must be a JSON object"),
            ));
        };
        if let Some(missing) = required(&spec.input).into_iter().find(|r| !fields.contains_key(*r)) {
            return Err(ActionError::invalid(
                "INVALID_INPUT",
                format!("{name}: missing field `{missing}`"),
            ));
        }
        if spec.input.get("additionalProperties") == Some(&Value::Bool(false)) {
            let props = spec.input.get("properties").and_then(Value::as_object);
            if let Some(extra) = fields.keys().find(|k| !props.is_some_and(|p| p.contains_key(*k))) {
                return Err(ActionError::invalid(
                    "INVALID_INPUT",
                    format!("{name}: unknown field `{extra}`"),
                ));
            }
        }
        Ok(Decoded::new(value))
    }

    fn perform(
        &self,
        ctx: &ActionCtx,
        _view: &dyn ProjectionRead,
        action: &str,
        input: &Decoded,
    ) -> Result<Performed, ActionError> {
        let input = input
            .get::<Value>()
            .ok_or_else(|| ActionError::internal("an input was decoded for another concept"))?;
        let output = match self.decl.spec.action(action).map(|a| a.kind) {
            // A callback: the service raised it; it is recorded, and syncs react to it.
            Some(ActionKind::System) => json!({}),
            Some(ActionKind::Action) => self.checked(action, self.call(ctx.flow, action, input)?)?,
            _ => {
                return Err(ActionError::internal(format!(
                    "{}.{action} is not an action",
                    self.decl.name()
                )))
            }
        };
        Ok(Performed {
            output,
            appends: Vec::new(),
        })
    }

    fn query(
        &self,
        ctx: &ActionCtx,
        _view: &dyn ProjectionRead,
        query: &str,
        input: Decoded,
    ) -> Result<Output, ActionError> {
        let input = input
            .get::<Value>()
            .ok_or_else(|| ActionError::internal("an input was decoded for another concept"))?;
        let output = self.call(ctx.flow, query, input)?;
        Ok(Output::Value(self.checked(query, output)?))
    }

    fn apply_stored(&self, meta: &EventMeta, _data: &[u8], _txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        Err(StoreFault::new(format!(
            "event {} belongs to the external concept {}, which records none",
            meta.seq,
            self.decl.name()
        )))
    }

    fn committed(&self, _action: &str, _output: &Value) {}

    fn background(&self, _host: Arc<dyn Host>) -> Option<BackgroundWork> {
        None
    }
}
