//! Trusted external issuers (`auth.jwt.issuers[]`): a company IdP's JWTs accepted as client
//! credentials. The token's `iss` picks the issuer entry (unknown issuers are refused before any
//! key is fetched); its signature is checked against that issuer's JWKS ([`crate::identity::jwks`]),
//! `aud` against the entry, `exp`/`nbf` against the gateway's clock; the configured claims name
//! the user and groups.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::token_server::TokenError;
use crate::clock::SharedClock;
use crate::identity::jwks::{JwksError, RemoteJwks};

/// `auth.jwt.issuers[]`: an external issuer whose tokens authenticate API calls.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Its JWKS; cached, refetched on an unknown `kid` (at most every 10 s) and hourly.
    pub jwks_url: String,
    /// The `aud` its tokens must carry.
    pub audience: String,
    /// Claim naming the user (default `sub`; e.g. `email`, `preferred_username`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// Claim listing the user's groups (default `groups`); absent is no groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn default_user_claim() -> String {
    "sub".to_owned()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

/// Who an external token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The issuer.
    pub issuer: String,
    /// The user claim's value.
    pub user: String,
    /// The groups claim's values.
    pub groups: Vec<String>,
}

struct Issuer {
    config: TrustedIssuer,
    jwks: RemoteJwks,
}

/// The configured external issuers.
pub struct ExternalIssuers {
    issuers: Vec<Issuer>,
}

impl std::fmt::Debug for ExternalIssuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.issuers.iter().map(|i| &i.config.issuer))
            .finish()
    }
}

/// The `iss` claim of a JWT, read without verifying anything (to pick the verifier).
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let raw = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}

/// Tolerated clock difference with an external issuer (s).
const LEEWAY_S: i64 = 60;

impl ExternalIssuers {
    /// The issuers of the configuration (no network until a token arrives).
    pub fn new(configs: &[TrustedIssuer], clock: SharedClock) -> Result<Self, reqwest::Error> {
        let http = crate::net::outbound_client(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(10),
        )?;
        Ok(Self {
            issuers: configs
                .iter()
                .map(|c| Issuer {
                    config: c.clone(),
                    jwks: RemoteJwks::new(c.jwks_url.clone(), http.clone(), clock.clone()),
                })
                .collect(),
        })
    }

    /// True when `issuer` is one of them.
    pub fn trusts(&self, issuer: &str) -> bool {
        self.issuers.iter().any(|i| i.config.issuer == issuer)
    }

    /// Verifies an external token at `now_s` (seconds).
    pub async fn verify(&self, token: &str, now_s: i64) -> Result<ExternalIdentity, TokenError> {
        let iss = unverified_issuer(token).ok_or_else(|| TokenError::Invalid("no iss".into()))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| TokenError::Invalid("untrusted issuer".into()))?;
        let c = &issuer.config;
        let claims: Value = issuer
            .jwks
            .decode(token, |alg| {
                let mut v = Validation::new(alg);
                v.set_issuer(&[c.issuer.as_str()]);
                v.set_audience(&[c.audience.as_str()]);
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                v.validate_exp = false;
                v.validate_nbf = false;
                v
            })
            .await
            .map_err(|e| match e {
                JwksError::Fetch(m) => TokenError::Unavailable(m),
                JwksError::Invalid(m) => TokenError::Invalid(m),
            })?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let nbf = claims
            .get("nbf")
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN);
        if exp.saturating_add(LEEWAY_S) <= now_s || nbf > now_s.saturating_add(LEEWAY_S) {
            return Err(TokenError::Expired);
        }
        let user = claims
            .get(&c.user_claim)
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| TokenError::Invalid(format!("no `{}` claim", c.user_claim)))?
            .to_owned();
        let groups = match claims.get(&c.groups_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => s
                .split([' ', ','])
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        Ok(ExternalIdentity {
            issuer: iss,
            user,
            groups,
        })
    }
}
