//! The heart of `l3map run`: every event, whatever its source, is decided
//! against exactly one mapping revision (the one current when it arrived)
//! and recorded with its actions in the store before its source is told
//! "accepted". Workers take the actions from there.

use super::metrics::Metrics;
use super::ops::outbox_actions;
use super::store::{Accepted, NewEvent, Store, StoreError};
use crate::eval::convert::ConvertContext;
use crate::eval::decide::{decide, Refusal};
use crate::eval::event::Event;
use crate::ir::Program;
use arc_swap::ArcSwap;
use serde_json::Value as Json;
use std::sync::Arc;
use tokio::sync::Notify;

/// One compiled revision of the mappings, with what reading payloads for
/// it needs.
#[derive(Debug)]
pub struct Live {
    pub program: Program,
    pub convert: ConvertContext,
}

impl Live {
    pub fn new(program: Program) -> Live {
        let convert = ConvertContext::new(&program);
        Live { program, convert }
    }
}

/// What became of one event.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub accepted: Accepted,
    pub revision: String,
    /// The decision's actions as `l3map plan --format json` shows them.
    pub actions: Vec<Json>,
    pub refused: Vec<Refusal>,
}

pub struct Engine {
    live: ArcSwap<Live>,
    pub store: Arc<Store>,
    pub metrics: Metrics,
    /// Rung when actions are queued, so idle workers start at once.
    pub wake: Notify,
}

impl Engine {
    pub fn new(live: Live, store: Arc<Store>, metrics: Metrics) -> Engine {
        metrics.set_revision_info(&live.program.revision);
        Engine {
            live: ArcSwap::from_pointee(live),
            store,
            metrics,
            wake: Notify::new(),
        }
    }

    /// The revision events are decided against now.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Installs a new revision: events that arrive from now on are decided
    /// against it; one being decided keeps the one it started with.
    pub fn swap(&self, live: Live) {
        self.metrics.set_revision_info(&live.program.revision);
        self.live.store(Arc::new(live));
    }

    /// Decides `ev` and records it with its actions and, when the source
    /// has one, its new cursor: all or nothing.
    pub async fn ingest(
        &self,
        source: &'static str,
        ev: Event,
        cursor: Option<(String, String)>,
    ) -> Result<Ingested, StoreError> {
        let live = self.live();
        let (rows, actions, refused, event_json) = {
            let d = decide(&live.program, &ev);
            let rows = outbox_actions(&live.program, &d);
            let actions: Vec<Json> = d
                .actions
                .iter()
                .map(|a| serde_json::to_value(a).unwrap_or(Json::Null))
                .collect();
            (
                rows,
                actions,
                d.refused,
                serde_json::to_string(&ev).unwrap_or_default(),
            )
        };
        let revision = live.program.revision.clone();
        let refused_json = serde_json::to_string(&refused).unwrap_or_default();
        let store = self.store.clone();
        let key = ev.id.clone();
        let rev = revision.clone();
        let accepted = tokio::task::spawn_blocking(move || {
            let new = NewEvent {
                key: &key,
                source,
                revision: &rev,
                event: &event_json,
                refused: &refused_json,
            };
            let cursor = cursor.as_ref().map(|(s, v)| (s.as_str(), v.as_str()));
            store.accept(&new, &rows, cursor)
        })
        .await
        .map_err(|e| StoreError::Open {
            path: self.store.path().to_path_buf(),
            message: format!("the store task failed: {e}"),
        })??;
        match accepted {
            Accepted::Duplicate => self.metrics.event_duplicate(source),
            Accepted::New { queued, .. } => {
                self.metrics.events_in(source);
                if queued > 0 {
                    self.wake.notify_waiters();
                }
            }
        }
        Ok(Ingested {
            accepted,
            revision,
            actions,
            refused,
        })
    }
}
