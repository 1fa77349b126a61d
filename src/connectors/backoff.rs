//! The one backoff mechanism: a bound that doubles from a minimum up to a
//! cap (backon computes it), and a full-jitter draw under that bound (a
//! uniform draw in `[0, bound)`, so many clients recovering from one outage
//! spread out instead of arriving together).
//!
//! Two schedules are policies over it, each documented where it is set:
//! the connectors' retry layer (`RetryPolicy::delays`: from 2 s, capped at
//! 60 s, one draw per retry) and the outbox's slow outer loop
//! (`runtime::apply::Retries::backoff`: the n-th try's draw, from
//! `retry_min_ms`, capped at `retry_max_secs`, never under 10 ms).

use backon::BackoffBuilder;
use std::time::Duration;

/// Doubling from `min`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

/// Past this many doublings every bound is the cap anyway (2 ms doubled
/// 40 times is 35 years); it bounds the walk to the n-th bound.
const MAX_DOUBLINGS: u32 = 40;

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max }
    }

    /// The bounds `min`, `2 min`, `4 min`, ... each at most `max`, forever.
    pub fn bounds(&self) -> impl Iterator<Item = Duration> {
        let max = self.max;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .map(move |bound| bound.min(max))
    }

    /// The `n`-th bound (from 0): `min * 2^n`, at most `max`.
    pub fn bound(&self, n: u32) -> Duration {
        let n = n.min(MAX_DOUBLINGS) as usize;
        self.bounds().nth(n).unwrap_or(self.max)
    }

    /// A full-jitter draw under each bound in turn: the waits before
    /// retries 1, 2, 3, ...
    pub fn draws(&self) -> impl Iterator<Item = Duration> {
        self.bounds().map(full_jitter)
    }
}

/// A uniform draw in `[0, bound)`.
pub fn full_jitter(bound: Duration) -> Duration {
    bound.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_double_from_the_minimum_up_to_the_cap() {
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
        let secs: Vec<u64> = b.bounds().take(8).map(|d| d.as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.bound(0), Duration::from_secs(2));
        assert_eq!(b.bound(3), Duration::from_secs(16));
        assert_eq!(b.bound(u32::MAX), Duration::from_secs(60));
        // A minimum above the cap is held to the cap from the first bound.
        let inverted = Backoff::new(Duration::from_secs(9), Duration::from_secs(5));
        assert_eq!(inverted.bound(0), Duration::from_secs(5));
        for (d, bound) in b.draws().zip(b.bounds()).take(20) {
            assert!(d <= bound);
        }
    }
}
