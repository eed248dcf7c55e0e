//! SSO login (PRODUCT §3): the domain side of the browser flow that turns an identity-provider
//! login into a per-device agent token. HTML and HTTP live in `api::sso_pages`; this module only
//! decides.
//!
//! The steps, each usable from any instance because all state is in the store:
//! 1. [`Sso::login_url`] makes the sandbox answer's link ([`link`]) — no store write.
//! 2. [`Sso::start`] consumes the link and records a login flow (state hash, PKCE verifier, nonce);
//!    the browser goes to the provider ([`provider`]).
//! 3. [`Sso::callback`] takes the flow back by `state`, verifies the provider's answer, records
//!    the user and authorizes: single-user mode prints a confirmation code on the console
//!    ([`authorize`]) and waits for [`Sso::confirm`]; enterprise mode asks the authorization API.
//! 4. Completion mints a new agent token for the device — or, for a re-authentication link,
//!    extends the session of the token it is bound to, so the agent's token stays the same — and
//!    opens a browser session for the devices page.

pub mod authorize;
pub mod link;
pub mod provider;
mod session;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::OnceCell;

use crate::clock::SharedClock;
use crate::config::{EncryptionConfig, SsoAuthorizationMode, SsoConfig};
use crate::identity::agent_token;
use crate::identity::brute_force::FailureOutcome;
use crate::identity::lockout::Lockout;
use crate::notify::{Notifier, OperatorEvent};
use crate::secret::{Secret, random_bytes};
use crate::store::{
    AgentTokenRecord, LoginFlow, LoginStore, PendingAuthorization, SsoStore, StoreError, User, hex,
};
use authorize::{Confirmation, EnterpriseApi};
use link::{LinkClaims, LinkError};
use provider::{CodeExchange, Identity, Provider, ProviderError};

/// How long an OAuth login may take between leaving for the provider and coming back.
const FLOW_TTL_MS: i64 = 10 * 60 * 1000;

/// Why a step of the login failed. Each maps to a page that says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The login link is malformed or was not made here.
    #[error("invalid login link")]
    LinkInvalid,
    /// The login link is older than 10 minutes.
    #[error("expired login link")]
    LinkExpired,
    /// The login link was already used.
    #[error("login link already used")]
    LinkUsed,
    /// No such provider.
    #[error("unknown identity provider")]
    UnknownProvider,
    /// The callback's `state` matches no login in progress (unknown, used or expired).
    #[error("no login in progress for this state")]
    UnknownState,
    /// The callback came to a browser other than the one that started the login.
    #[error("the login was started in another browser")]
    OtherBrowser,
    /// The provider reported an error on the callback.
    #[error("the identity provider reported: {0}")]
    ProviderReported(String),
    /// Talking to the provider failed, or its answer did not verify.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The enterprise authorization API did not say yes.
    #[error("not authorized: {0}")]
    Denied(String),
    /// The user account is disabled.
    #[error("the account is disabled")]
    UserDisabled,
    /// No confirmation is waiting for this browser.
    #[error("no login is waiting for a confirmation code")]
    NoPending,
    /// Wrong confirmation code.
    #[error("incorrect confirmation code")]
    WrongCode {
        /// Attempts still allowed.
        attempts_left: i64,
    },
    /// Out of attempts: the login is abandoned.
    #[error("too many incorrect confirmation codes")]
    CodeExhausted,
    /// The confirmation code expired.
    #[error("the confirmation code has expired")]
    CodeExpired,
    /// The address is locked out by the brute-force limiter.
    #[error("too many failed attempts from this address")]
    Blocked {
        /// Seconds until the block ends.
        retry_after_secs: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Randomness or a hashing thread failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<LinkError> for SsoError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Invalid => SsoError::LinkInvalid,
            LinkError::Expired => SsoError::LinkExpired,
        }
    }
}

fn internal(e: impl std::fmt::Display) -> SsoError {
    SsoError::Internal(e.to_string())
}

