//! Writes that respect people: what becomes of l3map's update when a
//! person changed the ticket between l3map's read and its write.
//!
//! l3map's ticket update carries `safe_update: true` and `updated_stamp`
//! = the `updated_at` of the state it decided on, as the Tickets API
//! returned it (the stored event's ticket: the webhook path replaces the
//! payload's ticket with the API read, `runtime/webhook.rs`). Zendesk
//! refuses a stale one with 409 ("Protecting against ticket update
//! collisions",
//! developer.zendesk.com/documentation/ticketing/managing-tickets/creating-and-updating-tickets/;
//! the behaviour as tested in github.com/cloudbees-oss/zendesk-java-client/pull/630).
//! On it the applier re-reads the ticket and, per op, compares what it
//! writes between the basis and the fresh ticket: a field a person changed
//! since the basis keeps the person's value and l3map's op for it ends
//! superseded; the rest goes again with the fresh stamp.

use crate::connectors::zendesk::{Ticket, ZendeskClient};
use crate::runtime::ops::Op;
use crate::runtime::store::Group;
use serde_json::Value as Json;

/// Collisions handled in one try before the group waits for a later one.
pub(super) const CONFLICT_ROUNDS: u32 = 3;

/// The ticket a group's actions were decided on (the stored event's).
pub(super) type BasisTicket = crate::eval::event::Ticket;

/// The group's basis, when its event was about this very ticket and
/// carries the API's `updated_at`.
pub(super) fn basis_of(g: &Group, ticket_id: u64) -> Option<BasisTicket> {
    let t: BasisTicket = serde_json::from_str(g.basis.as_deref()?).ok()?;
    (t.id == ticket_id && t.updated_at.is_some()).then_some(t)
}

/// The ticket the group's newest decision read, whatever the event's kind
/// (an agent turn reads the ticket from the API too): what a person's
/// change is told from when the group goes without a safe update.
pub(super) fn read_by_decision(g: &Group, ticket_id: u64) -> Option<BasisTicket> {
    g.events.iter().rev().find_map(|(_, event)| {
        let ev: crate::eval::event::Event = serde_json::from_str(event).ok()?;
        ev.ticket
            .filter(|t| t.id == ticket_id && t.updated_at.is_some())
    })
}

/// Ops kept, and ops dropped with the words why.
pub(super) type Split = (Vec<(i64, Op)>, Vec<(i64, String)>);

/// Splits `ops` by whether a person changed what each writes between the
/// basis (`kept`: the API's read of it while cached, which names group
/// and assignee by id; else the stored event) and `fresh`.
pub(super) async fn redecide(
    zd: &ZendeskClient,
    basis: &BasisTicket,
    kept: Option<&Ticket>,
    fresh: &Ticket,
    ops: Vec<(i64, Op)>,
    (own, after): (&[Op], &[Op]),
) -> Split {
    let when = fresh.updated_at.as_deref().unwrap_or("an unknown time");
    let mut keep = Vec::new();
    let mut dropped = Vec::new();
    for (id, op) in ops {
        let mut changed = touched(zd, basis, kept, fresh, &op).await;
        if changed.is_some() {
            // The ticket shows what l3map itself wrote there since the
            // basis (an earlier step, maybe by another replica): no
            // person's change to respect.
            for o in own {
                if shows(fresh, o, &op) || shows_group(zd, fresh, o, &op).await {
                    changed = None;
                    break;
                }
            }
        } else {
            // Back at the basis's value although l3map surely wrote
            // another there since: a person undid l3map's write (the red
            // team's revert, overwritten when only values were compared).
            for o in after.iter().filter(|o| same_target(o, &op)) {
                if !shows(fresh, o, &op) && !shows_group(zd, fresh, o, &op).await {
                    changed = Some(format!(
                        "the ticket's {} (l3map wrote {} there since, and a person set it back)",
                        target_name(&op),
                        describe(o)
                    ));
                } else {
                    changed = None;
                }
            }
        }
        match changed {
            Some(what) => dropped.push((
                id,
                format!(
                    "superseded by a person's change: {what} changed at {when}, after l3map \
                     decided on the ticket as of {}; the person's change stands and l3map's {} \
                     was not applied",
                    basis.updated_at.as_deref().unwrap_or("?"),
                    describe(&op)
                ),
            )),
            None => keep.push((id, op)),
        }
    }
    // A hand-off note whose change a person overrode would describe what
    // did not happen: it goes with it.
    if !dropped.is_empty() && keep.iter().all(|(_, op)| op.repeats()) {
        for (id, op) in keep.drain(..) {
            dropped.push((
                id,
                format!(
                    "superseded by a person's change at {when}: l3map's {} went with the \
                     change it accompanied",
                    describe(&op)
                ),
            ));
        }
    }
    (keep, dropped)
}

