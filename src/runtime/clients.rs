//! A connector client for each connection of the mappings: from the
//! connection block (instance, plan, secret references) and the runtime
//! configuration's overrides, or pointed at the local emulators.
//!
//! Every client built by one call shares one [`Limiters`]: the 200 a
//! minute of a Zendesk plan, and a connected app's concurrency cap, are
//! per token, so two connections of one token must wait in one line. A
//! process that builds clients more than once (`l3map e2e`: the runtime's
//! and the setup's) passes one registry to every call (`*_in`).

use super::apply::Client;
use super::config::{connection_secrets, ConfigError, ConnectionOverride};
use crate::connectors::limit::Limiters;
use crate::connectors::retry::RetryPolicy;
use crate::connectors::salesforce::{SalesforceAuth, SalesforceClient, SalesforceConfig};
use crate::connectors::zendesk::{Credentials, ZendeskClient, ZendeskConfig};
use crate::connectors::Secret;
use crate::ir::{Connection, Program};
use crate::model::Kind;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The runtime's connector retry budget. Short: the outbox retries later
/// on its own schedule, and a worker should not hold a record for minutes.
pub fn runtime_retry() -> RetryPolicy {
    RetryPolicy {
        max_total: Duration::from_secs(30),
        max_attempts: 5,
        ..RetryPolicy::default()
    }
}

/// The retry budget of a command a person waits on (`schema pull|diff`,
/// `e2e`): a 429 or a 5xx is tried again a couple of times, but within
/// seconds, not the runtime's half minute; an unreachable instance is
/// caught before it by [`super::reach`].
pub fn interactive_retry() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(5),
        max_total: Duration::from_secs(15),
        max_attempts: 3,
        ..RetryPolicy::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Secret(#[from] ConfigError),
    #[error("connection `{connection}`: {message}")]
    Connection { connection: String, message: String },
}

fn missing(c: &Connection, what: &str) -> SetupError {
    SetupError::Connection {
        connection: c.name.clone(),
        message: format!("has no `{what}`; add it to the connection block"),
    }
}

/// Every `[connections.NAME]` of l3map.toml must name a connection of the
/// mappings, with keys of its kind: a typo (`[connections.dsk]`, or
/// `login_url` on a Zendesk desk) used to be ignored, and the runtime went
/// to the host the mapping names, production, instead of the sandbox.
pub fn check_overrides(
    program: &Program,
    overrides: &BTreeMap<String, ConnectionOverride>,
) -> Result<(), SetupError> {
    for (name, o) in overrides {
        let Some(c) = program.connections.iter().find(|c| &c.name == name) else {
            let names: Vec<&str> = program
                .connections
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(SetupError::Connection {
                connection: name.clone(),
                message: format!(
                    "`[connections.{name}]` in l3map.toml names no connection of the mappings (they declare: {}); fix the name, or its settings would be ignored",
                    names.join(", ")
                ),
            });
        };
        let wrong = match c.kind {
            Kind::Zendesk if o.login_url.is_some() => Some(("login_url", "base_url")),
            Kind::Salesforce if o.base_url.is_some() => Some(("base_url", "login_url")),
            _ => None,
        };
        if let Some((key, right)) = wrong {
            return Err(SetupError::Connection {
                connection: name.clone(),
                message: format!(
                    "`{key}` in `[connections.{name}]` does not apply to a {} connection; it takes `{right}`",
                    match c.kind {
                        Kind::Zendesk => "Zendesk",
                        _ => "Salesforce",
                    }
                ),
            });
        }
    }
    Ok(())
}

/// Clients for every connection of `program`, with real credentials,
/// sharing one new registry of limiters.
pub fn from_config(
    program: &Program,
    overrides: &BTreeMap<String, ConnectionOverride>,
) -> Result<HashMap<String, Client>, SetupError> {
    from_config_in(program, overrides, &Limiters::default())
}

/// [`from_config`], the clients' tokens limited in `limiters`.
pub fn from_config_in(
    program: &Program,
    overrides: &BTreeMap<String, ConnectionOverride>,
    limiters: &Limiters,
) -> Result<HashMap<String, Client>, SetupError> {
    from_config_kept(program, overrides, limiters, None)
}

/// The store OAuth clients keep their grants in, and how early they renew.
#[derive(Clone, Debug)]
pub struct Grants {
    pub vault: crate::runtime::seal::Vault,
    pub margin: Duration,
    /// Refreshes are counted here (`l3map_credential_refresh_total`).
    pub metrics: Option<crate::runtime::metrics::Metrics>,
}

