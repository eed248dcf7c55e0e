//! Checking that a request body is a JSON object, in one pass that also hands over its
//! top-level members: what the model API's request probe needs of every body before it is
//! forwarded (a malformed request must not reach the provider), at a fraction of a full parse's
//! cost on the 50–200 KB bodies coding agents send — mostly strings: a short one is read in one
//! sixteen-byte block, a long one sixty-four bytes at a time, its escapes paired in the chunk's
//! bit masks so that only a closing quote, a control byte or a non-ASCII character stops the scan.
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

use super::lanes::{block_at, chunk_at, masks64};

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
/// checked on the way. A short string (a key, a role) ends in its first sixteen bytes, flagged
/// at once (`wire::lanes`); a longer one is read sixty-four bytes at a time ([`long_string_end`]).
#[inline(always)]
fn string_end(json: &[u8], i: usize) -> Result<usize, Rejected> {
    let (block, _) = block_at(json, i);
    let flags = block
        .eq(b'"')
        .or(block.eq(b'\\'))
        .or(block.control_or_non_ascii())
        .bits();
    let at = i + flags.trailing_zeros() as usize;
    if flags != 0 && json.get(at) == Some(&b'"') {
        return Ok(at);
    }
    long_string_end(json, i)
}

/// [`string_end`] sixty-four bytes at a time. The chunk's backslashes are paired with the bytes
/// they escape first, so that an escaped quote is told from the closing one without a stop;
/// what stops the scan is an unescaped quote (the end), control byte (refused) or non-ASCII
/// character (read, then the scan goes on in the same chunk). A backslash that ends the chunk
/// escapes the next chunk's first byte.
fn long_string_end(json: &[u8], mut i: usize) -> Result<usize, Rejected> {
    // Bit 0 set when the chunk's first byte is escaped by the previous chunk's last backslash.
    let mut escaped_first = 0u64;
    let mut padded = [0; 64];
    loop {
        // Past the end, zeros: control bytes, which stop the scan and are refused there.
        let (backslashes, stops) = masks64(chunk_at(json, i, &mut padded), |b| {
            (b.eq(b'\\'), b.eq(b'"').or(b.control_or_non_ascii()))
        });
        let escapes = escapes(json, i, backslashes & !escaped_first)?;
        let mut stops = stops & !(escapes << 1 | escaped_first);
        loop {
            if stops == 0 {
                escaped_first = escapes >> 63;
                i += 64;
                break;
            }
            let at = i + stops.trailing_zeros() as usize;
            let next = match json.get(at) {
                Some(b'"') => return Ok(at),
                Some(0x80..) => char_end(json, at)?,
                _ => return Err(Rejected),
            };
            if next >= i + 64 {
                // The character's last bytes are the next chunk's first: no backslash before it.
                escaped_first = 0;
                i = next;
                break;
            }
            stops &= u64::MAX << (next - i);
        }
    }
}

/// Where the escapes start among `backslashes` (a chunk's from `i`, its first one not escaped):
/// each backslash not escaped by the one before it, its escape checked. The escapes after the
/// string's end are checked too, though they belong to the strings that follow it: outside a
/// string no backslash is JSON, so a bad one anywhere is a bad text, and the pairs are the same
/// from any string's start — a run of backslashes never spans a string's edge.
#[inline(always)]
fn escapes(json: &[u8], i: usize, mut backslashes: u64) -> Result<u64, Rejected> {
    let starts = if backslashes & backslashes << 1 == 0 {
        // No two side by side (the common case): each one starts an escape.
        backslashes
    } else {
        let mut starts = 0;
        while backslashes != 0 {
            let first = backslashes & backslashes.wrapping_neg();
            starts |= first;
            backslashes &= !(first | first << 1);
        }
        starts
    };
    let mut unchecked = starts;
    while unchecked != 0 {
        escape_end(json, i + unchecked.trailing_zeros() as usize + 1)?;
        unchecked &= unchecked - 1;
    }
    Ok(starts)
}

/// The kinds of byte after a backslash: what ends a two-byte escape, `u`, and the rest.
const ESCAPE_KIND: [u8; 256] = {
    let mut kinds = [0; 256];
    let mut k = 0;
    let simple = b"\"\\/bfnrt";
    while k < simple.len() {
        kinds[simple[k] as usize] = 1;
        k += 1;
    }
    kinds[b'u' as usize] = 2;
    kinds
};

/// The index after the character whose first byte, not ASCII, is at `i`, which must be UTF-8: a
/// lead byte and its continuation bytes, the second byte's range ruling out overlong forms,
/// surrogates and code points past U+10FFFF (RFC 3629 §4). A character that follows it is
/// flagged in the chunk's stops too, and read next.
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
    match json.get(i).map(|&letter| ESCAPE_KIND[usize::from(letter)]) {
        Some(1) => Ok(i + 1),
        Some(2) => match json.get(i + 1..i + 5) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(i + 5),
            _ => Err(Rejected),
        },
        _ => Err(Rejected),
    }
}

#[cfg(test)]
#[path = "json_valid_tests.rs"]
mod tests;
