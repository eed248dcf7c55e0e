//! The price table: US dollars per million tokens — input, output and cached input — for the
//! models matched by each entry's glob (on the upstream model's name or `backend:model`). The
//! most specific entry wins: an exact name before any pattern, then the longest pattern. Costs
//! are whole micro-dollars, rounded up, so a budget never undercounts.

use serde::{Deserialize, Serialize};

use crate::rules::{Glob, Usd};

/// The price of one model, per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input (prompt) tokens.
    pub input: Usd,
    /// Output (completion) tokens.
    pub output: Usd,
    /// Input tokens read from the provider's prompt cache (default: the input price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<Usd>,
}

impl Price {
    /// The cost in micro-dollars (rounded up) of `input` tokens, `cached` of which were read
    /// from the cache, and `output` tokens.
    pub fn cost_micros(&self, input: u64, cached: u64, output: u64) -> u64 {
        let cached = cached.min(input);
        let per_m = |tokens: u64, price: Usd| u128::from(tokens) * u128::from(price.micros);
        let total = per_m(input - cached, self.input)
            + per_m(cached, self.cached_input.unwrap_or(self.input))
            + per_m(output, self.output);
        u64::try_from(total.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// The configured prices, looked up by backend and upstream model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable {
    entries: Vec<(Glob, Price)>,
}

impl PriceTable {
    /// A table of `entries` (pattern, price).
    pub fn new(entries: impl IntoIterator<Item = (Glob, Price)>) -> Self {
        let mut entries: Vec<_> = entries.into_iter().collect();
        // Most specific first: exact names, then longer patterns.
        entries.sort_by_key(|(g, _)| {
            let wild = g.as_str().contains(['*', '?']);
            (wild, std::cmp::Reverse(g.as_str().len()))
        });
        Self { entries }
    }

    /// True when no price is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The price of `model` on `backend`, if any entry matches it.
    pub fn price(&self, backend: &str, model: &str) -> Option<Price> {
        if model.is_empty() {
            return None;
        }
        let qualified = format!("{backend}:{model}");
        self.entries
            .iter()
            .find(|(g, _)| g.matches(model) || g.matches(&qualified))
            .map(|(_, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(d: f64) -> Usd {
        Usd::from_dollars(d).unwrap()
    }

    fn price(i: f64, o: f64, c: Option<f64>) -> Price {
        Price {
            input: usd(i),
            output: usd(o),
            cached_input: c.map(usd),
        }
    }

    #[test]
    fn costs_are_per_million_tokens_rounded_up() {
        let p = price(2.5, 10.0, Some(1.25));
        // 1M input = $2.50, 1M output = $10.
        assert_eq!(p.cost_micros(1_000_000, 0, 0), 2_500_000);
        assert_eq!(p.cost_micros(0, 0, 1_000_000), 10_000_000);
        // Half the input from the cache: 0.5M × 2.5 + 0.5M × 1.25.
        assert_eq!(p.cost_micros(1_000_000, 500_000, 0), 1_875_000);
        // One input token costs 2.5 micro-dollars: rounded up to 3.
        assert_eq!(p.cost_micros(1, 0, 0), 3);
        assert_eq!(p.cost_micros(0, 0, 0), 0);
        // Without a cache price, cached tokens cost the input price; more cached than input
        // counts as all input cached.
        assert_eq!(
            price(2.0, 0.0, None).cost_micros(1_000_000, 2_000_000, 0),
            2_000_000
        );
    }

    #[test]
    fn the_most_specific_entry_wins() {
        let g = |p: &str| Glob::new(p).unwrap();
        let t = PriceTable::new([
            (g("gpt-4o*"), price(1.0, 1.0, None)),
            (g("gpt-4o"), price(2.0, 2.0, None)),
            (g("gpt-4o-mini*"), price(3.0, 3.0, None)),
            (g("azure:gpt-4o"), price(4.0, 4.0, None)),
        ]);
        assert_eq!(t.price("openai", "gpt-4o").unwrap().input, usd(2.0));
        assert_eq!(t.price("azure", "gpt-4o").unwrap().input, usd(4.0));
        assert_eq!(
            t.price("openai", "gpt-4o-mini-2024").unwrap().input,
            usd(3.0)
        );
        assert_eq!(t.price("openai", "gpt-4o-audio").unwrap().input, usd(1.0));
        assert_eq!(t.price("openai", "o3"), None);
        assert_eq!(t.price("openai", ""), None);
        assert!(PriceTable::default().is_empty() && !t.is_empty());
    }
}
