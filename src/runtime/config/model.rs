//! What `l3map run` is configured with, as the rest of the runtime reads
//! it: typed, checked and with every default filled in. How these values
//! are read from l3map.toml is `raw.rs` (the file's shape) and `build.rs`
//! (checking it into these).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use super::secrets::SecretSource;
use crate::runtime::listen::HttpLimits;

/// What `l3map run` needs besides the mappings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mappings: PathBuf,
    /// The SQLite store, unless `store` names a PostgreSQL one.
    pub state: PathBuf,
    /// `[store]`: PostgreSQL, shared by a fleet of replicas.
    pub store: Option<StoreConfig>,
    pub server: Server,
    /// `None`: webhooks are not accepted.
    pub webhook: Option<Webhook>,
    pub agents: BTreeMap<String, Agent>,
    /// `[ops.NAME]`: who may open the ops console at `/ui`.
    pub ops: BTreeMap<String, Ops>,
    pub poll: Poll,
    /// `[cdc]`: Change Data Capture over the Pub/Sub API.
    pub cdc: super::cdc::Cdc,
    /// Keyed by the mapping's connection name.
    pub connections: BTreeMap<String, ConnectionOverride>,
    /// `[credentials]`: the key OAuth grants are sealed with in the store.
    pub credentials: Credentials,
    pub outbox: Outbox,
    pub retention: crate::runtime::store::Retention,
    pub log: Log,
}

/// `[store]`: the PostgreSQL store several replicas share (docs/RUNTIME.md,
/// "Running several replicas").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// A libpq URL or key=value string, without a password.
    pub url: String,
    /// `password_env` / `password_file`; `None`: the server needs none
    /// (peer or trust authentication, a `.pgpass`).
    pub password: Option<SecretSource>,
    /// Connections in each replica's pool.
    pub pool: usize,
    /// How long a silent replica keeps its claims and singleton leases.
    pub lease: Duration,
}

