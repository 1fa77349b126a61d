//! A group on a Zendesk ticket: one ticket update carries the hand-off
//! comment, the group, the status and the fields, so the comment is there
//! with the reassignment; an unconfirmed group is read back first. A
//! group decided on a ticket state goes as a safe update stamped with that
//! state: a person's newer change wins (`conflict.rs`).

use super::coalesce;
use super::conflict::{self, basis_of, BasisTicket, CONFLICT_ROUNDS};
use super::outcome::{drop_applied, park_config, Outcome, Results, Tries};
use super::Applier;
use crate::connectors::error::ApiError;
use crate::connectors::zendesk::{Ticket, TicketChanges, ZendeskClient};
use crate::runtime::ops::Op;
use crate::runtime::store::Group;
use serde_json::Value as Json;

/// The clock skew allowed between Zendesk's `updated_at` stamps and the
/// store's clock when asking which of l3map's own writes came after a
/// basis (ms).
const SKEW_MS: i64 = 5_000;

impl Applier {
    pub(super) async fn zendesk(
        &self,
        zd: &ZendeskClient,
        g: &Group,
        ops: Vec<(i64, Op)>,
        tries: Tries,
    ) -> Results {
        let ids = |ops: &[(i64, Op)]| ops.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let Ok(ticket_id) = g.record.parse::<u64>() else {
            return vec![(
                ids(&ops),
                park_config(format!("{:?} is not a Zendesk ticket id", g.record)),
            )];
        };
        // Several events' writes to the ticket, as one update.
        let merged = coalesce::merge(g, ops);
        let mut results: Results = merged
            .stale
            .into_iter()
            .map(|(id, note)| {
                (
                    vec![id],
                    Outcome::Settled {
                        note,
                        superseded: true,
                        rearm: false,
                    },
                )
            })
            .collect();
        if !merged.send.is_empty() {
            let sent = self
                .zendesk_update(zd, g, ticket_id, merged.send, tries)
                .await;
            results.extend(sent);
        }
        coalesce::settle_overtaken(merged.overtaken, &mut results);
        results
    }

    /// One update of `ticket_id` carrying `ops`.
    async fn zendesk_update(
        &self,
        zd: &ZendeskClient,
        g: &Group,
        ticket_id: u64,
        mut ops: Vec<(i64, Op)>,
        tries: Tries,
    ) -> Results {
        let ids = |ops: &[(i64, Op)]| ops.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        // Zendesk's 30 updates per 10 minutes per ticket: a ticket out of
        // budget waits for its next slot, reading nothing, and the wait
        // spends no attempt.
        if let Err(wait) = self
            .pace
            .take(
                &g.connection,
                ticket_id,
                std::time::Instant::now(),
                &g.recent_updates,
                crate::runtime::store::now_ms(),
            )
            .await
        {
            return vec![(
                ids(&ops),
                Outcome::Retry {
                    error: format!(
                        "ticket {ticket_id}'s updates are paced under Zendesk's {} per {} \
                         minutes; its next update (with what is queued for it meanwhile) waits {}s",
                        super::pace::TICKET_UPDATES,
                        super::pace::TICKET_PERIOD.as_secs() / 60,
                        wait.as_secs()
                    ),
                    after: wait,
                    unconfirmed: g.unconfirmed,
                    transient: true,
                    kind: "ticket_budget",
                },
            )];
        }
        let mut results = Vec::new();
        // A group sent again without a basis of its own: the ticket its
        // decision read, and the fresh read's stamp the update is made
        // safe with (a person's change between that read and the write is
        // a 409, and the collision path's turn).
        let mut again: Option<(Option<BasisTicket>, Option<String>)> = None;
        if g.unconfirmed {
            match self.zendesk_already(zd, ticket_id, &ops).await {
                Ok(there) => drop_applied(&mut ops, &there, &mut results),
                Err(e) => return vec![(ids(&ops), self.outcome(&e, tries.at_now()))],
            }
            // Sent again with no basis to stamp a safe update with (an
            // agent turn's decision, a fan-out's; a dead letter a person
            // retried hours later): checked against the ticket as it is
            // now, so what a person did meanwhile is not written over.
            if !ops.is_empty() && basis_of(g, ticket_id).is_none() {
                match self.person_since(zd, g, ticket_id, ops).await {
                    Ok(((keep, dropped), read, stamp)) => {
                        again = Some((read, stamp));
                        for (id, why) in dropped {
                            results.push((
                                vec![id],
                                Outcome::Settled {
                                    note: why,
                                    superseded: true,
                                    rearm: false,
                                },
                            ));
                        }
                        ops = keep;
                    }
                    Err((ops, e)) => {
                        return vec![(ids(&ops), self.outcome(&e, tries.at_now()))];
                    }
                }
            }
        }
        if ops.is_empty() {
            return results;
        }
        let (changes, unsupported) = match self.changes_of(zd, &ops).await {
            Ok(x) => x,
            Err(e) => return vec![(ids(&ops), self.outcome(&e, tries.at_now()))],
        };
        for (id, reason) in unsupported {
            ops.retain(|(i, _)| *i != id);
            results.push((vec![id], park_config(reason)));
        }
        if ops.is_empty() {
            return results;
        }
        let (basis, stamp) = match again {
            Some((read, fresh)) => (read, fresh),
            None => {
                let b = basis_of(g, ticket_id);
                let stamp = b.as_ref().and_then(|b| b.updated_at.clone());
                (b, stamp)
            }
        };
        let changes = match stamp {
            Some(stamp) => changes.safe(stamp),
            None => changes,
        };
        self.send_safely(
            zd,
            g,
            ticket_id,
            basis.as_ref(),
            ops,
            changes,
            tries,
            &mut results,
        )
        .await;
        results
    }

