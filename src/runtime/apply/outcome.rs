//! What becomes of a failed try: applied, retried after a backoff, or
//! parked for a human. The schedule (`[outbox]` in l3map.toml) and the
//! judgement of an error live here; the appliers only report errors.

use crate::connectors::backoff::{full_jitter, Backoff};
use crate::connectors::error::ApiError;
use crate::runtime::ops::Op;
use crate::runtime::store::Group;
use std::time::Duration;

/// What became of some of a group's actions.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied,
    /// Settled with words for the audit trail (`outbox list`, the log):
    /// applied after a collision with a person's change
    /// (`superseded: false`), or not applied because a person changed
    /// what it would write after l3map read the ticket (`superseded:
    /// true`). Either way the action is finished and never sent again.
    Settled {
        note: String,
        superseded: bool,
        /// Nothing of the decision was written (a collision withdrew all
        /// of an update's actions): the actions' keys are freed, so a later
        /// event on which the rule or hand-off holds again writes it; a
        /// hand-off no person ever saw does not count as written once.
        rearm: bool,
    },
    /// Worth another try after `after`; `unconfirmed` when it may have
    /// been applied (read back before sending again); `transient` when it
    /// failed for an outage (connect error, timeout, 5xx, 429, quota),
    /// which does not count toward `max_attempts`.
    Retry {
        error: String,
        after: Duration,
        unconfirmed: bool,
        transient: bool,
        kind: &'static str,
    },
    /// A human must look: a validation error, a missing record or
    /// permission, or too many attempts. `outage`: the connection stayed
    /// down past the outage window; such actions come back by themselves
    /// when it answers again.
    Park {
        reason: String,
        kind: &'static str,
        outage: bool,
    },
}

/// Outcomes by outbox row id.
pub type Results = Vec<(Vec<i64>, Outcome)>;

/// When the outbox tries an action again, and when it gives up
/// (`[outbox]` in l3map.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Tries that failed for a reason other than an outage (an auth error,
    /// say) after which the action is parked.
    pub max_attempts: u32,
    /// How long an action keeps retrying an outage (connect errors,
    /// timeouts, 5xx, 429), from its first such failure, before it is
    /// parked for the connection to recover.
    pub outage_window: Duration,
    /// The first backoff's bound; each try doubles it...
    pub min: Duration,
    /// ...up to this.
    pub max: Duration,
}

impl Default for Retries {
    fn default() -> Retries {
        Retries {
            max_attempts: 8,
            outage_window: Duration::from_secs(24 * 3600),
            min: Duration::from_secs(2),
            max: Duration::from_secs(300),
        }
    }
}

impl Retries {
    /// How long to wait before try `attempts + 1`: full jitter, a uniform
    /// draw in `[0, min(max, min * 2^(attempts-1)))`, and at least 10 ms so
    /// a zero draw cannot spin. Each try already includes the connector's
    /// own short retries (`runtime::clients::runtime_retry`, 30 s at most),
    /// so this is the slow outer loop, not a second fast one.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let bound = Backoff::new(self.min, self.max).bound(attempts.saturating_sub(1));
        full_jitter(bound).max(Duration::from_millis(10).min(bound))
    }
}

/// Where a group stands in its retries, for [`Retries::outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    /// Every try, this one included: the backoff grows with it.
    pub total: u32,
    /// The tries that count toward `max_attempts`.
    pub counted: u32,
    /// When the group first failed for an outage (ms since 1970).
    pub failing_since: Option<i64>,
    /// Now (ms since 1970).
    pub now: i64,
}

impl Tries {
    /// A group's: its most tried action's, and its oldest outage.
    pub fn of(g: &Group, now: i64) -> Tries {
        Tries {
            total: g.items.iter().map(|c| c.attempts).max().unwrap_or(1),
            counted: g.items.iter().map(|c| c.counted).max().unwrap_or(1),
            failing_since: g.items.iter().filter_map(|c| c.failing_since).min(),
            now,
        }
    }

    /// The same tries, judged now: a request can take a while, and the
    /// outage window is measured to when it failed.
    pub(super) fn at_now(self) -> Tries {
        Tries {
            now: crate::runtime::store::now_ms().max(self.now),
            ..self
        }
    }
}

