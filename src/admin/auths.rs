//! `portcullis auths …`: the credential pool from the command line — list (masked), add to the
//! store, remove, and re-seal every secret at rest after an encryption key rotation.

use std::fmt::Write as _;
use std::io::Read;
use std::sync::Arc;

use serde_json::json;

use super::{AdminError, open_store};
use crate::cli::AuthsCommand;
use crate::clock::{Clock, ManualClock, SharedClock, iso8601};
use crate::config::Config;
use crate::pool::{CredentialKind, NewCredential, Pool, PoolError};
use crate::secret::Secret;
use crate::store::{CredentialStore, Store};
use crate::upstream::Backends;

impl From<PoolError> for AdminError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Store(s) => AdminError::Store(s),
            other => AdminError::Refused(other.to_string()),
        }
    }
}

async fn open_pool(
    config: &Config,
    store: Arc<dyn CredentialStore>,
    clock: SharedClock,
) -> Result<Pool, AdminError> {
    let backends =
        Backends::from_config(&config.backends).map_err(|e| AdminError::Refused(e.to_string()))?;
    let pool = Pool::new(config.pool_settings(), &backends, Some(store), clock)?;
    pool.reload_store().await?;
    Ok(pool)
}

/// `portcullis auths …`; `stdin` supplies the secret of `add`.
pub async fn auths(
    config: &Config,
    clock: &dyn Clock,
    action: &AuthsCommand,
    stdin: &mut dyn Read,
) -> Result<String, AdminError> {
    // The command's one instant: a CLI run makes every decision at the same time.
    let shared: SharedClock = Arc::new(ManualClock::new(clock.now()));
    let store: Arc<dyn Store> = Arc::new(open_store(&config.storage).await?);
    match action {
        AuthsCommand::List { json } => {
            let pool = open_pool(config, store.clone(), shared).await?;
            pool.flush_usage(true).await;
            let list = pool.status(None)?;
            let mut out = String::new();
            if !json {
                let _ = writeln!(
                    out,
                    "{:<24} {:<12} {:<8} {:<7} {:<18} {:>8} {:>14} {:>14}",
                    "ID", "PROVIDER", "TYPE", "SOURCE", "TOKEN", "PRIORITY", "USED", "LIMIT"
                );
            }
            for c in &list {
                if *json {
                    let line = json!({
                        "id": c.id, "provider": c.provider, "type": c.kind, "source": c.source,
                        "file": c.file, "token_hint": c.hint, "label": c.label, "priority": c.priority,
                        "quota": {"limit": c.quota.limit, "used": c.quota.used, "period": c.quota.period},
                        "expires_at": c.expires_at.map(iso8601),
                    });
                    let _ = writeln!(out, "{line}");
                } else {
                    let _ = writeln!(
                        out,
                        "{:<24} {:<12} {:<8} {:<7} {:<18} {:>8} {:>14} {:>14}",
                        c.id,
                        c.provider,
                        c.kind,
                        c.source,
                        c.hint,
                        c.priority,
                        c.quota.used,
                        c.quota.limit.map_or("-".to_owned(), |l| l.to_string()),
                    );
                }
            }
            for (source, error) in pool.load_errors() {
                let _ = writeln!(out, "skipped {source}: {error}");
            }
            Ok(out)
        }
        AuthsCommand::Add {
            provider,
            token_env,
            kind,
            priority,
            quota,
            label,
        } => {
            let kind = CredentialKind::parse(kind).ok_or_else(|| {
                AdminError::Refused("--type must be `api_key` or `oauth`".to_owned())
            })?;
            let token = match token_env {
                Some(var) => std::env::var(var).map_err(|_| {
                    AdminError::Refused(format!(
                    "environment variable `{var}` is not set: export it, or pipe the secret on stdin without --token-env"
                ))
                })?,
                None => {
                    let mut s = String::new();
                    stdin
                        .take(16 * 1024 + 1)
                        .read_to_string(&mut s)
                        .map_err(|e| {
                            AdminError::Io(format!("cannot read the secret from stdin: {e}"))
                        })?;
                    s
                }
            };
            let pool = open_pool(config, store.clone(), shared).await?;
            let id = pool
                .add(NewCredential {
                    provider: provider.clone(),
                    kind,
                    token: Secret::new(token.trim().to_owned()),
                    priority: *priority,
                    quota_limit: *quota,
                    label: label.clone(),
                })
                .await?;
            let sealed = if pool.sealer().is_some_and(|s| s.seals()) {
                "sealed"
            } else {
                "NOT sealed: set auth.encryption.key to encrypt secrets at rest"
            };
            Ok(format!(
                "added credential {id} for {provider} ({sealed}); running gateways pick it up within a second\n"
            ))
        }
        AuthsCommand::Login { name } => {
            let pool = Arc::new(
                open_pool(config, store.clone(), Arc::new(crate::clock::SystemClock)).await?,
            );
            let login = pool.login(name).cloned().ok_or_else(|| {
                AdminError::Refused(format!(
                    "`{name}` is not a configured device login (auth.device_login); configured: {}",
                    pool.login_names().join(", ")
                ))
            })?;
            if !config.access_mode.mode.allows_personal_oauth() {
                return Err(PoolError::OauthInMultiUser.into());
            }
            if let Some(browser) = login.browser() {
                // Codex and the Gemini CLI log in in a browser, redirected to a loopback port.
                let waiting = browser
                    .start()
                    .await
                    .map_err(|e| AdminError::Refused(e.to_string()))?;
                eprintln!(
                    "\nTo add the {name} login, open this link in a browser on this machine and approve:\n\n    {}\n\nWaiting for the browser to come back (at most 10 minutes)...",
                    waiting.url
                );
                let approval = browser
                    .approval(waiting, std::time::Duration::from_secs(600))
                    .await
                    .map_err(|e| AdminError::Refused(e.to_string()))?;
                let ids = pool.finish_browser_login(&login, &approval).await?;
                return Ok(format!(
                    "added OAuth credential {} to backend {}; running gateways pick it up within a second\n",
                    ids.join(", "),
                    login.backend
                ));
            }
            let started = login
                .start()
                .await
                .map_err(|e| AdminError::Refused(e.to_string()))?;
            eprintln!(
                "\nTo add the {name} credential, open\n\n    {}\n\nand enter the code\n\n    {}\n\nWaiting for the approval (the code expires in {} s)...",
                started
                    .verification_uri_complete
                    .as_deref()
                    .unwrap_or(&started.verification_uri),
                started.user_code,
                started.expires_in
            );
            let id = pool.follow(&login, &started).await?;
            Ok(format!(
                "added OAuth credential {id} to backend {}; running gateways pick it up within a second\n",
                login.backend
            ))
        }
        AuthsCommand::Import { backend, file } => {
            if !config.access_mode.mode.allows_personal_oauth() {
                return Err(PoolError::OauthInMultiUser.into());
            }
            let pool =
                open_pool(config, store.clone(), Arc::new(crate::clock::SystemClock)).await?;
            let connector = pool
                .connectors()
                .iter()
                .find(|c| &c.backend == backend)
                .ok_or_else(|| {
                    let names: Vec<&str> =
                        pool.connectors().iter().map(|c| c.backend.as_str()).collect();
                    AdminError::Refused(format!(
                        "`{backend}` is not a connector backend (type gemini_cli, codex, qwen_code or kiro); configured connectors: {}",
                        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
                    ))
                })?;
            let path = file.clone().or_else(|| connector.file.clone()).ok_or_else(|| {
                AdminError::Refused(format!(
                    "backend `{backend}` has no credentials file (credentials_file is \"\"): name one with --file"
                ))
            })?;
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                AdminError::Refused(format!(
                    "cannot read {shown}: {e} (log in with the {} first)",
                    crate::pool::connectors::cli_name(connector.kind)
                ))
            })?;
            let ids = pool.import_login(backend, &path, &text).await?;
            Ok(format!(
                "imported {shown} into backend {backend} as {}; running gateways pick it up within a second\n",
                ids.join(", ")
            ))
        }
        AuthsCommand::Remove { id } => {
            let pool = open_pool(config, store.clone(), shared).await?;
            let provider = pool
                .status(None)?
                .into_iter()
                .find(|c| &c.id == id)
                .map(|c| c.provider)
                .ok_or_else(|| {
                    AdminError::Refused(format!(
                        "no credential `{id}` (`portcullis auths list` shows the ids)"
                    ))
                })?;
            let removed = pool.delete(&provider, Some(id)).await?;
            Ok(format!("removed credential {removed}\n"))
        }
        AuthsCommand::Rekey => {
            let pool = open_pool(config, store.clone(), shared).await?;
            let Some(sealer) = pool.sealer() else {
                return Err(AdminError::Refused(
                    "no auth.encryption.key is configured: there is nothing to seal with"
                        .to_owned(),
                ));
            };
            let key_id = sealer.key_id().to_owned();
            let credentials = pool.reseal_store().await?;
            let keys =
                crate::identity::token_server::keys::reseal_all(store.as_ref(), pool.sealer())
                    .await
                    .map_err(|e| AdminError::Refused(e.to_string()))?;
            let files = pool.reseal_files()?;
            let sso = crate::sso::reseal_shared_secrets(store.as_ref(), pool.sealer())
                .await
                .map_err(|e| AdminError::Refused(e.to_string()))?;
            Ok(format!(
                "re-sealed under key {key_id}: {credentials} stored credential(s), {keys} signing key(s), {sso} SSO key(s), {files} credential file(s); \
                 the previous key can now be removed from auth.encryption.previous_keys\n"
            ))
        }
    }
}
