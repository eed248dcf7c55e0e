//! Verifying JWTs against a remote JWKS: used for SSO ID tokens and for trusted external issuers'
//! access tokens. The set is cached for an hour; a `kid` it does not know refetches it (at most
//! every 10 s, so unknown-`kid` floods cannot turn into a request flood). Only asymmetric
//! algorithms are accepted (never HS* with a public key, never `none`), the algorithm must be
//! the key's own when the JWK names one, and keys marked for encryption are not used.
//!
//! Expiry and the refetch bound are decisions, so they read the gateway's [`Clock`], not
//! `Instant`: a test moves a `ManualClock` past the hour instead of waiting.

use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::clock::SharedClock;

/// The largest key set read (a real one is a few KiB); reading stops there.
const MAX_KEY_SET: usize = 1024 * 1024;

/// Signature algorithms accepted from remote issuers.
pub const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// How long a fetched set is used before it is fetched again (ms of clock time).
const TTL_MS: u64 = 3_600_000;
/// The least time between two fetches, whatever asks for them (ms of clock time).
const MIN_REFRESH_MS: u64 = 10_000;

/// Why a token did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The key set could not be fetched.
    #[error("cannot fetch the JWKS: {0}")]
    Fetch(String),
    /// The token is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// A JWKS at a URL, cached.
pub struct RemoteJwks {
    url: String,
    http: reqwest::Client,
    clock: SharedClock,
    state: Mutex<State>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .finish()
    }
}

#[derive(Debug, Default)]
struct State {
    set: Option<Arc<JwkSet>>,
    /// Clock time (ms) of the last successful fetch.
    fetched: Option<u64>,
    /// Clock time (ms) of the last fetch attempt.
    attempted: Option<u64>,
}

/// True when `at` is less than `window` ms before `now` (a clock set back counts as recent).
fn within(at: Option<u64>, now: u64, window: u64) -> bool {
    at.is_some_and(|t| now.saturating_sub(t) < window)
}

impl RemoteJwks {
    /// The set at `url`, fetched with `http` when first needed; `clock` decides expiry.
    pub fn new(url: String, http: reqwest::Client, clock: SharedClock) -> Self {
        Self {
            url,
            http,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    async fn set(&self, refresh: bool) -> Result<Arc<JwkSet>, JwksError> {
        let mut st = self.state.lock().await;
        let now = self.clock.now_millis();
        let recently_tried = within(st.attempted, now, MIN_REFRESH_MS);
        if let Some(set) = &st.set {
            let fresh = within(st.fetched, now, TTL_MS);
            if (fresh && !refresh) || recently_tried {
                return Ok(set.clone());
            }
        } else if recently_tried {
            return Err(JwksError::Fetch(format!(
                "GET {}: failed moments ago; retrying in a few seconds",
                self.url
            )));
        }
        st.attempted = Some(now);
        match self.fetch().await {
            Ok(set) => {
                let set = Arc::new(set);
                st.set = Some(set.clone());
                st.fetched = Some(now);
                Ok(set)
            }
            // A refetch that fails keeps the keys already known.
            Err(e) => match &st.set {
                Some(set) => {
                    tracing::warn!(error = %e, "JWKS refetch failed; keeping the cached keys");
                    Ok(set.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn fetch(&self) -> Result<JwkSet, JwksError> {
        let fail = |e: String| JwksError::Fetch(format!("GET {}: {e}", self.url));
        let resp = self
            .http
            .get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        let body = crate::net::read_body_limited(resp, MAX_KEY_SET)
            .await
            .map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| fail(format!("not a JWKS: {e}")))
    }

    /// Verifies `token` (signature by the key its header names, or by any signing key when it
    /// names none) with the validation `rules` gives for its algorithm, and decodes its claims.
    pub async fn decode<T: DeserializeOwned>(
        &self,
        token: &str,
        rules: impl Fn(Algorithm) -> Validation,
    ) -> Result<T, JwksError> {
        let bad = |m: String| JwksError::Invalid(m);
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(bad(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let candidates = |set: &JwkSet| -> Vec<Jwk> {
            // Not an encryption key, and if the key names its algorithm, the token's.
            let usable = |k: &&Jwk| {
                !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption))
                    && k.common
                        .key_algorithm
                        .is_none_or(|a| a.to_string() == format!("{:?}", header.alg))
            };
            match &header.kid {
                Some(kid) => set.find(kid).filter(usable).cloned().into_iter().collect(),
                None => set.keys.iter().filter(usable).cloned().collect(),
            }
        };
        let mut keys = candidates(&*self.set(false).await?);
        if keys.is_empty() {
            keys = candidates(&*self.set(true).await?);
        }
        if keys.is_empty() {
            return Err(bad(
                "no key of the issuer's JWKS matches the token's kid".into()
            ));
        }
        let validation = rules(header.alg);
        let mut last = bad("no key of the issuer's JWKS verifies the token".into());
        for jwk in &keys {
            let key = match DecodingKey::from_jwk(jwk) {
                Ok(k) => k,
                Err(e) => {
                    last = bad(format!("JWKS key: {e}"));
                    continue;
                }
            };
            match jsonwebtoken::decode::<T>(token, &key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = bad(e.to_string()),
            }
        }
        Err(last)
    }
}
