//! The runtime's pieces started together — engine, store, workers, the
//! HTTP server — for `l3map run` (both modes) and `l3map e2e`, which must
//! exercise exactly what production runs.

use super::apply::{error_kind, Applier, Client, Redecide, Redecided, Retries};
use super::config::Config;
use super::engine::{Engine, Live};
use super::listen::{serve, HttpLimits};
use super::metrics::Metrics;
use super::server::{router_with, App};
use super::store::Store;
use super::worker::{self, ReportSink};
use crate::connectors::error::ApiError;
use crate::connectors::retry::Attempt;
use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::ZendeskClient;
use crate::connectors::Secret;
use crate::ir::Program;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The pieces every mode shares, running.
pub struct Running {
    pub engine: Arc<Engine>,
    /// What the HTTP API serves from; `l3map mcp` serves stdio from it too.
    pub app: Arc<App>,
    /// The one fan-out every source of Salesforce changes hands its
    /// changes to (the SOQL pollers, the CDC streams).
    pub fanout: Arc<crate::runtime::links::fanout::Fanout>,
    /// Ticket -> linked records, one per runtime: webhooks, agent turns
    /// and the Zendesk poller share its caches.
    pub resolver: Arc<crate::runtime::links::resolve::Resolver>,
    pub stop: watch::Sender<bool>,
    pub workers: Vec<tokio::task::JoinHandle<()>>,
    pub server: tokio::task::JoinHandle<()>,
    pub addr: SocketAddr,
}

/// Everything `start` needs.
pub struct Setup {
    pub program: Program,
    pub clients: HashMap<String, Client>,
    pub store: Arc<Store>,
    pub listener: tokio::net::TcpListener,
    pub webhook_secret: Option<Secret>,
    pub tolerance: Duration,
    /// The outbox's retry policy (`[outbox]`).
    pub retries: Retries,
    pub concurrency: usize,
    pub report: Option<ReportSink>,
    pub agents: Vec<(String, Secret)>,
    /// `[agents.NAME]` beyond the tokens: tool limits, OAuth clients.
    pub agent_policy: crate::runtime::app::AgentPolicy,
    /// `[server]` bounds on connections, request heads and bodies.
    pub limits: HttpLimits,
    /// Where the runtime's series are recorded (the OAuth keepers record
    /// into the same, built before the runtime starts).
    pub metrics: Metrics,
    /// The files `program` was compiled from: the ops console's first
    /// reload, and the base of its diffs.
    pub sources: Option<crate::runtime::store::Bundle>,
    /// Who may open the ops console (`[ops.NAME]`).
    pub ops: Vec<crate::runtime::app::OpsUser>,
    /// The connections' request budgets, for the console's budget page.
    pub limiters: Option<Arc<crate::connectors::limit::Limiters>>,
}

impl Setup {
    /// The runtime on `listener` with the defaults of the embedded demo
    /// and the emulator target: no webhook secret, no agent, five minutes
    /// of webhook tolerance, four workers a connection, the default retry
    /// policy and HTTP bounds.
    pub fn new(
        program: Program,
        clients: HashMap<String, Client>,
        store: impl Into<Arc<Store>>,
        listener: tokio::net::TcpListener,
    ) -> Setup {
        Setup {
            program,
            clients,
            store: store.into(),
            listener,
            webhook_secret: None,
            tolerance: DEFAULT_TOLERANCE,
            retries: Retries::default(),
            concurrency: 4,
            report: None,
            agents: Vec::new(),
            agent_policy: Default::default(),
            limits: HttpLimits::default(),
            metrics: Metrics::new(),
            sources: None,
            ops: Vec::new(),
            limiters: None,
        }
    }

    /// As `l3map.toml` tunes it: `[webhook]`'s tolerance, `[outbox]`'s
    /// retries and workers, `[server]`'s bounds.
    pub fn tuned(self, cfg: &Config) -> Setup {
        Setup {
            tolerance: cfg
                .webhook
                .as_ref()
                .map_or(DEFAULT_TOLERANCE, |w| w.tolerance),
            retries: cfg.outbox.retries(),
            concurrency: cfg.outbox.workers_per_connection,
            limits: cfg.server.limits,
            ..self
        }
    }
}

/// How old a signed webhook may be when no `[webhook]` says otherwise.
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Counts every HTTP attempt of every client in `metrics`:
/// `l3map_api_calls_total` and `l3map_api_errors_total` per attempt,
/// `l3map_api_429_total` per 429 and `l3map_retries_total` per retry, so
/// what the connectors absorb with their own retries shows too.
pub fn observe(clients: &HashMap<String, Client>, metrics: &Metrics) {
    for (name, client) in clients {
        // Every series of the connection exists from the start, at 0.
        metrics.connection(name);
        let (m, name) = (metrics.clone(), name.clone());
        client
            .observer()
            .attach(move |a: &Attempt<'_>| match a.outcome {
                Ok(()) => m.api_call(&name, "ok"),
                // Held by the client's own limiter past its budget: nothing
                // was sent, so it is neither a call nor a 429.
                Err(e) if crate::connectors::limit::is_over_budget(e) => {
                    m.api_error(&name, "budget")
                }
                Err(e) => {
                    m.api_call(&name, "error");
                    m.api_error(&name, error_kind(e));
                    if matches!(e, ApiError::RateLimited { .. }) {
                        m.rate_limited(&name);
                    }
                    if a.retrying {
                        m.retry(&name);
                    }
                }
            });
    }
}

/// A socket listening at `at` (port 0: a free one) and the address it got.
/// The runtime's URL is known before it starts, so the emulators' webhooks
/// can be pointed at it.
pub async fn bind(at: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(|e| format!("cannot listen on {at}: {e}"))?;
    let addr = local_addr(&listener)?;
    Ok((listener, addr))
}

