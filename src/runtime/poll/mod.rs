//! The polling sources of `l3map run`: changes the webhooks missed (or,
//! without webhooks, every change), read from the APIs on an interval.
//!
//! - **Zendesk**: the cursor-based incremental ticket export, page after
//!   page until `end_of_stream`. Cursor key `zendesk_poll:<connection>`;
//!   its value is the export's `after_cursor`, or `start_time:<unix secs>`
//!   before the first change is seen (an operator may set that form by
//!   hand to replay from a point in time).
//! - **Salesforce**: SOQL on `SystemModstamp` (indexed) per object. Cursor
//!   key `salesforce_poll:<connection>:<Object>`; its value is
//!   `<stamp>` (every record stamped at or before it is read) or
//!   `<stamp>|<Id>` (records at that stamp are read up to that Id).
//!
//! A first start (no cursor) does not replay history: Zendesk starts at
//! the current time, Salesforce at the object's newest `SystemModstamp`
//! (the org's clock, so a skewed local clock loses nothing). That starting
//! point is stored at once, so a restart resumes from it.
//!
//! Nothing is lost and nothing is decided twice: a page's events are
//! ingested in order and only the last one carries the page's new cursor
//! (event and cursor in one transaction), so a crash replays at most that
//! page; a replayed event has the same id (a ticket's id and `updated_at`,
//! a record's Id and `SystemModstamp`) and the store skips it as a
//! duplicate.

use super::engine::Engine;
use super::store::StoreError;
use crate::check::Kind;
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::{Record, SalesforceClient};
use crate::connectors::zendesk::{ExportFrom, ZendeskClient};
use crate::eval::convert::{self, salesforce as sf_convert, zendesk as zd_convert};
use crate::eval::event::Event;
use crate::ir::Program;
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The `source` of events read from the Zendesk export.
pub const ZENDESK_SOURCE: &str = "zendesk_poll";
/// The `source` of events read by SOQL.
pub const SALESFORCE_SOURCE: &str = "salesforce_poll";
/// Records per SOQL page: small enough that one page is one short burst of
/// store transactions, and Salesforce's usual batch.
pub const SALESFORCE_PAGE: usize = 200;
/// How long a failing source waits at most between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub fn zendesk_cursor_key(connection: &str) -> String {
    format!("{ZENDESK_SOURCE}:{connection}")
}

pub fn salesforce_cursor_key(connection: &str, object: &str) -> String {
    format!("{SALESFORCE_SOURCE}:{connection}:{object}")
}

// ------------------------------------------------------------------ shared

#[derive(Debug)]
enum PollError {
    Api(ApiError),
    Store(StoreError),
    /// `stop` turned true while waiting for the API.
    Stopped,
}

impl From<ApiError> for PollError {
    fn from(e: ApiError) -> Self {
        PollError::Api(e)
    }
}

impl From<StoreError> for PollError {
    fn from(e: StoreError) -> Self {
        PollError::Store(e)
    }
}

/// Exponential from the interval, so a source that keeps failing neither
/// hammers the API nor goes silent for long once it recovers.
struct Backoff {
    base: Duration,
    next: Duration,
}

impl Backoff {
    fn new(interval: Duration) -> Backoff {
        let base = interval.max(Duration::from_millis(100));
        Backoff { base, next: base }
    }

    fn reset(&mut self) {
        self.next = self.base;
    }

    fn failed(&mut self, e: &PollError) -> Duration {
        let asked = match e {
            PollError::Api(ApiError::RateLimited {
                retry_after: Some(d),
                ..
            }) => *d,
            PollError::Api(ApiError::QuotaExhausted { .. }) => Duration::from_secs(15 * 60),
            _ => Duration::ZERO,
        };
        let wait = self.next.max(asked);
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }
}

/// Logs one failure (the connector's observer has counted it).
fn report(connection: &str, what: &str, e: &PollError) {
    match e {
        // ApiError's text is the API's message and status, never a credential.
        PollError::Api(e) => {
            tracing::warn!(connection, source = what, error = %e, "polling failed; will retry");
        }
        PollError::Store(e) => {
            tracing::error!(connection, source = what, error = %e, "polling could not record events; will retry");
        }
        PollError::Stopped => {}
    }
}

/// Runs `work` unless `stop` turns true first. `None`: stopped. Only
/// waits (the API, the interval) are cut short this way; a page being
/// written to the store is finished, so its events are counted too.
async fn unless_stopped<T>(
    stop: &mut watch::Receiver<bool>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s) => None,
        v = work => Some(v),
    }
}

