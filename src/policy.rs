//! The policy step between authentication and routing: what an authenticated [`Principal`] may
//! use. [`Policy::grant`] turns the principal into a [`Grant`] once per request; routing
//! (`upstream::routing::ModelRouter::resolve`) refuses a backend or model the grant does not
//! allow. Virtual keys, per-group rules, limits and budgets belong here.
//!
//! Today the policy is configuration-free: every principal may use every configured backend and
//! model ([`Grant::ALL`], no allocation).
//!
//! The deployment's [`AccessMode`] is decided here too (`config` parses it as `access_mode.mode`):
//! multi-user mode refuses personal-subscription OAuth connectors and credentials
//! ([`AccessMode::allows_personal_oauth`]), which the composition root, the pool, the
//! device-login pages and the `auths` commands ask.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::identity::Principal;

/// Operating mode, fixed at startup (PRODUCT §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    /// One developer on one machine (the default).
    #[default]
    SingleUser,
    /// A shared deployment.
    MultiUser,
}

impl AccessMode {
    /// The name used in config, logs and `/internal/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::SingleUser => "single_user",
            AccessMode::MultiUser => "multi_user",
        }
    }

    /// Whether OAuth (personal-subscription) connectors and credentials may be used: only by
    /// one developer on one machine, never in a shared deployment.
    pub fn allows_personal_oauth(self) -> bool {
        self == AccessMode::SingleUser
    }
}

/// Decides what principals may use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy;

impl Policy {
    /// The configuration-free policy: everything is allowed to everyone.
    pub const OPEN: Policy = Policy;

    /// What `principal` may use.
    pub fn grant(&self, principal: &Principal) -> Grant {
        let _ = principal;
        Grant::ALL
    }
}

/// A set of names: all, or only those listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Allow {
    /// Every name.
    #[default]
    All,
    /// Only these names.
    Only(Arc<[Box<str>]>),
}

impl Allow {
    /// Only `names`.
    pub fn only<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        Allow::Only(names.into_iter().map(|n| n.as_ref().into()).collect())
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            Allow::All => true,
            Allow::Only(names) => names.iter().any(|n| &**n == name),
        }
    }
}

/// What one principal may use: backends, and models (by upstream name or as `backend:model`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    backends: Allow,
    models: Allow,
}

impl Grant {
    /// Everything.
    pub const ALL: Grant = Grant {
        backends: Allow::All,
        models: Allow::All,
    };

    /// Only `backends`, and on them only `models`.
    pub fn new(backends: Allow, models: Allow) -> Self {
        Self { backends, models }
    }

    /// True when the grant allows backend `backend`.
    pub fn allows_backend(&self, backend: &str) -> bool {
        self.backends.contains(backend)
    }

    /// True when the grant allows model `model` (the upstream name) on backend `backend`.
    pub fn allows(&self, backend: &str, model: &str) -> bool {
        if !self.allows_backend(backend) {
            return false;
        }
        match &self.models {
            Allow::All => true,
            Allow::Only(names) => names.iter().any(|n| {
                &**n == model
                    || n.strip_prefix(backend)
                        .and_then(|r| r.strip_prefix(':'))
                        .is_some_and(|m| m == model)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_policy_allows_everything_and_a_restricted_grant_only_its_names() {
        let all = Policy::OPEN.grant(&Principal::Anonymous);
        assert_eq!(all, Grant::ALL);
        assert!(all.allows("any", "thing"));
        let g = Grant::new(
            Allow::only(["openai", "groq"]),
            Allow::only(["gpt-4o", "groq:llama"]),
        );
        assert!(g.allows("openai", "gpt-4o"));
        assert!(g.allows("groq", "llama"));
        assert!(!g.allows("openai", "llama"));
        assert!(!g.allows("anthropic", "gpt-4o"));
        assert!(g.allows_backend("groq") && !g.allows_backend("anthropic"));
    }
}
