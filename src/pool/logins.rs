//! Device-flow logins in progress, and the refresh worker.
//!
//! A login ([`Pool::start_login`]) asks the provider for a user code, then polls its token
//! endpoint from a task of its own until the user has approved, the code expired or the
//! provider refused; the result is a stored OAuth credential (secret and refresh state sealed).
//! That task is not a scheduled job: the request that starts a login starts it, it ends with the
//! login, and [`Pool::flow_ended`] wakes whoever waits for the end. Logins are kept in memory
//! for an hour so the page (or CLI) that started one can follow it.
//!
//! The refresh worker (the `pool.refresh` job: [`Pool::refresh_due`] every
//! `auth.refresh.check_interval`) renews stored OAuth credentials expiring within
//! `refresh_lead_time`. A failure backs off (1 min doubling, at most the check interval) and is never silent: it is logged, counted in the status, and a
//! credential whose token has run out without a successful refresh is marked `needs_login`,
//! logged as an error and reported to the operator's desktop once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::device::{DeviceLogin, LoginError, Poll, RefreshState, Started, Tokens};
use super::manage::{context, new_store_id, oauth_context};
use super::{Pool, PoolError, lock};
use crate::jobs::Job;
use crate::store::StoredCredential;

/// Where a login stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowState {
    /// Waiting for the user.
    Pending,
    /// Done: the new credential's id.
    Done(String),
    /// Failed: why.
    Failed(String),
}

/// A login in progress (or recently finished), as pages and the CLI show it.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Login name (`copilot`).
    pub login: String,
    /// Code the user enters.
    pub user_code: String,
    /// Where.
    pub verification_uri: String,
    /// With the code filled in.
    pub verification_uri_complete: Option<String>,
    /// When the code expires (ms).
    pub expires_at: u64,
    /// Outcome so far.
    pub state: FlowState,
    started_at: u64,
}

/// The refresh worker's record of one credential.
#[derive(Debug, Clone, Default)]
pub struct CredentialRefresh {
    /// Last successful refresh (ms).
    pub last_refresh: Option<u64>,
    /// Last failure, if the latest attempt failed.
    pub last_error: Option<String>,
    /// Consecutive failures.
    pub failures: u32,
    /// Not before (ms).
    pub next_attempt: u64,
    /// The token ran out and could not be renewed: someone must log in again.
    pub needs_login: bool,
}

/// The refresh worker's status (`GET /v0/management/auths/refresh/status`).
#[derive(Debug, Clone, Default)]
pub struct RefreshStatus {
    /// Worker on.
    pub enabled: bool,
    /// Last check (ms).
    pub last_check: Option<u64>,
    /// Next scheduled check (ms).
    pub next_check: Option<u64>,
    /// OAuth credentials looked at in the last check.
    pub credentials_checked: usize,
    /// Renewed in the last check.
    pub refreshed: usize,
    /// Failed in the last check.
    pub failed: usize,
    /// Per credential id.
    pub credentials: HashMap<String, CredentialRefresh>,
}

/// How long a finished login stays visible.
const FLOW_KEEP_MS: u64 = 3_600_000;

impl Pool {
    /// The configured device-flow login `name`.
    pub fn login(&self, name: &str) -> Option<&Arc<DeviceLogin>> {
        self.logins.get(name)
    }

