//! Many tickets, one request: the head groups of up to 100 tickets that
//! would each send the same field/status update go out as one Zendesk
//! bulk update (`PUT /api/v2/tickets/update_many.json?ids=…`, a job),
//! polled to completion; each ticket's result in the job decides its own
//! actions (applied, retried, parked), never all-or-nothing.
//!
//! Zendesk: "Update Many Tickets" takes up to 100 ticket ids and returns a
//! job status; `GET /api/v2/job_statuses/{id}` gives per-ticket `results`
//! (`success`, `error`, `details`) once the job is `completed`
//! (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-many-tickets,
//! https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/).
//!
//! A group that may already have been applied (unconfirmed: a crash while
//! its job ran) is never batched: it takes the single path, which reads
//! the ticket back first.

use super::outcome::{Outcome, Results, Tries};
use super::{Applier, Client};
use crate::connectors::zendesk::{JobResult, Ticket, TicketChanges, TicketUpdate, ZendeskClient};
use crate::runtime::ops::Op;
use crate::runtime::store::{now_ms, Claimed, Group};
use crate::runtime::tickets::Tickets;
use std::collections::HashMap;
use std::time::Duration;

/// Tickets in one bulk update: Zendesk's limit.
pub const MAX_BATCH: usize = 100;

impl Applier {
    /// Whether `connection` sends bulk updates (a Zendesk connection).
    pub fn batches(&self, connection: &str) -> bool {
        !self.unbatched && matches!(self.clients.get(connection), Some(Client::Zendesk(_)))
    }

    /// The update `g` would send, when it can share a bulk update with
    /// other tickets: a confirmed Zendesk ticket group of custom field and
    /// status writes only (comments, groups and standard fields keep the
    /// single path).
    pub fn batchable(&self, g: &Group) -> Option<TicketUpdate> {
        if g.unconfirmed || g.items.is_empty() || !self.batches(&g.connection) {
            return None;
        }
        let ticket = g.record.parse::<u64>().ok()?;
        // Decided on a ticket state: a safe update, which only the single
        // PUT documents ("safe_update" per ticket inside `update_many` is
        // not in Zendesk's docs, so it is not relied on).
        if super::conflict::basis_of(g, ticket).is_some() {
            return None;
        }
        Some(TicketUpdate::from_changes(ticket, &changes_of(g)?))
    }

