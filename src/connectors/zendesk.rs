//! The Zendesk Support API v2 client: OAuth bearer or API-token auth, or an
//! OAuth client that gets (and on a 401 renews) its own access tokens; one
//! rate limiter per token at the plan's RPM (tightened by Zendesk's
//! headers), every call through the one retry layer, errors typed with
//! Zendesk's own description, and the slow-changing lists (groups, ticket
//! fields, custom statuses) behind the 15-minute cache.
//!
//! Tokens never leave [`Secret`]: not in errors (transport errors carry no
//! URL), not in `Debug`, not in logs; the `Authorization` header is marked
//! sensitive.

use super::body::{read_capped, MAX_RESPONSE_BODY};
use super::cache::{ReadCache, DEFAULT_TTL};
use super::error::{ApiError, System};
use super::limit::{parse_retry_after, Lane, Limiters, TokenLimiter};
use super::retry::{Replay, RetryPolicy};
use super::secret::Secret;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const SYSTEM: System = System::Zendesk;
/// Zendesk takes at most 100 tickets per `update_many`.
pub const MAX_BULK: usize = 100;

/// How the client proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// An OAuth access token: `Authorization: Bearer ...`.
    OAuth(Secret),
    /// An API token: Basic `email/token:TOKEN`.
    ApiToken { email: String, token: Secret },
    /// An OAuth client that gets its own access tokens from
    /// `POST /oauth/tokens`: with a refresh token (the refresh-token grant;
    /// Zendesk rotates it on every use, and the client keeps the newest in
    /// memory), or without one (the client-credentials grant). An access
    /// token answered 401 is replaced once, single-flight, and the request
    /// sent again.
    OAuthClient {
        client_id: String,
        client_secret: Secret,
        refresh_token: Option<Secret>,
        /// Scopes to ask for; empty asks for all the grant allows.
        scopes: Vec<String>,
    },
}

impl Credentials {
    /// What the token's limiter is keyed by: the token at its instance,
    /// or for an OAuth client (whose access token changes on every
    /// refresh) the client at its instance. A fingerprint, so nothing a
    /// user configured becomes a map key.
    fn limiter_key(&self, base_url: &str) -> String {
        match self {
            // Zendesk limits per account: the same token at another
            // instance (an emulator in a test) is another budget.
            Credentials::OAuth(t) | Credentials::ApiToken { token: t, .. } => {
                Secret::new(format!("{base_url}\n{}", t.expose())).fingerprint()
            }
            Credentials::OAuthClient { client_id, .. } => {
                Secret::new(format!("{base_url}\n{client_id}")).fingerprint()
            }
        }
    }

    /// The fixed header of a configured token; `None` for an OAuth client,
    /// whose header comes from its session.
    fn header(&self) -> Option<Result<HeaderValue, ApiError>> {
        let text = match self {
            Credentials::OAuth(t) => format!("Bearer {}", t.expose()),
            Credentials::ApiToken { email, token } => {
                let raw = format!("{email}/token:{}", token.expose());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            Credentials::OAuthClient { .. } => return None,
        };
        Some(sensitive_header(&text))
    }
}

/// An `Authorization` value, marked sensitive so no layer logs it.
fn sensitive_header(text: &str) -> Result<HeaderValue, ApiError> {
    let mut v = HeaderValue::from_str(text).map_err(|_| ApiError::Auth {
        system: SYSTEM,
        status: 0,
        message: "the credential cannot be sent in a header (control characters?)".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::OAuth(t) => write!(f, "OAuth({t:?})"),
            Credentials::ApiToken { email, token } => write!(f, "ApiToken({email}, {token:?})"),
            Credentials::OAuthClient {
                client_id,
                client_secret,
                refresh_token,
                scopes,
            } => f
                .debug_struct("OAuthClient")
                .field("client_id", client_id)
                .field("client_secret", client_secret)
                .field("refresh_token", refresh_token)
                .field("scopes", scopes)
                .finish(),
        }
    }
}

/// Zendesk's plans, by their per-token request budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Team,
    Enterprise,
}

