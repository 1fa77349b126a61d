//! The heart of `l3map run`: every event, whatever its source, is decided
//! against exactly one mapping revision (the one current when it arrived)
//! and recorded with its actions in the store before its source is told
//! "accepted". Workers take the actions from there.

use super::metrics::Metrics;
use super::ops::outbox_actions;
use super::store::{
    Accepted, Bundle, NewAction, NewEvent, Publish, Store, StoreError, Submission, Tally,
};
use crate::eval::convert::ConvertContext;
use crate::eval::decide::{decide, ActionKind, Refusal};
use crate::eval::event::Event;
use crate::ir::{Loc, Program};
use arc_swap::ArcSwap;
use serde_json::Value as Json;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

/// Events waiting for the committer beyond this make their sources wait
/// (backpressure) instead of growing memory.
const QUEUE: usize = 8192;

/// At most this many events share one transaction, so one commit's latency
/// stays bounded under a flood.
const MAX_BATCH: usize = 512;

/// How many times one event is decided again because the fleet switched
/// revisions under it before it is refused (a switch storm).
const MOVES: u32 = 3;

/// One compiled revision of the mappings, with what reading payloads for
/// it needs.
#[derive(Debug)]
pub struct Live {
    pub program: Program,
    pub convert: ConvertContext,
}

impl Live {
    pub fn new(program: Program) -> Live {
        // Built here, once per revision, rather than by the first event.
        program.index();
        let convert = ConvertContext::new(&program);
        Live { program, convert }
    }
}

/// What became of one event.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub accepted: Accepted,
    pub revision: String,
    pub actions: Vec<Decided>,
    pub refused: Vec<Refusal>,
}

/// One decided action, owned, so it outlives the revision that decided it.
#[derive(Debug, Clone)]
pub struct Decided {
    /// As `l3map plan --format json` shows it.
    pub plan: Json,
    /// Where its rule is.
    pub loc: Loc,
    /// A comment's body, when the action writes one.
    pub comment: Option<String>,
}

pub struct Engine {
    live: ArcSwap<Live>,
    pub store: Arc<Store>,
    pub metrics: Metrics,
    /// Rung when actions are queued, so idle workers start at once.
    pub wake: Notify,
    /// Zendesk tickets as the API last showed them, by update: webhooks
    /// read each update once, and l3map's own updates not at all.
    pub tickets: super::tickets::Tickets,
    /// Whether the mapping files on disk are refused (`/healthz`).
    pub files: super::files::FilesState,
    /// Set on SIGTERM: `/readyz` answers 503 so a load balancer sends no
    /// more traffic while in-flight work finishes.
    pub draining: std::sync::atomic::AtomicBool,
    /// The fleet's revision as this replica follows it (PostgreSQL).
    pub fleet: super::revision::Following,
    /// Events to record, a group at a time: a group is committed in one
    /// transaction.
    commits: mpsc::Sender<Vec<Pending>>,
    /// The revision now live, for those who follow it (MCP's
    /// `notifications/tools/list_changed`).
    revision: tokio::sync::watch::Sender<String>,
    /// Cancelled when the runtime stops: long-lived streams (MCP's) end
    /// with it instead of holding the drain.
    pub closing: tokio_util::sync::CancellationToken,
}

/// One decided event on its way into the store, and who to tell.
struct Pending {
    key: String,
    source: &'static str,
    revision: String,
    event: String,
    refused: String,
    record: Option<String>,
    tallies: Vec<Tally>,
    rows: Vec<NewAction>,
    cursor: Option<(String, String)>,
    reply: oneshot::Sender<Result<Accepted, StoreError>>,
}

/// A decided event waiting for its commit.
struct Made {
    id: String,
    revision: String,
    actions: Vec<Decided>,
    refused: Vec<Refusal>,
}

