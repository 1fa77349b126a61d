//! An emulator of the Zendesk Support API v2, for everything the Zendesk
//! connector uses: tickets (show, list, create with `Idempotency-Key`,
//! update, bulk update with job statuses), comments, the cursor-based
//! incremental ticket export, ticket fields, custom statuses and groups.
//! OAuth bearer and API-token auth with scopes, the OAuth token endpoint
//! (`POST /oauth/tokens`), per-token rate limits with
//! Zendesk's headers, Zendesk's error bodies, and signed webhooks.
//!
//! One fallback handler dispatches on method and path segments: Zendesk
//! puts `.json` on every path (`/tickets/{id}.json`), which route patterns
//! cannot capture, and one place for auth, counting and the body limit keeps
//! every answer, even to nonsense, in Zendesk's shape.
//!
//! State lives behind one `std::sync::Mutex`, never held across an await.
//! docs/emulators/zendesk.md documents every endpoint and what differs.

use super::bounded::Counts;
use super::faults::{self, Faults};
use super::window::{Sliding, WindowStats, Windows};
use super::Running;
use crate::connectors::Secret;
use axum::http::StatusCode;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

mod admin;
mod audit;
mod auth;
mod authorize;
mod changes;
mod dispatch;
mod errors;
mod export;
mod form;
mod forms;
mod groups;
mod jobs;
mod lifecycle;
mod oauth;
mod oauth_tokens;
mod options;
mod parties;
mod reads;
mod requests;
mod search;
mod search_export;
mod search_pages;
mod seed;
mod state;
mod users;
mod views;
mod webhooks;
mod writes;

use dispatch::dispatch;
use views::{comment_json, ticket_json};

pub use dispatch::STATS_PATH;
pub use forms::{Forms, SeedForm, DEFAULT_FORM_ID};
pub use oauth::OAuthClient;
pub use options::{TokenGrant, WebhookTarget, ZendeskOptions};
pub use parties::salesforce_account_ids;
pub use seed::{FieldKind, Seed, SeedField, SeedStatus, SeedTicket};
pub use state::ZendeskState;
pub use webhooks::webhook_signature;

