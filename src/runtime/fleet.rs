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

use super::engine::Engine;
use super::store::Publish;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often an idle replica looks for a switch.
pub const FOLLOW: Duration = Duration::from_secs(1);

/// At start, after the replica's own files are live: publishes them (as a
/// start does, [`Publish::IfNew`]) and loads the revision the fleet
/// decides by when that is another one.
pub async fn join(engine: &Engine, bundle: super::store::Bundle) {
    let mine = bundle.revision.clone();
    engine.files.compiled(&mine);
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
                Ok(Ok(Some(active))) => {
                    engine.fleet.saw(&active);
                    if active != engine.live().program.revision
                        || engine.fleet.unloadable().is_some()
                    {
                        let _ = engine.adopt(&active).await;
                    }
                }
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
