//! Virtual keys (PRODUCT §7): issued API keys, `sk-pvk-<id>_<secret><check>` — the agent-token
//! shape ([`super::token_format`]) under its own prefix — each with a name, an optional owner
//! (a user), an optional expiry and the [`Rules`](crate::rules::Rules) it carries. Managing them is [`manage`].
//!
//! Only a hash of the secret is stored. The secret is 256 random bits, so a fast hash is as good
//! as a slow one (nobody can enumerate 2²⁵⁶ candidates against a stolen table): BLAKE3 in its
//! key-derivation mode under this module's context string, compared in constant time — no
//! Argon2id per request.
//!
//! [`KeyVerifier`] checks a presented key: shape and checksum first (a malformed key costs no
//! store query), then the record by its public id from a cache (short TTL, bounded, cleared when
//! the store revision moves — the `tokens.sync_revision` job polls it every second, so a revoke,
//! an update or an owner disabled on any instance is enforced everywhere within a second; a
//! generation guard keeps a lookup that raced a clear from caching what it read), unknown ids
//! remembered for a while in a bounded table so a flood of the same random ids does not reach the
//! store, then the hash, then revocation, expiry (the gateway clock) and the owner.

pub mod manage;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::KeyIdentity;
use super::token_format::TokenFormat;
use crate::secret::Secret;
use crate::store::{KeyVerifierStore, StoreError, VirtualKeyRecord};

/// The virtual-key format.
pub const FORMAT: TokenFormat = TokenFormat {
    prefix: "sk-pvk-",
    kind: "virtual key",
    list_command: "portcullis keys list",
};

/// The context string of the secret's hash (BLAKE3 key derivation): changing it invalidates
/// every stored key.
const HASH_CONTEXT: &str = "portcullis virtual key v1";

/// How the key appears in logs and listings: `sk-pvk-<id>`.
pub fn display_id(id: &str) -> String {
    FORMAT.display_id(id)
}

/// The stored form of `secret`: 64 hex digits of its BLAKE3 derived key.
pub fn hash_secret(secret: &str) -> String {
    crate::store::hex(&blake3::derive_key(HASH_CONTEXT, secret.as_bytes()))
}

/// A newly minted key: the value to show once, and what to store.
#[derive(Debug)]
pub struct MintedKey {
    /// The whole key, shown to the operator exactly once.
    pub key: Secret,
    /// Public id.
    pub id: String,
    /// [`hash_secret`] of the secret.
    pub secret_hash: String,
}

/// Mints a key (cheap: no slow hash).
pub fn mint() -> std::io::Result<MintedKey> {
    let fresh = FORMAT.draw()?;
    Ok(MintedKey {
        secret_hash: hash_secret(fresh.secret.expose()),
        key: fresh.token,
        id: fresh.id,
    })
}

/// Why a key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyFailure {
    /// Not a well-formed key (checked without any store work).
    #[error("malformed virtual key")]
    Malformed,
    /// No key has this id.
    #[error("unknown virtual key")]
    Unknown,
    /// The id exists but the secret is wrong.
    #[error("wrong virtual key secret")]
    Wrong,
    /// The key was revoked.
    #[error("revoked virtual key")]
    Revoked,
    /// The key's expiry has passed.
    #[error("expired virtual key")]
    Expired,
    /// The key's owner is disabled (or gone).
    #[error("the virtual key's owner is disabled")]
    OwnerDisabled,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl KeyFailure {
    /// True when the failure says the caller does not hold a key (a malformed value, an unknown
    /// id, a wrong secret): a guess, counted by the lockout. A revoked or expired key, or one
    /// whose owner is disabled, was genuine.
    pub fn is_guess(&self) -> bool {
        matches!(self, Self::Malformed | Self::Unknown | Self::Wrong)
    }
}

/// A key as last read from the store, with what its checks need.
#[derive(Debug, Clone)]
struct Known {
    hash: [u8; 32],
    identity: KeyIdentity,
    expires_at: Option<i64>,
    revoked: bool,
    owner_disabled: bool,
    cached_at: i64,
}

