//! The management API's OpenAPI document (hand-written, served at
//! `/v0/management/openapi.json` and `/openapi.json`) against the routes the router really serves: the management
//! group's route table (`api::groups::groups`, the only source `api::groups::router` builds
//! from, methods included) and the document name the same operations, and every documented
//! operation reaches its handler — no 404 or 405 from the router.

use std::collections::BTreeSet;

use portcullis::api::groups::{GroupName, groups};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::*;

const MGMT: &str = "management-key-openapi-0123456789";
const START_MS: u64 = 1_800_000_000_000;
const DOC: &str = "/v0/management/openapi.json";

/// `(path template, METHOD)` of every operation in the document.
pub(crate) fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item is an object");
            item.keys()
                .filter(|k| {
                    [
                        "get", "put", "post", "delete", "patch", "head", "options", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .map(|m| (path.clone(), m.to_uppercase()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `(path template, METHOD)` of every route of group `name`.
pub(crate) fn served(state: &AppState, name: GroupName) -> BTreeSet<(String, String)> {
    groups(state)
        .iter()
        .filter(|g| g.name == name)
        .flat_map(|g| g.routes().collect::<Vec<_>>())
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .map(move |m| (path.to_owned(), m.to_string()))
        })
        .collect()
}

/// Asserts that the routes `served` and the operations `documented` are the same.
pub(crate) fn same_operations(
    served: &BTreeSet<(String, String)>,
    documented: &BTreeSet<(String, String)>,
) {
    let undocumented: Vec<_> = served.difference(documented).collect();
    let not_served: Vec<_> = documented.difference(served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but not documented: {undocumented:?}; documented but not served: {not_served:?}"
    );
}

#[tokio::test]
async fn the_document_names_exactly_the_served_management_routes_and_each_reaches_its_handler() {
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.management.key = Some(Secret::new(MGMT));
    let dir = tempfile::tempdir().unwrap();
    let e = start_gateway_with_store(config, dir.path(), START_MS).await;

    let served = served(&e.state, GroupName::Management);
    assert!(served.len() >= 20, "{served:?}");

    let (status, doc) = call_with_key(&e.gw.url, MGMT, Method::GET, DOC, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = documented(&doc);
    same_operations(&served, &documented);
    let (status, again) = call_with_key(&e.gw.url, MGMT, Method::GET, "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(again, doc, "/openapi.json is the management document");

    // Real objects for the path parameters, so each handler finds what it is asked about.
    let tokens = e.state.token_store().unwrap();
    let user = tokens
        .upsert_user("google", "alice", Some("alice@example.com"), None, 0)
        .await
        .unwrap();
    tokens
        .insert_token(&token_record(
            "openapitoken",
            &user.id,
            "no-hash",
            START_MS as i64,
        ))
        .await
        .unwrap();
    let (status, key) = call_with_key(
        &e.gw.url,
        MGMT,
        Method::POST,
        "/v0/management/keys",
        Some(json!({"name": "openapi"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let key_id = key["id"].as_str().unwrap().to_owned();

    // Every documented operation, deletions last (they end what the others look at).
    let mut operations: Vec<&(String, String)> = documented.iter().collect();
    operations.sort_by_key(|(path, method)| (method == "DELETE", path.clone()));
    for (template, method) in operations {
        let path = template
            .replace("{provider}", "openai")
            .replace("/tokens/{id}", "/tokens/openapitoken")
            .replace("/keys/{id}", &format!("/keys/{key_id}"));
        assert!(
            !path.contains('{'),
            "a parameter without a value: {template}"
        );
        let method: Method = method.parse().unwrap();
        let body = [Method::POST, Method::PUT, Method::PATCH]
            .contains(&method)
            .then(|| json!({}));
        let (status, answer) = call_with_key(&e.gw.url, MGMT, method.clone(), &path, body).await;
        assert!(
            status != 404 && status != 405,
            "{method} {path}: {status} {answer}"
        );
    }
    assert_eq!(mock.stats.requests(), 0, "nothing reached an upstream");
}
