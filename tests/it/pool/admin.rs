//! Changing the pool: the credential directory's hot reload, the management API (auth, masking,
//! CRUD), an operator's refresh, multi-user filtering, sealing at rest and key rotation.

use super::*;
use portcullis::clock::Clock;

/// Runs the `pool.rescan` job once (what the scheduler does every second), then reads the
/// pool's listing, which must satisfy `check`.
async fn after_rescan(e: &Env, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let now = e.clock.now_millis();
    assert!(e.state.jobs().run_once("pool.rescan", now).await);
    let (_, v) = mgmt(&e.gw, reqwest::Method::GET, "/v0/management/auths", None).await;
    assert!(check(&v), "{what}: {v}");
    v
}

/// Ids of the credentials that come from files.
fn file_ids(v: &Value) -> Vec<String> {
    v["auths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["source"] == "file")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_credential_directory_is_reloaded_on_change_and_a_bad_file_is_skipped() {
    let auths = tempfile::tempdir().unwrap();
    let dir = auths.path().to_path_buf();
    let e = env(|m, _| {
        let mut c = pool_config(m, SelectionStrategy::Priority, vec![]);
        c.auth.credentials_dir = Some(dir.clone());
        c
    })
    .await;
    let r = ask(&e.gw, false).await;
    assert_eq!(r.status(), 200, "a backend without credentials sends none");
    std::fs::write(
        dir.join("openai.json"),
        r#"{"type":"api_key","token":"sk-file-one-0123456789","priority":1,"quota":{"limit":1000000,"used":50000}}"#,
    )
    .unwrap();
    after_rescan(&e, "added", |v| file_ids(v) == ["file-openai"]).await;
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with("sk-file-one-0123456789"), 1);

    std::fs::write(
        dir.join("openai.json"),
        r#"{"provider":"openai","token":"sk-file-two-0123456789","priority":3}"#,
    )
    .unwrap();
    after_rescan(&e, "changed", |v| {
        v["auths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "file-openai" && a["priority"] == 3)
    })
    .await;
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with("sk-file-two-0123456789"), 1);

    std::fs::write(
        dir.join("claude.json"),
        r#"{"type":"api_key","token":"sk-ant-file-0123456789"}"#,
    )
    .unwrap();
    std::fs::write(dir.join("broken.json"), "{ not json").unwrap();
    let v = after_rescan(&e, "corrupt skipped", |v| {
        v["errors"].as_array().is_some_and(|e| e.len() == 1) && file_ids(v).len() == 2
    })
    .await;
    assert_eq!(v["errors"][0]["source"], "broken.json");
    let mut got = file_ids(&v);
    got.sort();
    assert_eq!(
        got,
        ["file-claude", "file-openai"],
        "the other files keep working"
    );
    let claude = v["auths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "file-claude")
        .unwrap();
    assert_eq!(
        claude["provider"], "anthropic",
        "the seed's `claude` is `anthropic`"
    );
    assert_eq!(ask(&e.gw, false).await.status(), 200);

    std::fs::remove_file(dir.join("openai.json")).unwrap();
    after_rescan(&e, "deleted", |v| file_ids(v) == ["file-claude"]).await;
    let before = e.mock.stats.requests_with("sk-file-two-0123456789");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with("sk-file-two-0123456789"),
        before,
        "the deleted key is gone"
    );
}

/// A pool with one credential from the configuration (`yaml1`, priority 50).
async fn env_with_a_yaml_credential() -> Env {
    env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![cred("yaml1", "sk-yaml-key-0123456789", 50, None)],
        )
    })
    .await
}

#[tokio::test]
async fn the_management_api_needs_its_key_from_a_local_caller() {
    let e = env_with_a_yaml_credential().await;
    let url = format!("{}/v0/management/auths", e.gw.url);
    // No key, a wrong one, the right one relayed for a remote caller by a local proxy.
    for (key, forwarded_for, status) in [
        (None, None, 401),
        (Some("not-the-management-key"), None, 401),
        (Some(MGMT), Some("203.0.113.7"), 403),
    ] {
        let mut req = client().get(&url);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(f) = forwarded_for {
            req = req.header("x-forwarded-for", f);
        }
        let got = req.send().await.unwrap().status();
        assert_eq!(got, status, "{key:?} {forwarded_for:?}");
    }
}

#[tokio::test]
async fn a_credential_added_through_the_management_api_is_used_and_its_secret_never_shown() {
    let e = env_with_a_yaml_credential().await;
    let secret = "sk-added-through-api-0123456789x9f2";
    let added = add(
        &e.gw,
        json!({"provider": "openai", "type": "api_key", "token": secret, "priority": 1, "quota": {"limit": 1000000}}),
    )
    .await;
    let id = added["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("api-"));
    assert_eq!(added["token_hint"], "sk-…x9f2");
    assert_eq!(added["source"], "api");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with(secret),
        1,
        "priority 1 beats the YAML key's 50"
    );

    let all = listing(&e.gw, Some("openai")).await;
    let text = all.to_string();
    assert!(
        !text.contains(secret) && !text.contains("sk-yaml-key-0123456789"),
        "{text}"
    );
    assert_eq!(ids(&all["auths"]).len(), 2);
    let (s, one) = mgmt(
        &e.gw,
        reqwest::Method::GET,
        &format!("/v0/management/auths/openai?id={id}"),
        None,
    )
    .await;
    assert_eq!((s, one["id"].as_str()), (200, Some(id.as_str())));
}

