//! Changing the pool at run time (the management API's operations) and describing it. Secrets
//! are sealed before they reach the store and never leave in a description: only a masked hint.

use std::sync::Arc;

use super::select::{Credential, CredentialKind, ProviderPool, Source};
use super::{Pool, PoolError, Spec, period};
use crate::seal::{self, SealError, Sealer};
use crate::secret::Secret;
use crate::store::StoredCredential;

/// Associated data of a stored credential's secret: its row.
pub(super) fn context(id: &str) -> String {
    format!("pool_credentials/{id}")
}

/// Associated data of a stored credential's OAuth refresh state.
pub(super) fn oauth_context(id: &str) -> String {
    format!("pool_credentials/{id}/oauth")
}

/// A fresh id for a credential kept in the store.
pub(super) fn new_store_id() -> Result<String, PoolError> {
    let random = crate::secret::random_bytes::<6>()
        .map_err(|e| PoolError::Invalid(format!("no randomness: {e}")))?;
    Ok(format!("api-{}", crate::store::hex(&random)))
}

/// A stored row as a spec, its secret opened.
pub(super) fn spec_from_row(
    row: StoredCredential,
    sealer: Option<&Sealer>,
) -> Result<Spec, (String, SealError)> {
    let plain =
        seal::open(sealer, &row.secret, &context(&row.id)).map_err(|e| (row.id.clone(), e))?;
    let secret = String::from_utf8(plain).map_err(|_| (row.id.clone(), SealError::Corrupt))?;
    // A connector login's account facts ride in its sealed refresh state.
    let account = row
        .oauth
        .as_deref()
        .and_then(|o| seal::open(sealer, o, &oauth_context(&row.id)).ok())
        .and_then(|plain| serde_json::from_slice::<super::device::RefreshState>(&plain).ok())
        .map(|state| state.account)
        .filter(|a| !a.is_empty())
        .map(Arc::new);
    Ok(Spec {
        kind: CredentialKind::parse(&row.kind).unwrap_or(CredentialKind::ApiKey),
        source: Source::Store,
        label: row.label,
        secret: Secret::new(secret),
        priority: row.priority,
        quota_limit: row.quota_limit.map(|l| l.max(0) as u64),
        expires_at: row.expires_at.map(|e| e.max(0) as u64),
        account,
        id: row.id,
        provider: row.provider,
    })
}

/// A credential to add.
#[derive(Debug)]
pub struct NewCredential {
    /// Provider name (a backend, or `claude`/`google`).
    pub provider: String,
    /// `api_key` or `oauth`.
    pub kind: CredentialKind,
    /// The secret.
    pub token: Secret,
    /// Lower number = tried first (default 100).
    pub priority: Option<i64>,
    /// Token quota per period.
    pub quota_limit: Option<u64>,
    /// Operator's label.
    pub label: Option<String>,
}

/// Changes to a stored credential; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Update {
    /// New secret (ends a cooldown caused by the old one).
    pub token: Option<Secret>,
    /// New priority.
    pub priority: Option<i64>,
    /// New label.
    pub label: Option<String>,
}

/// A credential as the management API shows it: no secret, only a hint.
#[derive(Debug, Clone)]
pub struct CredentialStatus {
    /// Id.
    pub id: String,
    /// Backend.
    pub provider: String,
    /// `api_key` / `oauth`.
    pub kind: &'static str,
    /// `config` / `file` / `api`.
    pub source: &'static str,
    /// File name, for file credentials.
    pub file: Option<String>,
    /// Masked secret (`sk-ant-…x9f2`).
    pub hint: String,
    /// Label.
    pub label: Option<String>,
    /// Priority.
    pub priority: i64,
    /// `active`, `rate_limited`, `quota_exceeded`, `rejected`, `cooling_down`, `exhausted`,
    /// `expired`.
    pub status: &'static str,
    /// Cooldown end (ms), when cooling down.
    pub cooldown_until: Option<u64>,
    /// Quota.
    pub quota: QuotaStatus,
    /// Requests sent with it.
    pub requests: u64,
    /// Failures recorded.
    pub failures: u64,
    /// Last upstream status (0 none, 1 transport failure).
    pub last_status: u16,
    /// Last use (ms).
    pub last_used: Option<u64>,
    /// OAuth token expiry (ms).
    pub expires_at: Option<u64>,
}

