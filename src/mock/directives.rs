//! Parsing of the `x-mock` request header: a `;`-separated list of
//! `key=value` directives that script the mock's behaviour.
//!
//! Known keys:
//! - failures and timing: `status`, `retry_after`, `header_delay_ms`, `chunks`, `chunk_delay_ms`,
//!   `drop_after`, `malformed`, `echo_credential`, `error_code` (with `status`: the OpenAI
//!   error's `code`, as providers send `insufficient_quota` or `context_length_exceeded`);
//! - the answer: `reply` (the answer text, percent-encoded, instead of [`MOCK_TEXT`]);
//!   `reasoning` (percent-encoded: the answer opens with it as the protocol's reasoning);
//! - tool calls (see `tools.rs`; only when the request declares tools and its last message is
//!   not a tool result): `tool` (the declared tool to call, `*` for the first), `tool_calls`
//!   (how many parallel calls, to the next declared tools in order), `tool_args`
//!   (percent-encoded JSON object: the exact arguments), `tool_input` (percent-encoded: a
//!   freeform tool's input), `tool_preamble` (percent-encoded: Anthropic's text block before
//!   the `tool_use`), `thought_signature=1` (Gemini: a `thoughtSignature` on the first
//!   `functionCall` part).
//!
//! For example `x-mock: tool=get_weather; tool_calls=2; tool_args=%7B%22city%22%3A%22Paris%22%7D`.
//! Unknown keys are ignored; bad values are an error (the caller answers 400).

use std::time::Duration;

use http::StatusCode;
use serde_json::{Map, Value};

use super::MOCK_TEXT;

/// Default number of content pieces in a stream.
pub(crate) const DEFAULT_CHUNKS: usize = 8;
/// Upper bound for `chunks`, to keep a typo from eating memory.
const MAX_CHUNKS: usize = 100_000;
/// Upper bound for `tool_calls`.
const MAX_TOOL_CALLS: usize = 64;
/// Upper bound for delays (one hour).
const MAX_DELAY_MS: u64 = 3_600_000;

/// The behaviour requested by one request's `x-mock` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Directives {
    /// Answer with this error status instead of a completion.
    pub(crate) status: Option<StatusCode>,
    /// Value of the `Retry-After` header on an error response.
    pub(crate) retry_after: Option<u64>,
    /// Wait before sending response headers.
    pub(crate) header_delay: Duration,
    /// Number of content pieces.
    pub(crate) chunks: usize,
    /// The time between two content pieces: piece *k* is due *k* of these after the first
    /// (a fixed schedule, `stream.rs`).
    pub(crate) chunk_delay: Duration,
    /// Abort the stream after this many content pieces.
    pub(crate) drop_after: Option<usize>,
    /// Emit a broken event after the first content piece.
    pub(crate) malformed: bool,
    /// Put the credential the request carried into the error message (as careless upstreams
    /// do), to test that the gateway never passes it on.
    pub(crate) echo_credential: bool,
    /// The assistant text to answer instead of [`MOCK_TEXT`] (`reply=` percent-decoded), so a
    /// test can script an agent's answer — e.g. an edit in the agent's own edit format.
    pub(crate) reply: Option<String>,
    /// The `code` of an OpenAI-shaped error answer (`status` decides that there is one).
    pub(crate) error_code: Option<String>,
    /// The reasoning the answer opens with (`reasoning=` percent-decoded).
    pub(crate) reasoning: Option<String>,
    /// The declared tool to call (`*`: the first one).
    pub(crate) tool: Option<String>,
    /// How many parallel tool calls to answer (1 unless `tool_calls=` says).
    pub(crate) tool_calls: usize,
    /// The exact arguments of every tool call (`tool_args=`, a percent-encoded JSON object).
    pub(crate) tool_args: Option<Map<String, Value>>,
    /// The input of a call to a freeform (custom) tool.
    pub(crate) tool_input: Option<String>,
    /// Anthropic: a text block before the `tool_use` block, as Claude often writes one.
    pub(crate) tool_preamble: Option<String>,
    /// Gemini: put a `thoughtSignature` on the first `functionCall` part (as Gemini 3 does).
    pub(crate) thought_signature: bool,
}

impl Default for Directives {
    fn default() -> Self {
        Self {
            status: None,
            retry_after: None,
            header_delay: Duration::ZERO,
            chunks: DEFAULT_CHUNKS,
            chunk_delay: Duration::ZERO,
            drop_after: None,
            malformed: false,
            echo_credential: false,
            reply: None,
            error_code: None,
            reasoning: None,
            tool: None,
            tool_calls: 1,
            tool_args: None,
            tool_input: None,
            tool_preamble: None,
            thought_signature: false,
        }
    }
}

