//! The Gemini CLI connector's dialect: Gemini `generateContent` inside the Code Assist
//! envelope (`cloudcode-pa.googleapis.com/v1internal`, what the Gemini CLI sends with its
//! Google login). A request is the Gemini codec's body; the envelope around it —
//! `{"model", "project", "request"}` — is added per attempt by the upstream (the project is the
//! credential's). An answer, whole or each stream chunk, is `{"response": <Gemini answer>}`:
//! unwrapped here, then read by the Gemini codec.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::TranslateError;
use super::model::{Event, Response};

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    response: Option<&'a RawValue>,
}

/// The Gemini answer inside a Code Assist answer (or chunk).
fn unwrap(body: &[u8]) -> Result<&[u8], TranslateError> {
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|e| TranslateError::Upstream(format!("a Code Assist answer is not JSON: {e}")))?;
    envelope
        .response
        .map(|r| r.get().as_bytes())
        .ok_or_else(|| TranslateError::Upstream("a Code Assist answer without `response`".into()))
}

/// Reads a whole Code Assist answer.
pub fn decode_response(body: &[u8]) -> Result<Response, TranslateError> {
    super::gemini::decode_response(unwrap(body)?)
}

/// Reads a Code Assist stream: each chunk unwrapped, then the Gemini decoder.
#[derive(Debug, Default)]
pub struct StreamDecoder(super::gemini::StreamDecoder);

impl StreamDecoder {
    /// One `data:` payload.
    pub fn data(&mut self, data: &[u8], out: &mut Vec<Event>) -> Result<(), TranslateError> {
        self.0.data(unwrap(data)?, out)
    }

    /// The stream ended.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.0.finish(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::model::{Part, StopReason};

    const ANSWER: &str = r#"{"response":{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":2,"totalTokenCount":6},"modelVersion":"gemini-2.5-pro"},"traceId":"t1"}"#;

    #[test]
    fn a_whole_answer_is_unwrapped() {
        let r = decode_response(ANSWER.as_bytes()).unwrap();
        assert_eq!(r.content, vec![Part::Text("Hello".into())]);
        assert_eq!(r.stop, StopReason::EndTurn);
        assert_eq!((r.usage.input, r.usage.output), (4, 2));
    }

    #[test]
    fn stream_chunks_are_unwrapped_and_anything_else_is_refused() {
        let mut d = StreamDecoder::default();
        let mut out = Vec::new();
        d.data(ANSWER.as_bytes(), &mut out).unwrap();
        d.finish(&mut out);
        assert!(out.contains(&Event::Text("Hello".into())), "{out:?}");
        assert!(decode_response(br#"{"candidates":[]}"#).is_err());
        assert!(decode_response(b"nope").is_err());
    }
}
