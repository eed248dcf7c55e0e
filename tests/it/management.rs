//! The management API's gate: off without a key, its own key (wrong ones refused and counted),
//! local callers only — a request relayed by a proxy on this host counts as remote — unless
//! `management.allow_remote`, which admits a remote caller with the key and nothing else.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::ManualClock;
use portcullis::notify::NoNotifier;
use portcullis::secret::Secret;
use portcullis::state::AppState;
use portcullis::store::{SqlStore, Store};

use crate::harness::*;

const KEY: &str = "management-key-0123456789";

async fn gateway(key: Option<&str>) -> (Mock, Gateway, tempfile::TempDir) {
    gateway_with(key, |_| {}).await
}

/// [`gateway`] with `tweak` applied to the configuration last.
async fn gateway_with(
    key: Option<&str>,
    tweak: impl FnOnce(&mut portcullis::config::Config),
) -> (Mock, Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::open_sqlite(dir.path()).await.unwrap());
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.management.key = key.map(Secret::new);
    tweak(&mut config);
    let state = AppState::with_parts(
        config,
        Arc::new(ManualClock::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )),
        Arc::new(NoNotifier),
        Some(store),
    )
    .unwrap();
    let gw = start_gateway_with_state(state).await;
    (mock, gw, dir)
}

async fn get(gw: &Gateway, key: Option<&str>, forwarded: bool) -> u16 {
    let mut req = client().get(format!("{}/v0/management/users", gw.url));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if forwarded {
        req = req.header("x-forwarded-for", "203.0.113.9");
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_management_api_is_gated() {
    let (_m, off, _d) = gateway(None).await;
    assert_eq!(
        get(&off, Some(KEY), false).await,
        404,
        "no key configured: no API"
    );
    let (_m2, gw, _d2) = gateway(Some(KEY)).await;
    assert_eq!(get(&gw, None, false).await, 401);
    assert_eq!(get(&gw, Some(KEY), false).await, 200);
    assert_eq!(
        get(&gw, Some(KEY), true).await,
        403,
        "relayed by a proxy on this host: not local"
    );
    // Security review, second pass FINDING 2: proxies that say for whom they relay with another
    // header (nginx `X-Real-IP`, `Via`, CDN headers) are relays too.
    for (name, value) in [
        ("x-real-ip", "8.8.8.8"),
        ("via", "1.1 nginx"),
        ("x-client-ip", "8.8.8.8"),
        ("cf-connecting-ip", "8.8.8.8"),
        ("true-client-ip", "8.8.8.8"),
    ] {
        let r = client()
            .get(format!("{}/v0/management/users", gw.url))
            .bearer_auth(KEY)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}");
    }
    for _ in 0..5 {
        assert_eq!(get(&gw, Some("wrong-key-0123456789"), false).await, 401);
    }
    assert_eq!(
        get(&gw, Some(KEY), false).await,
        429,
        "locked out after five wrong keys"
    );
}

/// `management.allow_remote` admits a remote caller only with the key. The remote caller is a
/// public address behind a trusted proxy on this host (`server.trusted_proxies`), so the lockout
/// counts that address, not the proxy's; and a proxy that is not trusted is a remote caller too.
#[tokio::test]
async fn allow_remote_admits_a_remote_caller_only_with_the_key() {
    let (_m, gw, _d) = gateway_with(Some(KEY), |c| {
        c.management.allow_remote = true;
        c.server.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    assert_eq!(get(&gw, Some(KEY), true).await, 200, "remote, with the key");
    assert_eq!(get(&gw, None, true).await, 401, "remote, without a key");
    for _ in 0..5 {
        assert_eq!(get(&gw, Some("wrong-key-0123456789"), true).await, 401);
    }
    assert_eq!(
        get(&gw, Some(KEY), true).await,
        429,
        "the remote address is locked out after five wrong keys"
    );
    assert_eq!(
        get(&gw, Some(KEY), false).await,
        200,
        "the lockout counted the remote address, not the proxy's"
    );

    // Without a trusted proxy, a relayed request is a remote caller all the same: the key is
    // what admits it.
    let (_m2, gw, _d2) = gateway_with(Some(KEY), |c| c.management.allow_remote = true).await;
    assert_eq!(get(&gw, None, true).await, 401);
    assert_eq!(get(&gw, Some(KEY), true).await, 200);
    assert_eq!(get(&gw, Some(KEY), false).await, 200);
}
