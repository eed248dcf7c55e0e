//! The HTTP/1.1 codec on its own: request heads, answer heads, body framing, and the chunked
//! decoder fed in every split.

use proptest::prelude::*;

use super::*;
use http::HeaderMap;

fn encode(
    method: Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: usize,
) -> String {
    let mut out = Vec::new();
    let host = HeaderValue::from_static("example.com:8000");
    let defaults = [(header::ACCEPT, HeaderValue::from_static("*/*"))];
    encode_head(
        &mut out,
        &method,
        (path, query),
        &host,
        &HeaderLines::from(headers.clone()),
        &defaults,
        body,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_request_head_carries_the_target_host_headers_and_length() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.append("x-multi", HeaderValue::from_static("a"));
    headers.append("x-multi", HeaderValue::from_static("b"));
    // Framing headers are the client's to write, whatever the prepared headers say.
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    headers.insert(header::HOST, HeaderValue::from_static("evil.example"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    let head = encode(
        Method::POST,
        "/v1/chat/completions",
        Some("a=1&b=2"),
        &headers,
        1234,
    );
    assert_eq!(
        head,
        "POST /v1/chat/completions?a=1&b=2 HTTP/1.1\r\nhost: example.com:8000\r\n\
         content-type: application/json\r\nx-multi: a\r\nx-multi: b\r\naccept: */*\r\n\
         content-length: 1234\r\n\r\n"
    );
    // A default gives way to the request's own header.
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    let head = encode(Method::POST, "/p", None, &headers, 0);
    assert!(head.contains("accept: text/event-stream\r\n"), "{head}");
    assert!(!head.contains("*/*"), "{head}");
    assert!(head.ends_with("content-length: 0\r\n\r\n"), "{head}");
}

#[test]
fn a_bodiless_get_states_no_length() {
    let head = encode(Method::GET, "/v1/models", None, &HeaderMap::new(), 0);
    assert_eq!(
        head,
        "GET /v1/models HTTP/1.1\r\nhost: example.com:8000\r\naccept: */*\r\n\r\n"
    );
    let head = encode(Method::DELETE, "/v1/files/f", None, &HeaderMap::new(), 0);
    assert!(head.ends_with("content-length: 0\r\n\r\n"), "{head}");
}

#[test]
fn a_target_that_would_split_the_request_line_is_refused() {
    let host = HeaderValue::from_static("h");
    for (path, query) in [
        ("/a b", None),
        ("/a\r\nx: y", None),
        ("/ok", Some("q=a b")),
        ("relative", None),
        ("/del\u{7f}", None),
    ] {
        let mut out = Vec::new();
        let r = encode_head(
            &mut out,
            &Method::GET,
            (path, query),
            &host,
            &HeaderLines::default(),
            &[],
            0,
        );
        assert!(r.is_err(), "{path:?} {query:?}");
    }
}

#[test]
fn decimal_lengths() {
    let mut buf = [0u8; 20];
    for n in [0u64, 7, 10, 1234, u64::MAX] {
        assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
    }
}

fn parse(raw: &str, method: Method) -> Result<Option<Head>, WireError> {
    let mut buf = BytesMut::from(raw);
    parse_head(&mut buf, &mut KnownNames::default(), &method)
}

fn head(raw: &str) -> Head {
    parse(raw, Method::POST).unwrap().unwrap()
}

#[test]
fn an_answer_head_is_parsed_into_status_headers_and_framing() {
    let mut buf = BytesMut::from(
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-A: 1\r\nx-a: 2\r\n\
         Content-Length: 5\r\n\r\nhello",
    );
    let h = parse_head(&mut buf, &mut KnownNames::default(), &Method::POST)
        .unwrap()
        .unwrap();
    assert_eq!(h.status, StatusCode::CREATED);
    assert_eq!(h.version, Version::HTTP_11);
    assert_eq!(
        h.headers.get(&header::CONTENT_TYPE),
        Some(&HeaderValue::from_static("application/json"))
    );
    let xa: Vec<_> = h
        .headers
        .iter()
        .filter(|(n, _)| n.as_str() == "x-a")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(xa, ["1", "2"]);
    assert_eq!(h.headers.len(), 4, "every line kept, in order");
    assert_eq!(h.framing, Framing::Length(5));
    assert!(h.keep_alive);
    assert_eq!(&buf[..], b"hello", "the body stays in the buffer");
}

#[test]
fn a_partial_head_asks_for_more_and_a_huge_one_is_refused() {
    assert!(
        parse("HTTP/1.1 200 OK\r\nContent-Le", Method::POST)
            .unwrap()
            .is_none()
    );
    let huge = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD));
    assert!(matches!(
        parse(&huge, Method::POST),
        Err(WireError::HeadTooLarge)
    ));
    // The same whether it arrives in pieces or whole.
    let whole = format!("{huge}\r\n\r\n");
    let refused = parse(&whole, Method::POST);
    assert!(matches!(refused, Err(WireError::HeadTooLarge)));
    let big = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(100 * 1024));
    assert!(parse(&big, Method::POST).unwrap().is_some());
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    let raw = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
    assert!(matches!(parse(&raw, Method::POST), Err(WireError::Head(_))));
    assert!(matches!(
        parse("HTTP/1.1 099 Odd\r\n\r\n", Method::POST),
        Err(WireError::Status)
    ));
    assert!(parse("garbage\r\n\r\n", Method::POST).is_err());
}

