//! The OAuth2 token server (PRODUCT §4): the password and client-credentials grants, the JWTs it
//! signs ([`keys`]: Ed25519, in the store), and their verification — for `/verify-token`,
//! `/oauth/introspect` and as client credentials on every API route (through
//! [`crate::identity::Authenticator`]).
//!
//! Failed grants count in the per-address lockout and in a per-username one; an unknown username
//! costs the same Argon2id work as a wrong password (a dummy hash), so timing does not reveal
//! which usernames exist. Issued tokens carry `iss`, `sub` (user or client id), `aud`, `iat`,
//! `exp`, `jti`, `scope`, and `pcl_kind`/`name`; expiry is checked against the gateway's clock. A
//! token of a user or client disabled since it was issued is refused (checked through a 10 s
//! cache). A token whose signature verified is remembered (keyed digest → claims), so repeated
//! use costs a hash instead of an Ed25519 verification; expiry and the subject are checked on
//! every use.

pub mod keys;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::clock::SharedClock;
use crate::identity::BruteForceConfig;
use crate::identity::brute_force::{FailureOutcome, Limiter};
use crate::identity::lockout::{Advance, Lockout};
use crate::seal::EncryptionConfig;
use crate::secret::{Secret, random_bytes};
use crate::store::LOCAL_PROVIDER;
use crate::store::{StoreError, TokenServerStore};
use keys::{KeyError, KeySet};

/// The claims of an issued access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// User id (`usr_…`) or client id (`pcl_…`).
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Issued at (s).
    pub iat: i64,
    /// Expiry (s).
    pub exp: i64,
    /// Not before (s); issued tokens have none, an HS256 peer's may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token id.
    pub jti: String,
    /// Granted scope.
    pub scope: String,
    /// `user` or `client`.
    pub pcl_kind: String,
    /// Username or client name.
    pub name: String,
}

/// Why a grant was refused, as RFC 6749 §5.2 names it.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Malformed request.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// Wrong username or password, or a disabled account.
    #[error("invalid_grant")]
    InvalidGrant,
    /// Client authentication failed.
    #[error("invalid_client")]
    InvalidClient,
    /// Not `password` or `client_credentials`.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// The address or username is locked out.
    #[error("too many failed attempts")]
    Blocked {
        /// Seconds until the block ends.
        retry_after_secs: u64,
    },
    /// The store or the signing key failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, not signed by our keys, wrong algorithm, issuer or audience.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Past its `exp` (or before its `nbf`).
    #[error("token expired")]
    Expired,
    /// Signed with a key this instance does not know (yet): another instance's brand-new key, or
    /// one retired long ago. Not a guess, so not counted toward a lockout.
    #[error("unknown signing key")]
    UnknownKey,
    /// Its user or client was disabled or deleted.
    #[error("the token's subject is disabled")]
    Disabled,
    /// The store or the keys failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        GrantError::Unavailable(e.to_string())
    }
}

impl From<KeyError> for GrantError {
    fn from(e: KeyError) -> Self {
        GrantError::Unavailable(e.to_string())
    }
}

/// An issued token.
#[derive(Debug)]
pub struct Issued {
    /// The JWT.
    pub access_token: Secret,
    /// Seconds it lives.
    pub expires_in: i64,
    /// Granted scope.
    pub scope: String,
}

const SUBJECT_CACHE_MS: i64 = 10_000;
const KEY_RELOAD_MS: i64 = 10_000;
const KEY_MAX_AGE_MS: i64 = 300_000;
/// A token whose signature verified: its claims and the `kid` that verified it (`None` for HS256).
type Verified = (Claims, Option<String>);

/// Most verified tokens remembered.
const VERIFIED_MAX: usize = 50_000;
/// Tolerated clock difference between instances for `exp`/`nbf` (s).
const LEEWAY_S: i64 = 30;

/// The token server.
pub struct TokenServer {
    store: Arc<dyn TokenServerStore>,
    clock: SharedClock,
    issuer: String,
    audience: String,
    lifetime_s: i64,
    keys: RwLock<Option<Arc<KeySet>>>,
    last_reload: AtomicI64,
    ip_limiter: Option<Arc<Lockout<IpAddr>>>,
    user_limiter: Option<Lockout<String>>,
    dummy_hash: tokio::sync::OnceCell<String>,
    subjects: Mutex<HashMap<String, (bool, i64)>>,
    /// Tokens whose signature already verified (keyed digest → claims): a cached token costs a
    /// hash and a map lookup instead of a signature check; expiry and the subject are still
    /// checked on every use.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    verified_key: [u8; 32],
    /// Seals the private signing keys in the store.
    sealer: Option<crate::seal::Sealer>,
    /// HS256 compatibility: issued tokens are signed (and verified) with this shared secret.
    hs256: Option<(jsonwebtoken::EncodingKey, jsonwebtoken::DecodingKey)>,
}

