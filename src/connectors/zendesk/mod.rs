//! The Zendesk Support API v2 client: OAuth bearer or API-token auth, or an
//! OAuth client that gets (and on a 401 renews) its own access tokens; one
//! rate limiter per token at the plan's RPM (tightened by Zendesk's
//! headers), every call through the one retry layer, errors typed with
//! Zendesk's own description, and the slow-changing lists (groups, ticket
//! fields, custom statuses) behind the 15-minute cache.
//!
//! Tokens never leave [`Secret`](super::Secret): not in errors (transport errors carry no
//! URL), not in `Debug`, not in logs; the `Authorization` header is marked
//! sensitive.
//!
//! The files: `config.rs` (credentials, plan, settings), `types.rs` (the
//! resources), `policy.rs` (Zendesk's side of the shared
//! [`transport`](super::transport): signing, replay, rate headers, token
//! grant, error bodies), `endpoints.rs` (the operations), `parties.rs`
//! (organizations, users, a ticket with both side-loaded), `search.rs`
//! (tickets by filter through the search export), `bulk.rs`
//! (`update_many` and its job statuses).

mod bulk;
mod config;
mod endpoints;
mod forms;
mod parties;
mod policy;
mod search;
mod types;

pub use bulk::{JobResult, JobState, JobStatus, TicketUpdate};
use config::SYSTEM;
pub use config::{Credentials, Plan, ZendeskConfig};
pub use forms::{FormStatus, TicketForm};
pub use parties::{Organization, TicketParties, User};
pub use search::{TicketFilter, TicketPage, EXPORT_PAGE, STATUS_ORDER};
pub use types::{
    Comment, CustomFieldValue, CustomStatus, ExportFrom, ExportPage, FieldOption, Group,
    NewComment, Ticket, TicketChanges, TicketField,
};

use super::cache::ReadCache;
use super::error::ApiError;
use super::limit::{Lane, Limiters};
use super::transport::{send, Budget, Request, Session, Transport};
use policy::{Token, ZendeskPolicy};
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Zendesk takes at most 100 tickets per `update_many`.
pub const MAX_BULK: usize = 100;

#[derive(Clone)]
pub struct ZendeskClient {
    cfg: Arc<ZendeskConfig>,
    transport: Arc<Transport<ZendeskPolicy>>,
    groups: ReadCache<u8, Arc<Vec<Group>>>,
    fields: ReadCache<u8, Arc<Vec<TicketField>>>,
    statuses: ReadCache<u8, Arc<Vec<CustomStatus>>>,
    /// Names looked up and not found, each with the list it was missing
    /// from: while that list is the cached one, the answer stands.
    group_misses: Arc<Mutex<HashMap<String, Arc<Vec<Group>>>>>,
    /// Ticket creates sent with an idempotency key, by Zendesk's
    /// `x-idempotency-lookup`: `[hit, miss]` (a hit is a replay).
    idempotent_creates: Arc<[std::sync::atomic::AtomicU64; 2]>,
    /// Goes ahead of the token's queued background work (see
    /// [`ZendeskClient::interactive`]).
    urgent: bool,
}

impl std::fmt::Debug for ZendeskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZendeskClient")
            .field("base_url", &self.cfg.base_url)
            .field("credentials", &self.cfg.credentials)
            .field("rpm", &self.cfg.rpm)
            .finish_non_exhaustive()
    }
}

impl ZendeskClient {
    /// A client with a budget of its own: for a tool or a test that builds
    /// one client. Clients that share a token must share its budget: build
    /// them with one [`Limiters`] ([`ZendeskClient::with_limiters`]; the
    /// runtime does, `runtime::clients`).
    pub fn new(cfg: ZendeskConfig) -> Result<ZendeskClient, ApiError> {
        ZendeskClient::with_limiters(cfg, &Limiters::default())
    }

    /// A client whose token is limited by `limiters` (keyed by the token's
    /// fingerprint, so clients of one token share one budget).
    pub fn with_limiters(
        cfg: ZendeskConfig,
        limiters: &Limiters,
    ) -> Result<ZendeskClient, ApiError> {
        let key = cfg.credentials.limiter_key(&cfg.base_url);
        let session = match cfg.credentials.header() {
            Some(h) => Session::Fixed(Token::fixed(h?)),
            None => Session::renewable_kept(
                cfg.keeper.as_ref().map(|k| k.0.clone()),
                cfg.refresh_margin,
                cfg.timeout + super::transport::session::REFRESH_LEASE_SLACK,
            ),
        };
        let http = send::http_client(SYSTEM, cfg.timeout)?;
        let budget = Budget::of(limiters, &key, cfg.rpm, cfg.rate_window, None);
        let cfg = Arc::new(cfg);
        let policy = ZendeskPolicy { cfg: cfg.clone() };
        let transport = Transport::new(http, policy, session, budget, cfg.retry.clone());
        let ttl = cfg.cache_ttl;
        Ok(ZendeskClient {
            transport: Arc::new(transport),
            groups: ReadCache::new(ttl, 4),
            fields: ReadCache::new(ttl, 4),
            statuses: ReadCache::new(ttl, 4),
            group_misses: Arc::default(),
            idempotent_creates: Arc::default(),
            cfg,
            urgent: false,
        })
    }

    /// The same client (token, limiter, caches), whose requests go ahead
    /// of the token's queued background work. For a person or an AI agent
    /// waiting on the answer (the agent API's ticket read): when the
    /// outbox has more to write than the token's budget allows, a turn
    /// still costs one rate-limit slot, not the whole backlog.
    pub fn interactive(&self) -> ZendeskClient {
        ZendeskClient {
            urgent: true,
            ..self.clone()
        }
    }

    /// Ticket creates Zendesk answered from their idempotency key
    /// (`x-idempotency-lookup: hit`: replays of a create it had made) and
    /// those it made (`miss`), since this client was built.
    pub fn idempotent_creates(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.idempotent_creates[0].load(Ordering::Relaxed),
            self.idempotent_creates[1].load(Ordering::Relaxed),
        )
    }

    fn note_idempotent_create(&self, hit: bool) {
        self.idempotent_creates[usize::from(!hit)]
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Told of every HTTP attempt (the runtime's metrics attach here).
    pub fn observer(&self) -> &crate::connectors::retry::Observer {
        &self.cfg.retry.observer
    }

    /// One request through the transport (budget, session, retries); the
    /// answer's JSON, or `null` for an empty body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.call_with_headers(method, path, body, idempotency_key)
            .await
            .map(|(v, _)| v)
    }

    /// [`call`](Self::call), with the answer's headers.
    async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(Value, reqwest::header::HeaderMap), ApiError> {
        let lane = if self.urgent {
            Lane::Interactive
        } else {
            Lane::Background
        };
        let req = Request {
            body,
            idempotency_key,
            ..Request::new(method, path)
        };
        let answer = self.transport.call(lane, &req).await?;
        if answer.body.is_empty() {
            return Ok((Value::Null, answer.headers));
        }
        serde_json::from_slice(&answer.body)
            .map(|v| (v, answer.headers))
            .map_err(|e| ApiError::Protocol {
                system: SYSTEM,
                message: format!("response is not JSON: {e}"),
            })
    }

    #[cfg(test)]
    pub(crate) fn budget(&self) -> &Budget {
        self.transport.budget()
    }
}

#[cfg(test)]
mod shapes;
#[cfg(test)]
mod tests;
