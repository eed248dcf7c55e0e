//! `AppState`: the one cheap-to-clone handle every handler gets — configuration, backends and
//! routing, the clock. Built once at startup from a validated [`Config`].
//!
//! Building the state is composition only: it starts no task. The periodic work its subsystems
//! need is listed by [`AppState::jobs`] (see [`crate::jobs`]); `serve` and `demo` run that list
//! on one scheduler, tests run a job directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::bus::{Bus, Event};
use crate::capture::{CaptureSettings, CaptureSink};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::config::StorageConfig;
use crate::identity::Authenticator;
use crate::identity::agent_token::TokenVerifier;
use crate::identity::token_server::TokenServer;
use crate::identity::virtual_key::KeyVerifier;
use crate::jobs::{Job, Jobs};
use crate::masking::LiveSecrets;
use crate::net::IpNet;
use crate::notify::{DesktopNotifier, NoNotifier, Notifier};
use crate::policy::counters::{Counters, LocalCounters};
use crate::policy::{Policy, RedisCounters};
use crate::pool::{Pool, PoolError};
use crate::redis_conn::{RedisConn, RedisError};
use crate::sso::Sso;
use crate::store::{
    CredentialStore, KeyAdminStore, LoginStore, RevisionStore, SqlStore, StatusStore, Store,
    StoreError, TokenAdminStore, UsageStore,
};
use crate::telemetry::Telemetry;
use crate::upstream::budget::AnswerBudget;
use crate::upstream::routing::ModelRouter;
use crate::upstream::{Backends, UpstreamError, is_oauth_connector};

/// Desktop notifications when the configuration turns them on (and a runtime is there to
/// deliver them), otherwise none.
fn default_notifier(config: &Config) -> Arc<dyn Notifier> {
    if config.notifications_enabled() && tokio::runtime::Handle::try_current().is_ok() {
        Arc::new(DesktopNotifier::start())
    } else {
        Arc::new(NoNotifier)
    }
}

/// Opens the configured store: `storage.database_url`, else SQLite in `storage.data_dir`.
pub async fn open_store(storage: &StorageConfig) -> Result<SqlStore, StoreError> {
    SqlStore::open_configured(storage.database_url.as_ref(), &storage.data_dir).await
}

/// The caches the store revision invalidates: agent tokens' and virtual keys'.
struct RevisionWatch {
    store: Arc<dyn RevisionStore>,
    tokens: Arc<TokenVerifier>,
    keys: Arc<KeyVerifier>,
}

impl RevisionWatch {
    /// Reads the store's revision and clears the caches when it moved.
    async fn poll(&self) {
        match self.store.revision().await {
            Ok(revision) => {
                self.tokens.observe_revision(revision);
                self.keys.observe_revision(revision);
            }
            Err(e) => tracing::warn!(error = %e, "could not poll the store for revocations"),
        }
    }
}

/// `tokens.sync_revision`: polls the store's revision every second and clears the agent-token
/// and virtual-key caches when it moves, so a revocation or an update made by any instance (or
/// the CLI) takes effect everywhere within a second — at once when the instances share a Redis
/// server, whose message (`bus`) makes every instance poll on the spot.
fn revision_job(watch: Arc<RevisionWatch>) -> Job {
    Job::new("tokens.sync_revision", Duration::from_secs(1), move |_| {
        let w = watch.clone();
        async move { w.poll().await }
    })
}

