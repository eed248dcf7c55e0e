//! The one intermediate shape every dialect maps to and from: a conversation request, a complete
//! answer, and the events of a streamed answer. It holds what at least two of the dialects can
//! say; what only one can say is dropped (logged at debug) or refused by that dialect's codec.
//!
//! Conventions every codec keeps:
//! - The system prompt is `Request::system` (one string per block), never a message.
//! - Tool results are [`Part::ToolResult`] parts of a [`Role::User`] message (Anthropic's and
//!   Gemini's way); the OpenAI codec turns them into `tool` messages and back.
//! - Tool call arguments are JSON text (`"{}"` when empty), as OpenAI carries them; codecs whose
//!   wire holds an object parse and print them.
//! - Token counts: `input` includes cached input (OpenAI's `prompt_tokens` meaning); Anthropic's
//!   `input_tokens` excludes what was read from or written to the cache, so its codec adds
//!   `cache_read_input_tokens` and `cache_creation_input_tokens` when decoding and subtracts
//!   them when encoding.

use serde_json::Value;

/// A model request: a conversation plus how to answer it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    /// The upstream model name (the router sets it; codecs whose model is in the URL leave it).
    pub model: String,
    /// System instructions, one entry per block, in order.
    pub system: Vec<String>,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Functions the model may call.
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    /// Most tokens to generate (the Anthropic encoder uses [`DEFAULT_MAX_TOKENS`] when absent).
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling (Anthropic, Gemini).
    pub top_k: Option<u64>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Random seed (OpenAI, Gemini).
    pub seed: Option<i64>,
    /// Presence penalty (OpenAI, Gemini).
    pub presence_penalty: Option<f64>,
    /// Frequency penalty (OpenAI, Gemini).
    pub frequency_penalty: Option<f64>,
    /// The answer is streamed.
    pub stream: bool,
    /// The caller asked for a final usage report in the stream (OpenAI `stream_options`).
    pub include_usage: bool,
    /// Plain text, any JSON object, or JSON matching a schema.
    pub response_format: Option<ResponseFormat>,
    /// Extended thinking / reasoning.
    pub reasoning: Option<ReasoningConfig>,
    /// An end-user id for abuse tracking (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
}

/// The Anthropic Messages API requires `max_tokens`; a request from a dialect where it is
/// optional gets this many.
pub const DEFAULT_MAX_TOKENS: u64 = 8192;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The caller (and tool results).
    User,
    /// The model.
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said, in order.
    pub content: Vec<Part>,
}

/// One piece of a message or answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text.
    Text(String),
    /// An image (user messages and tool results).
    Image(Image),
    /// A call the model made (assistant messages).
    ToolCall(ToolCall),
    /// The result of a call (user messages).
    ToolResult(ToolResult),
    /// The model's reasoning (assistant messages), where the dialect shows it.
    Reasoning(Reasoning),
}

/// An image, inline or by address.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// Base64 data with its media type (`image/png`).
    Base64 {
        /// MIME type.
        media_type: String,
        /// Base64 text (standard alphabet, padded), without a `data:` prefix.
        data: String,
    },
    /// An `http(s)` address (or a provider's file URI), with a media type when the dialect
    /// carries one.
    Url {
        /// The address.
        url: String,
        /// MIME type, when known.
        media_type: Option<String>,
    },
}

/// A function call the model made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The call's id (Gemini may omit it: its decoder makes `call_<n>` ids).
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments as JSON text (`"{}"` when none).
    pub arguments: String,
}

/// What a function call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The id of the call it answers.
    pub call_id: String,
    /// The function's name, when the dialect carries it (Gemini needs it: [`fill_tool_names`]
    /// finds it from the call).
    pub name: Option<String>,
    /// The output: text and images.
    pub content: Vec<Part>,
    /// The call failed (Anthropic `is_error`).
    pub is_error: bool,
}