    /// Sends `changes` (the update of `ops`); on a 409 (a person changed
    /// the ticket after the state l3map decided on) re-reads the ticket,
    /// drops the ops a person overrode and sends the rest with the fresh
    /// stamp, a few rounds at most (`conflict.rs`).
    #[allow(clippy::too_many_arguments)]
    async fn send_safely(
        &self,
        zd: &ZendeskClient,
        g: &Group,
        ticket_id: u64,
        basis: Option<&BasisTicket>,
        mut ops: Vec<(i64, Op)>,
        mut changes: TicketChanges,
        tries: Tries,
        results: &mut Results,
    ) {
        let ids = |ops: &[(i64, Op)]| ops.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let mut notes: Vec<String> = Vec::new();
        let mut rounds = 0;
        loop {
            // Zendesk may deliver this update's webhooks before its answer
            // reaches us: they wait for the answer to be kept, not read the
            // ticket themselves.
            let writing = self.tickets.as_ref().map(|t| t.writing(&[ticket_id]));
            let sent = zd.update_ticket_json(ticket_id, &changes).await;
            let outcome = match sent {
                Ok(mut answer) => {
                    if let Some(tickets) = &self.tickets {
                        // Only the ticket: the audit is not what a read shows.
                        if let Some(o) = answer.as_object_mut() {
                            o.retain(|k, _| k == "ticket");
                        }
                        tickets.remember(answer).await;
                    }
                    if notes.is_empty() {
                        Outcome::Applied
                    } else {
                        Outcome::Settled {
                            note: format!("applied after {}", notes.join("; then ")),
                            superseded: false,
                            rearm: false,
                        }
                    }
                }
                Err(e @ ApiError::Conflict { .. }) if rounds < CONFLICT_ROUNDS => {
                    drop(writing);
                    rounds += 1;
                    let Some(basis) = basis else {
                        results.push((ids(&ops), self.outcome(&e, tries.at_now())));
                        return;
                    };
                    // A lost answer of l3map's own earlier try moved the
                    // stamp too: what the ticket already shows is applied.
                    // Nothing of this decision written yet (no earlier
                    // round, nothing found applied): if the collision
                    // withdraws all of it, its keys are freed.
                    let untouched = notes.is_empty();
                    let found = results.len();
                    match self.zendesk_already(zd, ticket_id, &ops).await {
                        Ok(there) => drop_applied(&mut ops, &there, results),
                        Err(e) => {
                            results.push((ids(&ops), self.outcome(&e, tries.at_now())));
                            return;
                        }
                    }
                    if ops.is_empty() {
                        return;
                    }
                    let read = zd.get_ticket_json(ticket_id).await.and_then(|v| {
                        let t = serde_json::from_value::<Ticket>(v["ticket"].clone())
                            .map_err(|e| ApiError::Protocol {
                                system: crate::connectors::error::System::Zendesk,
                                message: format!("the ticket read after a collision: {e}"),
                            })?;
                        Ok((v, t))
                    });
                    let (fresh_json, fresh) = match read {
                        Ok(x) => x,
                        Err(e) => {
                            results.push((ids(&ops), self.outcome(&e, tries.at_now())));
                            return;
                        }
                    };
                    // What a person changed since the basis stays theirs ...
                    let kept = self.tickets_kept(ticket_id, basis).await;
                    let own = self.own_writes(g, basis, -SKEW_MS).await;
                    let after = self.own_writes(g, basis, SKEW_MS).await;
                    let (keep, dropped) = conflict::redecide(
                        zd,
                        basis,
                        kept.as_ref(),
                        &fresh,
                        ops,
                        (&own, &after),
                    )
                    .await;
                    // ... and of the rest, only what the rules, decided
                    // again against the fresh ticket, still write goes.
                    let again = self.decide_again(g, &fresh_json, keep, "after a collision");
                    let undecided = again.dropped.len();
                    let keep = again.keep;
                    // Freed only when the rules themselves no longer write
                    // any of it (its trigger was withdrawn): what a person's
                    // change superseded stays written-once, so a later
                    // event does not write it over the person.
                    let rearm = untouched
                        && results.len() == found
                        && keep.is_empty()
                        && dropped.is_empty();
                    for (id, why) in again.dropped {
                        results.push((
                            vec![id],
                            Outcome::Settled {
                                note: why,
                                superseded: true,
                                rearm,
                            },
                        ));
                    }
                    let when = fresh.updated_at.clone().unwrap_or_else(|| "?".into());
                    let said = conflict::collision_note(
                        basis,
                        &when,
                        &keep,
                        &dropped,
                        (again.redecided, undecided),
                    );
                    tracing::warn!(
                        ticket = ticket_id, basis = ?basis.updated_at, person_at = %when,
                        kept = keep.len(), dropped = dropped.len(),
                        "{said}"
                    );
                    for (id, why) in dropped {
                        results.push((
                            vec![id],
                            Outcome::Settled {
                                note: why,
                                superseded: true,
                                rearm: false,
                            },
                        ));
                    }
                    notes.push(said);
                    ops = keep;
                    if ops.is_empty() {
                        return;
                    }
                    changes = match self.changes_of(zd, &ops).await {
                        Ok((c, _)) => c,
                        Err(e) => {
                            results.push((ids(&ops), self.outcome(&e, tries.at_now())));
                            return;
                        }
                    };
                    if let Some(stamp) = fresh.updated_at {
                        changes = changes.safe(stamp);
                    }
                    continue;
                }
                Err(e @ ApiError::Conflict { .. }) => Outcome::Retry {
                    error: format!(
                        "the ticket kept changing under l3map's update ({rounds} collisions in a row); \
                         tried again later: {e}"
                    ),
                    after: self.retries.backoff(tries.total),
                    unconfirmed: false,
                    transient: true,
                    kind: "conflict",
                },
                Err(e) => self.outcome(&e, tries.at_now()),
            };
            drop(writing);
            results.push((ids(&ops), outcome));
            return;
        }
    }

