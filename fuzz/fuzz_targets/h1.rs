//! The in-task HTTP/1.1 client's answer decoder (`upstream/h1_wire.rs`) on upstream bytes.
//!
//! Input: the request's method on the first line (`HEAD` makes it a HEAD request, anything else
//! a POST), then an answer as a backend would send it, head and body; the input's last bytes also
//! say how it is cut into chunks. Properties:
//! - What is read — the head (status, version, headers in order, framing, keep-alive), the body's
//!   bytes, how the body ends (ended, needs more, failed) and the bytes left after its end (none
//!   counted after a failure: the connection is dropped then) — is the same whether the answer
//!   arrives whole, cut as the input says, or one byte at a time.
//! - The body never yields an empty chunk, and it ends only when its framing says it has.
//! - The input's bytes, sent as a chunked body cut as the input says (with a chunk extension and
//!   a trailer), decode to themselves.

#![no_main]

use bytes::BytesMut;
use http::Method;
use libfuzzer_sys::fuzz_target;
use portcullis::upstream::h1_wire::{Chunked, Framing, KnownNames, parse_head};
use portcullis_fuzz::{End, chunk_seed, chunks, first_line, read_body};

/// Everything the decoder read from `pieces`, fed in order.
#[derive(Debug, PartialEq, Eq)]
struct Read {
    head: Option<String>,
    body: Vec<u8>,
    end: End,
    left: Vec<u8>,
}

fn read(pieces: &[&[u8]], method: &Method) -> Read {
    let mut buf = BytesMut::new();
    let mut pieces = pieces.iter();
    let rest = |buf: BytesMut, pieces: std::slice::Iter<'_, &[u8]>| {
        let mut left = buf.to_vec();
        pieces.for_each(|p| left.extend_from_slice(p));
        left
    };
    let head = loop {
        match parse_head(&mut buf, &mut KnownNames::default(), method) {
            Ok(Some(head)) => break head,
            Ok(None) => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => {
                    let left = rest(buf, pieces);
                    return Read { head: None, body: Vec::new(), end: End::More, left };
                }
            },
            Err(_) => {
                return Read { head: None, body: Vec::new(), end: End::Failed, left: Vec::new() };
            }
        }
    };
    let headers: Vec<_> = head.headers.iter().collect();
    let summary = format!(
        "{} {:?} {headers:?} {:?} {}",
        head.status, head.version, head.framing, head.keep_alive
    );
    let (body, end, buf) = read_body(head.framing, buf, &mut pieces);
    let left = if end == End::Failed { Vec::new() } else { rest(buf, pieces) };
    Read { head: Some(summary), body, end, left }
}

fuzz_target!(|data: &[u8]| {
    let (method, answer) = first_line(data);
    let method = if method == b"HEAD" { Method::HEAD } else { Method::POST };
    let whole = read(&[answer], &method);
    let cut = chunks(answer, chunk_seed(data));
    assert_eq!(read(&cut, &method), whole, "cut as the input says");
    let bytes: Vec<&[u8]> = answer.chunks(1).collect();
    assert_eq!(read(&bytes, &method), whole, "one byte at a time");

    // The answer's bytes as a chunked body.
    let mut wire = Vec::new();
    // (A zero-size chunk would end the body: empty pieces are not sent.)
    for (i, piece) in cut.iter().filter(|p| !p.is_empty()).enumerate() {
        let ext = if i % 2 == 1 { ";x=\"y\"" } else { "" };
        wire.extend_from_slice(format!("{:X}{ext}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\ntrailer: t\r\n\r\n");
    let feed: Vec<&[u8]> = chunks(&wire, chunk_seed(data));
    let (decoded, end, left) = read_body(
        Framing::Chunked(Chunked::Size(0, 0)),
        BytesMut::new(),
        &mut feed.iter(),
    );
    assert_eq!(end, End::Ended);
    assert_eq!(decoded, answer);
    assert!(left.is_empty());
});
