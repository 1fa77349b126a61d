//! A token's budget: its rate limiter (one per token in the registry the
//! client was built with, [`Limiters`]) and, for a vendor that caps
//! concurrent requests, its permits. A request waits for both under the
//! call's deadline; one the limiter would hold past it is never sent.

use super::super::error::{ApiError, System};
use super::super::limit::{budget_unreachable, over_budget, Lane, Limiters, TokenLimiter};
use super::super::shared_budget::{SharedBudget, SharedPermit};
use super::observe::{self, Rate};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// What one token may spend.
#[derive(Debug, Clone)]
pub struct Budget {
    limiter: Arc<TokenLimiter>,
    permits: Option<Arc<Semaphore>>,
    /// The window the client's `rpm` counts in (its own pace is
    /// `window / limit`).
    window: Duration,
    /// The same token's bucket shared with other processes, and its key.
    shared: Option<(Arc<dyn SharedBudget>, String)>,
    /// The requests in flight the vendor allows the key across processes.
    cap: Option<usize>,
}

/// How long a shared permit outlives its call's deadline before the pool
/// takes it back: past any request's own timeout (at most 600 s).
pub const PERMIT_LEASE: Duration = Duration::from_secs(660);

/// How long an ask of the fleet's shared bucket or permit pool may go
/// unanswered before it counts as the store being unreachable (a hung
/// database link never errs by itself) and is asked again. Well past a
/// busy store's answer (asks queue on the bucket's row lock and the
/// pool): a turn held by a saturated budget is a rate limit, not an
/// outage.
const ASK: Duration = Duration::from_secs(5);

fn no_answer() -> String {
    format!("no answer from the fleet's store within {}s", ASK.as_secs())
}

/// What [`Budget::slot`] gave: held while the request runs.
pub struct Slot<'a> {
    _local: Option<SemaphorePermit<'a>>,
    _shared: Option<SharedPermit>,
}

impl Budget {
    /// The budget of `key` (a fingerprint of the token, or of the app at
    /// its instance) in `limiters`: `limit` per `window`, and at most
    /// `max_concurrent` requests in flight when the vendor caps them.
    /// Clients built from one registry with one key share it; clients of
    /// two registries never do.
    pub fn of(
        limiters: &Limiters,
        key: &str,
        limit: u32,
        window: Duration,
        max_concurrent: Option<usize>,
    ) -> Budget {
        Budget {
            limiter: limiters.for_token_per(key, limit, window),
            permits: max_concurrent.map(|max| limiters.concurrency(key, max)),
            window,
            shared: limiters.shared().map(|s| (s, key.to_string())),
            cap: max_concurrent.map(|m| m.max(1)),
        }
    }

    /// Waits for a permit (where there are any: this process's, then the
    /// fleet's pool) and then the limiter's slot in `lane`, all before
    /// `deadline`. The permits are held while the returned guard lives.
    pub async fn slot(
        &self,
        system: System,
        lane: Lane,
        deadline: tokio::time::Instant,
    ) -> Result<Slot<'_>, ApiError> {
        // Whether the fleet's store did not answer the last ask (an error,
        // or no answer within `ASK`): a request
        // held past its deadline by that is reported as such, not as the
        // token's rate limit (nothing was rate limited).
        let unreachable = AtomicBool::new(false);
        let ready = async {
            let permit = match &self.permits {
                Some(p) => Some(p.acquire().await),
                None => None,
            };
            let shared = self.shared_permit(deadline, &unreachable).await;
            self.limiter.acquire_in(lane).await;
            self.shared_slot(deadline, &unreachable).await;
            (permit, shared)
        };
        let (permit, shared) = tokio::time::timeout_at(deadline, ready)
            .await
            .map_err(|_| match unreachable.load(Ordering::Relaxed) {
                true => budget_unreachable(system),
                false => over_budget(system),
            })?;
        let local = permit.transpose().map_err(|_| ApiError::Protocol {
            system,
            message: "the client is shutting down".into(),
        })?;
        Ok(Slot {
            _local: local,
            _shared: shared,
        })
    }

    /// A permit of the fleet's pool for a capped key (a Salesforce
    /// connected app), waited for while the pool is full or cannot be
    /// reached (closed, as the rate bucket: each replica using the whole
    /// cap alone would be N times the vendor's). Its lease outlives the
    /// request: the wait left before `deadline` and [`PERMIT_LEASE`].
    async fn shared_permit(
        &self,
        deadline: tokio::time::Instant,
        unreachable: &AtomicBool,
    ) -> Option<SharedPermit> {
        let (Some((shared, key)), Some(cap)) = (&self.shared, &self.cap) else {
            return None;
        };
        let mut wait = Duration::from_millis(20);
        loop {
            let lease =
                deadline.saturating_duration_since(tokio::time::Instant::now()) + PERMIT_LEASE;
            let asked = tokio::time::timeout(ASK, shared.permit(key, *cap, lease))
                .await
                .unwrap_or_else(|_| Err(no_answer()));
            unreachable.store(asked.is_err(), Ordering::Relaxed);
            match asked {
                Ok(Some(id)) => {
                    return Some(SharedPermit {
                        shared: shared.clone(),
                        id,
                    })
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(target: "l3map::connectors::budget", error = %e, "the shared permit pool cannot be reached; the request waits for it");
                }
            }
            let again = tokio::time::Instant::now() + wait;
            tokio::time::sleep_until(again.min(deadline)).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    /// The shared bucket's go (see [`SharedBudget`]), asked again as it
    /// says, and again while it cannot be reached. Past `deadline` the
    /// caller's timeout ends the wait.
    async fn shared_slot(&self, deadline: tokio::time::Instant, unreachable: &AtomicBool) {
        let Some((shared, key)) = &self.shared else {
            return;
        };
        loop {
            // Read each time: the limit learned from the API's answers
            // meanwhile paces this request too.
            let limit = self.limiter.limit();
            let asked = tokio::time::timeout(ASK, shared.take(key, limit, self.window))
                .await
                .unwrap_or_else(|_| Err(no_answer()));
            unreachable.store(asked.is_err(), Ordering::Relaxed);
            match asked {
                Ok(wait) if wait.is_zero() => return,
                Ok(wait) => {
                    let until = tokio::time::Instant::now() + wait;
                    tokio::time::sleep_until(until.min(deadline)).await;
                }
                // Closed, not open: N replicas each spending the whole
                // limit alone while the bucket is unreachable would be N
                // times the limit (and the API's 429s after). The request
                // waits for the bucket; past the call's deadline it is
                // never sent.
                Err(e) => {
                    tracing::debug!(target: "l3map::connectors::budget", error = %e, "the shared rate budget cannot be reached; the request waits for it");
                    let again = tokio::time::Instant::now() + Duration::from_millis(250);
                    tokio::time::sleep_until(again.min(deadline)).await;
                }
            }
        }
    }

    /// Feeds what the API said about the token's budget to its limiter;
    /// `refused`: the answer was a 429. A pause (a `Retry-After`, an
    /// exhausted window) is pushed to the shared bucket: every process
    /// backs off together.
    pub fn observe(&self, refused: bool, rate: &Rate) {
        observe::apply(rate, &self.limiter, self.window, refused);
        if let (Some((shared, key)), Some(pause)) = (&self.shared, self.limiter.paused_for()) {
            shared.hold(key, pause, self.limiter.limit(), self.window);
        }
    }

    #[cfg(test)]
    pub(crate) fn shares_with(&self, other: &Budget) -> (bool, bool) {
        let permits = match (&self.permits, &other.permits) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        (Arc::ptr_eq(&self.limiter, &other.limiter), permits)
    }
}