/// Everything [`TokenServer::new`] needs of the configuration (assembled by `config` from
/// `auth.jwt`, `auth.brute_force_protection`, `auth.encryption` and the public URL).
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `iss` of issued tokens (`auth.jwt.issuer`, default the public URL).
    pub issuer: String,
    /// `aud` of issued tokens, required of presented ones.
    pub audience: String,
    /// Lifetime of an issued access token.
    pub lifetime: std::time::Duration,
    /// HS256 compatibility: issued tokens are signed (and verified) with this shared secret.
    pub hs256_secret: Option<Secret>,
    /// The password grant's per-username lockout.
    pub brute_force: BruteForceConfig,
    /// Seals the private signing keys in the store.
    pub encryption: EncryptionConfig,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl TokenServer {
    /// A token server over `store`; failed grants also count in `ip_limiter`.
    pub fn new(
        settings: TokenSettings,
        store: Arc<dyn TokenServerStore>,
        clock: SharedClock,
        ip_limiter: Option<Arc<Lockout<IpAddr>>>,
    ) -> std::io::Result<Self> {
        let user_limiter = Limiter::from_config(&settings.brute_force)
            .map(Lockout::new)
            .transpose()?;
        Ok(Self {
            store,
            clock,
            issuer: settings.issuer,
            audience: settings.audience,
            lifetime_s: settings.lifetime.as_secs() as i64,
            keys: RwLock::new(None),
            last_reload: AtomicI64::new(i64::MIN),
            ip_limiter,
            user_limiter,
            dummy_hash: tokio::sync::OnceCell::new(),
            subjects: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            verified_key: random_bytes::<32>()?,
            sealer: crate::seal::Sealer::from_config(&settings.encryption)
                .ok()
                .flatten(),
            hs256: settings.hs256_secret.as_ref().map(|s| {
                (
                    jsonwebtoken::EncodingKey::from_secret(s.expose().as_bytes()),
                    jsonwebtoken::DecodingKey::from_secret(s.expose().as_bytes()),
                )
            }),
        })
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_millis() as i64
    }

    /// The issuer of the tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The keys: cached, reread every few minutes (a rotation made by the CLI or another
    /// instance is picked up) or when `force`d. One reload at a time; a failed reload keeps the
    /// cached set (and is retried only after the usual interval).
    async fn key_set(&self, force: bool) -> Result<Arc<KeySet>, KeyError> {
        let before = self.last_reload.load(Ordering::Acquire);
        let due = self.now_ms().saturating_sub(before) >= KEY_MAX_AGE_MS;
        if !force
            && !due
            && let Some(k) = self.keys.read().await.as_ref()
        {
            return Ok(k.clone());
        }
        let mut slot = self.keys.write().await;
        if !force
            && self.last_reload.load(Ordering::Acquire) != before
            && let Some(k) = slot.as_ref()
        {
            return Ok(k.clone());
        }
        let now = self.now_ms();
        match keys::load(
            self.store.as_ref(),
            now,
            self.sealer.as_ref(),
            self.lifetime_s * 1000,
        )
        .await
        {
            Ok(set) => {
                let set = Arc::new(set);
                *slot = Some(set.clone());
                self.last_reload.store(now, Ordering::Release);
                Ok(set)
            }
            Err(e) => match slot.as_ref() {
                Some(k) => {
                    tracing::warn!(error = %e, "could not reread the signing keys; keeping the loaded ones");
                    self.last_reload.store(now, Ordering::Release);
                    Ok(k.clone())
                }
                None => Err(e),
            },
        }
    }

    /// Checks that the stored signing key opens with the configured sealing key, and makes the
    /// dummy hash now (so not even the first unknown username takes longer).
    pub async fn check_keys(&self) -> Result<(), KeyError> {
        keys::check(self.store.as_ref(), self.sealer.as_ref()).await?;
        self.dummy()
            .await
            .map_err(|e| KeyError::Key(e.to_string()))?;
        Ok(())
    }

    /// The JWKS document.
    pub async fn jwks(&self) -> Result<serde_json::Value, KeyError> {
        Ok(self.key_set(false).await?.jwks.clone())
    }

    /// The password and client-credentials grants' per-account lockout, when brute-force
    /// protection is on.
    pub fn account_lockout(&self) -> Option<&Lockout<String>> {
        self.user_limiter.as_ref()
    }

    /// The signing keys, newest first (their private halves stay sealed in the records).
    pub async fn list_keys(&self) -> Result<Vec<crate::store::SigningKeyRecord>, StoreError> {
        self.store.list_signing_keys().await
    }

    /// Makes a new signing key; the old ones keep verifying.
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let kid = keys::rotate(self.store.as_ref(), self.now_ms(), self.sealer.as_ref()).await?;
        self.key_set(true).await?;
        Ok(kid)
    }

    /// Starts an attempt on `account` (`user:<name>` or `client:<id>`) from `ip`: refused while
    /// either is locked out; otherwise counted as a failure *before* the (slow) check, in the
    /// same step as the address's lockout check, so a burst of parallel guesses cannot all pass
    /// the lockout check before the first one fails.
    async fn begin_attempt(
        &self,
        ip: IpAddr,
        account: &str,
    ) -> Result<Option<Advance>, GrantError> {
        let now = self.now_ms() as u64;
        let account = account.to_owned();
        if let Some(secs) = self
            .user_limiter
            .as_ref()
            .and_then(|l| l.blocked(&account, now))
        {
            return Err(GrantError::Blocked {
                retry_after_secs: secs,
            });
        }
        let reservation =
            match &self.ip_limiter {
                Some(l) => Some(l.try_reserve(&ip, None, now).await.map_err(|secs| {
                    GrantError::Blocked {
                        retry_after_secs: secs,
                    }
                })?),
                None => None,
            };
        if let Some(Advance {
            outcome: FailureOutcome::Blocked { retry_after_secs },
            ..
        }) = reservation
        {
            tracing::warn!(client_ip = %ip, retry_after_secs, "too many failed token requests: address blocked");
        }
        if let Some(l) = &self.user_limiter
            && let FailureOutcome::Blocked { retry_after_secs } =
                l.record_failure(&account, None, now).await
        {
            tracing::warn!(%account, retry_after_secs, "too many failed token requests: account blocked");
        }
        Ok(reservation)
    }

    /// The attempt was right: its advance failure is taken back (the address's other failures
    /// stay — proving one credential does not excuse guesses at others), the account is cleared.
    async fn attempt_succeeded(&self, ip: IpAddr, account: &str, reservation: Option<Advance>) {
        let now = self.now_ms() as u64;
        if let (Some(l), Some(r)) = (&self.ip_limiter, reservation) {
            l.refund(&ip, r, now).await;
        }
        if let Some(l) = &self.user_limiter {
            l.record_success(&account.to_owned(), now).await;
        }
    }

    /// Argon2id on the process's Argon2 threads ([`crate::identity::argon`]).
    async fn argon_verify(&self, hash: String, secret: &str) -> bool {
        crate::identity::argon::verify(hash, Secret::new(secret)).await
    }

    async fn dummy(&self) -> Result<String, GrantError> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let s = crate::store::hex(
                    &random_bytes::<16>().map_err(|e| GrantError::Unavailable(e.to_string()))?,
                );
                crate::identity::argon::run(move || crate::identity::agent_token::hash_secret(&s))
                    .await
                    .map_err(|e| GrantError::Unavailable(e.to_string()))?
                    .map_err(|e| GrantError::Unavailable(e.to_string()))
            })
            .await
            .cloned()
    }

    /// The password grant.
    pub async fn password_grant(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<Issued, GrantError> {
        let user = self.authenticate_user(username, password, ip).await?;
        self.issue(&user.id, "user", username).await
    }

    /// Checks a local user's password, in the per-address and per-account lockouts, with the
    /// same work for unknown usernames (the password grant and the admin console's sign-in).
    /// A disabled user is refused like a wrong password.
    pub async fn authenticate_user(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<crate::store::User, GrantError> {
        if username.is_empty() || password.is_empty() {
            return Err(GrantError::InvalidRequest(
                "username and password are required",
            ));
        }
        if username.len() > 256 || password.len() > 1024 {
            return Err(GrantError::InvalidRequest("username or password too long"));
        }
        let account = format!("user:{}", username.to_lowercase());
        let reservation = self.begin_attempt(ip, &account).await?;
        let found = self
            .store
            .find_user_with_password(LOCAL_PROVIDER, username)
            .await?;
        // The same work (one query, one Argon2id verification) whether or not the user exists.
        let hash = match found.as_ref().and_then(|(_, h)| h.clone()) {
            Some(h) => h,
            None => self.dummy().await?,
        };
        let matches = self.argon_verify(hash, password).await;
        let user = match found {
            Some((u, Some(_))) if matches && !u.disabled => u,
            _ => return Err(GrantError::InvalidGrant),
        };
        self.attempt_succeeded(ip, &account, reservation).await;
        Ok(user)
    }

    /// The client-credentials grant.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: &str,
        ip: IpAddr,
    ) -> Result<Issued, GrantError> {
        let client = self.authenticate_client(client_id, secret, ip).await?;
        self.issue(&client.id, "client", &client.name).await
    }

    /// Checks a client's credentials (same lockout and same work for unknown ids as the grant).
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
        ip: IpAddr,
    ) -> Result<crate::store::OauthClient, GrantError> {
        if client_id.is_empty() || client_id.len() > 256 || secret.len() > 1024 {
            return Err(GrantError::InvalidClient);
        }
        let account = format!("client:{client_id}");
        let reservation = self.begin_attempt(ip, &account).await?;
        let client = self.store.get_client(client_id).await?;
        let hash = match &client {
            Some(c) => c.secret_hash.clone(),
            None => self.dummy().await?,
        };
        let matches = self.argon_verify(hash, secret).await;
        let client = match client {
            Some(c) if matches && !c.disabled => c,
            _ => return Err(GrantError::InvalidClient),
        };
        self.attempt_succeeded(ip, &account, reservation).await;
        Ok(client)
    }

    async fn issue(&self, sub: &str, kind: &str, name: &str) -> Result<Issued, GrantError> {
        let now = self.now_ms() / 1000;
        let jti = crate::store::hex(
            &random_bytes::<16>().map_err(|e| GrantError::Unavailable(e.to_string()))?,
        );
        // Only the `api` scope exists: a request asking for others gets `api` (RFC 6749 §3.3
        // lets the server grant a different scope; the response says which).
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.lifetime_s,
            nbf: None,
            jti,
            scope: "api".to_owned(),
            pcl_kind: kind.to_owned(),
            name: name.to_owned(),
        };
        let token = match &self.hs256 {
            Some((enc, _)) => jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, enc),
            None => {
                let keys = self.key_set(false).await?;
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some(keys.signing.0.clone());
                jsonwebtoken::encode(&header, &claims, &keys.signing.1)
            }
        }
        .map_err(|e| GrantError::Unavailable(e.to_string()))?;
        Ok(Issued {
            access_token: Secret::new(token),
            expires_in: self.lifetime_s,
            scope: claims.scope,
        })
    }

    /// A token whose signature already verified, checked without any wait: `Some` only when the
    /// loaded key set is current and still has its key, it has not expired, and its subject's
    /// state is cached (everything else is for [`TokenServer::verify`]).
    pub fn verify_cached(&self, token: &str) -> Option<Claims> {
        let digest = *blake3::keyed_hash(&self.verified_key, token.as_bytes()).as_bytes();
        let (claims, kid) = self.verified.lock().ok()?.get(&digest).cloned()?;
        let now_ms = self.now_ms();
        if let Some(kid) = &kid {
            let fresh =
                now_ms.saturating_sub(self.last_reload.load(Ordering::Acquire)) < KEY_MAX_AGE_MS;
            let keys = self.keys.try_read().ok()?;
            if !fresh || !keys.as_ref()?.verifying.contains_key(kid) {
                return None;
            }
        }
        if !in_time(&claims, now_ms / 1000) {
            return None;
        }
        let (on, at) = self.subjects.lock().ok()?.get(&claims.sub).copied()?;
        (on && now_ms - at < SUBJECT_CACHE_MS).then_some(claims)
    }

    /// Verifies a token this server issued: signature (EdDSA only, by `kid`), issuer, audience,
    /// expiry against the gateway's clock, and that its subject is still enabled.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let digest = *blake3::keyed_hash(&self.verified_key, token.as_bytes()).as_bytes();
        let cached = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned());
        // A cached token's key must still verify (it may have been retired and pruned since).
        let still_valid = match &cached {
            Some((_, Some(kid))) => self
                .key_set(false)
                .await
                .is_ok_and(|k| k.verifying.contains_key(kid)),
            Some((_, None)) => true,
            None => false,
        };
        let claims = match cached {
            Some((c, _)) if still_valid => c,
            _ => {
                let (c, kid) = self.verify_signature(token).await?;
                if let Ok(mut m) = self.verified.lock() {
                    if m.len() >= VERIFIED_MAX {
                        let now = self.now_ms() / 1000;
                        m.retain(|_, (c, _)| c.exp > now);
                        if m.len() >= VERIFIED_MAX {
                            m.clear();
                        }
                    }
                    m.insert(digest, (c.clone(), kid));
                }
                c
            }
        };
        if !in_time(&claims, self.now_ms() / 1000) {
            return Err(TokenError::Expired);
        }
        if !self.subject_enabled(&claims).await? {
            return Err(TokenError::Disabled);
        }
        Ok(claims)
    }

    /// Signature, algorithm, issuer, audience and required claims.
    async fn verify_signature(&self, token: &str) -> Result<(Claims, Option<String>), TokenError> {
        let bad = |m: &str| TokenError::Invalid(m.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("not a JWT"))?;
        // The algorithm is decided here, never by the token: EdDSA with our keys, or HS256 only
        // when the compatibility secret is configured.
        let set;
        let mut retired_at = None;
        let kid_used = header
            .kid
            .clone()
            .filter(|_| header.alg == Algorithm::EdDSA);
        let key = match (header.alg, &self.hs256) {
            (Algorithm::HS256, Some((_, dec))) => dec,
            (Algorithm::EdDSA, _) => {
                let kid = header.kid.ok_or_else(|| bad("no kid"))?;
                let unavailable = |e: KeyError| TokenError::Unavailable(e.to_string());
                let mut s = self.key_set(false).await.map_err(unavailable)?;
                if !s.verifying.contains_key(&kid)
                    && self
                        .now_ms()
                        .saturating_sub(self.last_reload.load(Ordering::Relaxed))
                        >= KEY_RELOAD_MS
                {
                    s = self.key_set(true).await.map_err(unavailable)?;
                }
                set = s;
                let (key, retired) = set.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
                retired_at = *retired;
                key
            }
            _ => return Err(bad("algorithm not accepted")),
        };
        let mut v = Validation::new(header.alg);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.set_issuer(&[self.issuer.as_str()]);
        v.set_audience(&[self.audience.as_str()]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &v)
            .map(|d| d.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        // A token lives no longer than this server issues them for, and a retired key signs
        // nothing after its retirement: a leaked old key cannot mint long-lived tokens.
        // Saturating: a token's numbers are the signer's, and a wrapped difference would pass.
        if claims.exp.saturating_sub(claims.iat) > self.lifetime_s.saturating_add(LEEWAY_S) {
            return Err(bad("lifetime longer than issued tokens have"));
        }
        if retired_at.is_some_and(|at| claims.iat.saturating_mul(1000) > at + LEEWAY_S * 1000) {
            return Err(bad("signed after its key was retired"));
        }
        Ok((claims, kid_used))
    }

    async fn subject_enabled(&self, c: &Claims) -> Result<bool, TokenError> {
        let now = self.now_ms();
        if let Some((on, at)) = self
            .subjects
            .lock()
            .ok()
            .and_then(|m| m.get(&c.sub).copied())
            && now - at < SUBJECT_CACHE_MS
        {
            return Ok(on);
        }
        let unavailable = |e: StoreError| TokenError::Unavailable(e.to_string());
        let on = match c.pcl_kind.as_str() {
            "client" => self
                .store
                .get_client(&c.sub)
                .await
                .map_err(unavailable)?
                .is_some_and(|cl| !cl.disabled),
            _ => self
                .store
                .get_user(&c.sub)
                .await
                .map_err(unavailable)?
                .is_some_and(|u| !u.disabled),
        };
        if let Ok(mut m) = self.subjects.lock() {
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(c.sub.clone(), (on, now));
        }
        Ok(on)
    }
}

/// True while `c` is valid at `now` (s), give or take the leeway: not expired, not issued or
/// valid only later. Saturating, whatever numbers the token carries.
fn in_time(c: &Claims, now: i64) -> bool {
    let later = now.saturating_add(LEEWAY_S);
    c.exp.saturating_add(LEEWAY_S) > now && c.iat <= later && c.nbf.is_none_or(|nbf| nbf <= later)
}

/// True when `value` has the shape of a JWS compact token (`xxx.yyy.zzz`, header starting `eyJ`).
pub fn looks_like_jwt(value: &str) -> bool {
    value.starts_with("eyJ") && value.bytes().filter(|b| *b == b'.').count() == 2
}