/// The model's reasoning, as far as the dialect shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reasoning {
    /// The visible reasoning text (or its summary).
    pub text: String,
    /// Anthropic's signature over a thinking block (needed to send it back to Anthropic).
    pub signature: Option<String>,
    /// Anthropic's redacted thinking data, or OpenAI's encrypted reasoning content.
    pub encrypted: Option<String>,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// JSON Schema of its arguments (an object schema; `{"type":"object","properties":{}}` when
    /// the dialect gave none).
    pub parameters: Value,
    /// OpenAI structured-outputs strictness.
    pub strict: Option<bool>,
    /// Declared as a freeform tool (Responses API `custom`): the model writes its input as plain
    /// text. Dialects without freeform tools see a function with one string parameter, `input`
    /// ([`FREEFORM_INPUT`]), and the call's arguments are `{"input": "<text>"}`.
    pub freeform: bool,
}

/// The one parameter of a freeform tool presented as a function.
pub const FREEFORM_INPUT: &str = "input";

/// Whether the model must call a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool call.
    None,
    /// Some tool call.
    Required,
    /// This function.
    Function(String),
}

/// The answer's format.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Plain text (the default).
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema's name (OpenAI requires one: `response` when the dialect has none).
        name: String,
        /// The JSON Schema.
        schema: Value,
        /// OpenAI structured-outputs strictness.
        strict: Option<bool>,
    },
}

/// How much the model should think before answering.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReasoningConfig {
    /// OpenAI's effort (`minimal`, `low`, `medium`, `high`).
    pub effort: Option<String>,
    /// A budget in tokens (Anthropic `thinking.budget_tokens`, Gemini `thinkingBudget`).
    pub budget_tokens: Option<u64>,
    /// The caller wants the reasoning (or its summary) in the answer.
    pub include: bool,
}

impl ReasoningConfig {
    /// The effort as a budget: the configured budget, else low 1,024, medium 8,192, high
    /// 24,576 tokens (minimal: 0, no thinking).
    pub fn budget(&self) -> Option<u64> {
        self.budget_tokens
            .or_else(|| match self.effort.as_deref()? {
                "minimal" | "none" => Some(0),
                "low" => Some(1024),
                "medium" => Some(8192),
                "high" => Some(24576),
                _ => None,
            })
    }

    /// The budget as an effort: the configured effort, else up to 2,048 tokens low, up to
    /// 12,288 medium, more high (0: minimal).
    pub fn effort(&self) -> Option<&str> {
        if let Some(e) = self.effort.as_deref() {
            return Some(e);
        }
        Some(match self.budget_tokens? {
            0 => "minimal",
            1..=2048 => "low",
            2049..=12288 => "medium",
            _ => "high",
        })
    }
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    /// The upstream's id for the answer (codecs keep it; a dialect's prefix is not added).
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// When it was made, in Unix seconds (0 when the dialect does not say: the gateway fills it
    /// in from its clock).
    pub created: u64,
    /// Text, reasoning and tool calls, in order.
    pub content: Vec<Part>,
    /// Why generation stopped.
    pub stop: StopReason,
    /// Tokens used.
    pub usage: TokenUsage,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StopReason {
    /// The model finished its turn.
    #[default]
    EndTurn,
    /// The token limit was reached.
    MaxTokens,
    /// A stop sequence was generated (which one, when the dialect says).
    StopSequence(Option<String>),
    /// The model called tools and waits for their results.
    ToolUse,
    /// The answer was withheld or cut by a safety filter (or refused).
    ContentFilter,
    /// Anything else the upstream reported (its own word, for logs).
    Other(String),
}

/// Tokens used by one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    /// Input tokens, cached ones included.
    pub input: u64,
    /// Output tokens, reasoning included.
    pub output: u64,
    /// Input tokens read from the provider's cache, when reported.
    pub cached_input: Option<u64>,
    /// Input tokens written to the provider's cache (Anthropic), when reported.
    pub cache_creation: Option<u64>,
    /// Output tokens spent on reasoning, when reported.
    pub reasoning: Option<u64>,
}

