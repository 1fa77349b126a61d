//! `l3map run --config` against `l3map emulate`: two real processes over
//! 127.0.0.1, configured as a user configures them.

use crate::common;

use common::stack;
use common::wait_for;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use stack::{Stack, WEBHOOK_SECRET};
use std::time::{Duration, Instant};

/// A ticket created on Zendesk reaches the runtime by signed webhook and
/// the escalation's writes appear on Zendesk within 5 s: the private
/// hand-off note and the reassignment, in one update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ticket_is_handed_off_within_five_seconds() {
    let s = Stack::start("webhook", "").await;
    let started = Instant::now();
    let id = s
        .create_ticket(
            "Card charged twice in Lisbon",
            "standard",
            Some("fraud_claim"),
        )
        .await;
    wait_for("the hand-off note", Duration::from_secs(5), || async {
        !s.private_notes(id).await.is_empty()
    })
    .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let notes = s.private_notes(id).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("AI hand-off: Customer reports an unauthorised transaction"),
        "{}",
        notes[0]
    );
    let t = s
        .zendesk(Method::GET, &format!("/api/v2/tickets/{id}.json"), None)
        .await;
    let groups = s.zendesk(Method::GET, "/api/v2/groups.json", None).await;
    let fraud_ops = groups["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == "Fraud Operations"))
        .map(|g| g["id"].clone())
        .expect("the group");
    assert_eq!(t["ticket"]["group_id"], fraud_ops);
    s.drained(Duration::from_secs(5)).await;
    let m = s.metrics().await;
    assert!(
        m.contains(r#"l3map_actions_total{kind="comment",result="applied"} 1"#),
        "{m}"
    );
    assert!(
        counted(&m, r#"l3map_events_total{source="webhook"}"#),
        "{m}"
    );
}

/// Whether `series` (name and labels, as exposed) counted anything: since
/// known series exist at 0 from the start, being present is not enough.
fn counted(metrics: &str, series: &str) -> bool {
    metrics.lines().any(|l| {
        l.strip_prefix(series)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| v > 0.0)
    })
}

fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A delivery with a wrong signature, none, or an old timestamp (a replay
/// of a delivery that was valid once) gets 401 with a JSON reason, and
/// records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_webhooks_are_refused_and_change_nothing() {
    // Polling off: the event count below moves only by webhooks.
    let s = Stack::start(
        "forged",
        "[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n",
    )
    .await;
    let before = s.health().await["outbox"].clone();
    let body = serde_json::to_vec(&json!({
        "type": "zen:event-type:ticket.created",
        "id": "forged-1",
        "time": "2026-11-25T10:00:00Z",
        "account_id": 12514403,
        "detail": {"id": "4211", "status": "OPEN"},
        "event": {}
    }))
    .expect("json");
    let now = jiff::Timestamp::now().to_string();
    let old = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600)).to_string();
    let post = |sig: Option<String>, ts: Option<String>| {
        let mut req = s
            .http
            .post(format!("{}/webhooks/zendesk", s.runtime))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(sig) = sig {
            req = req.header("x-zendesk-webhook-signature", sig);
        }
        if let Some(ts) = ts {
            req = req.header("x-zendesk-webhook-signature-timestamp", ts);
        }
        req.send()
    };
    let cases = [
        (
            Some(sign("not-the-secret", &now, &body)),
            Some(now.clone()),
            "bad_signature",
        ),
        (None, None, "unsigned"),
        (
            Some(sign(WEBHOOK_SECRET, &old, &body)),
            Some(old.clone()),
            "replayed",
        ),
        // Signed for another timestamp than the one sent.
        (
            Some(sign(WEBHOOK_SECRET, &old, &body)),
            Some(now.clone()),
            "bad_signature",
        ),
    ];
    for (sig, ts, reason) in cases {
        let resp = post(sig, ts).await.expect("answer");
        assert_eq!(resp.status(), 401, "{reason}");
        let v: Value = resp.json().await.expect("json body");
        assert_eq!(v["error"], reason);
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The same body, correctly signed now, is accepted: the refusals were
    // about the signature, not the payload.
    let ok = post(Some(sign(WEBHOOK_SECRET, &now, &body)), Some(now.clone()))
        .await
        .expect("answer");
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap_or_default());
    let after = s.health().await["outbox"].clone();
    assert_eq!(after["events"], before["events"].as_u64().unwrap_or(0) + 1);
    let m = s.metrics().await;
    for reason in ["bad_signature", "unsigned", "replayed"] {
        assert!(
            counted(
                &m,
                &format!(r#"l3map_events_rejected_total{{source="webhook",reason="{reason}"}}"#)
            ),
            "{reason}: {m}"
        );
    }
    assert!(!s.log().contains(WEBHOOK_SECRET), "the secret was logged");
}

