//! The declaration of an external concept: a `{Name}.external.json` file in the syncs directory
//! (or a `--concepts` directory) naming the concept, the base URL of the service implementing
//! it, its timeout and retries, and its actions, queries and callbacks with the JSON Schemas of
//! their inputs and outputs. Reading one checks everything and names the file and the field of
//! every problem.

use concept_core::{ActionKind, ActionSpec, ConceptSpec};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The suffix of a declaration file's name: `Notifier.external.json`.
pub const SUFFIX: &str = ".external.json";

/// The timeout of one call when a declaration names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idempotent call is tried again when a declaration does not say.
pub const DEFAULT_RETRIES: u32 = 2;

/// The longest timeout a declaration may ask for (a call runs inside a flow).
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// A declaration that cannot be used: the file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct DeclarationError {
    pub file: String,
    pub problem: String,
}

/// One action, query or callback as the file states it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    input: Value,
    #[serde(default)]
    output: Option<Value>,
    /// The service treats a repeated call with the same `Idempotency-Key` as the first one, so
    /// the engine may try the call again after a timeout, a refused connection or a 5xx.
    #[serde(default)]
    idempotent: bool,
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclaration {
    concept: String,
    url: String,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    actions: BTreeMap<String, RawAction>,
    #[serde(default)]
    queries: BTreeMap<String, RawAction>,
    #[serde(default)]
    callbacks: BTreeMap<String, RawAction>,
}

/// A checked declaration.
#[derive(Debug, Clone)]
pub struct Declaration {
    /// Where it was read from (named in errors).
    pub file: String,
    /// The base URL, without a trailing `/`: an action `a` is `POST {url}/a`.
    pub url: String,
    pub timeout: Duration,
    /// Extra tries of an idempotent call (queries always are; actions when declared so).
    pub retries: u32,
    /// The actions declared `idempotent`.
    pub idempotent: Vec<String>,
    pub spec: ConceptSpec,
}

impl Declaration {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether a call of `action` may be tried again (a query, or an action declared
    /// idempotent).
    pub fn retryable(&self, action: &str) -> bool {
        action.starts_with('_') || self.idempotent.iter().any(|a| a == action)
    }
}

/// Reads every `*.external.json` file directly inside `dir`, in name order; every problem of
/// every file when any has one.
pub fn load_dir(dir: &Path) -> Result<Vec<Declaration>, Vec<DeclarationError>> {
    let dir_name = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![DeclarationError {
            file: dir_name.clone(),
            problem: format!("cannot read the directory: {e}"),
        }]
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(SUFFIX))
        })
        .collect();
    paths.sort();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match read_file(&path) {
            Ok(d) => found.push(d),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// Reads and checks one declaration file.
pub fn read_file(path: &Path) -> Result<Declaration, DeclarationError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| DeclarationError {
        file: file.clone(),
        problem: format!("cannot read the file: {e}"),
    })?;
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(SUFFIX))
        .map(str::to_string);
    parse(&file, stem.as_deref(), &bytes)
}

