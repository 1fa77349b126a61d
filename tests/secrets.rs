//! No credential ever leaves in what l3map writes (issue 6). Two real
//! processes (`l3map emulate`, `l3map run --config`) are driven through
//! the paths where a secret could leak: signed and forged webhooks, agent
//! calls with the right and a wrong token, upstream errors, the outbox
//! command. Then every log, answer, metric and report they produced, and
//! every snapshot and doc in the repository, is searched for each token
//! the suite uses.

use crate::common;

use common::stack;

use reqwest::Method;
use serde_json::json;
use stack::{Stack, AGENT_TOKEN, DEV_TOKEN, WEBHOOK_SECRET};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Every credential the test suite and the embedded default use.
const SECRETS: &[&str] = &[
    DEV_TOKEN,
    WEBHOOK_SECRET,
    AGENT_TOKEN,
    "l3map-emulator-secret",
    "l3map-emulator-refresh",
    "l3map-dev-client-secret",
    "l3map-demo-agent-token",
    "agent-api-test-token-6f1c2a9b",
    "another-agent-token",
    // What an attacker sent as a token: not echoed either.
    "stolen-token-7e1d",
];

fn leaks(what: &str, text: &str) -> Vec<String> {
    SECRETS
        .iter()
        .filter(|s| text.contains(*s))
        .map(|s| format!("{what} contains {s:?}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_appears_in_logs_answers_metrics_or_reports() {
    let mut s = Stack::start(
        "secrets",
        "[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 0\n",
    )
    .await;
    let mut answers = String::new();
    // A ticket by webhook, handed off.
    let t = s
        .zendesk(
            Method::POST,
            "/api/v2/tickets.json",
            Some(
                json!({"ticket": {"subject": "Card stolen", "comment": {"body": "stolen"},
                "custom_fields": [{"id": 360001238, "value": "fraud_claim"}]}}),
            ),
        )
        .await;
    let id = t["ticket"]["id"].as_u64().expect("id");
    // Agent calls: right token, wrong token, no token, a Bearer with junk.
    for token in [Some(AGENT_TOKEN), Some("stolen-token-7e1d"), None] {
        let mut req = s.http.post(format!("{}/v1/turns", s.runtime)).json(
            &json!({"ticket": id, "intent": "refund", "summary": "refund please",
                "refund_amount": {"amount": "500.00", "currency": "USD"}}),
        );
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("answered");
        answers.push_str(&r.text().await.unwrap_or_default());
        let r = s
            .http
            .get(format!("{}/v1/context/{id}", s.runtime))
            .bearer_auth(token.unwrap_or("x"))
            .send()
            .await
            .expect("answered");
        answers.push_str(&r.text().await.unwrap_or_default());
    }
    // A forged webhook signed with the attacker's token as secret, and a
    // turn on a ticket that does not exist (an upstream 404).
    let r = s
        .http
        .post(format!("{}/webhooks/zendesk", s.runtime))
        .header("x-zendesk-webhook-signature", "c3RvbGVu")
        .header(
            "x-zendesk-webhook-signature-timestamp",
            "2026-01-01T00:00:00Z",
        )
        .body("{}")
        .send()
        .await
        .expect("answered");
    answers.push_str(&r.text().await.unwrap_or_default());
    let r = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(&json!({"ticket": 999_999, "intent": "refund"}))
        .send()
        .await
        .expect("answered");
    answers.push_str(&r.text().await.unwrap_or_default());
    s.drained(Duration::from_secs(20)).await;
    answers.push_str(&s.metrics().await);
    answers.push_str(&s.health().await.to_string());
    // The outbox command's human and JSON reports.
    for format in ["human", "json"] {
        let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
            .args(["outbox", "list", "--format", format, "--state"])
            .arg(s.state())
            .output()
            .expect("l3map outbox");
        answers.push_str(&String::from_utf8_lossy(&out.stdout));
        answers.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // `auth status` (plaintext columns only) and a refused `auth login`
    // (this stack's desk signs in with a fixed token).
    for args in [
        &["auth", "status", "--format", "human", "--config"][..],
        &["auth", "status", "--format", "json", "--config"],
        &["auth", "login", "--connection", "desk", "--config"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
            .args(args)
            .arg(s.dir.join("l3map.toml"))
            .env("ZENDESK_OAUTH_TOKEN", DEV_TOKEN)
            .output()
            .expect("l3map auth");
        answers.push_str(&String::from_utf8_lossy(&out.stdout));
        answers.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // A start refused for a missing secret names the variable, not a value.
    s.kill_runtime();
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["run", "--config"])
        .arg(s.dir.join("l3map.toml"))
        .env("ZENDESK_OAUTH_TOKEN", DEV_TOKEN)
        .env_remove("SF_CLIENT_ID")
        .env("L3MAP_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("L3MAP_AGENT_TOKEN", AGENT_TOKEN)
        .output()
        .expect("l3map run");
    assert_ne!(out.status.code(), Some(0));
    answers.push_str(&String::from_utf8_lossy(&out.stderr));

    let mut found = leaks("the answers, metrics and reports", &answers);
    for file in ["run.log", "emulate.log", "emulate.out"] {
        let text = std::fs::read_to_string(s.dir.join(file)).unwrap_or_default();
        assert!(
            file != "run.log" || text.contains("applied"),
            "the runtime's log was captured: {text}"
        );
        found.extend(leaks(file, &text));
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// Snapshots (what the suite's runs wrote down) and the mappings are
/// checked in: none may hold a credential the suite uses. The docs are not
/// scanned: they give the emulators' local development credentials on
/// purpose, so a reader can try the API by hand.
#[test]
fn no_credential_appears_in_snapshots_or_mappings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    let mut stack = vec![root.join("tests/snapshots"), root.join("mappings")];
    let mut files = 0;
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).expect("readable").flatten() {
                stack.push(e.path());
            }
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            files += 1;
            found.extend(leaks(&p.display().to_string(), &text));
        }
    }
    assert!(files > 100, "scanned {files} files");
    assert!(found.is_empty(), "{found:#?}");
}
