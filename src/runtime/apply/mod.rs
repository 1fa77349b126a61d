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

//!
//! `outcome.rs` judges a failed try (retry after a backoff, or park);
//! `batch.rs` sends the same field/status update to up to 100 tickets as
//! one Zendesk bulk update, each ticket's result settling its own actions;
//! `zendesk.rs` and `salesforce.rs` send a group and read one back.

pub mod batch;
mod coalesce;
mod conflict;
mod outcome;
pub mod pace;
mod redecide;
mod salesforce;
mod zendesk;

pub use outcome::{error_kind, is_outage, Outcome, Results, Retries, Tries};
pub use redecide::{Redecide, Redecided};

use super::ops::{split_record, Op};
use super::store::Group;
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::ZendeskClient;
use std::collections::HashMap;

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

#[derive(Debug, Clone)]
pub struct Applier {
    clients: HashMap<String, Client>,
    retries: Retries,
    /// Where a Zendesk update's answer (the updated ticket) is kept, so
    /// the webhooks it causes need no read back.
    tickets: Option<super::tickets::Tickets>,
    /// Zendesk groups go out one request per ticket even when they could
    /// share a bulk update (`benches/fanout.rs`' baseline).
    unbatched: bool,
    /// Told of every Salesforce record l3map writes: its cached lookups of
    /// that object predate the write.
    resolver: Option<std::sync::Arc<super::links::resolve::Resolver>>,
    /// Zendesk's per-ticket update budget (`pace.rs`).
    pace: pace::TicketPace,
    /// Decides a stored event again against a fresh ticket after a 409
    /// (`redecide.rs`); without it, the per-field comparison alone.
    redecide: Option<Redecide>,
    /// The outbox, asked after a 409 which changes since the basis were
    /// l3map's own (applied by this or another replica).
    store: Option<std::sync::Arc<crate::runtime::store::Store>>,
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
            unbatched: false,
            resolver: None,
            pace: pace::TicketPace::default(),
            redecide: None,
            store: None,
        }
    }

    /// Decides events again with `redecide` after a collision (a 409).
    pub fn with_redecide(mut self, redecide: Redecide) -> Applier {
        self.redecide = Some(redecide);
        self
    }

    /// Makes the links' resolver forget its lookups of an object once l3map
    /// wrote one of its records: a ticket event decided after the write
    /// (its own webhooks among them) compares with the record as written,
    /// not as cached before, and writes nothing again.
    pub fn with_resolver(
        mut self,
        resolver: std::sync::Arc<super::links::resolve::Resolver>,
    ) -> Applier {
        self.resolver = Some(resolver);
        self
    }

    /// Sends every group on its own path, one request per ticket, never a
    /// bulk update: the baseline `benches/fanout.rs` measures batching
    /// against.
    pub fn without_batches(mut self) -> Applier {
        self.unbatched = true;
        self
    }

    /// Keeps the answers of Zendesk updates in `tickets`.
    /// Asks `store` which of a ticket's changes were l3map's own writes
    /// when an update collides (`conflict.rs`).
    pub fn with_store(mut self, store: std::sync::Arc<crate::runtime::store::Store>) -> Applier {
        self.store = Some(store);
        self
    }

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

    /// The outcome of an error for a group at `tries`: see
    /// [`Retries::outcome`].
    pub fn outcome(&self, e: &ApiError, tries: Tries) -> Outcome {
        self.retries.outcome(e, tries)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::error::System;
    use std::time::Duration;

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
