//! Applies a claimed group of outbox actions (one record, one event) with
//! the connectors, and says what became of each: applied, try again later,
//! or parked for a human.
//!
//! A group goes out as one request where the API allows: on Zendesk, the
//! hand-off comment, the new group and the status in one ticket update, so
//! the comment is there before (in fact with) the reassignment. On
//! Salesforce the CaseComment is created first, then one PATCH carries the
//! fields and the status.
//!
//! An unconfirmed group (a crash mid-request, a lost answer) is read back
//! first, and only what is not there yet is sent: that is what makes a
//! replay write nothing twice, comments included.

use super::ops::{split_record, Op};
use super::store::Group;
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::{TicketChanges, ZendeskClient};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Client {
    /// Boxed: the Zendesk client carries its caches inline.
    Zendesk(Box<ZendeskClient>),
    Salesforce(SalesforceClient),
}

impl Client {
    pub fn observer(&self) -> &crate::connectors::retry::Observer {
        match self {
            Client::Zendesk(z) => z.observer(),
            Client::Salesforce(s) => s.observer(),
        }
    }
}

/// What became of some of a group's actions.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied,
    /// Worth another try after `after`; `unconfirmed` when it may have
    /// been applied (read back before sending again).
    Retry {
        error: String,
        after: Duration,
        unconfirmed: bool,
        kind: &'static str,
    },
    /// A human must look: a validation error, a missing record or
    /// permission, or too many attempts.
    Park {
        reason: String,
        kind: &'static str,
    },
}

/// Outcomes by outbox row id.
pub type Results = Vec<(Vec<i64>, Outcome)>;

#[derive(Debug, Clone)]
pub struct Applier {
    clients: HashMap<String, Client>,
    /// After this many attempts an action is parked.
    max_attempts: u32,
    /// Where a Zendesk update's answer (the updated ticket) is kept, so
    /// the webhooks it causes need no read back.
    tickets: Option<super::tickets::Tickets>,
}

/// How long the outbox waits before the next try: from 2 s, doubling,
/// full jitter, at most 5 minutes (the connector has already retried
/// within its own budget by then).
pub fn backoff(attempts: u32) -> Duration {
    let bound = Duration::from_secs(2)
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(Duration::from_secs(300));
    bound
        .mul_f64(fastrand::f64())
        .max(Duration::from_millis(50))
}

/// The metrics name of an error's kind.
pub fn error_kind(e: &ApiError) -> &'static str {
    match e {
        ApiError::Auth { .. } => "auth",
        ApiError::Permission { .. } => "permission",
        ApiError::NotFound { .. } => "not_found",
        ApiError::Validation { .. } => "validation",
        ApiError::RateLimited { .. } => "rate_limited",
        ApiError::Transient { .. } => "transient",
        ApiError::Protocol { .. } => "protocol",
        ApiError::QuotaExhausted { .. } => "quota",
        ApiError::Unconfirmed { .. } => "unconfirmed",
        ApiError::GaveUp { last, .. } => error_kind(last),
    }
}

impl Applier {
    pub fn new(clients: HashMap<String, Client>, max_attempts: u32) -> Applier {
        Applier {
            clients,
            max_attempts: max_attempts.max(1),
            tickets: None,
        }
    }

    /// Keeps the answers of Zendesk updates in `tickets`.
    pub fn with_tickets(mut self, tickets: super::tickets::Tickets) -> Applier {
        self.tickets = Some(tickets);
        self
    }

    pub fn connections(&self) -> impl Iterator<Item = &String> {
        self.clients.keys()
    }

    /// The outcome of an error for actions on their `attempts`th try.
    pub fn outcome(&self, e: &ApiError, attempts: u32) -> Outcome {
        let kind = error_kind(e);
        let error = e.to_string();
        let permanent = matches!(
            e,
            ApiError::Permission { .. }
                | ApiError::NotFound { .. }
                | ApiError::Validation { .. }
                | ApiError::Protocol { .. }
        );
        if permanent {
            return Outcome::Park {
                reason: error,
                kind,
            };
        }
        if attempts >= self.max_attempts {
            return Outcome::Park {
                reason: format!("gave up after {attempts} attempts: {error}"),
                kind,
            };
        }
        let after = match e {
            ApiError::RateLimited {
                retry_after: Some(d),
                ..
            } => *d,
            ApiError::QuotaExhausted { .. } => Duration::from_secs(15 * 60),
            _ => backoff(attempts),
        };
        Outcome::Retry {
            error,
            after,
            unconfirmed: matches!(e, ApiError::Unconfirmed { .. }),
            kind,
        }
    }

