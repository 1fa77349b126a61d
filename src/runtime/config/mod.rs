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
//! # Salesforce Change Data Capture over the Pub/Sub API (docs/RUNTIME.md,
//! # "Change Data Capture"): off unless enabled; set salesforce_interval_secs
//! # = 0 under [poll] to rely on it alone.
//! [cdc]
//! enabled = false
//! endpoint = "api.pubsub.salesforce.com:7443"   # TLS; "http://host:port" for an emulator
//! # channels = ["/data/AccountChangeEvent"]     # default: one per object the mappings name
//! batch = 100                                   # events asked for at a time, 1 to 100
//! # [cdc.endpoints]                             # one connection's own endpoint
//! # crm = "http://127.0.0.1:7443"
//!
//! # The key OAuth grants are sealed with in the state store (32 random
//! # bytes, base64 or hex: `openssl rand -base64 32`), read only when a
//! # connection uses `auth oauth_code` or `auth client_credentials`
//! # (Zendesk) or a Salesforce refresh flow; and how long before an access
//! # token expires it is renewed (1 to 3600 seconds; a quarter of the
//! # token's lifetime when that is less). docs/RUNTIME.md, "Credentials".
//! [credentials]
//! key_env = "L3MAP_CREDENTIALS_KEY"        # or key_file = "/run/secrets/l3map_key"
//! refresh_margin_secs = 120
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

//!
//! Where each part lives: `model.rs` the typed configuration the runtime
//! reads; `raw.rs` the file's shape for serde; `build.rs` one function per
//! section from the one to the other, with `values.rs` checking single
//! values; `literal.rs` refusing (and masking) credentials written into the
//! file; `secrets.rs` reading credentials from the environment or files;
//! `story.rs` which file, which `L3MAP_*` overrides and which webhook
//! secret; `error.rs` the one error type of all of them.

use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

mod agents;
mod build;
mod cdc;
mod doc;
mod error;
mod literal;
mod model;
mod raw;
mod secrets;
mod story;
mod values;

pub use cdc::{Cdc, DEFAULT_PUBSUB_ENDPOINT};
pub use error::{all_at_once, ConfigError};
pub use model::{
    Agent, AgentOauth, Config, ConnectionOverride, Credentials, Log, LogFormat, Outbox, Poll,
    Server, Webhook, CREDENTIALS_KEY_VAR, MCP_TOOLS,
};
pub use secrets::{connection_secret_problems, connection_secrets, SecretSource};
pub use story::{
    check_credentials, discover, locate, state_path, webhook_secret, WebhookSecret, CONFIG_FILE,
    CONFIG_VAR, OVERRIDES, WEBHOOK_SECRET_VAR,
};

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
}

/// TOML, then literal secrets, then the file's shape, then each value.
fn parse_file(text: &str, base_dir: &Path, path: &Path) -> Result<Config, ConfigError> {
    let doc = doc::Doc::new(text, path, base_dir);
    let root = DeTable::parse(text).map_err(|e| doc.toml_error(&e))?;
    let doc = doc.showing(literal::redact(text, root.get_ref()));
    // Before typed parsing, so a literal secret under a misspelt or
    // misplaced key is still reported as what it is.
    literal::refuse(&doc, root.get_ref())?;
    let raw = raw::RawConfig::deserialize(toml::Deserializer::from(root))
        .map_err(|e| doc.toml_error(&e))?;
    doc.build(raw)
}

#[cfg(test)]
mod tests;
