//! Finding the gateway's upstream secrets in what an upstream sends back, so that a careless
//! or reflecting upstream cannot hand a client the key the gateway pays with.
//!
//! A [`Scrubber`] is built once per secret set (a pool credential, a backend's URL and header
//! secrets) and searched two ways:
//!
//! - **thorough** — response headers and error messages: the secret as sent, reversed, as hex,
//!   percent-encoded, and base64 (standard and URL-safe, at each of the three byte alignments a
//!   secret can have inside a longer encoded value, e.g. `Basic base64(user:password)`), every
//!   form matched without regard to ASCII case, and text split by zero-width characters joined
//!   first. Matches become `***` (never the secret's hint: that is part of the secret too).
//! - **exact** — successful bodies and streams, where the cost is paid on every request: the
//!   secret as sent and its base64 forms, case-sensitive, with SIMD substring search: one
//!   multi-pattern pass (Teddy) tells whether any form is there at all, and only then is each
//!   form looked for on its own.
//!   [`StreamScrub`] carries a partial match across stream chunks by holding back only a chunk
//!   tail that is the beginning of a secret (an SSE chunk ends in a blank line, which no secret
//!   starts with, so in practice nothing is held and no chunk is copied).

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use memchr::memmem::Finder;

use crate::secret::Secret;

/// What a found secret is replaced with.
pub const MASK: &str = "***";

/// Shortest secret searched for: a shorter one would match ordinary text.
pub const MIN_LEN: usize = 8;

/// Characters that render as nothing; text split by them is joined before the search.
const INVISIBLE: &[char] = &[
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
];

/// The searchable forms of a set of secrets.
pub struct Scrubber {
    /// Every form, ASCII-lower-cased (matched case-insensitively).
    thorough: Vec<Vec<u8>>,
    /// Shortest of them: a shorter text holds none (normalising a text only shortens it).
    shortest: usize,
    /// The raw and base64 forms, matched as they are.
    exact: Vec<Finder<'static>>,
    /// All of them in one searcher: whether any is in a text at all, in one pass (`None`
    /// without forms).
    any_exact: Option<aho_corasick::packed::Searcher>,
    /// Longest exact form.
    longest_exact: usize,
    /// The bytes an exact form begins with.
    starts: [bool; 256],
    /// The bytes the exact forms are made of.
    inner: [bool; 256],
}

impl Default for Scrubber {
    fn default() -> Self {
        Self::new([])
    }
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("forms", &self.thorough.len())
            .finish()
    }
}

