//! The account's records as one serde value, so `l3map emulate --state`
//! can keep them across restarts (`emulator::snapshot` writes the file).
//!
//! Tickets with their comments and custom field values, the ticket fields,
//! custom statuses and groups (created ones included), and the counters new ids come from. Not
//! kept: bulk jobs, idempotency keys and issued OAuth tokens, which a real
//! client re-creates after a restart anyway, and request statistics.

use super::groups::GroupRec;
use super::seed::{SeedField, SeedStatus};
use super::{lock, Db, Handle, Ticket};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZendeskState {
    tickets: Vec<Ticket>,
    fields: Vec<SeedField>,
    statuses: Vec<SeedStatus>,
    groups: Vec<GroupRec>,
    /// Organizations and users (absent in files written before they
    /// existed: those keep the seeded ones).
    #[serde(default)]
    orgs: Vec<super::parties::Org>,
    #[serde(default)]
    people: Vec<super::parties::Person>,
    /// Ticket forms and category defaults (absent in files written before
    /// them: those keep the seeded ones).
    #[serde(default)]
    forms: Option<super::forms::Forms>,
    next_ticket: u64,
    next_comment: u64,
    /// Position in the change stream: the incremental export's cursors
    /// stay valid across a restart.
    seq: u64,
}

impl Handle {
    /// The records as they are now.
    pub fn state(&self) -> ZendeskState {
        let db = lock(&self.shared.db);
        ZendeskState {
            tickets: db.tickets.values().cloned().collect(),
            fields: db.fields.clone(),
            statuses: db.statuses.clone(),
            groups: db.groups.clone(),
            orgs: db.orgs.values().cloned().collect(),
            people: db.people.values().cloned().collect(),
            forms: Some(db.forms.clone()),
            next_ticket: db.next_ticket,
            next_comment: db.next_comment,
            seq: db.seq,
        }
    }

    /// Replaces the records (the seed included) with `state`. The id
    /// counters are taken past every id in it, so a hand-edited file
    /// cannot make a new ticket or comment reuse an id.
    pub fn restore(&self, state: ZendeskState) {
        let mut db = lock(&self.shared.db);
        let max_comment = state
            .tickets
            .iter()
            .flat_map(|t| t.comments.iter().map(|c| c.id))
            .max()
            .unwrap_or(0);
        let max_ticket = state.tickets.iter().map(|t| t.id).max().unwrap_or(0);
        let max_seq = state.tickets.iter().map(|t| t.seq).max().unwrap_or(0);
        let (orgs, people) = if state.orgs.is_empty() && state.people.is_empty() {
            (db.orgs.clone(), db.people.clone())
        } else {
            (
                state.orgs.into_iter().map(|o| (o.id, o)).collect(),
                state.people.into_iter().map(|u| (u.id, u)).collect(),
            )
        };
        let next_org = orgs
            .keys()
            .max()
            .map_or(db.next_org, |m| m + 1)
            .max(db.next_org);
        let next_user = people
            .keys()
            .max()
            .map_or(db.next_user, |m| m + 1)
            .max(db.next_user);
        *db = Db {
            orgs,
            people,
            next_org,
            next_user,
            tickets: state.tickets.into_iter().map(|t| (t.id, t)).collect(),
            fields: state.fields,
            statuses: state.statuses,
            forms: state.forms.unwrap_or_else(|| db.forms.clone()),
            groups: state.groups,
            next_ticket: state.next_ticket.max(max_ticket.saturating_add(1)),
            next_comment: state.next_comment.max(max_comment.saturating_add(1)),
            next_job: db.next_job,
            seq: state.seq.max(max_seq),
            ..Db::default()
        };
    }
}
