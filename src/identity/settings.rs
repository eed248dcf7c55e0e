//! What the identity checks are built from: [`AuthSettings`], the [`super::Authenticator`]'s part
//! of the configuration (assembled by `config` from `auth.*`), and the lockout's section,
//! [`BruteForceConfig`], which the token server and SSO share. Identity code never reads
//! `config`.

use serde::{Deserialize, Serialize};

use super::api_keys::ApiKeyConfig;
use crate::identity::external::TrustedIssuer;

/// Everything [`super::Authenticator::new`] needs of the configuration.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// Client authentication is off (`auth.disable_auth`, loopback only).
    pub disabled: bool,
    /// The client API keys, every source merged and named (`auth.api_keys` after loading).
    pub api_keys: Vec<ApiKeyConfig>,
    /// The per-address lockout (`auth.brute_force_protection`).
    pub brute_force: BruteForceConfig,
    /// Trusted external issuers (`auth.jwt.issuers`).
    pub issuers: Vec<TrustedIssuer>,
}

/// `auth.brute_force_protection.*` (PRODUCT §2.1).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BruteForceConfig {
    /// On by default.
    pub enabled: bool,
    /// Failures within `ttl_seconds` that start a block.
    pub max_failed_attempts: u32,
    /// How long failures are remembered.
    pub ttl_seconds: u64,
    /// First block.
    pub initial_block_seconds: u64,
    /// Growth of each next block.
    pub block_multiplier: f64,
    /// Longest block.
    pub max_block_seconds: u64,
    /// Most addresses tracked at once; the table never grows past this.
    pub max_tracked_ips: usize,
    /// IPv6 clients are counted by this network prefix (1–128): 64 by default, since one
    /// subscriber usually holds a whole /64; 128 counts each address alone.
    pub ipv6_prefix: u8,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_failed_attempts: 5,
            ttl_seconds: 900,
            initial_block_seconds: 30,
            block_multiplier: 2.0,
            max_block_seconds: 3600,
            max_tracked_ips: 100_000,
            ipv6_prefix: 64,
        }
    }
}