impl Scrubber {
    /// The forms of every secret of at least [`MIN_LEN`] bytes in `secrets`.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut thorough: Vec<Vec<u8>> = Vec::new();
        let mut exact: Vec<Vec<u8>> = Vec::new();
        for secret in secrets {
            let raw = secret.expose().as_bytes();
            if raw.len() < MIN_LEN {
                continue;
            }
            let encoded = base64_forms(raw);
            exact.push(raw.to_vec());
            exact.extend(encoded.iter().cloned());
            thorough.push(raw.to_vec());
            thorough.extend(encoded);
            thorough.push(raw.iter().rev().copied().collect());
            thorough.push(hex(raw).into_bytes());
            let pct = percent_encoding::percent_encode(raw, RESERVED).to_string();
            if pct.as_bytes() != raw {
                thorough.push(pct.into_bytes());
            }
        }
        for form in &mut thorough {
            form.make_ascii_lowercase();
        }
        thorough.retain(|f| f.len() >= MIN_LEN);
        thorough.sort_by_key(|f| std::cmp::Reverse(f.len()));
        thorough.dedup();
        exact.retain(|f| f.len() >= MIN_LEN);
        exact.sort_by_key(|f| std::cmp::Reverse(f.len()));
        exact.dedup();
        let longest_exact = exact.first().map_or(0, Vec::len);
        let mut starts = [false; 256];
        let mut inner = [false; 256];
        for form in &exact {
            starts[usize::from(form[0])] = true;
            for b in form {
                inner[usize::from(*b)] = true;
            }
        }
        let any_exact = (!exact.is_empty())
            .then(|| {
                let mut forms = aho_corasick::packed::Config::new().builder();
                forms.extend(&exact);
                forms.build()
            })
            .flatten();
        Self {
            starts,
            inner,
            any_exact,
            shortest: thorough.last().map_or(0, Vec::len),
            thorough,
            exact: exact
                .iter()
                .map(|f| Finder::new(f.as_slice()).into_owned())
                .collect(),
            longest_exact,
        }
    }

    /// True when there is nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.thorough.is_empty()
    }

    /// True when `value` holds a secret in any form (a response header's value).
    pub fn found_in(&self, value: &[u8]) -> bool {
        // Too short for any form (an ASCII value is read as it is: no replacement characters).
        if value.len() < self.shortest && value.is_ascii() {
            return false;
        }
        !self.is_empty() && matches!(self.scrub(&String::from_utf8_lossy(value)), Cow::Owned(_))
    }

    /// `text` with every secret, in any form, replaced by [`MASK`] (an error message).
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() || text.len() < self.shortest {
            return Cow::Borrowed(text);
        }
        let mut ranges = self.thorough_matches(text.as_bytes());
        if text.contains(INVISIBLE) || text.contains('%') {
            // Search the text percent-decoded and with invisible characters removed too,
            // mapping each match back to the original bytes.
            let (joined, from, to) = normalise(text);
            for (s, e) in self.thorough_matches(&joined) {
                ranges.push((from[s], to[e - 1]));
            }
            ranges = merge(ranges);
        }
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        let out = replace_ranges(text.as_bytes(), ranges);
        Cow::Owned(
            String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }

    /// Every range of `hay` holding a thorough form, merged, in order.
    fn thorough_matches(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut ranges = Vec::new();
        for form in &self.thorough {
            let mut from = 0;
            while let Some(at) = find_ignore_case(&hay[from..], form) {
                ranges.push((from + at, from + at + form.len()));
                from += at + 1;
            }
        }
        merge(ranges)
    }

    /// Every range of `hay` holding an exact form, merged, in order.
    fn exact_matches(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        // Nearly always nothing is there: one pass says so (a searcher that could not be built
        // — a CPU without the instructions, more forms than it takes — leaves it to the
        // finders).
        if self
            .any_exact
            .as_ref()
            .is_some_and(|any| any.find(hay).is_none())
        {
            return Vec::new();
        }
        self.each_exact_match(hay)
    }

    /// [`Self::exact_matches`] form by form.
    fn each_exact_match(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut ranges = Vec::new();
        for finder in &self.exact {
            let n = finder.needle().len();
            ranges.extend(finder.find_iter(hay).map(|at| (at, at + n)));
        }
        merge(ranges)
    }

    /// `body` with every exact form replaced by [`MASK`]; `body` itself when none is there.
    /// Every other byte is kept as it came, UTF-8 or not.
    pub fn scrub_body(&self, body: Bytes) -> Bytes {
        let ranges = self.exact_matches(&body);
        if ranges.is_empty() {
            return body;
        }
        Bytes::from(replace_ranges(&body, ranges))
    }

    /// Where the bytes of `data` that later bytes may still change begin: the tail that is a
    /// proper beginning of an exact form, and before it the match (of `ranges`, this scrubber's
    /// merged matches in `data`) that reaches or touches that tail.
    fn unsettled_from(&self, data: &[u8], ranges: &[(usize, usize)]) -> usize {
        let mut from = data.len() - self.partial_tail(data);
        if let Some((s, e)) = ranges.last()
            && *e >= from
        {
            from = from.min(*s);
        }
        from
    }

    /// The length of the longest tail of `data` that is a proper beginning of an exact form.
    fn partial_tail(&self, data: &[u8]) -> usize {
        let reach = self.longest_exact.saturating_sub(1).min(data.len());
        // Such a tail is made of bytes the forms have: an event's closing line break, which no
        // form has, rules out every tail at once.
        let run = data[data.len() - reach..]
            .iter()
            .rev()
            .take_while(|b| self.inner[usize::from(**b)])
            .count();
        for at in data.len() - run..data.len() {
            if !self.starts[usize::from(data[at])] {
                continue;
            }
            let tail = &data[at..];
            if self
                .exact
                .iter()
                .any(|f| f.needle().len() > tail.len() && f.needle().starts_with(tail))
            {
                return tail.len();
            }
        }
        0
    }
}

/// Scrubs one response stream with up to two scrubbers (the credential's and the backend's),
/// chunk by chunk.
#[derive(Debug, Default)]
pub struct StreamScrub {
    scrubbers: Vec<Arc<Scrubber>>,
    held: BytesMut,
}

