//! `oauth.*`: the switches of the OAuth (personal-subscription) connectors that seed 003
//! (llm-interactive-proxy's access modes) names, and the Multi User Mode refusal of them.
//!
//! What exists here is the switches' values: each debugging override is on or off per
//! connector ([`Config::debugging_override`]) and `oauth.allow_auto_replacement` is a flag. No
//! connector of this build reads them yet; Multi User Mode refuses them at startup with the
//! origin system's texts.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// An OAuth connector that has a debugging override switch. The YAML names
/// (`oauth.debugging_overrides`) are the connectors' names; the flags are
/// `--enable-<name>-backend-debugging-override` for seed 003's connectors and
/// `--enable-<name>-oauth-backend-debugging-override` for `copilot` and `kiro`.
///
/// The order is the origin system's (its refusal lists flags in this order), then portcullis's
/// own two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OauthConnector {
    /// Google logins for Gemini, several accounts in rotation.
    GeminiOauthAuto,
    /// The Gemini CLI's Google login, free tier.
    GeminiOauthFree,
    /// The Gemini CLI's Google login, a paid plan.
    GeminiOauthPlan,
    /// Qwen Code's login.
    QwenOauth,
    /// OpenCode Zen (the OpenCode CLI's `auth.json`).
    OpencodeZen,
    /// Kiro (AWS Builder ID) logins, several accounts in rotation: seed 003's name.
    KiroOauthAuto,
    /// The Codex CLI's ChatGPT login (its `auth.json`).
    OpenaiCodex,
    /// GitHub Copilot (portcullis's own switch).
    Copilot,
    /// Kiro (portcullis's own switch, older than seed 003's `kiro-oauth-auto`).
    Kiro,
}

impl OauthConnector {
    /// Every connector with a switch, in the refusal's order.
    pub const ALL: [Self; 9] = [
        Self::GeminiOauthAuto,
        Self::GeminiOauthFree,
        Self::GeminiOauthPlan,
        Self::QwenOauth,
        Self::OpencodeZen,
        Self::KiroOauthAuto,
        Self::OpenaiCodex,
        Self::Copilot,
        Self::Kiro,
    ];

    /// The connector's name, as written in `oauth.debugging_overrides`.
    pub fn name(self) -> &'static str {
        match self {
            Self::GeminiOauthAuto => "gemini-oauth-auto",
            Self::GeminiOauthFree => "gemini-oauth-free",
            Self::GeminiOauthPlan => "gemini-oauth-plan",
            Self::QwenOauth => "qwen-oauth",
            Self::OpencodeZen => "opencode-zen",
            Self::KiroOauthAuto => "kiro-oauth-auto",
            Self::OpenaiCodex => "openai-codex",
            Self::Copilot => "copilot",
            Self::Kiro => "kiro",
        }
    }

    /// The command-line flag that turns the override on.
    pub fn flag(self) -> String {
        match self {
            Self::Copilot | Self::Kiro => {
                format!("--enable-{}-oauth-backend-debugging-override", self.name())
            }
            _ => format!("--enable-{}-backend-debugging-override", self.name()),
        }
    }
}

/// `oauth.*`: switches for the OAuth (personal-subscription) connectors, which Multi User Mode
/// refuses. Accepted for compatibility with llm-interactive-proxy; the connectors serve without
/// them, as that system's do in its default setting.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OauthConfig {
    /// `--allow-oauth-auto-replacement` (env `ALLOW_OAUTH_AUTO_REPLACEMENT`). In the origin
    /// system it lets its random model replacement also swap the model of requests to
    /// multi-account `*-oauth-auto` backends; portcullis has no model replacement, so it has no
    /// effect here beyond the Multi User Mode refusal.
    pub allow_auto_replacement: bool,
    /// Connectors whose debugging override is on (`--enable-<name>-backend-debugging-override`;
    /// the command line adds to this list). Read through [`Config::debugging_override`].
    pub debugging_overrides: BTreeSet<OauthConnector>,
}

impl Config {
    /// Whether `connector`'s debugging override is on (from YAML, the environment or its flag).
    /// Multi User Mode never starts with one on.
    pub fn debugging_override(&self, connector: OauthConnector) -> bool {
        self.oauth.debugging_overrides.contains(&connector)
    }
}

/// Multi User Mode's refusal of the OAuth switches, with the origin system's texts. Where the
/// switch came from a layer other than the command line, a sentence naming it follows.
pub(super) fn refuse_in_multi_user(
    config: &Config,
    source_of: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    let from = |key: &str| {
        let origin = source_of(key);
        match origin.starts_with("command line") || origin == "built-in default" {
            true => String::new(),
            false => format!(" (`{key}` set in {origin})"),
        }
    };
    let overrides = &config.oauth.debugging_overrides;
    if !overrides.is_empty() {
        let flags: Vec<String> = overrides.iter().map(|c| c.flag()).collect();
        return Err(ConfigError::Rule(format!(
            "OAuth debugging override flags are not allowed in Multi User Mode: {}. OAuth connectors are blocked in production deployments.{}",
            flags.join(", "),
            from("oauth.debugging_overrides")
        )));
    }
    if config.oauth.allow_auto_replacement {
        return Err(ConfigError::Rule(format!(
            "OAuth auto-replacement (--allow-oauth-auto-replacement) is not allowed in Multi User Mode. OAuth connectors are blocked in production deployments.{}",
            from("oauth.allow_auto_replacement")
        )));
    }
    Ok(())
}