/// An API call, given up when `stop` turns true.
async fn api<T>(
    stop: &mut watch::Receiver<bool>,
    call: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, PollError> {
    match unless_stopped(stop, call).await {
        None => Err(PollError::Stopped),
        Some(r) => r.map_err(PollError::Api),
    }
}

/// Sleeps `d`; false when stopped meanwhile (or the sender is gone).
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    unless_stopped(stop, tokio::time::sleep(d)).await.is_some()
}

async fn load_cursor(engine: &Engine, key: &str) -> Result<Option<String>, StoreError> {
    let store = engine.store.clone();
    let key = key.to_string();
    tokio::task::spawn_blocking(move || store.cursor(&key))
        .await
        .map_err(|e| task_failed(engine, e))?
}

async fn save_cursor(engine: &Engine, key: &str, value: &str) -> Result<(), StoreError> {
    let store = engine.store.clone();
    let (key, value) = (key.to_string(), value.to_string());
    tokio::task::spawn_blocking(move || store.set_cursor(&key, &value))
        .await
        .map_err(|e| task_failed(engine, e))?
}

fn task_failed(engine: &Engine, e: tokio::task::JoinError) -> StoreError {
    StoreError::Open {
        path: engine.store.path().to_path_buf(),
        message: format!("the store task failed: {e}"),
    }
}

/// Ingests one page's events in order; the last carries the new cursor.
/// A page that gave no event still moves the cursor, alone. Returns how
/// many events were new.
async fn ingest_page(
    engine: &Engine,
    source: &'static str,
    events: Vec<Event>,
    key: &str,
    cursor: &str,
) -> Result<usize, StoreError> {
    let n = events.len();
    if n == 0 {
        save_cursor(engine, key, cursor).await?;
        return Ok(0);
    }
    let mut new = 0;
    for (i, ev) in events.into_iter().enumerate() {
        let c = (i + 1 == n).then(|| (key.to_string(), cursor.to_string()));
        let got = engine.ingest(source, ev, c).await?;
        if matches!(got.accepted, super::store::Accepted::New { .. }) {
            new += 1;
        }
    }
    Ok(new)
}

// ----------------------------------------------------------------- Zendesk

/// Where the Zendesk export resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ZdPos {
    Start(i64),
    Cursor(String),
}

const START_PREFIX: &str = "start_time:";

impl ZdPos {
    fn encode(&self) -> String {
        match self {
            ZdPos::Start(t) => format!("{START_PREFIX}{t}"),
            ZdPos::Cursor(c) => c.clone(),
        }
    }

    fn decode(s: &str) -> ZdPos {
        match s.strip_prefix(START_PREFIX).map(str::parse::<i64>) {
            Some(Ok(t)) => ZdPos::Start(t),
            _ => ZdPos::Cursor(s.to_string()),
        }
    }

    fn export_from(&self) -> ExportFrom {
        match self {
            ZdPos::Start(t) => ExportFrom::StartTime(*t),
            ZdPos::Cursor(c) => ExportFrom::Cursor(c.clone()),
        }
    }
}

/// Polls the incremental ticket export of one Zendesk connection every
/// `interval` until `stop` turns true. Never returns early: failures are
/// logged, counted (`l3map_api_errors_total`) and retried with backoff.
pub async fn zendesk(
    engine: Arc<Engine>,
    client: ZendeskClient,
    connection: String,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let key = zendesk_cursor_key(&connection);
    let mut backoff = Backoff::new(interval);
    tracing::info!(
        connection,
        interval_ms = interval.as_millis() as u64,
        "polling Zendesk's incremental export"
    );
    loop {
        let wait = match zendesk_round(&engine, &client, &connection, &key, &mut stop).await {
            Err(PollError::Stopped) => break,
            Ok(new) => {
                backoff.reset();
                if new > 0 {
                    tracing::debug!(connection, new, "Zendesk poll ingested events");
                }
                interval
            }
            Err(e) => {
                report(&connection, ZENDESK_SOURCE, &e);
                if matches!(e, PollError::Api(ApiError::Validation { .. })) {
                    // A refused cursor stays refused: only a person can say
                    // where to resume without losing changes.
                    tracing::warn!(connection, cursor_key = %key, "to resume from a point in time, set this cursor to start_time:<unix seconds>");
                }
                backoff.failed(&e)
            }
        };
        if !pause(&mut stop, wait).await {
            break;
        }
    }
    tracing::info!(connection, "Zendesk polling stopped");
}