/// A credential's quota in the current period.
#[derive(Debug, Clone)]
pub struct QuotaStatus {
    /// Limit, if any.
    pub limit: Option<u64>,
    /// Tokens used this period.
    pub used: u64,
    /// Remaining, if limited.
    pub remaining: Option<u64>,
    /// `never` / `daily` / `monthly`.
    pub reset_schedule: &'static str,
    /// Store key of the period (`day:2026-11-23`).
    pub period: String,
    /// When the next period starts (ms).
    pub resets_at: Option<u64>,
}

/// One backend's credentials counted by state (`/internal/health`): no secret, no hint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSummary {
    /// Backend.
    pub provider: String,
    /// Credentials, whatever their state.
    pub total: usize,
    /// Usable now (`active`).
    pub usable: usize,
    /// Cooling down after failures (`rate_limited`, `rejected`, `cooling_down`).
    pub cooling_down: usize,
    /// Whose refresh failed in a way only a new login mends (`needs_login`).
    pub needs_login: usize,
    /// Out of quota: the provider said so (`quota_exceeded`) or the period's limit is used up
    /// (`exhausted`).
    pub quota_exhausted: usize,
    /// OAuth tokens past their expiry (`expired`).
    pub expired: usize,
    /// The soonest end of a cooldown (ms), when one is running.
    pub next_cooldown_end: Option<u64>,
}

impl PoolSummary {
    /// True when the backend has credentials and none is usable: its requests fail until one
    /// comes back. A backend without any credential sends requests without a key (a local
    /// model server), which is not a fault.
    pub fn stuck(&self) -> bool {
        self.total > 0 && self.usable == 0
    }

    fn count(&mut self, c: &CredentialStatus) {
        self.total += 1;
        match c.status {
            "active" => self.usable += 1,
            "needs_login" => self.needs_login += 1,
            "quota_exceeded" | "exhausted" => self.quota_exhausted += 1,
            "expired" => self.expired += 1,
            _ => self.cooling_down += 1,
        }
        if let Some(end) = c.cooldown_until {
            self.next_cooldown_end = Some(self.next_cooldown_end.map_or(end, |s| s.min(end)));
        }
    }
}

fn status_of(p: &ProviderPool, c: &Credential, now: u64) -> CredentialStatus {
    use std::sync::atomic::Ordering::Relaxed;
    let per = p.period(now);
    let h = &c.health;
    let reason = h.reason(now);
    let status = if c.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else if reason != super::Reason::None {
        reason.status()
    } else if h.exhausted(per) {
        "exhausted"
    } else {
        "active"
    };
    let limit = h.limit();
    CredentialStatus {
        id: c.id.to_string(),
        provider: c.provider.to_string(),
        kind: c.kind.as_str(),
        source: c.source.as_str(),
        file: match &c.source {
            Source::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
            _ => None,
        },
        hint: c.secret.hint(),
        label: c.label.clone(),
        priority: c.priority,
        status,
        cooldown_until: Some(h.cooldown_until()).filter(|t| *t > now),
        quota: QuotaStatus {
            limit,
            used: h.used(per),
            remaining: limit.map(|_| h.remaining(per)),
            reset_schedule: match p.schedule {
                super::ResetSchedule::Never => "never",
                super::ResetSchedule::Daily => "daily",
                super::ResetSchedule::Monthly => "monthly",
            },
            period: period::key(p.schedule, per),
            resets_at: period::next_start(p.schedule, per),
        },
        requests: h.requests.load(Relaxed),
        failures: h.failures.load(Relaxed),
        last_status: h.last_status.load(Relaxed),
        last_used: Some(h.last_used.load(Relaxed)).filter(|t| *t > 0),
        expires_at: c.expires_at,
    }
}

impl Pool {
    /// Every credential (of `provider`, when given), in provider then priority order.
    pub fn status(&self, provider: Option<&str>) -> Result<Vec<CredentialStatus>, PoolError> {
        let now = self.now();
        let pools = match provider {
            Some(name) => vec![self.provider_named(name)?.clone()],
            None => self.providers(),
        };
        Ok(pools.iter().flat_map(|p| self.statuses(p, now)).collect())
    }

    /// The state of each of `p`'s credentials at `now`, `needs_login` included.
    fn statuses(&self, p: &ProviderPool, now: u64) -> Vec<CredentialStatus> {
        p.credentials()
            .iter()
            .map(|c| {
                let mut s = status_of(p, c, now);
                if self.needs_login(&c.id) {
                    s.status = "needs_login";
                }
                s
            })
            .collect()
    }

