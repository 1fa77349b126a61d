//! `l3map.toml`: how `l3map run` is deployed — where the mappings and the
//! durable state live, what it listens on, and where each credential comes
//! from. The mappings say *what* to do; this file says *where*.
//!
//! A complete file (every key is optional except `mappings`; the values
//! shown for the others are their defaults):
//!
//! ```toml
//! # The directory of .l3map files, and the SQLite store (outbox, inbox,
//! # cursors, audit). Relative paths are relative to this file's directory.
//! mappings = "mappings/fintech"
//! state = ".l3map/state.db"
//!
//! [server]
//! # An IP address and a port (a host name such as "localhost" is refused).
//! listen = "127.0.0.1:8780"
//! # Bounds on what anyone who can reach the port may hold (docs/RUNTIME.md,
//! # "Limits and guarantees"): open connections (1 to 65536), seconds to
//! # send a request head and to stay idle between requests (1 to 300),
//! # seconds to send a body, and for a stalled response (1 to 600), and MiB
//! # of request bodies held at once (1 to 4096).
//! max_connections = 512
//! header_timeout_secs = 10
//! body_timeout_secs = 10
//! body_buffer_mib = 32
//!
//! # Zendesk webhooks: the signing secret, and how far a signature's
//! # timestamp may be from now (1 to 86400 seconds). Without this section
//! # webhooks are not accepted.
//! [webhook]
//! secret_env = "ZENDESK_WEBHOOK_SECRET"   # or secret_file = "/run/secrets/zd_webhook"
//! tolerance_secs = 300
//!
//! # The AI agents allowed to call the runtime, each with its bearer token.
//! [agents.support-bot]
//! token_env = "L3MAP_AGENT_TOKEN"          # or token_file = "/run/secrets/agent"
//!
//! # How often to poll for changes the webhooks missed, 0 to 86400 seconds;
//! # 0 turns polling off.
//! [poll]
//! zendesk_interval_secs = 30
//! salesforce_interval_secs = 30
//!
//! # Per-deployment overrides of a mapping's connection, by its name: point
//! # it at a sandbox or an emulator, or lower its share of the rate limit.
//! [connections.desk]
//! base_url = "https://acme-fintech.zendesk.com"
//! rpm = 700
//! max_concurrent = 10
//! timeout_secs = 30                       # per HTTP attempt, 1 to 600
//!
//! [connections.crm]
//! login_url = "https://login.salesforce.com"
//!
//! [outbox]
//! max_attempts = 8                        # failures other than an outage, then parked
//! workers_per_connection = 4
//! outage_window_secs = 86400              # an outage is retried this long, then parked until the connection answers
//! retry_min_ms = 2000                     # backoff: full jitter under min * 2^n,
//! retry_max_secs = 300                    # capped here
//!
//! # How long the store keeps rows, 0 to 36500 days; 0 keeps them for
//! # good. Dead letters, actions not yet applied and hand-offs are kept
//! # regardless, and so is an event while an action refers to it.
//! [retention]
//! events_days = 30
//! done_actions_days = 90
//!
//! [log]
//! format = "json"                          # or "human" (the default)
//! level = "info"                           # a level, or a filter like "info,l3map=debug"
//! ```
//!
//! Rules, each reported as one line `FILE:LINE:COLUMN: what to fix`:
//!
//! - Unknown keys are errors: a misspelt key silently ignored is a setting
//!   that silently does not apply.
//! - Credentials are never written into the file. A key named `token`,
//!   `secret`, `password`, `client_secret`, `refresh_token` or `api_token`
//!   holding a value, anywhere, is refused (without repeating the value);
//!   name an environment variable (`*_env`) or a file (`*_file`) instead,
//!   exactly one of the two.
//! - Connection credentials stay in the mapping's `connection` block
//!   (`token env("VAR")`); [`connection_secrets`] resolves them.
//!
//! Parsing never reads a secret: [`Config::check_secrets`] does, so `run`
//! can refuse to start before it serves anything.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::connectors::Secret;
use crate::runtime::listen::HttpLimits;

mod story;
pub use story::{
    all_at_once, check_credentials, discover, locate, state_path, webhook_secret, WebhookSecret,
    CONFIG_FILE, CONFIG_VAR, OVERRIDES, WEBHOOK_SECRET_VAR,
};

/// The longest poll interval or webhook tolerance: beyond a day, polling is
/// effectively off and a signature check no longer stops replays.
const MAX_SECS: i64 = 86_400;

const LITERAL_SECRET_KEYS: [&str; 6] = [
    "token",
    "secret",
    "password",
    "client_secret",
    "refresh_token",
    "api_token",
];

/// What `l3map run` needs besides the mappings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mappings: PathBuf,
    pub state: PathBuf,
    pub server: Server,
    /// `None`: webhooks are not accepted.
    pub webhook: Option<Webhook>,
    pub agents: BTreeMap<String, Agent>,
    pub poll: Poll,
    /// Keyed by the mapping's connection name.
    pub connections: BTreeMap<String, ConnectionOverride>,
    pub outbox: Outbox,
    pub retention: crate::runtime::store::Retention,
    pub log: Log,
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
}

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

/// Where a credential is read from; the value itself is only ever held as
/// a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable's name.
    Env(String),
    /// A file's path (already resolved against the config's directory).
    File(PathBuf),
}

impl SecretSource {
    /// Reads the credential now. Errors name the variable or the path,
    /// never what was read.
    pub fn resolve(&self) -> Result<Secret, ConfigError> {
        self.resolve_for("")
    }

    fn resolve_for(&self, owner: &str) -> Result<Secret, ConfigError> {
        match self {
            SecretSource::Env(var) => {
                let problem = match std::env::var(var) {
                    Ok(v) if !v.is_empty() => return Ok(Secret::new(v)),
                    Ok(_) => "is empty",
                    Err(std::env::VarError::NotPresent) => "is not set",
                    Err(std::env::VarError::NotUnicode(_)) => "is not valid UTF-8",
                };
                Err(ConfigError::SecretEnv {
                    owner: owner.into(),
                    var: var.clone(),
                    problem,
                })
            }
            SecretSource::File(path) => {
                let unreadable = |reason: String| ConfigError::SecretFile {
                    owner: owner.into(),
                    path: path.clone(),
                    reason,
                };
                // A credential is short; 64 KiB leaves room for a PEM key.
                let text = crate::project::read_limited_text(path, 64 * 1024)
                    .map_err(|e| unreadable(e.to_string()))?;
                // Only the line ending goes: `echo secret > file` adds one,
                // but any other whitespace may be part of the credential.
                let value = text.trim_end_matches(['\n', '\r']);
                if value.trim().is_empty() {
                    return Err(unreadable(
                        "the file is empty; write the credential into it".into(),
                    ));
                }
                Ok(Secret::new(value))
            }
        }
    }
}

