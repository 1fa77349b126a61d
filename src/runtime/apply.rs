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
    /// been applied (read back before sending again); `transient` when it
    /// failed for an outage (connect error, timeout, 5xx, 429, quota),
    /// which does not count toward `max_attempts`.
    Retry {
        error: String,
        after: Duration,
        unconfirmed: bool,
        transient: bool,
        kind: &'static str,
    },
    /// A human must look: a validation error, a missing record or
    /// permission, or too many attempts. `outage`: the connection stayed
    /// down past the outage window; such actions come back by themselves
    /// when it answers again.
    Park {
        reason: String,
        kind: &'static str,
        outage: bool,
    },
}

/// Outcomes by outbox row id.
pub type Results = Vec<(Vec<i64>, Outcome)>;

/// When the outbox tries an action again, and when it gives up
/// (`[outbox]` in l3map.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Tries that failed for a reason other than an outage (an auth error,
    /// say) after which the action is parked.
    pub max_attempts: u32,
    /// How long an action keeps retrying an outage (connect errors,
    /// timeouts, 5xx, 429), from its first such failure, before it is
    /// parked for the connection to recover.
    pub outage_window: Duration,
    /// The first backoff's bound; each try doubles it...
    pub min: Duration,
    /// ...up to this.
    pub max: Duration,
}

impl Default for Retries {
    fn default() -> Retries {
        Retries {
            max_attempts: 8,
            outage_window: Duration::from_secs(24 * 3600),
            min: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

impl Retries {
    /// How long to wait before try `attempts + 1`: full jitter, a uniform
    /// draw in `[0, min(max, min * 2^(attempts-1)))`, and at least 10 ms so
    /// a zero draw cannot spin. Each try already includes the connector's
    /// own short retries (`runtime::clients::runtime_retry`, 30 s at most),
    /// so this is the slow outer loop, not a second fast one.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let bound = self
            .min
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
            .min(self.max);
        bound
            .mul_f64(fastrand::f64())
            .max(Duration::from_millis(10).min(bound))
    }
}

/// Where a group stands in its retries, for [`Applier::outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    /// Every try, this one included: the backoff grows with it.
    pub total: u32,
    /// The tries that count toward `max_attempts`.
    pub counted: u32,
    /// When the group first failed for an outage (ms since 1970).
    pub failing_since: Option<i64>,
    /// Now (ms since 1970).
    pub now: i64,
}

impl Tries {
    /// A group's: its most tried action's, and its oldest outage.
    pub fn of(g: &Group, now: i64) -> Tries {
        Tries {
            total: g.items.iter().map(|c| c.attempts).max().unwrap_or(1),
            counted: g.items.iter().map(|c| c.counted).max().unwrap_or(1),
            failing_since: g.items.iter().filter_map(|c| c.failing_since).min(),
            now,
        }
    }

    /// The same tries, judged now: a request can take a while, and the
    /// outage window is measured to when it failed.
    fn at_now(self) -> Tries {
        Tries {
            now: super::store::now_ms().max(self.now),
            ..self
        }
    }
}

#[derive(Debug, Clone)]
pub struct Applier {
    clients: HashMap<String, Client>,
    retries: Retries,
    /// Where a Zendesk update's answer (the updated ticket) is kept, so
    /// the webhooks it causes need no read back.
    tickets: Option<super::tickets::Tickets>,
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

/// An outage rather than a problem with the request: the connection
/// refused or dropped, a timeout, a 5xx, a 429 or a quota that reopens by
/// itself. The same request succeeds once the API is back.
pub fn is_outage(e: &ApiError) -> bool {
    match e {
        ApiError::RateLimited { .. }
        | ApiError::Transient { .. }
        | ApiError::QuotaExhausted { .. } => true,
        ApiError::Unconfirmed { last, .. } | ApiError::GaveUp { last, .. } => is_outage(last),
        _ => false,
    }
}

/// Errors no retry can fix: parked at once.
fn is_permanent(e: &ApiError) -> bool {
    match e {
        ApiError::Permission { .. }
        | ApiError::NotFound { .. }
        | ApiError::Validation { .. }
        | ApiError::Protocol { .. } => true,
        ApiError::Unconfirmed { last, .. } | ApiError::GaveUp { last, .. } => is_permanent(last),
        _ => false,
    }
}

impl Applier {
    /// With the default [`Retries`] but `max_attempts`.
    pub fn new(clients: HashMap<String, Client>, max_attempts: u32) -> Applier {
        Applier::with_retries(
            clients,
            Retries {
                max_attempts,
                ..Retries::default()
            },
        )
    }

