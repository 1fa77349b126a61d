//! Hot reload: when a mapping file (or the schema lockfile) changes, or on
//! SIGHUP, the project is compiled again. A version that compiles replaces
//! the live one atomically; one that does not is reported with its
//! diagnostics and the previous version keeps serving.
//!
//! Only what a save does wakes it: a relevant file written, or any path
//! in the folder created, renamed or removed (a relevant file may be a
//! symlink through a swapped directory link). Opening or reading a file
//! (which the compiler itself does, and so does any editor, indexer or
//! backup tool) is not a change; reacting to it made every compile trigger
//! the next.
//!
//! A save is believed only once it has settled (see [`settled`]): the
//! bytes compiled are a snapshot of the files that stayed the same over a
//! quiet period, no relevant file is still open after a write (where the
//! platform reports closes), a file that went from text to missing, empty
//! or less than half its length must stay so for a longer hold, and a
//! compile whose files changed under it is thrown away. A snapshot byte-identical to the last one compiled is not
//! compiled again.
//!
//! Connections are not reloaded: their clients, limiters and workers are
//! built at start, so a change to a connection block is refused (restart
//! to apply it) rather than half-applied.

use super::compile::{load_bundle, same_connections};
use super::engine::{Engine, Live};
use super::files::first_error;
use super::reloads::{self, Outcome};
use super::snapshot::relevant;
pub use super::snapshot::Snapshot;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long the files must go without a change event before they are read:
/// an editor's save is a burst of events a few milliseconds apart
/// (truncate, write, close; or write a temporary file and rename it).
pub const QUIET: Duration = Duration::from_millis(150);

/// How long a file that had text and is now gone, empty or less than half
/// as long must stay so (with no further change) before it is believed: an
/// editor that truncates and then writes (maybe in chunks), or removes and
/// then recreates, is in the middle of a save, and an empty
/// `escalations.l3map` compiles to "hand nothing off".
pub const HOLD: Duration = Duration::from_secs(2);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new revision is live.
    Swapped { from: String, to: String },
    /// The files compile to the revision already live.
    Unchanged,
    /// Kept the live revision; why.
    Refused(String),
    /// The files changed while they were compiled: nothing was swapped,
    /// and the newer files are compiled once they settle.
    Superseded,
}

/// The files were refused and are now served again: said once.
fn compiles_again(engine: &Engine, revision: &str, swapped: bool) {
    engine.report_loaded(revision, None);
    if let Some(was) = engine.files.cleared() {
        let refused_for_ms = super::store::now_ms() - was.since_ms;
        if swapped {
            tracing::info!(revision = %revision, refused_for_ms, "the mapping files on disk compile again");
        } else {
            tracing::info!(
                revision = %revision,
                refused_for_ms,
                "the mapping files on disk compile again, to the revision already served: nothing to reload"
            );
        }
    }
}

/// Compiles `dir` and swaps it in when it compiles and keeps the
/// connections as they are.
pub async fn reload(dir: &Path, engine: &Engine) -> Reloaded {
    reload_exactly(dir, engine, None, "reload").await
}