    /// Every backend's credentials counted by state, in backend name order.
    pub fn summary(&self) -> Vec<PoolSummary> {
        let now = self.now();
        self.providers()
            .iter()
            .map(|p| {
                let mut sum = PoolSummary {
                    provider: p.name.to_string(),
                    ..PoolSummary::default()
                };
                for s in self.statuses(p, now) {
                    sum.count(&s);
                }
                sum
            })
            .collect()
    }

    fn provider_named(&self, name: &str) -> Result<&Arc<ProviderPool>, PoolError> {
        self.resolve_provider(name)
            .and_then(|n| self.providers.get(n.as_str()))
            .ok_or_else(|| PoolError::UnknownProvider(name.to_owned()))
    }

    /// The credential `id` of `provider`; without an id, the provider's only credential.
    fn target(&self, provider: &str, id: Option<&str>) -> Result<Arc<Credential>, PoolError> {
        let p = self.provider_named(provider)?;
        let list = p.credentials();
        match id {
            Some(id) => list
                .iter()
                .find(|c| &*c.id == id)
                .cloned()
                .ok_or_else(|| PoolError::NotFound(id.to_owned())),
            None => match &list[..] {
                [one] => Ok(one.clone()),
                [] => Err(PoolError::NotFound(format!("for provider `{}`", p.name))),
                _ => Err(PoolError::Invalid(format!(
                    "provider `{}` has {} credentials: name one with ?id=",
                    p.name,
                    list.len()
                ))),
            },
        }
    }

    /// Adds a credential to the store; returns its id.
    pub async fn add(&self, new: NewCredential) -> Result<String, PoolError> {
        if self.store.is_none() {
            return Err(PoolError::NoStore);
        }
        let provider = self
            .resolve_provider(new.provider.trim())
            .ok_or_else(|| PoolError::UnknownProvider(new.provider.clone()))?;
        if self.multi_user && new.kind == CredentialKind::Oauth {
            return Err(PoolError::OauthInMultiUser);
        }
        let token = check_token(new.token.expose())?;
        check_label(new.label.as_deref())?;
        let id = new_store_id()?;
        let now = self.now() as i64;
        let secret = self.seal_value(&id, token, &context(&id))?;
        self.insert_new(StoredCredential {
            id: id.clone(),
            provider,
            kind: new.kind.as_str().to_owned(),
            secret,
            priority: new.priority.unwrap_or_else(super::default_priority),
            quota_limit: new.quota_limit.map(|l| l.min(i64::MAX as u64) as i64),
            label: new.label,
            oauth: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
        })
        .await
    }

    /// Stores a new credential and reloads the pool; returns its id.
    pub(super) async fn insert_new(&self, row: StoredCredential) -> Result<String, PoolError> {
        let store = self.store.as_ref().ok_or(PoolError::NoStore)?;
        store.insert_credential(&row).await?;
        self.reload_store().await?;
        Ok(row.id)
    }

    /// The text of a stored value of row `id`, sealed under `ctx` (or plain).
    pub(super) fn open_value(
        &self,
        id: &str,
        stored: &str,
        ctx: &str,
    ) -> Result<String, PoolError> {
        let seal_err = |source| PoolError::Seal {
            id: id.to_owned(),
            source,
        };
        let plain = seal::open(self.sealer(), stored, ctx).map_err(seal_err)?;
        String::from_utf8(plain).map_err(|_| seal_err(SealError::Corrupt))
    }

    /// `plain` sealed for row `id` under `ctx` (plain when sealing is off).
    pub(super) fn seal_value(&self, id: &str, plain: &str, ctx: &str) -> Result<String, PoolError> {
        seal::seal_if_enabled(self.sealer(), plain, ctx).map_err(|source| PoolError::Seal {
            id: id.to_owned(),
            source,
        })
    }

