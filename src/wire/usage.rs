//! Token usage as the upstreams report it: OpenAI `usage{prompt_tokens,completion_tokens}`,
//! Responses `response.usage{input_tokens,output_tokens}`, Anthropic `message.usage` (stream start)
//! and `usage` (deltas), Gemini `usageMetadata`. One probe reads all of them, from a whole JSON
//! body or from one SSE event's data; fields it does not know are skipped without allocation.

use serde::Deserialize;

/// Tokens used by one request, as reported by the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input (prompt) tokens.
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens.
    pub output_tokens: Option<u64>,
    /// Total, when reported (else input + output).
    pub total_tokens: Option<u64>,
}

impl Usage {
    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.input_tokens.is_none() && self.output_tokens.is_none() && self.total_tokens.is_none()
    }

    /// The total: reported, or input + output.
    pub fn total(&self) -> Option<u64> {
        self.total_tokens
            .or(match (self.input_tokens, self.output_tokens) {
                (None, None) => None,
                (i, o) => Some(i.unwrap_or(0) + o.unwrap_or(0)),
            })
    }

    /// Overwrites the fields that `newer` reports (stream events report cumulative counts).
    pub fn merge(&mut self, newer: Usage) {
        if newer.input_tokens.is_some() {
            self.input_tokens = newer.input_tokens;
        }
        if newer.output_tokens.is_some() {
            self.output_tokens = newer.output_tokens;
        }
        if newer.total_tokens.is_some() {
            self.total_tokens = newer.total_tokens;
        }
    }
}

#[derive(Deserialize, Default)]
struct Counts {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_tokens: Option<u64>,
    #[serde(rename = "promptTokenCount")]
    prompt_token_count: Option<u64>,
    #[serde(rename = "candidatesTokenCount")]
    candidates_token_count: Option<u64>,
    #[serde(rename = "totalTokenCount")]
    total_token_count: Option<u64>,
}

impl Counts {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self
                .prompt_tokens
                .or(self.input_tokens)
                .or(self.prompt_token_count),
            output_tokens: self
                .completion_tokens
                .or(self.output_tokens)
                .or(self.candidates_token_count),
            total_tokens: self.total_tokens.or(self.total_token_count),
        }
    }
}

#[derive(Deserialize)]
struct Nested {
    usage: Option<Counts>,
}

#[derive(Deserialize)]
struct Probe {
    usage: Option<Counts>,
    #[serde(rename = "usageMetadata")]
    usage_metadata: Option<Counts>,
    /// Anthropic `message_start`.
    message: Option<Nested>,
    /// OpenAI Responses `response.completed`.
    response: Option<Nested>,
}

/// Reads the usage out of a JSON document (a whole response body or one stream event). Returns
/// `None` when the document is not JSON or reports no usage.
pub fn parse_usage(json: &[u8]) -> Option<Usage> {
    let probe: Probe = serde_json::from_slice(json).ok()?;
    let mut out = Usage::default();
    for counts in [
        probe.message.and_then(|m| m.usage),
        probe.response.and_then(|r| r.usage),
        probe.usage,
        probe.usage_metadata,
    ]
    .into_iter()
    .flatten()
    {
        out.merge(counts.usage());
    }
    (!out.is_empty()).then_some(out)
}

/// Cheap pre-check: could this event carry usage? Avoids parsing every content delta.
pub fn may_carry_usage(json: &[u8]) -> bool {
    memchr::memmem::find_iter(json, b"sage").any(|at| !null_usage(&json[at + 4..]))
}

/// True for the rest of `"usage": null` after its `sage` (OpenAI chunks asked for usage carry
/// it until the last one): no usage there.
fn null_usage(rest: &[u8]) -> bool {
    rest.strip_prefix(b"\"")
        .map(<[u8]>::trim_ascii_start)
        .and_then(|r| r.strip_prefix(b":"))
        .is_some_and(|r| r.trim_ascii_start().starts_with(b"null"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_usage_is_no_usage() {
        assert!(!may_carry_usage(br#"{"choices":[],"usage":null}"#));
        assert!(!may_carry_usage(br#"{"usage" : null,"x":1}"#));
        assert!(may_carry_usage(br#"{"usage":null,"u":{"usage":{"prompt_tokens":1}}}"#));
        assert!(may_carry_usage(br#"{"usageMetadata":{"totalTokenCount":3}}"#));
        assert!(may_carry_usage(br#"{"usage":{"input_tokens":3}}"#));
        assert!(!may_carry_usage(br#"{"choices":[{"delta":{"content":"hi"}}]}"#));
    }

    #[test]
    fn reads_each_protocols_usage() {
        let cases: [(&[u8], Usage); 5] = [
            (
                br#"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#,
                Usage { input_tokens: Some(3), output_tokens: Some(5), total_tokens: Some(8) },
            ),
            (
                br#"{"type":"response.completed","response":{"usage":{"input_tokens":4,"output_tokens":6,"total_tokens":10}}}"#,
                Usage { input_tokens: Some(4), output_tokens: Some(6), total_tokens: Some(10) },
            ),
            (
                br#"{"type":"message_start","message":{"usage":{"input_tokens":7,"output_tokens":1}}}"#,
                Usage { input_tokens: Some(7), output_tokens: Some(1), total_tokens: None },
            ),
            (
                br#"{"type":"message_delta","usage":{"output_tokens":9}}"#,
                Usage { input_tokens: None, output_tokens: Some(9), total_tokens: None },
            ),
            (
                br#"{"candidates":[],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":3,"totalTokenCount":5}}"#,
                Usage { input_tokens: Some(2), output_tokens: Some(3), total_tokens: Some(5) },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(
                parse_usage(json),
                Some(want),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn no_usage_and_garbage_give_none() {
        assert_eq!(parse_usage(br#"{"choices":[]}"#), None);
        assert_eq!(parse_usage(br#"{"usage":null}"#), None);
        assert_eq!(parse_usage(b"{oops"), None);
    }

    #[test]
    fn anthropic_stream_merges_to_final_counts() {
        let mut u = Usage::default();
        for ev in [
            &br#"{"type":"message_start","message":{"usage":{"input_tokens":7,"output_tokens":1}}}"#[..],
            br#"{"type":"message_delta","usage":{"output_tokens":9}}"#,
        ] {
            if let Some(x) = parse_usage(ev) {
                u.merge(x);
            }
        }
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.total()),
            (Some(7), Some(9), Some(16))
        );
    }
}
