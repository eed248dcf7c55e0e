//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), in which
//! CodeWhisperer's `generateAssistantResponse` (Kiro) streams its answer: an incremental
//! [`Decoder`] that takes the body in whatever chunks the network delivers and yields whole
//! [`Message`]s, and [`encode`] (tests and the mock upstream build frames with it).
//!
//! A message is
//! `total length u32 BE | headers length u32 BE | CRC32 of those 8 bytes | headers | payload |
//! CRC32 of everything before it`, the CRCs IEEE (`crc` crate, `CRC_32_ISO_HDLC`). A header is
//! `name length u8 | name | type u8 | value`; the value's size follows from its type: 0 true
//! and 1 false (no bytes), 2 byte, 3 i16, 4 i32, 5 i64, 8 timestamp (i64 ms), 9 UUID (16 bytes),
//! 6 bytes and 7 UTF-8 string (u16 BE length first). Framing, once lost, cannot be found again,
//! so the first error is final: the decoder repeats it.

use crc::{CRC_32_ISO_HDLC, Crc};

/// The largest message the decoder accepts by default (awslabs/aws-c-event-stream's bound).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// Total and headers lengths, and the prelude's CRC.
const PRELUDE_LEN: usize = 12;
/// The message CRC at the end.
const CRC_LEN: usize = 4;
/// A message without headers or payload.
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + CRC_LEN;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// Why a byte stream is not a valid event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A message announces more bytes than the decoder accepts.
    #[error("an event-stream message of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// The announced total length.
        len: usize,
        /// The decoder's bound.
        max: usize,
    },
    /// A message announces fewer bytes than its prelude and CRC take.
    #[error("an event-stream message of {len} bytes is shorter than the 16-byte minimum")]
    TooShort {
        /// The announced total length.
        len: usize,
    },
    /// The headers do not fit in the message.
    #[error("event-stream headers of {headers} bytes do not fit a {total}-byte message")]
    HeadersTooLong {
        /// The announced headers length.
        headers: usize,
        /// The announced total length.
        total: usize,
    },
    /// The prelude's CRC does not match its bytes.
    #[error(
        "event-stream prelude CRC mismatch: {expected:#010x} announced, {actual:#010x} computed"
    )]
    PreludeCrc {
        /// The CRC the message carries.
        expected: u32,
        /// The CRC of its bytes.
        actual: u32,
    },
    /// The message's CRC does not match its bytes.
    #[error(
        "event-stream message CRC mismatch: {expected:#010x} announced, {actual:#010x} computed"
    )]
    MessageCrc {
        /// The CRC the message carries.
        expected: u32,
        /// The CRC of its bytes.
        actual: u32,
    },
    /// A header is cut short, of an unknown type, or not UTF-8 where text is required.
    #[error("malformed event-stream header: {0}")]
    Header(String),
    /// The stream ended inside a message.
    #[error("the event stream ended inside a message ({0} bytes left over)")]
    Truncated(usize),
}

/// A header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Type 0 (true) or 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6.
    Bytes(Vec<u8>),
    /// Type 7.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

/// One header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Its name (`:message-type`, `:event-type`, `:exception-type`, `:content-type`, …).
    pub name: String,
    /// Its value.
    pub value: HeaderValue,
}

impl Header {
    /// A string header.
    pub fn string(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: HeaderValue::String(value.to_owned()),
        }
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its headers, in order.
    pub headers: Vec<Header>,
    /// Its payload (JSON for CodeWhisperer).
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of string header `name`.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| match &h.value {
            HeaderValue::String(s) if h.name == name => Some(s.as_str()),
            _ => None,
        })
    }

    /// `:message-type`: `event`, `exception` or `error`.
    pub fn message_type(&self) -> Option<&str> {
        self.header_str(":message-type")
    }

    /// `:event-type` (events) or `:exception-type` (exceptions).
    pub fn kind(&self) -> Option<&str> {
        self.header_str(":event-type")
            .or_else(|| self.header_str(":exception-type"))
    }
}

/// Reads messages from a byte stream fed in arbitrary chunks.
#[derive(Debug)]
pub struct Decoder {
    /// Bytes received and not yet consumed, from `start`.
    buf: Vec<u8>,
    /// Where the unconsumed bytes begin in `buf`.
    start: usize,
    /// The largest message accepted.
    max: usize,
    /// The error that ended the stream (repeated by every later call).
    failed: Option<FrameError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::with_max(MAX_MESSAGE_LEN)
    }
}

