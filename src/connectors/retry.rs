//! The one retry layer: exponential backoff from 2 s with full jitter and a
//! cap, at least what the API's `Retry-After` asks, and a maximum total wait
//! after which the call fails with the last error. The bounds and the
//! jitter are the one backoff mechanism ([`super::backoff`]); the policy
//! (Retry-After, the budget, which writes may be repeated) is this file's.

use super::backoff::Backoff;
use super::error::{ApiError, System};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// One HTTP attempt as the retry layer saw it.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub system: System,
    /// `Err` with the attempt's error (a 429 is `ApiError::RateLimited`).
    pub outcome: Result<(), &'a ApiError>,
    /// Another attempt follows.
    pub retrying: bool,
}

type Observe = Arc<dyn Fn(&Attempt<'_>) + Send + Sync>;

/// Told of every attempt, so the runtime's metrics count what went over
/// the wire (each 429, each retry), not only what the caller finally got.
/// Attached once, after the client exists (`l3map run` builds clients
/// before its metrics); every clone of the policy shares it.
#[derive(Clone, Default)]
pub struct Observer(Arc<OnceLock<Observe>>);

impl Observer {
    /// Attaches `f`; a second attach is ignored (the first stays).
    pub fn attach(&self, f: impl Fn(&Attempt<'_>) + Send + Sync + 'static) {
        let _ = self.0.set(Arc::new(f));
    }

    fn tell(&self, a: &Attempt<'_>) {
        if let Some(f) = self.0.get() {
            f(a);
        }
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Observer(attached)"
        } else {
            "Observer(none)"
        })
    }
}

/// Not part of what a policy *is*: two policies with the same numbers are
/// equal whoever watches them.
impl PartialEq for Observer {
    fn eq(&self, _: &Observer) -> bool {
        true
    }
}

/// Whether a request may be sent again after a failure that leaves its
/// outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads, and writes that land the same however often they are sent
    /// (setting fields, a create carrying an idempotency key).
    Safe,
    /// Writes that would happen twice (a comment, a create without a key):
    /// sent again only when the API certainly did not act on them
    /// ([`ApiError::certainly_unapplied`]); otherwise the call fails with
    /// [`ApiError::Unconfirmed`].
    IfUnapplied,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// First bound: the article's 2 s.
    pub base: Duration,
    /// No single wait longer than this.
    pub cap: Duration,
    /// Give up once this much time has passed since the first attempt.
    pub max_total: Duration,
    pub max_attempts: u32,
    pub observer: Observer,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(60),
            max_total: Duration::from_secs(300),
            max_attempts: 10,
            observer: Observer::default(),
        }
    }
}

