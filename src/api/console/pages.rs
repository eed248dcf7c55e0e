//! The console's pages and their forms: devices (rename, revoke), users, upstream credentials
//! (add, remove, refresh), virtual keys (revoke) and signing keys. Every page needs a signed-in
//! administrator ([`Admin::of`]), every form its anti-forgery field ([`Admin::check_form`]); a
//! form that worked answers with a redirect to its page and a fixed notice (`?done=…`).

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::super::admin_ops::{self, TokenOpError};
use super::super::groups::{Routes, get, post};
use super::views::{
    CredentialRow, CredentialsPage, DeviceRow, DevicesPage, KeyRow, KeysPage, Nav, SigningKeyRow,
    SigningKeysPage, UserRow, UsersPage,
};
use super::{Admin, error_page, is_admin, page, redirect, store_failed};
use crate::clock::iso8601;
use crate::identity::agent_token::{bare_id, display_id, token_status};
use crate::identity::virtual_key::FORMAT as KEY_FORMAT;
use crate::identity::virtual_key::manage::{KeyError, key_status, rules_summary};
use crate::pool::{CredentialKind, NewCredential, PoolError};
use crate::secret::Secret;
use crate::state::AppState;
use crate::store::User;

/// The pages and their forms.
pub(super) fn routes() -> Routes {
    vec![
        ("/admin/devices", get(devices)),
        ("/admin/devices/rename", post(rename_device)),
        ("/admin/devices/revoke", post(revoke_device)),
        ("/admin/users", get(users)),
        ("/admin/credentials", get(credentials)),
        ("/admin/credentials/add", post(add_credential)),
        ("/admin/credentials/remove", post(remove_credential)),
        ("/admin/credentials/refresh", post(refresh_credential)),
        ("/admin/keys", get(keys)),
        ("/admin/keys/revoke", post(revoke_key)),
        ("/admin/signing-keys", get(signing_keys)),
    ]
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

/// The notice a redirect after a form asks for (a fixed text; nothing from the URL is shown).
fn notice(q: &Done) -> Option<&'static str> {
    Some(match q.done.as_deref()? {
        "renamed" => "Device renamed.",
        "revoked" => "Device revoked: its token is refused from the next request.",
        "unchanged" => "Nothing changed: it was already revoked.",
        "added" => "Credential added.",
        "removed" => "Credential removed.",
        "refreshed" => "Credentials re-read; cooldown ended.",
        "key-revoked" => "Virtual key revoked.",
        _ => return None,
    })
}

/// A time for people: `2027-01-31 18:00:00` (UTC), or empty.
fn time(ms: Option<i64>) -> String {
    ms.map_or_else(String::new, |ms| {
        iso8601(ms.max(0) as u64)[..19].replace('T', " ")
    })
}

pub(super) fn nav<'a>(admin: &'a Admin, label: &'a str, active: &'static str) -> Nav<'a> {
    Nav {
        who: label,
        csrf: &admin.csrf,
        active,
    }
}

fn no_store() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No store",
        "No store is configured (storage.data_dir or storage.database_url).",
    )
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", |v| v.trim())
}

/// The owner labels of `users` by id (email, else subject).
fn labels(users: &[User]) -> HashMap<&str, String> {
    users
        .iter()
        .map(|u| (u.id.as_str(), u.owner_label().to_owned()))
        .collect()
}

async fn devices(State(state): State<AppState>, headers: HeaderMap, q: Query<Done>) -> Response {
    let admin = match Admin::of(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(store) = state.token_store() else {
        return no_store();
    };
    let (users, tokens) = match (store.list_users().await, store.list_tokens(None).await) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(e), _) | (_, Err(e)) => return store_failed(&e),
    };
    let owners = labels(&users);
    let now = state.clock().now_millis() as i64;
    let devices = tokens
        .iter()
        .map(|t| DeviceRow {
            id: display_id(&t.id),
            name: t.name.clone(),
            owner: owners.get(t.user_id.as_str()).cloned().unwrap_or_default(),
            status: token_status(t, now),
            created: time(Some(t.created_at)),
            last_used: time(t.last_used_at),
            last_ip: t.last_ip.clone().unwrap_or_default(),
        })
        .collect();
    let label = admin.label();
    page(
        StatusCode::OK,
        &DevicesPage {
            nav: nav(&admin, &label, "devices"),
            notice: notice(&q),
            devices,
        },
    )
}

