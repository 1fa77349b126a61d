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

use super::apply::error_kind;
use super::engine::{Engine, Ingested};
use super::intake::{with_body, Gate};
use super::ops::json_value;
use super::server::{body_error, error, App};
use super::store::Accepted;
use crate::connectors::error::ApiError;
use crate::connectors::salesforce::Record as SfRecord;
use crate::connectors::zendesk::Ticket as ZdTicket;
use crate::eval::convert::{id_value, zendesk::from_ticket};
use crate::eval::decide::{decide, ActionKind, Record, Rule};
use crate::eval::event::{Event, EventKind, MoneyJson, Ticket, Turn};
use crate::ir::{CommentBody, EscAction, FieldRef, Program, Ref, TemplatePart};
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as JsonValue};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The event source the store and the metrics know agent turns by.
const SOURCE: &str = "agent";

/// A turn id is the agent's; it ends up in the event id, logs and the
/// store, so it is kept short and printable.
const MAX_TURN_ID: usize = 128;

/// How long a turn's answer is kept for a retry to receive verbatim. An
/// agent retries within seconds; the store's dedup lasts forever, this
/// only decides whether the retry also gets the original decision back.
const MEMO_TTL: Duration = Duration::from_secs(3600);
/// The answers kept, in bytes (each weighed as its JSON, the key and a
/// fixed overhead): an answer echoes the agent's fields, so a count would
/// bound nothing. Thousands of ordinary answers fit; a turn whose answer
/// is evicted and retried gets the store's "recorded earlier" answer.
pub const MEMO_BYTES: u64 = 64 * 1024 * 1024;
/// Bookkeeping per entry beyond its JSON (key, Arc, moka's node).
const MEMO_ENTRY_OVERHEAD: usize = 512;

/// Ticket fields (l3map names) that may hold the Salesforce Account id.
const ACCOUNT_FIELDS: [&str; 2] = ["salesforce_account_id", "account_id"];

pub fn routes(gate: Gate) -> Router<Arc<App>> {
    Router::new()
        .route("/v1/turns", post(post_turn).fallback(method_not_allowed))
        .route(
            "/v1/context/{ticket}",
            get(get_context).fallback(method_not_allowed),
        )
        .route_layer(from_fn_with_state(gate, agent_gate))
}

/// The agent a request was authenticated as, by [`agent_gate`].
#[derive(Debug, Clone)]
struct AgentName(String);

/// The bearer token before anything else: no body is read, and no byte of
/// the budget spent, for a request without a valid one. A `POST`'s body is
/// then read whole within the server's bounds ([`super::intake`]); any
/// other method's body is not read at all.
async fn agent_gate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let agent = match authenticate(&gate.app, req.headers()) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    req.extensions_mut().insert(AgentName(agent));
    if req.method() != Method::POST {
        return next.run(req.map(|_| Body::empty())).await;
    }
    match with_body(&gate, req, next).await {
        Ok(resp) => resp,
        Err(r) => {
            gate.app
                .engine
                .metrics
                .event_rejected(SOURCE, r.metric_reason());
            r.response
        }
    }
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "POST /v1/turns, GET /v1/context/{ticket}; see docs/AGENT_API.md",
    )
}

// ---------------------------------------------------------------- errors

