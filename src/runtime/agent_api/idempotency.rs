//! The answers of recent turns, by turn, so a retry gets the decision it
//! lost without a second Zendesk read, and concurrent retries of one turn
//! wait for the first instead of racing it.

use super::answer::TurnAnswer;
use super::fail::Fail;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long a turn's answer is kept for a retry to receive verbatim. An
/// agent retries within seconds; the store's dedup lasts forever, this
/// only decides whether the retry also gets the original decision back.
const MEMO_TTL: Duration = Duration::from_secs(3600);
/// The answers kept, in bytes (each weighed as its JSON, the key and a
/// fixed overhead): an answer echoes the agent's fields, so a count would
/// bound nothing. Thousands of ordinary answers fit; a turn whose answer
/// is evicted and retried gets the store's "recorded earlier" answer.
pub const MEMO_BYTES: u64 = 64 * 1024 * 1024;
/// Bookkeeping per entry beyond its JSON (key, Arc, moka's node).
const MEMO_ENTRY_OVERHEAD: usize = 512;

/// Answers by event id (`agent:{agent}:{turn}`). One memo per agent API,
/// built with its router, so per runtime and so per store: the store is
/// what decides that an event is a duplicate, and two runtimes in one
/// process (tests) keep their turns apart.
#[derive(Clone)]
pub(super) struct Memo {
    answers: moka::future::Cache<String, Arc<TurnAnswer>>,
}

/// A turn's answer, and whether this request decided it: `false` when
/// another request with the same turn id did (this one is its retry).
pub(super) struct Remembered {
    pub answer: Arc<TurnAnswer>,
    pub decided_here: bool,
}

impl Memo {
    pub fn new() -> Memo {
        Memo::bounded(MEMO_BYTES)
    }

    fn bounded(max_bytes: u64) -> Memo {
        let answers = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|id: &String, answer: &Arc<TurnAnswer>| {
                let bytes = answer_bytes(answer) + id.len() + MEMO_ENTRY_OVERHEAD;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .time_to_live(MEMO_TTL)
            .build();
        Memo { answers }
    }

    /// The answer kept for `event_id`, or `decide`'s, kept. Concurrent
    /// calls for one id run `decide` once and share its outcome; a failure
    /// is shared but not kept, so the next retry decides again.
    pub async fn answer<F>(&self, event_id: String, decide: F) -> Result<Remembered, Fail>
    where
        F: Future<Output = Result<Arc<TurnAnswer>, Fail>>,
    {
        let entry = self
            .answers
            .entry(event_id)
            .or_try_insert_with(decide)
            .await
            .map_err(|f| (*f).clone())?;
        Ok(Remembered {
            decided_here: entry.is_fresh(),
            answer: entry.into_value(),
        })
    }
}

/// What an answer costs in memory: its JSON's length, which counts every
/// string it holds (the agent's fields among them) once.
fn answer_bytes(answer: &TurnAnswer) -> usize {
    // Serialising a TurnAnswer cannot fail (string keys, no maps of
    // non-string keys); a failure would weigh the fixed overhead only.
    crate::connectors::cache::json_bytes(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn answer(turn: &str) -> TurnAnswer {
        TurnAnswer {
            turn: turn.into(),
            revision: "r1".into(),
            duplicate: false,
            ticket: None,
            linked: None,
            accepted: vec![],
            refused: vec![],
            queued: 0,
            handoff_comment: None,
            stale_fields: vec![],
            message: None,
            digest: [7; 32],
            replay: None,
            event: None,
        }
    }

    #[tokio::test]
    async fn a_turn_is_decided_once_and_its_retry_is_told_so() {
        let memo = Memo::new();
        let calls = AtomicU32::new(0);
        let decide = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(answer("agent:a:1")))
        };
        let first = memo.answer("agent:a:1".into(), decide()).await.unwrap();
        let retry = memo.answer("agent:a:1".into(), decide()).await.unwrap();
        assert!(first.decided_here);
        assert!(!retry.decided_here);
        assert!(Arc::ptr_eq(&first.answer, &retry.answer));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn two_app_states_do_not_share_a_memo() {
        let (a, b) = (Memo::new(), Memo::new());
        let ok = |t: &'static str| async move { Ok(Arc::new(answer(t))) };
        assert!(
            a.answer("agent:a:1".into(), ok("a"))
                .await
                .unwrap()
                .decided_here
        );
        let other = b.answer("agent:a:1".into(), ok("b")).await.unwrap();
        assert!(other.decided_here, "a second runtime decides its own turn");
        assert_eq!(other.answer.turn, "b");
    }

    #[tokio::test]
    async fn a_failure_is_not_kept() {
        let memo = Memo::new();
        let failed = memo
            .answer("agent:a:1".into(), async {
                Err(super::super::fail::bad("no"))
            })
            .await;
        assert!(failed.is_err());
        let ok = memo
            .answer("agent:a:1".into(), async { Ok(Arc::new(answer("x"))) })
            .await
            .unwrap();
        assert!(ok.decided_here);
    }

    #[tokio::test]
    async fn answers_are_bounded_by_their_bytes() {
        let memo = Memo::bounded(64 * 1024);
        for i in 0..100 {
            let mut a = answer("t");
            a.handoff_comment = Some("x".repeat(4096));
            memo.answer(format!("agent:a:{i}"), async { Ok(Arc::new(a)) })
                .await
                .unwrap();
        }
        memo.answers.run_pending_tasks().await;
        assert!(memo.answers.weighted_size() <= 64 * 1024);
    }
}
