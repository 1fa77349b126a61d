//! Which of a record's unfinished rows one claim takes, whichever backend
//! read them: the head event's pending actions always; on a Zendesk
//! ticket, the next events' too while every one of their actions is ready
//! and at most one comment rides along (Zendesk takes one `comment` per
//! update).

use super::types::Claimed;

/// Events coalesced into one update of a ticket, at most.
pub(crate) const MAX_COALESCED_EVENTS: usize = 50;
/// Actions in one coalesced update, at most.
pub(crate) const MAX_COALESCED_ROWS: usize = 200;
/// How far back a ticket's settled updates seed its per-ticket budget
/// (Zendesk's period, `apply/pace.rs`).
pub(crate) const RECENT_MS: i64 = 600_000;
/// A record's unfinished rows read per claim, at most.
pub(crate) const OPEN_ROWS: i64 = 1000;
/// The same over the network (PostgreSQL): what one group can take (its
/// rows and the next event's, to see it is not ready), so a ticket with
/// 20,000 queued actions costs a claim what one with 200 does.
pub(crate) const OPEN_ROWS_SHIPPED: i64 = MAX_COALESCED_ROWS as i64 + 56;

/// One unfinished row of a record, in decision order.
pub(crate) struct OpenRow {
    pub event: i64,
    /// `pending`, `sending` or `dead` (parked for an outage).
    pub state: String,
    pub not_before: i64,
    pub unconfirmed: bool,
    pub claimed: Claimed,
}

/// What one claim of a record takes.
pub(crate) struct Taken {
    pub items: Vec<Claimed>,
    pub unconfirmed: bool,
    /// The events whose actions are in `items`, oldest first.
    pub events: Vec<i64>,
}

/// Takes from `rows` (the record's unfinished rows, oldest first) the
/// head event's pending actions, and on a ticket (`coalesce`) the
/// following events' while they are all ready at `now`.
pub(crate) fn take(rows: &[OpenRow], head: i64, coalesce: bool, now: i64) -> Taken {
    let mut items: Vec<Claimed> = Vec::new();
    let mut unconfirmed = false;
    let mut events: Vec<i64> = Vec::new();
    let mut comments = 0;
    let mut i = 0;
    while i < rows.len() {
        let ev = rows[i].event;
        let end = rows[i..]
            .iter()
            .position(|r| r.event != ev)
            .map_or(rows.len(), |n| i + n);
        let batch = &rows[i..end];
        if ev != head {
            let ready = batch
                .iter()
                .all(|r| r.state == "pending" && r.not_before <= now);
            let more = batch.iter().filter(|r| r.claimed.kind == "comment").count();
            if !coalesce
                || !ready
                || comments + more > 1
                || events.len() >= MAX_COALESCED_EVENTS
                || items.len() + batch.len() > MAX_COALESCED_ROWS
            {
                break;
            }
        }
        for r in batch.iter().filter(|r| r.state == "pending") {
            unconfirmed |= r.unconfirmed;
            comments += usize::from(r.claimed.kind == "comment");
            items.push(r.claimed.clone());
        }
        events.push(ev);
        i = end;
    }
    Taken {
        items,
        unconfirmed,
        events,
    }
}

/// Whether an event (its stored JSON) carries the API's read of the
/// ticket its actions were decided on: a Zendesk ticket event does; a
/// Salesforce change fanned out to tickets, or an agent turn, does not.
/// Returns that ticket's JSON.
pub(crate) fn basis_of(event: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(event).ok()?;
    let kind = v.get("kind")?.as_str()?;
    if !matches!(kind, "ticket_created" | "ticket_updated" | "comment_added") {
        return None;
    }
    let ticket = v.get("ticket")?;
    (!ticket.is_null()).then(|| ticket.to_string())
}