#[test]
fn informational_heads_are_skipped_and_a_protocol_switch_refused() {
    let h = head(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    );
    assert_eq!(h.status, StatusCode::OK);
    assert!(!h.headers.contains(&header::LINK));
    // A 100 whose final answer has not arrived yet: read more.
    assert!(
        parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2", Method::POST)
            .unwrap()
            .is_none()
    );
    let switch = parse(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n",
        Method::POST,
    );
    assert!(matches!(switch, Err(WireError::Switch)));
}

#[test]
fn framing_follows_rfc_9112() {
    let f = |raw: &str| {
        let h = head(raw);
        (h.framing, h.keep_alive)
    };
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n"),
        (Framing::Length(12), true)
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ncontent-length: 12, 12\r\ncontent-length: 12\r\n\r\n"),
        (Framing::Length(12), true)
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"),
        (Framing::Chunked(Chunked::Size(0, 0)), true)
    );
    // Transfer-Encoding wins over Content-Length, and such a connection is not reused.
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n"),
        (Framing::Chunked(Chunked::Size(0, 0)), false)
    );
    // A coding that does not end in chunked, or no length at all: until the connection closes.
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"),
        (Framing::Close, false)
    );
    // The last coding of the last line counts; a length beside it, even unreadable, only
    // stops the connection's reuse.
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: gzip\r\n\r\n"),
        (Framing::Close, false)
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"),
        (Framing::Chunked(Chunked::Size(0, 0)), true)
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ncontent-length: x\r\ntransfer-encoding: chunked\r\n\r\n"),
        (Framing::Chunked(Chunked::Size(0, 0)), false)
    );
    assert_eq!(
        f("HTTP/1.1 200 OK\r\ntransfer-encoding: \r\n\r\n"),
        (Framing::Close, false)
    );
    assert_eq!(f("HTTP/1.1 200 OK\r\n\r\n"), (Framing::Close, false));
    assert_eq!(
        f("HTTP/1.1 204 No Content\r\ncontent-length: 7\r\n\r\n"),
        (Framing::Length(0), true)
    );
    assert_eq!(
        f("HTTP/1.1 304 Not Modified\r\n\r\n"),
        (Framing::Length(0), true)
    );
    let h = parse(
        "HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n",
        Method::HEAD,
    )
    .unwrap();
    assert_eq!(h.unwrap().framing, Framing::Length(0));
    // Keep-alive: HTTP/1.1 unless `close`; HTTP/1.0 only when asked.
    assert!(!f("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, Close\r\ncontent-length: 0\r\n\r\n").1);
    assert!(!f("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").1);
    assert!(!f("HTTP/1.1 200 OK\r\nconnection: upgrade\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").1);
    assert!(f("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n").1);
    for bad in ["-1", "1 2", "0x10", "", "99999999999999999999", "5, 6"] {
        let raw = format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n");
        assert!(
            matches!(parse(&raw, Method::POST), Err(WireError::ContentLength)),
            "{bad:?}"
        );
    }
    let raw = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n";
    assert!(matches!(
        parse(raw, Method::POST),
        Err(WireError::ContentLength)
    ));
}