impl Decoder {
    /// A decoder refusing messages longer than `max` bytes.
    pub fn with_max(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max,
            failed: None,
        }
    }

    /// Appends the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete message, `None` until one is whole.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.parse() {
            Ok(Some((message, len))) => {
                self.start += len;
                Ok(Some(message))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Feeds `chunk` and appends every message it completes to `out`.
    pub fn decode(&mut self, chunk: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        self.feed(chunk);
        while let Some(m) = self.next_message()? {
            out.push(m);
        }
        Ok(())
    }

    /// The stream ended: an error when it ended inside a message.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.buf.len() - self.start {
            0 => Ok(()),
            left => Err(FrameError::Truncated(left)),
        }
    }

    /// The message at the front of the buffer and its length, once it is whole.
    fn parse(&self) -> Result<Option<(Message, usize)>, FrameError> {
        let bytes = &self.buf[self.start..];
        let Some(prelude) = bytes.get(..PRELUDE_LEN) else {
            return Ok(None);
        };
        let total = be_u32(&prelude[0..4]) as usize;
        let headers_len = be_u32(&prelude[4..8]) as usize;
        let prelude_crc = be_u32(&prelude[8..12]);
        let actual = CRC32.checksum(&prelude[..8]);
        if actual != prelude_crc {
            return Err(FrameError::PreludeCrc {
                expected: prelude_crc,
                actual,
            });
        }
        if total > self.max {
            return Err(FrameError::TooLong {
                len: total,
                max: self.max,
            });
        }
        if total < MIN_MESSAGE_LEN {
            return Err(FrameError::TooShort { len: total });
        }
        if headers_len > total - MIN_MESSAGE_LEN {
            return Err(FrameError::HeadersTooLong {
                headers: headers_len,
                total,
            });
        }
        let Some(frame) = bytes.get(..total) else {
            return Ok(None);
        };
        let (body, crc) = frame.split_at(total - CRC_LEN);
        let expected = be_u32(crc);
        let actual = CRC32.checksum(body);
        if actual != expected {
            return Err(FrameError::MessageCrc { expected, actual });
        }
        let (headers, payload) = body[PRELUDE_LEN..].split_at(headers_len);
        let message = Message {
            headers: parse_headers(headers)?,
            payload: payload.to_vec(),
        };
        Ok(Some((message, total)))
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Reads the headers block.
fn parse_headers(mut rest: &[u8]) -> Result<Vec<Header>, FrameError> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let name_len = usize::from(take(&mut rest, 1, "name length")?[0]);
        let name = take(&mut rest, name_len, "name")?;
        let name = std::str::from_utf8(name)
            .map_err(|_| FrameError::Header("a header name is not UTF-8".into()))?
            .to_owned();
        let kind = take(&mut rest, 1, "value type")?[0];
        let value = parse_value(kind, &mut rest, &name)?;
        out.push(Header { name, value });
    }
    Ok(out)
}

fn parse_value(kind: u8, rest: &mut &[u8], name: &str) -> Result<HeaderValue, FrameError> {
    let mut fixed = |n: usize| -> Result<u64, FrameError> {
        let b = take(rest, n, name)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    // The `as` casts below reinterpret an n-byte two's-complement value of exactly that width.
    Ok(match kind {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(fixed(1)? as u8 as i8),
        3 => HeaderValue::Short(fixed(2)? as u16 as i16),
        4 => HeaderValue::Int(fixed(4)? as u32 as i32),
        5 => HeaderValue::Long(fixed(8)? as i64),
        8 => HeaderValue::Timestamp(fixed(8)? as i64),
        6 | 7 => {
            let len = fixed(2)? as usize;
            let bytes = take(rest, len, name)?.to_vec();
            if kind == 6 {
                HeaderValue::Bytes(bytes)
            } else {
                HeaderValue::String(String::from_utf8(bytes).map_err(|_| {
                    FrameError::Header(format!("the value of `{name}` is not UTF-8"))
                })?)
            }
        }
        9 => {
            let mut uuid = [0u8; 16];
            uuid.copy_from_slice(take(rest, 16, name)?);
            HeaderValue::Uuid(uuid)
        }
        other => {
            return Err(FrameError::Header(format!(
                "`{name}` has unknown value type {other}"
            )));
        }
    })
}

/// The first `n` bytes of `rest`, advancing it; `what` names the field in the error.
fn take<'a>(rest: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], FrameError> {
    if rest.len() < n {
        return Err(FrameError::Header(format!("`{what}` is cut short")));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

/// Writes one message. Names longer than 255 bytes and string or byte values longer than
/// 65,535 are cut to fit (the encoder serves tests and the mock, which never need them).
pub fn encode(headers: &[Header], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for header in headers {
        let name = &header.name.as_bytes()[..header.name.len().min(255)];
        h.push(name.len() as u8);
        h.extend_from_slice(name);
        match &header.value {
            HeaderValue::Bool(b) => h.push(if *b { 0 } else { 1 }),
            HeaderValue::Byte(v) => {
                h.push(2);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                h.push(3);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                h.push(4);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                h.push(5);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(b) => sized(&mut h, 6, b),
            HeaderValue::String(s) => sized(&mut h, 7, s.as_bytes()),
            HeaderValue::Timestamp(v) => {
                h.push(8);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(u) => {
                h.push(9);
                h.extend_from_slice(u);
            }
        }
    }
    let total = MIN_MESSAGE_LEN + h.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = CRC32.checksum(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = CRC32.checksum(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn sized(h: &mut Vec<u8>, kind: u8, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX))];
    h.push(kind);
    h.extend_from_slice(&(value.len() as u16).to_be_bytes());
    h.extend_from_slice(value);
}

/// An event message as AWS JSON services send it: `:message-type: event`, `:event-type`,
/// `:content-type: application/json`.
pub fn event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            Header::string(":event-type", event_type),
            Header::string(":content-type", "application/json"),
            Header::string(":message-type", "event"),
        ],
        payload,
    )
}

/// An exception message: `:message-type: exception`, `:exception-type`.
pub fn exception(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            Header::string(":exception-type", exception_type),
            Header::string(":content-type", "application/json"),
            Header::string(":message-type", "exception"),
        ],
        payload,
    )
}

#[cfg(test)]
#[path = "event_stream_tests.rs"]
mod tests;
