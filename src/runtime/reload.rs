//! Hot reload: when a mapping file (or the schema lockfile) changes, or on
//! SIGHUP, the project is compiled again. A version that compiles replaces
//! the live one atomically; one that does not is reported with its
//! diagnostics and the previous version keeps serving.
//!
//! Connections are not reloaded: their clients, limiters and workers are
//! built at start, so a change to a connection block is refused (restart
//! to apply it) rather than half-applied.

use super::compile::compile;
use super::engine::{Engine, Live};
use crate::ir::{Connection, Program};
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Editors save in bursts (write, rename, chmod) that take a few
/// milliseconds: one recompile per burst. Short, because it is most of the
/// time from save to the new revision serving (target: p99 < 250 ms).
const DEBOUNCE: Duration = Duration::from_millis(50);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new revision is live.
    Swapped { from: String, to: String },
    /// The files compile to the revision already live.
    Unchanged,
    /// Kept the live revision; why.
    Refused(String),
}

/// The part of a connection the running clients were built from.
fn wiring(c: &Connection) -> (String, String, Vec<(String, String)>, String) {
    (
        c.name.clone(),
        format!("{:?}", c.kind),
        c.settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        format!("{:?}", c.secrets),
    )
}

fn same_connections(a: &Program, b: &Program) -> bool {
    let mut x: Vec<_> = a.connections.iter().map(wiring).collect();
    let mut y: Vec<_> = b.connections.iter().map(wiring).collect();
    x.sort();
    y.sort();
    x == y
}

/// Compiles `dir` and swaps it in when it compiles and keeps the
/// connections as they are.
pub async fn reload(dir: &Path, engine: &Engine) -> Reloaded {
    let d = dir.to_path_buf();
    let compiled = match tokio::task::spawn_blocking(move || compile(&d)).await {
        Ok(r) => r,
        Err(e) => Err(format!("the compiler task failed: {e}")),
    };
    let current = engine.live();
    let outcome = match compiled {
        Err(diagnostics) => Reloaded::Refused(format!(
            "the edited mappings do not compile; still serving revision {}:\n{diagnostics}",
            current.program.revision
        )),
        Ok(p) if p.revision == current.program.revision => Reloaded::Unchanged,
        Ok(p) if !same_connections(&p, &current.program) => Reloaded::Refused(format!(
            "a connection block changed; restart l3map to apply it (still serving revision {})",
            current.program.revision
        )),
        Ok(p) => {
            let to = p.revision.clone();
            engine.swap(Live::new(p));
            Reloaded::Swapped {
                from: current.program.revision.clone(),
                to,
            }
        }
    };
    match &outcome {
        Reloaded::Swapped { from, to } => {
            engine.metrics.reload("ok");
            tracing::info!(from = %from, to = %to, "mappings reloaded");
        }
        Reloaded::Unchanged => {}
        Reloaded::Refused(why) => {
            engine.metrics.reload("failed");
            tracing::error!("{why}");
        }
    }
    outcome
}

fn relevant(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "l3map")
        || path.file_name().is_some_and(|n| n == "l3map.lock.json")
}

/// Told of every reload's outcome (the demo prints it).
pub type OnReload = Arc<dyn Fn(&Reloaded) + Send + Sync>;

/// Watches `dir` (and SIGHUP) until `stop`, reloading on every change.
/// `on_reload` sees each outcome (the demo prints it).
pub fn spawn(
    dir: PathBuf,
    engine: Arc<Engine>,
    mut stop: watch::Receiver<bool>,
    on_reload: Option<OnReload>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let watcher_tx = tx.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |res: DebounceEventResult| {
        if let Ok(events) = res {
            if events.iter().any(|e| e.paths.iter().any(|p| relevant(p))) {
                let _ = watcher_tx.send(());
            }
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    debouncer
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        let hup_tx = tx.clone();
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if hup_tx.send(()).is_err() {
                        break;
                    }
                }
            });
        }
    }
    drop(tx);
    Ok(tokio::spawn(async move {
        // The debouncer stops watching when dropped: it lives here.
        let _debouncer = debouncer;
        loop {
            tokio::select! {
                got = rx.recv() => {
                    if got.is_none() {
                        break;
                    }
                    // A burst of saves is one reload.
                    while rx.try_recv().is_ok() {}
                    let outcome = reload(&dir, &engine).await;
                    if let Some(f) = &on_reload {
                        f(&outcome);
                    }
                }
                _ = stop.changed() => {
                    if *stop.borrow() {
                        break;
                    }
                }
            }
        }
    }))
}
