//! What an idempotency key is bound to: a fingerprint of the request it was first used for, so a
//! key sent again with another body (or, for a request answered by syncs, another path) is
//! refused (422 `IDEMPOTENCY_KEY_REUSED`) instead of silently answered with the first call's
//! answer. The fingerprint is a SHA-256 of the concept, the action and the input written as
//! canonical JSON (object keys sorted), so the same JSON with its keys in another order is the
//! same request.

use concept_core::Input;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The fingerprint of calling `concept.action` with `input` as it arrived (JSON text is read
/// as JSON, so its key order does not matter; text that is not JSON is fingerprinted as it is,
/// and its action refuses it anyway).
pub fn fingerprint_input(concept: &str, action: &str, input: &Input) -> String {
    match input {
        Input::Value(v) => fingerprint(concept, action, v),
        Input::Json(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => fingerprint(concept, action, &v),
            Err(_) => {
                let mut hasher = Sha256::new();
                hasher.update(concept.as_bytes());
                hasher.update(b"\0");
                hasher.update(action.as_bytes());
                hasher.update(b"\0");
                hasher.update(bytes);
                hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
            }
        },
    }
}

/// The fingerprint of calling `concept.action` with `input` (64 hexadecimal digits).
pub fn fingerprint(concept: &str, action: &str, input: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(concept.as_bytes());
    hasher.update(b"\0");
    hasher.update(action.as_bytes());
    hasher.update(b"\0");
    canonical(input, &mut hasher);
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `v` as canonical JSON (sorted keys, no white space) to `hasher`.
fn canonical(v: &Value, hasher: &mut Sha256) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                hasher.update(Value::String(k.clone()).to_string().as_bytes());
                hasher.update(b":");
                canonical(&map[k], hasher);
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                canonical(item, hasher);
            }
            hasher.update(b"]");
        }
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_request_in_any_key_order_has_one_fingerprint() {
        let a = fingerprint(
            "C",
            "a",
            &json!({"userId": "u", "likes": [{"trackId": "t", "likedAt": "x"}]}),
        );
        let b = fingerprint(
            "C",
            "a",
            &json!({"likes": [{"likedAt": "x", "trackId": "t"}], "userId": "u"}),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(
            a,
            fingerprint(
                "C",
                "b",
                &json!({"userId": "u", "likes": [{"trackId": "t", "likedAt": "x"}]})
            )
        );
        assert_ne!(
            a,
            fingerprint(
                "C",
                "a",
                &json!({"userId": "v", "likes": [{"trackId": "t", "likedAt": "x"}]})
            )
        );
        // Array order matters; a string is not the number it spells.
        assert_ne!(
            fingerprint("C", "a", &json!({"x": [1, 2]})),
            fingerprint("C", "a", &json!({"x": [2, 1]}))
        );
        assert_ne!(
            fingerprint("C", "a", &json!({"x": 1})),
            fingerprint("C", "a", &json!({"x": "1"}))
        );
    }
}
