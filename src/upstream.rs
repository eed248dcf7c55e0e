//! The outbound edge: configured backends, their pooled HTTP clients, and sending one request to
//! one backend with a credential from the backend's pool (`crate::pool`).
//!
//! The client's credential headers are never forwarded: [`Backend::prepare`] drops every
//! credential header the client sent; the caller adds the pool credential's header.

mod h1;
mod response;
pub mod routing;

pub use response::{UpstreamBody, UpstreamResponse};

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::{BackendConfig, BackendKind, Config};
use crate::protocol::Operation;
use crate::secret::Secret;
use h1::H1Client;

/// What to call on a backend.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    /// A model operation; `model` is the upstream model name (Gemini puts it in the path).
    Op(Operation, &'a str),
    /// The backend's model list.
    ListModels,
    /// One model's description (Gemini `GET /v1beta/models/{model}`).
    GetModel(&'a str),
}

/// Any underlying error kept as the source of an [`UpstreamError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request to a backend failed before a response arrived.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP/TLS connection could not be made.
    #[error("cannot connect to backend `{backend}`: {source}")]
    Connect {
        /// Backend name.
        backend: Arc<str>,
        /// Underlying error (logged, never sent to clients).
        source: BoxError,
    },
    /// No response (or no next chunk) within the configured time.
    #[error("backend `{backend}` timed out")]
    Timeout {
        /// Backend name.
        backend: Arc<str>,
    },
    /// Any other transport failure.
    #[error("request to backend `{backend}` failed: {source}")]
    Transport {
        /// Backend name.
        backend: Arc<str>,
        /// Underlying error.
        source: BoxError,
    },
    /// The backend's HTTP client could not be built from its configuration.
    #[error("backend `{backend}`: {message}")]
    Setup {
        /// Backend name.
        backend: String,
        /// What is wrong.
        message: String,
    },
}

impl UpstreamError {
    /// Classifies a reqwest error for `backend`.
    pub fn from_reqwest(backend: &Arc<str>, e: reqwest::Error) -> Self {
        let backend = backend.clone();
        if e.is_timeout() {
            UpstreamError::Timeout { backend }
        } else if e.is_connect() {
            UpstreamError::Connect {
                backend,
                source: e.into(),
            }
        } else {
            UpstreamError::Transport {
                backend,
                source: e.into(),
            }
        }
    }
}

/// Counters shown in `/internal/health`.
#[derive(Debug, Default)]
pub struct BackendStats {
    /// Requests sent.
    pub requests: AtomicU64,
    /// Requests that failed in transport or got a 5xx.
    pub failures: AtomicU64,
    /// Status of the latest response (0 before the first, 1 after a transport failure).
    pub last_status: AtomicU16,
}

/// The URLs of a backend's request-independent endpoints, parsed once.
#[derive(Debug)]
struct FixedUrls {
    chat: reqwest::Url,
    responses: reqwest::Url,
    embeddings: reqwest::Url,
    messages: reqwest::Url,
    count_tokens: reqwest::Url,
    models: reqwest::Url,
}

/// One configured upstream backend.
#[derive(Debug)]
pub struct Backend {
    /// Configured name (`openai`, `my-vllm`, …).
    pub name: Arc<str>,
    /// Protocol it speaks.
    pub kind: BackendKind,
    base_url: String,
    extra_headers: HeaderMap,
    fixed_urls: FixedUrls,
    transport: Transport,
    /// Idle-read timeout (also applied per body chunk by the client).
    pub read_idle: Duration,
    /// Health counters.
    pub stats: BackendStats,
}

/// How a backend is reached.
#[derive(Debug)]
enum Transport {
    /// Plain HTTP/1.1, driven from the request's task (see [`h1`]).
    H1(Arc<H1Client>),
    /// reqwest: HTTPS (HTTP/2 by ALPN), h2c, and anything behind an HTTP proxy.
    Reqwest(reqwest::Client),
}

/// True when reqwest would send plain-HTTP requests through a proxy (its system-proxy
/// variables); such backends keep using reqwest.
fn http_proxy_configured(var: impl Fn(&str) -> Option<String>) -> bool {
    ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.trim().is_empty()))
}

/// Client headers never forwarded upstream: credentials, hop-by-hop headers, and headers the
/// client library sets for its own connection.
const DROPPED_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
    "cookie",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "accept-encoding",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

