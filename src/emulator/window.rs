//! Per-token request counting in fixed one-minute windows, the way Zendesk
//! (and, per day, Salesforce) count: the answer says how many requests are
//! left and, when none are, how long until the window reopens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Windows held before the closed ones are swept out: a closed window
/// restarts at zero anyway, so forgetting it changes no answer, and keys
/// come and go (one per OAuth lineage) for as long as an emulator runs.
const SWEEP_AT: usize = 1024;

#[derive(Debug)]
pub struct Windows {
    limit: u32,
    length: Duration,
    by_token: Mutex<HashMap<String, (Instant, u32)>>,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Allowed { limit: u32, remaining: u32 },
    Limited { limit: u32, retry_after: Duration },
}

impl Windows {
    pub fn per_minute(limit: u32) -> Windows {
        Windows::new(limit, Duration::from_secs(60))
    }

    pub fn new(limit: u32, length: Duration) -> Windows {
        Windows {
            limit,
            length,
            by_token: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `token` (any stable key for the credential).
    pub fn count(&self, token: &str) -> Count {
        let now = Instant::now();
        let mut m = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= SWEEP_AT && !m.contains_key(token) {
            m.retain(|_, (start, _)| now.duration_since(*start) < self.length);
        }
        let (start, used) = m.entry(token.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= self.length {
            *start = now;
            *used = 0;
        }
        if *used >= self.limit {
            let left = self.length.saturating_sub(now.duration_since(*start));
            // Whole seconds, rounded up, as the Retry-After header carries.
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Count::Limited {
                limit: self.limit,
                retry_after: Duration::from_secs(secs.max(1)),
            };
        }
        *used += 1;
        Count::Allowed {
            limit: self.limit,
            remaining: self.limit - *used,
        }
    }
}

/// Tokens a [`Sliding`] measures; requests of tokens past it are not.
pub const MAX_MEASURED_TOKENS: usize = 1024;
/// Arrivals kept per token: far past any limit a test sets, so a flood
/// of requests still reads as "over" without holding them all.
const MAX_KEPT_ARRIVALS: usize = 100_000;

/// Requests per **sliding** window, per token, as they arrive: the
/// measure of a client's pacing that fixed windows cannot give (a client
/// can send a whole window's budget at the end of one fixed window and
/// again at the start of the next: twice the limit in one minute, with
/// no 429). Every window that ends at an arrival is checked; the most
/// any window held is reached at one of them.
#[derive(Debug)]
pub struct Sliding {
    limit: u32,
    length: Duration,
    by_token: Mutex<HashMap<String, Track>>,
}

#[derive(Debug, Default)]
struct Track {
    /// Arrivals of the last window, oldest first.
    recent: std::collections::VecDeque<Instant>,
    requests: u64,
    max_in_window: u32,
    windows_over: u64,
}

/// What [`Sliding`] saw of one token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WindowStats {
    /// The token's fingerprint (never the token).
    pub token: String,
    pub requests: u64,
    /// The most requests any sliding window held.
    pub max_in_window: u32,
    /// Arrivals at which the window ending there held more than the
    /// limit: zero for a client that paces right.
    pub windows_over: u64,
    pub limit: u32,
    pub window_ms: u64,
}

impl Sliding {
    pub fn new(limit: u32, length: Duration) -> Sliding {
        Sliding {
            limit,
            length,
            by_token: Mutex::new(HashMap::new()),
        }
    }

    /// Records one request of `token` arriving now.
    pub fn arrive(&self, token: &str) {
        let now = Instant::now();
        let mut m = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_MEASURED_TOKENS && !m.contains_key(token) {
            return;
        }
        let t = m.entry(token.to_string()).or_default();
        while t
            .recent
            .front()
            .is_some_and(|a| now.duration_since(*a) >= self.length)
        {
            t.recent.pop_front();
        }
        if t.recent.len() >= MAX_KEPT_ARRIVALS {
            t.recent.pop_front();
        }
        t.recent.push_back(now);
        t.requests += 1;
        let held = u32::try_from(t.recent.len()).unwrap_or(u32::MAX);
        t.max_in_window = t.max_in_window.max(held);
        if held > self.limit {
            t.windows_over += 1;
        }
    }

    /// Every measured token, by fingerprint.
    pub fn stats(&self) -> Vec<WindowStats> {
        let m = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<WindowStats> = m
            .iter()
            .map(|(token, t)| WindowStats {
                token: token.clone(),
                requests: t.requests,
                max_in_window: t.max_in_window,
                windows_over: t.windows_over,
                limit: self.limit,
                window_ms: u64::try_from(self.length.as_millis()).unwrap_or(u64::MAX),
            })
            .collect();
        out.sort_by(|a, b| a.token.cmp(&b.token));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sliding_windows_see_what_fixed_windows_miss() {
        // A fixed window allows 3 at the end of one minute and 3 at the
        // start of the next; the sliding window sees 6.
        let fixed = Windows::per_minute(3);
        let sliding = Sliding::new(3, Duration::from_secs(60));
        fixed.count("a");
        sliding.arrive("a");
        tokio::time::advance(Duration::from_secs(58)).await;
        for _ in 0..2 {
            assert!(matches!(fixed.count("a"), Count::Allowed { .. }));
            sliding.arrive("a");
        }
        tokio::time::advance(Duration::from_secs(3)).await;
        for _ in 0..3 {
            assert!(matches!(fixed.count("a"), Count::Allowed { .. }));
            sliding.arrive("a");
        }
        let s = &sliding.stats()[0];
        assert_eq!((s.requests, s.max_in_window, s.windows_over), (6, 5, 2));
        // Paced at the limit: never over.
        let paced = Sliding::new(3, Duration::from_secs(60));
        for _ in 0..12 {
            paced.arrive("b");
            tokio::time::advance(Duration::from_secs(20)).await;
        }
        let s = &paced.stats()[0];
        assert_eq!((s.max_in_window, s.windows_over), (3, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn closed_windows_are_swept_out() {
        let w = Windows::per_minute(5);
        for i in 0..3000 {
            w.count(&format!("lineage-{i}"));
        }
        let held = || w.by_token.lock().map(|m| m.len()).unwrap_or(0);
        assert_eq!(held(), 3000, "open windows are all kept");
        assert!(matches!(
            w.count("lineage-2999"),
            Count::Allowed { remaining: 3, .. }
        ));
        tokio::time::advance(Duration::from_secs(61)).await;
        w.count("fresh");
        assert_eq!(held(), 1, "every closed window went");
        // A key whose window was swept starts over, as it would have.
        assert!(matches!(
            w.count("lineage-0"),
            Count::Allowed { remaining: 4, .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn counts_per_token_and_reopens_after_the_window() {
        let w = Windows::per_minute(2);
        assert_eq!(
            w.count("a"),
            Count::Allowed {
                limit: 2,
                remaining: 1
            }
        );
        assert_eq!(
            w.count("a"),
            Count::Allowed {
                limit: 2,
                remaining: 0
            }
        );
        assert!(
            matches!(w.count("a"), Count::Limited { retry_after, .. } if retry_after == Duration::from_secs(60))
        );
        assert_eq!(
            w.count("b"),
            Count::Allowed {
                limit: 2,
                remaining: 1
            }
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            w.count("a"),
            Count::Allowed {
                limit: 2,
                remaining: 1
            }
        );
    }
}
