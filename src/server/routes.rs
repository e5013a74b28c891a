//! The routes and their handlers.

use super::{api_docs, ApiError, AppState};
use crate::engine::{Answer, Completed, Engine};
use axum::body::{to_bytes, Body};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use uuid::Uuid;

/// The header every action answer carries its flow id in.
pub const FLOW_HEADER: &str = "x-flow-id";

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/schema", get(schema))
        .route("/api/openapi.json", get(openapi))
        .route("/api/flows/{flow}", get(flow))
        .route("/api/{*path}", post(call))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(api)
        .merge(super::web::routes())
        .fallback(not_found)
        .layer(axum::middleware::map_response(ensure_flow_header))
        .layer(CompressionLayer::new().compress_when(DefaultPredicate::new().and(SizeAbove::new(1024))))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// Every `/api` call carries the configured bearer token (when one is configured).
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.token.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

/// Every answer carries a flow id; one that ran no flow (a malformed body, an unknown route)
/// gets a fresh id, so a caller can always quote one.
pub(super) async fn ensure_flow_header(mut response: Response) -> Response {
    if !response.headers().contains_key(FLOW_HEADER) {
        set_flow_header(&mut response, uuid::Uuid::now_v7());
    }
    response
}

/// The one place the `x-flow-id` header is written.
pub(super) fn set_flow_header(response: &mut Response, flow: uuid::Uuid) {
    if let Ok(value) = HeaderValue::from_str(&flow.to_string()) {
        response.headers_mut().insert(FLOW_HEADER, value);
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such endpoint; actions are POST /api/{Concept}/{action}",
    )
}

/// Reads the body within the limit (not parsed: a concept decodes it straight into its typed
/// input).
async fn body_bytes(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
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
    Ok(bytes)
}

/// `POST /api/{Concept}/{action}` runs an action or query; any other `POST /api/{path}` becomes
/// `Requesting.request (path: "/{path}", ...body)`, answered by the flow's `Requesting.respond`.
async fn call(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = match headers.get(IDEMPOTENCY_HEADER) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "INVALID_IDEMPOTENCY_KEY",
                        "the Idempotency-Key header must be visible ASCII",
                    )
                })?
                .to_string(),
        ),
        None => None,
    };
    let body = body_bytes(body, state.body_limit).await?;
    let segments: Vec<&str> = path.split('/').collect();
    let flow = Uuid::now_v7();
    if let Some(found) = state.engine.registry().get(segments[0]) {
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
        let reachable = match found.spec().action(action) {
            Some(spec) => state.exposure.allows_spec(concept, spec),
            // Unknown: the engine answers 404 UNKNOWN_ACTION, whatever the exposure.
            None => true,
        };
        if !reachable {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "NOT_EXPOSED",
                format!(
                    "{concept}.{action} is not reachable over HTTP on this service (see --expose; system actions never are)"
                ),
            ));
        }
        let is_query = found.spec().action(action).map(|a| a.kind) == Some(concept_core::ActionKind::Query);
        let (concept, action) = (concept.to_string(), action.to_string());
        let input = concept_core::Input::Json(body);
        if is_query {
            // A query answers from committed state, with the JSON text it wrote.
            let output = blocking(&state, flow, move |engine| {
                engine.query_output(&concept, &action, input)
            })
            .await?;
            return Ok(with_flow(flow, query_answer(output)));
        }
        let answer = blocking(&state, flow, move |engine| match key {
            Some(key) => engine.invoke_once(flow, &key, &concept, &action, input),
            None => engine.invoke_in(flow, &concept, &action, input),
        })
        .await?;
        let replayed = answer.replayed;
        return Ok(mark_replayed(with_flow(answer.flow, concept_answer(answer)), replayed));
    }
    let input: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::malformed(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(mut fields) = input else {
        return Err(ApiError::malformed("the request body must be a JSON object"));
    };
    let path = format!("/{path}");
    fields.insert("path".into(), Value::String(path.clone()));
    let (answer_flow, response, replayed) = blocking(&state, flow, move |engine| {
        let mut answer = match key {
            Some(key) => engine.invoke_once(flow, &key, "Requesting", "request", Value::Object(fields)),
            None => engine.invoke_in(flow, "Requesting", "request", Value::Object(fields)),
        };
        if answer.replayed && respond_of(&answer).is_none() {
            finish_replayed_flow(engine, &mut answer);
        }
        (answer.flow, request_answer(engine, &path, &answer), answer.replayed)
    })
    .await?;
    Ok(mark_replayed(with_flow(answer_flow, response), replayed))
}

