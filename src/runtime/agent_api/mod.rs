//! The agent API: the AI support agent submits its turns here and reads
//! the context it decides on (docs/AGENT_API.md).
//!
//! - `POST /v1/turns`: the turn is decided against the current mappings on
//!   the ticket as Zendesk has it now, its actions are recorded in the
//!   outbox before the answer, and the answer says what was accepted and
//!   what was refused, and why.
//! - `GET /v1/context/{ticket}`: the ticket and its Salesforce Account,
//!   the Account from the connector's 15-minute cache.
//!
//! Budget: one turn reads Zendesk once (the ticket) and Salesforce not at
//! all; one context read costs one Zendesk request and at most one
//! Salesforce request, none while the Account is cached.
//!
//! Here the routes and their handlers; beside them, by concern:
//! [`auth`] (the bearer token, before any body is read), [`request`]
//! (reading and checking a turn), [`turn`] (deciding and recording it),
//! [`idempotency`] (a retry's answer), [`context`] (the context read),
//! [`reads`] (the Zendesk and Salesforce reads both make), [`answer`]
//! (what the API answers, as types), [`fields`] (the ticket fields the
//! mappings name) and [`fail`] (refusals as JSON errors).

mod answer;
mod auth;
mod context;
mod fail;
mod idempotency;
pub mod mcp;
mod oauth;
mod reads;
mod request;
mod turn;

pub use idempotency::MEMO_BYTES;

use auth::{agent_gate, AgentName};
use context::ContextQuery;
use idempotency::{Memo, Remembered};
use request::{known_fields, parse_turn, turn_key};
use turn::SOURCE;

use crate::runtime::app::{body_error, error, App};
use crate::runtime::intake::Gate;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Instant;

/// What the agent API keeps beside the runtime's [`App`]: built with its
/// routes, so each router (one per runtime) has its own.
struct AgentApi {
    app: Arc<App>,
    memo: Memo,
}

/// The largest MCP message: tool arguments are a ticket id, a summary and
/// a few fields, and an `initialize` names a client.
const MCP_BODY: usize = 256 * 1024;

/// The agent API's routes, with their state.
pub fn routes(gate: Gate) -> Router<Arc<App>> {
    let api = Arc::new(AgentApi {
        app: gate.app.clone(),
        memo: Memo::new(),
    });
    let sessions = mcp::sessions::Sessions::new(gate.intake.streams);
    let mcp = tower::ServiceBuilder::new()
        .layer(from_fn_with_state(sessions, mcp::sessions::guard))
        .service(mcp::service(api.clone(), MCP_BODY));
    let gated = Router::new()
        .route("/v1/turns", post(post_turn).fallback(method_not_allowed))
        .route(
            "/v1/context/{ticket}",
            get(get_context).fallback(method_not_allowed),
        )
        .route_service("/mcp", mcp)
        .route_layer(from_fn_with_state(gate, agent_gate))
        .with_state(api);
    // RFC 9728: where an OAuth-capable MCP client learns how this resource
    // takes tokens (a 401 on /mcp points here).
    gated
        .route(
            "/.well-known/oauth-protected-resource",
            get(auth::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(auth::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route("/oauth/authorize", get(oauth::authorize))
        .route("/oauth/token", post(oauth::token))
}

/// `403`: the agent's `tools` in l3map.toml leave this out.
fn forbidden(agent: &str, tool: &str, route: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "agent {agent} may not use {route}: its `tools` in l3map.toml do not include {tool}"
        ),
    )
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "POST /v1/turns, GET /v1/context/{ticket}; see docs/AGENT_API.md",
    )
}

