//! The routes and their handlers.

use super::{ApiError, AppState};
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
        .route("/api/{concept}/{action}", post(call))
        .fallback(not_found)
        .with_state(state)
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

async fn call(
    State(state): State<AppState>,
    Path((concept, action)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let input = json_body(body, state.body_limit).await?;
    let engine = state.engine.clone();
    let answer = tokio::task::spawn_blocking(move || engine.invoke(&concept, &action, input))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                format!("the action panicked: {e}"),
            )
        })?;
    let flow = HeaderValue::from_str(&answer.flow.to_string()).ok();
    let mut response = match answer.result {
        Ok(output) => Json(output).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    if let Some(flow) = flow {
        response.headers_mut().insert(FLOW_HEADER, flow);
    }
    Ok(response)
}
