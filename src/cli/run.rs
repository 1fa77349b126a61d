//! `l3map run`: the runtime. With `--config l3map.toml` it serves real
//! Zendesk and Salesforce instances; without, it runs the embedded
//! default: both emulators in-process, the demo event stream, and a
//! per-action log of what it does.

use super::fail;
use super::signals::{shutdown_signal, survive_file_size_limit};
use crate::connectors::Secret;
use crate::emulator::salesforce::{SalesforceEmulator, SalesforceOptions};
use crate::emulator::zendesk::{WebhookTarget, ZendeskEmulator, ZendeskOptions};
use crate::runtime::apply::{Client, Outcome};
use crate::runtime::compile::{compile_embedded, compile_with_tests, load_bundle, EMBEDDED_DIR};
use crate::runtime::config::{Config, LogFormat};
use crate::runtime::reload::{OnReload, Reloaded};
use crate::runtime::stack::{bind, first_salesforce, first_zendesk, start, Setup};
use crate::runtime::store::Store;
use crate::runtime::worker::{Report, ReportSink};
use crate::runtime::{clients, demo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Options {
    /// The project folder (default: the config's `mappings`, or the
    /// fintech desk built into the binary for the embedded default).
    pub mappings: Option<PathBuf>,
    /// l3map.toml: listen address, webhook secret, agents, state file,
    /// per-connection overrides (default: $L3MAP_CONFIG, else
    /// ./l3map.toml when present; none: the embedded default).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen here (default 127.0.0.1:8780; the demo picks a free port).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// The state store (SQLite) to use.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Embedded default: keep serving after the demo stream.
    #[arg(long)]
    pub serve: bool,
}

/// The embedded default's agent and its token (local only, like the
/// emulators' development credentials).
pub const DEMO_AGENT: &str = "demo-agent";
pub const DEMO_AGENT_TOKEN: &str = "l3map-demo-agent-token";

pub fn run(o: Options) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        survive_file_size_limit();
        // One configuration story (docs/RUNTIME.md): --config, else
        // $L3MAP_CONFIG, else ./l3map.toml; none of them is the embedded
        // default.
        match crate::runtime::config::discover(o.config.as_deref()) {
            Err(e) => Err(e.to_string()),
            Ok(Some(cfg)) => production(cfg, o).await,
            Ok(None) => embedded(o).await,
        }
    });
    // Everything was stopped in order above; a name lookup still running
    // in a blocking thread (the start-up reachability check) must not hold
    // the exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(code) => code,
        Err(message) => fail(message),
    }
}

fn init_logs(format: LogFormat, level: &str) {
    crate::runtime::logs::init(format, level);
}