/// Group commit: one thread owns the writes of accepted events. It takes
/// every event waiting and commits them in one transaction, so N events
/// arriving together cost one `fsync`, not N; an event arriving alone is
/// committed at once (no timer, no added latency). Each source is answered
/// only after the transaction holding its event has committed.
fn committer(store: Arc<Store>, mut queue: mpsc::Receiver<Vec<Pending>>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.extend(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(group) => batch.extend(group),
                Err(_) => break,
            }
        }
        let submissions: Vec<Submission<'_>> = batch
            .iter()
            .map(|p| Submission {
                event: NewEvent {
                    key: &p.key,
                    source: p.source,
                    revision: &p.revision,
                    event: &p.event,
                    refused: &p.refused,
                    record: p.record.as_deref(),
                    tallies: &p.tallies,
                },
                actions: &p.rows,
                cursor: p.cursor.as_ref().map(|(s, v)| (s.as_str(), v.as_str())),
            })
            .collect();
        let outcome = store.accept_all(&submissions);
        drop(submissions);
        match outcome {
            Ok(accepted) => {
                for (p, a) in batch.drain(..).zip(accepted) {
                    let _ = p.reply.send(Ok(a));
                }
            }
            Err(StoreError::RevisionMoved { active }) => {
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(StoreError::RevisionMoved {
                        active: active.clone(),
                    }));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(StoreError::Batch(message.clone())));
                }
            }
        }
    }
}

impl Engine {
    pub fn new(live: Live, store: Arc<Store>, metrics: Metrics) -> Engine {
        metrics.set_revision_info(&live.program.revision);
        let (commits, queue) = mpsc::channel(QUEUE);
        let writer = store.clone();
        // A plain thread, not the blocking pool: it lives as long as the
        // engine (it ends when the engine, and so the sender, is dropped).
        std::thread::Builder::new()
            .name("l3map-outbox-commit".into())
            .spawn(move || committer(writer, queue))
            .expect("the OS refused a thread for the outbox committer");
        Engine {
            revision: tokio::sync::watch::Sender::new(live.program.revision.clone()),
            closing: tokio_util::sync::CancellationToken::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            live: ArcSwap::from_pointee(live),
            store,
            metrics,
            wake: Notify::new(),
            tickets: super::tickets::Tickets::default(),
            files: super::files::FilesState::default(),
            fleet: super::revision::Following::default(),
            commits,
        }
    }