impl Plan {
    pub fn rpm(self) -> u32 {
        match self {
            Plan::Team => 200,
            Plan::Enterprise => 700,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZendeskConfig {
    /// `https://{subdomain}.zendesk.com`, or an emulator's base URL.
    pub base_url: String,
    pub credentials: Credentials,
    /// Requests per minute this token may send (the plan's, or less); a
    /// lower `X-Rate-Limit` from the API lowers it.
    pub rpm: u32,
    /// The window `rpm` counts in: Zendesk's minute, or an emulator's
    /// shortened one (`l3map e2e --quick`).
    pub rate_window: Duration,
    pub retry: RetryPolicy,
    /// Per attempt.
    pub timeout: Duration,
    /// Between polls of a bulk update's job status.
    pub job_poll_interval: Duration,
    /// Polls before a job that has not finished is reported as an error.
    pub job_max_polls: u32,
    /// Groups, ticket fields and custom statuses are cached this long.
    pub cache_ttl: Duration,
}

impl ZendeskConfig {
    /// Team-plan defaults: 200 RPM, the 2 s backoff, 15-minute cache.
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> ZendeskConfig {
        ZendeskConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            credentials,
            rpm: Plan::Team.rpm(),
            rate_window: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            job_poll_interval: Duration::from_secs(1),
            job_max_polls: 60,
            cache_ttl: DEFAULT_TTL,
        }
    }

    pub fn for_subdomain(subdomain: &str, credentials: Credentials) -> ZendeskConfig {
        ZendeskConfig::new(format!("https://{subdomain}.zendesk.com"), credentials)
    }

    pub fn with_plan(mut self, plan: Plan) -> ZendeskConfig {
        self.rpm = plan.rpm();
        self
    }
}

// ---------------------------------------------------------------- types

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldValue {
    pub id: u64,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Ticket {
    pub id: u64,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub status: String,
    #[serde(default)]
    pub custom_status_id: Option<u64>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub group_id: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldValue>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Ticket {
    /// A custom field's value, `None` if unset.
    pub fn field(&self, id: u64) -> Option<&Value> {
        self.custom_fields
            .iter()
            .find(|f| f.id == id)
            .map(|f| &f.value)
            .filter(|v| !v.is_null())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewComment {
    pub body: String,
    pub public: bool,
}

/// What to set on a ticket: create, update and bulk update take it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TicketChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The status category: new, open, pending, hold, solved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_status_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomFieldValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<NewComment>,
}

impl TicketChanges {
    /// A status by category, with the custom status when the table has one.
    pub fn status(mut self, category: &str, custom_status_id: Option<u64>) -> Self {
        self.status = Some(category.into());
        self.custom_status_id = custom_status_id;
        self
    }

    pub fn field(mut self, id: u64, value: impl Into<Value>) -> Self {
        self.custom_fields.push(CustomFieldValue {
            id,
            value: value.into(),
        });
        self
    }

    /// An internal note: `public: false`, agents only.
    pub fn private_comment(mut self, body: impl Into<String>) -> Self {
        self.comment = Some(NewComment {
            body: body.into(),
            public: false,
        });
        self
    }

    pub fn public_comment(mut self, body: impl Into<String>) -> Self {
        self.comment = Some(NewComment {
            body: body.into(),
            public: true,
        });
        self
    }

    pub fn group(mut self, group_id: u64) -> Self {
        self.group_id = Some(group_id);
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub author_id: Option<u64>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FieldOption {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TicketField {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub custom_field_options: Vec<FieldOption>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CustomStatus {
    pub id: u64,
    pub status_category: String,
    pub agent_label: String,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
}

/// One ticket's outcome in a bulk update.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobResult {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobStatus {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub progress: Option<u64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub results: Option<Vec<JobResult>>,
}

impl JobStatus {
    fn finished(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "killed")
    }
}

/// Where an incremental export starts.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportFrom {
    /// Unix seconds: tickets changed at or after this time.
    StartTime(i64),
    /// The `after_cursor` of the previous page.
    Cursor(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage {
    pub tickets: Vec<Ticket>,
    /// The same tickets as the API sent them, every attribute kept, for
    /// the event converters.
    pub raw: Vec<Value>,
    /// Where the next poll starts; keep it even at the end of the stream.
    pub after_cursor: Option<String>,
    pub end_of_stream: bool,
}

// ---------------------------------------------------------------- client

/// Items asked per page of a list endpoint: Zendesk's maximum.
const LIST_PAGE: usize = 100;
/// 100,000 items: far past any account's fields or groups, and a ticket
/// with more comments than this is not one to read whole.
const MAX_LIST_PAGES: usize = 1000;

/// Process-wide limiters, for clients built without their own.
fn shared_limiters() -> Arc<Limiters> {
    static LIMITERS: OnceLock<Arc<Limiters>> = OnceLock::new();
    LIMITERS.get_or_init(Default::default).clone()
}

/// How requests are authorized: a configured token's fixed header, or an
/// OAuth client's session.
#[derive(Clone)]
enum Auth {
    Fixed(HeaderValue),
    Session(Arc<tokio::sync::Mutex<Session>>),
}

/// An OAuth client's current access token and refresh token.
/// `generation` tells a caller that got a 401 whether someone refreshed
/// since it read the token. The mutex is held across a token request, so
/// concurrent 401s wait for one refresh.
struct Session {
    access: Option<HeaderValue>,
    refresh: Option<Secret>,
    generation: u64,
}

#[derive(Clone)]
pub struct ZendeskClient {
    http: reqwest::Client,
    cfg: Arc<ZendeskConfig>,
    auth: Auth,
    limiter: Arc<TokenLimiter>,
    groups: ReadCache<u8, Arc<Vec<Group>>>,
    fields: ReadCache<u8, Arc<Vec<TicketField>>>,
    statuses: ReadCache<u8, Arc<Vec<CustomStatus>>>,
    /// Names looked up and not found, each with the list it was missing
    /// from: while that list is the cached one, the answer stands.
    group_misses: Arc<Mutex<HashMap<String, Arc<Vec<Group>>>>>,
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
    /// A client sharing the process-wide per-token limiters.
    pub fn new(cfg: ZendeskConfig) -> Result<ZendeskClient, ApiError> {
        ZendeskClient::with_limiters(cfg, &shared_limiters())
    }

    /// A client whose token is limited by `limiters` (keyed by the token's
    /// fingerprint, so clients of one token share one budget).
    pub fn with_limiters(
        cfg: ZendeskConfig,
        limiters: &Limiters,
    ) -> Result<ZendeskClient, ApiError> {
        let key = cfg.credentials.limiter_key(&cfg.base_url);
        let auth = match (cfg.credentials.header(), &cfg.credentials) {
            (Some(h), _) => Auth::Fixed(h?),
            (None, Credentials::OAuthClient { refresh_token, .. }) => {
                Auth::Session(Arc::new(tokio::sync::Mutex::new(Session {
                    access: None,
                    refresh: refresh_token.clone(),
                    generation: 0,
                })))
            }
            (None, _) => {
                return Err(ApiError::Protocol {
                    system: SYSTEM,
                    message: "credentials without a header".into(),
                })
            }
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| ApiError::transport(SYSTEM, &e))?;
        let ttl = cfg.cache_ttl;
        Ok(ZendeskClient {
            http,
            auth,
            limiter: limiters.for_token_per(&key, cfg.rpm, cfg.rate_window),
            groups: ReadCache::new(ttl, 4),
            fields: ReadCache::new(ttl, 4),
            statuses: ReadCache::new(ttl, 4),
            group_misses: Arc::default(),
            cfg: Arc::new(cfg),
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

    /// Told of every HTTP attempt (the runtime's metrics attach here).
    pub fn observer(&self) -> &crate::connectors::retry::Observer {
        &self.cfg.retry.observer
    }

    // ------------------------------------------------------------ tickets

    /// The ticket as the API answers it (`{"ticket": {...}}`), every
    /// attribute kept, for the event converters.
    pub async fn get_ticket_json(&self, id: u64) -> Result<Value, ApiError> {
        self.call(
            Method::GET,
            &format!("/api/v2/tickets/{id}.json"),
            None,
            None,
        )
        .await
    }

    pub async fn get_ticket(&self, id: u64) -> Result<Ticket, ApiError> {
        let v = self
            .call(
                Method::GET,
                &format!("/api/v2/tickets/{id}.json"),
                None,
                None,
            )
            .await?;
        field(v, "ticket")
    }

    /// Creates a ticket (`changes.comment` is its description). With an
    /// idempotency key, a retry after a lost answer returns the same
    /// ticket instead of creating a second.
    pub async fn create_ticket(
        &self,
        changes: &TicketChanges,
        idempotency_key: Option<&str>,
    ) -> Result<Ticket, ApiError> {
        let body = serde_json::json!({ "ticket": changes });
        let v = self
            .call(
                Method::POST,
                "/api/v2/tickets.json",
                Some(&body),
                idempotency_key,
            )
            .await?;
        field(v, "ticket")
    }

    /// Deletes a ticket (Zendesk keeps it in the trash for 30 days).
    pub async fn delete_ticket(&self, id: u64) -> Result<(), ApiError> {
        self.call(
            Method::DELETE,
            &format!("/api/v2/tickets/{id}.json"),
            None,
            None,
        )
        .await
        .map(|_| ())
    }

    pub async fn update_ticket(
        &self,
        id: u64,
        changes: &TicketChanges,
    ) -> Result<Ticket, ApiError> {
        field(self.update_ticket_json(id, changes).await?, "ticket")
    }

    /// [`update_ticket`](Self::update_ticket), answered as the API answers
    /// (`{"ticket": {...}, "audit": {...}}`): the updated ticket with every
    /// attribute and its new `updated_at`, so the webhooks this update
    /// causes need not read it back.
    pub async fn update_ticket_json(
        &self,
        id: u64,
        changes: &TicketChanges,
    ) -> Result<Value, ApiError> {
        let body = serde_json::json!({ "ticket": changes });
        self.call(
            Method::PUT,
            &format!("/api/v2/tickets/{id}.json"),
            Some(&body),
            None,
        )
        .await
    }

    /// The same changes on many tickets: one request per 100 tickets, each
    /// job polled until it finishes (at most `job_max_polls` times). The
    /// results of every job, in order, and one per ticket: a ticket the
    /// job did not report on gets `success: None` and an error saying so.
    pub async fn update_many(
        &self,
        ids: &[u64],
        changes: &TicketChanges,
    ) -> Result<Vec<JobResult>, ApiError> {
        let body = serde_json::json!({ "ticket": changes });
        let mut results = Vec::new();
        for chunk in ids.chunks(MAX_BULK) {
            let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
            let path = format!("/api/v2/tickets/update_many.json?ids={}", list.join(","));
            let v = self.call(Method::PUT, &path, Some(&body), None).await?;
            let job: JobStatus = field(v, "job_status")?;
            let done = self.wait_for_job(job).await?;
            let mut got = done.results.unwrap_or_default();
            // A ticket the job says nothing about is reported, not dropped:
            // the caller must not take silence for success.
            let seen: std::collections::HashSet<u64> = got.iter().filter_map(|r| r.id).collect();
            got.extend(
                chunk
                    .iter()
                    .filter(|id| !seen.contains(id))
                    .map(|id| JobResult {
                        id: Some(*id),
                        success: None,
                        status: Some("Unknown".into()),
                        error: Some(format!(
                            "job {} reported no result for this ticket",
                            done.id
                        )),
                        details: None,
                    }),
            );
            results.extend(got);
        }
        Ok(results)
    }

    pub async fn job_status(&self, id: &str) -> Result<JobStatus, ApiError> {
        let v = self
            .call(
                Method::GET,
                &format!("/api/v2/job_statuses/{id}.json"),
                None,
                None,
            )
            .await?;
        field(v, "job_status")
    }

    async fn wait_for_job(&self, mut job: JobStatus) -> Result<JobStatus, ApiError> {
        for _ in 0..self.cfg.job_max_polls {
            if job.finished() {
                return Ok(job);
            }
            tokio::time::sleep(self.cfg.job_poll_interval).await;
            job = self.job_status(&job.id).await?;
        }
        if job.finished() {
            return Ok(job);
        }
        Err(ApiError::Transient {
            system: SYSTEM,
            status: None,
            message: format!(
                "job {} still {} after {} polls",
                job.id, job.status, self.cfg.job_max_polls
            ),
            sent: true,
        })
    }

    /// Every comment of the ticket, oldest first, across all pages.
    pub async fn list_comments(&self, ticket_id: u64) -> Result<Vec<Comment>, ApiError> {
        self.list_all(
            &format!("/api/v2/tickets/{ticket_id}/comments.json"),
            "comments",
        )
        .await
    }

    /// A list endpoint read to the end with cursor pagination
    /// (`page[size]=100`, then `page[after]` from `meta.after_cursor`).
    /// Stops with an error past [`MAX_LIST_PAGES`] rather than loop on an
    /// API that keeps saying `has_more`.
    async fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Vec<T>, ApiError> {
        #[derive(Deserialize, Default)]
        struct Meta {
            #[serde(default)]
            has_more: bool,
            #[serde(default)]
            after_cursor: Option<String>,
        }
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut url = format!("{path}?page%5Bsize%5D={LIST_PAGE}");
            if let Some(c) = &after {
                url.push_str(&format!("&page%5Bafter%5D={}", encode_query(c)));
            }
            let mut v = self.call(Method::GET, &url, None, None).await?;
            let meta: Meta = v
                .get_mut("meta")
                .map(Value::take)
                .map(decode)
                .transpose()?
                .unwrap_or_default();
            let mut items: Vec<T> = field(v, key)?;
            out.append(&mut items);
            match (meta.has_more, meta.after_cursor) {
                (true, Some(c)) if after.as_ref() != Some(&c) => after = Some(c),
                (true, _) => {
                    return Err(ApiError::Protocol {
                        system: SYSTEM,
                        message: format!("{path} says it has more but gave no new cursor"),
                    })
                }
                (false, _) => return Ok(out),
            }
        }
        Err(ApiError::Protocol {
            system: SYSTEM,
            message: format!("{path} has more than {MAX_LIST_PAGES} pages"),
        })
    }

    /// One page of the cursor-based incremental ticket export.
    pub async fn export_tickets(&self, from: &ExportFrom) -> Result<ExportPage, ApiError> {
        let query = match from {
            ExportFrom::StartTime(t) => format!("start_time={t}"),
            ExportFrom::Cursor(c) => format!("cursor={}", encode_query(c)),
        };
        let path = format!("/api/v2/incremental/tickets/cursor.json?{query}");
        let v = self.call(Method::GET, &path, None, None).await?;
        #[derive(Deserialize)]
        struct Page {
            tickets: Vec<Value>,
            #[serde(default)]
            after_cursor: Option<String>,
            #[serde(default)]
            end_of_stream: bool,
        }
        let p: Page = decode(v)?;
        let tickets = p
            .tickets
            .iter()
            .map(|t| decode(t.clone()))
            .collect::<Result<Vec<Ticket>, _>>()?;
        Ok(ExportPage {
            tickets,
            raw: p.tickets,
            after_cursor: p.after_cursor,
            end_of_stream: p.end_of_stream,
        })
    }

    // ------------------------------------------------------------ settings

    pub async fn ticket_fields(&self) -> Result<Arc<Vec<TicketField>>, ApiError> {
        self.settings(&self.fields, "ticket_fields", true).await
    }

    /// Custom statuses come in one answer: the endpoint is not paginated.
    pub async fn custom_statuses(&self) -> Result<Arc<Vec<CustomStatus>>, ApiError> {
        self.settings(&self.statuses, "custom_statuses", false)
            .await
    }

    pub async fn groups(&self) -> Result<Arc<Vec<Group>>, ApiError> {
        self.settings(&self.groups, "groups", true).await
    }

    /// One of the account's slow-changing lists (`/api/v2/{name}.json`,
    /// answered under the key `name`), through its 15-minute cache.
    async fn settings<T>(
        &self,
        cache: &ReadCache<u8, Arc<Vec<T>>>,
        name: &str,
        paginated: bool,
    ) -> Result<Arc<Vec<T>>, ApiError>
    where
        T: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        cache
            .get_or_load(0, async {
                let path = format!("/api/v2/{name}.json");
                if paginated {
                    return self.list_all(&path, name).await.map(Arc::new);
                }
                let v = self.call(Method::GET, &path, None, None).await?;
                field(v, name).map(Arc::new)
            })
            .await
    }

    /// A group's id by its name (escalations name groups), from the cached
    /// list. A name not found reloads the list once, in case the group is
    /// new; until the list is next reloaded anyway (the cache's TTL), the
    /// same name is answered "not found" from memory, so a mapping naming
    /// a missing group cannot turn every event into a list read.
    pub async fn group_id(&self, name: &str) -> Result<u64, ApiError> {
        let find = |gs: &[Group]| gs.iter().find(|g| g.name == name).map(|g| g.id);
        let groups = self.groups().await?;
        if let Some(id) = find(&groups) {
            return Ok(id);
        }
        let missing = || ApiError::NotFound {
            system: SYSTEM,
            message: format!("no group named {name:?}"),
        };
        {
            let misses = self.group_misses.lock().unwrap_or_else(|e| e.into_inner());
            if misses
                .get(name)
                .is_some_and(|list| Arc::ptr_eq(list, &groups))
            {
                return Err(missing());
            }
        }
        self.groups.invalidate(&0).await;
        let fresh = self.groups().await?;
        match find(&fresh) {
            Some(id) => Ok(id),
            None => {
                let mut misses = self.group_misses.lock().unwrap_or_else(|e| e.into_inner());
                // Misses against older lists are stale: drop them.
                misses.retain(|_, list| Arc::ptr_eq(list, &fresh));
                misses.insert(name.to_string(), fresh);
                Err(missing())
            }
        }
    }

    // ------------------------------------------------------------ transport

    /// One request through the retry layer. Reads, field writes and
    /// creates with an idempotency key are [`Replay::Safe`]; anything with a
    /// comment is not (a second send is a second comment).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiError> {
        let adds_comment = body
            .and_then(|b| b.get("ticket"))
            .is_some_and(|t| t.get("comment").is_some());
        let replay = match method {
            Method::GET => Replay::Safe,
            Method::POST if idempotency_key.is_none() => Replay::IfUnapplied,
            _ if adds_comment && idempotency_key.is_none() => Replay::IfUnapplied,
            _ => Replay::Safe,
        };
        self.cfg
            .retry
            .run(SYSTEM, replay, |deadline| {
                self.attempt(method.clone(), path, body, idempotency_key, deadline)
            })
            .await
    }

    async fn attempt(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<Value, ApiError> {
        let lane = if self.urgent {
            Lane::Interactive
        } else {
            Lane::Background
        };
        let ready = self.limiter.acquire_in(lane);
        if tokio::time::timeout_at(deadline, ready).await.is_err() {
            return Err(super::limit::over_budget(SYSTEM));
        }
        let send = |auth: HeaderValue| self.send(method.clone(), path, body, idempotency_key, auth);
        let (auth, generation) = self.authorization().await?;
        let mut answer = send(auth).await?;
        // A 401 refuses the request before anything is done, so sending it
        // again with a new token is safe, whatever the request.
        if answer.0 == StatusCode::UNAUTHORIZED && matches!(self.auth, Auth::Session(_)) {
            let auth = self.refresh(generation).await?;
            answer = send(auth).await?;
        }
        let (status, headers, bytes) = answer;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| ApiError::Protocol {
                system: SYSTEM,
                message: format!("response is not JSON: {e}"),
            });
        }
        Err(error_for(status, &headers, &bytes))
    }

    /// One request as sent, and what came back.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        auth: HeaderValue,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), ApiError> {
        let url = format!("{}{path}", self.cfg.base_url);
        let mut req = self.http.request(method, url).header(AUTHORIZATION, auth);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ApiError::transport(SYSTEM, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        self.observe(&headers);
        let bytes = read_capped(SYSTEM, resp, MAX_RESPONSE_BODY).await?;
        Ok((status, headers, bytes))
    }

    // ------------------------------------------------------------ session

    /// The header to send, and the session generation it belongs to (a
    /// fixed header is generation 0 forever). An OAuth client without a
    /// token yet gets one first.
    async fn authorization(&self) -> Result<(HeaderValue, u64), ApiError> {
        let session = match &self.auth {
            Auth::Fixed(h) => return Ok((h.clone(), 0)),
            Auth::Session(s) => s,
        };
        let seen = {
            let s = session.lock().await;
            if let Some(h) = &s.access {
                return Ok((h.clone(), s.generation));
            }
            s.generation
        };
        Ok((self.refresh(seen).await?, seen + 1))
    }

    /// A new access token, unless someone got one since `seen`: the lock
    /// is held across the token request, so concurrent callers wait for it
    /// and then use the token it got.
    async fn refresh(&self, seen: u64) -> Result<HeaderValue, ApiError> {
        let Auth::Session(session) = &self.auth else {
            return Err(ApiError::Protocol {
                system: SYSTEM,
                message: "a configured token cannot be refreshed".into(),
            });
        };
        let mut s = session.lock().await;
        if s.generation != seen {
            if let Some(h) = &s.access {
                return Ok(h.clone());
            }
        }
        let grant = self.grant(s.refresh.as_ref()).await?;
        let header = sensitive_header(&format!("Bearer {}", grant.access_token.expose()))?;
        s.access = Some(header.clone());
        if grant.refresh_token.is_some() {
            s.refresh = grant.refresh_token;
        }
        s.generation += 1;
        tracing::debug!(generation = s.generation, "zendesk access token renewed");
        Ok(header)
    }

    /// `POST /oauth/tokens`: the refresh-token grant with `refresh`, else
    /// client credentials. Zendesk's error code and description are kept;
    /// the client's secret and tokens never reach the error.
    async fn grant(&self, refresh: Option<&Secret>) -> Result<TokenGrant, ApiError> {
        let Credentials::OAuthClient {
            client_id,
            client_secret,
            scopes,
            ..
        } = &self.cfg.credentials
        else {
            return Err(ApiError::Protocol {
                system: SYSTEM,
                message: "not an OAuth client".into(),
            });
        };
        let mut body = serde_json::json!({
            "grant_type": if refresh.is_some() { "refresh_token" } else { "client_credentials" },
            "client_id": client_id,
            "client_secret": client_secret.expose(),
        });
        if let Some(r) = refresh {
            body["refresh_token"] = Value::from(r.expose());
        }
        if !scopes.is_empty() {
            body["scope"] = Value::from(scopes.join(" "));
        }
        let resp = self
            .http
            .post(format!("{}/oauth/tokens", self.cfg.base_url))
            .json(&body)
            .send()
            .await
            .map_err(|e| ApiError::transport(SYSTEM, &e))?;
        let status = resp.status();
        let bytes = read_capped(SYSTEM, resp, MAX_RESPONSE_BODY).await?;
        if !status.is_success() {
            return Err(ApiError::from_token_endpoint(
                SYSTEM,
                status.as_u16(),
                &bytes,
            ));
        }
        #[derive(Deserialize)]
        struct Raw {
            access_token: String,
            #[serde(default)]
            refresh_token: Option<String>,
        }
        let raw: Raw = serde_json::from_slice(&bytes).map_err(|_| ApiError::Protocol {
            system: SYSTEM,
            message: "the token endpoint answered without an access token".into(),
        })?;
        Ok(TokenGrant {
            access_token: Secret::new(raw.access_token),
            refresh_token: raw.refresh_token.map(Secret::new),
        })
    }

    /// Feeds Zendesk's rate headers to the token's limiter (the headers of
    /// developer.zendesk.com/api-reference/introduction/rate-limits:
    /// `X-Rate-Limit` / `ratelimit-limit` is the account's limit a minute,
    /// `X-Rate-Limit-Remaining` / `ratelimit-remaining` what is left of
    /// this minute, `ratelimit-reset` the seconds until it reopens,
    /// `Retry-After` on a 429). The limit becomes the token's if it is
    /// lower than the configured plan. At zero remaining, `ratelimit-reset`
    /// says when the window reopens; without it, a whole window is waited
    /// out. Above zero, when the window holds fewer requests than this
    /// client's own pace would send before it reopens (another
    /// integration shares the account), requests are spread evenly over
    /// what is left instead of spending it and collecting 429s.
    fn observe(&self, headers: &HeaderMap) {
        let num = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        let limit = num("x-rate-limit").or_else(|| num("ratelimit-limit"));
        if let Some(l) = limit {
            self.limiter.observe_limit(l);
        }
        let remaining = num("x-rate-limit-remaining").or_else(|| num("ratelimit-remaining"));
        let window_left = num("ratelimit-reset").map(Duration::from_secs);
        let retry_after =
            parse_retry_after(headers.get("retry-after").and_then(|v| v.to_str().ok()));
        let reset = match (retry_after, remaining) {
            (None, Some(0)) => window_left,
            _ => retry_after,
        };
        self.limiter.observe(remaining, reset);
        if let (Some(r), Some(left)) = (remaining, window_left) {
            let own = self.cfg.rate_window / self.limiter.limit().max(1);
            self.limiter
                .set_spacing(spread(r, limit, left, own).unwrap_or_default());
        }
    }
}

/// What the token endpoint issued.
struct TokenGrant {
    access_token: Secret,
    refresh_token: Option<Secret>,
}

/// The gap between requests that spends `remaining` evenly over
/// `window_left`, once less than a fifth of the window's `limit` is left
/// and that gap is longer than the client's `own` pace leaves. Above a
/// fifth, the limiter's own pacing is enough: the window has room.
fn spread(
    remaining: u64,
    limit: Option<u64>,
    window_left: Duration,
    own: Duration,
) -> Option<Duration> {
    if limit.is_some_and(|l| remaining.saturating_mul(5) >= l) {
        return None;
    }
    let even = window_left / u32::try_from(remaining.saturating_add(1)).unwrap_or(u32::MAX);
    (even > own).then_some(even)
}

/// `cursor` values are base64: `+`, `/` and `=` need escaping in a query.
fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::Protocol {
        system: SYSTEM,
        message: format!("unexpected response shape: {e}"),
    })
}

/// `{"ticket": {...}}` -> the ticket.
fn field<T: serde::de::DeserializeOwned>(mut v: Value, key: &str) -> Result<T, ApiError> {
    match v.get_mut(key).map(Value::take) {
        Some(inner) => decode(inner),
        None => Err(ApiError::Protocol {
            system: SYSTEM,
            message: format!("response has no {key:?}"),
        }),
    }
}

/// The typed error for a non-2xx answer, with Zendesk's own message.
fn error_for(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = describe(&json, status);
    let retry_after = parse_retry_after(headers.get("retry-after").and_then(|v| v.to_str().ok()));
    ApiError::from_status(
        SYSTEM,
        status.as_u16(),
        message,
        retry_after,
        blamed_fields(&json),
    )
}

/// Zendesk says it in `description`, sometimes in `message`, or only in
/// `error` (a code, or an object with `title`/`message`).
fn describe(json: &Value, status: StatusCode) -> String {
    let text = |v: &Value| v.as_str().map(String::from);
    let error = json.get("error");
    json.get("description")
        .and_then(text)
        .or_else(|| json.get("message").and_then(text))
        .or_else(|| error.and_then(|e| e.get("message")).and_then(text))
        .or_else(|| error.and_then(|e| e.get("title")).and_then(text))
        .or_else(|| error.and_then(text))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string())
}

/// The fields `details` blames: attribute names, and custom fields by their
/// `field_key` (their id) when Zendesk files them under `base`.
fn blamed_fields(json: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let Some(details) = json.get("details").and_then(Value::as_object) else {
        return out;
    };
    for (attr, problems) in details {
        let keys: Vec<String> = problems
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| match p.get("field_key") {
                        Some(Value::Number(n)) => Some(n.to_string()),
                        Some(Value::String(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty() && attr != "base" {
            out.push(attr.clone());
        }
        out.extend(keys);
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_name_the_fields() {
        let body = serde_json::json!({
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {
                "base": [{"description": "SLA tier: bad", "error": "InvalidValue", "field_key": 360001234}],
                "status": [{"description": "Status: is invalid", "error": "InvalidValue"}]
            }
        });
        let e = error_for(
            StatusCode::UNPROCESSABLE_ENTITY,
            &HeaderMap::new(),
            body.to_string().as_bytes(),
        );
        match e {
            ApiError::Validation {
                status,
                fields,
                message,
                ..
            } => {
                assert_eq!(status, 422);
                assert_eq!(fields, vec!["360001234".to_string(), "status".into()]);
                assert_eq!(message, "Record validation errors");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_come_from_whichever_key_zendesk_used() {
        let d = |s: &str| {
            describe(
                &serde_json::from_str(s).unwrap_or(Value::Null),
                StatusCode::BAD_REQUEST,
            )
        };
        assert_eq!(
            d(r#"{"error":"Couldn't authenticate you"}"#),
            "Couldn't authenticate you"
        );
        assert_eq!(
            d(r#"{"error":"X","message":"Server could not parse JSON"}"#),
            "Server could not parse JSON"
        );
        assert_eq!(d(r#"{"error":{"title":"T","message":"M"}}"#), "M");
        assert_eq!(d("<html>"), "Bad Request");
        assert_eq!(encode_query("a+b/c="), "a%2Bb%2Fc%3D");
    }

    #[test]
    fn a_short_window_is_spread_over_what_is_left() {
        let minute = Duration::from_secs(60);
        // 200 RPM alone: 0.3 s apart, which the window allows: no gap.
        let pace = |rpm: u32| minute / rpm;
        assert_eq!(spread(199, None, minute, pace(200)), None);
        // Plenty left of a 700 window: the limiter's pace, no gap.
        assert_eq!(spread(500, Some(700), minute, pace(6000)), None);
        // Another integration left 9 of 200 for the next 30 s.
        assert_eq!(
            spread(9, Some(200), Duration::from_secs(30), pace(200)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(spread(u64::MAX, None, minute, minute), None);
    }

    #[test]
    fn credentials_never_print() {
        let c = Credentials::ApiToken {
            email: "ops@example.com".into(),
            token: Secret::new("zd-api-SECRET-123"),
        };
        assert!(!format!("{c:?}").contains("SECRET"));
        let cfg = ZendeskConfig::new("http://127.0.0.1:1", c);
        assert!(!format!("{cfg:?}").contains("SECRET"));
    }
}
