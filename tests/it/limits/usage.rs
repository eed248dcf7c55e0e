//! Settled usage in the store: the `UsageStore` contract on SQLite and PostgreSQL (upsert-add,
//! spending since a day, reports filtered and grouped), the management report and the
//! `keys usage` rendering over what requests recorded, and budgets that survive a restart.

use portcullis::admin::usage::report;
use portcullis::cli::UsageArgs;
use portcullis::store::{
    UsageBatches, UsageFilter, UsageGrouping, UsageRow, UsageStore, UsageSubject,
};
use serde_json::json;

use super::*;

fn row(day: &str, key: &str, user: &str, model: &str, tokens: (i64, i64), cost: i64) -> UsageRow {
    UsageRow {
        day: day.into(),
        key_id: key.into(),
        user_id: user.into(),
        backend: "openai".into(),
        model: model.into(),
        requests: 1,
        input_tokens: tokens.0,
        output_tokens: tokens.1,
        cached_input_tokens: tokens.0 / 2,
        cost_micros: cost,
    }
}

async fn usage_contract(store: &dyn UsageStore) {
    let rows = [
        row("2026-11-30", "k1", "u1", "gpt-4o", (100, 10), 1_000),
        row("2026-12-01", "k1", "u1", "gpt-4o", (200, 20), 2_000),
        row("2026-12-01", "", "u1", "o3", (300, 30), 3_000),
        row("2026-12-02", "k2", "u2", "gpt-4o", (400, 40), 4_000),
    ];
    let none = UsageBatches::default();
    store.record_usage(&rows, &none).await.unwrap();
    // Adding the same row again adds to it (another instance's flush).
    store.record_usage(&rows[1..2], &none).await.unwrap();
    store.record_usage(&[], &none).await.unwrap();
    let spent = store
        .usage_spent(UsageSubject::Key("k1"), "2026-12-01")
        .await
        .unwrap();
    assert_eq!((spent.tokens, spent.cost_micros), (440, 4_000));
    let spent = store
        .usage_spent(UsageSubject::User("u1"), "2026-11-01")
        .await
        .unwrap();
    assert_eq!((spent.tokens, spent.cost_micros), (880, 8_000));
    let none = store
        .usage_spent(UsageSubject::User("nobody"), "2026-01-01")
        .await
        .unwrap();
    assert_eq!(none.tokens, 0);
    // Reports: one total; by key; filtered by user and days.
    let all = UsageFilter::default();
    let total = store
        .usage_report(&all, UsageGrouping::default())
        .await
        .unwrap();
    assert_eq!(total.len(), 1);
    assert_eq!((total[0].requests, total[0].input_tokens), (5, 1200));
    assert_eq!(total[0].cached_input_tokens, 600);
    let by_key = UsageGrouping {
        key: true,
        ..UsageGrouping::default()
    };
    let keys = store.usage_report(&all, by_key).await.unwrap();
    let got: Vec<_> = keys
        .iter()
        .map(|r| (r.key_id.as_str(), r.requests, r.cost_micros))
        .collect();
    assert_eq!(got, [("", 1, 3_000), ("k1", 3, 5_000), ("k2", 1, 4_000)]);
    assert!(keys.iter().all(|r| r.day.is_empty() && r.model.is_empty()));
    let u1_december = UsageFilter {
        user_id: Some("u1".into()),
        since: Some("2026-12-01".into()),
        until: Some("2026-12-01".into()),
        ..UsageFilter::default()
    };
    let by_day_model = UsageGrouping {
        day: true,
        model: true,
        ..UsageGrouping::default()
    };
    let rows = store
        .usage_report(&u1_december, by_day_model)
        .await
        .unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.day.as_str(), r.model.as_str(), r.output_tokens))
        .collect();
    assert_eq!(
        got,
        [("2026-12-01", "gpt-4o", 40), ("2026-12-01", "o3", 30)]
    );
    let one_model = UsageFilter {
        model: Some("o3".into()),
        backend: Some("openai".into()),
        key_id: Some(String::new()),
        ..UsageFilter::default()
    };
    let rows = store
        .usage_report(&one_model, UsageGrouping::default())
        .await
        .unwrap();
    assert_eq!(
        rows[0].requests, 1,
        "an empty key filter selects requests without a key"
    );
    batches_contract(store).await;
}

