//! The agent API in-process: the runtime's router on 127.0.0.1 with an
//! engine, a store and a worker per connection, talking to the Zendesk and
//! Salesforce emulators seeded from mappings/fintech. What the agent is
//! told is checked against what the emulators end up holding.

use crate::common;

use common::rig::{fintech, Emulators, Rig};
use l3map::connectors::zendesk::{Credentials, ZendeskClient, ZendeskConfig};
use l3map::connectors::Secret;
use l3map::runtime::server::App;
use l3map::runtime::store::Stats;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "agent-api-test-token-6f1c2a9b";
const AGENT: &str = "support-bot";

/// Seeded by the emulator from the fintech mappings.
const REFUND_TICKET: u64 = 4211; // in_progress, premium
const FRAUD_TICKET: u64 = 4213; // open
const ENTERPRISE_TICKET: u64 = 4214; // open, enterprise
const NEW_TICKET: u64 = 5105; // new
const SLA_TIER: u64 = 360001234;

/// The in-process rig ([`common::rig`]) with the agent API served on it,
/// its outbox applied by a worker per connection.
struct Api {
    rig: Rig,
    base: String,
    http: reqwest::Client,
    app: Arc<App>,
}

impl std::ops::Deref for Api {
    type Target = Rig;
    fn deref(&self) -> &Rig {
        &self.rig
    }
}

impl std::ops::DerefMut for Api {
    fn deref_mut(&mut self) -> &mut Rig {
        &mut self.rig
    }
}

async fn rig() -> Api {
    // The emulator's window is generous: these tests are about the API,
    // not Zendesk's rate limit (tests/zendesk.rs covers that).
    let mut rig = Rig::start(Emulators::start(fintech(), Some(100_000)).await).await;
    rig.start_workers(8, 4);
    let app = Arc::new(App {
        agents: vec![
            ("other-bot".to_string(), Secret::new("another-agent-token")),
            (AGENT.to_string(), Secret::new(TOKEN)),
        ],
        ..rig.app()
    });
    let base = rig.serve(app.clone()).await;
    Api {
        rig,
        base,
        http: reqwest::Client::new(),
        app,
    }
}

impl Api {
    async fn post_raw(&self, body: impl Into<reqwest::Body>, token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/v1/turns", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a body");
        let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
        (status, v)
    }

    async fn turn(&self, body: &Value) -> (u16, Value) {
        self.post_raw(body.to_string(), Some(TOKEN)).await
    }

    async fn context(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}/v1/context/{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("the API answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON"))
    }

    async fn stats(&self) -> Stats {
        let store = self.engine.store.clone();
        tokio::task::spawn_blocking(move || store.stats())
            .await
            .expect("task")
            .expect("stats")
    }

    /// Until the outbox has nothing pending or in flight, at most 10 s.
    async fn drained(&self) -> Stats {
        common::eventually("the outbox to drain", Duration::from_secs(10), || async {
            let s = self.stats().await;
            if s.pending + s.sending == 0 {
                Ok(s)
            } else {
                Err(format!("{s:?}"))
            }
        })
        .await
    }

    fn case_id(&self) -> String {
        self.emulators.sf.records("Case")[0]["Id"]
            .as_str()
            .expect("a seeded Case")
            .to_string()
    }

    fn zd_writes(&self, ticket: u64) -> u32 {
        self.emulators
            .zd
            .requests(&format!("PUT /api/v2/tickets/{ticket}.json"))
    }
}

