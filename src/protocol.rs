//! Which client protocol a request speaks, which operation it asks for, and which protocol a
//! backend speaks ([`BackendKind`], parsed by `config` as a backend's `type`).
//!
//! These are domain values: the API layer picks them from the route, the upstream layer uses them to
//! build the outbound request, the pool to present a credential the backend's way, and the error
//! layer uses them to answer in the caller's shape.
//!
//! Some paths are shared by the protocols (`/v1/models`, `/v1/models/{id}`, the same without
//! `/v1`, and any unknown path): there [`Protocol::of_request`] tells the caller's protocol from
//! its credential style and headers — a Gemini client sends `x-goog-api-key`, `?key=` or
//! `x-goog-api-client`; an Anthropic client sends `anthropic-version`; anything else is taken
//! for an OpenAI client.

use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

/// A client-facing wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI Chat Completions / Responses / Embeddings / Models.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `v1beta`.
    Gemini,
}

impl Protocol {
    /// The protocol a path belongs to, when the path alone says it (`None` for paths the
    /// protocols share, and unknown paths).
    pub fn of_path(path: &str) -> Option<Protocol> {
        let unversioned = path
            .strip_prefix("/v1")
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path);
        if path.starts_with("/v1beta/") || path == "/v1beta" {
            return Some(Protocol::Gemini);
        }
        if let Some(target) = unversioned.strip_prefix("/models/") {
            return target.contains(':').then_some(Protocol::Gemini);
        }
        if path.starts_with("/v1/messages") {
            return Some(Protocol::Anthropic);
        }
        const OPENAI: &[&str] = &[
            "/chat/completions",
            "/completions",
            "/responses",
            "/embeddings",
            "/moderations",
        ];
        OPENAI
            .iter()
            .any(|p| {
                unversioned == *p
                    || unversioned
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .then_some(Protocol::OpenAi)
    }

    /// The caller's protocol: the path's when it has one, else the credential style and
    /// headers' (see the module documentation).
    pub fn of_request(path: &str, headers: &HeaderMap, query: Option<&str>) -> Protocol {
        Self::of_path(path).unwrap_or_else(|| Self::of_headers(headers, query))
    }

    /// The caller's protocol by its credential style and headers alone.
    pub fn of_headers(headers: &HeaderMap, query: Option<&str>) -> Protocol {
        let key_in_query = query.is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes())
                .any(|(k, _)| k == crate::secret::CREDENTIAL_QUERY_PARAM)
        });
        if key_in_query
            || headers.contains_key("x-goog-api-key")
            || headers.contains_key("x-goog-api-client")
        {
            Protocol::Gemini
        } else if headers.contains_key("anthropic-version") {
            Protocol::Anthropic
        } else {
            Protocol::OpenAi
        }
    }

    /// The backend type that speaks this protocol natively (passthrough without translation).
    pub fn native_backend(self) -> BackendKind {
        match self {
            Protocol::OpenAi => BackendKind::Openai,
            Protocol::Anthropic => BackendKind::Anthropic,
            Protocol::Gemini => BackendKind::Gemini,
        }
    }

    /// Human name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::OpenAi => "OpenAI",
            Protocol::Anthropic => "Anthropic",
            Protocol::Gemini => "Gemini",
        }
    }
}

/// The wire protocol a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// Any OpenAI-compatible server (OpenAI, OpenRouter, Groq, DeepSeek, Mistral, vLLM, Ollama).
    Openai,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini `v1beta` API.
    Gemini,
    /// The Gemini CLI's Google login: Gemini through the Code Assist API (`v1internal`), paid
    /// for by the user's Code Assist project (a personal-subscription connector).
    GeminiCli,
    /// The Codex CLI's ChatGPT login: the Responses API of ChatGPT's Codex backend, paid for
    /// by the user's ChatGPT plan (a personal-subscription connector).
    Codex,
    /// Qwen Code's Qwen login: the OpenAI-compatible Qwen portal at the account's own resource
    /// URL (a personal-subscription connector).
    QwenCode,
    /// The Kiro IDE's login (AWS Builder ID, Identity Center or a social login):
    /// CodeWhisperer's `generateAssistantResponse`, answering with an AWS event stream (a
    /// personal-subscription connector).
    Kiro,
}

