//! The outbound edge: configured backends, their pooled HTTP clients, and [`Provider::call`] —
//! sending a request to one backend with credentials from the backend's pool (`crate::pool`),
//! failing over between them, and asking first for the credential that created a stored object
//! a call follows up on ([`owners`]).
//!
//! The client's credentials are never forwarded: [`Backend::prepare`] drops every credential
//! header the client sent ([`crate::secret::is_credential_header`]) and [`Provider::call`] keeps
//! only the allowed query parameters; the call adds the pool credential's header.

pub mod budget;
mod connector;
mod dial;
mod forward;
mod h1;
pub mod h1_wire;
mod h2;
mod header_lines;
mod loop_clients;
pub mod owners;
mod provider;
mod response;
pub mod routing;
mod tls;
mod url;

pub use forward::query_param_name;
pub(crate) use forward::strip_credential_params;
pub use header_lines::HeaderLines;
pub use provider::{Answer, Call, CallError, Provider, Refusal, Watch};
pub use response::{UpstreamBody, UpstreamResponse};
pub use url::{PathModelError, capture_url, check_path_model, display_url};
use url::{endpoint_url, names_a_secret, url_secrets};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use self::h2::H2Client;
use crate::config::BackendConfig;
use crate::protocol::Operation;
use crate::protocol::{BackendKind, ResponsesApi};
use crate::secret::Secret;
use crate::secret::scrub::Scrubber;
use dial::Dial;
use h1::H1Client;
use loop_clients::LoopClients;

