//! The mappings' own `test` blocks, run live. A block whose event is an
//! agent turn and which expects writes becomes a scenario: a ticket (and a
//! Case when the event names one) is created on the target as the event
//! describes it, the turn is sent to the agent API, and then
//!
//! - the decision the runtime made on the ticket *as the API returned it*
//!   is checked against the block's `expect` lines, and
//! - every action it queued is read back from the API once applied.
//!
//! So the examples ops already maintain for `l3map test` are what proves a
//! sandbox is wired correctly, and a new rule with a test is covered live
//! without touching `l3map e2e`.

use super::plan::{place, plan};
use super::report::{Scenario, Verified};
use super::rig::{Rig, READ_BACK_AT_ONCE};
use crate::eval::testing;
use crate::ir::{Program, TestCase};
use crate::runtime::ops::Op;
use crate::runtime::store::{Row, State};
use futures_util::{stream, StreamExt};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Runs one test block live.
pub async fn run(rig: &Rig, program: &Program, case: &TestCase, n: usize) -> Scenario {
    let mut sc = Scenario {
        test: case.name.clone(),
        at: place(program, case),
        ticket: 0,
        case: None,
        turn_ms: 0,
        actions: vec![],
        failures: vec![],
        passed: false,
    };
    let title = format!("l3map e2e {}: {}", rig.run_id, case.name);
    let p = plan(program, case, &title, &rig.tags());
    let created = match rig.create(&p, &format!("scenario-{n}")).await {
        Ok(c) => c,
        Err(e) => {
            sc.failures.push(e);
            return sc;
        }
    };
    sc.ticket = created.ticket;
    sc.case = created.case.clone();
    let turn_id = format!("e2e-{}-{n}", rig.run_id);
    let started = Instant::now();
    let answer = rig.turn(&p.turn, &turn_id, &created).await;
    sc.turn_ms = started.elapsed().as_millis() as u64;
    let key = match answer {
        Ok(key) => key,
        Err(e) => {
            sc.failures.push(e);
            return sc;
        }
    };
    let rows = match rig.settled(&key, Duration::from_secs(60)).await {
        Ok(rows) => rows,
        Err(e) => {
            sc.failures.push(e);
            return sc;
        }
    };
    sc.failures.extend(expectations(rig, program, case, &key));
    sc.actions = verify(rig, &rows).await;
    sc.passed = sc.failures.is_empty() && sc.actions.iter().all(|a| a.visible);
    sc
}

/// The block's `expect` lines against the decision made live: the event
/// as stored (the ticket as the API returned it) decided again by the same
/// revision.
fn expectations(rig: &Rig, program: &Program, case: &TestCase, key: &str) -> Vec<String> {
    let stored = match rig.engine().store.event(key) {
        Ok(Some(ev)) => ev,
        Ok(None) => return vec![format!("the runtime has no event {key}")],
        Err(e) => return vec![e.to_string()],
    };
    let live = TestCase {
        event: stored,
        ..case.clone()
    };
    let out = testing::run(program, &live);
    let mut failures: Vec<String> = out
        .failures
        .into_iter()
        .map(|f| {
            format!(
                "{} — expected {}, the live ticket gave {}",
                f.expect, f.expected, f.actual
            )
        })
        .collect();
    if let Some(e) = out.error {
        failures.push(e);
    }
    failures
}

/// Reads every action back from the API, grouped by record as the worker
/// sends them.
pub async fn verify(rig: &Rig, rows: &[Row]) -> Vec<Verified> {
    let mut by_record: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_record
            .entry((r.connection.clone(), r.record.clone()))
            .or_default()
            .push(r);
    }
    // Records are read back a few at a time: one after another, 250
    // records at 300 ms a read took most of a quick run. The connectors'
    // limiter still spaces the reads on a live instance.
    let seen: Vec<_> = stream::iter(by_record)
        .map(|((connection, record), rows)| async move {
            let ops: Vec<(i64, Op)> = rows
                .iter()
                .filter(|r| r.state == State::Done)
                .filter_map(|r| Some((r.id, serde_json::from_value(r.op.clone()).ok()?)))
                .collect();
            let seen = rig.applier.visible(&connection, &record, &ops).await;
            (connection, record, rows, seen)
        })
        .buffered(READ_BACK_AT_ONCE)
        .collect()
        .await;
    let mut out = Vec::new();
    for (connection, record, rows, seen) in seen {
        for r in rows {
            let (visible, error) = match (&seen, r.state) {
                (Ok(ids), State::Done) => (ids.contains(&r.id), None),
                (Err(e), State::Done) => (false, Some(format!("read back: {e}"))),
                (_, _) => (false, r.last_error.clone()),
            };
            out.push(Verified {
                connection: connection.clone(),
                record: record.clone(),
                kind: r.kind.clone(),
                rule: r.rule.clone(),
                visible,
                state: r.state.as_str().to_string(),
                error,
            });
        }
    }
    out
}
