//! What the API looks like, from the same schemas the engine decodes inputs with:
//! `GET /api/schema` (every concept's actions and queries with the JSON Schema of their input
//! and output) and `GET /api/openapi.json` (an OpenAPI 3.1 document of what is reachable over
//! HTTP: the exposed concept actions and the request paths the loaded syncs answer).

use super::access::Exposure;
use crate::engine::Engine;
use crate::sync::Term;
use concept_core::ConceptSpec;
use serde_json::{json, Map, Value};

/// `GET /api/schema`: every concept's actions and queries, and which concepts are sources.
pub fn schema_document(engine: &Engine, exposure: &Exposure) -> Value {
    let concepts: Vec<Value> = engine
        .registry()
        .specs()
        .into_iter()
        .map(|c| {
            let actions: Vec<Value> = c
                .actions
                .iter()
                .map(|a| {
                    json!({
                        "name": a.name,
                        "kind": a.kind,
                        "exposed": exposure.allows_spec(&c.name, a),
                        "openInput": a.open_input,
                        "input": a.input,
                        "output": a.output,
                    })
                })
                .collect();
            json!({ "name": c.name, "actions": actions })
        })
        .collect();
    // The source concepts (Spotify, Plex, Last.fm…), whose reads the web page shows per user.
    json!({ "concepts": concepts, "sources": engine.registry().sources() })
}

/// `GET /api/openapi.json`.
pub fn openapi_document(engine: &Engine, exposure: &Exposure, token: bool) -> Value {
    let mut components = Map::new();
    components.insert(
        "Error".into(),
        json!({
            "type": "object",
            "description": "A refusal or failure: one human sentence and a machine code.",
            "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
            "required": ["error", "code"]
        }),
    );
    let mut paths = Map::new();
    for concept in engine.registry().specs() {
        add_concept_paths(&concept, exposure, &mut paths, &mut components);
    }
    add_request_paths(engine, &mut paths);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "LibraryCache",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A local, queryable snapshot of users' music libraries. Actions and queries are \
                POST /api/{Concept}/{action}; other POST /api/{path} are requests answered by syncs."
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    });
    if token {
        doc["security"] = json!([{"bearer": []}]);
    }
    doc
}

fn error_responses() -> Value {
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
    json!({
        "400": {"description": "Malformed JSON", "content": error},
        "401": {"description": "Missing or wrong bearer token", "content": error},
        "404": {"description": "Unknown concept, action, user, playlist or track", "content": error},
        "409": {"description": "A refused precondition", "content": error},
        "413": {"description": "Body over the limit", "content": error},
        "422": {"description": "Input that does not fit the schema (the message names the field)", "content": error},
        "default": {"description": "Any other failure", "content": error}
    })
}

fn add_concept_paths(
    concept: &ConceptSpec,
    exposure: &Exposure,
    paths: &mut Map<String, Value>,
    components: &mut Map<String, Value>,
) {
    for action in &concept.actions {
        if !exposure.allows_spec(&concept.name, action) {
            continue;
        }
        let input = lift_defs(&concept.name, &action.input, components);
        let output = lift_defs(&concept.name, &action.output, components);
        let mut responses = error_responses();
        responses["200"] = json!({
            "description": "The output",
            "content": {"application/json": {"schema": output}}
        });
        paths.insert(
            format!("/api/{}/{}", concept.name, action.name),
            json!({
                "post": {
                    "operationId": format!("{}.{}", concept.name, action.name),
                    "tags": [concept.name],
                    "summary": format!("{:?} {}.{}", action.kind, concept.name, action.name),
                    "requestBody": {"required": true, "content": {"application/json": {"schema": input}}},
                    "responses": responses
                }
            }),
        );
    }
}

/// The request paths the loaded syncs answer: `Requesting.request (path: "/x", fields...)`.
fn add_request_paths(engine: &Engine, paths: &mut Map<String, Value>) {
    for sync in engine.syncs().all() {
        for p in sync
            .when
            .iter()
            .filter(|p| p.concept == "Requesting" && p.action == "request")
        {
            let Some(path) = p.inputs.iter().find(|a| a.name == "path").and_then(|a| match &a.value {
                Term::Lit(Value::String(s), _) => Some(s.clone()),
                _ => None,
            }) else {
                continue;
            };
            let key = format!("/api{path}");
            let entry = paths.entry(key).or_insert_with(|| {
                let mut responses = error_responses();
                responses["200"] = json!({
                    "description": "What the answering sync responds",
                    "content": {"application/json": {"schema": {"type": "object"}}}
                });
                json!({
                    "post": {
                        "operationId": format!("request {path}"),
                        "tags": ["Requests"],
                        "description": "",
                        "requestBody": {"required": true, "content": {"application/json": {"schema": {
                            "type": "object", "properties": {}, "required": []
                        }}}},
                        "responses": responses
                    }
                })
            });
            let post = &mut entry["post"];
            let desc = post["description"].as_str().unwrap_or_default().to_string();
            let line = format!("Answered by sync {} ({}).", sync.name, sync.pos);
            post["description"] = json!(if desc.is_empty() {
                line
            } else {
                format!("{desc} {line}")
            });
            let schema = &mut post["requestBody"]["content"]["application/json"]["schema"];
            for arg in p.inputs.iter().filter(|a| a.name != "path") {
                schema["properties"][&arg.name] = json!({});
                let required = schema["required"].as_array_mut().expect("required is a list");
                if !required.iter().any(|r| r == &json!(arg.name)) {
                    required.push(json!(arg.name));
                }
            }
        }
    }
}

/// `schema` as an OpenAPI schema object: its `$defs` moved to the components (named
/// `Concept.Def`) and every `#/$defs/X` reference rewritten to point there.
fn lift_defs(concept: &str, schema: &Value, components: &mut Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        if let Some(Value::Object(defs)) = obj.remove("$defs") {
            for (name, mut def) in defs {
                rewrite_refs(concept, &mut def);
                components.insert(format!("{concept}.{name}"), def);
            }
        }
    }
    rewrite_refs(concept, &mut schema);
    schema
}

fn rewrite_refs(concept: &str, v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref" {
                    if let Some(name) = child.as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
                        *child = json!(format!("#/components/schemas/{concept}.{name}"));
                    }
                } else {
                    rewrite_refs(concept, child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_refs(concept, i)),
        _ => {}
    }
}
