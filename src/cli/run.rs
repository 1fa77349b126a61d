//! `l3map run`: the runtime. With `--config l3map.toml` it serves real
//! Zendesk and Salesforce instances; without, it runs the embedded
//! default: both emulators in-process, the demo event stream, and a
//! per-action log of what it does.

use super::service::{init_logs, serve, Options};
use super::signals::shutdown_signal;
use crate::runtime::apply::Client;
use crate::runtime::clients;
use crate::runtime::compile::load_bundle;
use crate::runtime::config::Config;
use crate::runtime::stack::{bind, start, Setup};
use std::collections::HashMap;

pub fn run(o: Options) -> u8 {
    serve(async move {
        // One configuration story (docs/RUNTIME.md): --config, else
        // $L3MAP_CONFIG, else ./l3map.toml; none of them is the embedded
        // default.
        match crate::runtime::config::discover(o.config.as_deref()) {
            Err(e) => Err(e.to_string()),
            Ok(Some(cfg)) => production(cfg, o, None).await,
            Ok(None) => super::embedded::embedded(o).await,
        }
    })
}

/// `stdio`: also serve MCP on stdin/stdout as this agent, and stop when
/// the client closes stdin.
pub(super) async fn production(
    mut cfg: Config,
    o: Options,
    stdio: Option<String>,
) -> Result<u8, String> {
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
    let ops = cfg
        .ops
        .iter()
        .map(|(name, o)| {
            Ok(crate::runtime::app::OpsUser {
                name: name.clone(),
                token: o.token.resolve().map_err(|e| e.to_string())?,
                actions: o.actions,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut agents = Vec::new();
    let mut agent_policy = crate::runtime::app::AgentPolicy::default();
    for (name, a) in &cfg.agents {
        agents.push((name.clone(), a.token.resolve().map_err(|e| e.to_string())?));
        if let Some(t) = &a.tools {
            agent_policy.tools.insert(name.clone(), t.clone());
        }
        if let Some(o) = &a.oauth {
            agent_policy.oauth.push(crate::runtime::app::OauthClient {
                agent: name.clone(),
                client_id: o.client_id.clone(),
                secret: o.client_secret.resolve().map_err(|e| e.to_string())?,
                redirect_uris: o.redirect_uris.clone(),
            });
        }
    }
    crate::runtime::console::check_tokens(
        &ops,
        agents.iter().map(|(_, t)| t).chain(webhook_secret.as_ref()),
    )?;
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
    let limiters = std::sync::Arc::new(match store.shared_budget() {
        Some(shared) => crate::connectors::limit::Limiters::with_shared(shared),
        None => crate::connectors::limit::Limiters::default(),
    });
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
        agent_policy,
        metrics,
        ops,
        sources: Some(bundle.clone()),
        limiters: Some(limiters.clone()),
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
    if !cfg.ops.is_empty() {
        tracing::info!(
            url = %format!("http://{}/ui", running.addr),
            users = cfg.ops.len(),
            "the ops console is served (docs/CONSOLE.md)"
        );
    }
    match stdio {
        Some(agent) => {
            tracing::info!(agent = %agent, "serving MCP on stdin/stdout");
            let served = crate::runtime::agent_api::mcp::serve_stdio(running.app.clone(), agent);
            tokio::select! {
                _ = stopped => {}
                r = served => {
                    if let Err(e) = r {
                        tracing::error!("{e}");
                    }
                    tracing::info!("the MCP client closed stdin");
                }
            }
        }
        None => stopped.await,
    }
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    let _ = watcher.await;
    for p in polling {
        let _ = p.await;
    }
    Ok(0)
}
