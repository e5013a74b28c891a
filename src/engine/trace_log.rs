//! The trace log: one line per completed action, in the notation of trace files (README, "Traces"),
//! indented by cascade depth and followed by the firing sync as a comment, so a log pastes into
//! a spec. Emitted at INFO on the `librarycache::trace` target (`serve --trace` turns it on).
//! Fields whose names mention a token, password, secret or API key are redacted.

use super::matching::Completed;
use serde_json::Value;

pub const TARGET: &str = "librarycache::trace";

/// Emits the line for `c` if the trace target is enabled.
pub fn emit(c: &Completed) {
    if tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        tracing::info!(target: TARGET, "{}", line(c));
    }
}

/// `Concept.action {input} => {output}` (or `=> error CODE`), indented four spaces per depth,
/// with `# Sync` after an action a sync fired.
pub fn line(c: &Completed) -> String {
    let outcome = if c.failed {
        format!("error {}", c.output["code"].as_str().unwrap_or("UNKNOWN"))
    } else {
        redacted(&c.output).to_string()
    };
    let mut line = format!(
        "{}{}.{} {} => {}",
        "    ".repeat(c.depth as usize),
        c.concept,
        c.action,
        redacted(&c.input),
        outcome
    );
    if let Some(sync) = &c.sync {
        line.push_str("   # ");
        line.push_str(sync);
    }
    line
}

/// Whether a field of this name holds a secret.
pub fn is_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["token", "password", "secret", "apikey", "api_key"]
        .iter()
        .any(|s| lower.contains(s))
}

/// `v` with every secret field's value replaced by `"[redacted]"`, at any depth.
pub fn redacted(v: &Value) -> Value {
    redact(v.clone())
}

/// [`redacted`], in place of the value given.
pub fn redact(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if is_secret(&k) {
                        Value::String("[redacted]".into())
                    } else {
                        redact(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn completed(depth: u32, sync: Option<&str>, failed: bool, output: Value) -> Completed {
        Completed {
            id: 1,
            concept: "SpotifySource".into(),
            action: "connect".into(),
            input: json!({"userId": "u", "accessToken": "abc", "nested": {"clientSecret": "s"}}),
            output,
            failed,
            sync: sync.map(String::from),
            cause: vec![],
            depth,
        }
    }

    #[test]
    fn a_line_is_a_trace_step_indented_by_depth_with_secrets_redacted() {
        let l = line(&completed(
            2,
            Some("Connect"),
            false,
            json!({"userId": "u", "password": "p"}),
        ));
        assert_eq!(
            l,
            r#"        SpotifySource.connect {"userId":"u","accessToken":"[redacted]","nested":{"clientSecret":"[redacted]"}} => {"userId":"u","password":"[redacted]"}   # Connect"#
        );
        let l = line(&completed(
            0,
            None,
            true,
            json!({"error": "no", "code": "USER_NOT_FOUND"}),
        ));
        assert!(l.starts_with("SpotifySource.connect {"), "{l}");
        assert!(l.ends_with("=> error USER_NOT_FOUND"), "{l}");
        assert_eq!(
            redacted(&json!({"apiKey": "k", "api_key": "k", "username": "rj", "idempotencyKey": "i"})),
            json!({"apiKey": "[redacted]", "api_key": "[redacted]", "username": "rj", "idempotencyKey": "i"})
        );
    }
}
