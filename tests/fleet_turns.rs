//! An agent's retry behind a load balancer (issue 18): the same turn id
//! sent to another replica of the fleet gets the answer the first replica
//! gave (its hand-off included), and the same turn id with another body is
//! refused on any replica; the hand-off is written once.

use crate::common::stack::{Stack, AGENT_TOKEN};
use crate::fleet::{logs, start};
use serde_json::{json, Value};

async fn turn(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/turns"))
        .bearer_auth(AGENT_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_turn_on_another_replica_gets_the_first_answer() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_turns") else {
        return;
    };
    let s = Stack::fleet(
        "fleet-turns",
        "[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n",
        &url,
    );
    let (mut a, mut b) = (start(&s, 1).await, start(&s, 2).await);
    let ticket = s.create_ticket("Card used abroad", "standard", None).await;
    let body = json!({"turn_id": "retry-1", "ticket": ticket, "intent": "fraud_report",
                      "summary": "I did not make this payment"});
    let (status, first) = turn(&a.url, &body).await;
    assert_eq!(status, 200, "{first}\n{}", logs(&s));
    assert!(first["handoff_comment"].is_string(), "{first}");
    // The agent's retry lands on the other replica.
    let (status, again) = turn(&b.url, &body).await;
    assert_eq!(status, 200, "{again}\n{}", logs(&s));
    assert_eq!(again["duplicate"], true, "{again}");
    for field in ["handoff_comment", "accepted", "revision", "turn"] {
        assert_eq!(again[field], first[field], "{field}: {again}");
    }
    // The same turn id for another turn: refused there too.
    let other = json!({"turn_id": "retry-1", "ticket": ticket, "intent": "question",
                       "summary": "Something else"});
    let (status, refused) = turn(&b.url, &other).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "turn_id_reused", "{refused}");
    s.drained(std::time::Duration::from_secs(20)).await;
    assert_eq!(s.private_notes(ticket).await.len(), 1, "one hand-off note");
    for r in [&mut a, &mut b] {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}