/// How long a key read from the store is trusted (ms). Changes arrive through the revision
/// within a second; this bounds the damage should that poll fail.
const CACHE_TTL_MS: i64 = 30_000;
/// Most cached keys.
const CACHE_MAX: usize = 50_000;
/// How long an unknown id is remembered (ms).
const UNKNOWN_TTL_MS: i64 = 60_000;
/// Most remembered unknown ids.
const UNKNOWN_MAX: usize = 10_000;

/// Verifies virtual keys against the store, through its caches.
pub struct KeyVerifier {
    store: Arc<dyn KeyVerifierStore>,
    cache: RwLock<HashMap<Box<str>, Known>>,
    /// Ids the store did not know, with when that stops being believed.
    unknown: RwLock<HashMap<Box<str>, i64>>,
    /// Bumped by every clear: a lookup that read the store before a clear (a revocation) must
    /// not put its stale answer back afterwards.
    generation: AtomicU64,
    seen_revision: super::SeenRevision,
    lookups: AtomicU64,
}

impl std::fmt::Debug for KeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVerifier")
            .field("lookups", &self.lookups)
            .finish()
    }
}

impl KeyVerifier {
    /// A verifier over `store`.
    pub fn new(store: Arc<dyn KeyVerifierStore>) -> Self {
        Self {
            store,
            cache: RwLock::new(HashMap::new()),
            unknown: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            seen_revision: super::SeenRevision::new(),
            lookups: AtomicU64::new(0),
        }
    }

    /// Store lookups made so far (the caches and the shape check avoid them).
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Forgets every cached key and unknown id (after a revocation or an update).
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            c.clear();
        }
        if let Ok(mut u) = self.unknown.write() {
            u.clear();
        }
    }

    /// Clears the caches when `revision` differs from the last one seen (the first call only
    /// learns it).
    pub fn observe_revision(&self, revision: i64) {
        if self.seen_revision.moved_to(revision) {
            self.clear_cache();
        }
    }

    /// Verifies `key` at `now_ms`.
    pub async fn verify(&self, key: &str, now_ms: i64) -> Result<KeyIdentity, KeyFailure> {
        let parsed = FORMAT.parse(key).ok_or(KeyFailure::Malformed)?;
        let known = match self.cached(parsed.id, now_ms)? {
            Some(k) => k,
            None => self.load(parsed.id, now_ms).await?,
        };
        let presented = blake3::derive_key(HASH_CONTEXT, parsed.secret.as_bytes());
        let right: bool = subtle::ConstantTimeEq::ct_eq(&presented[..], &known.hash[..]).into();
        if !right {
            return Err(KeyFailure::Wrong);
        }
        if known.revoked {
            return Err(KeyFailure::Revoked);
        }
        if known.expires_at.is_some_and(|t| t <= now_ms) {
            return Err(KeyFailure::Expired);
        }
        if known.owner_disabled {
            return Err(KeyFailure::OwnerDisabled);
        }
        Ok(known.identity)
    }

    /// The caches' answer: a fresh record, a recently unknown id (`Err(Unknown)`), or `None`.
    fn cached(&self, id: &str, now_ms: i64) -> Result<Option<Known>, KeyFailure> {
        let hit = self.cache.read().ok().and_then(|c| {
            c.get(id)
                .filter(|k| now_ms - k.cached_at < CACHE_TTL_MS)
                .cloned()
        });
        if hit.is_some() {
            return Ok(hit);
        }
        let unknown = self
            .unknown
            .read()
            .ok()
            .and_then(|u| u.get(id).copied())
            .is_some_and(|until| until > now_ms);
        if unknown {
            return Err(KeyFailure::Unknown);
        }
        Ok(None)
    }

    /// Reads the key and its owner from the store, and caches what it read.
    async fn load(&self, id: &str, now_ms: i64) -> Result<Known, KeyFailure> {
        let generation = self.generation.load(Ordering::Acquire);
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let Some(record) = self.store.get_key(id).await? else {
            self.remember_unknown(id, now_ms, generation);
            return Err(KeyFailure::Unknown);
        };
        let owner_disabled = match &record.owner {
            Some(owner) => self.store.get_user(owner).await?.is_none_or(|u| u.disabled),
            None => false,
        };
        let known = known_from(record, owner_disabled, now_ms)?;
        self.remember(id, known.clone(), generation);
        Ok(known)
    }

    /// Caches `known` unless the cache was cleared since `generation` was read.
    fn remember(&self, id: &str, known: Known, generation: u64) {
        if let Ok(mut c) = self.cache.write()
            && self.generation.load(Ordering::Acquire) == generation
        {
            let now = known.cached_at;
            let stale = |k: &Known| now - k.cached_at >= CACHE_TTL_MS;
            super::insert_bounded(&mut c, CACHE_MAX, id.into(), known, stale);
        }
    }

    /// Remembers that the store does not know `id`, unless the caches were cleared since
    /// `generation` was read.
    fn remember_unknown(&self, id: &str, now_ms: i64, generation: u64) {
        if let Ok(mut u) = self.unknown.write()
            && self.generation.load(Ordering::Acquire) == generation
        {
            let until = now_ms + UNKNOWN_TTL_MS;
            super::insert_bounded(&mut u, UNKNOWN_MAX, id.into(), until, |t| *t <= now_ms);
        }
    }
}