impl BackendKind {
    /// The base URL used when none is configured.
    pub fn default_base_url(self) -> &'static str {
        match self {
            BackendKind::Openai => "https://api.openai.com/v1",
            BackendKind::Anthropic => "https://api.anthropic.com",
            BackendKind::Gemini => "https://generativelanguage.googleapis.com",
            BackendKind::GeminiCli => "https://cloudcode-pa.googleapis.com",
            BackendKind::Codex => "https://chatgpt.com/backend-api/codex",
            BackendKind::QwenCode => "https://dashscope.aliyuncs.com/compatible-mode/v1",
            BackendKind::Kiro => "https://q.us-east-1.amazonaws.com",
        }
    }

    /// The client protocol family of this backend's answers (how its model lists and error
    /// documents read).
    pub fn protocol(self) -> Protocol {
        match self {
            BackendKind::Openai | BackendKind::Codex | BackendKind::QwenCode => Protocol::OpenAi,
            BackendKind::Anthropic | BackendKind::Kiro => Protocol::Anthropic,
            BackendKind::Gemini | BackendKind::GeminiCli => Protocol::Gemini,
        }
    }

    /// Lower-case name, as in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Openai => "openai",
            BackendKind::Anthropic => "anthropic",
            BackendKind::Gemini => "gemini",
            BackendKind::GeminiCli => "gemini_cli",
            BackendKind::Codex => "codex",
            BackendKind::QwenCode => "qwen_code",
            BackendKind::Kiro => "kiro",
        }
    }

    /// True for the personal-subscription connectors: their credentials are a person's CLI
    /// login, so single-user mode only; every request to them is translated (they speak no
    /// client protocol as it is).
    pub fn is_connector(self) -> bool {
        matches!(
            self,
            BackendKind::GeminiCli | BackendKind::Codex | BackendKind::QwenCode | BackendKind::Kiro
        )
    }

    /// The models a connector offers (it has no model list to ask): listed by `/v1/models`.
    /// `None` for the API backends, whose lists are fetched.
    pub fn known_models(self) -> Option<&'static [&'static str]> {
        match self {
            BackendKind::GeminiCli => Some(&[
                "gemini-2.5-pro",
                "gemini-2.5-flash",
                "gemini-2.5-flash-lite",
                "gemini-3-pro-preview",
            ]),
            BackendKind::Codex => {
                Some(&["gpt-5", "gpt-5-codex", "gpt-5.1-codex", "codex-mini-latest"])
            }
            BackendKind::QwenCode => {
                Some(&["qwen3-coder-plus", "qwen3-coder-flash", "coder-model"])
            }
            BackendKind::Kiro => Some(&[
                "auto",
                "claude-sonnet-4.5",
                "claude-sonnet-4",
                "claude-haiku-4.5",
                "claude-opus-4.5",
            ]),
            BackendKind::Openai | BackendKind::Anthropic | BackendKind::Gemini => None,
        }
    }
}

/// How an OpenAI-type backend serves the Responses API (`backends.<name>.responses_api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponsesApi {
    /// The backend has `/responses` itself: Responses requests pass through (OpenAI, Azure,
    /// OpenRouter, recent vLLM).
    #[default]
    Native,
    /// The backend has only `/chat/completions` (DeepSeek, Groq, Ollama, most
    /// OpenAI-compatible servers): the gateway translates Responses requests into chat
    /// completions and the answers back.
    ChatCompletions,
}