/// Whether `a` and `b` write the same thing: one field, the status, or
/// the group.
fn same_target(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (Op::ZendeskField { id: Some(f), .. }, Op::ZendeskField { id: Some(g), .. }) => f == g,
        (Op::ZendeskStatus { .. }, Op::ZendeskStatus { .. })
        | (Op::ZendeskGroup { .. }, Op::ZendeskGroup { .. }) => true,
        _ => false,
    }
}

/// What `op` writes, in words.
fn target_name(op: &Op) -> String {
    match op {
        Op::ZendeskField { id: Some(f), .. } => format!("field {f}"),
        Op::ZendeskStatus { .. } => "status".into(),
        Op::ZendeskGroup { .. } => "group".into(),
        _ => "value".into(),
    }
}

/// [`shows`] for a group: the group l3map assigned (its name read as an
/// id), and nobody assigned within it since (an assignee is a person's
/// doing: l3map assigns groups only). The red team's fleet dropped a fraud
/// hand-off's reassignment as "a person's change" that was l3map's own.
async fn shows_group(zd: &ZendeskClient, fresh: &Ticket, own: &Op, op: &Op) -> bool {
    match (own, op) {
        (Op::ZendeskGroup { group }, Op::ZendeskGroup { .. }) => {
            fresh.assignee_id.is_none()
                && fresh.group_id.is_some()
                && zd.group_id(group).await.ok() == fresh.group_id
        }
        _ => false,
    }
}

/// Whether `fresh` shows l3map's own earlier write `own` on what `op`
/// writes (the same field or the status, at the value `own` wrote).
fn shows(fresh: &Ticket, own: &Op, op: &Op) -> bool {
    match (own, op) {
        (
            Op::ZendeskField {
                id: Some(f), value, ..
            },
            Op::ZendeskField { id: Some(g), .. },
        ) => f == g && fresh.field(*f).unwrap_or(&Json::Null) == value,
        (
            Op::ZendeskStatus {
                category,
                custom_status_id,
                ..
            },
            Op::ZendeskStatus { .. },
        ) => {
            fresh.status == *category
                && custom_status_id.is_none_or(|c| fresh.custom_status_id == Some(c))
        }
        _ => false,
    }
}

/// What a person changed that `op` would write, if anything.
async fn touched(
    zd: &ZendeskClient,
    basis: &BasisTicket,
    kept: Option<&Ticket>,
    fresh: &Ticket,
    op: &Op,
) -> Option<String> {
    let differs = |before: String, now: String, what: &str| {
        (before != now).then(|| format!("the ticket's {what} (from {before} to {now})"))
    };
    match op {
        Op::ZendeskStatus { .. } => match kept {
            Some(k) => differs(
                status_text(&k.status, k.custom_status_id),
                status_text(&fresh.status, fresh.custom_status_id),
                "status",
            ),
            None => match basis.custom_status_id {
                Some(b) => differs(
                    b.to_string(),
                    fresh
                        .custom_status_id
                        .map_or("none".into(), |c| c.to_string()),
                    "custom status",
                ),
                None => differs(
                    basis.status.clone().unwrap_or_default().to_lowercase(),
                    fresh.status.to_lowercase(),
                    "status",
                ),
            },
        },
        Op::ZendeskField { id: Some(f), .. } => {
            let before = match kept {
                Some(k) => k.field(*f).cloned(),
                None => basis
                    .custom_fields
                    .get(&f.to_string())
                    .filter(|v| !v.is_null())
                    .cloned(),
            };
            differs(
                value_text(before.as_ref()),
                value_text(fresh.field(*f)),
                &format!("field {f}"),
            )
        }
        Op::ZendeskField {
            field, id: None, ..
        } => {
            let (before, now) = match field.as_str() {
                "priority" => (
                    kept.map_or(basis.priority.clone(), |k| k.priority.clone()),
                    fresh.priority.clone(),
                ),
                "subject" => (
                    kept.map_or(basis.subject.clone(), |k| k.subject.clone()),
                    fresh.subject.clone(),
                ),
                _ => return None,
            };
            differs(before.unwrap_or_default(), now.unwrap_or_default(), field)
        }
        Op::ZendeskGroup { .. } => match kept {
            Some(k) => differs(
                ids_text(k.group_id, k.assignee_id),
                ids_text(fresh.group_id, fresh.assignee_id),
                "group and assignee",
            ),
            None => {
                let before = match &basis.group {
                    Some(name) => zd.group_id(name).await.ok(),
                    None => None,
                };
                match before {
                    Some(b) => differs(
                        ids_text(Some(b), None),
                        ids_text(fresh.group_id, None),
                        "group",
                    ),
                    // No group when decided, and none now, nor an
                    // assignee: nobody reassigned it (red team F1: a
                    // person's status change dropped the hand-off's
                    // reassignment, and its note with it).
                    None if basis.group.is_none()
                        && fresh.group_id.is_none()
                        && fresh.assignee_id.is_none() =>
                    {
                        None
                    }
                    // The stored event does not name the group by id and
                    // the read is no longer kept: a person may have
                    // reassigned it, and a person wins.
                    None => Some(
                        "the ticket (l3map cannot tell whether its group or assignee was among \
                         the changes)"
                            .into(),
                    ),
                }
            }
        },
        _ => None,
    }
}