/// Why the configuration cannot be used. Every message is one line, names
/// the file (or variable, or connection) and says what to fix, and never
/// contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the configuration: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{}:{line}:{column}: `{key}` holds a literal secret, and credentials never go in the configuration; {hint}",
        path.display()
    )]
    LiteralSecret {
        path: PathBuf,
        /// Dotted, e.g. `webhook.secret`.
        key: String,
        line: usize,
        column: usize,
        hint: String,
    },
    #[error("{}environment variable `{var}` {problem}; export it before starting l3map", owner_prefix(.owner))]
    SecretEnv {
        /// Whose secret it is, e.g. "`webhook.secret_env`" or
        /// "connection `desk` `token`"; empty when resolved on its own.
        owner: String,
        var: String,
        problem: &'static str,
    },
    #[error("{}cannot read secret file {}: {reason}", owner_prefix(.owner), path.display())]
    SecretFile {
        owner: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{}unknown secret source `{kind}`; use env(\"VAR\") or file(\"/path\")", owner_prefix(.owner))]
    SecretKind { owner: String, kind: String },
    /// An `L3MAP_*` override holding a value its key does not take.
    #[error("environment variable `{var}`: {message}")]
    Env { var: String, message: String },
}

fn owner_prefix(owner: &str) -> String {
    if owner.is_empty() {
        String::new()
    } else {
        format!("{owner}: ")
    }
}

impl Config {
    /// Reads and parses `path`; relative paths in it are taken from the
    /// file's directory, so the result does not depend on where `run` is
    /// started.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::project::read_limited_text(path, 1024 * 1024).map_err(|source| {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        parse_file(&text, base_dir, path)
    }

    /// Parses a configuration's text. Errors name `base_dir/l3map.toml`,
    /// since there is no file to name.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        parse_file(text, base_dir, &base_dir.join("l3map.toml"))
    }

    /// The configuration when there is no file: every default, no webhook,
    /// no agents.
    pub fn default_for(mappings: PathBuf) -> Config {
        Config {
            mappings,
            state: PathBuf::from(".l3map/state.db"),
            server: Server::default(),
            webhook: None,
            agents: BTreeMap::new(),
            poll: Poll::default(),
            connections: BTreeMap::new(),
            outbox: Outbox::default(),
            retention: crate::runtime::store::Retention::default(),
            log: Log::default(),
        }
    }

    /// Resolves every secret the config names (webhook, agents) so `run` can
    /// refuse to start before serving.
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        if let Some(webhook) = &self.webhook {
            webhook.secret.resolve_for(&format!(
                "`webhook.{}`",
                source_key("secret", &webhook.secret)
            ))?;
        }
        for (name, agent) in &self.agents {
            agent.token.resolve_for(&format!(
                "`agents.{name}.{}`",
                source_key("token", &agent.token)
            ))?;
        }
        Ok(())
    }
}

fn source_key(stem: &str, source: &SecretSource) -> String {
    match source {
        SecretSource::Env(_) => format!("{stem}_env"),
        SecretSource::File(_) => format!("{stem}_file"),
    }
}

/// Resolves a mapping connection's secret references (`token env("VAR")`,
/// `client_secret file("/path")`) into secrets keyed by the property they
/// are for. File paths are taken as written (relative to the working
/// directory), as `l3map schema pull` does.
/// A connection's `webhook_secret` is no credential of its client: it is
/// read where the webhook story picks the one secret that wins (see
/// `config::story::webhook_secret`), and only when it wins, so a secret
/// another place overrides need not be set.
fn is_webhook_secret(r: &crate::ir::SecretRef) -> bool {
    r.key == "webhook_secret"
}

pub fn connection_secrets(
    conn: &crate::ir::Connection,
) -> Result<BTreeMap<String, Secret>, ConfigError> {
    conn.secrets
        .iter()
        .filter(|r| !is_webhook_secret(r))
        .map(|r| {
            let owner = format!("connection `{}` `{}`", conn.name, r.key);
            let source = match r.source.as_str() {
                "env" => SecretSource::Env(r.name.clone()),
                "file" => SecretSource::File(PathBuf::from(&r.name)),
                other => {
                    return Err(ConfigError::SecretKind {
                        owner,
                        kind: other.into(),
                    })
                }
            };
            Ok((r.key.clone(), source.resolve_for(&owner)?))
        })
        .collect()
}

/// Every secret reference of `conn` that cannot be read now, each as one
/// message naming the connection, the key and the variable or file.
pub fn connection_secret_problems(conn: &crate::ir::Connection) -> Vec<String> {
    conn.secrets
        .iter()
        .filter(|r| !is_webhook_secret(r))
        .filter_map(|r| {
            let owner = format!("connection `{}` `{}`", conn.name, r.key);
            let source = match r.source.as_str() {
                "env" => SecretSource::Env(r.name.clone()),
                "file" => SecretSource::File(PathBuf::from(&r.name)),
                other => {
                    return Some(
                        ConfigError::SecretKind {
                            owner,
                            kind: other.into(),
                        }
                        .to_string(),
                    )
                }
            };
            source.resolve_for(&owner).err().map(|e| e.to_string())
        })
        .collect()
}