/// One client-facing operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions` (legacy text completions, fill-in-the-middle)
    Completions,
    /// `POST /v1/responses`
    Responses,
    /// `POST /v1/responses/input_tokens`
    ResponsesInputTokens,
    /// `POST /v1/responses/compact`
    ResponsesCompact,
    /// `GET /v1/responses/{id}`
    ResponseRetrieve,
    /// `DELETE /v1/responses/{id}`
    ResponseDelete,
    /// `POST /v1/responses/{id}/cancel`
    ResponseCancel,
    /// `GET /v1/responses/{id}/input_items`
    ResponseInputItems,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/moderations`
    Moderations,
    /// `POST /v1/messages`
    Messages,
    /// `POST /v1/messages/count_tokens`
    CountTokens,
    /// `POST /v1/messages/batches`
    MessageBatchCreate,
    /// `GET /v1/messages/batches`
    MessageBatchList,
    /// `GET /v1/messages/batches/{id}`
    MessageBatchRetrieve,
    /// `GET /v1/messages/batches/{id}/results`
    MessageBatchResults,
    /// `POST /v1/messages/batches/{id}/cancel`
    MessageBatchCancel,
    /// `DELETE /v1/messages/batches/{id}`
    MessageBatchDelete,
    /// `POST /v1beta/models/{m}:generateContent`
    GenerateContent,
    /// `POST /v1beta/models/{m}:streamGenerateContent`
    StreamGenerateContent,
    /// `POST /v1beta/models/{m}:countTokens`
    GeminiCountTokens,
    /// `POST /v1beta/models/{m}:embedContent`
    EmbedContent,
    /// `POST /v1beta/models/{m}:batchEmbedContents`
    BatchEmbedContents,
}

impl Operation {
    /// The protocol the operation belongs to.
    pub fn protocol(self) -> Protocol {
        use Operation::*;
        match self {
            ChatCompletions | Completions | Responses | ResponsesInputTokens | ResponsesCompact
            | ResponseRetrieve | ResponseDelete | ResponseCancel | ResponseInputItems
            | Embeddings | Moderations => Protocol::OpenAi,
            Messages | CountTokens | MessageBatchCreate | MessageBatchList
            | MessageBatchRetrieve | MessageBatchResults | MessageBatchCancel
            | MessageBatchDelete => Protocol::Anthropic,
            GenerateContent
            | StreamGenerateContent
            | GeminiCountTokens
            | EmbedContent
            | BatchEmbedContents => Protocol::Gemini,
        }
    }

    /// The HTTP method of the operation (the same upstream as from the client).
    pub fn method(self) -> Method {
        use Operation::*;
        match self {
            ResponseRetrieve | ResponseInputItems | MessageBatchList | MessageBatchRetrieve
            | MessageBatchResults => Method::GET,
            ResponseDelete | MessageBatchDelete => Method::DELETE,
            _ => Method::POST,
        }
    }

    /// True for operations on a stored object named by its id in the path (a stored
    /// response, a message batch): they name no model.
    pub fn on_object(self) -> bool {
        use Operation::*;
        matches!(
            self,
            ResponseRetrieve
                | ResponseDelete
                | ResponseCancel
                | ResponseInputItems
                | MessageBatchRetrieve
                | MessageBatchResults
                | MessageBatchCancel
                | MessageBatchDelete
        )
    }

    /// True for operations whose answer is an object the provider keeps for later calls, visible
    /// only to the account that created it (a stored response, a message batch).
    pub fn creates_object(self) -> bool {
        matches!(self, Operation::Responses | Operation::MessageBatchCreate)
    }

    /// True for operations whose request body may leave the model out (the provider has a
    /// default, or the model is inside each request of a batch): without one, the request goes
    /// to the backend the caller names or the protocol's default backend, its body unchanged.
    pub fn model_optional(self) -> bool {
        matches!(
            self,
            Operation::Moderations
                | Operation::ResponsesInputTokens
                | Operation::ResponsesCompact
                | Operation::MessageBatchCreate
        )
    }

    /// True when the usage an answer reports was spent by this request and is deducted from
    /// the credential's quota (not for token counts, moderation, or objects read back).
    pub fn spends_tokens(self) -> bool {
        use Operation::*;
        matches!(
            self,
            ChatCompletions
                | Completions
                | Responses
                | ResponsesCompact
                | Embeddings
                | Messages
                | GenerateContent
                | StreamGenerateContent
                | EmbedContent
                | BatchEmbedContents
        )
    }

    /// Name used in logs.
    pub fn name(self) -> &'static str {
        use Operation::*;
        match self {
            ChatCompletions => "chat_completions",
            Completions => "completions",
            Responses => "responses",
            ResponsesInputTokens => "responses_input_tokens",
            ResponsesCompact => "responses_compact",
            ResponseRetrieve => "response_retrieve",
            ResponseDelete => "response_delete",
            ResponseCancel => "response_cancel",
            ResponseInputItems => "response_input_items",
            Embeddings => "embeddings",
            Moderations => "moderations",
            Messages => "messages",
            CountTokens => "count_tokens",
            MessageBatchCreate => "message_batch_create",
            MessageBatchList => "message_batch_list",
            MessageBatchRetrieve => "message_batch_retrieve",
            MessageBatchResults => "message_batch_results",
            MessageBatchCancel => "message_batch_cancel",
            MessageBatchDelete => "message_batch_delete",
            GenerateContent => "generate_content",
            StreamGenerateContent => "stream_generate_content",
            GeminiCountTokens => "gemini_count_tokens",
            EmbedContent => "embed_content",
            BatchEmbedContents => "batch_embed_contents",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_protocols() {
        let p = Protocol::of_path;
        assert_eq!(p("/v1/messages"), Some(Protocol::Anthropic));
        assert_eq!(p("/v1/messages/batches/x"), Some(Protocol::Anthropic));
        assert_eq!(
            p("/v1beta/models/x:generateContent"),
            Some(Protocol::Gemini)
        );
        assert_eq!(p("/v1/chat/completions"), Some(Protocol::OpenAi));
        assert_eq!(p("/responses/resp_1/cancel"), Some(Protocol::OpenAi));
        assert_eq!(p("/v1/completions"), Some(Protocol::OpenAi));
        assert_eq!(p("/v1/models/g:generateContent"), Some(Protocol::Gemini));
        assert_eq!(p("/models/g:generateContent"), Some(Protocol::Gemini));
        // Shared and unknown paths: the headers decide.
        for shared in ["/v1/models", "/v1/models/x", "/models", "/nope", "/v1/nope"] {
            assert_eq!(p(shared), None, "{shared}");
        }
        assert_eq!(p("/v1/responsesX"), None);
    }

    #[test]
    fn shared_paths_take_the_callers_credential_style() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, http::HeaderValue::from_static(v));
            }
            h
        };
        let r = |h: &HeaderMap, q| Protocol::of_request("/v1/models", h, q);
        assert_eq!(r(&with(&[("x-goog-api-key", "k")]), None), Protocol::Gemini);
        assert_eq!(
            r(
                &with(&[("x-goog-api-client", "google-genai-sdk/3.6.1")]),
                None
            ),
            Protocol::Gemini
        );
        assert_eq!(r(&HeaderMap::new(), Some("k%65y=abc")), Protocol::Gemini);
        assert_eq!(
            r(
                &with(&[("x-api-key", "k"), ("anthropic-version", "2023-06-01")]),
                None
            ),
            Protocol::Anthropic
        );
        assert_eq!(
            r(&with(&[("authorization", "Bearer k")]), None),
            Protocol::OpenAi
        );
        assert_eq!(r(&HeaderMap::new(), Some("limit=2")), Protocol::OpenAi);
        // The path wins where it is specific.
        assert_eq!(
            Protocol::of_request(
                "/v1/chat/completions",
                &with(&[("x-goog-api-key", "k")]),
                None
            ),
            Protocol::OpenAi
        );
    }
}
