//! The virtual-key routes of the management API (`/v0/management/keys…`), behind the management
//! key like every `/v0/management` route: create (the key shown once, in the 201 answer), list,
//! show, update (name, expiry, rules) and revoke. Every answer is the view the `keys` commands
//! print with `--json` ([`key_view`]) — never the key or its hash. Bad input is a 400 whose
//! `field` names what is wrong.

use super::groups::get;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::admin_ops;
use super::management::problem;
use super::management_input::{Body, Path, Query};
use crate::clock::parse_iso8601;
use crate::identity::virtual_key::FORMAT;
use crate::identity::virtual_key::manage::{self, KeyError, NewKey, key_view};
use crate::rules::Rules;
use crate::state::AppState;
use crate::store::KeyUpdate;

/// The key routes (the management group adds the key check).
pub(super) fn routes() -> super::groups::Routes {
    vec![
        ("/v0/management/keys", get(list).post(create)),
        (
            "/v0/management/keys/{id}",
            get(show).patch(update).delete(revoke),
        ),
    ]
}

/// A request body the API cannot use: the field and what is wrong with it (a 400).
struct Bad {
    field: String,
    message: String,
}

fn bad(field: &str, message: impl Into<String>) -> Bad {
    Bad {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl IntoResponse for Bad {
    fn into_response(self) -> Response {
        let message = format!("{}: {}", self.field, self.message);
        let body = json!({"error": {"message": message, "field": self.field}});
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

fn failed(e: KeyError) -> Response {
    match e {
        KeyError::Invalid { field, message } => bad(field, message).into_response(),
        KeyError::NotFound(_) => problem(StatusCode::NOT_FOUND, "no virtual key with that id"),
        KeyError::Io(_) | KeyError::Store(_) => {
            tracing::error!(error = %e, "management API: virtual key operation failed");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
        }
    }
}

fn no_store() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no store is configured: virtual keys need one (storage.data_dir or storage.database_url)",
    )
}

/// The body as a JSON object with only `allowed` members.
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, Bad> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad("body", "send a JSON object"));
    };
    if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        let message = format!("unknown field (accepted: {})", allowed.join(", "));
        return Err(bad(unknown, message));
    }
    Ok(obj)
}

/// A string member (absent or `null`: `None`).
fn string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, Bad> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

/// The expiry the body asks for: absent (`None`), cleared (`Some(None)`, `expires_at: null`),
/// or a time (`expires_in_secs` from `now`, or `expires_at` in ISO 8601).
fn expiry(obj: &Map<String, Value>, now: i64) -> Result<Option<Option<i64>>, Bad> {
    match (obj.get("expires_in_secs"), obj.get("expires_at")) {
        (Some(_), Some(_)) => Err(bad(
            "expires_at",
            "give expires_in_secs or expires_at, not both",
        )),
        (Some(secs), None) => match secs.as_u64().filter(|s| *s > 0 && *s <= 1 << 40) {
            Some(s) => Ok(Some(Some(now.saturating_add(s as i64 * 1000)))),
            None => Err(bad(
                "expires_in_secs",
                "must be a positive whole number of seconds",
            )),
        },
        (None, Some(Value::Null)) => Ok(Some(None)),
        (None, Some(Value::String(t))) => match parse_iso8601(t) {
            Some(ms) => Ok(Some(Some(ms as i64))),
            None => Err(bad(
                "expires_at",
                "must be an ISO 8601 time such as 2027-01-31T18:00:00Z (or null for none)",
            )),
        },
        (None, Some(_)) => Err(bad("expires_at", "must be a string or null")),
        (None, None) => Ok(None),
    }
}

/// The rules the body gives (`null`: none, everything allowed).
fn rules(obj: &Map<String, Value>) -> Result<Option<Rules>, Bad> {
    match obj.get("rules") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Rules::default())),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| bad("rules", e.to_string())),
    }
}

/// `POST`'s body: `{name, owner?, expires_in_secs? | expires_at?, rules?}`.
fn new_key(body: &[u8], now: i64) -> Result<NewKey, Bad> {
    let obj = object(
        body,
        &["name", "owner", "expires_in_secs", "expires_at", "rules"],
    )?;
    Ok(NewKey {
        name: string(&obj, "name")?.ok_or_else(|| bad("name", "is required"))?,
        owner: string(&obj, "owner")?,
        expires_at: expiry(&obj, now)?.flatten(),
        rules: rules(&obj)?.unwrap_or_default(),
    })
}

/// `PATCH`'s body: `{name?, expires_in_secs? | expires_at? (null clears), rules?}`.
fn key_update(body: &[u8], now: i64) -> Result<KeyUpdate, Bad> {
    let obj = object(body, &["name", "expires_in_secs", "expires_at", "rules"])?;
    Ok(KeyUpdate {
        name: string(&obj, "name")?,
        expires_at: expiry(&obj, now)?,
        rules: rules(&obj)?,
    })
}

fn now(state: &AppState) -> i64 {
    state.clock().now_millis() as i64
}

async fn create(State(state): State<AppState>, Body(body): Body) -> Response {
    let Some(store) = state.key_store() else {
        return no_store();
    };
    let now = now(&state);
    let new = match new_key(&body, now) {
        Ok(n) => n,
        Err(b) => return b.into_response(),
    };
    match manage::create(store.as_ref(), new, now).await {
        Ok((record, key)) => {
            let mut view = key_view(&record, now);
            view["key"] = key.expose().into();
            (StatusCode::CREATED, axum::Json(view)).into_response()
        }
        Err(e) => failed(e),
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    owner: Option<String>,
}

async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let Some(store) = state.key_store() else {
        return no_store();
    };
    let store = store.as_ref();
    let now = now(&state);
    match store.list_keys(q.owner.as_deref()).await {
        Ok(keys) => {
            let list: Vec<Value> = keys.iter().map(|k| key_view(k, now)).collect();
            axum::Json(json!({"keys": list})).into_response()
        }
        Err(e) => failed(e.into()),
    }
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(store) = state.key_store() else {
        return no_store();
    };
    let store = store.as_ref();
    match manage::fetch(store, FORMAT.bare_id(&id)).await {
        Ok(record) => axum::Json(key_view(&record, now(&state))).into_response(),
        Err(e) => failed(e),
    }
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body,
) -> Response {
    let Some(store) = state.key_store() else {
        return no_store();
    };
    let now = now(&state);
    let change = match key_update(&body, now) {
        Ok(c) => c,
        Err(b) => return b.into_response(),
    };
    match manage::update(store.as_ref(), FORMAT.bare_id(&id), change, now).await {
        Ok(record) => {
            admin_ops::key_cache_changed(&state);
            axum::Json(key_view(&record, now)).into_response()
        }
        Err(e) => failed(e),
    }
}

async fn revoke(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(store) = state.key_store() else {
        return no_store();
    };
    match admin_ops::revoke_key(&state, store.as_ref(), FORMAT.bare_id(&id)).await {
        Ok((record, _)) => axum::Json(key_view(&record, now(&state))).into_response(),
        Err(e) => failed(e),
    }
}
