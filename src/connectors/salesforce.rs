//! The Salesforce REST client: OAuth 2.0 sign-in with a refresh token or a
//! JWT-bearer assertion ([`SalesforceAuth`]; the access token lives in
//! memory and is replaced once, single-flight, when Salesforce answers
//! `INVALID_SESSION_ID`), a cap on concurrent requests per connected app,
//! every call through the one [`RetryPolicy`], and the org's
//! `Sforce-Limit-Info` usage read from every answer.

use super::body::{read_capped, MAX_RESPONSE_BODY};
use super::cache::{ReadCache, DEFAULT_TTL};
use super::error::{ApiError, System};
use super::jwt_bearer::{self, JwtBearer, Signer};
use super::limit::{parse_retry_after, Limiters, TokenLimiter};
use super::retry::{Replay, RetryPolicy};
use super::secret::Secret;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

const SF: System = System::Salesforce;

/// A record as the API returns it.
pub type Record = Map<String, Json>;

/// The Account cache's bound, in bytes of the records' JSON: agents name
/// the Accounts they read (`/v1/context?account=`), and an org's Account
/// may carry long text fields, so a count would bound nothing.
pub const ACCOUNT_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// What a cached Account costs: its JSON's length, the Id, and a fixed
/// allowance for the map and the cache's own bookkeeping. (`&String`: the
/// cache's weigher is a `fn(&K, &V)` with `K = String`.)
#[allow(clippy::ptr_arg)]
fn account_bytes(id: &String, record: &Arc<Record>) -> u32 {
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
    let _ = serde_json::to_writer(&mut n, &**record);
    u32::try_from(n.0 + id.len() + 256).unwrap_or(u32::MAX)
}

/// sObject Collections take at most 200 records per request.
pub const BATCH_LIMIT: usize = 200;

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
        }
    }
}

/// The org's daily API usage, from `Sforce-Limit-Info: api-usage=N/L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub limit: u64,
}

