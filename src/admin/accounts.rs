//! `portcullis users …`, `portcullis clients …` and `portcullis signing-keys …`: the token
//! server's local accounts and keys. Passwords
//! and client secrets are stored as Argon2id hashes; a generated one is printed once, a given
//! one is read from standard input (never from the command line, which other users can see).

use std::fmt::Write as _;
use std::io::BufRead;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::{AdminError, open_store};
use crate::cli::{ClientsCommand, SigningKeysCommand, UsersCommand};
use crate::clock::{Clock, iso8601};
use crate::config::Config;
use crate::identity::agent_token::hash_secret;
use crate::secret::{Secret, random_bytes};
use crate::store::{
    AccountStore, LOCAL_PROVIDER, LocalUserStore, OauthClient, SigningKeyStore, User,
};

/// Shortest password accepted.
const MIN_PASSWORD: usize = 12;

fn io(e: impl std::fmt::Display) -> AdminError {
    AdminError::Io(e.to_string())
}

/// A random URL-safe secret of 256 bits.
fn generated() -> Result<Secret, AdminError> {
    Ok(Secret::new(
        URL_SAFE_NO_PAD.encode(random_bytes::<32>().map_err(io)?),
    ))
}

/// The password to set: the first line of `input` when asked, else a generated one (returned
/// as `Some` so it can be shown once).
fn password(from_stdin: bool, input: &mut dyn BufRead) -> Result<(Secret, bool), AdminError> {
    if !from_stdin {
        return Ok((generated()?, true));
    }
    let mut line = String::new();
    input.read_line(&mut line).map_err(io)?;
    let p = line.trim_end_matches(['\n', '\r']);
    if p.chars().count() < MIN_PASSWORD {
        return Err(AdminError::Refused(format!(
            "the password must have at least {MIN_PASSWORD} characters"
        )));
    }
    Ok((Secret::new(p), false))
}

async fn hash(secret: &Secret) -> Result<String, AdminError> {
    let s = secret.clone();
    tokio::task::spawn_blocking(move || hash_secret(s.expose()))
        .await
        .map_err(io)?
        .map_err(io)
}

/// The user named by a local username, a user id or an email.
async fn find(store: &dyn LocalUserStore, who: &str) -> Result<User, AdminError> {
    if let Some(u) = store.find_user(LOCAL_PROVIDER, who).await? {
        return Ok(u);
    }
    store
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.id == who || u.email.as_deref() == Some(who))
        .ok_or_else(|| AdminError::NoSuchUser(who.to_owned()))
}

/// `portcullis users …`
pub async fn users(
    config: &Config,
    clock: &dyn Clock,
    action: &UsersCommand,
    input: &mut dyn BufRead,
) -> Result<String, AdminError> {
    let store = open_store(&config.storage).await?;
    let store: &dyn LocalUserStore = &store;
    let now = clock.now_millis() as i64;
    match action {
        UsersCommand::Add {
            username,
            email,
            name,
            password_stdin,
        } => {
            let username = username.trim();
            if username.is_empty() || username.len() > 200 || username.contains(char::is_whitespace)
            {
                return Err(AdminError::Refused(
                    "a username must be 1 to 200 characters without spaces".to_owned(),
                ));
            }
            if store.find_user(LOCAL_PROVIDER, username).await?.is_some() {
                return Err(AdminError::Refused(format!(
                    "user {username} already exists (use `portcullis users passwd {username}`)"
                )));
            }
            let (pw, show) = password(*password_stdin, input)?;
            let hashed = hash(&pw).await?;
            let user = store
                .upsert_user(
                    LOCAL_PROVIDER,
                    username,
                    email.as_deref(),
                    name.as_deref(),
                    now,
                )
                .await?;
            store.set_password(&user.id, &hashed, now).await?;
            Ok(shown(
                format!("added user {username} ({})", user.id),
                show.then_some(&pw),
            ))
        }
        UsersCommand::Passwd {
            username,
            password_stdin,
        } => {
            let user = store
                .find_user(LOCAL_PROVIDER, username)
                .await?
                .ok_or_else(|| AdminError::NoSuchUser(username.clone()))?;
            let (pw, show) = password(*password_stdin, input)?;
            let hashed = hash(&pw).await?;
            store.set_password(&user.id, &hashed, now).await?;
            Ok(shown(
                format!("password of {username} changed"),
                show.then_some(&pw),
            ))
        }
        UsersCommand::Disable { user } | UsersCommand::Enable { user } => {
            let disable = matches!(action, UsersCommand::Disable { .. });
            let u = find(store, user).await?;
            store.set_user_disabled(&u.id, disable).await?;
            Ok(format!(
                "{} {user} ({}){}\n",
                if disable { "disabled" } else { "enabled" },
                u.id,
                if disable {
                    "; their agent tokens are refused from the next request (other instances within a second)"
                } else {
                    ""
                }
            ))
        }
        UsersCommand::List { json: as_json } => {
            let users = store.list_users().await?;
            let mut out = String::new();
            if !as_json {
                let _ = writeln!(
                    out,
                    "{:<20} {:<10} {:<24} {:<28} {:<8} {:<9} CREATED",
                    "ID", "PROVIDER", "SUBJECT", "EMAIL", "STATUS", "PASSWORD"
                );
            }
            for u in &users {
                let has_password = store.password_hash(&u.id).await?.is_some();
                let created = iso8601(u.created_at.max(0) as u64);
                if *as_json {
                    let line = json!({
                        "id": u.id, "provider": u.provider, "subject": u.subject, "email": u.email,
                        "name": u.display_name, "disabled": u.disabled, "has_password": has_password,
                        "created_at": created,
                    });
                    let _ = writeln!(out, "{line}");
                } else {
                    let _ = writeln!(
                        out,
                        "{:<20} {:<10} {:<24} {:<28} {:<8} {:<9} {}",
                        u.id,
                        u.provider,
                        u.subject,
                        u.email.as_deref().unwrap_or("-"),
                        if u.disabled { "disabled" } else { "active" },
                        if has_password { "yes" } else { "no" },
                        &created[..19]
                    );
                }
            }
            if users.is_empty() && !as_json {
                out.push_str("(no users)\n");
            }
            Ok(out)
        }
    }
}

