//! What `l3map e2e` runs against: the runtime, started in this process
//! exactly as `l3map run` starts it, and the Zendesk and Salesforce it
//! talks to — the local emulators (`--target emulator`), or the instances
//! a `l3map.toml` names (`--target live`, a sandbox).
//!
//! The sequence creates its own records through separate "setup" clients
//! and tags them (`l3map_e2e`, `l3map_e2e_RUN`) so cleanup finds exactly
//! what this run created. On the emulators the setup client has a token of
//! its own, so the runtime's token budget is the runtime's alone; on a live
//! instance both share the configured credentials, as they would.

use super::plan::Plan;
use super::report::Cleanup;
use crate::connectors::limit::Limiters;
use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::{Credentials, ZendeskClient, ZendeskConfig};
use crate::connectors::Secret;
use crate::emulator::chaos::{self, Chaos};
use crate::emulator::salesforce::{self as sf_emu, SalesforceEmulator, SalesforceOptions};
use crate::emulator::zendesk::{
    self as zd_emu, TokenGrant, WebhookTarget, ZendeskEmulator, ZendeskOptions,
};
use crate::ir::Program;
use crate::runtime::apply::{Applier, Client};
use crate::runtime::clients;
use crate::runtime::config::Config;
use crate::runtime::demo::Agent;
use crate::runtime::engine::Engine;
use crate::runtime::stack::{self, bind, first_salesforce, first_zendesk, Running, Setup};
use crate::runtime::store::{Row, State, Store};
use futures_util::{stream, StreamExt};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many records the read-back and the cleanup handle at once.
pub const READ_BACK_AT_ONCE: usize = 8;

/// The emulator's token for the sequence's own requests.
const SETUP_TOKEN: &str = "l3map-e2e-setup-token";
const AGENT: &str = "l3map-e2e";

/// A ticket (and Case) created for a scenario or a load turn.
#[derive(Debug, Clone)]
pub struct Created {
    pub ticket: u64,
    pub case: Option<String>,
}

pub struct Rig {
    pub run_id: String,
    pub program: Program,
    running: Running,
    /// Reads writes back with the runtime's own connection settings.
    pub applier: Applier,
    /// The Zendesk connection the runtime writes tickets through.
    pub desk: String,
    setup_zd: ZendeskClient,
    setup_sf: Option<SalesforceClient>,
    agent_url: String,
    agent_token: Secret,
    http: reqwest::Client,
    created_tickets: Mutex<Vec<u64>>,
    created_records: Mutex<Vec<(String, String)>>,
    /// Kept alive for the run: the emulators stop when dropped.
    _emulators: Option<(crate::emulator::Running, crate::emulator::Running)>,
    emulated: Option<Emulated>,
    state_dir: Option<PathBuf>,
}

/// A change to an emulator's options before it starts.
pub type Tweak<T> = Box<dyn FnOnce(&mut T) + Send>;

/// Changes to the emulator target for the fault tests (tests/faults.rs);
/// `l3map e2e` runs with the defaults.
#[derive(Default)]
pub struct Tuning {
    /// Applied to the emulators' options before they start: faults,
    /// webhook redelivery, token lifetimes.
    pub zendesk: Option<Tweak<ZendeskOptions>>,
    pub salesforce: Option<Tweak<SalesforceOptions>>,
    /// The runtime's per-attempt timeout (the connectors' 30 s otherwise).
    pub timeout: Option<Duration>,
    /// The runtime reaches Zendesk and Salesforce through proxies that
    /// reset connections as these say; the setup and read-back clients
    /// talk to the emulators directly.
    pub chaos: Option<(Arc<Chaos>, Arc<Chaos>)>,
}

/// The emulators of a run on the emulator target, for tests to switch
/// faults on and off and count what reached them.
pub struct Emulated {
    pub zendesk: zd_emu::Handle,
    pub salesforce: sf_emu::Handle,
    /// Kept alive for the run: the proxies stop when dropped.
    _proxies: Vec<crate::emulator::Running>,
}

/// What the emulator target needs to know.
pub struct EmulatorTarget<'a> {
    pub mappings: &'a Path,
    /// Requests per minute the Zendesk token may send.
    pub limit: u32,
    /// Emulator minutes last 60 s / scale.
    pub scale: u32,
}

fn run_id() -> String {
    format!("{:08x}", fastrand::u32(..))
}

fn zendesk_of(clients: &HashMap<String, Client>) -> Result<(String, ZendeskClient), String> {
    first_zendesk(clients)
        .ok_or_else(|| "the mappings have no Zendesk connection; the sequence needs one".into())
}

