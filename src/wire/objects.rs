//! Objects a provider keeps for later calls (OpenAI stored responses, Anthropic message
//! batches): the id an answer creates, and the batch's `results_url`, which points at the
//! provider and is rewritten to the gateway's own path so clients fetch the results through it.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Created<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    /// A Responses stream event (`response.created`, …) carries the object here.
    #[serde(borrow, default)]
    response: Option<Inner<'a>>,
}

/// The id of the object a creating answer describes: its top-level `id` (a response, a batch),
/// or `response.id` of a Responses stream event. `None` when the document has neither.
pub fn created_object_id(json: &[u8]) -> Option<String> {
    let c: Created<'_> = serde_json::from_slice(json).ok()?;
    c.response
        .and_then(|r| r.id)
        .or(c.id)
        .filter(|id| !id.is_empty())
        .map(Cow::into_owned)
}

/// The path a batch's results are fetched at through the gateway.
fn results_path(id: &str) -> String {
    format!("/v1/messages/batches/{id}/results")
}

/// A message batch answer (one batch, or a list's `data`) with each `results_url` replaced by
/// the gateway's path for it (relative, so a client joins it to its own base URL); `None` when
/// there is nothing to rewrite (the body is relayed as it is).
pub fn local_results_urls(body: &[u8]) -> Option<Bytes> {
    fn fix(batch: &mut Value) -> bool {
        let Some(id) = batch.get("id").and_then(Value::as_str).map(results_path) else {
            return false;
        };
        match batch.get_mut("results_url") {
            Some(url) if url.is_string() && url.as_str() != Some(&id) => {
                *url = Value::String(id);
                true
            }
            _ => false,
        }
    }
    memchr::memmem::find(body, b"results_url")?;
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let mut changed = fix(&mut doc);
    if let Some(list) = doc.get_mut("data").and_then(Value::as_array_mut) {
        for batch in list {
            changed |= fix(batch);
        }
    }
    changed
        .then(|| serde_json::to_vec(&doc).ok().map(Bytes::from))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_ids_come_from_the_object_or_the_stream_event() {
        assert_eq!(
            created_object_id(br#"{"id":"resp_1","object":"response","usage":{}}"#).as_deref(),
            Some("resp_1")
        );
        assert_eq!(
            created_object_id(
                br#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_2"}}"#
            )
            .as_deref(),
            Some("resp_2")
        );
        for none in [&b"{}"[..], b"not json", br#"{"id":""}"#, br#"{"id":3}"#] {
            assert_eq!(created_object_id(none), None);
        }
    }

    #[test]
    fn results_urls_point_at_the_gateway() {
        let one = br#"{"id":"msgbatch_1","type":"message_batch","results_url":"https://api.anthropic.com/v1/messages/batches/msgbatch_1/results"}"#;
        let v: Value = serde_json::from_slice(&local_results_urls(one).unwrap()).unwrap();
        assert_eq!(v["results_url"], "/v1/messages/batches/msgbatch_1/results");
        assert_eq!(v["type"], "message_batch");
        let list = br#"{"data":[{"id":"a","results_url":null},{"id":"b","results_url":"https://x/b"}],"has_more":false}"#;
        let v: Value = serde_json::from_slice(&local_results_urls(list).unwrap()).unwrap();
        assert!(v["data"][0]["results_url"].is_null());
        assert_eq!(
            v["data"][1]["results_url"],
            "/v1/messages/batches/b/results"
        );
        assert!(local_results_urls(br#"{"id":"a","results_url":null}"#).is_none());
        assert!(local_results_urls(br#"{"id":"a"}"#).is_none());
    }
}