/// The metrics name of an error's kind.
pub fn error_kind(e: &ApiError) -> &'static str {
    if crate::connectors::limit::is_budget_unreachable(e) {
        return "store_unreachable";
    }
    match e {
        ApiError::Auth { .. } => "auth",
        ApiError::GrantRevoked { .. } => "grant_revoked",
        ApiError::Permission { .. } => "permission",
        ApiError::NotFound { .. } => "not_found",
        ApiError::Validation { .. } => "validation",
        ApiError::Conflict { .. } => "conflict",
        ApiError::RateLimited { .. } => "rate_limited",
        ApiError::Transient { .. } => "transient",
        ApiError::Protocol { .. } => "protocol",
        ApiError::QuotaExhausted { .. } => "quota",
        ApiError::Unconfirmed { .. } => "unconfirmed",
        ApiError::GaveUp { last, .. } => error_kind(last),
    }
}

/// An outage rather than a problem with the request: the connection
/// refused or dropped, a timeout, a 5xx, a 429 or a quota that reopens by
/// itself. The same request succeeds once the API is back.
pub fn is_outage(e: &ApiError) -> bool {
    match e {
        // A refused OAuth grant waits like an outage: the actions resume by
        // themselves once a person signs in again, never dead letters.
        ApiError::RateLimited { .. }
        | ApiError::Transient { .. }
        | ApiError::QuotaExhausted { .. }
        | ApiError::GrantRevoked { .. } => true,
        ApiError::Unconfirmed { last, .. } | ApiError::GaveUp { last, .. } => is_outage(last),
        _ => false,
    }
}

/// Errors no retry can fix: parked at once.
pub(super) fn is_permanent(e: &ApiError) -> bool {
    match e {
        ApiError::Permission { .. }
        | ApiError::NotFound { .. }
        | ApiError::Validation { .. }
        | ApiError::Protocol { .. } => true,
        ApiError::Unconfirmed { last, .. } | ApiError::GaveUp { last, .. } => is_permanent(last),
        _ => false,
    }
}

impl Retries {
    /// The outcome of an error for a group at `tries`.
    ///
    /// - Permanent errors (validation, permission, not found, an answer we
    ///   cannot read) park at once.
    /// - An outage retries with backoff, without counting toward
    ///   `max_attempts`, until `outage_window` has passed since the group
    ///   first failed that way; then it parks as an outage, and comes back
    ///   by itself when the connection answers again.
    /// - Anything else (an auth error) retries until `max_attempts`.
    pub fn outcome(&self, e: &ApiError, tries: Tries) -> Outcome {
        let kind = error_kind(e);
        let error = e.to_string();
        if is_permanent(e) {
            return Outcome::Park {
                reason: error,
                kind,
                outage: false,
            };
        }
        let outage = is_outage(e);
        if outage {
            let since = tries.failing_since.unwrap_or(tries.now);
            let down = Duration::from_millis(u64::try_from(tries.now - since).unwrap_or(0));
            if down >= self.outage_window {
                return Outcome::Park {
                    reason: format!(
                        "the connection has been failing for {}s, past [outbox] outage_window_secs = {}; \
                         requeued by itself when the connection answers again: {error}",
                        down.as_secs(),
                        self.outage_window.as_secs()
                    ),
                    kind,
                    outage: true,
                };
            }
        } else if tries.counted >= self.max_attempts {
            return Outcome::Park {
                reason: format!("gave up after {} attempts: {error}", tries.counted),
                kind,
                outage: false,
            };
        }
        let backoff = self.backoff(tries.total);
        // What the API asked for, also when the connector gave up on it
        // at once (a `Retry-After` past its budget: Zendesk's per-ticket
        // limit, which holds the ticket, not the token); a quota that
        // reopens over a rolling day is not worth asking about more than
        // every 15 minutes.
        let last = match e {
            ApiError::GaveUp { last, .. } | ApiError::Unconfirmed { last, .. } => last.as_ref(),
            other => other,
        };
        let after = match last {
            ApiError::RateLimited {
                retry_after: Some(d),
                ..
            } => *d,
            ApiError::QuotaExhausted { .. } => Duration::from_secs(15 * 60),
            _ => backoff,
        };
        Outcome::Retry {
            error,
            after,
            unconfirmed: matches!(e, ApiError::Unconfirmed { .. }),
            transient: outage,
            kind,
        }
    }
}

/// Moves the rows whose effect the record already shows out of `ops`, as
/// applied: after a crash or a lost answer, only the rest is sent.
pub(super) fn drop_applied(ops: &mut Vec<(i64, Op)>, there: &[i64], results: &mut Results) {
    let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(ops)
        .into_iter()
        .partition(|(id, _)| there.contains(id));
    if !done.is_empty() {
        results.push((done.iter().map(|(id, _)| *id).collect(), Outcome::Applied));
    }
    *ops = rest;
}

pub(super) fn park_config(reason: String) -> Outcome {
    Outcome::Park {
        reason,
        kind: "config",
        outage: false,
    }
}