/// What the callback leads to.
#[derive(Debug)]
pub enum CallbackOutcome {
    /// Single-user mode: the browser must enter the console code. The value is the flow cookie.
    NeedsConfirmation {
        /// Opaque value for the browser's flow cookie.
        flow_cookie: Secret,
        /// Who logged in.
        user: User,
    },
    /// Enterprise mode said yes: the login is complete.
    Completed(Box<Completed>),
}

/// A finished login.
#[derive(Debug)]
pub struct Completed {
    /// The user.
    pub user: User,
    /// The token shown once, or the token whose session was extended.
    pub grant: Grant,
    /// Opaque value for the browser's session cookie.
    pub session_cookie: Secret,
    /// When the session (token's and browser's) ends (ms).
    pub session_expires_at: i64,
}

/// The agent token a login produced.
#[derive(Debug)]
pub enum Grant {
    /// A new device token, to show exactly once.
    NewToken {
        /// The token.
        token: Secret,
        /// Its stored record.
        record: AgentTokenRecord,
    },
    /// A re-authentication: the existing token works again.
    Renewed {
        /// The token's record.
        record: AgentTokenRecord,
    },
}

struct Keys {
    link: [u8; 32],
    code: [u8; 32],
}

/// The SSO service.
pub struct Sso {
    providers: BTreeMap<String, Provider>,
    public_url: String,
    session_ms: i64,
    mode: SsoAuthorizationMode,
    confirmation: Confirmation,
    enterprise: Option<EnterpriseApi>,
    store: Arc<dyn LoginStore>,
    clock: SharedClock,
    notifier: Arc<dyn Notifier>,
    limiter: Option<Arc<Lockout<IpAddr>>>,
    keys: OnceCell<Keys>,
    /// `auth.encryption`: the shared keys are sealed at rest when it seals.
    encryption: EncryptionConfig,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("mode", &self.mode)
            .finish()
    }
}

pub use crate::secret::pkce_challenge;

/// The associated data of shared secret `name` when sealed.
fn shared_secret_context(name: &str) -> String {
    format!("gateway_secrets/{name}")
}

/// Re-seals the shared SSO keys (the login-link and confirmation-code keys) under `sealer`'s
/// current key, those stored in clear included; for `portcullis auths rekey`. Returns how many
/// it rewrote.
pub async fn reseal_shared_secrets(
    store: &dyn SsoStore,
    sealer: Option<&crate::seal::Sealer>,
) -> Result<usize, SsoError> {
    let Some(s) = sealer.filter(|s| s.seals()) else {
        return Ok(0);
    };
    let mut changed = 0;
    for (name, stored) in store.list_shared_secrets().await? {
        if !crate::seal::needs_reseal(sealer, &stored) {
            continue;
        }
        let ctx = shared_secret_context(&name);
        let plain = crate::seal::open(sealer, &stored, &ctx)
            .map_err(|e| internal(format!("stored secret {name}: {e}")))?;
        let sealed = s.seal(&plain, &ctx).map_err(internal)?;
        if store.replace_shared_secret(&name, &stored, &sealed).await? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// A random URL-safe value of 256 bits.
/// A configured count (hours, minutes) as a signed number for millisecond arithmetic; the
/// configuration bounds it far below where this could saturate.
fn whole(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn random_token() -> Result<String, SsoError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>().map_err(internal)?))
}

/// How a high-entropy browser value is stored (its hash; the value itself only in the cookie).
pub fn value_hash(value: &str) -> String {
    hex(blake3::hash(value.as_bytes()).as_bytes())
}