impl StreamScrub {
    /// A scrub with the non-empty ones of `scrubbers`; `None` when there is nothing to find.
    pub fn new(scrubbers: impl IntoIterator<Item = Arc<Scrubber>>) -> Option<Self> {
        let scrubbers: Vec<_> = scrubbers.into_iter().filter(|s| !s.is_empty()).collect();
        (!scrubbers.is_empty()).then(|| Self {
            scrubbers,
            held: BytesMut::new(),
        })
    }

    /// The part of `chunk` (after what was held back) that can go to the client now: what no
    /// later byte can change, scrubbed. Held back: a tail that begins a secret's form, and a
    /// match that reaches it (the next bytes may extend it into a longer, overlapping form, as
    /// the whole body would have it) — at most [`MAX_HELD`] bytes.
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        let mut data = if self.held.is_empty() {
            chunk
        } else {
            self.held.extend_from_slice(&chunk);
            self.held.split().freeze()
        };
        // The usual chunk: no form in it, no tail that begins one.
        if self
            .scrubbers
            .iter()
            .all(|s| s.exact_matches(&data).is_empty() && s.partial_tail(&data) == 0)
        {
            return data;
        }
        let ranges: Vec<Vec<(usize, usize)>> = self
            .scrubbers
            .iter()
            .map(|s| s.exact_matches(&data))
            .collect();
        let mut split = self
            .scrubbers
            .iter()
            .zip(&ranges)
            .map(|(s, r)| s.unsettled_from(&data, r))
            .min()
            .unwrap_or(data.len());
        // No match is cut in two by the split (another scrubber's may cross it)…
        while let Some(s) = ranges
            .iter()
            .flatten()
            .filter(|(s, e)| *s < split && *e > split)
            .map(|(s, _)| *s)
            .min()
        {
            split = s;
        }
        // …unless that would hold more than MAX_HELD: then a match crossing the split is masked
        // up to it, and its rest when it comes out.
        split = split.max(data.len().saturating_sub(MAX_HELD));
        if split < data.len() {
            self.held.extend_from_slice(&data[split..]);
            data.truncate(split);
        }
        let now: Vec<(usize, usize)> = ranges
            .into_iter()
            .flatten()
            .filter(|(s, _)| *s < split)
            .map(|(s, e)| (s, e.min(split)))
            .collect();
        if now.is_empty() {
            return data;
        }
        Bytes::from(replace_ranges(&data, merge(now)))
    }

    /// What is still held back, scrubbed, when the stream ends.
    pub fn finish(&mut self) -> Bytes {
        let mut data = self.held.split().freeze();
        for s in &self.scrubbers {
            data = s.scrub_body(data);
        }
        data
    }
}

/// Most bytes a stream scrub holds back: a run of overlapping forms longer than this (a hostile
/// upstream repeating one character) is released, masked, instead of growing without bound.
pub const MAX_HELD: usize = 64 * 1024;

/// `text` percent-decoded and without invisible characters, with the original byte range
/// each resulting byte came from (start, end).
fn normalise(text: &str) -> (Vec<u8>, Vec<usize>, Vec<usize>) {
    let bytes = text.as_bytes();
    let (mut out, mut from, mut to) = (Vec::new(), Vec::new(), Vec::new());
    let hex = |b: u8| (b as char).to_digit(16);
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            from.push(i);
            to.push(i + 3);
            i += 3;
            continue;
        }
        let c = text[i..].chars().next().unwrap_or('\0');
        let n = c.len_utf8().max(1);
        if !INVISIBLE.contains(&c) {
            for k in 0..n {
                out.push(bytes[i + k]);
                from.push(i + k);
                to.push(i + k + 1);
            }
        }
        i += n;
    }
    (out, from, to)
}

/// Base64 (standard and URL-safe) of `raw` at each byte alignment, without the characters
/// that depend on neighbouring bytes.
fn base64_forms(raw: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (skip, pad) in [(0usize, 0usize), (2, 1), (3, 2)] {
        let mut input = vec![0u8; pad];
        input.extend_from_slice(raw);
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&input);
        let drop_tail = usize::from(input.len() % 3 != 0);
        let Some(core) = encoded.get(skip..encoded.len().saturating_sub(drop_tail)) else {
            continue;
        };
        out.push(core.as_bytes().to_vec());
        let url_safe: Vec<u8> = core
            .bytes()
            .map(|b| match b {
                b'+' => b'-',
                b'/' => b'_',
                b => b,
            })
            .collect();
        out.push(url_safe);
    }
    out
}

