//! Coalescing: the queued writes of several events to one Zendesk ticket
//! go as one ticket update (the claim puts them in one group, oldest
//! first, at most one comment: `store/sqlite/outbox.rs`). Zendesk allows
//! "30 updates per 10 minutes per user per ticket"
//! (developer.zendesk.com/api-reference/introduction/rate-limits/): a burst
//! of decisions about one ticket must not cost one update each.
//!
//! Within a group the field sets merge in decision order, the later
//! decision winning per field; an earlier action a later one overtook is
//! not sent and settles with the answer to the update that carried the
//! later one, with its own note. Comments are never merged away: the one a
//! group may carry goes with the fields, so it is never written before a
//! field write decided before it. An earlier event's action whose field
//! changed between the state it was decided on and the newest state a
//! later event of the group was decided on (the update is stamped with
//! that newest one) is not sent either: the newer state stands, as after
//! a 409 (`conflict.rs`).

use super::conflict::{describe, BasisTicket};
use super::outcome::{Outcome, Results};
use crate::runtime::ops::Op;
use crate::runtime::store::Group;
use std::collections::HashMap;

/// What a group sends, what a later decision overtook (row, the row that
/// overtook it, the note) and what a newer state superseded (row, note).
pub(super) struct Merged {
    pub send: Vec<(i64, Op)>,
    pub overtaken: Vec<(i64, i64, String)>,
    pub stale: Vec<(i64, String)>,
}

/// The part of the ticket `op` writes, if it writes one field.
fn slot(op: &Op) -> Option<String> {
    match op {
        Op::ZendeskStatus { .. } => Some("status".into()),
        Op::ZendeskField { id: Some(f), .. } => Some(format!("field {f}")),
        Op::ZendeskField { field, .. } => Some(field.clone()),
        Op::ZendeskGroup { .. } => Some("group".into()),
        _ => None,
    }
}

/// Merges `ops` (a group's, in decision order).
pub(super) fn merge(g: &Group, ops: Vec<(i64, Op)>) -> Merged {
    let event_of: HashMap<i64, i64> = g.items.iter().map(|c| (c.id, c.event_id)).collect();
    let bases: HashMap<i64, BasisTicket> = g
        .bases
        .iter()
        .filter_map(|(e, b)| Some((*e, serde_json::from_str(b).ok()?)))
        .collect();
    let newest = g
        .bases
        .last()
        .and_then(|(e, _)| Some((*e, bases.get(e)?.clone())));
    // Per slot, the last op writing it.
    let mut last: HashMap<String, (i64, i64)> = HashMap::new();
    for (id, op) in &ops {
        if let Some(s) = slot(op) {
            last.insert(s, (*id, event_of.get(id).copied().unwrap_or(0)));
        }
    }
    let mut out = Merged {
        send: Vec::new(),
        overtaken: Vec::new(),
        stale: Vec::new(),
    };
    let mut stale_events = Vec::new();
    for (id, op) in ops {
        let event = event_of.get(&id).copied().unwrap_or(0);
        if let Some((by, by_event)) = slot(&op).and_then(|s| last.get(&s).copied()) {
            if by != id {
                out.overtaken.push((
                    id,
                    by,
                    format!(
                        "coalesced: l3map's {} (event {event}) was overtaken by a later decision \
                         about the same ticket (event {by_event}) sent in the same update; the \
                         later value was written instead",
                        describe(&op)
                    ),
                ));
                continue;
            }
        }
        if let (Some(mine), Some((n, newer))) = (bases.get(&event), newest.as_ref()) {
            if *n != event {
                if let Some(what) = changed(mine, newer, &op) {
                    out.stale.push((
                        id,
                        format!(
                            "superseded by a newer state: {what} changed between the ticket as of \
                             {} (this decision's basis) and as of {} (a later event's, sent in the \
                             same update); that change stands and l3map's {} was not applied",
                            mine.updated_at.as_deref().unwrap_or("?"),
                            newer.updated_at.as_deref().unwrap_or("?"),
                            describe(&op)
                        ),
                    ));
                    stale_events.push(event);
                    continue;
                }
            }
        }
        out.send.push((id, op));
    }
    // A hand-off note whose every change was superseded would describe what
    // did not happen: it goes with them.
    for event in stale_events {
        let rest: Vec<&(i64, Op)> = out
            .send
            .iter()
            .filter(|(id, _)| event_of.get(id) == Some(&event))
            .collect();
        if !rest.is_empty() && rest.iter().all(|(_, op)| op.repeats()) {
            let ids: Vec<i64> = rest.iter().map(|(id, _)| *id).collect();
            for id in ids {
                out.send.retain(|(i, _)| *i != id);
                out.stale.push((
                    id,
                    "superseded by a newer state: the hand-off note went with the changes it \
                     accompanied"
                        .into(),
                ));
            }
        }
    }
    out
}

