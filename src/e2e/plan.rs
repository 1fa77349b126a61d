//! A test block read as a live scenario's plan: which blocks can run live,
//! the ticket (and Case) to create from the block's event, and the turn to
//! send. Pure: it reads the block and the program, and touches no target,
//! so `l3map e2e` (src/e2e/scenarios.rs) and `l3map run --demo`
//! (src/runtime/demo.rs) plan alike.

use crate::connectors::zendesk::TicketChanges;
use crate::ir::{Expectation, Program, TestCase};
use serde_json::{Map, Value as Json};

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
    // The agent API takes a turn's standard fields, those a mapping reads.
    for f in crate::model::event::TURN {
        if let Some(v) = ev["turn"].get(f.name) {
            turn.insert(f.name.to_string(), v.clone());
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
