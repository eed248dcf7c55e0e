//! The protocol translators (`translate/*`): requests, whole answers and streams between the
//! OpenAI Chat, OpenAI Responses, Anthropic Messages and Gemini dialects, and from the
//! subscription connectors' backend dialects (Code Assist, Codex, Kiro's binary event stream).
//!
//! Input: a first line `<what> <from> <to>` (`request`, `response` or `stream`; dialects `chat`,
//! `responses`, `anthropic`, `gemini`, and for `from` of an answer or a stream also
//! `code_assist`, `codex`, `kiro`; a word that is none of them picks by its first byte), the
//! rest the body or the upstream's stream; the input's last bytes also say how a stream is cut.
//! A decoded request is also written in each connector dialect (a JSON object or an error), and
//! a connector's stream is also collected into one answer (a value or an error).
//! Properties:
//! - Any bytes decode to a value or a `TranslateError`, never a panic.
//! - A decoded request encodes, in every dialect, to a JSON object or an error, and what is
//!   encoded decodes again in its dialect; the same for whole answers.
//! - A stream translates to the same bytes whether it arrives whole, cut as the input says, or
//!   byte by byte, and every `data:` payload the caller gets is JSON (or `[DONE]`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::translate::{
    AnswerContext, Dialect, StreamTranslator, collect_stream, decode_request, decode_response,
    encode_request, encode_response,
};
use portcullis::wire::sse::DataLineScanner;
use portcullis_fuzz::{chunk_seed, chunks, first_line};
use serde_json::Value;

const DIALECTS: [Dialect; 4] = [
    Dialect::Chat,
    Dialect::Responses,
    Dialect::Anthropic,
    Dialect::Gemini,
];

/// The connectors' dialects: backends only (nobody calls in them).
const BACKENDS: [Dialect; 3] = [Dialect::CodeAssist, Dialect::Codex, Dialect::Kiro];

fn dialect(word: &str) -> Dialect {
    match word {
        "chat" => Dialect::Chat,
        "responses" => Dialect::Responses,
        "anthropic" => Dialect::Anthropic,
        "gemini" => Dialect::Gemini,
        other => DIALECTS[usize::from(other.bytes().next().unwrap_or(0)) % 4],
    }
}

/// A dialect an answer or a stream may come in: a caller's or a connector's.
fn upstream_dialect(word: &str) -> Dialect {
    match word {
        "code_assist" => Dialect::CodeAssist,
        "codex" => Dialect::Codex,
        "kiro" => Dialect::Kiro,
        other => dialect(other),
    }
}

fn context(include_usage: bool) -> AnswerContext {
    AnswerContext {
        model: "fuzz-model".to_owned(),
        created: 1_700_000_000,
        include_usage,
        freeform_tools: vec!["apply_patch".to_owned()],
    }
}

fn is_json_object(bytes: &[u8]) -> bool {
    matches!(serde_json::from_slice::<Value>(bytes), Ok(Value::Object(_)))
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = first_line(data);
    let head = String::from_utf8_lossy(head);
    let mut words = head.split(' ');
    let what = words.next().unwrap_or("");
    let from_word = words.next().unwrap_or("");
    let to = dialect(words.next().unwrap_or(""));
    match what {
        "request" => check_request(dialect(from_word), body),
        "response" => check_response(upstream_dialect(from_word), body),
        _ => check_stream(upstream_dialect(from_word), to, body, chunk_seed(data)),
    }
});

fn check_request(from: Dialect, body: &[u8]) {
    let Ok(req) = decode_request(from, body) else {
        return;
    };
    for d in DIALECTS {
        let Ok(encoded) = encode_request(d, &req) else {
            continue;
        };
        assert!(is_json_object(&encoded), "{d:?} request is no JSON object");
        if let Err(e) = decode_request(d, &encoded) {
            panic!("{from:?} → {d:?}: the encoded request does not decode: {e}");
        }
    }
    for d in BACKENDS {
        if let Ok(encoded) = encode_request(d, &req) {
            assert!(is_json_object(&encoded), "{d:?} request is no JSON object");
        }
    }
}

fn check_response(from: Dialect, body: &[u8]) {
    let Ok(resp) = decode_response(from, body) else {
        return;
    };
    for d in DIALECTS {
        let encoded = encode_response(d, &resp, &context(false));
        assert!(is_json_object(&encoded), "{d:?} answer is no JSON object");
        if let Err(e) = decode_response(d, &encoded) {
            panic!("{from:?} → {d:?}: the encoded answer does not decode: {e}");
        }
    }
}

fn translate(from: Dialect, to: Dialect, pieces: &[&[u8]], include_usage: bool) -> Vec<u8> {
    let mut t = StreamTranslator::new(from, to, &context(include_usage));
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(t.feed(piece));
    }
    out.extend(t.finish());
    out
}

fn check_stream(from: Dialect, to: Dialect, body: &[u8], seed: &[u8]) {
    if BACKENDS.contains(&from) {
        // A caller that asked for one answer gets the stream collected: a value or an error.
        if let Ok(resp) = collect_stream(from, body) {
            assert!(is_json_object(&encode_response(to, &resp, &context(false))));
        }
    }
    let include_usage = seed.first().is_some_and(|b| b % 2 == 1);
    let whole = translate(from, to, &[body], include_usage);
    let cut = translate(from, to, &chunks(body, seed), include_usage);
    assert!(
        whole == cut,
        "{from:?} → {to:?}: the chunking changed the stream"
    );
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    let by_byte = translate(from, to, &bytes, include_usage);
    assert!(
        whole == by_byte,
        "{from:?} → {to:?}: byte by byte changed the stream"
    );
    let mut scanner = DataLineScanner::default();
    scanner.feed(&whole, |payload| {
        assert!(
            payload == b"[DONE]" || serde_json::from_slice::<Value>(payload).is_ok(),
            "{from:?} → {to:?}: a data line that is no JSON: {}",
            String::from_utf8_lossy(payload)
        );
    });
}
