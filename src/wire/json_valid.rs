//! Checking that a request body is a JSON object, in one pass that also hands over its
//! top-level members: what the model API's request probe needs of every body before it is
//! forwarded (a malformed request must not reach the provider), at a fraction of a full parse's
//! cost on the 50–200 KB bodies coding agents send — mostly strings, crossed sixteen bytes at a
//! time.
//!
//! The grammar is RFC 8259's as `serde_json` reads it: white space is space, tab, LF and CR;
//! strings hold no byte below 0x20 and only the escapes `\" \\ \/ \b \f \n \r \t \uXXXX` (any
//! four hex digits: a lone surrogate in a skipped string is not an error, as serde_json skips
//! it); numbers are `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; nothing but white
//! space after the object. The text is checked to be UTF-8 on the way: a string's non-ASCII
//! bytes, character by character, since outside strings only ASCII is JSON (on mostly-ASCII
//! bodies this costs less than a separate pass over the whole). What this check accepts,
//! `serde_json` accepts, and it is UTF-8. It may refuse what `serde_json` would accept — nesting
//! deeper than [`MAX_DEPTH`] —, so a caller answers a refusal by parsing with `serde_json`,
//! which also explains the error.

use super::lanes::block_at;

/// The text is not a JSON object this check accepts (parse it with `serde_json` to know why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

/// Arrays and objects nested deeper than this are refused (the caller's full parse decides).
pub const MAX_DEPTH: usize = 128;

/// Checks `json` and calls `visit(key, value)` for each top-level member of the object, in
/// order: `key` is the key's text between its quotes as written (escapes not decoded), `value`
/// the value's text, trimmed of white space. A visitor's `Err` stops the check.
pub fn object_members<'a>(
    json: &'a [u8],
    mut visit: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), Rejected>,
) -> Result<(), Rejected> {
    let start = ws(json, 0);
    if json.get(start) != Some(&b'{') {
        return Err(Rejected);
    }
    let end = object(json, start + 1, 1, &mut visit)?;
    if ws(json, end) == json.len() {
        Ok(())
    } else {
        Err(Rejected)
    }
}

/// A member's key at `i` and its colon: the key's text and the index after the colon.
#[inline(always)]
fn key(json: &[u8], i: usize) -> Result<(&[u8], usize), Rejected> {
    if json.get(i) != Some(&b'"') {
        return Err(Rejected);
    }
    let close = string_end(json, i + 1)?;
    let colon = ws(json, close + 1);
    if json.get(colon) != Some(&b':') {
        return Err(Rejected);
    }
    Ok((&json[i + 1..close], colon + 1))
}

#[inline(always)]
fn ws(json: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = json.get(i) {
        i += 1;
    }
    i
}

/// The index just past the value starting at `i`, inside `depth` containers.
fn value(json: &[u8], i: usize, depth: usize) -> Result<usize, Rejected> {
    match json.get(i) {
        Some(b'"') => Ok(string_end(json, i + 1)? + 1),
        Some(b'{') => object(json, i + 1, depth + 1, &mut |_, _| Ok(())),
        Some(b'[') => array(json, i + 1, depth + 1),
        Some(b't') => word(json, i, b"true"),
        Some(b'f') => word(json, i, b"false"),
        Some(b'n') => word(json, i, b"null"),
        Some(b'-' | b'0'..=b'9') => number(json, i),
        _ => Err(Rejected),
    }
}

fn word(json: &[u8], i: usize, word: &[u8]) -> Result<usize, Rejected> {
    if json.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(Rejected)
    }
}

fn digits(json: &[u8], mut i: usize) -> usize {
    while let Some(b'0'..=b'9') = json.get(i) {
        i += 1;
    }
    i
}

/// At least one digit from `i`: the index after the last.
fn some_digits(json: &[u8], i: usize) -> Result<usize, Rejected> {
    let end = digits(json, i);
    if end == i { Err(Rejected) } else { Ok(end) }
}

fn number(json: &[u8], mut i: usize) -> Result<usize, Rejected> {
    if json.get(i) == Some(&b'-') {
        i += 1;
    }
    match json.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(json, i + 1),
        _ => return Err(Rejected),
    }
    if json.get(i) == Some(&b'.') {
        i = some_digits(json, i + 1)?;
    }
    if let Some(b'e' | b'E') = json.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = json.get(i) {
            i += 1;
        }
        i = some_digits(json, i)?;
    }
    Ok(i)
}