fn hex(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every byte but RFC 3986's unreserved ones.
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The first position of `needle` (lower case) in `hay`, ignoring ASCII case.
fn find_ignore_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let at = from + memchr::memchr2(lo, up, &hay[from..=hay.len() - needle.len()])?;
        if hay[at..at + needle.len()].eq_ignore_ascii_case(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Sorted, overlapping ranges joined.
fn merge(mut ranges: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    ranges.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// `data` with each (sorted, disjoint) range replaced by [`MASK`], as text (lossy for invalid
/// UTF-8 only around the replaced ranges, which are ASCII in the forms searched).
fn replace_ranges(data: &[u8], ranges: Vec<(usize, usize)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    for (s, e) in ranges {
        out.extend_from_slice(&data[at..s]);
        out.extend_from_slice(MASK.as_bytes());
        at = e;
    }
    out.extend_from_slice(&data[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-upstreamEVILsecret0123456789abcd";

    fn scrubber() -> Scrubber {
        Scrubber::new([&Secret::new(KEY)])
    }

    #[test]
    fn every_encoding_of_the_key_is_found_in_error_text() {
        let s = scrubber();
        let b64 = |p: &str| base64::engine::general_purpose::STANDARD.encode(p);
        let echoes = [
            format!("bad key {KEY}"),
            format!("bad key {}", KEY.to_uppercase()),
            format!("bad key {}", KEY.chars().rev().collect::<String>()),
            format!("Basic {}", b64(&format!("user:{KEY}"))),
            format!("Basic {}", b64(&format!("us:{KEY}"))),
            format!("Basic {}", b64(&format!("u:{KEY}"))),
            format!("hex {}", hex(KEY.as_bytes())),
            format!("split {}\u{200B}{}", &KEY[..10], &KEY[10..]),
            format!("pct {}", KEY.replace('-', "%2D").replace('E', "%45")),
            format!(
                "url-safe {}",
                base64::engine::general_purpose::URL_SAFE.encode(format!("x{KEY}"))
            ),
        ];
        for echo in &echoes {
            let out = s.scrub(echo);
            assert!(out.contains(MASK), "{echo} -> {out}");
            assert!(
                !out.to_lowercase().contains(&KEY.to_lowercase()[4..]),
                "{out}"
            );
            assert!(s.found_in(echo.as_bytes()), "{echo}");
        }
        assert_eq!(s.scrub("nothing here"), "nothing here");
        assert!(!s.found_in(b"sk-upstream"));
    }

    #[test]
    fn a_text_shorter_than_every_form_is_not_searched_but_one_as_long_is() {
        let s = Scrubber::new([&Secret::new("abcdefgh")]);
        assert_eq!(s.shortest, 8);
        assert!(s.found_in(b"abcdefgh") && s.found_in(b"ABCDEFGH"));
        assert_eq!(s.scrub("abcdefgh"), MASK);
        assert!(!s.found_in(b"abcdefg") && !s.found_in(b""));
        assert_eq!(s.scrub("abcdefg"), "abcdefg");
        // Percent-encoded, the secret is longer than the form it decodes to.
        assert!(s.found_in(b"%61bcdefgh"));
        // Not UTF-8: read through the lossy copy, whatever its length.
        assert!(!s.found_in(b"ab\xffcd"));
        assert!(Scrubber::default().shortest == 0 && !Scrubber::default().found_in(b"x"));
    }

    #[test]
    fn percent_encoded_secrets_with_reserved_characters_are_found() {
        let s = Scrubber::new([&Secret::new("p@ss/word+123")]);
        assert!(s.found_in(b"x=p%40ss%2Fword%2B123"));
    }

    #[test]
    fn bodies_are_scrubbed_only_when_the_key_is_there() {
        let s = scrubber();
        let clean = Bytes::from_static(b"{\"ok\":true}");
        let out = s.scrub_body(clean.clone());
        assert_eq!(
            out.as_ptr(),
            clean.as_ptr(),
            "no copy when nothing is found"
        );
        let dirty = Bytes::from(format!("{{\"echo\":\"{KEY}\"}}"));
        assert_eq!(&s.scrub_body(dirty)[..], b"{\"echo\":\"***\"}");
        // Found by the `masker` fuzz target: bytes that are not UTF-8 became U+FFFD whenever a
        // key was masked, so a relayed body changed with the chunk the key fell in.
        let binary = [&b"\x8d\x9e "[..], KEY.as_bytes(), b" \xc5\xdf"].concat();
        assert_eq!(
            &s.scrub_body(Bytes::from(binary))[..],
            b"\x8d\x9e *** \xc5\xdf"
        );
    }

    #[test]
    fn a_key_split_across_stream_chunks_never_reaches_the_client() {
        let mut st = StreamScrub::new([Arc::new(scrubber())]).unwrap();
        let mut out = Vec::new();
        let text = format!("data: {{\"x\":\"{KEY}\"}}\n\n");
        for piece in text.as_bytes().chunks(7) {
            out.extend_from_slice(&st.feed(Bytes::copy_from_slice(piece)));
        }
        out.extend_from_slice(&st.finish());
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "data: {\"x\":\"***\"}\n\n");
        // A chunk ending in a blank line is passed on whole, without a copy.
        let chunk = Bytes::from_static(b"data: {}\n\n");
        let passed = st.feed(chunk.clone());
        assert_eq!(passed.as_ptr(), chunk.as_ptr());
        // A tail that only looked like the beginning of the key comes out at the end.
        assert_eq!(&st.feed(Bytes::from_static(b"ab sk-up"))[..], b"ab ");
        assert_eq!(&st.finish()[..], b"sk-up");
    }

    #[test]
    fn the_stream_masks_as_the_whole_body_does_however_it_is_cut() {
        // Found by the `masker` fuzz target: nine zero bytes have base64 forms of 12 and 11
        // `A`s; a chunk ending after eleven masked those and let the twelfth through, where the
        // whole body masks all twelve.
        let secret = Secret::new("\0".repeat(9));
        let s = Arc::new(Scrubber::new([&secret]));
        let body = b"x-secreAAAAAAAAAAAAt/http";
        let whole = s.scrub_body(Bytes::from_static(body));
        assert_eq!(&whole[..], b"x-secre***t/http");
        for cut in 0..=body.len() {
            let mut st = StreamScrub::new([s.clone()]).unwrap();
            let mut out = st.feed(Bytes::copy_from_slice(&body[..cut])).to_vec();
            out.extend_from_slice(&st.feed(Bytes::copy_from_slice(&body[cut..])));
            out.extend_from_slice(&st.finish());
            assert_eq!(out, whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_run_of_overlapping_forms_is_held_only_so_far() {
        let secret = Secret::new("\0".repeat(9));
        let mut st = StreamScrub::new([Arc::new(Scrubber::new([&secret]))]).unwrap();
        let mut out = 0;
        for _ in 0..64 {
            out += st.feed(Bytes::from(vec![b'A'; 8192])).len();
            assert!(st.held.len() <= MAX_HELD, "held {}", st.held.len());
        }
        assert!(out > 0, "released, masked");
        assert!(!st.finish().is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 512, failure_persistence: None, ..Default::default()
        })]

        /// The one-pass check never hides a form the finders see, whatever the text's length
        /// and wherever the forms fall; and the held-back tail is the longest that begins a
        /// form, as a byte-by-byte comparison finds it.
        #[test]
        fn the_one_pass_check_finds_what_the_finders_find(
            // Printable, not starting or ending with a space (a secret is trimmed, and one
            // shorter than `MIN_LEN` has no forms to search for).
            secret in "[!-~][ -~]{6,38}[!-~]",
            pieces in proptest::collection::vec((0usize..8, "[ -~]{0,40}"), 0..6),
        ) {
            let s = Scrubber::new([&Secret::new(secret.clone())]);
            proptest::prop_assert!(s.any_exact.is_some(), "the searcher is built here");
            let forms: Vec<Vec<u8>> = s.exact.iter().map(|f| f.needle().to_vec()).collect();
            let mut hay = Vec::new();
            for (form, filler) in &pieces {
                hay.extend_from_slice(filler.as_bytes());
                if let Some(form) = forms.get(*form) {
                    hay.extend_from_slice(form);
                }
            }
            for end in 0..=hay.len() {
                let text = &hay[..end];
                proptest::prop_assert_eq!(s.exact_matches(text), s.each_exact_match(text));
                let longest_tail = (1..=text.len())
                    .rev()
                    .find(|&n| {
                        let tail = &text[text.len() - n..];
                        forms.iter().any(|f| f.len() > n && f.starts_with(tail))
                    })
                    .unwrap_or(0);
                proptest::prop_assert_eq!(s.partial_tail(text), longest_tail);
            }
        }
    }

    #[test]
    fn short_secrets_are_not_searched() {
        assert!(Scrubber::new([&Secret::new("abc")]).is_empty());
        assert!(StreamScrub::new([Arc::new(Scrubber::default())]).is_none());
    }
}
