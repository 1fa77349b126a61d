//! Rate limiting per token (per account and token, never per IP): every
//! integration has its own token and its own share of the plan.
//!
//! Three rules decide when a request may leave, all under one lock so the
//! decision and its bookkeeping are one step:
//!
//! 1. **Never over the limit in any sliding window.** A log of what was
//!    sent in the last window (at most `limit` instants) holds a request
//!    while `budget` are already in it. This is the hard bound: it holds
//!    across a limit learned mid-window, a burst after idle, anything.
//! 2. **Paced, not front-loaded.** Background work goes through a GCRA
//!    whose burst is counted inside the budget (rate `(budget - burst) /
//!    window`, burst `budget / 10`): after idle, a tenth of the budget
//!    may go at once; saturated, one request every `window / (budget -
//!    burst)` (0.34 s at 200 a minute) instead of the whole minute going
//!    in its first seconds and nothing for the rest.
//! 3. **Two lanes.** An interactive request (a person or an agent waiting
//!    on the answer) does not wait for that pace, only for room in the
//!    window, and goes ahead of every background caller waiting. Once
//!    saturated, paced background work fills `budget - burst` of a
//!    window (nine tenths), so a turn finds a free slot at once even
//!    while the outbox has a backlog of hours, and otherwise waits for
//!    the next slot to free up (one pace interval at most). Every request moves the pace on, so interactive use
//!    slows background work rather than adding to it. Background work is
//!    never starved: the interactive lane may use at most four fifths of
//!    the paced rate in a window, and what it leaves idle, background
//!    uses.
//!
//! The API's headers tighten this: a lower `X-Rate-Limit` than configured
//! becomes the limit (the plan in the mappings may say more than the
//! account has), `X-Rate-Limit-Remaining` at zero or a `Retry-After`
//! pause the token until the window reopens, and a nearly spent window
//! (another integration shares the account) spaces requests evenly over
//! what is left.
//!
//! Why not governor: its quota is fixed at construction (the limit here is
//! learned from the first answer), it cannot tell one caller's earliest
//! slot without taking it (the lanes need that), and it has no sliding
//! window log (its burst after idle is what put 220 requests into a
//! minute against a limit of 200).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Who is waiting for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// A person or an AI agent, in a turn: goes first.
    Interactive,
    /// The outbox, webhook and poll reads: uses what is left.
    Background,
}

/// Larger limits are held to this, so the log stays small (Zendesk's
/// largest add-on allows 2,500 a minute; Salesforce's per-minute pacing
/// is the client's own 6,000).
const MAX_LIMIT: u32 = 100_000;

/// How long a background caller that stepped aside for an interactive one
/// waits before looking again (the interactive caller takes the slot under
/// the lock, in microseconds; this only bounds a lost wake-up).
const STEP_ASIDE: Duration = Duration::from_millis(5);

/// The limiter of one token.
#[derive(Debug)]
pub struct TokenLimiter {
    /// What the configuration allows per window (the plan's, or a `rate`).
    configured: u32,
    window: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// `min(configured, the API's X-Rate-Limit)`.
    limit: u32,
    /// GCRA's theoretical arrival time of the next request.
    tat: Option<Instant>,
    /// When each request of the last window left, oldest first.
    sent: VecDeque<Instant>,
    /// The same for the interactive lane alone.
    sent_interactive: VecDeque<Instant>,
    /// Interactive callers waiting now: background ones step aside.
    interactive_waiting: usize,
    /// Set from the API's headers: no request before this instant.
    paused_until: Option<Instant>,
    /// The gap the API's headers ask between requests (zero while the
    /// window has room), applied as each request leaves.
    spacing: Duration,
    next_spaced: Option<Instant>,
    /// What the API last said was left this window.
    remaining: Option<u64>,
    /// 429s answered to this token since start.
    refused: u64,
}

