//! One mapping revision across a fleet (issue 18), through the real
//! binaries: replicas with mapping folders of their own, an edit saved on
//! one, `l3map publish`, a restart with files the fleet moved on from.
//! What the agent API answers from each replica shows which revision
//! decided.

use crate::common::stack::{Stack, AGENT_TOKEN};
use crate::fleet::{logs, signal, start, start_edited, Replica};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The reason of the fraud hand-off, as mappings/fintech writes it.
const REASON: &str = "Customer reports an unauthorised transaction";

/// Replica `n`'s mappings, in `mappings-n`: a copy of the stack's the
/// first time.
fn own_mappings(s: &Stack, n: usize) -> impl Fn(String) -> String {
    let to = s.dir.join(format!("mappings-{n}"));
    if !to.exists() {
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(s.mappings()).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    move |t: String| {
        t.replace(
            "mappings = \"mappings\"",
            &format!("mappings = \"mappings-{n}\""),
        )
    }
}

/// Rewrites the fraud hand-off's reason in `dir`, as an editor saves.
fn edit_reason(dir: &Path, to: &str) {
    let path = dir.join("escalations.l3map");
    let text = std::fs::read_to_string(&path).unwrap();
    let now = text.replacen(&reason_line(&text), &format!("  reason  \"{to}\""), 1);
    assert_ne!(text, now);
    std::fs::write(&path, now).unwrap();
}

/// The `reason` line of `suspected_fraud`.
fn reason_line(text: &str) -> String {
    let from = text.find("escalation suspected_fraud").unwrap();
    text[from..]
        .lines()
        .find(|l| l.trim_start().starts_with("reason"))
        .unwrap()
        .to_string()
}

async fn revision_of(r: &Replica) -> String {
    let h: Value = reqwest::get(format!("{}/healthz", r.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    h["revision"].as_str().unwrap_or_default().to_string()
}

/// A fraud report on a new ticket, sent to replica `r`: the reason its
/// hand-off comment gives, and the revision that decided it.
async fn fraud_turn(s: &Stack, r: &Replica) -> (String, String) {
    let ticket = s.create_ticket("Card used abroad", "standard", None).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/turns", r.url))
        .bearer_auth(AGENT_TOKEN)
        .json(&json!({"ticket": ticket, "intent": "fraud_report",
                      "summary": "I did not make this payment"}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}\n{}", logs(s));
    let comment = v["handoff_comment"].as_str().unwrap_or_default();
    let reason = comment
        .lines()
        .find_map(|l| l.strip_prefix("AI hand-off: "))
        .unwrap_or_else(|| panic!("a fraud hand-off: {v}"))
        .to_string();
    (
        reason,
        v["revision"].as_str().unwrap_or_default().to_string(),
    )
}

/// `l3map publish --config CONFIG`, as a deploy step runs it.
fn publish(config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["publish", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

/// Waits until `r`'s /readyz answers `code` (and, for a 503, `error`).
async fn ready_is(r: &Replica, code: u16, error: &str) {
    let started = Instant::now();
    loop {
        let resp = reqwest::get(format!("{}/readyz", r.url)).await.unwrap();
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or_default();
        if status == code && (code == 200 || v["error"] == error) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{}: /readyz {status} {v}, not {code} {error}",
            r.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status(config: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["status", "--format", "json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

async fn eventually_on(s: &Stack, r: &Replica, revision: &str) {
    let started = Instant::now();
    while revision_of(r).await != revision {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} never decided by {revision}\n{}",
            r.url,
            logs(s)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_on_one_replica_is_what_every_replica_decides_by() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_revision") else {
        return;
    };
    let s = Stack::fleet(
        "fleet-revision",
        "[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n",
        &url,
    );
    let a = start(&s, 1).await;
    let mut b = start_edited(&s, 2, own_mappings(&s, 2)).await;
    let first = revision_of(&a).await;
    assert_eq!(revision_of(&b).await, first);
    let st = status(&s.dir.join("l3map.toml"));
    assert_eq!(st["active_revision"]["revision"], json!(first), "{st}");

    // Saved on replica 1 only: replica 2 decides by it at once, whatever
    // its follower's timing (the store refuses what the old one decided).
    edit_reason(&s.mappings(), "Fraud reported (edited on replica 1)");
    let started = Instant::now();
    while revision_of(&a).await == first {
        assert!(started.elapsed() < Duration::from_secs(20), "{}", logs(&s));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = revision_of(&a).await;
    let (reason, by) = fraud_turn(&s, &b).await;
    assert_eq!(
        (reason.as_str(), by.as_str()),
        ("Fraud reported (edited on replica 1)", second.as_str()),
        "{}",
        logs(&s)
    );
    eventually_on(&s, &b, &second).await;
    let started = Instant::now();
    loop {
        let ready: Value = reqwest::get(format!("{}/readyz", b.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["fleet_revision"] == json!(second) {
            assert_eq!(ready["revision"], json!(second), "{ready}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Replica 2's own files are not what it decides by, and /healthz says
    // so (not `current`); replica 1's are.
    let health = |r: &Replica| {
        let url = format!("{}/healthz", r.url);
        async move {
            let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            v["mappings"].clone()
        }
    };
    let m = health(&b).await;
    assert_eq!(
        (&m["files"], &m["files_revision"], &m["revision"]),
        (&json!("fleet"), &json!(first), &json!(second)),
        "{m}"
    );
    assert_eq!(health(&a).await["files"], json!("current"));

    // `l3map publish` of replica 2's folder (the first files): the fleet
    // goes back, and says so once both replicas decide by it.
    let out = publish(&s.dir.join("l3map-2.toml"));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!("published revision {first}")),
        "{said}"
    );
    assert!(said.contains("2 of 2 live replicas decide by it"), "{said}");
    let (reason, by) = fraud_turn(&s, &a).await;
    assert_eq!((reason.as_str(), by.as_str()), (REASON, first.as_str()));

    // Replica 1's files change again (a third revision); replica 2
    // restarts with the first files, which the fleet moved on from: it
    // decides by the third, and the fleet stays there.
    edit_reason(&s.mappings(), "Fraud reported (third)");
    let started = Instant::now();
    while revision_of(&a).await == first {
        assert!(started.elapsed() < Duration::from_secs(20), "{}", logs(&s));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let third = revision_of(&a).await;
    signal(&b.child, "-TERM");
    let _ = b.child.wait();
    b = start_edited(&s, 2, own_mappings(&s, 2)).await;
    eventually_on(&s, &b, &third).await;
    let (reason, _) = fraud_turn(&s, &b).await;
    assert_eq!(reason, "Fraud reported (third)");
    let st = status(&s.dir.join("l3map.toml"));
    assert_eq!(st["active_revision"]["revision"], json!(third), "{st}");

    // A connection change cannot be published to running replicas: it
    // is refused, naming the fix, and the fleet stays where it was.
    let conn = s.dir.join("mappings-2").join("connections.l3map");
    let text = std::fs::read_to_string(&conn).unwrap();
    std::fs::write(
        &conn,
        text.replacen("\"acme-fintech\"", "\"acme-fintech-eu\"", 1),
    )
    .unwrap();
    let out = publish(&s.dir.join("l3map-2.toml"));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{said}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        said.contains("changes a connection block") && said.contains("restart"),
        "{said}"
    );
    let st = status(&s.dir.join("l3map.toml"));
    assert_eq!(st["active_revision"]["revision"], json!(third), "{st}");

    // Forced, it goes out: no running replica can load it, so both say
    // so on /readyz; a forced publish of the files they run rolls back.
    let forced = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_l3map"))
            .args(["publish", "--force", "--wait", "0", "--config"])
            .arg(s.dir.join("l3map.toml"))
            .arg(dir)
            .output()
            .unwrap()
    };
    let out = forced(&s.dir.join("mappings-2"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in [&a, &b] {
        ready_is(r, 503, "revision_not_loaded").await;
    }
    let out = forced(&s.mappings());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in [&a, &b] {
        ready_is(r, 200, "").await;
    }
    let (reason, _) = fraud_turn(&s, &a).await;
    assert_eq!(reason, "Fraud reported (third)");
    for mut r in [a, b] {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}

/// The first step of a rollout of a `connection` change: one replica
/// restarted with the new files switches the fleet, the others cannot load
/// them and give their pollers up. The one that can decide runs every
/// singleton, so the fleet keeps polling (the red team's fleet stopped:
/// the share of each replica counted the ones that cannot decide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_connection_rollout_the_replica_that_decides_runs_every_poller() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_rollout") else {
        return;
    };
    let s = Stack::fleet(
        "fleet-rollout",
        "[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 1\n",
        &url,
    );
    let a = start(&s, 1).await;
    let c = start(&s, 3).await;
    // Replica 2 starts with the new connection block.
    let edit = own_mappings(&s, 2);
    let conn = s.dir.join("mappings-2").join("connections.l3map");
    let text = std::fs::read_to_string(&conn).unwrap();
    std::fs::write(
        &conn,
        text.replacen("plan        enterprise", "plan        professional", 1),
    )
    .unwrap();
    let b = start_edited(&s, 2, edit).await;
    for r in [&a, &c] {
        ready_is(r, 503, "revision_not_loaded").await;
    }
    let pid = i64::from(b.child.id());
    let started = Instant::now();
    loop {
        let st = status(&s.dir.join("l3map.toml"));
        let holder = st["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["pid"] == json!(pid))
            .map(|r| r["id"].clone())
            .unwrap_or_default();
        let leases = st["leases"].as_array().cloned().unwrap_or_default();
        let polls = |prefix: &str| {
            leases
                .iter()
                .any(|l| l["name"].as_str().unwrap_or("").starts_with(prefix))
        };
        // Retention may stay where it is: it decides nothing.
        let all_b = leases
            .iter()
            .filter(|l| l["name"] != "retention")
            .all(|l| l["holder"] == holder && l["expires_in_ms"].as_i64().unwrap_or(-1) > 0);
        if all_b && polls("zendesk_poll:") && polls("salesforce_poll:") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replica 2 ({holder}) does not run every singleton: {}\n{}",
            st["leases"],
            logs(&s)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // And it polls: a ticket changed without a webhook is read by the
    // export the deciding replica runs (the emulator's request log).
    let exports = || async {
        let st = s.zendesk_stats().await;
        st["by_path"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(p, _)| p.contains("/incremental/tickets"))
                    .filter_map(|(_, n)| n.as_u64())
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let before = exports().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = exports().await;
    assert!(
        after >= before + 2,
        "{before} -> {after} export polls in 4 s"
    );
    for mut r in [a, b, c] {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}
