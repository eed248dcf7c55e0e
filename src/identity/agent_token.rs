//! Per-device agent tokens (PRODUCT §3.6): `sk-pcl-<id>_<secret><check>`, the shape
//! [`super::token_format`] describes (12-character public id looked up in O(1), 256-bit secret,
//! checksum checked before any store or hash work). Only the secret's Argon2id hash is stored.
//!
//! Verification runs Argon2id at most once per token per cache period: a success is cached under
//! a keyed BLAKE3 digest of the whole token (short TTL, bounded, cleared when the store's revision
//! moves — revocations made anywhere reach every instance within the poll interval). Unknown ids
//! cost one indexed lookup and no hashing. Argon2 runs on the process's Argon2 threads
//! ([`super::argon`]), so a flood can neither starve the async executor nor grow memory; the
//! authenticator counts a slow check before it runs ([`crate::identity::Authenticator`]), so a burst
//! of wrong secrets from one address costs at most `max_failed_attempts` runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use argon2::{Argon2, PasswordHasher};

pub use super::token_format::ParsedToken;
use super::token_format::TokenFormat;
use crate::secret::{Secret, random_bytes};
use crate::store::{AgentTokenRecord, StoreError, TokenVerifierStore};

/// The agent-token format.
pub const FORMAT: TokenFormat = TokenFormat {
    prefix: "sk-pcl-",
    kind: "agent token",
    list_command: "portcullis tokens list",
};
/// Every agent token starts with this.
pub const PREFIX: &str = FORMAT.prefix;
/// Total length of a well-formed token.
pub const TOKEN_LEN: usize = FORMAT.token_len();

/// Checks the shape and checksum; `None` for anything that is not an agent token we issued.
pub fn parse(token: &str) -> Option<ParsedToken<'_>> {
    FORMAT.parse(token)
}

/// How the token appears in logs and listings: `sk-pcl-<id>`.
pub fn display_id(id: &str) -> String {
    FORMAT.display_id(id)
}

/// A newly minted token: the value to show once, and what to store.
#[derive(Debug)]
pub struct MintedToken {
    /// The whole token, shown to the user exactly once.
    pub token: Secret,
    /// Public id.
    pub id: String,
    /// Argon2id PHC string of the secret.
    pub secret_hash: String,
}

/// Mints a token (runs Argon2id: call from a blocking context or `spawn_blocking`).
pub fn mint() -> std::io::Result<MintedToken> {
    let fresh = FORMAT.draw()?;
    let secret_hash = hash_secret(fresh.secret.expose())?;
    Ok(MintedToken {
        token: fresh.token,
        id: fresh.id,
        secret_hash,
    })
}

/// The token made of `id` and `secret`, with its checksum. Both must be base62 of the right
/// length for the result to parse.
pub fn assemble(id: &str, secret: &str) -> Secret {
    FORMAT.assemble(id, secret)
}

