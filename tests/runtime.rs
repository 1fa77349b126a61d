//! `l3map run` end to end: the real binary, its emulators and its runtime
//! talking over 127.0.0.1.

use std::process::Command;
use std::time::{Duration, Instant};

/// The README's run command: the embedded default shows the demo working
/// (tickets created, webhooks received, hand-offs applied on both
/// systems, a forbidden request refused), then exits 0 with nothing
/// parked or left queued.
#[test]
fn the_embedded_default_runs_the_demo_to_the_end() {
    let state = std::env::temp_dir().join(format!("l3map-run-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
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
    let _ = std::fs::remove_dir_all(&state);
}
