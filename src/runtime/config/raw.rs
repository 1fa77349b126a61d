//! The shape of l3map.toml as written, for serde. Unknown keys are errors
//! (`deny_unknown_fields`): a misspelt key silently ignored is a setting
//! that silently does not apply. Numbers are read as i64 and strings kept
//! with their spans, so `build.rs` checks ranges and formats with messages
//! of its own that point at the value.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::model::LogFormat;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of settings")]
pub(super) struct RawConfig {
    pub(super) mappings: Option<Spanned<String>>,
    pub(super) state: Option<Spanned<String>>,
    pub(super) store: Option<Spanned<RawStore>>,
    pub(super) server: Option<RawServer>,
    pub(super) webhook: Option<Spanned<RawWebhook>>,
    #[serde(default)]
    pub(super) agents: BTreeMap<String, Spanned<RawAgent>>,
    #[serde(default)]
    pub(super) ops: BTreeMap<String, Spanned<RawOps>>,
    pub(super) poll: Option<RawPoll>,
    pub(super) cdc: Option<super::cdc::RawCdc>,
    #[serde(default)]
    pub(super) connections: BTreeMap<String, RawConnection>,
    pub(super) credentials: Option<Spanned<RawCredentials>>,
    pub(super) outbox: Option<RawOutbox>,
    pub(super) retention: Option<RawRetention>,
    pub(super) log: Option<RawLog>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [store] table")]
pub(super) struct RawStore {
    pub(super) url: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) password_file: Option<Spanned<String>>,
    pub(super) pool_size: Option<Spanned<i64>>,
    pub(super) lease_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [server] table")]
pub(super) struct RawServer {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) max_connections: Option<Spanned<i64>>,
    pub(super) header_timeout_secs: Option<Spanned<i64>>,
    pub(super) body_timeout_secs: Option<Spanned<i64>>,
    pub(super) body_buffer_mib: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [webhook] table")]
pub(super) struct RawWebhook {
    pub(super) secret_env: Option<Spanned<String>>,
    pub(super) secret_file: Option<Spanned<String>>,
    pub(super) tolerance_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [agents.NAME] table")]
pub(super) struct RawAgent {
    pub(super) token_env: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<String>>,
    pub(super) tools: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) oauth: Option<Spanned<RawAgentOauth>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [ops.NAME] table")]
pub(super) struct RawOps {
    pub(super) token_env: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) actions: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [agents.NAME.oauth] table")]
pub(super) struct RawAgentOauth {
    pub(super) client_id: Spanned<String>,
    pub(super) client_secret_env: Option<Spanned<String>>,
    pub(super) client_secret_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) redirect_uris: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [poll] table")]
pub(super) struct RawPoll {
    pub(super) zendesk_interval_secs: Option<Spanned<i64>>,
    pub(super) salesforce_interval_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [connections.NAME] table")]
pub(super) struct RawConnection {
    pub(super) base_url: Option<Spanned<String>>,
    pub(super) login_url: Option<Spanned<String>>,
    pub(super) rpm: Option<Spanned<i64>>,
    pub(super) max_concurrent: Option<Spanned<i64>>,
    pub(super) timeout_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [outbox] table")]
pub(super) struct RawOutbox {
    pub(super) max_attempts: Option<Spanned<i64>>,
    pub(super) workers_per_connection: Option<Spanned<i64>>,
    pub(super) outage_window_secs: Option<Spanned<i64>>,
    pub(super) retry_min_ms: Option<Spanned<i64>>,
    pub(super) retry_max_secs: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [retention] table")]
pub(super) struct RawRetention {
    pub(super) events_days: Option<Spanned<i64>>,
    pub(super) done_actions_days: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [log] table")]
pub(super) struct RawLog {
    pub(super) format: Option<LogFormat>,
    pub(super) level: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [credentials] table")]
pub(super) struct RawCredentials {
    pub(super) key_env: Option<Spanned<String>>,
    pub(super) key_file: Option<Spanned<String>>,
    pub(super) refresh_margin_secs: Option<Spanned<i64>>,
}