fn token_failed(e: TokenOpError) -> Response {
    match e {
        TokenOpError::NoStore => no_store(),
        TokenOpError::BadName => error_page(StatusCode::BAD_REQUEST, "Not renamed", &e.to_string()),
        TokenOpError::NotFound => error_page(StatusCode::NOT_FOUND, "Not found", &e.to_string()),
        TokenOpError::Store(e) => store_failed(&e),
    }
}

async fn rename_device(State(state): State<AppState>, req: Request) -> Response {
    let form = match Admin::check_form(&state, req).await {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let id = bare_id(field(&form, "id"));
    match admin_ops::rename_token(&state, id, field(&form, "name")).await {
        Ok(()) => redirect("/admin/devices?done=renamed"),
        Err(e) => token_failed(e),
    }
}

async fn revoke_device(State(state): State<AppState>, req: Request) -> Response {
    let form = match Admin::check_form(&state, req).await {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let id = bare_id(field(&form, "id"));
    match admin_ops::revoke_token(&state, id, "admin console").await {
        Ok(true) => redirect("/admin/devices?done=revoked"),
        Ok(false) => redirect("/admin/devices?done=unchanged"),
        Err(e) => token_failed(e),
    }
}

async fn users(State(state): State<AppState>, headers: HeaderMap, q: Query<Done>) -> Response {
    let admin = match Admin::of(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(store) = state.token_store() else {
        return no_store();
    };
    let users = match store.list_users().await {
        Ok(u) => u,
        Err(e) => return store_failed(&e),
    };
    let users = users
        .iter()
        .map(|u| UserRow {
            id: u.id.clone(),
            provider: u.provider.clone(),
            subject: u.subject.clone(),
            email: u.email.clone().unwrap_or_default(),
            name: u.display_name.clone().unwrap_or_default(),
            disabled: u.disabled,
            admin: is_admin(&state, u),
            created: time(Some(u.created_at)),
        })
        .collect();
    let label = admin.label();
    page(
        StatusCode::OK,
        &UsersPage {
            nav: nav(&admin, &label, "users"),
            notice: notice(&q),
            users,
        },
    )
}

async fn credentials(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Query<Done>,
) -> Response {
    let admin = match Admin::of(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let list = match state.pool().status(None) {
        Ok(l) => l,
        Err(e) => return pool_failed(e),
    };
    let ms = |t: Option<u64>| time(t.map(|t| t as i64));
    let credentials = list
        .iter()
        .map(|c| CredentialRow {
            id: c.id.clone(),
            provider: c.provider.clone(),
            kind: c.kind,
            source: c.source,
            hint: c.hint.clone(),
            label: c.label.clone().unwrap_or_default(),
            priority: c.priority,
            status: c.status,
            cooldown_until: ms(c.cooldown_until),
            quota: match c.quota.limit {
                Some(l) if c.quota.reset_schedule == "never" => format!("{} / {l}", c.quota.used),
                Some(l) => format!("{} / {l} ({})", c.quota.used, c.quota.reset_schedule),
                None => format!("{} / no limit", c.quota.used),
            },
            requests: c.requests,
            failures: c.failures,
            last_used: ms(c.last_used),
            expires: ms(c.expires_at),
            removable: c.source == "api",
        })
        .collect();
    let providers = state
        .pool()
        .providers()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    let label = admin.label();
    page(
        StatusCode::OK,
        &CredentialsPage {
            nav: nav(&admin, &label, "credentials"),
            notice: notice(&q),
            credentials,
            errors: state.pool().load_errors(),
            providers,
        },
    )
}

fn pool_failed(e: PoolError) -> Response {
    let status = match &e {
        PoolError::Store(_) | PoolError::Seal { .. } => return store_failed(&e),
        PoolError::NoStore | PoolError::ReadOnly(_) | PoolError::Conflict(_) => {
            StatusCode::CONFLICT
        }
        PoolError::UnknownProvider(_) | PoolError::NotFound(_) => StatusCode::NOT_FOUND,
        PoolError::Invalid(_) => StatusCode::BAD_REQUEST,
        PoolError::OauthInMultiUser => StatusCode::FORBIDDEN,
        PoolError::Login(_) => StatusCode::BAD_GATEWAY,
    };
    error_page(status, "Not done", &e.to_string())
}

/// An optional number field: empty is `None`, anything else must parse (else what is wrong).
fn number<T: std::str::FromStr>(
    form: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, String> {
    match field(form, name) {
        "" => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} must be a whole number")),
    }
}

async fn add_credential(State(state): State<AppState>, req: Request) -> Response {
    let form = match Admin::check_form(&state, req).await {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let Some(kind) = CredentialKind::parse(match field(&form, "type") {
        "" => "api_key",
        t => t,
    }) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Not added",
            "type must be api_key or oauth",
        );
    };
    let (priority, quota_limit) = match (number(&form, "priority"), number(&form, "quota")) {
        (Ok(p), Ok(q)) => (p, q),
        (Err(m), _) | (_, Err(m)) => return error_page(StatusCode::BAD_REQUEST, "Not added", &m),
    };
    let label = Some(field(&form, "label").to_owned()).filter(|l| !l.is_empty());
    let new = NewCredential {
        provider: field(&form, "provider").to_owned(),
        kind,
        token: Secret::new(form.get("token").map_or("", |t| t.trim())),
        priority,
        quota_limit,
        label,
    };
    match state.pool().add(new).await {
        Ok(id) => {
            tracing::info!(credential = %id, "credential added through the admin console");
            redirect("/admin/credentials?done=added")
        }
        Err(e) => pool_failed(e),
    }
}

async fn remove_credential(State(state): State<AppState>, req: Request) -> Response {
    let form = match Admin::check_form(&state, req).await {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let (provider, id) = (field(&form, "provider"), field(&form, "id"));
    match state.pool().delete(provider, Some(id)).await {
        Ok(id) => {
            tracing::info!(credential = %id, "credential deleted through the admin console");
            redirect("/admin/credentials?done=removed")
        }
        Err(e) => pool_failed(e),
    }
}

async fn refresh_credential(State(state): State<AppState>, req: Request) -> Response {
    let form = match Admin::check_form(&state, req).await {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let (provider, id) = (field(&form, "provider"), field(&form, "id"));
    match state.pool().refresh_now(provider, Some(id)).await {
        Ok((renewed, n)) => {
            tracing::info!(
                provider,
                credentials = n,
                refreshed = renewed.refreshed,
                "credentials reloaded and cooldowns ended through the admin console"
            );
            redirect("/admin/credentials?done=refreshed")
        }
        Err(e) => pool_failed(e),
    }
}

async fn keys(State(state): State<AppState>, headers: HeaderMap, q: Query<Done>) -> Response {
    let admin = match Admin::of(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(store) = state.key_store() else {
        return no_store();
    };
    let (users, keys) = match (store.list_users().await, store.list_keys(None).await) {
        (Ok(u), Ok(k)) => (u, k),
        (Err(e), _) | (_, Err(e)) => return store_failed(&e),
    };
    let owners = labels(&users);
    let now = state.clock().now_millis() as i64;
    let keys = keys
        .iter()
        .map(|k| KeyRow {
            id: KEY_FORMAT.display_id(&k.id),
            name: k.name.clone(),
            owner: k
                .owner
                .as_deref()
                .map(|o| owners.get(o).cloned().unwrap_or_else(|| o.to_owned()))
                .unwrap_or_default(),
            status: key_status(k, now),
            rules: rules_summary(&k.rules),
            created: time(Some(k.created_at)),
            expires: time(k.expires_at),
        })
        .collect();
    let label = admin.label();
    page(
        StatusCode::OK,
        &KeysPage {
            nav: nav(&admin, &label, "keys"),
            notice: notice(&q),
            keys,
        },
    )
}

async fn revoke_key(State(state): State<AppState>, req: Request) -> Response {
    let form = match Admin::check_form(&state, req).await {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let Some(store) = state.key_store() else {
        return no_store();
    };
    let id = KEY_FORMAT.bare_id(field(&form, "id"));
    match admin_ops::revoke_key(&state, store.as_ref(), id).await {
        Ok(_) => redirect("/admin/keys?done=key-revoked"),
        Err(e @ KeyError::NotFound(_)) => {
            error_page(StatusCode::NOT_FOUND, "Not found", &e.to_string())
        }
        Err(e @ KeyError::Invalid { .. }) => {
            error_page(StatusCode::BAD_REQUEST, "Not revoked", &e.to_string())
        }
        Err(e) => store_failed(&e),
    }
}

async fn signing_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Query<Done>,
) -> Response {
    let admin = match Admin::of(&state, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(oauth) = state.oauth() else {
        return no_store();
    };
    let keys = match oauth.list_keys().await {
        Ok(k) => k,
        Err(e) => return store_failed(&e),
    };
    let keys = keys
        .iter()
        .map(|k| SigningKeyRow {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            created: time(Some(k.created_at)),
            state: k.retired_at.map_or_else(
                || "signing".to_owned(),
                |r| format!("retired {}", time(Some(r))),
            ),
        })
        .collect();
    let label = admin.label();
    page(
        StatusCode::OK,
        &SigningKeysPage {
            nav: nav(&admin, &label, "signing-keys"),
            notice: notice(&q),
            keys,
        },
    )
}
