//! Connector logins imported from their CLIs' files (issue 23): `portcullis auths import`, and
//! the job `pool.import`, which reads each connector's file at start and again whenever its
//! text changes (the CLI renews its own tokens and rewrites it). A file holding an expired token
//! is renewed at once through the backend's login. An import stores the login as
//! an OAuth credential — sealed, renewed by the refresh worker like a device login's — and an
//! import of the same account replaces the stored tokens instead of adding a credential. A
//! Gemini CLI login becomes one credential per Code Assist project that pays
//! ([`Tier`]): the free tier's, the plan's, or both — the free one first.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::connectors::{self, ConnectorSettings, Tier};
use super::device::{DeviceLogin, Tokens};
use super::manage::new_store_id;
use super::{Pool, PoolError, lock};
use crate::jobs::Job;
use crate::protocol::BackendKind;
use crate::store::StoredCredential;

/// How often the CLIs' files are looked at.
const IMPORT_EVERY: Duration = Duration::from_secs(5);
/// How long a file whose import failed waits before it is tried again (unless it changes).
const RETRY_FAILED_MS: u64 = 60_000;
/// Priority of a Gemini login's paid project under `tier: auto` (the free one has the default).
const PLAN_PRIORITY: i64 = 200;

/// What a connector's file held when last imported (BLAKE3 of its text), and when a failed
/// import of that text is due again (`None`: it succeeded).
pub(super) type Mark = ([u8; 32], Option<u64>);

impl Pool {
    /// The connector backends.
    pub fn connectors(&self) -> &[ConnectorSettings] {
        &self.connectors
    }

    /// Imports `text`, the CLI's credentials file at `path`, into connector backend `backend`;
    /// returns the ids of the credentials it stored or updated.
    pub async fn import_login(
        &self,
        backend: &str,
        file: &Path,
        text: &str,
    ) -> Result<Vec<String>, PoolError> {
        let path = &file.display().to_string();
        if self.multi_user {
            return Err(PoolError::OauthInMultiUser);
        }
        let connector = self
            .connectors
            .iter()
            .find(|c| c.backend == backend)
            .ok_or_else(|| {
                PoolError::Invalid(format!(
                    "`{backend}` is not a connector backend (type gemini_cli, codex, qwen_code or kiro)"
                ))
            })?;
        let mut tokens = connectors::import(connector.kind, path, text, backend)
            .map_err(|e| PoolError::Invalid(e.to_string()))?;
        // A Kiro Identity Center login renews with the client registered beside it.
        if let Some(client_file) = connectors::kiro_client_file(file, text) {
            let client = tokio::fs::read_to_string(&client_file)
                .await
                .ok()
                .and_then(|t| connectors::kiro_client(&t))
                .ok_or_else(|| {
                    PoolError::Invalid(format!(
                        "{path}: its client registration {} is missing or unreadable (log in with the Kiro IDE again)",
                        client_file.display()
                    ))
                })?;
            tokens.state.client_id = Some(client.0);
            tokens.state.client_secret = Some(client.1);
        }
        // A CLI renews its token only while it runs, so its file often holds an expired one:
        // renewed now, so the login serves at once (and Code Assist can be asked its project).
        let now = self.now();
        let mut renewed_at = None;
        if tokens.expires_at.is_some_and(|e| e <= now)
            && tokens.state.refresh_token.is_some()
            && let Some(login) = self.logins.get(backend)
        {
            match login.refresh(&tokens.state, now).await {
                Ok(renewed) => {
                    tokens = renewed;
                    renewed_at = Some(now);
                }
                // Without a live token there is no project to find.
                Err(e) if connector.kind == BackendKind::GeminiCli => {
                    return Err(super::logins::login_error(e));
                }
                // Stored as it is: the refresh worker tries again, and says `needs_login`.
                Err(e) => {
                    tracing::warn!(backend, error = %e, "the imported login has expired and could not be renewed");
                }
            }
        }
        self.store_login(connector, tokens, renewed_at, Some(path))
            .await
    }

    /// A browser login's approval exchanged at connector login `login`'s token endpoint, and
    /// stored as its backend's credential(s).
    pub async fn finish_browser_login(
        &self,
        login: &DeviceLogin,
        approval: &super::browser::Approval,
    ) -> Result<Vec<String>, PoolError> {
        if self.multi_user {
            return Err(PoolError::OauthInMultiUser);
        }
        let connector = self
            .connectors
            .iter()
            .find(|c| c.backend == login.backend)
            .ok_or_else(|| {
                PoolError::Invalid(format!("`{}` is not a connector backend", login.backend))
            })?;
        let tokens = login
            .exchange_code(approval, self.now())
            .await
            .map_err(super::logins::login_error)?;
        self.store_login(connector, tokens, None, None).await
    }

