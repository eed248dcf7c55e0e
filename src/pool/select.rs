//! One provider's credentials and the choice of one for a request: `priority` (lowest number
//! first, equal numbers take turns), `round_robin` (each available credential in turn) and
//! `quota_aware` (most remaining quota first, ties take turns). The list is swapped whole on a
//! reload; a pick reads it under a read lock held for a few comparisons, and allocates nothing.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::ResetSchedule;
use super::health::{Health, period};
use crate::bus::{Bus, Event};
use crate::protocol::BackendKind;
use crate::secret::Secret;

/// How a provider's credential is chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionStrategy {
    /// Lowest `priority` number first; equal priorities take turns.
    #[default]
    Priority,
    /// Every available credential in turn.
    RoundRobin,
    /// Most remaining quota first (unlimited counts as most); ties take turns.
    QuotaAware,
}

impl SelectionStrategy {
    /// Name as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            SelectionStrategy::Priority => "priority",
            SelectionStrategy::RoundRobin => "round_robin",
            SelectionStrategy::QuotaAware => "quota_aware",
        }
    }
}

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
    /// The secret's forms, to keep an upstream's echo of it from reaching clients.
    pub scrubber: Arc<crate::secret::scrub::Scrubber>,
    /// A connector login's account facts (project, account id, API base).
    pub account: Option<Arc<super::Account>>,
    header: (HeaderName, HeaderValue),
}

