//! The server's HTTP/1.1 request reader (`server/h1_wire.rs`) on a client's bytes: a stream of
//! requests on one connection, each head (`parse_request`) followed by its body
//! (`Framing::decode`), then the next head.
//!
//! Input: what a client sends; the input's last bytes also say how it is cut into chunks.
//! Properties:
//! - The requests read — method, target, version, headers in order, framing, keep-alive,
//!   `Expect`, body bytes — and how the stream ends (more needed, or refused with which
//!   status) are the same whether the bytes arrive whole, cut as the input says, or one byte at
//!   a time: where a request ends never depends on how the network cut it.
//! - A request is read only with one unambiguous framing: never with both `Transfer-Encoding`
//!   and `Content-Length`, `Transfer-Encoding` only as a single `chunked` on HTTP/1.1, every
//!   `Content-Length` value equal; an HTTP/1.1 request has exactly one `Host`.
//! - A refused head is answered 400, 431 or 501, and nothing after it is read.
//! - Each head reads the same with what the connection's heads repeat (`KnownHead`: header
//!   names and the target, shared by its heads) as with nothing known.

#![no_main]

use bytes::BytesMut;
use http::header;
use libfuzzer_sys::fuzz_target;
use portcullis::server::h1_wire::{KnownHead, parse_request};
use portcullis::upstream::h1_wire::Framing;
use portcullis_fuzz::{End, chunk_seed, chunks, read_body};

/// Small enough that the fuzzer reaches it.
const MAX_HEAD: usize = 2048;

/// The requests read from `pieces`, and how the stream ended.
fn read(pieces: &[&[u8]]) -> (Vec<String>, String) {
    let mut buf = BytesMut::new();
    let mut pieces = pieces.iter();
    let mut requests = Vec::new();
    let mut known = KnownHead::default();
    loop {
        let head = loop {
            let unknown = parse_request(&mut buf.clone(), &mut KnownHead::default(), MAX_HEAD);
            let parsed = parse_request(&mut buf, &mut known, MAX_HEAD);
            assert_eq!(format!("{parsed:?}"), format!("{unknown:?}"), "known head");
            match parsed {
                Ok(Some(head)) => break head,
                Ok(None) => match pieces.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => return (requests, "more".into()),
                },
                Err(e) => {
                    let status = e.status().as_u16();
                    assert!([400, 431, 501].contains(&status), "{status}");
                    return (requests, format!("refused {status}"));
                }
            }
        };
        let r = &head.request;
        let h = r.headers();
        let te = h.get_all(header::TRANSFER_ENCODING).iter().count();
        assert!(te == 0 || !h.contains_key(header::CONTENT_LENGTH), "TE and CL");
        if te > 0 {
            assert_eq!(r.version(), http::Version::HTTP_11);
            assert!(matches!(head.framing, Framing::Chunked(_)));
        }
        if r.version() == http::Version::HTTP_11 {
            assert_eq!(h.get_all(header::HOST).iter().count(), 1, "one Host");
        }
        let mut summary = format!(
            "{} {} {:?} {:?} {:?} keep-alive {} continue {}",
            r.method(),
            r.uri(),
            r.version(),
            h.iter().collect::<Vec<_>>(),
            head.framing,
            head.keep_alive,
            head.expect_continue
        );
        let (body, end, rest) = read_body(head.framing, buf, &mut pieces);
        buf = rest;
        summary.push_str(&format!(" body {body:?}"));
        requests.push(summary);
        match end {
            End::Ended => {}
            End::More => return (requests, "more body".into()),
            End::Failed => return (requests, "bad body".into()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = read(&[data]);
    let cut = chunks(data, chunk_seed(data));
    assert_eq!(read(&cut), whole, "cut as the input says");
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(read(&bytes), whole, "one byte at a time");
});
