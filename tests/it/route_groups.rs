//! Every route of the router is in exactly one group, each group has its guard, and the guards
//! hold for every route: walked from the router's own route table (`api::groups::groups`, the
//! only source `api::groups::router` builds from), so a new route is covered the day it is
//! added.

use std::collections::HashMap;

use portcullis::api::groups::{GroupName, Guard, bypass_warnings, groups, router};
use portcullis::config::{Config, SsoProviderKind};
use portcullis::secret::Secret;
use portcullis::state::AppState;

use crate::harness::*;

const KEY: &str = "route-groups-key-0123456789";
const MGMT: &str = "management-key-0123456789";

fn guarded(mut config: Config) -> Config {
    require_key(&mut config, KEY);
    config.management.key = Some(Secret::new(MGMT));
    config
}

/// A concrete path for a route template (`{x}` → `x`).
fn concrete(template: &str) -> String {
    template.replace(['{', '}'], "")
}

#[tokio::test]
async fn every_route_is_in_exactly_one_group_with_its_guard() {
    let mock = start_mock().await;
    let state = AppState::new(guarded(config_for(&mock))).unwrap();
    let table = groups(&state);
    let mut owner: HashMap<&str, GroupName> = HashMap::new();
    for g in &table {
        let want = match g.name {
            GroupName::Public => Guard::Open,
            GroupName::ModelApi => Guard::ClientCredential,
            GroupName::Pages => Guard::BrowserPage,
            GroupName::DeviceLogin => Guard::LocalBrowser,
            GroupName::Management => Guard::ManagementKey,
            GroupName::TokenServer => Guard::Grant,
            GroupName::Metrics => Guard::Scraper,
            GroupName::Console => Guard::AdminConsole,
        };
        assert_eq!(g.guard, want, "{:?}", g.name);
        for p in g.paths() {
            if let Some(other) = owner.insert(p, g.name) {
                panic!("{p} is in {other:?} and {:?}", g.name);
            }
        }
    }
    // Nothing is open that is not meant to be: adding a public route means changing this list.
    let mut open: Vec<&str> = table
        .iter()
        .filter(|g| g.guard == Guard::Open)
        .flat_map(|g| g.paths())
        .collect();
    open.sort_unstable();
    assert_eq!(open, ["/health", "/internal/health"]);
    assert!(owner.len() > 30, "{}", owner.len());

    // The guards hold on every route of the guarded groups, for every method, and for unknown
    // paths: without a credential, nothing reaches a handler.
    let gw = start_gateway(guarded(config_for(&mock))).await;
    let http = client();
    for g in &table {
        let refused = match g.guard {
            Guard::ClientCredential | Guard::ManagementKey => 401,
            // Reached by a name that is not a loopback one (DNS rebinding): refused.
            Guard::LocalBrowser => 403,
            // SSO is off: every page says so. No store: no token server. The console is off.
            Guard::BrowserPage | Guard::Grant | Guard::AdminConsole => 404,
            // A relayed caller is not local, and metrics.allow_remote is off.
            Guard::Scraper => 403,
            Guard::Open => continue,
        };
        for p in g.paths() {
            for method in [
                reqwest::Method::GET,
                reqwest::Method::POST,
                reqwest::Method::DELETE,
            ] {
                let mut r = http
                    .request(method.clone(), format!("{}{}", gw.url, concrete(p)))
                    .header("host", "gateway.example");
                if g.guard == Guard::Scraper {
                    r = r.header("x-forwarded-for", "203.0.113.7");
                }
                let r = r.send().await.unwrap();
                assert_eq!(r.status(), refused, "{method} {p}");
            }
        }
    }
    for p in [
        "/v1/nothing-here",
        "/static/app.js",
        "/auth/nope",
        "/v0/management/nope",
    ] {
        let r = http.get(format!("{}{p}", gw.url)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{p}");
    }
    assert_eq!(mock.stats.requests(), 0, "nothing reached an upstream");
}

#[tokio::test]
async fn bypass_paths_move_whole_model_routes_to_the_public_group() {
    let mock = start_mock().await;
    let mut config = guarded(config_for(&mock));
    config.auth.bypass_paths = vec![
        "/v1beta/*".into(),
        "/auth/*".into(),
        // Served nowhere (`/docs` is now: the management key guards it, no client credential).
        "/static/*".into(),
        "/v1/models/gpt-*".into(),
    ];
    let state = AppState::new(config).unwrap();
    let mut open: Vec<&str> = groups(&state)
        .into_iter()
        .filter(|g| g.name == GroupName::Public)
        .flat_map(|g| g.paths().collect::<Vec<_>>())
        .collect();
    open.sort_unstable();
    assert_eq!(
        open,
        [
            "/health",
            "/internal/health",
            "/v1beta/models",
            "/v1beta/models/{target}"
        ]
    );
    let warnings = bypass_warnings(&state);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("auth.bypass_paths[2] `/static/*`"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("`/v1/models/gpt-*`"), "{warnings:?}");
}

#[tokio::test]
async fn the_model_apis_json_posts_are_served_directly_behind_the_same_guard() {
    let mock = start_mock().await;
    let state = AppState::new(guarded(config_for(&mock))).unwrap();
    let (_, direct) = router(state);
    let mut paths: Vec<String> = direct.paths().map(str::to_owned).collect();
    paths.sort_unstable();
    let mut want: Vec<String> = [
        "/v1/messages",
        "/v1/messages/batches",
        "/v1/messages/count_tokens",
    ]
    .map(str::to_owned)
    .into();
    for p in [
        "/chat/completions",
        "/completions",
        "/embeddings",
        "/moderations",
        "/responses",
        "/responses/compact",
        "/responses/input_tokens",
    ] {
        want.push(p.to_owned());
        want.push(format!("/v1{p}"));
    }
    want.sort_unstable();
    assert_eq!(paths, want);

    // A bypassed path leaves the direct table with its group: served open, by the router.
    let mut config = guarded(config_for(&mock));
    config.auth.bypass_paths = vec!["/v1/chat/completions".into()];
    let (_, direct) = router(AppState::new(config.clone()).unwrap());
    assert!(direct.post("/v1/chat/completions").is_none());
    assert!(direct.post("/chat/completions").is_some());
    let gw = start_gateway(config).await;
    let body =
        serde_json::json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]});
    let open = post_json(&format!("{}/v1/chat/completions", gw.url), body.clone()).await;
    assert_eq!(open.status(), 200);
    let guarded = post_json(&format!("{}/chat/completions", gw.url), body.clone()).await;
    assert_eq!(guarded.status(), 401);
    // Other methods on a direct path still go through the router: 401 first (the guard covers
    // wrong methods too), then 405 with a credential.
    let http = client();
    let get = http
        .get(format!("{}/chat/completions", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 401);
    let get = http
        .get(format!("{}/chat/completions", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let ok = http
        .post(format!("{}/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(mock.stats.requests(), 2);
}

#[tokio::test]
async fn page_groups_refuse_forms_from_another_origin_on_every_route() {
    let mock = start_mock().await;
    let mut config = guarded(config_for(&mock));
    config.sso.enabled = true;
    let github = crate::sso_gateway::provider(SsoProviderKind::Github, "gw-client", "gh-secret");
    config.sso.providers.insert("gh".into(), github);
    config.admin.console.enabled = true;
    config.admin.console.admins = vec!["alice".into()];
    let dir = tempfile::tempdir().unwrap();
    let e = start_gateway_with_store(config, dir.path(), 1_800_000_000_000).await;
    let http = client();
    let mut checked = 0;
    for g in groups(&e.state) {
        if !matches!(
            g.guard,
            Guard::BrowserPage | Guard::LocalBrowser | Guard::AdminConsole
        ) {
            continue;
        }
        for p in g.paths() {
            for method in [reqwest::Method::POST, reqwest::Method::DELETE] {
                let r = http
                    .request(method.clone(), format!("{}{}", e.gw.url, concrete(p)))
                    .header("origin", "http://evil.example")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 403, "{method} {p}");
                let page = r.text().await.unwrap();
                assert!(page.contains("from another site"), "{method} {p}: {page}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "{checked}");
    // With a store, the token server's group lets its routes through to their handlers.
    let r = http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            e.gw.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(mock.stats.requests(), 0, "nothing reached an upstream");
}