async fn production(mut cfg: Config, o: Options) -> Result<u8, String> {
    let stopped = shutdown_signal();
    // Before the port opens: a SIGHUP from then on is a reload.
    let hangup = crate::runtime::reload::Hangup::listen();
    if let Some(m) = o.mappings {
        cfg.mappings = m;
    }
    if let Some(l) = o.listen {
        cfg.server.listen = l;
    }
    if let Some(s) = o.state {
        // A replica on a store of its own would leave the fleet silently
        // and send what the fleet sends too.
        if cfg.store.is_some() {
            return Err(format!(
                "--state {} names a SQLite store, but the configuration has [store] (PostgreSQL, shared by the fleet); drop --state, or remove [store]",
                s.display()
            ));
        }
        cfg.state = s;
    }
    init_logs(cfg.log.format, &cfg.log.level);
    // Read once: what is compiled is what a fleet is given.
    let (bundle, program) = load_bundle(&cfg.mappings).map_err(|d| {
        format!(
            "{} does not compile; fix it and start again:\n{d}",
            cfg.mappings.display()
        )
    })?;
    // Every credential at once: one start names every missing variable.
    let webhook =
        crate::runtime::config::check_credentials(&cfg, &program).map_err(|e| e.to_string())?;
    // Refused before the port opens: a grant the key cannot seal.
    let key = super::sealing::key_for(&cfg, &program)?;
    let webhook_secret = match webhook {
        Some((secret, from)) => {
            tracing::info!(from = %from.from, "webhook signatures are checked with this secret");
            for loser in &from.overridden {
                tracing::warn!(
                    ignored = %loser,
                    used = %from.from,
                    "two places name a webhook secret; the first wins (docs/RUNTIME.md, \"Which webhook secret wins\")"
                );
            }
            Some(secret)
        }
        None => {
            if std::env::var_os(crate::runtime::config::WEBHOOK_SECRET_VAR).is_some() {
                tracing::warn!(
                    "$L3MAP_WEBHOOK_SECRET is set, but webhooks are off: it only replaces a secret; add [webhook] to l3map.toml or webhook_secret to the Zendesk connection to accept webhooks"
                );
            }
            None
        }
    };
    let mut agents = Vec::new();
    for (name, a) in &cfg.agents {
        agents.push((name.clone(), a.token.resolve().map_err(|e| e.to_string())?));
    }
    // The port first: a port in use stops the start before the store is
    // created or opened.
    let (listener, _) = bind(cfg.server.listen).await?;
    let store = std::sync::Arc::new(cfg.open_store_migrating()?);
    store.maintain(cfg.retention);
    // OAuth grants are kept in the same store: in a SQLite file on a
    // handle of their own, in PostgreSQL on the same pool (a second one
    // would be a second set of connections).
    let metrics = crate::runtime::metrics::Metrics::new();
    let vault_store = if cfg.store.is_some() {
        store.clone()
    } else {
        std::sync::Arc::new(cfg.open_store()?)
    };
    let grants = match key {
        Some(key) => Some(clients::Grants {
            vault: crate::runtime::seal::Vault::new(vault_store, key),
            margin: cfg.credentials.refresh_margin,
            metrics: Some(metrics.clone()),
        }),
        None => None,
    };
    // A fleet's replicas share each token's budget through the store.
    let limiters = match store.shared_budget() {
        Some(shared) => crate::connectors::limit::Limiters::with_shared(shared),
        None => crate::connectors::limit::Limiters::default(),
    };
    let clients = clients::from_config_kept(&program, &cfg.connections, &limiters, grants.as_ref())
        .map_err(|e| e.to_string())?;
    let objects: HashMap<String, Vec<String>> = program
        .connections
        .iter()
        .map(|c| (c.name.clone(), c.objects.clone()))
        .collect();
    let pollers = clients.clone();
    let pollers_all = clients.clone();
    let running = start(Setup {
        webhook_secret,
        agents,
        metrics,
        ..Setup::new(program, clients, store, listener).tuned(&cfg)
    })
    .await?;
    // Not a reason to refuse the start (an outage is waited out, the
    // outbox keeps the actions), but said at once: a mistyped subdomain
    // should not first show up as retries minutes later.
    for c in &running.engine.live().program.connections {
        let o = cfg.connections.get(&c.name).cloned().unwrap_or_default();
        if let Some(url) = clients::endpoint(c, &o) {
            let name = c.name.clone();
            tokio::spawn(async move {
                let within = crate::runtime::reach::CONNECT_TIMEOUT;
                if let Err(e) = crate::runtime::reach::reach(&url, within).await {
                    tracing::warn!(
                        connection = %name,
                        "{e}; its actions wait in the outbox until it answers"
                    );
                }
            });
        }
    }
    let mut polling = Vec::new();
    for (name, client) in pollers {
        let (engine, stop) = (running.engine.clone(), running.stop.subscribe());
        match (
            client,
            cfg.poll.zendesk_interval,
            cfg.poll.salesforce_interval,
        ) {
            (Client::Zendesk(zd), Some(every), _) => {
                // Ticket events carry their linked records (the first
                // Salesforce connection, as webhooks and turns use).
                let links = crate::runtime::links::ticket_event::TicketLinks {
                    resolver: running.resolver.clone(),
                    salesforce: crate::runtime::stack::first_salesforce(&pollers_all),
                };
                polling.push(tokio::spawn(crate::runtime::poll::zendesk_linked(
                    engine,
                    *zd,
                    name,
                    every,
                    stop,
                    Some(links),
                )))
            }
            (Client::Salesforce(sf), _, Some(every)) => {
                let objects = objects.get(&name).cloned().unwrap_or_default();
                polling.push(tokio::spawn(crate::runtime::poll::salesforce(
                    engine,
                    running.fanout.clone(),
                    sf,
                    name,
                    objects,
                    every,
                    stop,
                )))
            }
            _ => {}
        }
    }
    // Change Data Capture: one stream per channel the mappings need, kept
    // in step with hot reloads (runtime::cdc).
    if cfg.cdc.enabled {
        let salesforce: HashMap<String, crate::connectors::salesforce::SalesforceClient> =
            pollers_all
                .iter()
                .filter_map(|(n, c)| match c {
                    Client::Salesforce(sf) => Some((n.clone(), sf.clone())),
                    _ => None,
                })
                .collect();
        // The same fan-out as the poller's: one place decides a change.
        let fanout = running.fanout.clone();
        polling.push(crate::runtime::cdc::spawn(
            running.engine.clone(),
            fanout,
            salesforce,
            cfg.cdc.clone(),
            running.stop.subscribe(),
        ));
    }
    // One revision across a fleet (PostgreSQL; nothing on SQLite).
    let started = bundle.revision.clone();
    crate::runtime::fleet::join(&running.engine, bundle).await;
    polling.push(crate::runtime::fleet::follow(
        running.engine.clone(),
        running.stop.subscribe(),
    ));
    let watcher = match crate::runtime::reload::spawn(
        cfg.mappings.clone(),
        started,
        running.engine.clone(),
        running.stop.subscribe(),
        None,
        hangup,
    ) {
        Ok(w) => w,
        Err(e) => {
            // Stopped in order, so the one error line is the only one.
            running.shutdown().await;
            for p in polling {
                let _ = p.await;
            }
            return Err(e);
        }
    };
    tracing::info!(
        listen = %running.addr,
        revision = %running.engine.live().program.revision,
        state = %cfg.store_shown(),
        "l3map is running"
    );
    stopped.await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    let _ = watcher.await;
    for p in polling {
        let _ = p.await;
    }
    Ok(0)
}

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

async fn embedded(o: Options) -> Result<u8, String> {
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
    let clients = clients::for_emulators(&program, &zd_run.base_url(), &sf_run.base_url())
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
    say(String::new());
    let running = start(Setup {
        webhook_secret: Some(secret),
        report: Some(sink),
        agents: vec![(DEMO_AGENT.to_string(), Secret::new(DEMO_AGENT_TOKEN))],
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
