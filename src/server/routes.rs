//! The routes and their handlers.

use super::{ApiError, AppState};
use crate::engine::{Answer, Engine};
use axum::body::{to_bytes, Body};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

/// The header every action answer carries its flow id in.
pub const FLOW_HEADER: &str = "x-flow-id";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/flows/{flow}", get(flow))
        .route("/api/{*path}", post(call))
        .merge(super::web::routes())
        .fallback(not_found)
        .layer(axum::middleware::map_response(ensure_flow_header))
        .with_state(state)
}

/// Every answer carries a flow id; one that ran no flow (a malformed body, an unknown route)
/// gets a fresh id, so a caller can always quote one.
async fn ensure_flow_header(mut response: Response) -> Response {
    if !response.headers().contains_key(FLOW_HEADER) {
        if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()) {
            response.headers_mut().insert(FLOW_HEADER, value);
        }
    }
    response
}

async fn healthz() -> Json<Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such endpoint; actions are POST /api/{Concept}/{action}",
    )
}

/// Reads the body within the limit and parses it as JSON.
async fn json_body(body: Body, limit: usize) -> Result<Value, ApiError> {
    let bytes = to_bytes(body, limit).await.map_err(|e| {
        let over = std::error::Error::source(&e)
            .map(|s| s.is::<http_body_util::LengthLimitError>())
            .unwrap_or(false)
            || e.to_string().contains("length limit");
        if over {
            ApiError::too_large(limit)
        } else {
            ApiError::malformed(format!("the request body could not be read: {e}"))
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::malformed("the request body is empty; send a JSON object"));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::malformed(format!("the request body is not valid JSON: {e}")))
}

/// The actions no HTTP caller may invoke directly (only syncs do).
const NOT_EXPOSED: &[(&str, &str)] = &[("Requesting", "respond")];

/// `POST /api/{Concept}/{action}` runs an action or query; any other `POST /api/{path}` becomes
/// `Requesting.request (path: "/{path}", ...body)`, answered by the flow's `Requesting.respond`.
async fn call(State(state): State<AppState>, Path(path): Path<String>, body: Body) -> Result<Response, ApiError> {
    let input = json_body(body, state.body_limit).await?;
    let segments: Vec<&str> = path.split('/').collect();
    let is_concept = state.engine.registry().get(segments[0]).is_some();
    if is_concept {
        let [concept, action] = segments[..] else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "{} is a concept: call its actions as POST /api/{}/{{action}}",
                    segments[0], segments[0]
                ),
            ));
        };
        if NOT_EXPOSED.contains(&(concept, action)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "NOT_EXPOSED",
                format!("{concept}.{action} is invoked by syncs only, not over HTTP"),
            ));
        }
        let (concept, action) = (concept.to_string(), action.to_string());
        let answer = blocking(&state, move |engine| engine.invoke(&concept, &action, input)).await?;
        return Ok(with_flow(answer.flow, concept_answer(answer)));
    }
    let Value::Object(mut fields) = input else {
        return Err(ApiError::malformed("the request body must be a JSON object"));
    };
    let path = format!("/{path}");
    fields.insert("path".into(), Value::String(path.clone()));
    let answer = blocking(&state, move |engine| {
        let answer = engine.invoke("Requesting", "request", Value::Object(fields));
        let response = request_answer(engine, &path, &answer);
        (answer.flow, response)
    })
    .await?;
    Ok(with_flow(answer.0, answer.1))
}

/// Runs engine work on the blocking pool.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Engine) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || work(&engine)).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!("the action panicked: {e}"),
        )
    })
}

/// A concept action's or query's answer: its output, its refusal, or why its flow stopped.
fn concept_answer(answer: Answer) -> Response {
    match (answer.result, answer.flow_error) {
        (Err(e), _) | (Ok(_), Some(e)) => ApiError::from(e).into_response(),
        (Ok(output), None) => Json(output).into_response(),
    }
}

/// A request's answer: the arguments of the flow's first successful `Requesting.respond` for it.
fn request_answer(engine: &Engine, path: &str, answer: &Answer) -> Response {
    let request = match &answer.result {
        Ok(output) => output.get("request").cloned().unwrap_or(Value::Null),
        Err(e) => return ApiError::from(e.clone()).into_response(),
    };
    if let Some(e) = &answer.flow_error {
        return ApiError::from(e.clone()).into_response();
    }
    let respond = answer.cascade().iter().find(|c| {
        c.concept == "Requesting" && c.action == "respond" && !c.failed && c.input.get("request") == Some(&request)
    });
    match respond {
        Some(r) => {
            let (status, body) = requesting::response_of(&r.input);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (status, Json(body)).into_response()
        }
        None => ApiError::from(engine.unanswered(path, &answer.actions)).into_response(),
    }
}

fn with_flow(flow: uuid::Uuid, mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::from_str(&flow.to_string()) {
        response.headers_mut().insert(FLOW_HEADER, value);
    }
    response
}

/// `GET /api/flows/{flow}`: the flow's action records and the firings that linked them.
async fn flow(State(state): State<AppState>, Path(flow): Path<String>) -> Result<Response, ApiError> {
    let id = uuid::Uuid::parse_str(&flow).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FLOW_ID",
            format!("{flow:?} is not a flow id (a UUID, as in the x-flow-id header)"),
        )
    })?;
    let report = blocking(&state, move |engine| engine.flow_report(id)).await?;
    match report {
        Ok(Some(report)) => Ok(with_flow(id, Json(report).into_response())),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "FLOW_NOT_FOUND",
            format!("no actions are recorded for flow {id} (unknown, or compacted away)"),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!("the store failed: {e}"),
        )),
    }
}