    /// Sends `groups` (each a different ticket, all [`Applier::batchable`])
    /// as one bulk update, waits for its job, and returns each group's
    /// results, in order.
    pub async fn apply_batch(&self, groups: &[Group]) -> Vec<Results> {
        let all = |g: &Group| g.items.iter().map(|c| c.id).collect::<Vec<i64>>();
        let zd = match groups.first().and_then(|g| self.clients.get(&g.connection)) {
            Some(Client::Zendesk(zd)) => zd,
            _ => return groups.iter().map(|g| self.apply_sync_park(g)).collect(),
        };
        let updates: Vec<Option<TicketUpdate>> = groups.iter().map(|g| self.batchable(g)).collect();
        let sent: Vec<TicketUpdate> = updates.iter().flatten().cloned().collect();
        let now = now_ms();
        let ids: Vec<u64> = sent.iter().map(|u| u.id).collect();
        // Webhooks about these tickets wait for the read-back below.
        let writing = self.tickets.as_ref().map(|t| t.writing(&ids));
        let job = match zd.update_many(&sent).await {
            Ok(job) => zd.wait_for_job(job).await,
            Err(e) => Err(e),
        };
        // The tickets the job wrote are kept for their webhooks; those it
        // did not report on (a failed job, a partial report) are read in
        // the same request, to settle them here rather than one read and
        // one PUT each.
        let mut shown = HashMap::new();
        if let Ok(done) = &job {
            let report = |id: &u64| done.result_for(*id, &sent);
            let applied: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| report(id).is_some_and(|r| r.success))
                .collect();
            let unreported: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| report(id).is_none())
                .collect();
            let keep = self.tickets.as_ref().filter(|_| !applied.is_empty());
            shown = read_back(zd, keep, &applied, &unreported).await;
        }
        drop(writing);
        // One wait for every ticket the job left unsettled, so they come
        // due together and go out again as one bulk update.
        let worst = groups
            .iter()
            .map(|g| Tries::of(g, now).total)
            .max()
            .unwrap_or(1);
        let again = self.retries.backoff(worst);
        match job {
            Err(e) => groups
                .iter()
                .map(|g| vec![(all(g), self.outcome(&e, Tries::of(g, now).at_now()))])
                .collect(),
            Ok(done) => groups
                .iter()
                .zip(&updates)
                .map(|(g, u)| match u {
                    None => self.apply_sync_park(g),
                    Some(u) => match done.result_for(u.id, &sent) {
                        Some(r) => vec![(all(g), self.ticket_result(Some(r), Tries::of(g, now)))],
                        None => self.unreported(g, shown.get(&u.id), Tries::of(g, now), again),
                    },
                })
                .collect(),
        }
    }

    /// A ticket the finished job did not report on, as read back after
    /// it: the actions it shows are applied; the rest go out again in a
    /// bulk update after `again` (the values are set, not added, so
    /// sending one twice changes nothing). Not read back: the single path
    /// reads it before sending anything.
    fn unreported(
        &self,
        g: &Group,
        shown: Option<&Ticket>,
        tries: Tries,
        again: Duration,
    ) -> Results {
        let all: Vec<i64> = g.items.iter().map(|c| c.id).collect();
        let Some(t) = shown else {
            return vec![(all, self.ticket_result(None, tries))];
        };
        let (there, rest) = shown_on(&g.items, t);
        let mut out = Vec::new();
        if !there.is_empty() {
            out.push((there, Outcome::Applied));
        }
        if !rest.is_empty() {
            let error = "the bulk update's job did not report on this ticket, which does not show the update; sent again in a bulk update".to_string();
            out.push((
                rest,
                if tries.counted >= self.retries.max_attempts {
                    Outcome::Park {
                        reason: format!("gave up after {} attempts: {error}", tries.counted),
                        kind: "job",
                        outage: false,
                    }
                } else {
                    Outcome::Retry {
                        error,
                        after: again,
                        unconfirmed: false,
                        transient: false,
                        kind: "job",
                    }
                },
            ));
        }
        out
    }

    /// One ticket's result in the finished job.
    fn ticket_result(&self, r: Option<&JobResult>, tries: Tries) -> Outcome {
        let Some(r) = r else {
            // The job did not say: it may have been applied. Read back on
            // the next try (the single path), which sends only what is
            // not there.
            return Outcome::Retry {
                error: "the bulk update's job did not report on this ticket".into(),
                after: self.retries.backoff(tries.total),
                unconfirmed: true,
                transient: false,
                kind: "job",
            };
        };
        if r.success {
            return Outcome::Applied;
        }
        let details = r.details.clone().unwrap_or_default();
        let error = format!(
            "the bulk update failed for this ticket: {} {details}",
            r.error.as_deref().unwrap_or("(no error given)")
        )
        .trim_end()
        .to_string();
        // A closed ticket cannot be updated again, by anyone: no retry
        // will change that.
        let closed = details.to_ascii_lowercase().contains("closed");
        if closed || tries.counted >= self.retries.max_attempts {
            return Outcome::Park {
                reason: error,
                kind: "job",
                outage: false,
            };
        }
        Outcome::Retry {
            error,
            after: self.retries.backoff(tries.total),
            unconfirmed: false,
            transient: false,
            kind: "job",
        }
    }

    fn apply_sync_park(&self, g: &Group) -> Results {
        vec![(
            g.items.iter().map(|c| c.id).collect(),
            Outcome::Park {
                reason: format!("{:?} cannot be sent in a bulk update", g.record),
                kind: "config",
                outage: false,
            },
        )]
    }
}