fn refund_turn(turn_id: &str, case: &str) -> Value {
    json!({
        "turn_id": turn_id,
        "ticket": REFUND_TICKET,
        "case": case,
        "intent": "refund",
        "summary": "Wants a refund for order 1182",
        "attempts": ["looked up order 1182", "offered store credit"],
        "sentiment": "negative",
        "refund_amount": {"amount": "250.00", "currency": "USD"},
        "confidence": 0.8,
        "language": "en",
        "order_id": "1182"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forbidden_transition_is_refused_and_nothing_is_written() {
    let rig = rig().await;
    let before = rig.emulators.zd.ticket(NEW_TICKET).expect("seeded");
    let (status, v) = rig
        .turn(&json!({"turn_id": "close-1", "ticket": NEW_TICKET, "intent": "question",
                      "summary": "Asked to close the ticket right away", "requested_status": "closed"}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["turn"], format!("agent:{AGENT}:close-1"));
    assert_eq!(v["duplicate"], false);
    assert_eq!(v["ticket"], json!({"id": NEW_TICKET, "status": "new"}));
    assert_eq!(v["accepted"], json!([]));
    assert_eq!(v["queued"], 0);
    assert_eq!(v["handoff_comment"], Value::Null);
    let refused = v["refused"].as_array().expect("refusals");
    assert_eq!(refused.len(), 1, "{v}");
    assert_eq!(refused[0]["what"], "status new -> closed");
    let reason = refused[0]["reason"].as_str().unwrap();
    assert!(reason.contains("new -> closed"), "{reason}");
    assert!(v["revision"].as_str().is_some_and(|r| r.len() == 16));
    // Recorded (the audit keeps the refusal), nothing queued, nothing sent.
    let s = rig.drained().await;
    assert_eq!((s.events, s.done, s.dead), (1, 0, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.emulators.zd.ticket(NEW_TICKET).unwrap(), before);
    assert!(rig.emulators.zd.comments(NEW_TICKET).is_empty());
    assert_eq!(rig.zd_writes(NEW_TICKET), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_over_the_threshold_is_handed_off_on_both_systems() {
    let rig = rig().await;
    let case = rig.case_id();
    let (status, v) = rig.turn(&refund_turn("refund-1", &case)).await;
    assert_eq!(status, 200, "{v}");
    let accepted = v["accepted"].as_array().expect("actions");
    let kinds: Vec<&str> = accepted
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for k in ["comment", "set_field", "assign_group", "set_status"] {
        assert!(kinds.contains(&k), "{k} missing: {v}");
    }
    for a in accepted {
        assert_eq!(a["rule"], "escalation refund_over_threshold", "{a}");
        let source = a["source"].as_str().expect("source");
        assert!(source.contains("escalations.l3map:"), "{source}");
        assert!(a["record"].is_object() && a["idempotency_key"].is_string());
    }
    assert_eq!(v["queued"].as_u64(), Some(accepted.len() as u64));
    let handoff = v["handoff_comment"].as_str().expect("a hand-off comment");
    assert!(handoff.starts_with(
        "AI hand-off: Customer is requesting a refund above the $200 pre-authorised threshold"
    ));
    assert!(handoff.contains("What the AI tried: looked up order 1182; offered store credit"));
    assert!(handoff.contains("SLA tier: premium"), "{handoff}");

    let s = rig.drained().await;
    assert_eq!(s.dead, 0, "{s:?}");
    assert_eq!(s.done as usize, accepted.len());
    // Zendesk: the private comment, the group and the status.
    let comments = rig.emulators.zd.comments(REFUND_TICKET);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0]["body"], handoff);
    assert_eq!(comments[0]["public"], false);
    let t = rig.emulators.zd.ticket(REFUND_TICKET).unwrap();
    assert_eq!(
        t["group_id"].as_u64(),
        rig.emulators.zd.group_id("Payments Tier 2"),
        "{t}"
    );
    // Salesforce: the internal CaseComment and the hand-off reason.
    let case_comments: Vec<Value> = rig
        .emulators
        .sf
        .records("CaseComment")
        .into_iter()
        .filter(|c| c["ParentId"] == case.as_str())
        .map(Value::Object)
        .collect();
    assert_eq!(case_comments.len(), 1, "{case_comments:?}");
    assert_eq!(case_comments[0]["CommentBody"], handoff);
    assert_eq!(case_comments[0]["IsPublished"], false);
    let record = rig.emulators.sf.record("Case", &case).expect("the Case");
    assert_eq!(record["AI_Handoff_Reason__c"], "refund_threshold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_or_missing_tokens_are_refused_without_echoing_them() {
    let mut rig = rig().await;
    let body = json!({"ticket": FRAUD_TICKET, "intent": "question"}).to_string();
    let wrong = "not-the-token-7d3e91";
    for token in [Some(wrong), None, Some(""), Some(&TOKEN[..TOKEN.len() - 1])] {
        let mut req = rig
            .http
            .post(format!("{}/v1/turns", rig.base))
            .body(body.clone());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{token:?}");
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let text = resp.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["error"], "unauthorized");
        assert!(v["message"].is_string());
        assert!(!text.contains(wrong) && !text.contains(TOKEN), "{text}");
    }
    // Another scheme is not a bearer token, even with the right value.
    let resp = rig
        .http
        .get(format!("{}/v1/context/{FRAUD_TICKET}", rig.base))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(TOKEN), "{text}");
    // The second agent's token is as good as the first's.
    let (status, v) = rig
        .post_raw(body.clone(), Some("another-agent-token"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["turn"].as_str().unwrap().starts_with("agent:other-bot:"));
    // Nothing refused was recorded; nothing reached Zendesk for it.
    assert_eq!(rig.stats().await.events, 1);

    // With no agents configured, every request is refused and says how to
    // configure one.
    let closed = Arc::new(App {
        engine: rig.app.engine.clone(),
        webhook_secret: None,
        tolerance: Duration::from_secs(300),
        agents: vec![],
        agent_policy: Default::default(),
        zendesk: rig.app.zendesk.clone(),
        salesforce: rig.app.salesforce.clone(),
        resolver: Default::default(),
        probes: Default::default(),
        console: Default::default(),
    });
    let base = rig.serve(closed).await;
    let resp = rig
        .http
        .post(format!("{base}/v1/turns"))
        .bearer_auth(TOKEN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("[agents.NAME]"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_turn_is_a_duplicate_and_writes_nothing_new() {
    let rig = rig().await;
    let turn = json!({"turn_id": "angry-1", "ticket": ENTERPRISE_TICKET, "intent": "question",
                      "summary": "Third time asking", "attempts": ["apologised"], "sentiment": "angry"});
    let (status, first) = rig.turn(&turn).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["duplicate"], false);
    assert!(first["queued"].as_u64().unwrap() > 0, "{first}");
    let s = rig.drained().await;
    let comments = rig.emulators.zd.comments(ENTERPRISE_TICKET).len();
    let (writes, reads) = (
        rig.zd_writes(ENTERPRISE_TICKET),
        rig.emulators
            .zd
            .requests(&format!("GET /api/v2/tickets/{ENTERPRISE_TICKET}.json")),
    );
    assert_eq!(comments, 1);

    // The same turn again, spaced differently: the first answer, marked as
    // a duplicate, with no Zendesk read and nothing recorded or sent.
    let respaced = serde_json::to_string_pretty(&turn).unwrap();
    let (status, again) = rig.post_raw(respaced, Some(TOKEN)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["turn"], first["turn"]);
    assert_eq!(again["accepted"], first["accepted"]);
    assert_eq!(again["refused"], first["refused"]);
    assert_eq!(again["handoff_comment"], first["handoff_comment"]);
    // Concurrent retries all get it too.
    let retries: Vec<_> = (0..8)
        .map(|_| {
            let (http, base, body) = (rig.http.clone(), rig.base.clone(), turn.to_string());
            tokio::spawn(async move {
                let r = http
                    .post(format!("{base}/v1/turns"))
                    .bearer_auth(TOKEN)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                r.json::<Value>().await.unwrap()
            })
        })
        .collect();
    for r in retries {
        assert_eq!(r.await.unwrap()["duplicate"], true);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rig.drained().await;
    assert_eq!((after.events, after.done), (s.events, s.done));
    assert_eq!(rig.emulators.zd.comments(ENTERPRISE_TICKET).len(), comments);
    assert_eq!(rig.zd_writes(ENTERPRISE_TICKET), writes);
    assert_eq!(
        rig.emulators
            .zd
            .requests(&format!("GET /api/v2/tickets/{ENTERPRISE_TICKET}.json")),
        reads
    );

    // The same turn id for a different turn is a mistake worth saying.
    let mut other = turn.clone();
    other["sentiment"] = json!("positive");
    let (status, v) = rig.turn(&other).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "turn_id_reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_turns_are_400_json_and_record_nothing() {
    let rig = rig().await;
    let cases: [(&str, &str, &str); 8] = [
        ("{not json", "malformed", ""),
        ("", "malformed", ""),
        ("[]", "malformed", ""),
        (
            r#"{"ticket": 4213, "intent": "question", "mood": "sad"}"#,
            "malformed",
            "mood",
        ),
        (
            r#"{"ticket": "forty-two", "intent": "x"}"#,
            "invalid",
            "ticket",
        ),
        (r#"{"ticket": 4213}"#, "malformed", "intent"),
        (
            r#"{"ticket": 4213, "intent": "refund", "refund_amount": {"amount": "2,50", "currency": "USD"}}"#,
            "invalid",
            "refund_amount.amount",
        ),
        (
            r#"{"ticket": 4213, "intent": "x", "fields": {"no_such_field": 1}}"#,
            "invalid",
            "fields.no_such_field",
        ),
    ];
    for (body, code, mentions) in cases {
        let (status, v) = rig.post_raw(body, Some(TOKEN)).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"], code, "{body}: {v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    // Too large: refused before it is read, as JSON.
    let huge = format!(
        r#"{{"ticket": 4213, "intent": "x", "summary": "{}"}}"#,
        "a".repeat(2 << 20)
    );
    let (status, v) = rig.post_raw(huge, Some(TOKEN)).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"], "too_large");
    // A ticket Zendesk does not have.
    let (status, v) = rig
        .turn(&json!({"ticket": 99_999_999u64, "intent": "question"}))
        .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"], "no_ticket");
    assert_eq!(v["message"], "no ticket 99999999");
    // The wrong method is JSON too.
    let resp = rig
        .http
        .get(format!("{}/v1/turns", rig.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );
    assert_eq!(rig.stats().await.events, 0);
    // None of the refused requests cost a Zendesk read; the one missing
    // ticket cost one.
    assert_eq!(rig.emulators.zd.total_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_fields_that_disagree_with_zendesk_are_reported_not_used() {
    let rig = rig().await;
    // The agent believes the customer is enterprise and angry: the ticket
    // says premium, so the enterprise escalation does not fire.
    let (status, v) = rig
        .turn(
            &json!({"ticket": REFUND_TICKET, "intent": "question", "sentiment": "angry",
                      "fields": {"sla_tier": "enterprise", "risk_score": null}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["accepted"], json!([]), "{v}");
    assert_eq!(
        v["stale_fields"],
        json!([{"field": "sla_tier", "agent": "enterprise", "zendesk": "premium"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_failure_is_a_502_that_names_its_kind_only() {
    let mut rig = rig().await;
    let bad_token = "zendesk-token-that-is-wrong-5b8e";
    let client = ZendeskClient::new(ZendeskConfig::new(
        rig.emulators.zendesk_url.clone(),
        Credentials::OAuth(Secret::new(bad_token)),
    ))
    .unwrap();
    let app = Arc::new(App {
        engine: rig.app.engine.clone(),
        webhook_secret: None,
        tolerance: Duration::from_secs(300),
        agents: rig.app.agents.clone(),
        agent_policy: Default::default(),
        zendesk: Some(("desk".into(), client)),
        salesforce: rig.app.salesforce.clone(),
        resolver: Default::default(),
        probes: Default::default(),
        console: Default::default(),
    });
    let base = rig.serve(app).await;
    let resp = rig
        .http
        .post(format!("{base}/v1/turns"))
        .bearer_auth(TOKEN)
        .body(json!({"ticket": FRAUD_TICKET, "intent": "question"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 502);
    let text = resp.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], "upstream_error");
    assert!(v["message"].as_str().unwrap().contains("auth"), "{v}");
    assert!(!text.contains(bad_token) && !text.contains(TOKEN), "{text}");
    assert_eq!(rig.stats().await.events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn context_comes_from_the_cache_within_the_ttl() {
    let rig = rig().await;
    let account = rig.emulators.sf.records("Account")[0].clone();
    let account_id = account["Id"].as_str().unwrap().to_string();
    let tier = account["SLA_Tier__c"].as_str().unwrap().to_string();
    assert_eq!(tier, "Ent");
    let account_reads = || rig.emulators.sf.count("GET", "/sobjects/Account/");
    let ticket_reads = || {
        rig.emulators
            .zd
            .requests(&format!("GET /api/v2/tickets/{ENTERPRISE_TICKET}.json"))
    };

    let (status, v) = rig
        .context(&format!("{ENTERPRISE_TICKET}?account={account_id}"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ticket"]["id"], ENTERPRISE_TICKET);
    assert_eq!(v["ticket"]["status"], "open");
    assert_eq!(v["ticket"]["fields"]["sla_tier"], "enterprise");
    assert_eq!(v["account"]["Id"], account_id.as_str());
    assert_eq!(v["account"]["SLA_Tier__c"], "Ent");
    assert!(v["account"]["Contract_Value__c"].is_number(), "{v}");
    assert!(v["account"].get("attributes").is_none());
    assert_eq!(v["account_as_ticket_fields"]["sla_tier"], "enterprise");
    assert_eq!(v["cached"], json!({"ticket": false, "account": false}));
    assert_eq!((account_reads(), ticket_reads()), (1, 1));

    // Within the TTL: one more Zendesk read, no Salesforce request.
    let (status, again) = rig
        .context(&format!("{ENTERPRISE_TICKET}?account={account_id}"))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["account"], v["account"]);
    assert_eq!(again["cached"]["account"], true);
    assert_eq!((account_reads(), ticket_reads()), (1, 2));

    // Without an Account, the ticket alone.
    let (status, v) = rig.context(&REFUND_TICKET.to_string()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["account"], Value::Null);
    assert_eq!(v["ticket"]["fields"]["sla_tier"], "premium");
    assert_eq!(
        rig.emulators.zd.ticket(REFUND_TICKET).unwrap()["custom_fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == SLA_TIER)
            .unwrap()["value"],
        "premium"
    );

    // Wrong input is a JSON 4xx, and costs no upstream call.
    for (path, status, code) in [
        ("abc", 400, "invalid"),
        ("-1", 400, "invalid"),
        ("4214?account=x'--", 400, "invalid"),
        ("4214?acount=001", 400, "invalid"),
        ("99999999", 404, "no_ticket"),
        ("4214?account=001000000000000AAA", 404, "no_account"),
    ] {
        let (got, v) = rig.context(path).await;
        assert_eq!(
            (got, v["error"].as_str()),
            (status, Some(code)),
            "{path}: {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_turns_are_all_answered() {
    let rig = rig().await;
    let started = Instant::now();
    let turns: Vec<_> = (0..50)
        .map(|n| {
            let (http, base) = (rig.http.clone(), rig.base.clone());
            let ticket = [FRAUD_TICKET, REFUND_TICKET, ENTERPRISE_TICKET, NEW_TICKET][n % 4];
            let body = json!({"turn_id": format!("load-{n}"), "ticket": ticket,
                              "intent": "question", "summary": format!("question {n}")});
            tokio::spawn(async move {
                let r = http
                    .post(format!("{base}/v1/turns"))
                    .bearer_auth(TOKEN)
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("answered");
                (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in turns {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["duplicate"], false);
        ids.insert(v["turn"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 50);
    assert_eq!(rig.stats().await.events, 50);
    assert!(started.elapsed() < Duration::from_secs(30));
    // Every turn was timed.
    let metrics = rig.engine.metrics.render();
    assert!(
        metrics.contains("l3map_turn_latency_seconds_count 50"),
        "{metrics}"
    );
}

/// The `json` code blocks of docs/AGENT_API.md, in order.
fn doc_json_blocks() -> Vec<Value> {
    let doc = std::fs::read_to_string(common::root().join("docs/AGENT_API.md"))
        .expect("docs/AGENT_API.md");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            None if line.trim() == "```json" => current = Some(String::new()),
            Some(body) if line.trim() == "```" => {
                out.push(serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")));
                current = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

/// The request example of the docs, sent as it is (with a Case the
/// emulator has), is answered as the response example says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_documented_example_is_answered_as_documented() {
    let rig = rig().await;
    let blocks = doc_json_blocks();
    let (mut request, documented) = (blocks[0].clone(), &blocks[1]);
    assert!(request["turn_id"].is_string() && documented["turn"].is_string());
    request["case"] = json!(rig.case_id());
    let (status, v) = rig.turn(&request).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ticket"], documented["ticket"]);
    assert_eq!(v["revision"], documented["revision"]);
    assert_eq!(v["queued"], documented["queued"]);
    assert_eq!(v["stale_fields"], documented["stale_fields"]);
    let (got, doc) = (&v["refused"][0], &documented["refused"][0]);
    assert_eq!(
        (&got["what"], &got["reason"]),
        (&doc["what"], &doc["reason"])
    );
    let tail = |s: &Value| s.as_str().unwrap().rsplit('/').next().unwrap().to_string();
    assert_eq!(tail(&got["source"]), tail(&doc["source"]));
    for shown in documented["accepted"].as_array().unwrap() {
        let found = v["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| {
                a["idempotency_key"].as_str().unwrap().split('-').nth(1)
                    == shown["idempotency_key"].as_str().unwrap().split('-').nth(1)
                    && a["action"] == shown["action"]
            })
            .unwrap_or_else(|| panic!("{shown} not answered: {v}"));
        for key in ["rule", "loc", "value", "to", "from", "kind", "body"] {
            assert_eq!(found.get(key), shown.get(key), "{key}");
        }
    }
    assert_eq!(v["handoff_comment"], v["accepted"][0]["body"]);
}

/// The error codes the API answers with are the ones the docs list.
#[test]
fn every_error_code_is_documented() {
    let doc = std::fs::read_to_string(common::root().join("docs/AGENT_API.md"))
        .expect("docs/AGENT_API.md");
    for code in [
        "unauthorized",
        "malformed",
        "invalid",
        "too_large",
        "unreadable_body",
        "no_ticket",
        "no_account",
        "turn_id_reused",
        "method_not_allowed",
        "not_configured",
        "upstream_error",
        "unavailable",
        "internal",
    ] {
        assert!(
            doc.contains(&format!("`{code}`")),
            "{code} is not in docs/AGENT_API.md"
        );
    }
    assert!(doc.contains("l3map-demo-agent-token"));
}
