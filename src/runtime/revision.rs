//! What a replica of a fleet keeps about the fleet's mapping revision,
//! and how it loads one another replica published: its stored sources,
//! compiled from memory. [`super::fleet`] says when; the engine swaps.

use super::compile::{compile_bundle, same_connections};
use super::store::Store;
use crate::ir::Program;
use std::sync::Mutex;

/// What a replica knows of its place in the fleet's revision.
#[derive(Default)]
pub struct Following {
    /// One load at a time: events refused together load the revision once.
    pub(super) loading: tokio::sync::Mutex<()>,
    /// Why the active revision cannot be loaded here, while it cannot.
    unloadable: Mutex<Option<String>>,
    /// The fleet's active revision when the follower last looked.
    active: Mutex<Option<String>>,
}

impl Following {
    /// Why this replica cannot decide by the fleet's revision (`/readyz`).
    pub fn unloadable(&self) -> Option<String> {
        self.unloadable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The fleet's active revision as last seen (`/readyz`); `None` on
    /// SQLite or before the first look.
    pub fn active(&self) -> Option<String> {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn saw(&self, active: &str) {
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = Some(active.to_string());
    }

    pub(super) fn set(&self, why: Option<String>) -> bool {
        let mut u = self.unloadable.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *u != why;
        *u = why;
        changed
    }
}

/// Revision `active` from `store`, compiled, for a replica serving
/// `current`; why not, in a sentence. Blocking: call off the async
/// workers.
pub fn load(store: &Store, current: &Program, active: &str) -> Result<Program, String> {
    let bundle = store
        .bundle(active)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the store holds no sources for revision {active}"))?;
    let program = compile_bundle(&bundle)?;
    if !same_connections(&program, current) {
        return Err("it changes a connection block: restart this replica with that revision's files, or switch the fleet back with `l3map publish --force` of the files this replica runs".into());
    }
    Ok(program)
}
