//! `l3map schema pull|diff --connection NAME [PATH]`: record what a live
//! instance holds in the project's `l3map.lock.json`, or report how the
//! instance has drifted from it.

use super::check::{color, load_one, relevant};
use super::fail;
use crate::diagnostics::render_human;
use crate::schema::pull::{pull_with, Pulled};
use crate::schema::{Lockfile, LOCKFILE, LOCK_VERSION};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pull,
    Diff,
}

/// `path`: the project named on the command line; without it, the
/// configuration's `mappings` (l3map.toml found as `run` finds it), else
/// the working directory.
pub fn run(path: Option<&Path>, config: Option<&Path>, connection: &str, mode: Mode) -> u8 {
    let cfg = match crate::runtime::config::discover(config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let path: PathBuf = match (path, &cfg) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(c)) => c.mappings.clone(),
        (None, None) => PathBuf::from("."),
    };
    let over = cfg
        .as_ref()
        .and_then(|c| c.connections.get(connection).cloned())
        .unwrap_or_default();
    let p = match load_one(&path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let checked = crate::compile::check(&p.sources, None);
    let Ok(program) = crate::compile::lower(&checked, &p.sources) else {
        err!(
            "{}",
            render_human(&relevant(&p, &checked), &p.sources, color())
        );
        return fail(format!(
            "{} has errors; fix them before pulling its schema",
            p.name()
        ));
    };
    if let Some(cfg) = &cfg {
        if let Err(e) = crate::runtime::clients::check_overrides(&program, &cfg.connections) {
            return fail(e.to_string());
        }
    }
    let Some(conn) = program.connections.iter().find(|c| c.name == connection) else {
        let names: Vec<&str> = program
            .connections
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return fail(format!(
            "{} declares no connection `{connection}` (it has: {})",
            p.name(),
            names.join(", ")
        ));
    };
    // A grant kept in the runtime's store is used from there (and a
    // refresh stored there), never spent behind the runtime's back.
    let grants = match (&cfg, crate::runtime::clients::keeps_grant(conn)) {
        (Some(cfg), true) => match crate::runtime::clients::Grants::open(cfg) {
            Ok(g) => Some(g),
            Err(e) => return fail(format!("connection `{connection}`: {e}")),
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let step = Mutex::new(String::from("starting"));
    let what = format!(
        "schema {}: `{connection}`",
        if mode == Mode::Pull { "pull" } else { "diff" }
    );
    let pulled = match runtime.block_on(with_progress(
        &what,
        &step,
        pull_with(conn, &over, grants.as_ref(), &|s| {
            if let Ok(mut g) = step.lock() {
                *g = s.to_string();
            }
        }),
    )) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let existing = match Lockfile::find(&p.dir) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut lock = existing.clone().unwrap_or_default();
    // A version 1 file gains the forms of what is pulled now; the other
    // connections keep theirs unknown until pulled.
    lock.lock_version = LOCK_VERSION;
    match pulled {
        Pulled::Zendesk(z) => {
            lock.zendesk.insert(connection.to_string(), z);
        }
        Pulled::Salesforce(s) => {
            lock.salesforce.insert(connection.to_string(), s);
        }
    }
    let file = p.dir.join(LOCKFILE);
    match mode {
        Mode::Pull => {
            if let Err(e) = std::fs::write(&file, lock.to_json()) {
                return fail(format!("{}: {e}", file.display()));
            }
            errln!("wrote {} (connection `{connection}`)", file.display());
            0
        }
        Mode::Diff => {
            let old = existing.map(|l| l.to_json()).unwrap_or_default();
            let new = lock.to_json();
            if old == new {
                errln!("no drift: `{connection}` matches {}", file.display());
                return 0;
            }
            out!("{}", crate::eval::testing::line_diff(&old, &new));
            errln!(
                "drift: the instance behind `{connection}` differs from {} (- lockfile, + instance); run `l3map schema pull --connection {connection}` to record it",
                file.display()
            );
            1
        }
    }
}

/// Runs `work`, and when it takes more than 2 s says on stderr what it is
/// waiting on (`step`), again every 5 s, so a slow instance is never
/// silence.
pub(crate) async fn with_progress<T>(
    what: &str,
    step: &Mutex<String>,
    work: impl Future<Output = T>,
) -> T {
    let started = Instant::now();
    let mut work = std::pin::pin!(work);
    let mut wait = Duration::from_secs(2);
    loop {
        match tokio::time::timeout(wait, &mut work).await {
            Ok(done) => return done,
            Err(_) => {
                let now = step.lock().map(|s| s.clone()).unwrap_or_default();
                errln!("{what}: {now}... ({} s)", started.elapsed().as_secs());
                wait = Duration::from_secs(5);
            }
        }
    }
}
