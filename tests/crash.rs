//! Crash safety (issue 6): `kill -9` of the runtime at seeded random points
//! during bursts, 25 times, with a restart after each. Every accepted event
//! must end with its actions applied exactly once.
//!
//! Two real processes on 127.0.0.1 (`l3map emulate`, `l3map run --config`).
//! Each round sends a burst of work:
//! * tickets created on Zendesk, whose webhooks the runtime decides into a
//!   hand-off (private note, group, status);
//! * agent turns asking for a refund hand-off.
//!
//! The kill lands at a random moment inside that burst. Work sent while the
//! runtime is down is not lost: Zendesk's webhooks are retried, and the
//! polling fallback resumes from its persisted cursor. The agent sends its
//! turn again with the same `turn_id` until one is answered 200, as an
//! agent must. The seed is printed, and `L3MAP_CRASH_SEED=N` replays a run.

use crate::common;

use common::stack;

use serde_json::json;
use stack::{Stack, AGENT_TOKEN};
use std::time::{Duration, Instant};

const ROUNDS: usize = 25;
const TICKETS_PER_ROUND: usize = 6;
const TURNS_PER_ROUND: usize = 3;

/// Sends a refund turn until the runtime answers it (a 200: recorded). A
/// refused connection or a 5xx means not recorded: send it again, with the
/// same `turn_id`, which makes a repeat a duplicate, never a second turn.
async fn send_turn(s: &Stack, ticket: u64, turn_id: &str) -> bool {
    let body = json!({
        "turn_id": turn_id,
        "ticket": ticket,
        "intent": "refund",
        "summary": format!("Wants a refund ({turn_id})"),
        "attempts": ["looked up the order"],
        "sentiment": "negative",
        "refund_amount": {"amount": "450.00", "currency": "USD"}
    });
    let sent = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(&body)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    matches!(sent, Ok(r) if r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_five_kills_during_bursts_lose_nothing_and_double_nothing() {
    let seed: u64 = std::env::var("L3MAP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261203);
    println!("crash seed {seed} (L3MAP_CRASH_SEED={seed} replays it)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut s = Stack::start(
        "crash",
        "[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 0\n",
    )
    .await;
    let mut tickets = Vec::new();
    let mut turns: Vec<(u64, String)> = Vec::new();
    let mut kills = Vec::new();
    let started = Instant::now();
    for round in 0..ROUNDS {
        // The kill lands somewhere in the burst: after `at` items of work,
        // plus a random sub-step delay, while earlier items are in flight.
        let items = TICKETS_PER_ROUND + TURNS_PER_ROUND;
        let at = rng.usize(0..items);
        let delay = Duration::from_millis(rng.u64(0..40));
        kills.push((at, delay));
        let mut pending_turns = Vec::new();
        for item in 0..items {
            if item == at {
                tokio::time::sleep(delay).await;
                s.kill_runtime();
            }
            if item < TICKETS_PER_ROUND {
                let id = s
                    .create_ticket(
                        &format!("Disputed charge r{round}i{item}"),
                        "premium",
                        Some("fraud_claim"),
                    )
                    .await;
                tickets.push(id);
            } else {
                // A turn on a quiet ticket of its own (no dispute), so its
                // hand-off note is the refund one alone.
                let id = s
                    .create_ticket(&format!("Refund r{round}i{item}"), "premium", None)
                    .await;
                let turn_id = format!("crash-{seed}-{round}-{item}");
                if !send_turn(&s, id, &turn_id).await {
                    pending_turns.push((id, turn_id.clone()));
                }
                turns.push((id, turn_id));
            }
        }
        s.start_runtime().await;
        // The agent retries what was not answered.
        for (id, turn_id) in pending_turns {
            let t = Instant::now();
            while !send_turn(&s, id, &turn_id).await {
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "turn {turn_id} never answered"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Every ticket gets its note; the outbox drains with nothing parked.
    let notes = |id: u64| {
        let s = &s;
        async move { s.private_notes(id).await }
    };
    let all: Vec<u64> = tickets
        .iter()
        .copied()
        .chain(turns.iter().map(|(id, _)| *id))
        .collect();
    let wait = Instant::now();
    'settle: loop {
        assert!(
            wait.elapsed() < Duration::from_secs(90),
            "not every ticket was handed off:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        for id in &all {
            if notes(*id).await.is_empty() {
                continue 'settle;
            }
        }
        break;
    }
    s.drained(Duration::from_secs(30)).await;
    // A polling round after the drain must add nothing anywhere.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.drained(Duration::from_secs(30)).await;
    let mut duplicated = 0;
    for id in &all {
        let n = notes(*id).await;
        if n.len() != 1 {
            duplicated += 1;
            eprintln!("ticket {id}: {} notes: {n:?}", n.len());
        }
    }
    for (id, turn_id) in &turns {
        let n = notes(*id).await;
        assert!(
            n.iter().any(|b| b.contains(turn_id.as_str())),
            "ticket {id}: the hand-off of {turn_id} is missing: {n:?}"
        );
    }
    let health = s.health().await;
    let events = health["outbox"]["events"].as_u64().unwrap_or(0);
    let done = health["outbox"]["done"].as_u64().unwrap_or(0);
    println!(
        "crash: seed {seed}, {ROUNDS} kills at {kills:?}, {} tickets, {} turns, {events} events, {done} actions applied, lost 0, duplicated {duplicated}, {:.1} s",
        tickets.len(),
        turns.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(duplicated, 0, "{}", s.log());
    assert_eq!(health["outbox"]["dead"], 0, "{health}");
}