/// A refusal on its way to becoming a JSON error. Clone and Sync, so a
/// turn's failure can travel through the memo's single-flight.
#[derive(Debug, Clone)]
struct Fail {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

fn fail(status: StatusCode, code: &'static str, message: impl Into<String>) -> Fail {
    Fail {
        status,
        code,
        message: message.into(),
        retry_after: None,
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let mut r = error(self.status, self.code, self.message);
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// What an upstream failure means for the agent. The message names the
/// system and the kind of failure only: the API's own text is for the
/// logs, where an operator reads it next to the request it belongs to.
fn upstream(e: &ApiError, what: &str) -> Fail {
    let system = match e {
        ApiError::Auth { system, .. }
        | ApiError::Permission { system, .. }
        | ApiError::NotFound { system, .. }
        | ApiError::Validation { system, .. }
        | ApiError::RateLimited { system, .. }
        | ApiError::Transient { system, .. }
        | ApiError::QuotaExhausted { system, .. }
        | ApiError::Unconfirmed { system, .. }
        | ApiError::Protocol { system, .. }
        | ApiError::GaveUp { system, .. } => *system,
    };
    let kind = error_kind(e);
    tracing::warn!(error = %e, "agent API: {what} failed");
    Fail {
        retry_after: retry_after(e).map(|d| d.as_secs().max(1)),
        ..fail(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("{system} could not be read ({kind}) while reading {what}; try again"),
        )
    }
}

fn retry_after(e: &ApiError) -> Option<Duration> {
    match e {
        ApiError::GaveUp { last, .. } => retry_after(last),
        other => other.retry_after(),
    }
}

fn not_found(e: &ApiError) -> bool {
    match e {
        ApiError::NotFound { .. } => true,
        ApiError::GaveUp { last, .. } => not_found(last),
        _ => false,
    }
}

// ---------------------------------------------------------------- auth

/// Why a request's credentials were refused: the `error` of the
/// `WWW-Authenticate` challenge, if any, and the message.
#[derive(Debug)]
struct Unauthorized(Option<&'static str>, &'static str);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let challenge = match self.0 {
            Some(e) => format!("Bearer realm=\"l3map\", error=\"{e}\""),
            None => "Bearer realm=\"l3map\"".to_string(),
        };
        let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", self.1);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

/// The agent a request comes from, by its bearer token. Tokens are
/// compared as SHA-256 digests, byte for byte without stopping at the
/// first difference, and against every configured agent, so the time an
/// answer takes says nothing about how much of a token was right.
fn authenticate(app: &App, headers: &HeaderMap) -> Result<String, Unauthorized> {
    let found = agent_for(&app.agents, headers);
    if found.is_err() {
        app.engine.metrics.event_rejected(SOURCE, "unauthorized");
    }
    found
}

fn agent_for(
    agents: &[(String, crate::connectors::Secret)],
    headers: &HeaderMap,
) -> Result<String, Unauthorized> {
    if agents.is_empty() {
        return Err(Unauthorized(
            None,
            "no agents are configured: add an [agents.NAME] table with token_env = \"VAR\" \
             (or token_file) to l3map.toml",
        ));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Unauthorized(
            None,
            "missing credentials: send Authorization: Bearer <token>",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(Unauthorized(
            Some("invalid_request"),
            "the Authorization header is not `Bearer <token>`",
        ));
    };
    let given: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found: Option<&str> = None;
    for (name, secret) in agents {
        let known: [u8; 32] = Sha256::digest(secret.expose().as_bytes()).into();
        let same = digests_equal(&given, &known);
        // The first match wins, but every agent is still compared.
        if same && found.is_none() {
            found = Some(name);
        }
    }
    found.map(str::to_string).ok_or(Unauthorized(
        Some("invalid_token"),
        "the bearer token is not valid",
    ))
}

/// Equality that reads all 32 bytes whatever they hold.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

// ---------------------------------------------------------------- turns

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnRequest {
    #[serde(default)]
    turn_id: Option<String>,
    /// A number or a string of digits: agents' tool calls send both.
    #[serde(default)]
    ticket: Option<JsonValue>,
    #[serde(default)]
    case: Option<String>,
    intent: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    attempts: Vec<String>,
    #[serde(default)]
    sentiment: Option<String>,
    #[serde(default)]
    requested_status: Option<String>,
    #[serde(default)]
    refund_amount: Option<Money>,
    #[serde(default)]
    fields: BTreeMap<String, JsonValue>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    product: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Money {
    amount: String,
    currency: String,
}

/// A turn that passed every check that needs no upstream call.
struct Checked {
    req: TurnRequest,
    ticket: Option<u64>,
    digest: [u8; 32],
}

fn bad(message: impl Into<String>) -> Fail {
    fail(StatusCode::BAD_REQUEST, "invalid", message)
}

fn parse_turn(body: &[u8]) -> Result<Checked, Fail> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let mut req: TurnRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let message = match e.path().to_string().as_str() {
            "." | "" | "?" => e.inner().to_string(),
            path => format!("{path}: {}", e.inner()),
        };
        fail(StatusCode::BAD_REQUEST, "malformed", message)
    })?;
    if let Some(id) = &req.turn_id {
        if id.is_empty() || id.len() > MAX_TURN_ID {
            return Err(bad(format!(
                "turn_id: must be 1 to {MAX_TURN_ID} bytes long"
            )));
        }
        if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad(
                "turn_id: must not contain spaces or control characters",
            ));
        }
    }
    let ticket = match &req.ticket {
        None | Some(JsonValue::Null) => None,
        Some(v) => Some(id_value(v, "ticket").map_err(|e| bad(e.message))?),
    };
    // One record, one spelling: the 15- and 18-character forms of a Case
    // Id (in any case) are one record, so its hand-off is keyed once.
    if let Some(case) = &mut req.case {
        match crate::connectors::salesforce_id::canonical(case) {
            Some(id) => *case = id,
            None => {
                return Err(bad(format!(
                    "case: {case:?} is not a Salesforce Id (15 or 18 letters and digits, the last 3 matching the first 15)"
                )))
            }
        }
    }
    if ticket.is_none() && req.case.is_none() {
        return Err(bad(
            "name the conversation's record: `ticket` (a Zendesk ticket id) or `case` (a Salesforce Case Id)",
        ));
    }
    if req.intent.trim().is_empty() {
        return Err(bad("intent: must not be empty"));
    }
    if let Some(m) = &req.refund_amount {
        if crate::syntax::decimal_units(&m.amount).is_none() {
            return Err(bad(format!(
                "refund_amount.amount: {:?} is not a decimal amount such as \"250.00\"",
                m.amount
            )));
        }
        let c = &m.currency;
        if c.len() != 3 || !c.chars().all(|x| x.is_ascii_uppercase()) {
            return Err(bad(format!(
                "refund_amount.currency: {c:?} is not an ISO 4217 code such as \"USD\""
            )));
        }
    }
    if let Some(c) = req.confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(bad(format!("confidence: {c} is not between 0 and 1")));
        }
    }
    // The digest of the request as read, not as sent: a retry that only
    // spaces its JSON differently, or spells the same ticket or Case
    // another way (`"4213"`, a 15-character Id), is the same turn.
    if let Some(t) = ticket {
        req.ticket = Some(JsonValue::from(t));
    }
    let digest = Sha256::digest(serde_json::to_vec(&req).unwrap_or_default()).into();
    Ok(Checked {
        req,
        ticket,
        digest,
    })
}

