//! Writes that respect people, in a fleet (issue 18; the third red team's
//! N1 and N2), through the real binaries: three replicas, webhooks to one,
//! the agent's turns to the others, and a collision forced at the
//! emulator. One ticket's hand-off is decided on a state that l3map's own
//! next step changes before the hand-off is sent:
//!
//! * nobody else touches the ticket: l3map's own reassignment (applied by
//!   another replica) is not a person's change, and the fraud hand-off's
//!   reassignment goes through (it was dropped as "superseded by a
//!   person");
//! * a person sets the status back to what it was when the hand-off was
//!   decided, after l3map's step changed it: the person's revert stands
//!   (comparing values alone wrote over it).

use crate::common::stack::{Stack, AGENT_TOKEN, DISPUTE_TYPE};
use crate::fleet::{logs, start, Replica};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The fintech desk's custom statuses (the emulator's seeded ids).
const NEW: u64 = 18794539035101;
const IN_PROGRESS: u64 = 18794539035103;
const ESCALATED_TIER2: u64 = 18794539035111;
/// What the emulator holds l3map's next update's answer back for: long
/// enough that the next step lands well past the clock skew l3map allows
/// between a basis and its own writes (5 s).
const STALL_SECS: u64 = 9;

async fn admin(s: &Stack, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = s
        .http
        .request(method, format!("{}{path}", s.zendesk))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

async fn ticket(s: &Stack, id: u64) -> Value {
    s.zendesk(
        reqwest::Method::GET,
        &format!("/api/v2/tickets/{id}.json"),
        None,
    )
    .await["ticket"]
        .clone()
}

async fn until_status(s: &Stack, id: u64, custom: u64) {
    let started = Instant::now();
    while ticket(s, id).await["custom_status_id"] != json!(custom) {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "ticket {id} never showed status {custom}\n{}",
            logs(s)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn turn(r: &Replica, id: &str, ticket: u64, body: Value) -> tokio::task::JoinHandle<u16> {
    let url = format!("{}/v1/turns", r.url);
    let mut b = json!({"turn_id": id, "ticket": ticket, "summary": id});
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(AGENT_TOKEN)
            .json(&b)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

async fn group_id(s: &Stack, name: &str) -> u64 {
    let v = s
        .zendesk(reqwest::Method::GET, "/api/v2/groups.json", None)
        .await;
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .and_then(|g| g["id"].as_u64())
        .unwrap_or_else(|| panic!("group {name}"))
}

/// The scenario on one new ticket; `revert`: a person sets the status
/// back to in progress just before the hand-off's update.
async fn collide(s: &Stack, rs: &[Replica], revert: bool) -> u64 {
    let t = admin(
        s,
        reqwest::Method::POST,
        "/__l3map/tickets",
        json!({"count": 1, "ticket": {"subject": "own writes", "status": "new", "custom_status_id": NEW}}),
    )
    .await["ids"][0]
        .as_u64()
        .unwrap();
    // Step one (replica 2): to in progress, applied at once, its answer
    // held back, so step two queues behind it.
    stall(s, t).await;
    let one = turn(
        &rs[1],
        &format!("one-{t}-{revert}"),
        t,
        json!({"intent": "question", "requested_status": "in_progress"}),
    );
    until_status(s, t, IN_PROGRESS).await;
    stall(s, t).await;
    // Step two (replica 3): a refund over the threshold, a hand-off to
    // Payments Tier 2 (status escalated, the group), queued.
    let two = turn(
        &rs[2],
        &format!("two-{t}-{revert}"),
        t,
        json!({"intent": "refund", "refund_amount": {"amount": "250.00", "currency": "USD"}}),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A person marks the dispute as fraud: the webhook (replica 1)
    // decides the fraud hand-off on the ticket as it is now.
    admin(
        s,
        reqwest::Method::PUT,
        &format!("/__l3map/tickets/{t}"),
        json!({"ticket": {"custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}]}, "author_id": 1001}),
    )
    .await;
    until_status(s, t, ESCALATED_TIER2).await;
    if revert {
        admin(
            s,
            reqwest::Method::POST,
            &format!("/__l3map/tickets/{t}/person_before_next_update"),
            json!({"ticket": {"status": "open", "custom_status_id": IN_PROGRESS}, "author_id": 1001}),
        )
        .await;
    }
    assert_eq!(one.await.unwrap(), 200);
    assert_eq!(two.await.unwrap(), 200);
    t
}

/// Holds the answer to l3map's next update of `t` (applied at once).
async fn stall(s: &Stack, t: u64) {
    let path = format!("/__l3map/tickets/{t}/stall_next_update");
    admin(s, reqwest::Method::POST, &path, json!({"secs": STALL_SECS})).await;
}

/// Waits until the fraud hand-off's note is on `t`.
async fn fraud_noted(s: &Stack, t: u64) {
    let started = Instant::now();
    while !s
        .private_notes(t)
        .await
        .iter()
        .any(|n| n.contains("unauthorised transaction"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no fraud hand-off on {t}: {:?}\n{}",
            s.private_notes(t).await,
            logs(s)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Settled: what the collision kept was sent with the note.
    tokio::time::sleep(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l3maps_own_write_is_not_a_persons_and_a_persons_revert_stands() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_collision") else {
        return;
    };
    let s = Stack::fleet(
        "fleet-collision",
        "[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n",
        &url,
    );
    let rs = vec![start(&s, 1).await, start(&s, 2).await, start(&s, 3).await];
    let fraud = group_id(&s, "Fraud Operations").await;

    // Nobody but l3map changed the ticket after the hand-off was decided:
    // its reassignment to Fraud Operations goes through.
    let t = collide(&s, &rs, false).await;
    fraud_noted(&s, t).await;
    let shown = ticket(&s, t).await;
    assert_eq!(shown["group_id"], json!(fraud), "{shown}\n{}", logs(&s));

    // A person set the status back after l3map's step: it stays.
    let t = collide(&s, &rs, true).await;
    fraud_noted(&s, t).await;
    let shown = ticket(&s, t).await;
    assert_eq!(
        shown["custom_status_id"],
        json!(IN_PROGRESS),
        "{shown}\n{}",
        logs(&s)
    );
    for mut r in rs {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}