impl Rig {
    /// Both emulators in this process, seeded from the mappings, the
    /// Zendesk token limited to `limit` per (scaled) minute, and webhooks
    /// pointed at the runtime.
    pub async fn emulator(t: EmulatorTarget<'_>) -> Result<Rig, String> {
        Rig::emulator_tuned(t, Tuning::default()).await
    }

    /// [`Rig::emulator`] with the emulators, and the runtime's way to
    /// them, changed as `tune` says.
    pub async fn emulator_tuned(t: EmulatorTarget<'_>, tune: Tuning) -> Result<Rig, String> {
        let program = crate::runtime::compile::compile(t.mappings)
            .map_err(|d| format!("{} does not compile:\n{d}", t.mappings.display()))?;
        let (listener, addr) = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let secret = Secret::new(format!(
            "e2e-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        ));
        let window = Duration::from_secs(60) / t.scale.max(1);
        let mut zd_opts = ZendeskOptions {
            rate_limit: t.limit,
            window,
            webhook: Some(WebhookTarget::new(
                format!("http://{addr}/webhooks/zendesk"),
                secret.clone(),
            )),
            ..ZendeskOptions::default().with_programs(std::slice::from_ref(&program))
        };
        zd_opts.tokens.push(TokenGrant::new(
            SETUP_TOKEN,
            &["read", "write", "tickets:write"],
        ));
        if let Some(f) = tune.zendesk {
            f(&mut zd_opts);
        }
        let mut sf_opts = SalesforceOptions::default().with_program(&program);
        if let Some(f) = tune.salesforce {
            f(&mut sf_opts);
        }
        let (zd_run, zd_handle) = ZendeskEmulator::new(zd_opts)
            .start(0)
            .await
            .map_err(|e| format!("the Zendesk emulator: {e}"))?;
        let (sf_run, sf_handle) = SalesforceEmulator::new(sf_opts)
            .start(0)
            .await
            .map_err(|e| format!("the Salesforce emulator: {e}"))?;
        let mut proxies = Vec::new();
        let (zd_url, sf_url) = match tune.chaos {
            Some((zd_chaos, sf_chaos)) => {
                let proxy = |addr, c| async move {
                    chaos::start(addr, c)
                        .await
                        .map_err(|e| format!("the chaos proxy: {e}"))
                };
                proxies.push(proxy(zd_run.addr, zd_chaos).await?);
                proxies.push(proxy(sf_run.addr, sf_chaos).await?);
                (proxies[0].base_url(), proxies[1].base_url())
            }
            None => (zd_run.base_url(), sf_run.base_url()),
        };
        // One registry for every client of this process, as `l3map run`
        // has: the setup's Salesforce client shares the runtime's app.
        let limiters = Limiters::default();
        let runtime_clients =
            clients::for_emulators_in(&program, &zd_url, &sf_url, t.scale, tune.timeout, &limiters)
                .map_err(|e| e.to_string())?;
        let (desk, _) = zendesk_of(&runtime_clients)?;
        // The setup client: its own token, a budget far above the load's.
        let mut cfg = ZendeskConfig::new(
            zd_run.base_url(),
            Credentials::OAuth(Secret::new(SETUP_TOKEN)),
        );
        cfg.rpm = t.limit;
        cfg.rate_window = window;
        let setup_zd = ZendeskClient::with_limiters(cfg, &limiters).map_err(|e| e.to_string())?;
        let setup_clients = clients::for_emulators_in(
            &program,
            &zd_run.base_url(),
            &sf_run.base_url(),
            1,
            None,
            &limiters,
        )
        .map_err(|e| e.to_string())?;
        let setup_sf = first_salesforce(&setup_clients).map(|(_, c)| c);
        let state_dir = std::env::temp_dir().join(format!(
            "l3map-e2e-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        let store = Store::open(&state_dir.join("state.db")).map_err(|e| e.to_string())?;
        let agent_token = Secret::new(format!("e2e-agent-{:016x}", fastrand::u64(..)));
        assemble(Wiring {
            setup: Setup {
                webhook_secret: Some(secret),
                agents: vec![(AGENT.to_string(), agent_token.clone())],
                ..Setup::new(program, runtime_clients, store, listener)
            },
            desk,
            setup_zd,
            setup_sf,
            agent_token,
            addr,
            emulators: Some((zd_run, sf_run)),
            emulated: Some(Emulated {
                zendesk: zd_handle,
                salesforce: sf_handle,
                _proxies: proxies,
            }),
            state_dir,
        })
        .await
    }

    /// The instances `l3map.toml` names: the runtime listens where the
    /// config says (Zendesk's webhook must point there), with the config's
    /// credentials, webhook secret and first agent's token.
    pub async fn live(config: &Path, mappings: Option<PathBuf>) -> Result<Rig, String> {
        // The configuration as `run` reads it: L3MAP_* overrides, every
        // missing credential at once, the webhook secret that wins.
        let mut cfg = Config::load(config).map_err(|e| e.to_string())?;
        cfg.apply_env().map_err(|e| e.to_string())?;
        if let Some(m) = mappings {
            cfg.mappings = m;
        }
        let program = crate::runtime::compile::compile(&cfg.mappings)
            .map_err(|d| format!("{} does not compile:\n{d}", cfg.mappings.display()))?;
        let Some((secret, _)) =
            crate::runtime::config::check_credentials(&cfg, &program).map_err(|e| e.to_string())?
        else {
            return Err(
                "webhooks are off (add [webhook] to the config, or webhook_secret to the Zendesk connection): the sequence checks that Zendesk's webhook reaches the runtime"
                    .into(),
            );
        };
        let Some((agent, a)) = cfg.agents.iter().next() else {
            return Err("the config has no [agents.NAME] section: the sequence speaks the agent API as an agent".into());
        };
        let agent_token = a.token.resolve().map_err(|e| e.to_string())?;
        let agent = agent.clone();
        // One registry, as `l3map run` has: the setup's clients spend the
        // same tokens' budgets as the runtime's.
        let limiters = Limiters::default();
        // A grant kept in the runtime's store (OAuth with rotating refresh
        // tokens) is used from there, and the setup shares the runtime's
        // session of it: one refresh serves both.
        let grants = if program.connections.iter().any(clients::keeps_grant) {
            Some(clients::Grants::open(&cfg)?)
        } else {
            None
        };
        let build = || {
            clients::from_config_kept(&program, &cfg.connections, &limiters, grants.as_ref())
                .map_err(|e| e.to_string())
        };
        let runtime_clients = build()?;
        let mut setup_clients = build()?;
        for c in program
            .connections
            .iter()
            .filter(|c| clients::keeps_grant(c))
        {
            if let Some(shared) = runtime_clients.get(&c.name) {
                setup_clients.insert(c.name.clone(), shared.clone());
            }
        }
        let (desk, _) = zendesk_of(&runtime_clients)?;
        let (_, setup_zd) = zendesk_of(&setup_clients)?;
        let setup_sf = first_salesforce(&setup_clients).map(|(_, c)| c);
        let (listener, addr) = bind(cfg.server.listen).await?;
        // A state file of its own: the sequence must not mix its events
        // with a production runtime's outbox.
        let state_dir = cfg
            .state
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("e2e-{}", run_id()));
        let store = Store::open(&state_dir.join("state.db")).map_err(|e| e.to_string())?;
        assemble(Wiring {
            setup: Setup {
                webhook_secret: Some(secret),
                agents: vec![(agent, agent_token.clone())],
                ..Setup::new(program, runtime_clients, store, listener).tuned(&cfg)
            },
            desk,
            setup_zd,
            setup_sf,
            agent_token,
            addr,
            emulators: None,
            emulated: None,
            state_dir,
        })
        .await
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.running.engine
    }

    /// The emulators and their fault switches (the emulator target only).
    pub fn emulated(&self) -> Option<&Emulated> {
        self.emulated.as_ref()
    }

    pub fn setup_zendesk(&self) -> &ZendeskClient {
        &self.setup_zd
    }

    /// Tags on every ticket this run creates.
    pub fn tags(&self) -> Vec<String> {
        vec!["l3map_e2e".into(), format!("l3map_e2e_{}", self.run_id)]
    }

    /// Creates the ticket (and Case) of a scenario or load turn. `key`
    /// makes the create idempotent within the run.
    pub async fn create(&self, plan: &Plan, key: &str) -> Result<Created, String> {
        let idem = format!("l3map-e2e-{}-{key}", self.run_id);
        let t = self
            .setup_zd
            .create_ticket(&plan.ticket, Some(&idem))
            .await
            .map_err(|e| format!("creating a test ticket: {e}"))?;
        push(&self.created_tickets, t.id);
        let case = match (&self.setup_sf, plan.wants_case) {
            (Some(sf), true) => {
                let mut f = Map::new();
                f.insert(
                    "Subject".into(),
                    json!(format!("l3map e2e {} ticket {}", self.run_id, t.id)),
                );
                f.insert("Origin".into(), json!("Web"));
                let id = sf
                    .create("Case", &f)
                    .await
                    .map_err(|e| format!("creating a test Case: {e}"))?;
                push(&self.created_records, ("Case".to_string(), id.clone()));
                Some(id)
            }
            _ => None,
        };
        Ok(Created { ticket: t.id, case })
    }

    /// Sends a turn to the agent API; the event key it was recorded as.
    pub async fn turn(
        &self,
        turn: &Map<String, Json>,
        turn_id: &str,
        on: &Created,
    ) -> Result<String, String> {
        let body = Agent::body(turn, turn_id, on.ticket, on.case.as_deref());
        let agent = Agent {
            url: &self.agent_url,
            token: self.agent_token.expose(),
        };
        let got = agent.send(&self.http, &body).await?;
        got["turn"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("the agent API's answer has no turn id: {got}"))
    }

    /// Waits until every action decided from `key` is done or parked.
    pub async fn settled(&self, key: &str, within: Duration) -> Result<Vec<Row>, String> {
        let started = Instant::now();
        loop {
            let rows = self.rows(key).await?;
            if rows
                .iter()
                .all(|r| matches!(r.state, State::Done | State::Dead))
            {
                return Ok(rows);
            }
            if started.elapsed() > within {
                return Err(format!(
                    "{} of its actions were still queued after {} s",
                    rows.iter()
                        .filter(|r| !matches!(r.state, State::Done | State::Dead))
                        .count(),
                    within.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn rows(&self, key: &str) -> Result<Vec<Row>, String> {
        let store = self.engine().store.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || store.actions_of(&key))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Deletes what this run created (Zendesk keeps deleted tickets in its
    /// trash for 30 days; the emulator forgets them).
    pub async fn cleanup(&self) -> Cleanup {
        let mut c = Cleanup::default();
        let tickets = std::mem::take(&mut *lock(&self.created_tickets));
        let zd = &self.setup_zd;
        let deleted: Vec<_> = stream::iter(tickets)
            .map(|id| async move { (id, zd.delete_ticket(id).await) })
            .buffered(READ_BACK_AT_ONCE)
            .collect()
            .await;
        for (id, r) in deleted {
            match r {
                Ok(()) => c.tickets_deleted += 1,
                Err(e) => c.failed.push(format!("ticket {id} ({e})")),
            }
        }
        let records = std::mem::take(&mut *lock(&self.created_records));
        if let Some(sf) = &self.setup_sf {
            let deleted: Vec<_> = stream::iter(records)
                .map(|(object, id)| async move {
                    let r = sf.delete(&object, &id).await;
                    (object, id, r)
                })
                .buffered(READ_BACK_AT_ONCE)
                .collect()
                .await;
            for (object, id, r) in deleted {
                match r {
                    Ok(()) => c.records_deleted += 1,
                    Err(e) => c.failed.push(format!("{object} {id} ({e})")),
                }
            }
        }
        c
    }

    /// Stops the runtime (in-flight work finishes) and removes its state.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
        if let Some(dir) = self.state_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What both targets have built before the runtime starts.
struct Wiring {
    setup: Setup,
    desk: String,
    setup_zd: ZendeskClient,
    setup_sf: Option<SalesforceClient>,
    agent_token: Secret,
    addr: SocketAddr,
    emulators: Option<(crate::emulator::Running, crate::emulator::Running)>,
    emulated: Option<Emulated>,
    state_dir: PathBuf,
}

/// Starts the runtime and puts the rig together.
async fn assemble(w: Wiring) -> Result<Rig, String> {
    let applier = readback(&w.desk, &w.setup_zd, &w.setup.clients, w.setup_sf.as_ref());
    let program = w.setup.program.clone();
    let running = stack::start(w.setup).await?;
    Ok(Rig {
        run_id: run_id(),
        program,
        agent_url: format!("http://{}", w.addr),
        running,
        applier,
        desk: w.desk,
        setup_zd: w.setup_zd,
        setup_sf: w.setup_sf,
        agent_token: w.agent_token,
        http: reqwest::Client::new(),
        created_tickets: Mutex::new(vec![]),
        created_records: Mutex::new(vec![]),
        _emulators: w.emulators,
        emulated: w.emulated,
        state_dir: Some(w.state_dir),
    })
}

/// The read-back goes through the setup clients, so the runtime's request
/// counts (and on the emulators its token's budget) are its own work only.
fn readback(
    desk: &str,
    zd: &ZendeskClient,
    runtime: &HashMap<String, Client>,
    sf: Option<&SalesforceClient>,
) -> Applier {
    let mut clients = HashMap::new();
    clients.insert(desk.to_string(), Client::Zendesk(Box::new(zd.clone())));
    if let (Some((name, _)), Some(sf)) = (first_salesforce(runtime), sf) {
        clients.insert(name, Client::Salesforce(sf.clone()));
    }
    Applier::new(clients, 1)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn push<T>(m: &Mutex<Vec<T>>, v: T) {
    lock(m).push(v);
}
