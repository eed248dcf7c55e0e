//! The HTTP/1.1 wire format of the gateway's own server ([`super::h1`]): a client's request
//! head parsed with `httparse` into an `http::Request` whose header values share the read buffer
//! (no copy per header) and whose names and target, when the connection's last head had them,
//! are that head's ([`KnownHead`]); the request body's framing (RFC 9112 §6.3, strict where a
//! request could be read two ways), and a response head written into one buffer.
//!
//! Refused heads, each with the status the client gets before the connection closes: a
//! malformed head, a missing or repeated `Host` on HTTP/1.1, `Transfer-Encoding` beside
//! `Content-Length` or on HTTP/1.0, an invalid or conflicting `Content-Length`, chunked not the
//! last coding (400); a transfer coding other than chunked (501); more than [`MAX_HEADERS`]
//! header lines or a head over the configured size (431).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::InvalidUri;
use http::{Method, Request, StatusCode, Uri, Version};

use crate::upstream::h1_wire::{
    BadLength, Chunked, ConnectionTokens, Decoded, Framing, KnownNames, add_content_length,
    elements,
};

/// Most header lines a request may carry (hyper's limit too).
pub const MAX_HEADERS: usize = 100;

/// Why a request head is refused; [`HeadError::status`] is the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request head")]
    Malformed,
    #[error("request head too large")]
    TooLarge,
    #[error("request framing: {0}")]
    Framing(&'static str),
    #[error("unsupported transfer coding")]
    Coding,
}