/// Zendesk Team plan: 200 requests per minute per token.
pub const DEFAULT_RPM: u32 = 200;
/// Bodies above this are refused with 413 before they are parsed.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// The token `l3map emulate` accepts when none is configured.
pub const DEV_TOKEN: &str = "l3map-dev-token";
/// The OAuth client `l3map emulate` registers: its identifier and secret
/// (local test credentials, printed at start, not secrets).
pub const DEV_CLIENT_ID: &str = "l3map-dev-client";
pub const DEV_CLIENT_SECRET: &str = "l3map-dev-client-secret";
/// Zendesk accepts at most 100 ids in one `update_many`.
const MAX_BULK_IDS: usize = 100;
/// Zendesk keeps an idempotency key for two hours.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// Webhook delivery records kept, the most recent.
const MAX_DELIVERIES: usize = 10_000;
const AGENT_ID: u64 = 1000;
const REQUESTER_ID: u64 = 2000;
/// Zendesk's status categories; `closed` has no custom statuses of its own.
const CATEGORIES: [&str; 5] = ["new", "open", "pending", "hold", "solved"];

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CommentRec {
    id: u64,
    author_id: u64,
    body: String,
    public: bool,
    created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Ticket {
    id: u64,
    subject: String,
    description: String,
    status: String,
    custom_status_id: u64,
    priority: Option<String>,
    kind: Option<String>,
    group_id: Option<u64>,
    assignee_id: Option<u64>,
    requester_id: u64,
    /// Who created the ticket, when not its requester (Zendesk's
    /// `submitter_id`: by default the requester is the submitter).
    #[serde(default)]
    submitter_id: Option<u64>,
    tags: Vec<String>,
    fields: BTreeMap<u64, Value>,
    /// Set on create from the requester's organization, as Zendesk does.
    #[serde(default)]
    organization_id: Option<u64>,
    #[serde(default)]
    external_id: Option<String>,
    /// The ticket's form; `None`: the account's default form.
    #[serde(default)]
    ticket_form_id: Option<u64>,
    /// Who made the latest change and through what (`api` for every API
    /// write: the authenticated user; `web` for a person's change made
    /// through the admin call): how l3map tells its own updates apart.
    #[serde(default)]
    updater_id: Option<u64>,
    #[serde(default)]
    updated_via: Option<String>,
    created_at: i64,
    updated_at: i64,
    /// Position in the change stream, for the incremental export cursor.
    seq: u64,
    comments: Vec<CommentRec>,
}

#[derive(Debug)]
struct Job {
    /// Creation order, so the oldest job is the one evicted.
    serial: u64,
    total: usize,
    polls_left: u32,
    results: Vec<Value>,
    /// Whether it has run (until then it answers `queued`).
    done: bool,
    /// A job-level failure: `failed` with this message, nothing applied.
    failed: Option<String>,
}

#[derive(Debug)]
struct Remembered {
    body: Value,
    status: StatusCode,
    response: Value,
    at: Instant,
}

#[derive(Debug, Default)]
struct Db {
    tickets: BTreeMap<u64, Ticket>,
    fields: Vec<SeedField>,
    statuses: Vec<SeedStatus>,
    forms: forms::Forms,
    groups: Vec<groups::GroupRec>,
    orgs: BTreeMap<u64, parties::Org>,
    people: BTreeMap<u64, parties::Person>,
    next_org: u64,
    next_user: u64,
    /// Ticket -> the error its next update fails with (admin call).
    fail_next: HashMap<u64, String>,
    /// The next bulk job fails as a whole with this message (admin call).
    fail_next_job: Option<String>,
    /// Ticket -> a person's change that lands just before the ticket's
    /// next API update (admin call): between l3map's read and its write.
    person_next: HashMap<u64, serde_json::Map<String, Value>>,
    /// Ticket -> how long the answer to its next API update is withheld
    /// after the update is applied (admin call): a client that times out
    /// or dies meanwhile cannot know the update landed.
    stall_next: HashMap<u64, Duration>,
    /// The next ticket create is made and its answer lost (admin call): a
    /// 502 as a proxy in between would give.
    drop_next_create: bool,
    /// Ticket -> when its recent API updates were made, for the per-ticket
    /// limit (`ZendeskOptions::ticket_update_limit`).
    ticket_updates: HashMap<u64, std::collections::VecDeque<Instant>>,
    jobs: HashMap<String, Job>,
    /// (token fingerprint, key) -> the first request's body and answer.
    idempotency: HashMap<(String, String), Remembered>,
    next_ticket: u64,
    next_comment: u64,
    next_job: u64,
    seq: u64,
}

/// One webhook delivery, as the emulator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub event_type: String,
    pub ticket_id: u64,
    pub attempts: u32,
    /// The receiver's final status, or `None` if it never answered.
    pub status: Option<u16>,
}

#[derive(Debug, Default)]
struct Stats {
    /// "METHOD /path" -> requests (authenticated or not).
    by_path: Counts,
    /// Token fingerprint (or OAuth lineage) -> requests.
    by_token: Counts,
    rate_limited: u32,
    /// Ticket id -> API updates applied (not those refused 409 or 429):
    /// what Zendesk's per-ticket limit counts.
    ticket_updates: Counts,
    /// The latest `MAX_DELIVERIES`, oldest first.
    deliveries: VecDeque<Delivery>,
    /// Every authenticated request, the latest `requests::MAX_LOGGED`.
    log: requests::Log,
}

struct Shared {
    opts: ZendeskOptions,
    windows: Windows,
    /// Requests per sliding window per token, as measured here: what the
    /// client's pacing did, which the fixed windows above cannot show.
    sliding: Sliding,
    /// When each token's current window opened, for `ratelimit-reset`.
    window_starts: Mutex<HashMap<String, Instant>>,
    db: Mutex<Db>,
    stats: Arc<Mutex<Stats>>,
    hooks: Option<HookQueue>,
    oauth: Mutex<oauth::OAuthState>,
    /// Codes the authorization page issued, with their PKCE challenge.
    authorize: Mutex<authorize::Pending>,
    /// Where [`ZendeskEmulator::start`] listens: the origin of the URLs it
    /// hands out when a request's `Host` cannot say (HTTP/1.0 without one,
    /// or one that is not a host and port).
    listen: std::sync::OnceLock<std::net::SocketAddr>,
}