/// Decodes `wire` fed in pieces of the given sizes (cycled); the data and whether it ended.
fn decode_split(
    mut framing: Framing,
    wire: &[u8],
    sizes: &[usize],
) -> Result<(Vec<u8>, bool), WireError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut i = 0;
    loop {
        match framing.decode(&mut buf)? {
            Decoded::Data(d) => {
                assert!(!d.is_empty());
                out.extend_from_slice(&d);
            }
            Decoded::End => return Ok((out, true)),
            Decoded::More if fed == wire.len() => return Ok((out, false)),
            Decoded::More => {
                let n = sizes[i % sizes.len()].max(1).min(wire.len() - fed);
                buf.extend_from_slice(&wire[fed..fed + n]);
                fed += n;
                i += 1;
            }
        }
    }
}

const CHUNKED: Framing = Framing::Chunked(Chunked::Size(0, 0));

#[test]
fn chunked_bodies_decode_with_extensions_and_trailers() {
    let wire = b"5\r\nhello\r\n6;name=\"v\"\r\n world\r\nA \r\n0123456789\r\n0\r\nx-t: 1\r\nx-u: 2\r\n\r\n";
    for sizes in [&[usize::MAX][..], &[1], &[2, 3], &[7]] {
        let (data, ended) = decode_split(CHUNKED, wire, sizes).unwrap();
        assert_eq!(data, b"hello world0123456789", "{sizes:?}");
        assert!(ended);
    }
    // What follows the body's end stays in the buffer.
    let mut buf = BytesMut::from(&b"0\r\n\r\nHTTP/1.1"[..]);
    let mut f = CHUNKED;
    assert_eq!(f.decode(&mut buf).unwrap(), Decoded::End);
    assert!(f.finished());
    assert_eq!(&buf[..], b"HTTP/1.1");
    // A body cut short has not ended.
    assert_eq!(
        decode_split(CHUNKED, b"5\r\nhel", &[100]).unwrap(),
        (b"hel".to_vec(), false)
    );
}

#[test]
fn malformed_chunked_bodies_are_errors() {
    for bad in [
        &b"x\r\n"[..],
        b"\r\n",
        b"5\nhello\r\n",
        b"5\r\nhelloX\r\n",
        b"5\r\nhello\r\r",
        b"1000000000000000\r\n",
        b"0\r\nbad\ntrailer\r\n\r\n",
    ] {
        assert!(
            decode_split(CHUNKED, bad, &[usize::MAX]).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_LINE + 1));
    assert!(decode_split(CHUNKED, long_ext.as_bytes(), &[usize::MAX]).is_err());
    let long_trailer = format!("0\r\nx: {}\r\n\r\n", "t".repeat(MAX_TRAILERS + 1));
    assert!(decode_split(CHUNKED, long_trailer.as_bytes(), &[usize::MAX]).is_err());
}

#[test]
fn fixed_length_and_close_delimited_bodies() {
    let (data, ended) = decode_split(Framing::Length(5), b"helloEXTRA", &[2]).unwrap();
    assert_eq!((data.as_slice(), ended), (&b"hello"[..], true));
    let (data, ended) = decode_split(Framing::Close, b"until the end", &[4]).unwrap();
    assert_eq!((data.as_slice(), ended), (&b"until the end"[..], false));
    let mut f = Framing::Length(0);
    assert_eq!(f.decode(&mut BytesMut::new()).unwrap(), Decoded::End);
    assert!(!Framing::Close.finished());
}

