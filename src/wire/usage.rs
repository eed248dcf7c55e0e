//! Token usage as the upstreams report it: OpenAI `usage{prompt_tokens,completion_tokens}`,
//! Responses `response.usage{input_tokens,output_tokens}`, Anthropic `message.usage` (stream start)
//! and `usage` (deltas), Gemini `usageMetadata`. One probe reads all of them, from a whole JSON
//! body or from one SSE event's data; fields it does not know are skipped without allocation.
//! Input tokens always include those read from or written to the provider's prompt cache
//! (Anthropic reports them apart: they are added), and the cached ones are also counted on their
//! own (`prompt_tokens_details.cached_tokens`, `input_tokens_details.cached_tokens`,
//! `cache_read_input_tokens`, `cachedContentTokenCount`), for pricing.
//!
//! Also the output maximum a request sets ([`requested_max_output`]), for reservations.

use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde::Deserialize;

use super::json_scan::{self, Unscannable, Value};

/// Tokens used by one request, as reported by the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input (prompt) tokens.
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens.
    pub output_tokens: Option<u64>,
    /// Total, when reported (else input + output).
    pub total_tokens: Option<u64>,
    /// Of the input tokens, those read from the provider's prompt cache.
    pub cached_input_tokens: Option<u64>,
}

impl Usage {
    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.input_tokens.is_none()
            && self.output_tokens.is_none()
            && self.total_tokens.is_none()
            && self.cached_input_tokens.is_none()
    }

    /// The total: reported, or input + output (at most `u64::MAX`, whatever an upstream says).
    pub fn total(&self) -> Option<u64> {
        self.total_tokens
            .or(match (self.input_tokens, self.output_tokens) {
                (None, None) => None,
                (i, o) => Some(i.unwrap_or(0).saturating_add(o.unwrap_or(0))),
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
        if newer.cached_input_tokens.is_some() {
            self.cached_input_tokens = newer.cached_input_tokens;
        }
    }
}

#[derive(Deserialize, Default)]
struct Details {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Counts {
    prompt_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    input_tokens_details: Option<Details>,
    /// Anthropic: not included in `input_tokens`.
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    #[serde(rename = "cachedContentTokenCount")]
    cached_content_token_count: Option<u64>,
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
        let details = |d: &Option<Details>| d.as_ref().and_then(|d| d.cached_tokens);
        // Anthropic's input excludes what the cache served or took.
        let cache_extra = match (
            self.cache_read_input_tokens,
            self.cache_creation_input_tokens,
        ) {
            (None, None) => 0,
            (r, c) => r.unwrap_or(0).saturating_add(c.unwrap_or(0)),
        };
        Usage {
            input_tokens: self
                .prompt_tokens
                .or(self.input_tokens.map(|i| i.saturating_add(cache_extra)))
                .or(self.prompt_token_count),
            output_tokens: self
                .completion_tokens
                .or(self.output_tokens)
                .or(self.candidates_token_count),
            total_tokens: self.total_tokens.or(self.total_token_count),
            cached_input_tokens: details(&self.prompt_tokens_details)
                .or(details(&self.input_tokens_details))
                .or(self.cache_read_input_tokens)
                .or(self.cached_content_token_count),
        }
    }
}

impl Counts {
    /// The usage the full parse of `value` (an object) reads, read where it lies, with the index
    /// just past it: when every member it reads is `null`, a plain integer that fits (no sign,
    /// fraction, exponent or leading zero) or, for the details, `null` or an object of such
    /// members. Anything else — a repeated member, a value of another kind, an escaped key — is
    /// [`Unscannable`], for the full parse to decide.
    fn read(value: Value<'_>) -> Result<(Usage, usize), Unscannable> {
        let mut c = Counts::default();
        let mut seen = 0u16;
        let end = value.members(|key, value| {
            let (bit, slot) = match key {
                b"prompt_tokens" => (0, &mut c.prompt_tokens),
                b"completion_tokens" => (1, &mut c.completion_tokens),
                b"total_tokens" => (2, &mut c.total_tokens),
                b"input_tokens" => (3, &mut c.input_tokens),
                b"output_tokens" => (4, &mut c.output_tokens),
                b"cache_read_input_tokens" => (5, &mut c.cache_read_input_tokens),
                b"cache_creation_input_tokens" => (6, &mut c.cache_creation_input_tokens),
                b"cachedContentTokenCount" => (7, &mut c.cached_content_token_count),
                b"promptTokenCount" => (8, &mut c.prompt_token_count),
                b"candidatesTokenCount" => (9, &mut c.candidates_token_count),
                b"totalTokenCount" => (10, &mut c.total_token_count),
                b"prompt_tokens_details" => {
                    once(&mut seen, 11)?;
                    let (details, end) = Details::read(value)?;
                    c.prompt_tokens_details = details;
                    return Ok(end);
                }
                b"input_tokens_details" => {
                    once(&mut seen, 12)?;
                    let (details, end) = Details::read(value)?;
                    c.input_tokens_details = details;
                    return Ok(end);
                }
                _ => return value.end(),
            };
            once(&mut seen, bit)?;
            let (n, end) = count(value)?;
            *slot = n;
            Ok(end)
        })?;
        Ok((c.usage(), end))
    }
}

impl Details {
    /// [`Counts::read`] for a details member: `null` or an object.
    fn read(value: Value<'_>) -> Result<(Option<Details>, usize), Unscannable> {
        if value.first() != Some(b'{') {
            let (text, end) = value.text()?;
            return if text == b"null" {
                Ok((None, end))
            } else {
                Err(Unscannable)
            };
        }
        let mut d = Details::default();
        let mut seen = 0u16;
        let end = value.members(|key, value| {
            if key != b"cached_tokens" {
                return value.end();
            }
            once(&mut seen, 0)?;
            let (n, end) = count(value)?;
            d.cached_tokens = n;
            Ok(end)
        })?;
        Ok((Some(d), end))
    }
}

/// Marks member `bit` read; a second time is the full parse's "duplicate field".
fn once(seen: &mut u16, bit: u8) -> Result<(), Unscannable> {
    let mask = 1u16 << bit;
    if *seen & mask != 0 {
        return Err(Unscannable);
    }
    *seen |= mask;
    Ok(())
}

/// A count read where it lies, as the full parse reads it — `null`, or digits without a leading
/// zero that fit — with the index just past it. Anything else is [`Unscannable`]: a string, an
/// object, a sign; a fraction, an exponent (`12e3`, which the full parse refuses for an integer
/// too) or other bytes that run on from it (`01`, `nullx`) are left to the walk, which finds no
/// `,` or `}` after the count.
fn count(value: Value<'_>) -> Result<(Option<u64>, usize), Unscannable> {
    let (rest, start) = value.rest();
    let (n, len) = match rest {
        [b'n', b'u', b'l', b'l', ..] => (None, 4),
        [b'0', ..] => (Some(0), 1),
        [b'1'..=b'9', ..] => {
            let mut n = 0u64;
            let mut len = 0;
            for &d in rest {
                if !d.is_ascii_digit() {
                    break;
                }
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                    .ok_or(Unscannable)?;
                len += 1;
            }
            (Some(n), len)
        }
        _ => return Err(Unscannable),
    };
    // Whatever follows must be white space, then `,` or `}`: the walk checks that, so a value
    // that runs on (`1a`, `nullx`, `01`) fails there.
    Ok((n, start + len))
}

#[derive(Deserialize)]
struct Nested {
    usage: Option<Counts>,
    /// Gemini's, inside the Code Assist envelope (`{"response": {"usageMetadata"}}`).
    #[serde(rename = "usageMetadata")]
    usage_metadata: Option<Counts>,
}

impl Nested {
    fn usage(self) -> Option<Usage> {
        self.usage.or(self.usage_metadata).map(|c| c.usage())
    }
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
///
/// The members that can hold usage are found by a scan ([`json_scan`]) and only they are
/// parsed; a document the scan cannot walk (a key written with escapes, a repeated member,
/// anything malformed) is parsed whole, as it always was. The scan does not validate the
/// members it skips, so a document broken only there still reports its usage.
pub fn parse_usage(json: &[u8]) -> Option<Usage> {
    match Spans::find(json) {
        Ok(spans) => spans.usage(),
        Err(Unscannable) => parse_usage_whole(json),
    }
}

/// The usage an event stream's body reports (its `data:` lines read in order, later reports
/// overwriting earlier counts): a stream collected into one answer.
pub fn parse_stream_usage(body: &[u8]) -> Option<Usage> {
    let mut scanner = super::sse::DataLineScanner::default();
    let mut out = Usage::default();
    let mut on_data = |data: &[u8]| {
        if may_carry_usage(data)
            && let Some(u) = parse_usage(data)
        {
            out.merge(u);
        }
    };
    scanner.feed(body, &mut on_data);
    scanner.feed(b"\n", &mut on_data);
    (!out.is_empty()).then_some(out)
}

/// [`parse_usage`] by a full parse of the document.
fn parse_usage_whole(json: &[u8]) -> Option<Usage> {
    let probe: Probe = serde_json::from_slice(json).ok()?;
    merged([
        probe.message.and_then(Nested::usage),
        probe.response.and_then(Nested::usage),
        probe.usage.map(|c| c.usage()),
        probe.usage_metadata.map(|c| c.usage()),
    ])
}

/// The usages, later ones overwriting what they report; `None` when nothing is reported.
fn merged(usages: [Option<Usage>; 4]) -> Option<Usage> {
    let mut out = Usage::default();
    for usage in usages.into_iter().flatten() {
        out.merge(usage);
    }
    (!out.is_empty()).then_some(out)
}

/// The top-level members [`Probe`] reads, found by [`json_scan::members_in_place`]: the usage
/// objects read where they lie, `message` and `response` as their text.
#[derive(Default)]
struct Spans<'a> {
    usage: Counted<'a>,
    usage_metadata: Counted<'a>,
    message: Option<&'a [u8]>,
    response: Option<&'a [u8]>,
}

/// A usage member: absent, read in place, or its text for the full parse (a value the scan
/// does not read: `null`, another kind, or an object [`Counts::read`] leaves to the full parse).
#[derive(Default)]
enum Counted<'a> {
    #[default]
    Absent,
    Read(Usage),
    Text(&'a [u8]),
}

impl<'a> Counted<'a> {
    /// Reads the member's value, answering with the index just past it. A repeated member is an
    /// error to the full parse: the scan lets it decide.
    fn read(&mut self, value: Value<'a>) -> Result<usize, Unscannable> {
        if !matches!(self, Counted::Absent) {
            return Err(Unscannable);
        }
        if value.first() == Some(b'{')
            && let Ok((usage, end)) = Counts::read(value)
        {
            *self = Counted::Read(usage);
            return Ok(end);
        }
        let (text, end) = value.text()?;
        *self = Counted::Text(text);
        Ok(end)
    }

    /// What the full parse reads of the member; `Err` where it fails.
    fn usage(&self) -> Result<Option<Usage>, ()> {
        match self {
            Counted::Absent => Ok(None),
            Counted::Read(usage) => Ok(Some(*usage)),
            Counted::Text(text) => serde_json::from_slice::<Option<Counts>>(text)
                .map(|c| c.map(|c| c.usage()))
                .map_err(drop),
        }
    }
}

impl<'a> Spans<'a> {
    fn find(json: &'a [u8]) -> Result<Self, Unscannable> {
        let mut spans = Spans::default();
        json_scan::members_in_place(json, |key, value| {
            let slot = match key {
                b"usage" => return spans.usage.read(value),
                b"usageMetadata" => return spans.usage_metadata.read(value),
                b"message" => &mut spans.message,
                b"response" => &mut spans.response,
                _ => return value.end(),
            };
            let (text, end) = value.text()?;
            // A repeated member is an error to the full parse: let it decide.
            if slot.replace(text).is_some() {
                return Err(Unscannable);
            }
            Ok(end)
        })?;
        Ok(spans)
    }

    /// What the full parse would read, member by member. A member of the wrong shape fails the
    /// full parse, so it is `None` here too.
    fn usage(&self) -> Option<Usage> {
        fn nested(text: Option<&[u8]>) -> Result<Option<Usage>, ()> {
            match text {
                None | Some(b"null") => Ok(None),
                Some(t) => match Spans::find(t) {
                    Ok(inner) => Ok(inner.usage.usage()?.or(inner.usage_metadata.usage()?)),
                    // Not walkable: the full parse of this member.
                    Err(Unscannable) => serde_json::from_slice::<Nested>(t)
                        .map(Nested::usage)
                        .map_err(drop),
                },
            }
        }
        merged([
            nested(self.message).ok()?,
            nested(self.response).ok()?,
            self.usage.usage().ok()?,
            self.usage_metadata.usage().ok()?,
        ])
    }
}

#[derive(Deserialize)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens", alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
}

