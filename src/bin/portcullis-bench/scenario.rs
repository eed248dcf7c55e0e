//! The scenario table: every paired measurement the suite knows, including the ones whose
//! gateway feature has not landed yet (listed in the report, never run, never given a figure).
//!
//! Adding a scenario is one entry in [`SCENARIOS`]; a scenario that needs a gateway set up
//! differently (client auth, several upstream credentials, wire capture) adds a [`Gateway`]
//! variant and its arm in `suite::gateway_for`.

use bytes::Bytes;
use http::HeaderValue;

use crate::load::Workload;

/// Which kind of request a scenario sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `POST /v1/chat/completions`, JSON answer.
    Chat,
    /// The same with `"stream": true`: 8 content chunks, 5 ms apart (`STREAM_X_MOCK`).
    Stream,
    /// `POST /v1/messages` (Anthropic) naming a model of the gateway's only backend, an OpenAI
    /// one: the gateway translates it to a chat completion and the answer back; the direct path
    /// is the mock answering the same Anthropic request itself.
    Messages,
    /// The same with `"stream": true` (`STREAM_X_MOCK`), translated event by event.
    MessagesStream,
    /// `POST /v1/chat/completions` with a coding agent's ~100 KB request body
    /// ([`crate::agent::request`]), JSON answer.
    Agent,
    /// `POST /v1/messages` with the same turn as Anthropic Messages
    /// ([`crate::agent::messages_request`]), translated as `Messages` is.
    MessagesAgent,
}

/// The mock's pacing of the streaming scenarios.
const STREAM_X_MOCK: &str = "chunks=8; chunk_delay_ms=5";

/// How the gateway under test is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gateway {
    /// Client authentication with the static key (as nginx and HAProxy check it), usage
    /// accounting on (the default), one upstream key, access log off (`warn`).
    Plain,
    /// As `Plain`, with the per-request access log on at `info` (the default), to /dev/null.
    AccessLog,
    /// Client authentication with a static API key (as `Plain`; its own gateway, for the
    /// Redis-on twin).
    StaticKey,
    /// Client authentication with an agent token from the store (cache hit after the first).
    AgentToken,
    /// Client authentication with a JWT from `/oauth/token` (password grant), verified on every
    /// request.
    Jwt,
    /// As `Plain`, with the wire capture writing to a file.
    Capture,
    /// Ten upstream credentials (round robin) next to the one-credential gateway.
    Pool10,
    /// Client authentication with a virtual key whose rules count (RPM, TPM, concurrency, a
    /// token budget: a reservation and a settlement per request), next to a static-key gateway.
    VirtualKey,
    /// Agent-token auth with brute-force protection on, while a second stream floods the
    /// gateway at 5× the valid rate from other addresses.
    Attack(Flood),
    /// As `Plain`, in front of a TLS mock (`portcullis-mock --tls`) checked against its CA
    /// (`tls_ca_file`); nginx and HAProxy proxy to the same mock over TLS.
    TlsUpstream(TlsProto),
}

/// The protocol spoken to a TLS upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsProto {
    /// HTTP/1.1 (the mock offers only `http/1.1` in ALPN).
    Http1,
    /// HTTP/2 (`http2_prior_knowledge: true` on the gateway's backend, `alpn h2` on HAProxy;
    /// nginx cannot proxy over HTTP/2 and stays on HTTP/1.1).
    H2,
}

/// What the attack stream sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flood {
    /// Well-formed agent tokens (valid checksum) that the gateway's store does not know.
    UnknownTokens,
    /// Random garbage credentials.
    Garbage,
}

/// One paired scenario.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scenario {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) kind: Kind,
    /// Offered rate, requests per second.
    pub(crate) rate: f64,
    /// Keep-alive connections the loader spreads requests over.
    pub(crate) connections: usize,
    pub(crate) gateway: Gateway,
    /// Also run against LiteLLM (only at rates it can sustain).
    pub(crate) litellm: bool,
    /// Also run through a plain TCP relay (the floor of any extra hop).
    pub(crate) relay: bool,
    /// Also run nginx and HAProxy (the reference proxies, same bearer check).
    pub(crate) peers: bool,
    /// Also run a second gateway, set up alike but with Redis on (`--redis-url`, a key prefix
    /// of its own), in the same rounds; skipped with a note when no Redis answers.
    pub(crate) redis: bool,
    /// `Some(feature)`: the gateway feature it needs has not landed; listed, not run.
    pub(crate) needs: Option<&'static str>,
}