proptest! {
    /// Any body, cut into any chunks and fed in any pieces, decodes to itself.
    #[test]
    fn chunked_round_trip(
        body in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(1usize..300, 1..20),
        feed in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let mut wire = Vec::new();
        let mut rest = &body[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let (data, ended) = decode_split(CHUNKED, &wire, &feed).unwrap();
        prop_assert_eq!(data, body);
        prop_assert!(ended);
    }

    /// Whole lines (the one-step path) and lines fed a byte at a time (the byte-by-byte
    /// decoder) read the same, valid or not: sizes of every length, extensions, bare line
    /// feeds, stray bytes.
    #[test]
    fn a_chunked_body_reads_the_same_fed_whole_or_byte_by_byte(
        pieces in proptest::collection::vec(
            prop_oneof![
                "[0-9a-fA-F]{0,17}\r\n",
                "[0-9a-f]{1,3}(;x=1)?\r\n[a-z]{0,6}\r\n",
                "[0-9a-f]{1,2}[\r\n; g]{0,3}",
                "0\r\n([a-z]{1,4}: [a-z]{0,3}\r\n)?\r\n",
            ],
            1..8,
        ),
    ) {
        let wire = pieces.concat().into_bytes();
        let whole = decode_split(CHUNKED, &wire, &[usize::MAX]);
        let bytes = decode_split(CHUNKED, &wire, &[1]);
        prop_assert_eq!(format!("{whole:?}"), format!("{bytes:?}"));
    }

    /// No input makes the decoders panic.
    #[test]
    fn arbitrary_bytes_never_panic(wire in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_split(CHUNKED, &wire, &[usize::MAX]);
        let mut buf = BytesMut::from(&wire[..]);
        let _ = parse_head(&mut buf, &mut KnownNames::default(), &Method::POST);
    }

    /// Whatever heads came before on the connection, a name is what parsing its bytes gives.
    #[test]
    fn known_names_are_what_parsing_gives(
        heads in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    Just(b"Content-Type".to_vec()),
                    Just(b"content-type".to_vec()),
                    Just(b"CONTENT-TYPE".to_vec()),
                    Just(b"content-length".to_vec()),
                    Just(b"X-Request-Id".to_vec()),
                    Just(b"x-request-id".to_vec()),
                    Just(b"bad name".to_vec()),
                    Just(b"".to_vec()),
                    Just(vec![b'x'; KnownNames::MAX_LEN + 1]),
                    proptest::collection::vec(any::<u8>(), 1..8),
                ],
                0..KnownNames::MAX + 4,
            ),
            1..6,
        )
    ) {
        let mut names = KnownNames::default();
        for head in &heads {
            for (at, raw) in head.iter().enumerate() {
                let got = names.name(at, raw).ok();
                prop_assert_eq!(got, HeaderName::from_bytes(raw).ok(), "{:?}", raw);
            }
        }
    }
}

#[test]
fn known_names_are_bounded_and_follow_the_latest_head() {
    let mut names = KnownNames::default();
    for at in 0..KnownNames::MAX + 10 {
        names.name(at, format!("x-h{at}").as_bytes()).unwrap();
    }
    assert_eq!(names.0.len(), KnownNames::MAX);
    // A name too long to remember is parsed each time, and leaves its position as it was.
    let long = vec![b'y'; KnownNames::MAX_LEN + 1];
    assert_eq!(names.name(0, &long).unwrap().as_str().len(), long.len());
    assert_eq!(&*names.0[0].0, b"x-h0");
    // Another name at a position replaces the one remembered there.
    assert_eq!(names.name(1, b"Host").unwrap(), header::HOST);
    assert_eq!(
        (&*names.0[1].0, &names.0[1].1),
        (&b"Host"[..], &header::HOST)
    );
    // A refused name is not remembered.
    assert!(names.name(2, b"bad name").is_err());
    assert_eq!(&*names.0[2].0, b"x-h2");
}