impl ApiUsage {
    pub fn parse(header: &str) -> Option<ApiUsage> {
        let v = header
            .split(',')
            .find_map(|part| part.trim().strip_prefix("api-usage="))?;
        let (used, limit) = v.split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            limit: limit.trim().parse().ok()?,
        })
    }

    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// One record's outcome in an sObject Collections request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SaveResult {
    #[serde(default)]
    pub id: Option<String>,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<RecordError>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecordError {
    #[serde(rename = "statusCode", default)]
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// A write in a batch: which record, and the fields to set.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpdate {
    pub object: String,
    pub id: String,
    pub fields: Record,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PicklistValue {
    pub value: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DescribeField {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub createable: bool,
    #[serde(rename = "picklistValues", default)]
    pub picklist_values: Vec<PicklistValue>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Describe {
    pub name: String,
    pub fields: Vec<DescribeField>,
}

impl Describe {
    pub fn field(&self, name: &str) -> Option<&DescribeField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// What a query returned: every page, concatenated.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub total_size: u64,
    pub records: Vec<Record>,
}

/// The current session. `generation` tells a caller whether the token it
/// used is still the current one when it comes back with a 401.
struct Session {
    access: Option<Secret>,
    instance_url: String,
    generation: u64,
}

struct Inner {
    http: reqwest::Client,
    cfg: SalesforceConfig,
    /// `cfg.auth`, ready to use: the JWT-bearer key is parsed once.
    sign_in: SignIn,
    /// Held while refreshing, so concurrent 401s wait for one refresh.
    session: tokio::sync::Mutex<Session>,
    /// Shared by every client of the connected app in this process.
    permits: Arc<Semaphore>,
    limiter: Arc<TokenLimiter>,
    usage: Mutex<Option<ApiUsage>>,
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

/// A request, rebuilt for every attempt.
struct Call<'a> {
    method: Method,
    /// A path on the instance (`/services/data/...`).
    path: String,
    query: Vec<(&'a str, String)>,
    body: Option<&'a Json>,
}

/// What came back, once the status is known to be a success.
struct Reply {
    status: StatusCode,
    /// Raw, so a 204 (no body) and JSON share one type.
    body: Vec<u8>,
}

impl SalesforceClient {
    /// A client sharing the process-wide limiter and concurrency cap of its
    /// connected app with every other client of that app.
    pub fn new(cfg: SalesforceConfig) -> Result<SalesforceClient, ApiError> {
        static LIMITERS: OnceLock<Limiters> = OnceLock::new();
        SalesforceClient::with_limiters(cfg, LIMITERS.get_or_init(Limiters::default))
    }

    /// A client limited by `limiters` (tests isolate themselves with their
    /// own); the concurrency cap is always the app's process-wide one.
    pub fn with_limiters(
        cfg: SalesforceConfig,
        limiters: &Limiters,
    ) -> Result<SalesforceClient, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .build()
            .map_err(|_| ApiError::Protocol {
                system: SF,
                message: "could not build the HTTP client".into(),
            })?;
        // The connected app in its org, not the access token (it changes
        // on every refresh), is what Salesforce limits; keyed by
        // fingerprint so nothing a user configured becomes a map key.
        let sign_in = match &cfg.auth {
            SalesforceAuth::JwtBearer(jwt) => SignIn::Jwt(Signer::new(SF, &cfg.client_id, jwt)?),
            SalesforceAuth::RefreshToken {
                client_secret,
                refresh_token,
            } => SignIn::RefreshToken {
                client_secret: client_secret.clone(),
                refresh_token: refresh_token.clone(),
            },
        };
        let key = Secret::new(format!("{}\n{}", cfg.login_url, cfg.client_id)).fingerprint();
        let limiter = limiters.for_token(&key, cfg.rpm);
        let permits = app_permits(&key, cfg.max_concurrent);
        let inner = Inner {
            http,
            session: tokio::sync::Mutex::new(Session {
                access: None,
                instance_url: String::new(),
                generation: 0,
            }),
            permits,
            limiter,
            usage: Mutex::new(None),
            accounts: ReadCache::by_weight(cfg.cache_ttl, ACCOUNT_CACHE_BYTES, account_bytes),
            describes: ReadCache::new(cfg.cache_ttl, 1_000),
            cfg,
            sign_in,
        };
        Ok(SalesforceClient {
            inner: Arc::new(inner),
        })
    }

    /// The org's API usage as of the last answer.
    /// Told of every HTTP attempt (the runtime's metrics attach here).
    pub fn observer(&self) -> &super::retry::Observer {
        &self.inner.cfg.retry.observer
    }

    pub fn api_usage(&self) -> Option<ApiUsage> {
        *self.inner.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn data_path(&self, rest: &str) -> String {
        format!("/services/data/{}/{rest}", self.inner.cfg.api_version)
    }

    // ------------------------------------------------------------ operations

    /// One record; `fields` limits what is returned.
    pub async fn get(
        &self,
        object: &str,
        id: &str,
        fields: Option<&[&str]>,
    ) -> Result<Record, ApiError> {
        let mut call = self.call(
            Method::GET,
            format!("sobjects/{}/{}", seg(object)?, seg(id)?),
        );
        if let Some(f) = fields {
            call.query.push(("fields", f.join(",")));
        }
        self.json(call).await
    }

    /// Creates a record; returns its Id.
    pub async fn create(&self, object: &str, fields: &Record) -> Result<String, ApiError> {
        let body = Json::Object(fields.clone());
        let mut call = self.call(Method::POST, format!("sobjects/{}/", seg(object)?));
        call.body = Some(&body);
        let created: Json = self.json(call).await?;
        created
            .get("id")
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| protocol("the create answer has no id"))
    }

    /// Sets fields on one record (204 on success).
    /// Deletes one record (204 on success; Salesforce keeps it in the
    /// recycle bin).
    pub async fn delete(&self, object: &str, id: &str) -> Result<(), ApiError> {
        let call = self.call(
            Method::DELETE,
            format!("sobjects/{}/{}", seg(object)?, seg(id)?),
        );
        self.send(call).await.map(|_| ())
    }

    pub async fn update(&self, object: &str, id: &str, fields: &Record) -> Result<(), ApiError> {
        let body = Json::Object(fields.clone());
        let mut call = self.call(
            Method::PATCH,
            format!("sobjects/{}/{}", seg(object)?, seg(id)?),
        );
        call.body = Some(&body);
        self.send(call).await.map(|_| ())
    }

    /// Sets a Case's Status to a picklist value (the status's label).
    pub async fn set_case_status(&self, case_id: &str, status: &str) -> Result<(), ApiError> {
        let mut fields = Record::new();
        fields.insert("Status".into(), json!(status));
        self.update("Case", case_id, &fields).await
    }

    /// An internal comment on a Case (`IsPublished: false`): people see
    /// it, the customer does not.
    pub async fn create_case_comment(&self, case_id: &str, body: &str) -> Result<String, ApiError> {
        let mut fields = Record::new();
        fields.insert("ParentId".into(), json!(case_id));
        fields.insert("CommentBody".into(), json!(body));
        fields.insert("IsPublished".into(), json!(false));
        self.create("CaseComment", &fields).await
    }

    /// Runs a SOQL query and follows `nextRecordsUrl` to the last page,
    /// up to `max_query_pages`.
    pub async fn query(&self, soql: &str) -> Result<QueryResult, ApiError> {
        let mut call = self.call(Method::GET, "query".into());
        call.query.push(("q", soql.to_string()));
        let mut page: QueryPage = self.json(call).await?;
        let total_size = page.total_size;
        let mut records = std::mem::take(&mut page.records);
        let mut pages = 1;
        while let (false, Some(next)) = (page.done, page.next_records_url.take()) {
            if pages >= self.inner.cfg.max_query_pages {
                return Err(protocol(format!(
                    "the query has more than {pages} pages; narrow it (LIMIT, a selective WHERE)"
                )));
            }
            if !next.starts_with("/services/data/") {
                return Err(protocol("nextRecordsUrl is not a path on the instance"));
            }
            let call = Call {
                method: Method::GET,
                path: next,
                query: vec![],
                body: None,
            };
            page = self.json(call).await?;
            records.append(&mut page.records);
            pages += 1;
        }
        Ok(QueryResult {
            total_size,
            records,
        })
    }

    /// Updates many records with sObject Collections, at most 200 per
    /// request. `all_or_none` applies per request (per chunk of 200).
    pub async fn update_many(
        &self,
        updates: &[RecordUpdate],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, ApiError> {
        let mut results = Vec::with_capacity(updates.len());
        for chunk in updates.chunks(BATCH_LIMIT) {
            let records: Vec<Json> = chunk.iter().map(collection_record).collect();
            let body = json!({"allOrNone": all_or_none, "records": records});
            let mut call = self.call(Method::PATCH, "composite/sobjects".into());
            call.body = Some(&body);
            let mut got: Vec<SaveResult> = self.json(call).await?;
            if got.len() != chunk.len() {
                return Err(protocol("sObject Collections answered a different count"));
            }
            results.append(&mut got);
        }
        Ok(results)
    }

    /// The object's fields and picklists, cached for `cache_ttl`.
    pub async fn describe(&self, object: &str) -> Result<Arc<Describe>, ApiError> {
        let path = format!("sobjects/{}/describe", seg(object)?);
        let this = self.clone();
        self.inner
            .describes
            .get_or_load(object.to_string(), async move {
                let call = this.call(Method::GET, path);
                this.json::<Describe>(call).await.map(Arc::new)
            })
            .await
    }

    /// The Account's tier and SLA fields (`account_fields`), cached for
    /// `cache_ttl`; concurrent lookups of one account make one request.
    pub async fn account(&self, id: &str) -> Result<Arc<Record>, ApiError> {
        self.account_cached(id).await.map(|(record, _)| record)
    }

    /// As [`SalesforceClient::account`], and whether it came from the
    /// cache without a request (the agent API's `cached.account`).
    pub async fn account_cached(&self, id: &str) -> Result<(Arc<Record>, bool), ApiError> {
        let path = format!("sobjects/Account/{}", seg(id)?);
        let fields = self.inner.cfg.account_fields.join(",");
        let this = self.clone();
        self.inner
            .accounts
            .get_or_load_cached(id.to_string(), async move {
                let mut call = this.call(Method::GET, path);
                call.query.push(("fields", fields));
                this.json::<Record>(call).await.map(Arc::new)
            })
            .await
    }

    /// Drops a cached account, after a write to it.
    pub async fn forget_account(&self, id: &str) {
        self.inner.accounts.invalidate(&id.to_string()).await;
    }

    // ------------------------------------------------------------ transport

    fn call(&self, method: Method, rest: String) -> Call<'static> {
        Call {
            method,
            path: self.data_path(&rest),
            query: vec![],
            body: None,
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, call: Call<'_>) -> Result<T, ApiError> {
        let reply = self.send(call).await?;
        serde_json::from_slice(&reply.body).map_err(|e| {
            protocol(format!(
                "unreadable answer (HTTP {}): {}",
                reply.status.as_u16(),
                e
            ))
        })
    }

    /// One logical request: retried by the policy; each attempt waits
    /// for a permit and the limiter.
    async fn send(&self, call: Call<'_>) -> Result<Reply, ApiError> {
        // A POST creates a record (or a CaseComment): a second send is a
        // second record. PATCH sets fields and lands the same every time.
        let replay = if call.method == Method::POST {
            Replay::IfUnapplied
        } else {
            Replay::Safe
        };
        let call = &call;
        self.inner
            .cfg
            .retry
            .run(SF, replay, |deadline| async move {
                self.attempt(call, deadline).await
            })
            .await
    }

    /// One attempt; an expired session is refreshed (once) and the
    /// request sent again, inside the same attempt.
    async fn attempt(
        &self,
        call: &Call<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<Reply, ApiError> {
        let ready = async {
            let permit = self.inner.permits.acquire().await;
            self.inner.limiter.acquire().await;
            permit
        };
        let _permit = tokio::time::timeout_at(deadline, ready)
            .await
            .map_err(|_| super::limit::over_budget(SF))?
            .map_err(|_| protocol("the client is shutting down"))?;
        let (token, base, generation) = self.session().await?;
        match self.exchange(call, &token, &base).await {
            Err(Failure::Session) => {
                let (token, base, _) = self.refresh(generation).await?;
                match self.exchange(call, &token, &base).await {
                    Err(Failure::Session) => Err(ApiError::Auth {
                        system: SF,
                        status: 401,
                        message: "INVALID_SESSION_ID: Session expired or invalid (after a refresh)"
                            .into(),
                    }),
                    other => other.map_err(Failure::into_error),
                }
            }
            other => other.map_err(Failure::into_error),
        }
    }

    async fn exchange(
        &self,
        call: &Call<'_>,
        token: &Secret,
        base: &str,
    ) -> Result<Reply, Failure> {
        let url = format!("{base}{}", call.path);
        let mut req = self
            .inner
            .http
            .request(call.method.clone(), url)
            .bearer_auth(token.expose())
            .query(&call.query);
        if let Some(n) = self.inner.cfg.query_batch_size {
            req = req.header("Sforce-Query-Options", format!("batchSize={n}"));
        }
        if let Some(b) = call.body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Error(ApiError::transport(SF, &e)))?;
        self.observe_limits(resp.headers());
        let status = resp.status();
        let retry_after = parse_retry_after(
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
        );
        let body = read_capped(SF, resp, MAX_RESPONSE_BODY)
            .await
            .map_err(Failure::Error)?;
        if status.is_success() {
            return Ok(Reply { status, body });
        }
        Err(classify(status, &body, retry_after))
    }

    /// Records the org's usage for [`SalesforceClient::api_usage`]. At
    /// zero the org answers `REQUEST_LIMIT_EXCEEDED` (TotalRequests), which
    /// fails fast as [`ApiError::QuotaExhausted`]: the rolling 24-hour
    /// quota is not something a pause of minutes would fix.
    fn observe_limits(&self, headers: &reqwest::header::HeaderMap) {
        let Some(usage) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiUsage::parse)
        else {
            return;
        };
        *self.inner.usage.lock().unwrap_or_else(|e| e.into_inner()) = Some(usage);
    }

    // ------------------------------------------------------------ session

    /// The current token, signing in first if there is none.
    async fn session(&self) -> Result<(Secret, String, u64), ApiError> {
        let generation = {
            let s = self.inner.session.lock().await;
            if let Some(t) = &s.access {
                return Ok((t.clone(), s.instance_url.clone(), s.generation));
            }
            s.generation
        };
        self.refresh(generation).await
    }

    /// Signs in again unless someone already did since `seen`: the lock
    /// is held across the request, so concurrent callers wait for it and
    /// then find the new token. With a JWT-bearer key, signing in again is
    /// a new assertion.
    async fn refresh(&self, seen: u64) -> Result<(Secret, String, u64), ApiError> {
        let mut s = self.inner.session.lock().await;
        if s.generation != seen {
            if let Some(t) = &s.access {
                return Ok((t.clone(), s.instance_url.clone(), s.generation));
            }
        }
        let grant = self.grant().await?;
        s.access = Some(grant.access_token.clone());
        s.instance_url = grant.instance_url.trim_end_matches('/').to_string();
        s.generation += 1;
        tracing::debug!(generation = s.generation, "salesforce session refreshed");
        Ok((grant.access_token, s.instance_url.clone(), s.generation))
    }

    async fn grant(&self) -> Result<Grant, ApiError> {
        let cfg = &self.inner.cfg;
        let url = format!(
            "{}/services/oauth2/token",
            cfg.login_url.trim_end_matches('/')
        );
        // Built per grant: a JWT assertion expires in minutes.
        let assertion;
        let form: Vec<(&str, &str)> = match &self.inner.sign_in {
            SignIn::Jwt(signer) => {
                assertion = signer.assertion(SF)?;
                vec![
                    ("grant_type", jwt_bearer::GRANT_TYPE),
                    ("assertion", assertion.expose()),
                ]
            }
            SignIn::RefreshToken {
                client_secret,
                refresh_token,
            } => vec![
                ("grant_type", "refresh_token"),
                ("client_id", cfg.client_id.as_str()),
                ("client_secret", client_secret.expose()),
                ("refresh_token", refresh_token.expose()),
            ],
        };
        let resp = self
            .inner
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| ApiError::transport(SF, &e))?;
        let status = resp.status();
        let body = read_capped(SF, resp, MAX_RESPONSE_BODY).await?;
        if status.is_server_error() {
            return Err(ApiError::Transient {
                system: SF,
                status: Some(status.as_u16()),
                message: "the token endpoint failed".into(),
                sent: true,
            });
        }
        if !status.is_success() {
            let e: OAuthError = serde_json::from_slice(&body).unwrap_or_default();
            return Err(ApiError::Auth {
                system: SF,
                status: status.as_u16(),
                message: format!("{}: {}", e.error, e.error_description),
            });
        }
        let raw: RawGrant = serde_json::from_slice(&body)
            .map_err(|_| protocol("the token endpoint answered without a token"))?;
        Ok(Grant {
            access_token: Secret::new(raw.access_token),
            instance_url: raw.instance_url,
        })
    }
}

/// The concurrency cap of a connected app, one per process: a second
/// client of the same app shares the first one's permits (and its cap).
fn app_permits(app_key: &str, max: usize) -> Arc<Semaphore> {
    static PERMITS: OnceLock<Mutex<HashMap<String, Arc<Semaphore>>>> = OnceLock::new();
    let mut m = PERMITS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    m.entry(app_key.to_string())
        .or_insert_with(|| Arc::new(Semaphore::new(max.max(1))))
        .clone()
}

/// Ids and object names go into the path: refuse anything that could
/// change the path (a `/`, `?`, `..`) instead of sending it.
fn seg(s: &str) -> Result<&str, ApiError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s)
    } else {
        Err(ApiError::Validation {
            system: SF,
            status: 400,
            message: format!("{s:?} is not a Salesforce name or Id"),
            fields: vec![],
        })
    }
}