// The file's shape as written. Numbers are read as i64 and strings kept
// with their spans so range and format errors point at the value with a
// message of our own.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of settings")]
struct RawConfig {
    mappings: Option<Spanned<String>>,
    state: Option<Spanned<String>>,
    server: Option<RawServer>,
    webhook: Option<Spanned<RawWebhook>>,
    #[serde(default)]
    agents: BTreeMap<String, Spanned<RawAgent>>,
    poll: Option<RawPoll>,
    #[serde(default)]
    connections: BTreeMap<String, RawConnection>,
    outbox: Option<RawOutbox>,
    retention: Option<RawRetention>,
    log: Option<RawLog>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [server] table")]
struct RawServer {
    listen: Option<Spanned<String>>,
    max_connections: Option<Spanned<i64>>,
    header_timeout_secs: Option<Spanned<i64>>,
    body_timeout_secs: Option<Spanned<i64>>,
    body_buffer_mib: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [webhook] table")]
struct RawWebhook {
    secret_env: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    tolerance_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [agents.NAME] table")]
struct RawAgent {
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [poll] table")]
struct RawPoll {
    zendesk_interval_secs: Option<Spanned<i64>>,
    salesforce_interval_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [connections.NAME] table")]
struct RawConnection {
    base_url: Option<Spanned<String>>,
    login_url: Option<Spanned<String>>,
    rpm: Option<Spanned<i64>>,
    max_concurrent: Option<Spanned<i64>>,
    timeout_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [outbox] table")]
struct RawOutbox {
    max_attempts: Option<Spanned<i64>>,
    workers_per_connection: Option<Spanned<i64>>,
    outage_window_secs: Option<Spanned<i64>>,
    retry_min_ms: Option<Spanned<i64>>,
    retry_max_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [retention] table")]
struct RawRetention {
    events_days: Option<Spanned<i64>>,
    done_actions_days: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [log] table")]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<Spanned<String>>,
}

/// The text being parsed and the file to name in errors.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
    base_dir: &'a Path,
}

fn parse_file(text: &str, base_dir: &Path, path: &Path) -> Result<Config, ConfigError> {
    let src = Source {
        text,
        path,
        base_dir,
    };
    let root = DeTable::parse(text).map_err(|e| src.toml_error(&e))?;
    // Before typed parsing, so a literal secret under a misspelt or
    // misplaced key is still reported as what it is.
    src.refuse_literal_secrets(root.get_ref())?;
    let raw =
        RawConfig::deserialize(toml::Deserializer::from(root)).map_err(|e| src.toml_error(&e))?;
    src.build(raw)
}

impl Source<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn invalid(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.position(span.start);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        // Without the input attached, the error's Display is its message
        // followed by "in `a.b`", the only public way to the key path.
        let shown = e.to_string();
        let keys = shown
            .lines()
            .last()
            .and_then(|l| l.strip_prefix("in `"))
            .and_then(|l| l.strip_suffix('`'))
            .filter(|k| !k.is_empty());
        // Numbers are read as i64 only to range-check them ourselves.
        let what = e
            .message()
            .replace("expected i64", "expected a whole number")
            .lines()
            .collect::<Vec<_>>()
            .join("; ");
        let message = match keys {
            Some(keys) => format!("`{keys}`: {what}"),
            None => what,
        };
        self.invalid(e.span().unwrap_or(0..0), message)
    }

    fn refuse_literal_secrets(&self, root: &DeTable<'_>) -> Result<(), ConfigError> {
        let mut found = Vec::new();
        walk_table(root, &mut Vec::new(), &mut found);
        // The map is ordered by key, not by position: report the first in
        // the file, where the reader will look first.
        match found.into_iter().min_by_key(|(_, span)| span.start) {
            None => Ok(()),
            Some((key_path, span)) => {
                let (line, column) = self.position(span.start);
                Err(ConfigError::LiteralSecret {
                    path: self.path.to_path_buf(),
                    hint: literal_secret_hint(&key_path),
                    key: key_path.join("."),
                    line,
                    column,
                })
            }
        }
    }

    fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    fn path_value(&self, key: &str, value: &Spanned<String>) -> Result<PathBuf, ConfigError> {
        if value.get_ref().trim().is_empty() {
            return Err(self.invalid(value.span(), format!("`{key}` is empty; give a path")));
        }
        Ok(self.resolve_path(value.get_ref()))
    }

    fn build(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mappings = match &raw.mappings {
            Some(m) => self.path_value("mappings", m)?,
            None => {
                return Err(self.invalid(
                    0..0,
                    "`mappings` is missing; name the directory of .l3map files, e.g. mappings = \"mappings/fintech\"",
                ))
            }
        };
        let state = match &raw.state {
            Some(s) => self.path_value("state", s)?,
            None => self.resolve_path(".l3map/state.db"),
        };

        let mut server = Server::default();
        let raw_server = raw.server.unwrap_or(RawServer {
            listen: None,
            max_connections: None,
            header_timeout_secs: None,
            body_timeout_secs: None,
            body_buffer_mib: None,
        });
        let limits = &mut server.limits;
        if let Some(v) = &raw_server.max_connections {
            limits.max_connections = self.ranged("server.max_connections", v, 1, 65_536)? as usize;
        }
        if let Some(v) = &raw_server.header_timeout_secs {
            limits.header_timeout =
                Duration::from_secs(self.ranged("server.header_timeout_secs", v, 1, 300)?);
        }
        if let Some(v) = &raw_server.body_timeout_secs {
            limits.body_timeout =
                Duration::from_secs(self.ranged("server.body_timeout_secs", v, 1, 600)?);
        }
        if let Some(v) = &raw_server.body_buffer_mib {
            limits.body_buffer_bytes =
                self.ranged("server.body_buffer_mib", v, 1, 4096)? as usize * 1024 * 1024;
        }
        if let Some(listen) = raw_server.listen {
            server.listen = listen.get_ref().trim().parse().map_err(|_| {
                self.invalid(
                    listen.span(),
                    format!(
                        "`server.listen` = \"{}\" is not a socket address; write an IP address and a port, e.g. \"127.0.0.1:8780\"",
                        listen.get_ref()
                    ),
                )
            })?;
        }

        let webhook = match raw.webhook {
            None => None,
            Some(w) => {
                let span = w.span();
                let w = w.into_inner();
                let secret = self.secret_source(
                    "webhook",
                    "secret",
                    span,
                    w.secret_env.as_ref(),
                    w.secret_file.as_ref(),
                )?;
                let tolerance = match &w.tolerance_secs {
                    None => Duration::from_secs(300),
                    Some(t) => Duration::from_secs(self.ranged(
                        "webhook.tolerance_secs",
                        t,
                        1,
                        MAX_SECS,
                    )?),
                };
                Some(Webhook { secret, tolerance })
            }
        };

        let mut agents = BTreeMap::new();
        for (name, agent) in raw.agents {
            let span = agent.span();
            let agent = agent.into_inner();
            let token = self.secret_source(
                &format!("agents.{name}"),
                "token",
                span,
                agent.token_env.as_ref(),
                agent.token_file.as_ref(),
            )?;
            agents.insert(name, Agent { token });
        }

        let mut poll = Poll::default();
        if let Some(p) = raw.poll {
            if let Some(v) = &p.zendesk_interval_secs {
                poll.zendesk_interval = self.interval("poll.zendesk_interval_secs", v)?;
            }
            if let Some(v) = &p.salesforce_interval_secs {
                poll.salesforce_interval = self.interval("poll.salesforce_interval_secs", v)?;
            }
        }

        let mut connections = BTreeMap::new();
        for (name, c) in raw.connections {
            let key = |k: &str| format!("connections.{name}.{k}");
            let over = ConnectionOverride {
                base_url: c
                    .base_url
                    .as_ref()
                    .map(|u| self.url(&key("base_url"), u))
                    .transpose()?,
                login_url: c
                    .login_url
                    .as_ref()
                    .map(|u| self.url(&key("login_url"), u))
                    .transpose()?,
                rpm: c
                    .rpm
                    .as_ref()
                    .map(|v| self.ranged(&key("rpm"), v, 1, u32::MAX.into()))
                    .transpose()?
                    .map(|v| v as u32),
                max_concurrent: c
                    .max_concurrent
                    .as_ref()
                    .map(|v| self.ranged(&key("max_concurrent"), v, 1, u32::MAX.into()))
                    .transpose()?
                    .map(|v| v as u32),
                timeout: c
                    .timeout_secs
                    .as_ref()
                    .map(|v| self.ranged(&key("timeout_secs"), v, 1, 600))
                    .transpose()?
                    .map(Duration::from_secs),
            };
            connections.insert(name, over);
        }

        let mut outbox = Outbox::default();
        if let Some(o) = raw.outbox {
            if let Some(v) = &o.max_attempts {
                outbox.max_attempts =
                    self.ranged("outbox.max_attempts", v, 1, u32::MAX.into())? as u32;
            }
            if let Some(v) = &o.workers_per_connection {
                // More workers than a connection's concurrency limit only
                // queue on the limiter; 1024 is far past any real limit.
                outbox.workers_per_connection =
                    self.ranged("outbox.workers_per_connection", v, 1, 1024)? as usize;
            }
            if let Some(v) = &o.outage_window_secs {
                // Up to a year: a window is how long nobody needs to look.
                outbox.outage_window = Duration::from_secs(self.ranged(
                    "outbox.outage_window_secs",
                    v,
                    1,
                    366 * 86_400,
                )?);
            }
            if let Some(v) = &o.retry_min_ms {
                outbox.retry_min =
                    Duration::from_millis(self.ranged("outbox.retry_min_ms", v, 10, 3_600_000)?);
            }
            if let Some(v) = &o.retry_max_secs {
                outbox.retry_max =
                    Duration::from_secs(self.ranged("outbox.retry_max_secs", v, 1, MAX_SECS)?);
            }
            if outbox.retry_max < outbox.retry_min {
                let span = o
                    .retry_max_secs
                    .as_ref()
                    .or(o.retry_min_ms.as_ref())
                    .map(|v| v.span())
                    .unwrap_or(0..0);
                return Err(self.invalid(
                    span,
                    format!(
                        "`outbox.retry_max_secs` ({} s) is below `outbox.retry_min_ms` ({} ms); raise the cap or lower the minimum",
                        outbox.retry_max.as_secs(),
                        outbox.retry_min.as_millis()
                    ),
                ));
            }
        }

        let mut retention = crate::runtime::store::Retention::default();
        if let Some(r) = raw.retention {
            let days = |key: &str, v: &Spanned<i64>| -> Result<Option<Duration>, ConfigError> {
                let n = self.ranged(key, v, 0, 36_500)?;
                Ok((n > 0).then(|| Duration::from_secs(n * 86_400)))
            };
            if let Some(v) = &r.events_days {
                retention.events = days("retention.events_days", v)?;
            }
            if let Some(v) = &r.done_actions_days {
                retention.done_actions = days("retention.done_actions_days", v)?;
            }
        }

        let mut log = Log::default();
        if let Some(l) = raw.log {
            if let Some(format) = l.format {
                log.format = format;
            }
            if let Some(level) = &l.level {
                log.level = self.log_level(level)?;
            }
        }

        Ok(Config {
            mappings,
            state,
            server,
            webhook,
            agents,
            poll,
            connections,
            outbox,
            retention,
            log,
        })
    }

