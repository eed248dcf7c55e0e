//! The identity wing: who is calling. [`Authenticator`] turns what a request presents (found by
//! [`extract_credential`], in [`presented`]) into a typed [`Principal`] or a typed
//! [`AuthFailure`], before any handler runs; everything that checks a credential lives under this
//! module.
//!
//! The credential kinds: static API keys ([`api_keys`]), per-device agent tokens
//! ([`agent_token`]), the gateway's own JWTs ([`token_server`], which also issues them) and a
//! trusted external issuer's ([`external`], keys fetched through [`jwks`]) and issued virtual keys
//! ([`virtual_key`]) — all checked in [`Authenticator::authenticate`], behind the same lockout
//! ([`brute_force`]; the slow hash, Argon2id, on [`argon`]'s bounded threads). Agent tokens and
//! virtual keys share one shape ([`token_format`]). The order of checks is fixed: a blocked
//! client address is refused first (even with a valid credential), a request with no credential
//! is refused without counting as a failed attempt, and only a wrong credential counts — counted
//! before its check when the check is slow, so parallel guesses meet the lockout like sequential
//! ones ([`Authenticator::authenticate`]). A wrong value repeated unchanged counts once (an agent
//! retrying a stale key is not guessing). What the checks are built from is [`AuthSettings`]:
//! the wing never reads `config`.

pub mod agent_token;
pub mod api_keys;
pub mod argon;
pub mod brute_force;
mod caches;
pub mod external;
pub mod jwks;
pub mod lockout;
mod presented;
mod settings;
pub mod token_format;
pub mod token_server;
pub mod virtual_key;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::notify::{Notifier, OperatorEvent};
use agent_token::{TokenFailure, TokenIdentity, TokenVerifier, UseContext};
use api_keys::ApiKeySet;
use brute_force::{FailureOutcome, Limiter, Turns};
pub(crate) use caches::{SeenRevision, insert_bounded};
use lockout::{Advance, Lockout};
pub use presented::{CredentialSource, Presented, PresentedValue, extract_credential};
pub use settings::{AuthSettings, BruteForceConfig};
use virtual_key::{KeyFailure, KeyVerifier};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Authentication is disabled (local development).
    Anonymous,
    /// A configured static API key, known by its name.
    ApiKey {
        /// The key's configured name (never its value).
        name: Arc<str>,
    },
    /// A per-device agent token.
    AgentToken(TokenIdentity),
    /// A JWT from the gateway's token server (`kind` `user` or `client`) or from a trusted
    /// external issuer (`kind` `external`).
    Jwt {
        /// `sub` (user or client id), or the external issuer's user claim.
        subject: Arc<str>,
        /// `user`, `client` or `external`.
        kind: Arc<str>,
        /// Groups from an external issuer's groups claim.
        groups: Arc<[String]>,
    },
    /// An issued virtual key (PRODUCT §7), with the rules it carries.
    VirtualKey(KeyIdentity),
}

/// Who a virtual key is: its public id, name, owner and rules (a cheap clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    /// The public id (the part after `sk-pvk-`, before `_`).
    pub id: Arc<str>,
    /// The key's name.
    pub name: Arc<str>,
    /// The user who owns the key, if any: that user's rules apply too.
    pub owner: Option<Arc<str>>,
    /// What the key may do.
    pub rules: Arc<crate::rules::Rules>,
}

