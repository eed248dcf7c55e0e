//! The request probe (`api/probe.rs`): the model and stream flag read out of a client's body,
//! and the rewrite of its `model` when the client named an alias or `backend:model`.
//!
//! Input: the first line is the model name the rewrite puts in, the rest the request body.
//! Properties:
//! - `probe` answers for any bytes (a refusal is the client's 400, never a panic); what it
//!   accepts is a JSON object. Its one-pass check agrees with serde_json: a UTF-8 object is
//!   probed exactly when serde_json reads it into `RequestProbe`, with the same fields.
//! - When the probe succeeds, `rewrite_model` does too, and its output is JSON that probes to the
//!   new model with the same `stream` and `previous_response_id`; rewriting it again changes
//!   nothing; and where serde_json's `Value` can hold the body, every other field is the
//!   original one, in order.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::api::probe::{RequestProbe, probe, rewrite_model};
use portcullis_fuzz::first_line;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let (model, body) = first_line(data);
    let model = String::from_utf8_lossy(model);
    let reference = serde_json::from_slice::<RequestProbe>(body);
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let Ok(probed) = probe(body) else {
        assert!(
            reference.is_err() || !object || std::str::from_utf8(body).is_err(),
            "serde_json reads what the probe refused"
        );
        return;
    };
    let reference = reference.expect("the probe accepted what serde_json refuses");
    assert_eq!(probed.model, reference.model);
    assert_eq!(probed.stream, reference.stream);
    assert_eq!(probed.previous_response_id, reference.previous_response_id);
    let rewritten = rewrite_model(body, &model).expect("the probe accepted it, the rewrite must");
    serde_json::from_slice::<&RawValue>(&rewritten).expect("the rewrite wrote no JSON");
    let again = probe(&rewritten).expect("the rewritten body must probe");
    assert_eq!(again.model.as_deref(), Some(&*model));
    assert_eq!(again.stream, probed.stream);
    assert_eq!(again.previous_response_id, probed.previous_response_id);
    let twice = rewrite_model(&rewritten, &model).expect("a rewritten body rewrites");
    assert_eq!(twice, rewritten, "a second rewrite changed it");
    // Where serde_json's `Value` can hold the body, every other member is the same, in order.
    if let Ok(original) = serde_json::from_slice::<Map<String, Value>>(body) {
        let doc: Map<String, Value> =
            serde_json::from_slice(&rewritten).expect("the rewrite wrote no JSON object");
        assert_eq!(
            doc.get("model"),
            Some(&Value::String(model.clone().into_owned()))
        );
        let others = |m: &Map<String, Value>| -> Vec<(String, Value)> {
            m.iter()
                .filter(|(k, _)| *k != "model")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        assert_eq!(others(&doc), others(&original), "other fields changed");
    }
});
