//! Reserve before the upstream call, settle with real usage after. [`Meter::admit`] turns every
//! limit and budget of every applicable rule set into counter claims — one request against
//! `rpm`, the request's tokens against `tpm` (fixed one-minute UTC windows), one slot against
//! `max_concurrent`, its tokens and cost against the budgets of the current period — and
//! reserves them all or none. The [`Admission`] it returns settles exactly once: explicitly with
//! the answer's usage (or nothing, after an upstream error), or when dropped (a broken stream, a
//! client gone), replacing the reservation by what was spent and freeing the slot.
//!
//! The reservation: the estimated input ([`estimate_input_tokens`]: the body's bytes / 4,
//! rounded up) plus the request's maximum output (its `max_tokens`, `max_completion_tokens`,
//! `max_output_tokens` or `maxOutputTokens`, else `limits.default_max_tokens`), priced at the
//! model's input and output prices. What a settlement does not know is charged as reserved: an
//! answer that reports no usage is charged its reservation, a request dropped before its answer
//! its estimated input.

use std::sync::Arc;

use futures_util::FutureExt as _;

use super::counters::{Claim, CounterError, Counters, Reserved};
use super::journal::JournalError;
use super::ledger::{Amounts, Holder, Ledger, RowKey};
use super::prices::{Price, PriceTable};
use super::shared_counters::{FailMode, InFlight, Missed, Outage};
use super::{Grant, Whose};
use crate::clock::SharedClock;
use crate::clock::calendar::DAY_MS;
use crate::clock::iso8601;
use crate::rules::{Period, Rules, Usd};
use crate::store::{StoreError, UsageSpent, UsageStore, UsageSubject};

/// A fixed rate-limit window (ms).
const WINDOW_MS: u64 = 60_000;
/// How often a reservation is tried again after seeding budgets it found missing.
const SEED_ATTEMPTS: usize = 3;

/// The input tokens a request body of `bytes` is assumed to carry: one per 4 bytes, rounded up
/// (JSON text runs about 4 bytes a token; base64 images count far more than they cost, and
/// are corrected at settlement).
pub fn estimate_input_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// What a request may spend, known before it is sent.
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    /// Backend name.
    pub backend: &'a str,
    /// Upstream model name (empty when the request names none).
    pub model: &'a str,
    /// Estimated input tokens ([`estimate_input_tokens`]).
    pub input_tokens: u64,
    /// The request's own output maximum, if it sets one.
    pub max_output_tokens: Option<u64>,
    /// The operation spends tokens (a generation or embedding); otherwise only the request is
    /// counted.
    pub spends: bool,
}

/// What an answer reported it spent; a missing field is charged as reserved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Input tokens (cached ones included).
    pub input: Option<u64>,
    /// Output tokens.
    pub output: Option<u64>,
    /// Input tokens read from the provider's cache.
    pub cached_input: Option<u64>,
}

impl Spent {
    /// Nothing: the upstream refused or failed before answering.
    pub const NOTHING: Spent = Spent {
        input: Some(0),
        output: Some(0),
        cached_input: Some(0),
    };
}

/// Why a request is not admitted. The message names the limit, whose it is and when it resets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A rate limit (requests or tokens per minute) or the concurrency limit: try again later.
    #[error("{message}")]
    RateLimited {
        /// For the client.
        message: String,
        /// Seconds until the window ends (1 for the concurrency limit).
        retry_after_secs: u64,
    },
    /// A budget is spent until its period resets.
    #[error("{message}")]
    BudgetExhausted {
        /// For the client.
        message: String,
        /// Seconds until the budget resets; `None` for a lifetime budget.
        retry_after_secs: Option<u64>,
    },
    /// The request alone needs more than a whole limit or budget: it can never be admitted.
    #[error("{message}")]
    NeverFits {
        /// For the client.
        message: String,
        /// The limit is a budget (else a rate limit).
        budget: bool,
    },
    /// A cost budget applies but the model has no price: refused (fail closed).
    #[error("{0}")]
    Unpriced(String),
    /// The counters or the store could not be asked: refused (fail closed).
    #[error("{0}")]
    Unavailable(String),
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Requests,
    TokensPerMinute,
    Concurrent,
    TokenBudget(Period),
    CostBudget(Period),
}

/// One claim of a reservation, with what explains it.
struct Planned<'g> {
    claim: Claim,
    kind: Kind,
    whose: Whose<'g>,
}

/// A claim that was reserved, settled later.
#[derive(Debug)]
struct Held {
    key: String,
    kind: Kind,
    amount: u64,
}

