//! What every HTTP endpoint of the runtime shares: the application state
//! handlers receive, the body bound, and the JSON error every refusal is.
//! Its own file so the router (server.rs) can use the endpoints and the
//! endpoints (intake, webhook, agent API, listen) can use this without
//! using the router.

use super::engine::Engine;
use crate::connectors::salesforce::SalesforceClient;
use crate::connectors::zendesk::ZendeskClient;
use crate::connectors::Secret;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Zendesk caps webhook payloads well below this; anything larger is not
/// a webhook.
pub const MAX_BODY: usize = 1024 * 1024;

pub struct App {
    pub engine: Arc<Engine>,
    pub webhook_secret: Option<Secret>,
    pub tolerance: Duration,
    /// Agent name and bearer token, for the agent API.
    pub agents: Vec<(String, Secret)>,
    /// What agents may do beyond their bearer token: their MCP tool
    /// limits and their OAuth clients.
    pub agent_policy: AgentPolicy,
    /// The first Zendesk and Salesforce connections' clients: webhooks
    /// read the ticket they announce, the agent API reads context.
    pub zendesk: Option<(String, ZendeskClient)>,
    pub salesforce: Option<(String, SalesforceClient)>,
    /// Ticket -> linked Salesforce records, with its caches: one per
    /// runtime, shared by agent turns, context reads and webhooks.
    pub resolver: Arc<crate::runtime::links::resolve::Resolver>,
    /// Probe reads (`/healthz`, `/readyz`, `/metrics`) still waiting on
    /// the store: while it stalls, later probes answer at once instead of
    /// each parking one more blocking thread.
    pub probes: Arc<std::sync::atomic::AtomicUsize>,
    /// Who may open the ops console, and what it shows beyond the store.
    pub console: ConsoleAccess,
}

/// The ops console's state beyond the store (see `runtime::console`).
#[derive(Debug, Default)]
pub struct ConsoleAccess {
    /// `[ops.NAME]`: who may open it; none, and `/ui` answers 404.
    pub users: Vec<OpsUser>,
    /// The connections' request budgets (the budget page).
    pub limiters: Option<Arc<crate::connectors::limit::Limiters>>,
    /// Failed sign-ins in the current minute (minute, count): past a few,
    /// sign-ins wait for the next minute.
    pub failures: std::sync::Mutex<(u64, u32)>,
    /// Sessions signed out here (their MAC, until their expiry in seconds
    /// since 1970): a stolen copy of a signed-out cookie is refused.
    pub signed_out: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// `[ops.NAME]`: one who may open the ops console, and whether they may
/// act (Retry, Drop) or only read.
#[derive(Debug, Clone)]
pub struct OpsUser {
    pub name: String,
    pub token: Secret,
    pub actions: bool,
}

/// `[agents.NAME]` beyond the token.
#[derive(Debug, Default)]
pub struct AgentPolicy {
    /// The MCP tools an agent is limited to (`tools`); an agent not named
    /// here may use every tool.
    pub tools: std::collections::BTreeMap<String, Vec<String>>,
    /// The agents that may obtain access tokens from `/oauth/token`.
    pub oauth: Vec<OauthClient>,
    /// Authorization codes and refresh tokens already redeemed, by their
    /// `jti`, until they expire: each is good once (in this process).
    pub spent: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl AgentPolicy {
    /// Whether `agent` may use `tool` (an MCP tool, or the agent API's
    /// equivalent: `submit_turn` for `POST /v1/turns`,
    /// `get_ticket_context` for `GET /v1/context`).
    pub fn permits(&self, agent: &str, tool: &str) -> bool {
        self.tools
            .get(agent)
            .is_none_or(|t| t.iter().any(|x| x == tool))
    }
}

/// An agent as an OAuth client of l3map (`[agents.NAME.oauth]`).
#[derive(Debug, Clone)]
pub struct OauthClient {
    pub agent: String,
    pub client_id: String,
    pub secret: Secret,
    pub redirect_uris: Vec<String>,
}

pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": code, "message": message.into()})),
    )
        .into_response()
}

/// A body that could not be read: too large, or cut off.
pub fn body_error(e: BytesRejection) -> Response {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return error(
            status,
            "too_large",
            format!("the body is larger than {MAX_BODY} bytes"),
        );
    }
    error(status, "unreadable_body", e.body_text())
}