fn collection_record(u: &RecordUpdate) -> Json {
    let mut m = u.fields.clone();
    m.insert("attributes".into(), json!({"type": u.object}));
    m.insert("Id".into(), json!(u.id));
    Json::Object(m)
}

fn protocol(message: impl Into<String>) -> ApiError {
    ApiError::Protocol {
        system: SF,
        message: message.into(),
    }
}

#[derive(Deserialize)]
struct QueryPage {
    #[serde(rename = "totalSize", default)]
    total_size: u64,
    #[serde(default = "yes")]
    done: bool,
    #[serde(rename = "nextRecordsUrl", default)]
    next_records_url: Option<String>,
    #[serde(default)]
    records: Vec<Record>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct RawGrant {
    access_token: String,
    instance_url: String,
}

struct Grant {
    access_token: Secret,
    instance_url: String,
}

enum SignIn {
    RefreshToken {
        client_secret: Secret,
        refresh_token: Secret,
    },
    Jwt(Signer),
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Salesforce's error body: `[{"message", "errorCode", "fields"}]`.
#[derive(Deserialize)]
struct SfErrorBody {
    #[serde(default)]
    message: String,
    #[serde(rename = "errorCode", default)]
    error_code: String,
    #[serde(default)]
    fields: Vec<String>,
}

enum Failure {
    /// 401 INVALID_SESSION_ID: refresh and try again.
    Session,
    Error(ApiError),
}

impl Failure {
    fn into_error(self) -> ApiError {
        match self {
            Failure::Session => ApiError::Auth {
                system: SF,
                status: 401,
                message: "INVALID_SESSION_ID: Session expired or invalid".into(),
            },
            Failure::Error(e) => e,
        }
    }
}

/// Types an error answer by status and Salesforce's `errorCode`.
fn classify(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> Failure {
    let errors: Vec<SfErrorBody> = serde_json::from_slice(body).unwrap_or_default();
    let code = errors
        .first()
        .map(|e| e.error_code.as_str())
        .unwrap_or_default();
    let message = if errors.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_string()
    } else {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.error_code, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let fields: Vec<String> = errors.iter().flat_map(|e| e.fields.clone()).collect();
    let s = status.as_u16();
    Failure::Error(match s {
        401 if code == "INVALID_SESSION_ID" || errors.is_empty() => return Failure::Session,
        // The rolling 24-hour request quota does not reopen within any
        // retry budget; the other REQUEST_LIMIT_EXCEEDED (concurrent
        // long-running requests) does.
        403 if code == "REQUEST_LIMIT_EXCEEDED" && message.contains("TotalRequests") => {
            ApiError::QuotaExhausted {
                system: SF,
                message,
            }
        }
        403 if code == "REQUEST_LIMIT_EXCEEDED" => ApiError::RateLimited {
            system: SF,
            retry_after,
            message,
        },
        _ => ApiError::from_status(SF, s, message, retry_after, fields),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_header_parses() {
        assert_eq!(
            ApiUsage::parse("api-usage=25/5000"),
            Some(ApiUsage {
                used: 25,
                limit: 5000
            })
        );
        assert_eq!(
            ApiUsage::parse("per-app-api-usage=1/2(appName=x), api-usage=7/9")
                .map(|u| u.remaining()),
            Some(2)
        );
        assert_eq!(ApiUsage::parse("api-usage=x/9"), None);
    }

    #[test]
    fn errors_are_typed_by_code() {
        let body = br#"[{"message":"Status: bad value","errorCode":"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST","fields":["Status"]}]"#;
        match classify(StatusCode::BAD_REQUEST, body, None) {
            Failure::Error(ApiError::Validation {
                fields, message, ..
            }) => {
                assert_eq!(fields, vec!["Status"]);
                assert!(message.starts_with("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"));
            }
            _ => panic!("not a validation error"),
        }
        let limit = br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, limit, None),
            Failure::Error(ApiError::QuotaExhausted { .. })
        ));
        let concurrent = br#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, concurrent, None),
            Failure::Error(ApiError::RateLimited { .. })
        ));
        assert!(matches!(
            classify(
                StatusCode::UNAUTHORIZED,
                b"[{\"errorCode\":\"INVALID_SESSION_ID\"}]",
                None
            ),
            Failure::Session
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, b"<html>", None),
            Failure::Error(ApiError::Transient { .. })
        ));
    }

    #[test]
    fn path_segments_are_checked() {
        assert!(seg("500A000001").is_ok());
        assert!(seg("../x").is_err());
        assert!(seg("").is_err());
    }
}
