//! The Requesting concept: an outside request (an HTTP `POST /api/{path}` whose first segment is
//! not a concept) becomes the action `request`, and whatever a sync passes to `respond` in the
//! same flow is the answer. Syncs do the work in between; this concept only names the two ends.
//!
//! It keeps no state and appends no events: a request lives in its flow, and the engine's
//! action records are its history. Its spec is `Requesting.concept` beside Cargo.toml.

use concept_core::{
    ActionCtx, ActionError, Actions, Concept, Decision, EventMeta, ProjectionRead, ProjectionTxn, StoreFault,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const NAME: &str = "Requesting";

/// `request (path, ...fields)`: the path asked for and any other fields of the request body.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RequestInput {
    /// The path after `/api`, starting with `/` (e.g. `/liked`).
    pub path: String,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RequestOutput {
    /// The request's id, which `respond` names.
    pub request: String,
}

/// `respond (request, status?, ...fields)`: the answer to a request.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RespondInput {
    pub request: String,
    /// The HTTP status of the answer (200 when absent).
    #[serde(default)]
    pub status: Option<u16>,
    /// The JSON object answered.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// Requesting appends no events; this type has no values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NoEvent {}

#[derive(Debug, Default, Clone)]
pub struct Requesting;

impl Requesting {
    pub fn new() -> Self {
        Requesting
    }
}

/// The answer a `respond` input describes: the HTTP status and the JSON object to send.
pub fn response_of(respond_input: &Value) -> (u16, Value) {
    let mut body = respond_input.as_object().cloned().unwrap_or_default();
    body.shift_remove("request");
    let status = body
        .shift_remove("status")
        .and_then(|s| s.as_u64())
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200);
    (status, Value::Object(body))
}

impl Requesting {
    fn request(&self, ctx: &ActionCtx, _view: &dyn ProjectionRead, input: &RequestInput) -> Decided {
        if !input.path.starts_with('/') || input.path.chars().any(char::is_control) {
            return Err(ActionError::invalid(
                "INVALID_PATH",
                format!(
                    "`path` must start with \"/\" and hold no control characters: {:?}",
                    input.path
                ),
            ));
        }
        Ok(Decision::output_only(RequestOutput {
            request: ctx.new_id().to_string(),
        }))
    }

    fn respond(&self, _ctx: &ActionCtx, _view: &dyn ProjectionRead, input: &RespondInput) -> Decided {
        if input.request.trim().is_empty() {
            return Err(ActionError::invalid("EMPTY_ID", "`request` must not be empty"));
        }
        if let Some(status) = input.status {
            if !(100..=599).contains(&status) {
                return Err(ActionError::invalid(
                    "INVALID_STATUS",
                    format!("`status` must be an HTTP status from 100 to 599, not {status}"),
                ));
            }
        }
        Ok(Decision::output_only(RequestOutput {
            request: input.request.clone(),
        }))
    }
}

type Decided = Result<Decision<NoEvent, RequestOutput>, ActionError>;

impl Concept for Requesting {
    type Event = NoEvent;

    fn actions(&self) -> Actions<Self> {
        Actions::new(NAME)
            .action("request", Requesting::request)
            .open_input()
            .action("respond", Requesting::respond)
            .open_input()
    }

    fn event_kind(event: &NoEvent) -> &'static str {
        match *event {}
    }

    fn apply(&self, _meta: &EventMeta, event: &NoEvent, _txn: &mut dyn ProjectionTxn) -> Result<(), StoreFault> {
        match *event {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_response_is_the_fields_without_request_and_status() {
        let (status, body) = response_of(&json!({"request": "r1", "status": 404, "error": "no such user"}));
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "no such user"}));
        let (status, body) = response_of(&json!({"request": "r1", "trackIds": ["a"]}));
        assert_eq!(status, 200);
        assert_eq!(body, json!({"trackIds": ["a"]}));
        // The fields keep the order the sync wrote them in.
        let (_, body) = response_of(&json!({"request": "r", "userId": "u", "status": 201, "version": 5, "added": 1}));
        assert_eq!(body.to_string(), r#"{"userId":"u","version":5,"added":1}"#);
    }
}
