//! Salesforce: SOQL on `SystemModstamp`, object by object.

use super::shared::{
    api, ingest_page, load_cursor, pause, report, salesforce_cursor_key, save_cursor, Backoff,
    PollError, SALESFORCE_PAGE, SALESFORCE_SOURCE,
};
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::{Record, SalesforceClient};
use crate::eval::convert::{self, salesforce as sf_convert};
use crate::ir::Program;
use crate::runtime::engine::Engine;
use crate::runtime::links::fanout::Fanout;
use crate::runtime::links::{ChangeType, CrmChange};
use serde_json::Map;
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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
/// A record of an object the mappings link to tickets goes to `fanout`
/// (one event per ticket it governs); any other becomes one
/// `record_changed` event of its own, as before links.
pub async fn salesforce(
    engine: Arc<Engine>,
    fanout: Arc<Fanout>,
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
                tracing::warn!(target: super::shared::LOG_TARGET, connection, object = %o, "not an object name; not polled");
            }
            ok
        })
        .collect();
    let mut backoff = Backoff::new(interval);
    // Objects whose derived field list the org refused: polled without
    // relationship paths from then on, so one bad path cannot stop them.
    let mut basic: HashSet<String> = HashSet::new();
    tracing::info!(target: super::shared::LOG_TARGET, connection, objects = ?crate::runtime::logs::LogJson(&objects), interval_ms = interval.as_millis() as u64, "polling Salesforce by SystemModstamp");
    loop {
        let mut failed = None;
        for object in &objects {
            // A fleet polls each object from one replica at a time.
            let key = super::shared::salesforce_cursor_key(&connection, object);
            if !super::shared::holds(&engine, &key, interval).await {
                continue;
            }
            let round = salesforce_object(
                &engine,
                &fanout,
                &client,
                &connection,
                object,
                &mut basic,
                &mut stop,
            );
            match round.await {
                Err(PollError::Stopped) => return stopped(&connection),
                Ok(new) => {
                    if new > 0 {
                        tracing::debug!(target: super::shared::LOG_TARGET, connection, object = %object, new, "Salesforce poll ingested events");
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
    tracing::info!(target: super::shared::LOG_TARGET, connection, "Salesforce polling stopped");
}

/// One object, from its stored cursor to its newest change. Returns how
/// many events were new.
async fn salesforce_object(
    engine: &Engine,
    fanout: &Fanout,
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
                tracing::warn!(target: super::shared::LOG_TARGET, connection, object, cursor = %v, "unreadable cursor; starting from the newest change");
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
                tracing::warn!(target: super::shared::LOG_TARGET, connection, object, error = %e, "the org refused the fields the mappings read; polling without relationship paths from now on");
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
        let linked = live
            .program
            .links
            .iter()
            .any(|l| l.crm == connection && l.object == object);
        let mut events = Vec::with_capacity(page.len());
        for (_, r) in page {
            if linked {
                // Every ticket's event is recorded before the cursor moves
                // past the record; a restart in between re-reads it and
                // records nothing new (the event ids come from its stamp).
                match crm_change(connection, object, r) {
                    Some(change) => {
                        let applied = unless_stopped_apply(stop, fanout, &change).await?;
                        new += applied.new_events;
                    }
                    None => {
                        engine
                            .metrics
                            .event_rejected(SALESFORCE_SOURCE, "malformed");
                        tracing::warn!(target: super::shared::LOG_TARGET, connection, object, "skipped a record without a readable Id or SystemModstamp");
                    }
                }
                continue;
            }
            match sf_convert::from_records(&Json::Object(r), &live.convert.salesforce) {
                Ok(mut evs) => events.append(&mut evs),
                Err(e) => {
                    engine
                        .metrics
                        .event_rejected(SALESFORCE_SOURCE, "malformed");
                    tracing::warn!(target: super::shared::LOG_TARGET, connection, object, error = %e, "skipped a record the converter cannot read");
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

/// The fan-out of one change, given up when `stop` turns true (its events
/// so far are kept; the record is read again on the next start).
async fn unless_stopped_apply(
    stop: &mut watch::Receiver<bool>,
    fanout: &Fanout,
    change: &CrmChange,
) -> Result<crate::runtime::links::fanout::Applied, PollError> {
    use crate::runtime::links::fanout::FanoutError;
    tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s) => Err(PollError::Stopped),
        r = fanout.apply(change) => r.map_err(|e| match e {
            FanoutError::Api(e) => PollError::Api(e),
            other => PollError::Fanout(other.to_string()),
        }),
    }
}

/// A polled record as a change: key `OBJECT:ID:SYSTEMMODSTAMP`, every
/// field read counted as changed (a poll sees states, not changes).
fn crm_change(connection: &str, object: &str, mut r: Record) -> Option<CrmChange> {
    let id = r
        .get("Id")
        .and_then(Json::as_str)
        .filter(|i| is_id(i))?
        .to_string();
    let stamp = r
        .get("SystemModstamp")
        .and_then(Json::as_str)
        .and_then(parse_stamp)?;
    r.remove("attributes");
    let fields: Map<String, Json> = r
        .into_iter()
        .map(|(k, v)| (k, strip_attributes(v)))
        .collect();
    let changed = fields
        .keys()
        .filter(|k| !matches!(k.as_str(), "Id" | "SystemModstamp"))
        .cloned()
        .collect();
    let at = soql_stamp(stamp);
    Some(CrmChange {
        connection: connection.to_string(),
        object: object.to_string(),
        ids: vec![id.clone()],
        change_type: ChangeType::Update,
        fields,
        changed,
        key: format!("{object}:{id}:{at}"),
        at,
        origin: None,
    })
}

/// A related record's `attributes` is REST metadata, not a field.
fn strip_attributes(v: Json) -> Json {
    match v {
        Json::Object(mut m) => {
            m.remove("attributes");
            Json::Object(
                m.into_iter()
                    .map(|(k, v)| (k, strip_attributes(v)))
                    .collect(),
            )
        }
        other => other,
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
/// and the fields the links compare (so the fan-out need not read them
/// again). Kept to what the
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
    let wanted = mapped_fields(&live.program, connection, object);
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
/// relative to the object (`SLA_Tier__c`, `Account.Name`): mappings,
/// conditions, templates, escalation writes (the program's index), with
/// the Case `Status` when a status table is on this connection and the
/// fields of the links on this object.
fn mapped_fields(program: &Program, connection: &str, object: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = program
        .salesforce_fields(connection, object)
        .into_iter()
        .filter(|f| is_soql_name(f))
        .map(str::to_string)
        .collect();
    if object == "Case" && program.status_table(connection).is_some() {
        out.insert("Status".into());
    }
    for l in &program.links {
        if l.crm == connection && l.object == object && is_soql_name(&l.field) {
            out.insert(l.field.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut program = program;
        let account = mapped_fields(&program, "crm", "Account");
        for f in ["SLA_Tier__c", "Contract_Value__c", "Renewal_Date__c"] {
            assert!(account.contains(f), "{f} in {account:?}");
        }
        let contact = mapped_fields(&program, "crm", "Contact");
        assert!(contact.contains("KYC_Status__c"), "{contact:?}");
        // A link's field is read with the record, for the fan-out.
        program.links.push(crate::ir::Link {
            desk: "desk".into(),
            zendesk: crate::ir::ZdObject::Ticket,
            zendesk_key: crate::ir::ZdKey::Id,
            crm: "crm".into(),
            object: "Case".into(),
            field: "Zendesk_Ticket_Id__c".into(),
            pick: crate::ir::Pick::One,
            tickets: vec!["open".into()],
            loc: crate::ir::Loc {
                file: 0,
                line: 1,
                col: 1,
                start: 0,
                end: 0,
            },
        });
        let case = mapped_fields(&program, "crm", "Case");
        for f in [
            "Risk_Decision__c",
            "AI_Handoff_Reason__c",
            "Zendesk_Ticket_Id__c",
        ] {
            assert!(case.contains(f), "{f} in {case:?}");
        }
        assert!(mapped_fields(&program, "desk", "Account").is_empty());
    }
}