/// What changed between two bases in the part of the ticket `op` writes.
fn changed(before: &BasisTicket, after: &BasisTicket, op: &Op) -> Option<String> {
    let differs = |a: String, b: String, what: &str| {
        (a != b).then(|| format!("the ticket's {what} (from {a} to {b})"))
    };
    let text = |v: Option<&String>| v.cloned().unwrap_or_else(|| "none".into());
    match op {
        Op::ZendeskStatus { .. } => match (before.custom_status_id, after.custom_status_id) {
            (Some(a), Some(b)) => differs(a.to_string(), b.to_string(), "custom status"),
            _ => differs(
                text(before.status.as_ref()).to_lowercase(),
                text(after.status.as_ref()).to_lowercase(),
                "status",
            ),
        },
        Op::ZendeskField { id: Some(f), .. } => {
            let value = |t: &BasisTicket| {
                t.custom_fields
                    .get(&f.to_string())
                    .filter(|v| !v.is_null())
                    .map_or("empty".into(), |v| v.to_string())
            };
            differs(value(before), value(after), &format!("field {f}"))
        }
        Op::ZendeskField { field, .. } => match field.as_str() {
            "priority" => differs(
                text(before.priority.as_ref()),
                text(after.priority.as_ref()),
                "priority",
            ),
            "subject" => differs(
                text(before.subject.as_ref()),
                text(after.subject.as_ref()),
                "subject",
            ),
            _ => None,
        },
        Op::ZendeskGroup { .. } => differs(
            format!(
                "group {}, assignee {}",
                text(before.group.as_ref()),
                text(before.assignee.as_ref())
            ),
            format!(
                "group {}, assignee {}",
                text(after.group.as_ref()),
                text(after.assignee.as_ref())
            ),
            "group and assignee",
        ),
        _ => None,
    }
}

