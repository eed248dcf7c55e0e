//! The Responses API around a stored response: `GET|DELETE /v1/responses/{id}`,
//! `POST /v1/responses/{id}/cancel`, `GET /v1/responses/{id}/input_items`, and
//! `POST /v1/responses/input_tokens` and `/v1/responses/compact`. Stateless: any id is a
//! completed response saying [`MOCK_TEXT`](super::MOCK_TEXT) (tests read which credential asked
//! from the mock's request log).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::errors::Proto;
use super::{CREATED, MOCK_TEXT, MockReq, MockStats};

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<MockStats>> {
    Router::new()
        .route("/v1/responses/input_tokens", post(input_tokens))
        .route("/v1/responses/compact", post(compact))
        .route("/v1/responses/{id}", get(retrieve).delete(delete))
        .route("/v1/responses/{id}/cancel", post(cancel))
        .route("/v1/responses/{id}/input_items", get(input_items))
}

/// A stored response as the API returns it, with `status`.
fn stored(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "model": "mock-gpt",
        "output": [{
            "type": "message",
            "id": format!("msg_{id}"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": MOCK_TEXT, "annotations": []}],
        }],
        "parallel_tool_calls": true,
        "store": true,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 5,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 8,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 13,
        },
    })
}

async fn retrieve(Path(id): Path<String>, req: MockReq) -> Response {
    match req.prelude(Proto::OpenAi).await {
        Ok(_) => Json(stored(&id, "completed")).into_response(),
        Err(r) => r,
    }
}

async fn delete(Path(id): Path<String>, req: MockReq) -> Response {
    match req.prelude(Proto::OpenAi).await {
        Ok(_) => Json(json!({"id": id, "object": "response", "deleted": true})).into_response(),
        Err(r) => r,
    }
}

async fn cancel(Path(id): Path<String>, req: MockReq) -> Response {
    match req.prelude(Proto::OpenAi).await {
        Ok(_) => Json(stored(&id, "cancelled")).into_response(),
        Err(r) => r,
    }
}

async fn input_items(Path(id): Path<String>, req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::OpenAi).await {
        return r;
    }
    let item = format!("msg_in_{id}");
    Json(json!({
        "object": "list",
        "data": [{
            "type": "message",
            "id": item,
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hello"}],
        }],
        "first_id": item,
        "last_id": item,
        "has_more": false,
    }))
    .into_response()
}

async fn input_tokens(req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::OpenAi).await {
        return r;
    }
    if let Err(r) = req.json::<serde::de::IgnoredAny>(Proto::OpenAi) {
        return r;
    }
    Json(json!({"object": "response.input_tokens", "input_tokens": req.prompt_tokens()}))
        .into_response()
}

async fn compact(req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::OpenAi).await {
        return r;
    }
    if let Err(r) = req.json::<serde::de::IgnoredAny>(Proto::OpenAi) {
        return r;
    }
    let input = req.prompt_tokens();
    Json(json!({
        "id": format!("cmp_mock_{}", req.seq),
        "object": "response.compaction",
        "created_at": CREATED,
        "output": [{"type": "compaction", "id": format!("cmpitem_mock_{}", req.seq), "encrypted_content": "bW9jaw=="}],
        "usage": {
            "input_tokens": input,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 4,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input + 4,
        },
    }))
    .into_response()
}
