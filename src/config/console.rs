//! `admin.console.*`: the admin console at `/admin` — whether it is served, which of the
//! gateway's users may sign in to it, and how long a console session lasts. The rules are in
//! [`validate_console`].

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::HumanDuration;

/// `admin.*`: what people who run the gateway use in a browser.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The admin console (`/admin`).
    pub console: ConsoleConfig,
}

/// `admin.console.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console (default off: `/admin` answers 404). Needs the store.
    pub enabled: bool,
    /// Who may sign in: local usernames (password sign-in) and emails (SSO users), compared
    /// without regard to case. Everyone else is refused, whatever their password.
    pub admins: Vec<String>,
    /// How long a console session lasts after sign-in (default 8h).
    pub session_lifetime: HumanDuration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            admins: Vec::new(),
            session_lifetime: HumanDuration(std::time::Duration::from_secs(8 * 3600)),
        }
    }
}

impl ConsoleConfig {
    /// True when the user `(provider, subject, email)` is listed in `admins`: a local user by
    /// their username or email, any other (SSO) user by their email.
    pub fn is_admin(&self, provider: &str, subject: &str, email: Option<&str>) -> bool {
        let local = provider == crate::store::LOCAL_PROVIDER;
        self.admins.iter().any(|a| {
            (local && a.eq_ignore_ascii_case(subject))
                || email.is_some_and(|e| a.eq_ignore_ascii_case(e))
        })
    }
}

/// An enabled console names at least one admin, and its sessions last between a minute and a
/// week.
pub(crate) fn validate_console(
    config: &super::Config,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let c = &config.admin.console;
    if !c.enabled {
        return Ok(());
    }
    if c.admins.iter().all(|a| a.trim().is_empty()) {
        return Err(fail(
            "admin.console.admins",
            "must name at least one user (a local username or an email) when admin.console.enabled is on".to_owned(),
        ));
    }
    let secs = c.session_lifetime.0.as_secs();
    if !(60..=7 * 86_400).contains(&secs) {
        return Err(fail(
            "admin.console.session_lifetime",
            "must be between 1m and 7d".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ConsoleConfig;

    #[test]
    fn admins_match_local_usernames_and_emails_only() {
        let c = ConsoleConfig {
            admins: vec!["Alice".into(), "carol@example.com".into()],
            ..ConsoleConfig::default()
        };
        assert!(c.is_admin("local", "alice", None));
        assert!(
            !c.is_admin("github", "alice", None),
            "an SSO subject is not a username"
        );
        assert!(c.is_admin("github", "12345", Some("CAROL@example.com")));
        assert!(c.is_admin("local", "carol", Some("carol@example.com")));
        assert!(!c.is_admin("local", "bob", Some("bob@example.com")));
    }
}
