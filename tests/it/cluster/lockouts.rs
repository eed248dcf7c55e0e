//! Brute-force lockouts hold across instances (issue 19): an attacker who spreads wrong keys over
//! the instances behind a load balancer is blocked as if they had all gone to one — on every
//! instance, the right key included, until the block ends.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_keys_spread_over_a_and_b_block_the_address_on_both() {
    let Some((_c, a, b)) = pair().await else {
        return;
    };
    for gw in [&a, &b] {
        assert_eq!(gw.chat(STATIC_KEY).await, 200);
    }
    // Five different wrong keys (one repeated counts once) from 127.0.0.1: A, B, A, B, A.
    for i in 0..5 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let status = gw.chat(&format!("sk-wrong-key-{i}-0123456789")).await;
        assert!([401, 429].contains(&status), "wrong key {i}: {status}");
    }
    for (name, gw) in [("A", &a), ("B", &b)] {
        let r = client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(STATIC_KEY)
            .json(&chat("mock-gpt", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{name} does not block the address");
        assert!(r.headers().contains_key("retry-after"), "{name}");
    }
}
