//! A link that allows one record (`on` a field declared `unique`, no
//! `pick`) matching two, through the real binaries (`l3map emulate` with
//! its Pub/Sub port, `l3map run` with `[cdc] enabled = true`) over
//! 127.0.0.1: a person creates a second Case naming a ticket that a Case
//! already names. Neither direction picks one: the Case's change event
//! reaches no ticket (refused, logged, counted), the agent's context read
//! reports the two Cases (the cache of the first lookup was forgotten by
//! the change), and once the duplicate is deleted the link works again.

use crate::common;

use common::stack::{Stack, AGENT_TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

const CASE_LINK: &str = r#"
fields crm {
  Case.Zendesk_Ticket_Id__c  string  external_id unique  "Zendesk ticket"
  Case.Priority              enum("High", "Medium", "Low")
}

link desk.ticket <-> crm.Case {
  on ticket.id == Case.Zendesk_Ticket_Id__c
}

map crm -> desk {
  Case.Priority -> priority {
    "High"   => high
    "Medium" => normal
    "Low"    => low
  }
}
"#;

const LINK: &str = "desk.ticket <-> crm.Case";
const NIMBUS: u64 = 360200001;
const QUIET_START: &str = "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 3600\n";

/// The stack with CDC on the emulator's Pub/Sub port (known once the
/// emulator runs: the runtime is restarted on it) and polling off.
async fn cdc_stack(name: &str) -> Stack {
    let mut s =
        Stack::start_with_files(name, QUIET_START, false, &[("case_link.l3map", CASE_LINK)]).await;
    s.restart_with_cdc(QUIET_START, 3600, "", "CaseChangeEvent")
        .await;
    s
}

/// Changes of Cases the fan-out has taken, whatever became of them.
async fn case_changes_taken(s: &Stack) -> f64 {
    s.metric_sum(
        "l3map_cdc_events_total",
        &["CaseChangeEvent", "outcome=\"applied\""],
    )
    .await
}

/// A person's create, update or delete of a Case in the Salesforce UI.
async fn person(s: &Stack, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let r = s
        .http
        .request(
            method,
            format!("{}/__l3map/person/sobjects/Case{path}", s.salesforce),
        )
        .json(&body.unwrap_or(json!({})))
        .send()
        .await
        .expect("the admin call answers");
    let status = r.status();
    let v = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "person {path}: {status} {v}");
    v
}

/// Waits until the fan-out has taken `n` Case changes in all, and the
/// outbox is empty.
async fn taken(s: &Stack, n: f64) {
    common::eventually(
        format!("{n} Case changes taken"),
        Duration::from_secs(30),
        || async {
            let got = case_changes_taken(s).await;
            if got >= n {
                Ok(())
            } else {
                Err(format!("{got}\n{}", s.log()))
            }
        },
    )
    .await;
    s.drained(Duration::from_secs(20)).await;
}

async fn priority(s: &Stack, ticket: u64) -> Value {
    let t = s
        .zendesk(
            reqwest::Method::GET,
            &format!("/api/v2/tickets/{ticket}.json"),
            None,
        )
        .await;
    t["ticket"]["priority"].clone()
}