impl HeadError {
    /// The status a client gets for this head.
    pub fn status(self) -> StatusCode {
        match self {
            HeadError::Malformed | HeadError::Framing(_) => StatusCode::BAD_REQUEST,
            HeadError::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HeadError::Coding => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

/// A parsed request head: the request without its body, and how its body is framed.
#[derive(Debug)]
pub struct RequestHead {
    pub request: Request<()>,
    /// The body: a length (zero: none) or chunked.
    pub framing: Framing,
    /// The client lets the connection carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on HTTP/1.1 with a body to come.
    pub expect_continue: bool,
}

/// What a connection's request heads repeat, remembered from the last one: the header names by
/// position and the target with the `Uri` parsed from it. A client sends the same names and,
/// mostly, the same target on every request of a connection (bench/PROFILE.md §21, §22).
#[derive(Debug, Default)]
pub struct KnownHead {
    pub names: KnownNames,
    pub target: KnownTarget,
}

/// The target of a connection's last request and its `Uri`, kept when the `Uri`'s text is
/// exactly the target's bytes (an origin-form target without a fragment: `/v1/chat/completions`,
/// `/v1/models?limit=5`). A target whose bytes equal that text is that `Uri`: a clone (a
/// reference count) instead of a parse (~300 instructions). The kept `Uri` owns a copy of its
/// bytes, so that it does not hold a request's head (and the read buffer it came from) alive.
#[derive(Debug, Default)]
pub struct KnownTarget(Option<Uri>);

impl KnownTarget {
    /// The longest target kept.
    pub const MAX_LEN: usize = 256;

    /// The `Uri` of the target at `at` in `head` (a request's head, which a new `Uri` shares
    /// when the target is not kept).
    pub fn uri(&mut self, head: &Bytes, at: std::ops::Range<usize>) -> Result<Uri, InvalidUri> {
        let raw = &head[at.clone()];
        if let Some(uri) = &self.0
            && Self::text(uri) == Some(raw)
        {
            return Ok(uri.clone());
        }
        if raw.len() > Self::MAX_LEN {
            return Uri::from_maybe_shared(head.slice(at));
        }
        let uri = Uri::from_maybe_shared(Bytes::copy_from_slice(raw))?;
        if Self::text(&uri) == Some(raw) {
            self.0 = Some(uri.clone());
        }
        Ok(uri)
    }

    /// The whole text of a `Uri` that has only a path (and query).
    fn text(uri: &Uri) -> Option<&[u8]> {
        if uri.scheme().is_some() || uri.authority().is_some() {
            return None;
        }
        uri.path_and_query().map(|pq| pq.as_str().as_bytes())
    }
}

/// Takes a request head off the front of `buf` once it is complete (`None`: read more; empty
/// lines before it are skipped). A head longer than `max_head` bytes, whole or in part, is
/// [`HeadError::TooLarge`]. `known`: the connection's, for its header names and target.
pub fn parse_request(
    buf: &mut BytesMut,
    known: &mut KnownHead,
    max_head: usize,
) -> Result<Option<RequestHead>, HeadError> {
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) if len > max_head => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_head => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(HeadError::Malformed)?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Where the target and each value lie in the head, so that they can share its bytes; the
    // headers that frame the request are read on the way (one pass, no lookups after).
    let base = buf.as_ptr() as usize;
    let target = req.path.ok_or(HeadError::Malformed)?;
    let target = (target.as_ptr() as usize - base, target.len());
    let mut facts = Facts::default();
    let mut spans = Vec::with_capacity(req.headers.len());
    for (at, h) in req.headers.iter().enumerate() {
        let name = known
            .names
            .name(at, h.name.as_bytes())
            .map_err(|_| HeadError::Malformed)?;
        facts.note(&name, h.value)?;
        spans.push((name, h.value.as_ptr() as usize - base, h.value.len()));
    }
    let framing = facts.framing(version)?;
    if version == Version::HTTP_11 && facts.hosts != 1 {
        return Err(HeadError::Framing("HTTP/1.1 needs exactly one Host header"));
    }
    let bytes = buf.split_to(len).freeze();
    let uri = known
        .target
        .uri(&bytes, target.0..target.0 + target.1)
        .map_err(|_| HeadError::Malformed)?;
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (name, start, len) in spans {
        let value = HeaderValue::from_maybe_shared(bytes.slice(start..start + len))
            .map_err(|_| HeadError::Malformed)?;
        headers.append(name, value);
    }
    let keep_alive = if version == Version::HTTP_11 {
        !facts.connection.close
    } else {
        facts.connection.keep_alive
    };
    let expect_continue =
        version == Version::HTTP_11 && framing != Framing::Length(0) && facts.expect_continue;
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some(RequestHead {
        request,
        framing,
        keep_alive,
        expect_continue,
    }))
}

/// What the framing headers of a request say, gathered header by header.
#[derive(Default)]
struct Facts {
    hosts: usize,
    /// The `Content-Length`, once one is given (all of them must agree).
    length: Option<u64>,
    /// `Transfer-Encoding` was sent, with how many codings, and where chunked was.
    codings: Option<usize>,
    last_chunked: bool,
    chunked_not_last: bool,
    connection: ConnectionTokens,
    expect_continue: bool,
}

impl Facts {
    fn note(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), HeadError> {
        let tokens = || elements(value).filter(|t| !t.is_empty());
        if *name == header::HOST {
            self.hosts += 1;
        } else if *name == header::CONTENT_LENGTH {
            let length = add_content_length(self.length, value).map_err(|e| match e {
                BadLength::Invalid => HeadError::Framing("invalid Content-Length"),
                BadLength::Conflicting => HeadError::Framing("conflicting Content-Length"),
            })?;
            self.length = Some(length);
        } else if *name == header::TRANSFER_ENCODING {
            let mut count = self.codings.unwrap_or(0);
            for t in tokens() {
                self.chunked_not_last |= self.last_chunked;
                self.last_chunked = t.eq_ignore_ascii_case(b"chunked");
                count += 1;
            }
            self.codings = Some(count);
        } else if *name == header::CONNECTION {
            self.connection.note(value);
        } else if *name == header::EXPECT {
            self.expect_continue |= tokens().any(|t| t.eq_ignore_ascii_case(b"100-continue"));
        }
        Ok(())
    }