/// Parses and checks a declaration's bytes; `stem` is the file's name without `.external.json`,
/// which must be the concept's name.
pub fn parse(file: &str, stem: Option<&str>, bytes: &[u8]) -> Result<Declaration, DeclarationError> {
    let fail = |problem: String| DeclarationError {
        file: file.to_string(),
        problem,
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let raw: RawDeclaration = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            fail(format!("line {}:{}: {inner}", inner.line(), inner.column()))
        } else {
            fail(format!("at `{path}`: {inner}"))
        }
    })?;
    if !is_concept_name(&raw.concept) {
        return Err(fail(format!(
            "`concept`: {:?} is not a concept name (a capital letter, then letters and digits)",
            raw.concept
        )));
    }
    if let Some(stem) = stem {
        if stem != raw.concept {
            return Err(fail(format!(
                "the file declares {} but is named {stem}{SUFFIX}; name it {}{SUFFIX}",
                raw.concept, raw.concept
            )));
        }
    }
    let url = check_url(&raw.url).map_err(|why| fail(format!("`url`: {why}")))?;
    let timeout = match &raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(text) => {
            let d = concept_core::time::parse_duration(text).map_err(|e| fail(format!("`timeout`: {e}")))?;
            let d = d
                .to_std()
                .ok()
                .filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT)
                .ok_or_else(|| fail(format!("`timeout`: {text:?} must be more than 0 and at most 10m")))?;
            d
        }
    };
    let retries = raw.retries.unwrap_or(DEFAULT_RETRIES);
    if retries > 10 {
        return Err(fail(format!("`retries`: {retries} is more than 10")));
    }
    if raw.actions.is_empty() && raw.queries.is_empty() && raw.callbacks.is_empty() {
        return Err(fail(
            "declares no actions, queries or callbacks: list at least one under `actions`, `queries` or `callbacks`"
                .into(),
        ));
    }
    let mut actions = Vec::new();
    let mut idempotent = Vec::new();
    let sections = [
        ("actions", &raw.actions, ActionKind::Action),
        ("queries", &raw.queries, ActionKind::Query),
        ("callbacks", &raw.callbacks, ActionKind::System),
    ];
    for (section, entries, kind) in sections {
        for (name, action) in entries {
            let at = |what: &str| format!("`{section}.{name}{what}`");
            let query = kind == ActionKind::Query;
            if !is_action_name(name, query) {
                return Err(fail(format!(
                    "{}: {}",
                    at(""),
                    if query {
                        "a query's name is `_` then a lower-case letter, then letters, digits or `_`"
                    } else {
                        "a name is a lower-case letter, then letters, digits or `_` (only queries start with `_`)"
                    }
                )));
            }
            if actions.iter().any(|a: &ActionSpec| &a.name == name) {
                return Err(fail(format!("{}: the name is declared twice", at(""))));
            }
            check_schema(&action.input, false).map_err(|why| fail(format!("{}: {why}", at(".input"))))?;
            let output = match (&action.output, kind) {
                (Some(_), ActionKind::System) => {
                    return Err(fail(format!(
                        "{}: a callback has no output (the engine answers the service `{{}}`)",
                        at(".output")
                    )))
                }
                (None, ActionKind::System) => json!({"type": "object", "properties": {}}),
                (Some(output), _) => {
                    check_schema(output, query).map_err(|why| fail(format!("{}: {why}", at(".output"))))?;
                    output.clone()
                }
                (None, _) => {
                    return Err(fail(format!(
                        "{}: missing (the JSON Schema of the answer)",
                        at(".output")
                    )))
                }
            };
            if action.idempotent {
                match kind {
                    ActionKind::Action => idempotent.push(name.clone()),
                    _ => {
                        return Err(fail(format!(
                            "{}: only actions are declared idempotent (queries always are; callbacks are not called)",
                            at(".idempotent")
                        )))
                    }
                }
            }
            // A query answering a list: the sync checker reads the fields of its items.
            let output = match output.get("type").and_then(Value::as_str) {
                Some("array") => output
                    .get("items")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
                _ => output,
            };
            actions.push(ActionSpec {
                name: name.clone(),
                kind,
                input: action.input.clone(),
                output,
                open_input: false,
                open_output: false,
            });
        }
    }
    Ok(Declaration {
        file: file.to_string(),
        url,
        timeout,
        retries,
        idempotent,
        spec: ConceptSpec {
            name: raw.concept,
            actions,
        },
    })
}

fn is_concept_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric()) && s.len() <= 64
}

