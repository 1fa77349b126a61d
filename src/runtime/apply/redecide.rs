//! The 409 re-decision: after a collision, the stored event behind each
//! remaining action is decided again, through the running revision's
//! compiled program (`eval::decide`, pure), with its ticket replaced by
//! the fresh read. What the new decision still writes goes, with the value
//! it says now; what it no longer writes is dropped with the reason. The
//! per-field check (`conflict.rs`) then keeps the person's change on
//! anything they touched since the basis. Issue 17: "re-reads the ticket,
//! decides again against the fresh state, and writes only what still
//! holds".
//!
//! Keys tie the new decision to the queued rows: an action's idempotency
//! key is a hash of (revision, event id) plus its rule's place, so the same
//! event decided again by the same revision names the same rows. A row
//! decided by another revision (the mappings were reloaded since) cannot
//! be matched that way: it keeps the per-field check only.

use super::conflict::describe;
use super::Applier;
use crate::runtime::ops::Op;
use crate::runtime::store::Group;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// A stored event decided again: the revision and its actions'
/// (idempotency key, op).
#[derive(Debug, Clone, PartialEq)]
pub struct Redecided {
    pub revision: String,
    pub actions: Vec<(String, Op)>,
}

/// Decides a stored event (its JSON) again with its ticket replaced by
/// the fresh one (the Tickets API's `{"ticket": {...}}`); `None` when the
/// event or the ticket cannot be read.
#[derive(Clone)]
pub struct Redecide(pub Arc<RedecideFn>);

/// The function behind [`Redecide`].
pub type RedecideFn = dyn Fn(&str, &Json) -> Option<Redecided> + Send + Sync;

impl std::fmt::Debug for Redecide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redecide")
    }
}

/// What survived the new decision, what it dropped (row, why), and how
/// many rows it could decide again.
pub(super) struct Again {
    pub keep: Vec<(i64, Op)>,
    pub dropped: Vec<(i64, String)>,
    pub redecided: usize,
}

impl Applier {
    /// Decides again the events behind `ops` against `fresh`; `occasion`
    /// says why, in the note of what it drops ("after a collision").
    pub(super) fn decide_again(
        &self,
        g: &Group,
        fresh: &Json,
        ops: Vec<(i64, Op)>,
        occasion: &str,
    ) -> Again {
        let Some(redecide) = &self.redecide else {
            return Again {
                keep: ops,
                dropped: vec![],
                redecided: 0,
            };
        };
        let when = fresh["ticket"]["updated_at"]
            .as_str()
            .unwrap_or("an unknown time")
            .to_string();
        let events: HashMap<i64, &String> = g.events.iter().map(|(e, j)| (*e, j)).collect();
        let mut decided: HashMap<i64, Option<Redecided>> = HashMap::new();
        let mut again = Again {
            keep: vec![],
            dropped: vec![],
            redecided: 0,
        };
        for (id, op) in ops {
            let Some(row) = g.items.iter().find(|c| c.id == id) else {
                again.keep.push((id, op));
                continue;
            };
            let new = decided.entry(row.event_id).or_insert_with(|| {
                events
                    .get(&row.event_id)
                    .and_then(|e| (redecide.0)(e, fresh))
            });
            let Some(new) = new.as_ref().filter(|n| n.revision == row.revision) else {
                again.keep.push((id, op));
                continue;
            };
            again.redecided += 1;
            match new.actions.iter().find(|(k, _)| *k == row.key) {
                Some((_, now)) => again.keep.push((id, now.clone())),
                None => again.dropped.push((
                    id,
                    format!(
                        "superseded: decided again against the ticket as of {when} ({occasion}), \
                         {} no longer writes l3map's {}; not applied",
                        row.rule,
                        describe(&op)
                    ),
                )),
            }
        }
        again
    }
}
