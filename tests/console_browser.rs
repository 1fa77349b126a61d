//! The ops console in a real browser: Debian's headless Chromium driven by
//! playwright-core (tests/console_browser/drive.mjs) against `l3map run`
//! beside `l3map emulate` on 127.0.0.1. It signs in, goes to the dead
//! letters by keyboard, reads one's reason, rule location and the API's
//! answer (markup shown as text, never run), retries it by keyboard
//! through the confirmation, sees the row go without a page reload, reads
//! the ticket's audit trail, a refused reload's diagnostics, the budgets
//! and the graph; the emulator then has the status.
//!
//! Runs where Chromium and the package are installed (`(cd
//! tests/console_browser && npm ci)` and `apt-get install chromium`);
//! CI installs both and sets `L3MAP_REQUIRE_BROWSER=1`, which turns a
//! skip into a failure. `L3MAP_CONSOLE_SHOTS=docs/img` keeps the
//! screenshots there (docs/CONSOLE.md shows them).

use crate::console::{console_stack, dead_letter, get, ticket_becomes, HOSTILE, OPS_TOKEN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

fn driver() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console_browser");
    let ready = Path::new(CHROMIUM).exists()
        && dir.join("node_modules/playwright-core").exists()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if ready {
        return Some(dir);
    }
    let why = "Chromium (/usr/bin/chromium) or tests/console_browser/node_modules is missing: \
               apt-get install chromium; (cd tests/console_browser && npm ci)";
    if std::env::var_os("L3MAP_REQUIRE_BROWSER").is_some() {
        panic!("L3MAP_REQUIRE_BROWSER is set and {why}");
    }
    eprintln!("skipped: {why}");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_support_ops_lead_finds_reads_and_retries_a_dead_letter_in_chromium() {
    let Some(dir) = driver() else { return };
    let (s, _tokens) = console_stack("console-browser").await;
    // A save that does not compile, then the good file again: a refused
    // reload in the list.
    let file = s.mappings().join("statuses.l3map");
    let good = std::fs::read_to_string(&file).expect("statuses");
    std::fs::write(
        &file,
        good.replacen("-> open, in_progress", "-> opne, in_progress", 1),
    )
    .expect("edit");
    let started = Instant::now();
    loop {
        let (_, r) = get(&s, "/ui/api/reloads", OPS_TOKEN).await;
        if r["reloads"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["outcome"] == "refused"))
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(&file, &good).expect("restore");
    let (ticket, action) = dead_letter(&s).await;
    let shots = match std::env::var_os("L3MAP_CONSOLE_SHOTS") {
        Some(d) => PathBuf::from(d),
        None => s.dir.join("shots"),
    };
    std::fs::create_dir_all(&shots).expect("shots dir");
    let out = tokio::process::Command::new("node")
        .arg(dir.join("drive.mjs"))
        .current_dir(&dir)
        .env("L3MAP_URL", &s.runtime)
        .env("L3MAP_OPS_TOKEN", OPS_TOKEN)
        .env("L3MAP_TICKET", ticket.to_string())
        .env("L3MAP_ACTION", action.to_string())
        .env("L3MAP_REFUSED", "opne")
        .env("L3MAP_SHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("the browser finished within two minutes")
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout),
        s.log()
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the driver's JSON");
    // Signed in with the focus where typing goes; the dead letters by Tab.
    assert_eq!(seen["focus_at_start"], "token", "{seen}");
    assert!(
        seen["tabs_to_dead"].as_u64().is_some_and(|n| n <= 10),
        "{seen}"
    );
    // The dead letter as a person reads it.
    assert_eq!(seen["reason"], "validation", "{seen}");
    assert_eq!(seen["record"], ticket.to_string(), "{seen}");
    assert!(
        seen["location"]
            .as_str()
            .is_some_and(|l| l.contains("statuses.l3map:20")),
        "{seen}"
    );
    assert!(
        seen["answer"].as_str().is_some_and(|a| a.contains(HOSTILE)),
        "the API's answer is shown as text: {seen}"
    );
    assert_eq!(seen["injected_elements"], 0, "{seen}");
    assert_eq!(seen["xss"], Value::Null, "{seen}");
    // Retried through the confirmation, by keyboard, without a reload.
    assert_eq!(seen["dialog_focus"], "confirm-cancel", "{seen}");
    assert_eq!(seen["confirm_focus"], "confirm-ok", "{seen}");
    assert!(
        seen["status"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("Retried action {action}"))),
        "{seen}"
    );
    assert_eq!(seen["kept_after_retry"], "kept", "{seen}");
    assert_eq!(seen["kept_at_end"], "kept", "{seen}");
    // The trail: the action's tries, parked then requeued then applied.
    let trail = seen["trail"].as_str().unwrap_or("");
    assert!(
        trail.contains("parked") && trail.contains("requeued") && trail.contains("applied"),
        "{trail}"
    );
    assert!(
        seen["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("statuses.l3map")),
        "{seen}"
    );
    assert!(
        seen["graph_counts"].as_array().is_some_and(|c| c
            .iter()
            .any(|t| t.as_str().is_some_and(|t| t.contains('✓')))),
        "{seen}"
    );
    // Nothing secret where a page or script could read it.
    assert_eq!(seen["token_in_page"], false);
    assert_eq!(seen["token_in_cookie"], false);
    assert_eq!(seen["token_in_storage"], false);
    assert_eq!(seen["cookie_http_only"], true);
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen}");
    // And the emulator has the status the retried action set.
    ticket_becomes(&s, ticket, |t| t["status"] == "open").await;
    for shot in [
        "graph.png",
        "dead-letters.png",
        "retry-confirm.png",
        "audit-trail.png",
        "reloads.png",
        "budgets.png",
    ] {
        let len = std::fs::metadata(shots.join(shot)).map_or(0, |m| m.len());
        assert!(len > 1000, "{shot}: {len} bytes");
    }
}
