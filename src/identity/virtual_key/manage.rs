//! Managing virtual keys — the operations the `keys` commands and the management API share:
//! create (checked name, existing owner, future expiry, sensible rules; the key returned once),
//! update, revoke, and the one JSON view of a key ([`key_view`]) both print. Never the secret
//! or its hash.

use serde_json::{Value, json};

use super::{display_id, mint};
use crate::clock::{ISO8601_END_MS, iso8601};
use crate::rules::Rules;
use crate::secret::Secret;
use crate::store::{KeyAdminStore, KeyUpdate, StoreError, VirtualKeyRecord};

/// Longest key name, in characters.
const NAME_MAX: usize = 100;

/// Why a key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A value given is not acceptable; `field` names it (`name`, `owner`, `expires_at`,
    /// `rules.rpm`, …).
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the API and the flags call it.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// No key has this id.
    #[error("no virtual key {0} (`portcullis keys list` shows the ids)")]
    NotFound(String),
    /// The operating system failed (randomness).
    #[error("cannot mint a key: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        field,
        message: message.into(),
    }
}

/// What a new key is made of.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Its name (1 to 100 characters, no control characters).
    pub name: String,
    /// The id of the user who owns it, if any (must exist).
    pub owner: Option<String>,
    /// End of validity (ms), if any (must be in the future).
    pub expires_at: Option<i64>,
    /// What it may do.
    pub rules: Rules,
}

/// A key's name, trimmed, or why it is refused.
pub fn check_name(name: &str) -> Result<String, KeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(invalid("name", "a key name must have 1 to 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            "a key name cannot contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Refuses limits that would stop every request (a zero rate, budget or concurrency — remove
/// the limit, or revoke the key, instead).
pub fn check_rules(rules: &Rules) -> Result<(), KeyError> {
    let zero = |field: &'static str| {
        Err(invalid(
            field,
            "must be at least 1 (leave it out, or unset it, for no limit)",
        ))
    };
    if rules.rpm == Some(0) {
        return zero("rules.rpm");
    }
    if rules.tpm == Some(0) {
        return zero("rules.tpm");
    }
    if rules.max_concurrent == Some(0) {
        return zero("rules.max_concurrent");
    }
    if rules.token_budget.is_some_and(|b| b.tokens == 0) {
        return zero("rules.token_budget.tokens");
    }
    if rules.cost_budget.is_some_and(|b| b.usd.micros == 0) {
        return Err(invalid(
            "rules.cost_budget.usd",
            "must be more than 0 (leave it out, or unset it, for no budget)",
        ));
    }
    Ok(())
}

fn check_expiry(expires_at: Option<i64>, now: i64) -> Result<(), KeyError> {
    match expires_at {
        Some(t) if t <= now => Err(invalid("expires_at", "must be in the future")),
        Some(t) if t >= ISO8601_END_MS as i64 => {
            Err(invalid("expires_at", "must be before the year 10000"))
        }
        _ => Ok(()),
    }
}

/// Creates a key at `now`: the stored record and the whole key, to show once.
pub async fn create(
    store: &dyn KeyAdminStore,
    new: NewKey,
    now: i64,
) -> Result<(VirtualKeyRecord, Secret), KeyError> {
    let name = check_name(&new.name)?;
    check_expiry(new.expires_at, now)?;
    check_rules(&new.rules)?;
    if let Some(owner) = &new.owner
        && store.get_user(owner).await?.is_none()
    {
        return Err(invalid(
            "owner",
            format!("no user with id {owner:?} (`portcullis users list` shows them)"),
        ));
    }
    let minted = mint()?;
    let record = VirtualKeyRecord {
        id: minted.id,
        name,
        owner: new.owner,
        secret_hash: minted.secret_hash,
        rules: new.rules,
        created_at: now,
        updated_at: now,
        expires_at: new.expires_at,
        revoked_at: None,
    };
    store.insert_key(&record).await?;
    tracing::info!(key = %display_id(&record.id), name = %record.name, "virtual key created");
    Ok((record, minted.key))
}

/// Applies `change` to key `id` at `now`; returns the key as stored afterwards.
pub async fn update(
    store: &dyn KeyAdminStore,
    id: &str,
    mut change: KeyUpdate,
    now: i64,
) -> Result<VirtualKeyRecord, KeyError> {
    if let Some(name) = &change.name {
        change.name = Some(check_name(name)?);
    }
    if let Some(expires_at) = change.expires_at {
        check_expiry(expires_at, now)?;
    }
    if let Some(rules) = &change.rules {
        check_rules(rules)?;
    }
    if !store.update_key(id, &change, now).await? {
        return Err(KeyError::NotFound(display_id(id)));
    }
    tracing::info!(key = %display_id(id), "virtual key updated");
    fetch(store, id).await
}

/// Revokes key `id` at `now`; returns the key and whether this call revoked it (false: it
/// already was).
pub async fn revoke(
    store: &dyn KeyAdminStore,
    id: &str,
    now: i64,
) -> Result<(VirtualKeyRecord, bool), KeyError> {
    let revoked = store.revoke_key(id, now).await?;
    if revoked {
        tracing::info!(key = %display_id(id), "virtual key revoked");
    }
    Ok((fetch(store, id).await?, revoked))
}

/// The key with `id`, or [`KeyError::NotFound`].
pub async fn fetch(store: &dyn KeyAdminStore, id: &str) -> Result<VirtualKeyRecord, KeyError> {
    store
        .get_key(id)
        .await?
        .ok_or_else(|| KeyError::NotFound(display_id(id)))
}

/// `active`, `expired` or `revoked` at `now`.
pub fn key_status(k: &VirtualKeyRecord, now: i64) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
    }
}

