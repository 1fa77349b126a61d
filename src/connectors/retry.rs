//! The one retry layer: exponential backoff from 2 s with full jitter and a
//! cap, at least what the API's `Retry-After` asks, and a maximum total wait
//! after which the call fails with the last error. backon computes the
//! exponential bounds; the policy (jitter, Retry-After, the budget) is ours.

use super::error::{ApiError, System};
use backon::BackoffBuilder;
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// First bound: the article's 2 s.
    pub base: Duration,
    /// No single wait longer than this.
    pub cap: Duration,
    /// Give up once this much time has passed since the first attempt.
    pub max_total: Duration,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(60),
            max_total: Duration::from_secs(300),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The waits before attempts 2, 3, ...: full jitter, a uniform draw in
    /// `[0, min(cap, base * 2^n))`.
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .map(|bound| bound.mul_f64(fastrand::f64()))
    }

    /// Runs `op` until it succeeds, fails with an error that is not worth
    /// retrying, or the budget runs out (then `ApiError::GaveUp`).
    pub async fn run<T, F, Fut>(&self, system: System, mut op: F) -> Result<T, ApiError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let started = Instant::now();
        let mut delays = self.delays();
        let mut attempt = 1;
        loop {
            let err = match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => e,
            };
            let jittered = delays.next().unwrap_or(self.cap);
            let wait = err
                .retry_after()
                .map_or(jittered, |ra| ra.max(jittered.min(ra)));
            let waited = started.elapsed();
            if attempt >= self.max_attempts || waited.saturating_add(wait) > self.max_total {
                return Err(ApiError::GaveUp {
                    system,
                    attempts: attempt,
                    waited,
                    last: Box::new(err),
                });
            }
            tracing::debug!(%system, attempt, ?wait, error = %err, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_full_jitter_under_a_doubling_cap() {
        let p = RetryPolicy::default();
        let ds: Vec<Duration> = p.delays().take(8).collect();
        let bounds = [2, 4, 8, 16, 32, 60, 60, 60];
        for (d, b) in ds.iter().zip(bounds) {
            assert!(*d <= Duration::from_secs(b), "{d:?} > {b}s");
        }
        // Full jitter: over many draws the first wait spreads over [0, 2 s).
        let firsts: Vec<f64> = (0..200)
            .map(|_| p.delays().next().unwrap().as_secs_f64())
            .collect();
        assert!(firsts.iter().any(|d| *d < 0.5) && firsts.iter().any(|d| *d > 1.5));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let started = tokio::time::Instant::now();
        let got = p
            .run(System::Zendesk, |attempt| async move {
                match attempt {
                    1 => Err(ApiError::RateLimited {
                        system: System::Zendesk,
                        retry_after: Some(Duration::from_secs(7)),
                        message: "slow down".into(),
                    }),
                    2 => Err(ApiError::Transient {
                        system: System::Zendesk,
                        status: Some(503),
                        message: "unavailable".into(),
                    }),
                    _ => Ok(attempt),
                }
            })
            .await;
        assert_eq!(got, Ok(3));
        assert!(
            started.elapsed() >= Duration::from_secs(7),
            "Retry-After honoured"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_within_the_budget_with_the_last_error() {
        let p = RetryPolicy {
            max_total: Duration::from_secs(30),
            ..RetryPolicy::default()
        };
        let err = p
            .run(System::Salesforce, |_| async {
                Err::<(), _>(ApiError::Transient {
                    system: System::Salesforce,
                    status: Some(502),
                    message: "bad gateway".into(),
                })
            })
            .await
            .unwrap_err();
        match err {
            ApiError::GaveUp {
                waited,
                last,
                attempts,
                ..
            } => {
                // It did retry, waited (the clock is paused: only sleeps
                // move it), and stopped inside the budget.
                assert!(attempts > 1, "{attempts} attempt(s)");
                assert!(waited > Duration::ZERO && waited <= Duration::from_secs(30));
                assert!(matches!(
                    *last,
                    ApiError::Transient {
                        status: Some(502),
                        ..
                    }
                ));
            }
            other => panic!("{other:?}"),
        }
        // Not worth retrying: returned at once.
        let err = p
            .run(System::Zendesk, |_| async {
                Err::<(), _>(ApiError::NotFound {
                    system: System::Zendesk,
                    message: "no ticket 9".into(),
                })
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::NotFound { .. }));
    }
}