/// One round: from the stored cursor to the end of the stream. Returns how
/// many events were new.
async fn zendesk_round(
    engine: &Engine,
    client: &ZendeskClient,
    connection: &str,
    key: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<usize, PollError> {
    let mut pos = match load_cursor(engine, key).await? {
        Some(v) => ZdPos::decode(&v),
        None => {
            let start = ZdPos::Start(jiff::Timestamp::now().as_second());
            save_cursor(engine, key, &start.encode()).await?;
            start
        }
    };
    let mut new = 0;
    loop {
        let page = api(stop, client.export_tickets(&pos.export_from())).await?;
        let live = engine.live();
        let mut events = Vec::with_capacity(page.tickets.len());
        for (t, raw) in page.tickets.iter().zip(&page.raw) {
            match zd_convert::from_ticket(raw, &live.convert.statuses) {
                Ok(mut evs) => events.append(&mut evs),
                Err(e) => {
                    engine.metrics.event_rejected(ZENDESK_SOURCE, "malformed");
                    tracing::warn!(connection, ticket = t.id, error = %e, "skipped a ticket the converter cannot read");
                }
            }
        }
        // An empty page of a start-time export says nothing about where
        // the stream is (Zendesk may send no cursor; the emulator's points
        // before every ticket), and Zendesk holds back the last minute's
        // changes: keep the start time until a change is seen.
        let next = match (&page.after_cursor, &pos) {
            (Some(_), ZdPos::Start(_)) if page.tickets.is_empty() => pos.clone(),
            (Some(c), _) => ZdPos::Cursor(c.clone()),
            (None, _) => pos.clone(),
        };
        let moved = next != pos;
        if moved || !events.is_empty() {
            new += ingest_page(engine, ZENDESK_SOURCE, events, key, &next.encode()).await?;
        }
        pos = next;
        if page.end_of_stream || page.after_cursor.is_none() {
            return Ok(new);
        }
        if !moved {
            tracing::warn!(
                connection,
                "the export says there is more but gave no new cursor; trying again next round"
            );
            return Ok(new);
        }
    }
}

// -------------------------------------------------------------- Salesforce

/// Where an object's SOQL poll resumes. Records are ordered by
/// (`SystemModstamp`, `Id`); Salesforce stamps to the second in practice,
/// so many records can share a stamp, more than a page even.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SfPos {
    /// Every record stamped at or before this is read.
    Through(jiff::Timestamp),
    /// Those stamped before this are read, and those stamped at it up to
    /// the Id (none yet when `None`).
    Within(jiff::Timestamp, Option<String>),
}

impl SfPos {
    fn encode(&self) -> String {
        match self {
            SfPos::Through(t) => soql_stamp(*t),
            SfPos::Within(t, id) => format!("{}|{}", soql_stamp(*t), id.as_deref().unwrap_or("")),
        }
    }

    fn decode(s: &str) -> Option<SfPos> {
        match s.split_once('|') {
            None => Some(SfPos::Through(parse_stamp(s)?)),
            Some((t, id)) => {
                let id = (!id.is_empty()).then(|| id.to_string());
                if id.as_deref().is_some_and(|i| !is_id(i)) {
                    return None;
                }
                Some(SfPos::Within(parse_stamp(t)?, id))
            }
        }
    }
}

/// A SOQL datetime literal: UTC, milliseconds (what Salesforce stores).
fn soql_stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Salesforce writes `+0000`; the converter's reader takes that and RFC 3339.
fn parse_stamp(s: &str) -> Option<jiff::Timestamp> {
    convert::rfc3339(s, "").ok()?.parse().ok()
}

