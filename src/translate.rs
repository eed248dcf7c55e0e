//! Protocol translation: a request in one dialect served by a backend that speaks another.
//!
//! One intermediate shape ([`model`]) and one codec per dialect, instead of a mapper per pair:
//! four dialects would need twelve pairwise mappers for requests, twelve for answers and twelve
//! for streams, each repeating the same knowledge of a dialect; with a hub each dialect's
//! knowledge is in one file ([`chat`], [`responses`], [`anthropic`], [`gemini`]) and a new
//! dialect costs one codec. The price is that the hub holds only what the dialects share — what
//! one dialect alone can say is dropped with a debug log, or refused with a 400 where dropping
//! it would change the answer (README's field table says which).
//!
//! A codec has six pieces: `decode_request`/`encode_request`, `decode_response`/
//! `encode_response` (whole JSON bodies), and a `StreamDecoder` (the upstream's SSE `data:`
//! payloads → [`Event`]s) and `StreamEncoder` ([`Event`]s → the caller's SSE bytes). Streams are
//! translated event by event as the upstream sends them ([`StreamTranslator`]): nothing waits
//! for the end of the answer except what a dialect can only say whole (a Gemini function call's
//! arguments, a Responses freeform tool's input, and the closing events that carry the stop
//! reason with the final usage: Anthropic's `message_delta`, Gemini's last chunk,
//! `response.completed`).

pub mod anthropic;
pub mod chat;
pub mod code_assist;
pub mod codex;
pub mod collect;
mod fields;
pub mod gemini;
mod json_text;
pub mod kiro;
pub mod model;
#[cfg(test)]
mod props_tests;
pub mod responses;
#[cfg(test)]
mod test_util;

pub use model::{Event, Request, Response};

use crate::protocol::{BackendKind, Operation, Protocol};
use crate::wire::errors::ErrorKind;
use crate::wire::sse::DataLineScanner;

