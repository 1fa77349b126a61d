//! Fault injection against the emulators (issue 6): the runtime, started
//! in this process as `l3map run` starts it, takes a burst of agent turns
//! (each a refund hand-off writing a private Zendesk comment, a field, a
//! group and a status, and a Salesforce CaseComment and Case field) while
//! the emulators, or the network between, misbehave in one way per test.
//!
//! Every test then proves, by reading the emulators' records directly:
//! nothing lost (every action applied and visible), nothing duplicated
//! (each hand-off comment exactly once on its ticket and its Case), the
//! outbox drained with no dead letters, and the fault shown in the
//! runtime's metrics and logs. Each prints a `FIGURES` line for
//! docs/RELIABILITY.md. The dice are seeded, so a failure reproduces.
//!
//! Each test runs on one thread so its thread-local log subscriber sees
//! every task it starts (as tests/connector_logs.rs does).

use crate::common;

use common::logs::Capture;
use l3map::e2e::plan::{plan, Plan};
use l3map::e2e::rig::{Created, EmulatorTarget, Rig, Tuning};
use l3map::e2e::scenarios::verify;
use l3map::emulator::chaos::Chaos;
use l3map::emulator::faults::Faults;
use l3map::ir::TestCase;
use l3map::runtime::ops::Op;
use l3map::runtime::store::{Row, State, Stats};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAPPINGS: &str = "mappings/fintech";
/// The refund hand-off: four Zendesk writes and two Salesforce writes.
const CASE: &str = "refund_over_threshold_hands_off_with_full_context";
const TURNS: usize = 40;
/// Everything must settle within this, faults included.
const SETTLE: Duration = Duration::from_secs(60);

// ------------------------------------------------------------ log capture

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The runtime's logs at debug, captured for this test's thread.
fn capture_logs() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("l3map=debug")
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

// ------------------------------------------------------------ the rig

/// Faults that start paused: the test's own records are set up first.
fn faults(seed: u64, f: impl FnOnce(&mut Faults)) -> Arc<Faults> {
    let mut faults = Faults {
        paused: AtomicBool::new(true),
        rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        ..Faults::default()
    };
    f(&mut faults);
    Arc::new(faults)
}

/// The same faults on both emulators (separate dice).
fn both(seed: u64, f: impl Fn(&mut Faults)) -> Tuning {
    let zd = faults(seed, &f);
    let sf = faults(seed + 1, &f);
    Tuning {
        zendesk: Some(Box::new(move |o| o.faults = zd)),
        salesforce: Some(Box::new(move |o| o.faults = sf)),
        ..Tuning::default()
    }
}

async fn rig(tune: Tuning) -> Arc<Rig> {
    let rig = Rig::emulator_tuned(
        EmulatorTarget {
            mappings: Path::new(MAPPINGS),
            // The plan's 700 a minute, in minutes of 10 s: the limiter
            // paces but never holds a burst for long.
            limit: 700,
            scale: 6,
        },
        tune,
    )
    .await
    .expect("the emulators and the runtime start");
    Arc::new(rig)
}

fn pause(rig: &Rig, paused: bool) {
    let e = rig.emulated().expect("the emulator target");
    e.zendesk.faults().paused.store(paused, Ordering::SeqCst);
    e.salesforce.faults().paused.store(paused, Ordering::SeqCst);
}

fn injected(rig: &Rig) -> u32 {
    let e = rig.emulated().expect("the emulator target");
    e.zendesk.faults().injected.load(Ordering::SeqCst)
        + e.salesforce.faults().injected.load(Ordering::SeqCst)
}

fn refund_case() -> TestCase {
    let (_, tests) = l3map::runtime::compile::compile_with_tests(Path::new(MAPPINGS))
        .expect("the fintech mappings compile");
    tests
        .into_iter()
        .find(|t| t.name == CASE)
        .expect("the refund hand-off test block")
}

/// One turn of the burst: its ticket and Case, and what it sends.
struct Turn {
    created: Created,
    plan: Plan,
    id: String,
}

/// Creates `n` tickets with a Case each (faults paused), each turn with a
/// summary of its own so every hand-off comment is distinct.
async fn prepare(rig: &Arc<Rig>, n: usize) -> Vec<Turn> {
    let case = refund_case();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let rig = rig.clone();
        let title = format!("fault burst {}: turn {i}", rig.run_id);
        let mut p = plan(&rig.program, &case, &title, &rig.tags());
        p.turn.insert(
            "summary".into(),
            json!(format!("Wants a refund for order {}-{i}", rig.run_id)),
        );
        tasks.spawn(async move {
            let created = rig.create(&p, &format!("t{i}")).await;
            (i, created, p)
        });
    }
    let mut turns = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, created, plan) = done.expect("a create task");
        turns.push((
            i,
            Turn {
                created: created.expect("a ticket and a Case"),
                plan,
                id: String::new(),
            },
        ));
    }
    turns.sort_by_key(|(i, _)| *i);
    let run = rig.run_id.clone();
    turns
        .into_iter()
        .map(|(i, mut t)| {
            t.id = format!("fault-{run}-{i}");
            t
        })
        .collect()
}

