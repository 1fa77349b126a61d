//! What goes in and comes out of the store, whichever backend keeps it:
//! events as accepted, actions as decided and as claimed, outbox rows and
//! their states, the counts `/healthz` serves.

use serde::Serialize;

/// One event as it is accepted.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The source's delivery id, prefixed by the source: its dedup key.
    pub key: &'a str,
    pub source: &'a str,
    pub revision: &'a str,
    /// The normalised event, JSON.
    pub event: &'a str,
    /// The refusals, JSON (the audit trail keeps them too).
    pub refused: &'a str,
    /// The record it is about (a ticket id, or `Object/Id`): a record's
    /// audit trail finds it by this.
    pub record: Option<&'a str>,
    /// Its status moves and refusals, counted for the console's graph.
    pub tallies: &'a [Tally],
}

/// A decided status move or a refusal, counted by the minute and the hour
/// its event was recorded in (the ops console's status graph).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Tally {
    /// The status table's connection; empty for a refusal that is not a
    /// status move.
    pub connection: String,
    /// `from -> to` for a status move; the refusal's `what` otherwise.
    pub subject: String,
    /// `applied` (decided, queued) or `refused`.
    pub outcome: String,
    /// Why it was refused; empty when applied.
    pub reason: String,
    /// `file:line:col` of the rule that decided it; empty when none did.
    pub source_loc: String,
}

impl Tally {
    /// The spans tallies are kept by: minutes (a day of them), hours.
    pub const SPANS: [i64; 2] = [60_000, 3_600_000];
}

/// One event, its actions and its source's new cursor: what
/// [`Store::accept_all`](super::Store::accept_all) records together.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    pub event: NewEvent<'a>,
    pub actions: &'a [NewAction],
    pub cursor: Option<(&'a str, &'a str)>,
}

/// One decided action, ready for the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    pub key: String,
    pub connection: String,
    pub record: String,
    pub kind: String,
    /// What to send, JSON (the runtime's `Op`).
    pub op: String,
    pub rule: String,
    /// `file:line:col` of the rule in the mappings.
    pub source_loc: String,
    pub revision: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// New: its id, how many of its actions were queued, and how many were
    /// already in the outbox from an earlier event (a hand-off decided
    /// twice, say).
    New {
        event_id: i64,
        queued: usize,
        already: usize,
    },
    /// Seen before: nothing was written (the cursor, if given, still moved).
    Duplicate,
}

/// Actions claimed for one request: one record, in decision order. On a
/// Zendesk ticket the pending actions of consecutive events are coalesced
/// into one group (one ticket update; at most one comment); elsewhere one
/// event's.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub connection: String,
    pub record: String,
    pub event_id: i64,
    /// Some action may have been applied already (a crash or a lost
    /// answer): read the record back before sending.
    pub unconfirmed: bool,
    pub items: Vec<Claimed>,
    /// The ticket the event's actions were decided on, as its stored
    /// event carries it (JSON of `eval::event::Ticket`, `updated_at` as
    /// the Tickets API returned it): the basis of a Zendesk safe update.
    /// `None` unless the event is a Zendesk ticket event (created,
    /// updated, comment added): a Salesforce change fanned out to tickets
    /// and an agent turn carry no API read of the ticket.
    pub basis: Option<String>,
    /// Every coalesced event's basis, by event id (oldest first); `basis`
    /// is the last of them.
    pub bases: Vec<(i64, String)>,
    /// Every event of the group whole (JSON of `eval::event::Event`), by
    /// event id: what a 409, or a retry without a basis, decides again
    /// against the fresh ticket.
    pub events: Vec<(i64, String)>,
    /// When the record's recent updates were settled (ms since 1970, the
    /// last 10 minutes): seeds Zendesk's per-ticket budget after a restart.
    pub recent_updates: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub op: String,
    pub rule: String,
    pub source_loc: String,
    pub revision: String,
    /// Every try, this one included (outages too).
    pub attempts: u32,
    /// The tries that count toward `max_attempts`, this one included:
    /// every try except those that failed for a transient reason.
    pub counted: u32,
    /// When this action first failed for a transient reason (ms since
    /// 1970), if it has: the outage window is measured from here.
    pub failing_since: Option<i64>,
    pub created_ms: i64,
    /// The event whose decision this action is.
    pub event_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Sending,
    Done,
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Done => "done",
            State::Dead => "dead",
        }
    }

    pub(crate) fn parse(s: &str) -> State {
        match s {
            "sending" => State::Sending,
            "done" => State::Done,
            "dead" => State::Dead,
            _ => State::Pending,
        }
    }
}

/// An outbox row, for `l3map outbox list` and the tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: i64,
    pub key: String,
    pub event_key: String,
    pub connection: String,
    pub record: String,
    pub kind: String,
    pub op: serde_json::Value,
    pub rule: String,
    pub source_loc: String,
    pub revision: String,
    pub state: State,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Why a dead letter was parked, as a class (`validation`, `auth`,
    /// `outage`, ...); `None` on other rows and on rows parked before
    /// schema 6.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub events: u64,
    pub pending: u64,
    pub sending: u64,
    pub done: u64,
    pub dead: u64,
    /// When the oldest action not yet applied was decided (ms since 1970).
    pub oldest_waiting_ms: Option<i64>,
}

