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

#[cfg(test)]
mod tests {
    use super::*;

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