/// A key as the management API and `keys list|show --json` show it: never the secret or its
/// hash; times in ISO 8601 (UTC), `null` when unset; the rules as configured.
pub fn key_view(k: &VirtualKeyRecord, now: i64) -> Value {
    let time = |ms: Option<i64>| ms.map(|m| iso8601(m.max(0) as u64));
    json!({
        "id": display_id(&k.id),
        "name": k.name,
        "owner": k.owner,
        "status": key_status(k, now),
        "created_at": time(Some(k.created_at)),
        "updated_at": time(Some(k.updated_at)),
        "expires_at": time(k.expires_at),
        "revoked_at": time(k.revoked_at),
        "rules": serde_json::to_value(&k.rules).unwrap_or_default(),
    })
}

/// The rules in one line for listings: `models=gpt-4o* rpm=60 tokens=1000000/monthly`, or
/// `unrestricted`.
pub fn rules_summary(r: &Rules) -> String {
    let globs = |g: &[crate::rules::Glob]| {
        g.iter()
            .map(crate::rules::Glob::as_str)
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut parts = Vec::new();
    if !r.backends.is_empty() {
        parts.push(format!("backends={}", globs(&r.backends)));
    }
    if !r.models.is_empty() {
        parts.push(format!("models={}", globs(&r.models)));
    }
    let numbers = [("rpm", r.rpm), ("tpm", r.tpm)];
    parts.extend(
        numbers
            .iter()
            .filter_map(|(name, v)| v.map(|v| format!("{name}={v}"))),
    );
    if let Some(n) = r.max_concurrent {
        parts.push(format!("concurrent={n}"));
    }
    if let Some(b) = r.token_budget {
        parts.push(format!("tokens={}/{}", b.tokens, b.period.as_str()));
    }
    if let Some(b) = r.cost_budget {
        parts.push(format!("cost={}/{}", b.usd, b.period.as_str()));
    }
    if parts.is_empty() {
        "unrestricted".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires_at: Option<i64>, revoked_at: Option<i64>) -> VirtualKeyRecord {
        VirtualKeyRecord {
            id: "AbCdEfGhIjKl".into(),
            name: "ci".into(),
            owner: Some("usr_1".into()),
            secret_hash: "0".repeat(64),
            rules: serde_json::from_value(json!({"models": ["gpt-4o*"], "rpm": 60})).unwrap(),
            created_at: 0,
            updated_at: 1000,
            expires_at,
            revoked_at,
        }
    }

    #[test]
    fn the_view_shows_status_times_and_rules_but_never_the_hash() {
        let k = record(Some(5000), None);
        let v = key_view(&k, 4000);
        assert_eq!(v["id"], "sk-pvk-AbCdEfGhIjKl");
        assert_eq!(v["status"], "active");
        assert_eq!(v["expires_at"], "1970-01-01T00:00:05.000Z");
        assert_eq!(v["revoked_at"], Value::Null);
        assert_eq!(v["rules"], json!({"models": ["gpt-4o*"], "rpm": 60}));
        assert!(!v.to_string().contains(&k.secret_hash));
        assert_eq!(key_view(&k, 5000)["status"], "expired");
        assert_eq!(key_status(&record(Some(5000), Some(1)), 0), "revoked");
        assert_eq!(key_status(&record(None, None), i64::MAX), "active");
    }

    #[test]
    fn rules_read_in_one_line() {
        assert_eq!(rules_summary(&Rules::default()), "unrestricted");
        let r: Rules = serde_json::from_value(json!({
            "backends": ["openai"], "models": ["gpt-4o*", "o3"], "rpm": 60, "tpm": 1000,
            "max_concurrent": 2, "token_budget": {"tokens": 5000, "period": "daily"},
            "cost_budget": {"usd": 2.5}
        }))
        .unwrap();
        assert_eq!(
            rules_summary(&r),
            "backends=openai models=gpt-4o*,o3 rpm=60 tpm=1000 concurrent=2 tokens=5000/daily cost=$2.50/monthly"
        );
    }

    #[test]
    fn names_and_rules_that_cannot_work_are_refused_naming_the_field() {
        assert_eq!(check_name("  build bot ").unwrap(), "build bot");
        for bad in ["", "   ", "a\nb", &"x".repeat(101)] {
            assert!(
                matches!(
                    check_name(bad),
                    Err(KeyError::Invalid { field: "name", .. })
                ),
                "{bad:?}"
            );
        }
        let refused = |v: Value| match check_rules(&serde_json::from_value(v).unwrap()) {
            Err(KeyError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(json!({"rpm": 0})), "rules.rpm");
        assert_eq!(
            refused(json!({"max_concurrent": 0})),
            "rules.max_concurrent"
        );
        assert_eq!(
            refused(json!({"token_budget": {"tokens": 0}})),
            "rules.token_budget.tokens"
        );
        assert_eq!(
            refused(json!({"cost_budget": {"usd": 0}})),
            "rules.cost_budget.usd"
        );
        assert!(check_rules(&Rules::default()).is_ok());
        assert!(check_expiry(Some(10), 10).is_err() && check_expiry(Some(11), 10).is_ok());
        // Schemathesis finding: `expires_in_secs` up to 2^40 made expiries in the year 36869,
        // which no RFC 3339 time (four-digit years) can show.
        let end = ISO8601_END_MS as i64;
        assert!(check_expiry(Some(end - 1), 10).is_ok() && check_expiry(Some(end), 10).is_err());
    }
}
