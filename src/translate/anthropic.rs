//! PLACEHOLDER codec for the anthropic dialect (being written; see translate.rs for the contract).

use super::model::{Event, Request, Response};
use super::{AnswerContext, TranslateError};

fn todo() -> TranslateError {
    TranslateError::Unsupported("the anthropic codec is not written yet".into())
}

/// Reads a request body.
pub fn decode_request(_body: &[u8]) -> Result<Request, TranslateError> {
    Err(todo())
}

/// Writes a request body.
pub fn encode_request(_req: &Request) -> Result<Vec<u8>, TranslateError> {
    Err(todo())
}

/// Reads a whole answer.
pub fn decode_response(_body: &[u8]) -> Result<Response, TranslateError> {
    Err(todo())
}

/// Writes a whole answer.
pub fn encode_response(_resp: &Response, _ctx: &AnswerContext) -> Vec<u8> {
    Vec::new()
}

/// Reads a stream.
#[derive(Debug, Default)]
pub struct StreamDecoder {}

impl StreamDecoder {
    /// One `data:` payload.
    pub fn data(&mut self, _data: &[u8], _out: &mut Vec<Event>) -> Result<(), TranslateError> {
        Err(todo())
    }

    /// End of the upstream stream.
    pub fn finish(&mut self, _out: &mut Vec<Event>) {}
}

/// Writes a stream.
#[derive(Debug)]
pub struct StreamEncoder {}

impl StreamEncoder {
    /// For the request `ctx` describes.
    pub fn new(_ctx: &AnswerContext) -> Self {
        Self {}
    }

    /// One event.
    pub fn event(&mut self, _event: Event, _out: &mut Vec<u8>) {}

    /// End of stream.
    pub fn finish(&mut self, _out: &mut Vec<u8>) {}
}
