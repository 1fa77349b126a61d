//! The embedded default of `l3map run`: both emulators in-process, the
//! demo event stream, and a per-action log of what it does.

use super::service::{init_logs, Options, DEMO_AGENT, DEMO_AGENT_TOKEN, DEMO_OPS, DEMO_OPS_TOKEN};
use super::signals::shutdown_signal;
use crate::connectors::Secret;
use crate::emulator::salesforce::{SalesforceEmulator, SalesforceOptions};
use crate::emulator::zendesk::{WebhookTarget, ZendeskEmulator, ZendeskOptions};
use crate::runtime::apply::Outcome;
use crate::runtime::compile::{compile_embedded, compile_with_tests, EMBEDDED_DIR};
use crate::runtime::config::LogFormat;
use crate::runtime::reload::{OnReload, Reloaded};
use crate::runtime::stack::{bind, first_salesforce, first_zendesk, start, Setup};
use crate::runtime::store::Store;
use crate::runtime::worker::{Report, ReportSink};
use crate::runtime::{clients, demo};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prints a line; a closed stdout (`| head`) must not stop the runtime.
fn say(line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

fn report_line(r: &Report) -> String {
    let (mark, what) = match &r.outcome {
        Outcome::Applied => ("ok", "applied".to_string()),
        Outcome::Settled {
            note,
            superseded: false,
            ..
        } => ("ok", format!("applied: {note}")),
        Outcome::Settled { note, .. } => ("--", note.clone()),
        Outcome::Retry { error, .. } => ("..", format!("will retry: {error}")),
        Outcome::Park { reason, .. } => ("!!", format!("parked: {reason}")),
    };
    format!(
        "  {mark:<2} {:<5} {:<22} {:<13} {:<34} {:>6} ms  {}",
        r.connection,
        r.record,
        r.kind,
        r.rule,
        r.latency.as_millis(),
        if matches!(r.outcome, Outcome::Applied) {
            r.source_loc.clone()
        } else {
            what
        }
    )
}

pub(super) async fn embedded(o: Options) -> Result<u8, String> {
    init_logs(LogFormat::Human, "warn");
    // Only when serving: the demo alone stops on SIGTERM as any program.
    let stopped: Option<Stopped> = o.serve.then(|| Box::pin(shutdown_signal()) as Stopped);
    let started = Instant::now();
    // A folder named on the command line, or the fintech desk built into
    // the binary: the embedded default runs from any directory.
    let built_in = compile_embedded()
        .map_err(|d| format!("the built-in {EMBEDDED_DIR} does not compile:\n{d}"))?;
    // The built-in desk has a demo story of its own; any other project
    // (an edited copy of the desk too) is shown with its own test blocks,
    // since turns written for one desk could only be refused by another.
    let (program, shown, tests) = match &o.mappings {
        Some(dir) => {
            if !dir.exists() {
                return Err(format!(
                    "{}: no such folder; name a folder of .l3map files, or leave it out to run the built-in {EMBEDDED_DIR}",
                    dir.display()
                ));
            }
            let (program, tests) = compile_with_tests(dir)
                .map_err(|d| format!("{} does not compile:\n{d}", dir.display()))?;
            let tests = (program.revision != built_in.revision).then_some(tests);
            (program, dir.display().to_string(), tests)
        }
        None => (built_in, format!("{EMBEDDED_DIR} (built in)"), None),
    };
    // Checked before anything starts: the demo creates Zendesk tickets.
    if !program
        .connections
        .iter()
        .any(|c| c.kind == crate::model::Kind::Zendesk)
    {
        return Err(format!(
            "{shown} declares no Zendesk connection, and the demo creates Zendesk tickets; run it with --config l3map.toml instead"
        ));
    }
    let listen = o
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let (listener, addr) = bind(listen).await?;
    // A fresh signing secret per run: the emulator signs, the runtime checks.
    let secret = Secret::new(format!(
        "demo-{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    ));
    let zd_opts = ZendeskOptions {
        webhook: Some(WebhookTarget::new(
            format!("http://{addr}/webhooks/zendesk"),
            secret.clone(),
        )),
        ..ZendeskOptions::default().with_programs(std::slice::from_ref(&program))
    };
    let (zd_run, _zd) = ZendeskEmulator::new(zd_opts)
        .start(0)
        .await
        .map_err(|e| format!("the Zendesk emulator: {e}"))?;
    let (sf_run, _sf) =
        SalesforceEmulator::new(SalesforceOptions::default().with_program(&program))
            .start(0)
            .await
            .map_err(|e| format!("the Salesforce emulator: {e}"))?;
    // One registry the console's budget page reads too.
    let limiters = Arc::new(crate::connectors::limit::Limiters::default());
    let clients = clients::for_emulators_in(
        &program,
        &zd_run.base_url(),
        &sf_run.base_url(),
        1,
        None,
        &limiters,
    )
    .map_err(|e| e.to_string())?;
    let zd_client = first_zendesk(&clients).map(|(_, c)| c);
    let sf_client = first_salesforce(&clients).map(|(_, c)| c);
    let (state, _temp) = match &o.state {
        Some(s) => (s.clone(), None),
        None => {
            let dir = std::env::temp_dir().join(format!("l3map-demo-{}", std::process::id()));
            (dir.join("state.db"), Some(TempDir(dir)))
        }
    };
    let store = Store::open(&state).map_err(|e| e.to_string())?;
    store.maintain(crate::runtime::store::Retention::default());
    let applied = Arc::new(AtomicUsize::new(0));
    let counted = applied.clone();
    let sink: ReportSink = Arc::new(move |r: &Report| {
        if matches!(r.outcome, Outcome::Applied) {
            counted.fetch_add(1, Ordering::Relaxed);
        }
        say(report_line(r));
    });
    say(format!(
        "l3map run — embedded default: {shown} (revision {})",
        &program.revision
    ));
    say(format!(
        "  Zendesk emulator {}   Salesforce emulator {}   webhooks -> http://{addr}/webhooks/zendesk",
        zd_run.base_url(),
        sf_run.base_url()
    ));
    say(format!(
        "  health http://{addr}/healthz   metrics http://{addr}/metrics   state {}",
        state.display()
    ));
    say(if addr.ip().is_loopback() {
        format!("  ops console http://{addr}/ui (with --serve; sign in with the demo ops token, docs/CONSOLE.md)")
    } else {
        format!("  ops console off: {addr} is not a loopback address and the demo's token is public; use l3map.toml's [ops.NAME]")
    });
    say(String::new());
    let running = start(Setup {
        webhook_secret: Some(secret),
        report: Some(sink),
        agents: vec![(DEMO_AGENT.to_string(), Secret::new(DEMO_AGENT_TOKEN))],
        // The demo's token is public: the console is on only where no one
        // else can reach it.
        ops: if addr.ip().is_loopback() {
            vec![crate::runtime::app::OpsUser {
                name: DEMO_OPS.to_string(),
                token: Secret::new(DEMO_OPS_TOKEN),
                actions: true,
            }]
        } else {
            Vec::new()
        },
        limiters: Some(limiters),
        ..Setup::new(program.clone(), clients, store, listener)
    })
    .await?;
    let Some(zd) = zd_client else {
        running.shutdown().await;
        return Err("the demo needs a Zendesk connection in the mappings".into());
    };
    let demo = Demo {
        program: &program,
        running: &running,
        zd,
        sf: sf_client,
        started,
        stopped,
        folder: o.mappings.as_deref(),
        tests,
    };
    // Whatever happens in the demo, the runtime is stopped in order (workers
    // drained, server closed) before the one error line is printed: a
    // failed step must not leave tasks to be cancelled mid-read.
    let outcome = demo.drive().await;
    running.shutdown().await;
    drop((zd_run, sf_run));
    outcome
}

type Stopped = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The embedded default once everything is running.
struct Demo<'a> {
    program: &'a crate::ir::Program,
    running: &'a crate::runtime::stack::Running,
    zd: crate::connectors::zendesk::ZendeskClient,
    sf: Option<crate::connectors::salesforce::SalesforceClient>,
    started: Instant,
    /// `Some` with `--serve`: armed before the port opened.
    stopped: Option<Stopped>,
    /// The project folder, when one was named (hot reload watches it).
    folder: Option<&'a std::path::Path>,
    /// The project's test blocks, whose agent turns are the demo; `None`
    /// for the built-in fintech desk, which has a story of its own.
    tests: Option<Vec<crate::ir::TestCase>>,
}

impl Demo<'_> {
    async fn drive(self) -> Result<u8, String> {
        let running = self.running;
        let started = self.started;
        let run_id = format!("{:08x}", fastrand::u32(..));
        let url = format!("http://{}", running.addr);
        let agent = demo::Agent {
            url: &url,
            token: DEMO_AGENT_TOKEN,
        };
        let fed = match &self.tests {
            None => demo::feed(self.program, agent, self.zd, self.sf, &run_id, &|l| say(l)).await?,
            Some(tests) => {
                demo::feed_tests(
                    self.program,
                    tests,
                    agent,
                    self.zd,
                    self.sf,
                    &run_id,
                    &|l| say(l),
                )
                .await?
            }
        };
        // Wait for the webhooks to arrive and the outbox to drain: quiet for
        // a second, or a minute at most.
        let mut quiet_since = Instant::now();
        let mut last = None;
        while started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let s = stats(running).await?;
            let now = (s.events, s.pending + s.sending, s.done, s.dead);
            if last != Some(now) {
                last = Some(now);
                quiet_since = Instant::now();
            }
            if s.pending + s.sending == 0 && quiet_since.elapsed() > Duration::from_secs(1) {
                break;
            }
        }
        let s = stats(running).await?;
        say(String::new());
        say(format!(
            "done in {:.1} s: {} tickets created, {} updated, {} agent turns; {} events decided, {} actions applied, {} refused, {} parked, {} still queued",
            started.elapsed().as_secs_f64(),
            fed.tickets_created,
            fed.ticket_updates,
            fed.turns,
            s.events,
            s.done,
            fed.refused.len(),
            s.dead,
            s.pending + s.sending
        ));
        let clean = s.dead == 0 && s.pending + s.sending == 0;
        if let Some(stopped) = self.stopped {
            // Only a folder on disk can be edited; the built-in desk is
            // served as it is.
            let _watcher = match self.folder {
                Some(folder) => {
                    let printed: OnReload = Arc::new(|r: &Reloaded| match r {
                        Reloaded::Swapped { from, to } => {
                            say(format!("  reloaded: revision {from} -> {to}"))
                        }
                        Reloaded::Refused(why) => say(format!("  reload refused: {why}")),
                        Reloaded::Unchanged | Reloaded::Superseded => {}
                    });
                    let w = crate::runtime::reload::spawn(
                        folder.to_path_buf(),
                        running.engine.live().program.revision.clone(),
                        running.engine.clone(),
                        running.stop.subscribe(),
                        Some(printed),
                        None,
                    )?;
                    say(format!(
                        "serving until Ctrl-C (the emulators too); edit {} to see it reload",
                        folder.display()
                    ));
                    Some(w)
                }
                None => {
                    say(format!(
                        "serving until Ctrl-C (the emulators too); the built-in mappings cannot be edited: name a folder (l3map run {EMBEDDED_DIR} --serve in a checkout) to see hot reload"
                    ));
                    None
                }
            };
            stopped.await;
        }
        Ok(if clean { 0 } else { 1 })
    }
}

async fn stats(
    running: &crate::runtime::stack::Running,
) -> Result<crate::runtime::store::Stats, String> {
    let store = running.engine.store.clone();
    tokio::task::spawn_blocking(move || store.stats())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// The demo's state folder, removed when the demo ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
