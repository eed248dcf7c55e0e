//! One provider's credentials and the choice of one for a request: `priority` (lowest number
//! first, equal numbers take turns), `round_robin` (each available credential in turn) and
//! `quota_aware` (most remaining quota first, ties take turns). The list is swapped whole on a
//! reload; a pick reads it under a read lock held for a few comparisons, and allocates nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use http::{HeaderName, HeaderValue};

use super::health::{Health, period};
use crate::config::{BackendKind, ResetSchedule, SelectionStrategy};
use crate::secret::Secret;

/// What kind of upstream secret a credential holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A static API key.
    ApiKey,
    /// An OAuth access token (a personal subscription; refused in multi-user mode).
    Oauth,
}

impl CredentialKind {
    /// Name as in credential files and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ApiKey => "api_key",
            CredentialKind::Oauth => "oauth",
        }
    }

    /// Parses `api_key` / `oauth`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api_key" => Some(CredentialKind::ApiKey),
            "oauth" => Some(CredentialKind::Oauth),
            _ => None,
        }
    }
}

/// Where a credential comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The YAML configuration (read-only at run time).
    Config,
    /// A file in the credential directory.
    File(std::path::PathBuf),
    /// The store (management API, device-flow login).
    Store,
}

impl Source {
    /// Name for the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::File(_) => "file",
            Source::Store => "api",
        }
    }
}

/// One upstream credential, as loaded; its runtime state is in `health`.
#[derive(Debug)]
pub struct Credential {
    /// Stable id.
    pub id: Arc<str>,
    /// Backend it pays for.
    pub provider: Arc<str>,
    /// API key or OAuth token.
    pub kind: CredentialKind,
    /// Where it was loaded from.
    pub source: Source,
    /// Operator's label.
    pub label: Option<String>,
    /// The upstream secret.
    pub secret: Secret,
    /// Lower number = tried first.
    pub priority: i64,
    /// Quota limit given by the source (the API may override it).
    pub quota_limit: Option<u64>,
    /// When an OAuth access token expires (ms).
    pub expires_at: Option<u64>,
    /// Cooldown, usage, counters.
    pub health: Arc<Health>,
    header: (HeaderName, HeaderValue),
}

impl Credential {
    /// Builds a credential for a backend of `kind` (the header its protocol expects is made once).
    pub(crate) fn new(
        spec: super::Spec,
        kind: BackendKind,
        health: Arc<Health>,
    ) -> Option<Self> {
        let header = credential_header(kind, spec.kind, &spec.secret)?;
        Some(Self {
            id: Arc::from(spec.id.as_str()),
            provider: Arc::from(spec.provider.as_str()),
            kind: spec.kind,
            source: spec.source,
            label: spec.label,
            secret: spec.secret,
            priority: spec.priority,
            quota_limit: spec.quota_limit,
            expires_at: spec.expires_at,
            health,
            header,
        })
    }

    /// The header carrying the secret upstream (marked sensitive).
    pub fn header(&self) -> (&HeaderName, &HeaderValue) {
        (&self.header.0, &self.header.1)
    }

    /// True when the credential can serve a request at `now` in quota period `period`.
    fn available(&self, now: u64, period: u64) -> bool {
        self.health.cooldown_until() <= now
            && !self.health.exhausted(period)
            && self.expires_at.is_none_or(|e| e > now)
    }
}

/// The header a backend of `backend` expects for a secret: `Authorization: Bearer` for
/// OpenAI-type backends and OAuth tokens, `x-api-key` for Anthropic keys, `x-goog-api-key` for
/// Gemini keys. `None` when the secret cannot be a header value.
fn credential_header(
    backend: BackendKind,
    kind: CredentialKind,
    secret: &Secret,
) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = match (backend, kind) {
        (BackendKind::Openai, _) | (_, CredentialKind::Oauth) => (
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", secret.expose())),
        ),
        (BackendKind::Anthropic, CredentialKind::ApiKey) => (
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_str(secret.expose()),
        ),
        (BackendKind::Gemini, CredentialKind::ApiKey) => (
            HeaderName::from_static("x-goog-api-key"),
            HeaderValue::from_str(secret.expose()),
        ),
    };
    let mut value = value.ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

/// The result of a pick.
#[derive(Debug)]
pub enum Pick {
    /// Use this credential.
    Use(Arc<Credential>),
    /// The backend has no credentials at all: send without one (local servers).
    Keyless,
    /// Every credential is cooling down, used up, expired, or already tried.
    Unavailable(Unavailable),
}

/// Why nothing can be picked, and when something will be available again.
#[derive(Debug, Clone)]
pub struct Unavailable {
    /// Seconds until the soonest recovery (cooldown end, quota reset, token expiry excluded).
    pub retry_after_secs: u64,
    /// How many credentials are cooling down, used up, and expired.
    pub cooling: usize,
    /// Credentials whose quota is used up.
    pub exhausted: usize,
    /// OAuth credentials whose token expired.
    pub expired: usize,
}

