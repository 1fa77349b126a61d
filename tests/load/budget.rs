//! Issue 13, items 15 and 16, from the outside: `l3map emulate` with a
//! small token limit and 300 ms answers, `l3map run --config` against it,
//! background work far beyond the token's budget (webhook reads of many
//! tickets, updated in bulk by someone else), and an agent sending turns
//! meanwhile.
//!
//! * No sliding 60-second window holds more of the runtime's requests
//!   than the limit, measured where Zendesk would count them: at the
//!   emulator (`GET /__l3map/stats`). The mappings say `plan enterprise`
//!   (700 a minute); the account allows 100: the runtime must learn that
//!   from the headers.
//! * Agent turns are answered while the token is saturated: each turn's
//!   ticket read goes ahead of the queued background reads. The old
//!   runtime spent each window in its first seconds and then held every
//!   request, turns included, until the window reopened (p99 7.5 s and
//!   more); the bound here leaves headroom for a loaded 2-core machine.

use crate::common::stack;

use l3map::connectors::Secret;
use l3map::emulator::zendesk::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TOKEN, STATS_PATH};
use serde_json::{json, Value};
use stack::{copy_project, free_port};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: u32 = 100;
const WEBHOOK_SECRET: &str = "budget-webhook-secret-77c1";
const AGENT_TOKEN: &str = "budget-agent-token-3e9d";