/// Keeps the tickets a finished job updated, as the answer to a single
/// `PUT` is kept: a job's results carry no ticket state, so the webhooks
/// Zendesk sends for these updates would each read their ticket and
/// decide it anew. One `show_many` per job (a job holds at most 100
/// tickets, the call's limit), with the organization and requester
/// side-loaded for the links. Recognising the updates by the webhook's
/// actor or `via` instead is not sound on the real API: `via.channel:
/// api` is every integration's, and the API user may be shared with
/// people or other tools, so their changes would be skipped. A failed
/// read-back loses nothing: the webhooks then read their tickets.
///
/// The same request reads the `unreported` tickets (the job said nothing
/// of them); they are returned, not kept. `keep` is `None` when nothing is
/// kept for webhooks (then only the unreported are read).
async fn read_back(
    zd: &ZendeskClient,
    keep: Option<&Tickets>,
    applied: &[u64],
    unreported: &[u64],
) -> HashMap<u64, Ticket> {
    let mut want: Vec<u64> = unreported.to_vec();
    if keep.is_some() {
        want.extend_from_slice(applied);
    }
    let mut shown = HashMap::new();
    for chunk in want.chunks(MAX_BATCH) {
        match zd.show_many(chunk).await {
            Ok(answers) => {
                for a in answers {
                    let Some(t) = a
                        .get("ticket")
                        .and_then(|t| serde_json::from_value::<Ticket>(t.clone()).ok())
                    else {
                        continue;
                    };
                    if unreported.contains(&t.id) {
                        shown.insert(t.id, t);
                    } else if let Some(tickets) = keep {
                        tickets.remember(a).await;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, tickets = chunk.len(), "could not read back the tickets of a bulk update; their webhooks will read them, and tickets its job did not report on are read one by one");
            }
        }
    }
    shown
}

/// A group's actions (by outbox row id): those the ticket already shows,
/// and the rest.
fn shown_on(items: &[Claimed], t: &Ticket) -> (Vec<i64>, Vec<i64>) {
    let mut there = Vec::new();
    let mut rest = Vec::new();
    for c in items {
        let shows = match serde_json::from_str::<Op>(&c.op) {
            Ok(Op::ZendeskStatus {
                category,
                custom_status_id,
                ..
            }) => {
                t.status == category
                    && custom_status_id.is_none_or(|s| t.custom_status_id == Some(s))
            }
            Ok(Op::ZendeskField {
                id: Some(f), value, ..
            }) => t.field(f).unwrap_or(&serde_json::Value::Null) == &value,
            _ => false,
        };
        if shows {
            there.push(c.id);
        } else {
            rest.push(c.id);
        }
    }
    (there, rest)
}

/// The changes of a group of custom field and status writes, in the
/// order they were decided; `None` when any action is of another kind.
fn changes_of(g: &Group) -> Option<TicketChanges> {
    let mut changes = TicketChanges::default();
    for c in &g.items {
        match serde_json::from_str::<Op>(&c.op).ok()? {
            Op::ZendeskStatus {
                category,
                custom_status_id,
                ..
            } => changes = changes.status(&category, custom_status_id),
            Op::ZendeskField {
                id: Some(id),
                value,
                ..
            } => changes = changes.field(id, value),
            _ => return None,
        }
    }
    Some(changes)
}

/// Splits claimed groups into bulk updates (at most [`MAX_BATCH`]
/// tickets each, two or more; each ticket its own values) and groups sent
/// alone.
pub fn plan(applier: &Applier, groups: Vec<Group>) -> (Vec<Vec<Group>>, Vec<Group>) {
    let (bulk, mut single): (Vec<Group>, Vec<Group>) = groups
        .into_iter()
        .partition(|g| applier.batchable(g).is_some());
    let mut batches = Vec::new();
    let mut it = bulk.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<Group> = it.by_ref().take(MAX_BATCH).collect();
        if chunk.len() == 1 {
            single.extend(chunk);
        } else {
            batches.push(chunk);
        }
    }
    (batches, single)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::secret::Secret;
    use crate::connectors::zendesk::{Credentials, ZendeskClient, ZendeskConfig};
    use crate::runtime::store::Claimed;
    use serde_json::json;
    use std::collections::HashMap;

    fn applier() -> Applier {
        let zd = ZendeskClient::new(ZendeskConfig::new(
            "http://127.0.0.1:9",
            Credentials::OAuth(Secret::new("t")),
        ))
        .expect("a client");
        Applier::new(
            HashMap::from([("desk".to_string(), Client::Zendesk(Box::new(zd)))]),
            3,
        )
    }

    fn group(ticket: &str, ops: &[serde_json::Value], unconfirmed: bool, counted: u32) -> Group {
        Group {
            connection: "desk".into(),
            record: ticket.into(),
            event_id: 1,
            unconfirmed,
            items: ops
                .iter()
                .enumerate()
                .map(|(i, op)| Claimed {
                    id: i as i64 + ticket.len() as i64 * 1000,
                    key: format!("k{ticket}{i}"),
                    kind: "set_field".into(),
                    op: op.to_string(),
                    rule: "r".into(),
                    source_loc: "f:1:1".into(),
                    revision: "rev".into(),
                    attempts: counted,
                    counted,
                    failing_since: None,
                    created_ms: 0,
                    event_id: 1,
                })
                .collect(),
            basis: None,
            bases: Vec::new(),
            events: Vec::new(),
            recent_updates: Vec::new(),
        }
    }

    fn tier(v: &str) -> serde_json::Value {
        json!({"op": "zendesk_field", "field": "sla_tier", "id": 360001234u64, "value": v})
    }

    #[test]
    fn groups_with_one_update_share_a_job_and_others_go_alone() {
        let a = applier();
        let mut groups: Vec<Group> = (1..=250)
            .map(|t| group(&t.to_string(), &[tier("enterprise")], false, 1))
            .collect();
        groups.push(group("900", &[tier("premium")], false, 1));
        groups.push(group("901", &[tier("enterprise")], true, 1));
        groups.push(group(
            "902",
            &[json!({"op": "zendesk_comment", "body": "hi"})],
            false,
            1,
        ));
        let (bulk, single) = plan(&a, groups);
        // Different values share a job: each ticket carries its own.
        let sizes: Vec<usize> = bulk.iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 51]);
        let alone: Vec<&str> = single.iter().map(|g| g.record.as_str()).collect();
        assert_eq!(alone, ["901", "902"]);
    }

    #[test]
    fn each_ticket_result_settles_its_own_actions() {
        let a = applier();
        let tries = |counted| Tries {
            total: counted,
            counted,
            failing_since: None,
            now: 0,
        };
        let r = |success: bool, details: &str| JobResult {
            id: 1,
            success,
            status: None,
            error: Some("TicketUpdateFailed".into()),
            details: Some(details.into()),
            index: None,
        };
        assert_eq!(
            a.ticket_result(Some(&r(true, "")), tries(1)),
            Outcome::Applied
        );
        assert!(matches!(
            a.ticket_result(Some(&r(false, "Locked")), tries(1)),
            Outcome::Retry {
                unconfirmed: false,
                ..
            }
        ));
        assert!(matches!(
            a.ticket_result(Some(&r(false, "Locked")), tries(3)),
            Outcome::Park { .. }
        ));
        assert!(matches!(
            a.ticket_result(
                Some(&r(false, "Status: closed prevents ticket update")),
                tries(1)
            ),
            Outcome::Park { .. }
        ));
        // No word on the ticket: read back before anything is sent again.
        assert!(matches!(
            a.ticket_result(None, tries(1)),
            Outcome::Retry {
                unconfirmed: true,
                ..
            }
        ));
    }

    /// A ticket the job did not report on: what the read-back shows is
    /// applied, the rest goes out again in a bulk update (not the single
    /// path's read and PUT); not read back, the single path reads it.
    #[test]
    fn an_unreported_ticket_is_settled_by_the_read_back() {
        let a = applier();
        let tries = Tries {
            total: 1,
            counted: 1,
            failing_since: None,
            now: 0,
        };
        let g = group(
            "7",
            &[
                tier("enterprise"),
                json!({"op": "zendesk_status", "status": "pending", "category": "pending"}),
            ],
            false,
            1,
        );
        let t = |tier: &str| -> Ticket {
            serde_json::from_value(json!({"id": 7, "status": "open",
                "custom_fields": [{"id": 360001234u64, "value": tier}]}))
            .unwrap()
        };
        let again = Duration::from_secs(3);
        let got = a.unreported(&g, Some(&t("enterprise")), tries, again);
        assert_eq!(got[0], (vec![g.items[0].id], Outcome::Applied));
        assert!(matches!(
            &got[1],
            (ids, Outcome::Retry { unconfirmed: false, after, kind: "job", .. })
                if ids == &vec![g.items[1].id] && *after == again
        ));
        let got = a.unreported(&g, Some(&t("standard")), tries, again);
        assert_eq!(got.len(), 1);
        assert!(matches!(
            &got[0].1,
            Outcome::Retry {
                unconfirmed: false,
                ..
            }
        ));
        let got = a.unreported(&g, None, tries, again);
        assert!(matches!(
            &got[0].1,
            Outcome::Retry {
                unconfirmed: true,
                ..
            }
        ));
    }
}
