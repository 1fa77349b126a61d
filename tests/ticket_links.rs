//! Ticket events carry their linked records, through the real binaries
//! (`l3map emulate` and `l3map run`) over 127.0.0.1: a webhook for a ticket
//! with a linked Case decides a `map desk -> crm` rule onto that Case; after
//! a bulk fan-out write, the webhooks Zendesk sends for those updates cause
//! no further action and no ticket read beyond the one `show_many`.

use crate::common;

use common::stack::Stack;
use serde_json::{json, Value};
use std::time::Duration;

const CASE_LINK: &str = r#"
fields crm {
  Case.Zendesk_Ticket_Id__c  string  external_id unique  "Zendesk ticket"
}

link desk.ticket <-> crm.Case {
  on ticket.id == Case.Zendesk_Ticket_Id__c
}
"#;

/// Seeded organization of Nimbus Analytics, linked to the first seeded
/// Account through its external_id.
const NIMBUS: u64 = 360200001;
const RISK_DECISION: u64 = 360001237;
const SLA_TIER: u64 = 360001234;

async fn sf(s: &Stack, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let token = s.sf_token().await;
    let mut req = s
        .http
        .request(method, format!("{}{path}", s.salesforce))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("salesforce emulator");
    let status = resp.status();
    let v = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

async fn load(s: &Stack, n: u64, ticket: Value) -> Vec<u64> {
    let v = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/tickets",
            Some(json!({"count": n, "ticket": ticket})),
        )
        .await;
    v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect()
}

/// The emulator's counts once the runtime has stopped calling it.
async fn quiet(s: &Stack) -> Value {
    let started = std::time::Instant::now();
    let mut last = s.zendesk_stats().await;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the emulator's counts still move after 60 s: {last}"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        s.drained(Duration::from_secs(20)).await;
        let now = s.zendesk_stats().await;
        if now["by_path"] == last["by_path"] {
            return now;
        }
        last = now;
    }
}

