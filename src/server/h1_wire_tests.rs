//! The server's HTTP/1.1 wire format: request heads parsed or refused, answer heads written.

use super::*;
use crate::upstream::h1_wire::Decoded;

fn parse(head: &str) -> Result<Option<RequestHead>, HeadError> {
    parse_request(
        &mut BytesMut::from(head.as_bytes()),
        &mut KnownHead::default(),
        64 * 1024,
    )
}

fn refused(head: &str) -> StatusCode {
    match parse(head) {
        Err(e) => e.status(),
        Ok(other) => panic!("accepted {head:?}: {other:?}"),
    }
}

#[test]
fn a_head_becomes_a_request_sharing_the_buffer() {
    let mut buf = BytesMut::from(
        &b"\r\nPOST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: gw\r\nX-Two: a\r\nx-two: b\r\n\
           Content-Length: 5\r\n\r\nhelloGET"[..],
    );
    let head = parse_request(&mut buf, &mut KnownHead::default(), 1024)
        .unwrap()
        .unwrap();
    let r = &head.request;
    assert_eq!(r.method(), Method::POST);
    assert_eq!(r.uri().path(), "/v1/chat/completions");
    assert_eq!(r.uri().query(), Some("x=1"));
    assert_eq!(r.version(), Version::HTTP_11);
    assert_eq!(r.headers()["host"], "gw");
    let twos: Vec<_> = r.headers().get_all("x-two").iter().collect();
    assert_eq!(twos, ["a", "b"]);
    assert_eq!(head.framing, Framing::Length(5));
    assert!(head.keep_alive && !head.expect_continue);
    assert_eq!(
        &buf[..],
        b"helloGET",
        "the body and what follows stay in the buffer"
    );
}

#[test]
fn a_partial_head_waits_and_an_oversized_one_is_431() {
    assert!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    let mut big = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "[..]);
    big.extend_from_slice(&[b'a'; 2000]);
    assert_eq!(
        parse_request(&mut big.clone(), &mut KnownHead::default(), 1024).unwrap_err(),
        HeadError::TooLarge,
        "partial"
    );
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        parse_request(&mut big, &mut KnownHead::default(), 1024).unwrap_err(),
        HeadError::TooLarge,
        "whole"
    );
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        refused(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n")),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[test]
fn heads_that_could_be_read_two_ways_are_refused() {
    for head in [
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n folded: v\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\r\nX: a\rb\r\n\r\n",
    ] {
        assert_eq!(refused(head), StatusCode::BAD_REQUEST, "{head:?}");
    }
    for head in [
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n",
    ] {
        assert_eq!(refused(head), StatusCode::NOT_IMPLEMENTED, "{head:?}");
    }
}

#[test]
fn framing_keep_alive_and_continue_follow_rfc_9112() {
    let h = parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, Framing::Chunked(Chunked::Size(0, 0)));
    let h = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7, 7\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, Framing::Length(7));
    let h = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!h.keep_alive);
    let h = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(
        !h.keep_alive,
        "HTTP/1.0 closes unless asked, and needs no Host"
    );
    assert_eq!(h.request.version(), Version::HTTP_10);
    let h = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.keep_alive);
    let h =
        parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
    assert!(h.expect_continue);
    let h = parse("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!h.expect_continue, "nothing to continue without a body");
    let h = parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.request.uri(), "*");
    let h = parse("GET http://gw.example/v1/models HTTP/1.1\r\nHost: gw.example\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.request.uri().path(), "/v1/models");
}

#[test]
fn response_heads_carry_the_servers_framing_only() {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from_static("999"));
    headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    headers.insert("connection", HeaderValue::from_static("upgrade"));
    let date = b"Sat, 05 Dec 2026 17:00:00 GMT";
    let mut out = Vec::new();
    let frame = ResponseFrame {
        status: StatusCode::OK,
        body: BodyFraming::Length(12),
        close: false,
        keep_alive_10: false,
        date,
    };
    encode_response_head(&mut out, &frame, &headers);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
         date: Sat, 05 Dec 2026 17:00:00 GMT\r\ncontent-length: 12\r\n\r\n"
    );

    let mut out = Vec::new();
    headers.insert("date", HeaderValue::from_static("upstream's"));
    let frame = ResponseFrame {
        status: StatusCode::from_u16(599).unwrap(),
        body: BodyFraming::Chunked,
        close: true,
        ..frame
    };
    encode_response_head(&mut out, &frame, &headers);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 599 Unknown\r\n"), "{text}");
    assert!(
        text.contains("date: upstream's\r\n") && !text.contains("GMT"),
        "{text}"
    );
    assert!(
        text.ends_with("transfer-encoding: chunked\r\nconnection: close\r\n\r\n"),
        "{text}"
    );

    let mut out = Vec::new();
    let frame = ResponseFrame {
        status: StatusCode::OK,
        body: BodyFraming::None,
        close: false,
        keep_alive_10: true,
        date,
    };
    encode_response_head(&mut out, &frame, &headers);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("content-length: 999\r\n"),
        "a HEAD answer keeps the length it would have: {text}"
    );
    assert!(text.ends_with("connection: keep-alive\r\n\r\n"), "{text}");

    let mut out = Vec::new();
    let frame = ResponseFrame {
        status: StatusCode::NO_CONTENT,
        ..frame
    };
    encode_response_head(&mut out, &frame, &headers);
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains("content-length"),
        "a 204 has no length: {text}"
    );
}