    /// Changes a stored credential (or, for the secret and priority of a file credential,
    /// refuses: edit the file).
    pub async fn update(
        &self,
        provider: &str,
        id: Option<&str>,
        update: Update,
    ) -> Result<String, PoolError> {
        let target = self.target(provider, id)?;
        let store = self.store.as_ref().ok_or(PoolError::NoStore)?;
        if target.source != Source::Store {
            return Err(read_only(&target));
        }
        check_label(update.label.as_deref())?;
        let row = store
            .list_credentials()
            .await?
            .into_iter()
            .find(|r| *r.id == *target.id)
            .ok_or_else(|| PoolError::NotFound(target.id.to_string()))?;
        let secret = match &update.token {
            Some(t) => self.seal_value(&row.id, check_token(t.expose())?, &context(&row.id))?,
            None => row.secret.clone(),
        };
        let expected = row.secret.clone();
        let updated = StoredCredential {
            secret,
            priority: update.priority.unwrap_or(row.priority),
            label: update.label.or(row.label.clone()),
            updated_at: self.now() as i64,
            ..row
        };
        if !store.update_credential(&updated, &expected).await? {
            return Err(PoolError::Conflict(format!(
                "credential `{}` changed meanwhile (a token refresh?); read it and try again",
                updated.id
            )));
        }
        self.reload_store().await?;
        Ok(updated.id)
    }

    /// Removes a credential: a stored one from the store, a file one by deleting its file.
    pub async fn delete(&self, provider: &str, id: Option<&str>) -> Result<String, PoolError> {
        let target = self.target(provider, id)?;
        match &target.source {
            Source::Store => {
                let store = self.store.as_ref().ok_or(PoolError::NoStore)?;
                if !store.delete_credential(&target.id).await? {
                    return Err(PoolError::NotFound(target.id.to_string()));
                }
                self.reload_store().await?;
            }
            Source::File(path) => {
                std::fs::remove_file(path).map_err(|e| {
                    PoolError::Invalid(format!("cannot delete {}: {e}", path.display()))
                })?;
                self.rescan_files();
            }
            Source::Config => return Err(read_only(&target)),
        }
        Ok(target.id.to_string())
    }

    /// Sets (or clears) the quota limit of a credential — or, without an id, of every
    /// credential of the provider — and optionally starts the period's usage from zero.
    pub async fn set_quota(
        &self,
        provider: &str,
        id: Option<&str>,
        limit: Option<u64>,
        reset_usage: bool,
    ) -> Result<(), PoolError> {
        let store = self.store.as_ref().ok_or(PoolError::NoStore)?;
        let p = self.provider_named(provider)?.clone();
        let targets: Vec<Arc<Credential>> = match id {
            Some(_) => vec![self.target(provider, id)?],
            None => p.credentials().to_vec(),
        };
        if targets.is_empty() {
            return Err(PoolError::NotFound(format!("for provider `{}`", p.name)));
        }
        let now = self.now();
        let per = p.period(now);
        for c in &targets {
            store
                .set_quota_limit(&c.id, limit.map(|l| l.min(i64::MAX as u64) as i64))
                .await?;
            if reset_usage {
                store
                    .reset_usage(&c.id, &period::key(p.schedule, per))
                    .await?;
                c.health.reset_used(per);
            }
        }
        self.reload_store().await
    }

    /// Ends the cooldown of a credential (or every credential of the provider).
    pub fn clear_cooldown(&self, provider: &str, id: Option<&str>) -> Result<usize, PoolError> {
        let p = self.provider_named(provider)?;
        let mut n = 0;
        for c in p
            .credentials()
            .iter()
            .filter(|c| id.is_none_or(|i| *c.id == *i))
        {
            c.health.clear_cooldown();
            n += 1;
        }
        if n == 0 {
            return Err(PoolError::NotFound(id.unwrap_or_default().to_owned()));
        }
        Ok(n)
    }

    /// What an operator's "refresh" does (the management API's `…/refresh`, the admin
    /// console's button): re-reads the credential files and the store, renews the provider's
    /// OAuth credentials now whatever their expiry, and ends the cooldown of credential `id`
    /// (or of every credential of the provider). Returns the renewals and how many cooldowns
    /// ended.
    pub async fn refresh_now(
        &self,
        provider: &str,
        id: Option<&str>,
    ) -> Result<(super::RefreshStatus, usize), PoolError> {
        self.rescan_files();
        self.reload_store().await?;
        let renewed = match self.refresh_due(Some(provider)).await {
            Ok(s) => s,
            Err(PoolError::NoStore) => Default::default(),
            Err(e) => return Err(e),
        };
        let ended = self.clear_cooldown(provider, id)?;
        Ok((renewed, ended))
    }

