//! An SSO login is one story across instances: the agent's sandbox answer and the login page
//! come from A, the identity provider's callback — the enterprise authorization, the agent token
//! — from B (every step's state is in the shared store), and the token works on both.

use reqwest::Method as M;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_login_started_on_a_finishes_on_b() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    let c = c.with_sso().await;
    let a = c.spawn("a", |_| {}).await;
    let b = c.spawn("b", |_| {}).await;
    let token = sso_login(&a.url, &b.url).await.unwrap();
    assert!(token.starts_with("sk-pcl-"), "{token}");
    for gw in [&a, &b] {
        assert_eq!(gw.chat(&token).await, 200);
    }
    // And the other way round: a second device of the same user.
    let second = sso_login(&b.url, &a.url).await.unwrap();
    assert_ne!(second, token);
    for gw in [&a, &b] {
        assert_eq!(gw.chat(&second).await, 200);
        // Both instances list the same user with the same two devices.
        let (_, users) = gw.mgmt(M::GET, "/v0/management/users", None).await;
        assert_eq!(users["users"].as_array().unwrap().len(), 1, "{users}");
        let (_, tokens) = gw.mgmt(M::GET, "/v0/management/tokens", None).await;
        assert_eq!(tokens["tokens"].as_array().unwrap().len(), 2, "{tokens}");
    }
}
