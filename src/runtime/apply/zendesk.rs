//! A group on a Zendesk ticket: one ticket update carries the hand-off
//! comment, the group, the status and the fields, so the comment is there
//! with the reassignment; an unconfirmed group is read back first.

use super::outcome::{drop_applied, park_config, Outcome, Results, Tries};
use super::Applier;
use crate::connectors::error::ApiError;
use crate::connectors::zendesk::{TicketChanges, ZendeskClient};
use crate::runtime::ops::Op;
use crate::runtime::store::Group;
use serde_json::Value as Json;

impl Applier {
    pub(super) async fn zendesk(
        &self,
        zd: &ZendeskClient,
        g: &Group,
        mut ops: Vec<(i64, Op)>,
        tries: Tries,
    ) -> Results {
        let ids = |ops: &[(i64, Op)]| ops.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let Ok(ticket_id) = g.record.parse::<u64>() else {
            return vec![(
                ids(&ops),
                park_config(format!("{:?} is not a Zendesk ticket id", g.record)),
            )];
        };
        let mut results = Vec::new();
        if g.unconfirmed {
            match self.zendesk_already(zd, ticket_id, &ops).await {
                Ok(there) => drop_applied(&mut ops, &there, &mut results),
                Err(e) => return vec![(ids(&ops), self.outcome(&e, tries.at_now()))],
            }
        }
        if ops.is_empty() {
            return results;
        }
        let mut changes = TicketChanges::default();
        let mut unsupported = Vec::new();
        for (id, op) in &ops {
            match op {
                Op::ZendeskStatus {
                    category,
                    custom_status_id,
                    ..
                } => changes = changes.status(category, *custom_status_id),
                Op::ZendeskField {
                    id: Some(field_id),
                    value,
                    ..
                } => changes = changes.field(*field_id, value.clone()),
                Op::ZendeskField {
                    field,
                    id: None,
                    value,
                    ..
                } => match (field.as_str(), value.as_str()) {
                    ("priority", Some(v)) => changes.priority = Some(v.to_string()),
                    ("subject", Some(v)) => changes.subject = Some(v.to_string()),
                    _ => unsupported.push((
                        *id,
                        format!("the standard field {field:?} cannot be written by l3map yet"),
                    )),
                },
                Op::ZendeskComment { body } => changes = changes.private_comment(body.clone()),
                Op::ZendeskGroup { group } => match zd.group_id(group).await {
                    Ok(gid) => changes = changes.group(gid),
                    // A group that does not exist parks its own action;
                    // the hand-off note and the rest still go.
                    Err(e @ ApiError::NotFound { .. }) => unsupported.push((*id, e.to_string())),
                    Err(e) => return vec![(ids(&ops), self.outcome(&e, tries.at_now()))],
                },
                other => unsupported.push((*id, format!("{other:?} is not a Zendesk write"))),
            }
        }
        for (id, reason) in unsupported {
            ops.retain(|(i, _)| *i != id);
            results.push((vec![id], park_config(reason)));
        }
        if ops.is_empty() {
            return results;
        }
        // Zendesk may deliver this update's webhooks before its answer
        // reaches us: they wait for the answer to be kept, not read the
        // ticket themselves.
        let writing = self.tickets.as_ref().map(|t| t.writing(&[ticket_id]));
        let outcome = match zd.update_ticket_json(ticket_id, &changes).await {
            Ok(mut answer) => {
                if let Some(tickets) = &self.tickets {
                    // Only the ticket: the audit is not what a read shows.
                    if let Some(o) = answer.as_object_mut() {
                        o.retain(|k, _| k == "ticket");
                    }
                    tickets.remember(answer).await;
                }
                Outcome::Applied
            }
            Err(e) => self.outcome(&e, tries.at_now()),
        };
        drop(writing);
        results.push((ids(&ops), outcome));
        results
    }

    /// The rows of `ops` whose effect the ticket already shows.
    pub(super) async fn zendesk_already(
        &self,
        zd: &ZendeskClient,
        ticket_id: u64,
        ops: &[(i64, Op)],
    ) -> Result<Vec<i64>, ApiError> {
        let t = zd.get_ticket(ticket_id).await?;
        let comments = if ops.iter().any(|(_, op)| op.repeats()) {
            zd.list_comments(ticket_id).await?
        } else {
            vec![]
        };
        let mut there = Vec::new();
        for (id, op) in ops {
            let present = match op {
                Op::ZendeskStatus {
                    category,
                    custom_status_id,
                    ..
                } => {
                    &t.status == category
                        && custom_status_id.is_none_or(|c| t.custom_status_id == Some(c))
                }
                Op::ZendeskField {
                    id: Some(f), value, ..
                } => t.field(*f).unwrap_or(&Json::Null) == value,
                Op::ZendeskComment { body } => {
                    comments.iter().any(|c| !c.public && c.body == *body)
                }
                Op::ZendeskGroup { group } => match zd.group_id(group).await {
                    Ok(gid) => t.group_id == Some(gid),
                    Err(_) => false,
                },
                _ => false,
            };
            if present {
                there.push(*id);
            }
        }
        Ok(there)
    }
}