impl StoreConfig {
    /// Where to connect, the password resolved.
    pub fn target(&self) -> Result<crate::runtime::store::postgres::PgTarget, ConfigError> {
        Ok(crate::runtime::store::postgres::PgTarget {
            url: self.url.clone(),
            password: self
                .password
                .as_ref()
                .map(|p| p.resolve_for(&format!("`store.{}`", p.key("password"))))
                .transpose()?,
            pool: self.pool,
            lease: self.lease,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub listen: SocketAddr,
    pub limits: HttpLimits,
}

impl Default for Server {
    fn default() -> Server {
        Server {
            listen: SocketAddr::from(([127, 0, 0, 1], 8780)),
            limits: HttpLimits::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub secret: SecretSource,
    pub tolerance: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub token: SecretSource,
    /// The MCP tools this agent may list and call (`tools = [...]`);
    /// `None`: every tool.
    pub tools: Option<Vec<String>>,
    /// `[agents.NAME.oauth]`: the agent may also obtain access tokens
    /// from l3map's OAuth endpoints (docs/MCP.md, "OAuth").
    pub oauth: Option<AgentOauth>,
}

/// `[ops.NAME]`: a person (or a team) who may open the ops console, with
/// the token they sign in with, and whether they may act (Retry, Drop) or
/// only read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ops {
    pub token: SecretSource,
    pub actions: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOauth {
    pub client_id: String,
    pub client_secret: SecretSource,
    /// Where an authorization code may be sent; none: client credentials only.
    pub redirect_uris: Vec<String>,
}

/// The MCP server's tools (docs/MCP.md), by name: what `[agents.NAME]
/// tools` may list.
pub const MCP_TOOLS: &[&str] = &[
    "get_ticket_context",
    "request_status_change",
    "set_ticket_field",
    "normalise_sku",
    "escalate",
    "explain_decision",
    "submit_turn",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    /// `None`: not polled.
    pub zendesk_interval: Option<Duration>,
    pub salesforce_interval: Option<Duration>,
}

impl Default for Poll {
    fn default() -> Poll {
        Poll {
            zendesk_interval: Some(Duration::from_secs(30)),
            salesforce_interval: Some(Duration::from_secs(30)),
        }
    }
}

/// Replaces, for this deployment, what the mapping's connection declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionOverride {
    pub base_url: Option<String>,
    pub login_url: Option<String>,
    pub rpm: Option<u32>,
    pub max_concurrent: Option<u32>,
    /// Per HTTP attempt: a slow sandbox may need more than the 30 s
    /// default, fault tests far less.
    pub timeout: Option<Duration>,
}

/// Where the key that seals stored OAuth grants comes from, and how early
/// an access token is renewed (docs/RUNTIME.md, "Credentials").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// 32 random bytes, base64 or hex. Read only when a connection keeps
    /// its grant in the store.
    pub key: SecretSource,
    /// At most this long before an access token's `expires_in` runs out it
    /// is renewed (a quarter of its lifetime when that is shorter).
    pub refresh_margin: Duration,
}

/// The variable the credentials key is read from unless l3map.toml names
/// another (`[credentials] key_env`) or a file (`key_file`).
pub const CREDENTIALS_KEY_VAR: &str = "L3MAP_CREDENTIALS_KEY";

impl Default for Credentials {
    fn default() -> Credentials {
        Credentials {
            key: SecretSource::Env(CREDENTIALS_KEY_VAR.into()),
            refresh_margin: Duration::from_secs(120),
        }
    }
}

impl Credentials {
    /// Reads the key now: one line naming the variable or file, or why its
    /// value is no key (never the value).
    pub fn key(&self) -> Result<crate::runtime::seal::SealKey, ConfigError> {
        let owner = format!("`credentials.{}`", self.key.key("key"));
        let text = self.key.resolve_for(&owner)?;
        crate::runtime::seal::SealKey::parse(&text).map_err(|e| ConfigError::CredentialsKey {
            owner,
            reason: e.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbox {
    /// Tries failed for a reason other than an outage, then parked.
    pub max_attempts: u32,
    pub workers_per_connection: usize,
    /// How long an outage (connect errors, timeouts, 5xx, 429) is retried,
    /// from an action's first such failure, before it is parked until the
    /// connection answers again.
    pub outage_window: Duration,
    /// The backoff's first bound (doubling each try, full jitter)...
    pub retry_min: Duration,
    /// ...and its cap.
    pub retry_max: Duration,
}

impl Default for Outbox {
    fn default() -> Outbox {
        let r = crate::runtime::apply::Retries::default();
        Outbox {
            max_attempts: r.max_attempts,
            workers_per_connection: 4,
            outage_window: r.outage_window,
            retry_min: r.min,
            retry_max: r.max,
        }
    }
}

impl Outbox {
    /// The applier's retry policy.
    pub fn retries(&self) -> crate::runtime::apply::Retries {
        crate::runtime::apply::Retries {
            max_attempts: self.max_attempts,
            outage_window: self.outage_window,
            min: self.retry_min,
            max: self.retry_max,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub format: LogFormat,
    /// A level or an `EnvFilter` directive list.
    pub level: String,
}

impl Default for Log {
    fn default() -> Log {
        Log {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl Config {
    /// The configuration when there is no file: every default, no webhook,
    /// no agents.
    pub fn default_for(mappings: PathBuf) -> Config {
        Config {
            mappings,
            state: PathBuf::from(".l3map/state.db"),
            store: None,
            server: Server::default(),
            webhook: None,
            agents: BTreeMap::new(),
            ops: BTreeMap::new(),
            poll: Poll::default(),
            cdc: super::cdc::Cdc::default(),
            connections: BTreeMap::new(),
            credentials: Credentials::default(),
            outbox: Outbox::default(),
            retention: crate::runtime::store::Retention::default(),
            log: Log::default(),
        }
    }

    /// Opens the store this configuration names: PostgreSQL (`[store]`)
    /// or the SQLite file at `state`. One line on failure.
    /// A PostgreSQL schema older than this l3map is refused (`l3map
    /// migrate`); SQLite migrates in place as it always has.
    pub fn open_store(&self) -> Result<crate::runtime::store::Store, String> {
        self.open_store_with(false)
    }

    /// [`Config::open_store`] for `l3map run`: an older PostgreSQL schema
    /// is migrated (under a lock, once for the fleet).
    pub fn open_store_migrating(&self) -> Result<crate::runtime::store::Store, String> {
        self.open_store_with(true)
    }

    fn open_store_with(&self, migrate: bool) -> Result<crate::runtime::store::Store, String> {
        use crate::runtime::store::Store;
        match &self.store {
            Some(pg) => {
                let target = pg.target().map_err(|e| e.to_string())?;
                let opened = if migrate {
                    Store::open_postgres(&target)
                } else {
                    Store::open_postgres_existing(&target)
                };
                opened.map_err(|e| e.to_string())
            }
            None => Store::open(&self.state).map_err(|e| e.to_string()),
        }
    }

    /// Where the store is, for messages (never a password).
    pub fn store_shown(&self) -> String {
        match &self.store {
            Some(pg) => crate::runtime::store::postgres::PgTarget {
                url: pg.url.clone(),
                password: None,
                pool: pg.pool,
                lease: pg.lease,
            }
            .shown(),
            None => self.state.display().to_string(),
        }
    }

    /// Resolves every secret the config names (webhook, agents) so `run` can
    /// refuse to start before serving.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        if let Some(webhook) = &self.webhook {
            let owner = format!("`webhook.{}`", webhook.secret.key("secret"));
            webhook.secret.resolve_for(&owner)?;
        }
        for (name, agent) in &self.agents {
            let owner = format!("`agents.{name}.{}`", agent.token.key("token"));
            agent.token.resolve_for(&owner)?;
        }
        for (name, ops) in &self.ops {
            let owner = format!("`ops.{name}.{}`", ops.token.key("token"));
            ops.token.resolve_for(&owner)?;
        }
        Ok(())
    }
}