    /// Which of `ops`, all on one record, the API shows as applied now:
    /// the same read-back a replay does, used by `l3map e2e` to verify
    /// every write it caused. An op this cannot confirm (a standard
    /// Zendesk field) counts as not shown.
    pub async fn visible(
        &self,
        connection: &str,
        record: &str,
        ops: &[(i64, Op)],
    ) -> Result<Vec<i64>, String> {
        match self.clients.get(connection) {
            Some(Client::Zendesk(zd)) => {
                let id = record
                    .parse::<u64>()
                    .map_err(|_| format!("{record:?} is not a Zendesk ticket id"))?;
                self.zendesk_already(zd, id, ops)
                    .await
                    .map_err(|e| e.to_string())
            }
            Some(Client::Salesforce(sf)) => {
                let (object, id) = split_record(record)
                    .ok_or_else(|| format!("{record:?} is not an Object/Id record"))?;
                self.salesforce_already(sf, object, id, ops)
                    .await
                    .map_err(|e| e.to_string())
            }
            None => Err(format!("no connection named {connection:?}")),
        }
    }

    pub async fn apply(&self, g: &Group) -> Results {
        let attempts = g.items.iter().map(|c| c.attempts).max().unwrap_or(1);
        let all: Vec<i64> = g.items.iter().map(|c| c.id).collect();
        let park = |reason: String| -> Results {
            vec![(
                all.clone(),
                Outcome::Park {
                    reason,
                    kind: "config",
                },
            )]
        };
        let mut ops = Vec::with_capacity(g.items.len());
        let mut results: Results = Vec::new();
        for c in &g.items {
            match serde_json::from_str::<Op>(&c.op) {
                Ok(op) => ops.push((c.id, op)),
                Err(e) => results.push((
                    vec![c.id],
                    Outcome::Park {
                        reason: format!("the outbox row cannot be read ({e}); was it written by another l3map version?"),
                        kind: "config",
                    },
                )),
            }
        }
        let Some(client) = self.clients.get(&g.connection) else {
            return park(format!(
                "no connection named {:?} in the running mappings (was it removed?)",
                g.connection
            ));
        };
        let more = match client {
            Client::Zendesk(zd) => self.zendesk(zd, g, ops, attempts).await,
            Client::Salesforce(sf) => self.salesforce(sf, g, ops, attempts).await,
        };
        results.extend(more);
        results
    }