/// One provider's credentials.
#[derive(Debug)]
pub struct ProviderPool {
    /// Backend name.
    pub name: Arc<str>,
    /// Protocol of the backend (decides the credential header).
    pub kind: BackendKind,
    /// Selection strategy.
    pub strategy: SelectionStrategy,
    /// Quota reset schedule.
    pub schedule: ResetSchedule,
    creds: RwLock<Arc<[Arc<Credential>]>>,
    cursor: AtomicUsize,
}

/// When nothing says otherwise: try again in five minutes.
const FALLBACK_RETRY_SECS: u64 = 300;

impl ProviderPool {
    /// An empty pool.
    pub fn new(
        name: Arc<str>,
        kind: BackendKind,
        strategy: SelectionStrategy,
        schedule: ResetSchedule,
    ) -> Self {
        Self {
            name,
            kind,
            strategy,
            schedule,
            creds: RwLock::new(Arc::from(Vec::new())),
            cursor: AtomicUsize::new(0),
        }
    }

    /// The current credentials (sorted by priority, then id).
    pub fn credentials(&self) -> Arc<[Arc<Credential>]> {
        self.creds
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn replace(&self, mut list: Vec<Arc<Credential>>) {
        list.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
        *self
            .creds
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::from(list);
    }

    /// Number of credentials.
    pub fn len(&self) -> usize {
        self.creds
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// True when the provider has no credential (a keyless backend).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The quota period at `now`.
    pub fn period(&self, now: u64) -> u64 {
        period::of(self.schedule, now)
    }

    /// Chooses a credential at `now`, skipping those in `tried`.
    pub fn pick(&self, now: u64, tried: &[Arc<str>]) -> Pick {
        let guard = self
            .creds
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let list: &[Arc<Credential>] = &guard;
        if list.is_empty() {
            return Pick::Keyless;
        }
        let period = self.period(now);
        let usable = |c: &Credential| c.available(now, period) && !tried.contains(&c.id);
        let chosen = match self.strategy {
            SelectionStrategy::RoundRobin => {
                let start = self.cursor.fetch_add(1, Ordering::Relaxed);
                (0..list.len())
                    .map(|i| &list[(start + i) % list.len()])
                    .find(|c| usable(c))
            }
            SelectionStrategy::Priority => {
                self.best_of(list, &usable, |c| std::cmp::Reverse(c.priority))
            }
            SelectionStrategy::QuotaAware => {
                self.best_of(list, &usable, |c| c.health.remaining(period))
            }
        };
        match chosen {
            Some(c) => Pick::Use(c.clone()),
            None => Pick::Unavailable(self.unavailable(list, now, period)),
        }
    }

    /// The usable credential with the highest `score`; ties take turns.
    fn best_of<'a, K: Ord + Copy>(
        &self,
        list: &'a [Arc<Credential>],
        usable: &dyn Fn(&Credential) -> bool,
        score: impl Fn(&Credential) -> K,
    ) -> Option<&'a Arc<Credential>> {
        let mut best: Option<K> = None;
        let mut ties = 0usize;
        for c in list.iter().filter(|c| usable(c)) {
            let s = score(c);
            match best {
                Some(b) if s < b => {}
                Some(b) if s == b => ties += 1,
                _ => {
                    best = Some(s);
                    ties = 1;
                }
            }
        }
        let best = best?;
        let nth = if ties > 1 {
            self.cursor.fetch_add(1, Ordering::Relaxed) % ties
        } else {
            0
        };
        list.iter()
            .filter(|c| usable(c) && score(c) == best)
            .nth(nth)
    }

    fn unavailable(&self, list: &[Arc<Credential>], now: u64, period: u64) -> Unavailable {
        let mut soonest: Option<u64> = None;
        let (mut cooling, mut exhausted, mut expired) = (0, 0, 0);
        for c in list {
            if c.expires_at.is_some_and(|e| e <= now) {
                expired += 1;
                continue;
            }
            let mut ready = now;
            if c.health.cooldown_until() > now {
                cooling += 1;
                ready = c.health.cooldown_until();
            }
            if c.health.exhausted(period) {
                exhausted += 1;
                match period::next_start(self.schedule, period) {
                    Some(reset) => ready = ready.max(reset),
                    None => continue,
                }
            }
            if ready > now {
                soonest = Some(soonest.map_or(ready, |s: u64| s.min(ready)));
            }
        }
        let retry_after_secs = soonest.map_or(FALLBACK_RETRY_SECS, |t| (t - now).div_ceil(1000));
        Unavailable {
            retry_after_secs: retry_after_secs.max(1),
            cooling,
            exhausted,
            expired,
        }
    }
}
