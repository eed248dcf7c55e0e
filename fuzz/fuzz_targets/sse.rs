//! The SSE scanner (`wire/sse.rs`) and usage extraction (`wire/usage.rs`) on upstream bytes.
//!
//! Input: an upstream's stream, as it would arrive; its last bytes also say how it is cut into
//! chunks. Properties:
//! - `DataLineScanner` hands out the same `data:` payloads whether the stream arrives whole,
//!   cut as the input says, or one byte at a time; no payload spans a line break.
//! - `may_carry_usage` (the cheap pre-check the relay runs before parsing an event) is true of
//!   every payload `parse_usage` finds usage in: the pre-check never hides usage from metering.
//! - The usage a stream reports (merged event by event, as the relay does) is the same in any
//!   chunking, and reading it (`total`) never panics, whatever the numbers.
//! - `parse_usage` and `requested_max_output` on the whole input never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::wire::sse::DataLineScanner;
use portcullis::wire::usage::{Usage, may_carry_usage, parse_usage, requested_max_output};
use portcullis_fuzz::{chunk_seed, chunks};

/// The payloads and the merged usage of `pieces`, fed in order.
fn scan(pieces: &[&[u8]]) -> (Vec<Vec<u8>>, Usage) {
    let mut scanner = DataLineScanner::default();
    let mut payloads = Vec::new();
    let mut usage = Usage::default();
    for piece in pieces {
        scanner.feed(piece, |data| {
            payloads.push(data.to_vec());
            if let Some(u) = parse_usage(data) {
                assert!(
                    may_carry_usage(data),
                    "usage the pre-check would skip: {:?}",
                    String::from_utf8_lossy(data)
                );
                usage.merge(u);
            }
        });
    }
    (payloads, usage)
}

fuzz_target!(|data: &[u8]| {
    let whole = scan(&[data]);
    for payload in &whole.0 {
        assert!(!payload.is_empty() && !payload.contains(&b'\n'));
    }
    let cut = chunks(data, chunk_seed(data));
    assert_eq!(scan(&cut), whole, "chunked as the input says");
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(scan(&bytes), whole, "one byte at a time");
    let _ = whole.1.total();
    if let Some(u) = parse_usage(data) {
        let _ = u.total();
        assert!(!u.is_empty());
    }
    let _ = requested_max_output(data);
});
