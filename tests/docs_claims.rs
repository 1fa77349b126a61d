//! What the docs say the commands print is what they print.
//!
//! * RUNTIME.md's demo summary line: `l3map run` (the embedded default)
//!   is run and its summary compared count by count (the seconds, and the
//!   events decided, which depend on when webhooks arrive, aside).
//! * E2E.md's full-run report: every line of its load section must be a
//!   line `Report::human` prints (numbers aside), its targets must be the
//!   code's, its numbers must meet them, and the prose must quote them.

use crate::common;

use l3map::e2e::report::{Cleanup, Load, Report};
use l3map::e2e::{MAX_REQUESTS_PER_ACTION, MAX_TURN_MS};
use std::process::Command;

fn doc(name: &str) -> String {
    std::fs::read_to_string(format!("{}/docs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Every run of digits (with a decimal point) replaced by `#`.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in line.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out.trim_end_matches('.').trim().to_string()
}

/// The numbers of a line, in order.
fn numbers(line: &str) -> Vec<f64> {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.trim_matches('.').parse().ok())
        .collect()
}

/// The counts of a demo summary line, by the word after each.
fn summary_counts(line: &str) -> Vec<(String, u64)> {
    let (_, counts) = line.split_once(": ").expect("`done in N s: ...`");
    counts
        .split([',', ';'])
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let n = words.next()?.parse().ok()?;
            Some((words.collect::<Vec<_>>().join(" "), n))
        })
        .collect()
}

#[test]
fn runtime_md_demo_summary_is_what_l3map_run_prints() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = common::temp_dir("docs-demo");
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args([
            "run",
            &format!("{root}/mappings/fintech"),
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .output()
        .expect("l3map run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = stdout
        .lines()
        .find(|l| l.starts_with("done in "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let runtime = doc("RUNTIME.md");
    let documented = runtime
        .lines()
        .find(|l| l.starts_with("done in "))
        .expect("RUNTIME.md shows the demo's summary line");
    assert_eq!(shape(documented), shape(printed), "the summary's wording");
    let varies = |what: &str| what.starts_with("events decided");
    let keep = |counts: Vec<(String, u64)>| {
        counts
            .into_iter()
            .filter(|(what, _)| !varies(what))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keep(summary_counts(documented)),
        keep(summary_counts(printed)),
        "RUNTIME.md says\n  {documented}\nl3map run prints\n  {printed}"
    );
}

/// A report with a load section, to see the lines `Report::human` prints.
fn sample_report() -> Report {
    Report {
        target: "emulator".into(),
        run_id: "0".into(),
        mappings: "mappings/fintech".into(),
        revision: "0".into(),
        passed: true,
        steps: vec![],
        scenarios: vec![],
        skipped: vec![],
        coverage: vec![],
        load: Some(Load {
            requests_per_minute: 250,
            made_per_minute: 190.0,
            limit_per_minute: 200,
            time_scale: 1,
            seconds: 120.0,
            turns: 80,
            turns_refused: 0,
            actions: 480,
            applied: 480,
            lost: 0,
            duplicated: 0,
            api_calls: 500,
            api_errors: 0,
            error_rate: 0.0,
            rate_limited: 0,
            retries: 0,
            turn_ms_p50: 400,
            turn_ms_p95: 500,
            turn_ms_p99: 600,
            drain_seconds: 1.0,
            api_latency_ms: 300,
            zendesk_requests: 300,
            zendesk_actions: 320,
            requests_per_action: 0.94,
            max_per_window: Some(195),
            windows_over: Some(0),
            timeline: vec![],
        }),
        cleanup: Cleanup::default(),
        seconds: 200.0,
    }
}

#[test]
fn e2e_md_report_is_what_l3map_e2e_prints_and_meets_its_targets() {
    let e2e = doc("E2E.md");
    let printed = sample_report().human();
    let printed_shapes: Vec<String> = printed.lines().map(shape).collect();
    // The full run's report block: from its `load:` line to `cleanup:`.
    let lines: Vec<&str> = e2e.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with("load: ") && l.contains("Zendesk requests/min"))
        .expect("E2E.md shows a full run's load section");
    let section: Vec<&str> = lines[start..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with("cleanup:"))
        .filter(|l| !l.trim().is_empty())
        .copied()
        .collect();
    assert!(section.len() >= 8, "{section:#?}");
    for line in &section {
        assert!(
            printed_shapes.contains(&shape(line)),
            "E2E.md shows\n  {line}\nwhich l3map e2e does not print; it prints:\n{printed}"
        );
    }
    let row = |label: &str| {
        section
            .iter()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` line in E2E.md's report"))
    };
    // The targets are the code's.
    let latency = row("turn latency");
    assert!(
        latency.contains(&format!("target < {MAX_TURN_MS} ms")),
        "{latency}"
    );
    let per_action = row("per action");
    assert!(
        per_action.contains(&format!("target ≤ {MAX_REQUESTS_PER_ACTION}")),
        "{per_action}"
    );
    // The run shown meets them.
    let after = |label: &str| -> f64 {
        let (_, rest) = latency.split_once(label).expect(label);
        numbers(rest)[0]
    };
    let (p50, p99) = (after("p50 "), after("p99 "));
    assert!(p99 < MAX_TURN_MS as f64, "{latency}");
    let windows = row("rate windows");
    let w = numbers(windows);
    let (max, limit, over) = (w[0], w[1], w[2]);
    assert!(max <= limit && over == 0.0, "{windows}");
    let ratio = numbers(per_action)[0];
    assert!(ratio <= MAX_REQUESTS_PER_ACTION, "{per_action}");
    assert!(e2e.contains("PASSED in "), "the run shown passed");
    // The prose quotes the run shown, not an older one.
    let claim = format!("p50 {p50:.0} ms, p99 {p99:.0} ms");
    assert!(
        e2e.contains(&claim),
        "E2E.md's prose should quote the run's turn latency as `{claim}`"
    );
    let claim = format!("at most {max:.0} requests in any sliding minute");
    assert!(e2e.contains(&claim), "E2E.md's prose should say `{claim}`");
    let claim = format!("{ratio:.2} Zendesk requests per applied Zendesk action");
    assert!(e2e.contains(&claim), "E2E.md's prose should say `{claim}`");
}
