//! Usage reports: the question (which rows, grouped how) as both the management API
//! (`GET /v0/management/usage`) and `portcullis keys usage` take it — the same names, the same
//! checks — and the JSON answer both give.

use serde_json::{Map, Value, json};

use crate::identity::virtual_key;
use crate::rules::Usd;
use crate::store::{UsageFilter, UsageGrouping, UsageRow};

/// The columns a report can group by, in the order they are shown.
pub const GROUP_COLUMNS: [&str; 5] = ["day", "key", "user", "backend", "model"];

/// A usage report's question.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Which rows.
    pub filter: UsageFilter,
    /// Summed by what.
    pub group: UsageGrouping,
}

/// The question as given, every part optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryParts<'a> {
    /// A virtual key's public id.
    pub key: Option<&'a str>,
    /// A user id.
    pub user: Option<&'a str>,
    /// A backend.
    pub backend: Option<&'a str>,
    /// An upstream model.
    pub model: Option<&'a str>,
    /// First day, `YYYY-MM-DD`.
    pub since: Option<&'a str>,
    /// Last day, `YYYY-MM-DD`.
    pub until: Option<&'a str>,
    /// Comma-separated columns of [`GROUP_COLUMNS`] (default: all of them); empty: one total.
    pub group_by: Option<&'a str>,
}

fn is_day(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

impl UsageQuery {
    /// Checks and reads `parts`; the error names the part.
    pub fn parse(parts: QueryParts<'_>) -> Result<Self, String> {
        let own = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let day = |name: &str, v: Option<&str>| match own(v) {
            Some(d) if !is_day(&d) => Err(format!("{name}: `{d}` is not a day (YYYY-MM-DD)")),
            d => Ok(d),
        };
        // A key is named as listed (`sk-pvk-<id>`), by its bare id, or whole.
        let key_id = match own(parts.key) {
            Some(k) => Some(virtual_key::FORMAT.id_from_argument(&k)?.to_owned()),
            None => None,
        };
        let filter = UsageFilter {
            key_id,
            user_id: own(parts.user),
            backend: own(parts.backend),
            model: own(parts.model),
            since: day("since", parts.since)?,
            until: day("until", parts.until)?,
        };
        if let (Some(s), Some(u)) = (&filter.since, &filter.until)
            && s > u
        {
            return Err(format!("since ({s}) is after until ({u})"));
        }
        let mut group = UsageGrouping::default();
        let columns = parts.group_by.unwrap_or("day,key,user,backend,model");
        for c in columns.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let flag = match c {
                "day" => &mut group.day,
                "key" => &mut group.key,
                "user" => &mut group.user,
                "backend" => &mut group.backend,
                "model" => &mut group.model,
                other => {
                    return Err(format!(
                        "group_by: `{other}` is not one of {}",
                        GROUP_COLUMNS.join(", ")
                    ));
                }
            };
            *flag = true;
        }
        Ok(Self { filter, group })
    }

    /// The grouped columns, in display order.
    pub fn columns(&self) -> Vec<&'static str> {
        let g = self.group;
        GROUP_COLUMNS
            .into_iter()
            .zip([g.day, g.key, g.user, g.backend, g.model])
            .filter_map(|(c, on)| on.then_some(c))
            .collect()
    }
}

/// The value of column `c` of a row.
pub fn column<'r>(row: &'r UsageRow, c: &str) -> &'r str {
    match c {
        "day" => &row.day,
        "key" => &row.key_id,
        "user" => &row.user_id,
        "backend" => &row.backend,
        _ => &row.model,
    }
}

/// Dollars of micro-dollars, for JSON.
fn dollars(micros: i64) -> f64 {
    Usd {
        micros: micros.max(0) as u64,
    }
    .dollars()
}

/// The sums of `rows`.
pub fn total(rows: &[UsageRow]) -> UsageRow {
    rows.iter().fold(UsageRow::default(), |mut t, r| {
        t.requests += r.requests;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
        t.cached_input_tokens += r.cached_input_tokens;
        t.cost_micros += r.cost_micros;
        t
    })
}