/// [`reload`], swapping only when the files compiled were `expected`
/// (read again after the compile): a save that landed during the compile
/// is [`Reloaded::Superseded`], never half-seen.
async fn reload_exactly(
    dir: &Path,
    engine: &Engine,
    expected: Option<&Snapshot>,
    cause: &'static str,
) -> Reloaded {
    let d = dir.to_path_buf();
    engine.metrics.reload_compiled();
    let compiled = match tokio::task::spawn_blocking(move || {
        let compiled = load_bundle(&d);
        (compiled, Snapshot::read(&d))
    })
    .await
    {
        Ok((_, after)) if expected.is_some_and(|e| *e != after) => return Reloaded::Superseded,
        Ok((r, _)) => r,
        Err(e) => Err(format!("the compiler task failed: {e}")),
    };
    let current = engine.live();
    let mut error = None;
    // The files of a revision that goes live, for the console's diff.
    let mut sources = None;
    if let Ok((_, p)) = &compiled {
        engine.files.compiled(&p.revision);
    }
    let outcome = match compiled {
        Err(diagnostics) => {
            // Named from the project folder: `/healthz` is unauthenticated
            // and has no use for where the folder is.
            let prefix = format!("{}{}", dir.display(), std::path::MAIN_SEPARATOR);
            error = Some(first_error(&diagnostics).replace(&prefix, ""));
            Reloaded::Refused(format!(
                "the edited mappings do not compile; still serving revision {}:\n{diagnostics}",
                current.program.revision
            ))
        }
        // The files this replica serves, while the fleet is on a revision
        // it cannot load: an operator's save or SIGHUP puts them forward.
        Ok((bundle, p))
            if p.revision == current.program.revision && engine.fleet.unloadable().is_some() =>
        {
            match engine.publish_and_swap(bundle, Live::new(p)).await {
                Ok(()) => Reloaded::Unchanged,
                Err(e) => Reloaded::Refused(format!(
                    "revision {} could not be published to the fleet ({e})",
                    current.program.revision
                )),
            }
        }
        Ok((_, p)) if p.revision == current.program.revision => Reloaded::Unchanged,
        Ok((_, p)) if !same_connections(&p, &current.program) => {
            error = Some("a connection block changed; restart l3map to apply it".to_string());
            Reloaded::Refused(format!(
                "a connection block changed; restart l3map to apply it (still serving revision {})",
                current.program.revision
            ))
        }
        Ok((bundle, p)) => {
            let to = p.revision.clone();
            sources = Some(bundle.clone());
            for link in &p.links {
                engine.metrics.link_declared(&link.describe());
            }
            // A fleet switches with this replica (an operator's edit).
            match engine.publish_and_swap(bundle, Live::new(p)).await {
                Ok(()) => Reloaded::Swapped {
                    from: current.program.revision.clone(),
                    to,
                },
                Err(e) => {
                    error = Some(format!(
                        "revision {to} could not be published to the fleet: {e}"
                    ));
                    Reloaded::Refused(format!(
                        "revision {to} could not be published to the fleet ({e}); still serving revision {}; save again or send SIGHUP once the store answers",
                        current.program.revision
                    ))
                }
            }
        }
    };
    match &outcome {
        Reloaded::Swapped { from, to } => {
            engine.metrics.reload("ok");
            tracing::info!(from = %from, to = %to, "mappings reloaded");
            reloads::record(&engine.store, to, cause, Outcome::Live(sources.as_ref()));
            compiles_again(engine, to, true);
        }
        Reloaded::Unchanged => compiles_again(engine, &current.program.revision, false),
        Reloaded::Superseded => {}
        Reloaded::Refused(why) => {
            engine.metrics.reload("failed");
            tracing::error!("{why}");
            let error = error.unwrap_or_else(|| first_error(why));
            let prefix = format!("{}{}", dir.display(), std::path::MAIN_SEPARATOR);
            let tried = revision_on_disk(dir).unwrap_or_else(|| "(unreadable)".into());
            reloads::record(
                &engine.store,
                &tried,
                cause,
                Outcome::Refused(&why.replace(&prefix, "")),
            );
            engine.report_loaded(&current.program.revision, Some(error.clone()));
            engine.files.refused(error);
        }
    }
    outcome
}

/// The longest a relevant file that was written and not yet closed holds
/// the compile back, counted from the last change event: a writer that
/// stalls (or a backend that dropped the close) must not stop reloads for
/// good. Writing again restarts it.
pub const OPEN_CAP: Duration = Duration::from_secs(10);

/// Whether the watcher reports a file's close after writing: inotify does
/// (`IN_CLOSE_WRITE`, see inotify(7)); macOS FSEvents, kqueue and Windows
/// do not, so there only the quiet and hold rules apply.
const REPORTS_CLOSE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// What a watcher event says about the files.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Bytes of this relevant file were written (or it was truncated):
    /// it is open until its close is seen.
    Written(PathBuf),
    /// This relevant file was closed after writing.
    Closed(PathBuf),
    /// This path is gone (removed or renamed away): nothing more to wait
    /// for from it.
    Gone(PathBuf),
    /// Something else that may change what compiles.
    Changed,
}