    pub fn with_retries(clients: HashMap<String, Client>, retries: Retries) -> Applier {
        Applier {
            clients,
            retries: Retries {
                max_attempts: retries.max_attempts.max(1),
                ..retries
            },
            tickets: None,
        }
    }

    /// Keeps the answers of Zendesk updates in `tickets`.
    pub fn with_tickets(mut self, tickets: super::tickets::Tickets) -> Applier {
        self.tickets = Some(tickets);
        self
    }

    pub fn retries(&self) -> Retries {
        self.retries
    }

    pub fn connections(&self) -> impl Iterator<Item = &String> {
        self.clients.keys()
    }

    /// The outcome of an error for a group at `tries`.
    ///
    /// - Permanent errors (validation, permission, not found, an answer we
    ///   cannot read) park at once.
    /// - An outage retries with backoff, without counting toward
    ///   `max_attempts`, until `outage_window` has passed since the group
    ///   first failed that way; then it parks as an outage, and comes back
    ///   by itself when the connection answers again.
    /// - Anything else (an auth error) retries until `max_attempts`.
    pub fn outcome(&self, e: &ApiError, tries: Tries) -> Outcome {
        let kind = error_kind(e);
        let error = e.to_string();
        if is_permanent(e) {
            return Outcome::Park {
                reason: error,
                kind,
                outage: false,
            };
        }
        let outage = is_outage(e);
        if outage {
            let since = tries.failing_since.unwrap_or(tries.now);
            let down = Duration::from_millis(u64::try_from(tries.now - since).unwrap_or(0));
            if down >= self.retries.outage_window {
                return Outcome::Park {
                    reason: format!(
                        "the connection has been failing for {}s, past [outbox] outage_window_secs = {}; \
                         requeued by itself when the connection answers again: {error}",
                        down.as_secs(),
                        self.retries.outage_window.as_secs()
                    ),
                    kind,
                    outage: true,
                };
            }
        } else if tries.counted >= self.retries.max_attempts {
            return Outcome::Park {
                reason: format!("gave up after {} attempts: {error}", tries.counted),
                kind,
                outage: false,
            };
        }
        let backoff = self.retries.backoff(tries.total);
        let after = match e {
            // What the API asked for; a quota that reopens over a rolling
            // day is not worth asking about more than every 15 minutes.
            ApiError::RateLimited {
                retry_after: Some(d),
                ..
            } => *d,
            ApiError::QuotaExhausted { .. } => Duration::from_secs(15 * 60),
            _ => backoff,
        };
        Outcome::Retry {
            error,
            after,
            unconfirmed: matches!(e, ApiError::Unconfirmed { .. }),
            transient: outage,
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
        let tries = Tries::of(g, super::store::now_ms());
        let all: Vec<i64> = g.items.iter().map(|c| c.id).collect();
        let park = |reason: String| -> Results {
            vec![(
                all.clone(),
                Outcome::Park {
                    reason,
                    kind: "config",
                    outage: false,
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
                        outage: false,
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
            Client::Zendesk(zd) => self.zendesk(zd, g, ops, tries).await,
            Client::Salesforce(sf) => self.salesforce(sf, g, ops, tries).await,
        };
        results.extend(more);
        results
    }

    async fn zendesk(
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
        tries: Tries,
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
                Err(e) => return vec![(ids(&ops), self.outcome(&e, tries.at_now()))],
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
                results.push((waiting, self.outcome(&e, tries.at_now())));
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
                Err(e) => self.outcome(&e, tries.at_now()),
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
        outage: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::error::System;

    const MIN: i64 = 60_000;

    fn tries(total: u32, counted: u32, failing_since: Option<i64>, now: i64) -> Tries {
        Tries {
            total,
            counted,
            failing_since,
            now,
        }
    }

    fn down() -> ApiError {
        ApiError::GaveUp {
            system: System::Salesforce,
            attempts: 5,
            waited: Duration::from_secs(30),
            last: Box::new(ApiError::Transient {
                system: System::Salesforce,
                status: None,
                message: "could not connect".into(),
                sent: false,
            }),
        }
    }

    #[test]
    fn backoff_doubles_from_the_minimum_and_is_capped() {
        let r = Retries::default();
        for _ in 0..100 {
            assert!(r.backoff(1) <= Duration::from_secs(2));
            assert!(r.backoff(40) <= Duration::from_secs(300));
        }
        assert!((0..200).any(|_| r.backoff(6) > Duration::from_secs(32)));
        let fast = Retries {
            min: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..Retries::default()
        };
        assert!((0..100).all(|_| fast.backoff(30) <= Duration::from_secs(1)));
        assert!((0..100).all(|_| fast.backoff(1) >= Duration::from_millis(10)));
    }

    #[test]
    fn an_outage_never_counts_toward_max_attempts() {
        let a = Applier::new(HashMap::new(), 2);
        let now = 1_000_000_000;
        // Far past max_attempts, an hour into the outage: still retrying.
        let got = a.outcome(&down(), tries(50, 1, Some(now - 60 * MIN), now));
        assert!(
            matches!(
                got,
                Outcome::Retry {
                    transient: true,
                    kind: "transient",
                    ..
                }
            ),
            "{got:?}"
        );
        // A 5xx whose write may have landed: retried, read back first.
        let lost = ApiError::Unconfirmed {
            system: System::Zendesk,
            last: Box::new(ApiError::Transient {
                system: System::Zendesk,
                status: Some(502),
                message: "bad gateway".into(),
                sent: true,
            }),
        };
        assert!(matches!(
            a.outcome(&lost, tries(9, 1, Some(now), now)),
            Outcome::Retry {
                unconfirmed: true,
                transient: true,
                ..
            }
        ));
        // 429 waits what it was asked to.
        let limited = ApiError::RateLimited {
            system: System::Zendesk,
            retry_after: Some(Duration::from_secs(7)),
            message: "slow".into(),
        };
        assert!(matches!(
            a.outcome(&limited, tries(9, 1, None, now)),
            Outcome::Retry { after, transient: true, .. } if after == Duration::from_secs(7)
        ));
    }

    #[test]
    fn an_outage_past_the_window_parks_for_the_connection_to_recover() {
        let a = Applier::with_retries(
            HashMap::new(),
            Retries {
                outage_window: Duration::from_secs(24 * 3600),
                ..Retries::default()
            },
        );
        let now = 10_000_000_000;
        let day = 24 * 60 * MIN;
        assert!(matches!(
            a.outcome(&down(), tries(3, 1, Some(now - day + 1), now)),
            Outcome::Retry { .. }
        ));
        let got = a.outcome(&down(), tries(3, 1, Some(now - day), now));
        match got {
            Outcome::Park {
                outage: true,
                reason,
                ..
            } => assert!(reason.contains("outage_window_secs = 86400"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_failures_count_and_permanent_ones_park_at_once() {
        let a = Applier::new(HashMap::new(), 3);
        let now = 1_000_000_000;
        let auth = ApiError::Auth {
            system: System::Zendesk,
            status: 401,
            message: "expired".into(),
        };
        assert!(matches!(
            a.outcome(&auth, tries(2, 2, None, now)),
            Outcome::Retry {
                transient: false,
                ..
            }
        ));
        assert!(matches!(
            a.outcome(&auth, tries(3, 3, None, now)),
            Outcome::Park { outage: false, .. }
        ));
        let invalid = ApiError::Validation {
            system: System::Zendesk,
            status: 422,
            message: "Status: invalid".into(),
            fields: vec!["status".into()],
        };
        assert!(matches!(
            a.outcome(&invalid, tries(1, 1, None, now)),
            Outcome::Park {
                kind: "validation",
                outage: false,
                ..
            }
        ));
    }
}