#[test]
fn chunk_heads_are_hex_and_a_plain_answer_closes() {
    let mut out = Vec::new();
    chunk_head(&mut out, 0x1f3a);
    chunk_head(&mut out, 1);
    assert_eq!(out, b"1f3a\r\n1\r\n");
    let text = String::from_utf8(plain_response(StatusCode::BAD_REQUEST, b"D")).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(
        text.ends_with("content-length: 11\r\nconnection: close\r\n\r\nBad Request"),
        "{text}"
    );
}

#[test]
fn an_unread_body_is_skipped_only_when_it_is_all_here() {
    let mut buf = BytesMut::from(&b"abcGET / HTTP/1.1"[..]);
    let mut framing = Framing::Length(3);
    assert!(discard(&mut framing, &mut buf).unwrap());
    assert_eq!(&buf[..], b"GET / HTTP/1.1");
    let mut buf = BytesMut::from(&b"ab"[..]);
    let mut framing = Framing::Length(3);
    assert!(!discard(&mut framing, &mut buf).unwrap());
    let mut buf = BytesMut::from(&b"3\r\nabc\r\n0\r\n\r\nnext"[..]);
    let mut framing = Framing::Chunked(Chunked::Size(0, 0));
    assert!(discard(&mut framing, &mut buf).unwrap());
    assert_eq!(&buf[..], b"next");
    let mut framing = Framing::Chunked(Chunked::Size(0, 0));
    assert!(discard(&mut framing, &mut BytesMut::from(&b"zz\r\n"[..])).is_err());
    assert_eq!(
        Framing::Length(0).decode(&mut BytesMut::new()).unwrap(),
        Decoded::End
    );
}

#[test]
fn the_heads_of_one_connection_share_its_known_names() {
    let mut names = KnownHead::default();
    let mut buf = BytesMut::from(
        &b"GET /a HTTP/1.1\r\nHost: gw\r\nX-Trace: 1\r\n\r\n\
           GET /b HTTP/1.1\r\nHost: gw\r\nX-Other: 2\r\nx-trace: 3\r\n\r\n\
           GET /c HTTP/1.1\r\nHOST: gw\r\nX-Trace: 4\r\n\r\n"[..],
    );
    let mut heads = Vec::new();
    while let Some(head) = parse_request(&mut buf, &mut names, 1024).unwrap() {
        let h = head.request.headers();
        heads.push(
            h.iter()
                .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    assert_eq!(
        heads,
        [
            "host=gw x-trace=1",
            "host=gw x-other=2 x-trace=3",
            "host=gw x-trace=4"
        ]
    );
}

#[test]
fn a_known_target_is_the_uri_its_bytes_parse_to() {
    let mut known = KnownTarget::default();
    let long = format!("/{}", "a".repeat(KnownTarget::MAX_LEN));
    let targets = [
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/chat/completions?x=1",
        "/v1/chat/completions?x=1",
        "/v1/chat/completion",
        "/v1/chat/completions#frag",
        "/v1/chat/completions",
        "*",
        "*",
        "http://gw/v1/chat/completions",
        "/v1/chat/completions",
        long.as_str(),
        long.as_str(),
        "/v1/models?",
        "/v1/models",
        "/v1/models?",
        "not a target",
        "/v1/models?",
    ];
    for target in targets {
        let head = Bytes::copy_from_slice(format!("GET {target} HTTP/1.1").as_bytes());
        let at = 4..4 + target.len();
        let want = Uri::from_maybe_shared(head.slice(at.clone()));
        let got = known.uri(&head, at);
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{target}");
        if let (Ok(got), Ok(want)) = (&got, &want) {
            assert_eq!(got, want, "{target}");
            assert_eq!(got.to_string(), want.to_string(), "{target}");
            assert_eq!(got.query(), want.query(), "{target}");
        }
        drop((got, want));
        assert!(head.is_unique(), "nothing kept holds the head of {target}");
    }
    let kept = known.0.as_ref().map(ToString::to_string);
    assert_eq!(kept.as_deref(), Some("/v1/models?"));
    // Found again, it is the kept `Uri`: its bytes, not a new parse's.
    let head = Bytes::from_static(b"GET /v1/models? HTTP/1.1");
    let again = known.uri(&head, 4..15).unwrap();
    let kept = known.0.as_ref().unwrap();
    assert_eq!(again.path().as_ptr(), kept.path().as_ptr());
}