    /// The revision events are decided against now.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Records in the store which revision this process serves and why the
    /// files on disk were last refused (a fleet's `l3map status`), off the
    /// async workers.
    pub fn report_loaded(&self, revision: &str, refused: Option<String>) {
        let (store, revision) = (self.store.clone(), revision.to_string());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.report_loaded(&revision, refused.as_deref()) {
                tracing::warn!(error = %e, "could not record the loaded revision in the store");
            }
        });
    }

    /// Installs a new revision: events that arrive from now on are decided
    /// against it; one being decided keeps the one it started with.
    pub fn swap(&self, live: Live) {
        self.metrics.set_revision_info(&live.program.revision);
        let revision = live.program.revision.clone();
        self.live.store(Arc::new(live));
        self.revision.send_if_modified(|r| {
            let changed = *r != revision;
            *r = revision;
            changed
        });
    }

    /// Told of each new live revision.
    pub fn revisions(&self) -> tokio::sync::watch::Receiver<String> {
        self.revision.subscribe()
    }

    /// Makes the fleet's revision `active` the one events are decided by
    /// here, from its stored sources (see [`super::fleet`]); nothing to do
    /// when it already is.
    pub async fn adopt(&self, active: &str) -> Result<(), StoreError> {
        let _one = self.fleet.loading.lock().await;
        let current = self.live();
        if current.program.revision == active {
            // The fleet came back to what this replica serves.
            if self.fleet.set(None) {
                tracing::info!(revision = %active, "deciding by the fleet's mapping revision again");
                self.report_loaded(active, None);
            }
            return Ok(());
        }
        let (store, was, revision) = (self.store.clone(), current.clone(), active.to_string());
        let loaded = tokio::task::spawn_blocking(move || {
            super::revision::load(&store, &was.program, &revision)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the compiler task failed: {e}")));
        match loaded {
            Ok(p) => {
                for link in &p.links {
                    self.metrics.link_declared(&link.describe());
                }
                self.swap(Live::new(p));
                self.fleet.set(None);
                self.report_loaded(active, None);
                super::reloads::record(
                    &self.store,
                    active,
                    "fleet",
                    super::reloads::Outcome::Live(None),
                );
                match self.files.on_disk().filter(|d| d != active) {
                    // Another replica's save or a publish won over the
                    // files here: said where an operator looks
                    // (`/healthz` says `files: "fleet"` meanwhile).
                    Some(disk) => {
                        tracing::warn!(from = %current.program.revision, to = %active, files = %disk, "deciding by the fleet's mapping revision, not the files here (a save or SIGHUP puts them forward)")
                    }
                    None => {
                        tracing::info!(from = %current.program.revision, to = %active, "deciding by the fleet's mapping revision")
                    }
                }
                Ok(())
            }
            Err(why) => {
                let message = format!("cannot load the fleet's mapping revision {active}: {why}");
                if self.fleet.set(Some(message.clone())) {
                    tracing::error!(serving = %current.program.revision, "{message}");
                    self.report_loaded(&current.program.revision, Some(message.clone()));
                    super::reloads::record(
                        &self.store,
                        active,
                        "fleet",
                        super::reloads::Outcome::Refused(&message),
                    );
                }
                Err(StoreError::Batch(message))
            }
        }
    }

    /// Publishes `bundle` to the fleet (see [`Publish`]) and returns the
    /// revision the fleet decides by now (`None`: no fleet, a SQLite
    /// store).
    pub async fn publish(
        &self,
        bundle: Bundle,
        how: Publish,
    ) -> Result<Option<String>, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.publish(&bundle, how, ""))
            .await
            .unwrap_or_else(|e| Err(StoreError::Backend(format!("the publish task failed: {e}"))))
    }

    /// [`Engine::publish`] and the local swap under one load lock, so an
    /// event refused meanwhile finds `bundle` already live: a hot reload's
    /// new files. A store that does not answer is asked again for a few
    /// seconds (a database restart or failover), then the save is refused.
    pub async fn publish_and_swap(&self, bundle: Bundle, live: Live) -> Result<(), StoreError> {
        let _one = self.fleet.loading.lock().await;
        let mut wait = std::time::Duration::from_millis(250);
        loop {
            match self.publish(bundle.clone(), Publish::Switch).await {
                Ok(_) => break,
                Err(e) if wait > std::time::Duration::from_secs(4) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "the new revision could not be published to the fleet yet; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        self.swap(live);
        self.fleet.set(None);
        Ok(())
    }

    /// Decides `ev` and records it with its actions and, when the source
    /// has one, its new cursor: all or nothing.
    pub async fn ingest(
        &self,
        source: &'static str,
        ev: Event,
        cursor: Option<(String, String)>,
    ) -> Result<Ingested, StoreError> {
        let mut tries = 0;
        loop {
            let live = self.live();
            let (pending, answer, made) = self.prepare(&live, source, ev.clone(), cursor.clone());
            let gone = || StoreError::Batch("the outbox committer has stopped".into());
            self.commits.send(vec![pending]).await.map_err(|_| gone())?;
            match answer.await.map_err(|_| gone())? {
                Ok(accepted) => return Ok(self.finish(&live, source, made, accepted)),
                // Decided by a revision the fleet left: by the new one.
                Err(StoreError::RevisionMoved { active }) if tries < MOVES => {
                    tries += 1;
                    self.adopt(&active).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Engine::ingest`] for events that arrive together (a fan-out
    /// page): recorded in one transaction, so their actions reach the
    /// outbox at once and a batch worker claims them together (one Zendesk
    /// `update_many`, not one per commit that happened to split them).
    /// The results are in the order of `events`.
    pub async fn ingest_group(
        &self,
        source: &'static str,
        events: Vec<Event>,
    ) -> Vec<Result<Ingested, StoreError>> {
        let mut tries = 0;
        loop {
            let out = self.ingest_group_once(source, events.clone()).await;
            let moved = out.iter().find_map(|r| match r {
                Err(StoreError::RevisionMoved { active }) => Some(active.clone()),
                _ => None,
            });
            match moved {
                // One transaction: all of the group was refused.
                Some(active) if tries < MOVES => {
                    tries += 1;
                    if let Err(e) = self.adopt(&active).await {
                        let message = e.to_string();
                        return out
                            .iter()
                            .map(|_| Err(StoreError::Batch(message.clone())))
                            .collect();
                    }
                }
                _ => return out,
            }
        }
    }

    async fn ingest_group_once(
        &self,
        source: &'static str,
        events: Vec<Event>,
    ) -> Vec<Result<Ingested, StoreError>> {
        let live = self.live();
        let (mut group, mut waits) = (Vec::new(), Vec::new());
        for ev in events {
            let (pending, answer, made) = self.prepare(&live, source, ev, None);
            group.push(pending);
            waits.push((answer, made));
        }
        let gone = || StoreError::Batch("the outbox committer has stopped".into());
        if self.commits.send(group).await.is_err() {
            return waits.iter().map(|_| Err(gone())).collect();
        }
        let mut out = Vec::with_capacity(waits.len());
        for (answer, made) in waits {
            out.push(match answer.await {
                Ok(Ok(accepted)) => Ok(self.finish(&live, source, made, accepted)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(gone()),
            });
        }
        out
    }

    /// Decides `ev`: the row to commit, where its answer comes, and what
    /// [`Engine::finish`] needs.
    fn prepare(
        &self,
        live: &Live,
        source: &'static str,
        ev: Event,
        cursor: Option<(String, String)>,
    ) -> (
        Pending,
        oneshot::Receiver<Result<Accepted, StoreError>>,
        Made,
    ) {
        let (rows, actions, refused, event_json, tallies) = {
            let d = decide(&live.program, &ev);
            let rows = outbox_actions(&live.program, &d);
            let tallies = super::tally::of(&live.program, &d);
            let actions: Vec<Decided> = d
                .actions
                .iter()
                .map(|a| Decided {
                    plan: serde_json::to_value(a).unwrap_or(Json::Null),
                    loc: a.loc,
                    comment: match &a.kind {
                        ActionKind::Comment { body, .. } => Some(body.clone()),
                        _ => None,
                    },
                })
                .collect();
            (
                rows,
                actions,
                d.refused,
                serde_json::to_string(&ev).unwrap_or_default(),
                tallies,
            )
        };
        let revision = live.program.revision.clone();
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key: ev.id.clone(),
            source,
            revision: revision.clone(),
            event: event_json,
            refused: serde_json::to_string(&refused).unwrap_or_default(),
            record: super::tally::record_of(&ev),
            tallies,
            rows,
            cursor,
            reply,
        };
        (
            pending,
            answer,
            Made {
                id: ev.id,
                revision,
                actions,
                refused,
            },
        )
    }

    /// Counts and logs a recorded event; its answer to the source.
    fn finish(
        &self,
        live: &Live,
        source: &'static str,
        made: Made,
        accepted: Accepted,
    ) -> Ingested {
        let Made {
            id,
            revision,
            actions,
            refused,
        } = made;
        match accepted {
            Accepted::Duplicate => self.metrics.event_duplicate(source),
            Accepted::New { queued, .. } => {
                self.metrics.events_in(source);
                // Counted once, when the event is first recorded: a
                // redelivery is decided again but refused nothing new.
                for r in &refused {
                    self.metrics.action(refusal_kind(&r.what), "refused");
                    // An operator sees why, not only a count: the agent
                    // API answers the agent, nobody else hears of it.
                    let at = r
                        .loc
                        .as_ref()
                        .map(|l| {
                            let file = live.program.files.get(l.file as usize);
                            format!("{}:{}:{}", file.map_or("?", |f| f.as_str()), l.line, l.col)
                        })
                        .unwrap_or_default();
                    tracing::info!(
                        event = %id, source, what = %r.what, reason = %r.reason, at = %at,
                        "refused"
                    );
                }
                if queued > 0 {
                    self.wake.notify_waiters();
                }
            }
        }
        Ingested {
            accepted,
            revision,
            actions,
            refused,
        }
    }
}

/// The action kind a refused request would have been, from its `what`
/// as `eval::decide` writes it: `status new -> closed`, `map a -> b: f`,
/// `sku t: "input"`, `escalation e: comment on desk`, `escalation e:
/// status …`, `escalation e: field`. A refusal names no action, so its
/// description is all there is; anything unrecognised writes a field.
pub fn refusal_kind(what: &str) -> &'static str {
    let what = match what.strip_prefix("escalation ") {
        Some(rest) => rest.split_once(": ").map_or(rest, |(_, r)| r),
        None => what,
    };
    if what.starts_with("status ") {
        "set_status"
    } else if what.starts_with("sku ") {
        "normalize_sku"
    } else if what.starts_with("comment on ") {
        "comment"
    } else {
        "set_field"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn refusals_count_under_the_kind_they_would_have_been() {
        for (what, kind) in [
            ("status new -> closed", "set_status"),
            ("status -> solved", "set_status"),
            ("map tier -> sla: sla_tier", "set_field"),
            ("sku catalogue: \"gold card\"", "normalize_sku"),
            ("sku catalogue: product", "normalize_sku"),
            ("escalation chargeback: comment on desk", "comment"),
            (
                "escalation chargeback: status open -> pending",
                "set_status",
            ),
            ("escalation chargeback: status -> pending", "set_status"),
            ("escalation chargeback: order_id", "set_field"),
        ] {
            assert_eq!(refusal_kind(what), kind, "{what}");
        }
    }

    fn engine(name: &str) -> Arc<Engine> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let program = super::super::compile::compile(&root.join("mappings/fintech"))
            .expect("mappings/fintech compiles");
        let path = std::env::temp_dir().join(format!(
            "l3map-engine-{name}-{}-{}.db",
            std::process::id(),
            fastrand::u32(..)
        ));
        let store = Store::open(&path).expect("a store");
        Arc::new(Engine::new(
            Live::new(program),
            Arc::new(store),
            Metrics::new(),
        ))
    }

    fn turn(id: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"id":"{id}","kind":"agent_turn","at":"2026-11-25T10:00:00Z",
                "ticket":{{"id":4211,"status":"in_progress"}},
                "turn":{{"intent":"refund","summary":"s","sentiment":"negative",
                         "refund_amount":{{"amount":"450.00","currency":"USD"}}}}}}"#
        ))
        .expect("a turn")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_events_are_each_answered_after_their_commit() {
        let engine = engine("group");
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let engine = engine.clone();
                // Every third id repeats one already sent: a duplicate,
                // whichever batch the two land in.
                let id = format!("turn:{}", if i % 3 == 2 { i - 1 } else { i });
                tokio::spawn(async move {
                    let got = engine.ingest("test", turn(&id), None).await;
                    // Answered means committed: another connection sees
                    // the event at once, while other batches still run.
                    let other = Store::open(engine.store.path()).expect("reopened");
                    assert!(
                        other.event(&id).expect("readable").is_some(),
                        "{id} answered before its commit"
                    );
                    got
                })
            })
            .collect();
        let (mut new, mut dup) = (0, 0);
        for t in tasks {
            match t.await.expect("no panic").expect("stored").accepted {
                Accepted::New { .. } => new += 1,
                Accepted::Duplicate => dup += 1,
            }
        }
        assert_eq!((new, dup), (200, 100));
        // Answered means committed: a second connection sees every event.
        let seen = Store::open(engine.store.path())
            .expect("reopened")
            .stats()
            .expect("stats");
        assert_eq!(seen.events, 200);
        assert!(seen.pending > 0, "the refund hand-off queued actions");
    }
}