/// Argon2id (default parameters) of `secret`, as a PHC string.
pub fn hash_secret(secret: &str) -> std::io::Result<String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| std::io::Error::other(format!("argon2: {e}")))
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenFailure {
    /// Not a well-formed token (checked without any store or hash work).
    #[error("malformed agent token")]
    Malformed,
    /// No token has this id.
    #[error("unknown agent token")]
    Unknown,
    /// The token was revoked.
    #[error("revoked agent token")]
    Revoked,
    /// The id exists but the secret is wrong.
    #[error("wrong agent token secret")]
    Wrong,
    /// The owner is disabled.
    #[error("the token's user is disabled")]
    UserDisabled,
    /// The token is valid but its SSO session has lapsed.
    #[error("the token's session has expired")]
    SessionExpired {
        /// Public id of the token.
        token_id: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who an agent token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// Public id.
    pub token_id: Arc<str>,
    /// Owner's user id.
    pub user_id: Arc<str>,
}

#[derive(Debug, Clone)]
struct CacheEntry {
    identity: TokenIdentity,
    session_expires_at: Option<i64>,
    cached_at: i64,
    touched_at: i64,
}

/// How long a verified token is trusted without asking the store (ms).
const CACHE_TTL_MS: i64 = 60_000;
/// Most cached tokens.
const CACHE_MAX: usize = 50_000;
/// Most remembered wrong tokens.
const WRONG_MAX: usize = 10_000;
/// How often a used token's `last_used_at` is written at most (ms).
const TOUCH_EVERY_MS: i64 = 60_000;

/// Verifies agent tokens against the store, with the cache and the Argon2 bound.
pub struct TokenVerifier {
    store: Arc<dyn TokenVerifierStore>,
    cache_key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
    verifications: AtomicU64,
    seen_revision: super::SeenRevision,
    /// Tokens (keyed digests) whose secret was wrong recently, with when that stops counting.
    wrong: Mutex<HashMap<[u8; 32], i64>>,
    /// Per-token gates: one verification of a given token at a time.
    gates: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped by every cache clear: a verification that read the store before a clear (a
    /// revocation) must not put its stale answer back into the cache afterwards.
    generation: AtomicU64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("verifications", &self.verifications)
            .finish()
    }
}

/// What [`TokenVerifier::verify`] learned about the caller, for the `last_used` record.
#[derive(Debug, Clone)]
pub struct UseContext<'a> {
    /// Client address.
    pub ip: std::net::IpAddr,
    /// Client user agent.
    pub user_agent: Option<&'a str>,
}

impl TokenVerifier {
    /// A verifier over `store`.
    pub fn new(store: Arc<dyn TokenVerifierStore>) -> std::io::Result<Self> {
        Ok(Self {
            store,
            cache_key: random_bytes::<32>()?,
            cache: Mutex::new(HashMap::new()),
            verifications: AtomicU64::new(0),
            seen_revision: super::SeenRevision::new(),
            generation: AtomicU64::new(0),
            wrong: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
        })
    }

