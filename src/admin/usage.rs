//! `portcullis keys usage`: settled usage and spend from the store, filtered by key, user,
//! backend, model and day range, summed by any of day, key, user, backend and model — as a table
//! for people or (`--json`) the management API's JSON (`GET /v0/management/usage`, the same
//! question through `policy::report`). Usage reaches the store within a second of each request
//! (the gateway's `usage.flush` job).

use std::fmt::Write as _;

use super::AdminError;
use crate::cli::UsageArgs;
use crate::policy::report::{QueryParts, UsageQuery, column, report_json, total};
use crate::rules::Usd;
use crate::store::{UsageRow, UsageStore};

/// The report `args` ask of `store`, rendered.
pub async fn report(store: &dyn UsageStore, args: &UsageArgs) -> Result<String, AdminError> {
    let query = UsageQuery::parse(QueryParts {
        key: args.key.as_deref(),
        user: args.user.as_deref(),
        backend: args.backend.as_deref(),
        model: args.model.as_deref(),
        since: args.since.as_deref(),
        until: args.until.as_deref(),
        group_by: Some(&args.group_by),
    })
    .map_err(AdminError::Refused)?;
    let rows = store.usage_report(&query.filter, query.group).await?;
    if args.json {
        return Ok(format!("{}\n", report_json(&query, &rows)));
    }
    Ok(table(&query, &rows))
}

/// The rows as an aligned table with a total line.
fn table(query: &UsageQuery, rows: &[UsageRow]) -> String {
    let columns = query.columns();
    let cells = |r: &UsageRow, label: Option<&str>| -> Vec<String> {
        let mut c: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, name)| match label {
                Some(l) if i == 0 => l.to_owned(),
                Some(_) => String::new(),
                None => match column(r, name) {
                    "" => "-".to_owned(),
                    v => v.to_owned(),
                },
            })
            .collect();
        c.extend([
            r.requests.to_string(),
            r.input_tokens.to_string(),
            r.output_tokens.to_string(),
            r.cached_input_tokens.to_string(),
            Usd {
                micros: r.cost_micros.max(0) as u64,
            }
            .to_string(),
        ]);
        c
    };
    let mut head: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    head.extend(["REQUESTS", "INPUT", "OUTPUT", "CACHED", "COST"].map(str::to_owned));
    let mut lines = vec![head];
    lines.extend(rows.iter().map(|r| cells(r, None)));
    let sum = total(rows);
    lines.push(cells(&sum, (!columns.is_empty()).then_some("TOTAL")));
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for l in &lines {
        let line: Vec<String> = l
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i < columns.len() {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    if rows.is_empty() {
        out.push_str("(no usage recorded for this selection)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_columns_and_ends_with_a_total() {
        let q = UsageQuery::parse(QueryParts {
            group_by: Some("key,model"),
            ..QueryParts::default()
        })
        .unwrap();
        let row = |key: &str, model: &str, n: i64| UsageRow {
            key_id: key.into(),
            model: model.into(),
            requests: n,
            input_tokens: 1000 * n,
            output_tokens: 10 * n,
            cost_micros: 2_500_000 * n,
            ..UsageRow::default()
        };
        let out = table(&q, &[row("k1", "gpt-4o", 1), row("", "claude", 12)]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert_eq!(
            lines[0],
            "KEY    MODEL   REQUESTS  INPUT  OUTPUT  CACHED    COST"
        );
        assert_eq!(
            lines[1],
            "k1     gpt-4o         1   1000      10       0   $2.50"
        );
        assert!(lines[2].starts_with("-      claude"), "{out}");
        assert!(
            lines[3].starts_with("TOTAL") && lines[3].ends_with("$32.50"),
            "{out}"
        );
        let empty = table(&q, &[]);
        assert!(empty.contains("no usage recorded"), "{empty}");
    }
}
