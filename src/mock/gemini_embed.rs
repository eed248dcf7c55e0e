//! Gemini embeddings: `POST /v1beta/models/{model}:embedContent` and `:batchEmbedContents`
//! (dispatched from `gemini::model_action`). Vectors are deterministic per text; like Google's
//! API, every request of a batch must name the model of the path (`models/{model}`).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use super::MockReq;
use super::errors::{Proto, error_response};
use super::openai::{embedding_vector, fnv1a};

/// Default embedding length (`outputDimensionality` changes it).
const DIMENSIONS: usize = 8;

/// The embedding of one `EmbedContentRequest` (its `content.parts[].text`).
fn embed(request: &Value) -> Value {
    let text: String = request["content"]["parts"]
        .as_array()
        .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default();
    let dims = request["outputDimensionality"]
        .as_u64()
        .map_or(DIMENSIONS, |d| d.clamp(1, 65_536) as usize);
    json!({"values": embedding_vector(fnv1a(text.as_bytes()), dims)})
}

/// Answers `action` (`embedContent` or `batchEmbedContents`) for `model`.
pub(crate) async fn answer(model: &str, action: &str, req: &MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::Google).await {
        return r;
    }
    let body: Value = match req.json(Proto::Google) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let bad = |msg: &str| error_response(Proto::Google, StatusCode::BAD_REQUEST, msg, None);
    if action == "embedContent" {
        return Json(json!({"embedding": embed(&body)})).into_response();
    }
    let Some(requests) = body["requests"].as_array().filter(|r| !r.is_empty()) else {
        return bad("requests: at least one request is required");
    };
    let want = format!("models/{model}");
    if let Some(other) = requests.iter().find(|r| r["model"].as_str() != Some(&want)) {
        return bad(&format!(
            "mock: every request must name {want}, got {}",
            other["model"]
        ));
    }
    let embeddings: Vec<Value> = requests.iter().map(embed).collect();
    Json(json!({"embeddings": embeddings})).into_response()
}