impl Principal {
    /// How the principal appears in logs: `key=ci-bot`, `anonymous`.
    pub fn label(&self) -> Cow<'_, str> {
        match self {
            Principal::Anonymous => Cow::Borrowed("anonymous"),
            Principal::ApiKey { name } => Cow::Owned(format!("key={name}")),
            Principal::AgentToken(t) => Cow::Owned(format!(
                "user={} token={}",
                t.user_id,
                agent_token::display_id(&t.token_id)
            )),
            Principal::Jwt {
                subject,
                kind,
                groups,
            } if !groups.is_empty() => {
                Cow::Owned(format!("jwt {kind}={subject} groups={}", groups.join(",")))
            }
            Principal::Jwt { subject, kind, .. } => Cow::Owned(format!("jwt {kind}={subject}")),
            Principal::VirtualKey(k) => {
                let id = virtual_key::display_id(&k.id);
                Cow::Owned(match &k.owner {
                    Some(owner) => format!("vkey={id} ({}) user={owner}", k.name),
                    None => format!("vkey={id} ({})", k.name),
                })
            }
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential was presented (not counted as a failed attempt).
    Missing,
    /// The credential is not valid (counted).
    Invalid,
    /// The client address is locked out.
    Blocked {
        /// Seconds until the block ends.
        retry_after_secs: u64,
    },
    /// A valid agent token whose SSO session has lapsed (not counted as a failed attempt).
    SessionExpired {
        /// Public id of the token.
        token_id: String,
    },
    /// The store could not be asked (not the client's fault; not counted).
    Unavailable,
}

/// The authentication state of the process.
pub struct Authenticator {
    disabled: bool,
    keys: ApiKeySet,
    limiter: Option<Arc<Lockout<IpAddr>>>,
    clock: SharedClock,
    notifier: Arc<dyn Notifier>,
    tokens: Option<Arc<TokenVerifier>>,
    /// The token server whose JWTs are accepted.
    jwt: Option<Arc<crate::identity::token_server::TokenServer>>,
    /// Trusted external issuers.
    external: Option<Arc<crate::identity::external::ExternalIssuers>>,
    /// The virtual-key verifier, when a store is open.
    virtual_keys: Option<Arc<KeyVerifier>>,
    /// When the last "virtual key without a store" warning was logged (ms).
    warned_no_store: std::sync::atomic::AtomicU64,
    /// One slow credential check per client address at a time.
    turns: Turns<IpAddr>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("disabled", &self.disabled)
            .field("keys", &self.keys.len())
            .field("limiter", &self.limiter.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Builds the authenticator from its settings.
    pub fn new(
        settings: AuthSettings,
        clock: SharedClock,
        notifier: Arc<dyn Notifier>,
        tokens: Option<Arc<TokenVerifier>>,
    ) -> std::io::Result<Self> {
        let limiter = Limiter::from_config(&settings.brute_force)
            .map(Lockout::new)
            .transpose()?
            .map(Arc::new);
        Ok(Self {
            disabled: settings.disabled,
            keys: ApiKeySet::from_config(&settings.api_keys)?,
            limiter,
            clock: clock.clone(),
            notifier,
            tokens,
            jwt: None,
            external: if settings.issuers.is_empty() {
                None
            } else {
                Some(Arc::new(
                    crate::identity::external::ExternalIssuers::new(&settings.issuers, clock)
                        .map_err(std::io::Error::other)?,
                ))
            },
            turns: Turns::default(),
            virtual_keys: None,
            warned_no_store: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Accepts the virtual keys `verifier` knows (the composition root does when a store is
    /// open).
    pub fn accept_virtual_keys(&mut self, verifier: Arc<KeyVerifier>) {
        self.virtual_keys = Some(verifier);
    }

    /// The virtual-key verifier, when a store is open.
    pub fn virtual_keys(&self) -> Option<&Arc<KeyVerifier>> {
        self.virtual_keys.as_ref()
    }

    /// Accepts the JWTs `server` issues.
    pub fn accept_jwts_from(&mut self, server: Arc<crate::identity::token_server::TokenServer>) {
        self.jwt = Some(server);
    }

    /// True when authentication is turned off.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// The per-address lockout, shared with other features that guard a secret.
    pub fn limiter(&self) -> Option<&Arc<Lockout<IpAddr>>> {
        self.limiter.as_ref()
    }

    /// The agent-token verifier, when a store is configured.
    pub fn tokens(&self) -> Option<&Arc<TokenVerifier>> {
        self.tokens.as_ref()
    }

    /// Decides who is calling from `ip` (with `user_agent`) presenting `presented`.
    ///
    /// Cheap answers first: a blocked address, no credential, a static key, a virtual key
    /// (counted after its check when it is a guess), a credential the caches already verified.
    /// Anything else needs a slow check (store lookup and Argon2id for
    /// an agent token, key reload or JWKS fetch for a JWT), which takes the address's turn (one
    /// slow check per address at a time) and counts as a failure *before* it runs; the count is
    /// taken back when the credential is right or proves nothing about guessing (revoked, expired,
    /// an unknown key, a store outage). So parallel guesses are limited like sequential ones,
    /// and a request dropped mid-check stays counted.
    pub async fn authenticate(
        &self,
        ip: IpAddr,
        user_agent: Option<&str>,
        presented: Option<&Presented<'_>>,
    ) -> Result<Principal, AuthFailure> {
        let now = self.clock.now_millis();
        if let Some(secs) = self.limiter.as_ref().and_then(|l| l.blocked(&ip, now)) {
            return Err(AuthFailure::Blocked {
                retry_after_secs: secs,
            });
        }
        if self.disabled {
            return Ok(Principal::Anonymous);
        }
        let Some(presented) = presented else {
            return Err(AuthFailure::Missing);
        };
        let value = presented.value.expose();
        if let Some(name) = self.keys.find(value) {
            return Ok(Principal::ApiKey { name: name.clone() });
        }
        if virtual_key::FORMAT.claims(value) {
            return self.virtual_key(value, ip, now).await;
        }
        if let Some(principal) = self.cached(value, now, ip, user_agent) {
            return Ok(principal);
        }
        let bucket = self.limiter.as_ref().map_or(ip, |l| l.bucket_of(&ip));
        let _turn = self.turns.take(bucket).await;
        let now = self.clock.now_millis();
        let reservation = match &self.limiter {
            Some(l) => match l.try_reserve(&ip, Some(value), now).await {
                Ok(r) => Some(r),
                Err(secs) => {
                    return Err(AuthFailure::Blocked {
                        retry_after_secs: secs,
                    });
                }
            },
            None => None,
        };
        let verdict = self.check(value, now, ip, user_agent).await;
        self.settle(ip, reservation, verdict).await
    }

    /// A virtual key: a cheap check (shape, then the cache or one indexed lookup, then a BLAKE3
    /// hash), so it takes no turn and no advance count; a guess (malformed, unknown id, wrong
    /// secret) is counted after it like a wrong static key — a repeated identical value once. A
    /// revoked or expired key, or one whose owner is disabled, is refused without counting.
    async fn virtual_key(
        &self,
        value: &str,
        ip: IpAddr,
        now: u64,
    ) -> Result<Principal, AuthFailure> {
        let Some(verifier) = &self.virtual_keys else {
            self.warn_no_store(now);
            return Err(AuthFailure::Invalid);
        };
        let failure = match verifier.verify(value, now as i64).await {
            Ok(identity) => return Ok(Principal::VirtualKey(identity)),
            Err(failure) => failure,
        };
        let key = virtual_key::FORMAT.parse(value).map_or_else(
            || "(malformed)".to_owned(),
            |p| virtual_key::display_id(p.id),
        );
        if let KeyFailure::Store(e) = &failure {
            tracing::error!(error = %e, %key, "virtual key check failed: store unavailable");
            return Err(AuthFailure::Unavailable);
        }
        tracing::debug!(%failure, %key, "virtual key refused");
        if failure.is_guess()
            && let Some(l) = &self.limiter
            && let FailureOutcome::Blocked { retry_after_secs } =
                l.record_failure(&ip, Some(value), now).await
        {
            self.block_started(ip, retry_after_secs);
        }
        Err(AuthFailure::Invalid)
    }

    /// Tells the operator, at most once a minute, that virtual keys are presented to a gateway
    /// that has no store to check them against.
    fn warn_no_store(&self, now: u64) {
        use std::sync::atomic::Ordering;
        let last = self.warned_no_store.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 60_000)
            && self
                .warned_no_store
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "a virtual key (sk-pvk-…) was presented but no store is open, so it cannot be checked and is refused: run the gateway with the data directory or database the key was created in (--data-dir / --database-url)"
            );
        }
    }

    /// Logs and notifies the start of a block of `ip`.
    fn block_started(&self, ip: IpAddr, retry_after_secs: u64) {
        tracing::warn!(client_ip = %ip, retry_after_secs, "too many failed authentication attempts: client address blocked");
        self.notifier.notify(OperatorEvent::AuthBlocked {
            ip,
            retry_after_secs,
        });
    }

    /// A credential the caches already verified: a token-server JWT or an agent token, checked
    /// without any wait (no store, no hashing). `None` means "ask [`Authenticator::check`]".
    fn cached(
        &self,
        value: &str,
        now: u64,
        ip: IpAddr,
        user_agent: Option<&str>,
    ) -> Option<Principal> {
        if value.starts_with(agent_token::PREFIX) {
            let ctx = UseContext { ip, user_agent };
            return self
                .tokens
                .as_ref()?
                .cached(value, now as i64, &ctx)
                .map(Principal::AgentToken);
        }
        if !crate::identity::token_server::looks_like_jwt(value) || self.external.is_some() {
            return None;
        }
        self.jwt
            .as_ref()?
            .verify_cached(value)
            .map(|c| Principal::Jwt {
                subject: Arc::from(c.sub.as_str()),
                kind: Arc::from(c.pcl_kind.as_str()),
                groups: Arc::from(Vec::new()),
            })
    }

    /// The slow checks: JWTs (the token server's or a trusted issuer's), then agent tokens.
    async fn check(&self, value: &str, now: u64, ip: IpAddr, user_agent: Option<&str>) -> Verdict {
        if crate::identity::token_server::looks_like_jwt(value)
            && (self.jwt.is_some() || self.external.is_some())
        {
            use crate::identity::token_server::TokenError;
            // The payload is only decoded to pick a verifier when external issuers exist.
            let external = self.external.as_ref().filter(|x| {
                crate::identity::external::unverified_issuer(value).is_some_and(|i| x.trusts(&i))
            });
            let verified = match (external, &self.jwt) {
                (Some(x), _) => {
                    x.verify(value, (now / 1000) as i64)
                        .await
                        .map(|id| Principal::Jwt {
                            subject: Arc::from(id.user.as_str()),
                            kind: Arc::from("external"),
                            groups: Arc::from(id.groups),
                        })
                }
                (None, Some(server)) => server.verify(value).await.map(|c| Principal::Jwt {
                    subject: Arc::from(c.sub.as_str()),
                    kind: Arc::from(c.pcl_kind.as_str()),
                    groups: Arc::from(Vec::new()),
                }),
                (None, None) => Err(TokenError::Invalid("untrusted issuer".into())),
            };
            match verified {
                Ok(principal) => return Verdict::Right(principal),
                // Genuine but expired, or its subject disabled: nothing was guessed.
                Err(TokenError::Expired | TokenError::Disabled | TokenError::UnknownKey) => {
                    return Verdict::NotAGuess(AuthFailure::Invalid);
                }
                Err(TokenError::Unavailable(e)) => {
                    tracing::error!(error = %e, "JWT check failed: store or keys unavailable");
                    return Verdict::NotAGuess(AuthFailure::Unavailable);
                }
                Err(reason) => tracing::debug!(%reason, "JWT refused"),
            }
        }
        if value.starts_with(agent_token::PREFIX)
            && let Some(verifier) = &self.tokens
        {
            let ctx = UseContext { ip, user_agent };
            match verifier.verify(value, now as i64, ctx).await {
                Ok(identity) => return Verdict::Right(Principal::AgentToken(identity)),
                Err(TokenFailure::SessionExpired { token_id }) => {
                    return Verdict::NotAGuess(AuthFailure::SessionExpired { token_id });
                }
                // A revoked token proves nothing about guessing (it is refused before any hashing),
                // and counting it would lock out the address of an agent that still holds one —
                // and with it the owner's browser login.
                Err(TokenFailure::Revoked) => return Verdict::NotAGuess(AuthFailure::Invalid),
                Err(TokenFailure::Store(e)) => {
                    tracing::error!(error = %e, "agent token check failed: store unavailable");
                    return Verdict::NotAGuess(AuthFailure::Unavailable);
                }
                Err(reason) => tracing::debug!(%reason, "agent token refused"),
            }
        }
        Verdict::Wrong
    }

    /// Keeps or takes back the attempt counted in advance. A right credential takes back only
    /// its own count: the address's other failures stay (proving one credential does not
    /// excuse guesses at others, as in the token server's grants).
    async fn settle(
        &self,
        ip: IpAddr,
        reservation: Option<Advance>,
        verdict: Verdict,
    ) -> Result<Principal, AuthFailure> {
        let now = self.clock.now_millis();
        let (result, keep) = match verdict {
            Verdict::Right(principal) => (Ok(principal), false),
            Verdict::NotAGuess(failure) => (Err(failure), false),
            Verdict::Wrong => (Err(AuthFailure::Invalid), true),
        };
        match (&self.limiter, reservation) {
            (Some(l), Some(r)) if !keep => l.refund(&ip, r, now).await,
            (
                _,
                Some(Advance {
                    outcome: FailureOutcome::Blocked { retry_after_secs },
                    ..
                }),
            ) => self.block_started(ip, retry_after_secs),
            _ => {}
        }
        result
    }
}

/// What a slow check found.
enum Verdict {
    /// The credential is right.
    Right(Principal),
    /// Refused, but not a guess (revoked, expired, unknown signing key, store outage): not counted.
    NotAGuess(AuthFailure),
    /// A wrong credential: counted.
    Wrong,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::identity::api_keys::ApiKeyConfig;
    use crate::secret::Secret;
    use std::time::{Duration, UNIX_EPOCH};

    fn auth(clock: &ManualClock) -> Authenticator {
        auth_with(clock, Arc::new(crate::notify::NoNotifier))
    }

    fn auth_with(clock: &ManualClock, notifier: Arc<dyn Notifier>) -> Authenticator {
        let settings = AuthSettings {
            api_keys: vec![ApiKeyConfig::Named {
                name: Some("ci-bot".into()),
                key: Some(Secret::new("good-key-0123456789")),
                key_env: None,
            }],
            ..AuthSettings::default()
        };
        Authenticator::new(settings, Arc::new(clock.clone()), notifier, None).unwrap()
    }

    fn presented(v: &str) -> Option<Presented<'_>> {
        Some(Presented {
            value: PresentedValue::new(v),
            source: CredentialSource::Bearer,
        })
    }

    #[tokio::test]
    async fn the_order_of_checks() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
        let a = auth(&clock);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            a.authenticate(ip, None, presented("good-key-0123456789").as_ref())
                .await,
            Ok(Principal::ApiKey {
                name: "ci-bot".into()
            })
        );
        // Missing credentials never count.
        for _ in 0..20 {
            assert_eq!(
                a.authenticate(ip, None, None).await,
                Err(AuthFailure::Missing)
            );
        }
        for i in 0..5 {
            assert_eq!(
                a.authenticate(ip, None, presented(&format!("wrong-{i}")).as_ref())
                    .await,
                Err(AuthFailure::Invalid)
            );
        }
        // Blocked: even the right key is refused.
        assert_eq!(
            a.authenticate(ip, None, presented("good-key-0123456789").as_ref())
                .await,
            Err(AuthFailure::Blocked {
                retry_after_secs: 30
            })
        );
        clock.advance(Duration::from_secs(30));
        assert!(
            a.authenticate(ip, None, presented("good-key-0123456789").as_ref())
                .await
                .is_ok(),
            "the block has ended"
        );
        // A success does not excuse the earlier guesses: the next wrong key is refused and
        // starts the next, longer block.
        assert_eq!(
            a.authenticate(ip, None, presented("wrong-5").as_ref())
                .await,
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            a.authenticate(ip, None, presented("good-key-0123456789").as_ref())
                .await,
            Err(AuthFailure::Blocked {
                retry_after_secs: 60
            })
        );
    }