/// The counting half of the policy: counters, prices, the ledger and the store.
pub(crate) struct Meter {
    pub(crate) counters: Arc<dyn Counters>,
    ledger: Ledger,
    store: Option<Arc<dyn UsageStore>>,
    prices: PriceTable,
    default_max_tokens: u64,
    clock: SharedClock,
    outage: Outage,
    in_flight: Arc<InFlight>,
    /// Where settlements that wait for their counters run: the runtime the policy was built on
    /// (`serve`'s main runtime, which outlives the event loops), else the caller's.
    runtime: Option<tokio::runtime::Handle>,
}

impl Whose<'_> {
    /// `k|<id>` or `u|<id>`: the end of every counter name (ids go last, so no id can make two
    /// names collide).
    fn tag(&self) -> String {
        match self {
            Whose::Key { id, .. } => format!("k|{id}"),
            Whose::User(id) => format!("u|{id}"),
        }
    }

    fn holder(&self) -> Holder<'_> {
        match *self {
            Whose::Key { id, .. } => Holder::Key(id),
            Whose::User(id) => Holder::User(id),
        }
    }
}

impl std::fmt::Display for Whose<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Whose::Key { id, name } => write!(f, "virtual key `{name}` ({id})"),
            Whose::User(id) => write!(f, "user `{id}`"),
        }
    }
}

/// The reservation of one request, in numbers.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    input: u64,
    output: u64,
    /// Micro-dollars, when the model has a price.
    cost: Option<u64>,
}

impl Reservation {
    fn tokens(&self) -> u64 {
        self.input + self.output
    }

    fn explain(&self) -> String {
        format!(
            "{} tokens (estimated input {} + max output {})",
            self.tokens(),
            self.input,
            self.output
        )
    }
}

fn secs_until(at_ms: u64, now_ms: u64) -> u64 {
    at_ms.saturating_sub(now_ms).div_ceil(1000).max(1)
}

