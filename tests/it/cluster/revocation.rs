//! A revocation made through one instance's management API is enforced by the others within a
//! second (PRODUCT §8) — for a virtual key and for an agent token, each known to (cached by) the
//! other instance before it was revoked. The time from the revoke's answer to A's first refusal
//! is measured and printed (the bus brings it in milliseconds; the revision poll alone took up
//! to 1.1 s on a busy machine).

use reqwest::Method as M;
use serde_json::Value;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_revoked_through_b_is_refused_by_a_within_a_second() {
    let Some((c, a, b)) = pair().await else {
        return;
    };
    let (key_id, key) = a.create_key("laptop", Value::Null).await;
    let (token, token_id) = issue_token(&c, "a", "dev@example.com").await;
    let cases = [
        ("virtual key", format!("/v0/management/keys/{key_id}"), key),
        (
            "agent token",
            format!("/v0/management/tokens/{token_id}"),
            token,
        ),
    ];
    for (what, path, secret) in cases {
        for gw in [&a, &b] {
            assert_eq!(gw.chat(&secret).await, 200, "{what}");
        }
        let (status, v) = b.mgmt(M::DELETE, &path, None).await;
        assert_eq!(status, 200, "{what}: {v}");
        let revoked = Instant::now();
        let refused = || async { (a.chat(&secret).await == 401).then_some(()) };
        eventually(Duration::from_secs(5), what, refused).await;
        let took = revoked.elapsed();
        eprintln!("{what} revoked through B: refused by A after {took:?}");
        assert!(
            took < Duration::from_secs(1),
            "{what}: A refused it after {took:?}"
        );
        assert_eq!(b.chat(&secret).await, 401, "{what}");
    }
}