    async fn zendesk(
        &self,
        zd: &ZendeskClient,
        g: &Group,
        mut ops: Vec<(i64, Op)>,
        attempts: u32,
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
                Err(e) => return vec![(ids(&ops), self.outcome(&e, attempts))],
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
                    Err(e) => return vec![(ids(&ops), self.outcome(&e, attempts))],
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
            Err(e) => self.outcome(&e, attempts),
        };
        results.push((ids(&ops), outcome));
        results
    }

    /// The rows of `ops` whose effect the ticket already shows.
    async fn zendesk_already(
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

    async fn salesforce(
        &self,
        sf: &SalesforceClient,
        g: &Group,
        mut ops: Vec<(i64, Op)>,
        attempts: u32,
    ) -> Results {
        let ids = |ops: &[(i64, Op)]| ops.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let Some((object, record_id)) = split_record(&g.record) else {
            return vec![(
                ids(&ops),
                park_config(format!("{:?} is not an Object/Id record", g.record)),
            )];
        };
        let mut results = Vec::new();
        if g.unconfirmed {
            match self.salesforce_already(sf, object, record_id, &ops).await {
                Ok(there) => drop_applied(&mut ops, &there, &mut results),
                Err(e) => return vec![(ids(&ops), self.outcome(&e, attempts))],
            }
        }
        // Comments first: the hand-off note is there before the status
        // and reason fields change. If one fails, everything after it in
        // the group waits with it.
        let (comments, writes): (Vec<_>, Vec<_>) =
            ops.into_iter().partition(|(_, op)| op.repeats());
        for (n, (id, op)) in comments.iter().enumerate() {
            let Op::SalesforceComment { body } = op else {
                continue;
            };
            if object != "Case" {
                results.push((
                    vec![*id],
                    park_config(format!("a CaseComment needs a Case, not a {object}")),
                ));
                continue;
            }
            if let Err(e) = sf.create_case_comment(record_id, body).await {
                let waiting: Vec<i64> = comments[n..]
                    .iter()
                    .chain(&writes)
                    .map(|(i, _)| *i)
                    .collect();
                results.push((waiting, self.outcome(&e, attempts)));
                return results;
            }
            results.push((vec![*id], Outcome::Applied));
        }
        let mut fields = Map::new();
        let mut field_ids = Vec::new();
        for (id, op) in &writes {
            match op {
                Op::SalesforceField { field, value, .. } => {
                    fields.insert(field.clone(), value.clone());
                    field_ids.push(*id);
                }
                Op::SalesforceStatus { value, .. } => {
                    fields.insert("Status".into(), Json::String(value.clone()));
                    field_ids.push(*id);
                }
                other => results.push((
                    vec![*id],
                    park_config(format!("{other:?} is not a Salesforce write")),
                )),
            }
        }
        if !field_ids.is_empty() {
            let outcome = match sf.update(object, record_id, &fields).await {
                Ok(()) => Outcome::Applied,
                Err(e) => self.outcome(&e, attempts),
            };
            results.push((field_ids, outcome));
        }
        results
    }

    async fn salesforce_already(
        &self,
        sf: &SalesforceClient,
        object: &str,
        record_id: &str,
        ops: &[(i64, Op)],
    ) -> Result<Vec<i64>, ApiError> {
        let mut names: Vec<&str> = ops
            .iter()
            .filter_map(|(_, op)| match op {
                Op::SalesforceField { field, .. } => Some(field.as_str()),
                Op::SalesforceStatus { .. } => Some("Status"),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        let record = if names.is_empty() {
            Map::new()
        } else {
            sf.get(object, record_id, Some(&names)).await?
        };
        let comments: Vec<String> = if ops.iter().any(|(_, op)| op.repeats()) {
            // Ids are checked to be alphanumeric before they reach here
            // (split_record of a key we wrote), but quote-escape anyway.
            let soql = format!(
                "SELECT Id, CommentBody FROM CaseComment WHERE ParentId = '{}'",
                record_id.replace('\\', "\\\\").replace('\'', "\\'")
            );
            sf.query(&soql)
                .await?
                .records
                .iter()
                .filter_map(|r| {
                    r.get("CommentBody")
                        .and_then(Json::as_str)
                        .map(str::to_string)
                })
                .collect()
        } else {
            vec![]
        };
        Ok(ops
            .iter()
            .filter(|(_, op)| match op {
                Op::SalesforceField { field, value, .. } => record.get(field) == Some(value),
                Op::SalesforceStatus { value, .. } => {
                    record.get("Status").and_then(Json::as_str) == Some(value)
                }
                Op::SalesforceComment { body } => comments.iter().any(|c| c == body),
                _ => false,
            })
            .map(|(id, _)| *id)
            .collect())
    }
}

/// Moves the rows whose effect the record already shows out of `ops`, as
/// applied: after a crash or a lost answer, only the rest is sent.
fn drop_applied(ops: &mut Vec<(i64, Op)>, there: &[i64], results: &mut Results) {
    let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(ops)
        .into_iter()
        .partition(|(id, _)| there.contains(id));
    if !done.is_empty() {
        results.push((done.iter().map(|(id, _)| *id).collect(), Outcome::Applied));
    }
    *ops = rest;
}

fn park_config(reason: String) -> Outcome {
    Outcome::Park {
        reason,
        kind: "config",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_two_seconds_and_is_capped() {
        for _ in 0..100 {
            assert!(backoff(1) <= Duration::from_secs(2));
            assert!(backoff(40) <= Duration::from_secs(300));
        }
        assert!((0..200).any(|_| backoff(6) > Duration::from_secs(32)));
    }

    #[test]
    fn errors_decide_between_retry_and_park() {
        let a = Applier::new(HashMap::new(), 3);
        let sys = crate::connectors::error::System::Zendesk;
        let limited = ApiError::RateLimited {
            system: sys,
            retry_after: Some(Duration::from_secs(7)),
            message: "slow".into(),
        };
        assert!(matches!(
            a.outcome(&limited, 1),
            Outcome::Retry { after, unconfirmed: false, kind: "rate_limited", .. } if after == Duration::from_secs(7)
        ));
        let lost = ApiError::Unconfirmed {
            system: sys,
            last: Box::new(ApiError::Transient {
                system: sys,
                status: Some(502),
                message: "bad gateway".into(),
                sent: true,
            }),
        };
        assert!(matches!(
            a.outcome(&lost, 1),
            Outcome::Retry {
                unconfirmed: true,
                ..
            }
        ));
        assert!(matches!(a.outcome(&lost, 3), Outcome::Park { .. }));
        let invalid = ApiError::Validation {
            system: sys,
            status: 422,
            message: "Status: invalid".into(),
            fields: vec!["status".into()],
        };
        assert!(matches!(
            a.outcome(&invalid, 1),
            Outcome::Park {
                kind: "validation",
                ..
            }
        ));
    }
}
