//! The runtime in process beside the emulators: the Zendesk and Salesforce
//! emulators seeded from the mappings, an engine on a store in a temp
//! dir, the runtime's router on 127.0.0.1 and, when a test wants its
//! actions applied, a worker per connection. For tests that read what the
//! process would not show (the store's counts, an emulator's requests);
//! everything else drives the real processes ([`super::stack`]).

use super::{example, temp_dir};
use l3map::connectors::salesforce::SalesforceClient;
use l3map::connectors::zendesk::ZendeskClient;
use l3map::emulator::salesforce::{self, SalesforceEmulator, SalesforceOptions};
use l3map::emulator::zendesk::{self, ZendeskEmulator, ZendeskOptions};
use l3map::emulator::Running;
use l3map::ir::Program;
use l3map::runtime::apply::{Applier, Client};
use l3map::runtime::clients::for_emulators;
use l3map::runtime::compile::compile;
use l3map::runtime::engine::{Engine, Live};
use l3map::runtime::metrics::Metrics;
use l3map::runtime::server::{router, App};
use l3map::runtime::store::Store;
use l3map::runtime::worker;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// mappings/fintech, compiled.
pub fn fintech() -> Program {
    compile(&example("fintech")).expect("mappings/fintech compiles")
}

/// Both emulators, seeded from one program, on ports of their own.
pub struct Emulators {
    pub program: Program,
    pub zd: zendesk::Handle,
    pub sf: salesforce::Handle,
    pub zendesk_url: String,
    pub salesforce_url: String,
    _running: (Running, Running),
}

impl Emulators {
    /// `zendesk_rate_limit` widens the Zendesk emulator's window for tests
    /// that are not about Zendesk's rate limit (tests/zendesk.rs is);
    /// `None` keeps the emulator's default.
    pub async fn start(program: Program, zendesk_rate_limit: Option<u32>) -> Emulators {
        let defaults = ZendeskOptions::default().with_programs(std::slice::from_ref(&program));
        let zd_opts = ZendeskOptions {
            rate_limit: zendesk_rate_limit.unwrap_or(defaults.rate_limit),
            ..defaults
        };
        let (zd_run, zd) = ZendeskEmulator::new(zd_opts)
            .start(0)
            .await
            .expect("the Zendesk emulator starts");
        let (sf_run, sf) =
            SalesforceEmulator::new(SalesforceOptions::default().with_program(&program))
                .start(0)
                .await
                .expect("the Salesforce emulator starts");
        Emulators {
            program,
            zd,
            sf,
            zendesk_url: zd_run.base_url(),
            salesforce_url: sf_run.base_url(),
            _running: (zd_run, sf_run),
        }
    }

    /// A client per connection of the program, pointed at the emulators.
    pub fn clients(&self) -> HashMap<String, Client> {
        for_emulators(&self.program, &self.zendesk_url, &self.salesforce_url)
            .expect("clients for the emulators")
    }
}

/// The runtime's parts in process, beside [`Emulators`]. Dropping it stops
/// the workers and the servers and removes the store.
pub struct Rig {
    pub emulators: Emulators,
    /// The clients the rig's workers and apps share (a clone shares its
    /// caches and its token's budget, as in `l3map run`).
    pub clients: HashMap<String, Client>,
    pub engine: Arc<Engine>,
    pub dir: TempDir,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Rig {
    /// An engine on a fresh store, nothing served yet.
    pub async fn start(emulators: Emulators) -> Rig {
        let clients = emulators.clients();
        let dir = temp_dir("rig");
        let store = Store::open(&dir.path().join("state.db")).expect("the store opens");
        let engine = Arc::new(Engine::new(
            Live::new(emulators.program.clone()),
            Arc::new(store),
            Metrics::new(),
        ));
        Rig {
            emulators,
            clients,
            engine,
            dir,
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// The first Zendesk connection's client, by name.
    pub fn zendesk(&self) -> Option<(String, ZendeskClient)> {
        self.clients.iter().find_map(|(n, c)| match c {
            Client::Zendesk(z) => Some((n.clone(), (**z).clone())),
            _ => None,
        })
    }

    /// The first Salesforce connection's client, by name.
    pub fn salesforce(&self) -> Option<(String, SalesforceClient)> {
        self.clients.iter().find_map(|(n, c)| match c {
            Client::Salesforce(s) => Some((n.clone(), s.clone())),
            _ => None,
        })
    }

    /// The app `l3map run` would build on this engine, with no webhook
    /// secret and no agents: a test sets what it is about,
    /// `App { agents: …, ..rig.app() }`.
    pub fn app(&self) -> App {
        App {
            engine: self.engine.clone(),
            webhook_secret: None,
            tolerance: Duration::from_secs(300),
            agents: Vec::new(),
            agent_policy: Default::default(),
            zendesk: self.zendesk(),
            salesforce: self.salesforce(),
            resolver: Default::default(),
            probes: Default::default(),
            console: Default::default(),
        }
    }

    /// Serves `app` with the runtime's router on 127.0.0.1; its base URL.
    pub async fn serve(&mut self, app: Arc<App>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        self.tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, router(app)).await;
        }));
        format!("http://{addr}")
    }

    /// A worker per connection applying the outbox, as `l3map run` does:
    /// `max_attempts` per action, `concurrency` actions at a time each.
    pub fn start_workers(&mut self, max_attempts: u32, concurrency: usize) {
        let applier = Arc::new(Applier::new(self.clients.clone(), max_attempts));
        let stopped = self.stop.subscribe();
        for conn in applier.connections().cloned().collect::<Vec<_>>() {
            self.tasks.push(tokio::spawn(worker::run(
                self.engine.clone(),
                applier.clone(),
                conn,
                concurrency,
                stopped.clone(),
                None,
            )));
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}