/// Runs engine work on the blocking pool, answering 503 TIMEOUT (with the flow's id) if it takes
/// longer than the request timeout; the work itself still completes.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    flow: Uuid,
    work: impl FnOnce(&Engine) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let engine = state.engine.clone();
    let task = tokio::task::spawn_blocking(move || work(&engine));
    // What is left of the request's time (its body may have taken some: `guard`).
    match tokio::time::timeout(super::guard::remaining(state.request_timeout), task).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!("the action panicked: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            format!(
                "no answer within {:?}; the work goes on and may still complete: see GET /api/flows/{flow}",
                state.request_timeout
            ),
        )
        .with_flow(flow)),
    }
}

/// `GET /api/schema`: every concept's actions and queries with their input and output schemas.
async fn schema(State(state): State<AppState>) -> Json<Value> {
    Json(api_docs::schema_document(&state.engine, &state.exposure))
}

/// `GET /api/openapi.json`: an OpenAPI 3.1 document of what this service exposes.
async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(api_docs::openapi_document(
        &state.engine,
        &state.exposure,
        state.token.is_set(),
    ))
}

/// A query's answer: the JSON it wrote (or its value, serialised), or its refusal.
fn query_answer(output: Result<concept_core::Output, concept_core::ActionError>) -> Response {
    match output.and_then(concept_core::Output::into_bytes) {
        Ok(output) => (
            [(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            output,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A concept action's answer: its output, its refusal, or why its flow stopped.
fn concept_answer(answer: Answer) -> Response {
    match (answer.result, answer.flow_error) {
        (Err(e), _) | (Ok(_), Some(e)) => ApiError::from(e).into_response(),
        (Ok(output), None) => Json(output).into_response(),
    }
}

/// The flow's first successful `Requesting.respond` for the request `answer` made, if any.
fn respond_of(answer: &Answer) -> Option<&Completed> {
    let request = answer.result.as_ref().ok()?.get("request")?;
    answer.cascade().iter().find(|c| {
        c.concept == "Requesting" && c.action == "respond" && !c.failed && c.input.get("request") == Some(request)
    })
}

/// A retried request (same idempotency key) whose remembered flow has no respond yet: either the
/// first call is still cascading in this process (wait for it), or a crash cut its flow short
/// after the request committed (finish it now, as the first call would have).
fn finish_replayed_flow(engine: &Engine, answer: &mut Answer) {
    if answer.result.is_err() {
        return;
    }
    match engine.settled_flow(answer.flow) {
        Ok(actions) => answer.actions = actions,
        Err(e) => {
            answer.flow_error = Some(e);
            return;
        }
    }
    if respond_of(answer).is_none() {
        match engine.resume_flow(answer.flow) {
            Ok(actions) => answer.actions = actions,
            Err(e) => answer.flow_error = Some(e),
        }
    }
}

/// A request's answer: the arguments of the flow's first successful `Requesting.respond` for it.
fn request_answer(engine: &Engine, path: &str, answer: &Answer) -> Response {
    if let Err(e) = &answer.result {
        return ApiError::from(e.clone()).into_response();
    }
    if let Some(e) = &answer.flow_error {
        return ApiError::from(e.clone()).into_response();
    }
    match respond_of(answer) {
        Some(r) => {
            let (status, body) = requesting::response_of(&r.input);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (status, Json(body)).into_response()
        }
        None => ApiError::from(engine.unanswered(path, &answer.actions)).into_response(),
    }
}

/// The header a retry repeats so its action runs once.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Marks the remembered answer of an earlier call with the same idempotency key.
fn mark_replayed(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn with_flow(flow: uuid::Uuid, mut response: Response) -> Response {
    set_flow_header(&mut response, flow);
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
    let report = blocking(&state, id, move |engine| engine.flow_report(id)).await?;
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