/// The index just past the object whose members start at `i`, `visit` called with each
/// member's key text and value text.
fn object<'a>(
    json: &'a [u8],
    i: usize,
    depth: usize,
    visit: &mut impl FnMut(&'a [u8], &'a [u8]) -> Result<(), Rejected>,
) -> Result<usize, Rejected> {
    if depth > MAX_DEPTH {
        return Err(Rejected);
    }
    let mut i = ws(json, i);
    if json.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        let (key, after) = key(json, i)?;
        let start = ws(json, after);
        let stop = value(json, start, depth)?;
        visit(key, &json[start..stop])?;
        i = ws(json, stop);
        match json.get(i) {
            Some(b',') => i = ws(json, i + 1),
            Some(b'}') => return Ok(i + 1),
            _ => return Err(Rejected),
        }
    }
}

/// The index just past the array whose elements start at `i`.
fn array(json: &[u8], i: usize, depth: usize) -> Result<usize, Rejected> {
    if depth > MAX_DEPTH {
        return Err(Rejected);
    }
    let mut i = ws(json, i);
    if json.get(i) == Some(&b']') {
        return Ok(i + 1);
    }
    loop {
        i = ws(json, value(json, i, depth)?);
        match json.get(i) {
            Some(b',') => i = ws(json, i + 1),
            Some(b']') => return Ok(i + 1),
            _ => return Err(Rejected),
        }
    }
}

/// The index of the quote closing the string whose text starts at `i`, its escapes and bytes
/// checked on the way: sixteen bytes at a time, every quote, backslash, control and non-ASCII
/// byte of the block flagged at once (`wire::lanes`), then each flagged byte in turn — an escape
/// or a character may end inside the block, and the flags after it still hold.
#[inline(always)]
fn string_end(json: &[u8], mut i: usize) -> Result<usize, Rejected> {
    'blocks: loop {
        // Past the end, zeros: control bytes, flagged and refused there.
        let (block, _) = block_at(json, i);
        let mut flags = block
            .eq(b'"')
            .or(block.eq(b'\\'))
            .or(block.control_or_non_ascii())
            .bits();
        while flags != 0 {
            let at = i + flags.trailing_zeros() as usize;
            let next = match json.get(at) {
                Some(b'"') => return Ok(at),
                Some(b'\\') => escape_end(json, at + 1)?,
                Some(0x80..) => char_end(json, at)?,
                _ => return Err(Rejected),
            };
            if next >= i + 16 {
                i = next;
                continue 'blocks;
            }
            flags &= u32::MAX << (next - i);
        }
        i += 16;
    }
}

/// The index after the character whose first byte, not ASCII, is at `i`, which must be UTF-8: a
/// lead byte and its continuation bytes, the second byte's range ruling out overlong forms,
/// surrogates and code points past U+10FFFF (RFC 3629 §4). A character that follows it is
/// flagged in the block too, and read next.
#[inline(always)]
fn char_end(json: &[u8], i: usize) -> Result<usize, Rejected> {
    let (len, second) = match json.get(i) {
        Some(0xc2..=0xdf) => (2, 0x80..=0xbf),
        Some(0xe1..=0xec | 0xee..=0xef) => (3, 0x80..=0xbf),
        Some(0xe0) => (3, 0xa0..=0xbf),
        Some(0xed) => (3, 0x80..=0x9f),
        Some(0xf0) => (4, 0x90..=0xbf),
        Some(0xf1..=0xf3) => (4, 0x80..=0xbf),
        Some(0xf4) => (4, 0x80..=0x8f),
        _ => return Err(Rejected),
    };
    match json.get(i + 1..i + len) {
        Some([first, rest @ ..])
            if second.contains(first) && rest.iter().all(|b| b & 0xc0 == 0x80) =>
        {
            Ok(i + len)
        }
        _ => Err(Rejected),
    }
}

/// The index after the escape whose letter is at `i` (after its backslash).
#[inline(always)]
fn escape_end(json: &[u8], i: usize) -> Result<usize, Rejected> {
    match json.get(i) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
        Some(b'u') => match json.get(i + 1..i + 5) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(i + 5),
            _ => Err(Rejected),
        },
        _ => Err(Rejected),
    }
}

#[cfg(test)]
#[path = "json_valid_tests.rs"]
mod tests;
