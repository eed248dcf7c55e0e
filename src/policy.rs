//! The policy step between authentication and routing: what an authenticated [`Principal`] may
//! use and how much. [`Policy::grant`] turns the principal into a [`Grant`] once per request —
//! every rule set that concerns it: a virtual key's own rules and its owner's user rules, an
//! agent token's or JWT's user rules (or `limits.default_user`); static API keys and anonymous
//! callers get none ([`Grant::ALL`], no allocation). Routing
//! (`upstream::routing::ModelRouter::resolve`) and the model lists refuse a backend or model any
//! applicable rule set refuses.
//!
//! Limits and budgets are enforced around the upstream call: [`Policy::admit`] reserves, before
//! the call, one request and the request's estimated tokens (and their price) against every
//! counter of every applicable rule set, all or nothing ([`counters`]); the [`Admission`] it
//! returns is settled once with the answer's real usage — on success, on an upstream error, on a
//! broken stream, on a client disconnect (its `Drop`) — which replaces the reservation, frees the
//! concurrency slot and records the usage in the [`ledger`], flushed to the store (`UsageStore`)
//! by the `usage.flush` job — and, once [`Policy::keep_journal`] gave it the data directory, in
//! the [`journal`] first, so a killed process loses none of it. Budgets start from what the store says was spent in their period
//! (plus what this instance has not flushed yet), so they survive a restart. A grant without
//! rules costs nothing: [`Policy::meters`] says so without a lock, an allocation or an await.
//!
//! The counters are this instance's ([`counters::LocalCounters`]) or, with Redis, every
//! instance's ([`RedisCounters`], one server-side script per operation); the composition root
//! chooses. Counters that cannot be reached get the operator's [`FailMode`]
//! (`limits.on_redis_error`): refused, or admitted unmetered (`shared_counters`).
//!
//! The deployment's [`AccessMode`] is decided here too (`config` parses it as `access_mode.mode`):
//! multi-user mode refuses personal-subscription OAuth connectors and credentials
//! ([`AccessMode::allows_personal_oauth`]), which the composition root, the pool, the
//! device-login pages and the `auths` commands ask.

mod admission;
pub mod counters;
mod journal;
mod ledger;
mod prices;
mod redis_counters;
pub mod report;
mod shared_counters;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::identity::{KeyIdentity, Principal};
use crate::jobs::Job;
use crate::rules::Rules;
use crate::store::{StoreError, UsageStore};
use admission::Meter;
pub use admission::{Admission, Demand, Refusal, Spent, estimate_input_tokens};
use counters::Counters;
pub use journal::JournalError;
pub use prices::{Price, PriceTable};
pub use redis_counters::{GRACE_MS, HEARTBEAT_TTL_MS, HELD, RedisCounters};
pub use shared_counters::FailMode;
/// Operating mode, fixed at startup (PRODUCT §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    /// One developer on one machine (the default).
    #[default]
    SingleUser,
    /// A shared deployment.
    MultiUser,
}

impl AccessMode {
    /// The name used in config, logs and `/internal/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::SingleUser => "single_user",
            AccessMode::MultiUser => "multi_user",
        }
    }

    /// Whether OAuth (personal-subscription) connectors and credentials may be used: only by
    /// one developer on one machine, never in a shared deployment.
    pub fn allows_personal_oauth(self) -> bool {
        self == AccessMode::SingleUser
    }
}

/// `limits.*`: rules per user, for users without an entry, and the output reserved when a
/// request sets no maximum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Rules per user id: the `usr_…` id of agent tokens, the gateway's own JWTs and a virtual
    /// key's owner; a service client's `pcl_…` id; a trusted issuer's user claim.
    pub users: BTreeMap<String, Rules>,
    /// Rules for every user without an entry in `users` (none when unset).
    pub default_user: Option<Rules>,
    /// Output tokens reserved for a request that names no maximum (default 4096).
    pub default_max_tokens: u64,
    /// What a metered request gets when the counters shared through Redis cannot be reached:
    /// `closed` (refused with a 503, the default) or `open` (admitted unmetered).
    pub on_redis_error: FailMode,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            users: BTreeMap::new(),
            default_user: None,
            default_max_tokens: 4096,
            on_redis_error: FailMode::Closed,
        }
    }
}