    #[tokio::test]
    async fn the_operator_is_told_when_a_block_starts() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
        let recorder = Arc::new(crate::notify::RecordingNotifier::default());
        let a = auth_with(&clock, recorder.clone());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for i in 0..4 {
            let _ = a
                .authenticate(ip, None, presented(&format!("wrong-{i}")).as_ref())
                .await;
        }
        assert!(recorder.events().is_empty());
        let _ = a
            .authenticate(ip, None, presented("wrong-4").as_ref())
            .await;
        // Refused while blocked: no further event.
        let _ = a
            .authenticate(ip, None, presented("wrong-5").as_ref())
            .await;
        assert_eq!(
            recorder.events(),
            vec![OperatorEvent::AuthBlocked {
                ip,
                retry_after_secs: 30
            }]
        );
    }

    #[tokio::test]
    async fn a_repeated_wrong_key_counts_once_but_new_guesses_count() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000_000));
        let a = auth(&clock);
        let ip: IpAddr = "192.0.2.3".parse().unwrap();
        // An agent with a stale key, retrying: never blocked, and the right key still works.
        for _ in 0..20 {
            assert_eq!(
                a.authenticate(ip, None, presented("sk-stale-key").as_ref())
                    .await,
                Err(AuthFailure::Invalid)
            );
        }
        assert!(
            a.authenticate(ip, None, presented("good-key-0123456789").as_ref())
                .await
                .is_ok()
        );
        // Distinct guesses still count (the stale key was the first): the fifth distinct
        // wrong value starts a block.
        for i in 0..3 {
            let _ = a
                .authenticate(ip, None, presented(&format!("guess-{i}")).as_ref())
                .await;
        }
        assert!(matches!(
            a.authenticate(ip, None, presented("guess-3").as_ref())
                .await,
            Err(AuthFailure::Invalid)
        ));
        assert!(matches!(
            a.authenticate(ip, None, presented("good-key-0123456789").as_ref())
                .await,
            Err(AuthFailure::Blocked { .. })
        ));
    }
}