fn is_action_name(s: &str, query: bool) -> bool {
    let rest = if query {
        match s.strip_prefix('_') {
            Some(rest) => rest,
            None => return false,
        }
    } else {
        s
    };
    let mut chars = rest.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

/// An `http://` or `https://` base URL without query, fragment or credentials, its trailing `/`
/// dropped.
fn check_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http:// or https:// URL"));
    }
    if !url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(format!("{text:?} names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?} has a query or fragment; give the base URL the action names are appended to"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a URL with credentials is not accepted (the file is not a secret store)".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// An input (or an action's output) is an object schema; a query's output may also be an array
/// of objects (each item one row of a `where`).
fn check_schema(schema: &Value, may_be_list: bool) -> Result<(), String> {
    let Value::Object(map) = schema else {
        return Err("a JSON Schema is an object, e.g. {\"type\": \"object\", \"properties\": {...}}".into());
    };
    match map.get("type").and_then(Value::as_str) {
        Some("object") => check_properties(map),
        Some("array") if may_be_list => match map.get("items") {
            Some(Value::Object(items)) if items.get("type").and_then(Value::as_str) == Some("object") => {
                check_properties(items).map_err(|why| format!("items: {why}"))
            }
            _ => Err("an array answer needs `items` with \"type\": \"object\" (each item is one row)".into()),
        },
        Some(other) => Err(format!(
            "\"type\": {other:?} — the schema must describe an object{}",
            if may_be_list { " or an array of objects" } else { "" }
        )),
        None => Err("the schema needs \"type\": \"object\"".into()),
    }
}

fn check_properties(map: &Map<String, Value>) -> Result<(), String> {
    match map.get("properties") {
        None | Some(Value::Object(_)) => {}
        Some(_) => return Err("`properties` must be an object of property schemas".into()),
    }
    if let Some(required) = map.get("required") {
        let Value::Array(names) = required else {
            return Err("`required` must be an array of property names".into());
        };
        let props = map.get("properties").and_then(Value::as_object);
        for n in names {
            let Some(n) = n.as_str() else {
                return Err("`required` must be an array of property names".into());
            };
            if !props.is_some_and(|p| p.contains_key(n)) {
                return Err(format!("`required` names {n:?}, which `properties` does not declare"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(text: &str) -> Result<Declaration, DeclarationError> {
        parse("N.external.json", Some("N"), text.as_bytes())
    }

    const GOOD: &str = r#"{
        "concept": "N", "url": "http://127.0.0.1:9/n/", "timeout": "200ms",
        "actions": {"notify": {"input": {"type": "object", "properties": {"u": {"type": "string"}}, "required": ["u"]},
                               "output": {"type": "object", "properties": {"id": {"type": "string"}}}, "idempotent": true}},
        "queries": {"_muted": {"input": {"type": "object"}, "output": {"type": "array", "items": {"type": "object", "properties": {"u": {"type": "string"}}}}}},
        "callbacks": {"delivered": {"input": {"type": "object", "properties": {"id": {"type": "string"}}}}}
    }"#;

    #[test]
    fn a_good_declaration_reads() {
        let d = decl(GOOD).expect("reads");
        assert_eq!(d.url, "http://127.0.0.1:9/n");
        assert_eq!(d.timeout, Duration::from_millis(200));
        assert!(d.retryable("notify") && d.retryable("_muted") && !d.retryable("delivered"));
        assert_eq!(d.spec.action("delivered").map(|a| a.kind), Some(ActionKind::System));
        assert!(d.spec.action("_muted").is_some_and(|a| a.output_fields() == ["u"]));
    }

    #[test]
    fn problems_name_the_file_and_field() {
        let e = decl(&GOOD.replace("\"url\"", "\"uri\"")).expect_err("unknown field");
        assert!(e.to_string().starts_with("N.external.json: "), "{e}");
        assert!(e.problem.contains("uri"), "{e}");
        let e = decl(&GOOD.replace("http://127.0.0.1:9/n/", "ftp://x")).expect_err("scheme");
        assert!(e.problem.starts_with("`url`"), "{e}");
        let e = decl(&GOOD.replace("\"200ms\"", "\"soon\"")).expect_err("timeout");
        assert!(e.problem.starts_with("`timeout`"), "{e}");
        let e = decl(&GOOD.replace("\"required\": [\"u\"]", "\"required\": [\"v\"]")).expect_err("required");
        assert!(
            e.problem.contains("actions.notify.input") && e.problem.contains("\"v\""),
            "{e}"
        );
        let e = parse("M.external.json", Some("M"), GOOD.as_bytes()).expect_err("file name");
        assert!(e.problem.contains("name it N.external.json"), "{e}");
        let e = decl(&GOOD.replace("\"_muted\"", "\"muted\"")).expect_err("query name");
        assert!(e.problem.contains("queries.muted"), "{e}");
        let e = decl("{\"concept\": ").expect_err("not JSON");
        assert!(e.problem.contains("line 1"), "{e}");
    }
}