fn status_text(category: &str, custom: Option<u64>) -> String {
    match custom {
        Some(c) => format!("{category} (custom status {c})"),
        None => category.to_string(),
    }
}

fn value_text(v: Option<&Json>) -> String {
    v.map_or("empty".into(), |v| v.to_string())
}

fn ids_text(group: Option<u64>, assignee: Option<u64>) -> String {
    format!(
        "group {}, assignee {}",
        group.map_or("none".into(), |g| g.to_string()),
        assignee.map_or("none".into(), |a| a.to_string())
    )
}

/// An op in words for the audit trail.
pub(super) fn describe(op: &Op) -> String {
    match op {
        Op::ZendeskStatus { status, .. } => format!("status change to {status:?}"),
        Op::ZendeskField { field, value, .. } => format!("{field} = {value}"),
        Op::ZendeskComment { .. } => "internal note".into(),
        Op::ZendeskGroup { group } => format!("reassignment to group {group:?}"),
        other => format!("{other:?}"),
    }
}

/// The collision in words: when, what was kept, what was dropped.
pub(super) fn collision_note(
    basis: &BasisTicket,
    when: &str,
    keep: &[(i64, Op)],
    dropped: &[(i64, String)],
    (redecided, undecided): (usize, usize),
) -> String {
    let kept: Vec<String> = keep.iter().map(|(_, op)| describe(op)).collect();
    format!(
        "a collision: the ticket changed at {when}, after l3map decided on it as of {}; \
         re-decided against the fresh ticket: the rules decided {redecided} of l3map's changes \
         again and no longer make {undecided}; {} dropped as superseded by a person, {} still \
         sent ({})",
        basis.updated_at.as_deref().unwrap_or("?"),
        dropped.len(),
        kept.len(),
        if kept.is_empty() {
            "none".to_string()
        } else {
            kept.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(id: u64, value: &str) -> Op {
        Op::ZendeskField {
            field: "handoff_reason".into(),
            id: Some(id),
            value: Json::String(value.into()),
        }
    }

    /// An earlier step of l3map's own, applied after this one was decided
    /// (by another replica, maybe), is no person's change; a value no
    /// l3map write gave is.
    #[test]
    fn a_field_showing_l3maps_own_earlier_write_is_not_a_persons_change() {
        let fresh: Ticket = serde_json::from_value(serde_json::json!({
            "id": 7, "status": "open",
            "custom_fields": [{"id": 41, "value": "step_two"}]
        }))
        .unwrap();
        let step_three = field(41, "step_three");
        assert!(shows(&fresh, &field(41, "step_two"), &step_three));
        assert!(!shows(&fresh, &field(41, "step_one"), &step_three));
        assert!(!shows(&fresh, &field(42, "step_two"), &step_three));
    }
}
