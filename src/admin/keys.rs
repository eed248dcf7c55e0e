//! `portcullis keys create|list|show|update|revoke`: virtual keys in the configured store,
//! through the operations the management API uses too
//! ([`crate::identity::virtual_key::manage`]). `create` prints the key once; nothing else ever
//! prints it (the store holds only a hash). `--json` prints the view the API answers with.

use std::fmt::Write as _;

use super::{AdminError, find_user, store_location, time, user_label};
use crate::cli::{ExpiryArgs, KeyField, KeysCommand, RulesArgs};
use crate::clock::{Clock, parse_iso8601};
use crate::config::{Config, HumanDuration};
use crate::identity::virtual_key::manage::{self, NewKey, key_status, key_view, rules_summary};
use crate::identity::virtual_key::{FORMAT, display_id};
use crate::rules::{CostBudget, Glob, Period, Rules, TokenBudget, Usd};
use crate::store::{KeyAdminStore, KeyUpdate, User, VirtualKeyRecord};

/// `portcullis keys …`
pub async fn keys(
    config: &Config,
    clock: &dyn Clock,
    action: &KeysCommand,
) -> Result<String, AdminError> {
    let sql = super::open_store(&config.storage).await?;
    let store: &dyn KeyAdminStore = &sql;
    let now = clock.now_millis() as i64;
    match action {
        KeysCommand::Create {
            name,
            owner,
            expiry,
            rules,
            json,
        } => {
            let users = store.list_users().await?;
            let new = NewKey {
                name: name.clone(),
                owner: match owner {
                    Some(o) => Some(find_user(&users, o)?.id.clone()),
                    None => None,
                },
                expires_at: expires_at(expiry, now)?,
                rules: edit_rules(Rules::default(), rules, &[])?,
            };
            let (record, key) = manage::create(store, new, now).await?;
            if *json {
                let mut view = key_view(&record, now);
                view["key"] = key.expose().into();
                return Ok(format!("{view}\n"));
            }
            Ok(format!(
                "created {} {:?}, owner {}, expires {}, rules: {}\n\n  {}\n\n\
                 This is the only time the key is shown: only a hash of it is stored (in {}), and gateways using that store accept it.\n\
                 Use it as the API key: Authorization: Bearer …, x-api-key, x-goog-api-key or ?key=.\n",
                display_id(&record.id),
                record.name,
                owner_label(&users, &record),
                time(record.expires_at),
                rules_summary(&record.rules),
                key.expose(),
                store_location(config),
            ))
        }
        KeysCommand::List { owner, json } => list(store, owner.as_deref(), *json, now).await,
        KeysCommand::Show { id, json } => {
            let record = manage::fetch(store, key_id(id)?).await?;
            if *json {
                return Ok(format!("{}\n", key_view(&record, now)));
            }
            let users = store.list_users().await?;
            Ok(describe(&record, &users, now))
        }
        KeysCommand::Update {
            id,
            name,
            expiry,
            rules,
            unset,
            json,
        } => {
            let id = key_id(id)?;
            let change = change(store, id, name, expiry, rules, unset, now).await?;
            let record = manage::update(store, id, change, now).await?;
            if *json {
                return Ok(format!("{}\n", key_view(&record, now)));
            }
            let users = store.list_users().await?;
            Ok(format!("updated\n{}", describe(&record, &users, now)))
        }
        KeysCommand::Revoke { id } => {
            let (record, revoked) = manage::revoke(store, key_id(id)?, now).await?;
            let shown = display_id(&record.id);
            Ok(if revoked {
                format!("revoked {shown}\n")
            } else {
                format!("{shown} was already revoked\n")
            })
        }
        KeysCommand::Usage(args) => super::usage::report(&sql, args).await,
    }
}

/// The key id a command-line argument names.
fn key_id(arg: &str) -> Result<&str, AdminError> {
    FORMAT.id_from_argument(arg).map_err(AdminError::Refused)
}

