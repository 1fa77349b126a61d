//! What a vendor's answer says about the token's budget, applied to its
//! limiter. The vendor's policy reads its own headers into a [`Rate`]
//! (Zendesk's `X-Rate-Limit*` and `ratelimit-*`, a `Retry-After`); what a
//! rate means for the limiter is the same for every vendor. The metrics
//! and log hooks of every attempt are the retry layer's
//! [`Observer`](super::super::retry::Observer).

use super::super::limit::TokenLimiter;
use std::time::Duration;

/// The rate headers of one answer; all `None` for a vendor that sends none
/// worth pacing by (Salesforce's usage is a rolling day, not a window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    /// The account's limit per window.
    pub limit: Option<u64>,
    /// What is left of this window.
    pub remaining: Option<u64>,
    /// When this window reopens.
    pub window_left: Option<Duration>,
    /// `Retry-After`, parsed and clamped.
    pub retry_after: Option<Duration>,
}

/// The limit becomes the token's if it is lower than the configured one.
/// At zero remaining, `window_left` says when the window reopens; without
/// it, a whole window is waited out. Above zero, when the window holds
/// fewer requests than this client's own pace would send before it reopens
/// (another integration shares the account), requests are spread evenly
/// over what is left instead of spending it and collecting 429s.
///
/// A 429 (`refused`) while the account still has requests left this
/// window is an endpoint's own limit, not the token's: Zendesk's Update
/// Ticket allows "30 updates per 10 minutes per user per ticket", Update
/// User 5 a minute per user (developer.zendesk.com/api-reference/
/// introduction/rate-limits/), and its best practices say to "Always
/// check the account wide limits header first, and if you receive a 429
/// response, then look for endpoint-specific headers"
/// (developer.zendesk.com/documentation/api-basics/best-practices/
/// best-practices-for-avoiding-rate-limiting). Its `Retry-After` then
/// holds that request (and, in the outbox, that ticket) only: the rest of
/// the token keeps going. A 429 with no remaining count, or with none
/// left, pauses the token as before.
pub fn apply(rate: &Rate, limiter: &TokenLimiter, window: Duration, refused: bool) {
    if let Some(l) = rate.limit {
        limiter.observe_limit(l);
    }
    limiter.note(rate.remaining, refused);
    let endpoint_only = refused && rate.remaining.is_some_and(|r| r > 0);
    let reset = match (rate.retry_after, rate.remaining) {
        _ if endpoint_only => None,
        (None, Some(0)) => rate.window_left,
        _ => rate.retry_after,
    };
    limiter.observe(rate.remaining, reset);
    if let (Some(r), Some(left)) = (rate.remaining, rate.window_left) {
        let own = window / limiter.limit().max(1);
        limiter.set_spacing(spread(r, rate.limit, left, own).unwrap_or_default());
    }
}

/// The gap between requests that spends `remaining` evenly over
/// `window_left`, once less than a fifth of the window's `limit` is left
/// and that gap is longer than the client's `own` pace leaves. Above a
/// fifth, the limiter's own pacing is enough: the window has room.
fn spread(
    remaining: u64,
    limit: Option<u64>,
    window_left: Duration,
    own: Duration,
) -> Option<Duration> {
    if limit.is_some_and(|l| remaining.saturating_mul(5) >= l) {
        return None;
    }
    let even = window_left / u32::try_from(remaining.saturating_add(1)).unwrap_or(u32::MAX);
    (even > own).then_some(even)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_with_room_left_in_the_account_holds_only_its_request() {
        let minute = Duration::from_secs(60);
        let limiter = TokenLimiter::per_window(200, minute);
        // The per-ticket limit: the account has 150 left this minute.
        let ticket = Rate {
            limit: Some(200),
            remaining: Some(150),
            window_left: Some(Duration::from_secs(30)),
            retry_after: Some(Duration::from_secs(590)),
        };
        apply(&ticket, &limiter, minute, true);
        assert!(limiter.paused_for().is_none(), "the token goes on");
        // The account's own limit: nothing left, or no count at all.
        let account = Rate {
            remaining: Some(0),
            ..ticket
        };
        apply(&account, &limiter, minute, true);
        assert!(limiter.paused_for().is_some());
        let other = TokenLimiter::per_window(200, minute);
        let bare = Rate {
            retry_after: Some(Duration::from_secs(5)),
            ..Rate::default()
        };
        apply(&bare, &other, minute, true);
        assert!(other.paused_for().is_some());
    }

    #[test]
    fn a_short_window_is_spread_over_what_is_left() {
        let minute = Duration::from_secs(60);
        // 200 RPM alone: 0.3 s apart, which the window allows: no gap.
        let pace = |rpm: u32| minute / rpm;
        assert_eq!(spread(199, None, minute, pace(200)), None);
        // Plenty left of a 700 window: the limiter's pace, no gap.
        assert_eq!(spread(500, Some(700), minute, pace(6000)), None);
        // Another integration left 9 of 200 for the next 30 s.
        assert_eq!(
            spread(9, Some(200), Duration::from_secs(30), pace(200)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(spread(u64::MAX, None, minute, minute), None);
    }
}