fn amounts(row: &UsageRow, into: &mut Map<String, Value>) {
    into.insert("requests".into(), json!(row.requests));
    into.insert("input_tokens".into(), json!(row.input_tokens));
    into.insert("output_tokens".into(), json!(row.output_tokens));
    into.insert("cached_input_tokens".into(), json!(row.cached_input_tokens));
    into.insert("cost_usd".into(), json!(dollars(row.cost_micros)));
}

/// The JSON answer: `{"group_by": [...], "rows": [{<grouped columns>, requests, input_tokens,
/// output_tokens, cached_input_tokens, cost_usd}], "total": {...}}`.
pub fn report_json(query: &UsageQuery, rows: &[UsageRow]) -> Value {
    let columns = query.columns();
    let rows_json: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut o = Map::new();
            for c in &columns {
                o.insert((*c).to_owned(), json!(column(r, c)));
            }
            amounts(r, &mut o);
            Value::Object(o)
        })
        .collect();
    let mut t = Map::new();
    amounts(&total(rows), &mut t);
    json!({"group_by": columns, "rows": rows_json, "total": t})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>() -> QueryParts<'a> {
        QueryParts::default()
    }

    #[test]
    fn queries_are_checked_and_group_by_everything_by_default() {
        let q = UsageQuery::parse(parts()).unwrap();
        assert_eq!(q.columns(), GROUP_COLUMNS);
        let q = UsageQuery::parse(QueryParts {
            key: Some("k1"),
            since: Some("2026-01-01"),
            until: Some("2026-01-31"),
            group_by: Some("model, day"),
            ..parts()
        })
        .unwrap();
        assert_eq!(q.columns(), ["day", "model"]);
        assert_eq!(q.filter.key_id.as_deref(), Some("k1"));
        assert_eq!(q.filter.user_id, None);
        // A key as listed, or whole, names its id; a mangled whole key is refused.
        let minted = virtual_key::mint().unwrap();
        for named in [
            virtual_key::display_id(&minted.id),
            minted.key.expose().to_owned(),
        ] {
            let q = UsageQuery::parse(QueryParts {
                key: Some(&named),
                ..parts()
            })
            .unwrap();
            assert_eq!(q.filter.key_id.as_deref(), Some(minted.id.as_str()));
        }
        let mangled = format!("{}x", minted.key.expose());
        assert!(
            UsageQuery::parse(QueryParts {
                key: Some(&mangled),
                ..parts()
            })
            .is_err()
        );
        let total = UsageQuery::parse(QueryParts {
            group_by: Some(""),
            ..parts()
        })
        .unwrap();
        assert!(total.columns().is_empty());
        for (bad, says) in [
            (
                QueryParts {
                    since: Some("2026-1-1"),
                    ..parts()
                },
                "since",
            ),
            (
                QueryParts {
                    group_by: Some("key,team"),
                    ..parts()
                },
                "team",
            ),
            (
                QueryParts {
                    since: Some("2026-02-01"),
                    until: Some("2026-01-01"),
                    ..parts()
                },
                "after",
            ),
        ] {
            let e = UsageQuery::parse(bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn the_json_shows_the_grouped_columns_and_a_total() {
        let q = UsageQuery::parse(QueryParts {
            group_by: Some("key"),
            ..parts()
        })
        .unwrap();
        let row = |key: &str, n: i64| UsageRow {
            key_id: key.into(),
            requests: n,
            input_tokens: 10 * n,
            output_tokens: n,
            cost_micros: 1_500_000 * n,
            ..UsageRow::default()
        };
        let v = report_json(&q, &[row("a", 1), row("b", 2)]);
        assert_eq!(v["group_by"], json!(["key"]));
        assert_eq!(v["rows"][1]["key"], "b");
        assert!(v["rows"][1].get("model").is_none());
        assert_eq!(v["rows"][1]["cost_usd"], 3.0);
        assert_eq!(v["total"]["requests"], 3);
        assert_eq!(v["total"]["input_tokens"], 30);
        assert_eq!(v["total"]["cost_usd"], 4.5);
    }
}