#[tokio::test]
async fn the_management_api_changes_and_deletes_credentials_and_refuses_what_it_cannot_do() {
    let e = env_with_a_yaml_credential().await;
    let added = add(
        &e.gw,
        json!({"provider": "openai", "token": "sk-added-0123456789abcd", "priority": 1}),
    )
    .await;
    let one = format!(
        "/v0/management/auths/openai?id={}",
        added["id"].as_str().unwrap()
    );
    let (s, changed) = mgmt(
        &e.gw,
        reqwest::Method::PUT,
        &one,
        Some(json!({"token": "sk-replaced-0123456789abcd", "priority": 60, "label": "rotated"})),
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["priority"], 60);
    assert_eq!(changed["token_hint"], "sk-…cd");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with("sk-yaml-key-0123456789"),
        1,
        "now the YAML key leads"
    );
    use reqwest::Method as M;
    let auths = "/v0/management/auths";
    expect_statuses(
        &e.gw,
        vec![
            (
                M::PUT,
                "/v0/management/auths/openai",
                Some(json!({"priority": 2})),
                400,
                "two credentials: name one",
            ),
            (
                M::PUT,
                "/v0/management/auths/openai?id=yaml1",
                Some(json!({"priority": 1})),
                409,
                "config credentials are changed in the file",
            ),
            (
                M::POST,
                auths,
                Some(json!({"provider": "nope", "token": "sk-x-0123456789"})),
                404,
                "no such provider",
            ),
            (
                M::POST,
                auths,
                Some(json!({"provider": "openai"})),
                400,
                "no token",
            ),
            (M::DELETE, &one, None, 200, "deleted"),
            (M::DELETE, &one, None, 404, "already deleted"),
        ],
    )
    .await;
    let (s, doc) = mgmt(&e.gw, M::GET, "/v0/management/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/v0/management/auths/{provider}/quota"]["put"].is_object());
}

#[tokio::test]
async fn put_refuses_the_tokens_post_refuses_and_the_credential_stays() {
    // Issue 14: PUT checked only emptiness; a CRLF token made the pool skip the credential and
    // orphaned its row, and a 100 KB token was accepted.
    let e = env(|m, _| pool_config(m, SelectionStrategy::Priority, vec![])).await;
    let secret = "sk-kept-through-bad-puts-0123456789";
    let added = add(&e.gw, json!({"provider": "openai", "token": secret})).await;
    let id = added["id"].as_str().unwrap().to_owned();
    let path = format!("/v0/management/auths/openai?id={id}");
    let huge = "k".repeat(100 * 1024);
    for bad in [
        "sk-new\r\nX-Injected: 1",
        "sk-new\nline",
        huge.as_str(),
        "   ",
    ] {
        for method in [reqwest::Method::POST, reqwest::Method::PUT] {
            let (url, body) = if method == reqwest::Method::POST {
                (
                    "/v0/management/auths",
                    json!({"provider": "openai", "token": bad}),
                )
            } else {
                (path.as_str(), json!({"token": bad}))
            };
            let (s, err) = mgmt(&e.gw, method.clone(), url, Some(body)).await;
            assert_eq!(s, 400, "{method} {:.40?}: {err}", bad);
        }
        let (s, one) = mgmt(&e.gw, reqwest::Method::GET, &path, None).await;
        assert_eq!(s, 200, "the credential is still visible: {one}");
        assert_eq!(one["token_hint"], added["token_hint"], "and unchanged");
    }
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with(secret),
        1,
        "the old token is used"
    );
}

#[tokio::test]
async fn a_rejected_credential_is_back_after_an_operator_refresh() {
    const BAD: &str = "sk-pool-k-0123456789~status=401";
    let e = env(|m, _| {
        pool_config(
            m,
            SelectionStrategy::Priority,
            vec![
                cred("k", BAD, 1, None),
                cred("ok", "sk-pool-ok-0123456789", 10, None),
            ],
        )
    })
    .await;
    // Refused where the next credential is accepted: the credential was the difference.
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with(BAD), 1);
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with(BAD), 1, "rejected: cooling down");
    let (s, v) = mgmt(
        &e.gw,
        reqwest::Method::POST,
        "/v0/management/auths/openai/refresh",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["auths"][0]["status"], "active", "{v}");
    assert_eq!(ask(&e.gw, false).await.status(), 200);
    assert_eq!(e.mock.stats.requests_with(BAD), 2, "sent upstream again");
}