#[derive(Debug, Clone, Serialize)]
struct Refused {
    what: String,
    reason: String,
    source: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Stale {
    field: String,
    agent: JsonValue,
    zendesk: JsonValue,
}

#[derive(Debug, Clone, Serialize)]
struct TurnAnswer {
    turn: String,
    revision: String,
    duplicate: bool,
    /// The ticket as read for this turn: its id and l3map status.
    ticket: Option<JsonValue>,
    accepted: Vec<JsonValue>,
    refused: Vec<Refused>,
    /// Actions this turn added to the outbox; a hand-off decided before is
    /// accepted again but queued once.
    queued: usize,
    handoff_comment: Option<String>,
    /// Fields the agent saw differently from Zendesk: decisions use
    /// Zendesk's values, the agent should refresh its view.
    stale_fields: Vec<Stale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip)]
    digest: [u8; 32],
}

/// Answers of recent turns by (store, event id), so a retry gets the
/// decision it lost without a second Zendesk read, and concurrent retries
/// of one turn wait for the first instead of racing it. Keyed by the
/// store because the store is what decides that an event is a duplicate.
type Memo = moka::future::Cache<(PathBuf, String), Arc<TurnAnswer>>;

fn memo() -> &'static Memo {
    static MEMO: OnceLock<Memo> = OnceLock::new();
    MEMO.get_or_init(|| {
        moka::future::Cache::builder()
            .max_capacity(MEMO_BYTES)
            .weigher(|(path, id): &(PathBuf, String), answer: &Arc<TurnAnswer>| {
                let bytes =
                    answer_bytes(answer) + path.as_os_str().len() + id.len() + MEMO_ENTRY_OVERHEAD;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .time_to_live(MEMO_TTL)
            .build()
    })
}

/// What an answer costs in memory: its JSON's length, which counts every
/// string it holds (the agent's fields among them) once.
fn answer_bytes(answer: &TurnAnswer) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Serialising a TurnAnswer cannot fail (string keys, no maps of
    // non-string keys); a failure would weigh the fixed overhead only.
    let _ = serde_json::to_writer(&mut n, answer);
    n.0
}

/// A turn's event key, `agent:{agent}:{turn}`: a namespace no other
/// source can write in (a webhook's keys are `zendesk:...`, and it accepts
/// no payload that names its own key; see `eval::convert::zendesk`), so no
/// one can claim an agent's turn id before the agent sends it. A `%` or
/// `:` in the agent's name is escaped, so agent `a` with turn `b:1` and
/// agent `a:b` with turn `1` have different keys.
fn turn_key(agent: &str, turn: &str) -> String {
    let agent = agent.replace('%', "%25").replace(':', "%3A");
    format!("agent:{agent}:{turn}")
}

/// Authenticated by [`agent_gate`]; the body was read within the bounds.
async fn post_turn(
    State(app): State<Arc<App>>,
    Extension(AgentName(agent)): Extension<AgentName>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            app.engine.metrics.event_rejected(SOURCE, "malformed");
            return body_error(e);
        }
    };
    let checked = parse_turn(&body).and_then(|c| {
        known_fields(&c.req.fields, &ticket_field_ids(&app.engine.live().program))?;
        Ok(c)
    });
    let checked = match checked {
        Ok(c) => c,
        Err(f) => {
            app.engine.metrics.event_rejected(SOURCE, "malformed");
            return f.into_response();
        }
    };
    let digest = checked.digest;
    let event_id = match &checked.req.turn_id {
        Some(t) => turn_key(&agent, t),
        None => turn_key(&agent, &format!("{:032x}", fastrand::u128(..))),
    };
    let turn_id = checked.req.turn_id.clone();
    let memoized = turn_id.is_some();
    let ran = Arc::new(AtomicBool::new(false));
    // Spawned, so an agent that hangs up does not cancel a turn halfway:
    // once recorded, its answer is kept for the retry.
    let task = {
        let (app, ran, event_id) = (app.clone(), ran.clone(), event_id.clone());
        tokio::spawn(async move {
            let run = async {
                ran.store(true, Ordering::SeqCst);
                execute(&app, &event_id, checked).await.map(Arc::new)
            };
            if memoized {
                let key = (app.engine.store.path().to_path_buf(), event_id.clone());
                memo()
                    .try_get_with(key, run)
                    .await
                    .map_err(|f| (*f).clone())
            } else {
                run.await
            }
        })
    };
    let answer = match task.await {
        Ok(Ok(a)) => a,
        Ok(Err(f)) => return f.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "agent API: a turn's task failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the turn could not be decided; send it again with the same turn_id",
            );
        }
    };
    let answer = if ran.load(Ordering::SeqCst) {
        answer
    } else {
        // Another request with this turn id ran it: this one is the retry.
        if answer.digest != digest {
            return error(
                StatusCode::CONFLICT,
                "turn_id_reused",
                format!(
                    "turn_id {:?} was already used for a different turn; use a new turn_id for a new turn",
                    turn_id.unwrap_or_default()
                ),
            );
        }
        app.engine.metrics.event_duplicate(SOURCE);
        let mut a = (*answer).clone();
        a.duplicate = true;
        Arc::new(a)
    };
    let seconds = started.elapsed().as_secs_f64();
    app.engine.metrics.turn_latency(seconds);
    tracing::info!(
        agent = %agent, turn = %answer.turn, duplicate = answer.duplicate,
        accepted = answer.accepted.len(), refused = answer.refused.len(),
        latency_ms = (seconds * 1000.0) as u64, "agent turn"
    );
    Json(&*answer).into_response()
}