    /// Exactly one of `{stem}_env` / `{stem}_file`.
    fn secret_source(
        &self,
        table: &str,
        stem: &str,
        table_span: Range<usize>,
        env: Option<&Spanned<String>>,
        file: Option<&Spanned<String>>,
    ) -> Result<SecretSource, ConfigError> {
        match (env, file) {
            (Some(_), Some(file)) => Err(self.invalid(
                file.span(),
                format!("`{table}` has both `{stem}_env` and `{stem}_file`; keep one"),
            )),
            (None, None) => Err(self.invalid(
                table_span,
                format!(
                    "`{table}` needs its {stem}: add {stem}_env = \"VAR\" or {stem}_file = \"/path\""
                ),
            )),
            (Some(env), None) => {
                let var = env.get_ref();
                // A value that is not a variable name may well be the secret
                // pasted in the wrong key: refuse it without repeating it.
                let valid = var.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(self.invalid(
                        env.span(),
                        format!(
                            "`{table}.{stem}_env` must name an environment variable (letters, digits and `_`), not hold the secret itself"
                        ),
                    ));
                }
                Ok(SecretSource::Env(var.clone()))
            }
            (None, Some(file)) => Ok(SecretSource::File(
                self.path_value(&format!("{table}.{stem}_file"), file)?,
            )),
        }
    }

    fn ranged(&self, key: &str, v: &Spanned<i64>, min: i64, max: i64) -> Result<u64, ConfigError> {
        let n = *v.get_ref();
        if n < min || n > max {
            return Err(self.invalid(
                v.span(),
                format!("`{key}` = {n} is out of range; use {min} to {max}"),
            ));
        }
        Ok(n as u64)
    }

    fn interval(&self, key: &str, v: &Spanned<i64>) -> Result<Option<Duration>, ConfigError> {
        let n = *v.get_ref();
        if !(0..=MAX_SECS).contains(&n) {
            return Err(self.invalid(
                v.span(),
                format!("`{key}` = {n} is out of range; use 1 to {MAX_SECS} seconds, or 0 to turn polling off"),
            ));
        }
        Ok((n > 0).then(|| Duration::from_secs(n as u64)))
    }

    fn url(&self, key: &str, v: &Spanned<String>) -> Result<String, ConfigError> {
        let text = v.get_ref().trim();
        let parsed = reqwest::Url::parse(text).ok();
        if let Some(u) = &parsed {
            // Checked first so the message below never repeats a password.
            if u.password().is_some() || !u.username().is_empty() {
                return Err(self.invalid(
                    v.span(),
                    format!("`{key}` carries credentials; remove them from the URL (the mapping's connection block names them)"),
                ));
            }
        }
        match parsed {
            Some(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(text.to_string())
            }
            _ => Err(self.invalid(
                v.span(),
                format!(
                    "`{key}` = \"{text}\" is not an http(s) URL; write it like \"https://acme.zendesk.com\""
                ),
            )),
        }
    }

