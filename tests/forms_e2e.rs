//! Statuses per ticket form, through the real binaries: an admin sets up
//! two ticket forms in the Zendesk emulator ("Billing" without the status
//! "Waiting on the customer", "Vendors" with every status), `l3map schema
//! pull` records them in the lockfile, and `l3map run` then refuses an
//! agent's move to a status the ticket's form does not offer (saying why,
//! in the turn's answer and the log, writing nothing) and applies the same
//! move for a ticket whose form offers it.

use crate::common;

use common::stack::{Stack, StackEnv, AGENT_TOKEN, DISPUTE_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Seeded tickets of the fintech desk that no escalation hands off by
/// themselves (4213, the fraud claim, would be, as soon as it changes).
const ON_BILLING: u64 = 4214; // open
const ON_VENDORS: u64 = 4211; // in_progress
/// `pending_customer` ("Waiting on the customer") in mappings/fintech.
const PENDING_CUSTOMER: u64 = 18794539035104;
/// `pending_risk_review`, where the `suspected_fraud` escalation moves a
/// ticket whose dispute type is `fraud_claim`.
const PENDING_RISK_REVIEW: u64 = 18794539035106;

async fn turn(s: &Stack, ticket: u64, id: &str) -> Value {
    let r = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(
            &json!({"turn_id": id, "ticket": ticket, "intent": "question",
                      "summary": "Asked the customer for the order number",
                      "requested_status": "pending_customer"}),
        )
        .send()
        .await
        .expect("the runtime answers");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_the_tickets_form_lacks_is_refused_and_one_it_offers_is_applied() {
    let mut s = Stack::start("forms", "").await;
    let all: Vec<u64> = s
        .zendesk(Method::GET, "/api/v2/custom_statuses.json", None)
        .await["custom_statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|c| c["id"].as_u64())
        .collect();
    assert!(all.contains(&PENDING_CUSTOMER), "{all:?}");
    let billing_ids: Vec<u64> = all
        .iter()
        .copied()
        .filter(|i| ![PENDING_CUSTOMER, PENDING_RISK_REVIEW].contains(i))
        .collect();
    let form = |name: &str, ids: Vec<u64>| {
        let s = &s;
        let name = name.to_string();
        async move {
            s.zendesk(
                Method::POST,
                "/__l3map/ticket_forms",
                Some(json!({"ticket_form": {"name": name, "custom_status_ids": ids}})),
            )
            .await["ticket_form"]["id"]
                .as_u64()
                .expect("form id")
        }
    };
    let billing = form("Billing", billing_ids).await;
    let vendors = form("Vendors", all.clone()).await;
    for (ticket, f) in [(ON_BILLING, billing), (ON_VENDORS, vendors)] {
        s.zendesk(
            Method::PUT,
            &format!("/__l3map/tickets/{ticket}"),
            Some(json!({"ticket": {"ticket_form_id": f}})),
        )
        .await;
    }
    // What the account offers, recorded as an operator would.
    pull(&s);
    let lock = std::fs::read_to_string(s.mappings().join("l3map.lock.json")).expect("lockfile");
    let lock: Value = serde_json::from_str(&lock).expect("JSON");
    assert_eq!(lock["lock_version"], 2);
    let forms = lock["zendesk"]["desk"]["ticket_forms"]
        .as_array()
        .expect("forms");
    assert!(forms.iter().any(|f| f["name"] == "Billing"), "{forms:?}");
    // `check` warns, naming the form and the status.
    let checked = std::process::Command::new(common::BIN)
        .args(["check"])
        .arg(s.mappings())
        .output()
        .expect("check runs");
    let shown = String::from_utf8_lossy(&checked.stderr).to_string()
        + &String::from_utf8_lossy(&checked.stdout);
    assert!(
        shown.contains("l3map::status::not_on_form") && shown.contains("\"Billing\""),
        "{shown}"
    );
    s.terminate_runtime();
    s.start_runtime().await;

    let refused = turn(&s, ON_BILLING, "forms-billing-1").await;
    assert_eq!(refused["accepted"], json!([]), "{refused}");
    let reason = refused["refused"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`pending_customer`")
            && reason.contains(&format!(
                "not offered on ticket form \"Billing\" (#{billing})"
            )),
        "{refused}"
    );
    let applied = turn(&s, ON_VENDORS, "forms-vendors-1").await;
    assert_eq!(applied["refused"], json!([]), "{applied}");
    let actions: Vec<&str> = applied["accepted"]
        .as_array()
        .expect("accepted")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(actions.contains(&"set_status"), "{applied}");

    let status = |t: Value| t["ticket"]["custom_status_id"].as_u64();
    common::eventually(
        "the Vendors ticket to move",
        Duration::from_secs(15),
        || {
            let s = &s;
            async move {
                let t = ticket(s, ON_VENDORS).await;
                match status(t.clone()) {
                    Some(PENDING_CUSTOMER) => Ok(()),
                    _ => Err(t.to_string()),
                }
            }
        },
    )
    .await;
    let billing_ticket = ticket(&s, ON_BILLING).await;
    assert_ne!(
        status(billing_ticket.clone()),
        Some(PENDING_CUSTOMER),
        "{billing_ticket}"
    );
    assert_eq!(billing_ticket["ticket"]["ticket_form_id"], billing);
    // The operator hears why, too.
    let log = s.log();
    assert!(
        log.contains("refused") && log.contains("not offered on ticket form"),
        "{log}"
    );

    // A webhook: a person marks the Billing ticket a fraud claim; the
    // hand-off's other actions are applied, its status move is refused.
    s.zendesk(
        Method::PUT,
        &format!("/__l3map/tickets/{ON_BILLING}"),
        Some(json!({"ticket": {"custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}]}})),
    )
    .await;
    common::eventually(
        "the fraud hand-off to be decided",
        Duration::from_secs(15),
        || {
            let log = s.log();
            async move {
                let refused = log.lines().any(|l| {
                    l.contains("suspected_fraud")
                        && l.contains("pending_risk_review")
                        && l.contains("not offered on ticket form")
                });
                if refused {
                    Ok(())
                } else {
                    Err("no refusal logged yet".to_string())
                }
            }
        },
    )
    .await;
    let notes = common::eventually("the hand-off note", Duration::from_secs(15), || async {
        let notes = s.private_notes(ON_BILLING).await;
        if notes.is_empty() {
            Err("no note yet".to_string())
        } else {
            Ok(notes)
        }
    })
    .await;
    assert!(!notes.is_empty());
    let billing_ticket = ticket(&s, ON_BILLING).await;
    assert_ne!(
        status(billing_ticket.clone()),
        Some(PENDING_RISK_REVIEW),
        "{billing_ticket}"
    );
}

/// The ticket as Zendesk's API shows it.
async fn ticket(s: &Stack, id: u64) -> Value {
    s.zendesk(Method::GET, &format!("/api/v2/tickets/{id}.json"), None)
        .await
}

/// Runs `l3map schema pull` for the stack's desk, as an operator would.
fn pull(s: &Stack) {
    let pulled = std::process::Command::new(common::BIN)
        .stack_env()
        .args(["schema", "pull", "--connection", "desk", "--config"])
        .arg(s.dir.join("l3map.toml"))
        .output()
        .expect("schema pull runs");
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
}

/// A lockfile-only change (the forms a `schema pull` recorded while `run`
/// runs) is a new revision: hot reload applies it, and the form it records
/// decides the next turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_lockfile_reaches_the_running_runtime() {
    let s = Stack::start("forms-reload", "").await;
    let before = s.health().await["mappings"]["revision"].clone();
    assert!(before.is_string(), "{before}");
    let all: Vec<u64> = s
        .zendesk(Method::GET, "/api/v2/custom_statuses.json", None)
        .await["custom_statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .filter_map(|c| c["id"].as_u64())
        .filter(|i| ![PENDING_CUSTOMER, PENDING_RISK_REVIEW].contains(i))
        .collect();
    let billing = s
        .zendesk(
            Method::POST,
            "/__l3map/ticket_forms",
            Some(json!({"ticket_form": {"name": "Billing", "custom_status_ids": all}})),
        )
        .await["ticket_form"]["id"]
        .as_u64()
        .expect("form id");
    s.zendesk(
        Method::PUT,
        &format!("/__l3map/tickets/{ON_BILLING}"),
        Some(json!({"ticket": {"ticket_form_id": billing}})),
    )
    .await;
    pull(&s);
    let after = common::eventually(
        "the pulled lockfile to be a new revision",
        Duration::from_secs(20),
        || {
            let s = &s;
            let before = before.clone();
            async move {
                let h = s.health().await;
                let r = h["mappings"]["revision"].clone();
                if r != before && h["mappings"]["files"] == "current" {
                    Ok(r)
                } else {
                    Err(h.to_string())
                }
            }
        },
    )
    .await;
    assert!(after.is_string(), "{after}");
    let refused = turn(&s, ON_BILLING, "forms-reload-1").await;
    assert_eq!(refused["accepted"], json!([]), "{refused}");
    let reason = refused["refused"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "not offered on ticket form \"Billing\" (#{billing})"
        )),
        "{refused}"
    );
}