/// What a watcher event means for the files, `None` when nothing a
/// compile reads can have changed.
///
/// On Linux a read is `Access(Open)` then `Access(Close(Read))`, a
/// `chmod` is `Modify(Metadata)`: neither changes what compiles. Writes
/// and closes count for relevant files only. A create, remove or rename
/// of ANY path counts: a relevant file may be a symlink through a
/// directory link that was swapped (the Kubernetes ConfigMap pattern
/// renames `..data_tmp` over `..data`, and no `.l3map` path is named);
/// the bytes check after settling makes an unrelated one compile nothing.
fn seen(e: &notify::Event) -> Vec<Seen> {
    // The kernel dropped events: anything may have changed.
    if e.need_rescan() {
        return vec![Seen::Changed];
    }
    let relevant_paths = || e.paths.iter().filter(|p| relevant(p)).cloned();
    match e.kind {
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            vec![Seen::Changed]
        }
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) => {
            let mut v: Vec<Seen> = e.paths.iter().cloned().map(Seen::Gone).collect();
            v.push(Seen::Changed);
            v
        }
        EventKind::Modify(ModifyKind::Data(_)) => relevant_paths().map(Seen::Written).collect(),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            relevant_paths().map(Seen::Closed).collect()
        }
        EventKind::Any | EventKind::Modify(ModifyKind::Any) => {
            relevant_paths().take(1).map(|_| Seen::Changed).collect()
        }
        _ => Vec::new(),
    }
}

/// Told of every reload's outcome (the demo prints it).
pub type OnReload = Arc<dyn Fn(&Reloaded) + Send + Sync>;

#[derive(Debug, Clone, PartialEq)]
enum Wake {
    /// The watcher saw something that may change the files.
    Change(Seen),
    /// SIGHUP: the operator asks for a compile.
    Hup,
}

/// What came first while waiting.
enum Next {
    Wake(Wake),
    /// Nothing within the time given.
    Quiet,
    Stop,
}

/// The watcher's and the signal's wake-ups, and the relevant files
/// written but not yet closed (what an unfinished save looks like).
struct Wakes {
    rx: mpsc::UnboundedReceiver<Wake>,
    stop: watch::Receiver<bool>,
    open: BTreeSet<PathBuf>,
}

