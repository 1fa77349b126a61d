//! `l3map migrate [--config l3map.toml] [--check]`: brings the store's
//! schema up to date before a fleet's replicas are rolled onto a new
//! l3map (each replica also migrates an older schema at start, and
//! refuses a newer one). `--check` changes nothing and exits 1 while
//! migrations are pending, for a deploy pipeline. The same for a SQLite
//! store, which every open also brings up to date.

use super::fail;
use crate::runtime::store::postgres::PgStore;
use crate::runtime::store::sqlite::SqliteStore;
use crate::runtime::store::{postgres, sqlite, SchemaReport, StoreError};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The l3map.toml whose store to migrate (default: $L3MAP_CONFIG,
    /// else ./l3map.toml; without one, the SQLite store at .l3map/state.db).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Say where the schema is and exit 1 if migrations are pending;
    /// change nothing.
    #[arg(long)]
    check: bool,
}

pub fn run(a: Args) -> u8 {
    let cfg = match crate::runtime::config::discover(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let Some(pg) = cfg.as_ref().and_then(|c| c.store.as_ref()) else {
        let state = match crate::runtime::config::state_path(cfg.map(|c| c.state).as_deref()) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        // Nothing there is nothing to migrate: `l3map run` creates the
        // store at the current schema, where it is meant to live.
        if !state.exists() {
            outln!(
                "{}: no store yet; `l3map run` creates it at the current schema",
                state.display()
            );
            return 0;
        }
        let shown = state.display().to_string();
        let report = SqliteStore::migrate_path(&state, a.check);
        return said(&shown, report, a.check, sqlite::latest());
    };
    let target = match pg.target() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let report = PgStore::migrate_target(&target, a.check);
    said(&target.shown(), report, a.check, postgres::latest())
}

/// One line for what was found or done, and the exit code: 1 when `check`
/// finds migrations pending, 2 on a refusal.
fn said(shown: &str, report: Result<SchemaReport, StoreError>, check: bool, latest: i64) -> u8 {
    match report {
        Ok(r) if check && r.to < latest => {
            outln!(
                "{shown}: schema {} of {latest}; `l3map migrate` applies the rest",
                r.to
            );
            1
        }
        Ok(r) if r.applied.is_empty() => {
            outln!("{shown}: schema {} (up to date)", r.to);
            0
        }
        Ok(r) => {
            outln!(
                "{shown}: migrated from schema {} to {} ({})",
                r.from,
                r.to,
                r.applied.join(", ")
            );
            0
        }
        Err(e) => fail(e),
    }
}
