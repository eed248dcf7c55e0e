//! The HTTP/1.1 wire format of the in-task client ([`super::h1`]): the request head written
//! straight from the prepared headers into one buffer, an answer's head parsed with `httparse`
//! into [`HeaderLines`] whose values share the read buffer (no copy per header), and the
//! answer's body framing (RFC 9112 §6.3): none, a fixed length, chunked, or until the connection
//! closes.
//!
//! The client owns the framing: a `Host`, `Content-Length`, `Transfer-Encoding` or `Connection`
//! among the prepared headers is not written (the body is always sent whole with its length).

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue, InvalidHeaderName};
use http::{Method, StatusCode, Version};

use super::HeaderLines;

/// Most header lines an answer may carry (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// Largest answer head accepted (each of them, when 1xx heads come first). Above the 64 KiB of
/// headers the gateway relays (`api::proxy`), so that an answer between the two gets that clear
/// refusal rather than a failed read; hyper's client allowed about 400 KiB.
pub const MAX_HEAD: usize = 256 * 1024;
/// Longest chunk-size line (with its extensions) and longest trailer section accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILERS: usize = 16 * 1024;

/// What is wrong with an answer on the wire.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("malformed answer head: {0}")]
    Head(#[from] httparse::Error),
    #[error("answer headers over {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("answer with an invalid status code")]
    Status,
    #[error("answer header {0} is not valid")]
    Header(String),
    #[error("answer switches protocols (101), which was not asked for")]
    Switch,
    #[error("answer with an invalid or conflicting Content-Length")]
    ContentLength,
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
}

