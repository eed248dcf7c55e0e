//! The upstream credential pool (PRODUCT §5): which upstream secret pays for a request.
//!
//! Credentials come from three sources, merged per provider (a configured backend): the YAML
//! configuration (`backends.<name>.api_key` and `credentials[]`), the credential directory
//! (`auth.credentials_dir`, read again every second) and the store (management API). Every
//! request picks one by the provider's strategy ([`select`]); an upstream failure cools that
//! credential down for a bounded, growing time ([`health`]) and the provider's call
//! (`upstream::Provider::call`, through [`lease`]) retries on the next one while nothing has
//! reached the client. Token usage is deducted per credential from the
//! upstream's reported usage, kept in memory on the request path and added to the store once a
//! second, so every instance sees the same totals.
//!
//! Secrets from the store (and sealed values in files) are opened with the `seal` keyring; a
//! value that cannot be opened is an error at startup and a logged, skipped credential later —
//! never garbage sent upstream.

pub mod browser;
pub mod connectors;
pub mod device;
mod files;
mod health;
mod imports;
mod lease;
mod logins;
mod manage;
mod select;
mod settings;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How often (clock time) the usage flush also reads the totals of credentials without local
/// usage (other instances' usage).
const FULL_USAGE_READ_MS: u64 = 5_000;

pub use connectors::{Account, ImportError};
pub use files::FILE_CONTEXT;
pub use health::ResetSchedule;
pub use health::{Failure, Health, Reason, period};
pub use lease::{Lease, Verdict};
pub use logins::{CredentialRefresh, Flow, FlowState, RefreshStatus};
pub use manage::{CredentialStatus, NewCredential, PoolSummary, QuotaStatus, Update};
pub use select::{
    Credential, CredentialKind, Pick, ProviderPool, SelectionStrategy, Source, Unavailable,
};
pub use settings::{PoolSettings, RefreshSettings, default_priority, valid_id};

use crate::bus::{Bus, Event};
use crate::clock::SharedClock;
use crate::jobs::Job;
use crate::protocol::BackendKind;
use crate::seal::{SealError, Sealer};
use crate::secret::Secret;
use crate::store::{CredentialStore, StoreError};

/// A credential as a source describes it, before it joins the pool.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Stable id.
    pub id: String,
    /// Configured backend name.
    pub provider: String,
    /// API key or OAuth token.
    pub kind: CredentialKind,
    /// Where it comes from.
    pub source: Source,
    /// Operator's label.
    pub label: Option<String>,
    /// The secret, opened.
    pub secret: Secret,
    /// Lower number = tried first.
    pub priority: i64,
    /// Token quota per period.
    pub quota_limit: Option<u64>,
    /// OAuth access-token expiry (ms).
    pub expires_at: Option<u64>,
    /// A connector login's account facts (Codex account id, Code Assist project, Qwen resource
    /// URL), when the credential is one.
    pub account: Option<Arc<Account>>,
}

/// Why a pool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored secret cannot be opened, or a new one sealed.
    #[error("credential `{id}`: {source}")]
    Seal {
        /// Credential id.
        id: String,
        /// Why.
        source: SealError,
    },
    /// Credentials added at run time need a store.
    #[error("no store is configured (storage.data_dir or storage.database_url)")]
    NoStore,
    /// The provider is not a configured backend.
    #[error("provider `{0}` is not a configured backend")]
    UnknownProvider(String),
    /// No such credential.
    #[error("no credential `{0}`")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The credential cannot be changed here (defined in the configuration file).
    #[error("{0}")]
    ReadOnly(String),
    /// A device login or refresh was refused or failed at the provider.
    #[error("{0}")]
    Login(String),
    /// The credential changed meanwhile (a refresh, another operator): read it again.
    #[error("{0}")]
    Conflict(String),
    /// OAuth credentials are refused in multi-user mode (PRODUCT §6).
    #[error(
        "OAuth (personal subscription) credentials are not available in multi-user mode; add an API key instead"
    )]
    OauthInMultiUser,
}

