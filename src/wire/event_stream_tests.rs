//! Tests of the event-stream framing: a published test vector, every header type, every cut
//! of a multi-message buffer, and each kind of malformed frame.

use proptest::prelude::*;

use super::*;

/// Three messages of different shapes, back to back.
fn three() -> (Vec<u8>, Vec<Message>) {
    let messages = vec![
        Message {
            headers: vec![
                Header::string(":event-type", "assistantResponseEvent"),
                Header::string(":message-type", "event"),
            ],
            payload: br#"{"content":"Hel"}"#.to_vec(),
        },
        Message {
            headers: every_type(),
            payload: Vec::new(),
        },
        Message {
            headers: vec![
                Header::string(":exception-type", "ThrottlingException"),
                Header::string(":message-type", "exception"),
            ],
            payload: br#"{"message":"Too many requests"}"#.to_vec(),
        },
    ];
    let bytes = messages
        .iter()
        .flat_map(|m| encode(&m.headers, &m.payload))
        .collect();
    (bytes, messages)
}

/// One header of each type, the fixed-size ones included.
fn every_type() -> Vec<Header> {
    let h = |name: &str, value| Header {
        name: name.into(),
        value,
    };
    vec![
        h("t", HeaderValue::Bool(true)),
        h("f", HeaderValue::Bool(false)),
        h("byte", HeaderValue::Byte(-7)),
        h("short", HeaderValue::Short(-300)),
        h("int", HeaderValue::Int(70_000)),
        h("long", HeaderValue::Long(-5_000_000_000)),
        h("bytes", HeaderValue::Bytes(vec![0, 255, 7])),
        h("string", HeaderValue::String("é".into())),
        h("time", HeaderValue::Timestamp(1_700_000_000_000)),
        h("uuid", HeaderValue::Uuid([9; 16])),
        Header::string(":message-type", "event"),
    ]
}

/// Every message a decoder yields when the stream arrives in `chunks`.
fn decode_in(chunks: &[&[u8]]) -> Result<Vec<Message>, FrameError> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for c in chunks {
        d.decode(c, &mut out)?;
    }
    d.finish()?;
    Ok(out)
}

#[test]
fn the_crc_is_ieee_crc32() {
    assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
}

#[test]
fn the_published_empty_message_vector_decodes_and_encodes() {
    // The `empty_message` vector of awslabs/aws-c-event-stream's test suite.
    let vector = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];
    assert_eq!(encode(&[], &[]), vector);
    let got = decode_in(&[&vector]).unwrap();
    assert_eq!(
        got,
        [Message {
            headers: vec![],
            payload: vec![]
        }]
    );
}

#[test]
fn every_header_type_round_trips() {
    let (bytes, messages) = three();
    let got = decode_in(&[&bytes]).unwrap();
    assert_eq!(got, messages);
    assert_eq!(got[0].message_type(), Some("event"));
    assert_eq!(got[0].kind(), Some("assistantResponseEvent"));
    assert_eq!(got[1].header_str("string"), Some("é"));
    assert_eq!(got[1].header_str("int"), None, "not a string header");
    assert_eq!(got[2].kind(), Some("ThrottlingException"));
    assert_eq!(got[2].message_type(), Some("exception"));
}

#[test]
fn every_two_and_three_way_cut_yields_the_same_messages() {
    let (bytes, messages) = three();
    for i in 0..=bytes.len() {
        assert_eq!(
            decode_in(&[&bytes[..i], &bytes[i..]]).unwrap(),
            messages,
            "cut at {i}"
        );
        for j in (i..=bytes.len()).step_by(7) {
            let chunks = [&bytes[..i], &bytes[i..j], &bytes[j..]];
            assert_eq!(decode_in(&chunks).unwrap(), messages, "cuts at {i}, {j}");
        }
    }
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_in(&bytewise).unwrap(), messages);
}

proptest! {
    #[test]
    fn any_chunking_yields_the_same_messages(cuts in proptest::collection::vec(0usize..400, 0..12)) {
        let (bytes, messages) = three();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut from = 0;
        for c in cuts {
            chunks.push(&bytes[from..c]);
            from = c;
        }
        chunks.push(&bytes[from..]);
        prop_assert_eq!(decode_in(&chunks).unwrap(), messages);
    }
}