/// The output-limit fields of every protocol's request.
#[derive(Deserialize)]
struct MaxProbe {
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    #[serde(rename = "generationConfig", alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
}

/// The most output tokens a request body allows: the largest of its `max_tokens`,
/// `max_completion_tokens`, `max_output_tokens` and `generationConfig.maxOutputTokens`; `None`
/// when it sets none (or is not a JSON object).
pub fn requested_max_output(body: &[u8]) -> Option<u64> {
    let p: MaxProbe = serde_json::from_slice(body).ok()?;
    [
        p.max_tokens,
        p.max_completion_tokens,
        p.max_output_tokens,
        p.generation_config.and_then(|g| g.max_output_tokens),
    ]
    .into_iter()
    .flatten()
    .max()
}

/// Cheap pre-check: could this event carry usage? Avoids parsing every content delta. True of
/// every event [`parse_usage`] finds usage in — a key spelled with an escaped letter of `usage`
/// (`"u\u0073age"`) included.
pub fn may_carry_usage(json: &[u8]) -> bool {
    SAGE.find_iter(json).any(|at| !null_usage(&json[at + 4..]))
        || memchr::memchr_iter(b'\\', json).any(|at| {
            let code = json.get(at + 1..at + 6);
            matches!(
                code,
                Some(b"u0075" | b"u0073" | b"u0061" | b"u0067" | b"u0065")
            )
        })
}

