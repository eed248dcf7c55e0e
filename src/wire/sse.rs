//! Server-sent events: a line scanner that watches a byte stream being forwarded unchanged and
//! hands each complete `data:` payload to a callback. It never re-chunks or delays the bytes; it
//! only keeps the unfinished last line of a chunk until the next chunk completes it.
//!
//! Lines end as the SSE specification allows: `\r\n`, `\n`, or a bare `\r`. A `\r\n` split
//! between two chunks is one line end, not two (the `\r` ends the line; a `\n` opening the next
//! chunk is then skipped). Every scanner over an upstream event stream (the usage tap in
//! `api::proxy`, the protocol translators in `translate`) reads through this one.

/// Finds `data:` payloads in SSE bytes that arrive in arbitrary pieces.
#[derive(Debug, Default)]
pub struct DataLineScanner {
    /// The unfinished last line of the chunks so far.
    carry: Vec<u8>,
    /// The last chunk ended with `\r`: a `\n` opening the next one belongs to that line end.
    after_cr: bool,
    /// The current line outgrew [`MAX_LINE`]: its bytes are skipped up to its end.
    skipping: bool,
}

/// A line longer than this without a line end is dropped from scanning (the bytes are still
/// forwarded); it bounds the scanner's memory against a misbehaving upstream.
const MAX_LINE: usize = 4 * 1024 * 1024;

impl DataLineScanner {
    /// Feeds the next chunk; calls `on_data` with each complete `data:` payload (without the
    /// `data:` prefix, leading space and line ending).
    pub fn feed(&mut self, chunk: &[u8], mut on_data: impl FnMut(&[u8])) {
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            rest = rest.strip_prefix(b"\n").unwrap_or(rest);
        }
        while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
            let piece = &rest[..i];
            if std::mem::take(&mut self.skipping) {
                // The end of an overlong line: nothing of it is scanned.
            } else if self.carry.is_empty() {
                if piece.len() <= MAX_LINE {
                    emit(piece, &mut on_data);
                }
            } else if self.carry.len() + piece.len() <= MAX_LINE {
                self.carry.extend_from_slice(piece);
                emit(&self.carry, &mut on_data);
            }
            self.carry.clear();
            let cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        if self.skipping || rest.is_empty() {
            return;
        }
        if self.carry.len() + rest.len() <= MAX_LINE {
            self.carry.extend_from_slice(rest);
        } else {
            self.carry = Vec::new();
            self.skipping = true;
        }
    }
}

fn emit(line: &[u8], on_data: &mut impl FnMut(&[u8])) {
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

    /// Every way of cutting `text` into two or three pieces, and byte by byte, scans as the
    /// whole does.
    fn same_in_every_chunking(text: &[u8]) -> Vec<String> {
        let whole = scan(&[text]);
        for a in 0..=text.len() {
            let (x, rest) = text.split_at(a);
            assert_eq!(scan(&[x, rest]), whole, "cut at {a}");
            for b in 0..=rest.len() {
                let (y, z) = rest.split_at(b);
                assert_eq!(scan(&[x, y, z]), whole, "cuts at {a} and {}", a + b);
            }
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(scan(&bytes), whole, "byte by byte");
        whole
    }

    #[test]
    fn every_line_ending_is_a_line_end_whatever_the_chunking() {
        let want = vec![r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#, "[DONE]"];
        for text in [
            &b"data: {\"a\":1}\r\rdata: {\"b\":2}\r\revent: x\rdata: {\"c\":3}\r\rdata: [DONE]\r\r"[..],
            b"data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\nevent: x\r\ndata: {\"c\":3}\r\n\r\ndata: [DONE]\r\n\r\n",
            b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\rid: 7\r\ndata: {\"c\":3}\r\n\ndata: [DONE]\r",
        ] {
            assert_eq!(same_in_every_chunking(text), want);
        }
    }

    #[test]
    fn a_split_crlf_is_one_line_end() {
        // `\r` | `\n`: the `\n` is not an empty line of its own, and a `data:` line right after
        // it is read whole.
        assert_eq!(scan(&[b"data: a\r", b"\ndata: b\r", b"\n"]), vec!["a", "b"]);
        assert_eq!(scan(&[b"data: a\r", b"data: b\n"]), vec!["a", "b"]);
        assert_eq!(scan(&[b"data: a\r", b"", b"\ndata: b\n"]), vec!["a", "b"]);
    }

    #[test]
    fn an_overlong_line_is_skipped_to_its_end_not_read_from_its_middle() {
        let mut long = b"data: x".to_vec();
        long.extend(std::iter::repeat_n(b'y', MAX_LINE));
        let tail = b"data: fake\rdata: real\n";
        let mut s = DataLineScanner::default();
        let mut out = Vec::new();
        for piece in [&long[..MAX_LINE / 2], &long[MAX_LINE / 2..], &tail[..]] {
            s.feed(piece, |d| out.push(String::from_utf8_lossy(d).into_owned()));
        }
        assert_eq!(out, vec!["real"]);
        assert!(s.carry.capacity() <= MAX_LINE, "memory stays bounded");
    }

    #[test]
    fn the_length_limit_does_not_depend_on_the_chunking() {
        // Found by the `sse` fuzz target: a whole overlong line in one chunk was scanned, the
        // same line in two pieces was not.
        for len in [MAX_LINE - 1, MAX_LINE, MAX_LINE + 1] {
            let mut line = b"data: ".to_vec();
            line.resize(len, b'z');
            line.extend_from_slice(b"\ndata: next\n");
            let whole = scan(&[&line]);
            let halves = scan(&[&line[..len / 2], &line[len / 2..]]);
            let expected = if len <= MAX_LINE { 2 } else { 1 };
            assert_eq!(whole.len(), expected, "{len}");
            assert_eq!(whole, halves, "{len}");
        }
    }

    #[test]
    fn ignores_comments_and_other_fields() {
        assert_eq!(
            scan(&[b": ping\nid: 3\nretry: 10\n\n"]),
            Vec::<String>::new()
        );
    }
}
