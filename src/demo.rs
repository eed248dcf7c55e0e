//! `portcullis demo`: the gateway in front of an in-process mock upstream, so a newcomer with no
//! provider key and no network sees the whole path work, streaming included.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{BackendConfig, BackendKind, Config};
use crate::mock::{self, MockStats};
use crate::secret::Secret;

/// Starts the mock upstream on a free loopback port; returns its address. It runs until the
/// process exits.
pub async fn start_mock() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stats = Arc::new(MockStats::default());
    tokio::spawn(async move {
        if let Err(e) = mock::serve(listener, stats, std::future::pending()).await {
            tracing::error!(error = %e, "the demo's mock upstream stopped");
        }
    });
    Ok(addr)
}

/// Points one backend of each type at the mock (replacing any configured backends).
pub fn demo_config(mut config: Config, mock: SocketAddr) -> Config {
    let backend = |kind: BackendKind, url: String| BackendConfig {
        base_url: Some(url),
        api_key: Some(Secret::new("demo-upstream-key")),
        // The mock's fault script (`x-mock`) is a client header: the demo lets it through.
        forward_headers: vec!["x-mock".to_owned()],
        ..BackendConfig::of_kind(kind)
    };
    config.backends = BTreeMap::from([
        (
            "openai".to_owned(),
            backend(BackendKind::Openai, format!("http://{mock}/v1")),
        ),
        (
            "anthropic".to_owned(),
            backend(BackendKind::Anthropic, format!("http://{mock}")),
        ),
        (
            "gemini".to_owned(),
            backend(BackendKind::Gemini, format!("http://{mock}")),
        ),
    ]);
    config.routing = Default::default();
    config
}

/// The text printed once the demo listens on `addr`.
pub fn banner(addr: SocketAddr, mock: SocketAddr) -> String {
    let base = format!("http://{addr}");
    format!(
        "\nportcullis demo is running on {base} (mock upstream on http://{mock}; no provider key or network used)\n\n\
Try it:\n\n  curl -N {base}/v1/chat/completions -H 'content-type: application/json' \\\n    \
-d '{{\"model\":\"mock-gpt\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'\n\n\
OpenAI SDK:    OpenAI(base_url=\"{base}/v1\", api_key=\"demo\")\n\
Anthropic SDK: Anthropic(base_url=\"{base}\", api_key=\"demo\")\n\
Gemini REST:   POST {base}/v1beta/models/mock-gemini:generateContent\n\n\
Press Ctrl-C to stop.\n"
    )
}