/// Reads the ticket, decides the turn and records it: the part of a turn
/// that runs once per turn id.
async fn execute(app: &App, event_id: &str, checked: Checked) -> Result<TurnAnswer, Fail> {
    let Checked {
        req,
        ticket,
        digest,
    } = checked;
    let live = app.engine.live();
    // A Case-only turn has no ticket to compare the agent's fields with.
    let (ticket, stale_fields) = match ticket {
        Some(id) => {
            let raw = read_ticket(app, id).await?;
            let seen = convert_ticket(&raw, &live.convert.statuses)?;
            let names = ticket_field_ids(&live.program);
            (Some(seen), stale(&req.fields, &names, &raw.custom_fields))
        }
        None => (None, Vec::new()),
    };
    let mut records = BTreeMap::new();
    if let Some(case) = &req.case {
        let mut m = Map::new();
        m.insert("Id".into(), JsonValue::String(case.clone()));
        records.insert("Case".to_string(), m);
    }
    let seen_ticket = ticket
        .as_ref()
        .map(|t| json!({"id": t.id, "status": t.status}));
    let ev = Event {
        id: event_id.to_string(),
        kind: EventKind::AgentTurn,
        at: jiff::Timestamp::now().to_string(),
        ticket,
        comment: None,
        turn: Some(Turn {
            intent: Some(req.intent),
            summary: req.summary,
            attempts: req.attempts,
            sentiment: req.sentiment,
            refund_amount: req.refund_amount.map(|m| MoneyJson {
                amount: m.amount,
                currency: m.currency,
            }),
            requested_status: req.requested_status,
            confidence: req.confidence,
            language: req.language,
            order_id: req.order_id,
            product: req.product,
        }),
        records,
        changed: vec![],
    };
    let ingested = app.engine.ingest(SOURCE, ev, None).await.map_err(|e| {
        tracing::error!(error = %e, "agent API: cannot record a turn");
        fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the turn could not be recorded; send it again with the same turn_id",
        )
    })?;
    Ok(answer(
        &app.engine,
        event_id,
        ingested,
        seen_ticket,
        stale_fields,
        digest,
    ))
}