impl From<TokenUsage> for crate::wire::usage::Usage {
    fn from(u: TokenUsage) -> Self {
        Self {
            input_tokens: Some(u.input),
            output_tokens: Some(u.output),
            total_tokens: Some(u.total()),
            cached_input_tokens: u.cached_input,
        }
    }
}

impl TokenUsage {
    /// Input and output together, saturating: the counts come from the upstream (found by the
    /// `translate` fuzz target: two counts near `u64::MAX` overflowed the sum).
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }
}

/// One event of a streamed answer, in the order the upstream produced them. A decoder emits
/// [`Event::Start`] first; block boundaries are implicit (a text delta after a tool call starts
/// a new text block), so encoders open and close their dialect's blocks themselves.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The answer begins.
    Start {
        /// The upstream's id for the answer.
        id: String,
        /// The model that answers.
        model: String,
    },
    /// More answer text.
    Text(String),
    /// More reasoning text.
    Reasoning(String),
    /// The signature of the reasoning so far (Anthropic), or its encrypted form.
    ReasoningSignature(String),
    /// A tool call begins: `index` counts the answer's tool calls from 0.
    ToolCallStart {
        /// The call's ordinal in this answer.
        index: usize,
        /// The call's id.
        id: String,
        /// The function's name.
        name: String,
    },
    /// More of tool call `index`'s arguments (JSON text, split anywhere).
    ToolCallArgs {
        /// The call's ordinal in this answer.
        index: usize,
        /// The next piece of the arguments.
        fragment: String,
    },
    /// Tokens used so far (cumulative: a later report replaces an earlier one).
    Usage(TokenUsage),
    /// Why generation stopped (the answer's content is complete).
    Stop(StopReason),
    /// The upstream reported a failure inside the stream.
    Error {
        /// The HTTP status the failure would have had.
        status: u16,
        /// The upstream's message.
        message: String,
    },
}

/// Sets each tool result's missing function name from the call it answers (Gemini's function
/// responses need the name; OpenAI's tool messages carry only the call id).
pub fn fill_tool_names(messages: &mut [Message]) {
    let mut names: Vec<(String, String)> = Vec::new();
    for m in messages.iter_mut() {
        for part in &mut m.content {
            match part {
                Part::ToolCall(c) => names.push((c.id.clone(), c.name.clone())),
                Part::ToolResult(r) if r.name.is_none() => {
                    r.name = names
                        .iter()
                        .rev()
                        .find(|(id, _)| *id == r.call_id)
                        .map(|(_, n)| n.clone());
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effort_and_budget_map_both_ways() {
        let by_effort = |e: &str| ReasoningConfig {
            effort: Some(e.into()),
            ..Default::default()
        };
        assert_eq!(by_effort("low").budget(), Some(1024));
        assert_eq!(by_effort("high").budget(), Some(24576));
        let by_budget = |b| ReasoningConfig {
            budget_tokens: Some(b),
            ..Default::default()
        };
        assert_eq!(by_budget(1024).effort(), Some("low"));
        assert_eq!(by_budget(8192).effort(), Some("medium"));
        assert_eq!(by_budget(30000).effort(), Some("high"));
        assert_eq!(by_budget(30000).budget(), Some(30000));
        assert_eq!(ReasoningConfig::default().budget(), None);
    }

    #[test]
    fn tool_results_get_the_name_of_the_call_they_answer() {
        let mut messages = vec![
            Message {
                role: Role::Assistant,
                content: vec![Part::ToolCall(ToolCall {
                    id: "c1".into(),
                    name: "weather".into(),
                    arguments: "{}".into(),
                })],
            },
            Message {
                role: Role::User,
                content: vec![Part::ToolResult(ToolResult {
                    call_id: "c1".into(),
                    name: None,
                    content: vec![Part::Text("sunny".into())],
                    is_error: false,
                })],
            },
        ];
        fill_tool_names(&mut messages);
        let Part::ToolResult(r) = &messages[1].content[0] else {
            panic!("not a result")
        };
        assert_eq!(r.name.as_deref(), Some("weather"));
    }
}