impl Sso {
    /// Builds the service from its validated configuration section, the base URL browsers use
    /// and the sealing keys (for the shared secrets it keeps in the store). `limiter` is the
    /// per-address lockout shared with API authentication.
    pub fn new(
        sso: &SsoConfig,
        public_url: String,
        encryption: &EncryptionConfig,
        store: Arc<dyn LoginStore>,
        clock: SharedClock,
        notifier: Arc<dyn Notifier>,
        limiter: Option<Arc<Lockout<IpAddr>>>,
    ) -> Result<Self, reqwest::Error> {
        let http = crate::net::outbound_client(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(15),
        )?;
        let providers = sso
            .providers
            .iter()
            .map(|(name, c)| {
                let p = Provider::new(name, c, http.clone(), clock.clone());
                (name.clone(), p)
            })
            .collect();
        let a = &sso.authorization;
        let enterprise = match (a.mode, &a.api_url) {
            (SsoAuthorizationMode::Enterprise, Some(url)) => Some(EnterpriseApi::new(
                url.clone(),
                a.api_secret.clone(),
                std::time::Duration::from_secs(a.api_timeout_seconds),
            )?),
            _ => None,
        };
        Ok(Self {
            providers,
            public_url,
            session_ms: whole(sso.session_lifetime_hours).saturating_mul(3_600_000),
            mode: a.mode,
            confirmation: Confirmation {
                ttl_ms: whole(a.confirmation_code_expiry_minutes).saturating_mul(60_000),
                max_attempts: i64::from(a.max_confirmation_attempts),
            },
            enterprise,
            store,
            clock,
            notifier,
            limiter,
            keys: OnceCell::new(),
            encryption: encryption.clone(),
        })
    }

    fn now(&self) -> i64 {
        self.clock.now_millis() as i64
    }

    /// The base URL browsers use.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// How long a confirmation code lives, in seconds.
    pub fn confirmation_ttl_secs(&self) -> i64 {
        self.confirmation.ttl_ms / 1000
    }