#[tokio::test]
async fn multi_user_mode_refuses_oauth_credentials() {
    let auths = tempfile::tempdir().unwrap();
    std::fs::write(
        auths.path().join("copilot.json"),
        r#"{"provider":"openai","type":"oauth","token":"gho_personal_0123456789"}"#,
    )
    .unwrap();
    std::fs::write(
        auths.path().join("team.json"),
        r#"{"provider":"openai","type":"api_key","token":"sk-team-0123456789"}"#,
    )
    .unwrap();
    let dir = auths.path().to_path_buf();
    let e = env(|m, _| {
        let mut c = pool_config(m, SelectionStrategy::Priority, vec![]);
        c.auth.credentials_dir = Some(dir);
        c.access_mode.mode = portcullis::config::AccessMode::MultiUser;
        c
    })
    .await;
    let v = listing(&e.gw, Some("openai")).await;
    assert_eq!(
        ids(&v["auths"]),
        ["file-team"],
        "the OAuth file is filtered out"
    );
    let (s, err) = mgmt(
        &e.gw,
        reqwest::Method::POST,
        "/v0/management/auths",
        Some(json!({"provider": "openai", "type": "oauth", "token": "gho_other_0123456789"})),
    )
    .await;
    assert_eq!(s, 403);
    assert!(err.to_string().contains("multi-user mode"), "{err}");
}

fn b64(bytes: [u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_survive_a_key_rotation() {
    let old_key = b64([7; 32]);
    let new_key = b64([9; 32]);
    let data = tempfile::tempdir().unwrap();
    let db = data.path().to_path_buf();
    let mock = start_mock().await;
    let make = |keys: &[&str]| {
        let mut c = pool_config(&mock, SelectionStrategy::Priority, vec![]);
        c.storage.data_dir = db.clone();
        c.auth.encryption.key = keys.first().map(|k| Secret::new(*k));
        c.auth.encryption.previous_keys = keys.iter().skip(1).map(|k| Secret::new(*k)).collect();
        c
    };
    let secret = "sk-sealed-secret-0123456789";
    {
        let (state, _) = AppState::open(make(&[&old_key])).await.unwrap();
        let gw = start_gateway_with_state(state).await;
        add(&gw, json!({"provider": "openai", "token": secret})).await;
        assert_eq!(ask(&gw, false).await.status(), 200);
        assert_eq!(
            mock.stats.requests_with(secret),
            1,
            "opened for the upstream"
        );
    }
    let raw = |dir: &Path| -> Vec<u8> {
        let mut all = Vec::new();
        for f in std::fs::read_dir(dir).unwrap() {
            all.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        all
    };
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        !contains(&raw(&db), secret),
        "no plaintext secret in the database files"
    );
    let store = SqlStore::open_sqlite(&db).await.unwrap();
    let row = &store.list_credentials().await.unwrap()[0];
    assert!(row.secret.starts_with("sealed.v1."), "{}", row.secret);

    // The new key alone cannot open it: a clear startup error, never garbage upstream.
    let err = AppState::open(make(&[&new_key]))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("sealed with key"), "{err}");
    // Rotation: new key + the old one as previous, rekey, then the new key alone.
    let out = portcullis::admin::auths::auths(
        &make(&[&new_key, &old_key]),
        &portcullis::clock::SystemClock,
        &portcullis::cli::AuthsCommand::Rekey,
        &mut std::io::empty(),
    )
    .await
    .unwrap();
    assert!(out.contains("1 stored credential(s)"), "{out}");
    let (state, _) = AppState::open(make(&[&new_key])).await.unwrap();
    let gw = start_gateway_with_state(state).await;
    assert_eq!(ask(&gw, false).await.status(), 200);
    assert_eq!(mock.stats.requests_with(secret), 2);
    assert!(!contains(&raw(&db), secret));
}

#[tokio::test]
async fn the_capture_masks_secrets_added_at_run_time_and_the_management_key() {
    // Review finding: the capture's secret list was fixed at startup, so a credential added
    // through the management API (and the management key itself) was written in clear.
    const ADDED: &str = "sk-apiAddedRUNTIMEsecret0123456789xyz";
    let e = env(|m, dir| {
        let mut c = pool_config(
            m,
            SelectionStrategy::Priority,
            vec![cred("yaml", "sk-pool-yaml-0123456789", 50, None)],
        );
        c.logging.capture_file = Some(dir.join("wire.jsonl"));
        c
    })
    .await;
    add(
        &e.gw,
        json!({"provider": "openai", "token": ADDED, "priority": 1}),
    )
    .await;
    let mut body = chat("openai:mock-gpt", false);
    body["messages"][0]["content"] = json!(format!("keys: {ADDED} and {MGMT}"));
    let resp = post_json(&format!("{}/v1/chat/completions", e.gw.url), body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        e.mock.stats.requests_with(ADDED),
        1,
        "the added key was used"
    );
    e.state.capture().flush();
    let captured = std::fs::read_to_string(e._dir.path().join("wire.jsonl")).unwrap();
    assert!(captured.contains("outbound_request"), "{captured}");
    assert!(!captured.contains(ADDED), "{captured}");
    assert!(!captured.contains(MGMT), "{captured}");
}
