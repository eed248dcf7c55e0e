//! Finding the top-level members of a JSON object without decoding the rest: each member's key
//! as written (between its quotes) and its value where it lies, which the caller skips, takes
//! as text, or reads in place if it is an object (one walk over its bytes, not one to find its
//! end and another to read it). Strings and nested values are crossed sixteen bytes at a time,
//! their quotes, backslashes and brackets flagged at once (`wire::lanes`), nested values by
//! counting brackets outside strings, so reading one small member out of an upstream's answer
//! costs a pass over its bytes instead of a full parse.
//!
//! The scan does not validate what it skips; it answers [`Unscannable`] for anything it cannot
//! walk with certainty (no object, an unterminated string, a key written with an escape, text
//! after the object), and callers then fall back to a full parse.

use super::lanes::block_at;

/// The text is not an object this scan can walk; parse it fully instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unscannable;

/// Calls `visit(key, value)` for each top-level member of the object `json`, in order: `key` is
/// the key's text without its quotes (never containing a backslash: such a key makes the scan
/// [`Unscannable`]), `value` where the value lies, not walked yet. `visit` answers with the index
/// just past the value ([`Value::end`], [`Value::text`], or what reading it in place found).
pub fn members_in_place<'a>(
    json: &'a [u8],
    visit: impl FnMut(&'a [u8], Value<'a>) -> Result<usize, Unscannable>,
) -> Result<(), Unscannable> {
    let after = walk(json, skip_ws(json, 0), visit)?;
    end(json, after)
}

/// A member's value where it lies in its document, not walked yet: [`Value::text`] walks it to
/// its end, [`Value::members`] reads it as an object in place (one walk, where reading the
/// members of its text would walk it twice).
#[derive(Clone, Copy)]
pub struct Value<'a> {
    json: &'a [u8],
    start: usize,
}

impl<'a> Value<'a> {
    /// The value's text and the index just past it in its document.
    pub fn text(self) -> Result<(&'a [u8], usize), Unscannable> {
        let end = self.end()?;
        Ok((&self.json[self.start..end], end))
    }

    /// The index just past the value in its document.
    pub fn end(self) -> Result<usize, Unscannable> {
        value_end(self.json, self.start)
    }

    /// [`members_in_place`] of this value, an object (which its document may go on after):
    /// answers with the index just past the object.
    pub fn members(
        self,
        visit: impl FnMut(&'a [u8], Value<'a>) -> Result<usize, Unscannable>,
    ) -> Result<usize, Unscannable> {
        walk(self.json, self.start, visit)
    }

    /// The document from the value's first byte on, and that byte's index in it: for a reader
    /// that walks a value of a kind it knows itself (a count's digits), where taking its text
    /// first would walk it twice.
    pub fn rest(self) -> (&'a [u8], usize) {
        (self.json.get(self.start..).unwrap_or_default(), self.start)
    }

    /// The value's first byte (`None`: the document ends where it should start).
    pub fn first(self) -> Option<u8> {
        self.json.get(self.start).copied()
    }
}

/// Walks the object at `start` in `json` (which may go on after it), calling `visit(key,
/// value)` for each member, which answers with the index just past the value; answers with the
/// index just past the object.
fn walk<'a>(
    json: &'a [u8],
    start: usize,
    mut visit: impl FnMut(&'a [u8], Value<'a>) -> Result<usize, Unscannable>,
) -> Result<usize, Unscannable> {
    if json.get(start) != Some(&b'{') {
        return Err(Unscannable);
    }
    let mut i = skip_ws(json, start + 1);
    if json.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        if json.get(i) != Some(&b'"') {
            return Err(Unscannable);
        }
        // A key's first quote or backslash must close it: a backslash makes it unscannable.
        let close = quote_or_backslash(json, i + 1).ok_or(Unscannable)?;
        if json[close] != b'"' {
            return Err(Unscannable);
        }
        let key = &json[i + 1..close];
        i = skip_ws(json, close + 1);
        if json.get(i) != Some(&b':') {
            return Err(Unscannable);
        }
        let value = Value {
            json,
            start: skip_ws(json, i + 1),
        };
        let stop = visit(key, value)?;
        if stop <= value.start {
            // Not past the value: a visitor's mistake, never a loop.
            return Err(Unscannable);
        }
        i = skip_ws(json, stop);
        match json.get(i) {
            Some(b',') => i = skip_ws(json, i + 1),
            Some(b'}') => return Ok(i + 1),
            _ => return Err(Unscannable),
        }
    }
}

/// Only white space may follow the object.
fn end(json: &[u8], after: usize) -> Result<(), Unscannable> {
    if skip_ws(json, after) == json.len() {
        Ok(())
    } else {
        Err(Unscannable)
    }
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = json.get(i) {
        i += 1;
    }
    i
}

