//! `limits` (rules per user, the default rules, the output reserved when a request names no
//! maximum) and `prices` (US dollars per million tokens, by model glob) — and
//! [`Config::policy_settings`], what `policy::Policy::new` takes. The types are `policy`'s and
//! `rules`' (`LimitsConfig`, `Price`, `Rules`); this file parses, checks and assembles them.

use super::{Config, ConfigError};
use crate::policy::{PolicySettings, PriceTable};
use crate::rules::{Glob, Rules};

/// Most output tokens `limits.default_max_tokens` may reserve.
const MAX_DEFAULT_MAX_TOKENS: u64 = 10_000_000;

impl Config {
    /// What `policy::Policy::new` needs: `limits` and `prices`.
    pub fn policy_settings(&self) -> PolicySettings {
        PolicySettings {
            limits: self.limits.clone(),
            prices: PriceTable::new(
                self.prices
                    .iter()
                    .filter_map(|(pattern, price)| Some((Glob::new(pattern)?, *price))),
            ),
        }
    }
}

/// Checks `limits` and `prices`: a positive default reservation, named users, patterns that are
/// not blank, and no cost budget without a price table to count it with.
pub(super) fn validate_limits(
    config: &Config,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let limits = &config.limits;
    if !(1..=MAX_DEFAULT_MAX_TOKENS).contains(&limits.default_max_tokens) {
        return Err(fail(
            "limits.default_max_tokens",
            format!("must be between 1 and {MAX_DEFAULT_MAX_TOKENS}"),
        ));
    }
    if let Some(pattern) = config.prices.keys().find(|p| Glob::new(p).is_none()) {
        return Err(fail(
            "prices",
            format!("`{pattern}` is not a model name or pattern"),
        ));
    }
    let mut rule_sets: Vec<(String, &Rules)> = limits
        .users
        .iter()
        .map(|(user, rules)| (format!("limits.users.{user}"), rules))
        .collect();
    if let Some(user) = limits.users.keys().find(|u| u.trim().is_empty()) {
        return Err(fail("limits.users", format!("`{user}` is not a user id")));
    }
    rule_sets.extend(
        limits
            .default_user
            .iter()
            .map(|r| ("limits.default_user".to_owned(), r)),
    );
    if config.prices.is_empty()
        && let Some((key, _)) = rule_sets.iter().find(|(_, r)| r.cost_budget.is_some())
    {
        return Err(fail(
            &format!("{key}.cost_budget"),
            "a cost budget needs prices: list the models' prices under `prices` (USD per million tokens)".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        serde_norway::from_str(yaml).unwrap()
    }

    fn check(c: &Config) -> Result<(), String> {
        let fail = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_owned(),
            origin: "test".to_owned(),
            message,
        };
        validate_limits(c, &fail).map_err(|e| e.to_string())
    }

    #[test]
    fn limits_and_prices_parse_into_the_policy_settings() {
        let c = config(
            r#"
limits:
  users:
    alice: { models: ["gpt-4o*"], rpm: 60, cost_budget: { usd: 50, period: monthly } }
  default_user: { tpm: 200000 }
  default_max_tokens: 2048
prices:
  "gpt-4o": { input: 2.50, output: 10.00, cached_input: 1.25 }
  "anthropic:claude-*": { input: 3, output: 15 }
"#,
        );
        assert!(check(&c).is_ok());
        let s = c.policy_settings();
        assert_eq!(s.limits.default_max_tokens, 2048);
        assert_eq!(s.limits.users["alice"].rpm, Some(60));
        assert_eq!(s.limits.default_user.as_ref().unwrap().tpm, Some(200_000));
        let p = s.prices.price("openai", "gpt-4o").unwrap();
        assert_eq!(p.output.micros, 10_000_000);
        assert_eq!(p.cached_input.unwrap().micros, 1_250_000);
        assert!(s.prices.price("anthropic", "claude-sonnet-4-5").is_some());
        assert!(s.prices.price("openai", "claude-sonnet-4-5").is_none());
        assert!(c.limits.has_rules() && c.needs_store());
        assert_eq!(Config::default().limits.default_max_tokens, 4096);
        assert!(!Config::default().limits.has_rules());
    }

    #[test]
    fn bad_limits_name_their_key() {
        for (yaml, says) in [
            (
                "limits: {default_max_tokens: 0}",
                "limits.default_max_tokens",
            ),
            (
                "limits: {users: {bob: {cost_budget: {usd: 5}}}}",
                "limits.users.bob.cost_budget",
            ),
            (
                "limits: {default_user: {cost_budget: {usd: 5}}}",
                "limits.default_user.cost_budget",
            ),
            ("prices: {' ': {input: 1, output: 1}}", "prices"),
        ] {
            let e = check(&config(yaml)).unwrap_err();
            assert!(e.contains(says), "{yaml}: {e}");
        }
        for yaml in [
            "limits: {users: {bob: {rpn: 5}}}",
            "prices: {x: {input: -1, output: 1}}",
            "prices: {x: {input: 1}}",
        ] {
            assert!(serde_norway::from_str::<Config>(yaml).is_err(), "{yaml}");
        }
    }
}