struct HookQueue {
    tx: mpsc::UnboundedSender<Value>,
    /// Taken by the first request that needs delivery, which starts the
    /// delivering task on the server's runtime.
    rx: Mutex<Option<mpsc::UnboundedReceiver<Value>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl Db {
    fn from_seed(seed: &Seed) -> Db {
        let mut db = Db {
            fields: seed.fields.clone(),
            statuses: seed.statuses.clone(),
            forms: seed.forms.clone(),
            groups: seed
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| groups::GroupRec::seeded(groups::FIRST_GROUP_ID + i as u64, g))
                .collect(),
            next_ticket: 1,
            next_comment: 1,
            next_job: 1,
            ..Db::default()
        };
        db.seed_parties(now_secs());
        for t in &seed.tickets {
            let (status, custom) = db.resolve_seed_status(&t.status);
            db.seq += 1;
            let now = now_secs();
            db.tickets.insert(
                t.id,
                Ticket {
                    id: t.id,
                    subject: t.subject.clone(),
                    description: t.subject.clone(),
                    status,
                    custom_status_id: custom,
                    priority: Some("normal".into()),
                    kind: Some("question".into()),
                    group_id: None,
                    assignee_id: None,
                    requester_id: t.requester_id.unwrap_or(REQUESTER_ID),
                    submitter_id: None,
                    tags: t.tags.clone(),
                    fields: t.fields.iter().cloned().collect(),
                    organization_id: t.organization_id,
                    external_id: None,
                    ticket_form_id: None,
                    updater_id: None,
                    updated_via: None,
                    created_at: now,
                    updated_at: now,
                    seq: db.seq,
                    comments: vec![],
                },
            );
            db.next_ticket = db.next_ticket.max(t.id.saturating_add(1));
        }
        db
    }

    fn resolve_seed_status(&self, name: &str) -> (String, u64) {
        let found = self
            .statuses
            .iter()
            .find(|s| s.name == name)
            .or_else(|| self.default_status(name));
        match found {
            Some(s) => (s.category.clone(), s.id),
            None => ("open".into(), 0),
        }
    }

    /// A category's default status: the one set by the seed or by
    /// `PUT /api/v2/custom_status/default`, else its first.
    fn default_status(&self, category: &str) -> Option<&SeedStatus> {
        let category = if category == "closed" {
            "solved"
        } else {
            category
        };
        let chosen = self.forms.defaults.get(category);
        chosen
            .and_then(|id| self.statuses.iter().find(|s| s.id == *id))
            .or_else(|| self.statuses.iter().find(|s| s.category == category))
    }
}

/// The Zendesk emulator: build it, take its router (tests mount it
/// in-process) or start it on 127.0.0.1.
pub struct ZendeskEmulator {
    shared: Arc<Shared>,
}

