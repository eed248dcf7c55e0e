//! Tests of the request probe: its fields, and the one-pass check against serde_json.

use super::*;

#[test]
fn probe_reads_model_and_stream_and_rejects_bad_bodies() {
    let p = probe(br#"{"model":"openai:gpt-4o","stream":true,"messages":[{"x":[1,2]}]}"#).unwrap();
    assert_eq!(p.model.as_deref(), Some("openai:gpt-4o"));
    assert_eq!(p.stream, Some(true));
    // `{"a":"\xff"}` found by the `probe` fuzz target: probed, but no JSON (not UTF-8).
    for bad in [
        &b""[..],
        b"  ",
        b"[1]",
        b"{\"model\":",
        b"not json",
        b"{\"a\":\"\xff\"}",
    ] {
        assert!(probe(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn rewrite_keeps_other_fields_in_order() {
    let out = rewrite_model(br#"{"z":1,"model":"a:b","extra":{"k":[1]}}"#, "b").unwrap();
    assert_eq!(&out[..], br#"{"z":1,"model":"b","extra":{"k":[1]}}"#);
}

/// The fields as a comparable tuple.
type Fields = (Option<String>, Option<bool>, Option<String>);

fn fields(p: &RequestProbe) -> Fields {
    (
        p.model.as_deref().map(str::to_owned),
        p.stream,
        p.previous_response_id.as_deref().map(str::to_owned),
    )
}

fn by_serde(body: &[u8]) -> Option<Fields> {
    serde_json::from_slice::<RequestProbe>(body)
        .ok()
        .map(|p| fields(&p))
}

#[test]
fn the_quick_probe_reads_plain_fields_and_leaves_the_rest_to_serde_json() {
    let plain =
        br#"{"model":"gpt-4o","stream":false,"previous_response_id":"resp_1","messages":[]}"#;
    let quick = quick_probe(plain).map(|p| fields(&p));
    assert_eq!(quick, by_serde(plain));
    assert!(matches!(
        quick_probe(plain).and_then(|p| p.model),
        Some(Cow::Borrowed("gpt-4o"))
    ));
    let escaped = br#"{"model":"caf\u00e9 \"x\"","stream":null}"#;
    assert_eq!(
        quick_probe(escaped).map(|p| fields(&p)),
        Some((Some("café \"x\"".to_owned()), None, None))
    );
    // serde_json's answers: an escaped key naming a field, a field twice, a wrong type, a
    // string with a lone surrogate as the model.
    for left in [
        &br#"{"mod\u0065l":"a"}"#[..],
        br#"{"model":"a","model":"b"}"#,
        br#"{"stream":null,"stream":true}"#,
        br#"{"stream":"yes"}"#,
        br#"{"model":4}"#,
        br#"{"previous_response_id":{}}"#,
        br#"{"model":"\ud800"}"#,
    ] {
        assert!(
            quick_probe(left).is_none(),
            "{}",
            String::from_utf8_lossy(left)
        );
    }
    assert_eq!(
        probe(br#"{"mod\u0065l":"a"}"#).map(|p| fields(&p)).ok(),
        Some((Some("a".to_owned()), None, None))
    );
    let twice = probe(br#"{"model":"a","model":"b"}"#)
        .err()
        .map(|e| e.message);
    assert!(
        twice
            .as_deref()
            .is_some_and(|m| m.contains("duplicate field `model`")),
        "{twice:?}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    /// Whatever the members, the quick probe answers only what serde_json answers.
    #[test]
    fn the_quick_probe_agrees_with_serde_json(
        members in proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "model", "stream", "previous_response_id", "mod\\u0065l", "messages", "models",
                ]),
                proptest::sample::select(vec![
                    "null", "true", "false", "0", "\"gpt\"", "\"a\\nb\"", "\"\\ud83d\\ude00\"",
                    "\"\\udc00\"", "[]", "{\"model\":1}", "\"é→\"", "\"\"",
                ]),
            ),
            0..6,
        ),
    ) {
        let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let body = format!("{{{}}}", body.join(","));
        let quick = quick_probe(body.as_bytes()).map(|p| fields(&p));
        let reference = by_serde(body.as_bytes());
        if quick.is_some() {
            proptest::prop_assert_eq!(&quick, &reference, "{}", body);
        }
        proptest::prop_assert_eq!(
            probe(body.as_bytes()).ok().map(|p| fields(&p)),
            reference,
            "{}",
            body
        );
    }
}