/// The index of the quote closing the string whose text starts at `i`: sixteen bytes at a time,
/// its quotes and backslashes flagged at once (`wire::lanes`), then each flagged byte in turn.
/// Inlined: it runs for every string of a document, most of them a few bytes long.
#[inline(always)]
fn string_end(json: &[u8], mut i: usize) -> Result<usize, Unscannable> {
    'blocks: loop {
        let (block, last) = block_at(json, i);
        let mut flags = block.eq(b'"').or(block.eq(b'\\')).bits();
        while flags != 0 {
            let at = i + flags.trailing_zeros() as usize;
            if json[at] == b'"' {
                return Ok(at);
            }
            // A backslash escapes the next byte (a quote included).
            let next = at + 2;
            if next >= i + 16 {
                i = next;
                continue 'blocks;
            }
            flags &= u32::MAX << (next - i);
        }
        if last {
            return Err(Unscannable);
        }
        i += 16;
    }
}

/// The index of the first `"` or `\` at or after `i`.
#[inline(always)]
fn quote_or_backslash(json: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let (block, last) = block_at(json, i);
        let flags = block.eq(b'"').or(block.eq(b'\\')).bits();
        if flags != 0 {
            return Some(i + flags.trailing_zeros() as usize);
        }
        if last {
            return None;
        }
        i += 16;
    }
}

/// The index just past the value starting at `start`.
fn value_end(json: &[u8], start: usize) -> Result<usize, Unscannable> {
    match json.get(start) {
        Some(b'"') => Ok(string_end(json, start + 1)? + 1),
        Some(b'{' | b'[') => nested_end(json, start),
        Some(_) => {
            let mut i = start;
            while i < json.len() && !is_delimiter(json[i]) {
                i += 1;
            }
            if i == start { Err(Unscannable) } else { Ok(i) }
        }
        None => Err(Unscannable),
    }
}

/// What ends a number, `true`, `false` or `null`.
fn is_delimiter(b: u8) -> bool {
    matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
}

