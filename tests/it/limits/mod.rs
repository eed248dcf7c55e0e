//! Limits and budgets end to end (PRODUCT §7, issue 18): users with rules (`limits.users`) call
//! the gateway with agent tokens; refusals come back in the caller's protocol; reservations and
//! settlements hold under concurrency, on errors, broken streams and disconnects; settled usage
//! reaches the store and its reports. Also the counters' contract suite (run on the in-process
//! and the Redis counters, reusable by any other implementation), the usage store's contract on
//! both databases, two instances sharing one Redis and one store (`shared`), and the usage
//! journal replayed after a kill (`journal`).

mod allow;
mod concurrency;
mod counters;
mod journal;
mod keys;
mod refusals;
mod shared;
mod usage;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::{Clock, ManualClock};
use portcullis::config::Config;
use portcullis::identity::agent_token;
use portcullis::rules::Rules;
use portcullis::state::AppState;
use portcullis::store::Store;
use serde_json::Value;

use crate::harness::*;

/// 2026-12-04T15:30:10Z: ten seconds into a minute, in the middle of a month.
pub(super) const START_MS: u64 = 20_791 * 86_400_000 + 55_810_000;

/// The management key of these gateways.
pub(super) const MGMT: &str = "mgmt-key-for-limits-tests-0123456789";

/// A gateway with a store, users with rules and an agent token each, and a test clock.
pub(super) struct Limited {
    pub(super) mock: Mock,
    pub(super) gw: Gateway,
    pub(super) state: AppState,
    pub(super) clock: ManualClock,
    pub(super) store: Arc<dyn Store>,
    /// The configuration the gateway was started with (a twin starts with it too).
    config: Config,
    /// Each user's agent token and id, by the name the test gave them.
    users: BTreeMap<&'static str, (String, String)>,
    /// One client for every call (building one per call is slow).
    http: reqwest::Client,
    _home: crate::store::StoreHome,
}

impl Limited {
    /// The agent token of user `name`.
    pub(super) fn token(&self, name: &str) -> &str {
        &self.users[name].0
    }

    /// The id (`usr_…`) of user `name`.
    pub(super) fn id(&self, name: &str) -> &str {
        &self.users[name].1
    }

    /// A POST of `body` to `path` as user `name`, with `x-mock` directives if any.
    pub(super) async fn post(
        &self,
        name: &str,
        path: &str,
        body: &Value,
        mock: Option<&str>,
    ) -> reqwest::Response {
        self.post_to(&self.gw, name, path, body, mock).await
    }

    /// [`Limited::post`] to gateway `gw` (this one or a twin).
    pub(super) async fn post_to(
        &self,
        gw: &Gateway,
        name: &str,
        path: &str,
        body: &Value,
        mock: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", gw.url))
            .bearer_auth(self.token(name))
            .json(body);
        if let Some(m) = mock {
            req = req.header("x-mock", m);
        }
        req.send().await.unwrap()
    }

    /// Writes the settled usage to the store (the `usage.flush` job).
    pub(super) async fn flush(&self) {
        let now = self.clock.now_millis();
        assert!(self.state.jobs().run_once("usage.flush", now).await);
    }

    /// Another instance: the same configuration, store and clock (what it shares with this one
    /// beyond them is what the configuration shares — Redis, when set).
    pub(super) async fn twin(&self) -> (AppState, Gateway) {
        start_gateway_on_store(self.config.clone(), &self.clock, self.store.clone()).await
    }

    /// A management API call.
    pub(super) async fn mgmt(&self, path: &str) -> (u16, Value) {
        call_with_key(&self.gw.url, MGMT, reqwest::Method::GET, path, None).await
    }
}

/// Starts a gateway on a fresh SQLite store with `users` (name, rules) — each created in the
/// store, given an agent token and its rules under `limits.users.<id>` — and `tweak` applied to
/// the configuration.
pub(super) async fn limited(
    users: &[(&'static str, Value)],
    tweak: impl FnOnce(&mut Config),
) -> Limited {
    let (store, home) = crate::store::test_store(false).await.unwrap();
    let mock = start_mock().await;
    let mut config = config_for(&mock);
    config.auth.disable_auth = false;
    config.management.key = Some(portcullis::secret::Secret::new(MGMT));
    let mut made = BTreeMap::new();
    for (name, rules) in users {
        let user = store
            .upsert_user("local", name, None, None, 0)
            .await
            .unwrap();
        let minted = tokio::task::spawn_blocking(agent_token::mint)
            .await
            .unwrap()
            .unwrap();
        store
            .insert_token(&token_record(&minted.id, &user.id, &minted.secret_hash, 0))
            .await
            .unwrap();
        let rules: Rules = serde_json::from_value(rules.clone()).unwrap();
        config.limits.users.insert(user.id.clone(), rules);
        made.insert(*name, (minted.token.expose().to_owned(), user.id));
    }
    tweak(&mut config);
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(START_MS));
    let (state, gw) = start_gateway_on_store(config.clone(), &clock, store.clone()).await;
    Limited {
        mock,
        gw,
        state,
        clock,
        store,
        config,
        users: made,
        http: client(),
        _home: home,
    }
}

/// A chat completion request of `model`.
pub(super) fn chat_body(model: &str, stream: bool, max_tokens: Option<u64>) -> Value {
    let mut body = chat(model, stream);
    if let Some(m) = max_tokens {
        body["max_tokens"] = m.into();
    }
    body
}

/// An Anthropic messages request of `model`.
pub(super) fn messages_body(model: &str, stream: bool, max_tokens: u64) -> Value {
    serde_json::json!({
        "model": model,
        "max_tokens": max_tokens,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hello"}],
    })
}
