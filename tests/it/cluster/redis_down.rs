//! Redis dying under the instances (issue 19): each gives metered requests the treatment its
//! `limits.on_redis_error` names — A `closed` refuses them with a 503 in the caller's protocol,
//! B `open` serves them unmetered — and unmetered callers are served by both; neither process
//! panics or exits, both say so on `/internal/health`, and both meter again once Redis is back.

use serde_json::json;

use super::*;
use crate::redis_fixture::Throwaway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_gets_each_instance_its_configured_treatment_and_both_recover() {
    let Some(mut server) = Throwaway::start() else {
        return;
    };
    let Some(c) = Cluster::on_redis(server.url()).await else {
        return;
    };
    let mode =
        |m: &'static str| move |cfg: &mut Value| cfg["limits"] = json!({"on_redis_error": m});
    let mut a = c.spawn("a", mode("closed")).await;
    let mut b = c.spawn("b", mode("open")).await;
    let (_, key) = a.create_key("metered", json!({"rpm": 100000})).await;
    for gw in [&a, &b] {
        assert_eq!(gw.chat(&key).await, 200);
    }
    server.kill();
    let r = client()
        .post(format!("{}/v1/chat/completions", a.url))
        .bearer_auth(&key)
        .json(&chat("mock-gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let m = openai_error(&r.json().await.unwrap());
    assert!(m.contains("limit counters are unavailable"), "{m}");
    assert_eq!(b.chat(&key).await, 200, "open: served unmetered");
    for gw in [&a, &b] {
        assert_eq!(gw.chat(STATIC_KEY).await, 200, "nothing to count");
        assert_eq!(gw.redis_health().await["reachable"], false);
    }
    for (name, gw) in [("A", &mut a), ("B", &mut b)] {
        assert!(gw.running(), "{name} exited:\n{}", gw.log());
        assert!(!gw.log().contains("panicked"), "{name}:\n{}", gw.log());
    }
    server.restart();
    eventually(Duration::from_secs(10), "A metering again", || async {
        (a.chat(&key).await == 200).then_some(())
    })
    .await;
    for gw in [&a, &b] {
        assert_eq!(gw.chat(&key).await, 200);
        assert_eq!(gw.redis_health().await["reachable"], true);
    }
    for (name, gw) in [("A", &mut a), ("B", &mut b)] {
        assert!(gw.running() && !gw.log().contains("panicked"), "{name}");
    }
}