async fn read_ticket(app: &App, id: u64) -> Result<ZdTicket, Fail> {
    let Some((_, zd)) = &app.zendesk else {
        return Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_configured",
            "the mappings declare no Zendesk connection, so no ticket can be read",
        ));
    };
    // Interactive: the agent is waiting, the outbox's writes are not.
    zd.interactive().get_ticket(id).await.map_err(|e| {
        if not_found(&e) {
            fail(
                StatusCode::NOT_FOUND,
                "no_ticket",
                format!("no ticket {id}"),
            )
        } else {
            upstream(&e, &format!("ticket {id}"))
        }
    })
}

/// The ticket as the converters read a Tickets API answer, so a turn sees
/// the same `ticket` a webhook or a poll of it would.
fn convert_ticket(
    t: &ZdTicket,
    statuses: &crate::eval::convert::StatusIndex,
) -> Result<Ticket, Fail> {
    let payload = json!({"ticket": {
        "id": t.id,
        "subject": t.subject,
        "description": t.description,
        "status": t.status,
        "custom_status_id": t.custom_status_id,
        "priority": t.priority,
        "tags": t.tags,
        "custom_fields": t.custom_fields,
        // Only the event's id and time come from it, and a turn has both.
        "updated_at": t.updated_at.clone().unwrap_or_else(|| jiff::Timestamp::now().to_string()),
    }});
    let unreadable = |message: String| {
        tracing::warn!(ticket = t.id, error = %message, "agent API: unreadable ticket");
        fail(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!(
                "Zendesk answered ticket {} in a shape l3map cannot read",
                t.id
            ),
        )
    };
    let events = from_ticket(&payload, statuses).map_err(|e| unreadable(e.message))?;
    events
        .into_iter()
        .next()
        .and_then(|e| e.ticket)
        .ok_or_else(|| unreadable("no ticket in the answer".into()))
}