/// The marks of the journal files a flush covered: recorded with its rows, all or nothing.
async fn batches_contract(store: &dyn UsageStore) {
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let one = [row("2026-12-03", "k3", "", "gpt-4o", (10, 1), 0)];
    let spent = || store.usage_spent(UsageSubject::Key("k3"), "2026-12-01");
    let (a, b) = (
        ids(&["usage-aa-000001"]),
        ids(&["usage-aa-000002", "flush-0f"]),
    );
    let at = |applied, forget, at| UsageBatches {
        applied,
        forget,
        at,
    };
    store.record_usage(&one, &at(&a, &[], 100)).await.unwrap();
    store.record_usage(&one, &at(&b, &[], 200)).await.unwrap();
    let asked = ids(&["flush-0f", "usage-zz-000001", "usage-aa-000001"]);
    let found = store.applied_usage_batches(&asked).await.unwrap();
    assert_eq!(found, ids(&["flush-0f", "usage-aa-000001"]));
    // A mark recorded twice: the whole flush is refused, its rows are not added.
    let again = store.record_usage(&one, &at(&a, &[], 300)).await;
    assert!(again.is_err(), "a second flush of one journal file");
    assert_eq!(spent().await.unwrap().tokens, 22);
    // Dropped with the next flush, or by id and by age.
    let c = ids(&["usage-aa-000003"]);
    store.record_usage(&one, &at(&c, &a, 300)).await.unwrap();
    assert_eq!(spent().await.unwrap().tokens, 33);
    let all = ids(&[
        "usage-aa-000001",
        "usage-aa-000002",
        "flush-0f",
        "usage-aa-000003",
    ]);
    let found = store.applied_usage_batches(&all).await.unwrap();
    assert_eq!(found, all[1..]);
    store
        .forget_usage_batches(&ids(&["usage-aa-000003"]), 150)
        .await
        .unwrap();
    let found = store.applied_usage_batches(&all).await.unwrap();
    assert_eq!(found, all[1..3], "recorded at 200: kept");
    store.forget_usage_batches(&[], 201).await.unwrap();
    assert!(store.applied_usage_batches(&all).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_usage_store_keeps_its_contract_on_sqlite() {
    let (store, _dir) = crate::store::test_store(false).await.unwrap();
    usage_contract(store.as_ref()).await;
}

#[tokio::test]
async fn the_usage_store_keeps_its_contract_on_postgres() {
    let Some((store, _home)) = crate::store::test_store(true).await else {
        return;
    };
    usage_contract(store.as_ref()).await;
}

#[tokio::test]
async fn reports_show_what_requests_spent_and_budgets_survive_a_restart() {
    let budget = json!({"token_budget": {"tokens": 200, "period": "weekly"}});
    let l = limited(&[("alice", budget), ("bob", json!({}))], |_| {}).await;
    let body = chat_body("mock-gpt", false, Some(40));
    for who in ["alice", "alice", "bob"] {
        let resp = l.post(who, "/v1/chat/completions", &body, None).await;
        assert_eq!(resp.status(), 200);
    }
    let (status, r) = l
        .mgmt("/v0/management/usage?group_by=user,model&since=2026-12-01")
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["group_by"], json!(["user", "model"]));
    let requests: Vec<_> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["user"].as_str().unwrap().to_owned(),
                x["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want = vec![(l.id("alice").to_owned(), 2), (l.id("bob").to_owned(), 1)];
    want.sort();
    assert_eq!(requests, want);
    let (status, bad) = l.mgmt("/v0/management/usage?group_by=team").await;
    assert_eq!(status, 400, "{bad}");
    let (_, doc) = l.mgmt("/v0/management/openapi.json").await;
    assert!(doc["paths"]["/v0/management/usage"]["get"]["parameters"].is_array());
    // The CLI's rendering of the same store.
    let args = UsageArgs {
        user: Some(l.id("alice").to_owned()),
        group_by: "user".into(),
        ..UsageArgs::default()
    };
    let table = report(l.store.as_ref(), &args).await.unwrap();
    assert!(
        table.starts_with("USER") && table.contains(l.id("alice")),
        "{table}"
    );
    let json: Value = serde_json::from_str(
        &report(l.store.as_ref(), &UsageArgs { json: true, ..args })
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["total"]["requests"], 2);
    // A new instance on the same store starts alice's budget from what she spent.
    let spent = json["total"]["input_tokens"].as_u64().unwrap()
        + json["total"]["output_tokens"].as_u64().unwrap();
    let config = l.state.config().clone();
    let (state, gw) = start_gateway_on_store(config, &l.clock, l.store.clone()).await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(l.token("alice"))
        .json(&chat_body("mock-gpt", false, Some(150)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 402);
    let m = openai_error(&resp.json().await.unwrap());
    assert!(
        m.contains(&format!("{spent} tokens spent or reserved")),
        "{m}"
    );
    let key = format!("tok|week:2026-11-30|u|{}", l.id("alice"));
    let now = l.clock.now_millis();
    assert_eq!(
        state.policy().counters().value(&key, now).await.unwrap(),
        Some(spent)
    );
}
