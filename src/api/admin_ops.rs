//! The administrative operations the management API and the admin console share, so each rule
//! lives once: renaming and revoking an agent token (the name's limits, forgetting this
//! instance's cached verifications) and revoking a virtual key. The pool's operations are
//! [`crate::pool::Pool`]'s own (`add`, `delete`, `refresh_now`); both callers use those.

use crate::identity::agent_token::display_id;
use crate::identity::virtual_key::manage::{self, KeyError};
use crate::state::AppState;
use crate::store::{KeyAdminStore, StoreError, VirtualKeyRecord};

/// Why a token operation was refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum TokenOpError {
    /// No store is open.
    #[error("no store is configured: agent tokens are not in use")]
    NoStore,
    /// The new name is empty or too long.
    #[error("a device name must have 1 to 100 characters")]
    BadName,
    /// No token has that id.
    #[error("no agent token with that id")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Renames agent token `id` (bare) to `name`, trimmed.
pub(super) async fn rename_token(
    state: &AppState,
    id: &str,
    name: &str,
) -> Result<(), TokenOpError> {
    let store = state.token_store().ok_or(TokenOpError::NoStore)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(TokenOpError::BadName);
    }
    if store.rename_token(id, name).await? {
        Ok(())
    } else {
        Err(TokenOpError::NotFound)
    }
}

/// Revokes agent token `id` (bare) now; true when this call revoked it (false: already revoked
/// or unknown). This instance forgets its cached verifications at once, the others follow the
/// store's revision. `via` names the caller in the log.
pub(super) async fn revoke_token(
    state: &AppState,
    id: &str,
    via: &str,
) -> Result<bool, TokenOpError> {
    let store = state.token_store().ok_or(TokenOpError::NoStore)?;
    let now = state.clock().now_millis() as i64;
    let revoked = store.revoke_token(id, now).await?;
    if revoked {
        if let Some(v) = state.auth().tokens() {
            v.clear_cache();
        }
        tracing::info!(token = %display_id(id), via, "agent token revoked");
    }
    Ok(revoked)
}

/// Revokes virtual key `id` (bare) now and forgets this instance's cached keys (the others
/// follow the store revision); returns the key and whether this call revoked it.
pub(super) async fn revoke_key(
    state: &AppState,
    store: &dyn KeyAdminStore,
    id: &str,
) -> Result<(VirtualKeyRecord, bool), KeyError> {
    let now = state.clock().now_millis() as i64;
    let done = manage::revoke(store, id, now).await?;
    key_cache_changed(state);
    Ok(done)
}

/// Forgets this instance's cached virtual keys at once (the others follow the store revision).
pub(super) fn key_cache_changed(state: &AppState) {
    if let Some(v) = state.auth().virtual_keys() {
        v.clear_cache();
    }
}