/// The index just past the object or array starting at `start`: sixteen bytes at a time, its
/// brackets and quotes flagged at once (`wire::lanes`), each string skipped from its quote.
fn nested_end(json: &[u8], start: usize) -> Result<usize, Unscannable> {
    let mut depth = 0usize;
    let mut i = start;
    'blocks: loop {
        let (block, last) = block_at(json, i);
        let mut flags = block
            .eq(b'"')
            .or(block.eq(b'{'))
            .or(block.eq(b'['))
            .or(block.eq(b'}'))
            .or(block.eq(b']'))
            .bits();
        while flags != 0 {
            let at = i + flags.trailing_zeros() as usize;
            match json[at] {
                b'"' => {
                    let next = string_end(json, at + 1)? + 1;
                    if next >= i + 16 {
                        i = next;
                        continue 'blocks;
                    }
                    flags &= u32::MAX << (next - i);
                    continue;
                }
                b'{' | b'[' => depth += 1,
                _ => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(at + 1);
                    }
                }
            }
            flags &= flags - 1;
        }
        if last {
            return Err(Unscannable);
        }
        i += 16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each member's key and value text.
    fn members<'a>(
        json: &'a [u8],
        mut visit: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), Unscannable>,
    ) -> Result<(), Unscannable> {
        members_in_place(json, |key, value| {
            let (text, end) = value.text()?;
            visit(key, text)?;
            Ok(end)
        })
    }

    fn all(json: &str) -> Result<Vec<(String, String)>, Unscannable> {
        let mut out = Vec::new();
        members(json.as_bytes(), |k, v| {
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn each_member_is_found_with_its_value_text() {
        let got = all(
            r#" { "a" : 1 , "b":{"x":["}",{"y":"\"]"}]},"c":"q\"}" ,"d":[1,[2]],"e":null,"f":-1.5e3 } "#,
        )
        .unwrap();
        let want = [
            ("a", "1"),
            ("b", r#"{"x":["}",{"y":"\"]"}]}"#),
            ("c", r#""q\"}""#),
            ("d", "[1,[2]]"),
            ("e", "null"),
            ("f", "-1.5e3"),
        ];
        assert_eq!(got.len(), want.len());
        for ((k, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
        assert_eq!(all("{}").unwrap(), Vec::new());
        // Long strings (past the byte-by-byte start), with escapes before and after it.
        let long = format!(
            r#""{}\"{}\\{}""#,
            "a".repeat(30),
            "}".repeat(40),
            "b".repeat(5)
        );
        let got = all(&format!(r#"{{"k":{long},"{}":[{long}]}}"#, "c".repeat(50))).unwrap();
        assert_eq!(got[0].1, long);
        assert_eq!(got[1], ("c".repeat(50), format!("[{long}]")));
    }

    #[test]
    fn the_first_quote_or_backslash_is_found_wherever_it_is() {
        for len in 0..80 {
            for at in 0..len {
                for (hit, other) in [(b'"', b'\\'), (b'\\', b'"')] {
                    let mut text = vec![b'a'; len];
                    text[at] = hit;
                    if at + 1 < len {
                        text[len - 1] = other;
                    }
                    for from in 0..=at {
                        assert_eq!(
                            quote_or_backslash(&text, from),
                            Some(at),
                            "{len} {at} {from}"
                        );
                    }
                }
            }
            let plain = vec![0xffu8; len];
            assert_eq!(quote_or_backslash(&plain, 0), None);
            assert_eq!(quote_or_backslash(&plain, len + 1), None);
        }
    }

    #[test]
    fn a_value_ends_where_it_does_wherever_its_escapes_and_brackets_fall_in_a_block() {
        // Escaped backslashes before a quote, escaped quotes and brackets inside strings, moved
        // one byte at a time across the blocks' edges; each document is JSON (serde_json says).
        for inner in [
            r"\\", r#"\""#, r#"\\\""#, "]", "}", "[{", r"\\\\", r"\u00e9",
        ] {
            for pad in 0..40 {
                let text = format!("{}{inner}", "x".repeat(pad));
                let string = format!(r#""{text}""#);
                let nested = format!(r#"[{{"a":"{text}","{text}":["{inner}"]}},"{inner}"]"#);
                let doc = format!(r#"{{"s":{string},"n":{nested},"z":1}}"#);
                serde_json::from_str::<serde_json::Value>(&doc).unwrap();
                let got = all(&doc).unwrap();
                assert_eq!(got[0].1, string, "{doc}");
                assert_eq!(got[1].1, nested, "{doc}");
                assert_eq!(got[2], ("z".to_owned(), "1".to_owned()), "{doc}");
            }
        }
    }

    #[test]
    fn what_cannot_be_walked_with_certainty_is_unscannable() {
        for bad in [
            "",
            "[1]",
            "{",
            r#"{"a":1"#,
            r#"{"a":"open}"#,
            r#"{"a":{"b":1}"#,
            r#"{"u\u0073age":1}"#,
            r#"{"a":1} x"#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":"x\"#,
            r#"{a:1}"#,
        ] {
            assert_eq!(all(bad), Err(Unscannable), "{bad}");
        }
    }

    #[test]
    fn a_visitor_can_stop_the_scan() {
        let mut seen = 0;
        let r = members(br#"{"a":1,"b":2}"#, |_, _| {
            seen += 1;
            Err(Unscannable)
        });
        assert_eq!((r, seen), (Err(Unscannable), 1));
    }

    #[test]
    fn the_rest_of_a_value_starts_where_its_text_starts() {
        let json = br#"{"a":12 ,"b":"x"}"#;
        let mut seen = Vec::new();
        members_in_place(json, |_, value| {
            let (text, end) = value.text()?;
            let (rest, start) = value.rest();
            assert!(rest.starts_with(text));
            assert_eq!(rest.len(), json.len() - start);
            assert_eq!(start + text.len(), end);
            seen.push(start);
            Ok(end)
        })
        .unwrap();
        assert_eq!(seen, [5, 13]);
        let at_end = Value {
            json: b"{\"a\":",
            start: 5,
        };
        assert_eq!(at_end.rest(), (&b""[..], 5));
    }

    #[test]
    fn a_value_read_in_place_ends_where_its_text_ends() {
        let json = br#"{"a":{"x":1,"y":{"z":"}"}},"b":[{"c":2}],"d":{} ,"e":3}"#;
        let mut seen = Vec::new();
        members_in_place(json, |key, value| {
            let (text, end) = value.text()?;
            if value.first() == Some(b'{') {
                let mut inner = Vec::new();
                let at = value.members(|k, v| {
                    inner.push(String::from_utf8_lossy(k).into_owned());
                    v.end()
                })?;
                assert_eq!(at, end, "{}", String::from_utf8_lossy(text));
                seen.push(format!(
                    "{}={}",
                    String::from_utf8_lossy(key),
                    inner.join("+")
                ));
            } else {
                assert!(value.members(|_, v| v.end()).is_err());
                seen.push(String::from_utf8_lossy(key).into_owned());
            }
            Ok(end)
        })
        .unwrap();
        assert_eq!(seen, ["a=x+y", "b", "d=", "e"]);
        // A visitor answering with a place not past the value stops the scan.
        let mut calls = 0;
        let r = members_in_place(br#"{"a":1,"b":2}"#, |_, v| {
            calls += 1;
            Ok(v.end()? - 1)
        });
        assert_eq!((r, calls), (Err(Unscannable), 1));
    }
}