impl Backend {
    /// Builds a backend and its connection pool from configuration.
    pub fn from_config(name: &str, cfg: &BackendConfig) -> Result<Self, UpstreamError> {
        Self::build(name, cfg, |k| std::env::var(k).ok())
    }

    /// [`Backend::from_config`] with the process environment as `env` (the proxy variables).
    fn build(
        name: &str,
        cfg: &BackendConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, UpstreamError> {
        let setup = |message: String| UpstreamError::Setup {
            backend: name.to_owned(),
            message,
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(cfg.timeouts.connect.0)
            .read_timeout(cfg.timeouts.read_idle.0)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT);
        if cfg.http2_prior_knowledge {
            builder = builder.http2_prior_knowledge();
        }
        let mut extra_headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| setup(e.to_string()))?;
            let value = HeaderValue::from_str(v).map_err(|e| setup(e.to_string()))?;
            extra_headers.insert(name, value);
        }
        let base_url = cfg
            .base_url
            .as_deref()
            .unwrap_or(cfg.kind.default_base_url())
            .trim_end_matches('/')
            .to_owned();
        let parse = |endpoint: Endpoint<'_>| {
            reqwest::Url::parse(&Self::url_string(&base_url, cfg.kind, endpoint, None))
                .map_err(|e| setup(format!("invalid base URL: {e}")))
        };
        let fixed_urls = FixedUrls {
            chat: parse(Endpoint::Op(Operation::ChatCompletions, ""))?,
            responses: parse(Endpoint::Op(Operation::Responses, ""))?,
            embeddings: parse(Endpoint::Op(Operation::Embeddings, ""))?,
            messages: parse(Endpoint::Op(Operation::Messages, ""))?,
            count_tokens: parse(Endpoint::Op(Operation::CountTokens, ""))?,
            models: parse(Endpoint::ListModels)?,
        };
        let name: Arc<str> = Arc::from(name);
        let h1 = (!cfg.http2_prior_knowledge && !http_proxy_configured(env))
            .then(|| {
                H1Client::new(
                    name.clone(),
                    &fixed_urls.models,
                    cfg.timeouts.connect.0,
                    cfg.timeouts.read_idle.0,
                )
            })
            .flatten();
        let transport = match h1 {
            Some(h1) => Transport::H1(Arc::new(h1)),
            None => Transport::Reqwest(
                builder
                    .build()
                    .map_err(|e| setup(format!("cannot build HTTP client: {e}")))?,
            ),
        };
        Ok(Self {
            name,
            kind: cfg.kind,
            base_url,
            extra_headers,
            fixed_urls,
            transport,
            read_idle: cfg.timeouts.read_idle.0,
            stats: BackendStats::default(),
        })
    }

    /// The base URL (no credentials in it), for health output.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url_string(
        base: &str,
        kind: BackendKind,
        endpoint: Endpoint<'_>,
        query: Option<&str>,
    ) -> String {
        let mut url = match (kind, endpoint) {
            (BackendKind::Openai, Endpoint::ListModels) => format!("{base}/models"),
            (BackendKind::Anthropic, Endpoint::ListModels) => format!("{base}/v1/models"),
            (BackendKind::Gemini, Endpoint::ListModels) => format!("{base}/v1beta/models"),
            (BackendKind::Gemini, Endpoint::GetModel(m)) => format!("{base}/v1beta/models/{m}"),
            (BackendKind::Anthropic, Endpoint::GetModel(m)) => format!("{base}/v1/models/{m}"),
            (BackendKind::Openai, Endpoint::GetModel(m)) => format!("{base}/models/{m}"),
            (_, Endpoint::Op(op, model)) => match op {
                Operation::ChatCompletions => format!("{base}/chat/completions"),
                Operation::Responses => format!("{base}/responses"),
                Operation::Embeddings => format!("{base}/embeddings"),
                Operation::Messages => format!("{base}/v1/messages"),
                Operation::CountTokens => format!("{base}/v1/messages/count_tokens"),
                Operation::GenerateContent => {
                    format!("{base}/v1beta/models/{model}:generateContent")
                }
                Operation::StreamGenerateContent => {
                    format!("{base}/v1beta/models/{model}:streamGenerateContent")
                }
                Operation::GeminiCountTokens => format!("{base}/v1beta/models/{model}:countTokens"),
            },
        };
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(q);
        }
        url
    }

    /// The URL of one request: endpoints that do not depend on the request come pre-parsed
    /// (parsing a URL per request showed up at ~3 % of the gateway's CPU).
    fn url(
        &self,
        endpoint: Endpoint<'_>,
        query: Option<&str>,
    ) -> Result<reqwest::Url, UpstreamError> {
        let fixed = match endpoint {
            Endpoint::Op(Operation::ChatCompletions, _) => Some(&self.fixed_urls.chat),
            Endpoint::Op(Operation::Responses, _) => Some(&self.fixed_urls.responses),
            Endpoint::Op(Operation::Embeddings, _) => Some(&self.fixed_urls.embeddings),
            Endpoint::Op(Operation::Messages, _) => Some(&self.fixed_urls.messages),
            Endpoint::Op(Operation::CountTokens, _) => Some(&self.fixed_urls.count_tokens),
            Endpoint::ListModels => Some(&self.fixed_urls.models),
            _ => None,
        };
        let mut url = match fixed {
            Some(u) => u.clone(),
            None => {
                reqwest::Url::parse(&Self::url_string(&self.base_url, self.kind, endpoint, None))
                    .map_err(|e| UpstreamError::Setup {
                        backend: self.name.to_string(),
                        message: format!("cannot build the upstream URL: {e}"),
                    })?
            }
        };
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.set_query(Some(q));
        }
        Ok(url)
    }

    /// The URL and headers of one request: `client_headers` filtered (no client credential ever
    /// leaves), the backend's extra headers added (the credential is the caller's, see
    /// [`set_credential`]). `query` must already be free of credentials (see
    /// [`strip_credential_params`]).
    pub fn prepare(
        &self,
        endpoint: Endpoint<'_>,
        query: Option<&str>,
        mut headers: HeaderMap,
    ) -> Result<(reqwest::Url, HeaderMap), UpstreamError> {
        for name in DROPPED_REQUEST_HEADERS {
            headers.remove(*name);
        }
        let internal: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-portcullis"))
            .cloned()
            .collect();
        for name in internal {
            headers.remove(name);
        }
        for (name, value) in &self.extra_headers {
            headers.insert(name.clone(), value.clone());
        }
        if self.kind == BackendKind::Anthropic && !headers.contains_key("anthropic-version") {
            headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        }
        Ok((self.url(endpoint, query)?, headers))
    }

    /// Sends one request (see [`Backend::prepare`]) with `credential`'s header.
    pub async fn send(
        &self,
        endpoint: Endpoint<'_>,
        query: Option<&str>,
        client_headers: HeaderMap,
        credential: Option<(&HeaderName, &HeaderValue)>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let (url, mut headers) = self.prepare(endpoint, query, client_headers)?;
        set_credential(&mut headers, credential);
        self.send_prepared(url, headers, None).await
    }

    /// Sends a request built by [`Backend::prepare`].
    pub async fn send_prepared(
        &self,
        url: reqwest::Url,
        mut headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        if body.is_some() && !headers.contains_key(http::header::CONTENT_TYPE) {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let result = match &self.transport {
            Transport::H1(client) => {
                let req = h1_request(method, &url, headers, body).map_err(|message| {
                    UpstreamError::Setup {
                        backend: self.name.to_string(),
                        message,
                    }
                })?;
                client
                    .send(req)
                    .await
                    .map(|resp| UpstreamResponse::from_h1(&self.name, resp))
            }
            Transport::Reqwest(client) => {
                let mut request = client.request(method, url).headers(headers);
                if let Some(b) = body {
                    request = request.body(b);
                }
                request
                    .send()
                    .await
                    .map(|resp| UpstreamResponse::from_reqwest(&self.name, resp))
                    .map_err(|e| UpstreamError::from_reqwest(&self.name, e))
            }
        };
        match &result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                self.stats.last_status.store(status, Ordering::Relaxed);
                if status >= 500 {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                self.stats.last_status.store(1, Ordering::Relaxed);
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

/// An HTTP/1.1 request for [`H1Client`]: origin-form target, and the `User-Agent`/`Accept`
/// defaults reqwest would add.
fn h1_request(
    method: Method,
    url: &reqwest::Url,
    mut headers: HeaderMap,
    body: Option<Bytes>,
) -> Result<http::Request<http_body_util::Full<Bytes>>, String> {
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let uri = http::Uri::try_from(target).map_err(|e| format!("invalid upstream path: {e}"))?;
    headers
        .entry(http::header::USER_AGENT)
        .or_insert(HeaderValue::from_static(USER_AGENT));
    headers
        .entry(http::header::ACCEPT)
        .or_insert(HeaderValue::from_static("*/*"));
    let mut req = http::Request::new(http_body_util::Full::new(body.unwrap_or_default()));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

/// `User-Agent` of the gateway's own upstream requests when the client sent none.
const USER_AGENT: &str = concat!("portcullis/", env!("CARGO_PKG_VERSION"));

/// Puts a pool credential's header on a prepared request (nothing for keyless backends).
pub fn set_credential(headers: &mut HeaderMap, credential: Option<(&HeaderName, &HeaderValue)>) {
    if let Some((name, value)) = credential {
        headers.insert(name.clone(), value.clone());
    }
}

/// Replaces any occurrence of `secret` in `text` (an upstream message that echoes the key) with
/// its masked hint.
pub fn redact(text: &str, secret: Option<&Secret>) -> String {
    match secret {
        Some(k) if k.expose().len() >= 8 && text.contains(k.expose()) => {
            text.replace(k.expose(), &k.hint())
        }
        _ => text.to_owned(),
    }
}

/// True for OAuth (personal-subscription) connectors, which multi-user mode refuses: by the
/// origin system's naming rule, a name containing `-oauth-` or ending in `-oauth`.
pub fn is_oauth_connector(name: &str, _backend: &BackendConfig) -> bool {
    name.contains("-oauth-") || name.ends_with("-oauth")
}

/// Removes `key=` (Gemini's credential parameter) from a query string.
pub fn strip_credential_params(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && *p != "key" && !p.starts_with("key="))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// All configured backends, in name order.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    list: Vec<Arc<Backend>>,
}

impl Backends {
    /// Builds every backend of `config`.
    pub fn from_config(config: &Config) -> Result<Self, UpstreamError> {
        Self::build(config, |_, _| true)
    }

    /// Builds the backends of `config` that `keep(name, backend)` accepts.
    pub fn build(
        config: &Config,
        keep: impl Fn(&str, &BackendConfig) -> bool,
    ) -> Result<Self, UpstreamError> {
        let list = config
            .backends
            .iter()
            .filter(|(name, cfg)| keep(name, cfg))
            .map(|(name, cfg)| Backend::from_config(name, cfg).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Self { list })
    }

    /// The backend called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Backend>> {
        self.list.iter().find(|b| &*b.name == name)
    }

    /// All backends in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Backend>> {
        self.list.iter()
    }

    /// Number of backends.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when none is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_backends_use_the_in_task_client_unless_a_proxy_or_h2c_is_configured() {
        let cfg = |url: &str, h2c: bool| {
            let mut c: BackendConfig =
                serde_yaml::from_str(&format!("type: openai\nbase_url: {url}")).unwrap();
            c.http2_prior_knowledge = h2c;
            c
        };
        let h1 = |c: &BackendConfig, proxy: Option<&str>| {
            let b = Backend::build("b", c, |k| {
                proxy.filter(|_| k == "HTTP_PROXY").map(str::to_owned)
            })
            .unwrap();
            matches!(b.transport, Transport::H1(_))
        };
        let local = cfg("http://127.0.0.1:8000/v1", false);
        assert!(h1(&local, None));
        assert!(h1(&local, Some("  ")), "an empty variable is no proxy");
        assert!(!h1(&local, Some("http://proxy:3128")));
        assert!(!h1(&cfg("http://127.0.0.1:8000/v1", true), None));
        assert!(!h1(&cfg("https://api.openai.com/v1", false), None));
    }

    #[test]
    fn credential_params_are_removed_from_queries() {
        assert_eq!(
            strip_credential_params("alt=sse&key=abc").as_deref(),
            Some("alt=sse")
        );
        assert_eq!(strip_credential_params("key=abc"), None);
        assert_eq!(
            strip_credential_params("keyword=1").as_deref(),
            Some("keyword=1")
        );
    }
}
