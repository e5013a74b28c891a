//! Decoding an action's JSON input into its typed form, with errors that name the field path
//! (`likes[3].likedAt: ...`) so a caller can find the problem.

use crate::ActionError;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes `input` into `T`; a misfit is an `INVALID_INPUT` refusal naming the offending field.
pub fn decode<T: DeserializeOwned>(action: &str, input: Value) -> Result<T, ActionError> {
    if !input.is_object() {
        return Err(ActionError::invalid(
            "INVALID_INPUT",
            format!("the input of {action} must be a JSON object, not {}", kind_of(&input)),
        ));
    }
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." {
            format!("invalid input for {action}: {inner}")
        } else {
            format!("invalid input for {action}: field `{path}`: {inner}")
        };
        ActionError::invalid("INVALID_INPUT", message)
    })
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

/// Serialises a typed output into the JSON object the engine records and returns.
pub fn encode<T: serde::Serialize>(output: &T) -> Result<Value, ActionError> {
    serde_json::to_value(output).map_err(|e| ActionError::internal(format!("could not encode an output: {e}")))
}
