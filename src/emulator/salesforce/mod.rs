//! The Salesforce REST API, emulated for what the connector uses: the
//! OAuth refresh-token and JWT-bearer flows, sObject rows, sObject
//! Collections, SOQL with `nextRecordsUrl` paging, describe, and the org's
//! daily API limit with its `Sforce-Limit-Info` header and the Limits
//! resource. State lives in memory; the schema comes
//! from the compiled mappings when given one (see [`SalesforceOptions::with_program`]).
//!
//! Every answer is one Salesforce sends: errors are the JSON array
//! `[{"message", "errorCode", "fields"}]`, and no request, however
//! malformed, panics the server. The behaviour, and where it differs from
//! the real API, is documented in `docs/emulators/salesforce.md`.

use super::bounded::Counts;
use super::faults::{self, Faults};
use super::window::Windows;
use super::Running;
use crate::ir::Program;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

mod authorize;
mod bodies;
mod collections;
mod composite;
mod errors;
mod exec;
mod gate;
/// 18-character Ids: a 3-character key prefix, pod and serial to 15
/// characters, and the 3-character case-safe checksum Salesforce appends.
pub mod ids;
mod jwt;
mod limits;
mod oauth;
/// The Pub/Sub API (gRPC) and the Change Data Capture events it serves.
pub mod pubsub;
mod query;
pub mod schema;
mod sobjects;
pub mod soql;
mod store;
mod validate;

use collections::{collection_create, collection_update};
use gate::{api_gate, track};
use oauth::{token, Tokens};
use query::{query, query_more, Cursors};
use sobjects::{create, delete_record, describe, get_record, list, update_record};
use store::{seed, Store};

pub use collections::COLLECTION_LIMIT;
pub use errors::SfError;
pub use jwt::JwtApp;
pub use pubsub::{Bus, Cut, Keepalive, PubSubOptions};
pub use schema::{FieldSchema, FieldType, ObjectSchema, Schema};
pub use store::SalesforceState;

/// A record as the API shows it: field name to JSON value.
pub type Record = Map<String, Json>;

/// What the emulated org accepts and how it behaves.
#[derive(Debug, Clone)]
pub struct SalesforceOptions {
    /// The connected app's consumer key and secret, and the refresh token
    /// the token endpoint accepts.
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// The app has refresh token rotation on: every refresh answers a new
    /// `refresh_token` and the one used is invalid from then on (reusing
    /// it also ends the newer one). Off by default, as in Salesforce.
    pub rotate_refresh_tokens: bool,
    /// The JWT-bearer flow: the connected app's certificate key and its
    /// pre-authorized user. `None`: every assertion is refused.
    pub jwt: Option<JwtApp>,
    /// How long an access token lives (a session timeout in Salesforce).
    pub token_lifetime: Duration,
    /// API requests allowed per `limit_window` (an org's daily allocation).
    pub api_limit: u32,
    /// 24 hours in Salesforce; short in tests.
    pub limit_window: Duration,
    /// Records per query page unless `Sforce-Query-Options: batchSize=N`
    /// asks for fewer (Salesforce: 2,000).
    pub query_batch_size: usize,
    /// Larger request bodies are answered 413.
    pub max_body_bytes: usize,
    /// The objects, fields and picklists of the org.
    pub schema: Schema,
    /// Seed a few Accounts, Contacts and Cases at start.
    pub seed: bool,
    pub faults: Arc<Faults>,
    /// The integration user lacks "API Enabled": every data request is
    /// answered 403 `API_DISABLED_FOR_ORG` (sign-in still works).
    pub api_disabled: bool,
    /// The Pub/Sub API side: keepalive interval and event retention.
    pub pubsub: PubSubOptions,
}

impl Default for SalesforceOptions {
    fn default() -> Self {
        SalesforceOptions {
            client_id: "l3map-emulator-client".into(),
            client_secret: "l3map-emulator-secret".into(),
            refresh_token: "l3map-emulator-refresh".into(),
            rotate_refresh_tokens: false,
            jwt: None,
            token_lifetime: Duration::from_secs(2 * 3600),
            api_limit: 100_000,
            limit_window: Duration::from_secs(24 * 3600),
            query_batch_size: 2000,
            max_body_bytes: 4 * 1024 * 1024,
            schema: Schema::standard(),
            seed: true,
            faults: Faults::none(),
            api_disabled: false,
            pubsub: PubSubOptions::default(),
        }
    }
}

impl SalesforceOptions {
    /// Adds the objects, fields and picklists the mappings declare: enum
    /// fields become restricted picklists, and a status table on a
    /// Salesforce connection becomes the Case `Status` picklist (labels).
    pub fn with_program(mut self, program: &Program) -> Self {
        self.schema.extend_from(program);
        self
    }