/// Kills what it started, whatever the test's outcome.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_token_stays_under_its_limit_in_every_sliding_minute_and_turns_go_first() {
    let tmp = crate::common::temp_dir("budget");
    let dir = tmp.path();
    let secret_file = dir.join("sf_client_secret");
    std::fs::write(&secret_file, "l3map-emulator-secret\n").expect("secret file");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mappings = dir.join("mappings");
    copy_project(&root.join("mappings/fintech"), &mappings, &secret_file);
    let text: String = std::fs::read_dir(&mappings)
        .expect("mappings")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default())
        .collect();
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().take(2).eq(["plan", "enterprise"])),
        "the test relies on the mappings claiming more than the account has"
    );
    let port = free_port();
    let runtime = format!("http://127.0.0.1:{port}");
    let bin = env!("CARGO_BIN_EXE_l3map");

    let mut emulate = Command::new(bin)
        .args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"])
        .args(["--rate-limit", &LIMIT.to_string(), "--latency-ms", "300"])
        .arg("--webhook-url")
        .arg(format!("{runtime}/webhooks/zendesk"))
        .arg(&mappings)
        .env("L3MAP_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("l3map emulate starts");
    let (zendesk, salesforce, lines) = crate::common::emulator_urls(&mut emulate);
    crate::common::drain(lines);
    let mut procs = Procs(vec![emulate]);

    std::fs::write(
        dir.join("l3map.toml"),
        format!(
            r#"mappings = "mappings"
state = "state/state.db"

[server]
listen = "127.0.0.1:{port}"

[webhook]
secret_env = "L3MAP_WEBHOOK_SECRET"
tolerance_secs = 300

[agents.e2e]
token_env = "L3MAP_AGENT_TOKEN"

[connections.desk]
base_url = "{zendesk}"

[connections.crm]
login_url = "{salesforce}"

[outbox]
max_attempts = 8
workers_per_connection = 4
"#
        ),
    )
    .expect("config");
    // `L3MAP_TEST_RUN_BIN` runs another build's runtime against this
    // emulator (how the test was seen to fail on the old runtime).
    let run_bin = std::env::var("L3MAP_TEST_RUN_BIN").unwrap_or_else(|_| bin.to_string());
    let run = Command::new(run_bin)
        .args(["run", "--config"])
        .arg(dir.join("l3map.toml"))
        .env("ZENDESK_OAUTH_TOKEN", DEV_TOKEN)
        .env("SF_CLIENT_ID", "l3map-emulator-client")
        .env("SF_REFRESH_TOKEN", "l3map-emulator-refresh")
        .env("L3MAP_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("L3MAP_AGENT_TOKEN", AGENT_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("run.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("l3map run starts");
    procs.0.push(run);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let started = Instant::now();
    while !http
        .get(format!("{runtime}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "l3map run did not come up: {}",
            std::fs::read_to_string(dir.join("run.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Someone else on the account: its own OAuth token (its own budget
    // at the emulator), creating tickets and updating them in bulk.
    let grant: Value = http
        .post(format!("{zendesk}/oauth/tokens"))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": DEV_CLIENT_ID,
            "client_secret": DEV_CLIENT_SECRET,
            "scope": "read write"
        }))
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("json");
    let other = grant["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    let mut tickets = Vec::new();
    for i in 0..50 {
        let v: Value = http
            .post(format!("{zendesk}/api/v2/tickets.json"))
            .bearer_auth(&other)
            .json(&json!({"ticket": {
                "subject": format!("budget {i}"),
                "comment": {"body": format!("budget load ticket {i}")}
            }}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        tickets.push(v["ticket"]["id"].as_u64().expect("ticket id"));
    }
    let ids: Vec<String> = tickets.iter().map(u64::to_string).collect();
    let ids = ids.join(",");

    // 75 s, so the load crosses at least one of the emulator's fixed
    // minutes (where a front-loading client goes over in a sliding
    // window) while CI stays short: every 6 s, one bulk update of all 50 tickets (50
    // webhook deliveries, each a ticket read for the runtime: 500 a
    // minute of background demand against 100), and every 4 s a turn.
    let load_started = Instant::now();
    let mut latencies = Vec::new();
    let mut refused = Vec::new();
    let mut n = 0u64;
    while load_started.elapsed() < Duration::from_secs(75) {
        if n.is_multiple_of(3) {
            let r = http
                .put(format!(
                    "{zendesk}/api/v2/tickets/update_many.json?ids={ids}"
                ))
                .bearer_auth(&other)
                .json(&json!({"ticket": {"additional_tags": [format!("wave_{n}")]}}))
                .send()
                .await;
            assert!(r.is_ok(), "bulk update: {r:?}");
        }
        let ticket = tickets[(n as usize * 7) % tickets.len()];
        let t = Instant::now();
        let r = http
            .post(format!("{runtime}/v1/turns"))
            .bearer_auth(AGENT_TOKEN)
            .json(&json!({
                "turn_id": format!("budget-turn-{n}"),
                "ticket": ticket,
                "intent": "question",
                "summary": "Where is my card?",
                "sentiment": "negative"
            }))
            .send()
            .await;
        let took = t.elapsed();
        match r {
            Ok(r) if r.status().is_success() => latencies.push(took),
            Ok(r) => refused.push(format!(
                "{}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            )),
            Err(e) => refused.push(e.to_string()),
        }
        n += 1;
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(took)).await;
    }

    let stats: Value = http
        .get(format!("{zendesk}{STATS_PATH}"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let key = Secret::new(DEV_TOKEN).fingerprint();
    let mine = stats["windows"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["token"] == key.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("no window stats for the runtime's token: {stats}"));
    let requests = mine["requests"].as_u64().unwrap_or(0);
    let max = mine["max_in_window"].as_u64().unwrap_or(u64::MAX);
    let over = mine["windows_over"].as_u64().unwrap_or(u64::MAX);
    // Saturated: the runtime had far more to do than 75 s allow, and it
    // used its budget (more than a minute's worth, and a full window below).
    assert!(
        requests >= u64::from(LIMIT),
        "the runtime made only {requests} requests: the load did not saturate the token ({stats})"
    );
    assert_eq!(
        over, 0,
        "{over} sliding windows over {LIMIT} (at most {max} in one): {stats}"
    );
    assert!(max <= u64::from(LIMIT), "{max} in one minute: {stats}");
    assert!(
        max >= u64::from(LIMIT) * 4 / 5,
        "the token's budget went unused: at most {max} a minute"
    );

    eprintln!(
        "runtime token: {requests} requests, at most {max} in a sliding minute against {LIMIT}, {over} over"
    );
    assert!(refused.is_empty(), "turns refused: {refused:?}");
    assert!(latencies.len() >= 30, "{} turns", latencies.len());
    latencies.sort();
    let p99 = percentile(&latencies, 0.99);
    let p50 = percentile(&latencies, 0.50);
    // One slot (0.64 s at 100 a minute) and 300 ms of API latency make a
    // turn about a second; the old runtime's were many seconds.
    eprintln!(
        "turns: {} answered, p50 {p50:?}, p99 {p99:?}",
        latencies.len()
    );
    assert!(
        p99 < Duration::from_secs(4),
        "turn p99 {p99:?} (p50 {p50:?}) while background work saturates the token"
    );
    drop(procs);
    crate::common::keep_on_panic(tmp);
}
