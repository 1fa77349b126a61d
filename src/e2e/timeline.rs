//! The load step over time: what the HTML report charts (turn latency per
//! slice, the token's budget per slice) and the JSON report carries.
//!
//! Memory is bounded: the load is cut into [`LOAD_SLICES`] slices of equal
//! length and the drain after it continues with slices of that length;
//! when [`MAX_SLICES`] are full, every two become one and slices last twice
//! as long from then on, so the whole run is covered however long the
//! drain takes. A sample is three counters read at a slice's end;
//! latencies are binned from the turns the load already keeps.

use super::report::Slice;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Slices the load itself is cut into.
pub const LOAD_SLICES: u32 = 24;
/// At most this many slices, the drain included (then halved).
pub const MAX_SLICES: usize = 48;

/// Counters read at a slice's end, since the load started.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub at: Duration,
    /// Zendesk requests of the runtime's token.
    pub requests: u64,
    /// HTTP 429 answers to the Zendesk connection.
    pub rate_limited: u64,
}

/// Reads `read` every `every` into a bounded list until stopped (or full).
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(
        started: Instant,
        every: Duration,
        read: impl Fn() -> (u64, u64) + Send + 'static,
    ) -> Sampler {
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let kept = samples.clone();
        let task = tokio::spawn(async move {
            let mut every = every;
            let mut next = started + every;
            loop {
                tokio::time::sleep_until(next.into()).await;
                let (requests, rate_limited) = read();
                let mut s = kept.lock().unwrap_or_else(|e| e.into_inner());
                s.push(Sample {
                    at: started.elapsed(),
                    requests,
                    rate_limited,
                });
                if s.len() >= MAX_SLICES {
                    // Full: every two slices become one, and slices last
                    // twice as long from now on.
                    halve(&mut s);
                    every *= 2;
                }
                next += every;
            }
        });
        Sampler { samples, task }
    }

    /// Stops sampling; what was read, with a last sample taken now (`last`)
    /// so the drain's end is in the series.
    pub fn stop(self, started: Instant, last: (u64, u64)) -> Vec<Sample> {
        self.task.abort();
        let mut s = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        if s.len() >= MAX_SLICES {
            halve(&mut s);
        }
        s.push(Sample {
            at: started.elapsed(),
            requests: last.0,
            rate_limited: last.1,
        });
        s
    }
}

/// Merges each two consecutive slices into one: the counters are
/// cumulative, so keeping every second sample is the merge.
fn halve(s: &mut Vec<Sample>) {
    let mut n = 0;
    s.retain(|_| {
        n += 1;
        n % 2 == 0
    });
}

/// The slices between consecutive samples (the first from the load's start,
/// whose counters are `base`), each with the turns sent in it:
/// `turns` are (sent at, latency) from the load's start.
pub fn slices(
    base: (u64, u64),
    samples: &[Sample],
    turns: &[(Duration, Duration)],
    limit_per_minute: u32,
    scale: u32,
) -> Vec<Slice> {
    let mut out = Vec::with_capacity(samples.len());
    let (mut from, mut requests, mut limited) = (Duration::ZERO, base.0, base.1);
    for s in samples {
        let mut lat: Vec<Duration> = turns
            .iter()
            .filter(|(at, _)| *at >= from && *at < s.at)
            .map(|(_, l)| *l)
            .collect();
        lat.sort();
        // The token's limit over this slice's emulator time.
        let minutes = s.at.saturating_sub(from).as_secs_f64() * f64::from(scale.max(1)) / 60.0;
        let limit = f64::from(limit_per_minute) * minutes;
        let used = s.requests.saturating_sub(requests);
        out.push(Slice {
            from_s: from.as_secs_f64(),
            to_s: s.at.as_secs_f64(),
            turns: lat.len() as u64,
            turn_ms_p50: percentile(&lat, 0.50),
            turn_ms_p95: percentile(&lat, 0.95),
            turn_ms_p99: percentile(&lat, 0.99),
            requests: used,
            limit: (limit * 10.0).round() / 10.0,
            remaining: ((limit - used as f64) * 10.0).round() / 10.0,
            rate_limited: s.rate_limited.saturating_sub(limited),
        });
        (from, requests, limited) = (s.at, s.requests, s.rate_limited);
    }
    out
}

/// The `p` percentile of sorted latencies, in ms; `None` for no turn.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[i.min(sorted.len() - 1)].as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_take_differences_and_bin_turns_by_when_they_were_sent() {
        let s = |secs: u64, requests: u64, rate_limited: u64| Sample {
            at: Duration::from_secs(secs),
            requests,
            rate_limited,
        };
        let ms = Duration::from_millis;
        let turns = [(ms(100), ms(300)), (ms(900), ms(310)), (ms(1500), ms(500))];
        // 10 requests before the load; 200/min at ×6: 20 per second.
        let got = slices(
            (10, 1),
            &[s(1, 25, 1), s(2, 50, 3), s(3, 50, 3)],
            &turns,
            200,
            6,
        );
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].requests, got[0].turns), (15, 2));
        assert_eq!(
            (got[0].turn_ms_p50, got[0].turn_ms_p99),
            (Some(310), Some(310))
        );
        assert_eq!((got[0].limit, got[0].remaining), (20.0, 5.0));
        assert_eq!((got[1].requests, got[1].rate_limited), (25, 2));
        assert_eq!(got[1].remaining, -5.0);
        assert_eq!((got[2].turns, got[2].turn_ms_p95), (0, None));
    }

    #[test]
    fn a_full_series_halves_and_keeps_the_totals() {
        let mut s: Vec<Sample> = (1..=MAX_SLICES as u64)
            .map(|i| Sample {
                at: Duration::from_secs(i),
                requests: i * 10,
                rate_limited: i / 8,
            })
            .collect();
        halve(&mut s);
        assert_eq!(s.len(), MAX_SLICES / 2);
        assert_eq!(s[0].at, Duration::from_secs(2));
        let last = s.last().copied().unwrap_or_default();
        assert_eq!(
            (last.requests, last.rate_limited),
            (MAX_SLICES as u64 * 10, 6)
        );
        let got = slices((0, 0), &s, &[], 200, 1);
        let total: u64 = got.iter().map(|x| x.requests).sum();
        assert_eq!(total, MAX_SLICES as u64 * 10);
    }
}
