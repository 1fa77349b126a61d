//! How a Zendesk client is configured: its instance, its credentials and
//! the plan whose budget its token has.

use super::super::cache::DEFAULT_TTL;
use super::super::error::{ApiError, System};
use super::super::retry::RetryPolicy;
use super::super::secret::Secret;
use base64::Engine as _;
use reqwest::header::HeaderValue;
use std::time::Duration;

pub(super) const SYSTEM: System = System::Zendesk;

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
        /// `None` for a public client (PKCE at sign-in, no secret).
        client_secret: Option<Secret>,
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
    pub(super) fn limiter_key(&self, base_url: &str) -> String {
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
    pub(super) fn header(&self) -> Option<Result<HeaderValue, ApiError>> {
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
pub(super) fn sensitive_header(text: &str) -> Result<HeaderValue, ApiError> {
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
    /// Where an OAuth client keeps its grant across restarts (the
    /// runtime's sealed store); `None`: in memory only.
    pub keeper: Option<super::super::transport::session::KeeperHandle>,
    /// An OAuth client's access token is renewed at most this long before
    /// it expires (a quarter of its lifetime when that is less).
    pub refresh_margin: Duration,
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
            keeper: None,
            refresh_margin: Duration::from_secs(120),
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