impl Grants {
    /// The state store of `cfg` and its credentials key, for a command
    /// that uses a kept grant beside `l3map run` (`schema pull`, `e2e
    /// --target live`): the same sealed row, so a refresh by either is
    /// seen by the other (compare-and-swap on its generation) and a
    /// rotating refresh token is never spent behind the runtime's back.
    pub fn open(cfg: &crate::runtime::config::Config) -> Result<Grants, String> {
        let key = cfg.credentials.key().map_err(|e| e.to_string())?;
        let store = cfg.open_store()?;
        Ok(Grants {
            vault: crate::runtime::seal::Vault::new(
                std::sync::Arc::new(store),
                std::sync::Arc::new(key),
            ),
            margin: cfg.credentials.refresh_margin,
            metrics: None,
        })
    }
}

/// Whether a connection keeps an OAuth grant in the store (and so needs
/// the credentials key): Zendesk `auth oauth_code`, Salesforce `flow
/// web_server` and `flow refresh_token` (their refresh tokens rotate when
/// the app says so). `flow jwt_bearer` mints a new token from a signed
/// assertion each time and keeps nothing.
pub fn keeps_grant(c: &Connection) -> bool {
    grant_flow(c).is_some()
}

/// The flow a kept grant is stored under (bound into the sealed row).
pub fn grant_flow(c: &Connection) -> Option<&'static str> {
    let setting = |k: &str| c.settings.get(k).map(String::as_str);
    match c.kind {
        Kind::Zendesk if setting("auth") == Some("oauth_code") => Some("zendesk_code"),
        Kind::Salesforce => match setting("flow") {
            Some("web_server") => Some("salesforce_web_server"),
            Some("refresh_token") => Some("salesforce_refresh_token"),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a connection's tokens may be kept in the store when a key is
/// configured (its access token then survives a restart): Zendesk `auth
/// client_credentials`. It needs none: a new token is one request away.
pub fn may_keep_grant(c: &Connection) -> bool {
    match c.kind {
        Kind::Zendesk => c.settings.get("auth").map(String::as_str) == Some("client_credentials"),
        // A refresh token without a `flow` (the older form of the block):
        // Salesforce may rotate it (an app setting l3map cannot see), so it
        // is kept when a key is configured, as `flow refresh_token` is.
        _ => sf_refresh_without_flow(c),
    }
}

/// A Salesforce block signing in with a refresh token and no `flow`.
fn sf_refresh_without_flow(c: &Connection) -> bool {
    let has = |k: &str| c.settings.contains_key(k) || c.secrets.iter().any(|r| r.key == k);
    c.kind == Kind::Salesforce
        && !c.settings.contains_key("flow")
        && has("refresh_token")
        && !has("private_key")
        && !has("username")
}

/// [`from_config_in`], OAuth clients keeping their grants in `grants`
/// (required when a connection [`keeps_grant`]).
pub fn from_config_kept(
    program: &Program,
    overrides: &BTreeMap<String, ConnectionOverride>,
    limiters: &Limiters,
    grants: Option<&Grants>,
) -> Result<HashMap<String, Client>, SetupError> {
    check_overrides(program, overrides)?;
    let mut out = HashMap::new();
    for c in &program.connections {
        let secrets = connection_secrets(c)?;
        let o = overrides.get(&c.name).cloned().unwrap_or_default();
        let client = limiters.naming(&c.name, || match grants {
            Some(g) if keeps_grant(c) || may_keep_grant(c) => {
                rebuild_kept(c, &o, &secrets, limiters, g, runtime_retry())
            }
            _ => build(c, &o, &secrets, None, runtime_retry(), limiters),
        })?;
        out.insert(c.name.clone(), client);
    }
    Ok(out)
}

/// An OAuth client whose grant lives in the store: Zendesk `auth
/// oauth_code`, Salesforce `flow web_server|refresh_token`.
fn rebuild_kept(
    c: &Connection,
    o: &ConnectionOverride,
    secrets: &BTreeMap<String, Secret>,
    limiters: &Limiters,
    g: &Grants,
    retry: RetryPolicy,
) -> Result<Client, SetupError> {
    use crate::connectors::error::System;
    if let Some(m) = &g.metrics {
        m.credential(&c.name);
    }
    let flow = match grant_flow(c) {
        Some(f) => f,
        None if sf_refresh_without_flow(c) => "salesforce_refresh_token",
        None if may_keep_grant(c) => "zendesk_client_credentials",
        None => "zendesk_code",
    };
    let keeper = |system: System| {
        Some(crate::connectors::transport::session::KeeperHandle(
            std::sync::Arc::new(crate::runtime::keeper::StoreKeeper {
                vault: g.vault.clone(),
                connection: c.name.clone(),
                flow: flow.into(),
                system,
                metrics: g.metrics.clone(),
            }),
        ))
    };
    let fail = |e: crate::connectors::error::ApiError| SetupError::Connection {
        connection: c.name.clone(),
        message: e.to_string(),
    };
    if c.kind == Kind::Salesforce {
        let mut cfg = salesforce_config(c, o, secrets, retry, true)?;
        cfg.refresh_margin = g.margin;
        cfg.keeper = keeper(System::Salesforce);
        return SalesforceClient::with_limiters(cfg, limiters)
            .map(Client::Salesforce)
            .map_err(fail);
    }
    let mut cfg = zendesk_config(c, o, secrets, None, retry)?;
    cfg.refresh_margin = g.margin;
    cfg.keeper = keeper(System::Zendesk);
    ZendeskClient::with_limiters(cfg, limiters)
        .map(|c| Client::Zendesk(Box::new(c)))
        .map_err(fail)
}

/// `window`: the rate-limit window when it is not a minute (an emulator
/// whose minutes are scaled down).
fn build(
    c: &Connection,
    o: &ConnectionOverride,
    secrets: &BTreeMap<String, Secret>,
    window: Option<Duration>,
    retry: RetryPolicy,
    limiters: &Limiters,
) -> Result<Client, SetupError> {
    let fail = |e: crate::connectors::error::ApiError| SetupError::Connection {
        connection: c.name.clone(),
        message: e.to_string(),
    };
    if keeps_grant(c) {
        // Its refresh token rotates on every use and lives in the store: a
        // client without the store would spend the configured seed (or a
        // stale copy) behind the runtime's back.
        return Err(SetupError::Connection {
            connection: c.name.clone(),
            message: format!(
                "{} keeps its grant in l3map's state store: give the command the l3map.toml of the runtime (--config), whose `state` and [credentials] key hold it",
                match c.kind {
                    Kind::Salesforce => "a Salesforce `flow web_server|refresh_token` connection",
                    _ => "`auth oauth_code`",
                }
            ),
        });
    }
    match c.kind {
        Kind::Salesforce => SalesforceClient::with_limiters(
            salesforce_config(c, o, secrets, retry, false)?,
            limiters,
        )
        .map(Client::Salesforce)
        .map_err(fail),
        _ => {
            let cfg = zendesk_config(c, o, secrets, window, retry)?;
            ZendeskClient::with_limiters(cfg, limiters)
                .map(|c| Client::Zendesk(Box::new(c)))
                .map_err(fail)
        }
    }
}

/// A Salesforce connection's configuration: its login URL, connected
/// app, sign-in by its properties, and its budget.
fn salesforce_config(
    c: &Connection,
    o: &ConnectionOverride,
    secrets: &BTreeMap<String, Secret>,
    retry: RetryPolicy,
    kept: bool,
) -> Result<SalesforceConfig, SetupError> {
    let login = o
        .login_url
        .clone()
        .or_else(|| c.settings.get("instance").cloned())
        .ok_or_else(|| missing(c, "instance"))?;
    let client_id = secrets
        .get("client_id")
        .map(|s| s.expose().to_string())
        .or_else(|| c.settings.get("client_id").cloned())
        .ok_or_else(|| missing(c, "client_id"))?;
    let auth = if kept {
        // From the store; the configured token is a seed at most.
        SalesforceAuth::WebServer {
            client_secret: secrets.get("client_secret").cloned(),
            refresh_token: secrets.get("refresh_token").cloned(),
        }
    } else {
        // A plain setting (`username "..."`) counts as well as a
        // reference (`username env("SF_USERNAME")`).
        SalesforceAuth::from_properties(&login, |key| {
            secrets
                .get(key)
                .cloned()
                .or_else(|| c.settings.get(key).map(Secret::new))
        })
        .map_err(|key| missing(c, key))?
    };
    let mut cfg = SalesforceConfig::with_auth(login, client_id, auth);
    cfg.retry = retry;
    if let Some(rpm) = o.rpm.or(c.rate_limit_rpm) {
        cfg.rpm = rpm;
    }
    if let Some(n) = o.max_concurrent.or(c.max_concurrent) {
        cfg.max_concurrent = n as usize;
    }
    if let Some(t) = o.timeout {
        cfg.timeout = t;
    }
    Ok(cfg)
}

/// A Zendesk connection's configuration: its credentials by `auth`, its
/// address and its budget.
fn zendesk_config(
    c: &Connection,
    o: &ConnectionOverride,
    secrets: &BTreeMap<String, Secret>,
    window: Option<Duration>,
    retry: RetryPolicy,
) -> Result<ZendeskConfig, SetupError> {
    let secret = |key: &str| secrets.get(key).cloned().ok_or_else(|| missing(c, key));
    let auth = c.settings.get("auth").map(String::as_str);
    let credentials = match auth {
        Some("oauth_code" | "client_credentials") => Credentials::OAuthClient {
            client_id: secrets
                .get("client_id")
                .map(|s| s.expose().to_string())
                .or_else(|| c.settings.get("client_id").cloned())
                .ok_or_else(|| missing(c, "client_id"))?,
            client_secret: secrets.get("client_secret").cloned(),
            // A seed: used only while the store has no grant.
            refresh_token: if auth == Some("oauth_code") {
                secrets.get("refresh_token").cloned()
            } else {
                None
            },
            scopes: vec![],
        },
        _ => {
            let token = secret("token")?;
            match c.settings.get("email") {
                Some(email) if auth == Some("api_token") => Credentials::ApiToken {
                    email: email.clone(),
                    token,
                },
                _ => Credentials::OAuth(token),
            }
        }
    };
    let mut cfg = match (
        o.base_url.as_ref(),
        c.settings.get("url"),
        c.settings.get("subdomain"),
    ) {
        (Some(url), _, _) | (None, Some(url), _) => ZendeskConfig::new(url.clone(), credentials),
        (None, None, Some(sub)) => ZendeskConfig::for_subdomain(sub, credentials),
        (None, None, None) => return Err(missing(c, "subdomain")),
    };
    cfg.retry = retry;
    if let Some(rpm) = o.rpm.or(c.rate_limit_rpm) {
        cfg.rpm = rpm;
    }
    if let Some(w) = window {
        cfg.rate_window = w;
    }
    if let Some(t) = o.timeout {
        cfg.timeout = t;
    }
    Ok(cfg)
}

/// The first URL a client of `c` opens: the Zendesk base URL, or the
/// Salesforce login URL (as `build` picks them, overrides first).
pub fn endpoint(c: &Connection, o: &ConnectionOverride) -> Option<String> {
    match c.kind {
        Kind::Salesforce => o
            .login_url
            .clone()
            .or_else(|| c.settings.get("instance").cloned()),
        _ => o
            .base_url
            .clone()
            .or_else(|| c.settings.get("url").cloned())
            .or_else(|| {
                c.settings
                    .get("subdomain")
                    .map(|s| format!("https://{s}.zendesk.com"))
            }),
    }
}

/// A client of one connection for a command a person waits on: the
/// configuration's overrides applied, every missing credential named in
/// one message, and [`interactive_retry`].
/// A connection that keeps its grant in the store needs `grants` (see
/// [`Grants::open`]).
pub fn interactive(
    c: &Connection,
    o: &ConnectionOverride,
    grants: Option<&Grants>,
) -> Result<Client, String> {
    super::config::all_at_once(super::config::connection_secret_problems(c))
        .map_err(|e| e.to_string())?;
    let secrets = connection_secrets(c).map_err(|e| e.to_string())?;
    if let (Some(g), true) = (grants, keeps_grant(c)) {
        return rebuild_kept(c, o, &secrets, &Limiters::default(), g, interactive_retry())
            .map_err(|e| e.to_string());
    }
    // One client, for one command: a budget of its own.
    build(
        c,
        o,
        &secrets,
        None,
        interactive_retry(),
        &Limiters::default(),
    )
    .map_err(|e| e.to_string())
}

/// Clients for the embedded default: every Zendesk connection talks to the
/// Zendesk emulator at `zendesk_url`, every Salesforce one to the
/// Salesforce emulator, with the emulators' development credentials.
pub fn for_emulators(
    program: &Program,
    zendesk_url: &str,
    salesforce_url: &str,
) -> Result<HashMap<String, Client>, SetupError> {
    for_emulators_scaled(program, zendesk_url, salesforce_url, 1)
}

/// [`for_emulators`] for emulators whose rate-limit window is `scale`
/// times shorter than a minute (`l3map e2e --quick`): each Zendesk
/// client's window is shortened the same, so the client paces against
/// the emulator (and reads its headers) exactly as it would against a
/// real minute.
pub fn for_emulators_scaled(
    program: &Program,
    zendesk_url: &str,
    salesforce_url: &str,
    scale: u32,
) -> Result<HashMap<String, Client>, SetupError> {
    for_emulators_in(
        program,
        zendesk_url,
        salesforce_url,
        scale,
        None,
        &Limiters::default(),
    )
}

/// [`for_emulators_scaled`] with a per-attempt `timeout` other than the
/// connectors' 30 s: the fault tests make answers slower than it.
pub fn for_emulators_tuned(
    program: &Program,
    zendesk_url: &str,
    salesforce_url: &str,
    scale: u32,
    timeout: Option<Duration>,
) -> Result<HashMap<String, Client>, SetupError> {
    let limiters = Limiters::default();
    for_emulators_in(
        program,
        zendesk_url,
        salesforce_url,
        scale,
        timeout,
        &limiters,
    )
}

/// [`for_emulators_tuned`], the clients' tokens limited in `limiters`.
pub fn for_emulators_in(
    program: &Program,
    zendesk_url: &str,
    salesforce_url: &str,
    scale: u32,
    timeout: Option<Duration>,
    limiters: &Limiters,
) -> Result<HashMap<String, Client>, SetupError> {
    let scale = scale.max(1);
    use crate::emulator::salesforce::SalesforceOptions;
    use crate::emulator::zendesk::DEV_TOKEN;
    let sf = SalesforceOptions::default();
    let mut out = HashMap::new();
    for c in &program.connections {
        let mut secrets = BTreeMap::new();
        let o = match c.kind {
            Kind::Salesforce => {
                secrets.insert("client_id".to_string(), Secret::new(sf.client_id.clone()));
                secrets.insert(
                    "client_secret".to_string(),
                    Secret::new(sf.client_secret.clone()),
                );
                secrets.insert(
                    "refresh_token".to_string(),
                    Secret::new(sf.refresh_token.clone()),
                );
                ConnectionOverride {
                    login_url: Some(salesforce_url.to_string()),
                    timeout,
                    ..ConnectionOverride::default()
                }
            }
            _ => {
                secrets.insert("token".to_string(), Secret::new(DEV_TOKEN));
                ConnectionOverride {
                    base_url: Some(zendesk_url.to_string()),
                    timeout,
                    ..ConnectionOverride::default()
                }
            }
        };
        let mut plain = c.clone();
        // The emulator's token is an OAuth bearer whatever the block says.
        plain.settings.remove("auth");
        // And its session the emulator's refresh token, whatever flow the
        // block declares (the emulator has no certificate by default).
        plain.settings.remove("username");
        plain.settings.remove("flow");
        let window = (scale > 1).then(|| Duration::from_secs(60) / scale);
        out.insert(
            c.name.clone(),
            limiters.naming(&c.name, || {
                build(&plain, &o, &secrets, window, runtime_retry(), limiters)
            })?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One process's clients wait in one line per token (the plan's
    /// budget is per token, docs/RUNTIME.md): two connections of one
    /// token built by one call share its limiter, and a second call (a
    /// second process, a second test) shares nothing with the first.
    #[test]
    fn connections_of_one_token_share_its_limiter_within_one_call() {
        let mut program = crate::runtime::compile::compile_embedded().expect("the fintech desk");
        let desk = program
            .connections
            .iter()
            .find(|c| c.kind == Kind::Zendesk)
            .expect("a Zendesk connection")
            .clone();
        program.connections.push(Connection {
            name: format!("{}_twin", desk.name),
            ..desk.clone()
        });
        let zendesk = |clients: &HashMap<String, Client>, name: &str| match &clients[name] {
            Client::Zendesk(z) => (**z).clone(),
            Client::Salesforce(_) => panic!("{name} is not Zendesk"),
        };
        let twin = format!("{}_twin", desk.name);
        let one = for_emulators(&program, "http://127.0.0.1:1", "http://127.0.0.1:2").unwrap();
        let (a, b) = (zendesk(&one, &desk.name), zendesk(&one, &twin));
        assert!(a.budget().shares_with(b.budget()).0);
        let other = for_emulators(&program, "http://127.0.0.1:1", "http://127.0.0.1:2").unwrap();
        assert!(
            !a.budget()
                .shares_with(zendesk(&other, &desk.name).budget())
                .0
        );
    }
}
