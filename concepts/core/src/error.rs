//! Action outcomes that are refusals: a named, machine-readable code, one human sentence, and the
//! class of the problem (which the HTTP layer maps to a status code).

use serde::Serialize;

/// The class of a refusal. Each maps to exactly one HTTP status (see `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// The input does not fit the action's schema or its field rules (422).
    Invalid,
    /// The user, playlist or track named does not exist (404).
    NotFound,
    /// A precondition of the action is not met, e.g. ingesting twice (409).
    Conflict,
    /// Something went wrong inside the service (500).
    Internal,
    /// A temporary condition; retrying later may succeed (503).
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status code of this class of refusal.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 422,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }
}

/// A refused or failed action: `{"error": message, "code": code}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ActionError {
    pub kind: ErrorKind,
    /// A stable SCREAMING_SNAKE_CASE code, e.g. `USER_NOT_FOUND`.
    pub code: String,
    /// One human sentence that names the problem and where it is.
    pub message: String,
}

impl ActionError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        ActionError {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn invalid(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, message)
    }
    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }
    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "INTERNAL", message)
    }

    /// The output object recorded for a failed action and matched by `error` patterns in syncs.
    pub fn to_output(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message, "code": self.code })
    }
}

impl From<crate::projection::StoreFault> for ActionError {
    fn from(e: crate::projection::StoreFault) -> Self {
        ActionError::internal(format!("the store failed: {e}"))
    }
}