    /// The request body's framing (RFC 9112 §6.3). A request is never delimited by the
    /// connection's end: without a length or chunked coding it has no body.
    fn framing(&self, version: Version) -> Result<Framing, HeadError> {
        let Some(codings) = self.codings else {
            return Ok(Framing::Length(self.length.unwrap_or(0)));
        };
        if version == Version::HTTP_10 {
            return Err(HeadError::Framing("Transfer-Encoding on HTTP/1.0"));
        }
        if self.length.is_some() {
            // Read two ways by two servers, this is how requests are smuggled.
            return Err(HeadError::Framing(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if self.chunked_not_last {
            return Err(HeadError::Framing("chunked is not the last coding"));
        }
        if codings == 1 && self.last_chunked {
            Ok(Framing::Chunked(Chunked::Size(0, 0)))
        } else {
            Err(HeadError::Coding)
        }
    }
}

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (HEAD, 1xx, 204, 304), whatever the headers say.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding (HTTP/1.1 clients).
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client and a body of unknown length).
    Close,
}

/// The parts of a response head the server decides.
#[derive(Debug, Clone, Copy)]
pub struct ResponseFrame<'a> {
    pub status: StatusCode,
    pub body: BodyFraming,
    /// The connection closes after this response.
    pub close: bool,
    /// The answer to an HTTP/1.0 request that asked for keep-alive and gets it.
    pub keep_alive_10: bool,
    /// The `Date` value, when the headers have none.
    pub date: &'a [u8],
}

/// Writes a response head: the status line, the headers (without the framing and connection
/// headers, which the server owns), `Date` when absent, and the framing it chose.
pub fn encode_response_head(out: &mut Vec<u8>, frame: &ResponseFrame<'_>, headers: &HeaderMap) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(frame.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        frame
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    let mut has_date = false;
    // The answer to a HEAD (or a 304) may say how long the body would be; a 1xx or 204 has no
    // length at all.
    let keeps_length = frame.body == BodyFraming::None
        && !frame.status.is_informational()
        && frame.status != StatusCode::NO_CONTENT;
    for (name, value) in headers {
        let servers = if name == header::CONTENT_LENGTH {
            !keeps_length
        } else {
            name == header::TRANSFER_ENCODING || name == header::CONNECTION || name == "keep-alive"
        };
        if servers {
            continue;
        }
        has_date |= name == header::DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(frame.date);
        out.extend_from_slice(b"\r\n");
    }
    match frame.body {
        BodyFraming::None | BodyFraming::Close => {}
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            digits(out, n, 10);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if frame.close {
        out.extend_from_slice(b"connection: close\r\n");
    } else if frame.keep_alive_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `n` in base `radix` (10 or 16, lower-case).
fn digits(out: &mut Vec<u8>, mut n: u64, radix: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = DIGITS[(n % radix) as usize];
        n /= radix;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

/// The head of one chunk of `len` bytes (`{len:x}\r\n`).
pub fn chunk_head(out: &mut Vec<u8>, len: usize) {
    digits(out, len as u64, 16);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk and an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The informational answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// An answer the server sends itself (a refused head, a failed handler): a short text body,
/// and the connection closes after it.
pub fn plain_response(status: StatusCode, date: &[u8]) -> Vec<u8> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut out = Vec::with_capacity(128 + reason.len());
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let frame = ResponseFrame {
        status,
        body: BodyFraming::Length(reason.len() as u64),
        close: true,
        keep_alive_10: false,
        date,
    };
    encode_response_head(&mut out, &frame, &headers);
    out.extend_from_slice(reason.as_bytes());
    out
}

/// Takes bytes of a body that were never asked for off the front of `buf`: `true` once the
/// whole body has gone (the connection can read the next request), `false` when more of it is
/// still to arrive.
pub fn discard(framing: &mut Framing, buf: &mut BytesMut) -> Result<bool, HeadError> {
    loop {
        match framing.decode(buf) {
            Ok(Decoded::Data(_)) => {}
            Ok(Decoded::End) => return Ok(true),
            Ok(Decoded::More) => return Ok(false),
            Err(_) => return Err(HeadError::Framing("malformed chunked body")),
        }
    }
}

#[cfg(test)]
#[path = "h1_wire_tests.rs"]
mod tests;
