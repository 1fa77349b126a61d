//! What a stream does when events cannot say what changed: a `GAP_*` event
//! names records but not their values, so they are read again; a
//! `GAP_OVERFLOW` or a replay id beyond retention names nothing, so every
//! record of the object stamped since the last change passed on is read
//! (a `SystemModstamp` catch-up poll, as `runtime::poll` does).
//! https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_other_events_gap.htm

use super::ctx::{Ctx, Stopped};
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::Record;
use crate::runtime::links::{ChangeType, CrmChange};
use serde_json::{Map, Value as Json};

/// Records per catch-up page.
const PAGE: usize = 200;

/// The fields the program reads on `object`, as plain SOQL names.
fn wanted(ctx: &Ctx, object: &str) -> Vec<String> {
    let live = ctx.engine.live();
    let mut out: Vec<String> = live
        .program
        .salesforce_fields(&ctx.connection, object)
        .into_iter()
        .filter(|f| is_plain(f))
        .map(str::to_string)
        .collect();
    for link in live.program.links.iter().filter(|l| l.object == object) {
        if is_plain(&link.field) && !out.contains(&link.field) {
            out.push(link.field.clone());
        }
    }
    out
}

fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|seg| {
            seg.starts_with(|c: char| c.is_ascii_alphabetic())
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

/// A record read back, as a change of its own.
fn record_change(
    ctx: &Ctx,
    object: &str,
    record: Record,
    change_type: ChangeType,
    key: String,
    at: String,
) -> Option<CrmChange> {
    let id = record.get("Id")?.as_str()?.to_string();
    let fields: Map<String, Json> = record
        .into_iter()
        .filter(|(k, _)| k != "attributes")
        .collect();
    Some(CrmChange {
        connection: ctx.connection.clone(),
        object: object.to_string(),
        ids: vec![id],
        change_type,
        changed: fields.keys().cloned().collect(),
        fields,
        key,
        at,
        origin: None,
    })
}

/// A `GAP_*` event's records as they are now, one [`ChangeType::Gap`]
/// change each (keyed by the event's key and the id); an id no longer
/// readable (a gap of a delete) becomes a [`ChangeType::Delete`].
pub async fn refetch(ctx: &mut Ctx, gap: &CrmChange) -> Result<Vec<CrmChange>, Stopped> {
    let fields = wanted(ctx, &gap.object);
    let client = ctx.client.clone();
    let records = ctx
        .retrying("re-read the records of a gap", || {
            client.records_by_ids(&gap.object, &fields, &gap.ids)
        })
        .await?;
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for r in records {
        let id = r.get("Id").and_then(Json::as_str).map(str::to_string);
        if let Some(c) = id.as_ref().and_then(|id| {
            record_change(
                ctx,
                &gap.object,
                r,
                ChangeType::Gap,
                format!("{}:{id}", gap.key),
                gap.at.clone(),
            )
        }) {
            seen.push(id.unwrap_or_default());
            out.push(c);
        }
    }
    for id in gap.ids.iter().filter(|id| !seen.iter().any(|s| s == *id)) {
        out.push(CrmChange {
            ids: vec![id.clone()],
            change_type: ChangeType::Delete,
            fields: Map::new(),
            changed: Vec::new(),
            key: format!("{}:{id}", gap.key),
            ..gap.clone()
        });
    }
    Ok(out)
}

/// How far before the stored commit time a catch-up starts. A record's
/// `SystemModstamp` is set while its transaction runs, before the commit
/// (`commitTimestamp`), so a record stamped a moment before the commit time
/// of the last change passed on (another transaction, or l3map's own
/// skipped write) can still be one no event brought. Records read twice
/// carry equal values and the fan-out writes them once.
const OVERLAP: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

/// Passes on every `object` record stamped at or after `since` (less
/// [`OVERLAP`]), oldest first, each as a change keyed as the SOQL poll
/// keys it (`OBJECT:ID:SYSTEMMODSTAMP`); returns the newest stamp read.
pub async fn catch_up(
    ctx: &mut Ctx,
    object: &str,
    since: jiff::Timestamp,
) -> Result<jiff::Timestamp, Stopped> {
    // The stored time never moves back: what is read from before it only
    // re-reads.
    let stored = since;
    let since = since.checked_sub(OVERLAP).unwrap_or(since);
    ctx.metrics_catch_up();
    tracing::info!(target: super::LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, object, since = %since, "catching up by SystemModstamp");
    let mut select = vec!["Id".to_string(), "SystemModstamp".to_string()];
    for f in wanted(ctx, object) {
        if !select.contains(&f) {
            select.push(f);
        }
    }
    let select = select.join(", ");
    let (mut since, mut inclusive) = (since, true);
    let mut newest = stored;
    loop {
        let op = if inclusive { ">=" } else { ">" };
        let soql = format!(
            "SELECT {select} FROM {object} WHERE SystemModstamp {op} {} ORDER BY SystemModstamp ASC LIMIT {PAGE}",
            soql_stamp(since)
        );
        let page = query(ctx, &soql).await?;
        let full = page.len() >= PAGE;
        let stamps: Vec<Option<jiff::Timestamp>> = page.iter().map(stamp_of).collect();
        let last = stamps.iter().flatten().max().copied();
        pass_on(ctx, object, page).await?;
        let Some(last) = last else { return Ok(newest) };
        newest = newest.max(last);
        if !full {
            return Ok(newest);
        }
        if last == since {
            // A whole page at one stamp: that stamp's records by Id.
            let mut after = String::new();
            loop {
                let soql = format!(
                    "SELECT {select} FROM {object} WHERE SystemModstamp = {}{} ORDER BY Id ASC LIMIT {PAGE}",
                    soql_stamp(last),
                    if after.is_empty() { String::new() } else { format!(" AND Id > '{after}'") }
                );
                let page = query(ctx, &soql).await?;
                let full = page.len() >= PAGE;
                let next = page
                    .last()
                    .and_then(|r| r.get("Id"))
                    .and_then(Json::as_str)
                    .filter(|id| crate::connectors::salesforce::id::canonical(id).is_some())
                    .map(str::to_string);
                pass_on(ctx, object, page).await?;
                match (full, next) {
                    (true, Some(id)) => after = id,
                    _ => break,
                }
            }
            inclusive = false;
        }
        since = last;
    }
}

async fn query(ctx: &mut Ctx, soql: &str) -> Result<Vec<Record>, Stopped> {
    let client = ctx.client.clone();
    ctx.retrying("catch up by SystemModstamp", || async {
        Ok::<_, ApiError>(client.query(soql).await?.records)
    })
    .await
}

async fn pass_on(ctx: &mut Ctx, object: &str, page: Vec<Record>) -> Result<(), Stopped> {
    for r in page {
        let stamp = r
            .get("SystemModstamp")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let id = r.get("Id").and_then(Json::as_str).unwrap_or_default();
        let key = format!("{object}:{id}:{stamp}");
        let at = stamp_of(&r).map(|t| t.to_string()).unwrap_or(stamp);
        if let Some(c) = record_change(ctx, object, r, ChangeType::Update, key, at) {
            ctx.apply(&c).await?;
        }
    }
    Ok(())
}

fn stamp_of(r: &Record) -> Option<jiff::Timestamp> {
    let s = r.get("SystemModstamp")?.as_str()?;
    crate::eval::convert::rfc3339(s, "").ok()?.parse().ok()
}

fn soql_stamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
