//! `l3map outbox list|retry|drop`: the outbox as ops see it. Dead letters
//! are actions that failed for good (a validation error, a missing record,
//! too many attempts); a human fixes the cause, then retries or drops them.

use super::{fail, DataFormat, OutboxAction};
use crate::runtime::store::{State, Store, StoreError};
use std::path::PathBuf;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Pending,
    Sending,
    Done,
    Dead,
}

/// Which store: `--state` (a SQLite file), else `$L3MAP_STATE`, else the
/// store of the configuration (`--config`, `$L3MAP_CONFIG` or
/// ./l3map.toml: its `[store]` PostgreSQL or its `state`), else
/// .l3map/state.db.
#[derive(clap::Args, Clone)]
pub struct Where {
    /// The SQLite state store `l3map run` uses.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The l3map.toml whose store to open (PostgreSQL with `[store]`).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn open(w: &Where) -> Result<Store, u8> {
    let mut state = w.state.clone();
    if let (Some(s), Some(_)) = (&state, &w.config) {
        let cfg = crate::runtime::config::discover(w.config.as_deref()).map_err(fail)?;
        if cfg.is_some_and(|c| c.store.is_some()) {
            return Err(fail(format!(
                "--state {} names a SQLite store, but --config names a [store] (PostgreSQL); keep one",
                s.display()
            )));
        }
    }
    // `--config` is read whenever it is named: $L3MAP_STATE beside a
    // [store] is refused there, as `run` refuses it.
    if state.is_none() && (w.config.is_some() || std::env::var_os("L3MAP_STATE").is_none()) {
        let cfg = crate::runtime::config::discover(w.config.as_deref()).map_err(fail)?;
        if let Some(cfg) = cfg {
            if cfg.store.is_some() {
                return cfg.open_store().map_err(fail);
            }
            state = Some(cfg.state);
        }
    }
    let state = crate::runtime::config::state_path(state.as_deref()).map_err(fail)?;
    let state = state.as_path();
    if !state.exists() {
        return Err(fail(format!(
            "no state store at {}; pass --state with the path `l3map run` uses",
            state.display()
        )));
    }
    Store::open(state).map_err(|e| fail(e.to_string()))
}

pub fn run(action: OutboxAction) -> u8 {
    match action {
        OutboxAction::List {
            state,
            only,
            limit,
            format,
        } => {
            let store = match open(&state) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let only = only.map(|o| match o {
                Only::Pending => State::Pending,
                Only::Sending => State::Sending,
                Only::Done => State::Done,
                Only::Dead => State::Dead,
            });
            let rows = match store.list(only, limit) {
                Ok(r) => r,
                Err(e) => return fail(e.to_string()),
            };
            if format == DataFormat::Json {
                return match serde_json::to_string_pretty(&rows) {
                    Ok(s) => {
                        outln!("{s}");
                        0
                    }
                    Err(e) => fail(e),
                };
            }
            for r in &rows {
                outln!(
                    "{:>6}  {:<8} {:<6} {:<22} {:<13} {:<34} {:<24} attempts {}{}",
                    r.id,
                    format!("{:?}", r.state).to_lowercase(),
                    r.connection,
                    r.record,
                    r.kind,
                    r.rule,
                    r.source_loc,
                    r.attempts,
                    r.last_error
                        .as_ref()
                        .map(|e| format!("\n        {e}"))
                        .unwrap_or_default()
                );
            }
            errln!("{} action(s)", rows.len());
            0
        }
        OutboxAction::Retry { state, ids } => on_dead(
            &state,
            &ids,
            Store::requeue_dead,
            "queued again; a running l3map sends them next",
        ),
        OutboxAction::Drop { state, ids, all } => {
            if ids.is_empty() && !all {
                return fail("name the dead letters to drop, or pass --all to drop every one");
            }
            on_dead(&state, &ids, Store::drop_dead, "dropped")
        }
    }
}

/// Does `op` to the dead letters `ids` (every one when none is named) of
/// the store at `state`, says what they became, and names the ids that
/// were no dead letter.
fn on_dead(
    state: &Where,
    ids: &[i64],
    op: fn(&Store, &[i64]) -> Result<usize, StoreError>,
    became: &str,
) -> u8 {
    let store = match open(state) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let missing = match not_dead(&store, ids) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    match op(&store, ids) {
        Ok(n) => {
            errln!("{n} dead letter(s) {became}");
            unknown_ids(&missing)
        }
        Err(e) => fail(e.to_string()),
    }
}

fn not_dead(store: &Store, ids: &[i64]) -> Result<Vec<i64>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let dead: std::collections::BTreeSet<i64> = store
        .list(Some(State::Dead), usize::MAX)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.id)
        .collect();
    Ok(ids.iter().copied().filter(|i| !dead.contains(i)).collect())
}

/// Exit 1 and one line when some named ids were not dead letters.
fn unknown_ids(missing: &[i64]) -> u8 {
    if missing.is_empty() {
        return 0;
    }
    let list: Vec<String> = missing.iter().map(i64::to_string).collect();
    errln!(
        "error: not a dead letter: {} (see `l3map outbox list --only dead`)",
        list.join(", ")
    );
    1
}
