//! What deploy/ ships, checked against the real binary and the real tools:
//! the systemd unit passes `systemd-analyze verify` and is hardened; every
//! metric the Grafana dashboard and the Prometheus alert rules name exists
//! in a running `l3map run`'s /metrics; `promtool check rules` accepts the
//! rules and every panel's query; every panel and alert says what to do.
//!
//! The tools are skipped, saying so, where they are not installed;
//! `L3MAP_REQUIRE_DEPLOY_TOOLS=1` (set by .ci/run, which installs
//! systemd-analyze and man) makes a missing one a failure. promtool is not
//! installed by CI: the Debian package is the whole Prometheus server (50 s
//! to install), so its check runs where it is installed and says when not.

use crate::common::stack::Stack;
use crate::common::{root, temp_dir, BIN};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// Whether `name` is installed; when not, says the check was skipped, or
/// fails when CI installs it (`required_in_ci`) and requires it.
pub(crate) fn tool(name: &str, required_in_ci: bool) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let required = std::env::var("L3MAP_REQUIRE_DEPLOY_TOOLS").is_ok_and(|v| v == "1");
        assert!(
            !(required && required_in_ci),
            "{name} is required (L3MAP_REQUIRE_DEPLOY_TOOLS=1) but not installed"
        );
        eprintln!("SKIPPED: {name} is not installed, so that check did not run");
    }
    found
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `systemd-analyze verify` on a copy of the unit whose ExecStart names the
/// binary under test; what it printed (it exits 0 on unknown keys, with a
/// warning, so silence is the pass).
fn verify_unit(text: &str) -> (bool, String) {
    let dir = temp_dir("unit");
    let unit = dir.path().join("l3map.service");
    std::fs::write(
        &unit,
        text.replace(
            "ExecStart=/usr/local/bin/l3map",
            &format!("ExecStart={BIN}"),
        ),
    )
    .expect("write the unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn the_systemd_unit_is_hardened_and_verifies() {
    let unit = read("deploy/l3map.service");
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for want in [
        "DynamicUser=yes",
        "StateDirectory=l3map",
        "Environment=L3MAP_STATE=/var/lib/l3map/state.db",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        // l3map run compiles the mappings again on SIGHUP (src/cli/signals.rs).
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStart=/usr/local/bin/l3map run --config /etc/l3map/l3map.toml",
    ] {
        assert!(lines.contains(&want), "deploy/l3map.service lacks {want}");
    }
    // Secrets come from files systemd hands over, never from the unit.
    assert!(lines.iter().any(|l| l.starts_with("LoadCredential=")));
    for l in lines.iter().filter(|l| l.starts_with("Environment=")) {
        let upper = l.to_uppercase();
        for secret in ["TOKEN", "SECRET", "PASSWORD", "KEY"] {
            assert!(!upper.contains(secret), "a secret in the unit: {l}");
        }
    }
    if !tool("systemd-analyze", true) {
        return;
    }
    let (ok, said) = verify_unit(&unit);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );
    // The check has teeth: a misspelt key is reported.
    let (_, said) = verify_unit(&unit.replace("ProtectHome=yes", "ProtectHomes=yes"));
    assert!(said.contains("ProtectHomes"), "{said}");
}

/// Every `l3map_*` name in a PromQL expression.
fn names_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("l3map_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// The dashboard's panels: (title, description, queries).
fn panels() -> Vec<(String, String, Vec<String>)> {
    let dash: Value = serde_json::from_str(&read("deploy/grafana/l3map.json")).expect("JSON");
    let vars = dash["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter()
            .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"),
        "a datasource variable to import against"
    );
    dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["type"] != "row")
        .map(|p| {
            assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{p}");
            let queries = p["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(|t| t["expr"].as_str().expect("expr").to_owned())
                .collect();
            (
                p["title"].as_str().unwrap_or_default().to_owned(),
                p["description"].as_str().unwrap_or_default().to_owned(),
                queries,
            )
        })
        .collect()
}

/// The alert rules: (name, what to do, expression).
fn alerts() -> Vec<(String, String, String)> {
    let rules: serde_norway::Value =
        serde_norway::from_str(&read("deploy/prometheus/l3map-alerts.yml")).expect("YAML");
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for r in group["rules"].as_sequence().expect("rules") {
            let s = |v: &serde_norway::Value| v.as_str().unwrap_or_default().to_owned();
            assert!(!s(&r["annotations"]["summary"]).is_empty(), "{r:?}");
            out.push((
                s(&r["alert"]),
                s(&r["annotations"]["description"]),
                s(&r["expr"]),
            ));
        }
    }
    out
}

