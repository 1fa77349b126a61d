//! The official MCP SDKs, which nobody here wrote, drive the real binary:
//! the TypeScript SDK (`@modelcontextprotocol/sdk`, Node) and the Python
//! SDK (`mcp`), each over Streamable HTTP (`l3map run`'s `/mcp`) and over
//! stdio (`l3map mcp --config`). Each lists the tools, calls every one,
//! gets a refusal with its reasons and allowed targets, retries a write
//! that is applied once, hands off through `escalate`, and sees
//! `notifications/tools/list_changed` after an edit to the mappings.
//!
//! The clients live in tests/mcp_clients; `.ci/run` installs their
//! packages (`npm ci`, a venv with `pip install -r requirements.txt`) and
//! sets `L3MAP_REQUIRE_MCP_SDKS=1`, so CI never skips them. Elsewhere a
//! missing install is said on stderr and the test passes without running.

use crate::common::stack::{Stack, StackEnv, AGENT_TOKEN};
use crate::mcp::CARDS;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn clients() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_clients")
}

/// The client's command line, or `None` (said on stderr) when its SDK is
/// not installed here; under `L3MAP_REQUIRE_MCP_SDKS` that is a failure.
fn client(sdk: &str) -> Option<Command> {
    let (ready, cmd) = match sdk {
        "ts" => {
            let dir = clients().join("ts");
            let ok = dir
                .join("node_modules/@modelcontextprotocol/sdk/package.json")
                .exists();
            let mut c = Command::new("node");
            c.arg(dir.join("client.mjs"));
            (ok, c)
        }
        _ => {
            let dir = clients().join("py");
            let python = dir.join(".venv/bin/python");
            let mut c = Command::new(&python);
            c.arg(dir.join("client.py"));
            (python.exists(), c)
        }
    };
    if ready {
        return Some(cmd);
    }
    let how = "install them as .ci/run does: (cd tests/mcp_clients/ts && npm ci) and python3 -m venv tests/mcp_clients/py/.venv && tests/mcp_clients/py/.venv/bin/pip install -r tests/mcp_clients/py/requirements.txt";
    assert!(
        std::env::var_os("L3MAP_REQUIRE_MCP_SDKS").is_none(),
        "the {sdk} MCP SDK is not installed; {how}"
    );
    eprintln!("skipped: the {sdk} MCP SDK is not installed; {how}");
    None
}

/// Runs the client to its end, renaming an escalation when it is ready
/// for the edit; its steps by name.
fn drive(mut cmd: Command, s: &Stack, label: &str) -> serde_json::Map<String, Value> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::create(s.dir.join(format!("{label}.stderr")))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("the client starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut steps = serde_json::Map::new();
    let started = Instant::now();
    let stderr =
        || std::fs::read_to_string(s.dir.join(format!("{label}.stderr"))).unwrap_or_default();
    loop {
        let left = Duration::from_secs(120).saturating_sub(started.elapsed());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            panic!(
                "{label}: stopped after {steps:?}\nstderr:\n{}\nrun.log:\n{}",
                stderr(),
                s.log()
            );
        };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let step = v["step"].as_str().unwrap_or("").to_string();
        if step == "ready" {
            crate::mcp::rename_an_escalation(s);
        }
        steps.insert(step.clone(), v);
        if step == "done" {
            break;
        }
    }
    let _ = child.wait();
    steps
}

