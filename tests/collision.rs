//! Writes that respect people (issue 17): a person's change made between
//! l3map's read of a ticket and l3map's write of its decision wins. l3map
//! sends its ticket updates as Zendesk safe updates (`safe_update` +
//! `updated_stamp`); the emulator answers a stale one 409, as Zendesk does;
//! l3map re-reads, drops what the person changed and writes the rest.

use crate::common;

use common::stack::{Stack, DISPUTE_TYPE, SLA_TIER};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// The fintech desk's `handoff_reason` field (mappings/fintech/fields.l3map).
const HANDOFF_REASON: u64 = 360001241;
/// The fintech desk's `fraud_investigation` status (statuses.l3map).
const FRAUD_INVESTIGATION: u64 = 18794539035110;

/// The fintech mappings, with the fraud hand-off also setting an unrelated
/// custom field: the write a person's change does not touch.
fn escalations() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("mappings/fintech/escalations.l3map"))
        .expect("escalations.l3map");
    let from = "  assign  desk \"Fraud Operations\"\n  status  desk pending_risk_review";
    assert!(text.contains(from), "the fraud escalation changed shape");
    text.replace(
        from,
        &format!("  set     desk handoff_reason = \"fraud\"\n{from}"),
    )
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

async fn group_id(s: &Stack, name: &str) -> u64 {
    let groups = s.zendesk(Method::GET, "/api/v2/groups.json", None).await;
    groups["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == name))
        .and_then(|g| g["id"].as_u64())
        .expect("the group")
}

/// A ticket loaded without webhooks: nothing is decided about it yet.
async fn quiet_ticket(s: &Stack) -> u64 {
    let made = admin(
        s,
        Method::POST,
        "tickets",
        json!({"count": 1, "ticket": {
            "subject": "Card charged twice",
            "custom_fields": [{"id": SLA_TIER, "value": "standard"}]
        }}),
    )
    .await;
    made["ids"][0].as_u64().expect("ticket id")
}

/// A ticket made through the API (its webhook delivered) whose creation
/// the runtime has decided and applied (the links' fields): the next
/// update of it is the one under test, not a write of its creation.
async fn answered_ticket(s: &Stack) -> u64 {
    let webhooks = || async {
        let m = s.metrics().await;
        m.lines()
            .find(|l| l.starts_with("l3map_events_total{source=\"webhook\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = webhooks().await;
    let made = s
        .zendesk(
            Method::POST,
            "/api/v2/tickets.json",
            Some(json!({"ticket": {
                "subject": "Card charged twice",
                "status": "open",
                "comment": {"body": "Card charged twice"},
                "custom_fields": [{"id": SLA_TIER, "value": "standard"}]
            }})),
        )
        .await;
    let id = made["ticket"]["id"].as_u64().expect("ticket id");
    common::wait_for(
        "its creation's webhook",
        Duration::from_secs(15),
        || async { webhooks().await > before },
    )
    .await;
    s.drained(Duration::from_secs(15)).await;
    // The stamps have one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    id
}

/// A person's change queued to land just before l3map's next write to
/// the ticket (after l3map read it), then the change l3map decides on.
async fn person_then_event(s: &Stack, id: u64, person: Value, event: Value) {
    let before = format!("tickets/{id}/person_before_next_update");
    admin(s, Method::POST, &before, person).await;
    admin(s, Method::PUT, &format!("tickets/{id}"), event).await;
}

/// The ticket as Zendesk's API shows it.
async fn ticket(s: &Stack, id: u64) -> Value {
    s.zendesk(Method::GET, &format!("/api/v2/tickets/{id}.json"), None)
        .await
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

fn field(t: &Value, id: u64) -> Value {
    t["ticket"]["custom_fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == id))
        .map(|f| f["value"].clone())
        .unwrap_or(Value::Null)
}

/// A person moves the ticket to another status and another group after
/// l3map read it and before its write lands: the person's status and group
/// stay, l3map's unrelated field and hand-off note are written, and the
/// audit trail says what collided and what was dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_change_between_read_and_write_wins() {
    let s = Stack::start_with_files(
        "collision",
        "",
        true,
        &[("escalations.l3map", &escalations())],
    )
    .await;
    let id = quiet_ticket(&s).await;
    let payments = group_id(&s, "Payments Tier 2").await;
    // The person's change lands just before l3map's next write to the
    // ticket: after l3map read it for the event below.
    // The event l3map decides on: a person files the dispute.
    person_then_event(
        &s,
        id,
        json!({"ticket": {"status": "hold", "custom_status_id": FRAUD_INVESTIGATION,
                          "group_id": payments}}),
        json!({"ticket": {"custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}]}}),
    )
    .await;
    common::wait_for("l3map's field", Duration::from_secs(15), || async {
        let t = ticket(&s, id).await;
        field(&t, HANDOFF_REASON) == "fraud"
    })
    .await;
    s.drained(Duration::from_secs(10)).await;
    let t = ticket(&s, id).await;
    assert_eq!(t["ticket"]["status"], "hold", "{t}\n{}", s.log());
    assert_eq!(t["ticket"]["custom_status_id"], FRAUD_INVESTIGATION, "{t}");
    assert_eq!(t["ticket"]["group_id"], payments, "{t}");
    assert_eq!(field(&t, HANDOFF_REASON), "fraud");
    let notes = s.private_notes(id).await;
    assert_eq!(notes.len(), 1, "{notes:?}");

    let rows = outbox_rows(&s, id);
    let by_kind = |kind: &str| -> Value {
        // The hand-off's rows (the crm -> desk maps write the ticket too).
        rows.iter()
            .find(|r| {
                r["kind"] == kind
                    && r["rule"]
                        .as_str()
                        .is_some_and(|rule| rule.contains("suspected_fraud"))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} row in {rows:#?}"))
    };
    assert!(rows.iter().all(|r| r["state"] == "done"), "{rows:#?}");
    for kind in ["set_status", "assign_group"] {
        let note = by_kind(kind)["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            note.contains("superseded by a person's change") && note.contains("not applied"),
            "{kind}: {note}"
        );
    }
    let written = by_kind("set_field")["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        written.contains("a collision") && written.contains("re-decided"),
        "{written}"
    );
    let log = s.log();
    assert!(log.contains("a collision"), "{log}");
    assert!(log.contains("superseded by a person's change"), "{log}");
}

/// F24: l3map's write lands but its answer is withheld, the runtime is
/// killed (-9) with the write in flight (unconfirmed), a person then
/// changes the status, and the restarted runtime's read-back must not send
/// l3map's status again over the person's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_write_read_back_after_a_kill_keeps_a_persons_newer_edit() {
    let mut s = Stack::start("collision-f24", "").await;
    let id = answered_ticket(&s).await;
    let fraud_ops = group_id(&s, "Fraud Operations").await;
    admin(
        &s,
        Method::POST,
        &format!("tickets/{id}/stall_next_update"),
        json!({"secs": 120}),
    )
    .await;
    admin(
        &s,
        Method::PUT,
        &format!("tickets/{id}"),
        json!({"ticket": {"custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}]}}),
    )
    .await;
    // l3map's update is applied (its answer withheld): the group shows it.
    common::wait_for("l3map's write to land", Duration::from_secs(15), || async {
        let t = ticket(&s, id).await;
        t["ticket"]["group_id"] == fraud_ops
    })
    .await;
    s.kill_runtime();
    // A second later (the stamps have one-second resolution), a person
    // puts the ticket under investigation.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    admin(
        &s,
        Method::PUT,
        &format!("tickets/{id}"),
        json!({"ticket": {"status": "hold", "custom_status_id": FRAUD_INVESTIGATION}}),
    )
    .await;
    s.start_runtime().await;
    s.drained(Duration::from_secs(20)).await;
    let t = ticket(&s, id).await;
    assert_eq!(t["ticket"]["status"], "hold", "{t}\n{}", s.log());
    assert_eq!(t["ticket"]["custom_status_id"], FRAUD_INVESTIGATION, "{t}");
    assert_eq!(t["ticket"]["group_id"], fraud_ops, "{t}");
    assert_eq!(
        s.private_notes(id).await.len(),
        1,
        "the note was sent twice"
    );
    let rows = outbox_rows(&s, id);
    assert!(rows.iter().all(|r| r["state"] == "done"), "{rows:#?}");
    // The read-back found l3map's status overwritten by the person's, and
    // left it: superseded, not sent again.
    let status = rows
        .iter()
        .find(|r| r["kind"] == "set_status")
        .expect("status row");
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|n| n.contains("superseded by a person's change")),
        "{status:#}\n{}",
        s.log()
    );
}

const PRODUCT: u64 = 360009901;
const PRODUCT_ID: u64 = 360009902;

/// Two ticket fields and a product table: a change of `product` makes
/// l3map write the catalogue id to `product_id`. The escalation reads
/// `product` so that the emulator's seed has the field.
const PRODUCTS: &str = r#"
fields desk {
  product     #360009901  string  "Product as written"
  product_id  #360009902  string  "Catalogue product"
}

sku phones {
  normalize upper, strip " -_/."
  products PHONE-A, PHONE-B
  "PHONEA" => PHONE-A
  "PHONEB" => PHONE-B
  apply ticket.product -> desk product_id
}

escalation product_unknown {
  when    ticket.product == "never written"
  reason  "unused"
  comment desk "unused"
}
"#;

/// A ticket whose first event was decided and whose first writes (the
/// links' fields, on its creation) are done: the next API update of it is
/// the one under test.
async fn settled_ticket(s: &Stack) -> u64 {
    let id = quiet_ticket(s).await;
    admin(
        s,
        Method::PUT,
        &format!("tickets/{id}"),
        json!({"ticket": {"custom_fields": [{"id": PRODUCT, "value": "nothing known"}]}}),
    )
    .await;
    common::wait_for(
        "the ticket's first event",
        Duration::from_secs(20),
        || async { s.log().contains("no product matches \"nothing known\"") },
    )
    .await;
    s.drained(Duration::from_secs(10)).await;
    // The stamps have one-second resolution.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    id
}

/// The 409 re-decision: l3map decided `product_id = PHONE-A` on "phone a";
/// before its write lands a person rewrites the product as something no
/// product matches. Compared field by field, nothing l3map writes was
/// touched by the person and PHONE-A would be written; decided again
/// against the fresh ticket, the table no longer matches and nothing is
/// written: the row is done, superseded, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_collision_the_rules_decide_again_on_the_fresh_ticket() {
    let s = Stack::start_with_files(
        "collision-redecide",
        "",
        true,
        &[("products.l3map", PRODUCTS)],
    )
    .await;
    let id = settled_ticket(&s).await;
    person_then_event(
        &s,
        id,
        json!({"ticket": {"custom_fields": [{"id": PRODUCT, "value": "a phone, any"}]}}),
        json!({"ticket": {"custom_fields": [{"id": PRODUCT, "value": "phone a"}]}}),
    )
    .await;
    common::wait_for(
        "the decision to settle",
        Duration::from_secs(20),
        || async {
            outbox_rows(&s, id)
                .iter()
                .any(|r| r["kind"] == "normalize_sku" && r["state"] == "done")
        },
    )
    .await;
    s.drained(Duration::from_secs(10)).await;
    let t = ticket(&s, id).await;
    assert_eq!(field(&t, PRODUCT), "a phone, any", "{t}");
    assert_eq!(field(&t, PRODUCT_ID), Value::Null, "{t}\n{}", s.log());
    let rows = outbox_rows(&s, id);
    let row = rows
        .iter()
        .find(|r| r["kind"] == "normalize_sku")
        .expect("the product row");
    assert_eq!(row["state"], "done", "{row:#}");
    let note = row["last_error"].as_str().unwrap_or("");
    assert!(
        note.contains("decided again against the ticket as of")
            && note.contains("no longer writes")
            && note.contains("not applied"),
        "{note}"
    );
    let log = s.log();
    assert!(log.contains("a collision"), "{log}");
    assert!(log.contains("no longer make 1"), "{log}");
}

/// The re-decision writes what the rules say now: the person rewrote the
/// product as another one between l3map's read and its write, and the
/// catalogue id written is the new product's, by the same outbox row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_collision_the_value_written_is_the_one_decided_on_the_fresh_ticket() {
    let s = Stack::start_with_files(
        "collision-revalue",
        "",
        true,
        &[("products.l3map", PRODUCTS)],
    )
    .await;
    let id = settled_ticket(&s).await;
    person_then_event(
        &s,
        id,
        json!({"ticket": {"custom_fields": [{"id": PRODUCT, "value": "phone b"}]}}),
        json!({"ticket": {"custom_fields": [{"id": PRODUCT, "value": "phone a"}]}}),
    )
    .await;
    common::wait_for("PHONE-B", Duration::from_secs(20), || async {
        let t = ticket(&s, id).await;
        field(&t, PRODUCT_ID) == "PHONE-B"
    })
    .await;
    s.drained(Duration::from_secs(10)).await;
    let rows = outbox_rows(&s, id);
    let first = rows
        .iter()
        .find(|r| r["kind"] == "normalize_sku" && r["op"]["value"] == "PHONE-A")
        .expect("the row decided on \"phone a\"");
    let note = first["last_error"].as_str().unwrap_or("");
    assert!(
        first["state"] == "done"
            && note.contains("a collision")
            && note.contains("re-decided")
            && note.contains("still sent (product_id = \"PHONE-B\")"),
        "{first:#}\n{}",
        s.log()
    );
}

/// Red team F1: a person changes only the status of a ticket with no group
/// after l3map read it: the person's status stays, and the hand-off's
/// reassignment and note are still written (no group before, none now, no
/// assignee: nobody reassigned it), not dropped as "cannot tell".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_status_change_keeps_the_handoffs_reassignment_and_note() {
    let s = Stack::start("collision-status-only", "").await;
    let id = quiet_ticket(&s).await;
    let fraud_ops = group_id(&s, "Fraud Operations").await;
    let before = ticket(&s, id).await;
    assert_eq!(before["ticket"]["group_id"], Value::Null, "{before}");
    person_then_event(
        &s,
        id,
        json!({"ticket": {"status": "hold", "custom_status_id": FRAUD_INVESTIGATION}}),
        json!({"ticket": {"custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}]}}),
    )
    .await;
    common::wait_for("the hand-off's group", Duration::from_secs(20), || async {
        let t = ticket(&s, id).await;
        t["ticket"]["group_id"] == fraud_ops
    })
    .await;
    s.drained(Duration::from_secs(10)).await;
    let t = ticket(&s, id).await;
    assert_eq!(
        t["ticket"]["custom_status_id"],
        FRAUD_INVESTIGATION,
        "{t}\n{}",
        s.log()
    );
    assert_eq!(s.private_notes(id).await.len(), 1, "{}", s.log());
    let rows = outbox_rows(&s, id);
    assert!(rows.iter().all(|r| r["state"] == "done"), "{rows:#?}");
    let status = rows
        .iter()
        .find(|r| r["kind"] == "set_status")
        .expect("status row");
    assert!(
        status["last_error"]
            .as_str()
            .is_some_and(|n| n.contains("superseded")),
        "{status:#}"
    );
}

/// Red team F3: a hand-off whose trigger a person withdrew between
/// l3map's read and write is dropped by the re-decision, and nothing of it
/// was written, so it does not count as the one write: when the trigger
/// comes back, the hand-off is written (once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_withdrawn_by_a_collision_is_written_when_its_trigger_returns() {
    let s = Stack::start("collision-withdrawn", "").await;
    let id = quiet_ticket(&s).await;
    let fraud_ops = group_id(&s, "Fraud Operations").await;
    person_then_event(
        &s,
        id,
        json!({"ticket": {"custom_fields": [{"id": DISPUTE_TYPE, "value": "chargeback"}]}}),
        json!({"ticket": {"custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}]}}),
    )
    .await;
    common::wait_for(
        "the withdrawn hand-off",
        Duration::from_secs(20),
        || async {
            let rows = outbox_rows(&s, id);
            rows.iter().any(|r| r["kind"] == "comment") && rows.iter().all(|r| r["state"] == "done")
        },
    )
    .await;
    assert!(s.private_notes(id).await.is_empty(), "{}", s.log());
    // The trigger comes back: now the hand-off is written.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    admin(
        &s,
        Method::PUT,
        &format!("tickets/{id}"),
        json!({"ticket": {"custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}]}}),
    )
    .await;
    common::wait_for("the hand-off's group", Duration::from_secs(20), || async {
        let t = ticket(&s, id).await;
        t["ticket"]["group_id"] == fraud_ops
    })
    .await;
    s.drained(Duration::from_secs(10)).await;
    assert_eq!(s.private_notes(id).await.len(), 1, "{}", s.log());
}
