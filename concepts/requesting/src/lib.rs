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

/// `respond (request, status?, ...fields)`: the answer to a request. The other fields are the
/// JSON object answered (the input is open); `respond` checks only these two, so decoding it
/// never copies the answer, which may be 25,000 ids long ([`response_of`] reads it in place).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RespondInput {
    pub request: String,
    /// The HTTP status of the answer (200 when absent).
    #[serde(default)]
    pub status: Option<u16>,
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

/// The answer a `respond` input describes: the HTTP status and the JSON object to send (the
/// input's fields but `request` and `status`, serialised in place rather than copied).
pub fn response_of(respond_input: &Value) -> (u16, ResponseBody<'_>) {
    let fields = respond_input.as_object();
    let status = fields
        .and_then(|f| f.get("status"))
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200);
    (status, ResponseBody(fields))
}

/// The JSON object a `respond` input answers: its fields but `request` and `status`.
#[derive(Debug, Clone, Copy)]
pub struct ResponseBody<'a>(Option<&'a Map<String, Value>>);

impl ResponseBody<'_> {
    fn fields(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != "request" && k.as_str() != "status")
    }

    /// The answered field `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields().find(|(k, _)| k.as_str() == name).map(|(_, v)| v)
    }

    /// The body as an owned JSON object.
    pub fn to_value(&self) -> Value {
        Value::Object(self.fields().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

impl Serialize for ResponseBody<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.fields())
    }
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
        let input = json!({"request": "r1", "status": 404, "error": "no such user"});
        let (status, body) = response_of(&input);
        assert_eq!(status, 404);
        assert_eq!(body.to_value(), json!({"error": "no such user"}));
        assert_eq!(body.get("error"), Some(&json!("no such user")));
        assert_eq!(body.get("request"), None);
        let input = json!({"request": "r1", "trackIds": ["a"]});
        let (status, body) = response_of(&input);
        assert_eq!(status, 200);
        assert_eq!(body.to_value(), json!({"trackIds": ["a"]}));
        // The fields keep the order the sync wrote them in, serialised in place.
        let input = json!({"request": "r", "userId": "u", "status": 201, "version": 5, "added": 1});
        let (_, body) = response_of(&input);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"userId":"u","version":5,"added":1}"#
        );
        assert_eq!(body.to_value().to_string(), r#"{"userId":"u","version":5,"added":1}"#);
    }

    #[test]
    fn respond_reads_only_the_request_and_the_status() {
        let input: RespondInput =
            serde_json::from_value(json!({"request": "r1", "status": 404, "trackIds": ["a", "b"]})).unwrap();
        assert_eq!(input.request, "r1");
        assert_eq!(input.status, Some(404));
    }
}