impl RetryPolicy {
    /// The waits before attempts 2, 3, ...: full jitter, a uniform draw in
    /// `[0, min(cap, base * 2^n))`.
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        Backoff::new(self.base, self.cap).draws()
    }

    /// Runs `op` until it succeeds, fails with an error that is not worth
    /// retrying, or the budget runs out (then `ApiError::GaveUp`). `op` is
    /// given the deadline of the whole call, so its own waits (for the
    /// rate limiter) end with the budget too.
    pub async fn run<T, F, Fut>(
        &self,
        system: System,
        replay: Replay,
        mut op: F,
    ) -> Result<T, ApiError>
    where
        F: FnMut(Instant) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let started = Instant::now();
        let deadline = started + self.max_total;
        let mut delays = self.delays();
        let mut attempt = 1;
        let tell = |outcome: Result<(), &ApiError>, retrying: bool| {
            self.observer.tell(&Attempt {
                system,
                outcome,
                retrying,
            })
        };
        loop {
            let err = match op(deadline).await {
                Ok(v) => {
                    tell(Ok(()), false);
                    return Ok(v);
                }
                Err(e) if !e.is_retryable() => {
                    tell(Err(&e), false);
                    return Err(e);
                }
                Err(e) if replay == Replay::IfUnapplied && !e.certainly_unapplied() => {
                    tell(Err(&e), false);
                    return Err(ApiError::Unconfirmed {
                        system,
                        last: Box::new(e),
                    });
                }
                Err(e) => e,
            };
            let jittered = delays.next().unwrap_or(self.cap);
            let wait = err
                .retry_after()
                .map_or(jittered, |ra| ra.max(jittered.min(ra)));
            let waited = started.elapsed();
            if attempt >= self.max_attempts || waited.saturating_add(wait) > self.max_total {
                tell(Err(&err), false);
                return Err(ApiError::GaveUp {
                    system,
                    attempts: attempt,
                    waited,
                    last: Box::new(err),
                });
            }
            tell(Err(&err), true);
            tracing::debug!(%system, attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying");
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

    fn transient(status: u16, sent: bool) -> ApiError {
        ApiError::Transient {
            system: System::Zendesk,
            status: Some(status),
            message: "unavailable".into(),
            sent,
        }
    }

    fn rate_limited(secs: u64, message: &str) -> ApiError {
        ApiError::RateLimited {
            system: System::Zendesk,
            retry_after: Some(Duration::from_secs(secs)),
            message: message.into(),
        }
    }

    /// `p` run over a call that fails with `errors` in turn, then answers
    /// its call number; and how many calls it made.
    async fn scripted(
        p: &RetryPolicy,
        replay: Replay,
        errors: Vec<ApiError>,
    ) -> (Result<usize, ApiError>, usize) {
        let mut errors = errors.into_iter();
        let mut calls = 0;
        let got = p
            .run(System::Zendesk, replay, |_| {
                calls += 1;
                let (n, next) = (calls, errors.next());
                async move { next.map_or(Ok(n), Err) }
            })
            .await;
        (got, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_and_honours_retry_after() {
        let p = RetryPolicy::default();
        let started = Instant::now();
        let (got, _) = scripted(
            &p,
            Replay::Safe,
            vec![rate_limited(7, "slow down"), transient(503, true)],
        )
        .await;
        assert_eq!(got, Ok(3));
        assert!(
            started.elapsed() >= Duration::from_secs(7),
            "Retry-After honoured"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn writes_that_may_have_landed_are_not_repeated() {
        let p = RetryPolicy::default();
        // A 502 after the request went out: the API may have acted.
        let (got, calls) = scripted(&p, Replay::IfUnapplied, vec![transient(502, true)]).await;
        let err = got.unwrap_err();
        assert_eq!(calls, 1);
        match err {
            ApiError::Unconfirmed { last, .. } => {
                assert_eq!(*last, transient(502, true))
            }
            other => panic!("{other:?}"),
        }
        // Refused for rate, or never connected: certainly not applied, so
        // sent again.
        let (got, _) = scripted(
            &p,
            Replay::IfUnapplied,
            vec![
                rate_limited(1, "429"),
                ApiError::Transient {
                    system: System::Zendesk,
                    status: None,
                    message: "could not connect".into(),
                    sent: false,
                },
            ],
        )
        .await;
        assert_eq!(got, Ok(3));
        // The same 502 on a safe call is retried.
        let (got, _) = scripted(&p, Replay::Safe, vec![transient(502, true)]).await;
        assert_eq!(got, Ok(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_observer_sees_every_attempt() {
        use std::sync::Mutex;
        let p = RetryPolicy::default();
        let seen: Arc<Mutex<Vec<(bool, bool)>>> = Arc::default();
        let log = seen.clone();
        // Attached to a clone after the fact: the original sees it too.
        p.clone().observer.attach(move |a: &Attempt<'_>| {
            log.lock().unwrap().push((a.outcome.is_ok(), a.retrying));
        });
        let (got, _) = scripted(
            &p,
            Replay::Safe,
            vec![rate_limited(1, "429"), rate_limited(1, "429")],
        )
        .await;
        assert_eq!(got, Ok(3));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(false, true), (false, true), (true, false)]
        );
        // Unobserved policies compare by their numbers alone.
        assert_eq!(p, RetryPolicy::default());
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_handed_to_each_attempt() {
        let p = RetryPolicy {
            max_total: Duration::from_secs(30),
            ..RetryPolicy::default()
        };
        let started = Instant::now();
        let mut seen = Vec::new();
        let _ = p
            .run(System::Zendesk, Replay::Safe, |deadline| {
                seen.push(deadline);
                async { Err::<(), _>(transient(500, true)) }
            })
            .await;
        assert!(seen.len() > 1);
        assert!(seen.iter().all(|d| *d == started + Duration::from_secs(30)));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_within_the_budget_with_the_last_error() {
        let p = RetryPolicy {
            max_total: Duration::from_secs(30),
            ..RetryPolicy::default()
        };
        let err = p
            .run(System::Salesforce, Replay::Safe, |_| async {
                Err::<(), _>(ApiError::Transient {
                    system: System::Salesforce,
                    status: Some(502),
                    message: "bad gateway".into(),
                    sent: true,
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
            .run(System::Zendesk, Replay::Safe, |_| async {
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
