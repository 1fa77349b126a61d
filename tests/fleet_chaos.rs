//! Chaos for the fleet (issue 18, docs/RUNTIME.md "Running several
//! replicas"): three replicas of the real `l3map run` on one PostgreSQL,
//! beside the emulators, all over 127.0.0.1, kept running across rounds.
//! Each round a person escalates a burst of tickets (webhooks, through a
//! load balancer that sends only to ready replicas) while the AI agent
//! takes three steps on other tickets (`POST /v1/turns`, through the same
//! balancer, retried with the same `turn_id` when a replica fails it), and
//! faults drawn from a seeded RNG hit the fleet in the middle of it:
//!
//! * SIGKILL of one replica, restarted a moment later;
//! * SIGSTOP of one replica past its claim lease (3 s), then SIGCONT;
//! * PostgreSQL restarted (`pg_ctl restart -m immediate`; a server of the
//!   test's own, `cluster::private`, so no other test sees it);
//! * one replica's database link cut: its `[store]` url names a proxy
//!   (tests/common/proxy.rs) that drops every connection and refuses new
//!   ones for a few seconds, then heals.
//!
//! Checked from the vendor's side (the Zendesk emulator) after every
//! round, and once more for every ticket at the end:
//!
//! * nothing lost: every escalated ticket has its hand-off note, every
//!   agent step its note;
//! * nothing doubled: each exactly once;
//! * order: a ticket's three steps, each answered before the next is
//!   sent, land in that order (notes, and the hand-off reason field ends
//!   on the last step's);
//! * the budget: no sliding 60-second window at the emulator holds more
//!   of the token's requests than its limit (a low one, learned from the
//!   answers' headers as in tests/load/budget.rs);
//! * one poller: the emulator's request log of incremental-export calls.
//!   A poller waits its interval (1 s) after each answer before it calls
//!   again, so two calls closer than that are two replicas polling at
//!   once, whichever they are; and some replica always polls again (no
//!   gap longer than a lease takeover, one more per replica killed).
//!
//! The tickets a person escalates belong to a customer with no Salesforce
//! Account (a round must fit CI's time); the agent's belong to the seeded
//! customer, whose Account's values the desk's links write with each step.
//!
//! Failover is measured per round: from the fault until the first event
//! sent after it is handled, and until every piece of the round's work
//! (what the faulted replicas held included) is done. The p99 over the
//! rounds is printed, not asserted (beyond a sanity bound).
//!
//! `L3MAP_CHAOS_SEED` (default [`DEFAULT_SEED`]) and `L3MAP_CHAOS_ROUNDS`
//! (default 10, CI's size) choose the run, `L3MAP_CHAOS_FAULTS` (`kill`,
//! `stop`, `pg`, `cut`; default all) the faults drawn from; a failure names
//! the seed, the round and its faults, with the test's timeline and the
//! replicas' logs:
//! `L3MAP_CHAOS_ROUNDS=200 cargo test --test e2e fleet_chaos -- --nocapture`.
//!
//! Below the chaos run, a test for each product bug it found that could be
//! set up deterministically (what the run met by chance), and a note on
//! the one that could not.

use crate::common::proxy::Proxy;
use crate::common::stack::{free_port, Stack, StackEnv, DEV_TOKEN, DISPUTE_TYPE, SLA_TIER};
use l3map::runtime::store::postgres::cluster::{self as pg_cluster, Cluster};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_SEED: u64 = 0x00c4_a05e_ed18;
const DEFAULT_ROUNDS: usize = 10;
/// The token's requests a minute at the emulator: low, so the fleet's
/// shared budget is what keeps it under.
const LIMIT: u32 = 300;
/// `[store] lease_secs` of the chaos run (the stack's, tests/common/stack.rs).
const LEASE: Duration = Duration::from_secs(3);
/// Tickets a person escalates each round, half before the fault.
const BURST: usize = 6;
/// Tickets the agent takes its three steps on each round.
const TURN_TICKETS: usize = 2;
const STEPS: [&str; 3] = ["chaos_step_one", "chaos_step_two", "chaos_step_three"];
/// The fintech desk's hand-off reason field.
const HANDOFF_REASON: u64 = 360001241;
/// What the fintech desk's `suspected_fraud` hand-off note says.
const FRAUD_NOTE: &str = "Customer reports an unauthorised transaction";
/// One poller waits its interval (1 s) between an answer and its next
/// call; two calls closer than this are two pollers (margin for the
/// emulator's millisecond clock only: the interval is never cut short).
const MIN_POLL_SPACING_MS: i64 = 900;
/// Some replica polls again within a takeover (17 s) and slack.
const MAX_POLL_GAP_MS: i64 = 22_000;
/// How long a round's work may take after its fault before the round
/// fails: a sanity bound, far past any failover seen.
const ROUND_DEADLINE: Duration = Duration::from_secs(45);

/// The agent's three steps: each its own escalation (a hand-off is written
/// once per escalation and ticket), each a note naming the step and the
/// step's name in the hand-off reason.
const CHAOS_MAPPINGS: &str = r#"// tests/fleet_chaos.rs: an agent's three steps on one ticket.

template chaos_step """
Chaos step {{ turn.summary }}
"""

escalation chaos_step_one {
  when    turn.intent == "chaos_step_one"
  reason  "Chaos step one"
  comment desk chaos_step
  set     desk handoff_reason = "chaos_step_one"
}

escalation chaos_step_two {
  when    turn.intent == "chaos_step_two"
  reason  "Chaos step two"
  comment desk chaos_step
  set     desk handoff_reason = "chaos_step_two"
}

escalation chaos_step_three {
  when    turn.intent == "chaos_step_three"
  reason  "Chaos step three"
  comment desk chaos_step
  set     desk handoff_reason = "chaos_step_three"
}
"#;

// ------------------------------------------------------------------ plan

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kill,
    Stop,
    PgRestart,
    Cut,
}

const KINDS: [Kind; 4] = [Kind::Kill, Kind::Stop, Kind::PgRestart, Kind::Cut];

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// SIGKILL replica `slot`, start it again after `down`.
    Kill { slot: usize, down: Duration },
    /// SIGSTOP replica `slot`, SIGCONT after `stopped` (past the lease).
    Stop { slot: usize, stopped: Duration },
    /// `pg_ctl restart -m immediate`.
    PgRestart,
    /// Replica `slot`'s database link down for `down`.
    Cut { slot: usize, down: Duration },
}

impl Fault {
    fn kind(&self) -> Kind {
        match self {
            Fault::Kill { .. } => Kind::Kill,
            Fault::Stop { .. } => Kind::Stop,
            Fault::PgRestart => Kind::PgRestart,
            Fault::Cut { .. } => Kind::Cut,
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Kill { slot, down } => {
                write!(f, "SIGKILL replica {slot} (restarted after {down:?})")
            }
            Fault::Stop { slot, stopped } => {
                write!(f, "SIGSTOP replica {slot} for {stopped:?}")
            }
            Fault::PgRestart => write!(f, "PostgreSQL restarted (immediate)"),
            Fault::Cut { slot, down } => {
                write!(f, "replica {slot}'s database link cut for {down:?}")
            }
        }
    }
}

