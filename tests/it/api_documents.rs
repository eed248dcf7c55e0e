//! The token server's OpenAPI document (`/oauth/openapi.json`) against the token server group's
//! routes, and `/docs`: every operation of both documents on one self-contained page, text from
//! the documents escaped, a policy that runs no script and loads nothing, behind the management
//! key like `/openapi.json`.

use portcullis::api::groups::GroupName;
use portcullis::secret::Secret;
use reqwest::Method;
use serde_json::Value;

use crate::harness::*;
use crate::management_openapi::{documented, same_operations, served};

const MGMT: &str = "management-key-documents-0123456789";
const START_MS: u64 = 1_800_000_000_000;

async fn stored() -> (StoredGateway, Mock, tempfile::TempDir) {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.management.key = Some(Secret::new(MGMT));
    let dir = tempfile::tempdir().unwrap();
    let e = start_gateway_with_store(config, dir.path(), START_MS).await;
    (e, mock, dir)
}

#[tokio::test]
async fn the_token_server_document_names_exactly_its_routes_and_each_reaches_its_handler() {
    let (e, mock, _dir) = stored().await;
    let served = served(&e.state, GroupName::TokenServer);
    assert!(served.len() >= 6, "{served:?}");
    // Public, like the metadata: no key.
    let doc: Value = get_json(format!("{}/oauth/openapi.json", e.gw.url)).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = documented(&doc);
    same_operations(&served, &documented);
    let http = client();
    for (path, method) in &documented {
        let method: Method = method.parse().unwrap();
        let mut req = http.request(method.clone(), format!("{}{path}", e.gw.url));
        if method == Method::POST {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=nothing");
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        // Each answers as documented: its own refusal of an empty request, not the router's.
        assert!(
            status != 404 && status != 405 && !text.contains("no route"),
            "{method} {path}: {status} {text}"
        );
        let documented_statuses = &doc["paths"][path][method.as_str().to_lowercase()]["responses"];
        assert!(
            documented_statuses.get(status.to_string()).is_some(),
            "{method} {path}: {status} is not documented"
        );
    }
    assert_eq!(mock.stats.requests(), 0);
}

/// `/docs` with the management key: status, headers and page.
async fn docs(url: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = client().get(format!("{url}/docs"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn docs_shows_every_operation_of_both_documents_escaped_and_without_scripts() {
    let (e, _mock, _dir) = stored().await;
    let r = docs(&e.gw.url, Some(MGMT)).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(csp.contains("style-src 'sha256-"), "{csp}");
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script"), "no script");
    assert!(
        !page.contains("src=") && !page.contains("<link"),
        "nothing loaded"
    );

    let (_, management) = call_with_key(&e.gw.url, MGMT, Method::GET, "/openapi.json", None).await;
    let token_server: Value = get_json(format!("{}/oauth/openapi.json", e.gw.url)).await;
    let mut seen = 0;
    for doc in [&management, &token_server] {
        let title = doc["info"]["title"].as_str().unwrap();
        assert!(page.contains(title), "{title}");
        for (path, method) in documented(doc) {
            let shown = format!(
                "<span class=\"m {}\">{method}</span> <code>{path}</code>",
                method.to_lowercase()
            );
            assert!(page.contains(&shown), "{shown} is not on the page");
            let summary = doc["paths"][&path][method.to_lowercase()]["summary"]
                .as_str()
                .unwrap();
            // Shown escaped, `code spans` as code.
            for part in summary.split('`') {
                let part = part.replace('&', "&amp;").replace('\'', "&#39;");
                assert!(page.contains(&part), "{method} {path}: {part}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 30, "{seen}");
    // The management document's description holds `Bearer <key>`: shown, escaped.
    assert!(
        management["info"]["description"]
            .as_str()
            .unwrap()
            .contains("Bearer <key>")
    );
    assert!(page.contains("Bearer &lt;key&gt;"));
    assert!(!page.contains("<key>"));
}

#[tokio::test]
async fn the_documents_of_the_management_api_keep_its_guard() {
    let (e, _mock, _dir) = stored().await;
    assert_eq!(docs(&e.gw.url, None).await.status(), 401);
    assert_eq!(
        docs(&e.gw.url, Some("wrong-key-0123456789")).await.status(),
        401
    );
    for path in ["/openapi.json", "/docs"] {
        let r = client()
            .get(format!("{}{path}", e.gw.url))
            .bearer_auth(MGMT)
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}: a relayed caller is not local");
        let (status, _) = call_with_key(&e.gw.url, "", Method::GET, path, None).await;
        assert_eq!(status, 401, "{path}");
    }
}
