//! How a Salesforce client is configured: the org's login URL, the
//! connected app, how it signs in, and its budgets.

use super::super::cache::DEFAULT_TTL;
use super::super::retry::RetryPolicy;
use super::super::secret::Secret;
use super::jwt_bearer::JwtBearer;
use std::fmt;
use std::time::Duration;

#[derive(Clone)]
pub struct SalesforceConfig {
    /// Where the token endpoint is: `https://login.salesforce.com`, the
    /// org's My Domain, or the emulator. API calls go to the
    /// `instance_url` the token endpoint returns.
    pub login_url: String,
    /// `v60.0`.
    pub api_version: String,
    pub client_id: String,
    pub auth: SalesforceAuth,
    /// Concurrent requests per connected app (Salesforce: 100 on some
    /// editions).
    pub max_concurrent: usize,
    /// Requests per minute the limiter allows before the API says more.
    pub rpm: u32,
    pub retry: RetryPolicy,
    /// How long accounts and describes are cached (15 minutes).
    pub cache_ttl: Duration,
    /// The Account fields the tier/SLA lookup reads.
    pub account_fields: Vec<String>,
    /// Records per query page asked for (`Sforce-Query-Options`).
    pub query_batch_size: Option<u32>,
    /// A query stops with an error past this many pages, so a runaway
    /// query cannot hold the connector.
    pub max_query_pages: usize,
    pub timeout: Duration,
    /// Where the grant of a `flow web_server` / `flow refresh_token`
    /// connection is kept (the runtime's sealed store): a rotated refresh
    /// token survives a restart. `None`: in memory only.
    pub keeper: Option<super::super::transport::session::KeeperHandle>,
    /// Access tokens are renewed on a 401 (Salesforce answers no
    /// `expires_in`); the margin applies if one ever comes.
    pub refresh_margin: Duration,
}

impl fmt::Debug for SalesforceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceConfig")
            .field("login_url", &self.login_url)
            .field("api_version", &self.api_version)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("max_concurrent", &self.max_concurrent)
            .finish_non_exhaustive()
    }
}

/// How the connector signs in to the org.
#[derive(Clone)]
pub enum SalesforceAuth {
    /// The connected app's consumer secret and a refresh token from a
    /// one-time interactive approval.
    RefreshToken {
        client_secret: Secret,
        refresh_token: Secret,
    },
    /// The web server flow (`l3map auth login`): the grant comes from the
    /// store; a configured `refresh_token` only seeds an empty store. A
    /// public client (PKCE only) has no secret.
    WebServer {
        client_secret: Option<Secret>,
        refresh_token: Option<Secret>,
    },
    /// A connected app with a digital certificate: no secret and no
    /// refresh token, an assertion signed with the certificate's key.
    JwtBearer(JwtBearer),
}

impl fmt::Debug for SalesforceAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SalesforceAuth::RefreshToken {
                client_secret,
                refresh_token,
            } => f
                .debug_struct("RefreshToken")
                .field("client_secret", client_secret)
                .field("refresh_token", refresh_token)
                .finish(),
            SalesforceAuth::WebServer {
                client_secret,
                refresh_token,
            } => f
                .debug_struct("WebServer")
                .field("client_secret", client_secret)
                .field("refresh_token", refresh_token)
                .finish(),
            SalesforceAuth::JwtBearer(j) => j.fmt(f),
        }
    }
}

impl SalesforceAuth {
    /// The flow a connection block declares, from its credentials looked
    /// up by property name: `username` and `private_key` select the
    /// JWT-bearer flow (with `audience` as `aud`), `client_secret` and
    /// `refresh_token` the refresh-token flow. The error is the property
    /// that is missing.
    pub fn from_properties(
        audience: &str,
        get: impl Fn(&str) -> Option<Secret>,
    ) -> Result<SalesforceAuth, &'static str> {
        let need = |key: &'static str| get(key).ok_or(key);
        if get("private_key").is_some() || get("username").is_some() {
            let username = need("username")?;
            let jwt = JwtBearer::new(username.expose(), need("private_key")?, audience);
            return Ok(SalesforceAuth::JwtBearer(jwt));
        }
        Ok(SalesforceAuth::RefreshToken {
            client_secret: need("client_secret")?,
            refresh_token: need("refresh_token")?,
        })
    }
}

impl SalesforceConfig {
    /// The refresh-token flow.
    pub fn new(
        login_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Secret,
        refresh_token: Secret,
    ) -> SalesforceConfig {
        SalesforceConfig::with_auth(
            login_url,
            client_id,
            SalesforceAuth::RefreshToken {
                client_secret,
                refresh_token,
            },
        )
    }

    /// The JWT-bearer flow, with the login URL as the audience.
    pub fn jwt_bearer(
        login_url: impl Into<String>,
        client_id: impl Into<String>,
        username: impl Into<String>,
        private_key: Secret,
    ) -> SalesforceConfig {
        let login_url = login_url.into();
        let jwt = JwtBearer::new(username, private_key, login_url.clone());
        SalesforceConfig::with_auth(login_url, client_id, SalesforceAuth::JwtBearer(jwt))
    }

    pub fn with_auth(
        login_url: impl Into<String>,
        client_id: impl Into<String>,
        auth: SalesforceAuth,
    ) -> SalesforceConfig {
        SalesforceConfig {
            login_url: login_url.into(),
            api_version: "v60.0".into(),
            client_id: client_id.into(),
            auth,
            max_concurrent: 100,
            rpm: 6000,
            retry: RetryPolicy::default(),
            cache_ttl: DEFAULT_TTL,
            account_fields: [
                "Id",
                "Name",
                "SLA_Tier__c",
                "Contract_Value__c",
                "Renewal_Date__c",
            ]
            .map(String::from)
            .to_vec(),
            query_batch_size: None,
            max_query_pages: 500,
            timeout: Duration::from_secs(30),
            keeper: None,
            refresh_margin: Duration::from_secs(120),
        }
    }
}