/// The expiry the flags give (ms), if any.
fn expires_at(args: &ExpiryArgs, now: i64) -> Result<Option<i64>, AdminError> {
    if let Some(d) = &args.expires_in {
        let d = HumanDuration::parse(d)
            .map_err(|e| AdminError::Refused(format!("--expires-in: {e}")))?;
        return Ok(Some(now.saturating_add(d.0.as_millis() as i64)));
    }
    match &args.expires_at {
        Some(t) => match parse_iso8601(t) {
            Some(ms) => Ok(Some(ms as i64)),
            None => Err(AdminError::Refused(format!(
                "--expires-at: `{t}` is not a time (examples: 2027-01-31, 2027-01-31T18:00:00Z)"
            ))),
        },
        None => Ok(None),
    }
}

/// What `keys update` changes, from its flags and the key as stored.
async fn change(
    store: &dyn KeyAdminStore,
    id: &str,
    name: &Option<String>,
    expiry: &ExpiryArgs,
    rules: &RulesArgs,
    unset: &[KeyField],
    now: i64,
) -> Result<KeyUpdate, AdminError> {
    let new_expiry = expires_at(expiry, now)?;
    let unset_expiry = unset.contains(&KeyField::Expiry);
    if unset_expiry && new_expiry.is_some() {
        return Err(contradiction("expiry"));
    }
    let edits_rules = rules_given(rules) || unset.iter().any(|f| *f != KeyField::Expiry);
    let current = manage::fetch(store, id).await?;
    let change = KeyUpdate {
        name: name.clone(),
        expires_at: new_expiry.map(Some).or(unset_expiry.then_some(None)),
        rules: match edits_rules {
            true => Some(edit_rules(current.rules, rules, unset)?),
            false => None,
        },
    };
    if change == KeyUpdate::default() {
        return Err(AdminError::Refused(
            "nothing to change: give --name, --expires-in/--expires-at, rule flags or --unset (see `portcullis keys update --help`)".to_owned(),
        ));
    }
    Ok(change)
}

fn contradiction(field: &str) -> AdminError {
    AdminError::Refused(format!(
        "--unset {field} contradicts the flag that sets it: give one of them"
    ))
}

/// True when any rule flag is given.
fn rules_given(a: &RulesArgs) -> bool {
    !a.backends.is_empty()
        || !a.models.is_empty()
        || a.rpm.is_some()
        || a.tpm.is_some()
        || a.max_concurrent.is_some()
        || a.token_budget.is_some()
        || a.cost_budget.is_some()
        || a.budget_period.is_some()
        || a.rules_json.is_some()
}