    /// Configured providers, in name order: `(name, label)`.
    pub fn providers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.providers
            .values()
            .map(|p| (p.name.as_str(), p.display_name.as_str()))
    }

    async fn keys(&self) -> Result<&Keys, SsoError> {
        self.keys
            .get_or_try_init(|| async {
                let now = self.now();
                let sealer =
                    crate::seal::Sealer::from_config(&self.encryption).map_err(internal)?;
                let sealer = sealer.as_ref();
                let fetch = async |name: &str| -> Result<[u8; 32], SsoError> {
                    let ctx = shared_secret_context(name);
                    let fresh = URL_SAFE_NO_PAD.encode(random_bytes::<32>().map_err(internal)?);
                    let candidate =
                        crate::seal::seal_if_enabled(sealer, &fresh, &ctx).map_err(internal)?;
                    let stored = self.store.shared_secret(name, &candidate, now).await?;
                    let value = crate::seal::open(sealer, &stored, &ctx)
                        .map_err(|e| internal(format!("stored secret {name}: {e}")))?;
                    let raw = URL_SAFE_NO_PAD.decode(value).map_err(internal)?;
                    raw.try_into()
                        .map_err(|_| internal(format!("stored secret {name} has the wrong length")))
                };
                Ok(Keys {
                    link: fetch("sso_link_key").await?,
                    code: fetch("sso_code_key").await?,
                })
            })
            .await
    }

    /// The login URL a sandbox answer shows; bound to `token_id` for a re-authentication.
    pub async fn login_url(&self, token_id: Option<&str>) -> Result<String, SsoError> {
        let keys = self.keys().await?;
        let nonce = random_bytes::<12>().map_err(internal)?;
        let t = link::mint(&keys.link, self.now(), nonce, token_id);
        Ok(format!("{}/auth/login?t={t}", self.public_url))
    }

    /// Checks a login link without using it up (for the picker page).
    pub async fn check_link(&self, t: &str) -> Result<LinkClaims, SsoError> {
        let keys = self.keys().await?;
        Ok(link::verify(&keys.link, t, self.now())?)
    }

    /// Starts a login with `provider`: uses up the link (if any) and returns the provider's
    /// authorization URL and the value of the browser cookie that alone can finish this login
    /// (so a callback URL sent to someone else, or leaked, is useless). Without a link the login
    /// is for a new device.
    pub async fn start(
        &self,
        provider: &str,
        t: Option<&str>,
        ip: IpAddr,
    ) -> Result<(String, Secret), SsoError> {
        let p = self
            .providers
            .get(provider)
            .ok_or(SsoError::UnknownProvider)?;
        let claims = match t.filter(|t| !t.is_empty()) {
            Some(t) => Some(self.check_link(t).await?),
            None => None,
        };
        let state = random_token()?;
        let nonce = random_token()?;
        let verifier = random_token()?;
        let browser = random_token()?;
        let now = self.now();
        // The provider's URL first: an outage there must not use up the link.
        let url = p
            .authorization_url(
                &self.redirect_uri(),
                &state,
                &nonce,
                &pkce_challenge(&verifier),
            )
            .await?;
        let bound = match claims {
            Some(claims) => {
                if !self
                    .store
                    .consume_login_link(&claims.id, claims.expires_at())
                    .await?
                {
                    return Err(SsoError::LinkUsed);
                }
                claims.bound_token_id
            }
            None => None,
        };
        self.store
            .insert_login_flow(&LoginFlow {
                state_hash: value_hash(&state),
                browser_hash: value_hash(&browser),
                provider: provider.to_owned(),
                pkce_verifier: verifier,
                nonce,
                bound_token_id: bound,
                client_ip: Some(ip.to_string()),
                created_at: now,
                expires_at: now + FLOW_TTL_MS,
            })
            .await?;
        Ok((url, Secret::new(browser)))
    }

    /// The OAuth redirect URI.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.public_url)
    }

    /// Handles the provider's redirect back: `code` and `state`, or the provider's `error`;
    /// `browser` is the cookie [`Sso::start`] gave the browser.
    pub async fn callback(
        &self,
        code: Option<&str>,
        state: Option<&str>,
        error: Option<&str>,
        browser: Option<&str>,
        ip: IpAddr,
    ) -> Result<CallbackOutcome, SsoError> {
        let state = state
            .filter(|s| !s.is_empty())
            .ok_or(SsoError::UnknownState)?;
        // The flow is single-use even when the provider reports an error or the browser is not
        // the one that started it.
        let flow = self
            .store
            .take_login_flow(&value_hash(state), self.now())
            .await?
            .ok_or(SsoError::UnknownState)?;
        let same_browser = browser.is_some_and(|b| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                value_hash(b).as_bytes(),
                flow.browser_hash.as_bytes(),
            ))
        });
        if !same_browser {
            return Err(SsoError::OtherBrowser);
        }
        if let Some(e) = error {
            return Err(SsoError::ProviderReported(e.chars().take(200).collect()));
        }
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SsoError::ProviderReported("no authorization code".to_owned()))?;
        let p = self
            .providers
            .get(&flow.provider)
            .ok_or(SsoError::UnknownProvider)?;
        let identity = p
            .complete(&CodeExchange {
                code,
                redirect_uri: &self.redirect_uri(),
                pkce_verifier: &flow.pkce_verifier,
                nonce: &flow.nonce,
            })
            .await?;
        let user = self.record_user(&identity).await?;
        match self.mode {
            SsoAuthorizationMode::SingleUser => {
                let flow_cookie = self.open_confirmation(&user, &flow, ip).await?;
                Ok(CallbackOutcome::NeedsConfirmation { flow_cookie, user })
            }
            SsoAuthorizationMode::Enterprise => {
                let api = self
                    .enterprise
                    .as_ref()
                    .ok_or_else(|| SsoError::Denied("no authorization API configured".into()))?;
                let now_iso = crate::clock::iso8601(self.now() as u64);
                api.authorize(&user, &identity.provider, ip, &now_iso)
                    .await
                    .map_err(SsoError::Denied)?;
                let done = self.complete(&user, flow.bound_token_id.as_deref()).await?;
                Ok(CallbackOutcome::Completed(Box::new(done)))
            }
        }
    }

    async fn record_user(&self, id: &Identity) -> Result<User, SsoError> {
        let user = self
            .store
            .upsert_user(
                &id.provider,
                &id.subject,
                id.email.as_deref(),
                id.name.as_deref(),
                self.now(),
            )
            .await?;
        if user.disabled {
            return Err(SsoError::UserDisabled);
        }
        Ok(user)
    }

    async fn open_confirmation(
        &self,
        user: &User,
        flow: &LoginFlow,
        ip: IpAddr,
    ) -> Result<Secret, SsoError> {
        let keys = self.keys().await?;
        let cookie = random_token()?;
        let id_hash = value_hash(&cookie);
        let code = authorize::new_code().map_err(internal)?;
        let now = self.now();
        self.store
            .insert_pending(&PendingAuthorization {
                code_hash: authorize::code_hash(&keys.code, &id_hash, code.expose()),
                id_hash,
                user_id: user.id.clone(),
                provider: flow.provider.clone(),
                bound_token_id: flow.bound_token_id.clone(),
                attempts_left: self.confirmation.max_attempts,
                client_ip: Some(ip.to_string()),
                created_at: now,
                expires_at: now + self.confirmation.ttl_ms,
            })
            .await?;
        authorize::print_banner(user, &flow.provider, ip, &code, self.confirmation.ttl_ms);
        self.notifier
            .notify(OperatorEvent::LoginAwaitingConfirmation {
                user: user_label(user),
                ip: ip.to_string(),
                code,
            });
        Ok(Secret::new(cookie))
    }

    /// Whether a confirmation is waiting for the browser holding `flow_cookie`.
    pub async fn pending(&self, flow_cookie: &str) -> Result<PendingAuthorization, SsoError> {
        let p = self
            .store
            .get_pending(&value_hash(flow_cookie))
            .await?
            .ok_or(SsoError::NoPending)?;
        if p.expires_at <= self.now() {
            return Err(SsoError::CodeExpired);
        }
        if p.attempts_left <= 0 {
            return Err(SsoError::CodeExhausted);
        }
        Ok(p)
    }

    /// Checks the console confirmation code the browser entered.
    pub async fn confirm(
        &self,
        flow_cookie: &str,
        code: &str,
        ip: IpAddr,
    ) -> Result<Completed, SsoError> {
        let now = self.now();
        if let Some(secs) = self
            .limiter
            .as_ref()
            .and_then(|l| l.blocked(&ip, now as u64))
        {
            return Err(SsoError::Blocked {
                retry_after_secs: secs,
            });
        }
        let id_hash = value_hash(flow_cookie);
        if let Err(e) = self.pending(flow_cookie).await {
            if matches!(e, SsoError::CodeExpired | SsoError::CodeExhausted) {
                self.store.take_pending(&id_hash).await?;
            }
            return Err(e);
        }
        let spent = self
            .store
            .spend_attempt(&id_hash, now)
            .await?
            .ok_or(SsoError::CodeExhausted)?;
        let keys = self.keys().await?;
        let presented = authorize::code_hash(&keys.code, &id_hash, code.trim());
        let right = bool::from(subtle::ConstantTimeEq::ct_eq(
            presented.as_bytes(),
            spent.code_hash.as_bytes(),
        ));
        if !right {
            if let Some(l) = &self.limiter
                && let FailureOutcome::Blocked { retry_after_secs } =
                    l.record_failure(&ip, None, now as u64).await
            {
                tracing::warn!(client_ip = %ip, retry_after_secs, "too many wrong SSO confirmation codes: address blocked");
                self.notifier.notify(OperatorEvent::AuthBlocked {
                    ip,
                    retry_after_secs,
                });
            }
            if spent.attempts_left <= 0 {
                self.store.take_pending(&id_hash).await?;
                return Err(SsoError::CodeExhausted);
            }
            return Err(SsoError::WrongCode {
                attempts_left: spent.attempts_left,
            });
        }
        let pending = self
            .store
            .take_pending(&id_hash)
            .await?
            .ok_or(SsoError::NoPending)?;
        let user = self
            .store
            .get_user(&pending.user_id)
            .await?
            .ok_or(SsoError::NoPending)?;
        if user.disabled {
            return Err(SsoError::UserDisabled);
        }
        self.complete(&user, pending.bound_token_id.as_deref())
            .await
    }

    /// Finishes a login: renews the bound token when it is the user's and not revoked, else mints
    /// a new device token; opens a browser session.
    async fn complete(&self, user: &User, bound: Option<&str>) -> Result<Completed, SsoError> {
        let now = self.now();
        let expires = now.saturating_add(self.session_ms);
        // The browser session first: a failure after it leaves no token nobody saw.
        let session_cookie = self.open_web_session(&user.id, expires).await?;
        let renewable = match bound {
            Some(id) => self
                .store
                .get_token(id)
                .await?
                .filter(|t| t.user_id == user.id && t.revoked_at.is_none()),
            None => None,
        };
        let grant = match renewable {
            Some(mut record) => {
                self.store
                    .set_session_expiry(&record.id, Some(expires))
                    .await?;
                record.session_expires_at = Some(expires);
                tracing::info!(user = %user.id, token = %agent_token::display_id(&record.id), "SSO re-authentication: token session extended");
                Grant::Renewed { record }
            }
            None => {
                let minted = crate::identity::argon::run(agent_token::mint)
                    .await
                    .map_err(internal)?
                    .map_err(internal)?;
                let count = self.store.list_tokens(Some(&user.id)).await?.len();
                let record = AgentTokenRecord {
                    id: minted.id,
                    user_id: user.id.clone(),
                    name: format!("Device {}", count + 1),
                    secret_hash: minted.secret_hash,
                    created_at: now,
                    last_used_at: None,
                    last_ip: None,
                    last_user_agent: None,
                    session_expires_at: Some(expires),
                    revoked_at: None,
                };
                self.store.insert_token(&record).await?;
                tracing::info!(user = %user.id, token = %agent_token::display_id(&record.id), "SSO login: new device token issued");
                Grant::NewToken {
                    token: minted.token,
                    record,
                }
            }
        };
        Ok(Completed {
            user: user.clone(),
            grant,
            session_cookie,
            session_expires_at: expires,
        })
    }

    /// Deletes expired SSO rows.
    pub async fn purge(&self) -> Result<u64, SsoError> {
        Ok(self.store.purge_expired_sso(self.now()).await?)
    }

    /// The store (for the devices page).
    pub fn store(&self) -> &Arc<dyn LoginStore> {
        &self.store
    }

    /// `sso.purge`: deletes expired SSO rows (used links, abandoned logins, old sessions) every
    /// ten minutes.
    pub fn purge_job(self: &Arc<Self>) -> crate::jobs::Job {
        let sso = self.clone();
        crate::jobs::Job::new("sso.purge", PURGE_EVERY, move |_| {
            let sso = sso.clone();
            async move {
                match sso.purge().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "purged expired SSO state"),
                    Err(e) => tracing::warn!(error = %e, "could not purge expired SSO state"),
                }
            }
        })
    }
}

/// How often expired SSO rows are deleted.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// `Alice <alice@example.com>`, or whatever part is known.
pub fn user_label(u: &User) -> String {
    match (&u.display_name, &u.email) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (None, Some(e)) => e.clone(),
        (Some(n), None) => n.clone(),
        (None, None) => format!("{}:{}", u.provider, u.subject),
    }
}

/// Compile-time check: the handlers need `Send` futures.
#[allow(dead_code)]
fn _assert_send(s: &Sso) {
    fn is_send<T: Send>(_: T) {}
    is_send(s.keys());
    is_send(s.callback(
        None,
        None,
        None,
        None,
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    ));
    is_send(s.confirm("", "", IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