/// Now, in ms since 1970: the clock every stored time is read on.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What a connection's stored grant is fit for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialState {
    Ok,
    /// The vendor refused the grant (`invalid_grant`): a person must sign
    /// in again (`l3map auth login --connection NAME`).
    NeedsLogin,
    /// The key configured cannot open the row (another key, or the row was
    /// changed by hand).
    Undecryptable,
}

impl CredentialState {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialState::Ok => "ok",
            CredentialState::NeedsLogin => "needs_login",
            CredentialState::Undecryptable => "undecryptable",
        }
    }

    pub fn parse(s: &str) -> Option<CredentialState> {
        Some(match s {
            "ok" => CredentialState::Ok,
            "needs_login" => CredentialState::NeedsLogin,
            "undecryptable" => CredentialState::Undecryptable,
            _ => return None,
        })
    }
}

/// One connection's grant as the store keeps it: sealed, with the
/// plaintext facts `l3map auth status` shows. The store never sees a
/// token; sealing and opening are `runtime::seal`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCredential {
    pub connection: String,
    /// +1 on every stored grant: the compare-and-swap key, and part of the
    /// sealed blob's associated data.
    pub generation: i64,
    pub flow: String,
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub sealed: Vec<u8>,
    /// Wall clock (ms since 1970), for status and for a restart's first
    /// decision; the runtime's own expiry is monotonic.
    pub access_expires_ms: Option<i64>,
    pub refresh_expires_ms: Option<i64>,
}

/// What [`Credentials::begin_refresh`](super::api::Credentials::begin_refresh)
/// found: the refresh intent is a lease, so two processes never send one
/// rotating refresh token at once (the second would be refused, and the
/// first one's answer is the only copy of the next token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshLease {
    /// The intent is ours, written at this stamp (ms since 1970): send.
    Taken(i64),
    /// The stored generation is another one: someone refreshed; read it.
    MovedOn,
    /// Another writer's intent on this generation is younger than the
    /// lease: its answer is awaited (its commit moves the generation on).
    Held,
}

/// A stored grant, with what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub sealed: SealedCredential,
    pub updated_ms: i64,
    /// Set while a refresh request may be on the wire (see
    /// [`Credentials::begin_refresh`](super::api::Credentials::begin_refresh)).
    pub refreshing_since_ms: Option<i64>,
    pub state: CredentialState,
    /// A category and the vendor's error code, never a token.
    pub last_error: Option<String>,
}

/// What `l3map status` shows of the processes sharing a store.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FleetStatus {
    /// The mapping revision the fleet decides by (PostgreSQL; none on
    /// SQLite, or before a replica first started).
    pub active_revision: Option<ActiveRevision>,
    /// The replicas (PostgreSQL; none on SQLite, where one process sends).
    pub replicas: Vec<ReplicaStatus>,
    /// Who holds each singleton, until when.
    pub leases: Vec<LeaseStatus>,
    /// Actions waiting, in flight and parked, per connection.
    pub queues: Vec<QueueStatus>,
    /// Each shared rate budget: how far ahead of now it is booked (ms; 0:
    /// idle).
    pub budgets: Vec<BudgetStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaStatus {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub started_ms: i64,
    /// How long ago its last heartbeat was (ms).
    pub heartbeat_age_ms: i64,
    pub revision: Option<String>,
    pub load_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseStatus {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
    /// Until it runs out (ms; negative: ran out, not yet taken over).
    pub expires_in_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueStatus {
    pub connection: String,
    pub pending: u64,
    pub sending: u64,
    pub dead: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    pub key: String,
    pub booked_ahead_ms: i64,
}

/// The revision a fleet decides by, and who made it so.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveRevision {
    pub revision: String,
    /// The replica (or `l3map publish`) that switched to it.
    pub published_by: String,
    pub switched_ms: i64,
}

/// One revision of a project's mappings as the fleet stores it: what a
/// replica compiles from memory when it must decide by it. Paths are as
/// the publishing process read them (they appear in source locations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Bundle {
    /// The content hash the files and lockfile compile to.
    pub revision: String,
    /// `(path, text)` of every `.l3map` file, in load order.
    pub files: Vec<(String, String)>,
    /// The schema lockfile's canonical JSON, when the project has one.
    pub lock: Option<String>,
}

/// How a revision is published to the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// A replica starting: its files become active only when the fleet
    /// has never seen them (new files rolled out); files the fleet already
    /// moved on from (an old image restarting) do not switch it back.
    IfNew,
    /// An operator's act (a hot reload, SIGHUP, `l3map publish`): the
    /// fleet switches to them, whatever it served before.
    Switch,
}

/// What a migration found and did (`l3map migrate`), on either backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaReport {
    /// The version the store was at (0: an empty PostgreSQL database).
    pub from: i64,
    /// The version it is at now.
    pub to: i64,
    /// `V{n}__{name}` of each migration applied.
    pub applied: Vec<String>,
}