impl Wakes {
    async fn next(&mut self, within: Option<Duration>) -> Next {
        let timer = async {
            match within {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timer);
        loop {
            tokio::select! {
                got = self.rx.recv() => {
                    let Some(w) = got else { return Next::Stop };
                    if let Wake::Change(s) = &w {
                        self.track(s);
                    }
                    return Next::Wake(w);
                }
                changed = self.stop.changed() => {
                    // A dropped sender is a stop too (else this would spin).
                    if changed.is_err() || *self.stop.borrow() {
                        return Next::Stop;
                    }
                }
                _ = &mut timer => return Next::Quiet,
            }
        }
    }

    fn track(&mut self, s: &Seen) {
        if !REPORTS_CLOSE {
            return;
        }
        match s {
            Seen::Written(p) => {
                self.open.insert(p.clone());
            }
            Seen::Closed(p) | Seen::Gone(p) => {
                self.open.remove(p);
            }
            Seen::Changed => {}
        }
    }
}

/// Waits until the files have settled after a wake-up; returns their
/// snapshot, whether SIGHUP asked for the compile, or `None` to stop.
///
/// The rule: no change event for [`QUIET`]; no relevant file written and
/// not yet closed (where the platform reports closes), waiting at most
/// [`OPEN_CAP`] without an event for a close; and when a file that had
/// text in the `live` snapshot is gone, empty or less than half as long,
/// no change event for [`HOLD`] and the same bytes before and after it.
/// Any event during a wait starts the wait again.
///
/// `hold`: wait as for a cut file whatever the files look like (the files
/// changed while l3map was starting, and what they were compiled from is
/// not known, so a truncated save cannot be told from a finished one).
async fn settled(
    dir: &Path,
    live: &Snapshot,
    mut hup: bool,
    w: &mut Wakes,
    hold: bool,
) -> Option<(Snapshot, bool)> {
    let mut told_open = false;
    loop {
        match w.next(Some(QUIET)).await {
            Next::Stop => return None,
            Next::Wake(k) => {
                hup |= k == Wake::Hup;
                continue;
            }
            Next::Quiet => {}
        }
        if !w.open.is_empty() {
            if !told_open {
                tracing::info!(
                    files = ?super::logs::LogJson(&w.open),
                    "a mapping file is being written and not yet closed: waiting for its close before compiling"
                );
                told_open = true;
            }
            match w.next(Some(OPEN_CAP - QUIET)).await {
                Next::Stop => return None,
                Next::Wake(k) => {
                    hup |= k == Wake::Hup;
                    continue;
                }
                Next::Quiet => {
                    tracing::warn!(
                        files = ?super::logs::LogJson(&w.open),
                        cap_s = OPEN_CAP.as_secs(),
                        "a mapping file written and never closed had no change for the cap: believing it as it is"
                    );
                    w.open.clear();
                }
            }
        }
        let snap = read(dir).await;
        let cut = snap.cut_since(live);
        if cut.is_empty() && !hold {
            return Some((snap, hup));
        }
        if cut.is_empty() {
            tracing::info!(
                hold_ms = HOLD.as_millis() as u64,
                "the mapping files changed while l3map was starting: waiting for the save to finish before compiling"
            );
        } else {
            tracing::info!(
                files = ?super::logs::LogJson(&cut),
                hold_ms = HOLD.as_millis() as u64,
                "a mapping file is gone, empty or cut by more than half: waiting for the save to finish before compiling"
            );
        }
        match w.next(Some(HOLD)).await {
            Next::Stop => return None,
            Next::Wake(k) => hup |= k == Wake::Hup,
            Next::Quiet if read(dir).await == snap => return Some((snap, hup)),
            Next::Quiet => {}
        }
    }
}

/// The revision the `.l3map` files and the lockfile under `dir` would
/// compile to (their content hash: no compile), `None` when they cannot be
/// read.
fn revision_on_disk(dir: &Path) -> Option<String> {
    let projects = crate::project::load(&[dir.to_path_buf()]).ok()?;
    let [project] = projects.as_slice() else {
        return None;
    };
    let lock = crate::schema::Lockfile::find(dir).ok()?;
    Some(crate::ir::lower_revision_with_lock(
        &project.sources,
        lock.as_ref()
            .map(crate::schema::Lockfile::to_json)
            .as_deref(),
    ))
}

async fn read(dir: &Path) -> Snapshot {
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || Snapshot::read(&d))
        .await
        .unwrap_or_default()
}