    /// Argon2id verifications run so far (the cache and the unknown-id path avoid them).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Forgets every cached verification (after a revocation, rename or session change).
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            c.clear();
        }
    }

    /// Clears the cache when `revision` differs from the last one seen (the first call only
    /// learns it).
    pub fn observe_revision(&self, revision: i64) {
        if self.seen_revision.moved_to(revision) {
            self.clear_cache();
        }
    }

    /// Polls the store's revision and clears the cache if it moved.
    pub async fn sync_revision(&self) -> Result<(), StoreError> {
        self.observe_revision(self.store.revision().await?);
        Ok(())
    }

    /// Verifies `token` at `now_ms`.
    pub async fn verify(
        &self,
        token: &str,
        now_ms: i64,
        ctx: UseContext<'_>,
    ) -> Result<TokenIdentity, TokenFailure> {
        let parsed = parse(token).ok_or(TokenFailure::Malformed)?;
        let key = *blake3::keyed_hash(&self.cache_key, token.as_bytes()).as_bytes();
        if let Some(answer) = self.cached_answer(&parsed, &key, now_ms, &ctx).await {
            return answer;
        }
        // One verification per token at a time: concurrent first uses of the same token wait for
        // the first one's answer instead of each running Argon2id.
        let gate = self.gate(&key);
        let answer = {
            let _turn = gate.lock().await;
            match self.cached_answer(&parsed, &key, now_ms, &ctx).await {
                Some(answer) => answer,
                None => self.verify_uncached(&parsed, key, now_ms, &ctx).await,
            }
        };
        self.release_gate(&key, gate);
        answer
    }

    /// A verified token straight from the cache, without any wait: `Some` only for a fresh
    /// entry whose session has not lapsed (everything else — unknown, known wrong, lapsed — is
    /// for [`TokenVerifier::verify`]).
    pub fn cached(&self, token: &str, now_ms: i64, ctx: &UseContext<'_>) -> Option<TokenIdentity> {
        parse(token)?;
        let key = *blake3::keyed_hash(&self.cache_key, token.as_bytes()).as_bytes();
        let entry = self
            .cache
            .lock()
            .ok()?
            .get(&key)
            .filter(|e| now_ms - e.cached_at < CACHE_TTL_MS)
            .filter(|e| e.session_expires_at.is_none_or(|t| t > now_ms))
            .cloned()?;
        if now_ms - entry.touched_at >= TOUCH_EVERY_MS {
            self.touch(&key, &entry.identity, now_ms, ctx);
        }
        Some(entry.identity)
    }

    /// The answer from the caches, if they have one: a verified token (with its session checked
    /// against the store when the cached session has lapsed), or a token that failed recently.
    async fn cached_answer(
        &self,
        parsed: &ParsedToken<'_>,
        key: &[u8; 32],
        now_ms: i64,
        ctx: &UseContext<'_>,
    ) -> Option<Result<TokenIdentity, TokenFailure>> {
        let generation = self.generation.load(Ordering::Acquire);
        let cached = self.cache.lock().ok().and_then(|c| c.get(key).cloned());
        let Some(mut entry) = cached.filter(|e| now_ms - e.cached_at < CACHE_TTL_MS) else {
            let wrong = self
                .wrong
                .lock()
                .ok()
                .and_then(|w| w.get(key).copied())
                .is_some_and(|until| until > now_ms);
            return wrong.then_some(Err(TokenFailure::Wrong));
        };
        if entry.session_expires_at.is_some_and(|t| t <= now_ms) {
            // The secret is known good; only the session may have moved (a re-login on any
            // instance), so ask the store for the record — no hashing.
            let record = match self.store.get_token(parsed.id).await {
                Ok(Some(r)) => r,
                Ok(None) => return Some(Err(TokenFailure::Unknown)),
                Err(e) => return Some(Err(e.into())),
            };
            if record.revoked_at.is_some() {
                return Some(Err(TokenFailure::Revoked));
            }
            if record.session_expires_at.is_some_and(|t| t <= now_ms) {
                return Some(Err(TokenFailure::SessionExpired {
                    token_id: parsed.id.to_owned(),
                }));
            }
            entry.session_expires_at = record.session_expires_at;
            self.remember(*key, entry.clone(), generation);
        }
        if now_ms - entry.touched_at >= TOUCH_EVERY_MS {
            self.touch(key, &entry.identity, now_ms, ctx);
        }
        Some(Ok(entry.identity))
    }

    fn gate(&self, key: &[u8; 32]) -> Arc<tokio::sync::Mutex<()>> {
        match self.gates.lock() {
            Ok(mut g) => g.entry(*key).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    fn release_gate(&self, key: &[u8; 32], gate: Arc<tokio::sync::Mutex<()>>) {
        if let Ok(mut g) = self.gates.lock()
            && Arc::strong_count(&gate) <= 2
        {
            g.remove(key);
        }
    }

    /// Store lookup and Argon2id, for a token the caches know nothing about.
    async fn verify_uncached(
        &self,
        parsed: &ParsedToken<'_>,
        key: [u8; 32],
        now_ms: i64,
        ctx: &UseContext<'_>,
    ) -> Result<TokenIdentity, TokenFailure> {
        let generation = self.generation.load(Ordering::Acquire);
        let record = self
            .store
            .get_token(parsed.id)
            .await?
            .ok_or(TokenFailure::Unknown)?;
        if record.revoked_at.is_some() {
            return Err(TokenFailure::Revoked);
        }
        if !self.check_secret(parsed.secret, &record).await {
            self.remember_wrong(key, now_ms);
            return Err(TokenFailure::Wrong);
        }
        let user = self.store.get_user(&record.user_id).await?;
        if user.is_none_or(|u| u.disabled) {
            return Err(TokenFailure::UserDisabled);
        }
        let identity = TokenIdentity {
            token_id: Arc::from(record.id.as_str()),
            user_id: Arc::from(record.user_id.as_str()),
        };
        self.remember(
            key,
            CacheEntry {
                identity: identity.clone(),
                session_expires_at: record.session_expires_at,
                cached_at: now_ms,
                touched_at: now_ms,
            },
            generation,
        );
        if record.session_expires_at.is_some_and(|t| t <= now_ms) {
            return Err(TokenFailure::SessionExpired {
                token_id: record.id,
            });
        }
        self.touch(&key, &identity, now_ms, ctx);
        Ok(identity)
    }

    /// Remembers that this exact token failed (wrong secret), so repeating it costs no Argon2id
    /// run until the cache period ends. Bounded: when full, the table is emptied.
    fn remember_wrong(&self, key: [u8; 32], now_ms: i64) {
        if let Ok(mut w) = self.wrong.lock() {
            let until = now_ms + CACHE_TTL_MS;
            super::insert_bounded(&mut w, WRONG_MAX, key, until, |t| *t <= now_ms);
        }
    }

    async fn check_secret(&self, secret: &str, record: &AgentTokenRecord) -> bool {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        super::argon::verify(record.secret_hash.clone(), Secret::new(secret)).await
    }

    /// Caches `entry` unless the cache was cleared since `generation` was read.
    fn remember(&self, key: [u8; 32], entry: CacheEntry, generation: u64) {
        if let Ok(mut c) = self.cache.lock() {
            if self.generation.load(Ordering::Acquire) != generation {
                return;
            }
            if c.len() >= CACHE_MAX {
                let stale: Vec<[u8; 32]> = c.iter().take(64).map(|(k, _)| *k).collect();
                for k in stale {
                    c.remove(&k);
                }
            }
            c.insert(key, entry);
        }
    }

    /// Records the use in the background (at most once a minute per cached token).
    fn touch(&self, key: &[u8; 32], identity: &TokenIdentity, now_ms: i64, ctx: &UseContext<'_>) {
        if let Ok(mut c) = self.cache.lock()
            && let Some(e) = c.get_mut(key)
        {
            e.touched_at = now_ms;
        }
        let store = self.store.clone();
        let id = identity.token_id.clone();
        let ip = ctx.ip.to_string();
        let ua = ctx
            .user_agent
            .map(|u| u.chars().take(200).collect::<String>());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id, now_ms, &ip, ua.as_deref()).await {
                tracing::warn!(error = %e, token = %display_id(&id), "could not record the token's use");
            }
        });
    }
}