#[test]
fn a_message_is_yielded_as_soon_as_it_is_whole() {
    let (bytes, _) = three();
    let first = encode(
        &[Header::string(":event-type", "assistantResponseEvent")],
        b"{}",
    );
    let mut d = Decoder::default();
    d.feed(&first[..first.len() - 1]);
    assert_eq!(d.next_message().unwrap(), None);
    d.feed(&first[first.len() - 1..]);
    assert!(d.next_message().unwrap().is_some());
    assert_eq!(d.next_message().unwrap(), None);
    d.feed(&bytes[..5]);
    assert_eq!(d.finish(), Err(FrameError::Truncated(5)));
}

#[test]
fn a_corrupted_payload_fails_the_message_crc_and_the_error_sticks() {
    let mut frame = event("assistantResponseEvent", br#"{"content":"x"}"#);
    let at = frame.len() - 6;
    frame[at] ^= 1;
    let mut d = Decoder::default();
    d.feed(&frame);
    let err = d.next_message().unwrap_err();
    assert!(matches!(err, FrameError::MessageCrc { .. }), "{err}");
    d.feed(&event("assistantResponseEvent", b"{}"));
    assert_eq!(d.next_message().unwrap_err(), err);
    assert_eq!(d.finish().unwrap_err(), err);
}

#[test]
fn a_corrupted_prelude_fails_before_its_length_is_trusted() {
    let mut frame = event("assistantResponseEvent", b"{}");
    frame[1] = 0x7f; // 2 GiB announced
    let err = decode_in(&[&frame]).unwrap_err();
    assert!(matches!(err, FrameError::PreludeCrc { .. }), "{err}");
}

/// A prelude announcing `total` and `headers` bytes, with a valid CRC.
fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&headers.to_be_bytes());
    let crc = CRC32.checksum(&p);
    p.extend_from_slice(&crc.to_be_bytes());
    p
}

#[test]
fn lengths_out_of_bounds_are_refused_from_the_prelude_alone() {
    let over = decode_in(&[&prelude(17 * 1024 * 1024, 0)]).unwrap_err();
    assert_eq!(
        over,
        FrameError::TooLong {
            len: 17 * 1024 * 1024,
            max: MAX_MESSAGE_LEN
        }
    );
    let mut small = Decoder::with_max(64);
    small.feed(&prelude(65, 0));
    assert!(matches!(
        small.next_message(),
        Err(FrameError::TooLong { len: 65, max: 64 })
    ));
    assert_eq!(
        decode_in(&[&prelude(15, 0)]).unwrap_err(),
        FrameError::TooShort { len: 15 }
    );
    assert_eq!(
        decode_in(&[&prelude(20, 5)]).unwrap_err(),
        FrameError::HeadersTooLong {
            headers: 5,
            total: 20
        }
    );
}

/// A whole frame whose headers block is `headers` (CRCs valid).
fn frame_with_raw_headers(headers: &[u8]) -> Vec<u8> {
    let total = (16 + headers.len()) as u32;
    let mut f = prelude(total, headers.len() as u32);
    f.extend_from_slice(headers);
    let crc = CRC32.checksum(&f);
    f.extend_from_slice(&crc.to_be_bytes());
    f
}

#[test]
fn malformed_headers_are_typed_errors() {
    let cases: [(&[u8], &str); 5] = [
        (&[5, b'a'], "cut short"),
        (&[1, b'a', 42], "unknown value type 42"),
        (&[1, b'a', 4, 0, 0], "cut short"),
        (&[1, b'a', 7, 0, 3, b'x'], "cut short"),
        (&[1, b'a', 7, 0, 1, 0xff], "not UTF-8"),
    ];
    for (headers, says) in cases {
        let err = decode_in(&[&frame_with_raw_headers(headers)]).unwrap_err();
        assert!(
            matches!(&err, FrameError::Header(m) if m.contains(says)),
            "{headers:?}: {err}"
        );
    }
}

#[test]
fn the_helpers_write_the_headers_aws_json_services_send() {
    let got = decode_in(&[&event("toolUseEvent", b"{}"), &exception("X", b"{}")]).unwrap();
    assert_eq!(got[0].message_type(), Some("event"));
    assert_eq!(got[0].kind(), Some("toolUseEvent"));
    assert_eq!(got[0].header_str(":content-type"), Some("application/json"));
    assert_eq!(got[1].message_type(), Some("exception"));
    assert_eq!(got[1].kind(), Some("X"));
}