/// Authenticated by [`agent_gate`]; the body was read within the bounds.
async fn post_turn(
    State(api): State<Arc<AgentApi>>,
    Extension(AgentName(agent)): Extension<AgentName>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let app = &api.app;
    let started = Instant::now();
    // The agent's `tools` limit holds at both doors: a turn is `submit_turn`.
    if !app.agent_policy.permits(&agent, "submit_turn") {
        app.engine.metrics.event_rejected(SOURCE, "unauthorized");
        return forbidden(&agent, "submit_turn", "POST /v1/turns");
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            app.engine.metrics.event_rejected(SOURCE, "malformed");
            return body_error(e);
        }
    };
    let checked = parse_turn(&body).and_then(|c| {
        known_fields(
            &c.req.fields,
            app.engine.live().program.index().ticket_field_ids(),
        )?;
        Ok(c)
    });
    let checked = match checked {
        Ok(c) => c,
        Err(f) => {
            app.engine.metrics.event_rejected(SOURCE, "malformed");
            return f.into_response();
        }
    };
    let event_id = match &checked.req.turn_id {
        Some(t) => turn_key(&agent, t),
        None => turn_key(&agent, &format!("{:032x}", fastrand::u128(..))),
    };
    let memoized = checked.req.turn_id.is_some();
    let answer = match run_turn(&api, event_id, checked, memoized, false).await {
        Ok(a) => a,
        Err(f) => return f.into_response(),
    };
    let seconds = started.elapsed().as_secs_f64();
    app.engine.metrics.turn_latency(seconds);
    tracing::info!(
        agent = %agent, turn = %answer.turn, duplicate = answer.duplicate,
        accepted = answer.accepted.len(), refused = answer.refused.len(),
        latency_ms = (seconds * 1000.0) as u64, "agent turn"
    );
    match &answer.replay {
        Some(kept) => Json(kept).into_response(),
        None => Json(&*answer).into_response(),
    }
}

/// Decides a checked turn under `event_id` and answers it: once per id
/// when `memoized` (a retry gets the first answer, or `turn_id_reused`
/// when it says something else). `versioned`: the id is completed with
/// the ticket's `updated_at` as read ([`turn::execute`]).
async fn run_turn(
    api: &Arc<AgentApi>,
    event_id: String,
    checked: request::Checked,
    memoized: bool,
    versioned: bool,
) -> Result<Arc<answer::TurnAnswer>, fail::Fail> {
    let app = &api.app;
    let digest = checked.digest;
    let turn_id = checked.req.turn_id.clone();
    // Spawned, so an agent that hangs up does not cancel a turn halfway:
    // once recorded, its answer is kept for the retry.
    let task = {
        let api = api.clone();
        tokio::spawn(async move {
            let decide = async {
                turn::execute(&api.app, &event_id, checked, versioned)
                    .await
                    .map(Arc::new)
            };
            if memoized {
                api.memo.answer(event_id.clone(), decide).await
            } else {
                decide.await.map(|answer| Remembered {
                    answer,
                    decided_here: true,
                })
            }
        })
    };
    let remembered = match task.await {
        Ok(r) => r?,
        Err(e) => {
            tracing::error!(error = %e, "agent API: a turn's task failed");
            return Err(fail::fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the turn could not be decided; send it again with the same turn_id",
            ));
        }
    };
    if remembered.decided_here {
        return Ok(remembered.answer);
    }
    // Another request with this turn id ran it: this one is the retry.
    if remembered.answer.digest != digest {
        return Err(fail::fail(
            StatusCode::CONFLICT,
            "turn_id_reused",
            format!(
                "turn_id {:?} was already used for a different turn; use a new turn_id for a new turn",
                turn_id.unwrap_or_default()
            ),
        ));
    }
    app.engine.metrics.event_duplicate(SOURCE);
    let mut a = (*remembered.answer).clone();
    a.duplicate = true;
    Ok(Arc::new(a))
}

/// Authenticated by [`agent_gate`].
async fn get_context(
    State(api): State<Arc<AgentApi>>,
    Extension(AgentName(agent)): Extension<AgentName>,
    ticket: Result<Path<String>, PathRejection>,
    query: Result<Query<ContextQuery>, QueryRejection>,
) -> Response {
    if !api.app.agent_policy.permits(&agent, "get_ticket_context") {
        return forbidden(&agent, "get_ticket_context", "GET /v1/context");
    }
    match context::context(&api.app, ticket, query).await {
        Ok(body) => Json(body).into_response(),
        Err(f) => f.into_response(),
    }
}
