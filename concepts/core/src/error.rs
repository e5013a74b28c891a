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
    /// Asked to wait: an upstream service's rate limit is in force until a stated time (429).
    RateLimited,
    /// The input is not JSON at all (400).
    Malformed,
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
            ErrorKind::RateLimited => 429,
            ErrorKind::Malformed => 400,
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

/// The longest message a refusal carries, in bytes. A longer one (a message quoting a huge
/// input value, such as serde's `invalid type: string "…"`) keeps its start and its end.
pub const MAX_MESSAGE: usize = 1_000;

/// The longest run of non-space characters a message keeps whole (an id is at most 1024 bytes,
/// but a quoted 10 MB value is one such run).
const MAX_WORD: usize = 200;

/// `text[..n]` backed off to a character boundary.
fn head(text: &str, mut n: usize) -> &str {
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    &text[..n]
}

/// The last `n` bytes of `text`, moved forward to a character boundary.
fn tail(text: &str, n: usize) -> &str {
    let mut at = text.len() - n;
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}

/// `message` made short enough to read: each run of non-space characters longer than
/// [`MAX_WORD`] keeps its first and last 60 bytes, and a message still longer than
/// [`MAX_MESSAGE`] keeps its start and end, saying how much was left out.
pub fn bounded_message(message: String) -> String {
    let message = if message.split_whitespace().any(|w| w.len() > MAX_WORD) {
        let mut out = String::new();
        for piece in message.split_inclusive(char::is_whitespace) {
            let space = piece.chars().last().filter(|c| c.is_whitespace());
            let word = &piece[..piece.len() - space.map_or(0, char::len_utf8)];
            if word.len() > MAX_WORD {
                out.push_str(head(word, 60));
                out.push_str(&format!("…({} bytes)…", word.len()));
                out.push_str(tail(word, 60));
            } else {
                out.push_str(word);
            }
            out.extend(space);
        }
        out
    } else {
        message
    };
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let keep = MAX_MESSAGE / 2 - 40;
    let (start, end) = (head(&message, keep), tail(&message, keep));
    format!(
        "{start} … ({} bytes left out) … {end}",
        message.len() - start.len() - end.len()
    )
}

impl ActionError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        ActionError {
            kind,
            code: code.into(),
            message: bounded_message(message.into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_quoting_a_huge_value_keeps_its_start_and_end() {
        let quoted = "é".repeat(3_000_000);
        let e = ActionError::invalid(
            "INVALID_INPUT",
            format!("field `{quoted}`: unknown field `{quoted}`, expected one of `userId`, `likes`"),
        );
        assert!(
            e.message.len() <= MAX_MESSAGE,
            "{} bytes: {}",
            e.message.len(),
            e.message
        );
        assert!(e.message.starts_with("field `éé"), "{}", e.message);
        assert!(e.message.contains("éé`: unknown field `éé"), "{}", e.message);
        assert!(
            e.message.ends_with("éé`, expected one of `userId`, `likes`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("…(6000003 bytes)…"), "{}", e.message);
        // Many short words: the middle is left out.
        let e = ActionError::invalid("X", format!("start {}end", "word ".repeat(1_000_000)));
        assert!(e.message.len() <= MAX_MESSAGE + 40, "{} bytes", e.message.len());
        assert!(e.message.starts_with("start word") && e.message.ends_with("word end"));
        assert!(e.message.contains("bytes left out"));
        let short = ActionError::invalid("X", "a short sentence");
        assert_eq!(short.message, "a short sentence");
    }
}