const fn chat(id: &'static str, title: &'static str, rate: f64) -> Scenario {
    Scenario {
        id,
        title,
        kind: Kind::Chat,
        rate,
        connections: 32,
        gateway: Gateway::Plain,
        litellm: false,
        relay: false,
        peers: true,
        redis: false,
        needs: None,
    }
}

/// Every scenario, in report order.
pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        relay: true,
        ..chat("chat", "Non-streaming chat completion, 1,000 rps", 1000.0)
    },
    Scenario {
        connections: 64,
        ..chat(
            "chat-5k",
            "Non-streaming, 5,000 rps over 64 connections",
            5000.0,
        )
    },
    Scenario {
        connections: 64,
        ..chat(
            "chat-10k",
            "Non-streaming, 10,000 rps over 64 connections",
            10000.0,
        )
    },
    Scenario {
        gateway: Gateway::TlsUpstream(TlsProto::Http1),
        ..chat(
            "chat-tls",
            "Non-streaming, 1,000 rps, TLS upstream over HTTP/1.1 (no direct row: the loader speaks plain HTTP)",
            1000.0,
        )
    },
    Scenario {
        gateway: Gateway::TlsUpstream(TlsProto::H2),
        ..chat(
            "chat-tls-h2",
            "Non-streaming, 1,000 rps, TLS upstream, gateway over HTTP/2 (nginx over HTTP/1.1; no direct row)",
            1000.0,
        )
    },
    Scenario {
        connections: 1,
        ..chat(
            "chat-1conn",
            "Non-streaming, one keep-alive connection, 500 rps (Nagle/delayed-ACK check)",
            500.0,
        )
    },
    Scenario {
        gateway: Gateway::AccessLog,
        ..chat(
            "chat-accesslog",
            "Non-streaming, 1,000 rps, gateway access log on (info, to /dev/null)",
            1000.0,
        )
    },
    Scenario {
        kind: Kind::Agent,
        ..chat(
            "chat-agent",
            "Non-streaming, a coding agent's 100 KB request body (system prompt, 16 tools, 14 turns of tool calls and file contents), 500 rps",
            500.0,
        )
    },
    Scenario {
        kind: Kind::Stream,
        relay: true,
        ..chat(
            "stream",
            "Streaming chat completion, 8 chunks 5 ms apart, 200 rps",
            200.0,
        )
    },
    Scenario {
        litellm: true,
        ..chat(
            "chat-50",
            "Non-streaming, 50 rps (LiteLLM side by side)",
            50.0,
        )
    },
    Scenario {
        kind: Kind::Stream,
        litellm: true,
        ..chat(
            "stream-50",
            "Streaming, 8 chunks 5 ms apart, 50 rps (LiteLLM side by side)",
            50.0,
        )
    },
    Scenario {
        gateway: Gateway::StaticKey,
        redis: true,
        ..chat(
            "auth-static",
            "Non-streaming, 1,000 rps, client auth: static key (as in `chat`), Redis off and on, same run",
            1000.0,
        )
    },
    Scenario {
        gateway: Gateway::AgentToken,
        redis: true,
        ..chat(
            "auth-agent-token",
            "Non-streaming, 1,000 rps, client auth: agent token (cache hit), Redis off and on, same run",
            1000.0,
        )
    },
    Scenario {
        gateway: Gateway::Jwt,
        ..chat(
            "auth-jwt",
            "Non-streaming, 1,000 rps, client auth: JWT from the gateway's token server (EdDSA)",
            1000.0,
        )
    },
    Scenario {
        kind: Kind::Messages,
        ..chat(
            "translated",
            "Non-streaming Anthropic messages on an OpenAI backend (translated both ways), 1,000 rps (compare with `chat`: passthrough)",
            1000.0,
        )
    },
    Scenario {
        kind: Kind::MessagesStream,
        ..chat(
            "stream-translated",
            "Streaming Anthropic messages on an OpenAI backend, translated event by event, 8 chunks 5 ms apart, 200 rps (compare with `stream`)",
            200.0,
        )
    },
    Scenario {
        kind: Kind::MessagesAgent,
        ..chat(
            "translated-agent",
            "Non-streaming, a coding agent's 100 KB turn as Anthropic messages on an OpenAI backend (translated both ways), 500 rps (compare with `chat-agent`: the same turn passed through)",
            500.0,
        )
    },
    Scenario {
        gateway: Gateway::VirtualKey,
        redis: true,
        ..chat(
            "auth-virtual-key",
            "Non-streaming, 1,000 rps, client auth: virtual key with RPM/TPM/concurrency limits and a token budget (reserve + settle per request), counters in process and in Redis, vs a static key, same run",
            1000.0,
        )
    },
    Scenario {
        gateway: Gateway::Pool10,
        ..chat(
            "pool-10",
            "Non-streaming, 1,000 rps, 10 upstream credentials (round robin) vs 1, same run",
            1000.0,
        )
    },
    Scenario {
        gateway: Gateway::Capture,
        ..chat(
            "capture",
            "Non-streaming, 1,000 rps, wire capture on (compare with `chat`: capture off)",
            1000.0,
        )
    },
    Scenario {
        gateway: Gateway::Attack(Flood::UnknownTokens),
        connections: 8,
        peers: false,
        redis: true,
        ..chat(
            "auth-attack-tokens",
            "Auth under attack: valid agent-token traffic at 200 rps while 1,000 rps of well-formed unknown agent tokens arrive from 32 other addresses, Redis off and on, same run",
            200.0,
        )
    },
    Scenario {
        gateway: Gateway::Attack(Flood::Garbage),
        connections: 8,
        peers: false,
        redis: true,
        ..chat(
            "auth-attack-garbage",
            "Auth under attack: valid agent-token traffic at 200 rps while 1,000 rps of random garbage credentials arrive from 256 addresses in 127.0.0.0/8, Redis off and on, same run",
            200.0,
        )
    },
];

