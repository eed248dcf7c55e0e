//! The integration tests: one binary, one harness. Each test starts a real mock upstream and a
//! real gateway on free loopback ports (in-process), or spawns the `portcullis` binary for what
//! only the process shows (configuration layering, exit codes, logs, `demo`).

#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod hostile;
mod idp;

mod access_mode;
mod accounts_cli;
mod agent_tokens;
mod api_documents;
mod at_rest;
mod auth;
mod bad_input;
mod bench_smoke;
mod binary;
mod caller_protocol;
mod capture;
mod cli_help;
mod cluster;
mod config_input;
mod connections;
mod connectors;
mod console;
mod deploy;
mod device_login;
mod endpoints;
mod fake_idp;
mod faults;
mod health;
mod hostile_answers;
mod hostile_upstreams;
mod instances;
mod keys_cli;
mod layers;
mod limits;
mod lockout_settings;
mod management;
mod management_edges;
mod management_openapi;
mod metrics;
mod migrations;
mod notifications;
mod oauth;
mod objects;
mod pool;
mod redaction;
mod redis_fixture;
mod route_groups;
mod security;
mod sso;
mod sso_gateway;
mod sso_providers;
mod store;
mod streaming;
mod tidy;
mod tokens_cli;
mod translation;
mod upstream_errors;
mod upstream_tls;
mod virtual_keys;
