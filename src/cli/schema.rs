//! `l3map schema pull|diff --connection NAME [PATH]`: record what a live
//! instance holds in the project's `l3map.lock.json`, or report how the
//! instance has drifted from it.

use super::check::{color, load_one, relevant};
use super::fail;
use crate::check::check;
use crate::diagnostics::render_human;
use crate::schema::pull::{pull, Pulled};
use crate::schema::{Lockfile, LOCKFILE, LOCK_VERSION};
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pull,
    Diff,
}

pub fn run(path: &Path, connection: &str, mode: Mode) -> u8 {
    let p = match load_one(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let checked = check(&p.sources);
    let Some(program) = crate::ir::lower(&checked, &p.sources) else {
        err!(
            "{}",
            render_human(&relevant(&p, &checked), &p.sources, color())
        );
        return fail(format!(
            "{} has errors; fix them before pulling its schema",
            p.name()
        ));
    };
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
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let pulled = match runtime.block_on(pull(conn)) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let existing = match Lockfile::find(&p.dir) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut lock = existing.clone().unwrap_or(Lockfile {
        lock_version: LOCK_VERSION,
        ..Lockfile::default()
    });
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
