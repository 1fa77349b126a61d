//! `l3map run` end to end: the real binary, its emulators and its runtime
//! talking over 127.0.0.1.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

/// The README's run command: the embedded default shows the demo working
/// (tickets created, webhooks received, hand-offs applied on both
/// systems, a forbidden request refused), then exits 0 with nothing
/// parked or left queued.
#[test]
fn the_embedded_default_runs_the_demo_to_the_end() {
    let tmp = common::temp_dir("run-demo");
    let state = tmp.path();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["run", "--state"])
        .arg(state.join("state.db"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("l3map runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    // Every hand-off of the refund escalation, on both systems, with the
    // rule's place in the mappings.
    for needle in [
        "ok desk",
        "comment       escalation refund_over_threshold",
        "assign_group  escalation refund_over_threshold",
        "set_status    escalation refund_over_threshold",
        "ok crm   Case/",
        "escalations.l3map:20:3",
        "escalation suspected_fraud",
        "escalation angry_enterprise_customer",
        "refused status new -> closed",
        " 0 parked, 0 still queued",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
    // The store it left says the same: every action applied, none dead.
    let rows = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args([
            "outbox", "list", "--format", "json", "--limit", "1000", "--state",
        ])
        .arg(state.join("state.db"))
        .output()
        .expect("outbox list");
    assert!(rows.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&rows.stdout).expect("json");
    let rows = rows.as_array().expect("a list");
    assert!(rows.len() >= 12, "{rows:?}");
    assert!(rows.iter().all(|r| r["state"] == "done"), "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["revision"].as_str().is_some_and(|s| s.len() == 16)));
}

fn run_with_config(name: &str, toml: &str, env: &[(&str, &str)]) -> std::process::Output {
    let tmp = common::temp_dir(&format!("run-cfg-{name}"));
    let dir = tmp.path();
    std::fs::write(dir.join("l3map.toml"), toml).expect("config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l3map"));
    cmd.args(["run", "--config"])
        .arg(dir.join("l3map.toml"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("ZENDESK_OAUTH_TOKEN")
        .env_remove("L3MAP_E2E_UNSET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("l3map runs")
}

/// A literal credential in l3map.toml stops the start, with one line that
/// names the key and not the value.
#[test]
fn a_literal_secret_in_the_config_is_refused_without_echoing_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = run_with_config(
        "literal",
        &format!(
            "mappings = \"{root}/mappings/fintech\"\n[webhook]\nsecret = \"whsec-live-8f2e1a\"\n"
        ),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("webhook.secret"), "{err}");
    assert!(err.contains("secret_env"), "{err}");
    assert!(!err.contains("whsec-live-8f2e1a"), "{err}");
}

/// A credential the mappings reference but the environment lacks stops
/// the start before anything is served, naming the variable.
#[test]
fn a_missing_secret_stops_the_start_naming_the_variable() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = run_with_config(
        "missing",
        &format!(
            "mappings = \"{root}/mappings/fintech\"\n[webhook]\nsecret_env = \"L3MAP_E2E_UNSET\"\n"
        ),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("L3MAP_E2E_UNSET"), "{err}");
    // The webhook secret set, the connection's token is what is missing.
    let out = run_with_config(
        "missing-token",
        &format!(
            "mappings = \"{root}/mappings/fintech\"\n[webhook]\nsecret_env = \"L3MAP_E2E_SET\"\n"
        ),
        &[("L3MAP_E2E_SET", "x")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ZENDESK_OAUTH_TOKEN"), "{err}");
}
