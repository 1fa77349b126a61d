//! Zendesk: the cursor-based incremental ticket export.

use super::shared::{
    api, ingest_page, load_cursor, pause, report, save_cursor, zendesk_cursor_key, Backoff,
    PollError, ZENDESK_SOURCE,
};
use crate::connectors::error::ApiError;
use crate::connectors::zendesk::{ExportFrom, ZendeskClient};
use crate::eval::convert::zendesk as zd_convert;
use crate::runtime::engine::Engine;
use crate::runtime::links::resolve::Resolver;
use crate::runtime::links::ticket_event::{answer_of, attach, has_links, TicketLinks, Unresolved};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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
    stop: watch::Receiver<bool>,
) {
    zendesk_linked(engine, client, connection, interval, stop, None).await;
}

/// As [`zendesk`], each ticket event carrying its linked records when the
/// mappings link `connection`'s tickets (`links`): the organizations and
/// requesters side-loaded in the same export request, the Salesforce side
/// through the runtime's resolver. A failed Salesforce read fails the
/// round before the page is recorded: its cursor stays, and the page is
/// read again with the backoff, as in an outage.
pub async fn zendesk_linked(
    engine: Arc<Engine>,
    client: ZendeskClient,
    connection: String,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
    links: Option<TicketLinks>,
) {
    let key = zendesk_cursor_key(&connection);
    let mut backoff = Backoff::new(interval);
    tracing::info!(target: super::shared::LOG_TARGET, connection,
        interval_ms = interval.as_millis() as u64,
        "polling Zendesk's incremental export"
    );
    loop {
        // A fleet polls each source from one replica at a time.
        if !super::shared::holds(&engine, &key, interval).await {
            if !pause(&mut stop, interval).await {
                break;
            }
            continue;
        }
        let round = zendesk_round(&engine, &client, &connection, &key, &mut stop, &links);
        let wait = match round.await {
            Err(PollError::Stopped) => break,
            Ok(new) => {
                backoff.reset();
                if new > 0 {
                    tracing::debug!(target: super::shared::LOG_TARGET, connection, new, "Zendesk poll ingested events");
                }
                interval
            }
            Err(e) => {
                report(&connection, ZENDESK_SOURCE, &e);
                if matches!(e, PollError::Api(ApiError::Validation { .. })) {
                    // A refused cursor stays refused: only a person can say
                    // where to resume without losing changes.
                    tracing::warn!(target: super::shared::LOG_TARGET, connection, cursor_key = %key, "to resume from a point in time, set this cursor to start_time:<unix seconds>");
                }
                backoff.failed(&e)
            }
        };
        if !pause(&mut stop, wait).await {
            break;
        }
    }
    tracing::info!(target: super::shared::LOG_TARGET, connection, "Zendesk polling stopped");
}

/// One round: from the stored cursor to the end of the stream. Returns how
/// many events were new.
async fn zendesk_round(
    engine: &Engine,
    client: &ZendeskClient,
    connection: &str,
    key: &str,
    stop: &mut watch::Receiver<bool>,
    links: &Option<TicketLinks>,
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
        let live = engine.live();
        let linked = links
            .as_ref()
            .filter(|_| has_links(&live.program, connection));
        let parties = linked.is_some() && Resolver::needs_parties(&live.program, connection);
        let from = pos.export_from();
        let page = if parties {
            api(stop, client.export_tickets_with_parties(&from)).await?
        } else {
            api(stop, client.export_tickets(&from)).await?
        };
        let mut events = Vec::with_capacity(page.tickets.len());
        for (t, raw) in page.tickets.iter().zip(&page.raw) {
            match zd_convert::from_ticket(raw, &live.convert.statuses) {
                Ok(mut evs) => {
                    if let Some(l) = linked {
                        let answer = answer_of(raw, &page.users, &page.organizations);
                        let sf = l.salesforce.as_ref().map(|(n, c)| (n.as_str(), c));
                        for ev in &mut evs {
                            attach(&l.resolver, &live.program, connection, &answer, sf, ev)
                                .await
                                .map_err(|Unresolved(why)| PollError::Links(why))?;
                        }
                    }
                    events.append(&mut evs);
                }
                Err(e) => {
                    engine.metrics.event_rejected(ZENDESK_SOURCE, "malformed");
                    tracing::warn!(target: super::shared::LOG_TARGET, connection, ticket = t.id, error = %e, "skipped a ticket the converter cannot read");
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
            tracing::warn!(target: super::shared::LOG_TARGET, connection,
                "the export says there is more but gave no new cursor; trying again next round"
            );
            return Ok(new);
        }
    }
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
}