/// How much faster the attack stream offers requests than the valid one.
pub(crate) const FLOOD_FACTOR: f64 = 5.0;

/// The model every request names (any name reaches the mock's default backend).
pub(crate) const MODEL: &str = "mock-gpt";

impl Kind {
    pub(crate) fn workload(self) -> Workload {
        let text = |body: &'static str| Bytes::from_static(body.as_bytes());
        let (body, x_mock) = match self {
            Kind::Messages => (
                text(
                    r#"{"model":"mock-gpt","max_tokens":256,"messages":[{"role":"user","content":"Say hello."}]}"#,
                ),
                None,
            ),
            Kind::MessagesStream => (
                text(
                    r#"{"model":"mock-gpt","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Say hello."}]}"#,
                ),
                Some(HeaderValue::from_static(STREAM_X_MOCK)),
            ),
            Kind::Chat => (
                text(r#"{"model":"mock-gpt","messages":[{"role":"user","content":"Say hello."}]}"#),
                None,
            ),
            Kind::Stream => (
                text(
                    r#"{"model":"mock-gpt","stream":true,"messages":[{"role":"user","content":"Say hello."}]}"#,
                ),
                Some(HeaderValue::from_static(STREAM_X_MOCK)),
            ),
            Kind::Agent => (Bytes::from(crate::agent::request(MODEL)), None),
            Kind::MessagesAgent => (Bytes::from(crate::agent::messages_request(MODEL)), None),
        };
        let anthropic = matches!(
            self,
            Kind::Messages | Kind::MessagesStream | Kind::MessagesAgent
        );
        Workload {
            path: if anthropic {
                "/v1/messages"
            } else {
                "/v1/chat/completions"
            },
            body,
            x_mock,
            stream: matches!(self, Kind::Stream | Kind::MessagesStream),
        }
    }
}