impl Directives {
    /// Parses the raw header value (`None` when the header is absent).
    pub(crate) fn parse(raw: Option<&[u8]>) -> Result<Self, String> {
        let mut d = Self::default();
        let Some(raw) = raw else {
            return Ok(d);
        };
        let text = std::str::from_utf8(raw).map_err(|_| "header is not UTF-8".to_owned())?;
        for item in text.split(';') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("directive {item:?} is not key=value"))?;
            match key.to_ascii_lowercase().as_str() {
                "status" => {
                    let n: u16 = number(key, value)?;
                    if !(400..=599).contains(&n) {
                        return Err(format!("status={n}: must be in 400..=599"));
                    }
                    d.status = Some(StatusCode::from_u16(n).map_err(|e| e.to_string())?);
                }
                "retry_after" => d.retry_after = Some(number(key, value)?),
                "header_delay_ms" => d.header_delay = delay(key, value)?,
                "chunk_delay_ms" => d.chunk_delay = delay(key, value)?,
                "chunks" => {
                    let n: usize = number(key, value)?;
                    if !(1..=MAX_CHUNKS).contains(&n) {
                        return Err(format!("chunks={n}: must be in 1..={MAX_CHUNKS}"));
                    }
                    d.chunks = n;
                }
                "drop_after" => d.drop_after = Some(number(key, value)?),
                "malformed" => {
                    d.malformed = match value {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => return Err(format!("malformed={value:?}: expected 0 or 1")),
                    }
                }
                "echo_credential" => d.echo_credential = matches!(value, "1" | "true"),
                "error_code" => {
                    if value.is_empty()
                        || !value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(format!("error_code={value:?}: letters, digits and _ only"));
                    }
                    d.error_code = Some(value.to_owned());
                }
                "reply" => d.reply = Some(decoded(key, value)?),
                "reasoning" => d.reasoning = Some(decoded(key, value)?),
                "tool_input" => d.tool_input = Some(decoded(key, value)?),
                "tool_preamble" => d.tool_preamble = Some(decoded(key, value)?),
                "tool" => {
                    if value.is_empty() {
                        return Err("tool: expected a tool name or *".to_owned());
                    }
                    d.tool = Some(decoded(key, value)?);
                }
                "tool_calls" => {
                    let n: usize = number(key, value)?;
                    if !(1..=MAX_TOOL_CALLS).contains(&n) {
                        return Err(format!("tool_calls={n}: must be in 1..={MAX_TOOL_CALLS}"));
                    }
                    d.tool_calls = n;
                }
                "tool_args" => {
                    let text = decoded(key, value)?;
                    d.tool_args = match serde_json::from_str(&text) {
                        Ok(Value::Object(args)) => Some(args),
                        _ => return Err(format!("tool_args={text:?}: not a JSON object")),
                    };
                }
                "thought_signature" => d.thought_signature = matches!(value, "1" | "true"),
                _ => {}
            }
        }
        Ok(d)
    }

    /// The assistant text to answer: the scripted `reply`, else [`MOCK_TEXT`].
    pub(crate) fn text(&self) -> &str {
        self.reply.as_deref().unwrap_or(MOCK_TEXT)
    }
}

/// A percent-encoded UTF-8 value, decoded.
fn decoded(key: &str, value: &str) -> Result<String, String> {
    let text = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| format!("{key}: not percent-encoded UTF-8"))?;
    Ok(text.into_owned())
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key}={value:?}: expected a non-negative integer"))
}

fn delay(key: &str, value: &str) -> Result<Duration, String> {
    let ms: u64 = number(key, value)?;
    if ms > MAX_DELAY_MS {
        return Err(format!("{key}={ms}: at most {MAX_DELAY_MS}"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_header_gives_defaults() {
        assert_eq!(Directives::parse(None), Ok(Directives::default()));
        assert_eq!(Directives::default().chunks, DEFAULT_CHUNKS);
    }

    #[test]
    fn parses_all_keys_with_whitespace() {
        let raw = b" status = 429 ;retry_after=7; header_delay_ms=5 ; chunks=3;\
chunk_delay_ms=2;drop_after=1; malformed=1; unknown=whatever; error_code=insufficient_quota";
        let d = Directives::parse(Some(raw)).unwrap();
        assert_eq!(d.status, Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(d.retry_after, Some(7));
        assert_eq!(d.header_delay, Duration::from_millis(5));
        assert_eq!(d.chunks, 3);
        assert_eq!(d.chunk_delay, Duration::from_millis(2));
        assert_eq!(d.drop_after, Some(1));
        assert!(d.malformed);
        assert_eq!(d.error_code.as_deref(), Some("insufficient_quota"));
        assert!(Directives::parse(Some(b"error_code=a b")).is_err());
    }

    #[test]
    fn reply_is_percent_decoded() {
        assert_eq!(Directives::default().text(), MOCK_TEXT);
        let d = Directives::parse(Some(b"chunks=2; reply=a%3Bb%0A%3D%3D%3D%20%E2%9C%93")).unwrap();
        assert_eq!(d.text(), "a;b\n=== ✓");
        assert_eq!(d.chunks, 2);
        assert!(Directives::parse(Some(b"reply=%FF")).is_err());
    }

    #[test]
    fn tool_directives() {
        let raw = b"tool=get_weather; tool_calls=3; tool_args=%7B%22city%22%3A%22Paris%22%7D; \
tool_input=a%20b; tool_preamble=Let%20me; thought_signature=1; reasoning=hm";
        let d = Directives::parse(Some(raw)).unwrap();
        assert_eq!(d.tool.as_deref(), Some("get_weather"));
        assert_eq!(d.tool_calls, 3);
        assert_eq!(
            Value::Object(d.tool_args.unwrap()),
            serde_json::json!({"city": "Paris"})
        );
        assert_eq!(d.tool_input.as_deref(), Some("a b"));
        assert_eq!(d.tool_preamble.as_deref(), Some("Let me"));
        assert!(d.thought_signature);
        assert_eq!(d.reasoning.as_deref(), Some("hm"));
        assert_eq!(Directives::default().tool_calls, 1);
    }

    #[test]
    fn rejects_bad_values() {
        for raw in [
            "status=abc",
            "status=200",
            "status=600",
            "chunks=0",
            "chunks=-1",
            "chunk_delay_ms=1.5",
            "malformed=yes",
            "drop_after",
            "header_delay_ms=99999999999",
            "tool=",
            "tool_calls=0",
            "tool_calls=65",
            "tool_args=%5B1%5D",
            "tool_args=%7Bx",
            "reasoning=%FF",
        ] {
            assert!(Directives::parse(Some(raw.as_bytes())).is_err(), "{raw}");
        }
    }
}