/// Refuses a `fields` name the mappings do not know: the agent would
/// otherwise believe a value it sent was taken into account. Checked
/// before any upstream call, like the rest of the request.
fn known_fields(
    agent: &BTreeMap<String, JsonValue>,
    names: &BTreeMap<String, u64>,
) -> Result<(), Fail> {
    match agent.keys().find(|n| !names.contains_key(*n)) {
        None => Ok(()),
        Some(name) => {
            let known: Vec<&str> = names.keys().map(String::as_str).collect();
            Err(bad(format!(
                "fields.{name}: not a ticket field of the mappings (known: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

/// Fields the agent reported that Zendesk holds differently.
fn stale(
    agent: &BTreeMap<String, JsonValue>,
    names: &BTreeMap<String, u64>,
    zendesk: &[crate::connectors::zendesk::CustomFieldValue],
) -> Vec<Stale> {
    let mut out = Vec::new();
    for (name, said) in agent {
        // Unknown names were refused up front; one missing here went
        // with a reload in between and has nothing to compare with.
        let Some(id) = names.get(name) else {
            continue;
        };
        let has = zendesk
            .iter()
            .find(|f| f.id == *id)
            .map_or(JsonValue::Null, |f| f.value.clone());
        if !same_value(said, &has) {
            out.push(Stale {
                field: name.clone(),
                agent: said.clone(),
                zendesk: has,
            });
        }
    }
    out
}

/// Zendesk keeps decimals as text (`"72.0"`) and an agent sends numbers
/// (`72`): both are the same value.
fn same_value(a: &JsonValue, b: &JsonValue) -> bool {
    let num = |v: &JsonValue| match v {
        JsonValue::Number(n) => n.as_f64(),
        JsonValue::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn answer(
    engine: &Engine,
    event_id: &str,
    ingested: Ingested,
    ticket: Option<JsonValue>,
    stale_fields: Vec<Stale>,
    digest: [u8; 32],
) -> TurnAnswer {
    // `source` is computed from the revision that decided, which a reload
    // may have replaced since; the one now live is used only if it is that
    // revision.
    let live = engine.live();
    let files: &[String] = if live.program.revision == ingested.revision {
        &live.program.files
    } else {
        &[]
    };
    let Ingested {
        accepted,
        revision,
        actions,
        refused,
    } = ingested;
    let (queued, duplicate) = match accepted {
        Accepted::New { queued, .. } => (queued, false),
        Accepted::Duplicate => (0, true),
    };
    if duplicate {
        // Recorded before this process's memo of it: what was decided then
        // is in the store and the outbox; deciding again on today's ticket
        // would answer a different question.
        return TurnAnswer {
            turn: event_id.to_string(),
            revision,
            duplicate,
            ticket,
            accepted: vec![],
            refused: vec![],
            queued: 0,
            handoff_comment: None,
            stale_fields,
            message: Some(
                "this turn was recorded earlier (before a restart, or over an hour ago); \
                 its actions were queued then and are not repeated"
                    .into(),
            ),
            digest,
        };
    }
    let accepted: Vec<JsonValue> = actions
        .into_iter()
        .map(|mut a| {
            let source = source_of(&a["loc"], files);
            if let Some(obj) = a.as_object_mut() {
                obj.insert(
                    "source".into(),
                    source.map_or(JsonValue::Null, JsonValue::String),
                );
            }
            a
        })
        .collect();
    let handoff_comment = accepted
        .iter()
        .find(|a| a["action"] == "comment")
        .and_then(|a| a["body"].as_str())
        .map(str::to_string);
    let refused = refused
        .into_iter()
        .map(|r| Refused {
            source: r.loc.as_ref().and_then(|l| {
                let loc = serde_json::to_value(l).ok()?;
                source_of(&loc, files)
            }),
            what: r.what,
            reason: r.reason,
        })
        .collect();
    TurnAnswer {
        turn: event_id.to_string(),
        revision,
        duplicate,
        ticket,
        accepted,
        refused,
        queued,
        handoff_comment,
        stale_fields,
        message: None,
        digest,
    }
}

/// `file:line:col` for a serialised `Loc`, as `l3map plan` shows it.
fn source_of(loc: &JsonValue, files: &[String]) -> Option<String> {
    let file = files.get(usize::try_from(loc["file"].as_u64()?).ok()?)?;
    Some(format!(
        "{file}:{}:{}",
        loc["line"].as_u64()?,
        loc["col"].as_u64()?
    ))
}

/// The Zendesk custom fields the mappings name, l3map name to field id.
/// The IR keeps no list of declarations, only the references the rules
/// make, so a field no rule reads or writes is not here (nor needed).
fn ticket_field_ids(p: &Program) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut field = |r: &FieldRef| {
        if let FieldRef::Zendesk {
            field,
            id: Some(id),
            ..
        } = r
        {
            out.entry(field.clone()).or_insert(*id);
        }
    };
    let mut refs = Vec::new();
    for m in &p.mappings {
        for r in &m.rules {
            field(&r.source);
            field(&r.target);
        }
    }
    for t in &p.sku_tables {
        for a in &t.applies {
            field(&a.target);
            refs.push(&a.source);
        }
    }
    for t in &p.status_tables {
        for tr in &t.transitions {
            if let Some(w) = &tr.when {
                w.refs(&mut refs);
            }
        }
    }
    for e in &p.escalations {
        e.when.refs(&mut refs);
        for a in &e.actions {
            match a {
                EscAction::SetField {
                    field: f, value, ..
                } => {
                    field(f);
                    value.refs(&mut refs);
                }
                EscAction::Comment {
                    body: CommentBody::Inline(parts),
                    ..
                } => part_refs(parts, &mut refs),
                _ => {}
            }
        }
    }
    for t in &p.templates {
        part_refs(&t.parts, &mut refs);
    }
    for r in refs {
        if let Ref::TicketField { alias, id, .. } = r {
            out.entry(alias.clone()).or_insert(*id);
        }
    }
    out
}

fn part_refs<'a>(parts: &'a [TemplatePart], out: &mut Vec<&'a Ref>) {
    for p in parts {
        if let TemplatePart::Var { var, .. } = p {
            out.push(var);
        }
    }
}

// ---------------------------------------------------------------- context

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextQuery {
    #[serde(default)]
    account: Option<String>,
}

/// Authenticated by [`agent_gate`].
async fn get_context(
    State(app): State<Arc<App>>,
    ticket: Result<Path<String>, PathRejection>,
    query: Result<Query<ContextQuery>, QueryRejection>,
) -> Response {
    match context(&app, ticket, query).await {
        Ok(body) => Json(body).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn context(
    app: &App,
    ticket: Result<Path<String>, PathRejection>,
    query: Result<Query<ContextQuery>, QueryRejection>,
) -> Result<JsonValue, Fail> {
    let Path(ticket) = ticket.map_err(|e| bad(e.body_text()))?;
    let id = id_value(&JsonValue::String(ticket), "ticket").map_err(|e| bad(e.message))?;
    let Query(mut q) = query.map_err(|e| bad(e.body_text()))?;
    if let Some(a) = &mut q.account {
        match crate::connectors::salesforce_id::canonical(a) {
            Some(id) => *a = id,
            None => {
                return Err(bad(format!(
                    "account: {a:?} is not a Salesforce Id (15 or 18 letters and digits, the last 3 matching the first 15)"
                )))
            }
        }
    }
    let live = app.engine.live();
    let names = ticket_field_ids(&live.program);
    // With the Account named up front, both systems are asked at once.
    let (raw, account) = match q.account {
        Some(a) => {
            let (t, acc) = tokio::join!(read_ticket(app, id), read_account(app, &a));
            (t?, Some(acc?))
        }
        None => {
            let t = read_ticket(app, id).await?;
            let linked = linked_account(&t, &names);
            let acc = match linked {
                Some(a) if app.salesforce.is_some() => Some(read_account(app, &a).await?),
                _ => None,
            };
            (t, acc)
        }
    };
    let seen = convert_ticket(&raw, &live.convert.statuses)?;
    let by_id: HashMap<u64, &str> = names.iter().map(|(n, i)| (*i, n.as_str())).collect();
    let mut fields = Map::new();
    for f in &raw.custom_fields {
        if let Some(name) = by_id.get(&f.id).filter(|_| !f.value.is_null()) {
            fields.insert((*name).to_string(), f.value.clone());
        }
    }
    let mapped = account
        .as_ref()
        .map(|(a, _)| mapped_fields(&live.program, &seen, a));
    Ok(json!({
        "ticket": {
            "id": seen.id,
            "status": seen.status,
            "priority": seen.priority,
            "tags": seen.tags,
            "fields": fields,
        },
        "account": account.as_ref().map(|(a, _)| {
            let mut a = (**a).clone();
            a.remove("attributes");
            JsonValue::Object(a)
        }),
        "account_as_ticket_fields": mapped,
        "cached": {
            "ticket": false,
            "account": account.as_ref().map(|(_, cached)| *cached),
        },
        "revision": live.program.revision,
    }))
}

/// The Account id a ticket field of the mappings carries, if any.
fn linked_account(t: &ZdTicket, names: &BTreeMap<String, u64>) -> Option<String> {
    ACCOUNT_FIELDS.iter().find_map(|n| {
        let id = names.get(*n)?;
        let v = t.field(*id)?.as_str()?.trim();
        crate::connectors::salesforce_id::canonical(v)
    })
}

async fn read_account(app: &App, id: &str) -> Result<(Arc<SfRecord>, bool), Fail> {
    let Some((_, sf)) = &app.salesforce else {
        return Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_configured",
            "the mappings declare no Salesforce connection, so no Account can be read",
        ));
    };
    let record = sf.account(id).await.map_err(|e| {
        if not_found(&e) {
            fail(
                StatusCode::NOT_FOUND,
                "no_account",
                format!("no Salesforce Account {id}"),
            )
        } else {
            upstream(&e, &format!("Account {id}"))
        }
    })?;
    let cached = seen_before(&record);
    Ok((record, cached))
}

/// Whether this exact record came back before. The client's cache hands
/// out the same `Arc` until the entry expires and a fresh one after each
/// request, so an address met again means no request was made. Holding a
/// `Weak` keeps the address from being reused by another allocation while
/// it is listed.
fn seen_before(record: &Arc<SfRecord>) -> bool {
    struct Seen {
        by_addr: HashMap<usize, Weak<SfRecord>>,
        sweep_at: usize,
    }
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(|| {
            Mutex::new(Seen {
                by_addr: HashMap::new(),
                sweep_at: 1024,
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let addr = Arc::as_ptr(record) as usize;
    if seen.by_addr.contains_key(&addr) {
        return true;
    }
    if seen.by_addr.len() >= seen.sweep_at {
        seen.by_addr.retain(|_, w| w.strong_count() > 0);
        seen.sweep_at = (seen.by_addr.len() * 2).max(1024);
    }
    seen.by_addr.insert(addr, Arc::downgrade(record));
    false
}

/// The Account's fields as the mappings translate them onto the ticket
/// (`map crm -> desk`): the tier in the desk's words (`enterprise`, not
/// `Ent`). Decided like any record change, and nothing is recorded.
fn mapped_fields(p: &Program, ticket: &Ticket, account: &SfRecord) -> JsonValue {
    let mut records = BTreeMap::new();
    records.insert("Account".to_string(), account.clone());
    // A ticket without its fields: a mapping writes only what differs, and
    // here every translated value is wanted, even one the ticket has.
    let bare = Ticket {
        id: ticket.id,
        status: ticket.status.clone(),
        ..Ticket::default()
    };
    let ev = Event {
        id: "context".into(),
        kind: EventKind::RecordChanged,
        at: jiff::Timestamp::now().to_string(),
        ticket: Some(bare),
        comment: None,
        turn: None,
        records,
        changed: vec![],
    };
    let d = decide(p, &ev);
    let mut out = Map::new();
    for a in &d.actions {
        if let (
            ActionKind::SetField {
                field: FieldRef::Zendesk { field, .. },
                value,
            },
            Record::Ticket { .. },
            Rule::Map { .. },
        ) = (&a.kind, &a.record, &a.rule)
        {
            out.insert(field.clone(), json_value(value));
        }
    }
    JsonValue::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_keys_of_two_agents_never_meet() {
        assert_eq!(turn_key("e2e", "conv-1"), "agent:e2e:conv-1");
        assert_ne!(turn_key("a", "b:1"), turn_key("a:b", "1"));
        assert_ne!(turn_key("a%3A", "1"), turn_key("a:", "1"));
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a: [u8; 32] = Sha256::digest(b"l3map-demo-agent-token").into();
        let b: [u8; 32] = Sha256::digest(b"l3map-demo-agent-tokem").into();
        assert!(digests_equal(&a, &a));
        assert!(!digests_equal(&a, &b));
        let mut c = a;
        c[31] ^= 1;
        assert!(!digests_equal(&a, &c));
    }

    #[test]
    fn turns_are_checked_before_any_upstream_call() {
        let ok = parse_turn(br#"{"ticket": "4211", "intent": "refund"}"#).unwrap();
        assert_eq!(ok.ticket, Some(4211));
        let err = |body: &str| parse_turn(body.as_bytes()).err().unwrap();
        let e = err(r#"{"ticket": 1, "intent": "x", "bogus": 1}"#);
        assert_eq!((e.code, e.status), ("malformed", StatusCode::BAD_REQUEST));
        assert!(e.message.contains("bogus"), "{}", e.message);
        let e = err(
            r#"{"ticket": 1, "intent": "x", "refund_amount": {"amount": "2,50", "currency": "USD"}}"#,
        );
        assert!(
            e.message.starts_with("refund_amount.amount:"),
            "{}",
            e.message
        );
        let e = err(
            r#"{"ticket": 1, "intent": "x", "refund_amount": {"amount": "2.50", "currency": "usd"}}"#,
        );
        assert!(
            e.message.starts_with("refund_amount.currency:"),
            "{}",
            e.message
        );
        assert!(err(r#"{"intent": "x"}"#).message.contains("ticket"));
        assert!(err(r#"{"ticket": 1, "intent": " "}"#)
            .message
            .starts_with("intent"));
        assert!(err(r#"{"ticket": -1, "intent": "x"}"#)
            .message
            .starts_with("ticket"));
        assert!(err(r#"{"ticket": 1, "intent": "x", "case": "500'; DROP"}"#)
            .message
            .starts_with("case"));
        assert!(err(r#"{"ticket": 1, "intent": "x", "confidence": 1.5}"#)
            .message
            .starts_with("confidence"));
        assert!(err(r#"{"ticket": 1, "intent": "x", "turn_id": "a b"}"#)
            .message
            .starts_with("turn_id"));
        for hostile in ["", "null", "[]", "{", "\"x\"", "{\"ticket\":1e400}"] {
            assert_eq!(err(hostile).status, StatusCode::BAD_REQUEST, "{hostile}");
        }
    }

    #[test]
    fn the_same_turn_spaced_differently_has_the_same_digest() {
        let a = parse_turn(br#"{"ticket":1,"intent":"x","fields":{"b":1,"a":2}}"#).unwrap();
        let b =
            parse_turn(b"{ \"intent\": \"x\", \"ticket\": 1, \"fields\": {\"a\": 2, \"b\": 1} }")
                .unwrap();
        let c = parse_turn(br#"{"ticket":1,"intent":"y"}"#).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_ne!(a.digest, c.digest);
    }

    #[test]
    fn zendesk_text_decimals_equal_agent_numbers() {
        assert!(same_value(&json!(72), &json!("72.0")));
        assert!(same_value(&json!("premium"), &json!("premium")));
        assert!(!same_value(&json!("premium"), &json!("enterprise")));
        assert!(!same_value(&json!(true), &JsonValue::Null));
    }

    #[test]
    fn a_record_met_again_is_cached() {
        let r = Arc::new(SfRecord::new());
        assert!(!seen_before(&r));
        assert!(seen_before(&r.clone()));
        assert!(!seen_before(&Arc::new(SfRecord::new())));
    }
}
