//! An action's input as it arrives — the request body's bytes, or a JSON value a sync built —
//! and its decoding into the action's typed input, once, with errors that name the field path
//! (`likes[3].likedAt: ...`) so a caller can find the problem.

use crate::{ActionError, Bytes, ErrorKind};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An action's or query's input before decoding.
#[derive(Debug, Clone)]
pub enum Input {
    /// JSON text as received (an HTTP body): decoded straight into the typed input, never
    /// through a `Value`.
    Json(Bytes),
    /// A JSON value (built by a sync, a trace, a test).
    Value(Value),
}

impl From<Value> for Input {
    fn from(v: Value) -> Self {
        Input::Value(v)
    }
}

impl From<Bytes> for Input {
    fn from(b: Bytes) -> Self {
        Input::Json(b)
    }
}

impl Input {
    /// Decodes the input into `T`. Text that is not JSON is a `MALFORMED_JSON` refusal (400);
    /// JSON that is not an object, or does not fit `T`, an `INVALID_INPUT` refusal naming the
    /// offending field.
    pub fn decode<T: DeserializeOwned>(&self, action: &str) -> Result<T, ActionError> {
        match self {
            Input::Value(v) => decode_value(action, v),
            Input::Json(bytes) => decode_bytes(action, bytes),
        }
    }

    /// The input as a JSON value (parsing JSON text).
    pub fn to_value(&self) -> Result<Value, ActionError> {
        match self {
            Input::Value(v) => Ok(v.clone()),
            Input::Json(bytes) => serde_json::from_slice(bytes).map_err(malformed),
        }
    }

    /// The input as a JSON value, without copying a value.
    pub fn into_value(self) -> Result<Value, ActionError> {
        match self {
            Input::Value(v) => Ok(v),
            Input::Json(bytes) => serde_json::from_slice(&bytes).map_err(malformed),
        }
    }
}

fn malformed(e: serde_json::Error) -> ActionError {
    ActionError::new(
        ErrorKind::Malformed,
        "MALFORMED_JSON",
        format!("the input is not valid JSON: {e}"),
    )
}

fn not_an_object(action: &str, kind: &str) -> ActionError {
    ActionError::invalid(
        "INVALID_INPUT",
        format!("the input of {action} must be a JSON object, not {kind}"),
    )
}

fn invalid(action: &str, path: String, inner: String) -> ActionError {
    let message = if path == "." {
        format!("invalid input for {action}: {inner}")
    } else {
        format!("invalid input for {action}: field `{path}`: {inner}")
    };
    ActionError::invalid("INVALID_INPUT", message)
}

fn decode_value<T: DeserializeOwned>(action: &str, input: &Value) -> Result<T, ActionError> {
    if !input.is_object() {
        return Err(not_an_object(action, kind_of(input)));
    }
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        invalid(action, path, e.into_inner().to_string())
    })
}

fn decode_bytes<T: DeserializeOwned>(action: &str, bytes: &[u8]) -> Result<T, ActionError> {
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    let kind = match first {
        None => return Err(malformed_text("it is empty; send a JSON object")),
        Some(b'{') => None,
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        Some(_) => None,
    };
    if let Some(kind) = kind {
        // Still report text that is not JSON at all as such.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(malformed)?;
        return Err(not_an_object(action, kind));
    }
    // The fast path decodes without tracking where it is; only a refused input is decoded
    // again to name the field at fault (and to tell text that is not JSON from a misfit).
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let refusal = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => match de.end() {
            Ok(()) => ActionError::internal(format!("the input of {action} decodes only on the second try")),
            Err(e) => malformed(e),
        },
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => malformed(inner),
                // A misfit found before the end of the text: text that is not JSON further on
                // is reported as such (it is the first thing to fix).
                _ => match serde_json::from_slice::<Value>(bytes) {
                    Err(syntax) => malformed(syntax),
                    Ok(_) => invalid(action, path, inner.to_string()),
                },
            }
        }
    };
    Err(refusal)
}

fn malformed_text(why: &str) -> ActionError {
    ActionError::new(
        ErrorKind::Malformed,
        "MALFORMED_JSON",
        format!("the input is not valid JSON: {why}"),
    )
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes `input` into `T`; a misfit is an `INVALID_INPUT` refusal naming the offending field.
pub fn decode<T: DeserializeOwned>(action: &str, input: Value) -> Result<T, ActionError> {
    decode_value(action, &input)
}

/// Serialises a typed output into the JSON object the engine records and returns.
pub fn encode<T: serde::Serialize>(output: &T) -> Result<Value, ActionError> {
    serde_json::to_value(output).map_err(|e| ActionError::internal(format!("could not encode an output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct In {
        user_id: String,
        #[serde(default)]
        likes: Vec<Like>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Like {
        track_id: String,
    }

    fn bytes(s: &str) -> Input {
        Input::Json(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn bytes_and_values_decode_alike_and_name_the_field() {
        let text = r#"{"userId": "u", "likes": [{"trackId": "a"}, {"trackId": 7}]}"#;
        let from_bytes = bytes(text).decode::<In>("X.y").expect_err("misfit");
        let value: Value = serde_json::from_str(text).expect("json");
        let from_value = Input::Value(value).decode::<In>("X.y").expect_err("misfit");
        for e in [&from_bytes, &from_value] {
            assert_eq!(e.code, "INVALID_INPUT");
            assert!(e.message.contains("field `likes[1].trackId`"), "{}", e.message);
        }
        let ok: In = bytes(r#" {"userId": "u"} "#).decode("X.y").expect("decodes");
        assert_eq!(ok.user_id, "u");
    }

    #[test]
    fn text_that_is_not_json_is_malformed_and_other_json_is_not_an_object() {
        for text in [
            "",
            "  ",
            "{",
            r#"{"userId": "u"} x"#,
            "[1,",
            r#"{"userId": 7, "likes": [NaN]}"#,
        ] {
            let e = bytes(text).decode::<In>("X.y").expect_err(text);
            assert_eq!(
                (e.kind, e.code.as_str()),
                (ErrorKind::Malformed, "MALFORMED_JSON"),
                "{text:?}: {e}"
            );
        }
        for (text, kind) in [
            ("[1]", "an array"),
            ("\"s\"", "a string"),
            ("3", "a number"),
            ("null", "null"),
        ] {
            let e = bytes(text).decode::<In>("X.y").expect_err(text);
            assert_eq!(e.code, "INVALID_INPUT");
            assert!(e.message.ends_with(kind), "{e}");
        }
    }
}
