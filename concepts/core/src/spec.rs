//! Machine-readable descriptions of a concept's actions and queries: names, kinds and the JSON
//! Schemas of their inputs and outputs (generated with schemars). The engine validates inputs
//! and checks sync files against these; the server publishes them.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