impl Credential {
    /// Builds a credential for a backend of `kind` (the header its protocol expects is made once).
    pub(crate) fn new(spec: super::Spec, kind: BackendKind, health: Arc<Health>) -> Option<Self> {
        let header = credential_header(kind, spec.kind, &spec.secret)?;
        let scrubber = Arc::new(crate::secret::scrub::Scrubber::new([&spec.secret]));
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
            scrubber,
            account: spec.account,
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
        (
            BackendKind::Openai
            | BackendKind::GeminiCli
            | BackendKind::Codex
            | BackendKind::QwenCode
            | BackendKind::Kiro,
            _,
        )
        | (_, CredentialKind::Oauth) => (
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
    /// Credentials cooling down after upstream errors (rate limits, refusals, server errors).
    pub cooling: usize,
    /// Credentials whose account the provider reported out of quota (`insufficient_quota`).
    pub quota_exceeded: usize,
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
    /// Failures cool credentials down (`auth.disable_cooling` turns it off).
    pub cooling: bool,
    creds: RwLock<Arc<[Arc<Credential>]>>,
    cursor: AtomicUsize,
    /// Tells the other instances about a cooldown (set when they share a Redis server).
    announce: OnceLock<Bus>,
    /// Cooldowns started here.
    cooldowns: AtomicU64,
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
        cooling: bool,
    ) -> Self {
        Self {
            name,
            kind,
            strategy,
            schedule,
            cooling,
            creds: RwLock::new(Arc::from(Vec::new())),
            cursor: AtomicUsize::new(0),
            announce: OnceLock::new(),
            cooldowns: AtomicU64::new(0),
        }
    }

    /// Cooldowns this process started on the pool's credentials.
    pub fn cooldowns_started(&self) -> u64 {
        self.cooldowns.load(Ordering::Relaxed)
    }

    /// Announces this pool's cooldowns on `bus` (set once, at composition).
    pub(crate) fn announce_on(&self, bus: &Bus) {
        let _ = self.announce.set(bus.clone());
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

    /// Records that `c` failed at `now`; returns when its cooldown ends (`now` when it stays in
    /// service: the failure is counted, nothing else). It stays in service when cooling is off,
    /// and when the failure says nothing about the credential (a server error, a timeout, a
    /// broken connection or stream: [`super::Failure::blames_credential`]) while no other
    /// credential is available — cooling it would turn one request's failure into a 429 for
    /// every client of the backend.
    pub fn fail(&self, c: &Credential, f: super::Failure, now: u64) -> u64 {
        if self.cooling && (f.blames_credential() || self.another_available(c, now)) {
            let until = c.health.fail(f, now);
            self.cooldowns.fetch_add(1, Ordering::Relaxed);
            if let Some(bus) = self.announce.get() {
                bus.publish(Event::Cooldown {
                    credential: c.id.to_string(),
                    until_ms: until,
                    reason: c.health.reason_code(),
                });
            }
            until
        } else {
            c.health.count_failure();
            now
        }
    }

    /// True when a credential other than `c` could serve a request at `now`.
    fn another_available(&self, c: &Credential, now: u64) -> bool {
        let period = self.period(now);
        self.creds
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|o| o.id != c.id && o.available(now, period))
    }

    /// The quota period at `now`.
    pub fn period(&self, now: u64) -> u64 {
        period::of(self.schedule, now)
    }

    /// [`ProviderPool::pick`], but credential `prefer` first when it is usable.
    pub fn pick_preferring(&self, now: u64, tried: &[Arc<str>], prefer: Option<&str>) -> Pick {
        if let Some(id) = prefer {
            let list = self.credentials();
            let period = self.period(now);
            if let Some(c) = list
                .iter()
                .find(|c| &*c.id == id && c.available(now, period) && !tried.contains(&c.id))
            {
                return Pick::Use(c.clone());
            }
        }
        self.pick(now, tried)
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
        let mut best: Option<(K, &Arc<Credential>)> = None;
        let mut ties = 0usize;
        for c in list.iter().filter(|c| usable(c)) {
            let s = score(c);
            match best {
                Some((b, _)) if s < b => {}
                Some((b, _)) if s == b => ties += 1,
                _ => {
                    best = Some((s, c));
                    ties = 1;
                }
            }
        }
        let (best, first) = best?;
        if ties < 2 {
            return Some(first);
        }
        let nth = self.cursor.fetch_add(1, Ordering::Relaxed) % ties;
        // Scores move under concurrent requests (usage is deducted meanwhile): when the tie
        // is gone by the second pass, the first pass's choice stands.
        list.iter()
            .filter(|c| usable(c) && score(c) == best)
            .nth(nth)
            .or(Some(first))
    }

    fn unavailable(&self, list: &[Arc<Credential>], now: u64, period: u64) -> Unavailable {
        let mut soonest: Option<u64> = None;
        let (mut cooling, mut quota_exceeded, mut exhausted, mut expired) = (0, 0, 0, 0);
        for c in list {
            if c.expires_at.is_some_and(|e| e <= now) {
                expired += 1;
                continue;
            }
            let mut ready = now;
            if c.health.cooldown_until() > now {
                if c.health.reason(now) == super::Reason::QuotaExhausted {
                    quota_exceeded += 1;
                } else {
                    cooling += 1;
                }
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
            quota_exceeded,
            exhausted,
            expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{Failure, Spec};
    use std::collections::HashMap;

    fn pool(strategy: SelectionStrategy, creds: &[(&str, i64, Option<u64>)]) -> ProviderPool {
        let p = ProviderPool::new(
            Arc::from("openai"),
            BackendKind::Openai,
            strategy,
            ResetSchedule::Never,
            true,
        );
        let list = creds
            .iter()
            .map(|(id, priority, limit)| {
                let h = Arc::new(Health::default());
                h.set_limit(*limit);
                let spec = Spec {
                    id: (*id).to_owned(),
                    provider: "openai".to_owned(),
                    kind: CredentialKind::ApiKey,
                    source: Source::Config,
                    label: None,
                    secret: Secret::new(format!("sk-test-{id}-0123456789")),
                    priority: *priority,
                    quota_limit: *limit,
                    expires_at: None,
                    account: None,
                };
                Arc::new(Credential::new(spec, BackendKind::Openai, h).unwrap())
            })
            .collect();
        p.replace(list);
        p
    }

    /// `threads` threads pick `per_thread` times each, concurrently; `after` runs on each pick
    /// (e.g. deducting usage). Returns picks per credential id.
    fn hammer(
        p: &ProviderPool,
        threads: usize,
        per_thread: usize,
        after: &(dyn Fn(&Credential) + Sync),
    ) -> HashMap<String, usize> {
        let counts = std::sync::Mutex::new(HashMap::new());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut local: HashMap<String, usize> = HashMap::new();
                    for _ in 0..per_thread {
                        match p.pick(0, &[]) {
                            Pick::Use(c) => {
                                after(&c);
                                *local.entry(c.id.to_string()).or_default() += 1;
                            }
                            other => panic!("nothing picked: {other:?}"),
                        }
                    }
                    let mut all = counts.lock().unwrap();
                    for (k, v) in local {
                        *all.entry(k).or_default() += v;
                    }
                });
            }
        });
        counts.into_inner().unwrap()
    }

    /// A tiny deterministic generator for the property runs.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        *seed >> 33
    }

    #[test]
    fn round_robin_spreads_exactly_evenly_under_concurrency() {
        let mut seed = 7;
        for _ in 0..20 {
            let m = 1 + (lcg(&mut seed) % 10) as usize;
            let threads = 1 + (lcg(&mut seed) % 8) as usize;
            let rounds = 1 + (lcg(&mut seed) % 50) as usize;
            let ids: Vec<String> = (0..m).map(|i| format!("c{i}")).collect();
            let creds: Vec<(&str, i64, Option<u64>)> =
                ids.iter().map(|i| (i.as_str(), 100, None)).collect();
            let p = pool(SelectionStrategy::RoundRobin, &creds);
            // threads * per_thread is a multiple of m: every credential gets exactly its share.
            let per_thread = m * rounds;
            let counts = hammer(&p, threads, per_thread, &|_| {});
            assert_eq!(counts.len(), m);
            for (id, n) in counts {
                assert_eq!(n, threads * rounds, "{id} with m={m} threads={threads}");
            }
        }
    }

    #[test]
    fn priority_uses_the_lowest_number_and_shares_ties_evenly() {
        let p = pool(
            SelectionStrategy::Priority,
            &[
                ("low", 5, None),
                ("a", 1, None),
                ("b", 1, None),
                ("c", 1, None),
            ],
        );
        let counts = hammer(&p, 6, 300, &|_| {});
        assert_eq!(counts.get("low"), None, "a higher number is never used");
        for id in ["a", "b", "c"] {
            assert_eq!(counts[id], 600, "{id}");
        }
        // The preferred ones cooling down: the next priority takes over; then comes back.
        for c in p.credentials().iter().filter(|c| c.priority == 1) {
            c.health.fail(Failure::Server, 0);
        }
        match p.pick(0, &[]) {
            Pick::Use(c) => assert_eq!(&*c.id, "low"),
            other => panic!("{other:?}"),
        }
        match p.pick(2_000, &[]) {
            Pick::Use(c) => assert_eq!(c.priority, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_preferred_credential_is_picked_while_it_is_usable() {
        let p = pool(
            SelectionStrategy::Priority,
            &[("a", 1, None), ("b", 5, None)],
        );
        let id = |pick: Pick| match pick {
            Pick::Use(c) => c.id.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(id(p.pick_preferring(0, &[], Some("b"))), "b");
        assert_eq!(id(p.pick_preferring(0, &[], Some("gone"))), "a");
        let b = Arc::from("b");
        assert_eq!(id(p.pick_preferring(0, &[b], Some("b"))), "a");
        for c in p.credentials().iter().filter(|c| &*c.id == "b") {
            c.health.fail(Failure::Server, 0);
        }
        assert_eq!(
            id(p.pick_preferring(0, &[], Some("b"))),
            "a",
            "cooling down"
        );
    }

    #[test]
    fn quota_aware_drains_toward_equal_remaining_under_concurrency() {
        let mut seed = 11;
        for _ in 0..10 {
            let limits: Vec<u64> = (0..(2 + lcg(&mut seed) % 5))
                .map(|_| 1_000 + 100 * (lcg(&mut seed) % 30))
                .collect();
            let ids: Vec<String> = (0..limits.len()).map(|i| format!("q{i}")).collect();
            let creds: Vec<(&str, i64, Option<u64>)> = ids
                .iter()
                .zip(&limits)
                .map(|(i, l)| (i.as_str(), 100, Some(*l)))
                .collect();
            let p = pool(SelectionStrategy::QuotaAware, &creds);
            let threads = 4;
            // Consume half the smallest total, 10 tokens per request.
            let total: u64 = limits.iter().sum();
            let per_thread = (total / 2 / 10 / threads as u64) as usize;
            hammer(&p, threads, per_thread, &|c| c.health.add_usage(0, 10));
            let creds = p.credentials();
            let remaining: Vec<u64> = creds.iter().map(|c| c.health.remaining(0)).collect();
            let most = *remaining.iter().max().unwrap();
            // A credential is drawn only while it has the most remaining, so every one that was
            // used ends within what the picks in flight (one per thread) can add of the most.
            for c in creds.iter().filter(|c| c.health.used(0) > 0) {
                assert!(
                    c.health.remaining(0) + 10 * (threads as u64 + 1) >= most,
                    "remaining {remaining:?} from limits {limits:?}"
                );
            }
            let used: u64 = creds.iter().map(|c| c.health.used(0)).sum();
            assert_eq!(
                used,
                10 * (threads * per_thread) as u64,
                "every request deducted"
            );
        }
    }

    #[test]
    fn nothing_available_says_when_something_will_be() {
        let p = pool(
            SelectionStrategy::RoundRobin,
            &[("a", 1, None), ("b", 1, Some(10))],
        );
        p.credentials()[0].health.fail(
            Failure::RateLimited {
                retry_after_secs: Some(30),
            },
            0,
        );
        p.credentials()[1].health.fail(
            Failure::RateLimited {
                retry_after_secs: Some(12),
            },
            0,
        );
        match p.pick(0, &[]) {
            Pick::Unavailable(u) => {
                assert_eq!(u.retry_after_secs, 12, "the soonest recovery");
                assert_eq!(u.cooling, 2);
            }
            other => panic!("{other:?}"),
        }
        let tried: Vec<Arc<str>> = vec![Arc::from("a")];
        match p.pick(12_000, &tried) {
            Pick::Use(c) => assert_eq!(&*c.id, "b"),
            other => panic!("{other:?}"),
        }
        p.credentials()[1].health.add_usage(0, 10);
        match p.pick(12_000, &tried) {
            Pick::Unavailable(u) => {
                assert_eq!(u.exhausted, 1);
                assert_eq!(
                    u.retry_after_secs, 18,
                    "`a` cools down until 30 s; b never resets"
                );
            }
            other => panic!("{other:?}"),
        }
        let empty = pool(SelectionStrategy::Priority, &[]);
        assert!(matches!(empty.pick(0, &[]), Pick::Keyless));
    }

    #[test]
    fn a_failure_that_says_nothing_about_the_credential_never_cools_the_last_available_one() {
        let p = pool(
            SelectionStrategy::Priority,
            &[("a", 1, None), ("b", 2, None)],
        );
        let [a, b] = [0, 1].map(|i| p.credentials()[i].clone());
        // Two available: a server error steers requests away from `a`.
        assert_eq!(p.fail(&a, Failure::Server, 0), 2_000);
        // `b` is the last available: a transport failure or a server error keeps it in service
        // (counted, not cooled)…
        for f in [Failure::Transport, Failure::Server] {
            assert_eq!(p.fail(&b, f, 100), 100, "{f:?}");
        }
        assert_eq!(b.health.failures.load(Ordering::Relaxed), 2);
        assert!(matches!(p.pick(100, &[]), Pick::Use(c) if c.id == b.id));
        // …but a failure that is the credential's own still cools it.
        assert_eq!(
            p.fail(
                &b,
                Failure::RateLimited {
                    retry_after_secs: Some(5)
                },
                100
            ),
            5_100
        );
        assert!(matches!(p.pick(100, &[]), Pick::Unavailable(_)));
        // A lone credential: never cooled by a broken stream or a 5xx, cooled by a refusal or
        // an exhausted account quota.
        let lone = pool(SelectionStrategy::Priority, &[("only", 1, None)]);
        let only = lone.credentials()[0].clone();
        assert_eq!(lone.fail(&only, Failure::Transport, 0), 0);
        assert_eq!(lone.fail(&only, Failure::Server, 0), 0);
        assert_eq!(lone.fail(&only, Failure::QuotaExhausted, 0), 300_000);
        match lone.pick(0, &[]) {
            Pick::Unavailable(u) => assert_eq!((u.quota_exceeded, u.cooling), (1, 0)),
            other => panic!("{other:?}"),
        }
    }
}
