//! What the fuzz targets share: reading a fuzz input as readable text (so the seeds in
//! `fuzz/seeds/<target>/` are files a person can write and read), cutting a byte string into
//! pieces the way a network might, for the properties that must not depend on chunking, and
//! reading an HTTP/1.1 body from such pieces (the `h1` and `h1_server` targets).

use bytes::BytesMut;
use portcullis::upstream::h1_wire::{Decoded, Framing};

/// The input's lines (split on `\n`, a trailing `\r` kept: it is part of what is tested).
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n')
}

/// The first line and the rest (empty when there is no newline).
pub fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// `data` cut into pieces whose lengths come from `seed` (1 to 16 bytes each, cycling through
/// the seed's bytes; one piece when the seed is empty). Deterministic: a crash reproduces.
pub fn chunks<'a>(data: &'a [u8], seed: &[u8]) -> Vec<&'a [u8]> {
    if seed.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let len = (usize::from(seed[i % seed.len()] % 16) + 1).min(rest.len());
        let (piece, tail) = rest.split_at(len);
        out.push(piece);
        rest = tail;
        i += 1;
    }
    out
}

/// A short seed for [`chunks`] taken from the input itself (its last bytes), so one input
/// decides both the bytes and how they are cut.
pub fn chunk_seed(data: &[u8]) -> &[u8] {
    &data[data.len().saturating_sub(8)..]
}

/// Base62 text of length `len` made from `bytes` (cycled; `0`s when empty): the alphabet of the
/// gateway's token ids and secrets.
pub fn base62(bytes: &[u8], len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..len)
        .map(|i| {
            let b = bytes.get(i % bytes.len().max(1)).copied().unwrap_or(0);
            ALPHABET[usize::from(b.wrapping_add(i as u8)) % 62] as char
        })
        .collect()
}

/// How reading an HTTP/1.1 body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Ended,
    More,
    Failed,
}

/// Reads a body framed by `framing` from `buf` and then `pieces`: its bytes, how it ended, and
/// what is left in the buffer. The body never yields an empty chunk and ends only where its
/// framing does.
pub fn read_body<'a>(
    mut framing: Framing,
    mut buf: BytesMut,
    pieces: &mut std::slice::Iter<'a, &'a [u8]>,
) -> (Vec<u8>, End, BytesMut) {
    let mut body = Vec::new();
    let end = loop {
        match framing.decode(&mut buf) {
            Ok(Decoded::Data(d)) => {
                assert!(!d.is_empty(), "an empty chunk");
                body.extend_from_slice(&d);
            }
            Ok(Decoded::End) => {
                assert!(framing.finished(), "ended before its framing did");
                break End::Ended;
            }
            Ok(Decoded::More) => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => break End::More,
            },
            Err(_) => break End::Failed,
        }
    };
    (body, end, buf)
}
