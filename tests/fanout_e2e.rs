//! The fan-out through the real binaries (`l3map emulate`, `l3map run`
//! with CDC on): a value Zendesk's search would read as syntax (`*`,
//! `"`) or cannot look up at all never holds the change stream, and the
//! changes after it reach their tickets; an organization holding the
//! Account Id as 15 characters, or as 18 in another case, is reached as
//! the agent's turn reaches it; a bulk job that fails costs one more bulk
//! update, not a read and a PUT per ticket.

use crate::common;

use common::stack::{Stack, SLA_TIER};
use l3map::emulator::zendesk::salesforce_account_ids;
use serde_json::{json, Value};
use std::time::Duration;

const QUIET_START: &str = "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 3600\n";

/// The stack with CDC on, pointed at the emulator's Pub/Sub port (known
/// once the emulator runs: the runtime is restarted on it).
async fn cdc_stack(name: &str, files: &[(&str, &str)]) -> Stack {
    let mut s = Stack::start_with_files(name, QUIET_START, false, files).await;
    s.restart_with_cdc(QUIET_START, 3600, "", "AccountChangeEvent")
        .await;
    s
}

/// A change (PATCH) or a new record (POST) made as a person in the
/// Salesforce UI would.
async fn person(s: &Stack, method: reqwest::Method, path: &str, fields: Value) -> Value {
    let r = s
        .http
        .request(
            method,
            format!("{}/__l3map/person/sobjects/{path}", s.salesforce),
        )
        .json(&fields)
        .send()
        .await
        .expect("the admin call answers");
    assert!(r.status().is_success(), "person {path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

async fn new_org(s: &Stack, org: Value) -> u64 {
    let v = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/organizations",
            Some(json!({ "organization": org })),
        )
        .await;
    v["organization"]["id"]
        .as_u64()
        .expect("an organization id")
}

/// `n` open tickets of `org`, made by the Zendesk emulator's admin call.
async fn open_tickets(s: &Stack, n: u64, org: u64) -> Vec<u64> {
    let v = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/tickets",
            Some(json!({"count": n, "ticket": {"organization_id": org, "status": "open"}})),
        )
        .await;
    v["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// The SLA tier of each of `tickets`, read in one show_many (a
/// test reading tickets one by one would blur the runtime's own reads).
async fn tiers(s: &Stack, tickets: &[u64]) -> Vec<(u64, Value)> {
    let ids: Vec<String> = tickets.iter().map(u64::to_string).collect();
    let v = s
        .zendesk(
            reqwest::Method::GET,
            &format!("/api/v2/tickets/show_many.json?ids={}", ids.join(",")),
            None,
        )
        .await;
    v["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| {
            let tier = t["custom_fields"]
                .as_array()
                .and_then(|f| f.iter().find(|f| f["id"] == json!(SLA_TIER)))
                .map_or(Value::Null, |f| f["value"].clone());
            (t["id"].as_u64().unwrap(), tier)
        })
        .collect()
}

async fn all_tier(s: &Stack, tickets: &[u64], want: &str, within: Duration) {
    common::eventually(format!("tickets {tickets:?} at {want}"), within, || async {
        let got = tiers(s, tickets).await;
        let off: Vec<_> = got.iter().filter(|(_, t)| t != &json!(want)).collect();
        if off.is_empty() && got.len() == tickets.len() {
            Ok(())
        } else {
            Err(format!("{off:?}\n{}", s.log()))
        }
    })
    .await;
}

/// The Account link found by an organization custom field holding the
/// Account's Name: the fan-out searches organizations by that field.
const BY_NAME: &str = r#"
link desk.organization <-> crm.Account {
  on      organization.fields.acct_key == Account.Name
  pick    newest
  tickets unsolved
}

link desk.user <-> crm.Contact {
  on   user.email == Contact.Email
  pick newest
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_syntax_in_a_value_never_holds_the_stream() {
    let s = cdc_stack("lookup-syntax", &[("links.l3map", BY_NAME)]).await;
    // The Contact below is seen only by a stream that is up (one subscribed
    // later starts from the latest event and misses it).
    s.stream_up("ContactChangeEvent").await;
    let account = salesforce_account_ids()[1].clone();
    let org = new_org(
        &s,
        json!({"name": "Legit", "organization_fields": {"acct_key": "Legit Co"}}),
    )
    .await;
    let tickets = open_tickets(&s, 2, org).await;
    person(
        &s,
        reqwest::Method::PATCH,
        &format!("Account/{account}"),
        json!({"Name": "Legit Co"}),
    )
    .await;

    // An Account whose name is search syntax on Zendesk (a wildcard, a
    // quote ending the phrase), and one with nothing a search can match.
    person(
        &s,
        reqwest::Method::POST,
        "Account",
        json!({"Name": "vic*\" OR acct_key:\"Legit", "SLA_Tier__c": "Std"}),
    )
    .await;
    person(
        &s,
        reqwest::Method::POST,
        "Account",
        json!({"Name": "**", "SLA_Tier__c": "Std"}),
    )
    .await;
    // A Contact whose email is a wildcard on Zendesk.
    person(
        &s,
        reqwest::Method::POST,
        "Contact",
        json!({"LastName": "Evil", "Email": "*@example.com"}),
    )
    .await;
    // Then a change that governs the Legit tickets: it flows.
    person(
        &s,
        reqwest::Method::PATCH,
        &format!("Account/{account}"),
        json!({"SLA_Tier__c": "Ent"}),
    )
    .await;
    all_tier(&s, &tickets, "enterprise", Duration::from_secs(20)).await;

    // The value with no letter or digit was refused, named, and passed
    // over; nothing was tried again.
    assert!(
        s.metric_sum("l3map_fanout_changes_total", &["result=\"refused\""])
            .await
            >= 1.0,
        "{}",
        s.metrics().await
    );
    assert!(
        s.metric_sum("l3map_cdc_events_total", &["outcome=\"refused\""])
            .await
            >= 1.0,
        "{}",
        s.metrics().await
    );
    assert_eq!(
        s.metric_sum("l3map_cdc_events_total", &["outcome=\"retried\""])
            .await,
        0.0,
        "{}",
        s.log()
    );
    let log = s.log();
    assert!(
        log.contains("refused for good") && log.contains("has no letter or digit"),
        "{log}"
    );
    common::eventually(
        "the Contact's change is passed on",
        Duration::from_secs(10),
        || async {
            let n = s
                .metric_sum(
                    "l3map_cdc_events_total",
                    &["ContactChangeEvent", "outcome=\"applied\""],
                )
                .await;
            if n >= 1.0 {
                Ok(())
            } else {
                Err(s.metrics().await)
            }
        },
    )
    .await;
    assert_eq!(
        s.metric_sum("l3map_cdc_events_total", &["outcome=\"retried\""])
            .await,
        0.0,
        "{}",
        s.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_the_account_id_is_reached() {
    let s = cdc_stack("lookup-spellings", &[]).await;
    let account = salesforce_account_ids()[2].clone();
    assert_eq!(account.len(), 18);
    let short = new_org(
        &s,
        json!({"name": "Fifteen", "external_id": &account[..15]}),
    )
    .await;
    let lower = new_org(
        &s,
        json!({"name": "Lower", "external_id": account.to_ascii_lowercase()}),
    )
    .await;
    let mut tickets = open_tickets(&s, 2, short).await;
    tickets.extend(open_tickets(&s, 2, lower).await);

    person(
        &s,
        reqwest::Method::PATCH,
        &format!("Account/{account}"),
        json!({"SLA_Tier__c": "Prem"}),
    )
    .await;
    all_tier(&s, &tickets, "premium", Duration::from_secs(20)).await;
}

/// Requests whose `METHOD /path` key starts with `prefix`.
fn requests(stats: &Value, prefix: &str) -> u64 {
    stats["by_path"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bulk_job_costs_one_more_bulk_update() {
    let s = cdc_stack("job-failed", &[]).await;
    let made = person(
        &s,
        reqwest::Method::POST,
        "Account",
        json!({"Name": "Jobs", "SLA_Tier__c": "Std"}),
    )
    .await;
    let account = made["id"].as_str().expect("an Account id").to_string();
    // The creation's change passes before the organization exists.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let org = new_org(&s, json!({"name": "Jobs", "external_id": &account})).await;
    let tickets = open_tickets(&s, 30, org).await;
    s.drained(Duration::from_secs(10)).await;
    let before = s.zendesk_stats().await;
    let r = s
        .http
        .post(format!("{}/__l3map/jobs/fail_next", s.zendesk))
        .json(&json!({"message": "job boom"}))
        .send()
        .await
        .expect("the admin call answers");
    assert!(r.status().is_success());

    person(
        &s,
        reqwest::Method::PATCH,
        &format!("Account/{account}"),
        json!({"SLA_Tier__c": "Ent"}),
    )
    .await;
    all_tier(&s, &tickets, "enterprise", Duration::from_secs(30)).await;
    s.drained(Duration::from_secs(10)).await;
    let after = s.zendesk_stats().await;
    let diff = |prefix: &str| requests(&after, prefix) - requests(&before, prefix);
    let jobs = diff("PUT /api/v2/tickets/update_many");
    assert!(
        (2..=4).contains(&jobs),
        "{jobs} bulk updates: {}",
        after["by_path"]
    );
    let mut singles = 0;
    for t in &tickets {
        singles += diff(&format!("PUT /api/v2/tickets/{t}."));
        singles += diff(&format!("GET /api/v2/tickets/{t}."));
    }
    assert_eq!(
        singles, 0,
        "a read and a PUT per ticket: {}",
        after["by_path"]
    );
    assert!(
        s.metric_sum("l3map_batch_tickets_total", &["result=\"retried\""])
            .await
            >= 30.0,
        "{}",
        s.metrics().await
    );
}