fn count(stats: &Value, path: &str) -> u64 {
    stats["by_path"][path].as_u64().unwrap_or(0)
}

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_decides_a_desk_to_crm_rule_onto_the_linked_case() {
    let s = Stack::start_with_files(
        "ticket-links-case",
        "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 3600\n",
        true,
        &[("case_link.l3map", CASE_LINK)],
    )
    .await;
    let ticket = load(
        &s,
        1,
        json!({"subject": "Chargeback", "status": "open", "organization_id": NIMBUS}),
    )
    .await[0];
    let case = sf(
        &s,
        reqwest::Method::POST,
        "/services/data/v60.0/sobjects/Case",
        Some(json!({"Subject": "Chargeback", "Status": "New",
                    "Zendesk_Ticket_Id__c": ticket.to_string()})),
    )
    .await["id"]
        .as_str()
        .expect("a Case id")
        .to_string();
    // A person clears the risk decision: Zendesk sends its webhooks.
    s.zendesk(
        reqwest::Method::PUT,
        &format!("/__l3map/tickets/{ticket}"),
        Some(
            json!({"ticket": {"custom_fields": [{"id": RISK_DECISION, "value": "cleared"}]},
                    "author_id": 1001}),
        ),
    )
    .await;
    let path = format!("/services/data/v60.0/sobjects/Case/{case}");
    common::eventually(
        "the linked Case shows the decision",
        Duration::from_secs(20),
        || async {
            let c = sf(&s, reqwest::Method::GET, &path, None).await;
            if c["Risk_Decision__c"] == "Cleared" {
                Ok(())
            } else {
                Err(c.to_string())
            }
        },
    )
    .await;
    s.drained(Duration::from_secs(10)).await;
    let m = s.metrics().await;
    assert!(
        counter(&m, "l3map_events_total{source=\"webhook\"}") >= 1,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhooks_of_a_bulk_write_cause_no_action_and_no_read() {
    let s = Stack::start_with_files(
        "ticket-links-bulk",
        "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 1\n",
        true,
        &[],
    )
    .await;
    let tickets = load(
        &s,
        3,
        json!({"subject": "Slow payouts", "status": "open", "organization_id": NIMBUS}),
    )
    .await;
    let account = l3map::emulator::zendesk::salesforce_account_ids()[0].clone();
    // Let the startup polls' decisions (the seeded tickets take their
    // Accounts' tiers) go out, then change the tier as a person would.
    let before = quiet(&s).await;
    sf(
        &s,
        reqwest::Method::PATCH,
        &format!("/__l3map/person/sobjects/Account/{account}"),
        Some(json!({"SLA_Tier__c": "Prem"})),
    )
    .await;
    let tier = |t: &Value| {
        t["ticket"]["custom_fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["id"] == json!(SLA_TIER)))
            .map_or(Value::Null, |f| f["value"].clone())
    };
    // Read through the list, so every single-ticket read counted is the
    // runtime's.
    common::eventually(
        "the tier reaches the tickets",
        Duration::from_secs(30),
        || async {
            let v = s
                .zendesk(reqwest::Method::GET, "/api/v2/tickets.json", None)
                .await;
            let done = v["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| tickets.contains(&t["id"].as_u64().unwrap_or(0)))
                .filter(|t| tier(&json!({ "ticket": t })) == json!("premium"))
                .count();
            if done == tickets.len() {
                Ok(())
            } else {
                Err(format!("{done} of {}", tickets.len()))
            }
        },
    )
    .await;
    s.drained(Duration::from_secs(10)).await;
    // The webhooks of the bulk update have arrived and been decided.
    common::eventually(
        "the bulk update's webhooks are in",
        Duration::from_secs(15),
        || async {
            let m = s.metrics().await;
            let n = counter(&m, "l3map_events_total{source=\"webhook\"}")
                + counter(&m, "l3map_events_duplicate_total{source=\"webhook\"}");
            if n >= tickets.len() as u64 {
                Ok(())
            } else {
                Err(m)
            }
        },
    )
    .await;
    let after = quiet(&s).await;
    let delta = |p: &str| count(&after, p) - count(&before, p);
    assert_eq!(delta("PUT /api/v2/tickets/update_many.json"), 1, "{after}");
    assert_eq!(delta("GET /api/v2/tickets/show_many.json"), 1, "{after}");
    for t in &tickets {
        assert_eq!(
            delta(&format!("GET /api/v2/tickets/{t}.json")),
            0,
            "the webhooks of l3map's own bulk update read no ticket: {after}"
        );
        assert_eq!(
            delta(&format!("PUT /api/v2/tickets/{t}.json")),
            0,
            "no single update after the bulk one"
        );
    }
    let m = s.metrics().await;
    assert_eq!(
        counter(
            &m,
            "l3map_events_rejected_total{source=\"webhook\",reason=\"links_unavailable\"}"
        ),
        0
    );
    let log = s.log();
    assert!(
        !log.contains("cannot read the ticket a webhook announced"),
        "{log}"
    );
}

/// Salesforce unreachable: a webhook about a ticket with links is answered
/// 503 `links_unavailable` (Zendesk delivers it again) and the poller's
/// round fails before its page is recorded; once Salesforce answers, the
/// update is decided, once, onto the linked Case. Nothing is decided
/// without its records and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_salesforce_down_a_ticket_event_waits_and_is_decided_once_it_is_back() {
    let mut s = Stack::start_with_files(
        "ticket-links-sf-down",
        "[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 3600\n",
        true,
        &[("case_link.l3map", CASE_LINK)],
    )
    .await;
    let ticket = load(
        &s,
        1,
        json!({"subject": "Chargeback", "status": "open", "organization_id": NIMBUS}),
    )
    .await[0];
    let case = sf(
        &s,
        reqwest::Method::POST,
        "/services/data/v60.0/sobjects/Case",
        Some(json!({"Subject": "Chargeback", "Status": "New",
                    "Zendesk_Ticket_Id__c": ticket.to_string()})),
    )
    .await["id"]
        .as_str()
        .expect("a Case id")
        .to_string();
    s.drained(Duration::from_secs(10)).await;

    // Salesforce moves out of reach: nothing listens on the port.
    s.kill_runtime();
    let toml = s.dir.join("l3map.toml");
    let up = std::fs::read_to_string(&toml).expect("l3map.toml");
    let down = up.replace(
        &format!("login_url = \"{}\"", s.salesforce),
        "login_url = \"http://127.0.0.1:9\"",
    );
    assert_ne!(up, down);
    std::fs::write(&toml, &down).expect("l3map.toml");
    s.start_runtime().await;
    s.zendesk(
        reqwest::Method::PUT,
        &format!("/__l3map/tickets/{ticket}"),
        Some(
            json!({"ticket": {"custom_fields": [{"id": RISK_DECISION, "value": "cleared"}]},
                    "author_id": 1001}),
        ),
    )
    .await;
    let refused = "l3map_events_rejected_total{source=\"webhook\",reason=\"links_unavailable\"}";
    common::eventually("a webhook refused 503", Duration::from_secs(20), || async {
        match counter(&s.metrics().await, refused) {
            0 => Err("none yet".to_string()),
            _ => Ok(()),
        }
    })
    .await;
    let path = format!("/services/data/v60.0/sobjects/Case/{case}");
    assert_ne!(
        sf(&s, reqwest::Method::GET, &path, None).await["Risk_Decision__c"],
        "Cleared"
    );
    // Waiting is not a read storm: the update's deliveries share one read.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reads = count(
        &s.zendesk_stats().await,
        &format!("GET /api/v2/tickets/{ticket}.json"),
    );
    assert!(
        reads <= 2,
        "{reads} reads of the ticket while Salesforce is down: {}",
        s.zendesk_stats().await
    );
    assert!(
        s.log()
            .contains("a webhook event waits for its linked records"),
        "{}",
        s.log()
    );

    // Salesforce is back: the poller reads the update again and decides it.
    s.kill_runtime();
    std::fs::write(&toml, &up).expect("l3map.toml");
    s.start_runtime().await;
    common::eventually(
        "the linked Case shows the decision",
        Duration::from_secs(20),
        || async {
            let c = sf(&s, reqwest::Method::GET, &path, None).await;
            if c["Risk_Decision__c"] == "Cleared" {
                Ok(())
            } else {
                Err(c.to_string())
            }
        },
    )
    .await;
    s.drained(Duration::from_secs(10)).await;
    let db = rusqlite::Connection::open(s.state()).expect("the store");
    let writes: i64 = db
        .query_row(
            "SELECT count(*) FROM outbox WHERE connection = 'crm' AND op LIKE '%Risk_Decision__c%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(writes, 1, "the decision is written once");
}
