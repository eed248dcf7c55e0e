//! OpenAI's other model operations: legacy text completions (`POST /v1/completions`, JSON and
//! SSE, as autocomplete and fill-in-the-middle tools call them) and moderations
//! (`POST /v1/moderations`).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::Proto;
use super::stream::Script;
use super::{CREATED, MockReq, MockStats, pieces};

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<MockStats>> {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/moderations", post(moderations))
}

#[derive(Deserialize)]
struct CompletionRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<Value>,
}

async fn completions(req: MockReq) -> Response {
    match completions_inner(&req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn completions_inner(req: &MockReq) -> Result<Response, Response> {
    let d = req.prelude(Proto::OpenAi).await?;
    let body: CompletionRequest = req.json(Proto::OpenAi)?;
    let model = body.model.as_deref().unwrap_or("mock-gpt-instruct");
    let id = format!("cmpl-mock-{}", req.seq);
    let prompt = req.prompt_tokens();
    let output = d.chunks as u64;
    let usage = json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
    });
    let chunk = |text: &str, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "text_completion",
            "created": CREATED,
            "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
        })
    };
    if !body.stream.unwrap_or(false) {
        let mut whole = chunk(d.text(), Some("stop"));
        whole["usage"] = usage;
        return Ok(Json(whole).into_response());
    }
    let include_usage = body
        .stream_options
        .as_ref()
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut s = Script::new(&d);
    let n = d.chunks;
    for (i, piece) in pieces(d.text(), n).enumerate() {
        let finish = (i + 1 == n).then_some("stop");
        s.piece(|s| s.sse(None, &chunk(piece, finish)));
    }
    if include_usage {
        let mut last = chunk("", None);
        last["choices"] = json!([]);
        last["usage"] = usage;
        s.sse(None, &last);
    }
    s.raw(b"data: [DONE]\n\n");
    Ok(s.into_response(&req.stats, "text/event-stream"))
}

/// The categories every moderation result lists (none is ever flagged).
const CATEGORIES: [&str; 5] = ["harassment", "hate", "self-harm", "sexual", "violence"];

async fn moderations(req: MockReq) -> Response {
    if let Err(r) = req.prelude(Proto::OpenAi).await {
        return r;
    }
    let body: Value = match req.json(Proto::OpenAi) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let inputs = match &body["input"] {
        Value::Array(items) => items.len().max(1),
        _ => 1,
    };
    let each = |v: Value| -> serde_json::Map<String, Value> {
        CATEGORIES
            .iter()
            .map(|c| ((*c).to_owned(), v.clone()))
            .collect()
    };
    let result = json!({
        "flagged": false,
        "categories": each(json!(false)),
        "category_scores": each(json!(0.0)),
    });
    Json(json!({
        "id": format!("modr-mock-{}", req.seq),
        "model": body["model"].as_str().unwrap_or("omni-moderation-latest"),
        "results": vec![result; inputs],
    }))
    .into_response()
}
