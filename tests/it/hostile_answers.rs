//! Answers too large to buffer, from the servers the gateway calls on its own (key sets,
//! identity providers, device logins): a raw-socket server (`hostile`) sends a 50 MB body (chunked, or with
//! its `Content-Length`) and counts what it managed to write before the gateway hung up. Each
//! fetch must fail with "larger than" after reading about its limit, and close the connection.

use std::time::Duration;

use portcullis::config::{DeviceLoginConfig, DeviceLoginKind, SsoProviderConfig, SsoProviderKind};
use portcullis::secret::Secret;

use crate::hostile::{Answer, Hostile, hostile};

/// A server answering every request with a 50 MB body.
async fn endless(chunked: bool) -> Hostile {
    hostile(Box::new(move |_| Answer::Endless { chunked })).await
}

fn http() -> reqwest::Client {
    portcullis::net::outbound_client(Duration::from_secs(5), Duration::from_secs(60)).unwrap()
}

#[tokio::test]
async fn the_shared_reader_stops_at_its_limit_or_at_the_announced_length() {
    for chunked in [true, false] {
        let mut server = endless(chunked).await;
        let resp = http().get(&server.url).send().await.unwrap();
        let err = portcullis::net::read_body_limited(resp, 1024 * 1024)
            .await
            .unwrap_err();
        assert!(
            matches!(err, portcullis::net::BodyError::TooLarge(_)),
            "{err}"
        );
        server
            .assert_cut_short(1, &format!("chunked={chunked}"))
            .await;
    }
}

#[tokio::test]
async fn a_key_set_is_not_read_past_one_mib() {
    let mut server = endless(true).await;
    let jwks = portcullis::identity::jwks::RemoteJwks::new(
        format!("{}/jwks", server.url),
        http(),
        std::sync::Arc::new(portcullis::clock::SystemClock),
    );
    // An RS256 header naming an unknown key makes the set be fetched.
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5ldyJ9.e30.c2ln";
    let err = jwks
        .decode::<serde_json::Value>(token, jsonwebtoken::Validation::new)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    server.assert_cut_short(1, "jwks").await;
}

fn sso_provider(kind: SsoProviderKind, url: &str) -> SsoProviderConfig {
    SsoProviderConfig {
        kind,
        display_name: None,
        issuer: Some(url.to_owned()),
        discovery_url: None,
        client_id: "gw".into(),
        client_secret: Some(Secret::new("s")),
        client_secret_env: None,
        scopes: vec![],
        authorize_url: Some(format!("{url}/authorize")),
        token_url: Some(format!("{url}/token")),
        api_url: Some(url.to_owned()),
        allowed_domains: vec![],
    }
}

#[tokio::test]
async fn identity_provider_answers_are_not_read_past_their_limit() {
    // OIDC discovery (GET).
    let mut server = endless(true).await;
    let oidc = portcullis::sso::provider::Provider::new(
        "idp",
        &sso_provider(SsoProviderKind::Oidc, &server.url),
        http(),
        std::sync::Arc::new(portcullis::clock::SystemClock),
    );
    let err = oidc
        .authorization_url("http://gw/cb", "state", "nonce", "challenge")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    server.assert_cut_short(1, "discovery").await;

    // GitHub's token exchange (POST), with a Content-Length announcing the 50 MB.
    let mut server = endless(false).await;
    let github = portcullis::sso::provider::Provider::new(
        "gh",
        &sso_provider(SsoProviderKind::Github, &server.url),
        http(),
        std::sync::Arc::new(portcullis::clock::SystemClock),
    );
    let err = github
        .complete(&portcullis::sso::provider::CodeExchange {
            code: "c",
            redirect_uri: "http://gw/cb",
            pkce_verifier: "v",
            nonce: "n",
        })
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("larger than"), "{err}");
    server.assert_cut_short(1, "token").await;
}

#[tokio::test]
async fn a_device_login_server_answer_is_not_read_past_its_limit() {
    let mut server = endless(true).await;
    let cfg = DeviceLoginConfig {
        kind: Some(DeviceLoginKind::Generic),
        client_id: Some("gw".to_owned()),
        device_authorization_url: Some(format!("{}/device", server.url)),
        token_url: Some(format!("{}/token", server.url)),
        ..Default::default()
    };
    let login = portcullis::pool::device::DeviceLogin::from_config("corp", &cfg, http());
    let err = login.start().await.err().unwrap();
    assert!(err.to_string().contains("larger than"), "{err}");
    server.assert_cut_short(1, "device").await;
}

#[tokio::test]
async fn the_authorization_api_answer_is_not_read_past_its_limit() {
    let mut server = endless(true).await;
    let api = portcullis::sso::authorize::EnterpriseApi::new(
        format!("{}/check", server.url),
        None,
        Duration::from_secs(30),
    )
    .unwrap();
    let user = portcullis::store::User {
        id: "usr_1".into(),
        provider: "idp".into(),
        subject: "s".into(),
        email: None,
        display_name: None,
        created_at: 0,
        disabled: false,
    };
    let err = api
        .authorize(&user, "idp", "127.0.0.1".parse().unwrap(), "now")
        .await
        .unwrap_err();
    assert!(err.contains("larger than"), "{err}");
    server.assert_cut_short(1, "authorization API").await;
}
