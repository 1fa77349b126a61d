//! What both sources share: errors and backoff, cursors, and ingesting a
//! page of events with its cursor.

use crate::connectors::error::ApiError;
use crate::eval::event::Event;
use crate::runtime::engine::Engine;
use crate::runtime::store::StoreError;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// The target its log lines had before the module was split, so operators'
/// filters (`RUST_LOG`, alerts on the JSON `target`) keep matching.
pub(super) const LOG_TARGET: &str = "l3map::runtime::poll";

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

#[derive(Debug)]
pub(super) enum PollError {
    Api(ApiError),
    Store(StoreError),
    /// The fan-out could not record a change's events (the store, or no
    /// Zendesk connection to read).
    Fanout(String),
    /// A ticket's linked records could not be read (Salesforce down): the
    /// page is not recorded, its cursor not moved; it is read again.
    Links(String),
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
/// hammers the API nor goes silent for long once it recovers: the interval,
/// then doubling up to [`MAX_BACKOFF`] (the one doubling,
/// `connectors::backoff`), never under what the API asked.
pub(super) struct Backoff {
    base: Duration,
    failures: u32,
}

impl Backoff {
    pub(super) fn new(interval: Duration) -> Backoff {
        let base = interval.max(Duration::from_millis(100));
        Backoff { base, failures: 0 }
    }

    pub(super) fn reset(&mut self) {
        self.failures = 0;
    }

    pub(super) fn failed(&mut self, e: &PollError) -> Duration {
        let asked = match e {
            PollError::Api(ApiError::RateLimited {
                retry_after: Some(d),
                ..
            }) => *d,
            PollError::Api(ApiError::QuotaExhausted { .. }) => Duration::from_secs(15 * 60),
            _ => Duration::ZERO,
        };
        // The first wait is the interval itself, even one longer than the
        // cap; the doubling starts from twice it.
        let next = match self.failures.checked_sub(1) {
            None => self.base,
            Some(n) => {
                crate::connectors::backoff::Backoff::new(self.base * 2, MAX_BACKOFF).bound(n)
            }
        };
        self.failures = self.failures.saturating_add(1);
        next.max(asked)
    }
}

/// Logs one failure (the connector's observer has counted it).
pub(super) fn report(connection: &str, what: &str, e: &PollError) {
    match e {
        // ApiError's text is the API's message and status, never a credential.
        PollError::Api(e) => {
            tracing::warn!(target: LOG_TARGET, connection, source = what, error = %e, "polling failed; will retry");
        }
        PollError::Store(e) => {
            tracing::error!(target: LOG_TARGET, connection, source = what, error = %e, "polling could not record events; will retry");
        }
        PollError::Fanout(e) => {
            tracing::error!(target: LOG_TARGET, connection, source = what, error = %e, "polling could not fan a change out to its tickets; will retry");
        }
        PollError::Links(e) => {
            tracing::warn!(target: LOG_TARGET, connection, source = what, error = %e, "a ticket's linked records could not be read; the page is read again");
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
pub(super) async fn api<T>(
    stop: &mut watch::Receiver<bool>,
    call: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, PollError> {
    match unless_stopped(stop, call).await {
        None => Err(PollError::Stopped),
        Some(r) => r.map_err(PollError::Api),
    }
}

/// Sleeps `d`; false when stopped meanwhile (or the sender is gone).
/// Whether this process holds the singleton lease `key` (a source's
/// cursor key) for its next round: in a fleet each source is polled by one
/// replica at a time, taken over by another when the holder stops renewing
/// (two rounds and 15 seconds). On SQLite the one process always holds it.
/// A store that cannot answer counts as not held: the round waits.
pub(super) async fn holds(engine: &Engine, key: &str, interval: Duration) -> bool {
    let ttl = interval * 2 + Duration::from_secs(15);
    let (store, name) = (engine.store.clone(), key.to_string());
    // A replica that cannot decide by the fleet's revision would only
    // fail its rounds: the source goes to one that can, at once.
    if engine.fleet.unloadable().is_some() {
        let _ = tokio::task::spawn_blocking(move || store.release(&name)).await;
        engine.metrics.lease_seen(key, None);
        return false;
    }
    match tokio::task::spawn_blocking(move || store.lease(&name, ttl)).await {
        Ok(Ok(held)) => {
            engine.metrics.lease_seen(key, held);
            held.is_some()
        }
        Ok(Err(e)) => {
            tracing::warn!(target: LOG_TARGET, source = key, error = %e, "the source's lease could not be read; this round waits");
            false
        }
        Err(_) => false,
    }
}

pub(super) async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    unless_stopped(stop, tokio::time::sleep(d)).await.is_some()
}

pub(super) async fn load_cursor(engine: &Engine, key: &str) -> Result<Option<String>, StoreError> {
    let store = engine.store.clone();
    let key = key.to_string();
    tokio::task::spawn_blocking(move || store.cursor(&key))
        .await
        .map_err(|e| task_failed(engine, e))?
}

pub(super) async fn save_cursor(engine: &Engine, key: &str, value: &str) -> Result<(), StoreError> {
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
pub(super) async fn ingest_page(
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
        if matches!(got.accepted, crate::runtime::store::Accepted::New { .. }) {
            new += 1;
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_the_interval_then_doubles_to_the_cap() {
        let secs = |interval: u64, n: usize| {
            let mut b = Backoff::new(Duration::from_secs(interval));
            (0..n)
                .map(|_| b.failed(&PollError::Stopped).as_secs())
                .collect::<Vec<_>>()
        };
        assert_eq!(secs(30, 5), [30, 60, 120, 240, 300]);
        // An interval above the cap waits the interval once, then the cap.
        assert_eq!(secs(600, 3), [600, 300, 300]);
        let mut b = Backoff::new(Duration::from_secs(30));
        b.failed(&PollError::Stopped);
        b.reset();
        assert_eq!(b.failed(&PollError::Stopped), Duration::from_secs(30));
        let asked = PollError::Api(ApiError::QuotaExhausted {
            system: crate::connectors::error::System::Salesforce,
            message: String::new(),
        });
        assert_eq!(b.failed(&asked), Duration::from_secs(15 * 60));
    }
}
