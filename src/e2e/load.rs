//! The article's burst test: more work per minute than the Zendesk token
//! may send, for minutes, and the retry queue must lose nothing.
//!
//! Turns of one passing scenario are sent to the agent API on fresh
//! tickets at a steady rate, chosen so that the runtime is asked for
//! `requests_per_minute` Zendesk requests a minute: each turn costs it a
//! few (the calibration counts them in the scenarios: reading the ticket
//! for the turn and for each webhook, one update carrying the hand-off).
//! Then the outbox must drain, and every action must be applied once:
//! read back from the API, and each private comment present exactly once.

use super::plan::{plan, Plan};
use super::report::Load;
use super::rig::Rig;
use super::rig::READ_BACK_AT_ONCE;
use super::scenarios::verify;
use super::timeline::{self, Sampler};
use crate::emulator::zendesk::DEV_TOKEN;
use crate::ir::TestCase;
use crate::runtime::ops::Op;
use crate::runtime::store::State;
use futures_util::{stream, StreamExt};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct LoadSpec<'a> {
    /// The emulators' added latency per answer (0 on a live target).
    pub api_latency: Duration,
    pub case: &'a TestCase,
    pub requests_per_minute: u32,
    pub limit_per_minute: u32,
    /// Zendesk requests the runtime makes per turn of this scenario.
    pub requests_per_turn: f64,
    /// The Zendesk connection whose requests are counted.
    pub desk: String,
    pub duration: Duration,
    /// Emulator minutes last 60 s / scale; 1 on a live instance.
    pub scale: u32,
    pub progress: &'a (dyn Fn(String) + Sync),
}

/// What one turn of the load became.
struct Sent {
    key: Option<String>,
    /// When it was sent, from the load's start.
    at: Duration,
    latency: Duration,
}

/// The API counters this step reports, before and after.
#[derive(Clone, Copy, Default)]
struct Counters {
    desk_calls: u64,
    calls: u64,
    errors: u64,
    limited: u64,
    retries: u64,
}

