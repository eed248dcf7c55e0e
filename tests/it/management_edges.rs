//! The management API at its edges, as the schemathesis run (tests/schemathesis) met them:
//! input axum's extractors cannot read is refused in the API's JSON shape, quota sums saturate
//! instead of overflowing, and a key's expiry stays a time RFC 3339 can write.

use portcullis::secret::Secret;
use reqwest::Method;
use serde_json::json;

use crate::harness::*;

const MGMT: &str = "management-key-edges-0123456789";
const START_MS: u64 = 1_800_000_000_000;

async fn gateway() -> (Mock, StoredGateway, tempfile::TempDir) {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.management.key = Some(Secret::new(MGMT));
    let dir = tempfile::tempdir().unwrap();
    let e = start_gateway_with_store(config, dir.path(), START_MS).await;
    (mock, e, dir)
}

#[tokio::test]
async fn unreadable_parameters_get_the_apis_json_problem() {
    // Axum answered these in plain text (`Failed to deserialize query string: duplicate field
    // `id``), which the document does not describe.
    let (_mock, e, _dir) = gateway().await;
    for (method, path) in [
        (Method::GET, "/v0/management/tokens?user=a&user=b"),
        (Method::GET, "/v0/management/keys?owner=a&owner=b"),
        (
            Method::GET,
            "/v0/management/usage?group_by=day&group_by=key",
        ),
        (Method::GET, "/v0/management/auths/openai?id=a&id=b"),
        (Method::DELETE, "/v0/management/auths/openai?id=a&id=b"),
        (Method::GET, "/v0/management/keys/%ff%fe"),
        (Method::DELETE, "/v0/management/tokens/%ff"),
        (Method::PUT, "/v0/management/auths/%ff/quota"),
    ] {
        let r = client()
            .request(method.clone(), format!("{}{path}", e.gw.url))
            .bearer_auth(MGMT)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].is_string(),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_a_json_413() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.management.key = Some(Secret::new(MGMT));
    config.server.max_body_bytes = 1024;
    let dir = tempfile::tempdir().unwrap();
    let e = start_gateway_with_store(config, dir.path(), START_MS).await;
    let name = "n".repeat(2048);
    let (status, body) = call_with_key(
        &e.gw.url,
        MGMT,
        Method::POST,
        "/v0/management/keys",
        Some(json!({ "name": name })),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn quota_sums_saturate_instead_of_overflowing() {
    // Each limit is stored up to i64::MAX; three of them overflowed the u64 sum, which killed
    // the connection in debug builds (a panic) and answered a wrapped total in release builds.
    let (_mock, e, _dir) = gateway().await;
    for n in 0..3 {
        let token = format!("sk-edges-{n}-0123456789abcdef");
        let (status, body) = call_with_key(
            &e.gw.url,
            MGMT,
            Method::POST,
            "/v0/management/auths",
            Some(json!({"provider": "openai", "token": token})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let quota = "/v0/management/auths/openai/quota";
    let huge = json!({ "limit": u64::MAX });
    let (status, body) = call_with_key(&e.gw.url, MGMT, Method::PUT, quota, Some(huge)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credentials"].as_array().unwrap().len(), 4, "{body}");
    assert_eq!(body["credentials"][0]["limit"], i64::MAX, "{body}");
    assert_eq!(body["limit"], u64::MAX, "{body}");
    assert_eq!(body["remaining"], u64::MAX, "{body}");
    let (status, again) = call_with_key(&e.gw.url, MGMT, Method::GET, quota, None).await;
    assert_eq!((status, &again), (200, &body));
}

#[tokio::test]
async fn an_expiry_after_the_year_9999_is_refused() {
    // `expires_in_secs` allows up to 2^40 s: the year 36869, which was stored and then shown as
    // `36869-01-23T…`, not an RFC 3339 date-time.
    let (_mock, e, _dir) = gateway().await;
    let keys = "/v0/management/keys";
    for body in [
        json!({"name": "far", "expires_in_secs": 1_u64 << 40}),
        json!({"name": "far", "expires_at": "9999-12-31T23:59:59-01:00"}),
    ] {
        let (status, answer) =
            call_with_key(&e.gw.url, MGMT, Method::POST, keys, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], "expires_at", "{answer}");
    }
    let last = json!({"name": "last", "expires_at": "9999-12-31T23:59:59Z"});
    let (status, key) = call_with_key(&e.gw.url, MGMT, Method::POST, keys, Some(last)).await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["expires_at"], "9999-12-31T23:59:59.000Z");
    let one = format!("{keys}/{}", key["id"].as_str().unwrap());
    let later = json!({ "expires_in_secs": 1_u64 << 40 });
    let (status, answer) = call_with_key(&e.gw.url, MGMT, Method::PATCH, &one, Some(later)).await;
    assert_eq!(status, 400, "{answer}");
}
