//! What one channel's task holds, and the waits it makes: a change passed
//! on until the fan-out takes it, an API call until it answers, each cut
//! short when the task is told to stop.

use super::cursor::{self, Position};
use super::grpc::Schemas;
use super::LOG_TARGET;
use crate::connectors::backoff::Backoff;
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::SalesforceClient;
use crate::runtime::engine::Engine;
use crate::runtime::links::fanout::Fanout;
use crate::runtime::links::CrmChange;
use crate::runtime::metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// `stop` turned true: the task ends without storing anything more.
#[derive(Debug)]
pub struct Stopped;

/// What one channel's task needs.
pub struct Ctx {
    pub engine: Arc<Engine>,
    pub fanout: Arc<Fanout>,
    pub client: SalesforceClient,
    pub schemas: Schemas,
    pub connection: String,
    pub channel: String,
    /// The object the channel's events are about (`Account`).
    pub object: String,
    pub endpoint: String,
    pub batch: i32,
    pub stop: watch::Receiver<bool>,
    pub metrics: Metrics,
}

impl Ctx {
    pub fn key(&self) -> String {
        cursor::replay_key(&self.connection, &self.channel)
    }

    /// Sleeps `d`; `Err(Stopped)` when stopped meanwhile.
    pub async fn pause(&mut self, d: Duration) -> Result<(), Stopped> {
        tokio::select! {
            biased;
            _ = self.stop.wait_for(|s| *s) => Err(Stopped),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }

    /// `work` until it succeeds, with backoff, or until stopped.
    pub async fn retrying<T, F, Fut>(&mut self, what: &str, mut work: F) -> Result<T, Stopped>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut n = 0;
        loop {
            let attempt = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => return Err(Stopped),
                r = work() => r,
            };
            match attempt {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::warn!(target: LOG_TARGET, connection = %self.connection, channel = %self.channel, error = %e, "could not {what}; will retry");
                    self.pause(backoff.bound(n)).await?;
                    n = n.saturating_add(1);
                }
            }
        }
    }

    /// Passes `change` on until the fan-out takes it (never skipped; the
    /// fan-out takes a change whose lookup is refused for good as
    /// refused, so it cannot hold the channel); `Err(Stopped)` only when
    /// stopped first.
    pub async fn apply(&mut self, change: &CrmChange) -> Result<(), Stopped> {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let mut n = 0;
        loop {
            let fanout = self.fanout.clone();
            let got = tokio::select! {
                biased;
                _ = self.stop.wait_for(|s| *s) => return Err(Stopped),
                r = fanout.apply(change) => r,
            };
            match got {
                Ok(a) => {
                    // A change refused for good is passed over as applied
                    // is: its replay id is stored, later changes flow.
                    let outcome = if a.refused.is_some() {
                        "refused"
                    } else {
                        "applied"
                    };
                    self.metrics
                        .cdc_event(&self.connection, &self.channel, outcome);
                    return Ok(());
                }
                Err(e) => {
                    self.metrics
                        .cdc_event(&self.connection, &self.channel, "retried");
                    tracing::warn!(target: LOG_TARGET, connection = %self.connection, channel = %self.channel, key = %change.key, error = %e, "the change could not be passed on; trying it again");
                    self.pause(backoff.bound(n)).await?;
                    n = n.saturating_add(1);
                }
            }
        }
    }

    pub fn metrics_catch_up(&self) {
        self.metrics.cdc_catch_up(&self.connection, &self.channel);
    }

    pub async fn save(&self, p: &Position) {
        if let Err(e) = cursor::save(&self.engine, &self.key(), p).await {
            // The next event stores it again; a crash before then replays
            // what is already decided, which decides nothing twice.
            tracing::error!(target: LOG_TARGET, connection = %self.connection, channel = %self.channel, error = %e, "could not store the replay id");
        }
    }
}
