//! The lockout's settings reach the limiter from the seed's sources, on the real binary: the
//! `BRUTE_FORCE_*` environment variables and the `--auth-*` flags (which win over them). What
//! shows it: the Nth distinct wrong key (N from the setting) starts a block, so the next request,
//! even with the right key, is a 429 whose `Retry-After` is the configured first block.

use crate::harness::*;

const KEY: &str = "client-key-for-lockout-settings-0123";

/// A served gateway in front of the mock with `args` and `env`.
fn served(mock: &Mock, args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut cmd = serve_json();
    cmd.args(args)
        .env("PORTCULLIS_API_KEYS", KEY)
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("OPENAI_BASE_URL", format!("http://{}/v1", mock.addr));
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn_served(cmd)
}

/// A chat request with `key`: (status, Retry-After).
async fn call(url: &str, key: &str) -> (u16, Option<u64>) {
    let r = client()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap();
    let after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (r.status().as_u16(), after)
}

/// N-1 distinct wrong keys leave the address free; the Nth starts a block of `block` seconds.
async fn nth_wrong_key_blocks(url: &str, n: u32, block: u64) {
    for i in 1..n {
        assert_eq!(call(url, &format!("wrong-key-{i}-0123456789")).await.0, 401);
    }
    assert_eq!(
        call(url, KEY).await.0,
        200,
        "{} failures: not blocked",
        n - 1
    );
    assert_eq!(call(url, "wrong-key-last-0123456789").await.0, 401);
    let (status, after) = call(url, KEY).await;
    assert_eq!(status, 429, "the failure number {n} blocks");
    let after = after.unwrap();
    assert!(
        after > block - 10 && after <= block,
        "the first block is {block} s: Retry-After {after}"
    );
}

#[tokio::test]
async fn the_seeds_environment_names_drive_the_limiter() {
    let mock = start_mock().await;
    let env = [
        ("BRUTE_FORCE_MAX_FAILED_ATTEMPTS", "2"),
        ("BRUTE_FORCE_INITIAL_BLOCK_SECONDS", "120"),
        ("BRUTE_FORCE_MAX_BLOCK_SECONDS", "600"),
        ("BRUTE_FORCE_TTL_SECONDS", "600"),
    ];
    let gw = served(&mock, &[], &env);
    nth_wrong_key_blocks(&gw.url, 2, 120).await;
}

#[tokio::test]
async fn the_flags_drive_the_limiter_over_the_environment() {
    let mock = start_mock().await;
    let args = [
        "--auth-max-failed-attempts",
        "4",
        "--auth-brute-force-initial-block",
        "90",
    ];
    let env = [
        ("BRUTE_FORCE_MAX_FAILED_ATTEMPTS", "2"),
        ("BRUTE_FORCE_INITIAL_BLOCK_SECONDS", "300"),
    ];
    let gw = served(&mock, &args, &env);
    nth_wrong_key_blocks(&gw.url, 4, 90).await;
}

#[tokio::test]
async fn the_environment_switch_turns_the_limiter_off() {
    let mock = start_mock().await;
    let env = [
        ("BRUTE_FORCE_PROTECTION_ENABLED", "false"),
        ("BRUTE_FORCE_MAX_FAILED_ATTEMPTS", "1"),
    ];
    let gw = served(&mock, &[], &env);
    for i in 0..8 {
        assert_eq!(
            call(&gw.url, &format!("wrong-key-{i}-0123456789")).await.0,
            401
        );
    }
    assert_eq!(call(&gw.url, KEY).await.0, 200);
}