async fn context(s: &Stack, ticket: u64) -> Value {
    let (status, v) = common::answer(
        s.http
            .get(format!("{}/v1/context/{ticket}", s.runtime))
            .bearer_auth(AGENT_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_record_for_a_unique_link_is_reported_by_both_directions() {
    let s = cdc_stack("link-unique").await;
    let ids = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/tickets",
            Some(
                json!({"count": 1, "ticket": {"subject": "Card declined", "status": "open",
                        "priority": "normal", "organization_id": NIMBUS}}),
            ),
        )
        .await;
    let ticket = ids["ids"][0].as_u64().expect("a ticket id");

    // Case A names the ticket: its priority reaches it.
    let a = person(
        &s,
        reqwest::Method::POST,
        "",
        Some(
            json!({"Subject": "Card declined", "Status": "New", "Priority": "High",
                    "Zendesk_Ticket_Id__c": ticket.to_string()}),
        ),
    )
    .await["id"]
        .as_str()
        .expect("Case A's id")
        .to_string();
    taken(&s, 1.0).await;
    assert_eq!(priority(&s, ticket).await, "high", "{}", s.log());

    // The agent reads the ticket twice: the Case is cached.
    let v = context(&s, ticket).await;
    assert_eq!(v["linked"]["records"]["Case"]["Id"], json!(a), "{v}");
    let v = context(&s, ticket).await;
    let via = v["linked"]["via"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["object"] == "Case")
        .cloned()
        .expect("a via for the Case");
    assert_eq!(via["cached"], true, "{v}");
    assert!(
        s.metric_sum("l3map_link_lookups_total", &[LINK, "result=\"hit\""])
            .await
            >= 1.0,
        "{}",
        s.metrics().await
    );

    // A person creates Case B naming the same ticket, with another
    // priority: its change reaches no ticket.
    let b = person(
        &s,
        reqwest::Method::POST,
        "",
        Some(
            json!({"Subject": "Card declined (again)", "Status": "New", "Priority": "Low",
                    "Zendesk_Ticket_Id__c": ticket.to_string()}),
        ),
    )
    .await["id"]
        .as_str()
        .expect("Case B's id")
        .to_string();
    taken(&s, 2.0).await;
    assert_eq!(
        priority(&s, ticket).await,
        "high",
        "Case B's priority was not written over Case A's: {}",
        s.log()
    );
    assert_eq!(
        s.metric_sum("l3map_fanout_refused_total", &[LINK]).await,
        1.0,
        "{}",
        s.metrics().await
    );
    let log = s.log();
    assert!(
        log.contains("more than one Case has Zendesk_Ticket_Id__c")
            && log.contains("or say `pick newest`"),
        "the refusal is logged with its fix: {log}"
    );

    // The agent's next read is not served from the cache: it reports
    // both, and picks neither.
    let v = context(&s, ticket).await;
    assert!(v["linked"]["records"].get("Case").is_none(), "{v}");
    let errors = v["linked"]["errors"].to_string();
    assert!(
        errors.contains("more than one Case has Zendesk_Ticket_Id__c")
            && errors.contains(&ticket.to_string()),
        "{v}"
    );
    assert!(
        s.metric_sum("l3map_link_lookups_total", &[LINK, "result=\"many\""])
            .await
            >= 1.0,
        "{}",
        s.metrics().await
    );

    // Case A changes while B exists: refused too.
    person(
        &s,
        reqwest::Method::PATCH,
        &format!("/{a}"),
        Some(json!({"Priority": "Medium"})),
    )
    .await;
    taken(&s, 3.0).await;
    assert_eq!(priority(&s, ticket).await, "high", "{}", s.log());
    assert_eq!(
        s.metric_sum("l3map_fanout_refused_total", &[LINK]).await,
        2.0
    );

    // The duplicate is deleted (counted as deleted, not as unlinked): A's
    // next change reaches the ticket again, and the agent sees A.
    person(&s, reqwest::Method::DELETE, &format!("/{b}"), None).await;
    taken(&s, 4.0).await;
    assert_eq!(
        s.metric_sum("l3map_fanout_changes_total", &["result=\"deleted\""])
            .await,
        1.0,
        "{}",
        s.metrics().await
    );
    assert_eq!(
        s.metric_sum("l3map_fanout_changes_total", &["result=\"unlinked\""])
            .await,
        0.0
    );
    person(
        &s,
        reqwest::Method::PATCH,
        &format!("/{a}"),
        Some(json!({"Priority": "Low"})),
    )
    .await;
    taken(&s, 5.0).await;
    common::eventually(
        "Case A's priority reaches the ticket",
        Duration::from_secs(20),
        || async {
            let p = priority(&s, ticket).await;
            if p == "low" {
                Ok(())
            } else {
                Err(p.to_string())
            }
        },
    )
    .await;
    assert_eq!(
        s.metric_sum("l3map_fanout_refused_total", &[LINK]).await,
        2.0
    );
    let v = context(&s, ticket).await;
    assert_eq!(v["linked"]["records"]["Case"]["Id"], json!(a), "{v}");
    assert_eq!(v["linked"]["errors"], json!([]), "{v}");
}
