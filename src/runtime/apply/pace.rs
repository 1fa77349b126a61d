//! Zendesk's per-ticket update limit, kept by l3map itself: "30 updates
//! per 10 minutes per user per ticket" on Update Ticket
//! (developer.zendesk.com/api-reference/introduction/rate-limits/, as
//! transcribed verbatim in github.com/api-evangelist/zendesk
//! rate-limits/zendesk-rate-limits.yml). A ticket over its budget waits
//! for its next slot instead of earning a 429.
//!
//! The budget is a sliding log per (connection, ticket): the instants of
//! its last 30 updates; a 31st waits until the oldest is 10 minutes old,
//! so no 10-minute window ever holds more than 30. (A GCRA, one instant
//! per key, lets a full burst through at the start of a window and then
//! the sustained rate on top: up to 59 in one window, which is over.)
//! Memory is bounded by a moka cache (already in the tree; `governor`'s
//! keyed limiter is not in the lockfile, is a GCRA, and keeps every key
//! until its `retain_recent` is called): an entry idle for a whole period
//! is back to a full budget anyway, so it expires then, and past the cap
//! the least recently used go (their tickets get a fresh budget, which can
//! cost one 429, still waited for by its `Retry-After`).
//!
//! Spent gradually: the first two thirds of the budget go as they come;
//! past that, a ticket's updates are spaced by `period / updates` (20 s).
//! Meanwhile its queued writes pile up in the outbox and go as one
//! coalesced update (`coalesce.rs`), so a burst of decisions about one
//! ticket never waits out a whole period with its budget spent at the
//! start. After a restart the budget is seeded from when the outbox
//! settled the ticket's updates of the last period (`Group::recent_updates`),
//! so a restart mid-burst does not grant a fresh one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Zendesk's Update Ticket limit: updates per period, per user per ticket.
pub const TICKET_UPDATES: u32 = 30;
pub const TICKET_PERIOD: Duration = Duration::from_secs(600);
/// Tickets whose budgets are tracked at once (each at most 30 instants).
const MAX_TICKETS: u64 = 10_000;

#[derive(Clone)]
pub struct TicketPace {
    /// Per key: when its updates within the last period were sent.
    sent: moka::future::Cache<(String, u64), Arc<Mutex<VecDeque<Instant>>>>,
    updates: usize,
    period: Duration,
}

impl std::fmt::Debug for TicketPace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketPace")
            .field("tracked", &self.sent.entry_count())
            .finish()
    }
}

impl Default for TicketPace {
    fn default() -> TicketPace {
        TicketPace::new(TICKET_UPDATES, TICKET_PERIOD)
    }
}

impl TicketPace {
    pub fn new(updates: u32, period: Duration) -> TicketPace {
        TicketPace {
            sent: moka::future::Cache::builder()
                .max_capacity(MAX_TICKETS)
                .time_to_idle(period)
                .build(),
            updates: updates.max(1) as usize,
            period,
        }
    }

    /// Takes one update of the ticket's budget at `now`, or says how long
    /// to wait for one (nothing taken then). `seed`: when the ticket's
    /// recent updates were made (ms since 1970, `now_ms` being now), used
    /// when the ticket is not tracked yet (after a restart).
    pub async fn take(
        &self,
        connection: &str,
        ticket: u64,
        now: Instant,
        seed: &[i64],
        now_ms: i64,
    ) -> Result<(), Duration> {
        let cell = self
            .sent
            .get_with((connection.to_string(), ticket), async {
                let past: VecDeque<Instant> = seed
                    .iter()
                    .filter_map(|ms| {
                        let ago = Duration::from_millis(u64::try_from(now_ms - ms).ok()?);
                        (ago < self.period).then(|| now.checked_sub(ago)).flatten()
                    })
                    .collect();
                Arc::new(Mutex::new(past))
            })
            .await;
        let mut sent = cell.lock().unwrap_or_else(|e| e.into_inner());
        while sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.period)
        {
            sent.pop_front();
        }
        if sent.len() >= self.updates {
            let oldest = sent.front().copied().unwrap_or(now);
            return Err((oldest + self.period).saturating_duration_since(now));
        }
        // Past two thirds of the budget: spaced, the rest coalesced.
        if sent.len() >= self.updates * 2 / 3 {
            let gap = self.period / self.updates as u32;
            if let Some(last) = sent.back() {
                let since = now.saturating_duration_since(*last);
                if since < gap {
                    return Err(gap - since);
                }
            }
        }
        sent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn twenty_go_at_once_then_one_every_twenty_seconds_up_to_thirty() {
        let p = TicketPace::default();
        let t0 = Instant::now();
        for i in 0..20 {
            assert_eq!(p.take("desk", 7, t0, &[], 0).await, Ok(()), "update {i}");
        }
        let gap = TICKET_PERIOD / TICKET_UPDATES;
        assert_eq!(p.take("desk", 7, t0, &[], 0).await, Err(gap));
        // Another ticket, another connection: budgets of their own.
        assert_eq!(p.take("desk", 8, t0, &[], 0).await, Ok(()));
        assert_eq!(p.take("other", 7, t0, &[], 0).await, Ok(()));
        let mut now = t0;
        for i in 20..30 {
            now += gap;
            assert_eq!(p.take("desk", 7, now, &[], 0).await, Ok(()), "update {i}");
        }
        // Thirty in the period: the next waits for the first to leave it.
        let wait = p.take("desk", 7, now + gap, &[], 0).await.unwrap_err();
        assert_eq!(wait, TICKET_PERIOD - gap * 11);
        let later = t0 + TICKET_PERIOD;
        assert_eq!(p.take("desk", 7, later, &[], 0).await, Ok(()));
    }

    #[tokio::test]
    async fn a_restart_seeds_the_budget_from_the_updates_the_outbox_settled() {
        let p = TicketPace::default();
        let t0 = Instant::now() + TICKET_PERIOD;
        let now_ms = 10_000_000;
        // 30 updates in the last five minutes, one 11 minutes ago.
        let mut seed: Vec<i64> = (0..30).map(|i| now_ms - 300_000 + i * 1000).collect();
        seed.insert(0, now_ms - 660_000);
        let wait = p.take("desk", 7, t0, &seed, now_ms).await.unwrap_err();
        assert_eq!(wait, Duration::from_secs(300));
        // Seeds count only for a ticket not tracked yet.
        assert!(p.take("desk", 7, t0, &[], now_ms).await.is_err());
        assert_eq!(p.take("desk", 8, t0, &[], now_ms).await, Ok(()));
    }

    #[tokio::test]
    async fn no_window_of_ten_minutes_holds_more_than_thirty() {
        let p = TicketPace::default();
        let t0 = Instant::now();
        let mut sent = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(3600) {
            match p.take("desk", 1, now, &[], 0).await {
                Ok(()) => sent.push(now),
                Err(w) => now += w,
            }
            now += Duration::from_millis(700);
        }
        for (i, a) in sent.iter().enumerate() {
            let within = sent[i..]
                .iter()
                .take_while(|b| **b < *a + TICKET_PERIOD)
                .count();
            assert!(within <= 30, "{within} updates in ten minutes from {i}");
        }
    }
}
