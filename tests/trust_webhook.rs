//! Issue 13, items 4, 7 and 17, from the outside: `l3map run --config`
//! and `l3map emulate` as two real processes on 127.0.0.1, Zendesk's
//! webhooks signed as Zendesk signs them.
//!
//! * 4: the events of one ticket update, delivered in every order, each
//!   end with the same writes applied once, and the comment decided.
//! * 7: the webhook endpoint takes Zendesk's deliveries only: it cannot
//!   pass for an agent (nor claim an agent's turn id), and one delivery
//!   cannot make the runtime read a list of tickets.
//! * 17: a person's update is read at most once however many events it
//!   sends; an update l3map made itself is not read back at all.

use crate::common;

use common::stack;
use common::wait_for;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use stack::{Stack, AGENT_TOKEN, DISPUTE_TYPE, WEBHOOK_SECRET};
use std::io::Write;
use std::time::{Duration, Instant};
use tempfile::TempPath;

/// The fintech desk's `pending_risk_review` status (mappings/fintech).
const PENDING_RISK_REVIEW: u64 = 18794539035106;
const NO_POLLING: &str = "[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n";

fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A delivery signed with `secret`: the status and the JSON answer.
async fn deliver(s: &Stack, secret: &str, payload: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(payload).expect("json");
    let now = jiff::Timestamp::now().to_string();
    let r = s
        .http
        .post(format!("{}/webhooks/zendesk", s.runtime))
        .header("content-type", "application/json")
        .header("x-zendesk-webhook-signature", sign(secret, &now, &body))
        .header("x-zendesk-webhook-signature-timestamp", now)
        .body(body)
        .send()
        .await
        .expect("answered");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET /api/v2/tickets/{id}.json` requests the emulator has answered.
async fn ticket_reads(s: &Stack, id: u64) -> u64 {
    let v: Value = s
        .http
        .get(format!("{}/__l3map/stats", s.zendesk))
        .send()
        .await
        .expect("emulator counts")
        .json()
        .await
        .expect("json");
    v["by_path"][format!("GET /api/v2/tickets/{id}.json")]
        .as_u64()
        .unwrap_or(0)
}

/// A counter of /metrics, 0 when absent.
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Webhook deliveries the runtime has recorded or found duplicate.
async fn webhook_events(s: &Stack) -> u64 {
    let m = s.metrics().await;
    counter(&m, r#"l3map_events_total{source="webhook"}"#)
        + counter(&m, r#"l3map_events_duplicate_total{source="webhook"}"#)
}

/// Waits until the emulator's deliveries have stopped arriving: at least
/// `more` after `from`, then none for a second and a half.
async fn webhooks_settled(s: &Stack, from: u64, more: u64) {
    wait_for("webhook deliveries", Duration::from_secs(30), || async {
        webhook_events(s).await >= from + more
    })
    .await;
    let mut last = webhook_events(s).await;
    let mut quiet = Instant::now();
    let started = Instant::now();
    while quiet.elapsed() < Duration::from_millis(1500) {
        assert!(started.elapsed() < Duration::from_secs(60), "never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = webhook_events(s).await;
        if now != last {
            (last, quiet) = (now, Instant::now());
        }
    }
}

async fn ticket(s: &Stack, id: u64) -> Value {
    s.zendesk(Method::GET, &format!("/api/v2/tickets/{id}.json"), None)
        .await["ticket"]
        .clone()
}

async fn group_id(s: &Stack, name: &str) -> Value {
    let groups = s.zendesk(Method::GET, "/api/v2/groups.json", None).await;
    groups["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == name))
        .map(|g| g["id"].clone())
        .expect("the group")
}

/// A person's update, made on the emulator: the ticket opened, its
/// dispute type set to a fraud claim, and the customer's reply.
async fn fraud_claim_update(s: &Stack, id: u64) {
    s.zendesk(
        Method::PUT,
        &format!("/api/v2/tickets/{id}.json"),
        Some(json!({"ticket": {
            "status": "open",
            "custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}],
            "comment": {"body": "I never made this payment", "public": true}
        }})),
    )
    .await;
}

/// The events Zendesk sends for [`fraud_claim_update`], as event
/// subscriptions spell them: the ticket after the update in `detail`
/// (ids as text, enumerations upper case), one event per change.
async fn events_of_the_update(s: &Stack, id: u64) -> Vec<(&'static str, Value)> {
    let t = ticket(s, id).await;
    let comment = s.comments(id).await.last().cloned().expect("the reply");
    let upper = |v: &Value| v.as_str().map(str::to_uppercase);
    let detail = json!({
        "id": id.to_string(),
        "status": upper(&t["status"]),
        "custom_status": t["custom_status_id"].to_string(),
        "priority": upper(&t["priority"]),
        "type": upper(&t["type"]),
        "tags": t["tags"],
        "requester_id": t["requester_id"].to_string(),
        "created_at": t["created_at"],
        "updated_at": t["updated_at"],
        "via": {"channel": "web"},
    });
    let sequence = format!("{:032x}", fastrand::u128(..));
    let event = |ty: &str, n: usize, mut event: Value| {
        event["meta"] = json!({"sequence": {"id": sequence, "position": n, "total": 3}});
        json!({
            "type": format!("zen:event-type:ticket.{ty}"),
            "account_id": 12514403,
            "id": format!("{:032x}", fastrand::u128(..)),
            "time": t["updated_at"],
            "zendesk_event_version": "2022-11-06",
            "subject": format!("zen:ticket:{id}"),
            "detail": detail,
            "event": event,
        })
    };
    vec![
        (
            "status_changed",
            event(
                "status_changed",
                1,
                json!({"previous": "NEW", "current": "OPEN"}),
            ),
        ),
        (
            "custom_field_changed",
            event(
                "custom_field_changed",
                2,
                json!({"field": {"id": DISPUTE_TYPE.to_string()}, "previous": null, "current": "fraud_claim"}),
            ),
        ),
        (
            "comment_added",
            event(
                "comment_added",
                3,
                json!({"comment": {
                    "id": comment["id"].to_string(),
                    "body": comment["body"],
                    "is_public": true,
                    "author": {"id": t["requester_id"].to_string(), "is_staff": false, "name": "Ana Souza"}
                }}),
            ),
        ),
    ]
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

/// A secret only this test signs with: the emulator's own deliveries
/// (signed with the stack's secret) are refused, so the test alone
/// decides which events arrive, and in which order.
fn own_secret(name: &str) -> (TempPath, String) {
    let secret = format!("trust-webhook-{name}-{:016x}", fastrand::u64(..));
    let mut file = tempfile::Builder::new()
        .prefix(&format!("l3map-trust-webhook-{name}-"))
        .tempfile()
        .expect("secret file");
    writeln!(file, "{secret}").expect("secret file");
    (file.into_temp_path(), secret)
}

/// Item 4. A customer's reply that reopens a ticket and a field change
/// make one update with three events. Whatever order they arrive in, the
/// comment is decided on its own (it used to be dropped as a duplicate of
/// the ticket's state when another event of the update came first), the
/// state is decided once, and the hand-off it causes is written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_of_one_updates_events_decides_the_comment_and_applies_once() {
    let (secret_file, secret) = own_secret("order");
    let extra = format!(
        "[webhook]\nsecret_file = \"{}\"\ntolerance_secs = 300\n\n{NO_POLLING}",
        secret_file.display()
    );
    let s = Stack::start_with("trust-order", &extra, false).await;
    let fraud_ops = group_id(&s, "Fraud Operations").await;
    for order in permutations(3) {
        let id = s
            .create_ticket("Unknown card payment", "standard", None)
            .await;
        fraud_claim_update(&s, id).await;
        let events = events_of_the_update(&s, id).await;
        let mut answers = Vec::new();
        for &i in &order {
            let (name, payload) = &events[i];
            let (status, answer) = deliver(&s, &secret, payload).await;
            assert_eq!(status, 200, "{name} in order {order:?}: {answer}");
            answers.push((*name, answer));
        }
        let comment = answers
            .iter()
            .find(|(n, _)| *n == "comment_added")
            .map(|(_, a)| a)
            .expect("the comment's answer");
        assert_eq!(
            comment["accepted"], 1,
            "order {order:?}: the comment was not decided: {answers:?}"
        );
        let state_accepted: u64 = answers
            .iter()
            .filter(|(n, _)| *n != "comment_added")
            .map(|(_, a)| a["accepted"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            state_accepted, 1,
            "order {order:?}: the ticket's state is decided once: {answers:?}"
        );
        // Zendesk delivers again when it is unsure: nothing new.
        for (name, payload) in &events {
            let (status, answer) = deliver(&s, &secret, payload).await;
            assert_eq!(status, 200);
            assert_eq!(answer["duplicates"], 1, "redelivered {name}: {answer}");
        }
        wait_for("the hand-off", Duration::from_secs(30), || async {
            !s.private_notes(id).await.is_empty()
        })
        .await;
        s.drained(Duration::from_secs(30)).await;
        let notes = s.private_notes(id).await;
        assert_eq!(notes.len(), 1, "order {order:?}: {notes:?}");
        assert!(
            notes[0].starts_with("AI hand-off: Customer reports an unauthorised transaction"),
            "{}",
            notes[0]
        );
        let t = ticket(&s, id).await;
        assert_eq!(t["group_id"], fraud_ops, "order {order:?}");
        assert_eq!(
            t["custom_status_id"], PENDING_RISK_REVIEW,
            "order {order:?}"
        );
    }
}

/// Item 17. A person's update sends several events (the reply, the
/// status, the custom status, the field): the ticket is read once for all
/// of them. The hand-off l3map writes because of it sends events too: the
/// answer to its own update already showed the ticket, so none is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_update_is_read_once_and_l3maps_own_update_not_at_all() {
    let s = Stack::start("trust-reads", NO_POLLING).await;
    let before = webhook_events(&s).await;
    let id = s
        .create_ticket("Unknown card payment", "standard", None)
        .await;
    webhooks_settled(&s, before, 1).await;
    let created = ticket_reads(&s, id).await;
    assert!(created <= 1, "{created} reads for the ticket's creation");

    // A reply and a status change: no rule acts on it.
    let from = webhook_events(&s).await;
    s.zendesk(
        Method::PUT,
        &format!("/api/v2/tickets/{id}.json"),
        Some(json!({"ticket": {
            "status": "open",
            "additional_tags": ["callback"],
            "comment": {"body": "Any news?", "public": true}
        }})),
    )
    .await;
    webhooks_settled(&s, from, 3).await;
    let reads = ticket_reads(&s, id).await - created;
    assert_eq!(reads, 1, "one update with several events: {reads} reads");

    // A fraud claim: the hand-off is written by l3map, whose update
    // sends its own events (note, group, status).
    let from = webhook_events(&s).await;
    let before_claim = ticket_reads(&s, id).await;
    fraud_claim_update(&s, id).await;
    wait_for("the hand-off", Duration::from_secs(30), || async {
        !s.private_notes(id).await.is_empty()
    })
    .await;
    s.drained(Duration::from_secs(30)).await;
    // The person's events and l3map's own (at least its note and status).
    webhooks_settled(&s, from, 5).await;
    let reads = ticket_reads(&s, id).await - before_claim;
    assert_eq!(
        reads, 1,
        "the person's update is read once, l3map's own not at all: {reads} reads"
    );
    assert_eq!(s.private_notes(id).await.len(), 1);
    assert_eq!(
        ticket(&s, id).await["custom_status_id"],
        PENDING_RISK_REVIEW
    );
}

/// Item 7. A holder of the webhook secret posts an agent turn in the
/// normalised event shape, under the id the agent will use next: it is
/// refused, and the agent's real turn is decided, not ignored as a
/// duplicate. Other sources' shapes are refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_takes_zendesks_deliveries_only() {
    let s = Stack::start("trust-shapes", NO_POLLING).await;
    let squat = json!({
        "id": "agent:e2e:conv-77-turn-1", "kind": "agent_turn", "at": "2026-11-25T10:00:00Z",
        "ticket": {"id": 4211, "status": "in_progress"},
        "turn": {"intent": "question", "summary": "nothing to see"}
    });
    let others = [
        squat,
        // A Salesforce record and change event.
        json!({"attributes": {"type": "Case"}, "Id": "5005e0000000003AAA", "Status": "New",
               "SystemModstamp": "2026-11-25T10:00:00.000+0000"}),
        json!({"ChangeEventHeader": {"entityName": "Case", "recordIds": ["5005e0000000003AAA"],
               "changeType": "UPDATE", "commitTimestamp": 1795000000000u64,
               "transactionKey": "k", "sequenceNumber": 1}, "Status": "New"}),
        // A bare ticket, and a ticket with sideloads.
        json!({"id": 4211, "status": "open", "updated_at": "2026-11-25T10:00:00Z"}),
        json!({"ticket": {"id": 4211, "updated_at": "2026-11-25T10:00:00Z"},
               "users": [{"id": 1, "name": "Mallory"}]}),
    ];
    for payload in &others {
        let (status, answer) = deliver(&s, WEBHOOK_SECRET, payload).await;
        assert_eq!(status, 400, "{payload}: {answer}");
        assert_eq!(answer["error"], "malformed", "{answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("not a Zendesk webhook delivery")
                && message.contains("zen:event-type:ticket"),
            "the answer says what is accepted: {message}"
        );
    }
    // The agent's turn under the id the forged event named: decided.
    let turn = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(&json!({
            "turn_id": "conv-77-turn-1", "ticket": 4211, "intent": "refund",
            "summary": "Wants a refund for order 1182", "sentiment": "negative",
            "refund_amount": {"amount": "450.00", "currency": "USD"}
        }))
        .send()
        .await
        .expect("answered");
    assert_eq!(turn.status(), 200);
    let turn: Value = turn.json().await.expect("json");
    assert_eq!(turn["duplicate"], false, "{turn}");
    assert!(turn["queued"].as_u64().unwrap_or(0) > 0, "{turn}");

    // A legacy trigger's payload: one ticket, read once.
    let reads = ticket_reads(&s, 4213).await;
    let (status, answer) = deliver(
        &s,
        WEBHOOK_SECRET,
        &json!({"ticket": {"id": "4213", "updated_at": "2026-11-25T10:00:00Z"}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(ticket_reads(&s, 4213).await, reads + 1);
}

/// Item 7. One delivery naming many tickets used to cost one API read per
/// ticket (a cheap way to spend the token's budget): it is refused before
/// any read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delivery_cannot_make_the_runtime_read_many_tickets() {
    let s = Stack::start("trust-fanout", NO_POLLING).await;
    let ids = [4211u64, 4213, 4214];
    let before: Vec<u64> = futures_reads(&s, &ids).await;
    let list: Vec<Value> = (0..200)
        .map(|i| json!({"id": ids[i % 3], "updated_at": format!("2026-11-25T10:{:02}:{:02}Z", i / 60, i % 60)}))
        .collect();
    let (status, answer) = deliver(&s, WEBHOOK_SECRET, &json!({"tickets": list})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "malformed");
    assert_eq!(futures_reads(&s, &ids).await, before, "no ticket was read");
}

async fn futures_reads(s: &Stack, ids: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    for id in ids {
        out.push(ticket_reads(s, *id).await);
    }
    out
}

/// Sleeps to the start of the next second (plus a little), so two updates
/// made 300 ms apart fall in one second of Zendesk's `updated_at`.
async fn start_of_a_second() {
    let ms = jiff::Timestamp::now().as_millisecond().rem_euclid(1000);
    tokio::time::sleep(Duration::from_millis((1000 - ms) as u64 + 30)).await;
}

/// A ticket event as Zendesk sends it, `detail` the ticket as it is now.
async fn state_event(s: &Stack, id: u64, ty: &str, event: Value) -> Value {
    let t = ticket(s, id).await;
    let upper = |v: &Value| v.as_str().map(str::to_uppercase);
    json!({
        "type": format!("zen:event-type:ticket.{ty}"),
        "account_id": 12514403,
        "id": format!("{:032x}", fastrand::u128(..)),
        "time": t["updated_at"],
        "zendesk_event_version": "2022-11-06",
        "subject": format!("zen:ticket:{id}"),
        "detail": {
            "id": id.to_string(),
            "status": upper(&t["status"]),
            "custom_status": t["custom_status_id"].to_string(),
            "priority": upper(&t["priority"]),
            "type": upper(&t["type"]),
            "tags": t["tags"],
            "requester_id": t["requester_id"].to_string(),
            "created_at": t["created_at"],
            "updated_at": t["updated_at"],
            "via": {"channel": "web"},
        },
        "event": event,
    })
}

/// Two updates of a new ticket within one second (Zendesk's `updated_at`
/// has one-second resolution): tags (and open) first, then 300 ms later
/// the dispute type set to a fraud claim. The first update's event is
/// delivered (and decided on the first state) before the second update is
/// made. Returns the ticket and both updates' events; tries again with a
/// new ticket when the box is too slow to keep them in one second.
async fn two_updates_in_one_second(s: &Stack, secret: &str) -> (u64, Value, Value) {
    loop {
        let id = s
            .create_ticket("Card payment query", "standard", None)
            .await;
        start_of_a_second().await;
        let put = Instant::now();
        s.zendesk(
            Method::PUT,
            &format!("/api/v2/tickets/{id}.json"),
            Some(json!({"ticket": {"tags": ["first"], "status": "open"}})),
        )
        .await;
        let first = state_event(
            s,
            id,
            "tags_changed",
            json!({"previous": [], "current": ["first"]}),
        )
        .await;
        let (status, answer) = deliver(s, secret, &first).await;
        assert_eq!(status, 200, "{answer}");
        // Recorded now (or already, by a poll that came first).
        let recorded =
            answer["accepted"].as_u64().unwrap_or(0) + answer["duplicates"].as_u64().unwrap_or(0);
        assert_eq!(recorded, 1, "the first update: {answer}");
        tokio::time::sleep(Duration::from_millis(300).saturating_sub(put.elapsed())).await;
        s.zendesk(
            Method::PUT,
            &format!("/api/v2/tickets/{id}.json"),
            Some(json!({"ticket": {
                "custom_fields": [{"id": DISPUTE_TYPE, "value": "fraud_claim"}]
            }})),
        )
        .await;
        let second = state_event(
            s,
            id,
            "custom_field_changed",
            json!({"custom_field": {"id": DISPUTE_TYPE, "title": "Dispute type",
                   "field_type": "tagger"}, "previous": null, "current": "fraud_claim"}),
        )
        .await;
        if first["detail"]["updated_at"] == second["detail"]["updated_at"] {
            return (id, first, second);
        }
    }
}

/// Red team F2. The second of two updates in one second used to be
/// answered as a duplicate of the first (same state key, and the kept read
/// of that second showed the first state), so the fraud hand-off never
/// fired. Now the key carries the state's hash: the hand-off is written
/// once, and delivering every event again (in both orders) changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_updates_in_one_second_are_both_decided_once() {
    let (secret_file, secret) = own_secret("same-second");
    let extra = format!(
        "[webhook]\nsecret_file = \"{}\"\ntolerance_secs = 300\n\n{NO_POLLING}",
        secret_file.display()
    );
    let s = Stack::start_with("trust-same-second", &extra, false).await;
    let fraud_ops = group_id(&s, "Fraud Operations").await;
    let (id, first, second) = two_updates_in_one_second(&s, &secret).await;
    let (status, answer) = deliver(&s, &secret, &second).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1, "the second update is news: {answer}");
    // Zendesk delivers every event again, in both orders: all duplicates.
    for payload in [&first, &second, &second, &first] {
        let (status, answer) = deliver(&s, &secret, payload).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], 0, "redelivered: {answer}");
        assert_eq!(answer["duplicates"], 1, "redelivered: {answer}");
    }
    wait_for("the fraud hand-off", Duration::from_secs(30), || async {
        !s.private_notes(id).await.is_empty()
    })
    .await;
    s.drained(Duration::from_secs(30)).await;
    let notes = s.private_notes(id).await;
    assert_eq!(notes.len(), 1, "the hand-off is written once: {notes:?}");
    let t = ticket(&s, id).await;
    assert_eq!(t["group_id"], fraud_ops);
    assert_eq!(t["custom_status_id"], PENDING_RISK_REVIEW);
}

/// Red team F2, the webhook of the second update lost: the poller sees
/// the final state, in the same second as the state the webhook recorded,
/// and decides it (it used to be a duplicate of the first): the hand-off
/// is written once, and later polls add nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_decides_the_second_update_of_a_second() {
    let (secret_file, secret) = own_secret("same-second-poll");
    let extra = format!(
        "[webhook]\nsecret_file = \"{}\"\ntolerance_secs = 300\n\n\
         [poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 0\n",
        secret_file.display()
    );
    let s = Stack::start_with("trust-same-second-poll", &extra, false).await;
    let (id, _, _) = two_updates_in_one_second(&s, &secret).await;
    wait_for("the fraud hand-off", Duration::from_secs(60), || async {
        !s.private_notes(id).await.is_empty()
    })
    .await;
    s.drained(Duration::from_secs(30)).await;
    // A few more polls: still one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.drained(Duration::from_secs(30)).await;
    assert_eq!(s.private_notes(id).await.len(), 1);
}

/// Red team F9. A signed webhook for a ticket that no longer exists
/// (deleted or merged: the API answers 404) used to be a 503 forever, so
/// Zendesk retried it and counted it toward its circuit breaker. Now it is
/// a 200 that says why, nothing recorded, counted as rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_for_a_deleted_ticket_is_answered_and_skipped() {
    let (secret_file, secret) = own_secret("gone");
    let extra = format!(
        "[webhook]\nsecret_file = \"{}\"\ntolerance_secs = 300\n\n{NO_POLLING}",
        secret_file.display()
    );
    let s = Stack::start_with("trust-gone", &extra, false).await;
    let id = s.create_ticket("Soon deleted", "standard", None).await;
    let event = state_event(
        &s,
        id,
        "status_changed",
        json!({"previous": "NEW", "current": "OPEN"}),
    )
    .await;
    let deleted = s
        .http
        .delete(format!("{}/api/v2/tickets/{id}.json", s.zendesk))
        .bearer_auth(stack::DEV_TOKEN)
        .send()
        .await
        .expect("deleted");
    assert_eq!(deleted.status().as_u16(), 204);
    for _ in 0..2 {
        let (status, answer) = deliver(&s, &secret, &event).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer,
            json!({"accepted": 0, "duplicates": 0, "actions": 0, "skipped": "ticket_not_found"})
        );
    }
    let m = s.metrics().await;
    assert_eq!(
        counter(
            &m,
            r#"l3map_events_rejected_total{source="webhook",reason="ticket_not_found"}"#
        ),
        2,
        "{m}"
    );
    assert_eq!(counter(&m, r#"l3map_events_total{source="webhook"}"#), 0);
}