/// The cache entry of a stored key.
fn known_from(
    record: VirtualKeyRecord,
    owner_disabled: bool,
    now_ms: i64,
) -> Result<Known, KeyFailure> {
    let mut hash = [0u8; 32];
    let decoded = decode_hex(&record.secret_hash, &mut hash);
    if !decoded {
        tracing::error!(key = %display_id(&record.id), "the stored hash of the virtual key is unreadable; the key cannot be used");
        return Err(KeyFailure::Wrong);
    }
    Ok(Known {
        hash,
        expires_at: record.expires_at,
        revoked: record.revoked_at.is_some(),
        owner_disabled,
        cached_at: now_ms,
        identity: KeyIdentity {
            id: Arc::from(record.id.as_str()),
            name: Arc::from(record.name.as_str()),
            owner: record.owner.as_deref().map(Arc::from),
            rules: Arc::new(record.rules),
        },
    })
}

/// Decodes 64 lower- or upper-case hex digits into `out`; false for anything else.
fn decode_hex(text: &str, out: &mut [u8; 32]) -> bool {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return false;
    }
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_store_only_a_hash_of_the_secret() {
        let m = mint().unwrap();
        let k = m.key.expose();
        assert!(k.starts_with("sk-pvk-"));
        assert_eq!(k.len(), FORMAT.token_len());
        let p = FORMAT.parse(k).unwrap();
        assert_eq!(p.id, m.id);
        assert_eq!(m.secret_hash, hash_secret(p.secret));
        assert_eq!(m.secret_hash.len(), 64);
        assert!(!m.secret_hash.contains(p.secret) && !k.contains(&m.secret_hash));
        assert_ne!(hash_secret(p.secret), hash_secret(&p.secret.to_uppercase()));
        // An agent token's body under this prefix fails the checksum (the prefix is covered).
        let token = super::super::agent_token::mint().unwrap();
        let swapped = token.token.expose().replacen("sk-pcl-", "sk-pvk-", 1);
        assert!(FORMAT.parse(&swapped).is_none());
        assert_eq!(display_id("abc"), "sk-pvk-abc");
    }

    #[test]
    fn stored_hashes_decode_and_anything_else_is_refused() {
        let mut out = [0u8; 32];
        let h = hash_secret("s");
        assert!(decode_hex(&h, &mut out));
        assert_eq!(crate::store::hex(&out), h);
        assert!(decode_hex(&h.to_uppercase(), &mut out));
        for bad in ["", &h[..62], &format!("{h}00"), &format!("zz{}", &h[2..])] {
            assert!(!decode_hex(bad, &mut out), "{bad}");
        }
    }

    #[test]
    fn only_guesses_count_for_the_lockout() {
        for f in [
            KeyFailure::Malformed,
            KeyFailure::Unknown,
            KeyFailure::Wrong,
        ] {
            assert!(f.is_guess(), "{f}");
        }
        for f in [
            KeyFailure::Revoked,
            KeyFailure::Expired,
            KeyFailure::OwnerDisabled,
            KeyFailure::Store(StoreError::Query("down".into())),
        ] {
            assert!(!f.is_guess(), "{f}");
        }
    }
}