/// `rules` after the flags: `--rules-json` replaces them whole; otherwise each given flag
/// replaces its setting (a repeated `--backend`/`--model` the whole list) and each `--unset`
/// removes one. `--budget-period` applies to the budgets given or already there.
fn edit_rules(mut r: Rules, a: &RulesArgs, unset: &[KeyField]) -> Result<Rules, AdminError> {
    if let Some(json) = &a.rules_json {
        if unset.iter().any(|f| *f != KeyField::Expiry) {
            return Err(AdminError::Refused(
                "--rules-json replaces all the rules: leave out --unset for rules".to_owned(),
            ));
        }
        return serde_json::from_str(json)
            .map_err(|e| AdminError::Refused(format!("--rules-json: {e}")));
    }
    let given = [
        (KeyField::Backends, !a.backends.is_empty(), "backends"),
        (KeyField::Models, !a.models.is_empty(), "models"),
        (KeyField::Rpm, a.rpm.is_some(), "rpm"),
        (KeyField::Tpm, a.tpm.is_some(), "tpm"),
        (
            KeyField::MaxConcurrent,
            a.max_concurrent.is_some(),
            "max_concurrent",
        ),
        (
            KeyField::TokenBudget,
            a.token_budget.is_some(),
            "token_budget",
        ),
        (KeyField::CostBudget, a.cost_budget.is_some(), "cost_budget"),
    ];
    for (field, set, name) in given {
        if set && unset.contains(&field) {
            return Err(contradiction(name));
        }
    }
    for field in unset {
        match field {
            KeyField::Expiry => {}
            KeyField::Backends => r.backends.clear(),
            KeyField::Models => r.models.clear(),
            KeyField::Rpm => r.rpm = None,
            KeyField::Tpm => r.tpm = None,
            KeyField::MaxConcurrent => r.max_concurrent = None,
            KeyField::TokenBudget => r.token_budget = None,
            KeyField::CostBudget => r.cost_budget = None,
        }
    }
    if !a.backends.is_empty() {
        r.backends = globs("--backend", &a.backends)?;
    }
    if !a.models.is_empty() {
        r.models = globs("--model", &a.models)?;
    }
    r.rpm = a.rpm.or(r.rpm);
    r.tpm = a.tpm.or(r.tpm);
    r.max_concurrent = a.max_concurrent.or(r.max_concurrent);
    let period = a.budget_period.map(Period::from);
    if let Some(tokens) = a.token_budget {
        let kept = r.token_budget.map(|b| b.period);
        let period = period.or(kept).unwrap_or_default();
        r.token_budget = Some(TokenBudget { tokens, period });
    }
    if let Some(dollars) = a.cost_budget {
        let usd = Usd::from_dollars(dollars).ok_or_else(|| {
            AdminError::Refused(format!(
                "--cost-budget: {dollars} is not an amount of dollars"
            ))
        })?;
        let kept = r.cost_budget.map(|b| b.period);
        let period = period.or(kept).unwrap_or_default();
        r.cost_budget = Some(CostBudget { usd, period });
    }
    if let Some(p) = period {
        if r.token_budget.is_none() && r.cost_budget.is_none() {
            return Err(AdminError::Refused(
                "--budget-period needs a budget: give --token-budget or --cost-budget".to_owned(),
            ));
        }
        r.token_budget.iter_mut().for_each(|b| b.period = p);
        r.cost_budget.iter_mut().for_each(|b| b.period = p);
    }
    Ok(r)
}

fn globs(flag: &str, patterns: &[String]) -> Result<Vec<Glob>, AdminError> {
    patterns
        .iter()
        .map(|p| {
            Glob::new(p).ok_or_else(|| AdminError::Refused(format!("{flag}: an empty pattern")))
        })
        .collect()
}

/// `usr_… (alice@example.com)`, or `-`.
fn owner_label(users: &[User], k: &VirtualKeyRecord) -> String {
    match &k.owner {
        Some(id) => format!("{id} ({})", user_label(users, id)),
        None => "-".to_owned(),
    }
}

/// One key in text, for `show` and `update`.
fn describe(k: &VirtualKeyRecord, users: &[User], now: i64) -> String {
    let rows = [
        ("id", display_id(&k.id)),
        ("name", k.name.clone()),
        ("owner", owner_label(users, k)),
        ("status", key_status(k, now).to_owned()),
        ("created", time(Some(k.created_at))),
        ("updated", time(Some(k.updated_at))),
        ("expires", time(k.expires_at)),
        ("revoked", time(k.revoked_at)),
        ("rules", rules_summary(&k.rules)),
    ];
    rows.iter().fold(String::new(), |mut out, (label, value)| {
        let _ = writeln!(out, "{:<9}{value}", format!("{label}:"));
        out
    })
}

