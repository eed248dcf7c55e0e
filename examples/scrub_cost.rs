//! What searching answers for the gateway's upstream secrets costs per request (issue 14: the
//! scan of successful bodies and streams): `cargo run --release --example scrub_cost`.
//!
//! Times `Scrubber::scrub_body` (a non-streamed 2xx body), `StreamScrub::feed` (one SSE chunk)
//! and `Scrubber::found_in` (a response's headers) on answers of typical sizes that hold no
//! secret — the case every request pays for — with one credential's and one backend's secrets.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use portcullis::secret::Secret;
use portcullis::secret::scrub::{Scrubber, StreamScrub};

fn per_call_ns(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iterations)
}

fn main() {
    let credential = Arc::new(Scrubber::new([&Secret::new(
        "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
    )]));
    let backend = Arc::new(Scrubber::new([&Secret::new(
        "azure-query-key-0123456789abcdef",
    )]));
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(4096);
    println!("answer                          bytes      ns/answer   ns/KiB");
    for size in [1024usize, 16 * 1024, 1024 * 1024] {
        let body = Bytes::from(format!(
            "{{\"id\":\"chatcmpl-1\",\"choices\":[{{\"message\":{{\"content\":\"{}\"}}}}]}}",
            &text[..size.min(text.len())]
        ));
        let ns = per_call_ns(2000, || {
            let b = credential.scrub_body(black_box(body.clone()));
            black_box(backend.scrub_body(b));
        });
        println!(
            "2xx JSON body                 {:>8} {:>12.0} {:>8.1}",
            body.len(),
            ns,
            ns / (body.len() as f64 / 1024.0)
        );
    }
    let chunk = Bytes::from_static(
        b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" lazy\"}}]}\n\n",
    );
    let mut stream = StreamScrub::new([credential.clone(), backend.clone()]).unwrap();
    let ns = per_call_ns(200_000, || {
        black_box(stream.feed(black_box(chunk.clone())));
    });
    println!(
        "SSE chunk                     {:>8} {:>12.0}",
        chunk.len(),
        ns
    );
    let headers: Vec<&[u8]> = vec![
        b"application/json",
        b"req_0123456789abcdef",
        b"1699",
        b"chatcmpl-0123456789",
        b"gpt-4o-2024-08-06",
        b"10000",
        b"9999",
        b"6ms",
    ];
    let ns = per_call_ns(100_000, || {
        for h in &headers {
            black_box(credential.found_in(h) || backend.found_in(h));
        }
    });
    println!("8 response headers            {:>8} {:>12.0}", 0, ns);
}
