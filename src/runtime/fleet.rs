//! One mapping revision across a fleet of replicas on PostgreSQL.
//!
//! Each revision a replica loads from its files is published to the store
//! with its sources; one is active. Every event is recorded with the
//! revision that decided it, and the store refuses one decided by another
//! than the active revision ([`StoreError::RevisionMoved`]): the replica
//! then fetches the active revision, compiles it from memory, and decides
//! the event again. A follower also polls the active revision every
//! [`FOLLOW`], so an idle replica is not a revision behind when traffic
//! comes. Which files win: an operator's act (a hot reload, SIGHUP,
//! `l3map publish`) switches the fleet; a replica starting switches it only
//! to files the fleet has never seen (a rollout), never back to files it
//! moved on from (an old image restarting).
//!
//! On SQLite none of this runs: the store has no active revision.

use super::engine::{Engine, Live};
use super::store::{Bundle, Publish, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often an idle replica looks for a switch.
pub const FOLLOW: Duration = Duration::from_secs(1);

/// What a replica knows of its place in the fleet's revision.
#[derive(Default)]
pub struct Following {
    /// One load at a time: events refused together load the revision once.
    loading: tokio::sync::Mutex<()>,
    /// Why the active revision cannot be loaded here, while it cannot.
    unloadable: Mutex<Option<String>>,
}

impl Following {
    /// Why this replica cannot decide by the fleet's revision (`/readyz`).
    pub fn unloadable(&self) -> Option<String> {
        self.unloadable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, why: Option<String>) -> bool {
        let mut u = self.unloadable.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *u != why;
        *u = why;
        changed
    }
}

impl Engine {
    /// Makes the fleet's revision `active` the one events are decided by
    /// here, from its stored sources; nothing to do when it already is.
    pub async fn adopt(&self, active: &str) -> Result<(), StoreError> {
        let _one = self.fleet.loading.lock().await;
        let current = self.live();
        if current.program.revision == active {
            return Ok(());
        }
        let (store, revision) = (self.store.clone(), active.to_string());
        let compiled = tokio::task::spawn_blocking(move || {
            let bundle = store
                .bundle(&revision)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the store holds no sources for revision {revision}"))?;
            super::compile::compile_bundle(&bundle)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the compiler task failed: {e}")));
        let why = match compiled {
            Ok(p) if !super::reload::same_connections(&p, &current.program) => {
                "it changes a connection block; restart this replica to load it".to_string()
            }
            Ok(p) => {
                for link in &p.links {
                    self.metrics.link_declared(&link.describe());
                }
                self.swap(Live::new(p));
                self.fleet.set(None);
                self.report_loaded(active, None);
                tracing::info!(from = %current.program.revision, to = %active, "deciding by the fleet's mapping revision");
                return Ok(());
            }
            Err(e) => e,
        };
        let message = format!("cannot load the fleet's mapping revision {active}: {why}");
        if self.fleet.set(Some(message.clone())) {
            tracing::error!(serving = %current.program.revision, "{message}");
            self.report_loaded(&current.program.revision, Some(message.clone()));
        }
        Err(StoreError::Batch(message))
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
    /// new files.
    pub async fn publish_and_swap(&self, bundle: Bundle, live: Live) -> Result<(), StoreError> {
        let _one = self.fleet.loading.lock().await;
        self.publish(bundle, Publish::Switch).await?;
        self.swap(live);
        self.fleet.set(None);
        Ok(())
    }
}

/// At start, after the replica's own files are live: publishes them (as a
/// start does, [`Publish::IfNew`]) and loads the revision the fleet
/// decides by when that is another one.
pub async fn join(engine: &Engine, bundle: Bundle) {
    let mine = bundle.revision.clone();
    match engine.publish(bundle, Publish::IfNew).await {
        Ok(Some(active)) if active != mine => {
            tracing::warn!(files = %mine, fleet = %active, "the mapping files here are a revision the fleet has moved on from; deciding by the fleet's (a hot reload, SIGHUP or `l3map publish` switches the fleet to these files)");
            let _ = engine.adopt(&active).await;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not publish the mapping revision to the fleet; the follower tries to load the fleet's")
        }
    }
}

/// Follows the fleet's active revision until `stop` (PostgreSQL only: a
/// store without one ends this at once).
pub fn follow(engine: Arc<Engine>, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let store = engine.store.clone();
            match tokio::task::spawn_blocking(move || store.active_revision()).await {
                Ok(Ok(Some(active))) if active != engine.live().program.revision => {
                    let _ = engine.adopt(&active).await;
                }
                Ok(Ok(Some(_))) => {}
                // No fleet: nothing to follow.
                Ok(Ok(None)) if !engine.store.path().starts_with("postgres:") => return,
                // The store unreachable is reported by `/readyz`.
                _ => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW) => {}
                _ = stop.changed() => return,
            }
        }
    })
}
