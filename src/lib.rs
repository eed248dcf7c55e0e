//! portcullis: an authenticating gateway between AI coding agents and LLM providers.
//!
//! Code map, in reading order (ARCHITECTURE.md has the long form):
//! - [`secret`], [`clock`]: the two primitives every other module leans on — a credential that
//!   cannot be printed, and time as a parameter.
//! - [`net`]: CIDRs, loopback checks, the client address behind trusted proxies.
//! - [`config`]: typed configuration, layered CLI > env > YAML > defaults, validated once.
//! - [`protocol`]: which client protocol and operation a request is (domain values).
//! - [`wire`]: the provider protocols' JSON/SSE shapes (errors, usage, model lists, SSE lines).
//! - [`upstream`]: backends, their connection pools, routing of model names to a `Provider` (a
//!   backend and its credential pool), and `Provider::call` — the one place a request is sent
//!   with a credential, failover included.
//! - [`store`]: durable state (users, agent tokens) on SQLite or PostgreSQL, behind narrow traits.
//! - [`notify`]: operator events and their delivery (desktop notifications over D-Bus).
//! - [`auth`]: who is calling — credentials to a typed `Principal`, static API keys, the
//!   brute-force limiter.
//! - [`seal`], [`jwks`], [`oauth`], [`sso`]: secrets sealed at rest; remote key sets; the OAuth2
//!   token server and trusted issuers; SSO logins that hand out agent tokens.
//! - [`policy`]: what an authenticated principal may use (`Grant`), consumed by routing.
//! - [`pool`]: the upstream credential pool, its health bookkeeping and the usage `Lease`.
//! - [`masking`]: the live set of secrets logs and captures must not carry.
//! - [`capture`]: the wire capture — JSONL records written off the request path, masked, rotated.
//! - [`state`]: the cheap-to-clone `AppState` handlers share; building it starts nothing.
//! - [`jobs`]: background work as named jobs the clock drives, run by one scheduler.
//! - [`api`]: the inbound HTTP edge — routes, handlers, the passthrough pipeline, error responses,
//!   the access log.
//! - [`server`]: `router(state)` and `run(listener, state, shutdown)`.
//! - [`logging`], [`cli`], [`demo`], [`admin`]: process setup and commands (`admin`: migrate,
//!   tokens).
//! - [`mock`]: a scriptable mock upstream for tests, benchmarks and `demo`.

pub mod admin;
pub mod api;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod identity;
pub mod jobs;
pub mod logging;
pub mod masking;
pub mod mock;
pub mod net;
pub mod notify;
pub mod policy;
pub mod pool;
pub mod protocol;
pub mod seal;
pub mod secret;
pub mod server;
pub mod sso;
pub mod state;
pub mod store;
pub mod upstream;
pub mod wire;