/// Sends every turn at once, as an agent would, each retried (same turn
/// id, so never decided twice) until the agent API records it. Returns
/// the event keys and how many sends were refused on the way.
async fn send(rig: &Arc<Rig>, turns: &[Turn]) -> (Vec<String>, u32) {
    let mut tasks = tokio::task::JoinSet::new();
    for t in turns {
        let (rig, turn, id, created) = (
            rig.clone(),
            t.plan.turn.clone(),
            t.id.clone(),
            t.created.clone(),
        );
        tasks.spawn(async move {
            let mut refused = 0;
            for _ in 0..30 {
                match rig.turn(&turn, &id, &created).await {
                    Ok(key) => return (Some(key), refused),
                    Err(_) => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                }
            }
            (None, refused)
        });
    }
    let (mut keys, mut refused) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (key, r) = done.expect("a turn task");
        keys.push(key.expect("the agent API records the turn within 30 tries"));
        refused += r;
    }
    (keys, refused)
}

fn stats(rig: &Rig) -> Stats {
    rig.engine().store.stats().expect("the store reads")
}

/// Waits until the outbox is idle and stays so (webhooks of the last
/// writes may still queue more).
async fn drained(rig: &Rig) -> Stats {
    let started = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    loop {
        let s = stats(rig);
        if s.pending + s.sending == 0 {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_millis(1500) {
                return s;
            }
        } else {
            quiet_since = None;
        }
        assert!(
            started.elapsed() < SETTLE,
            "the outbox did not drain within {SETTLE:?}: {} pending, {} sending",
            s.pending,
            s.sending
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------ the proof

/// What one test shows, for docs/RELIABILITY.md.
#[derive(Debug, Default)]
struct Figures {
    started: Option<Instant>,
    fault: &'static str,
    turns: usize,
    events: u64,
    actions: usize,
    injected: u32,
    refused_sends: u32,
    lost: usize,
    duplicated: usize,
    seconds: f64,
}

impl Figures {
    fn print(&self) {
        println!(
            "FIGURES fault={} turns={} events={} actions={} faults_injected={} refused_sends={} lost={} duplicated={} seconds={:.1}",
            self.fault,
            self.turns,
            self.events,
            self.actions,
            self.injected,
            self.refused_sends,
            self.lost,
            self.duplicated,
            self.seconds
        );
    }
}

/// Every action of `keys` applied, visible, and its comment on the ticket
/// and the Case exactly once; the outbox empty with no dead letters.
async fn prove(
    rig: &Rig,
    turns: &[Turn],
    keys: &[String],
    f: &mut Figures,
    count: impl Fn(&Rig) -> u32,
) {
    let s = drained(rig).await;
    f.injected = count(rig);
    // Read back untouched by the faults.
    pause(rig, true);
    let mut rows: Vec<Row> = Vec::new();
    for key in keys {
        rows.extend(rig.rows(key).await.expect("the outbox reads"));
    }
    f.events = s.events;
    f.actions = rows.len();
    assert_eq!(
        rows.len(),
        turns.len() * 6,
        "each refund hand-off decides six actions"
    );
    let dead: Vec<&Row> = rows.iter().filter(|r| r.state == State::Dead).collect();
    assert!(
        dead.is_empty(),
        "parked: {:?}",
        dead.iter().map(|r| &r.last_error).collect::<Vec<_>>()
    );
    assert_eq!(
        (s.pending, s.sending, s.dead),
        (0, 0, 0),
        "the outbox drained"
    );
    let seen = verify(rig, &rows).await;
    f.lost = seen.iter().filter(|v| !v.visible).count();
    let e = rig.emulated().expect("the emulator target");
    // Zendesk: each ticket holds its hand-off comment once.
    let mut doubled = 0;
    for r in rows.iter().filter(|r| r.connection == rig.desk) {
        let Ok(Op::ZendeskComment { body }) = serde_json::from_value::<Op>(r.op.clone()) else {
            continue;
        };
        let id: u64 = r.record.parse().expect("a ticket id");
        let n = e
            .zendesk
            .comments(id)
            .iter()
            .filter(|c| c["public"] == false && c["body"] == body.as_str())
            .count();
        assert!(n >= 1, "ticket {id}: the hand-off comment is missing");
        doubled += n - 1;
    }
    // Salesforce: each Case holds one CaseComment and the hand-off reason.
    let mut per_case: BTreeMap<String, usize> = BTreeMap::new();
    for c in e.salesforce.records("CaseComment") {
        if let Some(parent) = c.get("ParentId").and_then(Value::as_str) {
            *per_case.entry(parent.to_string()).or_default() += 1;
        }
    }
    for t in turns {
        let case = t.created.case.as_deref().expect("each turn has a Case");
        let n = per_case.get(case).copied().unwrap_or(0);
        assert!(n >= 1, "Case {case}: the CaseComment is missing");
        doubled += n - 1;
        let record = e.salesforce.record("Case", case).expect("the Case exists");
        assert_eq!(
            record["AI_Handoff_Reason__c"], "refund_threshold",
            "Case {case}"
        );
        let ticket = e
            .zendesk
            .ticket(t.created.ticket)
            .expect("the ticket exists");
        assert_eq!(
            ticket["custom_status_id"], 18794539035111u64,
            "ticket {} is escalated_tier2",
            t.created.ticket
        );
    }
    f.duplicated = doubled;
    f.seconds = f.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
    f.print();
    assert_eq!(f.lost, 0, "actions lost: {seen:?}");
    assert_eq!(f.duplicated, 0, "actions applied twice");
}

fn counter(rig: &Rig, name: &str, labels: &[(&str, &str)]) -> u64 {
    rig.engine().metrics.counter_sum(name, labels)
}

/// The common run: set up, let the faults loose, send the burst, prove.
/// `count` tells how many faults were injected (by default what the
/// emulators' fault layers counted).
async fn burst(
    rig: &Arc<Rig>,
    fault: &'static str,
    arm: impl FnOnce(&Rig),
    count: impl Fn(&Rig) -> u32,
) -> Figures {
    let started = Instant::now();
    let turns = prepare(rig, TURNS).await;
    arm(rig);
    let (keys, refused) = send(rig, &turns).await;
    let mut f = Figures {
        started: Some(started),
        fault,
        turns: turns.len(),
        refused_sends: refused,
        ..Figures::default()
    };
    prove(rig, &turns, &keys, &mut f, count).await;
    f
}

fn assert_no_panic(logs: &Capture) {
    assert!(!logs.text().contains("panicked"), "a task panicked");
}

// ------------------------------------------------------------ the faults

#[tokio::test(flavor = "current_thread")]
async fn random_5xx_on_both_apis() {
    let (logs, _guard) = capture_logs();
    let rig = rig(both(0x5005, |f| f.error_rate = 0.10)).await;
    let f = burst(&rig, "random_5xx", |r| pause(r, false), injected).await;
    assert!(f.injected >= 10, "10 % of the burst's requests: {f:?}");
    let transient = counter(&rig, "l3map_api_errors_total", &[("kind", "transient")])
        + counter(&rig, "l3map_api_errors_total", &[("kind", "unconfirmed")]);
    assert!(transient > 0, "5xx counted by kind");
    assert!(
        counter(&rig, "l3map_retries_total", &[]) > 0,
        "retries counted"
    );
    assert!(logs.count("HTTP 503") > 0, "the 503s are in the logs");
    assert_no_panic(&logs);
}

/// Answers held past the runtime's 1 s per-attempt timeout after the
/// write was carried out: the unconfirmed read-back path must not write
/// a comment twice.
#[tokio::test(flavor = "current_thread")]
async fn timeouts_after_the_write_landed() {
    let (logs, _guard) = capture_logs();
    let mut tune = both(0x7173, |f| {
        f.stall_rate = 0.08;
        f.stall = Duration::from_millis(1500);
    });
    tune.timeout = Some(Duration::from_secs(1));
    let rig = rig(tune).await;
    let f = burst(&rig, "timeouts", |r| pause(r, false), injected).await;
    assert!(f.injected >= 5, "{f:?}");
    let failed = counter(&rig, "l3map_api_errors_total", &[("kind", "transient")])
        + counter(&rig, "l3map_api_errors_total", &[("kind", "unconfirmed")]);
    assert!(failed > 0, "timeouts counted");
    assert!(logs.count("timed out") > 0, "the timeouts are in the logs");
    assert_no_panic(&logs);
}

/// A chaos proxy between the runtime and each emulator resets 10 % of
/// the requests, half before they reach the API, half after it answered.
#[tokio::test(flavor = "current_thread")]
async fn connection_resets() {
    let (logs, _guard) = capture_logs();
    let zd = Chaos::new(0.10, 0xc4a05);
    let sf = Chaos::new(0.10, 0xc4a06);
    zd.paused.store(true, Ordering::SeqCst);
    sf.paused.store(true, Ordering::SeqCst);
    let tune = Tuning {
        chaos: Some((zd.clone(), sf.clone())),
        ..Tuning::default()
    };
    let rig = rig(tune).await;
    let f = burst(
        &rig,
        "connection_resets",
        |_| {
            zd.paused.store(false, Ordering::SeqCst);
            sf.paused.store(false, Ordering::SeqCst);
        },
        |_| zd.resets() + sf.resets(),
    )
    .await;
    assert!(f.injected >= 5, "{f:?}");
    assert!(zd.reset_after.load(Ordering::SeqCst) + sf.reset_after.load(Ordering::SeqCst) > 0);
    assert!(
        counter(&rig, "l3map_api_errors_total", &[("kind", "transient")])
            + counter(&rig, "l3map_api_errors_total", &[("kind", "unconfirmed")])
            > 0,
        "resets counted"
    );
    assert!(
        logs.count("temporary failure") > 0,
        "the resets are in the logs"
    );
    assert_no_panic(&logs);
}

/// Every answer 250 ms late, well within the timeout: nothing fails, the
/// latency shows in the turn-latency histogram and the applied lines.
#[tokio::test(flavor = "current_thread")]
async fn slow_responses() {
    let (logs, _guard) = capture_logs();
    let rig = rig(both(0x510, |f| f.latency = Duration::from_millis(250))).await;
    let total = |r: &Rig| {
        let e = r.emulated().expect("the emulator target");
        e.zendesk.total_requests() + e.salesforce.requests().values().sum::<u32>()
    };
    let before = Mutex::new(0);
    burst(
        &rig,
        "slow_responses",
        |r| {
            *lock(&before) = total(r);
            pause(r, false);
        },
        |r| total(r) - *lock(&before),
    )
    .await;
    let text = rig.engine().metrics.render();
    let sample = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let (sum, count) = (
        sample("l3map_turn_latency_seconds_sum"),
        sample("l3map_turn_latency_seconds_count"),
    );
    assert!(count >= TURNS as f64, "{text}");
    assert!(
        sum / count >= 0.25,
        "mean turn latency {:.3} s",
        sum / count
    );
    assert_eq!(
        counter(&rig, "l3map_api_errors_total", &[]),
        0,
        "slow is not failed"
    );
    let slow = logs
        .text()
        .lines()
        .filter(|l| l.contains("applied"))
        .filter_map(|l| {
            l.split("latency_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .filter(|ms| *ms >= 250)
        .count();
    assert!(slow > 0, "the latency is in the applied lines");
    assert_no_panic(&logs);
}

/// Every request answered 429 with Retry-After for 3 s, then normal:
/// Zendesk's as the burst starts, Salesforce's as its first writes go
/// out. A client honours Retry-After for its whole token, so a storm
/// costs a few 429s, not one per request.
#[tokio::test(flavor = "current_thread")]
async fn a_429_storm() {
    let (logs, _guard) = capture_logs();
    let rig = rig(both(0x429, |_| {})).await;
    let f = burst(
        &rig,
        "429_storm",
        |r| {
            pause(r, false);
            let e = r.emulated().expect("the emulator target");
            e.zendesk.faults().storm(Duration::from_secs(3));
            let sf = e.salesforce.clone();
            let quiet = sf.count("POST", "CaseComment");
            tokio::spawn(async move {
                while sf.count("POST", "CaseComment") == quiet {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                sf.faults().storm(Duration::from_secs(3));
            });
        },
        injected,
    )
    .await;
    let e = rig.emulated().expect("the emulator target");
    assert!(
        e.zendesk.faults().injected.load(Ordering::SeqCst) >= 1,
        "{f:?}"
    );
    assert!(
        e.salesforce.faults().injected.load(Ordering::SeqCst) >= 1,
        "{f:?}"
    );
    assert!(
        counter(&rig, "l3map_api_429_total", &[]) > 0,
        "429s counted"
    );
    assert!(
        counter(&rig, "l3map_api_errors_total", &[("kind", "rate_limited")]) > 0,
        "429s counted by kind"
    );
    assert!(logs.count("rate limited") > 0, "the 429s are in the logs");
    assert_no_panic(&logs);
}

/// Salesforce sessions last 300 ms, so they expire again and again
/// during the burst. (The runtime's Zendesk connection uses a fixed OAuth
/// token from the mapping's `token` reference: no expiry to inject.)
#[tokio::test(flavor = "current_thread")]
async fn token_expiry_mid_run() {
    let (logs, _guard) = capture_logs();
    let tune = Tuning {
        salesforce: Some(Box::new(|o| o.token_lifetime = Duration::from_millis(300))),
        ..Tuning::default()
    };
    let rig = rig(tune).await;
    let e = rig.emulated().expect("the emulator target");
    let grants = e.salesforce.token_grants();
    let f = burst(
        &rig,
        "token_expiry",
        |_| {},
        |_| e.salesforce.token_grants() - grants,
    )
    .await;
    assert!(f.injected >= 2, "sessions renewed mid-run: {f:?}");
    assert!(
        logs.count("salesforce session refreshed") >= 2,
        "the renewals are in the logs"
    );
    // Absorbed inside the attempt: not one auth failure reached the outbox.
    assert_eq!(
        counter(&rig, "l3map_api_errors_total", &[("kind", "auth")]),
        0
    );
    assert_no_panic(&logs);
}

/// Zendesk delivers every webhook twice and shuffles what is queued
/// together. Tickets are created with a fraud claim, which the
/// `suspected_fraud` escalation hands off from the webhook alone.
#[tokio::test(flavor = "current_thread")]
async fn webhook_redelivery_and_reordering() {
    let (logs, _guard) = capture_logs();
    let tune = Tuning {
        zendesk: Some(Box::new(|o| {
            if let Some(w) = o.webhook.as_mut() {
                w.redeliver = true;
                w.reorder = Some(0x3e0);
            }
        })),
        ..Tuning::default()
    };
    let rig = rig(tune).await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TURNS {
        let rig = rig.clone();
        tasks.spawn(async move {
            let mut ticket = l3map::connectors::zendesk::TicketChanges::default()
                .subject(format!("fault burst {}: fraud {i}", rig.run_id))
                .public_comment("My card was used in another country".to_string())
                .status("open", Some(18794539035102))
                .field(360001238, "fraud_claim");
            ticket.tags = Some(rig.tags());
            let p = Plan {
                ticket,
                wants_case: false,
                turn: Default::default(),
            };
            rig.create(&p, &format!("f{i}")).await
        });
    }
    let mut tickets = Vec::new();
    while let Some(done) = tasks.join_next().await {
        tickets.push(done.expect("a create task").expect("a ticket").ticket);
    }
    let s = drained(&rig).await;
    let rows = rig
        .engine()
        .store
        .list(None, 100_000)
        .expect("the outbox reads");
    let e = rig.emulated().expect("the emulator target");
    let deliveries = e.zendesk.deliveries();
    let mut f = Figures {
        seconds: started.elapsed().as_secs_f64(),
        fault: "webhook_redelivery_reordering",
        turns: tickets.len(),
        events: s.events,
        actions: rows.len(),
        injected: (deliveries.len() / 2) as u32,
        started: Some(started),
        ..Figures::default()
    };
    assert_eq!(
        (s.pending, s.sending, s.dead),
        (0, 0, 0),
        "the outbox drained"
    );
    let seen = verify(&rig, &rows).await;
    f.lost =
        seen.iter().filter(|v| !v.visible).count() + (tickets.len() * 3).saturating_sub(rows.len());
    let fraud_ops = e.zendesk.group_id("Fraud Operations");
    for id in &tickets {
        let handoffs = e
            .zendesk
            .comments(*id)
            .iter()
            .filter(|c| c["public"] == false)
            .count();
        f.duplicated += handoffs.saturating_sub(1);
        let t = e.zendesk.ticket(*id).expect("the ticket exists");
        assert_eq!(t["custom_status_id"], 18794539035106u64, "ticket {id}");
        assert_eq!(t["group_id"], json!(fraud_ops), "ticket {id}");
        let puts = e
            .zendesk
            .requests(&format!("PUT /api/v2/tickets/{id}.json"));
        assert_eq!(puts, 1, "ticket {id} was written once");
    }
    f.print();
    assert_eq!(
        rows.len(),
        tickets.len() * 3,
        "three hand-off actions per ticket"
    );
    assert_eq!(f.lost, 0);
    assert_eq!(f.duplicated, 0);
    assert!(
        f.injected >= tickets.len() as u32,
        "every event delivered twice"
    );
    let dup = counter(
        &rig,
        "l3map_events_duplicate_total",
        &[("source", "webhook")],
    );
    assert!(dup >= tickets.len() as u64, "redeliveries counted: {dup}");
    assert!(
        logs.count("webhook delivery held events already recorded") > 0,
        "the redeliveries are in the logs"
    );
    assert_no_panic(&logs);
}