/// What every SDK, over either transport, must have seen.
fn check(steps: &serde_json::Map<String, Value>, ticket: u64, label: &str) {
    let at = |k: &str| {
        steps
            .get(k)
            .unwrap_or_else(|| panic!("{label}: no step {k}: {steps:?}"))
    };
    let names: Vec<&str> = at("tools")["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "get_ticket_context",
        "request_status_change",
        "set_ticket_field",
        "normalise_sku",
        "escalate",
        "explain_decision",
        "submit_turn",
    ] {
        assert!(names.contains(&t), "{label}: {t} missing from {names:?}");
    }
    let statuses = &at("tools")["statuses"];
    assert!(
        !statuses.as_array().unwrap().contains(&Value::from("new")),
        "{label}: {statuses}"
    );
    let illegal = at("illegal");
    assert_eq!(illegal["isError"], true, "{label}: {illegal}");
    assert_eq!(
        illegal["structured"]["outcome"], "refused",
        "{label}: {illegal}"
    );
    let targets = illegal["structured"]["allowed_targets"].to_string();
    assert!(targets.contains("in_progress"), "{label}: {illegal}");
    assert!(
        illegal["structured"]["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no transition"),
        "{label}: {illegal}"
    );
    assert_eq!(
        at("legal")["structured"]["outcome"],
        "accepted",
        "{label}: {steps:?}"
    );
    assert_eq!(at("legal")["structured"]["duplicate"], false, "{label}");
    assert_eq!(
        at("retry")["structured"]["duplicate"],
        true,
        "{label}: {steps:?}"
    );
    assert_eq!(
        at("retry")["structured"]["call_id"],
        at("legal")["structured"]["call_id"]
    );
    assert_eq!(
        at("context")["structured"]["ticket"]["id"],
        ticket,
        "{label}: {steps:?}"
    );
    assert_eq!(
        at("field")["structured"]["outcome"],
        "accepted",
        "{label}: {steps:?}"
    );
    assert_eq!(
        at("sku")["structured"]["sku"],
        "CARD-PLATINUM",
        "{label}: {steps:?}"
    );
    let esc = at("escalate");
    assert_eq!(esc["structured"]["outcome"], "accepted", "{label}: {esc}");
    assert!(
        esc["structured"]["handoff_comment"]
            .as_str()
            .unwrap()
            .contains("unauthorised transaction"),
        "{label}: {esc}"
    );
    assert!(
        at("turn")["structured"]["call_id"]
            .as_str()
            .unwrap()
            .contains("mcp.submit_turn."),
        "{label}: {steps:?}"
    );
    assert!(
        at("explain")["structured"]["refused"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{label}: {steps:?}"
    );
    assert_eq!(at("unknown")["refused"], true, "{label}: {steps:?}");
    let after = at("list_changed")["escalations"].to_string();
    assert!(
        after.contains("suspected_card_fraud") && !after.contains("\"suspected_fraud\""),
        "{label}: {after}"
    );
}

/// The hand-off and the status change at the emulator: once each.
async fn landed(s: &Stack, ticket: u64, label: &str) {
    let started = Instant::now();
    while s.private_notes(ticket).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{label}: no hand-off note\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.private_notes(ticket).await.len(), 1, "{label}");
    assert!(
        s.private_notes(ticket).await[0].contains("Card used abroad"),
        "{label}"
    );
}

async fn over_http(sdk: &str) {
    let Some(mut cmd) = client(sdk) else { return };
    let label = format!("{sdk}-http");
    let s = crate::mcp::stack(&format!("sdk-{label}")).await;
    let ticket = s.create_ticket("SDK over HTTP", "standard", None).await;
    cmd.args([
        "http",
        &format!("{}/mcp", s.runtime),
        AGENT_TOKEN,
        &ticket.to_string(),
    ]);
    let steps = tokio::task::block_in_place(|| drive(cmd, &s, &label));
    check(&steps, ticket, &label);
    landed(&s, ticket, &label).await;
}

async fn over_stdio(sdk: &str) {
    let Some(mut cmd) = client(sdk) else { return };
    let label = format!("{sdk}-stdio");
    // No `l3map run`: `l3map mcp` is the runtime.
    let s = Stack::without_runtime(&format!("sdk-{label}"), "", &[("cards.l3map", CARDS)]);
    let ticket = s.create_ticket("SDK over stdio", "standard", None).await;
    cmd.stack_env().args([
        "stdio",
        env!("CARGO_BIN_EXE_l3map"),
        &s.dir.join("l3map.toml").display().to_string(),
        &ticket.to_string(),
    ]);
    let steps = tokio::task::block_in_place(|| drive(cmd, &s, &label));
    check(&steps, ticket, &label);
    landed(&s, ticket, &label).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_over_streamable_http() {
    over_http("ts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_over_stdio() {
    over_stdio("ts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_over_streamable_http() {
    over_http("py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_over_stdio() {
    over_stdio("py").await;
}
