//! Rate limiting per token, never per IP: every integration has its own
//! token and its own share of the plan. A GCRA limiter (governor) starts at
//! the plan's rate; the API's headers tighten it: `X-Rate-Limit-Remaining`
//! at zero, or a `Retry-After`, pause the token until the window reopens.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The limiter of one token.
#[derive(Debug)]
pub struct TokenLimiter {
    rpm: u32,
    gcra: DefaultDirectRateLimiter,
    /// Set from the API's headers: no request before this instant.
    paused_until: Mutex<Option<Instant>>,
}

impl TokenLimiter {
    pub fn per_minute(rpm: u32) -> TokenLimiter {
        let rpm = rpm.max(1);
        let per_minute = NonZeroU32::new(rpm).unwrap_or(NonZeroU32::MIN);
        // A burst of a tenth of the minute, so a restart does not spend
        // the whole minute's budget in its first second.
        let burst = NonZeroU32::new((rpm / 10).max(1)).unwrap_or(NonZeroU32::MIN);
        TokenLimiter {
            rpm,
            gcra: RateLimiter::direct(Quota::per_minute(per_minute).allow_burst(burst)),
            paused_until: Mutex::new(None),
        }
    }

    pub fn rpm(&self) -> u32 {
        self.rpm
    }

    fn pause(&self) -> Option<Instant> {
        let p = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        p.filter(|until| *until > Instant::now())
    }

    /// Waits until this token may send one more request. The pause is
    /// checked again after the pacing wait: an answer that arrived in the
    /// meantime (0 remaining, a Retry-After) must hold this request too.
    pub async fn acquire(&self) {
        loop {
            if let Some(until) = self.pause() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            self.gcra.until_ready().await;
            match self.pause() {
                None => return,
                Some(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// Reads what the API said about this token's budget. `retry_after` is
    /// the parsed `Retry-After`; `remaining` the `X-Rate-Limit-Remaining`.
    pub fn observe(&self, remaining: Option<u64>, retry_after: Option<Duration>) {
        let pause = match (retry_after, remaining) {
            (Some(d), _) => Some(d),
            // Nothing left this window: wait for the next one rather than
            // collect 429s (Zendesk windows are one minute).
            (None, Some(0)) => Some(Duration::from_secs(60)),
            _ => None,
        };
        if let Some(d) = pause {
            let until = Instant::now() + clamp_pause(d);
            let mut p = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
            if p.is_none_or(|cur| cur < until) {
                *p = Some(until);
            }
        }
    }
}

/// One limiter per token, created on first use at `default_rpm`.
#[derive(Debug, Default)]
pub struct Limiters {
    by_token: Mutex<HashMap<String, Arc<TokenLimiter>>>,
}

impl Limiters {
    /// `token_key` is a fingerprint of the token, never the token itself.
    pub fn for_token(&self, token_key: &str, rpm: u32) -> Arc<TokenLimiter> {
        let mut m = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(token_key.to_string())
            .or_insert_with(|| Arc::new(TokenLimiter::per_minute(rpm)))
            .clone()
    }
}

/// The error of a request that the token's rate limit would hold past the
/// call's retry budget. It was never sent, so it is safe to report as a
/// rate limit: the retry layer then gives up with it as the last error.
pub fn over_budget(system: super::error::System) -> super::error::ApiError {
    super::error::ApiError::RateLimited {
        system,
        retry_after: None,
        message: OVER_BUDGET.into(),
    }
}

const OVER_BUDGET: &str = "the token's rate limit would hold this request past the retry budget";

/// Whether `e` is [`over_budget`]'s: held by our own limiter, never sent
/// (the metrics must not count it as a call or a 429).
pub fn is_over_budget(e: &super::error::ApiError) -> bool {
    matches!(e, super::error::ApiError::RateLimited { retry_after: None, message, .. } if message == OVER_BUDGET)
}

/// The longest pause an API's header can impose. A larger value (or a
/// hostile one: `Retry-After: 18446744073709551615`) is held to this, so
/// it can neither overflow a deadline nor stall a token for days.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

pub fn clamp_pause(d: Duration) -> Duration {
    d.min(MAX_PAUSE)
}

/// `Retry-After` as seconds (the only form Zendesk and Salesforce send),
/// at most [`MAX_PAUSE`].
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let secs = value?.trim().parse::<u64>().ok()?;
    Some(clamp_pause(Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_the_token() {
        let l = TokenLimiter::per_minute(200);
        l.acquire().await;
        l.observe(Some(5), Some(Duration::from_secs(12)));
        let t = Instant::now();
        l.acquire().await;
        assert!(t.elapsed() >= Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_zero_waits_for_the_next_window() {
        let l = TokenLimiter::per_minute(700);
        l.observe(Some(0), None);
        let t = Instant::now();
        l.acquire().await;
        assert!(t.elapsed() >= Duration::from_secs(60));
    }

    #[test]
    fn one_limiter_per_token() {
        let ls = Limiters::default();
        let a = ls.for_token("aaaa", 200);
        let b = ls.for_token("bbbb", 200);
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&a, &ls.for_token("aaaa", 700)));
        assert_eq!(
            parse_retry_after(Some(" 30 ")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct")), None);
        // A hostile value is held to an hour, and pausing on it is safe.
        assert_eq!(
            parse_retry_after(Some("18446744073709551615")),
            Some(MAX_PAUSE)
        );
        TokenLimiter::per_minute(10).observe(None, Some(Duration::MAX));
    }
}