impl LimitsConfig {
    /// True when some user has rules (the store then keeps their usage).
    pub fn has_rules(&self) -> bool {
        !self.users.is_empty() || self.default_user.is_some()
    }
}

/// What [`Policy::new`] takes, assembled by `config` from `limits` and `prices`.
#[derive(Debug, Clone, Default)]
pub struct PolicySettings {
    /// `limits.*`.
    pub limits: LimitsConfig,
    /// `prices.*`.
    pub prices: PriceTable,
}

/// Decides what principals may use, and counts what they spend.
pub struct Policy {
    users: HashMap<Box<str>, Arc<Rules>>,
    default_user: Option<Arc<Rules>>,
    meter: Arc<Meter>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("users", &self.users.len())
            .field("default_user", &self.default_user.is_some())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// A policy from `settings`, counting with `counters`, keeping settled usage in `store`
    /// (none: usage is not recorded and budgets start at 0 after a restart).
    pub fn new(
        settings: PolicySettings,
        counters: Arc<dyn Counters>,
        store: Option<Arc<dyn UsageStore>>,
        clock: SharedClock,
    ) -> Self {
        let limits = settings.limits;
        Self {
            users: limits
                .users
                .into_iter()
                .map(|(id, rules)| (id.into_boxed_str(), Arc::new(rules)))
                .collect(),
            default_user: limits.default_user.map(Arc::new),
            meter: Arc::new(Meter::new(
                counters,
                store,
                settings.prices,
                limits.default_max_tokens,
                clock,
                limits.on_redis_error,
            )),
        }
    }

    /// No rules, no prices, no store: everything is allowed to everyone.
    pub fn open(clock: SharedClock) -> Self {
        Self::new(
            PolicySettings::default(),
            Arc::new(counters::LocalCounters::new()),
            None,
            clock,
        )
    }

    /// The rules of user `id`: their entry, else `default_user`.
    fn user_rules(&self, id: &str) -> Option<Arc<Rules>> {
        if self.users.is_empty() && self.default_user.is_none() {
            return None;
        }
        self.users.get(id).or(self.default_user.as_ref()).cloned()
    }

    /// What `principal` may use: every rule set that concerns it.
    pub fn grant(&self, principal: &Principal) -> Grant {
        let user = |id: &Arc<str>| match self.user_rules(id) {
            Some(rules) => Grant {
                key: None,
                user: Some(id.clone()),
                user_rules: Some(rules),
            },
            None => Grant::ALL,
        };
        match principal {
            Principal::Anonymous | Principal::ApiKey { .. } => Grant::ALL,
            Principal::AgentToken(t) => user(&t.user_id),
            Principal::Jwt { subject, .. } => user(subject),
            Principal::VirtualKey(k) => Grant {
                key: Some(k.clone()),
                user: k.owner.clone(),
                user_rules: k.owner.as_ref().and_then(|o| self.user_rules(o)),
            },
        }
    }

    /// True when requests under `grant` are admitted through [`Policy::admit`]: some rule set
    /// counts, or one applies and the store keeps usage. Costs nothing for the open grant.
    pub fn meters(&self, grant: &Grant) -> bool {
        !grant.is_open() && (grant.counts() || self.meter.records())
    }

    /// Reserves what `demand` may spend under `grant` against every counter of every
    /// applicable rule set, all or nothing; `None` when nothing is metered. The [`Admission`]
    /// must travel with the answer until its usage is known.
    pub async fn admit(
        &self,
        grant: &Grant,
        demand: &Demand<'_>,
    ) -> Result<Option<Admission>, Refusal> {
        if !self.meters(grant) {
            return Ok(None);
        }
        self.meter.admit(grant, demand).await.map(Some)
    }

    /// Journals every settlement in `dir` (the data directory) from now on, and writes to the
    /// store what the journal files there that no running process holds recorded — a killed
    /// run's unflushed usage —, deleting them once the store has it (a failed write keeps them
    /// for the first flush). Files the store already counted (a run killed between its flush's
    /// commit and their deletion) are deleted uncounted. Returns how many records were
    /// replayed. Does nothing when no store keeps usage. At startup, before serving
    /// (`AppState::open`).
    pub async fn keep_journal(&self, dir: &std::path::Path) -> Result<usize, JournalError> {
        let replayed = self.meter.keep_journal(dir).await?;
        if replayed > 0 {
            match self.flush().await {
                Ok(_) => {
                    tracing::info!(records = replayed, "usage journal replayed into the store")
                }
                Err(e) => {
                    tracing::warn!(records = replayed, error = %e, "could not record the replayed usage journal in the store (kept for the next flush)")
                }
            }
        }
        Ok(replayed)
    }