    fn log_level(&self, v: &Spanned<String>) -> Result<String, ConfigError> {
        const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
        let level = v.get_ref().trim();
        // A bare word must be a level: EnvFilter would take "verbose" as a
        // target name and quietly log nothing of ours.
        let is_filter = level.contains(['=', ',', '[']);
        let ok = if is_filter {
            tracing_subscriber::EnvFilter::try_new(level).is_ok()
        } else {
            LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level))
        };
        if !ok {
            return Err(self.invalid(
                v.span(),
                format!(
                    "`log.level` = \"{level}\" is not a level; use trace, debug, info, warn, error or off, or a filter such as \"info,l3map=debug\""
                ),
            ));
        }
        Ok(level.to_string())
    }
}

fn is_secret_key(key: &str) -> bool {
    LITERAL_SECRET_KEYS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
}

/// Collects every secret-named key holding a value. A secret-named table
/// is a name (`[agents.token]` is an agent called "token"), so it is walked
/// into, not refused.
fn walk_table(
    table: &DeTable<'_>,
    at: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, Range<usize>)>,
) {
    for (key, value) in table {
        at.push(key.get_ref().to_string());
        match value.get_ref() {
            DeValue::Table(t) => walk_table(t, at, found),
            other => {
                if is_secret_key(key.get_ref()) {
                    found.push((at.clone(), key.span()));
                } else if let DeValue::Array(items) = other {
                    walk_array(items, at, found);
                }
            }
        }
        at.pop();
    }
}

fn walk_array(
    items: &toml::de::DeArray<'_>,
    at: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, Range<usize>)>,
) {
    for (i, item) in items.iter().enumerate() {
        let last = at.pop().unwrap_or_default();
        at.push(format!("{last}[{i}]"));
        match item.get_ref() {
            DeValue::Table(t) => walk_table(t, at, found),
            DeValue::Array(inner) => walk_array(inner, at, found),
            _ => {}
        }
        at.pop();
        at.push(last);
    }
}