fn local_addr(listener: &tokio::net::TcpListener) -> Result<SocketAddr, String> {
    listener
        .local_addr()
        .map_err(|e| format!("the listening socket: {e}"))
}

pub async fn start(s: Setup) -> Result<Running, String> {
    let addr = local_addr(&s.listener)?;
    let metrics = s.metrics.clone();
    observe(&s.clients, &metrics);
    // This process sends: what a dead one left `sending` is read back
    // before it is sent again.
    let recovered = s.store.recover_in_flight().map_err(|e| e.to_string())?;
    if recovered > 0 {
        tracing::warn!(
            actions = recovered,
            "actions were in flight when the runtime last stopped; each record is read back before anything is sent again"
        );
    }
    // The fleet's view of this replica (`l3map status`).
    if let Err(e) = s.store.report_loaded(&s.program.revision, None) {
        tracing::warn!(error = %e, "could not record the loaded revision in the store");
    }
    for link in &s.program.links {
        metrics.link_declared(&link.describe());
    }
    crate::runtime::reloads::record(
        &s.store,
        &s.program.revision,
        "start",
        crate::runtime::reloads::Outcome::Live(s.sources.as_ref()),
    );
    let engine = Arc::new(Engine::new(Live::new(s.program), s.store, metrics));
    let applier_clients = s.clients.clone();
    let resolver = Arc::new(
        crate::runtime::links::resolve::Resolver::default().with_metrics(engine.metrics.clone()),
    );
    let fanout = Arc::new(
        crate::runtime::links::fanout::Fanout::new(engine.clone(), s.clients.clone())
            .with_resolver(resolver.clone()),
    );
    let applier = Arc::new(
        Applier::with_retries(s.clients, s.retries)
            .with_tickets(engine.tickets.clone())
            .with_resolver(resolver.clone())
            .with_redecide(redecider(engine.clone()))
            .with_store(engine.store.clone()),
    );
    let (stop, stopped) = watch::channel(false);
    let workers = applier
        .connections()
        .map(|name| {
            tokio::spawn(worker::run(
                engine.clone(),
                applier.clone(),
                name.clone(),
                s.concurrency,
                stopped.clone(),
                s.report.clone(),
            ))
        })
        .collect();
    let app = Arc::new(App {
        engine: engine.clone(),
        webhook_secret: s.webhook_secret,
        tolerance: s.tolerance,
        agents: s.agents,
        agent_policy: s.agent_policy,
        zendesk: first_zendesk(&applier_clients),
        salesforce: first_salesforce(&applier_clients),
        resolver: resolver.clone(),
        probes: Arc::default(),
        console: crate::runtime::app::ConsoleAccess {
            users: s.ops,
            limiters: s.limiters,
            ..Default::default()
        },
    });
    let server = tokio::spawn(serve(
        s.listener,
        router_with(app.clone(), &s.limits),
        s.limits,
        stopped.clone(),
    ));
    Ok(Running {
        engine,
        app,
        fanout,
        resolver,
        stop,
        workers,
        server,
        addr,
    })
}

impl Running {
    /// Stops taking work, lets what is in flight finish, and returns.
    pub async fn shutdown(self) {
        // Out of the load balancer first (`/readyz` says draining), then
        // every loop stops and in-flight work finishes.
        self.engine
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.engine.closing.cancel();
        let _ = self.stop.send(true);
        // Singletons go to another replica at once, not after their lease.
        let store = self.engine.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.release_singletons()).await;
        let drain = async {
            for w in self.workers {
                let _ = w.await;
            }
            let _ = self.server.await;
        };
        if tokio::time::timeout(Duration::from_secs(30), drain)
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight work did not finish within 30 s; it resumes on the next start"
            );
        }
        // Claims still held (work past the drain) go back, unconfirmed.
        let store = self.engine.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.release_all()).await;
    }
}

pub fn first_zendesk(clients: &HashMap<String, Client>) -> Option<(String, ZendeskClient)> {
    let mut names: Vec<&String> = clients.keys().collect();
    names.sort();
    names.into_iter().find_map(|n| match &clients[n] {
        Client::Zendesk(z) => Some((n.clone(), (**z).clone())),
        _ => None,
    })
}

pub fn first_salesforce(clients: &HashMap<String, Client>) -> Option<(String, SalesforceClient)> {
    let mut names: Vec<&String> = clients.keys().collect();
    names.sort();
    names.into_iter().find_map(|n| match &clients[n] {
        Client::Salesforce(s) => Some((n.clone(), s.clone())),
        _ => None,
    })
}

/// After a 409: a stored event decided again by the running revision with
/// its ticket replaced by the fresh read (the same conversion the webhook
/// path uses, the same pure `decide`), its rows' keys unchanged (the
/// event keeps its id).
fn redecider(engine: Arc<Engine>) -> Redecide {
    Redecide(Arc::new(move |event: &str, fresh: &serde_json::Value| {
        let live = engine.live();
        let mut ev: crate::eval::event::Event = serde_json::from_str(event).ok()?;
        let state = crate::eval::convert::zendesk::from_ticket(fresh, &live.convert.statuses)
            .ok()?
            .into_iter()
            .next()?;
        ev.ticket = Some(state.ticket?);
        let d = crate::eval::decide::decide(&live.program, &ev);
        let actions = crate::runtime::ops::outbox_actions(&live.program, &d)
            .into_iter()
            .filter_map(|a| Some((a.key, serde_json::from_str(&a.op).ok()?)))
            .collect();
        Some(Redecided {
            revision: live.program.revision.clone(),
            actions,
        })
    }))
}