/// Writes the request head: `METHOD path?query HTTP/1.1`, `Host`, the prepared headers, the
/// `User-Agent` and `Accept` defaults when the headers have none, and the body's length.
/// Refuses a target with bytes a request line cannot carry (a URL parser has encoded them
/// already; this is the last guard against a request line split in two).
pub fn encode_head(
    out: &mut Vec<u8>,
    method: &Method,
    target: (&str, Option<&str>),
    host: &HeaderValue,
    headers: &HeaderLines,
    defaults: &[(HeaderName, HeaderValue)],
    body_len: usize,
) -> Result<(), String> {
    let (path, query) = target;
    let clean = |s: &str| s.bytes().all(|b| b > b' ' && b != 0x7f);
    if !path.starts_with('/') || !clean(path) || !query.is_none_or(clean) {
        return Err(format!("invalid upstream path {path:?}"));
    }
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    if let Some(q) = query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.iter() {
        if matches!(
            *name,
            header::HOST | header::CONTENT_LENGTH | header::TRANSFER_ENCODING | header::CONNECTION
        ) {
            continue;
        }
        line(out, name, value);
    }
    for (name, value) in defaults {
        if !headers.contains(name) {
            line(out, name, value);
        }
    }
    // A GET or HEAD without a body says nothing of one (hyper's and curl's habit); everything
    // else states its length, zero included.
    if body_len > 0 || !matches!(*method, Method::GET | Method::HEAD) {
        out.extend_from_slice(b"content-length: ");
        let mut digits = [0u8; 20];
        out.extend_from_slice(decimal(body_len as u64, &mut digits));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

fn line(out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// An answer's head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderLines,
    pub framing: Framing,
    /// The connection may carry another request once this answer has been read whole.
    pub keep_alive: bool,
}

/// The header names of the heads read on one connection, each with its bytes as they arrived,
/// by position: a peer sends the same names in the same order head after head, so a name whose
/// bytes match those at its position is taken from here instead of parsed again (a parse
/// lower-cases the name into a scratch buffer and matches it against the standard names: ~120
/// instructions; a name found here ~60, its comparison and clone, measured in bench/PROFILE.md
/// §21). Exact bytes, so what is found is what parsing those bytes
/// gave. At most [`KnownNames::MAX`] positions of names up to [`KnownNames::MAX_LEN`] bytes.
#[derive(Debug, Default)]
pub struct KnownNames(Vec<(Box<[u8]>, HeaderName)>);

impl KnownNames {
    /// Positions remembered.
    pub const MAX: usize = 32;
    /// The longest name remembered.
    pub const MAX_LEN: usize = 64;

    /// The name whose bytes are `raw`, the `at`-th of its head.
    pub fn name(&mut self, at: usize, raw: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
        if let Some((bytes, name)) = self.0.get(at)
            && **bytes == *raw
        {
            return Ok(name.clone());
        }
        let name = HeaderName::from_bytes(raw)?;
        if raw.len() <= Self::MAX_LEN {
            let entry = (Box::from(raw), name.clone());
            if let Some(slot) = self.0.get_mut(at) {
                *slot = entry;
            } else if at == self.0.len() && at < Self::MAX {
                self.0.push(entry);
            }
        }
        Ok(name)
    }
}

/// Takes the answer's head off the front of `buf` once it is complete (`None`: read more).
/// Informational (1xx) heads before it are skipped; `method` is the request's (the answer to a
/// HEAD has no body whatever its headers say). `names`: the connection's, for its names.
pub fn parse_head(
    buf: &mut BytesMut,
    names: &mut KnownNames,
    method: &Method,
) -> Result<Option<Head>, WireError> {
    loop {
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)?;
        let len = match parsed {
            httparse::Status::Complete(len) if len > MAX_HEAD => {
                return Err(WireError::HeadTooLarge);
            }
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial if buf.len() > MAX_HEAD => {
                return Err(WireError::HeadTooLarge);
            }
            httparse::Status::Partial => return Ok(None),
        };
        let code = resp.code.unwrap_or(0);
        let status = StatusCode::from_u16(code).map_err(|_| WireError::Status)?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(WireError::Switch);
        }
        if status.is_informational() {
            buf.advance(len);
            continue;
        }
        let version = match resp.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        // Where each name and value lies in the head, so that the values can share its bytes;
        // the framing headers are read in the same pass.
        let base = buf.as_ptr() as usize;
        let mut spans = Vec::with_capacity(resp.headers.len());
        let mut facts = Facts::default();
        for (at, h) in resp.headers.iter().enumerate() {
            let name = names
                .name(at, h.name.as_bytes())
                .map_err(|_| WireError::Header(h.name.to_owned()))?;
            facts.note(&name, h.value);
            let start = h.value.as_ptr() as usize - base;
            spans.push((name, start, start + h.value.len()));
        }
        let bytes = buf.split_to(len).freeze();
        let mut headers = HeaderLines::with_capacity(spans.len());
        for (name, start, end) in spans {
            let value = HeaderValue::from_maybe_shared(bytes.slice(start..end))
                .map_err(|_| WireError::Header(name.to_string()))?;
            headers.append(name, value);
        }
        let (framing, keep_alive) = facts.framing(status, version, method)?;
        return Ok(Some(Head {
            status,
            version,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// The elements of a comma-separated header value, trimmed (empty ones included).
pub(crate) fn elements(value: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// The `Connection` tokens a codec acts on, over every `Connection` line of a head.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectionTokens {
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
}

impl ConnectionTokens {
    pub(crate) fn note(&mut self, value: &[u8]) {
        for t in elements(value) {
            self.close |= t.eq_ignore_ascii_case(b"close");
            self.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
        }
    }
}

/// Why a head's `Content-Length` cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadLength {
    Invalid,
    Conflicting,
}

/// The `Content-Length` of a head so far (`so_far`, from earlier lines) with one more line's
/// value, a list whose every element must be the same length.
pub(crate) fn add_content_length(so_far: Option<u64>, value: &[u8]) -> Result<u64, BadLength> {
    let mut length = so_far;
    for part in elements(value) {
        let n = parse_length(part).ok_or(BadLength::Invalid)?;
        if length.is_some_and(|l| l != n) {
            return Err(BadLength::Conflicting);
        }
        length = Some(n);
    }
    length.ok_or(BadLength::Invalid)
}

/// What an answer's head says about its framing, read header by header.
#[derive(Default)]
struct Facts {
    connection: ConnectionTokens,
    /// `Transfer-Encoding` was sent: its last coding is `chunked`.
    transfer_encoding: bool,
    chunked_last: bool,
    /// `Content-Length` was sent: its one value, or `None` when invalid or conflicting.
    content_length: Option<Option<u64>>,
}

impl Facts {
    fn note(&mut self, name: &HeaderName, value: &[u8]) {
        if *name == header::CONNECTION {
            self.connection.note(value);
        } else if *name == header::TRANSFER_ENCODING {
            // The last coding of the last `Transfer-Encoding` line counts.
            self.transfer_encoding = true;
            let last = elements(value).next_back().unwrap_or_default();
            self.chunked_last = last.eq_ignore_ascii_case(b"chunked");
        } else if *name == header::CONTENT_LENGTH {
            self.content_length = Some(match self.content_length {
                Some(None) => None,
                so_far => add_content_length(so_far.flatten(), value).ok(),
            });
        }
    }

    /// The body's framing (RFC 9112 §6.3) and whether the connection outlives the answer.
    fn framing(
        &self,
        status: StatusCode,
        version: Version,
        method: &Method,
    ) -> Result<(Framing, bool), WireError> {
        let mut keep_alive = match version {
            Version::HTTP_11 => !self.connection.close,
            _ => self.connection.keep_alive,
        };
        if *method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok((Framing::Length(0), keep_alive));
        }
        if self.transfer_encoding {
            // Transfer-Encoding overrides any Content-Length, and such an answer may have been
            // crafted to be read two ways: the connection is not reused after it.
            if self.content_length.is_some() {
                keep_alive = false;
            }
            return Ok(match self.chunked_last {
                true => (Framing::Chunked(Chunked::Size(0, 0)), keep_alive),
                false => (Framing::Close, false),
            });
        }
        Ok(match self.content_length {
            Some(Some(n)) => (Framing::Length(n), keep_alive),
            Some(None) => return Err(WireError::ContentLength),
            None => (Framing::Close, false),
        })
    }
}

/// A `Content-Length` value (one of a list): 1 to 19 digits, nothing else.
pub(crate) fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// How an answer's body is delimited, and how much of it is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// This many bytes left (zero: no body, or all read).
    Length(u64),
    /// Chunked transfer coding, at this point of it.
    Chunked(Chunked),
    /// Everything until the server closes the connection.
    Close,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Reading a chunk size: its value so far and the digits read.
    Size(u64, u8),
    /// Skipping the chunk line's extensions (or whitespace); the size and the bytes skipped.
    Extension(u64, usize),
    /// The line feed ending a chunk line of this size.
    SizeLf(u64),
    /// Inside a chunk's data: bytes left.
    Data(u64),
    /// The carriage return after a chunk's data.
    DataCr,
    /// The line feed after a chunk's data.
    DataLf,
    /// In the trailer section: bytes of the current line, bytes of the section.
    Trailer(usize, usize),
    /// The line feed ending a trailer line of this length, and the section's bytes.
    TrailerLf(usize, usize),
    /// The body has ended.
    Done,
}

/// One step of reading a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// The body has ended (for [`Framing::Close`], only the connection's end says so).
    End,
    /// The buffer holds no more of it: read more.
    More,
}

impl Framing {
    /// Takes the next piece of the body off the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        match self {
            Framing::Length(0) => Ok(Decoded::End),
            Framing::Length(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::More);
                }
                let n = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                Ok(Decoded::Data(buf.split_to(n).freeze()))
            }
            Framing::Close if buf.is_empty() => Ok(Decoded::More),
            Framing::Close => Ok(Decoded::Data(buf.split().freeze())),
            Framing::Chunked(state) => state.decode(buf),
        }
    }

    /// True once the whole body has been read (never for [`Framing::Close`]).
    pub fn finished(&self) -> bool {
        matches!(self, Framing::Length(0) | Framing::Chunked(Chunked::Done))
    }
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        use Chunked::*;
        let bad = WireError::Chunked;
        let mut at = 0;
        let result = loop {
            if let Data(left) = *self {
                buf.advance(at);
                at = 0;
                if buf.is_empty() {
                    break Decoded::More;
                }
                let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                *self = if left == n as u64 {
                    DataCr
                } else {
                    Data(left - n as u64)
                };
                break Decoded::Data(buf.split_to(n).freeze());
            }
            if *self == Done {
                break Decoded::End;
            }
            // The usual lines whole in the buffer — a size without extensions, the line break
            // after a chunk's data — in one step; anything else byte by byte below.
            if *self == Size(0, 0)
                && let Some((n, len)) = plain_size_line(&buf[at..])
            {
                at += len;
                *self = if n == 0 { Trailer(0, 0) } else { Data(n) };
                continue;
            }
            if *self == DataCr && buf[at..].starts_with(b"\r\n") {
                at += 2;
                *self = Size(0, 0);
                continue;
            }
            let Some(&b) = buf.get(at) else {
                break Decoded::More;
            };
            at += 1;
            *self = match (*self, b) {
                (Size(n, digits), _) if b.is_ascii_hexdigit() => {
                    if digits >= 15 {
                        return Err(bad("chunk size too large"));
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    Size(n * 16 + u64::from(d), digits + 1)
                }
                (Size(_, 0), _) => return Err(bad("chunk size expected")),
                (Size(n, _), b'\r') => SizeLf(n),
                (Size(n, _), b';' | b' ' | b'\t') => Extension(n, 1),
                (Size(..), _) => return Err(bad("invalid chunk size")),
                (Extension(n, _), b'\r') => SizeLf(n),
                (Extension(_, len), _) if b == b'\n' || len >= MAX_CHUNK_LINE => {
                    return Err(bad("invalid chunk extension"));
                }
                (Extension(n, len), _) => Extension(n, len + 1),
                (SizeLf(0), b'\n') => Trailer(0, 0),
                (SizeLf(n), b'\n') => Data(n),
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Size(0, 0),
                (Trailer(line, total), b'\r') => TrailerLf(line, total),
                (Trailer(line, total), _) if b != b'\n' && total < MAX_TRAILERS => {
                    Trailer(line + 1, total + 1)
                }
                (Trailer(..), _) if b != b'\n' => return Err(bad("trailer section too large")),
                (TrailerLf(0, _), b'\n') => Done,
                (TrailerLf(_, total), b'\n') => Trailer(0, total + 2),
                _ => return Err(bad("line ending expected")),
            };
        };
        buf.advance(at);
        Ok(result)
    }
}

/// A chunk-size line of 1 to 15 hex digits and `\r\n`, whole at the start of `line`: the size
/// and the line's length. Anything else — an extension, a longer size, a line not all here —
/// is `None`, for the byte-by-byte decoder (which reads these lines the same way).
fn plain_size_line(line: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &b) in line.iter().enumerate().take(16) {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            b'\r' if i > 0 => return (line.get(i + 1) == Some(&b'\n')).then_some((n, i + 2)),
            _ => return None,
        };
        n = n * 16 + u64::from(digit);
    }
    None
}

#[cfg(test)]
#[path = "h1_wire_tests.rs"]
mod tests;
