//! The request probe: what the gateway reads out of a model request's JSON body before routing
//! it — the `model`, the `stream` flag, a Responses request's `previous_response_id` — with the
//! whole body checked to be JSON (a malformed request must not reach the provider), and the
//! rewrite of its `model` when the client named an alias or `backend:model`.
//!
//! The check is one pass over the body (`wire::json_valid`) that hands over the top-level
//! members: on the 50–200 KB bodies coding agents send it costs a fraction of `serde_json`'s
//! parse. Whatever that pass does not accept or cannot read plainly (an escaped key, a field
//! given twice, a field of the wrong type, nesting past its limit) goes to `serde_json`, which
//! gives the same probe or explains the error.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;

use super::error::ApiError;
use crate::wire::json_valid::{self, Rejected};

/// The fields the gateway needs from a request body; everything else is skipped unparsed.
/// (Public, with [`probe`] and [`rewrite_model`], for the fuzz target `fuzz/fuzz_targets/probe.rs`.)
#[derive(Deserialize)]
pub struct RequestProbe<'a> {
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub stream: Option<bool>,
    /// A Responses request continuing a stored response (its credential is asked for first).
    #[serde(borrow, default)]
    pub previous_response_id: Option<Cow<'a, str>>,
}

/// Parses the probe, or explains in the client's terms why the body is unusable.
pub fn probe(body: &[u8]) -> Result<RequestProbe<'_>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the request body is empty; a JSON object is required",
        ));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid("the request body must be a JSON object"));
    }
    // One pass checks the JSON and its UTF-8 and reads the fields; what it leaves is told apart
    // below, with the words of the error.
    if let Some(probe) = quick_probe(body) {
        return Ok(probe);
    }
    // JSON is UTF-8; serde_json does not decode the fields it skips, so check it here.
    if let Err(e) = std::str::from_utf8(body) {
        return Err(ApiError::invalid(format!(
            "the request body is not valid JSON: not UTF-8 at byte {}",
            e.valid_up_to()
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))
}

/// The probe in one checking pass over the body (`wire::json_valid`), when that pass accepts
/// it and the three fields are plainly written; `None` leaves the body to `serde_json`, which
/// gives the same probe or explains what is wrong. Equal to `serde_json`'s wherever it answers
/// (`tests::the_quick_probe_agrees_with_serde_json`).
fn quick_probe(body: &[u8]) -> Option<RequestProbe<'_>> {
    let mut probe = RequestProbe {
        model: None,
        stream: None,
        previous_response_id: None,
    };
    let mut seen = [false; 3];
    let read = json_valid::object_members(body, |key, value| {
        let field = match key {
            b"model" => 0,
            b"stream" => 1,
            b"previous_response_id" => 2,
            // A key with an escape may name a field (`"mod\u0065l"`).
            _ if key.contains(&b'\\') => return Err(Rejected),
            _ => return Ok(()),
        };
        // A field given twice is an error `serde_json` words.
        if std::mem::replace(&mut seen[field], true) {
            return Err(Rejected);
        }
        match field {
            0 => probe.model = optional_str(value)?,
            1 => probe.stream = optional_bool(value)?,
            _ => probe.previous_response_id = optional_str(value)?,
        }
        Ok(())
    });
    read.ok().map(|()| probe)
}

/// `null`, or a string (borrowed unless it has escapes); anything else is left to `serde_json`.
fn optional_str(value: &[u8]) -> Result<Option<Cow<'_, str>>, Rejected> {
    match value {
        b"null" => Ok(None),
        [b'"', text @ .., b'"'] if !text.contains(&b'\\') => std::str::from_utf8(text)
            .map(|s| Some(Cow::Borrowed(s)))
            .map_err(|_| Rejected),
        _ => serde_json::from_slice::<String>(value)
            .map(|s| Some(Cow::Owned(s)))
            .map_err(|_| Rejected),
    }
}

fn optional_bool(value: &[u8]) -> Result<Option<bool>, Rejected> {
    match value {
        b"null" => Ok(None),
        b"true" => Ok(Some(true)),
        b"false" => Ok(Some(false)),
        _ => Err(Rejected),
    }
}

/// Replaces the top-level `model` of a JSON object, keeping every other field as the client
/// wrote it, in order (`wire::json_edit`): whatever [`probe`] accepts, this accepts.
pub fn rewrite_model(body: &[u8], model: &str) -> Result<Bytes, ApiError> {
    let model = serde_json::value::to_raw_value(model).map_err(|_| ApiError::internal())?;
    crate::wire::json_edit::replace_member(body, "model", &model)
        .map(Bytes::from)
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