    /// What l3map itself wrote to the group's record since its basis,
    /// shifted by `shift_ms` (the clock skew between Zendesk's stamps and
    /// the store's: `-SKEW_MS` for every write that may be since, `SKEW_MS`
    /// for those surely since), by this replica or another: an earlier
    /// step applied after this one was decided, which the ticket now shows
    /// and which is no person's change.
    async fn own_writes(&self, g: &Group, basis: &BasisTicket, shift_ms: i64) -> Vec<Op> {
        let (Some(store), Some(at)) = (&self.store, basis.updated_at.as_deref()) else {
            return Vec::new();
        };
        let Ok(at) = at.parse::<jiff::Timestamp>() else {
            return Vec::new();
        };
        let since = at.as_millisecond() + shift_ms;
        let (store, connection, record) = (store.clone(), g.connection.clone(), g.record.clone());
        let ops =
            tokio::task::spawn_blocking(move || store.applied_since(&connection, &record, since))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
        ops.iter()
            .filter_map(|op| serde_json::from_str(op).ok())
            .collect()
    }

    /// `ops` of a group sent again without a safe update's basis, split by
    /// what still holds against a fresh read of the ticket: what a person
    /// changed since the ticket the decision read (the stored event's,
    /// an agent turn's too) stays theirs, as after a collision; of the
    /// rest, only what the rules, decided again against the fresh ticket,
    /// still write goes.
    async fn person_since(
        &self,
        zd: &ZendeskClient,
        g: &Group,
        ticket_id: u64,
        ops: Vec<(i64, Op)>,
    ) -> Result<(conflict::Split, Option<BasisTicket>, Option<String>), (Vec<(i64, Op)>, ApiError)>
    {
        let fresh_json = match zd.get_ticket_json(ticket_id).await {
            Ok(v) => v,
            Err(e) => return Err((ops, e)),
        };
        let mut dropped = Vec::new();
        let mut ops = ops;
        let fresh = serde_json::from_value::<Ticket>(fresh_json["ticket"].clone()).ok();
        let stamp = fresh.as_ref().and_then(|t| t.updated_at.clone());
        let read = conflict::read_by_decision(g, ticket_id);
        if let (Some(basis), Some(fresh)) = (read.clone(), fresh) {
            // The stored read itself, not the ticket cache's copy under
            // its stamp: a person's change in the same second as the read
            // carries the same `updated_at` and would pass for the basis.
            let own = self.own_writes(g, &basis, -SKEW_MS).await;
            let after = self.own_writes(g, &basis, SKEW_MS).await;
            let (keep, gone) =
                conflict::redecide(zd, &basis, None, &fresh, ops, (&own, &after)).await;
            dropped.extend(gone);
            ops = keep;
        }
        let again = self.decide_again(g, &fresh_json, ops, "before sending it again");
        dropped.extend(again.dropped);
        Ok(((again.keep, dropped), read, stamp))
    }

