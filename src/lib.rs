//! portcullis: an authenticating gateway between AI coding agents and LLM providers.
//!
//! Code map, in reading order — each module imports only modules above it (the top-level modules
//! form no import cycle; `tests/it/layers.rs` checks) — ARCHITECTURE.md has the long form:
//! - [`secret`], [`clock`]: the two primitives every other module leans on — a credential that
//!   cannot be printed, and time as a parameter.
//! - [`net`]: CIDRs, loopback checks, the client address behind trusted proxies, the headers
//!   that never go to another server.
//! - [`connection`]: client connections as the rest of the gateway sees them — counters the
//!   server keeps (open, refused at the cap, closed by a timeout) and the stalled-body error.
//! - [`protocol`]: which client protocol and operation a request is, which protocol a backend
//!   speaks (domain values).
//! - [`rules`]: what a virtual key or a user may do — allow-lists, rate limits, budgets — as
//!   data (`policy` enforces them).
//! - [`store`]: durable state (users, agent tokens, SSO, accounts, pool credentials, usage) on
//!   SQLite or PostgreSQL, behind narrow traits.
//! - [`redis_conn`]: the connection to the Redis server several instances share state through
//!   (the limit counters, lockouts), opened on first use, every command bounded by a timeout.
//! - [`notify`], [`jobs`]: operator events and their delivery; background work as named jobs the
//!   clock drives.
//! - [`telemetry`]: the Prometheus metrics, the last hour of traffic for the console's charts,
//!   the recent operator events.
//! - [`bus`]: messages between instances over Redis pub/sub (the store changed, a block, a
//!   cooldown), each with a fallback that needs no message.
//! - [`seal`]: secrets sealed at rest.
//! - [`identity`]: who is calling — credentials to a typed `Principal`: static API keys, agent
//!   tokens, the gateway's own JWTs (the OAuth2 token server) and trusted external issuers,
//!   remote key sets, the brute-force lockout (shared through Redis by several instances).
//! - [`policy`]: what an authenticated principal may use (`Grant`), consumed by routing, and how
//!   much — limits and budgets reserved before the upstream call and settled after, usage
//!   recorded; the deployment's access mode.
//! - [`pool`]: the upstream credential pool, its health bookkeeping and the usage `Lease`.
//! - [`config`]: typed configuration, layered CLI > env > YAML > defaults, validated once; it
//!   parses the values of the modules above and hands each its settings.
//! - [`wire`]: the provider protocols' JSON/SSE shapes (errors, usage, model lists, SSE lines).
//! - [`translate`]: protocol translation — one intermediate shape and a codec per dialect
//!   (OpenAI Chat and Responses, Anthropic Messages, Gemini), requests, answers and streams.
//! - [`upstream`]: backends, their connection pools, routing of model names to a `Provider` (a
//!   backend and its credential pool), and `Provider::call` — the one place a request is sent
//!   with a credential, failover included.
//! - [`sso`]: browser logins that hand out agent tokens.
//! - [`masking`], [`capture`]: the live set of secrets logs and captures must not carry; the wire
//!   capture — JSONL records written off the request path, masked, rotated.
//! - [`state`]: the cheap-to-clone `AppState` handlers share; building it starts nothing.
//! - [`api`], [`server`]: the inbound HTTP edge — route groups and their guards, handlers, the
//!   passthrough pipeline, error responses, the access log; `router(state)` and
//!   `run(listener, state, shutdown)`.
//! - [`logging`], [`cli`], [`demo`], [`admin`]: process setup and commands (`admin`: migrate,
//!   tokens, users, clients, signing keys, pool credentials).
//! - [`mock`]: a scriptable mock upstream for tests, benchmarks and `demo`.

pub mod clock;
pub mod secret;

pub mod connection;
pub mod net;

pub mod protocol;

pub mod rules;

pub mod store;

pub mod redis_conn;

pub mod jobs;
pub mod notify;
pub mod telemetry;

pub mod bus;

pub mod seal;

pub mod identity;

pub mod policy;

pub mod pool;

pub mod config;

pub mod wire;

pub mod translate;

pub mod upstream;

pub mod sso;

pub mod masking;

pub mod capture;

pub mod state;

pub mod api;

pub mod server;

pub mod admin;
pub mod cli;
pub mod demo;
pub mod logging;

pub mod mock;