    /// Re-seals every stored credential (its secret and its OAuth refresh state) under the
    /// current key; returns how many rows changed. Refused when sealing is off (it would write
    /// secrets back in the clear).
    pub async fn reseal_store(&self) -> Result<usize, PoolError> {
        let store = self.store.as_ref().ok_or(PoolError::NoStore)?;
        if !self.sealer().is_some_and(Sealer::seals) {
            return Err(PoolError::Invalid(
                "rekey needs auth.encryption.key with sealing on (auth.encryption.enabled is not false)"
                    .to_owned(),
            ));
        }
        let mut n = 0;
        for row in store.list_credentials().await? {
            let oauth_stale = row
                .oauth
                .as_deref()
                .is_some_and(|o| seal::needs_reseal(self.sealer(), o));
            if !seal::needs_reseal(self.sealer(), &row.secret) && !oauth_stale {
                continue;
            }
            let id = row.id.clone();
            let reseal = |value: &str, ctx: &str| -> Result<String, PoolError> {
                self.seal_value(&id, &self.open_value(&id, value, ctx)?, ctx)
            };
            let secret = reseal(&row.secret, &context(&row.id))?;
            let oauth = match &row.oauth {
                Some(o) => Some(reseal(o, &oauth_context(&row.id))?),
                None => None,
            };
            let expected = row.secret.clone();
            if !store
                .update_credential(
                    &StoredCredential {
                        secret,
                        oauth,
                        ..row
                    },
                    &expected,
                )
                .await?
            {
                return Err(PoolError::Conflict(format!(
                    "credential `{id}` changed while it was re-sealed (a refresh); run rekey again"
                )));
            }
            n += 1;
        }
        Ok(n)
    }
}

fn read_only(c: &Credential) -> PoolError {
    match &c.source {
        Source::Config => PoolError::ReadOnly(format!(
            "credential `{}` is defined in the configuration file; change it there",
            c.id
        )),
        Source::File(path) => PoolError::ReadOnly(format!(
            "credential `{}` comes from the file {}; edit the file (it is reloaded within a second)",
            c.id,
            path.display()
        )),
        Source::Store => PoolError::ReadOnly(format!("credential `{}` cannot be changed", c.id)),
    }
}

/// The trimmed `token` of an add or an update, if it can be a credential: non-empty, at most
/// 16 KiB, no control characters (a CR or LF could not be sent in a header, and the pool would
/// skip the credential, leaving its row out of reach of the API).
pub(super) fn check_token(token: &str) -> Result<&str, PoolError> {
    let token = token.trim();
    if token.is_empty() || token.len() > 16 * 1024 || token.chars().any(char::is_control) {
        return Err(PoolError::Invalid(
            "`token` must be non-empty text of at most 16 KiB without control characters"
                .to_owned(),
        ));
    }
    Ok(token)
}

fn check_label(label: Option<&str>) -> Result<(), PoolError> {
    match label {
        Some(l) if l.chars().count() > 100 || l.chars().any(char::is_control) => Err(
            PoolError::Invalid("`label` must have at most 100 characters".to_owned()),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(status: &'static str, cooldown_until: Option<u64>) -> CredentialStatus {
        CredentialStatus {
            id: "c".into(),
            provider: "openai".into(),
            kind: "api_key",
            source: "config",
            file: None,
            hint: "…".into(),
            label: None,
            priority: 100,
            status,
            cooldown_until,
            quota: QuotaStatus {
                limit: None,
                used: 0,
                remaining: None,
                reset_schedule: "never",
                period: String::new(),
                resets_at: None,
            },
            requests: 0,
            failures: 0,
            last_status: 0,
            last_used: None,
            expires_at: None,
        }
    }

    #[test]
    fn the_summary_counts_each_state_once_and_keeps_the_soonest_cooldown() {
        let mut sum = PoolSummary::default();
        for (status, until) in [
            ("active", None),
            ("rate_limited", Some(9_000)),
            ("rejected", Some(4_000)),
            ("cooling_down", Some(7_000)),
            ("needs_login", None),
            ("quota_exceeded", Some(5_000)),
            ("exhausted", None),
            ("expired", None),
        ] {
            sum.count(&credential(status, until));
        }
        let want = PoolSummary {
            provider: String::new(),
            total: 8,
            usable: 1,
            cooling_down: 3,
            needs_login: 1,
            quota_exhausted: 2,
            expired: 1,
            next_cooldown_end: Some(4_000),
        };
        assert_eq!(sum, want);
        assert!(!sum.stuck());
        let mut none_usable = PoolSummary::default();
        none_usable.count(&credential("needs_login", None));
        assert!(none_usable.stuck());
        assert!(!PoolSummary::default().stuck(), "no credential: keyless");
    }
}