    /// Names of the configured logins.
    pub fn login_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.logins.keys().cloned().collect();
        v.sort();
        v
    }

    /// Starts login `name`; a background task follows it. Returns the flow id.
    pub async fn start_login(self: &Arc<Self>, name: &str) -> Result<(String, Flow), PoolError> {
        if self.multi_user {
            return Err(PoolError::OauthInMultiUser);
        }
        let login = self
            .logins
            .get(name)
            .cloned()
            .ok_or_else(|| PoolError::NotFound(format!("device login `{name}`")))?;
        if self.store.is_none() {
            return Err(PoolError::NoStore);
        }
        let started = login.start().await.map_err(login_error)?;
        let now = self.now();
        let flow = Flow {
            login: name.to_owned(),
            user_code: started.user_code.clone(),
            verification_uri: started.verification_uri.clone(),
            verification_uri_complete: started.verification_uri_complete.clone(),
            expires_at: now.saturating_add(started.expires_in.saturating_mul(1000)),
            state: FlowState::Pending,
            started_at: now,
        };
        let id = crate::store::hex(
            &crate::secret::random_bytes::<12>()
                .map_err(|e| PoolError::Invalid(format!("no randomness: {e}")))?,
        );
        {
            let mut flows = lock(&self.flows);
            flows.retain(|_, f| f.started_at + FLOW_KEEP_MS > now);
            flows.insert(id.clone(), flow.clone());
        }
        tracing::info!(login = name, flow = %id, verification_uri = %flow.verification_uri, "device login started");
        let pool = self.clone();
        let flow_id = id.clone();
        tokio::spawn(async move {
            let state = match pool.follow(&login, &started).await {
                Ok(cred) => {
                    tracing::info!(login = %login.name, credential = %cred, "device login finished: credential added");
                    FlowState::Done(cred)
                }
                Err(e) => {
                    tracing::warn!(login = %login.name, error = %e, "device login failed");
                    FlowState::Failed(e.to_string())
                }
            };
            if let Some(f) = lock(&pool.flows).get_mut(&flow_id) {
                f.state = state;
            }
            pool.flow_ended.notify_waiters();
        });
        Ok((id, flow))
    }

    /// A login's current state.
    pub fn flow(&self, id: &str) -> Option<Flow> {
        lock(&self.flows).get(id).cloned()
    }

    /// Waits until login `id` is no longer pending (done or failed); `None` for an unknown id.
    pub async fn flow_ended(&self, id: &str) -> Option<Flow> {
        loop {
            let ended = self.flow_ended.notified();
            let mut ended = std::pin::pin!(ended);
            // Registered before the state is read, so an end in between is not missed.
            ended.as_mut().enable();
            let flow = self.flow(id)?;
            if flow.state != FlowState::Pending {
                return Some(flow);
            }
            ended.await;
        }
    }

    /// Polls until the login ends; stores the credential. (Also the CLI's loop.)
    pub async fn follow(
        &self,
        login: &DeviceLogin,
        started: &Started,
    ) -> Result<String, PoolError> {
        let deadline = self
            .now()
            .saturating_add(started.expires_in.saturating_mul(1000));
        let mut slowed = 0;
        loop {
            tokio::time::sleep(super::device::poll_interval(started, slowed)).await;
            if self.now() >= deadline {
                return Err(PoolError::Invalid(
                    "the code expired before the login was approved; start again".to_owned(),
                ));
            }
            match login.poll(started, self.now()).await {
                Ok(Poll::Pending) => {}
                Ok(Poll::SlowDown) => slowed += 5,
                Ok(Poll::Done(tokens)) => return self.add_oauth(login, *tokens).await,
                Err(LoginError::Server { message, .. }) => {
                    // A transient failure of the provider: keep polling until the deadline.
                    tracing::warn!(login = %login.name, %message, "device login: polling failed; retrying");
                }
                Err(e) => return Err(login_error(e)),
            }
        }
    }

    /// Stores a new OAuth credential from a finished login.
    pub async fn add_oauth(
        &self,
        login: &DeviceLogin,
        tokens: Tokens,
    ) -> Result<String, PoolError> {
        if self.multi_user {
            return Err(PoolError::OauthInMultiUser);
        }
        let provider = self
            .resolve_provider(&login.backend)
            .ok_or_else(|| PoolError::UnknownProvider(login.backend.clone()))?;
        let id = new_store_id()?;
        let now = self.now() as i64;
        let (secret, oauth) = self.seal_tokens(&id, &tokens)?;
        self.insert_new(StoredCredential {
            id,
            provider,
            kind: "oauth".to_owned(),
            secret,
            priority: super::default_priority(),
            quota_limit: None,
            label: Some(format!("{} login", login.name)),
            oauth: Some(oauth),
            expires_at: tokens.expires_at.map(|e| e as i64),
            created_at: now,
            updated_at: now,
        })
        .await
    }

    pub(super) fn seal_tokens(
        &self,
        id: &str,
        tokens: &Tokens,
    ) -> Result<(String, String), PoolError> {
        // A provider's token is checked like one an operator adds: one the pool could not
        // send in a header would be stored out of reach.
        let access = super::manage::check_token(tokens.access.expose()).map_err(|_| {
            PoolError::Invalid(
                "the provider's access token is unusable (empty, over 16 KiB or with control characters)"
                    .to_owned(),
            )
        })?;
        let secret = self.seal_value(id, access, &context(id))?;
        let state = serde_json::to_string(&tokens.state)
            .map_err(|e| PoolError::Invalid(format!("refresh state: {e}")))?;
        let oauth = self.seal_value(id, &state, &oauth_context(id))?;
        Ok((secret, oauth))
    }

    /// Renews stored OAuth credentials that expire within the lead time (or, with `force`,
    /// every OAuth credential of that provider now). Returns the worker's status afterwards.
    pub async fn refresh_due(&self, force: Option<&str>) -> Result<RefreshStatus, PoolError> {
        let store = self.store.as_ref().ok_or(PoolError::NoStore)?;
        let now = self.now();
        let lead = self.refresh.lead_time.as_millis() as u64;
        let interval = self.refresh.check_interval.as_millis() as u64;
        let force = force.and_then(|p| self.resolve_provider(p));
        let (mut checked, mut refreshed, mut failed) = (0, 0, 0);
        let mut changed = false;
        for row in store.list_credentials().await? {
            if row.kind != "oauth" {
                continue;
            }
            if force.as_ref().is_some_and(|p| *p != row.provider) {
                continue;
            }
            checked += 1;
            let expires = row.expires_at.map(|e| e.max(0) as u64);
            let record = lock(&self.refresh_status)
                .credentials
                .get(&row.id)
                .cloned()
                .unwrap_or_default();
            let due = force.is_some()
                || (expires.is_some_and(|e| e <= now + lead) && record.next_attempt <= now);
            if !due {
                continue;
            }
            match self.refresh_one(&row, now).await {
                Ok(updated) => {
                    changed = true;
                    if !store.update_credential(&updated, &row.secret).await? {
                        // Another instance (or an operator) changed it meanwhile: theirs stands.
                        tracing::info!(credential = %row.id, "OAuth credential changed during its refresh; keeping the newer one");
                        continue;
                    }
                    refreshed += 1;
                    tracing::info!(credential = %row.id, provider = %row.provider, "OAuth credential refreshed");
                    lock(&self.refresh_status).credentials.insert(
                        row.id.clone(),
                        CredentialRefresh {
                            last_refresh: Some(now),
                            ..CredentialRefresh::default()
                        },
                    );
                }
                Err(e) => {
                    failed += 1;
                    let failures = record.failures + 1;
                    let backoff = (60_000u64 << (failures - 1).min(10)).min(interval.max(60_000));
                    let needs_login = expires.is_none_or(|x| x <= now);
                    if needs_login && !record.needs_login {
                        tracing::error!(credential = %row.id, provider = %row.provider, error = %e, "OAuth credential expired and cannot be refreshed: log in again");
                        if let Some(n) = &self.notifier {
                            n.notify(crate::notify::OperatorEvent::CredentialNeedsLogin {
                                credential: row.id.clone(),
                                provider: row.provider.clone(),
                            });
                        }
                    } else {
                        tracing::warn!(credential = %row.id, provider = %row.provider, error = %e, failures, "OAuth credential refresh failed; retrying later");
                    }
                    lock(&self.refresh_status).credentials.insert(
                        row.id.clone(),
                        CredentialRefresh {
                            last_refresh: record.last_refresh,
                            last_error: Some(e.to_string()),
                            failures,
                            next_attempt: now + backoff,
                            needs_login,
                        },
                    );
                }
            }
        }
        if changed {
            self.reload_store().await?;
        }
        let mut status = lock(&self.refresh_status);
        status.enabled = self.refresh.enabled;
        status.last_check = Some(now);
        status.next_check = self.refresh.enabled.then_some(now + interval);
        status.credentials_checked = checked;
        status.refreshed = refreshed;
        status.failed = failed;
        Ok(status.clone())
    }

    async fn refresh_one(
        &self,
        row: &StoredCredential,
        now: u64,
    ) -> Result<StoredCredential, PoolError> {
        let sealed = row
            .oauth
            .as_deref()
            .ok_or_else(|| PoolError::Invalid("no refresh state: log in again".to_owned()))?;
        let plain = self.open_value(&row.id, sealed, &oauth_context(&row.id))?;
        let state: RefreshState = serde_json::from_str(&plain)
            .map_err(|_| PoolError::Invalid("unreadable refresh state: log in again".to_owned()))?;
        let login = self.logins.get(&state.login).ok_or_else(|| {
            PoolError::Invalid(format!(
                "device login `{}` is no longer configured (auth.device_login)",
                state.login
            ))
        })?;
        let tokens = login.refresh(&state, now).await.map_err(login_error)?;
        let (secret, oauth) = self.seal_tokens(&row.id, &tokens)?;
        Ok(StoredCredential {
            secret,
            oauth: Some(oauth),
            expires_at: tokens.expires_at.map(|e| e as i64),
            updated_at: now as i64,
            ..row.clone()
        })
    }

    /// The refresh worker's status.
    pub fn refresh_status(&self) -> RefreshStatus {
        let mut s = lock(&self.refresh_status).clone();
        s.enabled = self.refresh.enabled;
        s
    }

    /// True when credential `id` must be logged in again.
    pub fn needs_login(&self, id: &str) -> bool {
        lock(&self.refresh_status)
            .credentials
            .get(id)
            .is_some_and(|c| c.needs_login)
    }

    /// The refresh worker as a job (`pool.refresh`, every `check_interval`, at least 1 s), when
    /// it is enabled and a store is open.
    pub fn refresh_job(self: &Arc<Self>) -> Option<Job> {
        if !self.refresh.enabled || self.store.is_none() {
            return None;
        }
        let every = self.refresh.check_interval.max(Duration::from_secs(1));
        let pool = self.clone();
        Some(Job::new("pool.refresh", every, move |_| {
            let pool = pool.clone();
            async move {
                if let Err(e) = pool.refresh_due(None).await {
                    tracing::warn!(error = %e, "the refresh worker could not check credentials");
                }
            }
        }))
    }
}

pub(super) fn login_error(e: LoginError) -> PoolError {
    match e {
        LoginError::Config { .. } => PoolError::Invalid(e.to_string()),
        LoginError::Server { .. } | LoginError::Refused { .. } => PoolError::Login(e.to_string()),
    }
}
