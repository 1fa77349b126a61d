//! What an event adds to the ops console's counts: its status moves and
//! its refusals ([`Tally`]), and the record it is about. Derived from the
//! decision alone, when the event is recorded, so the console's status
//! graph of any window reads counts, never events.

use super::ops::source_loc;
use super::store::Tally;
use crate::eval::decide::{ActionKind, Decision};
use crate::eval::event::Event;
use crate::ir::Program;

/// A refusal's reason is kept this long at most: a tally is a key.
const REASON_CHARS: usize = 300;

/// The status moves decided and the refusals, one tally each.
pub fn of(p: &Program, d: &Decision<'_>) -> Vec<Tally> {
    let mut out = Vec::new();
    for a in &d.actions {
        if let ActionKind::SetStatus {
            connection,
            from,
            to,
            ..
        } = &a.kind
        {
            out.push(Tally {
                connection: connection.to_string(),
                subject: format!("{from} -> {to}"),
                outcome: "applied".into(),
                reason: String::new(),
                source_loc: source_loc(p, &a.loc),
            });
        }
    }
    for r in &d.refused {
        let (connection, subject) = match status_move(&r.what) {
            Some((from, to)) => (table_of(p, from, to), format!("{from} -> {to}")),
            None => (String::new(), subject(&r.what)),
        };
        out.push(Tally {
            connection,
            subject,
            outcome: "refused".into(),
            reason: r.reason.chars().take(REASON_CHARS).collect(),
            source_loc: r.loc.as_ref().map(|l| source_loc(p, l)).unwrap_or_default(),
        });
    }
    out
}

/// `status from -> to`, as `eval::decide` names a refused move.
fn status_move(what: &str) -> Option<(&str, &str)> {
    what.strip_prefix("status ")?.split_once(" -> ")
}

/// The table a refused move was asked of: the first (Zendesk first, as a
/// request is decided) that has both statuses.
fn table_of(p: &Program, from: &str, to: &str) -> String {
    p.status_tables_zendesk_first()
        .find(|t| {
            let has = |n: &str| t.statuses.iter().any(|s| s.name == n);
            has(from) && has(to)
        })
        .map(|t| t.connection.clone())
        .unwrap_or_default()
}

/// A refusal's `what` without the input it quotes (`sku products:
/// "X-1"` counts as `sku products`): a count per rule, not per value.
fn subject(what: &str) -> String {
    match what.split_once(": \"") {
        Some((rule, _)) => rule.to_string(),
        None => what.to_string(),
    }
}

/// The record an event is about: its ticket, else a Case, else the first
/// Salesforce record with an `Id`.
pub fn record_of(ev: &Event) -> Option<String> {
    if let Some(t) = &ev.ticket {
        return Some(t.id.to_string());
    }
    let id = |object: &str| {
        ev.records
            .get(object)
            .and_then(|r| r.get("Id"))
            .and_then(|v| v.as_str())
            .map(|id| format!("{object}/{id}"))
    };
    id("Case").or_else(|| ev.records.keys().find_map(|o| id(o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::decide::decide;

    fn fintech() -> Program {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::runtime::compile::compile(&root.join("mappings/fintech")).expect("compiles")
    }

    #[test]
    fn a_refused_move_is_tallied_on_its_table_with_its_reason_and_rule() {
        let p = fintech();
        let ev = Event::from_json(
            r#"{"id":"turn:1","kind":"agent_turn","at":"2026-11-25T10:00:00Z",
                "ticket":{"id":4211,"status":"new"},
                "turn":{"intent":"close","summary":"s","sentiment":"neutral","requested_status":"closed"}}"#,
        )
        .expect("a turn");
        let d = decide(&p, &ev);
        let t = of(&p, &d);
        let refused: Vec<&Tally> = t.iter().filter(|t| t.outcome == "refused").collect();
        assert!(
            refused.iter().any(|t| t.subject == "new -> closed"
                && t.connection == "desk"
                && !t.reason.is_empty()),
            "{t:#?}\n{:#?}",
            d.refused
        );
        assert_eq!(record_of(&ev).as_deref(), Some("4211"));
    }

    #[test]
    fn a_quoted_input_is_not_part_of_the_subject() {
        assert_eq!(subject(r#"sku products: "X-1""#), "sku products");
        assert_eq!(
            subject("map crm -> desk: Priority"),
            "map crm -> desk: Priority"
        );
        assert_eq!(status_move("status a -> b"), Some(("a", "b")));
        assert_eq!(status_move("status -> b"), None);
    }
}
