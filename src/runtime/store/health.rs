//! Whether the store takes writes: what `/healthz` answers on.
//!
//! A write is any transaction that changes rows: accepting events, claiming
//! or settling actions, moving a cursor, retention, the probe. When one
//! fails (a full disk, a file size limit, an I/O error, a lock held by
//! another process past the busy timeout) the store is *unwritable* until a
//! later one succeeds. A transaction that changed nothing (an idle worker
//! finding nothing to claim) proves nothing either way, so it does not clear
//! a failure; the maintenance thread probes with a one-row write instead, so
//! recovery shows without waiting for traffic.

use super::error::StoreError;
use super::types::now_ms;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The write that failed last, while no write has succeeded since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteFailure {
    /// When the first write of this run of failures failed (ms since 1970).
    pub since_ms: i64,
    /// The backend's message for the latest failure (no data, no credentials).
    pub error: String,
}

/// Every write's outcome, kept by the backend that wrote (see the module
/// doc); the [`Store`](super::Store) handle reads it.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failure: Mutex<Option<WriteFailure>>,
    failures: AtomicU64,
    /// Successful writes since start: a stats snapshot taken before the
    /// latest one is stale.
    writes: AtomicU64,
}

impl WriteHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<WriteFailure>> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current(&self) -> Option<WriteFailure> {
        self.lock().clone()
    }

    /// Successful writes (that changed rows) since start.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Acquire)
    }

    /// Failed writes since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Records a write's outcome; `changed`: it changed rows.
    pub fn record<T>(&self, result: &Result<T, StoreError>, changed: bool) {
        match result {
            Ok(_) if changed => {
                self.writes.fetch_add(1, Ordering::AcqRel);
                self.succeeded();
            }
            Ok(_) => {}
            // Refused by the store on purpose, which took the write.
            Err(StoreError::RevisionMoved { .. }) => {}
            Err(e) => self.failed(e),
        }
    }

    fn succeeded(&self) {
        let mut f = self.lock();
        if let Some(was) = f.take() {
            tracing::info!(
                failing_for_ms = now_ms() - was.since_ms,
                "the state store takes writes again"
            );
        }
    }

    fn failed(&self, e: &StoreError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        // The backend's own message, without the "state store:" prefix.
        let error = match e {
            StoreError::Backend(message) => message.clone(),
            other => other.to_string(),
        };
        let mut f = self.lock();
        match f.as_mut() {
            Some(was) => was.error = error,
            None => {
                tracing::error!(%error, "the state store cannot be written; /healthz answers 503 until a write succeeds");
                *f = Some(WriteFailure {
                    since_ms: now_ms(),
                    error,
                });
            }
        }
    }
}
