//! What a virtual key or a user may do (PRODUCT §7), as data: allow-lists of backends and
//! models (globs), rate limits (requests and tokens per minute, requests in flight) and budgets
//! (tokens, or cost from the configured price table, per day, week, month or ever).
//!
//! Declared here, below `identity` and `config`, because both carry rules — a virtual key's
//! rules ride on its principal, users' rules come from configuration — and `policy`, above both,
//! turns them into a request's grant and enforces the limits. Nothing here counts anything.
//!
//! Models are matched on what the request resolves to, never on the name the caller used: a
//! glob allows a model when it matches the upstream model's name or `backend:model`, so an alias
//! or a `backend:model` spelling reaches only what the list names.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::calendar::{DAY_MS, civil_from_days, days_from_civil};

/// The rules of one key or user. Every field is optional: the default allows everything and
/// limits nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// Backends that may be used (globs on the backend's name); empty: all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Glob>,
    /// Models that may be used (globs on the upstream model's name or `backend:model`); empty:
    /// all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<Glob>,
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (input + output) per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once (a stream counts until it ends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Tokens (input + output) per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<TokenBudget>,
    /// Spend per period, priced by the configured price table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_budget: Option<CostBudget>,
}

impl Rules {
    /// True when the rules allow backend `backend`.
    pub fn allows_backend(&self, backend: &str) -> bool {
        self.backends.is_empty() || self.backends.iter().any(|g| g.matches(backend))
    }

    /// True when the rules allow the upstream model `model` on backend `backend` (matched as
    /// `model` and as `backend:model`).
    pub fn allows_model(&self, backend: &str, model: &str) -> bool {
        self.allows_backend(backend)
            && (self.models.is_empty()
                || self
                    .models
                    .iter()
                    .any(|g| g.matches(model) || g.matches_qualified(backend, model)))
    }

    /// True when some limit or budget needs counting (allow-lists alone do not).
    pub fn counts(&self) -> bool {
        self.rpm.is_some()
            || self.tpm.is_some()
            || self.max_concurrent.is_some()
            || self.token_budget.is_some()
            || self.cost_budget.is_some()
    }

    /// True when the rules restrict nothing.
    pub fn is_open(&self) -> bool {
        self.backends.is_empty() && self.models.is_empty() && !self.counts()
    }
}

/// A token budget: at most `tokens` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBudget {
    /// Tokens (input + output).
    pub tokens: u64,
    /// When the count starts again.
    #[serde(default)]
    pub period: Period,
}

/// A cost budget: at most `usd` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostBudget {
    /// The amount, in US dollars.
    pub usd: Usd,
    /// When the count starts again.
    #[serde(default)]
    pub period: Period,
}

/// An amount of US dollars, held as whole micro-dollars so counters stay integers. Written as
/// a number (`25`, `0.5`) in configuration and JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd {
    /// Millionths of a dollar.
    pub micros: u64,
}

impl Usd {
    /// From dollars; `None` for a negative, non-finite or absurd amount.
    pub fn from_dollars(d: f64) -> Option<Usd> {
        (d.is_finite() && (0.0..=1e12).contains(&d)).then(|| Usd {
            micros: (d * 1e6).round() as u64,
        })
    }

    /// In dollars.
    pub fn dollars(self) -> f64 {
        self.micros as f64 / 1e6
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.2}", self.dollars())
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.dollars())
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Usd::from_dollars(v).ok_or_else(|| {
            serde::de::Error::custom(format!("{v} is not an amount of dollars (0 or more)"))
        })
    }
}

/// When a budget starts counting again: at 00:00 UTC each day, each Monday, on the 1st of each
/// month, or never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Every day at 00:00 UTC.
    Daily,
    /// Every Monday at 00:00 UTC.
    Weekly,
    /// On the 1st of every month at 00:00 UTC (the default).
    #[default]
    Monthly,
    /// Never: a lifetime budget.
    Never,
}

impl Period {
    /// The name in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Never => "never",
        }
    }

    /// The UTC day (days since 1970-01-01) the period containing `now_ms` starts on (0 for
    /// `never`).
    pub fn start_day(self, now_ms: u64) -> i64 {
        let today = (now_ms / DAY_MS) as i64;
        match self {
            Period::Daily => today,
            // 1970-01-01 was a Thursday: day 4 was the first Monday.
            Period::Weekly => today - (today - 4).rem_euclid(7),
            Period::Monthly => {
                let (y, m, _) = civil_from_days(today);
                days_from_civil(y, m, 1)
            }
            Period::Never => 0,
        }
    }

    /// When the period after the one containing `now_ms` starts (ms); `None` for `never`.
    pub fn next_reset_ms(self, now_ms: u64) -> Option<u64> {
        let start = self.start_day(now_ms);
        let next = match self {
            Period::Daily => start + 1,
            Period::Weekly => start + 7,
            Period::Monthly => {
                let (y, m, _) = civil_from_days(start);
                if m == 12 {
                    days_from_civil(y + 1, 1, 1)
                } else {
                    days_from_civil(y, m + 1, 1)
                }
            }
            Period::Never => return None,
        };
        Some(next as u64 * DAY_MS)
    }

    /// A name for the period containing `now_ms`, the same on every instance: `day:2026-12-04`,
    /// `week:2026-11-30` (its Monday), `month:2026-12`, `all`.
    pub fn key(self, now_ms: u64) -> String {
        let (y, m, d) = civil_from_days(self.start_day(now_ms));
        match self {
            Period::Daily => format!("day:{y:04}-{m:02}-{d:02}"),
            Period::Weekly => format!("week:{y:04}-{m:02}-{d:02}"),
            Period::Monthly => format!("month:{y:04}-{m:02}"),
            Period::Never => "all".to_owned(),
        }
    }
}