fn counters(rig: &Rig, desk: &str) -> Counters {
    let m = &rig.engine().metrics;
    let all = m.api_totals();
    Counters {
        desk_calls: m.api_counts(desk).calls,
        calls: all.calls,
        errors: all.errors,
        limited: all.rate_limited,
        retries: all.retries,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> u64 {
    timeline::percentile(sorted, p).unwrap_or(0)
}

/// The runtime token's Zendesk requests so far (counted at the emulator,
/// or by the runtime's own metrics on a live target) and the Zendesk
/// connection's 429s: what a timeline sample reads.
fn budget_counters(rig: &Rig, desk: &str) -> (u64, u64) {
    let api = rig.engine().metrics.api_counts(desk);
    (
        runtime_token_requests(rig).unwrap_or(api.calls),
        api.rate_limited,
    )
}

pub async fn run(rig: &Arc<Rig>, spec: LoadSpec<'_>) -> Load {
    let scale = spec.scale.max(1);
    // One emulator minute is 60 s / scale of real time.
    let every_for = |per_turn: f64| {
        let turns_per_minute = (f64::from(spec.requests_per_minute) / per_turn.max(1.0)).max(1.0);
        Duration::from_secs_f64(60.0 / f64::from(scale) / turns_per_minute)
    };
    let every = every_for(spec.requests_per_turn);
    let before = counters(rig, &spec.desk);
    let emulated_before = runtime_token_requests(rig);
    let started = Instant::now();
    let budget_before = budget_counters(rig, &spec.desk);
    let sampler = {
        let (rig, desk) = (rig.clone(), spec.desk.clone());
        Sampler::start(started, spec.duration / timeline::LOAD_SLICES, move || {
            budget_counters(&rig, &desk)
        })
    };
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0usize;
    let mut last_said = Instant::now();
    let mut calibrated = false;
    while started.elapsed() < spec.duration {
        tick.tick().await;
        // The scenarios' cost per turn is a first guess (they read and
        // write more than a load turn does). After a sixth of the load,
        // below the limit so nothing queues yet, what the turns so far
        // cost sets the rate for the rest: the load must ask for more
        // than the token allows, or it tests nothing.
        if !calibrated && n >= 5 && started.elapsed() >= spec.duration / 6 {
            calibrated = true;
            let calls = counters(rig, &spec.desk).desk_calls - before.desk_calls;
            let per_turn = calls as f64 / n as f64;
            if per_turn < spec.requests_per_turn {
                tick = tokio::time::interval(every_for(per_turn));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                tick.tick().await;
                (spec.progress)(format!(
                    "load: a turn costs {per_turn:.1} Zendesk requests; sending turns every {:.0} ms",
                    every_for(per_turn).as_secs_f64() * 1000.0
                ));
            }
        }
        let title = format!("l3map e2e {}: load {n}", rig.run_id);
        let p: Plan = plan(&rig.program, spec.case, &title, &rig.tags());
        let (rig2, sent2) = (rig.clone(), sent.clone());
        let key = format!("load-{n}");
        tasks.push(tokio::spawn(async move {
            let Ok(created) = rig2.create(&p, &key).await else {
                // Counted as a refused turn, which fails the step.
                lock(&sent2).push(Sent {
                    key: None,
                    at: started.elapsed(),
                    latency: Duration::ZERO,
                });
                return;
            };
            let t = Instant::now();
            let at = started.elapsed();
            let turn_id = format!("e2e-{}-{key}", rig2.run_id);
            let got = rig2.turn(&p.turn, &turn_id, &created).await.ok();
            let latency = t.elapsed();
            lock(&sent2).push(Sent {
                key: got,
                at,
                latency,
            });
        }));
        n += 1;
        if last_said.elapsed() >= Duration::from_secs(5) {
            last_said = Instant::now();
            (spec.progress)(format!(
                "load: {n} turns sent, {:.0} s of {:.0} s",
                started.elapsed().as_secs_f64(),
                spec.duration.as_secs_f64()
            ));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let last_turn = Instant::now();
    // The backlog drains at the token's pace: give it what that takes,
    // plus the outbox's own backoff, before calling anything lost.
    let sent = std::mem::take(&mut *lock(&sent));
    let drain_budget = Duration::from_secs(120) + spec.duration * 4 / scale;
    let keys: Vec<&String> = sent.iter().filter_map(|s| s.key.as_ref()).collect();
    let mut rows = Vec::new();
    for key in &keys {
        let remaining = drain_budget.saturating_sub(last_turn.elapsed());
        match rig.settled(key, remaining).await {
            Ok(r) => rows.extend(r),
            Err(_) => rows.extend(rig.rows(key).await.unwrap_or_default()),
        }
    }
    let drain_seconds = last_turn.elapsed().as_secs_f64();
    let samples = sampler.stop(started, budget_counters(rig, &spec.desk));
    let emulated_after = runtime_token_requests(rig);
    let windows = rig.emulated().and_then(|e| {
        e.zendesk
            .window_stats_for(&crate::connectors::Secret::new(DEV_TOKEN))
    });
    if let Some(e) = rig.emulated() {
        // What follows is the harness reading its results back, not the
        // runtime: at full speed.
        e.zendesk.faults().paused.store(true, Ordering::SeqCst);
        e.salesforce.faults().paused.store(true, Ordering::SeqCst);
    }
    (spec.progress)(format!(
        "load: {} turns answered; outbox drained in {drain_seconds:.1} s; reading every write back",
        keys.len()
    ));
    let after = counters(rig, &spec.desk);
    let verified = verify(rig, &rows).await;
    let applied = verified.iter().filter(|v| v.visible).count() as u64;
    let duplicated = duplicates(rig, &rows).await;
    let mut latencies: Vec<Duration> = sent.iter().map(|s| s.latency).collect();
    latencies.sort();
    let calls = after.calls - before.calls;
    let limited = after.limited - before.limited;
    let errors = (after.errors - before.errors).saturating_sub(limited);
    let actions = rows.len() as u64;
    // The requests were counted until the outbox drained: over the load
    // and the drain, or a backlog would read as more than the limit.
    let minutes = (seconds + drain_seconds) * f64::from(scale) / 60.0;
    let zendesk_requests = match (emulated_before, emulated_after) {
        (Some(b), Some(a)) => a.saturating_sub(b),
        _ => after.desk_calls - before.desk_calls,
    };
    let zendesk_actions = rows
        .iter()
        .filter(|r| r.connection == spec.desk && r.state == State::Done)
        .count() as u64;
    Load {
        requests_per_minute: spec.requests_per_minute,
        made_per_minute: (after.desk_calls - before.desk_calls) as f64 / minutes.max(1e-9),
        limit_per_minute: spec.limit_per_minute,
        time_scale: scale,
        seconds,
        turns: sent.len() as u64,
        turns_refused: sent.iter().filter(|s| s.key.is_none()).count() as u64,
        actions,
        applied,
        lost: actions - applied,
        duplicated,
        api_calls: calls,
        api_errors: errors,
        error_rate: if calls == 0 {
            0.0
        } else {
            errors as f64 / calls as f64
        },
        rate_limited: limited,
        retries: after.retries - before.retries,
        turn_ms_p50: percentile(&latencies, 0.50),
        turn_ms_p95: percentile(&latencies, 0.95),
        turn_ms_p99: percentile(&latencies, 0.99),
        drain_seconds,
        api_latency_ms: spec.api_latency.as_millis() as u64,
        zendesk_requests,
        zendesk_actions,
        requests_per_action: zendesk_requests as f64 / zendesk_actions.max(1) as f64,
        max_per_window: windows.as_ref().map(|w| w.max_in_window),
        windows_over: windows.as_ref().map(|w| w.windows_over),
        timeline: timeline::slices(
            budget_before,
            &samples,
            &sent
                .iter()
                .filter(|s| s.key.is_some())
                .map(|s| (s.at, s.latency))
                .collect::<Vec<_>>(),
            spec.limit_per_minute,
            scale,
        ),
    }
}

/// Requests the runtime's Zendesk token made, as the emulator counted
/// them; `None` on a live target.
fn runtime_token_requests(rig: &Rig) -> Option<u64> {
    rig.emulated().map(|e| {
        u64::from(
            e.zendesk
                .requests_for_token(&crate::connectors::Secret::new(DEV_TOKEN)),
        )
    })
}

/// Private comments written more than once: every Zendesk ticket the load
/// commented on is read, and each comment the outbox applied must be
/// there exactly once.
async fn duplicates(rig: &Rig, rows: &[crate::runtime::store::Row]) -> u64 {
    let mut bodies: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.state == State::Done) {
        if r.connection != rig.desk {
            continue;
        }
        if let (Ok(id), Ok(Op::ZendeskComment { body })) = (
            r.record.parse::<u64>(),
            serde_json::from_value::<Op>(r.op.clone()),
        ) {
            bodies.entry(id).or_default().push(body);
        }
    }
    let counts: Vec<u64> = stream::iter(bodies)
        .map(|(ticket, wanted)| async move {
            let Ok(comments) = rig.setup_zendesk().list_comments(ticket).await else {
                return 0;
            };
            wanted
                .iter()
                .map(|body| {
                    let n = comments
                        .iter()
                        .filter(|c| !c.public && &c.body == body)
                        .count() as u64;
                    n.saturating_sub(1)
                })
                .sum()
        })
        .buffer_unordered(READ_BACK_AT_ONCE)
        .collect()
        .await;
    let doubled = counts.iter().sum();
    doubled
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
