//! Anthropic message batches: `POST|GET /v1/messages/batches`, `GET|DELETE …/{id}`,
//! `GET …/{id}/results` (JSON lines) and `POST …/{id}/cancel`. A batch ends the moment it is
//! created (every request succeeded with [`MOCK_TEXT`](super::MOCK_TEXT)). Like the real API, a
//! batch is visible only to the credential that created it: another one gets 404.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::{Proto, error_response};
use super::{MOCK_TEXT, MockReq, MockStats, credential_of};

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<MockStats>> {
    Router::new()
        .route("/v1/messages/batches", post(create).get(list))
        .route("/v1/messages/batches/{id}", get(retrieve).delete(delete))
        .route("/v1/messages/batches/{id}/results", get(results))
        .route("/v1/messages/batches/{id}/cancel", post(cancel))
}

/// The batches a mock server holds, by id.
#[derive(Debug, Default)]
pub(crate) struct Batches(Mutex<BTreeMap<String, Batch>>);

#[derive(Debug, Clone)]
struct Batch {
    /// The credential that created it.
    owner: String,
    custom_ids: Vec<String>,
    model: String,
    canceled: bool,
}

impl Batches {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Batch>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The batch object clients see; `host` makes its `results_url`, as the real API points it at
/// itself.
fn object(id: &str, b: &Batch, host: &str) -> Value {
    json!({
        "id": id,
        "type": "message_batch",
        "processing_status": if b.canceled { "canceling" } else { "ended" },
        "request_counts": {
            "processing": 0,
            "succeeded": b.custom_ids.len(),
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "created_at": "2025-01-01T00:00:00Z",
        "ended_at": "2025-01-01T00:00:00Z",
        "expires_at": "2025-01-02T00:00:00Z",
        "archived_at": null,
        "cancel_initiated_at": if b.canceled { json!("2025-01-01T00:00:00Z") } else { Value::Null },
        "results_url": format!("http://{host}/v1/messages/batches/{id}/results"),
    })
}

fn host(req: &MockReq) -> &str {
    req.headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
}

fn owner(req: &MockReq) -> String {
    credential_of(&req.headers).unwrap_or("").to_owned()
}

fn not_found(id: &str) -> Response {
    let msg = format!("mock: no message batch {id} for this credential");
    error_response(Proto::Anthropic, StatusCode::NOT_FOUND, &msg, None)
}

#[derive(Deserialize)]
struct CreateRequest {
    requests: Vec<BatchRequest>,
}

#[derive(Deserialize)]
struct BatchRequest {
    custom_id: String,
    params: Value,
}

async fn create(req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Anthropic).await {
        return r;
    }
    let body: CreateRequest = match req.json(Proto::Anthropic) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.requests.is_empty() {
        let msg = "requests: at least one request is required";
        return error_response(Proto::Anthropic, StatusCode::BAD_REQUEST, msg, None);
    }
    let id = format!("msgbatch_mock_{}", req.seq);
    let batch = Batch {
        owner: owner(&req),
        model: body.requests[0].params["model"]
            .as_str()
            .unwrap_or("mock-claude")
            .to_owned(),
        custom_ids: body.requests.into_iter().map(|r| r.custom_id).collect(),
        canceled: false,
    };
    let out = object(&id, &batch, host(&req));
    req.stats.batches.lock().insert(id, batch);
    Json(out).into_response()
}

/// The batch `id` if the request's credential created it.
fn find(req: &MockReq, id: &str) -> Option<Batch> {
    let owner = owner(req);
    req.stats
        .batches
        .lock()
        .get(id)
        .filter(|b| b.owner == owner)
        .cloned()
}

async fn list(req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Anthropic).await {
        return r;
    }
    let owner = owner(&req);
    let host = host(&req);
    let data: Vec<Value> = req
        .stats
        .batches
        .lock()
        .iter()
        .rev()
        .filter(|(_, b)| b.owner == owner)
        .map(|(id, b)| object(id, b, host))
        .collect();
    Json(json!({
        "first_id": data.first().map(|b| b["id"].clone()),
        "last_id": data.last().map(|b| b["id"].clone()),
        "has_more": false,
        "data": data,
    }))
    .into_response()
}

async fn retrieve(Path(id): Path<String>, req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Anthropic).await {
        return r;
    }
    match find(&req, &id) {
        Some(b) => Json(object(&id, &b, host(&req))).into_response(),
        None => not_found(&id),
    }
}

async fn cancel(Path(id): Path<String>, req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Anthropic).await {
        return r;
    }
    if find(&req, &id).is_none() {
        return not_found(&id);
    }
    let mut all = req.stats.batches.lock();
    let Some(b) = all.get_mut(&id) else {
        return not_found(&id);
    };
    b.canceled = true;
    Json(object(&id, b, host(&req))).into_response()
}

async fn delete(Path(id): Path<String>, req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Anthropic).await {
        return r;
    }
    if find(&req, &id).is_none() {
        return not_found(&id);
    }
    req.stats.batches.lock().remove(&id);
    Json(json!({"id": id, "type": "message_batch_deleted"})).into_response()
}

async fn results(Path(id): Path<String>, req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Anthropic).await {
        return r;
    }
    let Some(b) = find(&req, &id) else {
        return not_found(&id);
    };
    let mut lines = String::new();
    for (i, custom_id) in b.custom_ids.iter().enumerate() {
        let line = json!({
            "custom_id": custom_id,
            "result": {
                "type": "succeeded",
                "message": {
                    "id": format!("msg_{id}_{i}"),
                    "type": "message",
                    "role": "assistant",
                    "model": b.model,
                    "content": [{"type": "text", "text": MOCK_TEXT}],
                    "stop_reason": "end_turn",
                    "stop_sequence": null,
                    "usage": {"input_tokens": 5, "output_tokens": 8},
                },
            },
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let mut resp = lines.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/binary"),
    );
    resp
}