/// A name pattern: `*` matches any run of characters (`/` and `:` included), `?` one
/// character; everything else matches itself. `claude-*`, `openai:*`, `gpt-4o?mini`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Glob(Box<str>);

impl Glob {
    /// A pattern; `None` when empty.
    pub fn new(pattern: &str) -> Option<Glob> {
        let p = pattern.trim();
        (!p.is_empty()).then(|| Glob(p.into()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }

    /// True when `backend:model` matches, without building the string.
    fn matches_qualified(&self, backend: &str, model: &str) -> bool {
        // Only a pattern with a `:` can match a qualified name (neither part may be empty).
        self.0.contains(':') && {
            let mut s = String::with_capacity(backend.len() + 1 + model.len());
            s.push_str(backend);
            s.push(':');
            s.push_str(model);
            self.matches(&s)
        }
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Glob::new(&s).ok_or_else(|| serde::de::Error::custom("an empty name pattern"))
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice, never
/// exponential.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob("gpt-4o").matches("gpt-4o"));
        assert!(!glob("gpt-4o").matches("gpt-4o-mini"));
        assert!(glob("gpt-4o*").matches("gpt-4o-mini"));
        assert!(glob("claude-*-4*").matches("claude-sonnet-4-5"));
        assert!(!glob("claude-*-4*").matches("claude-3-haiku"));
        assert!(glob("gpt-4o?mini").matches("gpt-4o-mini"));
        assert!(glob("*").matches(""));
        assert!(!glob("?").matches(""));
        assert!(glob("a*b*c").matches("aXXbYYc") && !glob("a*b*c").matches("aXXbYY"));
        assert!(Glob::new("  ").is_none());
        // Long inputs stay cheap: no exponential backtracking.
        let long = "a".repeat(10_000);
        assert!(!glob("*a*a*a*a*a*b").matches(&long));
    }

    #[test]
    fn models_match_the_resolved_name_or_backend_qualified() {
        let r: Rules = serde_json::from_value(serde_json::json!({
            "backends": ["openai", "anthropic"],
            "models": ["gpt-4o*", "anthropic:claude-*"]
        }))
        .unwrap();
        assert!(r.allows_model("openai", "gpt-4o-mini"));
        assert!(r.allows_model("anthropic", "claude-sonnet-4-5"));
        assert!(!r.allows_model("openai", "claude-sonnet-4-5"));
        assert!(!r.allows_model("groq", "gpt-4o"), "backend not listed");
        assert!(!r.allows_model("openai", "o3"));
        assert!(r.allows_backend("openai") && !r.allows_backend("gemini"));
        assert!(!r.counts() && !r.is_open());
        assert!(Rules::default().is_open() && Rules::default().allows_model("x", "y"));
    }

    #[test]
    fn rules_parse_budgets_and_refuse_unknown_fields() {
        let r: Rules = serde_json::from_value(serde_json::json!({
            "rpm": 60, "tpm": 100000, "max_concurrent": 4,
            "token_budget": {"tokens": 1000000, "period": "weekly"},
            "cost_budget": {"usd": 25.5}
        }))
        .unwrap();
        assert_eq!(r.cost_budget.unwrap().usd.micros, 25_500_000);
        assert_eq!(r.cost_budget.unwrap().period, Period::Monthly);
        assert_eq!(r.token_budget.unwrap().period, Period::Weekly);
        assert!(r.counts());
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["cost_budget"]["usd"], 25.5);
        assert_eq!(serde_json::from_value::<Rules>(back).unwrap(), r);
        let bad = serde_json::from_value::<Rules>(serde_json::json!({"rpn": 1}));
        assert!(bad.unwrap_err().to_string().contains("rpn"));
        let neg = serde_json::from_value::<Rules>(serde_json::json!({"cost_budget": {"usd": -1}}));
        assert!(neg.is_err());
    }

    #[test]
    fn periods_start_and_reset_on_utc_boundaries() {
        // 2026-12-04T15:30:00Z, a Friday.
        let now = 20_791 * DAY_MS + 55_800_000;
        assert_eq!(Period::Daily.key(now), "day:2026-12-04");
        assert_eq!(Period::Weekly.key(now), "week:2026-11-30");
        assert_eq!(Period::Monthly.key(now), "month:2026-12");
        assert_eq!(Period::Never.key(now), "all");
        assert_eq!(Period::Daily.next_reset_ms(now), Some(20_792 * DAY_MS));
        // Monday 2026-12-07.
        assert_eq!(Period::Weekly.next_reset_ms(now), Some(20_794 * DAY_MS));
        // 2027-01-01.
        assert_eq!(
            Period::Monthly.next_reset_ms(now),
            Some(days_from_civil(2027, 1, 1) as u64 * DAY_MS)
        );
        assert_eq!(Period::Never.next_reset_ms(now), None);
        // A Monday starts its own week.
        assert_eq!(Period::Weekly.key(20_787 * DAY_MS), "week:2026-11-30");
    }
}