/// The names a scrape shows: every sample's, and every family's `# TYPE`
/// with the suffixes its samples take.
fn exposed(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let family = t.split(' ').next().unwrap_or_default();
            out.insert(family.to_owned());
            for suffix in ["_total", "_bucket", "_sum", "_count", "_info", "_created"] {
                out.insert(format!("{family}{suffix}"));
            }
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            out.insert(name.to_owned());
        }
    }
    out
}

/// Families a running `l3map run` shows only once something happened that
/// this test does not stage: an OAuth grant in the store, an MCP tool call,
/// a PostgreSQL fleet's leases. Their names are read from the same
/// `Metrics` the binary serves, after recording one of each.
const NEED_MORE_THAN_A_START: [&str; 3] = ["l3map_credential_", "l3map_mcp_", "l3map_lease_"];

fn recorded_in_process() -> String {
    let m = l3map::runtime::metrics::Metrics::new();
    m.credential_refresh("desk", "ok");
    m.credential_state("desk", false, Some(3600));
    m.mcp_call("get_ticket_context", "accepted");
    m.lease_seen("zendesk_poll:desk", Some(3));
    m.render()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_name_is_exposed() {
    const QUIET: &str = "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 3600\n";
    // The real binary, Change Data Capture on so its channel's series exist.
    let mut s = Stack::start_with_files("deploy-metrics", QUIET, true, &[]).await;
    s.restart_with_cdc(QUIET, 3600, "", "AccountChangeEvent")
        .await;
    let live = exposed(&s.metrics().await);
    let in_process = exposed(&recorded_in_process());

    let mut used: Vec<(String, String)> = Vec::new();
    let panels = panels();
    assert!(panels.len() >= 12, "{} panels", panels.len());
    for (title, description, queries) in &panels {
        assert!(
            description.len() > 80,
            "panel {title:?}: its description must say what to do"
        );
        assert!(!queries.is_empty(), "panel {title:?} has no query");
        for q in queries {
            used.extend(
                names_in(q)
                    .into_iter()
                    .map(|n| (format!("panel {title:?}"), n)),
            );
        }
    }
    let alerts = alerts();
    assert!(alerts.len() >= 8, "{} alerts", alerts.len());
    for (alert, description, expr) in &alerts {
        assert!(
            description.len() > 80,
            "alert {alert}: its description must say what to do"
        );
        used.extend(
            names_in(expr)
                .into_iter()
                .map(|n| (format!("alert {alert}"), n)),
        );
    }
    let mut missing = Vec::new();
    for (at, name) in &used {
        let conditional = NEED_MORE_THAN_A_START.iter().any(|p| name.starts_with(p));
        let found = live.contains(name) || (conditional && in_process.contains(name));
        if !found {
            missing.push(format!("{at}: {name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "metrics not exposed:\n{}\n\n/metrics has:\n{:?}",
        missing.join("\n"),
        live
    );
    // What each part of the issue asked to see is there.
    let all: BTreeSet<&str> = used.iter().map(|(_, n)| n.as_str()).collect();
    for want in [
        "l3map_events_total",
        "l3map_actions_total",
        "l3map_outbox_depth",
        "l3map_outbox_oldest_age_seconds",
        "l3map_outbox_dead_letters",
        "l3map_api_errors_total",
        "l3map_api_429_total",
        "l3map_reloads_total",
        "l3map_cdc_stream_up",
        "l3map_cdc_gaps_total",
        "l3map_cdc_catch_up_polls_total",
        "l3map_credential_needs_login",
        "l3map_http_request_duration_seconds_bucket",
        "l3map_mcp_tool_calls_total",
        "l3map_lease_changes_total",
    ] {
        assert!(all.contains(want), "nothing shows {want}");
    }
}

#[test]
fn promtool_accepts_the_rules_and_every_panel_query() {
    if !tool("promtool", false) {
        return;
    }
    let check = |path: &std::path::Path| {
        let out = Command::new("promtool")
            .args(["check", "rules"])
            .arg(path)
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool check rules {}:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    check(&root().join("deploy/prometheus/l3map-alerts.yml"));
    // The panels' queries, as recording rules: promtool parses each one.
    let dir = temp_dir("promtool");
    let mut rules = String::from("groups:\n  - name: l3map_dashboard\n    rules:\n");
    for (n, (_, _, queries)) in panels().iter().enumerate() {
        for (m, q) in queries.iter().enumerate() {
            let q = serde_json::to_string(q).expect("a JSON string is a YAML string");
            rules.push_str(&format!(
                "      - record: l3map_dashboard:panel{n}_{m}\n        expr: {q}\n"
            ));
        }
    }
    let path = dir.path().join("panels.yml");
    std::fs::write(&path, rules).expect("write");
    check(&path);
}