fn is_id(s: &str) -> bool {
    matches!(s.len(), 15 | 18) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A name safe to put in SOQL unquoted: `Object`, `Field__c`, `Rel.Field`.
fn is_soql_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|seg| {
            seg.starts_with(|c: char| c.is_ascii_alphabetic())
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// Polls `objects` of one Salesforce connection every `interval` until
/// `stop` turns true. Never returns early: failures are logged, counted
/// and retried with backoff, one object's failure not holding the others.
pub async fn salesforce(
    engine: Arc<Engine>,
    client: SalesforceClient,
    connection: String,
    objects: Vec<String>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let objects: Vec<String> = objects
        .into_iter()
        .filter(|o| {
            let ok = is_soql_name(o) && !o.contains('.');
            if !ok {
                tracing::warn!(connection, object = %o, "not an object name; not polled");
            }
            ok
        })
        .collect();
    let mut backoff = Backoff::new(interval);
    // Objects whose derived field list the org refused: polled without
    // relationship paths from then on, so one bad path cannot stop them.
    let mut basic: HashSet<String> = HashSet::new();
    tracing::info!(connection, objects = ?super::logs::LogJson(&objects), interval_ms = interval.as_millis() as u64, "polling Salesforce by SystemModstamp");
    loop {
        let mut failed = None;
        for object in &objects {
            let round =
                salesforce_object(&engine, &client, &connection, object, &mut basic, &mut stop);
            match round.await {
                Err(PollError::Stopped) => return stopped(&connection),
                Ok(new) => {
                    if new > 0 {
                        tracing::debug!(connection, object = %object, new, "Salesforce poll ingested events");
                    }
                }
                Err(e) => {
                    let what = format!("{SALESFORCE_SOURCE} {object}");
                    report(&connection, &what, &e);
                    failed = Some(e);
                }
            }
        }
        let wait = match failed {
            None => {
                backoff.reset();
                interval
            }
            Some(e) => backoff.failed(&e),
        };
        if !pause(&mut stop, wait).await {
            return stopped(&connection);
        }
    }
}

fn stopped(connection: &str) {
    tracing::info!(connection, "Salesforce polling stopped");
}

/// One object, from its stored cursor to its newest change. Returns how
/// many events were new.
async fn salesforce_object(
    engine: &Engine,
    client: &SalesforceClient,
    connection: &str,
    object: &str,
    basic: &mut HashSet<String>,
    stop: &mut watch::Receiver<bool>,
) -> Result<usize, PollError> {
    let key = salesforce_cursor_key(connection, object);
    let mut pos = match load_cursor(engine, &key).await? {
        Some(v) => match SfPos::decode(&v) {
            Some(p) => p,
            None => {
                tracing::warn!(connection, object, cursor = %v, "unreadable cursor; starting from the newest change");
                start_position(engine, client, object, &key, stop).await?
            }
        },
        None => start_position(engine, client, object, &key, stop).await?,
    };
    let fields = select_list(
        engine,
        client,
        connection,
        object,
        basic.contains(object),
        stop,
    )
    .await?;
    let mut new = 0;
    loop {
        let soql = match &pos {
            SfPos::Within(at, after) => format!(
                "SELECT {fields} FROM {object} WHERE SystemModstamp = {}{} ORDER BY Id ASC LIMIT {SALESFORCE_PAGE}",
                soql_stamp(*at),
                after.as_ref().map(|id| format!(" AND Id > '{id}'")).unwrap_or_default(),
            ),
            SfPos::Through(at) => format!(
                "SELECT {fields} FROM {object} WHERE SystemModstamp > {} ORDER BY SystemModstamp ASC LIMIT {SALESFORCE_PAGE}",
                soql_stamp(*at),
            ),
        };
        let records = match api(stop, client.query(&soql)).await {
            Ok(r) => r.records,
            Err(PollError::Api(e @ ApiError::Validation { .. })) if !basic.contains(object) => {
                tracing::warn!(connection, object, error = %e, "the org refused the fields the mappings read; polling without relationship paths from now on");
                basic.insert(object.to_string());
                return Err(e.into());
            }
            Err(e) => return Err(e),
        };
        let full = records.len() >= SALESFORCE_PAGE;
        let stamped: Vec<(Option<jiff::Timestamp>, Record)> = records
            .into_iter()
            .map(|r| {
                let t = r
                    .get("SystemModstamp")
                    .and_then(Json::as_str)
                    .and_then(parse_stamp);
                (t, r)
            })
            .collect();
        let (next, page) = match &pos {
            SfPos::Within(at, _) => {
                // Ordered by Id: the last one is where the next page starts.
                let last = stamped
                    .last()
                    .and_then(|(_, r)| r.get("Id"))
                    .and_then(Json::as_str)
                    .filter(|id| is_id(id));
                match (full, last) {
                    (true, Some(id)) => (SfPos::Within(*at, Some(id.to_string())), stamped),
                    (true, None) => {
                        return Err(PollError::Api(ApiError::Protocol {
                            system: crate::connectors::error::System::Salesforce,
                            message: format!("a {object} record without a readable Id"),
                        }))
                    }
                    (false, _) => (SfPos::Through(*at), stamped),
                }
            }
            SfPos::Through(_) => {
                let newest = stamped.iter().filter_map(|(t, _)| *t).max();
                let Some(newest) = newest else {
                    if stamped.is_empty() {
                        return Ok(new);
                    }
                    return Err(PollError::Api(ApiError::Protocol {
                        system: crate::connectors::error::System::Salesforce,
                        message: format!("{object} records without a readable SystemModstamp"),
                    }));
                };
                if !full {
                    // Everything after `at` is here, ties at `newest` included.
                    (SfPos::Through(newest), stamped)
                } else {
                    // The page may stop in the middle of the records stamped
                    // `newest`: take those before, read that stamp by Id.
                    let (before, _at_newest): (Vec<_>, Vec<_>) = stamped
                        .into_iter()
                        .partition(|(t, _)| t.is_some_and(|t| t < newest));
                    match before.iter().filter_map(|(t, _)| *t).max() {
                        Some(t) => (SfPos::Through(t), before),
                        None => (SfPos::Within(newest, None), vec![]),
                    }
                }
            }
        };
        let done = !full && matches!(pos, SfPos::Through(_));
        if let SfPos::Within(_, None) = next {
            // Nothing read yet at that stamp: nothing to store either.
            pos = next;
            continue;
        }
        let live = engine.live();
        let mut events = Vec::with_capacity(page.len());
        for (_, r) in page {
            match sf_convert::from_records(&Json::Object(r), &live.convert.salesforce) {
                Ok(mut evs) => events.append(&mut evs),
                Err(e) => {
                    engine
                        .metrics
                        .event_rejected(SALESFORCE_SOURCE, "malformed");
                    tracing::warn!(connection, object, error = %e, "skipped a record the converter cannot read");
                }
            }
        }
        new += ingest_page(engine, SALESFORCE_SOURCE, events, &key, &next.encode()).await?;
        pos = next;
        if done {
            return Ok(new);
        }
    }
}

/// The first position of an object never polled: its newest change, by the
/// org's clock. Stored at once, so a restart before any change resumes here.
async fn start_position(
    engine: &Engine,
    client: &SalesforceClient,
    object: &str,
    key: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<SfPos, PollError> {
    let soql =
        format!("SELECT Id, SystemModstamp FROM {object} ORDER BY SystemModstamp DESC LIMIT 1");
    let newest = api(stop, client.query(&soql))
        .await?
        .records
        .first()
        .and_then(|r| r.get("SystemModstamp"))
        .and_then(Json::as_str)
        .and_then(parse_stamp);
    let pos = SfPos::Through(newest.unwrap_or_else(jiff::Timestamp::now));
    save_cursor(engine, key, &pos.encode()).await?;
    Ok(pos)
}

/// The SELECT list for `object`: Id, SystemModstamp, the fields the live
/// mappings read or write on it (a write is compared with the current
/// value), the Case `Status` when a status table is on this connection,
/// and the field linking a record to its ticket. Kept to what the
/// object's describe lists when it can be read; `basic` keeps only its
/// own fields (no relationship paths).
async fn select_list(
    engine: &Engine,
    client: &SalesforceClient,
    connection: &str,
    object: &str,
    basic: bool,
    stop: &mut watch::Receiver<bool>,
) -> Result<String, PollError> {
    let live = engine.live();
    let wanted = mapped_fields(
        &live.program,
        connection,
        object,
        live.convert.salesforce.ticket_field.as_deref(),
    );
    let describe = match api(stop, client.describe(object)).await {
        Ok(d) => Some(d),
        Err(PollError::Stopped) => return Err(PollError::Stopped),
        Err(_) => None,
    };
    let mut out: Vec<String> = vec!["Id".into(), "SystemModstamp".into()];
    for f in wanted {
        let keep = match (&describe, f.split_once('.')) {
            (_, Some(_)) if basic => false,
            (None, _) => true,
            (Some(d), None) => d.field(&f).is_some(),
            // `Account.Name` through `AccountId`, `Parent__r.X` through `Parent__c`.
            (Some(d), Some((rel, _))) => {
                let via = match rel.strip_suffix("__r") {
                    Some(stem) => format!("{stem}__c"),
                    None => format!("{rel}Id"),
                };
                d.field(&via).is_some_and(|v| v.ty == "reference")
            }
        };
        if keep && !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out.join(", "))
}

/// Every field of `object` the program names for `connection`, as paths
/// relative to the object (`SLA_Tier__c`, `Account.Name`). Walks the
/// program's JSON form, so a field named anywhere (mappings, conditions,
/// templates, escalation writes) is found however the IR nests it.
fn mapped_fields(
    program: &Program,
    connection: &str,
    object: &str,
    ticket_field: Option<&str>,
) -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let is_sf_conn = program
        .connections
        .iter()
        .any(|c| c.name == connection && c.kind == Kind::Salesforce);
    if let Ok(v) = serde_json::to_value(program) {
        let mut stack = vec![&v];
        while let Some(node) = stack.pop() {
            match node {
                Json::Object(m) => {
                    // FieldRef::Salesforce: `{"system": "salesforce", "connection", "object", "path"}`.
                    if m.get("system").and_then(Json::as_str) == Some("salesforce")
                        && m.get("connection").and_then(Json::as_str) == Some(connection)
                    {
                        if let Some(p) = m.get("path").and_then(Json::as_str) {
                            paths.insert(p.to_string());
                        }
                    }
                    // Ref::Salesforce: `{"salesforce": {"path"}}`; no connection, by object.
                    if let Some(p) = m
                        .get("salesforce")
                        .and_then(|r| r.get("path"))
                        .and_then(Json::as_str)
                    {
                        if is_sf_conn {
                            paths.insert(p.to_string());
                        }
                    }
                    stack.extend(m.values());
                }
                Json::Array(a) => stack.extend(a),
                _ => {}
            }
        }
    }
    let prefix = format!("{object}.");
    let mut out: BTreeSet<String> = paths
        .iter()
        .filter_map(|p| p.strip_prefix(&prefix))
        .filter(|f| is_soql_name(f))
        .map(str::to_string)
        .collect();
    if object == "Case"
        && program
            .status_tables
            .iter()
            .any(|t| t.connection == connection)
    {
        out.insert("Status".into());
    }
    if let Some(f) = ticket_field.filter(|f| is_soql_name(f)) {
        out.insert(f.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zendesk_positions_round_trip() {
        for p in [
            ZdPos::Start(1_780_000_000),
            ZdPos::Cursor("MTU3NjYxMzUzOS4wfHw0Njd8".into()),
        ] {
            assert_eq!(ZdPos::decode(&p.encode()), p);
        }
        assert_eq!(
            ZdPos::decode("start_time:x"),
            ZdPos::Cursor("start_time:x".into())
        );
    }

    #[test]
    fn salesforce_positions_round_trip_and_junk_is_refused() {
        let t: jiff::Timestamp = "2026-11-11T10:06:00.123Z".parse().unwrap();
        for p in [
            SfPos::Through(t),
            SfPos::Within(t, Some("0015e000000000AAAA".into())),
            SfPos::Within(t, None),
        ] {
            assert_eq!(SfPos::decode(&p.encode()), Some(p));
        }
        assert_eq!(SfPos::Through(t).encode(), "2026-11-11T10:06:00.123Z");
        assert_eq!(
            SfPos::decode("2026-11-11T10:06:00.000+0000"),
            Some(SfPos::Through("2026-11-11T10:06:00Z".parse().unwrap()))
        );
        assert_eq!(SfPos::decode("yesterday"), None);
        assert_eq!(SfPos::decode("2026-11-11T10:06:00Z|' OR Id != '"), None);
    }

    #[test]
    fn only_plain_names_reach_soql() {
        assert!(is_soql_name("Account.SLA_Tier__c"));
        assert!(!is_soql_name("Name FROM User --"));
        assert!(!is_soql_name("a..b"));
        assert!(!is_soql_name("1x"));
    }

    #[test]
    fn the_fields_come_from_the_mappings() {
        let program = crate::runtime::compile::compile(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mappings/fintech"
        )))
        .expect("fintech compiles");
        let account = mapped_fields(&program, "crm", "Account", None);
        for f in ["SLA_Tier__c", "Contract_Value__c", "Renewal_Date__c"] {
            assert!(account.contains(f), "{f} in {account:?}");
        }
        let contact = mapped_fields(&program, "crm", "Contact", None);
        assert!(contact.contains("KYC_Status__c"), "{contact:?}");
        let case = mapped_fields(&program, "crm", "Case", Some("Zendesk_Ticket_Id__c"));
        for f in [
            "Risk_Decision__c",
            "AI_Handoff_Reason__c",
            "Zendesk_Ticket_Id__c",
        ] {
            assert!(case.contains(f), "{f} in {case:?}");
        }
        assert!(mapped_fields(&program, "desk", "Account", None).is_empty());
    }
}
