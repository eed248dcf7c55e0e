//! Soak and churn (issue 20): one `portcullis serve` under a bounded run of mixed traffic —
//! streams cancelled midway, completions, a lockout flood from 8,192 forwarded addresses,
//! virtual keys created, used and revoked, credential files written and deleted — must answer
//! only what each kind of request expects, and end with its memory (RSS) and open file
//! descriptors where they were after warm-up. `PORTCULLIS_SOAK_SECS` sets the length (CI: 20 s;
//! maintainers run minutes); the figures are printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method as M;
use serde_json::json;

use super::{Cluster, MGMT, STATIC_KEY};
use crate::harness::*;

/// (VmRSS in KiB, open file descriptors) of process `pid`.
fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

/// What the workers need of the gateway (the instance itself stays with the test).
struct Target {
    url: String,
    http: reqwest::Client,
}

impl Target {
    async fn chat(&self, bearer: &str) -> u16 {
        chat_status_on(&self.http, &self.url, bearer).await
    }

    async fn mgmt(
        &self,
        method: M,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let req = self.http.request(method, format!("{}{path}", self.url));
        send_with_key(req, MGMT, body).await
    }
}

/// Unexpected answers, by what the worker was doing.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    unexpected: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn check(&self, what: &str, status: u16, expected: &[u16]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !expected.contains(&status) {
            self.unexpected
                .lock()
                .unwrap()
                .push(format!("{what}: {status}"));
        }
    }
}

async fn streams_cancelled_midway(gw: Arc<Target>, stop: Arc<AtomicBool>, t: Arc<Tally>) {
    while !stop.load(Ordering::Relaxed) {
        let resp = gw
            .http
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(STATIC_KEY)
            .header("x-mock", "chunks=50; chunk_delay_ms=20")
            .json(&chat("gpt-4o-mini", true))
            .send()
            .await;
        let Ok(mut resp) = resp else {
            t.check("stream", 0, &[200]);
            continue;
        };
        t.check("stream", resp.status().as_u16(), &[200]);
        // Two chunks, then the client goes away.
        let _ = resp.chunk().await;
        let _ = resp.chunk().await;
    }
}

async fn completions(gw: Arc<Target>, stop: Arc<AtomicBool>, t: Arc<Tally>) {
    while !stop.load(Ordering::Relaxed) {
        t.check("chat", gw.chat(STATIC_KEY).await, &[200]);
    }
}

async fn lockout_flood(gw: Arc<Target>, stop: Arc<AtomicBool>, t: Arc<Tally>) {
    // 8,192 addresses, each seen again and again: the lockout table reaches its steady size
    // during warm-up (fresh addresses without end would fill it to its cap, 100,000 records by
    // default — bounded, but growth that a flat-memory check cannot tell from a leak).
    let mut n: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_add(7919) % 8192;
        let from = format!("10.{}.{}.{}", (n >> 8) % 256, n % 256, n % 7);
        let status = gw
            .http
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(format!("sk-wrong-{n}"))
            .header("x-forwarded-for", from)
            .json(&chat("gpt-4o-mini", false))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        t.check("wrong key", status, &[401, 429]);
    }
}

async fn key_churn(gw: Arc<Target>, stop: Arc<AtomicBool>, t: Arc<Tally>) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = json!({"name": format!("soak-{n}"), "rules": {}});
        let (status, v) = gw.mgmt(M::POST, "/v0/management/keys", Some(body)).await;
        t.check("create key", status, &[201]);
        let (Some(id), Some(key)) = (v["id"].as_str(), v["key"].as_str()) else {
            continue;
        };
        t.check("virtual key", gw.chat(key).await, &[200]);
        let (status, _) = gw
            .mgmt(M::DELETE, &format!("/v0/management/keys/{id}"), None)
            .await;
        t.check("revoke", status, &[200, 204]);
        t.check("revoked key", gw.chat(key).await, &[401]);
    }
}

async fn credential_files(dir: std::path::PathBuf, stop: Arc<AtomicBool>, t: Arc<Tally>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let file = dir.join(format!("soak-{n}.json"));
        let body = json!({"provider": "openai", "type": "api_key", "token": format!("sk-soak-file-{n:08}")});
        std::fs::write(&file, body.to_string()).unwrap();
        if n > 3 {
            let _ = std::fs::remove_file(dir.join(format!("soak-{}.json", n - 3)));
        }
        t.requests.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn mixed_traffic_leaves_memory_and_descriptors_flat() {
    let secs: u64 = std::env::var("PORTCULLIS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let cluster = Cluster::on_sqlite().await;
    let auths = tempfile::tempdir().unwrap();
    let dir = auths.path().to_owned();
    let instance = cluster
        .spawn("soak", |c| {
            c["server"]["trusted_proxies"] = json!(["127.0.0.1/32"]);
            c["server"]["keep_alive_idle"] = json!("1s");
            c["auth"]["credentials_dir"] = json!(dir);
        })
        .await;
    let pid = instance.pid();
    let gw = Arc::new(Target {
        url: instance.url.clone(),
        http: client(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(tokio::spawn(streams_cancelled_midway(
            gw.clone(),
            stop.clone(),
            tally.clone(),
        )));
    }
    for _ in 0..2 {
        workers.push(tokio::spawn(completions(
            gw.clone(),
            stop.clone(),
            tally.clone(),
        )));
        workers.push(tokio::spawn(lockout_flood(
            gw.clone(),
            stop.clone(),
            tally.clone(),
        )));
    }
    workers.push(tokio::spawn(key_churn(
        gw.clone(),
        stop.clone(),
        tally.clone(),
    )));
    workers.push(tokio::spawn(credential_files(
        auths.path().to_owned(),
        stop.clone(),
        tally.clone(),
    )));

    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs / 4)).await;
    let warm = footprint(pid);
    let mut peak = warm;
    while start.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = footprint(pid);
        peak = (peak.0.max(now.0), peak.1.max(now.1));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    // The clients' keep-alive connections close after the idle time (1 s); wait for that.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let health = get_json(format!("{}/internal/health", gw.url)).await;
        let open = health["connections"]["open"].as_u64().unwrap();
        if open <= 1 || Instant::now() > deadline {
            break footprint(pid);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let requests = tally.requests.load(Ordering::Relaxed);
    eprintln!(
        "soak {secs} s: {requests} requests; RSS {} → peak {} → end {} KiB; fds {} → peak {} → end {}",
        warm.0, peak.0, after.0, warm.1, peak.1, after.1
    );
    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "{} unexpected answers: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(20)]
    );
    assert!(requests > secs * 50, "too little traffic: {requests}");
    // Flat: what warm-up reached, plus a margin for allocator slack — not growth per request.
    assert!(
        after.0 <= warm.0 + warm.0 / 4 + 8 * 1024,
        "RSS grew: {} → {} KiB",
        warm.0,
        after.0
    );
    assert!(
        after.1 <= warm.1 + 4,
        "descriptors leaked: {} → {}",
        warm.1,
        after.1
    );
}
