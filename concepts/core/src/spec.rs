//! Machine-readable descriptions of a concept's actions and queries: names, kinds and the JSON
//! Schemas of their inputs and outputs (generated with schemars). The engine validates inputs
//! and checks sync files against these; the server publishes them.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    /// Changes state; recorded; may be called from outside.
    Action,
    /// Reads state; never recorded; its name starts with `_`.
    Query,
    /// Raised by the concept itself (a timer, a finished background read); recorded.
    System,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionSpec {
    pub name: String,
    pub kind: ActionKind,
    pub input: Value,
    pub output: Value,
    /// True when the input accepts fields beyond those in its schema (e.g. `Requesting.request`).
    pub open_input: bool,
    /// True when the output may carry fields beyond those in its schema.
    pub open_output: bool,
}

impl ActionSpec {
    /// The spec of an action or query from its input and output types.
    pub fn of<I: JsonSchema, O: JsonSchema>(name: &str, kind: ActionKind) -> Self {
        ActionSpec {
            name: name.to_string(),
            kind,
            input: schemars::schema_for!(I).to_value(),
            output: schemars::schema_for!(O).to_value(),
            open_input: false,
            open_output: false,
        }
    }

    pub fn with_open_input(mut self) -> Self {
        self.open_input = true;
        self
    }

    pub fn with_open_output(mut self) -> Self {
        self.open_output = true;
        self
    }

    /// Top-level property names of the input schema.
    pub fn input_fields(&self) -> Vec<String> {
        property_names(&self.input)
    }

    /// Top-level property names of the output schema (plus `error` and `code`, which every
    /// action may answer with).
    pub fn output_fields(&self) -> Vec<String> {
        let mut names = property_names(&self.output);
        if self.kind != ActionKind::Query {
            names.extend(["error".to_string(), "code".to_string()]);
        }
        names
    }

    /// The schema of one top-level input property, if the input schema declares it.
    pub fn input_property(&self, name: &str) -> Option<&Value> {
        self.input.get("properties")?.get(name)
    }

    /// The schema of one top-level output property, if the output schema declares it.
    pub fn output_property(&self, name: &str) -> Option<&Value> {
        self.output.get("properties")?.get(name)
    }
}

fn property_names(schema: &Value) -> Vec<String> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

/// A concept's name and the specs of all its actions and queries.
#[derive(Debug, Clone, Serialize)]
pub struct ConceptSpec {
    pub name: String,
    pub actions: Vec<ActionSpec>,
}

impl ConceptSpec {
    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }
}

/// A `.concept` file's header name and the actions and queries it declares, each with its kind:
/// the lines of its `actions` and `queries` sections indented by exactly four spaces, of the
/// form `[system] name (arg, arg?, ...rest, …` with lowerCamel names. Used to check that a concept serves exactly what its file says.
pub fn declared(text: &str) -> (Option<String>, Vec<(ActionKind, String)>) {
    let mut name = None;
    let mut section = "";
    let mut declared = Vec::new();
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("concept ") {
            name = header.split_whitespace().next().map(str::to_string);
        }
        if !line.starts_with(' ') && !line.trim().is_empty() {
            section = line.trim();
            continue;
        }
        let Some(entry) = line.strip_prefix("    ").filter(|l| !l.starts_with(' ')) else {
            continue;
        };
        let (system, entry) = match entry.strip_prefix("system ") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        // `name (arg, arg?, …` — a lowerCamel name and lowerCamel arguments (prose such as
        // `characters (INVALID_ID), …` is neither); the list may go on on the next line.
        let Some((action, rest)) = entry.split_once(" (") else {
            continue;
        };
        let args = rest.split(')').next().unwrap_or_default();
        let camel = |word: &str| {
            let word = word.strip_prefix('_').unwrap_or(word);
            word.starts_with(|c: char| c.is_ascii_lowercase()) && word.chars().all(|c| c.is_ascii_alphanumeric())
        };
        let arg_ok = |arg: &str| {
            let arg = arg.trim().trim_end_matches('?');
            let arg = arg.strip_prefix("...").unwrap_or(arg);
            arg.is_empty() || (!arg.starts_with('_') && camel(arg))
        };
        if !camel(action) || !args.split(',').all(arg_ok) {
            continue;
        }
        let kind = match (section, system) {
            ("actions", true) => ActionKind::System,
            ("actions", false) => ActionKind::Action,
            ("queries", _) => ActionKind::Query,
            _ => continue,
        };
        declared.push((kind, action.to_string()));
    }
    (name, declared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concept_file_declares_its_actions_system_actions_and_queries() {
        let text = "concept Counter [User]\n\npurpose\n    count (not an action)\n\nactions\n    add (userId, by, ...more) : (count)\n        requires by > 0 (else BAD, 422)\n    system reset (userId) : ()\n\nqueries\n    _get (userId) : (count)\n    prose (NOT_AN_ACTION), and so on\n\nnotes\n    other (x) : y\n";
        let (name, actions) = declared(text);
        assert_eq!(name.as_deref(), Some("Counter"));
        assert_eq!(
            actions,
            vec![
                (ActionKind::Action, "add".to_string()),
                (ActionKind::System, "reset".to_string()),
                (ActionKind::Query, "_get".to_string()),
            ]
        );
    }
}
