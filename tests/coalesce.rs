//! Coalescing (issue 17): queued writes to one Zendesk ticket go as one
//! update, so a burst of decisions about one ticket stays within Zendesk's
//! "30 updates per 10 minutes per user per ticket" (the emulator enforces
//! it: `l3map emulate --ticket-update-limit 30`, its default). 60 changes
//! of one ticket in a burst, each decided on: the ticket ends as the last
//! decision says, the emulator applied at most 30 updates to it, every
//! outbox row is done (written, or superseded with its reason), and the
//! one hand-off note is there once; with a kill -9 in the middle too.

use crate::common;

use common::stack::{Stack, SLA_TIER};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const PRODUCT: u64 = 360009901;
const PRODUCT_ID: u64 = 360009902;
const EVENTS: usize = 60;
/// Between two changes: each is decided on before the next lands (a person
/// at a fast keyboard, an integration), so each decision writes a value of
/// its own; a burst faster than that is decided on its last state anyway.
const GAP: Duration = Duration::from_millis(150);

/// Two ticket fields and a product table: every change of `product`
/// makes l3map write the catalogue id to `product_id`; an enterprise
/// ticket gets one hand-off note (a comment riding in some update). The
/// condition reads `product` so that the emulator's seed, which takes the
/// fields the rules read, has the field.
fn products() -> String {
    let mut t = format!(
        "fields desk {{\n  product     #{PRODUCT}  string  \"Product as written\"\n  \
         product_id  #{PRODUCT_ID}  string  \"Catalogue product\"\n}}\n\nsku burst {{\n  \
         normalize upper, strip \" -_/.\"\n  products "
    );
    let ids: Vec<String> = (1..=EVENTS).map(|i| format!("P-{i:02}")).collect();
    t.push_str(&ids.join(", "));
    t.push('\n');
    for i in 1..=EVENTS {
        t.push_str(&format!("  \"P{i:02}\" => P-{i:02}\n"));
    }
    t.push_str("  apply ticket.product -> desk product_id\n}\n\n");
    t.push_str(
        "escalation burst_enterprise {\n  when    ticket.sla_tier == enterprise and ticket.product != \"\"\n  \
         reason  \"An enterprise customer keeps changing the product\"\n  \
         comment desk \"Enterprise ticket: product changed in a burst\"\n}\n",
    );
    t
}

async fn admin(s: &Stack, method: Method, path: &str, body: Value) -> Value {
    let resp = s
        .http
        .request(method, format!("{}/__l3map/{path}", s.zendesk))
        .json(&body)
        .send()
        .await
        .expect("emulator admin call");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn field(t: &Value, id: u64) -> Value {
    t["ticket"]["custom_fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == id))
        .map(|f| f["value"].clone())
        .unwrap_or(Value::Null)
}

/// A person changes the product (the first change also makes the ticket
/// enterprise).
async fn change(s: &Stack, id: u64, i: usize) {
    let mut fields = vec![json!({"id": PRODUCT, "value": format!("P{i:02}")})];
    if i == 1 {
        fields.push(json!({"id": SLA_TIER, "value": "enterprise"}));
    }
    admin(
        s,
        Method::PUT,
        &format!("tickets/{id}"),
        json!({"ticket": {"custom_fields": fields}}),
    )
    .await;
}

async fn quiet_ticket(s: &Stack) -> u64 {
    let made = admin(
        s,
        Method::POST,
        "tickets",
        json!({"count": 1, "ticket": {
            "subject": "Which phone?",
            "custom_fields": [{"id": SLA_TIER, "value": "standard"}]
        }}),
    )
    .await;
    made["ids"][0].as_u64().expect("ticket id")
}

fn outbox_rows(s: &Stack, ticket: u64) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["outbox", "list", "--format", "json", "--state"])
        .arg(s.state())
        .output()
        .expect("outbox list");
    let rows: Value = serde_json::from_slice(&out.stdout).expect("json");
    rows.as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["record"].as_str() == Some(ticket.to_string().as_str()))
        .cloned()
        .collect()
}

