//! Which client protocol a request speaks, which operation it asks for, and which protocol a
//! backend speaks ([`BackendKind`], parsed by `config` as a backend's `type`).
//!
//! These are domain values: the API layer picks them from the route, the upstream layer uses them to
//! build the outbound request, the pool to present a credential the backend's way, and the error
//! layer uses them to answer in the caller's shape.

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
    /// The protocol of a request path, for answers produced before a handler runs (auth, 404).
    pub fn from_path(path: &str) -> Protocol {
        if path.starts_with("/v1/messages") {
            Protocol::Anthropic
        } else if path.starts_with("/v1beta/")
            || path == "/v1beta"
            || (path.starts_with("/v1/models/") && path.contains(':'))
        {
            Protocol::Gemini
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
}

impl BackendKind {
    /// The base URL used when none is configured.
    pub fn default_base_url(self) -> &'static str {
        match self {
            BackendKind::Openai => "https://api.openai.com/v1",
            BackendKind::Anthropic => "https://api.anthropic.com",
            BackendKind::Gemini => "https://generativelanguage.googleapis.com",
        }
    }

    /// Lower-case name, as in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Openai => "openai",
            BackendKind::Anthropic => "anthropic",
            BackendKind::Gemini => "gemini",
        }
    }
}

/// One client-facing operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/responses`
    Responses,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/messages`
    Messages,
    /// `POST /v1/messages/count_tokens`
    CountTokens,
    /// `POST /v1beta/models/{m}:generateContent`
    GenerateContent,
    /// `POST /v1beta/models/{m}:streamGenerateContent`
    StreamGenerateContent,
    /// `POST /v1beta/models/{m}:countTokens`
    GeminiCountTokens,
}

impl Operation {
    /// The protocol the operation belongs to.
    pub fn protocol(self) -> Protocol {
        match self {
            Operation::ChatCompletions | Operation::Responses | Operation::Embeddings => {
                Protocol::OpenAi
            }
            Operation::Messages | Operation::CountTokens => Protocol::Anthropic,
            Operation::GenerateContent
            | Operation::StreamGenerateContent
            | Operation::GeminiCountTokens => Protocol::Gemini,
        }
    }

    /// Name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "chat_completions",
            Operation::Responses => "responses",
            Operation::Embeddings => "embeddings",
            Operation::Messages => "messages",
            Operation::CountTokens => "count_tokens",
            Operation::GenerateContent => "generate_content",
            Operation::StreamGenerateContent => "stream_generate_content",
            Operation::GeminiCountTokens => "gemini_count_tokens",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_protocols() {
        assert_eq!(Protocol::from_path("/v1/messages"), Protocol::Anthropic);
        assert_eq!(
            Protocol::from_path("/v1/messages/count_tokens"),
            Protocol::Anthropic
        );
        assert_eq!(
            Protocol::from_path("/v1beta/models/x:generateContent"),
            Protocol::Gemini
        );
        assert_eq!(
            Protocol::from_path("/v1/chat/completions"),
            Protocol::OpenAi
        );
        assert_eq!(Protocol::from_path("/nope"), Protocol::OpenAi);
        assert_eq!(
            Protocol::from_path("/v1/models/g:generateContent"),
            Protocol::Gemini
        );
        assert_eq!(Protocol::from_path("/v1/models"), Protocol::OpenAi);
    }
}