/// A wire dialect a request or answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI Chat Completions (and every OpenAI-compatible server).
    Chat,
    /// OpenAI Responses API (callers only: a backend is never asked in it by translation).
    Responses,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent` / `streamGenerateContent`.
    Gemini,
    /// Gemini inside the Code Assist envelope (the Gemini CLI connector; backends only).
    CodeAssist,
    /// The Responses API as ChatGPT's Codex backend takes it (the Codex connector; backends
    /// only).
    Codex,
    /// CodeWhisperer's `generateAssistantResponse`, answered in an AWS event stream (the Kiro
    /// connector; backends only).
    Kiro,
}

impl Dialect {
    /// The dialect of a caller's operation, when it is one translation serves.
    pub fn of_operation(op: Operation) -> Option<Dialect> {
        match op {
            Operation::ChatCompletions => Some(Dialect::Chat),
            Operation::Responses => Some(Dialect::Responses),
            Operation::Messages => Some(Dialect::Anthropic),
            Operation::GenerateContent | Operation::StreamGenerateContent => Some(Dialect::Gemini),
            _ => None,
        }
    }

    /// The dialect a backend is asked in.
    pub fn of_backend(kind: BackendKind) -> Dialect {
        match kind {
            BackendKind::Openai | BackendKind::QwenCode => Dialect::Chat,
            BackendKind::Anthropic => Dialect::Anthropic,
            BackendKind::Gemini => Dialect::Gemini,
            BackendKind::GeminiCli => Dialect::CodeAssist,
            BackendKind::Codex => Dialect::Codex,
            BackendKind::Kiro => Dialect::Kiro,
        }
    }

    /// True when the backend answers only with a stream: a caller's request for one JSON
    /// answer is sent as a stream and the events collected ([`collect_stream`]).
    pub fn streams_only(self) -> bool {
        matches!(self, Dialect::Codex | Dialect::Kiro)
    }

    /// The upstream operation that carries a request in this dialect (`stream`: Gemini's
    /// streaming method).
    pub fn operation(self, stream: bool) -> Operation {
        match self {
            Dialect::Chat => Operation::ChatCompletions,
            Dialect::Responses | Dialect::Codex => Operation::Responses,
            // Kiro's one method (`generateAssistantResponse`) is its backend's URL for any
            // operation.
            Dialect::Anthropic | Dialect::Kiro => Operation::Messages,
            Dialect::Gemini | Dialect::CodeAssist if stream => Operation::StreamGenerateContent,
            Dialect::Gemini | Dialect::CodeAssist => Operation::GenerateContent,
        }
    }

    /// The protocol family (which error shapes the caller reads).
    pub fn protocol(self) -> Protocol {
        match self {
            Dialect::Chat | Dialect::Responses | Dialect::Codex => Protocol::OpenAi,
            Dialect::Anthropic | Dialect::Kiro => Protocol::Anthropic,
            Dialect::Gemini | Dialect::CodeAssist => Protocol::Gemini,
        }
    }

    /// Short name for logs (`chat`, `responses`, `anthropic`, `gemini`).
    pub fn slug(self) -> &'static str {
        match self {
            Dialect::Chat => "chat",
            Dialect::Responses => "responses",
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
            Dialect::CodeAssist => "code_assist",
            Dialect::Codex => "codex",
            Dialect::Kiro => "kiro",
        }
    }

    /// Human name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Chat => "OpenAI Chat Completions",
            Dialect::Responses => "OpenAI Responses",
            Dialect::Anthropic => "Anthropic Messages",
            Dialect::Gemini => "Gemini generateContent",
            Dialect::CodeAssist => "Gemini Code Assist",
            Dialect::Codex => "ChatGPT Codex Responses",
            Dialect::Kiro => "Kiro (CodeWhisperer)",
        }
    }
}

/// Why a request or answer could not be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The request says something the backend's dialect cannot, and dropping it would change
    /// the answer (400 in the caller's protocol).
    #[error("{0}")]
    Unsupported(String),
    /// The request is not a valid request of its dialect (400).
    #[error("{0}")]
    Invalid(String),
    /// The upstream's answer is not a valid answer of its dialect (502).
    #[error("the backend's answer could not be translated: {0}")]
    Upstream(String),
}

/// Reads a caller's request body written in `dialect`.
pub fn decode_request(dialect: Dialect, body: &[u8]) -> Result<Request, TranslateError> {
    match dialect {
        Dialect::Chat => chat::decode_request(body),
        Dialect::Responses | Dialect::Codex => responses::decode_request(body),
        Dialect::Anthropic => anthropic::decode_request(body),
        Dialect::Gemini | Dialect::CodeAssist => gemini::decode_request(body),
        // Nobody calls in Kiro's dialect: its requests are only written.
        Dialect::Kiro => Err(TranslateError::Invalid(
            "Kiro's dialect is a backend's, not a caller's".into(),
        )),
    }
}

/// Writes `req` as a request body of `dialect`.
pub fn encode_request(dialect: Dialect, req: &Request) -> Result<Vec<u8>, TranslateError> {
    match dialect {
        Dialect::Chat => chat::encode_request(req),
        Dialect::Responses => responses::encode_request(req),
        Dialect::Codex => codex::encode_request(req),
        // The credential's profile ARN is the upstream's, per attempt.
        Dialect::Kiro => kiro::encode_request(req, &kiro::Envelope::default()),
        Dialect::Anthropic => anthropic::encode_request(req),
        // The Code Assist envelope is the upstream's, per attempt (the credential's project).
        Dialect::Gemini | Dialect::CodeAssist => gemini::encode_request(req),
    }
}

/// Reads an upstream's whole answer written in `dialect`.
pub fn decode_response(dialect: Dialect, body: &[u8]) -> Result<Response, TranslateError> {
    match dialect {
        Dialect::Chat => chat::decode_response(body),
        Dialect::Responses | Dialect::Codex => responses::decode_response(body),
        Dialect::Anthropic => anthropic::decode_response(body),
        Dialect::Gemini => gemini::decode_response(body),
        Dialect::CodeAssist => code_assist::decode_response(body),
        Dialect::Kiro => kiro::decode_response(body),
    }
}

/// Writes `resp` as a whole answer of `dialect` to the request `ctx` describes.
pub fn encode_response(dialect: Dialect, resp: &Response, ctx: &AnswerContext) -> Vec<u8> {
    match dialect {
        Dialect::Chat => chat::encode_response(resp, ctx),
        Dialect::Responses | Dialect::Codex => responses::encode_response(resp, ctx),
        Dialect::Anthropic | Dialect::Kiro => anthropic::encode_response(resp, ctx),
        Dialect::Gemini | Dialect::CodeAssist => gemini::encode_response(resp, ctx),
    }
}

/// What an encoder of answers needs to know of the caller's request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerContext {
    /// The model name the caller asked for (shown where the dialect echoes the request).
    pub model: String,
    /// Now, in Unix seconds (from the gateway's clock), for answers whose dialect dates them
    /// and whose upstream did not.
    pub created: u64,
    /// The caller asked for a usage report at the end of the stream (OpenAI `stream_options`).
    pub include_usage: bool,
    /// The tools the caller declared as freeform ([`model::Tool::freeform`]): their calls are
    /// written back as freeform calls carrying the `input` text.
    pub freeform_tools: Vec<String>,
}

impl AnswerContext {
    /// The context of an answer to `req`, made at `created` (Unix seconds).
    pub fn for_request(req: &Request, created: u64) -> Self {
        Self {
            model: req.model.clone(),
            created,
            include_usage: req.include_usage,
            freeform_tools: req
                .tools
                .iter()
                .filter(|t| t.freeform)
                .map(|t| t.name.clone())
                .collect(),
        }
    }
}

/// Reads an upstream's stream, one SSE `data:` payload at a time.
#[derive(Debug)]
pub enum StreamDecoder {
    /// OpenAI `chat.completion.chunk`s.
    Chat(chat::StreamDecoder),
    /// Responses API events.
    Responses(responses::StreamDecoder),
    /// Anthropic Messages events.
    Anthropic(anthropic::StreamDecoder),
    /// Gemini `GenerateContentResponse` chunks.
    Gemini(gemini::StreamDecoder),
    /// Gemini chunks inside the Code Assist envelope.
    CodeAssist(code_assist::StreamDecoder),
    /// Kiro's AWS event stream (binary frames, not SSE: fed whole chunks, [`Self::bytes`]).
    Kiro(kiro::StreamDecoder),
}

impl StreamDecoder {
    /// A decoder for streams of `dialect`.
    pub fn new(dialect: Dialect) -> Self {
        match dialect {
            Dialect::Chat => Self::Chat(Default::default()),
            Dialect::Responses | Dialect::Codex => Self::Responses(Default::default()),
            Dialect::Anthropic => Self::Anthropic(Default::default()),
            Dialect::Gemini => Self::Gemini(Default::default()),
            Dialect::CodeAssist => Self::CodeAssist(Default::default()),
            Dialect::Kiro => Self::Kiro(Default::default()),
        }
    }

    /// True when the upstream's stream is not SSE: chunks go to [`Self::bytes`] as they are.
    pub fn binary(&self) -> bool {
        matches!(self, Self::Kiro(_))
    }

    /// Decodes a chunk of a binary stream (Kiro's), appending what it says to `out`.
    pub fn bytes(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        match self {
            Self::Kiro(d) => d.bytes(chunk, out),
            _ => Err(TranslateError::Upstream(
                "an SSE stream decoder was fed binary frames".into(),
            )),
        }
    }

    /// Decodes one `data:` payload, appending what it says to `out`.
    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        match self {
            Self::Chat(d) => d.data(data, out),
            Self::Responses(d) => d.data(data, out),
            Self::Anthropic(d) => d.data(data, out),
            Self::Gemini(d) => d.data(data, out),
            Self::CodeAssist(d) => d.data(data, out),
            Self::Kiro(_) => Err(TranslateError::Upstream(
                "a Kiro stream is binary frames, not SSE".into(),
            )),
        }
    }

    /// The upstream's stream ended: appends what it left unsaid (a stop reason the dialect only
    /// implies).
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        match self {
            Self::Chat(d) => d.finish(out),
            Self::Responses(d) => d.finish(out),
            Self::Anthropic(d) => d.finish(out),
            Self::Gemini(d) => d.finish(out),
            Self::CodeAssist(d) => d.finish(out),
            Self::Kiro(d) => d.finish(out),
        }
    }
}

/// Writes a caller's stream from [`Event`]s.
#[derive(Debug)]
pub enum StreamEncoder {
    /// OpenAI `chat.completion.chunk`s, `[DONE]` last.
    Chat(chat::StreamEncoder),
    /// Responses API events.
    Responses(responses::StreamEncoder),
    /// Anthropic Messages events.
    Anthropic(anthropic::StreamEncoder),
    /// Gemini chunks.
    Gemini(gemini::StreamEncoder),
}

impl StreamEncoder {
    /// An encoder writing `dialect` for the request described by `ctx`.
    pub fn new(dialect: Dialect, ctx: &AnswerContext) -> Self {
        match dialect {
            Dialect::Chat => Self::Chat(chat::StreamEncoder::new(ctx)),
            Dialect::Responses | Dialect::Codex => {
                Self::Responses(responses::StreamEncoder::new(ctx))
            }
            Dialect::Anthropic | Dialect::Kiro => {
                Self::Anthropic(anthropic::StreamEncoder::new(ctx))
            }
            Dialect::Gemini | Dialect::CodeAssist => Self::Gemini(gemini::StreamEncoder::new(ctx)),
        }
    }

    /// Appends the SSE bytes that express `event`.
    pub fn event(&mut self, event: Event, out: &mut Vec<u8>) {
        match self {
            Self::Chat(e) => e.event(event, out),
            Self::Responses(e) => e.event(event, out),
            Self::Anthropic(e) => e.event(event, out),
            Self::Gemini(e) => e.event(event, out),
        }
    }

    /// The stream ended: appends the dialect's closing events (once; nothing after an error).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Self::Chat(e) => e.finish(out),
            Self::Responses(e) => e.finish(out),
            Self::Anthropic(e) => e.finish(out),
            Self::Gemini(e) => e.finish(out),
        }
    }
}

/// Translates an upstream SSE stream into the caller's, chunk by chunk: whatever complete
/// events a chunk holds are re-expressed at once; an unfinished line waits for the next chunk.
#[derive(Debug)]
pub struct StreamTranslator {
    scanner: DataLineScanner,
    decoder: StreamDecoder,
    encoder: StreamEncoder,
    events: Vec<Event>,
    failed: bool,
    /// The last usage report the upstream's events carried.
    usage: Option<model::TokenUsage>,
}

impl StreamTranslator {
    /// A translator from `from` (the backend's dialect) to `to` (the caller's).
    pub fn new(from: Dialect, to: Dialect, ctx: &AnswerContext) -> Self {
        Self {
            scanner: DataLineScanner::default(),
            decoder: StreamDecoder::new(from),
            encoder: StreamEncoder::new(to, ctx),
            events: Vec::new(),
            failed: false,
            usage: None,
        }
    }

    /// The last usage the upstream reported in its events: for streams whose usage the SSE
    /// tap cannot read (Kiro's binary frames).
    pub fn usage(&self) -> Option<model::TokenUsage> {
        self.usage
    }

    /// Translates the next upstream chunk; returns the caller's bytes (possibly empty).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        if self.decoder.binary() {
            if let Err(e) = self.decoder.bytes(chunk, &mut self.events) {
                tracing::warn!(error = %e, "an upstream stream event could not be translated");
                self.events.push(Event::Error {
                    status: 502,
                    message: e.to_string(),
                });
                self.failed = true;
            }
            self.drain(&mut out);
            return out;
        }
        let Self {
            scanner,
            decoder,
            events,
            failed,
            ..
        } = self;
        scanner.feed(chunk, |data| {
            if *failed || data == b"[DONE]" {
                return;
            }
            if let Err(e) = decoder.data(data, events) {
                tracing::warn!(error = %e, "an upstream stream event could not be translated");
                events.push(Event::Error {
                    status: 502,
                    message: e.to_string(),
                });
                *failed = true;
            }
        });
        self.drain(&mut out);
        out
    }

    /// The upstream stream ended: the caller's closing events.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.failed {
            self.decoder.finish(&mut self.events);
            self.drain(&mut out);
        }
        self.encoder.finish(&mut out);
        out
    }

    /// True once an error event was written (the stream says no more).
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        for event in self.events.drain(..) {
            match &event {
                Event::Error { .. } => self.failed = true,
                Event::Usage(u) => self.usage = Some(*u),
                _ => {}
            }
            self.encoder.event(event, out);
        }
    }
}

/// A whole answer from the body of a stream of `dialect` (a backend that only streams,
/// answering a caller that asked for one JSON answer).
pub fn collect_stream(dialect: Dialect, body: &[u8]) -> Result<Response, TranslateError> {
    if dialect == Dialect::Kiro {
        return kiro::decode_response(body);
    }
    let mut scanner = DataLineScanner::default();
    let mut decoder = StreamDecoder::new(dialect);
    let mut events = Vec::new();
    let mut failed = None;
    let mut on_data = |data: &[u8]| {
        if failed.is_none()
            && data != b"[DONE]"
            && let Err(e) = decoder.data(data, &mut events)
        {
            failed = Some(e);
        }
    };
    scanner.feed(body, &mut on_data);
    // A last line without its line ending.
    scanner.feed(b"\n", &mut on_data);
    if let Some(e) = failed {
        return Err(e);
    }
    decoder.finish(&mut events);
    collect::Collector::collect(events).map_err(|f| {
        TranslateError::Upstream(format!("the stream failed ({}): {}", f.status, f.message))
    })
}

/// The error kind an upstream status stands for (stream error events, re-expressed errors).
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        400 | 422 => ErrorKind::InvalidRequest,
        401 => ErrorKind::Authentication,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        413 => ErrorKind::RequestTooLarge,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Unavailable,
        504 => ErrorKind::Timeout,
        _ => ErrorKind::Upstream,
    }
}
