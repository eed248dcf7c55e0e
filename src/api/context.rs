//! `Ctx`: what every model handler needs to know about its request besides the wire payload —
//! its log record, what the caller may use (the policy's grant, computed once per request) and,
//! when wire capture is on, its capture scope.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;

use super::access_log::{RequestLog, RequestMeta};
use crate::capture::CaptureScope;
use crate::identity::Principal;
use crate::policy::Grant;
use crate::state::AppState;

/// Per-request context for handlers.
pub(crate) struct Ctx {
    /// The access-log record.
    pub(crate) log: RequestLog,
    /// The capture scope, `None` when capture is off.
    pub(crate) capture: Option<CaptureScope>,
    /// Path and query as received, for capture records (the query's `key=` is masked there);
    /// empty when capture is off.
    pub(crate) target: String,
    /// Who is calling (cheap clone: shared strings).
    pub(crate) principal: Option<Principal>,
    /// What the caller may use.
    pub(crate) grant: Grant,
}

impl Ctx {
    /// A fingerprint of the calling user (an API key's name, an agent token's or JWT's user),
    /// telling refusals from different callers apart.
    pub(crate) fn who(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match &self.principal {
            None | Some(Principal::Anonymous) => 0u8.hash(&mut h),
            Some(Principal::ApiKey { name }) => (1u8, &**name).hash(&mut h),
            Some(Principal::AgentToken(t)) => (2u8, &*t.user_id).hash(&mut h),
            Some(Principal::Jwt { subject, kind, .. }) => (3u8, &**kind, &**subject).hash(&mut h),
            Some(Principal::VirtualKey(k)) => match &k.owner {
                Some(owner) => (2u8, &**owner).hash(&mut h),
                None => (4u8, &*k.id).hash(&mut h),
            },
        }
        h.finish()
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, state))
    }
}

impl Ctx {
    /// The context of the request whose head is `parts` (its record from its extensions).
    pub(crate) fn of(parts: &Parts, state: &AppState) -> Self {
        let log = RequestLog::of(&parts.extensions)
            .cloned()
            .unwrap_or_default();
        Self::with_log(parts, state, log)
    }

    /// The context of the request whose head is `parts` and whose record is `log`.
    pub(crate) fn with_log(parts: &Parts, state: &AppState, log: RequestLog) -> Self {
        // The guard's: in the record, or in the extensions of a request without one.
        let principal = match parts.extensions.get::<Principal>() {
            Some(p) => Some(p.clone()),
            None => log.principal(),
        };
        let capture = state.capture().is_enabled().then(|| {
            let meta = parts
                .extensions
                .get::<RequestMeta>()
                .cloned()
                .unwrap_or_default();
            let label = principal.as_ref().map(|p| Arc::from(p.label().as_ref()));
            state.capture().scope(meta.id, meta.source, label)
        });
        // Only capture records read the target: no copy when capture is off.
        let target = match capture {
            Some(Some(_)) => parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            _ => String::new(),
        };
        let grant = match &principal {
            Some(p) => state.policy().grant(p),
            None => Grant::ALL,
        };
        Self {
            log,
            capture: capture.flatten(),
            target,
            principal,
            grant,
        }
    }
}