/// One round, drawn from the seed alone (never from timing): the faults,
/// how far into the burst they hit, and the agent's pauses between steps.
#[derive(Debug, Clone)]
struct Plan {
    faults: Vec<Fault>,
    /// From the burst's start to the fault.
    offset: Duration,
    /// Per turn ticket, the pause before each step.
    pauses: Vec<[Duration; 3]>,
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let faults: Vec<String> = self.faults.iter().map(Fault::to_string).collect();
        write!(
            f,
            "{}, {:?} into the burst",
            faults.join(" + "),
            self.offset
        )
    }
}

/// Round `round`'s plan. Every four rounds hit with each kind of fault
/// first once (in an order drawn per four rounds), so the CI-sized run
/// sees every kind at least twice; a third of the rounds add a second
/// fault of another kind on another replica.
fn plan(seed: u64, round: usize, kinds: &[Kind]) -> Plan {
    let mut order = kinds.to_vec();
    fastrand::Rng::with_seed(seed ^ (round / kinds.len()) as u64).shuffle(&mut order);
    let mut rng = fastrand::Rng::with_seed(
        seed.wrapping_add((round as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    let mut chosen = vec![order[round % order.len()]];
    if rng.u32(0..3) == 0 {
        let others: Vec<Kind> = kinds.iter().copied().filter(|k| *k != chosen[0]).collect();
        if !others.is_empty() {
            chosen.push(others[rng.usize(0..others.len())]);
        }
    }
    let mut slots = vec![1usize, 2, 3];
    rng.shuffle(&mut slots);
    let faults = chosen
        .iter()
        .enumerate()
        .map(|(i, k)| match k {
            Kind::Kill => Fault::Kill {
                slot: slots[i],
                down: Duration::from_millis(rng.u64(200..1500)),
            },
            Kind::Stop => Fault::Stop {
                slot: slots[i],
                stopped: LEASE + Duration::from_millis(rng.u64(800..2500)),
            },
            Kind::PgRestart => Fault::PgRestart,
            Kind::Cut => Fault::Cut {
                slot: slots[i],
                down: Duration::from_millis(rng.u64(1500..4500)),
            },
        })
        .collect();
    let pauses = (0..TURN_TICKETS)
        .map(|_| std::array::from_fn(|_| Duration::from_millis(rng.u64(0..400))))
        .collect();
    Plan {
        faults,
        offset: Duration::from_millis(rng.u64(100..1200)),
        pauses,
    }
}

// ------------------------------------------------------------------ fleet

/// One replica slot: its port, configuration and log survive restarts.
struct Replica {
    slot: usize,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self, why: &str) {
        use std::io::Write as _;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the replica's log");
        let _ = writeln!(log, "===== fleet_chaos: replica {} {why}", self.slot);
        let child = Command::new(env!("CARGO_BIN_EXE_l3map"))
            .stack_env()
            .args(["run", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("a replica starts");
        self.child = Some(child);
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on a child this test started and has not reaped.
            unsafe {
                libc::kill(pid as i32, sig);
            }
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Fleet {
    s: Stack,
    replicas: Vec<Replica>,
    /// Per replica (index slot - 1): its link to PostgreSQL.
    pg: Vec<Proxy>,
    /// Webhooks and agent turns, to ready replicas.
    lb: Proxy,
    /// One connection per request, so each goes through the balancer anew.
    http: reqwest::Client,
    /// What the test did, when (ms since the Unix epoch, as the
    /// emulator's request log): shown with a failure.
    timeline: Vec<(i64, String)>,
    /// When a replica was killed: a poller it held is taken over only once
    /// its lease runs out.
    kills: Vec<i64>,
    /// The store, directly (not through a replica's proxy).
    store_url: String,
    /// The PostgreSQL the chaos run restarts (its own).
    server: Option<std::sync::Arc<Cluster>>,
    /// The requester of the burst's tickets: a person with no organization
    /// and no Salesforce Contact, so the fintech desk's record links add
    /// no writes of their own to them (more requests and collisions per
    /// ticket; a round must fit CI's time).
    customer: u64,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            r.kill();
        }
    }
}

fn unix_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// How a fleet is set up: the chaos run's, or a focused test's below.
struct Setup {
    name: &'static str,
    /// The token's requests a minute at the emulator.
    limit: u32,
    /// `[store] lease_secs`.
    lease_secs: u64,
    /// `[poll] zendesk_interval_secs` (0: no polling).
    poll_secs: u64,
    /// The replica slots started at once (of 1, 2, 3).
    running: &'static [usize],
    /// Whether `l3map migrate` runs before them.
    migrate: bool,
}

const CHAOS: Setup = Setup {
    name: "fleet-chaos",
    limit: LIMIT,
    lease_secs: 3,
    poll_secs: 1,
    running: &[1, 2, 3],
    migrate: true,
};

impl Fleet {
    async fn start(store_url: &str, setup: &Setup) -> Fleet {
        let s = Stack::fleet_with(
            setup.name,
            &format!(
                "[poll]\nzendesk_interval_secs = {}\nsalesforce_interval_secs = 0\n",
                setup.poll_secs
            ),
            store_url,
            &[("chaos.l3map", CHAOS_MAPPINGS)],
            setup.limit,
            &[],
        );
        let pg_port: u16 = store_url
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("port="))
            .and_then(|p| p.parse().ok())
            .expect("the store URL's port");
        let pg_addr: SocketAddr = ([127, 0, 0, 1], pg_port).into();
        let base = std::fs::read_to_string(s.dir.join("l3map.toml")).expect("l3map.toml");
        let (mut pg, mut replicas, mut backends) = (vec![], vec![], vec![]);
        for slot in 1..=3 {
            let p = Proxy::start(pg_addr).await;
            let port = free_port();
            let mut text = base.clone();
            for (from, to) in [
                (
                    format!("listen = \"127.0.0.1:{}\"", port_of(&s.runtime)),
                    format!("listen = \"127.0.0.1:{port}\""),
                ),
                (format!("port={pg_port} "), format!("port={} ", p.port)),
                (
                    "lease_secs = 3\n".to_string(),
                    format!("lease_secs = {}\n", setup.lease_secs),
                ),
            ] {
                assert!(text.contains(&from), "{from} in {text}");
                text = text.replace(&from, &to);
            }
            let config = s.dir.join(format!("l3map-{slot}.toml"));
            std::fs::write(&config, text).expect("a replica's config");
            backends.push((
                SocketAddr::from(([127, 0, 0, 1], port)),
                format!("http://127.0.0.1:{port}/readyz"),
            ));
            replicas.push(Replica {
                slot,
                port,
                config,
                log: s.dir.join(format!("replica-{slot}.log")),
                child: None,
            });
            pg.push(p);
        }
        // Where the emulator delivers webhooks: the stack's runtime port.
        let lb = Proxy::balancer(port_of(&s.runtime), backends).await;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client");
        let mut fleet = Fleet {
            s,
            replicas,
            pg,
            lb,
            http,
            timeline: Vec::new(),
            kills: Vec::new(),
            store_url: store_url.to_string(),
            server: None,
            customer: 0,
        };
        let person = fleet
            .admin(
                reqwest::Method::POST,
                "/__l3map/users",
                Some(json!({"user": {
                    "name": "Chaos Customer",
                    "email": "chaos.customer@example.invalid"
                }})),
            )
            .await;
        fleet.customer = person["user"]["id"].as_u64().expect("a user id");
        // Migrated first, as docs/RUNTIME.md says to roll a fleet out:
        // replicas started together on an empty database race their
        // migration (one may be refused: its own test, below).
        if setup.migrate {
            let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
                .args(["migrate", "--config"])
                .arg(&fleet.replicas[0].config)
                .output()
                .expect("l3map migrate");
            assert!(
                out.status.success(),
                "l3map migrate: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for slot in setup.running {
            fleet.replica(*slot).spawn("started");
        }
        for slot in setup.running.iter().copied() {
            fleet
                .healthy(slot, Duration::from_secs(60))
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", fleet.logs()));
        }
        fleet
    }

    fn note(&mut self, what: String) {
        self.timeline.push((unix_ms(), what));
    }

    /// The timeline from `from_ms` on, one line each.
    fn timeline_from(&self, from_ms: i64) -> String {
        self.timeline
            .iter()
            .filter(|(at, _)| *at >= from_ms)
            .map(|(at, what)| format!("  {at} {what}\n"))
            .collect()
    }

    fn replica(&mut self, slot: usize) -> &mut Replica {
        &mut self.replicas[slot - 1]
    }

    /// Waits until replica `slot` answers /healthz 200.
    async fn healthy(&self, slot: usize, within: Duration) -> Result<(), String> {
        let url = format!("{}/healthz", self.replicas[slot - 1].url());
        let started = Instant::now();
        loop {
            let ok = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(format!(
                    "replica {slot} did not answer /healthz in {within:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of every replica's log (all of them are in the
    /// kept folder).
    fn logs(&self) -> String {
        let mut out = String::new();
        for r in &self.replicas {
            let text = std::fs::read_to_string(&r.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(120);
            let _ = writeln!(
                out,
                "--- replica {} ({}; last {} of {} lines)",
                r.slot,
                r.log.display(),
                lines.len() - from,
                lines.len()
            );
            for l in &lines[from..] {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.s.zendesk))
            .timeout(Duration::from_secs(10));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the Zendesk emulator");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Tickets as a person sees them, comments included (not counted).
    async fn tickets(&self, ids: &[u64]) -> Vec<Value> {
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        let v = self
            .admin(
                reqwest::Method::GET,
                &format!("/__l3map/tickets?ids={}", ids.join(",")),
                None,
            )
            .await;
        v["tickets"].as_array().cloned().unwrap_or_default()
    }

    /// A person sets the dispute type to fraud_claim: a webhook, and a
    /// change the export shows.
    async fn escalate(&self, id: u64) {
        self.admin(
            reqwest::Method::PUT,
            &format!("/__l3map/tickets/{id}"),
            Some(json!({"ticket": {"custom_fields": [
                {"id": DISPUTE_TYPE, "value": "fraud_claim"}
            ]}})),
        )
        .await;
    }
}

// ------------------------------------------------------------------ the agent

/// One step of the agent on `ticket`, sent to `to` (the balancer, or a
/// replica), retried with the same `turn_id` (and body) until it answers
/// 200.
async fn step(to: String, ticket: u64, tag: String, k: usize) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| e.to_string())?;
    let body = json!({
        "turn_id": format!("{tag}-s{}", k + 1),
        "ticket": ticket,
        "intent": STEPS[k],
        "summary": format!("{tag} s{}", k + 1),
        "sentiment": "neutral",
    });
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(45) {
        let sent = http
            .post(format!("{to}/v1/turns"))
            .bearer_auth(crate::common::stack::AGENT_TOKEN)
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                let v: Value = r.json().await.map_err(|e| e.to_string())?;
                let commented = v["accepted"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["action"] == "comment"));
                if v["duplicate"] == true || commented {
                    return Ok(());
                }
                return Err(format!("turn {tag} step {}: no hand-off: {v}", k + 1));
            }
            Ok(r) if r.status().is_server_error() || r.status() == 429 => {
                last = format!("{} {}", r.status(), r.text().await.unwrap_or_default());
            }
            Ok(r) => {
                return Err(format!(
                    "turn {tag} step {}: {} {}",
                    k + 1,
                    r.status(),
                    r.text().await.unwrap_or_default()
                ))
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("turn {tag} step {}: never answered: {last}", k + 1))
}

/// The agent's three steps on one ticket, each sent once the one before
/// was answered.
async fn agent(lb: String, ticket: u64, tag: String, pauses: [Duration; 3]) -> Result<(), String> {
    for (k, pause) in pauses.iter().enumerate() {
        tokio::time::sleep(*pause).await;
        step(lb.clone(), ticket, tag.clone(), k).await?;
    }
    Ok(())
}

// ------------------------------------------------------------------ checks

/// What one round (or the whole run) expects on each ticket.
#[derive(Debug, Clone)]
enum Expect {
    /// One fraud hand-off note.
    Fraud { round: usize },
    /// The three step notes in order, the reason on the last step.
    Steps { round: usize, tag: String },
}

fn private_notes(t: &Value) -> Vec<String> {
    t["comments"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| c["public"] == false)
                .filter_map(|c| c["body"].as_str().map(|b| b.trim().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn field(t: &Value, id: u64) -> Value {
    t["custom_fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == id))
        .map(|f| f["value"].clone())
        .unwrap_or(Value::Null)
}

/// `Ok(true)`: all there, once, in order; `Ok(false)`: not all there yet;
/// `Err`: something doubled, foreign or out of order.
fn judge(id: u64, t: &Value, e: &Expect) -> Result<bool, String> {
    let notes = private_notes(t);
    match e {
        Expect::Fraud { round } => {
            if notes.len() > 1 || notes.iter().any(|n| !n.contains(FRAUD_NOTE)) {
                return Err(format!(
                    "ticket {id} (round {round}, escalated once): notes {notes:#?}"
                ));
            }
            Ok(notes.len() == 1)
        }
        Expect::Steps { round, tag } => {
            let want: Vec<String> = (1..=3).map(|k| format!("Chaos step {tag} s{k}")).collect();
            let doubled_or_foreign = notes.len() > 3 || notes.iter().any(|n| !want.contains(n));
            let out_of_order = notes.iter().zip(&want).any(|(n, w)| n != w);
            if doubled_or_foreign || out_of_order {
                return Err(format!(
                    "ticket {id} (round {round}, three steps in order): notes {notes:#?}, want {want:#?}"
                ));
            }
            Ok(notes.len() == 3 && field(t, HANDOFF_REASON) == STEPS[2])
        }
    }
}

/// The token's sliding-window measure at the emulator.
async fn budget(f: &Fleet) -> Result<(u64, u64), String> {
    let stats = f.admin(reqwest::Method::GET, "/__l3map/stats", None).await;
    let key = l3map::connectors::Secret::new(DEV_TOKEN).fingerprint();
    let Some(w) = stats["windows"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["token"] == key.as_str()))
    else {
        return Ok((0, 0));
    };
    let (max, over, requests) = (
        w["max_in_window"].as_u64().unwrap_or(u64::MAX),
        w["windows_over"].as_u64().unwrap_or(u64::MAX),
        w["requests"].as_u64().unwrap_or(0),
    );
    if over > 0 || max > u64::from(LIMIT) {
        return Err(format!(
            "over budget: {over} sliding windows held more than {LIMIT} requests (at most {max} in one): {w}\n{}",
            budget_evidence(f, &key).await
        ));
    }
    Ok((max, requests))
}

/// The fullest sliding minute of the token's requests in the emulator's
/// log, second by second, and what the test did meanwhile; every request
/// is written to `requests.txt` in the kept folder.
async fn budget_evidence(f: &Fleet, key: &str) -> String {
    let log = f
        .admin(reqwest::Method::GET, "/__l3map/requests", None)
        .await;
    let mut calls: Vec<(i64, String)> = log["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["token"] == key)
        .map(|e| {
            (
                e["at_ms"].as_i64().unwrap_or(0),
                format!(
                    "{} {}{} {}",
                    e["method"].as_str().unwrap_or_default(),
                    e["path"].as_str().unwrap_or_default(),
                    e["query"]
                        .as_str()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default(),
                    e["status"]
                ),
            )
        })
        .collect();
    calls.sort_by_key(|c| c.0);
    if calls.is_empty() {
        return "no requests logged".into();
    }
    let kept = f.s.dir.join("requests.txt");
    let listing: String = calls.iter().map(|c| format!("{} {}\n", c.0, c.1)).collect();
    let _ = std::fs::write(&kept, listing);
    // The window ending at each arrival holds the arrivals of the 60 s
    // before it (the emulator's measure).
    let (mut best, mut best_end, mut from) = (0usize, 0usize, 0usize);
    for (i, c) in calls.iter().enumerate() {
        while c.0 - calls[from].0 >= 60_000 {
            from += 1;
        }
        if i + 1 - from > best {
            best = i + 1 - from;
            best_end = i;
        }
    }
    let end = calls[best_end].0;
    let start = end - 60_000;
    let window: Vec<&(i64, String)> = calls.iter().filter(|c| c.0 > start && c.0 <= end).collect();
    let limited = window.iter().filter(|c| c.1.ends_with(" 429")).count();
    let mut out = format!(
        "every request of the token: {}\nthe fullest window: {best} requests in ({start}, {end}] ms, \
         {limited} answered 429; requests per second of it:",
        kept.display()
    );
    let mut per_second = std::collections::BTreeMap::<i64, usize>::new();
    for c in &window {
        *per_second.entry((c.0 - start) / 1000).or_default() += 1;
    }
    for (sec, n) in per_second {
        let _ = write!(out, " {sec}s:{n}");
    }
    let _ = writeln!(
        out,
        "\nthe test meanwhile:\n{}",
        f.timeline_from(start - 5_000)
    );
    out
}

/// The incremental export's callers, as the emulator's request log shows
/// them. A poller pauses its interval (1 s) after each round's answer
/// before it asks again, so one poller never calls the export twice
/// closer than that: two calls closer are two replicas polling at once
/// (whoever they are, no attribution needed). And some replica always
/// polls again: a gap is at most a lease takeover's length, one more for
/// each replica killed meanwhile (a holder killed before it polled).
#[derive(Debug, Default)]
struct Pollers {
    calls: usize,
    min_spacing_ms: i64,
    max_gap_ms: i64,
}

async fn pollers(f: &Fleet) -> Result<Pollers, String> {
    let log = f
        .admin(
            reqwest::Method::GET,
            "/__l3map/requests?path=/api/v2/incremental/tickets",
            None,
        )
        .await;
    let mut calls: Vec<(i64, i64)> = log["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["at_ms"].as_i64().unwrap_or(0),
                e["done_ms"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    calls.sort();
    let mut p = Pollers {
        calls: calls.len(),
        min_spacing_ms: i64::MAX,
        max_gap_ms: 0,
    };
    for w in calls.windows(2) {
        let ((_, done), (at, _)) = (w[0], w[1]);
        let gap = at - done;
        p.min_spacing_ms = p.min_spacing_ms.min(gap);
        p.max_gap_ms = p.max_gap_ms.max(gap);
        if gap < MIN_POLL_SPACING_MS {
            return Err(format!(
                "two pollers at once: an export call {gap} ms after the previous one was answered \
                 (one poller waits its 1 s interval): calls (arrived, answered) ms {calls:?}"
            ));
        }
        let kills = f
            .kills
            .iter()
            .filter(|k| **k >= done - 1_000 && **k <= at)
            .count() as i64;
        if gap > MAX_POLL_GAP_MS * (1 + kills) {
            return Err(format!(
                "no poller for {gap} ms ({kills} replicas killed meanwhile): calls (arrived, answered) ms {calls:?}"
            ));
        }
    }
    Ok(p)
}

/// Round `round`'s tickets, looked at again: still all there, once, in
/// order.
async fn again(f: &Fleet, expect: &[(u64, Expect)], round: usize) -> Result<(), String> {
    let mine: Vec<&(u64, Expect)> = expect
        .iter()
        .filter(|(_, e)| match e {
            Expect::Fraud { round: r } | Expect::Steps { round: r, .. } => *r == round,
        })
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    let ids: Vec<u64> = mine.iter().map(|(id, _)| *id).collect();
    let seen = f.tickets(&ids).await;
    for (id, e) in mine {
        let t = seen
            .iter()
            .find(|t| t["id"] == *id)
            .cloned()
            .unwrap_or_default();
        if !judge(*id, &t, e)? {
            return Err(format!("ticket {id} ({e:?}) lost work it had: {t}"));
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).ceil() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `n` fresh tickets of `requester` (`None`: the emulator's seeded
/// customer, whose organization is linked to a Salesforce Account), made
/// as a data load (no webhooks).
async fn create_tickets(f: &Fleet, n: usize, subject: &str, requester: Option<u64>) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    let mut ticket = json!({
        "subject": subject,
        "custom_fields": [{"id": SLA_TIER, "value": "standard"}]
    });
    if let Some(r) = requester {
        ticket["requester_id"] = json!(r);
    }
    let v = f
        .admin(
            reqwest::Method::POST,
            "/__l3map/tickets",
            Some(json!({"count": n, "ticket": ticket})),
        )
        .await;
    let ids: Vec<u64> = v["ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(ids.len(), n, "{v}");
    ids
}

// ------------------------------------------------------------------ a round

struct Measured {
    /// Fault → the first event sent after it handled.
    new_event: Duration,
    /// Fault → every piece of the round's work done.
    all_done: Duration,
}

/// A recovery step due at a time after the fault.
enum Due {
    Cont(usize),
    Heal(usize),
    Restart(usize),
}

async fn round(
    f: &mut Fleet,
    r: usize,
    p: &Plan,
    expect: &mut Vec<(u64, Expect)>,
) -> Result<Measured, String> {
    // The burst's tickets are a customer's without a Salesforce Account;
    // the agent's are a customer's with one (the desk's links add what the
    // Account says to each step, as in production).
    let burst = create_tickets(f, BURST, &format!("chaos round {r}"), Some(f.customer)).await;
    let turns = create_tickets(f, TURN_TICKETS, &format!("chaos round {r}"), None).await;
    let ids: Vec<u64> = burst.iter().chain(&turns).copied().collect();
    let (burst, turns) = (&burst[..], &turns[..]);
    f.note(format!(
        "round {r}: burst {burst:?}, agent steps on {turns:?}"
    ));
    let mine: Vec<(u64, Expect)> = burst
        .iter()
        .map(|id| (*id, Expect::Fraud { round: r }))
        .chain(turns.iter().enumerate().map(|(j, id)| {
            (
                *id,
                Expect::Steps {
                    round: r,
                    tag: format!("r{r}-t{j}"),
                },
            )
        }))
        .collect();
    expect.extend(mine.iter().cloned());

    // The agent's steps and the first half of the burst, then the fault.
    let agents: Vec<_> = turns
        .iter()
        .enumerate()
        .map(|(j, id)| tokio::spawn(agent(f.lb.url(), *id, format!("r{r}-t{j}"), p.pauses[j])))
        .collect();
    let burst_started = Instant::now();
    for id in &burst[..BURST / 2] {
        f.escalate(*id).await;
    }
    tokio::time::sleep(p.offset.saturating_sub(burst_started.elapsed())).await;

    let fault_at = Instant::now();
    let mut due: Vec<(Instant, Due)> = Vec::new();
    let mut pg_restart = None;
    for fault in &p.faults {
        f.note(format!("round {r}: {fault}"));
        match *fault {
            Fault::Kill { slot, down } => {
                f.replica(slot).kill();
                f.kills.push(unix_ms());
                due.push((fault_at + down, Due::Restart(slot)));
            }
            Fault::Stop { slot, stopped } => {
                f.replica(slot).signal(libc::SIGSTOP);
                due.push((fault_at + stopped, Due::Cont(slot)));
            }
            Fault::PgRestart => {
                let server = f
                    .server
                    .clone()
                    .ok_or("a PostgreSQL restart drawn without a server to restart")?;
                pg_restart = Some(tokio::task::spawn_blocking(move || {
                    server.restart_immediate()
                }));
            }
            Fault::Cut { slot, down } => {
                f.pg[slot - 1].cut();
                due.push((fault_at + down, Due::Heal(slot)));
            }
        }
    }
    // The rest of the burst: its first ticket is the new event whose
    // handling says the fleet works again.
    let probe = burst[BURST / 2];
    for id in &burst[BURST / 2..] {
        f.escalate(*id).await;
    }

    let mut new_event = None;
    let mut all_done = None;
    let mut restarted: Vec<usize> = Vec::new();
    loop {
        let now = Instant::now();
        let (ready, later): (Vec<_>, Vec<_>) = due.into_iter().partition(|(at, _)| *at <= now);
        due = later;
        for (_, d) in ready {
            match d {
                Due::Cont(slot) => {
                    f.replica(slot).signal(libc::SIGCONT);
                    f.note(format!("round {r}: SIGCONT replica {slot}"));
                }
                Due::Heal(slot) => {
                    f.pg[slot - 1].heal();
                    f.note(format!("round {r}: replica {slot}'s database link healed"));
                }
                Due::Restart(slot) => {
                    f.note(format!("round {r}: replica {slot} started again"));
                    f.replica(slot).spawn(&format!("restarted in round {r}"));
                    restarted.push(slot);
                }
            }
        }
        if pg_restart.as_ref().is_some_and(|h| h.is_finished()) {
            match pg_restart.take().expect("a restart").await {
                Ok(Ok(())) => f.note(format!("round {r}: PostgreSQL is back")),
                Ok(Err(e)) => return Err(format!("pg_ctl restart: {e}")),
                Err(e) => return Err(format!("pg_ctl restart: {e}")),
            }
        }
        let seen = f.tickets(&ids).await;
        let mut complete = true;
        for (id, e) in &mine {
            let t = seen
                .iter()
                .find(|t| t["id"] == *id)
                .ok_or_else(|| format!("ticket {id} is gone"))?;
            let done = judge(*id, t, e)?;
            if *id == probe && done && new_event.is_none() {
                new_event = Some(fault_at.elapsed());
            }
            complete &= done;
        }
        let agents_done = agents.iter().all(|a| a.is_finished());
        if complete && agents_done && all_done.is_none() {
            all_done = Some(fault_at.elapsed());
        }
        if all_done.is_some() && due.is_empty() && pg_restart.is_none() {
            break;
        }
        if fault_at.elapsed() > ROUND_DEADLINE {
            let state: Vec<String> = mine
                .iter()
                .map(|(id, e)| {
                    let t = seen
                        .iter()
                        .find(|t| t["id"] == *id)
                        .cloned()
                        .unwrap_or_default();
                    format!(
                        "ticket {id} {e:?}: notes {:?}, reason {}",
                        private_notes(&t),
                        field(&t, HANDOFF_REASON)
                    )
                })
                .collect();
            return Err(format!(
                "the round's work was not done {ROUND_DEADLINE:?} after the fault:\n{}",
                state.join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f.note(format!("round {r}: all done"));
    for a in agents {
        a.await.map_err(|e| e.to_string())??;
    }
    for slot in 1..=3 {
        f.healthy(slot, Duration::from_secs(30)).await?;
    }
    Ok(Measured {
        new_event: new_event.unwrap_or_default(),
        all_done: all_done.unwrap_or_default(),
    })
}

// ------------------------------------------------------------------ the test

/// Names the seed and the round of a failure, with the replicas' logs.
struct Verdict<'a> {
    seed: u64,
    rounds: usize,
    fleet: &'a Fleet,
}

impl Verdict<'_> {
    fn fail(&self, round: Option<usize>, plan: Option<&Plan>, why: &str) -> ! {
        let at = match (round, plan) {
            (Some(r), Some(p)) => format!("round {r} ({p})"),
            _ => "the final check".to_string(),
        };
        panic!(
            "fleet_chaos failed at {at}, seed {seed:#x}: {why}\n\
             replay: L3MAP_CHAOS_SEED={seed:#x} L3MAP_CHAOS_ROUNDS={rounds} cargo test --test e2e fleet_chaos -- --nocapture\n\
             the test's timeline (ms since the epoch):\n{timeline}{logs}",
            seed = self.seed,
            rounds = self.rounds,
            timeline = self.fleet.timeline_from(0),
            logs = self.fleet.logs()
        )
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        }
        Err(_) => default,
    }
}

/// `L3MAP_CHAOS_FAULTS`: the kinds of fault drawn from (`kill`, `stop`,
/// `pg`, `cut`, comma-separated; default all), to look at one alone.
fn fault_kinds() -> Vec<Kind> {
    let Ok(v) = std::env::var("L3MAP_CHAOS_FAULTS") else {
        return KINDS.to_vec();
    };
    v.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| match k {
            "kill" => Kind::Kill,
            "stop" => Kind::Stop,
            "pg" => Kind::PgRestart,
            "cut" => Kind::Cut,
            other => panic!("L3MAP_CHAOS_FAULTS: {other:?} is none of kill, stop, pg, cut"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_under_chaos_loses_nothing_doubles_nothing_and_keeps_order_and_budget() {
    let started = Instant::now();
    // A server of its own (durable commits), restarted at will; without
    // one, the shared server (L3MAP_TEST_DATABASE_URL's, or a skip), not
    // restarted.
    let server = pg_cluster::private("fleet-chaos").map(std::sync::Arc::new);
    let url = match &server {
        Some(c) => c.database("fleet_chaos"),
        None => match l3map::runtime::store::postgres::cluster::database("fleet_chaos") {
            Some(url) => url,
            None => return,
        },
    };
    let seed = env_number("L3MAP_CHAOS_SEED", DEFAULT_SEED);
    let rounds = env_number("L3MAP_CHAOS_ROUNDS", DEFAULT_ROUNDS as u64) as usize;
    let mut kinds = fault_kinds();
    if server.is_none() {
        kinds.retain(|k| *k != Kind::PgRestart);
    }
    assert!(!kinds.is_empty(), "no fault to inject");
    let mut f = Fleet::start(&url, &CHAOS).await;
    f.server = server;
    eprintln!(
        "fleet_chaos: seed {seed:#x}, {rounds} rounds, fleet up in {:?}",
        started.elapsed()
    );
    let mut expect: Vec<(u64, Expect)> = Vec::new();
    let mut measured: Vec<(String, Measured)> = Vec::new();
    for r in 1..=rounds {
        let p = plan(seed, r - 1, &kinds);
        let t = Instant::now();
        let got = round(&mut f, r, &p, &mut expect).await;
        let verdict = Verdict {
            seed,
            rounds,
            fleet: &f,
        };
        let m = match got {
            Ok(m) => m,
            Err(why) => {
                let spent = match budget(&f).await {
                    Ok((max, n)) => format!(
                        "the budget so far: {n} requests, at most {max} in a sliding minute against {LIMIT}"
                    ),
                    Err(over) => over,
                };
                verdict.fail(Some(r), Some(&p), &format!("{why}\n{spent}"))
            }
        };
        if let Err(why) = budget(&f).await {
            verdict.fail(Some(r), Some(&p), &why);
        }
        if let Err(why) = pollers(&f).await {
            verdict.fail(Some(r), Some(&p), &why);
        }
        // A late write (a stalled replica's, after SIGCONT) lands after its
        // round ended: the previous round's tickets are looked at again.
        if let Err(why) = again(&f, &expect, r - 1).await {
            verdict.fail(Some(r), Some(&p), &why);
        }
        eprintln!(
            "fleet_chaos round {r}: {p}: new event handled {:?} after the fault, all done {:?} (round {:?})",
            m.new_event,
            m.all_done,
            t.elapsed()
        );
        let label = p
            .faults
            .iter()
            .map(|x| format!("{:?}", x.kind()))
            .collect::<Vec<_>>()
            .join("+");
        measured.push((label, m));
    }

    // Later poll rounds and any late answer of a stalled replica: still
    // exactly once, in order, for every ticket of every round.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let verdict = Verdict {
        seed,
        rounds,
        fleet: &f,
    };
    let ids: Vec<u64> = expect.iter().map(|(id, _)| *id).collect();
    let mut seen = Vec::new();
    for chunk in ids.chunks(100) {
        seen.extend(f.tickets(chunk).await);
    }
    for (id, e) in &expect {
        let t = seen
            .iter()
            .find(|t| t["id"] == *id)
            .cloned()
            .unwrap_or_default();
        match judge(*id, &t, e) {
            Ok(true) => {}
            Ok(false) => verdict.fail(
                None,
                None,
                &format!("ticket {id} ({e:?}) lost its work: {t}"),
            ),
            Err(why) => verdict.fail(None, None, &why),
        }
    }
    let (max, requests) = budget(&f)
        .await
        .unwrap_or_else(|why| verdict.fail(None, None, &why));
    let polled = pollers(&f)
        .await
        .unwrap_or_else(|why| verdict.fail(None, None, &why));
    // The fleet's own view agrees: nothing dead.
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["status", "--format", "json", "--config"])
        .arg(&f.replicas[0].config)
        .output()
        .expect("l3map status");
    let st: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        verdict.fail(
            None,
            None,
            &format!(
                "l3map status: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    });
    let dead: u64 = st["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| q["dead"].as_u64().unwrap_or(0))
        .sum();
    if dead > 0 {
        verdict.fail(None, None, &format!("{dead} dead actions: {st}"));
    }

    let mut new_event: Vec<Duration> = measured.iter().map(|(_, m)| m.new_event).collect();
    let mut all_done: Vec<Duration> = measured.iter().map(|(_, m)| m.all_done).collect();
    new_event.sort();
    all_done.sort();
    let mut by_kind = String::new();
    for k in KINDS {
        let mut ds: Vec<Duration> = measured
            .iter()
            .filter(|(l, _)| l.split('+').any(|x| x == format!("{k:?}")))
            .map(|(_, m)| m.all_done)
            .collect();
        ds.sort();
        if !ds.is_empty() {
            let _ = write!(
                by_kind,
                " {k:?}: {} rounds, p99 {:?};",
                ds.len(),
                percentile(&ds, 0.99)
            );
        }
    }
    eprintln!(
        "fleet_chaos: seed {seed:#x}, {rounds} rounds, {} tickets checked, in {:?}\n\
         failover (fault -> a new event handled): p50 {:?}, p99 {:?}\n\
         failover (fault -> all the round's work done, orphans included): p50 {:?}, p99 {:?}; by fault:{by_kind}\n\
         budget: {requests} requests, at most {max} in a sliding minute against {LIMIT}\n\
         poller: {} export calls, never two closer than {} ms, longest gap {} ms",
        expect.len(),
        started.elapsed(),
        percentile(&new_event, 0.50),
        percentile(&new_event, 0.99),
        percentile(&all_done, 0.50),
        percentile(&all_done, 0.99),
        polled.calls,
        polled.min_spacing_ms,
        polled.max_gap_ms,
    );
    // A sanity bound only: a failover this slow is a fleet that did not
    // fail over.
    assert!(
        percentile(&all_done, 0.99) < ROUND_DEADLINE,
        "failover p99 {:?}",
        percentile(&all_done, 0.99)
    );
}

// ------------------------------------------------------------------ what the chaos found
//
// Each test below sets up, deterministically, a situation the chaos run
// above met by chance, and fails while the product bug it names is there.
//
// Not set up here (the run meets it in most CI-sized runs: seeds 5, 8, 14,
// 15, 16): an agent's step decided while an earlier step's write on the
// same ticket was still held (a killed or stalled replica, a PostgreSQL
// restart) is dropped as "superseded by a person's change" once the
// earlier step lands: the update carrying it is stamped with the older
// state (the step's rows coalesced with those of a ticket event decided
// on it), Zendesk answers 409, and the per-field check takes l3map's own
// earlier write to the hand-off reason for a person's. The agent was
// answered 200 with the note accepted; the note never lands (the log says
// "a collision ... 2 dropped as superseded by a person"). A turn alone is
// sent without a stamp, so a test of two turns does not show it.

/// One replica first (the others are started by the test), the token
/// paced at 60 a minute (one request every 1.1 s once its burst is spent),
/// no polling: what a replica does is what a test asked of it.
const FOCUSED: Setup = Setup {
    name: "fleet-chaos-focused",
    limit: 60,
    lease_secs: 3,
    poll_secs: 0,
    running: &[1],
    migrate: true,
};

/// A connection to the shared test cluster, tried again for a while: the
/// fleet tests of tests/fleet.rs restart it.
async fn connect(url: &str) -> tokio_postgres::Client {
    let started = Instant::now();
    loop {
        match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                return client;
            }
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                panic!("the test database: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Commits that survive `pg_ctl restart -m immediate` (tests/fleet.rs
/// restarts the shared cluster): it runs with `synchronous_commit = off`,
/// which answers a commit before its WAL is written, so an immediate
/// restart would lose the last acknowledged transactions, as no
/// production server does.
async fn durable_commits(url: &str) {
    let client = connect(url).await;
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .expect("its name")
        .get(0);
    client
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" SET synchronous_commit = on"
        ))
        .await
        .expect("synchronous_commit = on");
}

/// When the ticket's API updates reached the emulator (ms since the epoch).
async fn updates_of(f: &Fleet, ticket: u64) -> Vec<i64> {
    requests_of(f, ticket, Some("PUT")).await
}

/// When the ticket's API requests (of `method`, or any) reached the
/// emulator (ms since the epoch), from its request log.
async fn requests_of(f: &Fleet, ticket: u64, method: Option<&str>) -> Vec<i64> {
    let log = f
        .admin(
            reqwest::Method::GET,
            &format!("/__l3map/requests?path=/api/v2/tickets/{ticket}.json"),
            None,
        )
        .await;
    log["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| method.is_none_or(|m| e["method"] == m))
        .filter_map(|e| e["at_ms"].as_i64())
        .collect()
}

/// A question no rule hands off (one ticket read), sent to `to`: its
/// status, and how long it took.
async fn ask(
    http: &reqwest::Client,
    to: &str,
    ticket: u64,
    id: String,
) -> (Result<reqwest::StatusCode, String>, Duration) {
    let asked = Instant::now();
    let answer = http
        .post(format!("{to}/v1/turns"))
        .bearer_auth(crate::common::stack::AGENT_TOKEN)
        .json(&json!({
            "turn_id": id,
            "ticket": ticket,
            "intent": "chaos_question",
            "summary": "Where is my card?",
        }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map(|r| r.status())
        .map_err(|e| e.to_string());
    (answer, asked.elapsed())
}

/// Questions on `ticket` to `to`, one after the other, until the token is
/// paced (the limit learned from the first answers, the burst spent): from
/// then on each request waits about a second for the shared budget.
async fn pace(f: &Fleet, to: &str, ticket: u64, tag: &str) -> Result<(), String> {
    for i in 0..30 {
        let (answer, took) = ask(&f.http, to, ticket, format!("{tag}-question-{i}")).await;
        if !answer.as_ref().is_ok_and(|s| s.is_success()) {
            return Err(format!("a question was not answered: {answer:?}"));
        }
        if took > Duration::from_millis(600) {
            return Ok(());
        }
    }
    Err("the token never got paced".into())
}

/// Replica 1, the only one running, decides the agent's first step on
/// `ticket` and claims its write, which waits about a second for the
/// token's budget (the agent's questions on `other` spent its burst);
/// then it is stopped (SIGSTOP). `Err` when the fault missed that window (the write
/// had reached Zendesk, or nothing was claimed): the caller tries again
/// on fresh tickets.
async fn hold_a_claim(f: &mut Fleet, ticket: u64, other: u64, tag: &str) -> Result<(), String> {
    let to = f.replicas[0].url();
    pace(f, &to, other, tag).await?;
    step(to, ticket, tag.to_string(), 0).await?;
    // The write is claimed at once (the deciding replica's worker is woken)
    // and waits about a second for the budget.
    tokio::time::sleep(Duration::from_millis(150)).await;
    f.replica(1).signal(libc::SIGSTOP);
    let at = unix_ms();
    f.note(format!("SIGSTOP replica 1, holding {ticket}'s first step"));
    if updates_of(f, ticket).await.iter().any(|t| *t <= at) {
        return Err(format!(
            "ticket {ticket}'s write reached Zendesk before the fault"
        ));
    }
    let pid = f.replicas[0].pid().unwrap_or(0);
    if claimed_by(f, ticket, pid).await == 0 {
        return Err(format!(
            "replica 1 held no claim on {ticket} when the fault hit"
        ));
    }
    Ok(())
}

/// How many of the ticket's desk actions process `pid` holds claimed, as
/// the store says (the precondition of the focused tests, not a verdict).
async fn claimed_by(f: &Fleet, ticket: u64, pid: u32) -> i64 {
    let c = connect(&f.store_url).await;
    let n: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM outbox WHERE connection = 'desk' AND record = $1 \
             AND state = 'sending' AND claimed_by LIKE $2",
            &[&ticket.to_string(), &format!("%:{pid}:%")],
        )
        .await
        .expect("the outbox")
        .get(0);
    n
}

/// The ticket's private notes and hand-off reason, as a person sees them.
async fn notes_of(f: &Fleet, ticket: u64) -> (Vec<String>, Value) {
    let t = f.tickets(&[ticket]).await.pop().unwrap_or_default();
    (private_notes(&t), field(&t, HANDOFF_REASON))
}

/// Found by the chaos run (seeds 1, 2, 3 and 7, and once the default seed:
/// a SIGSTOP or a cut database link in the middle of a burst): a replica that
/// claimed a write and stalled before sending it (stopped, or waiting for
/// a shared budget it could not reach) sends it when it wakes, although
/// its lease ran out meanwhile and another replica claimed the write
/// again, read the ticket back, and applied it. The note lands twice (and,
/// with later steps applied meanwhile, out of order). Settling is fenced by
/// the claim's epoch; the send is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stalled_between_its_claim_and_its_send_sends_nothing_once_its_lease_ran_out() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_stale_claim") else {
        return;
    };
    durable_commits(&url).await;
    let mut f = Fleet::start(&url, &FOCUSED).await;
    let mut held = None;
    for attempt in 1..=3 {
        let ids = create_tickets(&f, 2, &format!("stale claim {attempt}"), Some(f.customer)).await;
        let (ticket, other) = (ids[0], ids[1]);
        let tag = format!("stale-{attempt}");
        match hold_a_claim(&mut f, ticket, other, &tag).await {
            Ok(()) => {
                held = Some((ticket, tag));
                break;
            }
            Err(why) => {
                eprintln!("attempt {attempt}: {why}; again");
                f.replica(1).signal(libc::SIGCONT);
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }
    }
    let (ticket, tag) = held.unwrap_or_else(|| {
        panic!(
            "no claim was held in its send window in 3 tries\n{}",
            f.logs()
        )
    });
    // Replica 2 takes the write over once replica 1's lease has run out:
    // it reads the ticket back (no note yet) and writes the note.
    f.replica(2).spawn("started");
    let started = Instant::now();
    while notes_of(&f, ticket).await.0.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replica 2 never wrote the note\n{}",
            f.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Replica 1 wakes; its write waited for the budget, about a second.
    f.replica(1).signal(libc::SIGCONT);
    f.note("SIGCONT replica 1".into());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (notes, _) = notes_of(&f, ticket).await;
    assert_eq!(
        notes,
        [format!("Chaos step {tag} s1")],
        "ticket {ticket}: the note once (writes at {:?})\n{}{}",
        updates_of(&f, ticket).await,
        f.timeline_from(0),
        f.logs()
    );
}

/// Found by the chaos run (`L3MAP_CHAOS_SEED=0x15`, kills and PostgreSQL
/// restarts with the agent left out, round 20: 304 requests in a sliding
/// minute against 300, none answered 429, after a dozen restarts in that
/// minute): a replica that starts takes from the fleet's shared budget at
/// its plan's limit (the fintech desk says `plan enterprise`, 700 a
/// minute) until its first answer teaches it the account's (60 here).
/// On a budget the fleet keeps spent, its first requests are let through
/// at once, each charged 95 ms of the bucket instead of 1.1 s: every
/// restart sends more than the account allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_starts_on_a_spent_budget_waits_its_turn_like_the_others() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_new_replica") else {
        return;
    };
    durable_commits(&url).await;
    let mut f = Fleet::start(&url, &FOCUSED).await;
    let ids = create_tickets(&f, 1, "budget", Some(f.customer)).await;
    let ticket = ids[0];
    let first = f.replicas[0].url();
    pace(&f, &first, ticket, "spent")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", f.logs()));
    // Replica 1 keeps the budget spent: a question as soon as the last is
    // answered, each about a second apart.
    let (http, to) = (f.http.clone(), first.clone());
    let keep = tokio::spawn(async move {
        for i in 0.. {
            let _ = ask(&http, &to, ticket, format!("keep-{i}")).await;
        }
    });
    f.replica(2).spawn("started on a spent budget");
    f.healthy(2, Duration::from_secs(30))
        .await
        .expect("replica 2");
    // Replica 2's first requests: six questions at once.
    let second = f.replicas[1].url();
    let from = unix_ms();
    let asks = (0..6).map(|i| ask(&f.http, &second, ticket, format!("new-{i}")));
    for (answer, _) in futures_util::future::join_all(asks).await {
        assert!(answer.is_ok_and(|s| s.is_success()), "a question failed");
    }
    keep.abort();
    // At the emulator: the fleet's ticket reads from then on. A spent
    // budget lets one request through every 1.1 s, whoever sends it, so
    // the first 1.5 s hold at most two (three with the clock's slack).
    let mut reads: Vec<i64> = requests_of(&f, ticket, None)
        .await
        .into_iter()
        .filter(|at| *at >= from)
        .collect();
    reads.sort();
    let first_read = reads.first().copied().unwrap_or(from);
    let early = reads.iter().filter(|at| **at < first_read + 1_500).count();
    assert!(
        early <= 3,
        "{early} ticket reads within 1.5 s of a new replica's first question, on a budget that \
         lets one through every 1.1 s (limit 60 a minute): at {:?} ms",
        reads.iter().map(|at| at - first_read).collect::<Vec<_>>()
    );
}

/// `hashtext('l3map migrate')`: the advisory lock a migration holds
/// (src/runtime/store/postgres/migrate.rs, `LOCK_KEY`).
const MIGRATION_LOCK: i64 = 0x6c33_6d61_7000_0001;

/// Found by starting the chaos fleet's three replicas at once on an empty
/// database (2 runs in 4): one exits at start, "the database has 1 table(s)
/// and no l3map schema history, so it is not an l3map store". `l3map run`
/// checks the schema before it takes the migration's lock, so it can look
/// while another replica is migrating: refinery has created its history
/// table and not yet committed the first migration. docs/RUNTIME.md
/// promises that replicas starting together migrate once. Here the other
/// replica's migration is held in that state (its lock taken, the history
/// table created), so the check is made there every time; a replica must
/// wait for the lock, then migrate what it finds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_starting_while_another_migrates_waits_for_it_instead_of_refusing_the_store() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_migrating") else {
        return;
    };
    let setup = Setup {
        running: &[],
        migrate: false,
        ..FOCUSED
    };
    let mut f = Fleet::start(&url, &setup).await;
    let (other, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("the test database");
    let conn = tokio::spawn(conn);
    other
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .expect("the migration's lock");
    // What refinery creates first, before the first migration commits.
    other
        .batch_execute(
            "CREATE TABLE refinery_schema_history (version INT4 PRIMARY KEY, \
             name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255))",
        )
        .await
        .expect("refinery's history table");
    f.replica(1).spawn("started while another replica migrates");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let exited = f.replicas[0]
        .child
        .as_mut()
        .and_then(|c| c.try_wait().ok().flatten());
    // The other migration ends (here: rolled back) and lets go.
    other
        .batch_execute("DROP TABLE refinery_schema_history")
        .await
        .expect("drop");
    other
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .expect("unlock");
    drop(other);
    let _ = conn.await;
    assert!(
        exited.is_none(),
        "replica 1 exited ({exited:?}) while another replica was migrating, instead of waiting for it:\n{}",
        f.logs()
    );
    f.healthy(1, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", f.logs()));
}