    /// The basis ticket as the API showed it, while still kept: it names
    /// the group and assignee by id, which the stored event may not.
    /// Only that very state: the cache keeps a ticket "as of an update or
    /// later", and a person's change read meanwhile (its webhook) may sit
    /// under the basis's key; compared with it, the person's change would
    /// look like no change at all and be written over.
    async fn tickets_kept(&self, id: u64, basis: &BasisTicket) -> Option<Ticket> {
        let tickets = self.tickets.as_ref()?;
        let at = basis.updated_at.as_deref()?;
        let shown = tickets.kept(id, at).await?;
        let t: Ticket = serde_json::from_value(shown.get("ticket")?.clone()).ok()?;
        let same = |s: Option<&str>| s.and_then(crate::runtime::tickets::stamp);
        (same(t.updated_at.as_deref()) == same(Some(at))).then_some(t)
    }

    /// The update `ops` send, and the ops it cannot carry (with why).
    async fn changes_of(
        &self,
        zd: &ZendeskClient,
        ops: &[(i64, Op)],
    ) -> Result<(TicketChanges, Vec<(i64, String)>), ApiError> {
        let mut changes = TicketChanges::default();
        let mut unsupported = Vec::new();
        for (id, op) in ops {
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
                    Err(e) => return Err(e),
                },
                other => unsupported.push((*id, format!("{other:?} is not a Zendesk write"))),
            }
        }
        Ok((changes, unsupported))
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