/// The searcher [`may_carry_usage`] runs on every stream event, built once: building one per
/// call cost more than the search of an event (bench/PROFILE.md §12).
static SAGE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"sage"));

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
        assert!(may_carry_usage(
            br#"{"usage":null,"u":{"usage":{"prompt_tokens":1}}}"#
        ));
        assert!(may_carry_usage(
            br#"{"usageMetadata":{"totalTokenCount":3}}"#
        ));
        assert!(may_carry_usage(br#"{"usage":{"input_tokens":3}}"#));
        assert!(!may_carry_usage(
            br#"{"choices":[{"delta":{"content":"hi"}}]}"#
        ));
    }

    #[test]
    fn the_code_assist_envelope_reports_geminis_usage() {
        let body = br#"{"response":{"candidates":[],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":3,"totalTokenCount":10}},"traceId":"x"}"#;
        let u = parse_usage(body).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (Some(7), Some(3)));
        assert_eq!(parse_usage_whole(body), Some(u));
        let stream = b"data: {\"response\":{\"usageMetadata\":{\"promptTokenCount\":1}}}\n\ndata: {\"response\":{\"usageMetadata\":{\"promptTokenCount\":7,\"candidatesTokenCount\":3}}}";
        let u = parse_stream_usage(stream).unwrap();
        assert_eq!((u.input_tokens, u.output_tokens), (Some(7), Some(3)));
    }

    #[test]
    fn reads_each_protocols_usage() {
        let cases: [(&[u8], Usage); 5] = [
            (
                br#"{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}"#,
                Usage { input_tokens: Some(3), output_tokens: Some(5), total_tokens: Some(8), cached_input_tokens: None },
            ),
            (
                br#"{"type":"response.completed","response":{"usage":{"input_tokens":4,"output_tokens":6,"total_tokens":10}}}"#,
                Usage { input_tokens: Some(4), output_tokens: Some(6), total_tokens: Some(10), cached_input_tokens: None },
            ),
            (
                br#"{"type":"message_start","message":{"usage":{"input_tokens":7,"output_tokens":1}}}"#,
                Usage { input_tokens: Some(7), output_tokens: Some(1), total_tokens: None, cached_input_tokens: None },
            ),
            (
                br#"{"type":"message_delta","usage":{"output_tokens":9}}"#,
                Usage { input_tokens: None, output_tokens: Some(9), total_tokens: None, cached_input_tokens: None },
            ),
            (
                br#"{"candidates":[],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":3,"totalTokenCount":5}}"#,
                Usage { input_tokens: Some(2), output_tokens: Some(3), total_tokens: Some(5), cached_input_tokens: None },
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

    #[test]
    fn cached_input_is_read_in_each_protocol_and_anthropics_is_added_to_the_input() {
        let cases: [(&[u8], (u64, u64)); 4] = [
            (
                br#"{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":60}}}"#,
                (100, 60),
            ),
            (
                br#"{"response":{"usage":{"input_tokens":100,"output_tokens":5,"input_tokens_details":{"cached_tokens":40}}}}"#,
                (100, 40),
            ),
            (
                br#"{"message":{"usage":{"input_tokens":10,"cache_read_input_tokens":80,"cache_creation_input_tokens":10,"output_tokens":1}}}"#,
                (100, 80),
            ),
            (
                br#"{"usageMetadata":{"promptTokenCount":100,"cachedContentTokenCount":30,"candidatesTokenCount":5}}"#,
                (100, 30),
            ),
        ];
        for (json, (input, cached)) in cases {
            let u = parse_usage(json).unwrap();
            assert_eq!(
                (u.input_tokens, u.cached_input_tokens),
                (Some(input), Some(cached)),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn the_requested_output_maximum_is_read_in_each_protocol() {
        for (body, want) in [
            (
                &br#"{"model":"m","max_tokens":512,"messages":[]}"#[..],
                Some(512),
            ),
            (
                br#"{"max_completion_tokens":300,"max_tokens":200}"#,
                Some(300),
            ),
            (br#"{"input":"x","max_output_tokens":77}"#, Some(77)),
            (
                br#"{"contents":[],"generationConfig":{"maxOutputTokens":64}}"#,
                Some(64),
            ),
            (br#"{"model":"m","max_tokens":null}"#, None),
            (br#"{"model":"m"}"#, None),
            (b"not json", None),
        ] {
            assert_eq!(
                requested_max_output(body),
                want,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_pre_check_passes_usage_under_an_escaped_key() {
        // Found by reading, confirmed by the `sse` fuzz target: the pre-check skipped usage
        // that `parse_usage` reads.
        let event = br#"{"u\u0073age":{"prompt_tokens":5}}"#;
        assert!(parse_usage(event).is_some());
        assert!(may_carry_usage(event));
        assert!(!may_carry_usage(br#"{"delta":"caf\u00e9"}"#));
    }

    #[test]
    fn the_scan_reads_what_the_full_parse_reads() {
        for doc in [
            &br#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#[..],
            br#"{"u\u0073age":{"prompt_tokens":5}}"#,
            br#"{"message":"not found"}"#,
            br#"{"message":null,"usage":null}"#,
            br#"{"message":{"usage":{"input_tokens":1},"usage":{"input_tokens":2}}}"#,
            br#"{"message":{"u\u0073age":{"input_tokens":3},"message":1,"message":2}}"#,
            br#"{"response":[1],"usage":{"prompt_tokens":1}}"#,
            br#"{"usage":{"prompt_tokens":"1"}}"#,
            br#"{"usage":{"prompt_tokens":1}} trailing"#,
            br#"  {"usageMetadata":{"promptTokenCount":2}}  "#,
            br#"{"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#,
            br#"{"usage":{"prompt_tokens":null,"prompt_tokens":2}}"#,
            br#"{"usage":{"prompt_tokens":01}}"#,
            br#"{"usage":{"prompt_tokens":-1}}"#,
            br#"{"usage":{"prompt_tokens":1.0}}"#,
            br#"{"usage":{"prompt_tokens":1e3}}"#,
            br#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
            br#"{"usage":{"prompt_tokens":18446744073709551615,"x":[{"y":1}]}}"#,
            br#"{"usage":{"prompt_tokens":0,"prompt_tokens_details":{"cached_tokens":3}}}"#,
            br#"{"usage":{"input_tokens_details":{"cached_tokens":3,"cached_tokens":4}}}"#,
            br#"{"usage":{"input_tokens_details":[],"input_tokens":1}}"#,
            br#"{"usage":{"prompt_tokens_details":null,"prompt_tokens_details":{}}}"#,
            br#"{"usage":{"prompt_tok\u0065ns":7}}"#,
            br#"{"usage":[]}"#,
            br#"{"usage":{"prompt_tokens":true}}"#,
            // Read in place, then what follows the object decides.
            br#"{"usage":{"prompt_tokens":1,}}"#,
            br#"{"usage":{"prompt_tokens":1}x}"#,
            br#"{"usage":{"prompt_tokens":1} , "usage":null}"#,
            br#"{"usage":{"prompt_tokens":1,"x":{"y":"}"}},"id":"a"}"#,
            br#"{"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":1},"z":[]}}"#,
            br#"{"usage":{"prompt_tokens_details":{"cached_tokens":1,}}}"#,
            br#"{"usage":{"prompt_tokens_details":7}}"#,
            br#"{"usage":{"prompt_tokens":1"#,
            br#"{"usageMetadata":{"promptTokenCount":2},"usage":{"input_tokens":3}}"#,
            // Counts read where they lie: what may follow one, and what runs on from it.
            br#"{"usage":{"prompt_tokens":null ,"total_tokens":7	}}"#,
            br#"{"usage":{"prompt_tokens":0 ,"total_tokens":12
}}"#,
            br#"{"usage":{"prompt_tokens":nullx}}"#,
            br#"{"usage":{"prompt_tokens":nul}}"#,
            br#"{"usage":{"prompt_tokens":1a}}"#,
            br#"{"usage":{"prompt_tokens":12]}"#,
            br#"{"usage":{"prompt_tokens":12"#,
            br#"{"usage":{"prompt_tokens_details":{"cached_tokens":01}}}"#,
            br#"{"usage":{"prompt_tokens_details":{"cached_tokens":5 }}}"#,
        ] {
            assert_eq!(
                parse_usage(doc),
                parse_usage_whole(doc),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512, failure_persistence: None, ..Default::default()
        })]

        #[test]
        fn the_scan_agrees_with_the_full_parse_on_any_json(
            doc in json_value(), pretty in proptest::bool::ANY,
        ) {
            let text = if pretty {
                serde_json::to_vec_pretty(&doc).unwrap()
            } else {
                serde_json::to_vec(&doc).unwrap()
            };
            proptest::prop_assert_eq!(parse_usage(&text), parse_usage_whole(&text));
            // The stream tap's pre-check lets through every event with usage.
            proptest::prop_assert!(parse_usage(&text).is_none() || may_carry_usage(&text));
        }
    }

    /// JSON values whose keys are often the ones usage hides under.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let key = prop_oneof![
            Just("usage".to_owned()),
            Just("usageMetadata".to_owned()),
            Just("message".to_owned()),
            Just("response".to_owned()),
            Just("prompt_tokens".to_owned()),
            Just("input_tokens".to_owned()),
            Just("cache_read_input_tokens".to_owned()),
            Just("promptTokenCount".to_owned()),
            Just("total_tokens".to_owned()),
            "[a-z\"\\{}\\[\\] ]{0,6}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[a-z\"\\{}\\[\\],: \n]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn counts_an_upstream_overstates_saturate_instead_of_overflowing() {
        // Found by reading, confirmed by the `sse` fuzz target: these sums overflowed (a panic
        // with overflow checks, a wrapped — tiny — count without).
        let u = parse_usage(
            br#"{"usage":{"input_tokens":18446744073709551615,"cache_read_input_tokens":1,"cache_creation_input_tokens":18446744073709551615}}"#,
        )
        .unwrap();
        assert_eq!(u.input_tokens, Some(u64::MAX));
        let u = parse_usage(
            br#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":1}}"#,
        )
        .unwrap();
        assert_eq!(u.total(), Some(u64::MAX));
    }
}
