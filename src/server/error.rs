//! Errors as HTTP answers: `{"error": "<one sentence>", "code": "<MACHINE_CODE>"}` with the
//! status of the error's class (400 malformed, 422 invalid input, 404 unknown, 409 a refused
//! precondition, 413 too large, 500 the store), as the README's curl session lists them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use concept_core::ActionError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// The flow the error belongs to, sent in the `x-flow-id` header.
    pub flow: Option<uuid::Uuid>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            flow: None,
        }
    }

    pub fn with_flow(mut self, flow: uuid::Uuid) -> Self {
        self.flow = Some(flow);
        self
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_JSON", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError {
            status,
            code: e.code,
            message: e.message,
            flow: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "code": self.code });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(flow) = self.flow {
            super::routes::set_flow_header(&mut response, flow);
        }
        response
    }
}