/// What the test checks at the end, restart or not.
async fn ends_as_the_last_decision_says(s: &Stack, id: u64) {
    let last = format!("P-{EVENTS:02}");
    common::eventually(
        format!("ticket {id} at {last}"),
        Duration::from_secs(90),
        || async {
            let t = s
                .zendesk(Method::GET, &format!("/api/v2/tickets/{id}.json"), None)
                .await;
            if field(&t, PRODUCT_ID) == json!(last) {
                Ok(())
            } else {
                Err(format!("{t}\n{}", s.log()))
            }
        },
    )
    .await;
    s.drained(Duration::from_secs(60)).await;
    let stats = s.zendesk_stats().await;
    let updates = stats["ticket_updates"][id.to_string()]
        .as_u64()
        .unwrap_or(0);
    assert!(
        (1..=30).contains(&updates),
        "{updates} API updates of ticket {id} in one burst\n{stats}"
    );
    let rows = outbox_rows(s, id);
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["state"], "done", "lost: {r:#}");
    }
    // Rows not written as they were decided say why.
    let noted = rows
        .iter()
        .filter(|r| {
            r["last_error"]
                .as_str()
                .is_some_and(|n| n.contains("coalesced"))
        })
        .count();
    // One update writes one product id: the rows written as decided are at
    // most the updates; every other one says why it was not.
    let written = rows
        .iter()
        .filter(|r| r["kind"] == "normalize_sku" && r["last_error"].is_null())
        .count() as u64;
    assert!(
        written <= updates,
        "{written} rows written by {updates} updates"
    );
    let sku_rows = rows.iter().filter(|r| r["kind"] == "normalize_sku").count();
    assert!(
        sku_rows as u64 <= updates || noted > 0,
        "{sku_rows} decisions, {updates} updates, none coalesced"
    );
    if std::env::var_os("L3MAP_SHOW_NOTES").is_some() {
        for r in &rows {
            eprintln!("{} {}", r["kind"], r["last_error"]);
        }
    }
    let notes = s.private_notes(id).await;
    assert_eq!(notes.len(), 1, "the hand-off note, once: {notes:?}");
    eprintln!(
        "{} rows, {updates} updates, {noted} coalesced away",
        rows.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sixty_changes_to_one_ticket_costs_at_most_thirty_updates() {
    let s = Stack::start_with_files("coalesce", "", true, &[("products.l3map", &products())]).await;
    let id = quiet_ticket(&s).await;
    for i in 1..=EVENTS {
        change(&s, id, i).await;
        tokio::time::sleep(GAP).await;
    }
    ends_as_the_last_decision_says(&s, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_in_the_middle_of_the_burst_keeps_the_ticket_within_its_budget() {
    let mut s = Stack::start_with_files(
        "coalesce-kill",
        "",
        true,
        &[("products.l3map", &products())],
    )
    .await;
    let id = quiet_ticket(&s).await;
    for i in 1..=EVENTS / 2 {
        change(&s, id, i).await;
        tokio::time::sleep(GAP).await;
    }
    // l3map is writing the burst: kill it mid-way.
    common::eventually("l3map's first writes", Duration::from_secs(30), || async {
        let t = s
            .zendesk(Method::GET, &format!("/api/v2/tickets/{id}.json"), None)
            .await;
        if field(&t, PRODUCT_ID).is_string() {
            Ok(())
        } else {
            Err(t.to_string())
        }
    })
    .await;
    s.kill_runtime();
    s.start_runtime().await;
    for i in EVENTS / 2 + 1..=EVENTS {
        change(&s, id, i).await;
        tokio::time::sleep(GAP).await;
    }
    ends_as_the_last_decision_says(&s, id).await;
}

/// Zendesk's per-ticket limit is the ticket's, not the token's: its 429
/// comes while the account has requests left (`X-Rate-Limit-Remaining`
/// above zero), so it holds that ticket's update only. Another client
/// spent ticket A's 30 updates; l3map's write to A waits for A's
/// `Retry-After`, and its write to B goes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ticket_at_its_limit_does_not_stall_the_others() {
    let s =
        Stack::start_with_files("ticket-limit", "", true, &[("products.l3map", &products())]).await;
    let a = quiet_ticket(&s).await;
    let b = quiet_ticket(&s).await;
    for i in 0..30 {
        s.zendesk(
            Method::PUT,
            &format!("/api/v2/tickets/{a}.json"),
            Some(json!({"ticket": {"subject": format!("another tool's update {i}")}})),
        )
        .await;
    }
    change(&s, a, 2).await;
    common::eventually(
        format!("l3map's update of ticket {a} refused 429"),
        Duration::from_secs(30),
        || async {
            let rows = outbox_rows(&s, a);
            // Its first write (the links' fields on its creation, or
            // the product) waits; the rest wait behind it, in order.
            let waiting = rows.iter().any(|r| {
                r["state"] == "pending"
                    && r["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("rate limited, retry after"))
            });
            if waiting {
                Ok(())
            } else {
                Err(format!("{rows:#?}\n{}", s.log()))
            }
        },
    )
    .await;
    change(&s, b, 3).await;
    common::eventually(
        format!("ticket {b} written while {a} waits"),
        Duration::from_secs(15),
        || async {
            let t = s
                .zendesk(Method::GET, &format!("/api/v2/tickets/{b}.json"), None)
                .await;
            if field(&t, PRODUCT_ID) == json!("P-03") {
                Ok(())
            } else {
                Err(format!("{t}\n{}", s.log()))
            }
        },
    )
    .await;
    let t = s
        .zendesk(Method::GET, &format!("/api/v2/tickets/{a}.json"), None)
        .await;
    assert_eq!(field(&t, PRODUCT_ID), Value::Null, "A waits: {t}");
    // For its Retry-After, not a backoff of seconds: tried once.
    let rows = outbox_rows(&s, a);
    let row = rows
        .iter()
        .find(|r| !r["last_error"].is_null())
        .expect("A's waiting row");
    assert_eq!(row["attempts"], 1, "{row:#}");
}