/// A token's budget as the ops console shows it: nothing secret (the key
/// is a fingerprint).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BudgetView {
    pub key: String,
    /// The connections whose clients use this budget.
    pub connections: Vec<String>,
    /// Requests per window: configured, and paced by now (lower when the
    /// API's `X-Rate-Limit` says so).
    pub configured: u32,
    pub limit: u32,
    pub window_ms: u64,
    /// Requests this process sent within the last window.
    pub used: usize,
    /// What the API last said was left (`X-Rate-Limit-Remaining`).
    pub remaining: Option<u64>,
    /// Paused for this long from now (a 429's `Retry-After`).
    pub paused_ms: Option<u64>,
    /// 429s since start.
    pub rate_limited: u64,
}

/// The numbers the pacing derives from a limit.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Requests the limiter lets into one window: the limit less a margin
    /// for requests that arrive closer together than they left.
    budget: usize,
    /// GCRA emission interval and tolerance (the background lane's pace;
    /// every request, interactive too, moves it on).
    interval: Duration,
    tolerance: Duration,
    /// The interactive lane's share of a window.
    interactive_cap: usize,
}

fn pace(limit: u32, window: Duration) -> Pace {
    let limit = limit.clamp(1, MAX_LIMIT);
    // One in fifty (at least one) kept back: the API counts arrivals,
    // and two requests that left a slot apart can arrive closer.
    let margin = if limit > 1 { (limit / 50).max(1) } else { 0 };
    let budget = limit - margin;
    let burst = (budget / 10).max(1);
    // `burst` at once, then one per interval: burst + window / interval
    // = budget in any window.
    let paced = (budget - burst).max(1);
    let interval = window / paced;
    Pace {
        budget: budget as usize,
        interval,
        tolerance: interval * (burst - 1),
        // Background keeps at least a fifth of the paced rate.
        interactive_cap: ((paced * 4) / 5).max(1) as usize,
    }
}

impl TokenLimiter {
    /// `rpm` requests a minute.
    pub fn per_minute(rpm: u32) -> TokenLimiter {
        TokenLimiter::per_window(rpm, Duration::from_secs(60))
    }

    /// `limit` requests a `window` (an emulator's shortened minute).
    pub fn per_window(limit: u32, window: Duration) -> TokenLimiter {
        let limit = limit.clamp(1, MAX_LIMIT);
        TokenLimiter {
            configured: limit,
            window: window.max(Duration::from_millis(1)),
            state: Mutex::new(State {
                limit,
                tat: None,
                sent: VecDeque::new(),
                sent_interactive: VecDeque::new(),
                interactive_waiting: 0,
                paused_until: None,
                spacing: Duration::ZERO,
                next_spaced: None,
                remaining: None,
                refused: 0,
            }),
        }
    }

    /// The configured requests per window.
    pub fn rpm(&self) -> u32 {
        self.configured
    }