/// Connects the instances through `bus`: every committed change to the store is announced, and
/// an announced change (or a resubscription, after which messages may have been missed) makes
/// this instance poll the revision at once.
fn share_changes(bus: &Bus, store: &Arc<dyn Store>, watch: Option<&Arc<RevisionWatch>>) {
    if !bus.is_on() {
        return;
    }
    let announce = bus.clone();
    store.on_change(Arc::new(move || announce.publish(Event::Changed)));
    let Some(watch) = watch else { return };
    let watch = Arc::downgrade(watch);
    bus.listen(move |event| {
        if matches!(event, Event::Changed | Event::Resync)
            && let Some(w) = watch.upgrade()
        {
            tokio::spawn(async move { w.poll().await });
        }
    });
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A backend's client could not be built.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The operating system refused something the gateway needs (randomness, a file).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token server's stored signing key cannot be opened (wrong or missing sealing key).
    #[error("{0}")]
    Keys(String),
    /// The credential pool could not be built (a sealed secret cannot be opened, bad key).
    #[error("credential pool: {0}")]
    Pool(#[from] PoolError),
    /// SSO is enabled but no store was given.
    #[error("SSO needs a store (storage.data_dir or storage.database_url)")]
    SsoWithoutStore,
    /// An HTTP client could not be built.
    #[error("cannot build an HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The Redis URL cannot be used.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The usage journal in the data directory could not be opened or replayed.
    #[error(transparent)]
    Journal(#[from] crate::policy::JournalError),
}

/// Shared, immutable-after-start state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    config: Config,
    router: ModelRouter,
    policy: Policy,
    redis: Option<RedisConn>,
    bus: Bus,
    usage_store: Option<Arc<dyn UsageStore>>,
    token_store: Option<Arc<dyn TokenAdminStore>>,
    key_store: Option<Arc<dyn KeyAdminStore>>,
    store_status: Option<Arc<dyn StatusStore>>,
    web_store: Option<Arc<dyn LoginStore>>,
    auth: Authenticator,
    revisions: Option<Arc<RevisionWatch>>,
    sso: Option<Arc<Sso>>,
    oauth: Option<Arc<TokenServer>>,
    notifier: Arc<dyn Notifier>,
    trusted_proxies: Vec<IpNet>,
    capture: CaptureSink,
    secrets: Arc<LiveSecrets>,
    pool: Arc<Pool>,
    request_ids: AtomicU64,
    request_id_prefix: u32,
    clock: SharedClock,
    started: Instant,
    connections: Arc<crate::connection::ConnectionStats>,
    answer_budget: Arc<AnswerBudget>,
    telemetry: Telemetry,
}

impl AppState {
    /// Builds the state from a validated configuration, using the system clock.
    pub fn new(config: Config) -> Result<Self, StateError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// Builds the state with an explicit clock (tests pass a `ManualClock`).
    pub fn with_clock(config: Config, clock: SharedClock) -> Result<Self, StateError> {
        let notifier = default_notifier(&config);
        Self::with_parts(config, clock, notifier, None)
    }

    /// Builds the state with an explicit clock and notifier.
    pub fn with_parts(
        config: Config,
        clock: SharedClock,
        notifier: Arc<dyn Notifier>,
        store: Option<Arc<dyn Store>>,
    ) -> Result<Self, StateError> {
        let telemetry = if config.metrics.enabled {
            Telemetry::new(env!("CARGO_PKG_VERSION"))
        } else {
            Telemetry::off()
        };
        // Every operator event is also counted and listed for the console.
        let notifier: Arc<dyn Notifier> = Arc::new(crate::telemetry::Recording::new(
            telemetry.clone(),
            clock.clone(),
            notifier,
        ));
        let personal_oauth = config.access_mode.mode.allows_personal_oauth();
        let withheld: Vec<String> = config
            .backends
            .iter()
            .filter(|(name, b)| {
                !personal_oauth && (is_oauth_connector(name) || b.kind.is_connector())
            })
            .map(|(name, _)| name.clone())
            .collect();
        if !withheld.is_empty() {
            tracing::info!(
                connectors = %withheld.join(","),
                "Skipped OAuth connectors in Multi User Mode (OAuth not allowed in production)"
            );
        }
        let backends =
            Backends::build(&config.backends, |name| !withheld.iter().any(|w| w == name))?;
        // Redis, when configured, holds what every instance must share: the limit counters, the
        // lockouts, the messages of the bus. Nothing connects yet.
        let redis = config
            .storage
            .redis_settings()
            .map(|s| RedisConn::new(&s))
            .transpose()?;
        let bus = Bus::new(redis.clone())?;
        let credentials = store.clone().map(|s| -> Arc<dyn CredentialStore> { s });
        let pool = Arc::new(
            Pool::new(
                config.pool_settings(),
                &backends,
                credentials,
                clock.clone(),
            )?
            .with_notifier(notifier.clone()),
        );
        pool.share_on(&bus);
        let router = ModelRouter::new(backends, &config.routing, |name| {
            pool.provider(name).cloned()
        })
        .with_withheld(withheld);
        let counters: Arc<dyn Counters> = match &redis {
            Some(conn) => Arc::new(RedisCounters::new(conn.clone())?),
            None => Arc::new(LocalCounters::new()),
        };
        let usage_store = store.clone().map(|s| -> Arc<dyn UsageStore> { s });
        let policy = Policy::new(
            config.policy_settings(),
            counters,
            usage_store.clone(),
            clock.clone(),
        );
        let tokens = match &store {
            Some(store) => Some(Arc::new(TokenVerifier::new(store.clone())?)),
            None => None,
        };
        let mut auth = Authenticator::new(
            config.auth_settings(),
            clock.clone(),
            notifier.clone(),
            tokens.clone(),
        )?;
        if let (Some(r), Some(l)) = (&redis, auth.limiter()) {
            l.share(r.clone(), &bus, "addr", clock.clone());
        }
        let revisions = match (&store, tokens) {
            (Some(store), Some(tokens)) => {
                let keys = Arc::new(KeyVerifier::new(store.clone()));
                auth.accept_virtual_keys(keys.clone());
                Some(Arc::new(RevisionWatch {
                    store: store.clone(),
                    tokens,
                    keys,
                }))
            }
            _ => None,
        };
        let oauth = match &store {
            Some(s) => Some(Arc::new(TokenServer::new(
                config.token_settings(),
                s.clone(),
                clock.clone(),
                auth.limiter().cloned(),
            )?)),
            None => None,
        };
        if let Some(o) = &oauth {
            auth.accept_jwts_from(o.clone());
            if let (Some(r), Some(l)) = (&redis, o.account_lockout()) {
                l.share(r.clone(), &bus, "user", clock.clone());
            }
        }
        if let Some(store) = &store {
            share_changes(&bus, store, revisions.as_ref());
        }
        let sso = match (&store, config.sso.enabled) {
            (Some(store), true) => Some(Arc::new(Sso::new(
                &config.sso,
                config.public_url(),
                &config.auth.encryption,
                store.clone(),
                clock.clone(),
                notifier.clone(),
                auth.limiter().cloned(),
            )?)),
            (None, true) => return Err(StateError::SsoWithoutStore),
            (_, false) => None,
        };
        let trusted_proxies = config
            .server
            .trusted_proxies
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        let mut fixed = config.secrets();
        for b in router.backends().iter() {
            fixed.extend(b.configured_secrets().iter().cloned());
        }
        let secrets = Arc::new(LiveSecrets::new(
            fixed,
            Some(pool.clone() as Arc<dyn crate::masking::SecretSource>),
        ));
        let capture = match &config.logging.capture_file {
            Some(path) => {
                let settings = CaptureSettings {
                    path: path.clone(),
                    max_bytes: config.logging.capture_max_bytes,
                    max_files: config.logging.capture_max_files,
                };
                CaptureSink::start(settings, secrets.clone(), clock.clone())?
            }
            None => CaptureSink::disabled(),
        };
        let prefix = crate::secret::random_bytes::<4>()?;
        let answer_budget = AnswerBudget::new(config.server.max_buffered_answer_bytes);
        Ok(Self(Arc::new(Inner {
            config,
            router,
            policy,
            redis,
            bus,
            usage_store,
            token_store: store.clone().map(|s| -> Arc<dyn TokenAdminStore> { s }),
            key_store: store.clone().map(|s| -> Arc<dyn KeyAdminStore> { s }),
            store_status: store.clone().map(|s| -> Arc<dyn StatusStore> { s }),
            web_store: store.map(|s| -> Arc<dyn LoginStore> { s }),
            auth,
            revisions,
            sso,
            oauth,
            notifier,
            trusted_proxies,
            capture,
            secrets,
            pool,
            request_ids: AtomicU64::new(0),
            request_id_prefix: u32::from_le_bytes(prefix),
            clock,
            started: Instant::now(),
            connections: Arc::default(),
            answer_budget,
            telemetry,
        })))
    }

    /// The wire capture (disabled unless configured).
    pub fn capture(&self) -> &CaptureSink {
        &self.0.capture
    }

    /// Every secret logs and captures must not carry, current.
    pub fn secrets(&self) -> &Arc<LiveSecrets> {
        &self.0.secrets
    }

    /// A new request id: a random per-process prefix and a counter, as 16 hex digits.
    pub fn next_request_id(&self) -> String {
        let n = self.0.request_ids.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}{:08x}", self.0.request_id_prefix, n as u32)
    }

    /// The agent tokens and their owners (the management API), when a store is open.
    pub fn token_store(&self) -> Option<&Arc<dyn TokenAdminStore>> {
        self.0.token_store.as_ref()
    }

    /// Settled usage per day, key, user, backend and model (the management API's reports), when
    /// a store is open.
    pub fn usage_store(&self) -> Option<&Arc<dyn UsageStore>> {
        self.0.usage_store.as_ref()
    }

    /// The virtual keys and the users who may own them (the management API), when a store is
    /// open.
    pub fn key_store(&self) -> Option<&Arc<dyn KeyAdminStore>> {
        self.0.key_store.as_ref()
    }

    /// The store's kind, reachability and migrations (`/internal/health`), when a store is
    /// open.
    pub fn store_status(&self) -> Option<&Arc<dyn StatusStore>> {
        self.0.store_status.as_ref()
    }

    /// Browser sessions and the users behind them (the admin console's sessions), when a store
    /// is open.
    pub fn web_store(&self) -> Option<&Arc<dyn LoginStore>> {
        self.0.web_store.as_ref()
    }

    /// The background work this state needs, in start order: the pool's (`pool.rescan`,
    /// `pool.sync_store`, `pool.flush_usage`, `pool.refresh` when refreshing is on), then
    /// `tokens.sync_revision`, `usage.flush` and `sso.purge` when there is a store (the first
    /// two) and SSO, then — with Redis — `bus.subscribe`, then `telemetry.upkeep` (metrics on),
    /// then — with Redis — the shared lockouts' `lockouts.sync.addr` and `lockouts.sync.user`. Listing them starts nothing; the CLI
    /// commands never ask.
    pub fn jobs(&self) -> Jobs {
        let mut jobs = self.0.pool.jobs();
        jobs.extend(self.0.revisions.clone().map(revision_job));
        jobs.extend(self.0.policy.jobs());
        jobs.extend(self.0.sso.as_ref().map(Sso::purge_job));
        jobs.extend(self.0.bus.jobs());
        jobs.extend(self.0.telemetry.jobs());
        if let Some(l) = self.0.auth.limiter() {
            jobs.extend(l.jobs("lockouts.sync.addr"));
        }
        if let Some(l) = self.0.oauth.as_ref().and_then(|o| o.account_lockout()) {
            jobs.extend(l.jobs("lockouts.sync.user"));
        }
        Jobs::new(jobs)
    }

    /// Builds the state for `serve` and the jobs to run with it: the system clock, desktop
    /// notifications as configured, and the store when one is configured or already exists.
    pub async fn open(config: Config) -> Result<(Self, Jobs), StateError> {
        let store: Option<Arc<dyn Store>> = if config.needs_store() {
            Some(Arc::new(open_store(&config.storage).await?))
        } else {
            None
        };
        let notifier = default_notifier(&config);
        let state = Self::with_parts(config, Arc::new(SystemClock), notifier, store)?;
        // A killed run's settled usage, before anything is served.
        state
            .policy()
            .keep_journal(&state.config().storage.data_dir)
            .await?;
        state.pool().reload_store().await?;
        if let Some(o) = state.oauth() {
            o.check_keys()
                .await
                .map_err(|e| StateError::Keys(e.to_string()))?;
        }
        if let Some(redis) = state.redis()
            && let Err(e) = redis.ping().await
        {
            tracing::warn!(
                redis = redis.shown_url(),
                error = %e,
                on_redis_error = state.policy().fail_mode().as_str(),
                "Redis is not reachable: metered requests get the limits.on_redis_error treatment until it is"
            );
        }
        let jobs = state.jobs();
        Ok((state, jobs))
    }

    /// Hands an event to the operator's notifier.
    pub fn notify(&self, event: crate::notify::OperatorEvent) {
        self.0.notifier.notify(event);
    }

    /// The metrics and the recent operator events.
    pub fn telemetry(&self) -> &Telemetry {
        &self.0.telemetry
    }

    /// The upstream credential pool.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.0.pool
    }

    /// The OAuth2 token server, when a store is open.
    pub fn oauth(&self) -> Option<&Arc<TokenServer>> {
        self.0.oauth.as_ref()
    }

    /// SSO login, when enabled.
    pub fn sso(&self) -> Option<&Arc<Sso>> {
        self.0.sso.as_ref()
    }

    /// Client authentication.
    pub fn auth(&self) -> &Authenticator {
        &self.0.auth
    }

    /// Proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.0.trusted_proxies
    }

    /// The configuration the process started with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// What principals may use, and the counters of their limits and budgets.
    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// The Redis server instances share state through, when `storage.redis_url` is set.
    pub fn redis(&self) -> Option<&RedisConn> {
        self.0.redis.as_ref()
    }

    /// Model routing and the backends behind it.
    pub fn router(&self) -> &ModelRouter {
        &self.0.router
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.0.clock
    }

    /// Seconds since the state was built.
    /// Counts of client connections (open, refused at the cap, closed by a timeout), shared by
    /// every event loop serving this state.
    pub fn connections(&self) -> &Arc<crate::connection::ConnectionStats> {
        &self.0.connections
    }

    /// The memory budget non-streamed upstream answers are buffered within.
    pub fn answer_budget(&self) -> &Arc<AnswerBudget> {
        &self.0.answer_budget
    }

    pub fn uptime_secs(&self) -> u64 {
        self.0.started.elapsed().as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn building_the_state_starts_nothing_and_lists_its_jobs() {
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let before = tasks();
        let mut config = Config::default();
        config.auth.credentials_dir = Some("/nonexistent/portcullis-test-auths".into());
        // The desktop notifier is a sink with a task of its own, not a job.
        config.notifications.enabled = Some(false);
        let state = AppState::new(config).unwrap();
        assert_eq!(tasks(), before, "no task spawned while building");
        // Without a store: the pool's jobs only (no refresh, revocation watch or SSO purge).
        assert_eq!(
            state.jobs().names(),
            [
                "pool.rescan",
                "pool.sync_store",
                "pool.flush_usage",
                "telemetry.upkeep"
            ]
        );
        assert_eq!(tasks(), before, "listing the jobs starts nothing either");
    }
}