impl Meter {
    pub(crate) fn new(
        counters: Arc<dyn Counters>,
        store: Option<Arc<dyn UsageStore>>,
        prices: PriceTable,
        default_max_tokens: u64,
        clock: SharedClock,
        on_error: FailMode,
    ) -> Self {
        Self {
            counters,
            ledger: Ledger::default(),
            store,
            prices,
            default_max_tokens,
            clock,
            outage: Outage::new(on_error),
            in_flight: Arc::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// What the counters do when they cannot be reached.
    pub(crate) fn fail_mode(&self) -> FailMode {
        self.outage.mode()
    }

    /// Waits until every settlement started so far has reached the counters (or given up).
    pub(crate) async fn settled_all(&self) {
        self.in_flight.idle().await;
    }

    /// Notes how a settlement sent at `now` ended.
    fn settled(&self, result: Result<(), CounterError>, now: u64) {
        if let Err(e) = result {
            self.outage.missed(Missed::Settlement, &e, now);
        }
    }

    /// True when settled usage is kept (a store is open).
    pub(crate) fn records(&self) -> bool {
        self.store.is_some()
    }

    /// Journals settlements in `dir` and takes in the usage of the journal files no running
    /// process holds and the store has not counted; how many records (nothing when no store
    /// keeps usage).
    pub(crate) async fn keep_journal(&self, dir: &std::path::Path) -> Result<usize, JournalError> {
        match &self.store {
            Some(store) => {
                let now = self.now_secs();
                self.ledger.keep_journal(dir, store.as_ref(), now).await
            }
            None => Ok(0),
        }
    }

    pub(crate) async fn flush(&self) -> Result<usize, StoreError> {
        match &self.store {
            Some(store) => self.ledger.flush(store.as_ref(), self.now_secs()).await,
            None => Ok(0),
        }
    }

    fn now_secs(&self) -> i64 {
        i64::try_from(self.clock.now_millis() / 1000).unwrap_or(i64::MAX)
    }

    /// The claims of every counter of `rules` (whose: `whose`) for a request reserving `r` at
    /// `now`.
    fn plan<'g>(
        &self,
        whose: Whose<'g>,
        rules: &Rules,
        r: &Reservation,
        demand: &Demand<'_>,
        now: u64,
        out: &mut Vec<Planned<'g>>,
    ) -> Result<(), Refusal> {
        let tag = whose.tag();
        let minute = now / WINDOW_MS;
        let window_end = Some((minute + 1) * WINDOW_MS);
        let mut push = |kind, key: String, amount, limit, expires_at_ms, seeded| {
            out.push(Planned {
                claim: Claim {
                    key,
                    amount,
                    limit,
                    expires_at_ms,
                    seeded,
                },
                kind,
                whose,
            });
        };
        if let Some(rpm) = rules.rpm {
            let key = format!("rpm|{minute}|{tag}");
            push(Kind::Requests, key, 1, rpm, window_end, false);
        }
        if let Some(max) = rules.max_concurrent {
            let key = format!("{}{tag}", super::redis_counters::HELD);
            push(Kind::Concurrent, key, 1, u64::from(max), None, false);
        }
        let tokens = r.tokens();
        if tokens == 0 {
            return Ok(());
        }
        if let Some(tpm) = rules.tpm {
            let key = format!("tpm|{minute}|{tag}");
            push(Kind::TokensPerMinute, key, tokens, tpm, window_end, false);
        }
        // Budgets count per period, from what the store says was spent (seeded).
        let mut budget = |kind, name: &str, period: Period, amount, limit| {
            let key = format!("{name}|{}|{tag}", period.key(now));
            push(kind, key, amount, limit, period.next_reset_ms(now), true);
        };
        if let Some(b) = rules.token_budget {
            budget(
                Kind::TokenBudget(b.period),
                "tok",
                b.period,
                tokens,
                b.tokens,
            );
        }
        if let Some(b) = rules.cost_budget {
            let Some(cost) = r.cost else {
                return Err(Refusal::Unpriced(format!(
                    "model `{}` of backend `{}` has no price in the gateway's price table, and {whose} has a cost budget: the gateway does not serve what it cannot price (the operator adds the model under `prices`)",
                    demand.model, demand.backend
                )));
            };
            budget(
                Kind::CostBudget(b.period),
                "usd",
                b.period,
                cost,
                b.usd.micros,
            );
        }
        Ok(())
    }

    /// Reserves `demand` under `grant` (which has at least one rule set).
    pub(crate) async fn admit(
        self: &Arc<Self>,
        grant: &Grant,
        demand: &Demand<'_>,
    ) -> Result<Admission, Refusal> {
        let now = self.clock.now_millis();
        let price = self.prices.price(demand.backend, demand.model);
        let r = if demand.spends {
            let input = demand.input_tokens;
            let output = demand.max_output_tokens.unwrap_or(self.default_max_tokens);
            Reservation {
                input,
                output,
                cost: price.map(|p| p.cost_micros(input, 0, output)),
            }
        } else {
            Reservation {
                input: 0,
                output: 0,
                cost: Some(0),
            }
        };
        let mut planned = Vec::new();
        for (whose, rules) in grant.sets() {
            self.plan(whose, rules, &r, demand, now, &mut planned)?;
        }
        if let Some(p) = planned.iter().find(|p| p.claim.amount > p.claim.limit) {
            return Err(never_fits(p, &r));
        }
        let held = match self.reserve(&planned, &r, now).await {
            // Nothing to count (allow-lists only): the counters were not asked.
            Ok(()) if planned.is_empty() => Vec::new(),
            Ok(()) => {
                self.outage.reached();
                planned
                    .into_iter()
                    .map(|p| Held {
                        key: p.claim.key,
                        kind: p.kind,
                        amount: p.claim.amount,
                    })
                    .collect()
            }
            Err(Blocked::Refused(refusal)) => return Err(refusal),
            Err(Blocked::Unreachable(e)) => {
                self.outage.missed(Missed::Reservation, &e, now);
                match self.outage.mode() {
                    FailMode::Closed => return Err(Refusal::Unavailable(COUNTERS_DOWN.to_owned())),
                    // Admitted unmetered: nothing held, the usage still recorded.
                    FailMode::Open => Vec::new(),
                }
            }
        };
        let row = RowKey {
            day: (now / DAY_MS) as i64,
            key: grant.key_id().cloned(),
            user: grant.user_id().cloned(),
            backend: Arc::from(demand.backend),
            model: Arc::from(demand.model),
        };
        Ok(Admission {
            meter: self.clone(),
            held,
            row: Some(row),
            reserved: r,
            price,
            answered: false,
        })
    }

    /// Reserves every planned claim, all or nothing, seeding the budgets found missing.
    async fn reserve(
        &self,
        planned: &[Planned<'_>],
        r: &Reservation,
        now: u64,
    ) -> Result<(), Blocked> {
        if planned.is_empty() {
            return Ok(());
        }
        let claims: Vec<Claim> = planned.iter().map(|p| p.claim.clone()).collect();
        let mut attempt = 0;
        loop {
            let reserved = self.counters.reserve(&claims, now).await?;
            match reserved {
                Reserved::Done => return Ok(()),
                Reserved::Refused { index, current } => {
                    return Err(refused(&planned[index], current, r, now).into());
                }
                Reserved::Unseeded(missing) if attempt < SEED_ATTEMPTS => {
                    attempt += 1;
                    for i in missing {
                        self.seed(&planned[i], now).await?;
                    }
                }
                Reserved::Unseeded(_) => {
                    return Err(Refusal::Unavailable(
                        "the budget counters could not be started from the store".to_owned(),
                    )
                    .into());
                }
            }
        }
    }

    /// Starts a budget's counter at what its holder spent in the period: the ledger's
    /// unflushed part first, then the store's (a flush in between counts twice, never zero
    /// times). With counters shared by several instances, the others' unflushed usage (at most
    /// a second's) is not in the seed.
    async fn seed(&self, p: &Planned<'_>, now: u64) -> Result<(), Blocked> {
        let period = match p.kind {
            Kind::TokenBudget(period) | Kind::CostBudget(period) => period,
            _ => return Ok(()),
        };
        let since = period.start_day(now);
        let holder = p.whose.holder();
        let local = self.ledger.pending(holder, since);
        let stored = match &self.store {
            Some(store) => {
                let subject = match holder {
                    Holder::Key(id) => UsageSubject::Key(id),
                    Holder::User(id) => UsageSubject::User(id),
                };
                let day = super::ledger::day_string(since);
                store.usage_spent(subject, &day).await.map_err(|e| {
                    tracing::error!(error = %e, "cannot read a budget's spending from the store");
                    Blocked::Refused(Refusal::Unavailable(
                        "the gateway cannot read what was spent against a budget (the store is unavailable)"
                            .to_owned(),
                    ))
                })?
            }
            None => UsageSpent::default(),
        };
        let value = match p.kind {
            Kind::CostBudget(_) => local.cost_micros + stored.cost_micros,
            _ => local.tokens + stored.tokens,
        };
        self.counters
            .seed(&p.claim.key, value, p.claim.expires_at_ms, now)
            .await?;
        Ok(())
    }
}

/// What a 503 says when the counters cannot be reached (`limits.on_redis_error: closed`).
const COUNTERS_DOWN: &str = "the limit counters are unavailable (the gateway cannot reach the server that counts limits and budgets): this caller's requests are refused until it is back; try again shortly";

/// Why a reservation did not happen.
enum Blocked {
    /// A limit or budget refused it (or the store could not seed a budget).
    Refused(Refusal),
    /// The counters could not be reached.
    Unreachable(CounterError),
}

impl From<Refusal> for Blocked {
    fn from(r: Refusal) -> Self {
        Blocked::Refused(r)
    }
}

impl From<CounterError> for Blocked {
    fn from(e: CounterError) -> Self {
        Blocked::Unreachable(e)
    }
}

/// The amount of a claim, in its unit.
fn amount(kind: Kind, n: u64) -> String {
    match kind {
        Kind::CostBudget(_) => Usd { micros: n }.to_string(),
        Kind::Requests | Kind::Concurrent => format!("{n} requests"),
        _ => format!("{n} tokens"),
    }
}

fn never_fits(p: &Planned<'_>, r: &Reservation) -> Refusal {
    let (whose, limit) = (p.whose, p.claim.limit);
    let (what, budget) = match p.kind {
        Kind::TokensPerMinute => (
            format!("{whose}'s whole limit of {limit} tokens per minute"),
            false,
        ),
        Kind::TokenBudget(period) => (
            format!(
                "{whose}'s whole {} token budget of {limit} tokens",
                period.as_str()
            ),
            true,
        ),
        Kind::CostBudget(period) => (
            format!(
                "{whose}'s whole {} cost budget of {}",
                period.as_str(),
                Usd { micros: limit }
            ),
            true,
        ),
        // A limit of 0 requests: nothing is ever admitted.
        Kind::Requests | Kind::Concurrent => {
            (format!("{whose}'s limit of {limit} requests"), false)
        }
    };
    let needs = match p.kind {
        Kind::CostBudget(_) => format!(
            "up to {} for {}",
            amount(p.kind, p.claim.amount),
            r.explain()
        ),
        Kind::Requests | Kind::Concurrent => "1 request".to_owned(),
        _ => r.explain(),
    };
    Refusal::NeverFits {
        message: format!(
            "this request alone needs {needs}, more than {what}: it can never be admitted as it is (lower max_tokens or shorten the input)"
        ),
        budget,
    }
}

fn refused(p: &Planned<'_>, current: u64, r: &Reservation, now: u64) -> Refusal {
    let (whose, limit) = (p.whose, p.claim.limit);
    let window_end = p.claim.expires_at_ms.unwrap_or(now + 1000);
    let window = |what: String| Refusal::RateLimited {
        message: format!(
            "{what}; the window resets in {} s ({})",
            secs_until(window_end, now),
            iso8601(window_end)
        ),
        retry_after_secs: secs_until(window_end, now),
    };
    match p.kind {
        Kind::Requests => window(format!(
            "rate limit reached: {whose} may send {limit} requests per minute"
        )),
        Kind::TokensPerMinute => window(format!(
            "token rate limit reached: {whose} may use {limit} tokens per minute, {current} are used or reserved in this minute, and this request reserves {}",
            r.explain()
        )),
        Kind::Concurrent => Refusal::RateLimited {
            message: format!(
                "concurrency limit reached: {whose} may have {limit} requests in flight; try again when one ends"
            ),
            retry_after_secs: 1,
        },
        Kind::TokenBudget(period) | Kind::CostBudget(period) => {
            let reset = period.next_reset_ms(now);
            let when = match reset {
                Some(at) => format!("it resets at {}", iso8601(at)),
                None => "it does not reset (a lifetime budget)".to_owned(),
            };
            let needs = match p.kind {
                Kind::CostBudget(_) => {
                    format!("up to {} ({})", amount(p.kind, p.claim.amount), r.explain())
                }
                _ => r.explain(),
            };
            Refusal::BudgetExhausted {
                message: format!(
                    "{} budget exhausted: {whose} has a {} budget of {}, {} spent or reserved, and this request reserves {needs}; {when}",
                    if matches!(p.kind, Kind::CostBudget(_)) {
                        "cost"
                    } else {
                        "token"
                    },
                    period.as_str(),
                    amount(p.kind, limit),
                    amount(p.kind, current),
                ),
                retry_after_secs: reset.map(|at| secs_until(at, now)),
            }
        }
    }
}

/// The reservation of one admitted request, settled exactly once — by [`Admission::settle`],
/// or, if it is dropped first, with what is known by then.
pub struct Admission {
    meter: Arc<Meter>,
    held: Vec<Held>,
    /// `None` once settled.
    row: Option<RowKey>,
    reserved: Reservation,
    price: Option<Price>,
    answered: bool,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("held", &self.held)
            .field("answered", &self.answered)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// The upstream accepted the request: from now on, output it does not report is charged as
    /// reserved.
    pub fn answered(&mut self) {
        self.answered = true;
    }

    /// Replaces the reservation by what was spent, frees the concurrency slot and records the
    /// usage.
    pub fn settle(mut self, spent: Spent) {
        self.finish(spent);
    }

    fn finish(&mut self, spent: Spent) {
        let Some(row) = self.row.take() else { return };
        let r = self.reserved;
        let input = spent.input.unwrap_or(r.input);
        let output = spent
            .output
            .unwrap_or(if self.answered { r.output } else { 0 });
        let cached = spent.cached_input.unwrap_or(0).min(input);
        let cost = self
            .price
            .map_or(0, |p| p.cost_micros(input, cached, output));
        let tokens = input + output;
        let delta = |actual: u64, reserved: u64| -> i64 {
            let d = i128::from(actual) - i128::from(reserved);
            d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
        };
        let deltas: Vec<(String, i64)> = self
            .held
            .drain(..)
            .filter_map(|h| {
                let d = match h.kind {
                    Kind::Requests => return None,
                    Kind::Concurrent => -1,
                    Kind::TokensPerMinute | Kind::TokenBudget(_) => delta(tokens, h.amount),
                    Kind::CostBudget(_) => delta(cost, h.amount),
                };
                (d != 0).then_some((h.key, d))
            })
            .collect();
        let meter = &self.meter;
        if !deltas.is_empty() {
            let now = meter.clock.now_millis();
            let counters = meter.counters.clone();
            let mut adjust = Box::pin(async move { counters.adjust(&deltas, now).await });
            // The in-process counters are done at once; a shared one finishes in a task.
            match (&mut adjust).now_or_never() {
                Some(result) => meter.settled(result, now),
                None => {
                    let current = || tokio::runtime::Handle::try_current().ok();
                    let runtime = meter.runtime.clone().or_else(current);
                    match runtime {
                        Some(rt) => {
                            let sending = meter.in_flight.start();
                            let meter = meter.clone();
                            rt.spawn(async move {
                                meter.settled(adjust.await, now);
                                drop(sending);
                            });
                        }
                        None => tracing::error!(
                            "a settlement could not reach the limit counters (no runtime)"
                        ),
                    }
                }
            }
        }
        if meter.records() {
            let amounts = Amounts {
                requests: 1,
                input,
                output,
                cached,
                cost_micros: cost,
            };
            meter.ledger.record(row, amounts);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.finish(Spent::default());
    }
}
