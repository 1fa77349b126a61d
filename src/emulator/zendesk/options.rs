//! The emulator's options: the credentials it accepts, where webhooks go,
//! its limits and the seed.

use super::faults::Faults;
use super::oauth::OAuthClient;
use super::seed::Seed;
use super::{DEFAULT_MAX_BODY, DEFAULT_RPM, DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_TOKEN};
use crate::connectors::Secret;
use crate::ir::Program;
use std::sync::Arc;
use std::time::Duration;

/// A credential the emulator accepts: an OAuth access token, or an API
/// token (sent as Basic `email/token:TOKEN`), with its scopes.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub token: Secret,
    /// `read`, `write`, `tickets:read`, `tickets:write`, ...
    pub scopes: Vec<String>,
}

impl TokenGrant {
    pub fn new(token: impl Into<String>, scopes: &[&str]) -> TokenGrant {
        TokenGrant {
            token: Secret::new(token),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Writes need `write` or `tickets:write`, as in Zendesk's OAuth scopes.
    pub(super) fn can_write(&self) -> bool {
        self.scopes
            .iter()
            .any(|s| s == "write" || s == "tickets:write")
    }
}

/// Where ticket events are delivered, and the key they are signed with.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: Secret,
    /// Delivery attempts per event before it is recorded as failed.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
    /// Every event is delivered twice (Zendesk delivers at least once).
    pub redeliver: bool,
    /// Events queued together are delivered in a shuffled order, drawn
    /// from this seed (Zendesk does not promise order either).
    pub reorder: Option<u64>,
}

impl WebhookTarget {
    pub fn new(url: impl Into<String>, secret: Secret) -> WebhookTarget {
        WebhookTarget {
            url: url.into(),
            secret,
            attempts: 4,
            backoff: Duration::from_millis(200),
            redeliver: false,
            reorder: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZendeskOptions {
    pub seed: Seed,
    pub tokens: Vec<TokenGrant>,
    /// The OAuth clients `POST /oauth/tokens` accepts.
    pub oauth_clients: Vec<OAuthClient>,
    /// What an issued access token lives unless the request asks for
    /// another `expires_in` (Zendesk's default: 30 minutes).
    pub access_token_lifetime: Duration,
    /// The same for refresh tokens (Zendesk's default: 30 days).
    pub refresh_token_lifetime: Duration,
    /// Issued access tokens, refresh tokens and codes kept, each.
    pub max_oauth_tokens: usize,
    /// Idempotency keys remembered at once (each holds a request and its
    /// answer); past it the oldest are forgotten before their TTL.
    pub max_idempotency_keys: usize,
    /// Bulk job statuses kept (each holds up to 100 results); a job polled
    /// after it made room answers 404, as an expired Zendesk job does.
    pub max_jobs: usize,
    /// Requests per window per token.
    pub rate_limit: u32,
    /// Zendesk's window is one minute; tests shrink it.
    pub window: Duration,
    pub faults: Arc<Faults>,
    pub webhook: Option<WebhookTarget>,
    pub max_body: usize,
    /// How many polls of a job status answer `working` before `completed`.
    pub job_polls: u32,
    /// How long a bulk job waits before it runs (Zendesk runs them in the
    /// background); zero runs it within the request.
    pub job_delay: Duration,
    /// Update Ticket's per-ticket limit: API updates of one ticket per
    /// `ticket_update_period`, past which the update is answered 429 with
    /// `Retry-After` ("30 updates per 10 minutes per user per ticket",
    /// developer.zendesk.com/api-reference/introduction/rate-limits/).
    /// Every API credential signs in as the one agent, so per ticket here
    /// is per user per ticket. 0 turns it off: the default in process,
    /// where tests measure other limits on a few seeded tickets; `l3map
    /// emulate` sets Zendesk's 30 (`--ticket-update-limit`).
    pub ticket_update_limit: u32,
    pub ticket_update_period: Duration,
    /// Tickets whose recent updates are remembered for that limit.
    pub max_limited_tickets: usize,
    /// Tickets per incremental export page (Zendesk: up to 1000).
    pub export_page: usize,
    /// Items per page of the list endpoints (ticket fields, groups,
    /// comments); Zendesk's is 100, tests shrink it to exercise paging.
    pub list_page_max: usize,
    pub account_id: u64,
    /// Used in `url` fields only.
    pub subdomain: String,
}

impl Default for ZendeskOptions {
    fn default() -> Self {
        ZendeskOptions {
            seed: Seed::embedded(),
            tokens: vec![TokenGrant::new(
                DEV_TOKEN,
                &["read", "write", "tickets:write"],
            )],
            oauth_clients: vec![OAuthClient::new(
                DEV_CLIENT_ID,
                DEV_CLIENT_SECRET,
                &["read", "write", "tickets:read", "tickets:write"],
            )],
            access_token_lifetime: Duration::from_secs(30 * 60),
            refresh_token_lifetime: Duration::from_secs(30 * 24 * 3600),
            max_oauth_tokens: 10_000,
            max_idempotency_keys: 10_000,
            max_jobs: 1_000,
            rate_limit: DEFAULT_RPM,
            window: Duration::from_secs(60),
            faults: Faults::none(),
            webhook: None,
            max_body: DEFAULT_MAX_BODY,
            job_polls: 1,
            job_delay: Duration::ZERO,
            ticket_update_limit: 0,
            ticket_update_period: Duration::from_secs(600),
            max_limited_tickets: 10_000,
            export_page: 1000,
            list_page_max: 100,
            account_id: 12514403,
            subdomain: "l3map".into(),
        }
    }
}

impl ZendeskOptions {
    /// Seeds from the caller's compiled mappings instead of the embedded
    /// desks (what `l3map run` does with the project it runs).
    pub fn with_programs(mut self, programs: &[Program]) -> ZendeskOptions {
        self.seed = Seed::from_programs(programs);
        self
    }
}
