//! `l3map e2e --target emulator --quick`, the real binary end to end: it
//! starts both emulators and the runtime itself, and its JSON report must
//! say every step passed with nothing lost or duplicated.

use serde_json::Value;
use std::process::Command;

#[test]
fn the_quick_sequence_passes_against_the_emulators() {
    // The same run writes its HTML page too (e2e_report.rs checks it).
    let dir = crate::common::temp_dir("e2e-quick");
    let page = dir.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["e2e", "--target", "emulator", "--quick", "--format", "json"])
        .arg("--report")
        .arg(&page)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("l3map runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}):\n{stdout}\n{stderr}"));
    let steps: Vec<(&str, bool)> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or("?"), s["passed"] == true))
        .collect();
    assert_eq!(
        steps,
        [
            ("webhook", true),
            ("actions", true),
            ("load", true),
            ("cleanup", true)
        ],
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(report["passed"], true);

    // Every action type the fintech escalations write, read back.
    let coverage = report["coverage"].as_array().expect("coverage");
    assert_eq!(coverage.len(), 6, "{coverage:?}");
    assert!(coverage.iter().all(|c| c["verified"] == true));
    // The test blocks that can run live did, and their writes were seen.
    let scenarios = report["scenarios"].as_array().expect("scenarios");
    assert!(scenarios.len() >= 5, "{scenarios:?}");
    for s in scenarios {
        assert_eq!(s["passed"], true, "{s}");
        assert!(s["actions"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|a| a["visible"] == true)));
    }

    // The load: nothing lost, nothing twice, within the article's targets.
    let load = &report["load"];
    assert!(load["turns"].as_u64().unwrap_or(0) > 20, "{load}");
    assert_eq!(load["lost"], 0);
    assert_eq!(load["duplicated"], 0);
    assert_eq!(load["turns_refused"], 0);
    assert_eq!(load["actions"], load["applied"]);
    assert!(load["error_rate"].as_f64().unwrap_or(1.0) < 0.005);
    assert!(load["turn_ms_p99"].as_u64().unwrap_or(u64::MAX) < l3map::e2e::MAX_TURN_MS);
    // Measured at the emulator: no sliding minute over the token's limit,
    // and the token was used (the load saturates it).
    let limit = load["limit_per_minute"].as_u64().expect("limit");
    let max = load["max_per_window"]
        .as_u64()
        .expect("measured at the emulator");
    assert_eq!(load["windows_over"], 0, "{load}");
    assert!(max <= limit && max >= limit * 3 / 4, "{load}");
    let per_action = load["requests_per_action"]
        .as_f64()
        .expect("requests per action");
    assert!(
        per_action > 0.0 && per_action <= l3map::e2e::MAX_REQUESTS_PER_ACTION,
        "{load}"
    );

    // Cleanup removed what the run created.
    let cleanup = &report["cleanup"];
    assert_eq!(cleanup["failed"].as_array().map(Vec::len), Some(0));
    assert!(cleanup["tickets_deleted"].as_u64().unwrap_or(0) > 20);

    let html = std::fs::read_to_string(&page).expect("the HTML report was written");
    super::e2e_report::check_page(&html, &report);
}

#[test]
fn live_without_a_config_is_refused_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["e2e", "--target", "live"])
        .output()
        .expect("l3map runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--config"), "{err}");
}
