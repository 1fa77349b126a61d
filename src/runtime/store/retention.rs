//! Retention: old events and applied actions are deleted, in small batches
//! on a thread of their own, so the store (and every scan an operator runs
//! on it) stays the size of the recent past rather than of all time.
//!
//! What is kept, and why:
//! - An event's key is what makes a redelivery a duplicate. Zendesk retries
//!   a failed webhook for minutes (its circuit breaker works on 5-minute
//!   windows), agents retry a turn within seconds, and the pollers resume
//!   from their stored cursor; the default 30 days is far past all of them.
//! - An event is never deleted while an outbox row refers to it: the row's
//!   audit trail names its event.
//! - Applied (`done`) actions are the audit trail: 90 days by default.
//! - Dead letters and actions not yet applied are never deleted here; a
//!   human drops dead letters with `l3map outbox drop`.
//! - Hand-off actions are never deleted: their key is what makes a hand-off
//!   once per escalation and record, and deleting it would re-arm the
//!   hand-off. They are a few rows per escalated ticket.
//!
//! How a sweep runs is the backend's (SQLite: `sqlite/retention.rs`); what
//! it keeps is decided here, for every backend.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Outbox keys starting with this are hand-offs (see
/// `eval::decide::Keys::handoff_prefix`): kept for good.
pub(crate) const HANDOFF_KEY_PREFIX: &str = "h";

/// How long rows are kept; `None` keeps them for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events (with their keys) after they arrived, once no outbox row
    /// refers to them.
    pub events: Option<Duration>,
    /// Applied actions after they were applied.
    pub done_actions: Option<Duration>,
}

impl Retention {
    pub const DAY: Duration = Duration::from_secs(86_400);
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            events: Some(30 * Retention::DAY),
            done_actions: Some(90 * Retention::DAY),
        }
    }
}

/// Rows deleted by retention since start.
#[derive(Debug, Default)]
pub struct Deleted {
    pub events: AtomicU64,
    pub done_actions: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::HANDOFF_KEY_PREFIX;
    use crate::eval::decide::{decide, Rule};
    use crate::eval::event::Event;

    /// Retention keeps hand-offs by their key's prefix: the interpreter's
    /// keys must keep saying which actions are hand-offs.
    #[test]
    fn hand_off_keys_and_only_they_carry_the_kept_prefix() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let program = crate::runtime::compile::compile(&root.join("mappings/fintech"))
            .expect("mappings/fintech compiles");
        let ev = Event::from_json(
            r#"{"id":"turn:1","kind":"agent_turn","at":"2026-11-25T10:00:00Z",
                "ticket":{"id":4211,"status":"in_progress"},
                "turn":{"intent":"refund","summary":"s","sentiment":"negative",
                        "refund_amount":{"amount":"450.00","currency":"USD"}}}"#,
        )
        .expect("a turn");
        let d = decide(&program, &ev);
        assert!(
            d.actions
                .iter()
                .any(|a| matches!(a.rule, Rule::Escalation(_))),
            "the refund turn hands off: {:?}",
            d.actions
        );
        for a in &d.actions {
            assert_eq!(
                a.idempotency_key.starts_with(HANDOFF_KEY_PREFIX),
                matches!(a.rule, Rule::Escalation(_)),
                "{a:?}"
            );
        }
    }
}
