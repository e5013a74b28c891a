//! Answers a trace gives in place of the services behind external concepts (`answer` lines,
//! `crate::trace`): a trace runs its external concepts against these and never calls a service,
//! so it stays a pure function of its text.

use concept_core::{ActionError, ErrorKind};
use serde_json::Value;
use std::sync::Mutex;

/// One given answer: for calls of `Concept.action` whose input matches `pattern`.
struct Given {
    concept: String,
    action: String,
    pattern: Value,
    answer: Result<Value, String>,
}

/// The answers given so far; the latest one matching a call answers it.
#[derive(Default)]
pub struct StandIn {
    given: Mutex<Vec<Given>>,
}

impl StandIn {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, a call of `concept.action` whose input matches `pattern` (partially, as a
    /// trace's expected output matches) answers `answer` (an output, or a refusal's code).
    pub fn give(&self, concept: &str, action: &str, pattern: Value, answer: Result<Value, String>) {
        self.given.lock().unwrap_or_else(|p| p.into_inner()).push(Given {
            concept: concept.to_string(),
            action: action.to_string(),
            pattern,
            answer,
        });
    }

    /// The answer to a call; a call no `answer` line covers is refused `UPSTREAM_UNAVAILABLE`,
    /// as a service that is not there would be.
    pub fn answer(&self, concept: &str, action: &str, input: &Value) -> Result<Value, ActionError> {
        let given = self.given.lock().unwrap_or_else(|p| p.into_inner());
        let found = given.iter().rev().find(|g| {
            g.concept == concept
                && g.action == action
                && crate::trace::json_matches(&g.pattern, input, "", &mut crate::trace::Bindings::new()).is_ok()
        });
        match found {
            Some(g) => g.answer.clone().map_err(|code| {
                ActionError::new(
                    ErrorKind::Unavailable,
                    code,
                    format!("{concept}.{action}: refused by the trace's `answer` line"),
                )
            }),
            None => Err(ActionError::new(
                ErrorKind::Unavailable,
                "UPSTREAM_UNAVAILABLE",
                format!(
                    "{concept}.{action}: no `answer {concept}.{action} {{...}} => ...` line of the trace matches the input {input}"
                ),
            )),
        }
    }
}