    /// Adds every field a project declares in `fields CRM { ... }` with its
    /// type and attributes (`Object.Field`, type, `external_id` /
    /// `unique` / `indexed`), also those no rule maps (a field only a link
    /// compares): describe, REST, SOQL and CDC then know them.
    pub fn with_fields<'a>(
        mut self,
        fields: impl IntoIterator<Item = (&'a str, &'a crate::ir::Type, &'a [String])>,
    ) -> Self {
        for (path, ty, attrs) in fields {
            if let Some((object, field)) = path.split_once('.') {
                if !field.is_empty() && !field.contains('.') {
                    self.schema.declare(object, field, Some(ty));
                    let has = |a: &str| attrs.iter().any(|x| x == a);
                    self.schema
                        .mark(object, field, has("external_id"), has("unique"));
                }
            }
        }
        self
    }
}

/// The emulator before it serves: build the router or start it.
pub struct SalesforceEmulator {
    state: Arc<Emu>,
    faults: Arc<Faults>,
}

/// What tests (and `l3map emulate`) can see and change while it runs.
#[derive(Clone)]
pub struct Handle {
    state: Arc<Emu>,
    faults: Arc<Faults>,
}

impl SalesforceEmulator {
    pub fn new(opts: SalesforceOptions) -> Self {
        let faults = opts.faults.clone();
        let state = Arc::new(Emu::new(opts));
        SalesforceEmulator { state, faults }
    }

    pub fn handle(&self) -> Handle {
        Handle {
            state: self.state.clone(),
            faults: self.faults.clone(),
        }
    }

    pub fn router(&self) -> Router {
        router(self.state.clone(), self.faults.clone())
    }

    /// Serves on 127.0.0.1 (`port` 0 picks a free one).
    pub async fn start(self, port: u16) -> std::io::Result<(Running, Handle)> {
        let handle = self.handle();
        let running = super::serve(self.router(), port).await?;
        Ok((running, handle))
    }
}

impl Handle {
    /// Requests received, by `METHOD /path` (query strings left out).
    /// Paths first seen after 10,000 others are counted under `"other"`
    /// (see `emulator::bounded::Counts`), so the values still sum to the total.
    pub fn requests(&self) -> BTreeMap<String, u32> {
        lock(&self.state.stats.by_path).map().clone()
    }

    /// Requests whose method is `method` and whose path contains `part`.
    pub fn count(&self, method: &str, part: &str) -> u32 {
        lock(&self.state.stats.by_path)
            .map()
            .iter()
            .filter(|(k, _)| {
                k.split_once(' ')
                    .is_some_and(|(m, p)| m == method && p.contains(part))
            })
            .map(|(_, n)| n)
            .sum()
    }

    pub fn reset_counts(&self) {
        lock(&self.state.stats.by_path).clear();
        self.state.stats.peak.store(0, Ordering::SeqCst);
        self.state.stats.api_peak.store(0, Ordering::SeqCst);
    }

    /// Access tokens issued by the token endpoint so far.
    pub fn token_grants(&self) -> u32 {
        self.state.stats.grants.load(Ordering::SeqCst)
    }

