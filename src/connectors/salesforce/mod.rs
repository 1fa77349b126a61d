//! The Salesforce REST client: OAuth 2.0 sign-in with a refresh token or a
//! JWT-bearer assertion ([`SalesforceAuth`]; the access token lives in
//! memory and is replaced once, single-flight, when Salesforce answers
//! `INVALID_SESSION_ID`), a cap on concurrent requests per connected app,
//! every call through the one
//! [`RetryPolicy`](super::retry::RetryPolicy), and the org's
//! `Sforce-Limit-Info` usage read from every answer.
//!
//! The files: `config.rs` (the connected app and how it signs in),
//! `types.rs` (records and answers), `jwt_bearer.rs` (the signing half of
//! the JWT-bearer flow), `id.rs` (15- and 18-character record ids),
//! `policy.rs` (Salesforce's side of the
//! shared [`transport`](super::transport): signing, replay, usage header,
//! token grant, error bodies), `endpoints.rs` (the operations).

mod composite;
mod config;
mod endpoints;
pub mod id;
pub mod jwt_bearer;
mod policy;
pub mod pubsub;
mod session;
mod types;

pub use composite::{QueryOutcome, SubResult, COMPOSITE_BATCH_LIMIT, COMPOSITE_QUERY_LIMIT};
pub use config::{SalesforceAuth, SalesforceConfig};
pub use policy::kept_instance_url;
pub use session::PubSubSession;
pub use types::{
    ApiUsage, Describe, DescribeField, PicklistValue, QueryResult, Record, RecordError,
    RecordUpdate, SaveResult, BATCH_LIMIT,
};

use super::cache::{json_bytes, ReadCache};
use super::error::ApiError;
use super::limit::{Lane, Limiters};
use super::secret::Secret;
use super::transport::{send, Answer, Budget, Request, Session, Transport};
use jwt_bearer::Signer;
use policy::{protocol, SalesforcePolicy, SignIn, SF};
use reqwest::Method;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Account cache's bound, in bytes of the records' JSON: agents name
/// the Accounts they read (`/v1/context?account=`), and an org's Account
/// may carry long text fields, so a count would bound nothing.
pub const ACCOUNT_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// What a cached Account costs: its JSON's length, the Id, and a fixed
/// allowance for the map and the cache's own bookkeeping. (`&String`: the
/// cache's weigher is a `fn(&K, &V)` with `K = String`.)
#[allow(clippy::ptr_arg)]
fn account_bytes(id: &String, record: &Arc<Record>) -> u32 {
    u32::try_from(json_bytes(&**record) + id.len() + 256).unwrap_or(u32::MAX)
}
struct Inner {
    cfg: SalesforceConfig,
    transport: Transport<SalesforcePolicy>,
    accounts: ReadCache<String, Arc<Record>>,
    describes: ReadCache<String, Arc<Describe>>,
}

/// Cheap to clone; clones share the session, the concurrency cap, the
/// limiter and the caches, so one connected app should have one client.
#[derive(Clone)]
pub struct SalesforceClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("config", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl SalesforceClient {
    /// A client with a budget and a concurrency cap of its own: for a tool
    /// or a test that builds one client. Clients of one connected app must
    /// share them: build them with one [`Limiters`]
    /// ([`SalesforceClient::with_limiters`]; the runtime does,
    /// `runtime::clients`).
    pub fn new(cfg: SalesforceConfig) -> Result<SalesforceClient, ApiError> {
        SalesforceClient::with_limiters(cfg, &Limiters::default())
    }

    /// A client whose connected app's limiter and concurrency cap come
    /// from `limiters`: every client of the app built with the same
    /// registry shares them, and no other client does.
    pub fn with_limiters(
        cfg: SalesforceConfig,
        limiters: &Limiters,
    ) -> Result<SalesforceClient, ApiError> {
        let http = send::http_client(SF, cfg.timeout)?;
        let sign_in = match &cfg.auth {
            SalesforceAuth::JwtBearer(jwt) => SignIn::Jwt(Signer::new(SF, &cfg.client_id, jwt)?),
            SalesforceAuth::RefreshToken {
                client_secret,
                refresh_token,
            } => SignIn::RefreshToken {
                client_secret: Some(client_secret.clone()),
                refresh_token: Some(refresh_token.clone()),
            },
            SalesforceAuth::WebServer {
                client_secret,
                refresh_token,
            } => SignIn::RefreshToken {
                client_secret: client_secret.clone(),
                refresh_token: refresh_token.clone(),
            },
        };
        // The connected app in its org, not the access token (it changes
        // on every refresh), is what Salesforce limits; keyed by
        // fingerprint so nothing a user configured becomes a map key.
        let key = Secret::new(format!("{}\n{}", cfg.login_url, cfg.client_id)).fingerprint();
        let budget = Budget::of(
            limiters,
            &key,
            cfg.rpm,
            Duration::from_secs(60),
            Some(cfg.max_concurrent),
        );
        let policy = SalesforcePolicy {
            login_url: cfg.login_url.clone(),
            client_id: cfg.client_id.clone(),
            sign_in,
            query_batch_size: cfg.query_batch_size,
            usage: Mutex::new(None),
        };
        let transport = Transport::new(
            http,
            policy,
            Session::renewable_kept(
                cfg.keeper.as_ref().map(|k| k.0.clone()),
                cfg.refresh_margin,
                cfg.timeout + super::transport::session::REFRESH_LEASE_SLACK,
            ),
            budget,
            cfg.retry.clone(),
        );
        let inner = Inner {
            transport,
            accounts: ReadCache::by_weight(cfg.cache_ttl, ACCOUNT_CACHE_BYTES, account_bytes),
            describes: ReadCache::new(cfg.cache_ttl, 1_000),
            cfg,
        };
        Ok(SalesforceClient {
            inner: Arc::new(inner),
        })
    }

    /// Told of every HTTP attempt (the runtime's metrics attach here).
    pub fn observer(&self) -> &super::retry::Observer {
        &self.inner.cfg.retry.observer
    }

    /// The org's API usage as of the last answer.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        *self
            .inner
            .transport
            .policy()
            .usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn data_path(&self, rest: &str) -> String {
        format!("/services/data/{}/{rest}", self.inner.cfg.api_version)
    }

    fn call(&self, method: Method, rest: String) -> Request<'static> {
        Request::new(method, self.data_path(&rest))
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, call: Request<'_>) -> Result<T, ApiError> {
        let reply = self.send(call).await?;
        serde_json::from_slice(&reply.body).map_err(|e| {
            protocol(format!(
                "unreadable answer (HTTP {}): {}",
                reply.status.as_u16(),
                e
            ))
        })
    }

    /// One logical request through the transport: each attempt waits for
    /// a permit and the limiter; an expired session is refreshed (once)
    /// and the request sent again, inside the same attempt.
    async fn send(&self, call: Request<'_>) -> Result<Answer, ApiError> {
        self.inner.transport.call(Lane::Background, &call).await
    }

    #[cfg(test)]
    pub(crate) fn budget(&self) -> &Budget {
        self.inner.transport.budget()
    }
}

#[cfg(test)]
mod tests;

/// The client name l3map sends in `Sforce-Call-Options` on every write,
/// which Salesforce stamps into a change event's `changeOrigin`
/// (`com/salesforce/api/rest/60.0;client=l3map`): how l3map recognises its
/// own writes coming back as changes and skips them.
pub const CALL_OPTIONS_CLIENT: &str = "l3map";