/// What was loaded from each source; the pool is rebuilt from it whenever one changes.
#[derive(Default)]
struct Loaded {
    config: Vec<Spec>,
    files: Vec<Spec>,
    file_errors: Vec<(String, String)>,
    file_fingerprint: Option<[u8; 32]>,
    store: Vec<Spec>,
    store_errors: Vec<(String, String)>,
    limits: HashMap<String, Option<u64>>,
}

/// Every provider's credentials.
pub struct Pool {
    providers: HashMap<Arc<str>, Arc<ProviderPool>>,
    aliases: Vec<(String, String)>,
    health: Mutex<HashMap<String, Arc<Health>>>,
    loaded: Mutex<Loaded>,
    store: Option<Arc<dyn CredentialStore>>,
    sealer: Option<Sealer>,
    clock: SharedClock,
    multi_user: bool,
    dir: Option<PathBuf>,
    revision: AtomicI64,
    /// Bumped whenever the credential lists are rebuilt (the masking set follows it).
    generation: AtomicU64,
    logins: HashMap<String, Arc<device::DeviceLogin>>,
    flows: Mutex<HashMap<String, Flow>>,
    /// Woken whenever a login in progress ends.
    flow_ended: tokio::sync::Notify,
    refresh: RefreshSettings,
    refresh_status: Mutex<RefreshStatus>,
    notifier: Option<Arc<dyn crate::notify::Notifier>>,
    /// The connector backends (their CLIs' login files).
    connectors: Vec<connectors::ConnectorSettings>,
    /// What each connector's file held when last imported (BLAKE3 of its text), and when a
    /// failed import of it is due again.
    imported: Mutex<HashMap<String, imports::Mark>>,
    /// The pool's own calls (Code Assist project discovery).
    http: reqwest::Client,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("providers", &self.providers.len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The configured backends a pool is built for (`upstream::Backends`): each one's name and
/// protocol, in name order.
pub trait BackendSet {
    /// Name and protocol of each backend.
    fn names_and_kinds(&self) -> Vec<(Arc<str>, BackendKind)>;
}

impl Pool {
    /// Builds the pool of `backends` from its settings and the credential directory (stored
    /// credentials join with [`Pool::reload_store`]).
    pub fn new(
        settings: PoolSettings,
        backends: &impl BackendSet,
        store: Option<Arc<dyn CredentialStore>>,
        clock: SharedClock,
    ) -> Result<Self, PoolError> {
        let sealer =
            Sealer::from_config(&settings.encryption).map_err(|source| PoolError::Seal {
                id: "auth.encryption".to_owned(),
                source,
            })?;
        let providers = backends
            .names_and_kinds()
            .into_iter()
            .map(|(name, kind)| {
                let strategy = settings
                    .strategies
                    .get(&*name)
                    .copied()
                    .unwrap_or(settings.selection_strategy);
                let schedule = settings
                    .reset_schedules
                    .get(&*name)
                    .copied()
                    .unwrap_or_default();
                let pool =
                    ProviderPool::new(name.clone(), kind, strategy, schedule, settings.cooling);
                (name, Arc::new(pool))
            })
            .collect::<HashMap<_, _>>();
        let http = crate::net::outbound_client(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(30),
        )
        .map_err(|e| PoolError::Invalid(format!("cannot build an HTTP client: {e}")))?;
        let mut logins = HashMap::new();
        for (name, cfg) in &settings.device_logins {
            let login = device::DeviceLogin::from_config(name, cfg, http.clone());
            login
                .check()
                .map_err(|e| PoolError::Invalid(format!("auth.device_login.{name}: {e}")))?;
            if !providers.contains_key(login.backend.as_str()) && !settings.multi_user {
                return Err(PoolError::Invalid(format!(
                    "auth.device_login.{name}.backend: `{}` is not a configured backend",
                    login.backend
                )));
            }
            logins.insert(name.clone(), Arc::new(login));
        }
        let aliases = [("claude", "anthropic"), ("google", "gemini")]
            .iter()
            .map(|(a, k)| ((*a).to_owned(), (*k).to_owned()))
            .collect();
        let configured = settings
            .credentials
            .into_iter()
            .filter(|s| providers.contains_key(s.provider.as_str()))
            .collect();
        let pool = Self {
            providers,
            aliases,
            health: Mutex::new(HashMap::new()),
            loaded: Mutex::new(Loaded {
                config: configured,
                ..Loaded::default()
            }),
            store,
            sealer,
            clock,
            multi_user: settings.multi_user,
            dir: Some(settings.credentials_dir),
            revision: AtomicI64::new(i64::MIN),
            generation: AtomicU64::new(0),
            logins,
            flows: Mutex::new(HashMap::new()),
            flow_ended: tokio::sync::Notify::new(),
            refresh: settings.refresh,
            refresh_status: Mutex::new(RefreshStatus::default()),
            notifier: None,
            connectors: settings.connectors,
            imported: Mutex::new(HashMap::new()),
            http,
        };
        pool.rescan_files();
        pool.install();
        Ok(pool)
    }

    /// Shares cooldowns with the other instances on `bus`: this pool's are announced, theirs
    /// adopted (a credential one instance saw rate limited is skipped by all).
    pub fn share_on(self: &Arc<Self>, bus: &Bus) {
        if !bus.is_on() {
            return;
        }
        for p in self.providers.values() {
            p.announce_on(bus);
        }
        let pool = Arc::downgrade(self);
        bus.listen(move |event| {
            let Some(pool) = pool.upgrade() else { return };
            match event {
                Event::Cooldown {
                    credential,
                    until_ms,
                    reason,
                } => {
                    if let Some(h) = lock(&pool.health).get(credential.as_str()) {
                        h.cool_until(*until_ms, *reason);
                    }
                }
                Event::Changed | Event::Resync => {
                    tokio::spawn(async move {
                        if let Err(e) = pool.sync_store().await {
                            tracing::warn!(error = %e, "could not reload the stored credentials");
                        }
                    });
                }
                Event::Blocked { .. } => {}
            }
        });
    }

    /// Sends operator events (a credential that needs a new login) to `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<dyn crate::notify::Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The pool of backend `name`.
    pub fn provider(&self, name: &str) -> Option<&Arc<ProviderPool>> {
        self.providers.get(name)
    }

    /// Every provider's pool, in name order.
    pub fn providers(&self) -> Vec<Arc<ProviderPool>> {
        let mut v: Vec<_> = self.providers.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The configured backend a provider name means: the backend of that name; else, for the
    /// seed's `claude` (and `google`), `anthropic` (`gemini`); else the only backend of that
    /// type.
    pub fn resolve_provider(&self, name: &str) -> Option<String> {
        if self.providers.contains_key(name) {
            return Some(name.to_owned());
        }
        let kind = self
            .aliases
            .iter()
            .find(|(a, _)| a == name)
            .map_or(name, |(_, k)| k.as_str());
        if self.providers.contains_key(kind) {
            return Some(kind.to_owned());
        }
        let mut of_kind = self.providers.values().filter(|p| p.kind.as_str() == kind);
        match (of_kind.next(), of_kind.next()) {
            (Some(p), None) => Some(p.name.to_string()),
            _ => None,
        }
    }

    /// The pool's view of the store, when one is open.
    pub fn store(&self) -> Option<&Arc<dyn CredentialStore>> {
        self.store.as_ref()
    }

    /// The sealing keyring (`auth.encryption`).
    pub fn sealer(&self) -> Option<&Sealer> {
        self.sealer.as_ref()
    }

    /// The clock.
    pub fn now(&self) -> u64 {
        self.clock.now_millis()
    }

    /// Reads the credential directory again; rebuilds the pool when a file changed. Returns
    /// true when it did.
    pub fn rescan_files(&self) -> bool {
        let Some(dir) = &self.dir else { return false };
        let scan = files::scan(dir, self.sealer.as_ref(), &|n| self.resolve_provider(n));
        {
            let mut loaded = lock(&self.loaded);
            if loaded.file_fingerprint == Some(scan.fingerprint) {
                return false;
            }
            for (file, error) in &scan.errors {
                tracing::warn!(file = %dir.join(file).display(), %error, "credential file skipped");
            }
            if loaded.file_fingerprint.is_some() {
                tracing::info!(
                    dir = %dir.display(),
                    credentials = scan.specs.len(),
                    skipped = scan.errors.len(),
                    "credential directory changed: reloaded"
                );
            }
            loaded.file_fingerprint = Some(scan.fingerprint);
            loaded.files = scan.specs;
            loaded.file_errors = scan.errors;
        }
        self.install();
        true
    }

    /// Reads the stored credentials and quota limits again and rebuilds the pool. A stored
    /// secret that cannot be opened is an error (at startup the caller stops; later it is
    /// logged and the credential skipped).
    pub async fn reload_store(&self) -> Result<(), PoolError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let revision = store.revision().await?;
        let rows = store.list_credentials().await?;
        let limits = store.quota_limits().await?;
        let mut specs = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        let mut first_error = None;
        for row in rows {
            match manage::spec_from_row(row, self.sealer.as_ref()) {
                Ok(spec) => specs.push(spec),
                Err(e) => {
                    errors.push((e.0.clone(), e.1.to_string()));
                    first_error.get_or_insert(PoolError::Seal {
                        id: e.0,
                        source: e.1,
                    });
                }
            }
        }
        {
            let mut loaded = lock(&self.loaded);
            loaded.store = specs;
            loaded.store_errors = errors;
            loaded.limits = limits
                .into_iter()
                .map(|(id, l)| (id, l.map(|v| v.max(0) as u64)))
                .collect();
        }
        self.revision.store(revision, Ordering::Release);
        self.install();
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reloads the stored credentials when another instance (or this one) changed them.
    pub async fn sync_store(&self) -> Result<(), PoolError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        if store.revision().await? != self.revision.load(Ordering::Acquire) {
            self.reload_store().await?;
        }
        Ok(())
    }

    /// Rebuilds every provider's list from what the sources hold.
    fn install(&self) {
        let loaded = lock(&self.loaded);
        let mut health = lock(&self.health);
        let mut by_provider: HashMap<&str, Vec<Arc<Credential>>> = HashMap::new();
        let mut seen: HashMap<&str, &Source> = HashMap::new();
        for spec in loaded
            .config
            .iter()
            .chain(&loaded.files)
            .chain(&loaded.store)
        {
            if let Some(first) = seen.get(spec.id.as_str()) {
                tracing::warn!(id = %spec.id, first = first.as_str(), "two credentials with one id: the second is ignored");
                continue;
            }
            seen.insert(&spec.id, &spec.source);
            if self.multi_user && spec.kind == CredentialKind::Oauth {
                tracing::info!(id = %spec.id, provider = %spec.provider, "Skipped OAuth credential in Multi User Mode (OAuth not allowed in production)");
                continue;
            }
            let Some(provider) = self.providers.get(spec.provider.as_str()) else {
                continue;
            };
            let h = health.entry(spec.id.clone()).or_default().clone();
            h.adopt_secret(fingerprint(&spec.secret));
            let limit = match loaded.limits.get(&spec.id) {
                Some(l) => *l,
                None => spec.quota_limit,
            };
            h.set_limit(limit);
            match Credential::new(spec.clone(), provider.kind, h) {
                Some(c) => by_provider
                    .entry(&provider.name)
                    .or_default()
                    .push(Arc::new(c)),
                None => {
                    tracing::warn!(id = %spec.id, "credential skipped: its secret cannot be sent in an HTTP header");
                }
            }
        }
        health.retain(|id, _| seen.contains_key(id.as_str()));
        for (name, p) in &self.providers {
            p.replace(by_provider.remove(&**name).unwrap_or_default());
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Writes the usage gathered since the last flush to the store and adopts the store's
    /// totals (every instance's usage). `all` also reads credentials without local usage.
    pub async fn flush_usage(&self, all: bool) {
        let now = self.now();
        for p in self.providers.values() {
            let period = p.period(now);
            let key = period::key(p.schedule, period);
            for c in p.credentials().iter() {
                self.report_exhaustion(p, c, period);
                let Some(store) = &self.store else { continue };
                let delta = c.health.take_pending(period);
                let result = if delta > 0 {
                    store.add_usage(&c.id, &key, delta as i64).await
                } else if all && c.health.limit().is_some() {
                    store.usage(&c.id, &key).await
                } else {
                    continue;
                };
                match result {
                    Ok(total) => c.health.sync_used(period, total.max(0) as u64),
                    Err(e) => {
                        c.health.restore_pending(delta);
                        tracing::warn!(id = %c.id, error = %e, "could not record credential usage");
                    }
                }
            }
        }
    }

    /// Logs and notifies (once per period) that a credential's quota ran out.
    fn report_exhaustion(&self, p: &ProviderPool, c: &Credential, period: u64) {
        let exhausted = c.health.exhausted(period);
        if c.health.mark_exhausted(exhausted) {
            let resets = period::next_start(p.schedule, period).map(crate::clock::iso8601);
            tracing::warn!(credential = %c.id, provider = %p.name, limit = c.health.limit(), resets_at = resets.as_deref(), "credential quota used up: skipped until it resets");
            if let Some(n) = &self.notifier {
                n.notify(crate::notify::OperatorEvent::QuotaExhausted {
                    credential: c.id.to_string(),
                    provider: p.name.to_string(),
                    resets_at: resets,
                });
            }
        }
    }

    /// The pool's periodic work, run by the scheduler (see [`crate::jobs`]): `pool.rescan` (the
    /// credential directory, every second, off the runtime's threads), `pool.sync_store` (the
    /// store's revision, every second) and `pool.flush_usage` (usage to the store every second;
    /// every 5 s of clock time it also reads the totals of credentials without local usage).
    pub fn jobs(self: &Arc<Self>) -> Vec<Job> {
        let second = std::time::Duration::from_secs(1);
        let rescan = {
            let pool = self.clone();
            Job::new("pool.rescan", second, move |_| {
                let pool = pool.clone();
                async move {
                    let _ = tokio::task::spawn_blocking(move || pool.rescan_files()).await;
                }
            })
        };
        let sync = {
            let pool = self.clone();
            Job::new("pool.sync_store", second, move |_| {
                let pool = pool.clone();
                async move {
                    if let Err(e) = pool.sync_store().await {
                        tracing::warn!(error = %e, "could not reload stored credentials");
                    }
                }
            })
        };
        let flush = {
            let pool = self.clone();
            // Clock time of the last full read; 0 until the first run.
            let last_full = Arc::new(AtomicU64::new(0));
            Job::new("pool.flush_usage", second, move |now| {
                let pool = pool.clone();
                let last = last_full.load(Ordering::Acquire);
                let all = last != 0 && now >= last.saturating_add(FULL_USAGE_READ_MS);
                if last == 0 || all {
                    last_full.store(now.max(1), Ordering::Release);
                }
                async move { pool.flush_usage(all).await }
            })
        };
        let mut jobs = vec![rescan, sync, flush];
        jobs.extend(self.refresh_job());
        jobs.extend(self.import_job());
        jobs
    }

    /// Files and stored rows that could not be loaded, and why.
    pub fn load_errors(&self) -> Vec<(String, String)> {
        let loaded = lock(&self.loaded);
        loaded
            .file_errors
            .iter()
            .chain(&loaded.store_errors)
            .cloned()
            .collect()
    }

    /// Re-seals the credential directory's sealed secrets under the current key.
    pub fn reseal_files(&self) -> Result<usize, PoolError> {
        let Some(dir) = &self.dir else { return Ok(0) };
        files::reseal_dir(dir, self.sealer.as_ref()).map_err(PoolError::Invalid)
    }

    /// Bumped whenever the credential lists are rebuilt (the masking set follows it).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every secret in the pool (for masking in the wire capture).
    pub fn secrets(&self) -> Vec<Secret> {
        self.providers
            .values()
            .flat_map(|p| {
                p.credentials()
                    .iter()
                    .map(|c| c.secret.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A cheap fingerprint of a secret (never shown; tells a changed secret from the same one).
fn fingerprint(s: &Secret) -> u64 {
    let h = blake3::hash(s.expose().as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b).max(1)
}
