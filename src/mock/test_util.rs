//! Test helpers: start a mock server on a free port and parse SSE bodies.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{MockStats, serve};

/// A running mock server; shut down when dropped.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) stats: Arc<MockStats>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(MockStats::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, Arc::clone(&stats), async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            stats,
            _shutdown: tx,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A plain HTTP/1.1 client.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// One parsed SSE event.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

impl Event {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Parses an SSE body (LF or CRLF line endings).
pub(crate) fn parse_sse(body: &str) -> Vec<Event> {
    let body = body.replace("\r\n", "\n");
    body.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v);
                }
            }
            Event {
                event,
                data: data.join("\n"),
            }
        })
        .collect()
}

/// POSTs JSON with an optional `x-mock` header; returns the response.
pub(crate) async fn post(
    server: &TestServer,
    path: &str,
    body: serde_json::Value,
    mock: Option<&str>,
) -> reqwest::Response {
    let mut req = client()
        .post(server.url(path))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap());
    if let Some(m) = mock {
        req = req.header("X-Mock", m);
    }
    req.send().await.unwrap()
}

/// Reads a response body as JSON.
pub(crate) async fn body_json(resp: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}
