//! Salesforce's concurrent-request cap is the fleet's (issue 18): two
//! replicas of the real binary, each with `max_concurrent = 2` for the
//! Salesforce connection, answer agent turns that each read Salesforce,
//! all at once, against a Salesforce emulator slow enough for requests to
//! overlap. Counted on the emulator's side: never more than 2 API requests
//! in flight, where each replica capping its own would allow 4.

use crate::common::stack::{Stack, AGENT_TOKEN};
use crate::fleet::{logs, start_edited};
use serde_json::{json, Value};

/// The ticket <-> Case link of docs/LANGUAGE.md: each ticket's Case is a
/// lookup of its own (the organization's Account would be cached).
const CASE_LINK: &str = r#"
fields crm {
  Case.Zendesk_Ticket_Id__c  string  external_id unique  "Zendesk ticket"
}

link desk.ticket <-> crm.Case {
  on ticket.id == Case.Zendesk_Ticket_Id__c
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_salesforce_concurrency_cap() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_permits") else {
        return;
    };
    let s = Stack::fleet_with(
        "fleet-permits",
        "[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n",
        &url,
        &[("case_link.l3map", CASE_LINK)],
        100_000,
        &["--latency-ms", "250"],
    );
    // Replica 2's configuration is copied from replica 1's, edited already.
    let capped = |t: String| {
        if t.contains("max_concurrent = 2") {
            return t;
        }
        let at = t.find("[connections.crm]").expect("the crm override");
        let end = at + t[at..].find('\n').unwrap() + 1;
        let line_end = end + t[end..].find('\n').unwrap() + 1;
        format!("{}max_concurrent = 2\n{}", &t[..line_end], &t[line_end..])
    };
    let replicas = [
        start_edited(&s, 1, capped).await,
        start_edited(&s, 2, capped).await,
    ];
    let created = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/tickets",
            Some(json!({"count": 24, "ticket": {"subject": "Card declined", "status": "open"}})),
        )
        .await;
    let tickets: Vec<u64> = created["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let http = reqwest::Client::new();
    let _ = http
        .delete(format!("{}/__l3map/stats", s.salesforce))
        .send()
        .await;
    let turns = tickets.iter().enumerate().map(|(i, t)| {
        let (http, url) = (http.clone(), replicas[i % 2].url.clone());
        async move {
            let r = http
                .post(format!("{url}/v1/turns"))
                .bearer_auth(AGENT_TOKEN)
                .json(&json!({"ticket": t, "intent": "question", "summary": "Where is my card?"}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap_or_default();
            (status, v)
        }
    });
    for (status, v) in futures_util::future::join_all(turns).await {
        assert_eq!(status, 200, "{v}\n{}", logs(&s));
        assert!(
            v["linked"]["misses"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["object"] == "Case")),
            "each turn looked its Case up: {v}"
        );
    }
    let stats: Value = http
        .get(format!("{}/__l3map/stats", s.salesforce))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let peak = stats["api_peak_in_flight"].as_u64().unwrap();
    // At most the fleet's cap; and the cap was reached, so two replicas
    // capping two each (four) would have shown.
    assert!(
        peak <= 2,
        "{peak} Salesforce API requests in flight at once: {stats}"
    );
    assert_eq!(peak, 2, "the turns never overlapped: {stats}");
    for mut r in replicas {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}
