//! A token's budget shared by several processes (a fleet of `l3map run`
//! replicas on one PostgreSQL): a GCRA bucket kept outside the process,
//! asked once per request after the local limiter ([`super::limit`]) let
//! it go. The local limiter stays in front (lanes, the sliding window,
//! what the API's headers said); the shared bucket is the truth across
//! processes: together they never send more than the token's limit in any
//! window. A 429, a `Retry-After` or an exhausted window pushes the shared
//! bucket, so every process backs off together.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What a shared bucket answers: go, or ask again after this long.
pub type Wait = Result<Duration, String>;

/// A budget kept outside the process.
pub trait SharedBudget: Send + Sync + std::fmt::Debug {
    /// One request of `key` at `limit` per `window`: `Ok(ZERO)` to go
    /// now, `Ok(d)` to ask again in `d`, `Err` when the bucket cannot be
    /// reached (the local limiter alone decides then).
    fn take<'a>(
        &'a self,
        key: &'a str,
        limit: u32,
        window: Duration,
    ) -> Pin<Box<dyn Future<Output = Wait> + Send + 'a>>;

    /// Holds every process's requests of `key` (at `limit` per `window`)
    /// for `pause` (best effort).
    fn hold(&self, key: &str, pause: Duration, limit: u32, window: Duration);

    /// One permit of `key`'s pool of `cap` requests in flight across the
    /// processes, held for `lease` at most: `Ok(Some(id))` to go (give it
    /// back with [`SharedBudget::give_back`]), `Ok(None)` while the pool
    /// is full, `Err` when it cannot be reached. A store without a pool
    /// lets every request go.
    fn permit<'a>(
        &'a self,
        _key: &'a str,
        _cap: usize,
        _lease: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Option<i64>, String>> + Send + 'a>> {
        Box::pin(async { Ok(Some(0)) })
    }

    /// Returns permit `id` to its pool (best effort: one never returned is
    /// taken back when its lease or its process's heartbeat runs out).
    fn give_back(&self, _id: i64) {}
}

/// A permit of a shared pool, given back when dropped (its request ended,
/// however).
pub struct SharedPermit {
    pub(crate) shared: std::sync::Arc<dyn SharedBudget>,
    pub(crate) id: i64,
}

impl Drop for SharedPermit {
    fn drop(&mut self) {
        self.shared.give_back(self.id);
    }
}

/// GCRA's parameters for `limit` per `window`: the emission interval and
/// the tolerance, in ms. The burst (a tenth of the limit) is counted
/// inside it, so no window ever holds more than `limit`: at most
/// `limit - burst` paced requests plus the `burst` that an idle bucket
/// lets go at once.
pub fn gcra(limit: u32, window: Duration) -> (f64, f64) {
    let limit = f64::from(limit.max(1));
    let burst = (limit / 10.0).floor().max(1.0);
    let paced = (limit - burst).max(1.0);
    let emission = window.as_secs_f64() * 1000.0 / paced;
    (emission, (burst - 1.0) * emission)
}

#[cfg(test)]
mod tests {
    use super::gcra;
    use std::time::Duration;

    /// Simulates the bucket: no 60-second window ever holds more than the
    /// limit, however the requests come.
    #[test]
    fn no_window_holds_more_than_the_limit() {
        for limit in [1u32, 10, 200, 700] {
            let (t, tau) = gcra(limit, Duration::from_secs(60));
            let mut tat = 0.0f64;
            let mut sent: Vec<f64> = Vec::new();
            let mut now = 0.0f64;
            while now < 300_000.0 {
                let at = tat.max(now);
                // The bucket's clock is in whole ms: no rounding loops.
                if at - now <= tau + 1e-6 {
                    tat = at + t;
                    sent.push(now);
                } else {
                    now = at - tau;
                    continue;
                }
                now += 1.0;
            }
            for (i, start) in sent.iter().enumerate() {
                let n = sent[i..]
                    .iter()
                    .take_while(|s| **s < start + 60_000.0)
                    .count();
                assert!(n as u32 <= limit, "limit {limit}: {n} in a window");
            }
        }
    }
}