/// SIGHUP, heard from the moment this was made. `run` makes it before its
/// port opens and hands it to [`spawn`]: a SIGHUP sent once `/healthz`
/// answers but before the watcher starts is then a reload, not lost.
pub struct Hangup(#[cfg(unix)] tokio::signal::unix::Signal);

impl Hangup {
    /// Listens for SIGHUP (which also keeps its default action, killing
    /// the process, from happening); `None` where there is no SIGHUP.
    pub fn listen() -> Option<Hangup> {
        #[cfg(unix)]
        {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .ok()
                .map(Hangup)
        }
        #[cfg(not(unix))]
        None
    }
}

/// Watches `dir` (and SIGHUP: `hangup`, or one made now) until `stop`,
/// reloading on every change. `on_reload` sees each outcome (the demo
/// prints it).
pub fn spawn(
    dir: PathBuf,
    started: String,
    engine: Arc<Engine>,
    stop: watch::Receiver<bool>,
    on_reload: Option<OnReload>,
    hangup: Option<Hangup>,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let (tx, rx) = mpsc::unbounded_channel::<Wake>();
    let watcher_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        match res {
            Ok(e) => {
                for s in seen(&e) {
                    let _ = watcher_tx.send(Wake::Change(s));
                }
            }
            // The watcher lost track: look at the files again.
            Err(_) => {
                let _ = watcher_tx.send(Wake::Change(Seen::Changed));
            }
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        let hup_tx = tx.clone();
        if let Some(Hangup(mut hup)) = hangup.or_else(Hangup::listen) {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if hup_tx.send(Wake::Hup).is_err() {
                        break;
                    }
                }
            });
        }
    }
    #[cfg(not(unix))]
    drop(hangup);
    // The files the live revision was compiled from (at start, a moment
    // ago), and the last files compiled, live or refused.
    let mut live = Snapshot::read(&dir);
    // The runtime serves before this watcher exists: a save in between
    // would raise no event, and its bytes would be taken for the live
    // ones. When the sources on disk are not the live revision, nothing is
    // known about them (a save cut short looks like any other): compile
    // once they have held still as long as a cut file must.
    let mut start_hold = false;
    // `started`: the files' revision at start (a fleet's replica may
    // decide by another, which its files need not be).
    if revision_on_disk(&dir).is_some_and(|r| r != started) {
        live = Snapshot::default();
        start_hold = true;
        let _ = tx.send(Wake::Change(Seen::Changed));
    }
    drop(tx);
    let mut compiled = live.clone();
    Ok(tokio::spawn(async move {
        // The watcher stops watching when dropped: it lives here.
        let _watcher = watcher;
        let mut w = Wakes {
            rx,
            stop,
            open: BTreeSet::new(),
        };
        loop {
            let hup = match w.next(None).await {
                Next::Wake(w) => w == Wake::Hup,
                Next::Quiet | Next::Stop => break,
            };
            let mut hup = hup;
            let outcome = loop {
                let hold = std::mem::take(&mut start_hold);
                let Some((snap, asked)) = settled(&dir, &live, hup, &mut w, hold).await else {
                    return;
                };
                hup = asked;
                // Same bytes as last compiled: nothing to do, unless the
                // operator asked.
                if snap == compiled && !hup {
                    break None;
                }
                // The bytes the live revision was compiled from (a broken
                // edit undone): nothing to compile, but the files are no
                // longer refused.
                if snap == live && !hup {
                    compiled = snap;
                    compiles_again(&engine, &engine.live().program.revision, false);
                    break Some(Reloaded::Unchanged);
                }
                let cause = if hup { "sighup" } else { "save" };
                let outcome = reload_exactly(&dir, &engine, Some(&snap), cause).await;
                if outcome == Reloaded::Superseded {
                    continue;
                }
                compiled = snap.clone();
                if matches!(outcome, Reloaded::Swapped { .. } | Reloaded::Unchanged) {
                    live = snap;
                }
                break Some(outcome);
            };
            if let (Some(outcome), Some(f)) = (outcome, &on_reload) {
                f(&outcome);
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind};

    fn ev(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn reads_are_no_change_writes_and_closes_of_relevant_files_are() {
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(seen(&ev(open, "p/a.l3map")).is_empty());
        assert!(seen(&ev(read, "p/a.l3map")).is_empty());
        let data = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(
            seen(&ev(data, "p/a.l3map")),
            vec![Seen::Written("p/a.l3map".into())]
        );
        assert_eq!(
            seen(&ev(close, "p/a.l3map")),
            vec![Seen::Closed("p/a.l3map".into())]
        );
        // Writing an unrelated file (the store, a log) is nothing.
        assert!(seen(&ev(data, "p/state.db-wal")).is_empty());
    }

    #[test]
    fn a_refusal_is_summed_up_in_one_line_naming_the_place() {
        let dir = std::env::temp_dir().join(format!("l3map-first-error-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            let text = text.replace("-> closed", "-> closd ");
            std::fs::write(dir.join(p.file_name().unwrap()), text).unwrap();
        }
        let rendered = super::super::compile::compile(&dir).expect_err("a broken project");
        let line = first_error(&rendered);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("statuses.l3map:"), "{line}");
        assert!(line.contains("unknown status `closd`"), "{line}");
        assert!(line.contains("(help: did you mean `closed`?)"), "{line}");
        assert_eq!(first_error("cannot read x: gone\n"), "cannot read x: gone");
    }

    #[test]
    fn any_create_remove_or_rename_is_a_change() {
        let link = ev(EventKind::Create(CreateKind::File), "p/..data_tmp");
        assert_eq!(seen(&link), vec![Seen::Changed]);
        let gone = ev(EventKind::Remove(RemoveKind::Folder), "p/..v1");
        assert_eq!(
            seen(&gone),
            vec![Seen::Gone("p/..v1".into()), Seen::Changed]
        );
        let mv = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path("p/..data_tmp".into())
            .add_path("p/..data".into());
        assert_eq!(seen(&mv), vec![Seen::Changed]);
    }
}