/// A message, plus a generated secret shown once.
fn shown(msg: String, secret: Option<&Secret>) -> String {
    match secret {
        Some(s) => format!(
            "{msg}\n\n  password: {}\n\nThis is the only time it is shown.\n",
            s.expose()
        ),
        None => format!("{msg}\n"),
    }
}

/// `portcullis clients …`
pub async fn clients(
    config: &Config,
    clock: &dyn Clock,
    action: &ClientsCommand,
) -> Result<String, AdminError> {
    let store = open_store(&config.storage).await?;
    let store: &dyn AccountStore = &store;
    let now = clock.now_millis() as i64;
    match action {
        ClientsCommand::Add { name } => {
            let id = format!(
                "pcl_{}",
                crate::store::hex(&random_bytes::<8>().map_err(io)?)
            );
            let secret = generated()?;
            store
                .insert_client(&OauthClient {
                    id: id.clone(),
                    name: name.clone(),
                    secret_hash: hash(&secret).await?,
                    created_at: now,
                    disabled: false,
                })
                .await?;
            Ok(format!(
                "added client {name}\n\n  client_id:     {id}\n  client_secret: {}\n\nThis is the only time the secret is shown.\n",
                secret.expose()
            ))
        }
        ClientsCommand::Disable { id } | ClientsCommand::Enable { id } => {
            let disable = matches!(action, ClientsCommand::Disable { .. });
            if !store.set_client_disabled(id, disable).await? {
                return Err(AdminError::Refused(format!(
                    "no client {id} (`portcullis clients list` shows the ids)"
                )));
            }
            Ok(format!(
                "{} client {id}\n",
                if disable { "disabled" } else { "enabled" }
            ))
        }
        ClientsCommand::List { json: as_json } => {
            let list = store.list_clients().await?;
            let mut out = String::new();
            for c in &list {
                let created = iso8601(c.created_at.max(0) as u64);
                if *as_json {
                    let line = json!({"client_id": c.id, "name": c.name, "disabled": c.disabled, "created_at": created});
                    let _ = writeln!(out, "{line}");
                } else {
                    let _ = writeln!(
                        out,
                        "{:<22} {:<24} {:<8} {}",
                        c.id,
                        c.name,
                        if c.disabled { "disabled" } else { "active" },
                        &created[..19]
                    );
                }
            }
            if list.is_empty() && !as_json {
                out.push_str("(no clients)\n");
            }
            Ok(out)
        }
    }
}

/// `portcullis signing-keys …`
pub async fn signing_keys(
    config: &Config,
    clock: &dyn Clock,
    action: &SigningKeysCommand,
) -> Result<String, AdminError> {
    let store = open_store(&config.storage).await?;
    let store: &dyn SigningKeyStore = &store;
    let now = clock.now_millis() as i64;
    match action {
        SigningKeysCommand::Rotate => {
            let sealer = crate::seal::Sealer::from_config(&config.auth.encryption).map_err(io)?;
            let kid = crate::identity::token_server::keys::rotate(store, now, sealer.as_ref())
                .await
                .map_err(|e| AdminError::Io(e.to_string()))?;
            Ok(format!(
                "new signing key {kid}; the previous ones keep verifying their tokens (running instances switch within five minutes)\n"
            ))
        }
        SigningKeysCommand::List => {
            let keys = store.list_signing_keys().await?;
            let mut out = String::new();
            for k in &keys {
                let _ = writeln!(
                    out,
                    "{:<18} {:<6} created {}  {}",
                    k.kid,
                    k.alg,
                    &iso8601(k.created_at.max(0) as u64)[..19],
                    k.retired_at.map_or("signing".to_owned(), |r| format!(
                        "retired {}",
                        &iso8601(r.max(0) as u64)[..19]
                    ))
                );
            }
            if keys.is_empty() {
                out.push_str("(no signing key yet: one is made on the first token request)\n");
            }
            Ok(out)
        }
    }
}