    /// Stores a connector login: one credential, or (Gemini CLI) one per paying project. Its
    /// label names the account (its e-mail, else the file it came from): importing the same
    /// login again updates that credential; another account adds one.
    async fn store_login(
        &self,
        connector: &ConnectorSettings,
        tokens: Tokens,
        renewed_at: Option<u64>,
        file: Option<&str>,
    ) -> Result<Vec<String>, PoolError> {
        let backend = connector.backend.as_str();
        let who = tokens
            .state
            .account
            .email
            .as_deref()
            .or(file)
            .map(|who| format!(" ({who})"))
            .unwrap_or_default();
        let label = format!("{} login{who}", connectors::cli_name(connector.kind));
        let mut ids = Vec::new();
        if connector.kind != BackendKind::GeminiCli {
            ids.push(
                self.upsert(
                    backend,
                    &label,
                    super::default_priority(),
                    tokens,
                    renewed_at,
                )
                .await?,
            );
            return Ok(ids);
        }
        let paid = connector.project.as_deref();
        let wanted: Vec<(Option<&str>, i64)> = match (connector.tier, paid) {
            (Tier::Free, _) => vec![(None, super::default_priority())],
            (Tier::Plan, Some(p)) => vec![(Some(p), super::default_priority())],
            (Tier::Plan, None) => {
                return Err(PoolError::Invalid(format!(
                    "backend `{backend}` (tier plan) needs `project`: the Google Cloud project of your Code Assist plan"
                )));
            }
            (Tier::Auto, Some(p)) => {
                vec![(None, super::default_priority()), (Some(p), PLAN_PRIORITY)]
            }
            (Tier::Auto, None) => vec![(None, super::default_priority())],
        };
        for (project, priority) in wanted {
            let found = connectors::code_assist_project(
                &self.http,
                &connector.api_base,
                &tokens.access,
                project,
            )
            .await
            .map_err(|e| PoolError::Login(format!("backend `{backend}`: Code Assist: {e}")))?;
            let mut t = Tokens {
                access: tokens.access.clone(),
                expires_at: tokens.expires_at,
                state: tokens.state.clone(),
            };
            t.state.account.project = Some(found.clone());
            let which = match project {
                None => " (free tier)".to_owned(),
                Some(_) => format!(" (project {found})"),
            };
            ids.push(
                self.upsert(backend, &format!("{label}{which}"), priority, t, renewed_at)
                    .await?,
            );
        }
        Ok(ids)
    }

    /// Stores `tokens` as backend `provider`'s credential labelled `label`: the one already
    /// stored under that label is updated (the same login imported again), else one is added.
    /// `renewed_at`: the import renewed the file's expired token then.
    async fn upsert(
        &self,
        provider: &str,
        label: &str,
        priority: i64,
        tokens: Tokens,
        renewed_at: Option<u64>,
    ) -> Result<String, PoolError> {
        let store = self.store.as_ref().ok_or(PoolError::NoStore)?;
        let now = self.now() as i64;
        let existing = store.list_credentials().await?.into_iter().find(|r| {
            r.provider == provider && r.kind == "oauth" && r.label.as_deref() == Some(label)
        });
        let id = match existing {
            Some(row) => {
                let (secret, oauth) = self.seal_tokens(&row.id, &tokens)?;
                let updated = StoredCredential {
                    secret,
                    oauth: Some(oauth),
                    expires_at: tokens.expires_at.map(|e| e as i64),
                    updated_at: now,
                    ..row.clone()
                };
                if !store.update_credential(&updated, &row.secret).await? {
                    return Err(PoolError::Conflict(format!(
                        "credential `{}` changed during the import; import again",
                        row.id
                    )));
                }
                self.reload_store().await?;
                row.id
            }
            None => {
                let id = new_store_id()?;
                let (secret, oauth) = self.seal_tokens(&id, &tokens)?;
                self.insert_new(StoredCredential {
                    id,
                    provider: provider.to_owned(),
                    kind: "oauth".to_owned(),
                    secret,
                    priority,
                    quota_limit: None,
                    label: Some(label.to_owned()),
                    oauth: Some(oauth),
                    expires_at: tokens.expires_at.map(|e| e as i64),
                    created_at: now,
                    updated_at: now,
                })
                .await?
            }
        };
        // A fresh login: whatever the refresh worker said of the old tokens no longer holds.
        let fresh = super::CredentialRefresh {
            last_refresh: renewed_at,
            ..super::CredentialRefresh::default()
        };
        lock(&self.refresh_status)
            .credentials
            .insert(id.clone(), fresh);
        Ok(id)
    }

    /// Imports every connector's CLI file whose text changed since its last import (a missing
    /// file is skipped: the CLI has no login yet).
    pub async fn import_changed_files(&self) {
        for c in &self.connectors {
            let Some(path) = &c.file else { continue };
            let text = match tokio::fs::read_to_string(path).await {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(backend = %c.backend, file = %path.display(), error = %e, "cannot read the CLI's login file");
                    continue;
                }
            };
            let digest = *blake3::hash(text.as_bytes()).as_bytes();
            let now = self.now();
            let seen = lock(&self.imported).get(&c.backend).copied();
            // The same text: done, or failed and not due again yet.
            if seen.is_some_and(|(d, retry_at)| d == digest && retry_at.is_none_or(|r| now < r)) {
                continue;
            }
            match self.import_login(&c.backend, path, &text).await {
                Ok(ids) => {
                    tracing::info!(backend = %c.backend, file = %path.display(), credentials = %ids.join(","), "imported the CLI's login");
                    lock(&self.imported).insert(c.backend.clone(), (digest, None));
                }
                Err(e) => {
                    let retry_at = now.saturating_add(RETRY_FAILED_MS);
                    lock(&self.imported).insert(c.backend.clone(), (digest, Some(retry_at)));
                    tracing::warn!(backend = %c.backend, file = %path.display(), error = %e, "could not import the CLI's login; trying again when the file changes or in a minute");
                }
            }
        }
    }

    /// The import job (`pool.import`, every 5 s), when a connector has a file to import and a
    /// store is open.
    pub fn import_job(self: &Arc<Self>) -> Option<Job> {
        if self.store.is_none()
            || self.multi_user
            || self.connectors.iter().all(|c| c.file.is_none())
        {
            return None;
        }
        let pool = self.clone();
        Some(Job::new("pool.import", IMPORT_EVERY, move |_| {
            let pool = pool.clone();
            async move { pool.import_changed_files().await }
        }))
    }
}
