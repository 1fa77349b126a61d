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

use super::report::{Scenario, Verified};
use super::rig::Rig;
use crate::connectors::zendesk::TicketChanges;
use crate::eval::testing;
use crate::ir::{Expectation, Program, TestCase};
use crate::runtime::ops::Op;
use crate::runtime::store::{Row, State};
use futures_util::{stream, StreamExt};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The fields of a test event's `turn` the agent API takes.
const TURN_FIELDS: &[&str] = &[
    "intent",
    "summary",
    "attempts",
    "sentiment",
    "refund_amount",
    "requested_status",
    "confidence",
    "language",
    "order_id",
    "product",
];

/// Whether a test block can run live, or why not. Runnable: an agent
/// turn on a ticket, expecting writes, whose event needs nothing the
/// sequence cannot create (a Case, yes; a Contact or Account the runtime
/// would have to find linked to the ticket, no).
pub fn runnable(case: &TestCase) -> Result<(), String> {
    let ev = agent_turn(case)?;
    let writes = case.expects.iter().any(|e| {
        matches!(
            e.what,
            Expectation::Status { .. }
                | Expectation::Field { .. }
                | Expectation::Comment { .. }
                | Expectation::Group { .. }
        )
    });
    if !writes {
        return Err("expects no writes".into());
    }
    creatable_records(&ev)?;
    if ["requester_name", "requester_email"]
        .iter()
        .any(|k| ev["ticket"].get(*k).is_some())
    {
        return Err("needs a named requester, which the sequence does not create".into());
    }
    Ok(())
}

/// Whether a test block's turn can be replayed on records created from
/// its event, whatever it expects: what the demo of `l3map run DIR`
/// sends (docs/RUNTIME.md, "The embedded default"). Its expectations are
/// not checked there, so a named requester does not matter.
pub fn replayable(case: &TestCase) -> Result<(), String> {
    creatable_records(&agent_turn(case)?)
}

/// The event of a test block that is an agent turn on a ticket.
pub fn agent_turn(case: &TestCase) -> Result<Json, String> {
    let ev = serde_json::from_str::<Json>(&case.event)
        .map_err(|_| "its event is not JSON".to_string())?;
    if ev["kind"] != "agent_turn" || !ev["ticket"].is_object() {
        return Err("not an agent turn on a ticket (l3map test covers it offline)".into());
    }
    Ok(ev)
}

/// A Case is created with the ticket; any other record the event names
/// would have to be found linked to the ticket.
fn creatable_records(ev: &Json) -> Result<(), String> {
    if let Some(records) = ev["records"].as_object() {
        if let Some(other) = records.keys().find(|k| k.as_str() != "Case") {
            return Err(format!(
                "needs a Salesforce {other} linked to the ticket, which the sequence does not create"
            ));
        }
    }
    Ok(())
}

/// What a scenario sends: the ticket to create, the Case (if any), and the
/// turn.
pub struct Plan {
    pub ticket: TicketChanges,
    pub wants_case: bool,
    pub turn: Map<String, Json>,
}

/// Reads a test event into what to create and send. `tags` mark the
/// records as this run's, for cleanup.
pub fn plan(program: &Program, case: &TestCase, title: &str, tags: &[String]) -> Plan {
    let ev: Json = serde_json::from_str(&case.event).unwrap_or(Json::Null);
    let t = &ev["ticket"];
    let summary = ev["turn"]["summary"]
        .as_str()
        .or_else(|| t["subject"].as_str())
        .unwrap_or("l3map e2e");
    let mut ticket = TicketChanges::default()
        .subject(title.to_string())
        .public_comment(summary.to_string());
    if let Some(name) = t["status"].as_str() {
        if let Some(s) = program
            .status_tables
            .iter()
            .flat_map(|table| &table.statuses)
            .find(|s| s.name == name)
        {
            ticket = ticket.status(s.category.as_str(), s.custom_status_id);
        }
    }
    if let Some(p) = t["priority"].as_str() {
        ticket.priority = Some(p.to_string());
    }
    let mut all_tags: Vec<String> = t["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    all_tags.extend(tags.iter().cloned());
    ticket.tags = Some(all_tags);
    if let Some(fields) = t["custom_fields"].as_object() {
        for (id, value) in fields {
            if let Ok(id) = id.parse::<u64>() {
                ticket = ticket.field(id, value.clone());
            }
        }
    }
    let mut turn = Map::new();
    for k in TURN_FIELDS {
        if let Some(v) = ev["turn"].get(*k) {
            turn.insert((*k).to_string(), v.clone());
        }
    }
    Plan {
        ticket,
        wants_case: ev["records"]["Case"].is_object(),
        turn,
    }
}

/// The fields a test event gives its Case, as a Case can be created with
/// them: the plain values (`Status`, `Type`, ...), not its `Id` (the
/// created Case has its own) nor related records.
pub fn case_fields(case: &TestCase) -> Map<String, Json> {
    let ev: Json = serde_json::from_str(&case.event).unwrap_or(Json::Null);
    ev["records"]["Case"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| k.as_str() != "Id" && !v.is_object() && !v.is_array() && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Where a test block is, `file:line`.
pub fn place(program: &Program, case: &TestCase) -> String {
    format!(
        "{}:{}",
        program
            .files
            .get(case.loc.file as usize)
            .map_or("?", String::as_str),
        case.loc.line
    )
}

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
/// How many records the read-back and the cleanup handle at once.
pub const READ_BACK_AT_ONCE: usize = 8;

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
