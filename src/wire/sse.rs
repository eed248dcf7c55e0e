//! Server-sent events: a line scanner that watches a byte stream being forwarded unchanged and
//! hands each complete `data:` payload to a callback. It never re-chunks or delays the bytes; it
//! only keeps the unfinished last line of a chunk until the next chunk completes it.

/// Finds `data:` payloads in SSE bytes that arrive in arbitrary pieces.
#[derive(Debug, Default)]
pub struct DataLineScanner {
    carry: Vec<u8>,
}

/// A line longer than this without a newline is dropped from scanning (the bytes are still
/// forwarded); it bounds the scanner's memory against a misbehaving upstream.
const MAX_LINE: usize = 4 * 1024 * 1024;

impl DataLineScanner {
    /// Feeds the next chunk; calls `on_data` with each complete `data:` payload (without the
    /// `data:` prefix, leading space and line ending).
    pub fn feed(&mut self, chunk: &[u8], mut on_data: impl FnMut(&[u8])) {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.carry.extend_from_slice(&rest[..i]);
                    let line = std::mem::take(&mut self.carry);
                    emit(&line, &mut on_data);
                    rest = &rest[i + 1..];
                }
                None => {
                    if self.carry.len() + rest.len() <= MAX_LINE {
                        self.carry.extend_from_slice(rest);
                    } else {
                        self.carry.clear();
                    }
                    return;
                }
            }
        }
        while let Some(i) = memchr::memchr(b'\n', rest) {
            emit(&rest[..i], &mut on_data);
            rest = &rest[i + 1..];
        }
        if !rest.is_empty() && rest.len() <= MAX_LINE {
            self.carry.extend_from_slice(rest);
        }
    }
}

fn emit(line: &[u8], on_data: &mut impl FnMut(&[u8])) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if let Some(payload) = line.strip_prefix(b"data:") {
        let payload = payload.strip_prefix(b" ").unwrap_or(payload);
        if !payload.is_empty() {
            on_data(payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> Vec<String> {
        let mut s = DataLineScanner::default();
        let mut out = Vec::new();
        for p in pieces {
            s.feed(p, |d| out.push(String::from_utf8_lossy(d).into_owned()));
        }
        out
    }

    #[test]
    fn finds_payloads_whatever_the_chunking() {
        let text = b"event: x\ndata: {\"a\":1}\n\ndata:{\"b\":2}\r\n\r\ndata: [DONE]\n\n";
        let whole = scan(&[text]);
        assert_eq!(whole, vec![r#"{"a":1}"#, r#"{"b":2}"#, "[DONE]"]);
        for cut in 1..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(scan(&[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(scan(&bytes), whole);
    }

    #[test]
    fn ignores_comments_and_other_fields() {
        assert_eq!(
            scan(&[b": ping\nid: 3\nretry: 10\n\n"]),
            Vec::<String>::new()
        );
    }
}