/// An edit to a mapping file takes effect while the runtime serves: the
/// next hand-off carries the new text and the audit trail names the new
/// revision. A broken edit is refused and the previous version keeps
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_edits_reload_live_and_broken_ones_are_refused() {
    let s = Stack::start("reload", "").await;
    let first = s.health().await["revision"]
        .as_str()
        .expect("rev")
        .to_string();
    let file = s.mappings().join("escalations.l3map");
    let text = std::fs::read_to_string(&file).expect("read");
    let edited = text.replace(
        "Customer reports an unauthorised transaction",
        "Customer reports a card transaction they did not make",
    );
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).expect("edit");
    let revision = || async {
        s.health().await["revision"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    wait_for("the new revision", Duration::from_secs(10), || async {
        revision().await != first
    })
    .await;
    let second = revision().await;

    let id = s
        .create_ticket("Unknown charge", "standard", Some("fraud_claim"))
        .await;
    wait_for(
        "the hand-off note after the reload",
        Duration::from_secs(5),
        || async { !s.private_notes(id).await.is_empty() },
    )
    .await;
    let notes = s.private_notes(id).await;
    assert!(
        notes[0].contains("a card transaction they did not make"),
        "{notes:?}"
    );
    s.drained(Duration::from_secs(5)).await;
    let audit = std::process::Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["outbox", "list", "--format", "json", "--state"])
        .arg(s.state())
        .output()
        .expect("outbox list");
    let rows: Value = serde_json::from_slice(&audit.stdout).expect("json");
    let for_ticket: Vec<&Value> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["record"].as_str() == Some(id.to_string().as_str()))
        .collect();
    assert!(!for_ticket.is_empty());
    assert!(for_ticket.iter().all(|r| r["revision"] == second.as_str()));

    // Broken: an escalation naming a status that does not exist.
    std::fs::write(
        &file,
        edited.replace(
            "status  desk pending_risk_review",
            "status  desk no_such_status",
        ),
    )
    .expect("break");
    wait_for(
        "the refused reload in the log",
        Duration::from_secs(10),
        || async { s.log().contains("do not compile") },
    )
    .await;
    assert_eq!(revision().await, second, "the old revision keeps serving");
    assert!(
        s.log().contains("no_such_status"),
        "the diagnostics are shown"
    );
    let id = s
        .create_ticket("Another unknown charge", "standard", Some("fraud_claim"))
        .await;
    wait_for("the hand-off note", Duration::from_secs(5), || async {
        !s.private_notes(id).await.is_empty()
    })
    .await;
    let m = s.metrics().await;
    assert!(m.contains(r#"l3map_reloads_total{result="ok"} 1"#), "{m}");
    assert!(
        counted(&m, r#"l3map_reloads_total{result="failed"}"#),
        "{m}"
    );
}

/// `kill -9` in the middle of a burst, then a restart: every ticket of the
/// burst ends with exactly one hand-off note. Events accepted before the
/// kill are in the store; actions in flight come back unconfirmed and are
/// read back before anything is sent again; changes whose webhooks failed
/// while the runtime was down are found by the polling fallback from its
/// persisted cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_a_burst_loses_nothing_and_doubles_nothing() {
    let mut s = Stack::start(
        "kill",
        "[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 0\n",
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..24 {
        if n == 8 {
            s.kill_runtime();
        }
        if n == 16 {
            s.start_runtime().await;
        }
        ids.push(
            s.create_ticket(
                &format!("Disputed charge {n}"),
                "standard",
                Some("fraud_claim"),
            )
            .await,
        );
    }
    let notes = |id: u64| {
        let s = &s;
        async move { s.private_notes(id).await }
    };
    wait_for(
        "a hand-off note on every ticket",
        Duration::from_secs(30),
        || async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for id in &ids {
                if notes(*id).await.is_empty() {
                    return false;
                }
            }
            true
        },
    )
    .await;
    s.drained(Duration::from_secs(10)).await;
    // A poll round after the drain must not add a second note anywhere.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.drained(Duration::from_secs(10)).await;
    for id in &ids {
        let n = notes(*id).await;
        assert_eq!(n.len(), 1, "ticket {id}: {n:?}\n{}", s.log());
    }
    let dead = s.health().await["outbox"]["dead"].clone();
    assert_eq!(dead, 0);
}

/// Polling mode: no webhooks accepted, the same scenario arrives through
/// the Zendesk incremental export and is handed off once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_processes_the_same_scenario() {
    let s = Stack::start_with(
        "polling",
        "[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 0\n",
        false,
    )
    .await;
    let id = s
        .create_ticket("Charge I do not recognise", "standard", Some("fraud_claim"))
        .await;
    wait_for("the hand-off note", Duration::from_secs(15), || async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        !s.private_notes(id).await.is_empty()
    })
    .await;
    s.drained(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.drained(Duration::from_secs(5)).await;
    let notes = s.private_notes(id).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let m = s.metrics().await;
    assert!(
        counted(&m, r#"l3map_events_total{source="zendesk_poll"}"#),
        "{m}"
    );
    assert!(
        !counted(&m, r#"l3map_events_total{source="webhook"}"#),
        "{m}"
    );
}

/// SIGTERM: the runtime stops taking work, finishes what is in flight and
/// exits 0; what it had not started is applied after the next start, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_a_restart_finishes_the_rest() {
    let mut s = Stack::start("sigterm", "").await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(
            s.create_ticket(&format!("Chargeback {n}"), "standard", Some("fraud_claim"))
                .await,
        );
    }
    let started = Instant::now();
    let status = s.terminate_runtime();
    assert!(status.success(), "{status:?}\n{}", s.log());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(s.log().contains("shutting down"), "{}", s.log());
    s.start_runtime().await;
    wait_for(
        "a hand-off note on every ticket after the restart",
        Duration::from_secs(20),
        || async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            for id in &ids {
                if s.private_notes(*id).await.is_empty() {
                    return false;
                }
            }
            true
        },
    )
    .await;
    s.drained(Duration::from_secs(10)).await;
    for id in &ids {
        assert_eq!(s.private_notes(*id).await.len(), 1, "ticket {id}");
    }
}