async fn list(
    store: &dyn KeyAdminStore,
    owner: Option<&str>,
    as_json: bool,
    now: i64,
) -> Result<String, AdminError> {
    let users = store.list_users().await?;
    let owner = match owner {
        Some(o) => Some(find_user(&users, o)?.id.clone()),
        None => None,
    };
    let keys = store.list_keys(owner.as_deref()).await?;
    let mut out = String::new();
    if as_json {
        for k in &keys {
            let _ = writeln!(out, "{}", key_view(k, now));
        }
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<20} {:<20} {:<24} {:<8} {:<19} RULES",
        "ID", "NAME", "OWNER", "STATUS", "EXPIRES"
    );
    for k in &keys {
        let owner = k
            .owner
            .as_deref()
            .map_or_else(|| "-".to_owned(), |id| user_label(&users, id));
        let _ = writeln!(
            out,
            "{:<20} {:<20} {:<24} {:<8} {:<19} {}",
            display_id(&k.id),
            k.name,
            owner,
            key_status(k, now),
            time(k.expires_at),
            rules_summary(&k.rules),
        );
    }
    if keys.is_empty() {
        out.push_str("(no virtual keys)\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::BudgetPeriod;

    #[test]
    fn flags_edit_the_rules_they_name_and_keep_the_rest() {
        let base: Rules = serde_json::from_value(serde_json::json!({
            "models": ["gpt-4o*"], "rpm": 60, "token_budget": {"tokens": 1000, "period": "daily"}
        }))
        .unwrap();
        let args = RulesArgs {
            models: vec!["o3".into(), "claude-*".into()],
            tpm: Some(5000),
            cost_budget: Some(2.5),
            ..RulesArgs::default()
        };
        let r = edit_rules(base.clone(), &args, &[KeyField::Rpm]).unwrap();
        assert_eq!(
            rules_summary(&r),
            "models=o3,claude-* tpm=5000 tokens=1000/daily cost=$2.50/monthly"
        );
        let weekly = RulesArgs {
            budget_period: Some(BudgetPeriod::Weekly),
            ..RulesArgs::default()
        };
        let r = edit_rules(r, &weekly, &[]).unwrap();
        assert_eq!(
            rules_summary(&r),
            "models=o3,claude-* tpm=5000 tokens=1000/weekly cost=$2.50/weekly"
        );
        assert!(
            edit_rules(Rules::default(), &weekly, &[]).is_err(),
            "no budget to apply to"
        );
        let both = RulesArgs {
            rpm: Some(1),
            ..RulesArgs::default()
        };
        let refused = edit_rules(base.clone(), &both, &[KeyField::Rpm]).unwrap_err();
        assert!(refused.to_string().contains("--unset rpm"), "{refused}");
        let json = RulesArgs {
            rules_json: Some(r#"{"rpm": 5}"#.into()),
            ..RulesArgs::default()
        };
        assert_eq!(edit_rules(base.clone(), &json, &[]).unwrap().rpm, Some(5));
        let bad = RulesArgs {
            rules_json: Some(r#"{"rpn": 5}"#.into()),
            ..RulesArgs::default()
        };
        let refused = edit_rules(base, &bad, &[]).unwrap_err().to_string();
        assert!(
            refused.starts_with("--rules-json:") && refused.contains("rpn"),
            "{refused}"
        );
    }

    #[test]
    fn expiry_flags_read_durations_and_times() {
        let now = 1_000_000;
        let after = |a: ExpiryArgs| expires_at(&a, now);
        let days = ExpiryArgs {
            expires_in: Some("30d".into()),
            expires_at: None,
        };
        assert_eq!(after(days).unwrap(), Some(now + 30 * 86_400_000));
        let at = ExpiryArgs {
            expires_in: None,
            expires_at: Some("2027-01-31".into()),
        };
        assert_eq!(
            after(at).unwrap(),
            parse_iso8601("2027-01-31").map(|t| t as i64)
        );
        let bad = ExpiryArgs {
            expires_in: None,
            expires_at: Some("soon".into()),
        };
        assert!(after(bad).unwrap_err().to_string().contains("--expires-at"));
        assert_eq!(after(ExpiryArgs::default()).unwrap(), None);
    }
}