    /// Ends every session now: the next request with any issued token is
    /// answered 401 `INVALID_SESSION_ID`.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        lock(&self.state.tokens).expire_all(now);
    }

    /// The access tokens handed out so far, expired ones included (the
    /// latest 10,000): tests scan output for them.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.tokens).issued()
    }

    /// The most requests that were in flight at once.
    pub fn peak_concurrency(&self) -> u32 {
        self.state.stats.peak.load(Ordering::SeqCst)
    }

    /// API requests counted against the limit in the current window.
    pub fn api_usage(&self) -> u32 {
        self.state.usage.load(Ordering::SeqCst)
    }

    pub fn record(&self, object: &str, id: &str) -> Option<Record> {
        lock(&self.state.store).find(object, id).cloned()
    }

    /// Every record of `object`, in creation order.
    pub fn records(&self, object: &str) -> Vec<Record> {
        lock(&self.state.store)
            .records
            .get(object)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Inserts a record directly (no API call, no validation beyond the
    /// object existing), for seeding tests. Returns its Id.
    pub fn insert(&self, object: &str, fields: Record) -> Option<String> {
        let obj = self.state.schema.object(object)?;
        let mut store = lock(&self.state.store);
        let id = store.create(obj, fields);
        self.state.commit(&mut store, &pubsub::Origin::person());
        Some(id)
    }

    /// The Pub/Sub event bus: inject gaps, overflows, stream cuts,
    /// keepalive faults and expired replay ids.
    pub fn pubsub(&self) -> &Bus {
        &self.state.bus
    }

    /// Serves the Pub/Sub API (gRPC) on 127.0.0.1 (`port` 0 picks a free
    /// one), next to the REST API: the same org, tokens and records.
    pub async fn serve_pubsub(&self, port: u16) -> std::io::Result<Running> {
        pubsub::serve(self.state.clone(), port).await
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }
}

struct Emu {
    client_id: String,
    client_secret: String,
    /// The refresh tokens issued (the configured one first) and the
    /// authorization page's codes.
    grants: Mutex<authorize::Grants>,
    rotate_refresh_tokens: bool,
    jwt: Option<jwt::Verifier>,
    token_lifetime: Duration,
    api_limit: u32,
    query_batch_size: usize,
    max_body_bytes: usize,
    schema: Schema,
    store: Mutex<Store>,
    tokens: Mutex<Tokens>,
    windows: Windows,
    /// Requests counted in the current window, for the header.
    usage: AtomicU32,
    cursors: Mutex<Cursors>,
    stats: Stats,
    token_serial: AtomicU64,
    api_disabled: bool,
    bus: Bus,
}

#[derive(Default)]
struct Stats {
    by_path: Mutex<Counts>,
    grants: AtomicU32,
    in_flight: AtomicU32,
    peak: AtomicU32,
    /// The same for API requests (`/services/data/…`) only: what
    /// Salesforce's concurrent-request limit counts.
    api_in_flight: AtomicU32,
    api_peak: AtomicU32,
}

/// A poisoned lock only means another request panicked mid-update; the
/// maps stay usable, and the emulator must keep answering.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Emu {
    fn new(opts: SalesforceOptions) -> Emu {
        let mut store = Store::default();
        if opts.seed {
            seed(&opts.schema, &mut store);
            // The seed is the org as it was before anyone subscribed.
            store.journal.clear();
        }
        let bus = Bus::new(&opts.schema, opts.pubsub.clone());
        Emu {
            client_id: opts.client_id,
            client_secret: opts.client_secret,
            grants: Mutex::new(authorize::Grants::new(&opts.refresh_token)),
            rotate_refresh_tokens: opts.rotate_refresh_tokens,
            jwt: opts.jwt.as_ref().map(jwt::Verifier::new),
            token_lifetime: opts.token_lifetime,
            api_limit: opts.api_limit,
            query_batch_size: opts.query_batch_size.max(1),
            max_body_bytes: opts.max_body_bytes,
            windows: Windows::new(opts.api_limit, opts.limit_window),
            schema: opts.schema,
            store: Mutex::new(store),
            tokens: Mutex::new(Tokens::default()),
            usage: AtomicU32::new(0),
            cursors: Mutex::new(Cursors::default()),
            stats: Stats::default(),
            token_serial: AtomicU64::new(0),
            api_disabled: opts.api_disabled,
            bus,
        }
    }

    /// Publishes what the store changed since the last commit, as one
    /// transaction made by `origin`. Called under the store lock, so
    /// events are published in the order the changes were made.
    fn commit(&self, store: &mut Store, origin: &pubsub::Origin) {
        let changes = std::mem::take(&mut store.journal);
        self.bus.commit(changes, origin);
    }

    fn limit_header(&self) -> HeaderValue {
        let used = self.usage.load(Ordering::SeqCst);
        HeaderValue::from_str(&format!("api-usage={used}/{}", self.api_limit))
            .unwrap_or_else(|_| HeaderValue::from_static("api-usage=0/0"))
    }
}

fn router(state: Arc<Emu>, faults: Arc<Faults>) -> Router {
    let data = Router::new()
        .route(
            "/services/data/{v}/sobjects/{object}",
            get(list).post(create),
        )
        .route(
            "/services/data/{v}/sobjects/{object}/",
            get(list).post(create),
        )
        .route(
            "/services/data/{v}/sobjects/{object}/describe",
            get(describe),
        )
        .route(
            "/services/data/{v}/sobjects/{object}/describe/",
            get(describe),
        )
        .route(
            "/services/data/{v}/sobjects/{object}/{id}",
            get(get_record).patch(update_record).delete(delete_record),
        )
        .route(
            "/services/data/{v}/composite/sobjects",
            post(collection_create).patch(collection_update),
        )
        .route("/services/data/{v}/composite/batch", post(composite::batch))
        .route("/services/data/{v}/composite", post(composite::composite))
        .route("/services/data/{v}/limits", get(limits::limits))
        .route("/services/data/{v}/limits/", get(limits::limits))
        .route("/services/data/{v}/query", get(query))
        .route("/services/data/{v}/query/", get(query))
        .route("/services/data/{v}/query/{locator}", get(query_more))
        .route_layer(from_fn_with_state(state.clone(), api_gate));
    Router::new()
        .route("/services/oauth2/token", post(token))
        .merge(authorize::routes())
        .merge(data)
        .merge(pubsub::admin_routes())
        .merge(gate::routes())
        .fallback(|| async { SfError::not_found() })
        .method_not_allowed_fallback(|| async {
            SfError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "HTTP Method not allowed for this resource",
            )
        })
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(from_fn_with_state(faults, faults::layer))
        // Outermost: faulted and delayed requests count as received and
        // in flight, as they would at a real server.
        .layer(from_fn_with_state(state.clone(), track))
        .with_state(state)
}