    /// Writes the settled usage not yet in the store (the `usage.flush` job, and shutdown);
    /// returns how many rows were written.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        self.meter.flush().await
    }

    /// The counters (tests and health read them).
    pub fn counters(&self) -> &Arc<dyn Counters> {
        &self.meter.counters
    }

    /// What a metered request gets when the counters cannot be reached (`limits.on_redis_error`).
    pub fn fail_mode(&self) -> FailMode {
        self.meter.fail_mode()
    }

    /// Waits until every settlement started so far has reached the counters (shared counters
    /// settle in tasks of their own; the in-process ones at once) — `serve` before it exits,
    /// tests before they read a counter.
    pub async fn settled(&self) {
        self.meter.settled_all().await;
    }

    /// The background work the policy needs: `usage.flush` every second, when a store keeps
    /// usage.
    pub fn jobs(&self) -> Vec<Job> {
        let mut jobs = self.meter.counters.clone().jobs();
        if !self.meter.records() {
            return jobs;
        }
        let meter = self.meter.clone();
        jobs.push(Job::new(
            "usage.flush",
            std::time::Duration::from_secs(1),
            move |_| {
                let meter = meter.clone();
                async move {
                    if let Err(e) = meter.flush().await {
                        tracing::warn!(error = %e, "could not record usage in the store (kept for the next flush)");
                    }
                }
            },
        ));
        jobs
    }
}

/// Whose rules: a virtual key's or a user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whose<'a> {
    /// A virtual key.
    Key {
        /// Public id.
        id: &'a str,
        /// Name.
        name: &'a str,
    },
    /// A user, by id.
    User(&'a str),
}

/// What one principal may use: the rule sets that apply to it (none: everything, unmetered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The virtual key the request used: its id and name (counters, messages) and rules.
    key: Option<KeyIdentity>,
    /// The user the request is on behalf of (a key's owner, a token's or JWT's user).
    user: Option<Arc<str>>,
    user_rules: Option<Arc<Rules>>,
}

impl Grant {
    /// Everything, unmetered.
    pub const ALL: Grant = Grant {
        key: None,
        user: None,
        user_rules: None,
    };

    /// A grant of `rules` alone, on behalf of no one (tools and tests).
    pub fn with_rules(rules: Rules) -> Self {
        Self {
            key: None,
            user: None,
            user_rules: Some(Arc::new(rules)),
        }
    }

    /// True when no rule set applies.
    pub fn is_open(&self) -> bool {
        self.key.is_none() && self.user_rules.is_none()
    }

    /// Every applicable rule set, with whose it is.
    pub(crate) fn sets(&self) -> impl Iterator<Item = (Whose<'_>, &Rules)> {
        let key = self.key.as_ref().map(|k| {
            (
                Whose::Key {
                    id: &k.id,
                    name: &k.name,
                },
                &*k.rules,
            )
        });
        let user = self
            .user_rules
            .as_ref()
            .map(|r| (Whose::User(self.user.as_deref().unwrap_or("")), &**r));
        key.into_iter().chain(user)
    }

    /// The virtual key's public id, when the request used one.
    pub(crate) fn key_id(&self) -> Option<&Arc<str>> {
        self.key.as_ref().map(|k| &k.id)
    }

    /// The user the request is on behalf of.
    pub(crate) fn user_id(&self) -> Option<&Arc<str>> {
        self.user.as_ref()
    }

    /// True when some applicable rule set has a limit or budget to count.
    pub fn counts(&self) -> bool {
        self.sets().any(|(_, r)| r.counts())
    }

    /// True when the grant allows backend `backend`.
    pub fn allows_backend(&self, backend: &str) -> bool {
        self.sets().all(|(_, r)| r.allows_backend(backend))
    }

    /// True when the grant allows model `model` (the upstream name) on backend `backend`.
    pub fn allows(&self, backend: &str, model: &str) -> bool {
        self.sets().all(|(_, r)| r.allows_model(backend, model))
    }
}

#[cfg(test)]
mod tests;