/// What to call on a backend.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    /// An operation with its path argument: the upstream model name (Gemini puts it in the
    /// path), or the object's id for operations on a stored object
    /// ([`Operation::on_object`]); unused (may be empty) by operations whose path names neither.
    Op(Operation, &'a str),
    /// The backend's model list.
    ListModels,
    /// One model's description (Gemini `GET /v1beta/models/{model}`).
    GetModel(&'a str),
}

impl Endpoint<'_> {
    /// The HTTP method upstream.
    pub fn method(&self) -> Method {
        match self {
            Endpoint::Op(op, _) => op.method(),
            Endpoint::ListModels | Endpoint::GetModel(_) => Method::GET,
        }
    }
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
    /// The answer's body is larger than the gateway reads.
    #[error("backend `{backend}` sent a body larger than {limit} bytes")]
    TooLarge {
        /// Backend name.
        backend: Arc<str>,
        /// The limit in bytes.
        limit: usize,
    },
    /// The process's budget for buffered answers (`server.max_buffered_answer_bytes`) has no
    /// room for this answer now.
    #[error("no room to buffer backend `{backend}`'s answer (server.max_buffered_answer_bytes)")]
    NoRoom {
        /// Backend name.
        backend: Arc<str>,
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
    /// Failed attempts by class, in [`ERROR_CLASSES`] order.
    errors: [AtomicU64; ERROR_CLASSES.len()],
}

/// The classes of failed upstream attempts (`portcullis_upstream_errors_total{class}`).
pub const ERROR_CLASSES: [&str; 6] = [
    "rate_limited",
    "quota_exhausted",
    "rejected",
    "server",
    "transport",
    "client",
];

impl BackendStats {
    /// Counts a failed attempt: its cooldown class, or `None` for a refusal that blames the
    /// request (another 4xx).
    pub fn count_error(&self, failure: Option<crate::pool::Failure>) {
        use crate::pool::Failure;
        let class = match failure {
            Some(Failure::RateLimited { .. }) => 0,
            Some(Failure::QuotaExhausted) => 1,
            Some(Failure::Rejected) => 2,
            Some(Failure::Server) => 3,
            Some(Failure::Transport) => 4,
            None => 5,
        };
        self.errors[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Failed attempts so far, by class name.
    pub fn errors(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ERROR_CLASSES
            .iter()
            .zip(&self.errors)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
    }
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
    /// Whether an OpenAI-type backend has the Responses API itself.
    pub responses_api: ResponsesApi,
    base: reqwest::Url,
    configured_secrets: Vec<Secret>,
    /// The forms of `configured_secrets`, searched for in answers.
    scrubber: Arc<Scrubber>,
    extra_headers: HeaderMap,
    /// Client headers forwarded besides the built-in list (lower case).
    forward_headers: Vec<String>,
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
    /// HTTP/1.1, plain or over TLS, driven from the request's task (see [`h1`]).
    H1(Arc<H1Client>),
    /// HTTP/2 (`http2_prior_knowledge`: h2c, or over TLS), from the request's task (see [`h2`]).
    H2(Arc<H2Client>),
    /// reqwest: URLs with credentials, Qwen's per-account hosts, and anything behind a proxy
    /// (HTTP/2 too, with `http2_prior_knowledge`); a client per event loop (see
    /// [`loop_clients`]).
    Reqwest(LoopClients),
}

/// True when reqwest would send requests to a `scheme` URL through a proxy (its system-proxy
/// variables); such backends keep using reqwest.
fn proxy_configured(scheme: &str, var: impl Fn(&str) -> Option<String>) -> bool {
    let names: &[&str] = match scheme {
        "https" => &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
        _ => &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
    };
    names
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.trim().is_empty()))
}

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
        let extra_roots = match &cfg.tls_ca_file {
            Some(path) => crate::net::read_ca_file(path).map_err(&setup)?,
            None => Vec::new(),
        };
        let mut extra_headers = HeaderMap::new();
        for (k, v) in connector::fixed_headers(cfg.kind) {
            extra_headers.insert(*k, HeaderValue::from_static(v));
        }
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| setup(e.to_string()))?;
            let value = HeaderValue::from_str(v).map_err(|e| setup(e.to_string()))?;
            extra_headers.insert(name, value);
        }
        let base_text = cfg
            .base_url
            .as_deref()
            .unwrap_or(cfg.kind.default_base_url())
            .trim_end_matches('/');
        let base =
            reqwest::Url::parse(base_text).map_err(|e| setup(format!("invalid base URL: {e}")))?;
        if base.cannot_be_a_base() || base.fragment().is_some() {
            return Err(setup(
                "invalid base URL: it must be an http(s) URL without a fragment".into(),
            ));
        }
        let fixed = |endpoint: Endpoint<'_>| {
            endpoint_url(&base, cfg.kind, endpoint)
                .map_err(|e| setup(format!("invalid base URL: {e}")))
        };
        let fixed_urls = FixedUrls {
            chat: fixed(Endpoint::Op(Operation::ChatCompletions, ""))?,
            responses: fixed(Endpoint::Op(Operation::Responses, ""))?,
            embeddings: fixed(Endpoint::Op(Operation::Embeddings, ""))?,
            messages: fixed(Endpoint::Op(Operation::Messages, ""))?,
            count_tokens: fixed(Endpoint::Op(Operation::CountTokens, ""))?,
            models: fixed(Endpoint::ListModels)?,
        };
        let configured_secrets = url_secrets(&base)
            .into_iter()
            .chain(
                extra_headers
                    .iter()
                    .filter(|(name, _)| names_a_secret(name.as_str()))
                    .filter_map(|(_, v)| v.to_str().ok())
                    .map(Secret::new),
            )
            .filter(|s| s.expose().len() >= crate::secret::scrub::MIN_LEN)
            .collect();
        let name: Arc<str> = Arc::from(name);
        // A Qwen login's API host is the account's own (each credential may name another):
        // reqwest, which connects to any host.
        let in_task = cfg.kind != BackendKind::QwenCode && !proxy_configured(base.scheme(), env);
        let h2 = cfg.http2_prior_knowledge;
        let tls = match base.scheme() {
            "https" if in_task => {
                Some(tls::client_config(extra_roots.clone(), h2).map_err(&setup)?)
            }
            _ => None,
        };
        let (connect, read_idle) = (cfg.timeouts.connect.0, cfg.timeouts.read_idle.0);
        let dial = in_task
            .then(|| Dial::new(name.clone(), &fixed_urls.models, tls, connect))
            .flatten();
        let transport = match dial {
            Some(dial) if h2 => H2Client::new(dial, read_idle).map(|c| Transport::H2(Arc::new(c))),
            Some(dial) => Some(Transport::H1(Arc::new(H1Client::new(dial, read_idle)))),
            None => None,
        };
        let transport = match transport {
            Some(t) => t,
            None => Transport::Reqwest(reqwest_clients(cfg, &extra_roots).map_err(&setup)?),
        };
        Ok(Self {
            name,
            kind: cfg.kind,
            responses_api: cfg.responses_api,
            base,
            scrubber: Arc::new(Scrubber::new(&configured_secrets)),
            configured_secrets,
            extra_headers,
            forward_headers: cfg
                .forward_headers
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            fixed_urls,
            transport,
            read_idle: cfg.timeouts.read_idle.0,
            stats: BackendStats::default(),
        })
    }

    /// The base URL without its userinfo and query (where credentials may sit), for health
    /// output and logs.
    pub fn display_url(&self) -> String {
        display_url(&self.base)
    }

    /// Secrets carried by the base URL and the configured headers (a `user:password@`, a
    /// key-bearing query parameter, an `api-key` header): masked and scrubbed like pool secrets.
    pub fn configured_secrets(&self) -> &[Secret] {
        &self.configured_secrets
    }

    /// The forms of [`Backend::configured_secrets`], searched for in answers.
    pub fn scrubber(&self) -> &Arc<Scrubber> {
        &self.scrubber
    }

    /// The URL of one request: endpoints that do not depend on the request come pre-built
    /// (parsing a URL per request showed up at ~3 % of the gateway's CPU); a model id that
    /// goes into the path is one percent-encoded segment and must pass [`check_path_model`].
    fn url(
        &self,
        endpoint: Endpoint<'_>,
        query: Option<&str>,
    ) -> Result<Cow<'_, reqwest::Url>, UpstreamError> {
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
            Some(u) => Cow::Borrowed(u),
            None => Cow::Owned(endpoint_url(&self.base, self.kind, endpoint).map_err(
                |message| UpstreamError::Setup {
                    backend: self.name.to_string(),
                    message,
                },
            )?),
        };
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            let url = url.to_mut();
            match url.query().filter(|b| !b.is_empty()) {
                Some(base) => {
                    let joined = format!("{base}&{q}");
                    url.set_query(Some(&joined));
                }
                None => url.set_query(Some(q)),
            }
        }
        Ok(url)
    }

    /// The URL and headers of one request: `client_headers` filtered (no client credential ever
    /// leaves), the backend's extra headers added (the pool credential is added by
    /// [`Provider::call`], see [`set_credential`]). `query` must already be free of credentials
    /// (see [`strip_credential_params`]).
    pub(crate) fn prepare(
        &self,
        endpoint: Endpoint<'_>,
        query: Option<&str>,
        mut headers: HeaderMap,
    ) -> Result<(Cow<'_, reqwest::Url>, HeaderLines), UpstreamError> {
        // Headers the client named in `Connection:` are hop-by-hop (RFC 9110 §7.6.1).
        let hop: Vec<String> = headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        let mut kept =
            HeaderLines::with_capacity(headers.len().min(16) + self.extra_headers.len() + 1);
        let mut current: Option<HeaderName> = None;
        for (name, value) in headers.drain() {
            if let Some(n) = name {
                current = Some(n);
            }
            let Some(name) = &current else { continue };
            if self.forwards(name.as_str()) && !hop.iter().any(|h| h == name.as_str()) {
                kept.append(name.clone(), value);
            }
        }
        let mut headers = kept;
        for (name, value) in &self.extra_headers {
            headers.insert(name.clone(), value.clone());
        }
        const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
        if self.kind == BackendKind::Anthropic && !headers.contains(&ANTHROPIC_VERSION) {
            headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static("2023-06-01"));
        }
        Ok((self.url(endpoint, query)?, headers))
    }

    /// Sends a request built by [`Backend::prepare`] (only [`Provider::call`] does).
    pub(crate) async fn send_prepared(
        &self,
        method: Method,
        url: Cow<'_, reqwest::Url>,
        mut headers: HeaderLines,
        body: Option<Bytes>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        if body.as_ref().is_some_and(|b| !b.is_empty())
            && !headers.contains(&http::header::CONTENT_TYPE)
        {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let result = match &self.transport {
            Transport::H1(client) => client
                .send(
                    &method,
                    (url.path(), url.query()),
                    &headers,
                    &DEFAULT_HEADERS,
                    body.unwrap_or_default(),
                )
                .await
                .map(|resp| UpstreamResponse::from_h1(&self.name, resp)),
            Transport::H2(client) => client
                .send(
                    &method,
                    (url.path(), url.query()),
                    &headers,
                    &DEFAULT_HEADERS,
                    body.unwrap_or_default(),
                )
                .await
                .map(|resp| UpstreamResponse::from_h2(&self.name, resp)),
            Transport::Reqwest(clients) => {
                let mut request = clients
                    .current()
                    .request(method, url.into_owned())
                    .headers(headers.to_map());
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

/// The reqwest clients of a backend the in-task clients do not serve, with its timeouts, its
/// protocol choice and `extra_roots` trusted besides the system's.
fn reqwest_clients(
    cfg: &BackendConfig,
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<LoopClients, String> {
    let certs = extra_roots
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls_ca_file: {e}"))?;
    let (connect, read_idle, h2) = (
        cfg.timeouts.connect.0,
        cfg.timeouts.read_idle.0,
        cfg.http2_prior_knowledge,
    );
    LoopClients::new(Arc::new(move || {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect)
            .read_timeout(read_idle)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT);
        if h2 {
            builder = builder.http2_prior_knowledge();
        }
        if !certs.is_empty() {
            builder = builder.tls_certs_merge(certs.clone());
        }
        builder.build()
    }))
    .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// `User-Agent` of the gateway's own upstream requests when the client sent none.
const USER_AGENT: &str = concat!("portcullis/", env!("CARGO_PKG_VERSION"));

/// Headers the in-task clients add when the request has none of that name (reqwest's
/// defaults, so that every transport sends the same).
static DEFAULT_HEADERS: [(HeaderName, HeaderValue); 2] = [
    (
        http::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    ),
    (http::header::ACCEPT, HeaderValue::from_static("*/*")),
];

/// Puts a pool credential's header on a prepared request (nothing for keyless backends).
fn set_credential(headers: &mut HeaderLines, credential: Option<(&HeaderName, &HeaderValue)>) {
    if let Some((name, value)) = credential {
        headers.insert(name.clone(), value.clone());
    }
}

/// True for OAuth (personal-subscription) connectors, which multi-user mode refuses: by the
/// origin system's naming rule, a name containing `-oauth-` or ending in `-oauth`.
pub fn is_oauth_connector(name: &str) -> bool {
    name.contains("-oauth-") || name.ends_with("-oauth")
}

impl crate::pool::BackendSet for Backends {
    fn names_and_kinds(&self) -> Vec<(Arc<str>, BackendKind)> {
        self.list.iter().map(|b| (b.name.clone(), b.kind)).collect()
    }
}

/// All configured backends, in name order.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    list: Vec<Arc<Backend>>,
}

impl Backends {
    /// Builds every backend of the `backends` section.
    pub fn from_config(backends: &BTreeMap<String, BackendConfig>) -> Result<Self, UpstreamError> {
        Self::build(backends, |_| true)
    }

    /// Builds the backends of the `backends` section whose name `keep` accepts.
    pub fn build(
        backends: &BTreeMap<String, BackendConfig>,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self, UpstreamError> {
        let list = backends
            .iter()
            .filter(|(name, _)| keep(name))
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
    fn http1_backends_use_the_in_task_client_unless_a_proxy_or_http2_is_configured() {
        let cfg = |url: &str, h2c: bool| {
            let mut c: BackendConfig =
                serde_norway::from_str(&format!("type: openai\nbase_url: {url}")).unwrap();
            c.http2_prior_knowledge = h2c;
            c
        };
        let h1 = |c: &BackendConfig, var: &str, proxy: Option<&str>| {
            let b =
                Backend::build("b", c, |k| proxy.filter(|_| k == var).map(str::to_owned)).unwrap();
            matches!(b.transport, Transport::H1(_))
        };
        let local = cfg("http://127.0.0.1:8000/v1", false);
        assert!(h1(&local, "HTTP_PROXY", None));
        assert!(
            h1(&local, "HTTP_PROXY", Some("  ")),
            "an empty variable is no proxy"
        );
        assert!(!h1(&local, "HTTP_PROXY", Some("http://proxy:3128")));
        assert!(h1(&local, "HTTPS_PROXY", Some("http://proxy:3128")));
        assert!(!h1(&cfg("http://127.0.0.1:8000/v1", true), "", None));
        let remote = cfg("https://api.openai.com/v1", false);
        assert!(h1(&remote, "", None));
        assert!(h1(&remote, "HTTP_PROXY", Some("http://proxy:3128")));
        assert!(!h1(&remote, "HTTPS_PROXY", Some("http://proxy:3128")));
        assert!(!h1(&remote, "all_proxy", Some("socks5://proxy:1080")));
        assert!(!h1(&cfg("https://api.openai.com/v1", true), "", None));
        assert!(!h1(&cfg("https://u:p@api.openai.com/v1", false), "", None));
    }

    #[test]
    fn model_ids_in_paths_are_one_segment() {
        let b = Backend::build(
            "g",
            &serde_norway::from_str("type: gemini\nbase_url: http://127.0.0.1:9/base?v=1").unwrap(),
            |_| None,
        )
        .unwrap();
        let url = |e| b.url(e, Some("alt=sse")).map(|u| u.to_string());
        assert_eq!(
            url(Endpoint::Op(Operation::GenerateContent, "gemini-pro")).unwrap(),
            "http://127.0.0.1:9/base/v1beta/models/gemini-pro:generateContent?v=1&alt=sse"
        );
        assert_eq!(
            url(Endpoint::GetModel("a b")).unwrap(),
            "http://127.0.0.1:9/base/v1beta/models/a%20b?v=1&alt=sse"
        );
        for bad in [
            "..", ".", "", "../files", "x?y", "x#", "a\\b", "a%2Fb", "a\nb",
        ] {
            assert!(check_path_model(bad).is_err(), "{bad:?}");
            assert!(url(Endpoint::GetModel(bad)).is_err(), "{bad:?}");
            assert!(
                url(Endpoint::Op(Operation::GenerateContent, bad)).is_err(),
                "{bad:?}"
            );
        }
        assert!(check_path_model("models-1.5:latest").is_ok());
    }

    #[test]
    fn urls_are_shown_without_credentials_and_their_secrets_are_known() {
        let b = Backend::build(
            "o",
            &serde_norway::from_str(
                "type: openai\nbase_url: https://admin:hunter2SECRETpass@host.example/v1?api-key=AZUREqueryKEYsecret123\nheaders:\n  api-key: HEADERsecretVALUE99\n  anthropic-version: '2023-06-01'",
            )
            .unwrap(),
            |_| None,
        )
        .unwrap();
        assert_eq!(b.display_url(), "https://host.example/v1");
        let secrets: Vec<&str> = b.configured_secrets().iter().map(|s| s.expose()).collect();
        for s in [
            "hunter2SECRETpass",
            "AZUREqueryKEYsecret123",
            "HEADERsecretVALUE99",
        ] {
            assert!(secrets.contains(&s), "{s} in {secrets:?}");
        }
        assert!(!secrets.contains(&"2023-06-01"));
        assert!(
            b.scrubber()
                .found_in(b"Basic YWRtaW46aHVudGVyMlNFQ1JFVHBhc3M=")
        );
    }
}
