//! Upstream URLs: where an endpoint lives on a backend (fixed segments, a client-named model or
//! object id only as one checked, percent-encoded segment), and what of a URL is a secret or may
//! be shown (userinfo and query values are credentials; operators see neither).

use super::Endpoint;
use crate::protocol::{BackendKind, Operation};
use crate::secret::Secret;

/// True for the name of a header an operator configures that carries a secret (`api-key`,
/// `x-auth-token`, …): its value is scrubbed and masked like a pool secret.
pub(super) fn names_a_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "auth",
        "key",
        "token",
        "secret",
        "cookie",
        "signature",
        "password",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The credentials a URL carries: the userinfo (and the Basic header reqwest makes of it) and
/// every query value long enough to be a key.
pub(super) fn url_secrets(url: &reqwest::Url) -> Vec<Secret> {
    use base64::Engine as _;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut out = Vec::new();
    let user = decode(url.username());
    let password = url.password().map(decode);
    if !user.is_empty() || password.is_some() {
        let pair = format!("{user}:{}", password.as_deref().unwrap_or(""));
        out.push(Secret::new(
            base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()),
        ));
        out.push(Secret::new(user));
        if let Some(p) = password {
            out.push(Secret::new(p));
        }
    }
    for (_, value) in url.query_pairs() {
        out.push(Secret::new(value.into_owned()));
    }
    out
}

/// `url` without its userinfo.
fn without_userinfo(url: &reqwest::Url) -> reqwest::Url {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown
}

/// `url` without userinfo and query: what may be shown to operators.
pub fn display_url(url: &reqwest::Url) -> String {
    let mut shown = without_userinfo(url);
    shown.set_query(None);
    shown.to_string().trim_end_matches('/').to_owned()
}

/// `url` without userinfo (its query kept: masked where it is shown), for the wire capture.
pub fn capture_url(url: &reqwest::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    without_userinfo(url).to_string()
}

/// Why a model id cannot be put into an upstream URL path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathModelError {
    /// The id is empty, `.` or `..`.
    #[error("the model id is empty or a relative path segment")]
    Empty,
    /// The id contains `/ \ ? # %` or a control character.
    #[error(
        "the model id contains a character model ids cannot have (/ \\ ? # % or a control character)"
    )]
    Character,
}

/// Checks a model id that goes into an upstream URL path (`GET /v1/models/{id}`, Gemini's
/// `models/{model}:generateContent`): it must name one path segment and nothing else.
pub fn check_path_model(model: &str) -> Result<(), PathModelError> {
    if model.is_empty() || model == "." || model == ".." {
        return Err(PathModelError::Empty);
    }
    if model
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '?' | '#' | '%') || c.is_control())
    {
        return Err(PathModelError::Character);
    }
    Ok(())
}

/// The URL of `endpoint` on a backend of `kind` at `base`: fixed segments appended to the
/// base path, a model id or object id as one percent-encoded segment (checked by
/// [`check_path_model`]), then fixed segments again (`…/{id}/cancel`).
pub(super) fn endpoint_url(
    base: &reqwest::Url,
    kind: BackendKind,
    endpoint: Endpoint<'_>,
) -> Result<reqwest::Url, String> {
    use Operation::*;
    let arg = |a: &str| Some(a.to_owned());
    let method = |m: &str, name: &str| Some(format!("{m}:{name}"));
    let (fixed, segment, suffix): (&[&str], Option<String>, &[&str]) = match (kind, endpoint) {
        // Kiro: one method; it has no model list either.
        (BackendKind::Kiro, _) => (&["generateAssistantResponse"], None, &[]),
        (
            BackendKind::Openai | BackendKind::Codex | BackendKind::QwenCode,
            Endpoint::ListModels,
        ) => (&["models"], None, &[]),
        (BackendKind::Anthropic, Endpoint::ListModels) => (&["v1", "models"], None, &[]),
        (BackendKind::Gemini, Endpoint::ListModels) => (&["v1beta", "models"], None, &[]),
        (
            BackendKind::Openai | BackendKind::Codex | BackendKind::QwenCode,
            Endpoint::GetModel(m),
        ) => (&["models"], arg(m), &[]),
        (BackendKind::Anthropic, Endpoint::GetModel(m)) => (&["v1", "models"], arg(m), &[]),
        (BackendKind::Gemini, Endpoint::GetModel(m)) => (&["v1beta", "models"], arg(m), &[]),
        // The Code Assist API: fixed methods of `v1internal`, the model in the body's envelope;
        // it has no model list (a connector's models are known, `BackendKind::known_models`).
        (BackendKind::GeminiCli, Endpoint::ListModels | Endpoint::GetModel(_)) => {
            (&["v1internal:loadCodeAssist"], None, &[])
        }
        (BackendKind::GeminiCli, Endpoint::Op(op, _)) => match op {
            StreamGenerateContent => (&["v1internal:streamGenerateContent"], None, &[]),
            GeminiCountTokens => (&["v1internal:countTokens"], None, &[]),
            _ => (&["v1internal:generateContent"], None, &[]),
        },
        (_, Endpoint::Op(op, a)) => match op {
            ChatCompletions => (&["chat", "completions"], None, &[]),
            Completions => (&["completions"], None, &[]),
            Responses => (&["responses"], None, &[]),
            ResponsesInputTokens => (&["responses", "input_tokens"], None, &[]),
            ResponsesCompact => (&["responses", "compact"], None, &[]),
            ResponseRetrieve | ResponseDelete => (&["responses"], arg(a), &[]),
            ResponseCancel => (&["responses"], arg(a), &["cancel"]),
            ResponseInputItems => (&["responses"], arg(a), &["input_items"]),
            Embeddings => (&["embeddings"], None, &[]),
            Moderations => (&["moderations"], None, &[]),
            Messages => (&["v1", "messages"], None, &[]),
            CountTokens => (&["v1", "messages", "count_tokens"], None, &[]),
            MessageBatchCreate | MessageBatchList => (&["v1", "messages", "batches"], None, &[]),
            MessageBatchRetrieve | MessageBatchDelete => {
                (&["v1", "messages", "batches"], arg(a), &[])
            }
            MessageBatchResults => (&["v1", "messages", "batches"], arg(a), &["results"]),
            MessageBatchCancel => (&["v1", "messages", "batches"], arg(a), &["cancel"]),
            GenerateContent => (&["v1beta", "models"], method(a, "generateContent"), &[]),
            StreamGenerateContent => (
                &["v1beta", "models"],
                method(a, "streamGenerateContent"),
                &[],
            ),
            GeminiCountTokens => (&["v1beta", "models"], method(a, "countTokens"), &[]),
            EmbedContent => (&["v1beta", "models"], method(a, "embedContent"), &[]),
            BatchEmbedContents => (&["v1beta", "models"], method(a, "batchEmbedContents"), &[]),
        },
    };
    // What the client named (a model or an object id) goes into the path only as one segment.
    if segment.is_some()
        && let Endpoint::GetModel(a) | Endpoint::Op(_, a) = endpoint
    {
        check_path_model(a).map_err(|e| e.to_string())?;
    }
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| "the base URL cannot take a path".to_owned())?;
        path.pop_if_empty().extend(fixed);
        if let Some(segment) = &segment {
            path.push(segment);
        }
        path.extend(suffix);
    }
    Ok(url)
}