/// The overtaken rows settle with the answer to the rows that overtook
/// them: written -> superseded by the later decision (the note); a retry
/// or a park -> the same.
pub(super) fn settle_overtaken(overtaken: Vec<(i64, i64, String)>, results: &mut Results) {
    let mut more: Results = Vec::new();
    for (id, by, note) in overtaken {
        let answer = results
            .iter()
            .find(|(ids, _)| ids.contains(&by))
            .map(|(_, o)| o.clone());
        let outcome = match answer {
            Some(o @ (Outcome::Retry { .. } | Outcome::Park { .. })) => o,
            Some(Outcome::Settled {
                note: why,
                superseded: true,
                ..
            }) => Outcome::Settled {
                note: format!("{note}; that later value was itself superseded: {why}"),
                superseded: true,
                rearm: false,
            },
            _ => Outcome::Settled {
                note,
                superseded: true,
                rearm: false,
            },
        };
        more.push((vec![id], outcome));
    }
    results.extend(more);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::store::Claimed;

    fn group(rows: &[(i64, i64, Op)], bases: &[(i64, serde_json::Value)]) -> Group {
        Group {
            connection: "desk".into(),
            record: "7".into(),
            event_id: rows[0].1,
            unconfirmed: false,
            items: rows
                .iter()
                .map(|(id, ev, op)| Claimed {
                    id: *id,
                    key: format!("k{id}"),
                    kind: "set_field".into(),
                    op: serde_json::to_string(op).unwrap(),
                    rule: "r".into(),
                    source_loc: "f:1:1".into(),
                    revision: "rev".into(),
                    attempts: 1,
                    counted: 1,
                    failing_since: None,
                    created_ms: 0,
                    event_id: *ev,
                })
                .collect(),
            basis: bases.last().map(|(_, b)| b.to_string()),
            bases: bases.iter().map(|(e, b)| (*e, b.to_string())).collect(),
            events: vec![],
            recent_updates: vec![],
        }
    }

    fn field(v: &str) -> Op {
        Op::ZendeskField {
            field: "product_id".into(),
            id: Some(9),
            value: serde_json::json!(v),
        }
    }

    fn ops(g: &Group) -> Vec<(i64, Op)> {
        g.items
            .iter()
            .map(|c| (c.id, serde_json::from_str(&c.op).unwrap()))
            .collect()
    }

    #[test]
    fn the_later_decision_wins_per_field_and_comments_stay() {
        let note = Op::ZendeskComment { body: "n".into() };
        let status = Op::ZendeskStatus {
            status: "open".into(),
            category: "open".into(),
            custom_status_id: None,
        };
        let g = group(
            &[
                (1, 10, field("a")),
                (2, 10, status.clone()),
                (3, 11, note.clone()),
                (4, 12, field("c")),
            ],
            &[],
        );
        let m = merge(&g, ops(&g));
        let sent: Vec<i64> = m.send.iter().map(|(id, _)| *id).collect();
        assert_eq!(sent, vec![2, 3, 4]);
        assert_eq!(m.overtaken.len(), 1);
        assert_eq!((m.overtaken[0].0, m.overtaken[0].1), (1, 4));
        assert!(
            m.overtaken[0].2.contains("event 12"),
            "{}",
            m.overtaken[0].2
        );
        assert!(m.stale.is_empty());
        // The overtaken row follows the answer of the row that overtook it.
        let mut results: Results = vec![(vec![2, 3, 4], Outcome::Applied)];
        settle_overtaken(m.overtaken, &mut results);
        assert!(matches!(
            &results[1],
            (ids, Outcome::Settled { superseded: true, .. }) if ids == &vec![1]
        ));
        let retry = Outcome::Retry {
            error: "429".into(),
            after: std::time::Duration::from_secs(1),
            unconfirmed: false,
            transient: true,
            kind: "rate_limited",
        };
        let mut results: Results = vec![(vec![4], retry.clone())];
        settle_overtaken(vec![(1, 4, "x".into())], &mut results);
        assert_eq!(results[1], (vec![1], retry));
    }

    #[test]
    fn an_earlier_decision_on_a_field_that_changed_since_is_not_sent() {
        let t = |stamp: &str, status: &str, f: &str| {
            serde_json::json!({"id": 7, "status": status, "updated_at": stamp,
                               "custom_fields": {"9": f}})
        };
        let status = Op::ZendeskStatus {
            status: "pending".into(),
            category: "pending".into(),
            custom_status_id: None,
        };
        let note = Op::ZendeskComment { body: "n".into() };
        let g = group(
            &[(1, 10, status), (2, 10, note), (3, 11, field("b"))],
            &[
                (10, t("2026-01-01T00:00:00Z", "open", "a")),
                (11, t("2026-01-01T00:00:05Z", "hold", "a")),
            ],
        );
        let m = merge(&g, ops(&g));
        let sent: Vec<i64> = m.send.iter().map(|(id, _)| *id).collect();
        assert_eq!(sent, vec![3], "the status and its note are superseded");
        assert_eq!(m.stale.len(), 2);
        assert!(
            m.stale[0].1.contains("from open to hold"),
            "{}",
            m.stale[0].1
        );
    }
}