fn literal_secret_hint(key_path: &[String]) -> String {
    let leaf = key_path.last().map_or("secret", String::as_str);
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    match key_path.first().map(String::as_str) {
        Some(w) if w.starts_with("webhook") => {
            "use secret_env = \"VAR\" or secret_file = \"/path\"".into()
        }
        Some(a) if a.starts_with("agents") => {
            "use token_env = \"VAR\" or token_file = \"/path\"".into()
        }
        Some(c) if c.starts_with("connections") => format!(
            "declare it in the mapping's connection block as {leaf} env(\"VAR\") or {leaf} file(\"/path\")"
        ),
        _ => "read it from an environment variable or a file instead".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Kind;
    use crate::ir::{Connection, Loc, SecretRef};

    const FULL: &str = r#"
mappings = "mappings/fintech"
state = ".l3map/state.db"
[server]
listen = "127.0.0.1:8780"
[webhook]
secret_env = "ZENDESK_WEBHOOK_SECRET"   # or secret_file = "/run/secrets/zd_webhook"
tolerance_secs = 300
[agents.support-bot]
token_env = "L3MAP_AGENT_TOKEN"          # or token_file
[poll]
zendesk_interval_secs = 30
salesforce_interval_secs = 30
[connections.desk]
base_url = "https://acme-fintech.zendesk.com"
rpm = 700
[connections.crm]
login_url = "https://login.salesforce.com"
[outbox]
max_attempts = 8
workers_per_connection = 4
[log]
format = "json"
level = "info"
"#;

    fn base() -> &'static Path {
        Path::new("/srv/l3map")
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, base())
    }

    fn err(text: &str) -> (ConfigError, String) {
        let e = parse(text).expect_err("should be refused");
        let shown = e.to_string();
        assert!(!shown.contains('\n'), "one line: {shown}");
        (e, shown)
    }

    /// A path under the temp directory no other test (or test run) uses.
    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("l3map-config-{}-{name}", std::process::id()))
    }

    #[test]
    fn default_for_has_every_default() {
        let c = Config::default_for(PathBuf::from("mappings/shop"));
        assert_eq!(c.mappings, PathBuf::from("mappings/shop"));
        assert_eq!(c.state, PathBuf::from(".l3map/state.db"));
        assert_eq!(c.server.listen, "127.0.0.1:8780".parse().unwrap());
        assert_eq!(c.webhook, None);
        assert!(c.agents.is_empty());
        assert_eq!(c.poll.zendesk_interval, Some(Duration::from_secs(30)));
        assert_eq!(c.poll.salesforce_interval, Some(Duration::from_secs(30)));
        assert!(c.connections.is_empty());
        assert_eq!(c.outbox.max_attempts, 8);
        assert_eq!(c.outbox.workers_per_connection, 4);
        assert_eq!(c.log.format, LogFormat::Human);
        assert_eq!(c.log.level, "info");
        assert!(c.check_secrets().is_ok());
    }

    #[test]
    fn a_minimal_file_takes_the_same_defaults() {
        let c = parse("mappings = \"mappings/shop\"\n").unwrap();
        let mut expected = Config::default_for(base().join("mappings/shop"));
        expected.state = base().join(".l3map/state.db");
        assert_eq!(c, expected);
    }

    #[test]
    fn the_full_example_parses() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.mappings, base().join("mappings/fintech"));
        assert_eq!(c.state, base().join(".l3map/state.db"));
        assert_eq!(c.server.listen, SocketAddr::from(([127, 0, 0, 1], 8780)));
        assert_eq!(
            c.webhook,
            Some(Webhook {
                secret: SecretSource::Env("ZENDESK_WEBHOOK_SECRET".into()),
                tolerance: Duration::from_secs(300),
            })
        );
        assert_eq!(
            c.agents["support-bot"].token,
            SecretSource::Env("L3MAP_AGENT_TOKEN".into())
        );
        assert_eq!(c.poll, Poll::default());
        assert_eq!(
            c.connections["desk"],
            ConnectionOverride {
                base_url: Some("https://acme-fintech.zendesk.com".into()),
                rpm: Some(700),
                ..ConnectionOverride::default()
            }
        );
        assert_eq!(
            c.connections["crm"],
            ConnectionOverride {
                login_url: Some("https://login.salesforce.com".into()),
                ..ConnectionOverride::default()
            }
        );
        assert_eq!(c.outbox, Outbox::default());
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.log.level, "info");
    }

    #[test]
    fn the_module_doc_example_parses() {
        let doc: String = include_str!("mod.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        assert!(doc.contains("[connections.crm]"), "{doc}");
        let c = parse(&doc).unwrap();
        assert_eq!(c.connections["desk"].max_concurrent, Some(10));
        assert_eq!(c.connections["desk"].timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = temp_path("relative");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("l3map.toml");
        std::fs::write(
            &file,
            "mappings = \"mappings/fintech\"\nstate = \"/var/lib/l3map/state.db\"\n\
             [webhook]\nsecret_file = \"secrets/zd\"\n\
             [agents.bot]\ntoken_file = \"/run/secrets/agent\"\n",
        )
        .unwrap();
        let c = Config::load(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.mappings, dir.join("mappings/fintech"));
        assert_eq!(c.state, PathBuf::from("/var/lib/l3map/state.db"));
        assert_eq!(
            c.webhook.unwrap().secret,
            SecretSource::File(dir.join("secrets/zd"))
        );
        assert_eq!(
            c.agents["bot"].token,
            SecretSource::File(PathBuf::from("/run/secrets/agent"))
        );
        let c = parse("mappings = \"m\"\n").unwrap();
        assert_eq!(c.state, base().join(".l3map/state.db"));
    }

    #[test]
    fn load_names_an_unreadable_file() {
        let missing = temp_path("missing.toml");
        let e = Config::load(&missing).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
    }

    #[test]
    fn errors_name_the_loaded_file_with_line_and_column() {
        let dir = temp_path("named");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("prod.toml");
        std::fs::write(&file, "mappings = \"m\"\n[server]\nlisten = \"nowhere\"\n").unwrap();
        let e = Config::load(&file).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}:3:10: ", file.display())),
            "{shown}"
        );
    }

    #[test]
    fn every_literal_secret_key_is_refused_without_its_value() {
        let value = "zd-oauth-0123456789abcdef";
        for key in LITERAL_SECRET_KEYS {
            let places = [
                (
                    format!("mappings = \"m\"\n[webhook]\n{key} = \"{value}\"\n"),
                    format!("webhook.{key}"),
                    "use secret_env = \"VAR\" or secret_file = \"/path\"",
                ),
                (
                    format!("mappings = \"m\"\n[agents.x]\n{key} = \"{value}\"\n"),
                    format!("agents.x.{key}"),
                    "use token_env = \"VAR\" or token_file = \"/path\"",
                ),
                (
                    format!("mappings = \"m\"\n[connections.desk]\n{key} = \"{value}\"\n"),
                    format!("connections.desk.{key}"),
                    "declare it in the mapping's connection block",
                ),
                (
                    format!("mappings = \"m\"\n{key} = \"{value}\"\n"),
                    key.to_string(),
                    "environment variable or a file",
                ),
            ];
            for (text, path, hint) in places {
                let (e, shown) = err(&text);
                match &e {
                    ConfigError::LiteralSecret {
                        key: k,
                        hint: h,
                        line,
                        column,
                        ..
                    } => {
                        assert_eq!(k, &path);
                        assert!(h.contains(hint), "{h}");
                        assert_eq!((*line, *column), (text.lines().count(), 1));
                    }
                    other => panic!("{path}: {other:?}"),
                }
                assert!(!shown.contains(value), "{shown}");
                assert!(!format!("{e:?}").contains(value), "{e:?}");
                assert!(shown.contains(&format!("`{path}`")), "{shown}");
            }
        }
    }

    #[test]
    fn literal_secrets_are_refused_in_any_form() {
        let value = "hunter2-very-secret";
        for text in [
            format!("mappings = \"m\"\nwebhook.secret = \"{value}\"\n"),
            format!("mappings = \"m\"\nwebhook = {{ secret = \"{value}\" }}\n"),
            format!("mappings = \"m\"\n[webhook]\nSecret = \"{value}\"\n"),
            "mappings = \"m\"\n[webhook]\nsecret_env = \"X\"\nsecret = 12345\n".to_string(),
            format!("mappings = \"m\"\n[[agents.x.extra]]\ntoken = \"{value}\"\n"),
            // Refused before the unknown section is, so the value is never
            // echoed by a type error.
            format!("mappings = \"m\"\n[nonsense]\npassword = [\"{value}\"]\n"),
        ] {
            let (e, shown) = err(&text);
            assert!(
                matches!(e, ConfigError::LiteralSecret { .. }),
                "{text}: {e:?}"
            );
            assert!(!shown.contains(value), "{shown}");
            assert!(!shown.contains("12345"), "{shown}");
        }
    }

    #[test]
    fn a_name_that_happens_to_be_secret_is_not_a_secret() {
        let c = parse("mappings = \"m\"\n[agents.token]\ntoken_env = \"AGENT_TOKEN\"\n").unwrap();
        assert_eq!(
            c.agents["token"].token,
            SecretSource::Env("AGENT_TOKEN".into())
        );
    }

    #[test]
    fn exactly_one_of_env_and_file() {
        let (_, shown) =
            err("mappings = \"m\"\n[webhook]\nsecret_env = \"A\"\nsecret_file = \"/b\"\n");
        assert!(shown.contains(":4:15: "), "{shown}");
        assert!(
            shown.contains("both `secret_env` and `secret_file`"),
            "{shown}"
        );

        let (_, shown) = err("mappings = \"m\"\n[webhook]\ntolerance_secs = 60\n");
        assert!(shown.contains(":2:"), "{shown}");
        assert!(
            shown.contains("add secret_env = \"VAR\" or secret_file = \"/path\""),
            "{shown}"
        );

        let (_, shown) =
            err("mappings = \"m\"\n[agents.bot]\ntoken_env = \"A\"\ntoken_file = \"/b\"\n");
        assert!(shown.contains("`agents.bot` has both"), "{shown}");

        let (_, shown) = err("mappings = \"m\"\n[agents.bot]\n");
        assert!(shown.contains("`agents.bot` needs its token"), "{shown}");
    }

    #[test]
    fn an_env_name_that_is_not_a_name_is_not_repeated() {
        let pasted = "sk-live-AbC/123+xyz=";
        let (_, shown) = err(&format!(
            "mappings = \"m\"\n[webhook]\nsecret_env = \"{pasted}\"\n"
        ));
        assert!(
            shown.contains("must name an environment variable"),
            "{shown}"
        );
        assert!(!shown.contains(pasted), "{shown}");
    }

    #[test]
    fn unknown_keys_are_errors_with_their_position() {
        let (e, shown) = err("mappings = \"m\"\nlisten = \"127.0.0.1:1\"\n");
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    line: 2,
                    column: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(shown.contains("unknown field `listen`"), "{shown}");

        let (e, shown) = err("mappings = \"m\"\n[outbox]\nmax_attempts = 3\nmax_atempts = 4\n");
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    line: 4,
                    column: 1,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(shown.contains("`outbox`"), "{shown}");
        assert!(shown.contains("unknown field `max_atempts`"), "{shown}");

        let (_, shown) = err("mappings = \"m\"\n[connections.desk]\nrate = 5\n");
        assert!(shown.contains("unknown field `rate`"), "{shown}");
        assert!(shown.contains(":3:1: "), "{shown}");
    }

    #[test]
    fn type_and_syntax_errors_have_positions() {
        let (e, shown) = err("mappings = \"m\"\n[outbox]\nmax_attempts = \"eight\"\n");
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    line: 3,
                    column: 16,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(shown.contains("`outbox.max_attempts`"), "{shown}");
        assert!(shown.contains("expected a whole number"), "{shown}");

        let (_, shown) = err("mappings = \"m\"\nwebhook = 3\n");
        assert!(shown.contains("expected a [webhook] table"), "{shown}");
        assert!(!shown.contains("Raw"), "{shown}");

        let (e, _) = err("mappings = \"m\"\n[server\n");
        assert!(matches!(e, ConfigError::Invalid { line: 2, .. }), "{e:?}");

        let (_, shown) = err("mappings = \"m\"\n[log]\nformat = \"xml\"\n");
        assert!(
            shown.contains("`human`") && shown.contains("`json`"),
            "{shown}"
        );
    }

    #[test]
    fn mappings_is_required() {
        let (_, shown) = err("state = \"s.db\"\n");
        assert!(shown.contains("`mappings` is missing"), "{shown}");
        let (_, shown) = err("mappings = \"\"\n");
        assert!(shown.contains("`mappings` is empty"), "{shown}");
    }

    #[test]
    fn listen_must_be_a_socket_address() {
        for bad in ["localhost:8780", "127.0.0.1", "8780", "127.0.0.1:99999"] {
            let (_, shown) = err(&format!("mappings = \"m\"\n[server]\nlisten = \"{bad}\"\n"));
            assert!(shown.contains(":3:10: "), "{shown}");
            assert!(shown.contains("not a socket address"), "{shown}");
        }
        let c = parse("mappings = \"m\"\n[server]\nlisten = \"[::1]:9000\"\n").unwrap();
        assert_eq!(c.server.listen, "[::1]:9000".parse().unwrap());
    }

    #[test]
    fn server_limits_are_read_and_checked() {
        let c = parse(
            "mappings = \"m\"\n[server]\nmax_connections = 64\nheader_timeout_secs = 3\n\
             body_timeout_secs = 20\nbody_buffer_mib = 8\n",
        )
        .unwrap();
        assert_eq!(
            c.server.limits,
            HttpLimits {
                max_connections: 64,
                header_timeout: Duration::from_secs(3),
                body_timeout: Duration::from_secs(20),
                body_buffer_bytes: 8 * 1024 * 1024,
            }
        );
        assert_eq!(c.server.listen, Server::default().listen);
        for (key, bad) in [
            ("max_connections", "0"),
            ("max_connections", "70000"),
            ("header_timeout_secs", "0"),
            ("header_timeout_secs", "301"),
            ("body_timeout_secs", "601"),
            ("body_buffer_mib", "0"),
            ("body_buffer_mib", "5000"),
        ] {
            let (_, shown) = err(&format!("mappings = \"m\"\n[server]\n{key} = {bad}\n"));
            assert!(
                shown.contains(&format!("`server.{key}` = {bad} is out of range")),
                "{shown}"
            );
            assert!(shown.contains(":3:"), "{shown}");
        }
        let (_, shown) = err("mappings = \"m\"\n[server]\nmax_conections = 5\n");
        assert!(shown.contains("max_conections"), "{shown}");
    }

    #[test]
    fn intervals_zero_is_off_and_a_day_is_the_most() {
        let c = parse(
            "mappings = \"m\"\n[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 86400\n",
        )
        .unwrap();
        assert_eq!(c.poll.zendesk_interval, None);
        assert_eq!(
            c.poll.salesforce_interval,
            Some(Duration::from_secs(86_400))
        );
        for bad in ["86401", "-1"] {
            let (_, shown) = err(&format!(
                "mappings = \"m\"\n[poll]\nzendesk_interval_secs = {bad}\n"
            ));
            assert!(shown.contains("`poll.zendesk_interval_secs`"), "{shown}");
            assert!(shown.contains("0 to turn polling off"), "{shown}");
        }
    }

    #[test]
    fn numeric_ranges() {
        let (_, shown) = err("mappings = \"m\"\n[connections.desk]\nrpm = 0\n");
        assert!(
            shown.contains("`connections.desk.rpm` = 0 is out of range"),
            "{shown}"
        );
        let (_, shown) = err("mappings = \"m\"\n[connections.desk]\nmax_concurrent = 0\n");
        assert!(shown.contains("max_concurrent"), "{shown}");
        for bad in ["0", "601"] {
            let (_, shown) = err(&format!(
                "mappings = \"m\"\n[connections.desk]\ntimeout_secs = {bad}\n"
            ));
            assert!(shown.contains("`connections.desk.timeout_secs`"), "{shown}");
        }
        let (_, shown) = err("mappings = \"m\"\n[outbox]\noutage_window_secs = 0\n");
        assert!(shown.contains("`outbox.outage_window_secs`"), "{shown}");
        let (_, shown) = err("mappings = \"m\"\n[outbox]\nretry_min_ms = 1\n");
        assert!(shown.contains("`outbox.retry_min_ms`"), "{shown}");
        let (e, shown) =
            err("mappings = \"m\"\n[outbox]\nretry_min_ms = 5000\nretry_max_secs = 2\n");
        assert!(
            shown.contains("`outbox.retry_max_secs` (2 s) is below"),
            "{shown}"
        );
        assert!(matches!(e, ConfigError::Invalid { line: 4, .. }), "{e:?}");
        let c = parse("mappings = \"m\"\n[outbox]\noutage_window_secs = 600\nretry_min_ms = 100\nretry_max_secs = 1\n").unwrap();
        assert_eq!(
            c.outbox.retries(),
            crate::runtime::apply::Retries {
                max_attempts: 8,
                outage_window: Duration::from_secs(600),
                min: Duration::from_millis(100),
                max: Duration::from_secs(1),
            }
        );
        let (_, shown) = err("mappings = \"m\"\n[outbox]\nmax_attempts = 0\n");
        assert!(shown.contains("`outbox.max_attempts`"), "{shown}");
        let (_, shown) = err("mappings = \"m\"\n[outbox]\nworkers_per_connection = 0\n");
        assert!(shown.contains("`outbox.workers_per_connection`"), "{shown}");
        let (_, shown) =
            err("mappings = \"m\"\n[webhook]\nsecret_env = \"S\"\ntolerance_secs = 0\n");
        assert!(shown.contains("`webhook.tolerance_secs`"), "{shown}");
        let c = parse("mappings = \"m\"\n[webhook]\nsecret_env = \"S\"\ntolerance_secs = 60\n")
            .unwrap();
        assert_eq!(c.webhook.unwrap().tolerance, Duration::from_secs(60));
    }

    #[test]
    fn urls_must_be_http_and_carry_no_credentials() {
        let (_, shown) =
            err("mappings = \"m\"\n[connections.desk]\nbase_url = \"acme.zendesk.com\"\n");
        assert!(shown.contains("not an http(s) URL"), "{shown}");
        let (_, shown) = err(
            "mappings = \"m\"\n[connections.desk]\nbase_url = \"https://me:s3cr3tpass@acme.zendesk.com\"\n",
        );
        assert!(shown.contains("carries credentials"), "{shown}");
        assert!(!shown.contains("s3cr3tpass"), "{shown}");
        let c =
            parse("mappings = \"m\"\n[connections.desk]\nbase_url = \"http://127.0.0.1:8801\"\n")
                .unwrap();
        assert_eq!(
            c.connections["desk"].base_url.as_deref(),
            Some("http://127.0.0.1:8801")
        );
    }

    #[test]
    fn log_levels() {
        for ok in ["debug", "WARN", "info,l3map=debug"] {
            let c = parse(&format!("mappings = \"m\"\n[log]\nlevel = \"{ok}\"\n")).unwrap();
            assert_eq!(c.log.level, ok);
        }
        let (_, shown) = err("mappings = \"m\"\n[log]\nlevel = \"verbose\"\n");
        assert!(
            shown.contains("`log.level` = \"verbose\" is not a level"),
            "{shown}"
        );
    }

    #[test]
    fn env_secrets_resolve_and_name_the_variable_when_missing() {
        let var = "L3MAP_CONFIG_TEST_WEBHOOK_SECRET_3f9a";
        let agent_var = "L3MAP_CONFIG_TEST_AGENT_TOKEN_3f9a";
        let c = parse(&format!(
            "mappings = \"m\"\n[webhook]\nsecret_env = \"{var}\"\n[agents.bot]\ntoken_env = \"{agent_var}\"\n"
        ))
        .unwrap();

        let e = c.check_secrets().unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("`webhook.secret_env`"), "{shown}");
        assert!(shown.contains(&format!("`{var}` is not set")), "{shown}");

        std::env::set_var(var, "whsec-value-123");
        let e = c.check_secrets().unwrap_err();
        assert!(e.to_string().contains("`agents.bot.token_env`"), "{e}");
        assert!(e.to_string().contains(agent_var), "{e}");

        std::env::set_var(agent_var, "");
        let e = c.check_secrets().unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");

        std::env::set_var(agent_var, "agent-value-456");
        c.check_secrets().unwrap();
        let secret = c.webhook.as_ref().unwrap().secret.resolve().unwrap();
        assert_eq!(secret.expose(), "whsec-value-123");

        std::env::remove_var(var);
        std::env::remove_var(agent_var);
    }

    #[test]
    fn file_secrets_are_read_and_trimmed_of_the_line_ending() {
        let path = temp_path("secret-file");
        std::fs::write(&path, "  file-value-789 \r\n\n").unwrap();
        let secret = SecretSource::File(path.clone()).resolve().unwrap();
        assert_eq!(secret.expose(), "  file-value-789 ");

        std::fs::write(&path, "\n").unwrap();
        let e = SecretSource::File(path.clone()).resolve().unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");

        std::fs::remove_file(&path).unwrap();
        let e = SecretSource::File(path.clone()).resolve().unwrap_err();
        let shown = e.to_string();
        assert!(matches!(e, ConfigError::SecretFile { .. }), "{e:?}");
        assert!(shown.starts_with("cannot read secret file "), "{shown}");
        assert!(shown.contains(&*path.to_string_lossy()), "{shown}");
    }

    #[test]
    fn check_secrets_reads_agent_files() {
        let dir = temp_path("agent-files");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("agent"), "agent-file-value\n").unwrap();
        let c = Config::parse(
            "mappings = \"m\"\n[agents.bot]\ntoken_file = \"agent\"\n[agents.other]\ntoken_file = \"nope\"\n",
            &dir,
        )
        .unwrap();
        let e = c.check_secrets().unwrap_err();
        assert!(e.to_string().contains("`agents.other.token_file`"), "{e}");
        assert!(!e.to_string().contains("agent-file-value"), "{e}");
        assert_eq!(
            c.agents["bot"].token.resolve().unwrap().expose(),
            "agent-file-value"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn connection(secrets: Vec<SecretRef>) -> Connection {
        Connection {
            name: "desk".into(),
            kind: Kind::Zendesk,
            settings: BTreeMap::from([("subdomain".to_string(), "acme".to_string())]),
            secrets,
            scopes: vec!["read".into()],
            objects: vec![],
            rate_limit_rpm: Some(700),
            max_concurrent: None,
            loc: Loc {
                file: 0,
                line: 1,
                col: 1,
                start: 0,
                end: 0,
            },
        }
    }

    fn secret_ref(key: &str, source: &str, name: &str) -> SecretRef {
        SecretRef {
            key: key.into(),
            source: source.into(),
            name: name.into(),
        }
    }

    #[test]
    fn connection_secrets_resolve_env_and_file() {
        let var = "L3MAP_CONFIG_TEST_CONN_TOKEN_3f9a";
        let path = temp_path("conn-secret");
        std::fs::write(&path, "client-secret-value\n").unwrap();
        std::env::set_var(var, "conn-token-value");
        let conn = connection(vec![
            secret_ref("token", "env", var),
            secret_ref("client_secret", "file", &path.to_string_lossy()),
        ]);
        let got = connection_secrets(&conn).unwrap();
        std::env::remove_var(var);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["token"].expose(), "conn-token-value");
        assert_eq!(got["client_secret"].expose(), "client-secret-value");
        assert!(connection_secrets(&connection(vec![])).unwrap().is_empty());
    }

    #[test]
    fn connection_secrets_name_connection_key_and_source() {
        let var = "L3MAP_CONFIG_TEST_CONN_MISSING_3f9a";
        let e = connection_secrets(&connection(vec![secret_ref("token", "env", var)])).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!(
                "connection `desk` `token`: environment variable `{var}` is not set"
            )),
            "{shown}"
        );

        let path = temp_path("conn-missing");
        let e = connection_secrets(&connection(vec![secret_ref(
            "refresh_token",
            "file",
            &path.to_string_lossy(),
        )]))
        .unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with("connection `desk` `refresh_token`: "),
            "{shown}"
        );
        assert!(shown.contains(&*path.to_string_lossy()), "{shown}");

        let e =
            connection_secrets(&connection(vec![secret_ref("token", "vault", "x")])).unwrap_err();
        assert!(
            e.to_string().contains("unknown secret source `vault`"),
            "{e}"
        );
    }

    #[test]
    fn retention_is_in_days_and_zero_keeps_rows_for_good() {
        use crate::runtime::store::Retention;
        let c = parse("mappings = \"m\"\n").unwrap();
        assert_eq!(c.retention, Retention::default());
        assert_eq!(c.retention.events, Some(30 * Retention::DAY));
        assert_eq!(c.retention.done_actions, Some(90 * Retention::DAY));
        let c = parse("mappings = \"m\"\n[retention]\nevents_days = 7\ndone_actions_days = 0\n")
            .unwrap();
        assert_eq!(c.retention.events, Some(7 * Retention::DAY));
        assert_eq!(c.retention.done_actions, None);
        let (_, shown) = err("mappings = \"m\"\n[retention]\nevents_days = -1\n");
        assert!(
            shown.contains("`retention.events_days` = -1 is out of range; use 0 to 36500"),
            "{shown}"
        );
        let (_, shown) = err("mappings = \"m\"\n[retention]\nevents = 7\n");
        assert!(shown.contains("events"), "{shown}");
    }
}