/// `active`, `revoked` or `session expired` at `now`.
pub fn token_status(t: &AgentTokenRecord, now: i64) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.session_expires_at.is_some_and(|s| s <= now) {
        "session expired"
    } else {
        "active"
    }
}

/// A token as the management API and `tokens list --json` show it: never the secret or its hash;
/// times in ISO 8601 (UTC), `null` when unset.
pub fn token_view(t: &AgentTokenRecord, user: &str, now: i64) -> serde_json::Value {
    let time = |ms: Option<i64>| ms.map(|m| crate::clock::iso8601(m.max(0) as u64));
    serde_json::json!({
        "id": display_id(&t.id),
        "user_id": t.user_id,
        "user": user,
        "name": t.name,
        "created_at": time(Some(t.created_at)),
        "last_used_at": time(t.last_used_at),
        "last_ip": t.last_ip,
        "last_user_agent": t.last_user_agent,
        "session_expires_at": time(t.session_expires_at),
        "revoked_at": time(t.revoked_at),
        "status": token_status(t, now),
    })
}

/// `sk-pcl-abc` or `abc` → `abc`.
pub fn bare_id(id: &str) -> &str {
    FORMAT.bare_id(id)
}

/// The token id a command-line argument names: the whole token (checked, so a mistyped one is
/// not read as an id), `sk-pcl-<id>`, or `<id>`.
pub fn id_from_argument(arg: &str) -> Result<&str, String> {
    FORMAT.id_from_argument(arg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[test]
    fn minted_tokens_parse_and_store_an_argon2id_hash_of_the_secret() {
        let m = mint().unwrap();
        let t = m.token.expose();
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(t.starts_with("sk-pcl-"));
        let p = parse(t).unwrap();
        assert_eq!(p.id, m.id);
        assert!(m.secret_hash.starts_with("$argon2id$"));
        assert!(
            Argon2::default()
                .verify_password(p.secret.as_bytes(), m.secret_hash.as_str())
                .is_ok()
        );
        assert_eq!(display_id("abc"), "sk-pcl-abc");
        assert_eq!(id_from_argument(&display_id(&m.id)), Ok(m.id.as_str()));
    }
}
