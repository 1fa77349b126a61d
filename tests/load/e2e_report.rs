//! `l3map e2e --report FILE`: the HTML page of a run, checked against the
//! JSON report of the same run (the quick sequence in e2e_command.rs
//! writes both), and a FILE that cannot be written refused before the run.

use serde_json::Value;
use std::process::Command;

/// The page is one document whose charts carry the JSON's numbers.
pub(super) fn check_page(html: &str, report: &Value) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert_eq!(html.matches("<html").count(), 1);
    assert_eq!(html.matches("</html>").count(), 1);
    assert_eq!(html.matches("<h1>").count(), 1);
    // Self-contained: no script, nothing fetched.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    for step in report["steps"].as_array().expect("steps") {
        let name = step["name"].as_str().expect("name");
        assert!(
            html.contains(&format!("<th scope=\"row\">{name}</th>")),
            "step {name}"
        );
    }
    for chart in ["latency-chart", "budget-chart"] {
        assert!(
            html.contains(&format!("<svg id=\"{chart}\" role=\"img\"")),
            "{chart}"
        );
        assert!(
            html.contains(&format!("<title id=\"{chart}-title\">")),
            "{chart}"
        );
    }
    let load = &report["load"];
    let timeline = load["timeline"].as_array().expect("a timeline in the JSON");
    // The load in 24 slices, the drain after it, never more than 48.
    assert!(
        (24..=48).contains(&timeline.len()),
        "{} slices",
        timeline.len()
    );
    let point = |series: &str, i: usize, v: &Value| {
        format!("data-series=\"{series}\" data-slice=\"{i}\" data-value=\"{v}\"")
    };
    let mut latency_points = 0;
    for (i, s) in timeline.iter().enumerate() {
        for p in ["p50", "p95", "p99"] {
            let v = &s[format!("turn_ms_{p}")];
            if !v.is_null() {
                latency_points += 1;
                assert!(html.contains(&point(p, i, v)), "{p} of slice {i}: {s}");
            }
        }
        assert!(
            html.contains(&point("requests", i, &s["requests"])),
            "slice {i}: {s}"
        );
        let limited = s["rate_limited"].as_u64().expect("429s");
        if limited > 0 {
            assert!(
                html.contains(&point("rate_limited", i, &s["rate_limited"])),
                "{s}"
            );
        }
    }
    // 24 slices of load, 12 after a halving: latency in nearly each.
    assert!(latency_points >= 3 * 10, "latency in the load's slices");
    // Every request of the runtime's token from the load's start to the
    // drained outbox falls in a slice.
    let sum: u64 = timeline.iter().filter_map(|s| s["requests"].as_u64()).sum();
    let total = load["zendesk_requests"].as_u64().expect("requests");
    assert!(
        sum.abs_diff(total) <= 5,
        "slices {sum}, report {total}: {timeline:?}"
    );
    // The numbers are in a table too (the charts' text alternative).
    assert!(html.contains("<caption>Per slice: the numbers of both charts</caption>"));
}

#[test]
fn a_report_file_that_cannot_be_written_is_refused_before_the_run() {
    let dir = crate::common::temp_dir("e2e-report");
    let file = dir.path().join("no-such-folder/report.html");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["e2e", "--target", "emulator", "--quick", "--report"])
        .arg(&file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("l3map runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(started.elapsed().as_secs() < 10, "refused before the run");
    assert!(out.stdout.is_empty());
}
