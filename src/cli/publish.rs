//! `l3map publish [--config l3map.toml] [DIR]`: switches a fleet of
//! replicas (a PostgreSQL `[store]`) to the mappings in DIR (default: the
//! configuration's `mappings`), compiled and checked here first, and waits
//! until the live replicas decide by them. The deploy step for mappings
//! that does not restart anything; a replica's hot reload and SIGHUP do the
//! same from its own folder.

use super::fail;
use crate::runtime::store::{FleetStatus, Publish};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The folder to publish (default: `mappings` of the l3map.toml).
    dir: Option<PathBuf>,
    /// The l3map.toml of the fleet (default: $L3MAP_CONFIG, else
    /// ./l3map.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// How long to wait for the replicas to load it (seconds; 0: do not
    /// wait).
    #[arg(long, default_value_t = 15)]
    wait: u64,
    /// Publish a revision whose connection blocks differ from the active
    /// one's: replicas that cannot load it stay unready until restarted
    /// with these files (a rollout's rollback).
    #[arg(long)]
    force: bool,
}

pub fn run(a: Args) -> u8 {
    let cfg = match crate::runtime::config::discover(a.config.as_deref()) {
        Ok(Some(c)) if c.store.is_some() => c,
        Ok(_) => {
            return fail(
                "publish switches a fleet on a PostgreSQL [store] (l3map.toml); a single `l3map run` reloads its mappings folder by itself when a file is saved or on SIGHUP",
            )
        }
        Err(e) => return fail(e),
    };
    let dir = a.dir.unwrap_or_else(|| cfg.mappings.clone());
    let (bundle, program) = match crate::runtime::compile::load_bundle(&dir) {
        Ok(b) => b,
        Err(d) => {
            return fail(format!(
                "{} does not compile; nothing was published:\n{d}",
                dir.display()
            ))
        }
    };
    let store = match cfg.open_store() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // Replicas cannot swap connections live: every one would stop
    // deciding. A connection change is rolled out by restarting them.
    let active = store
        .active_revision()
        .and_then(|a| a.map_or(Ok(None), |a| store.bundle(&a)));
    match active.map(|b| b.map(|b| crate::runtime::compile::compile_bundle(&b))) {
        Ok(Some(Ok(p))) if !a.force && !crate::runtime::compile::same_connections(&program, &p) => {
            return fail(format!(
                "{} changes a connection block of revision {}, which running replicas cannot load: restart the replicas with these files, or publish with --force and then restart each replica that stays unready",
                dir.display(),
                p.revision
            ))
        }
        Ok(Some(Err(e))) => {
            errln!("warning: the fleet's active revision does not compile here ({e}); publishing anyway")
        }
        Err(e) => return fail(e),
        _ => {}
    }
    let revision = bundle.revision.clone();
    if let Err(e) = store.publish(&bundle, Publish::Switch, "l3map publish") {
        return fail(e);
    }
    outln!("published revision {revision} from {}", dir.display());
    if a.wait == 0 {
        return 0;
    }
    let stale = super::status::stale_ms(Some(&cfg));
    let deadline = Instant::now() + Duration::from_secs(a.wait);
    loop {
        let st = match store.fleet_status() {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        // Another publish (or a replica's save) switched the fleet since:
        // nothing will decide by this revision, whatever the replicas do.
        if let Some(a) = st
            .active_revision
            .as_ref()
            .filter(|a| a.revision != revision)
        {
            errln!(
                "revision {revision} is no longer the fleet's: {} switched it to {} since",
                if a.published_by.is_empty() {
                    "a replica"
                } else {
                    &a.published_by
                },
                a.revision
            );
            return 1;
        }
        let live: Vec<_> = st
            .replicas
            .iter()
            .filter(|r| r.heartbeat_age_ms <= stale)
            .collect();
        let on = live
            .iter()
            .filter(|r| r.revision.as_deref() == Some(&revision))
            .count();
        if on == live.len() || Instant::now() >= deadline {
            outln!("{on} of {} live replicas decide by it", live.len());
            return report(&st, &revision, stale, on < live.len());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Names each live replica not on `revision`, with why; exit 1 if any.
fn report(st: &FleetStatus, revision: &str, stale: i64, behind: bool) -> u8 {
    if !behind {
        return 0;
    }
    for r in st
        .replicas
        .iter()
        .filter(|r| r.heartbeat_age_ms <= stale)
        .filter(|r| r.revision.as_deref() != Some(revision))
    {
        outln!(
            "  {}  still on {}{}",
            r.id,
            r.revision.as_deref().unwrap_or("-"),
            r.load_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    1
}