/// A view into a running emulator, for tests: what it received, its
/// tickets, and its fault switches.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl ZendeskEmulator {
    pub fn new(opts: ZendeskOptions) -> ZendeskEmulator {
        let hooks = opts.webhook.as_ref().map(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            HookQueue {
                tx,
                rx: Mutex::new(Some(rx)),
            }
        });
        let shared = Shared {
            windows: Windows::new(opts.rate_limit, opts.window),
            sliding: Sliding::new(opts.rate_limit, opts.window),
            window_starts: Mutex::new(HashMap::new()),
            db: Mutex::new(Db::from_seed(&opts.seed)),
            stats: Arc::new(Mutex::new(Stats::default())),
            hooks,
            oauth: Mutex::new(oauth::OAuthState::default()),
            authorize: Mutex::new(authorize::Pending::default()),
            listen: std::sync::OnceLock::new(),
            opts,
        };
        ZendeskEmulator {
            shared: Arc::new(shared),
        }
    }

    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Every path, behind the fault layer (faults change no state).
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .fallback(dispatch)
            .with_state(self.shared.clone())
            .layer(axum::middleware::from_fn_with_state(
                self.shared.opts.faults.clone(),
                faults::layer,
            ))
            .layer(axum::extract::DefaultBodyLimit::disable())
    }

    /// Serves on 127.0.0.1:`port` (0 picks a free port).
    pub async fn start(self, port: u16) -> std::io::Result<(Running, Handle)> {
        let running = super::serve(self.router(), port).await?;
        // Set before anyone learns the port (from `running`), so every
        // request sees it.
        let _ = self.shared.listen.set(running.addr);
        Ok((running, self.handle()))
    }
}

impl Handle {
    /// Requests received for `"METHOD /path"`, e.g. `"PUT /api/v2/tickets/1.json"`.
    /// Paths first seen after 10,000 others are counted only under
    /// `"other"` (see `emulator::bounded::Counts`).
    pub fn requests(&self, method_path: &str) -> u32 {
        lock(&self.shared.stats).by_path.get(method_path)
    }

    pub fn total_requests(&self) -> u32 {
        lock(&self.shared.stats).by_path.total()
    }

    /// Authenticated requests made with `token`.
    pub fn requests_for_token(&self, token: &Secret) -> u32 {
        lock(&self.shared.stats).by_token.get(&token.fingerprint())
    }

    /// Requests per sliding window (the rate limit's length), per token
    /// fingerprint: the most any window held and how many went over.
    pub fn window_stats(&self) -> Vec<WindowStats> {
        self.shared.sliding.stats()
    }

    /// [`Handle::window_stats`] of one token.
    pub fn window_stats_for(&self, token: &Secret) -> Option<WindowStats> {
        let key = token.fingerprint();
        self.window_stats().into_iter().find(|w| w.token == key)
    }

    /// How many 429s the emulator has answered.
    pub fn rate_limited(&self) -> u32 {
        lock(&self.shared.stats).rate_limited
    }

    /// The ticket as `GET /api/v2/tickets/{id}.json` shows it.
    pub fn ticket(&self, id: u64) -> Option<Value> {
        let db = lock(&self.shared.db);
        db.tickets
            .get(&id)
            .map(|t| ticket_json(&db, t, &self.shared.opts))
    }

    pub fn ticket_ids(&self) -> Vec<u64> {
        lock(&self.shared.db).tickets.keys().copied().collect()
    }

    /// The ticket's comments as `GET .../comments.json` lists them.
    pub fn comments(&self, id: u64) -> Vec<Value> {
        lock(&self.shared.db)
            .tickets
            .get(&id)
            .map(|t| t.comments.iter().map(comment_json).collect())
            .unwrap_or_default()
    }

    pub fn group_id(&self, name: &str) -> Option<u64> {
        lock(&self.shared.db)
            .groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.id)
    }

    /// The fault switches: `faults().burst_5xx.store(3, ..)` fails the next
    /// three requests with 503.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.shared.opts.faults
    }

    /// The latest webhook deliveries (up to 10,000), oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.stats)
            .deliveries
            .iter()
            .cloned()
            .collect()
    }

    /// Tokens issued by `POST /oauth/tokens` so far (every grant type).
    pub fn token_grants(&self) -> u32 {
        lock(&self.shared.oauth).grants
    }

    /// The code Zendesk's authorization page would send to the redirect
    /// URI once a user approved `scopes` for the client: `None` if the
    /// client is not registered or may not have those scopes.
    pub fn authorization_code(&self, client_id: &str, scopes: &[&str]) -> Option<String> {
        self.shared.authorization_code(client_id, scopes)
    }

    /// Ends every issued access token now: the next request with one is
    /// answered 401 `invalid_token`.
    pub fn expire_access_tokens(&self) {
        self.shared.expire_access_tokens();
    }
}