    /// The limit the token is paced by now: the configured one, or the
    /// lower one the API's headers said.
    pub fn limit(&self) -> u32 {
        self.lock().limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until this token may send one more background request.
    pub async fn acquire(&self) {
        self.acquire_in(Lane::Background).await
    }

    /// Waits until this token may send one more request of `lane`, and
    /// counts it as sent.
    pub async fn acquire_in(&self, lane: Lane) {
        /// Uncounts an interactive caller however its wait ends (a
        /// cancelled request too), so background work is never held back
        /// for one that left.
        struct Waiting<'a>(&'a TokenLimiter);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                let mut s = self.0.lock();
                s.interactive_waiting = s.interactive_waiting.saturating_sub(1);
            }
        }
        let _waiting = (lane == Lane::Interactive).then(|| {
            self.lock().interactive_waiting += 1;
            Waiting(self)
        });
        loop {
            let wait_until = {
                let mut s = self.lock();
                let now = Instant::now();
                match self.earliest(&mut s, lane, now) {
                    at if at <= now => {
                        self.take(&mut s, lane, now);
                        return;
                    }
                    at => at,
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }

    /// The earliest instant a request of `lane` may go, by every rule;
    /// `now` or earlier means at once.
    fn earliest(&self, s: &mut State, lane: Lane, now: Instant) -> Instant {
        let p = pace(s.limit, self.window);
        let horizon = now.checked_sub(self.window);
        for log in [&mut s.sent, &mut s.sent_interactive] {
            while log.front().is_some_and(|t| Some(*t) <= horizon) {
                log.pop_front();
            }
        }
        let full = |log: &VecDeque<Instant>, cap: usize| {
            (log.len() >= cap).then(|| log[log.len() - cap] + self.window)
        };
        // Both lanes: the window's hard bound and the API's pauses.
        let at = [full(&s.sent, p.budget), s.paused_until, s.next_spaced]
            .into_iter()
            .flatten()
            .fold(now, Instant::max);
        let interactive_full = full(&s.sent_interactive, p.interactive_cap);
        match lane {
            // An interactive request does not wait for the pace, only for
            // room in the window: background work paced at
            // `budget - burst` a window leaves `burst` slots free, so a
            // turn goes at once even while the outbox saturates the token.
            Lane::Interactive => interactive_full.map_or(at, |t| at.max(t)),
            Lane::Background => {
                let paced = s.tat.map(|tat| tat.checked_sub(p.tolerance).unwrap_or(tat));
                let at = paced.map_or(at, |t| at.max(t));
                // Step aside while an interactive caller could take this
                // slot (its lane has room in the window).
                let interactive_ready = interactive_full.is_none_or(|t| t <= at);
                if s.interactive_waiting > 0 && interactive_ready {
                    at + STEP_ASIDE
                } else {
                    at
                }
            }
        }
    }

    fn take(&self, s: &mut State, lane: Lane, now: Instant) {
        let p = pace(s.limit, self.window);
        s.tat = Some(s.tat.map_or(now, |t| t.max(now)) + p.interval);
        s.sent.push_back(now);
        if lane == Lane::Interactive {
            s.sent_interactive.push_back(now);
        }
        if !s.spacing.is_zero() {
            s.next_spaced = Some(now + s.spacing);
        }
    }

    /// Reads what the API said about this token's budget. `retry_after` is
    /// the parsed `Retry-After` (or, at zero remaining, when the window
    /// reopens); `remaining` the `X-Rate-Limit-Remaining`.
    pub fn observe(&self, remaining: Option<u64>, retry_after: Option<Duration>) {
        let pause = match (retry_after, remaining) {
            (Some(d), _) => Some(d),
            // Nothing left this window: wait for the next one rather than
            // collect 429s.
            (None, Some(0)) => Some(self.window),
            _ => None,
        };
        if let Some(d) = pause {
            let until = Instant::now() + clamp_pause(d);
            let mut s = self.lock();
            if s.paused_until.is_none_or(|cur| cur < until) {
                s.paused_until = Some(until);
            }
        }
    }

    /// The API's `X-Rate-Limit`: the account's real limit per window. It
    /// can only lower the configured one (a `rate` below the plan is a
    /// choice to leave room for other integrations).
    pub fn observe_limit(&self, limit: u64) {
        let learned = u32::try_from(limit).unwrap_or(u32::MAX).clamp(1, MAX_LIMIT);
        let mut s = self.lock();
        let next = self.configured.min(learned);
        if s.limit != next {
            tracing::debug!(
                configured = self.configured,
                limit = next,
                "the API's rate-limit header sets this token's limit"
            );
            s.limit = next;
        }
    }

    /// How long the token is paused for from now (a 429's `Retry-After`,
    /// or a window with nothing left), if it is.
    pub fn paused_for(&self) -> Option<Duration> {
        let s = self.lock();
        s.paused_until
            .map(|u| u.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// Notes what an answer said of the budget: what is left, and whether
    /// it was a 429.
    pub fn note(&self, remaining: Option<u64>, refused: bool) {
        let mut s = self.lock();
        if remaining.is_some() {
            s.remaining = remaining;
        }
        s.refused += u64::from(refused);
    }

    /// This token's budget now.
    pub fn view(&self, key: &str) -> BudgetView {
        let now = Instant::now();
        let s = self.lock();
        let since = now.checked_sub(self.window);
        BudgetView {
            key: key.to_string(),
            connections: Vec::new(),
            configured: self.configured,
            limit: s.limit,
            window_ms: u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX),
            used: s
                .sent
                .iter()
                .filter(|t| since.is_none_or(|w| **t > w))
                .count(),
            remaining: s.remaining,
            paused_ms: s
                .paused_until
                .map(|u| u.saturating_duration_since(now))
                .filter(|d| !d.is_zero())
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            rate_limited: s.refused,
        }
    }

    /// The gap to keep between requests from now on (zero: none).
    pub fn set_spacing(&self, gap: Duration) {
        let mut s = self.lock();
        s.spacing = clamp_pause(gap);
        if gap.is_zero() {
            s.next_spaced = None;
        }
    }
}

/// One limiter per token, created on first use, and one concurrency cap
/// per key that has one (a Salesforce connected app). A value, passed to
/// every client that should share: the runtime builds one per process
/// (`runtime::clients`), so all connections of one token share its budget
/// there, while two registries (two tests) never share anything.
#[derive(Debug, Default)]
pub struct Limiters {
    by_token: Mutex<HashMap<String, Arc<TokenLimiter>>>,
    caps: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The budget other processes share (a fleet's PostgreSQL), if any.
    shared: Option<Arc<dyn super::shared_budget::SharedBudget>>,
    /// The connection whose client is being built ([`Limiters::naming`]),
    /// and the connections each key's budget was taken by.
    naming: Mutex<Option<String>>,
    names: Mutex<HashMap<String, Vec<String>>>,
}

impl Limiters {
    /// A registry whose budgets are also kept in `shared`, with every
    /// other process that uses it.
    pub fn with_shared(shared: Arc<dyn super::shared_budget::SharedBudget>) -> Limiters {
        Limiters {
            shared: Some(shared),
            ..Limiters::default()
        }
    }

    /// The shared budget, if the registry has one.
    pub fn shared(&self) -> Option<Arc<dyn super::shared_budget::SharedBudget>> {
        self.shared.clone()
    }

    /// `token_key` is a fingerprint of the token, never the token itself.
    pub fn for_token(&self, token_key: &str, rpm: u32) -> Arc<TokenLimiter> {
        self.for_token_per(token_key, rpm, Duration::from_secs(60))
    }

    /// [`Limiters::for_token`] with `limit` per `window`.
    pub fn for_token_per(
        &self,
        token_key: &str,
        limit: u32,
        window: Duration,
    ) -> Arc<TokenLimiter> {
        if let Some(name) = self
            .naming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            let list = names.entry(token_key.to_string()).or_default();
            if !list.contains(&name) {
                list.push(name);
            }
        }
        let mut m = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(token_key.to_string())
            .or_insert_with(|| Arc::new(TokenLimiter::per_window(limit, window)))
            .clone()
    }

    /// Runs `build` (a client's construction) with the budgets it takes
    /// named after `connection`, so the console can say whose they are.
    pub fn naming<T>(&self, connection: &str, build: impl FnOnce() -> T) -> T {
        *self.naming.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection.to_string());
        let built = build();
        *self.naming.lock().unwrap_or_else(|e| e.into_inner()) = None;
        built
    }

    /// Every token's budget, by key.
    pub fn views(&self) -> Vec<BudgetView> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let m = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<BudgetView> = m
            .iter()
            .map(|(k, l)| BudgetView {
                connections: names.get(k).cloned().unwrap_or_default(),
                ..l.view(k)
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The cap on requests in flight for `key`, `max` of them (at least
    /// one), created on first use: a second client of the key shares the
    /// first one's permits (and its cap).
    pub fn concurrency(&self, key: &str, max: usize) -> Arc<Semaphore> {
        let mut m = self.caps.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(max.max(1))))
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

/// The error of a request held past the call's retry budget because the
/// fleet's shared budget (its PostgreSQL store) did not answer: never
/// sent, and nothing to do with the vendor's rate limit, which the message
/// and [`is_budget_unreachable`] say (a rate limit in the kind would send
/// an operator to the wrong place).
pub fn budget_unreachable(system: super::error::System) -> super::error::ApiError {
    super::error::ApiError::RateLimited {
        system,
        retry_after: None,
        message: BUDGET_UNREACHABLE.into(),
    }
}

const BUDGET_UNREACHABLE: &str =
    "the fleet's shared rate budget could not be reached (the store is down or cut off), so this request was never sent";

/// Whether `e` is [`over_budget`]'s or [`budget_unreachable`]'s: held by
/// our own limiter, never sent (the metrics must not count it as a call
/// or a 429).
pub fn is_over_budget(e: &super::error::ApiError) -> bool {
    matches!(e, super::error::ApiError::RateLimited { retry_after: None, message, .. } if message == OVER_BUDGET || message == BUDGET_UNREACHABLE)
}

/// Whether `e` (or the last error of a retried call) is
/// [`budget_unreachable`]'s.
pub fn is_budget_unreachable(e: &super::error::ApiError) -> bool {
    match e {
        super::error::ApiError::RateLimited {
            retry_after: None,
            message,
            ..
        } => message == BUDGET_UNREACHABLE,
        super::error::ApiError::GaveUp { last, .. }
        | super::error::ApiError::Unconfirmed { last, .. } => is_budget_unreachable(last),
        _ => false,
    }
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

    /// The most requests any `window` held, from the send instants.
    fn max_in_window(sent: &[Instant], window: Duration) -> usize {
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..sent.len() {
            while sent[hi].duration_since(sent[lo]) >= window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn no_sliding_window_holds_more_than_the_limit() {
        // Saturated from idle, with a limit learned lower mid-run (the
        // plan said 700, the account allows 200), then idle again and a
        // second burst: the case that put 220 into a minute.
        let l = Arc::new(TokenLimiter::per_minute(700));
        let mut sent = Vec::new();
        for i in 0..900 {
            l.acquire().await;
            sent.push(Instant::now());
            if i == 20 {
                l.observe_limit(200);
            }
            if i == 400 {
                tokio::time::advance(Duration::from_secs(90)).await;
            }
        }
        let worst = max_in_window(&sent, Duration::from_secs(60));
        assert!(worst <= 200, "{worst} requests in one minute");
        // And the budget is used: saturated background work runs at nine
        // tenths of it (the rest is the interactive lane's headroom).
        let span = sent[899].duration_since(sent[500]).as_secs_f64();
        let per_minute = 399.0 / span * 60.0;
        assert!(per_minute > 170.0, "{per_minute:.0} a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn a_saturated_background_lane_keeps_interactive_turns_quick() {
        let l = Arc::new(TokenLimiter::per_minute(200));
        // Background work far beyond the budget, always waiting.
        let mut workers = Vec::new();
        for _ in 0..8 {
            let l = l.clone();
            workers.push(tokio::spawn(async move {
                let mut n = 0u32;
                loop {
                    l.acquire_in(Lane::Background).await;
                    n += 1;
                    if n == u32::MAX {
                        break n;
                    }
                }
            }));
        }
        tokio::time::advance(Duration::from_secs(120)).await;
        // Interactive requests, one every 2 s, each waits one slot at most.
        let mut worst = Duration::ZERO;
        for _ in 0..30 {
            let t = Instant::now();
            l.acquire_in(Lane::Interactive).await;
            worst = worst.max(t.elapsed());
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        assert!(worst <= Duration::from_millis(400), "waited {worst:?}");
        for w in workers {
            w.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn background_keeps_a_fifth_under_interactive_flood() {
        let l = Arc::new(TokenLimiter::per_minute(200));
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut flood = Vec::new();
        for _ in 0..8 {
            let l = l.clone();
            flood.push(tokio::spawn(async move {
                loop {
                    l.acquire_in(Lane::Interactive).await;
                }
            }));
        }
        let bg = {
            let (l, done) = (l.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    l.acquire_in(Lane::Background).await;
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(600)).await;
        let got = done.load(std::sync::atomic::Ordering::SeqCst);
        // Ten minutes; the interactive lane may take four fifths of the
        // paced 176 a minute: background keeps about 36 a minute.
        assert!(got >= 250, "background sent {got} in ten minutes");
        bg.abort();
        for f in flood {
            f.abort();
        }
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
        // A header can lower the limit, never raise it past the config.
        let l = TokenLimiter::per_minute(200);
        l.observe_limit(700);
        assert_eq!(l.limit(), 200);
        l.observe_limit(100);
        assert_eq!(l.limit(), 100);
        l.observe_limit(0);
        assert_eq!(l.limit(), 1);
    }
}
