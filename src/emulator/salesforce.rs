//! The Salesforce REST API, emulated for what the connector uses: the
//! OAuth refresh-token flow, sObject rows, sObject Collections, SOQL with
//! `nextRecordsUrl` paging, describe, and the org's daily API limit with
//! its `Sforce-Limit-Info` header. State lives in memory; the schema comes
//! from the compiled mappings when given one (see [`SalesforceOptions::with_program`]).
//!
//! Every answer is one Salesforce sends: errors are the JSON array
//! `[{"message", "errorCode", "fields"}]`, and no request, however
//! malformed, panics the server. The behaviour, and where it differs from
//! the real API, is documented in `docs/emulators/salesforce.md`.

use super::faults::{self, Faults};
use super::window::{Count, Windows};
use super::Running;
use crate::check::Kind;
use crate::ir::{EscAction, FieldRef, Program, Type};
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value as Json};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

pub use schema::{FieldSchema, FieldType, ObjectSchema, Schema};

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
}

impl Default for SalesforceOptions {
    fn default() -> Self {
        SalesforceOptions {
            client_id: "l3map-emulator-client".into(),
            client_secret: "l3map-emulator-secret".into(),
            refresh_token: "l3map-emulator-refresh".into(),
            token_lifetime: Duration::from_secs(2 * 3600),
            api_limit: 100_000,
            limit_window: Duration::from_secs(24 * 3600),
            query_batch_size: 2000,
            max_body_bytes: 4 * 1024 * 1024,
            schema: Schema::standard(),
            seed: true,
            faults: Faults::none(),
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
    pub fn requests(&self) -> BTreeMap<String, u32> {
        lock(&self.state.stats.by_path).clone()
    }

    /// Requests whose method is `method` and whose path contains `part`.
    pub fn count(&self, method: &str, part: &str) -> u32 {
        lock(&self.state.stats.by_path)
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
    }

    /// Access tokens issued by the token endpoint so far.
    pub fn token_grants(&self) -> u32 {
        self.state.stats.grants.load(Ordering::SeqCst)
    }

    /// Ends every session now: the next request with any issued token is
    /// answered 401 `INVALID_SESSION_ID`.
    pub fn expire_tokens(&self) {
        lock(&self.state.tokens).clear();
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
        Some(lock(&self.state.store).create(obj, fields))
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }
}

// ---------------------------------------------------------------- state

struct Emu {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    token_lifetime: Duration,
    api_limit: u32,
    query_batch_size: usize,
    max_body_bytes: usize,
    schema: Schema,
    store: Mutex<Store>,
    /// Access token to the instant it expires.
    tokens: Mutex<HashMap<String, Instant>>,
    windows: Windows,
    /// Requests counted in the current window, for the header.
    usage: AtomicU32,
    cursors: Mutex<Cursors>,
    stats: Stats,
    token_serial: AtomicU64,
}

#[derive(Default)]
struct Stats {
    by_path: Mutex<BTreeMap<String, u32>>,
    grants: AtomicU32,
    in_flight: AtomicU32,
    peak: AtomicU32,
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
        }
        Emu {
            client_id: opts.client_id,
            client_secret: opts.client_secret,
            refresh_token: opts.refresh_token,
            token_lifetime: opts.token_lifetime,
            api_limit: opts.api_limit,
            query_batch_size: opts.query_batch_size.max(1),
            max_body_bytes: opts.max_body_bytes,
            windows: Windows::new(opts.api_limit, opts.limit_window),
            schema: opts.schema,
            store: Mutex::new(store),
            tokens: Mutex::new(HashMap::new()),
            usage: AtomicU32::new(0),
            cursors: Mutex::new(Cursors::default()),
            stats: Stats::default(),
            token_serial: AtomicU64::new(0),
        }
    }

    fn limit_header(&self) -> HeaderValue {
        let used = self.usage.load(Ordering::SeqCst);
        HeaderValue::from_str(&format!("api-usage={used}/{}", self.api_limit))
            .unwrap_or_else(|_| HeaderValue::from_static("api-usage=0/0"))
    }
}

/// Records by object, then by 18-character Id (which sorts in creation
/// order, since the serial is the Id's tail).
#[derive(Default)]
struct Store {
    records: BTreeMap<String, BTreeMap<String, Record>>,
    serial: u64,
    case_number: u64,
}

impl Store {
    /// Accepts the 15- or the 18-character form of an Id.
    fn find(&self, object: &str, id: &str) -> Option<&Record> {
        let m = self.records.get(object)?;
        m.get(id).or_else(|| {
            (id.len() == 15)
                .then(|| m.iter().find(|(k, _)| k.starts_with(id)).map(|(_, r)| r))
                .flatten()
        })
    }

    fn canonical_id(&self, object: &str, id: &str) -> Option<String> {
        self.find(object, id)
            .and_then(|r| r.get("Id"))
            .and_then(Json::as_str)
            .map(str::to_string)
    }

    fn exists_anywhere(&self, targets: &[String], id: &str) -> bool {
        targets.iter().any(|t| self.find(t, id).is_some())
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.serial += 1;
        ids::make(prefix, self.serial)
    }

    /// Inserts `fields` as a new record with system fields set.
    fn create(&mut self, obj: &ObjectSchema, mut fields: Record) -> String {
        let id = self.new_id(&obj.key_prefix);
        let now = Json::String(now_stamp());
        fields.insert("Id".into(), Json::String(id.clone()));
        for f in &obj.fields {
            if fields.contains_key(&f.name) {
                continue;
            }
            let v = match f.name.as_str() {
                "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => now.clone(),
                "IsDeleted" => Json::Bool(false),
                "CaseNumber" => {
                    self.case_number += 1;
                    Json::String(format!("{:08}", 1000 + self.case_number))
                }
                _ => f.default.clone(),
            };
            fields.insert(f.name.clone(), v);
        }
        self.records
            .entry(obj.name.clone())
            .or_default()
            .insert(id.clone(), fields);
        id
    }

    /// Merges `changes` into the record and stamps the modification.
    fn update(&mut self, object: &str, id: &str, changes: Record) -> bool {
        let Some(rec) = self.records.get_mut(object).and_then(|m| m.get_mut(id)) else {
            return false;
        };
        let now = now_stamp();
        rec.extend(changes);
        for f in ["LastModifiedDate", "SystemModstamp"] {
            rec.insert(f.into(), Json::String(now.clone()));
        }
        true
    }
}

/// Salesforce's REST timestamp form: milliseconds and `+0000`.
fn now_stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

/// Parses `2026-11-11T10:00:00Z`, `...00.000+0000` and `...00-08:00`.
fn parse_stamp(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    // `+0000` (no colon) is what Salesforce writes; jiff wants `+00:00`.
    let b = s.as_bytes();
    let n = b.len();
    if n > 5 && matches!(b[n - 5], b'+' | b'-') && b[n - 4..].iter().all(u8::is_ascii_digit) {
        let fixed = format!("{}:{}", &s[..n - 2], &s[n - 2..]);
        return fixed.parse().ok();
    }
    None
}

// ---------------------------------------------------------------- ids

/// 18-character Ids: a 3-character key prefix, pod and serial to 15
/// characters, and the 3-character case-safe checksum Salesforce appends.
pub mod ids {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const CHECK: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

    pub fn make(prefix: &str, serial: u64) -> String {
        let mut tail = [b'0'; 9];
        let mut n = serial;
        for slot in tail.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        let prefix: String = prefix.chars().chain("000".chars()).take(3).collect();
        let id15 = format!("{prefix}5e0{}", String::from_utf8_lossy(&tail));
        with_checksum(&id15)
    }

    /// Each 5-character chunk's uppercase letters, as a bit mask, pick one
    /// checksum character.
    pub fn with_checksum(id15: &str) -> String {
        let mut out = id15.to_string();
        for chunk in id15.as_bytes().chunks(5) {
            let mask = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |m, (i, _)| m | (1 << i));
            out.push(CHECK[mask & 31] as char);
        }
        out
    }

    /// A well-formed Id: 15 alphanumerics, or 18 with a valid checksum.
    pub fn is_valid(id: &str) -> bool {
        let alnum = id.bytes().all(|b| b.is_ascii_alphanumeric());
        match id.len() {
            15 => alnum,
            18 => alnum && with_checksum(&id[..15]) == id,
            _ => false,
        }
    }
}

// ---------------------------------------------------------------- schema

pub mod schema {
    //! The org's objects and fields: a standard core (Account, Contact,
    //! Case, CaseComment) plus what the compiled mappings declare.

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FieldType {
        Id,
        Reference,
        String,
        Textarea,
        Email,
        Picklist,
        Currency,
        Double,
        Boolean,
        Date,
        DateTime,
    }

    impl FieldType {
        /// The name describe gives the type.
        pub fn api_name(self) -> &'static str {
            match self {
                FieldType::Id => "id",
                FieldType::Reference => "reference",
                FieldType::String => "string",
                FieldType::Textarea => "textarea",
                FieldType::Email => "email",
                FieldType::Picklist => "picklist",
                FieldType::Currency => "currency",
                FieldType::Double => "double",
                FieldType::Boolean => "boolean",
                FieldType::Date => "date",
                FieldType::DateTime => "datetime",
            }
        }

        pub(crate) fn is_text(self) -> bool {
            matches!(
                self,
                FieldType::Id
                    | FieldType::Reference
                    | FieldType::String
                    | FieldType::Textarea
                    | FieldType::Email
                    | FieldType::Picklist
            )
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct FieldSchema {
        pub name: String,
        pub ty: FieldType,
        pub updateable: bool,
        pub createable: bool,
        /// Required on create.
        pub required: bool,
        /// Active picklist values; restricted: nothing else is accepted.
        pub picklist: Vec<String>,
        /// Objects a reference field points at.
        pub reference_to: Vec<String>,
        /// Set on create when the body leaves the field out.
        pub default: Json,
    }

    impl FieldSchema {
        pub fn new(name: &str, ty: FieldType) -> FieldSchema {
            FieldSchema {
                name: name.into(),
                ty,
                updateable: true,
                createable: true,
                required: false,
                picklist: vec![],
                reference_to: vec![],
                default: Json::Null,
            }
        }

        fn read_only(mut self) -> Self {
            self.updateable = false;
            self.createable = false;
            self
        }

        fn required(mut self) -> Self {
            self.required = true;
            self
        }

        /// Settable on create, never changed after (CaseComment.ParentId).
        fn create_only(mut self) -> Self {
            self.updateable = false;
            self
        }

        fn picklist(name: &str, values: &[&str]) -> FieldSchema {
            FieldSchema {
                picklist: values.iter().map(|v| v.to_string()).collect(),
                ..FieldSchema::new(name, FieldType::Picklist)
            }
        }

        fn reference(name: &str, to: &str) -> FieldSchema {
            FieldSchema {
                reference_to: vec![to.into()],
                ..FieldSchema::new(name, FieldType::Reference)
            }
        }

        fn with_default(mut self, v: Json) -> Self {
            self.default = v;
            self
        }

        /// `AccountId` is reached as `Account`, `Foo__c` as `Foo__r`.
        pub fn relationship_name(&self) -> Option<String> {
            if self.ty != FieldType::Reference {
                return None;
            }
            if let Some(stem) = self.name.strip_suffix("__c") {
                return Some(format!("{stem}__r"));
            }
            self.name.strip_suffix("Id").map(str::to_string)
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct ObjectSchema {
        pub name: String,
        pub label: String,
        pub key_prefix: String,
        pub fields: Vec<FieldSchema>,
    }

    impl ObjectSchema {
        fn new(name: &str, prefix: &str, mut fields: Vec<FieldSchema>) -> ObjectSchema {
            let mut all = system_fields();
            all.append(&mut fields);
            ObjectSchema {
                name: name.into(),
                label: name.trim_end_matches("__c").replace('_', " "),
                key_prefix: prefix.into(),
                fields: all,
            }
        }

        /// SOQL and the REST API name fields case-insensitively.
        pub fn field(&self, name: &str) -> Option<&FieldSchema> {
            self.fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name))
        }

        pub fn relationship(&self, rel: &str) -> Option<&FieldSchema> {
            self.fields.iter().find(|f| {
                f.relationship_name()
                    .is_some_and(|r| r.eq_ignore_ascii_case(rel))
            })
        }

        fn upsert_field(&mut self, f: FieldSchema) {
            match self.fields.iter_mut().find(|x| x.name == f.name) {
                Some(x) => *x = f,
                None => self.fields.push(f),
            }
        }
    }

    fn system_fields() -> Vec<FieldSchema> {
        vec![
            FieldSchema::new("Id", FieldType::Id).read_only(),
            FieldSchema::new("IsDeleted", FieldType::Boolean).read_only(),
            FieldSchema::new("CreatedDate", FieldType::DateTime).read_only(),
            FieldSchema::new("LastModifiedDate", FieldType::DateTime).read_only(),
            FieldSchema::new("SystemModstamp", FieldType::DateTime).read_only(),
        ]
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct Schema {
        pub objects: Vec<ObjectSchema>,
    }

    impl Schema {
        /// The documented fallback: the standard objects the connector
        /// touches, with the custom fields of the example mappings and
        /// Salesforce's default Case statuses.
        pub fn standard() -> Schema {
            use FieldType as T;
            let account = ObjectSchema::new(
                "Account",
                "001",
                vec![
                    FieldSchema::new("Name", T::String).required(),
                    FieldSchema::picklist(
                        "SLA_Tier__c",
                        &["Ent", "Prem", "Biz", "Std", "Starter", "Gold", "Legacy"],
                    ),
                    FieldSchema::new("Contract_Value__c", T::Currency),
                    FieldSchema::new("Renewal_Date__c", T::Date),
                ],
            );
            let contact = ObjectSchema::new(
                "Contact",
                "003",
                vec![
                    FieldSchema::new("FirstName", T::String),
                    FieldSchema::new("LastName", T::String).required(),
                    FieldSchema::new("Name", T::String).read_only(),
                    FieldSchema::new("Email", T::Email),
                    FieldSchema::reference("AccountId", "Account"),
                    FieldSchema::picklist("KYC_Status__c", &["Passed", "Pending", "Failed"]),
                ],
            );
            let case = ObjectSchema::new(
                "Case",
                "500",
                vec![
                    FieldSchema::new("CaseNumber", T::String).read_only(),
                    FieldSchema::new("Subject", T::String),
                    FieldSchema::new("Description", T::Textarea),
                    FieldSchema::picklist("Status", &["New", "Working", "Escalated", "Closed"])
                        .with_default(json!("New")),
                    FieldSchema::picklist("Priority", &["High", "Medium", "Low"])
                        .with_default(json!("Medium")),
                    FieldSchema::picklist("Type", &["Question", "Problem", "Feature Request"]),
                    FieldSchema::picklist("Origin", &["Email", "Phone", "Web"]),
                    FieldSchema::reference("AccountId", "Account"),
                    FieldSchema::reference("ContactId", "Contact"),
                    FieldSchema::new("AI_Handoff_Reason__c", T::String),
                    FieldSchema::picklist("Risk_Decision__c", &["Pending", "Cleared", "Escalated"]),
                    FieldSchema::new("Zendesk_Ticket_Id__c", T::String),
                ],
            );
            let comment = ObjectSchema::new(
                "CaseComment",
                "00a",
                vec![
                    FieldSchema::reference("ParentId", "Case")
                        .required()
                        .create_only(),
                    FieldSchema::new("CommentBody", T::Textarea),
                    FieldSchema::new("IsPublished", T::Boolean).with_default(json!(false)),
                ],
            );
            Schema {
                objects: vec![account, contact, case, comment],
            }
        }

        /// Case-insensitive, as the API is.
        pub fn object(&self, name: &str) -> Option<&ObjectSchema> {
            self.objects
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(name))
        }

        fn object_mut(&mut self, name: &str) -> &mut ObjectSchema {
            let i = match self.objects.iter().position(|o| o.name == name) {
                Some(i) => i,
                None => {
                    // Custom objects get prefixes a00, a01, ... in order.
                    let n = self.objects.len();
                    let prefix = format!("a0{}", (b'A' + (n % 26) as u8) as char);
                    self.objects.push(ObjectSchema::new(
                        name,
                        &prefix,
                        vec![FieldSchema::new("Name", FieldType::String)],
                    ));
                    self.objects.len() - 1
                }
            };
            &mut self.objects[i]
        }

        pub fn extend_from(&mut self, p: &Program) {
            let sf_conns: Vec<&str> = p
                .connections
                .iter()
                .filter(|c| c.kind == Kind::Salesforce)
                .map(|c| c.name.as_str())
                .collect();
            for c in p.connections.iter().filter(|c| c.kind == Kind::Salesforce) {
                for o in &c.objects {
                    self.object_mut(o);
                }
            }
            for (object, field, ty) in declared_fields(p) {
                self.declare(&object, &field, ty.as_ref());
            }
            for t in p
                .status_tables
                .iter()
                .filter(|t| sf_conns.contains(&t.connection.as_str()))
            {
                let labels: Vec<&str> = t
                    .statuses
                    .iter()
                    .map(|s| s.label.as_deref().unwrap_or(&s.name))
                    .collect();
                let first = labels.first().map(|l| json!(l)).unwrap_or(Json::Null);
                let status = FieldSchema::picklist("Status", &labels).with_default(first);
                self.object_mut("Case").upsert_field(status);
            }
        }

        /// A field the mappings name: typed from its declaration, unless
        /// the standard schema knows it better (read-only, references).
        fn declare(&mut self, object: &str, field: &str, ty: Option<&Type>) {
            let obj = self.object_mut(object);
            let known = obj.fields.iter().find(|f| f.name == field).cloned();
            let declared = match ty {
                Some(Type::Enum(vs)) => {
                    let vs: Vec<&str> = vs.iter().map(String::as_str).collect();
                    Some(FieldSchema::picklist(field, &vs))
                }
                Some(Type::Money(_)) => Some(FieldSchema::new(field, FieldType::Currency)),
                Some(Type::Number) => Some(FieldSchema::new(field, FieldType::Double)),
                Some(Type::Bool) => Some(FieldSchema::new(field, FieldType::Boolean)),
                Some(Type::Date) => Some(FieldSchema::new(field, FieldType::Date)),
                Some(Type::String) => Some(FieldSchema::new(field, FieldType::String)),
                _ => None,
            };
            match (known, declared) {
                (Some(k), Some(d)) if k.updateable && k.ty != FieldType::Reference => {
                    let merged = FieldSchema {
                        default: k.default.clone(),
                        ..d
                    };
                    obj.upsert_field(merged);
                }
                (None, d) => obj
                    .upsert_field(d.unwrap_or_else(|| FieldSchema::new(field, FieldType::String))),
                _ => {}
            }
        }
    }

    /// Every `Object.Field` the program reads or writes, with its type
    /// when declared. Relationship paths (`Case.Account.Name`) are left
    /// out: the field lives on another object, found through its Id.
    fn declared_fields(p: &Program) -> Vec<(String, String, Option<Type>)> {
        let mut out = vec![];
        let mut push = |f: &FieldRef, ty: Option<&'_ Type>| {
            if let FieldRef::Salesforce { object, path, .. } = f {
                let field = path.strip_prefix(&format!("{object}.")).unwrap_or(path);
                if !field.contains('.') && !field.is_empty() {
                    out.push((object.clone(), field.to_string(), ty.cloned()));
                }
            }
        };
        for m in &p.mappings {
            for r in &m.rules {
                push(&r.source, Some(&r.source_type));
                push(&r.target, Some(&r.target_type));
            }
        }
        for e in &p.escalations {
            for a in &e.actions {
                if let EscAction::SetField { field, .. } = a {
                    push(field, None);
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------- seed

/// A few Accounts, Contacts and Cases, with picklist values taken from
/// the schema so seeded records always pass its own validation.
fn seed(schema: &Schema, store: &mut Store) {
    let (Some(account), Some(contact), Some(case)) = (
        schema.object("Account"),
        schema.object("Contact"),
        schema.object("Case"),
    ) else {
        return;
    };
    let pick = |obj: &ObjectSchema, field: &str, i: usize| -> Json {
        obj.field(field)
            .filter(|f| !f.picklist.is_empty())
            .map(|f| json!(f.picklist[i % f.picklist.len()]))
            .unwrap_or(Json::Null)
    };
    let names = ["Nimbus Analytics", "Acme Payments", "Globex Retail"];
    let values = [120_000.0, 64_000.0, 9_500.0];
    let renewals = ["2027-06-30", "2027-03-31", "2026-12-31"];
    let people = [("Ana", "Souza"), ("Ben", "Okafor"), ("Chloe", "Martin")];
    for i in 0..3 {
        let mut a = Record::new();
        a.insert("Name".into(), json!(names[i]));
        a.insert("SLA_Tier__c".into(), pick(account, "SLA_Tier__c", i));
        a.insert("Contract_Value__c".into(), json!(values[i]));
        a.insert("Renewal_Date__c".into(), json!(renewals[i]));
        retain_known(account, &mut a);
        let account_id = store.create(account, a);

        let (first, last) = people[i];
        let mut c = Record::new();
        c.insert("FirstName".into(), json!(first));
        c.insert("LastName".into(), json!(last));
        c.insert("Name".into(), json!(format!("{first} {last}")));
        c.insert(
            "Email".into(),
            json!(format!("{}@example.com", first.to_lowercase())),
        );
        c.insert("AccountId".into(), json!(account_id));
        c.insert("KYC_Status__c".into(), pick(contact, "KYC_Status__c", i));
        retain_known(contact, &mut c);
        let contact_id = store.create(contact, c);

        let mut k = Record::new();
        k.insert("Subject".into(), json!(format!("Seeded case {}", i + 1)));
        k.insert("Status".into(), pick(case, "Status", i));
        k.insert("Priority".into(), pick(case, "Priority", i));
        k.insert("AccountId".into(), json!(account_id));
        k.insert("ContactId".into(), json!(contact_id));
        retain_known(case, &mut k);
        store.create(case, k);
    }
}

fn retain_known(obj: &ObjectSchema, r: &mut Record) {
    r.retain(|k, v| obj.field(k).is_some() && !v.is_null());
}

// ---------------------------------------------------------------- errors

/// An error as Salesforce writes it: `[{"message", "errorCode", "fields"}]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SfError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl SfError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> SfError {
        SfError {
            status,
            code,
            message: message.into(),
            fields: vec![],
        }
    }

    fn bad(code: &'static str, message: impl Into<String>) -> SfError {
        SfError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn with_fields(mut self, fields: Vec<String>) -> SfError {
        self.fields = fields;
        self
    }

    fn not_found() -> SfError {
        SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    fn session() -> SfError {
        SfError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    /// The per-record form inside sObject Collections results.
    fn as_record_error(&self) -> Json {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        let body =
            json!([{"message": self.message, "errorCode": self.code, "fields": self.fields}]);
        (self.status, axum::Json(body)).into_response()
    }
}

type Answer = Result<Response, SfError>;

// ---------------------------------------------------------------- router

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
            get(get_record).patch(update_record),
        )
        .route(
            "/services/data/{v}/composite/sobjects",
            post(collection_create).patch(collection_update),
        )
        .route("/services/data/{v}/query", get(query))
        .route("/services/data/{v}/query/", get(query))
        .route("/services/data/{v}/query/{locator}", get(query_more))
        .route_layer(from_fn_with_state(state.clone(), api_gate));
    Router::new()
        .route("/services/oauth2/token", post(token))
        .merge(data)
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

/// Decrements the in-flight count however the request ends (a client
/// that hangs up drops the future mid-way).
struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts requests per path and the peak number in flight.
async fn track(State(st): State<Arc<Emu>>, req: Request<Body>, next: Next) -> Response {
    let key = format!("{} {}", req.method(), req.uri().path());
    *lock(&st.stats.by_path).entry(key).or_insert(0) += 1;
    let now = st.stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.stats.peak.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&st.stats.in_flight);
    next.run(req).await
}

/// `v60.0`: any version Salesforce could have.
fn valid_version(path: &str) -> bool {
    let Some(v) = path.split('/').nth(3).and_then(|v| v.strip_prefix('v')) else {
        return false;
    };
    let Some((major, minor)) = v.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// Authenticates, counts the request against the org's limit, and stamps
/// every answer with `Sforce-Limit-Info`.
async fn api_gate(State(st): State<Arc<Emu>>, req: Request<Body>, next: Next) -> Response {
    let mut resp = match gate(&st, &req) {
        Err(e) => e.into_response(),
        Ok(()) => next.run(req).await,
    };
    resp.headers_mut()
        .insert("sforce-limit-info", st.limit_header());
    resp
}

fn gate(st: &Emu, req: &Request<Body>) -> Result<(), SfError> {
    if !valid_version(req.uri().path()) {
        return Err(SfError::not_found());
    }
    authorize(st, req.headers())?;
    match st.windows.count("org") {
        Count::Allowed { limit, remaining } => {
            st.usage.store(limit - remaining, Ordering::SeqCst);
            Ok(())
        }
        Count::Limited { limit, .. } => {
            st.usage.store(limit, Ordering::SeqCst);
            Err(SfError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ))
        }
    }
}

fn authorize(st: &Emu, headers: &HeaderMap) -> Result<(), SfError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .ok_or_else(SfError::session)?;
    match lock(&st.tokens).get(token.trim()) {
        Some(expires) if *expires > Instant::now() => Ok(()),
        _ => Err(SfError::session()),
    }
}

// ---------------------------------------------------------------- oauth

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `grant_type=refresh_token` with the connected app's key and secret.
async fn token(
    State(st): State<Arc<Emu>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "could not read the request body",
        );
    };
    let params: HashMap<String, String> = form_pairs(&body);
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "refresh_token" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant type not supported",
        );
    }
    if get("client_id") != st.client_id || get("client_secret") != st.client_secret {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "invalid client credentials",
        );
    }
    if get("refresh_token") != st.refresh_token {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "expired access/refresh token",
        );
    }
    let serial = st.token_serial.fetch_add(1, Ordering::SeqCst) + 1;
    let access = format!("00D5e0000000001!AQ{serial:08}{:016x}", fastrand::u64(..));
    lock(&st.tokens).insert(access.clone(), Instant::now() + st.token_lifetime);
    st.stats.grants.fetch_add(1, Ordering::SeqCst);
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let issued = jiff::Timestamp::now().as_millisecond();
    axum::Json(json!({
        "access_token": access,
        "instance_url": format!("http://{host}"),
        "id": format!("http://{host}/id/00D5e0000000001/0055e0000000001"),
        "token_type": "Bearer",
        "issued_at": issued.to_string(),
        "scope": "api refresh_token offline_access",
        "signature": signature(&access, issued),
    }))
    .into_response()
}

/// base64(HMAC-SHA256(id + issued_at)) in Salesforce; here a stand-in of
/// the same shape (the emulator has no private key to sign with).
fn signature(access: &str, issued: i64) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{access}{issued}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// `application/x-www-form-urlencoded`, decoded leniently: a bad escape
/// keeps its bytes rather than failing the whole form.
fn form_pairs(body: &Bytes) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (!k.is_empty()).then(|| (percent_decode(k), percent_decode(v)))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------- bodies

fn read_json(body: Result<Bytes, BytesRejection>) -> Result<Json, SfError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            SfError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "REQUEST_ENTITY_TOO_LARGE",
                "Request body is too large",
            )
        } else {
            SfError::bad("JSON_PARSER_ERROR", "Could not read the request body")
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        SfError::bad(
            "JSON_PARSER_ERROR",
            format!(
                "Unexpected input: {} at [line:{}, column:{}]",
                e.classify_name(),
                e.line(),
                e.column()
            ),
        )
    })
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "end of input",
        }
    }
}

fn read_object(body: Result<Bytes, BytesRejection>) -> Result<Record, SfError> {
    match read_json(body)? {
        Json::Object(m) => Ok(m),
        _ => Err(SfError::bad(
            "JSON_PARSER_ERROR",
            "Expected a JSON object at [line:1, column:1]",
        )),
    }
}

fn object_of<'a>(st: &'a Emu, name: &str) -> Result<&'a ObjectSchema, SfError> {
    st.schema.object(name).ok_or_else(SfError::not_found)
}

fn ok_json(status: StatusCode, v: Json) -> Answer {
    Ok((status, axum::Json(v)).into_response())
}

// ---------------------------------------------------------------- validation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// Checks a write against the schema, in the order Salesforce reports:
/// unknown fields, then read-only ones, then value types, then
/// picklists, then required fields. Returns the changes with canonical
/// field names.
fn validate(obj: &ObjectSchema, body: &Record, mode: Mode) -> Result<Record, SfError> {
    let mut out = Record::new();
    let mut read_only = vec![];
    for (k, v) in body {
        if k == "attributes" && v.is_object() {
            continue;
        }
        let Some(f) = obj.field(k) else {
            return Err(SfError::bad(
                "INVALID_FIELD",
                format!("No such column '{k}' on sobject of type {}", obj.name),
            )
            .with_fields(vec![k.clone()]));
        };
        let allowed = match mode {
            Mode::Create => f.createable,
            Mode::Update => f.updateable,
        };
        if !allowed {
            read_only.push(f.name.clone());
        }
        out.insert(f.name.clone(), v.clone());
    }
    if !read_only.is_empty() {
        return Err(SfError::bad(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this \
                 field and verify that it is read/write for your user or client application.",
                read_only.join(", ")
            ),
        )
        .with_fields(read_only));
    }
    for (k, v) in &out {
        if let Some(f) = obj.field(k) {
            check_value(f, v)?;
        }
    }
    if mode == Mode::Create {
        let missing: Vec<String> = obj
            .fields
            .iter()
            .filter(|f| f.required && out.get(&f.name).is_none_or(Json::is_null))
            .map(|f| f.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(SfError::bad(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
            )
            .with_fields(missing));
        }
    }
    Ok(out)
}

fn check_value(f: &FieldSchema, v: &Json) -> Result<(), SfError> {
    if v.is_null() {
        return Ok(());
    }
    let type_ok = match f.ty {
        t if t.is_text() => v.is_string(),
        FieldType::Currency | FieldType::Double => v.is_number(),
        FieldType::Boolean => v.is_boolean(),
        FieldType::Date => v
            .as_str()
            .is_some_and(|s| s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10),
        FieldType::DateTime => v.as_str().and_then(parse_stamp).is_some(),
        _ => false,
    };
    if !type_ok {
        return Err(SfError::bad(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {} from {} value for field {}",
                f.ty.api_name(),
                json_kind(v),
                f.name
            ),
        )
        .with_fields(vec![f.name.clone()]));
    }
    let s = v.as_str().unwrap_or_default();
    if f.ty == FieldType::Picklist && !f.picklist.iter().any(|p| p == s) {
        return Err(SfError::bad(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            format!("{}: bad value for restricted picklist field: {s}", f.name),
        )
        .with_fields(vec![f.name.clone()]));
    }
    if f.ty == FieldType::Reference && !ids::is_valid(s) {
        return Err(SfError::bad(
            "MALFORMED_ID",
            format!("{}: id value of incorrect type: {s}", f.name),
        )
        .with_fields(vec![f.name.clone()]));
    }
    Ok(())
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Reference fields must name an existing record of a target object.
fn check_references(obj: &ObjectSchema, store: &Store, changes: &Record) -> Result<(), SfError> {
    for (k, v) in changes {
        let (Some(f), Some(id)) = (obj.field(k), v.as_str()) else {
            continue;
        };
        if f.ty == FieldType::Reference && !store.exists_anywhere(&f.reference_to, id) {
            return Err(SfError::bad(
                "INVALID_CROSS_REFERENCE_KEY",
                format!("invalid cross reference id: {}", f.name),
            )
            .with_fields(vec![f.name.clone()]));
        }
    }
    Ok(())
}

/// The full write path of one record, under the store lock: validate,
/// check references, then (unless `dry_run`) apply. Returns the Id.
fn write_one(
    obj: &ObjectSchema,
    store: &mut Store,
    id: Option<&str>,
    body: &Record,
    dry_run: bool,
) -> Result<String, SfError> {
    let mode = if id.is_some() {
        Mode::Update
    } else {
        Mode::Create
    };
    let changes = validate(obj, body, mode)?;
    check_references(obj, store, &changes)?;
    match id {
        None if dry_run => Ok(String::new()),
        None => Ok(store.create(obj, changes)),
        Some(id) => {
            let id = store
                .canonical_id(&obj.name, id)
                .ok_or_else(SfError::not_found)?;
            if !dry_run {
                store.update(&obj.name, &id, changes);
            }
            Ok(id)
        }
    }
}

// ---------------------------------------------------------------- sobjects

fn record_url(version: &str, object: &str, id: &str) -> String {
    format!("/services/data/{version}/sobjects/{object}/{id}")
}

fn with_attributes(version: &str, object: &str, rec: &Record, only: Option<&[String]>) -> Json {
    let id = rec.get("Id").and_then(Json::as_str).unwrap_or_default();
    let mut out = Record::new();
    out.insert(
        "attributes".into(),
        json!({"type": object, "url": record_url(version, object, id)}),
    );
    match only {
        Some(fields) => {
            for f in fields {
                out.insert(f.clone(), rec.get(f).cloned().unwrap_or(Json::Null));
            }
        }
        None => out.extend(rec.iter().map(|(k, v)| (k.clone(), v.clone()))),
    }
    Json::Object(out)
}

fn object_urls(version: &str, name: &str) -> Json {
    let base = format!("/services/data/{version}/sobjects/{name}");
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

/// `GET /sobjects/{Object}/`: basic information and recent items.
async fn list(State(st): State<Arc<Emu>>, Path((v, object)): Path<(String, String)>) -> Answer {
    let obj = object_of(&st, &object)?;
    let recent: Vec<Json> = {
        let store = lock(&st.store);
        let recs = store.records.get(&obj.name);
        recs.map(|m| {
            m.values()
                .rev()
                .take(5)
                .map(|r| {
                    let mut keep = vec!["Id".to_string()];
                    if r.contains_key("Name") {
                        keep.push("Name".into());
                    }
                    with_attributes(&v, &obj.name, r, Some(&keep))
                })
                .collect()
        })
        .unwrap_or_default()
    };
    ok_json(
        StatusCode::OK,
        json!({
            "objectDescribe": {
                "name": obj.name, "label": obj.label, "keyPrefix": obj.key_prefix,
                "createable": true, "updateable": true, "queryable": true, "custom": obj.name.ends_with("__c"),
                "urls": object_urls(&v, &obj.name),
            },
            "recentItems": recent,
        }),
    )
}

/// `POST /sobjects/{Object}/`: 201 `{"id", "success", "errors"}`.
async fn create(
    State(st): State<Arc<Emu>>,
    Path((_v, object)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let body = read_object(body)?;
    let id = write_one(obj, &mut lock(&st.store), None, &body, false)?;
    ok_json(
        StatusCode::CREATED,
        json!({"id": id, "success": true, "errors": []}),
    )
}

/// `GET /sobjects/{Object}/{Id}[?fields=a,b]`.
async fn get_record(
    State(st): State<Arc<Emu>>,
    Path((v, object, id)): Path<(String, String, String)>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let wanted = match params.as_ref().ok().and_then(|q| q.get("fields")) {
        Some(list) => Some(field_list(obj, list)?),
        None => None,
    };
    let store = lock(&st.store);
    let rec = store.find(&obj.name, &id).ok_or_else(SfError::not_found)?;
    ok_json(
        StatusCode::OK,
        with_attributes(&v, &obj.name, rec, wanted.as_deref()),
    )
}

fn field_list(obj: &ObjectSchema, list: &str) -> Result<Vec<String>, SfError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            obj.field(name).map(|f| f.name.clone()).ok_or_else(|| {
                SfError::bad(
                    "INVALID_FIELD",
                    format!("No such column '{name}' on entity '{}'", obj.name),
                )
                .with_fields(vec![name.to_string()])
            })
        })
        .collect()
}

/// `PATCH /sobjects/{Object}/{Id}`: 204 and no body.
async fn update_record(
    State(st): State<Arc<Emu>>,
    Path((_v, object, id)): Path<(String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let obj = object_of(&st, &object)?;
    let body = read_object(body)?;
    let mut store = lock(&st.store);
    if store.find(&obj.name, &id).is_none() {
        return Err(SfError::not_found());
    }
    write_one(obj, &mut store, Some(&id), &body, false)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------- describe

async fn describe(State(st): State<Arc<Emu>>, Path((v, object)): Path<(String, String)>) -> Answer {
    let obj = object_of(&st, &object)?;
    let fields: Vec<Json> = obj.fields.iter().map(describe_field).collect();
    ok_json(
        StatusCode::OK,
        json!({
            "name": obj.name, "label": obj.label, "keyPrefix": obj.key_prefix,
            "createable": true, "updateable": true, "queryable": true,
            "custom": obj.name.ends_with("__c"),
            "fields": fields,
            "urls": object_urls(&v, &obj.name),
        }),
    )
}

fn describe_field(f: &FieldSchema) -> Json {
    let picklist: Vec<Json> = f
        .picklist
        .iter()
        .map(|p| json!({"value": p, "label": p, "active": true, "defaultValue": f.default.as_str() == Some(p), "validFor": null}))
        .collect();
    json!({
        "name": f.name,
        "label": f.name.trim_end_matches("__c").replace('_', " "),
        "type": f.ty.api_name(),
        "updateable": f.updateable,
        "createable": f.createable,
        "nillable": !f.required && f.name != "Id",
        "custom": f.name.ends_with("__c"),
        "picklistValues": picklist,
        "restrictedPicklist": f.ty == FieldType::Picklist,
        "referenceTo": f.reference_to,
        "relationshipName": f.relationship_name(),
    })
}

// ---------------------------------------------------------------- collections

/// sObject Collections accept at most this many records per request.
pub const COLLECTION_LIMIT: usize = 200;

fn collection_body(body: Result<Bytes, BytesRejection>) -> Result<(bool, Vec<Json>), SfError> {
    let body = read_object(body)?;
    let all_or_none = body
        .get("allOrNone")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let Some(Json::Array(records)) = body.get("records") else {
        return Err(SfError::bad(
            "INVALID_FIELD",
            "records: a list of sObjects is required",
        ));
    };
    if records.len() > COLLECTION_LIMIT {
        return Err(SfError::bad(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    Ok((all_or_none, records.clone()))
}

/// One record of a collection: its object (from `attributes.type`, or
/// for updates the Id's key prefix), Id, and fields.
fn collection_item<'a>(
    st: &'a Emu,
    item: &Json,
    update: bool,
) -> Result<(&'a ObjectSchema, Option<String>, Record), SfError> {
    let Json::Object(m) = item else {
        return Err(SfError::bad("JSON_PARSER_ERROR", "Expected an sObject"));
    };
    let mut fields = m.clone();
    let id = fields
        .remove("Id")
        .and_then(|v| v.as_str().map(str::to_string));
    let type_name = m
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Json::as_str);
    let by_prefix = || {
        id.as_deref().and_then(|i| {
            st.schema
                .objects
                .iter()
                .find(|o| i.get(..3) == Some(o.key_prefix.as_str()))
        })
    };
    let obj = match type_name {
        Some(t) => st.schema.object(t),
        None if update => by_prefix(),
        None => None,
    }
    .ok_or_else(|| SfError::bad("INVALID_TYPE", "sObject type is missing or not supported"))?;
    match (update, &id) {
        (true, None) => Err(
            SfError::bad("MISSING_ARGUMENT", "Id not specified in an update call")
                .with_fields(vec!["Id".into()]),
        ),
        (false, Some(_)) => Err(SfError::bad(
            "INVALID_FIELD",
            "cannot specify Id in an insert call",
        )
        .with_fields(vec!["Id".into()])),
        _ => Ok((obj, id, fields)),
    }
}

fn collection_write(st: &Emu, records: &[Json], all_or_none: bool, update: bool) -> Vec<Json> {
    let mut store = lock(&st.store);
    let attempt = |store: &mut Store, item: &Json, dry_run: bool| {
        let (obj, id, fields) = collection_item(st, item, update)?;
        write_one(obj, store, id.as_deref(), &fields, dry_run)
    };
    if all_or_none {
        let checks: Vec<Result<String, SfError>> = records
            .iter()
            .map(|r| attempt(&mut store, r, true))
            .collect();
        if checks.iter().any(Result::is_err) {
            return checks.into_iter().map(rolled_back).collect();
        }
    }
    records
        .iter()
        .map(|r| save_result(attempt(&mut store, r, false)))
        .collect()
}

fn save_result(r: Result<String, SfError>) -> Json {
    match r {
        Ok(id) => json!({"id": id, "success": true, "errors": []}),
        Err(e) => json!({"success": false, "errors": [e.as_record_error()]}),
    }
}

/// Under `allOrNone`, records that would have succeeded report the
/// rollback; the failing ones report their own error.
fn rolled_back(r: Result<String, SfError>) -> Json {
    match r {
        Ok(_) => json!({"success": false, "errors": [{
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
            "fields": []
        }]}),
        Err(e) => save_result(Err(e)),
    }
}

async fn collection_create(
    State(st): State<Arc<Emu>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (all_or_none, records) = collection_body(body)?;
    ok_json(
        StatusCode::OK,
        Json::Array(collection_write(&st, &records, all_or_none, false)),
    )
}

async fn collection_update(
    State(st): State<Arc<Emu>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let (all_or_none, records) = collection_body(body)?;
    ok_json(
        StatusCode::OK,
        Json::Array(collection_write(&st, &records, all_or_none, true)),
    )
}

// ---------------------------------------------------------------- query

/// Results of queries still being paged, by locator; the oldest are
/// dropped past a bound so abandoned queries cannot grow memory.
#[derive(Default)]
struct Cursors {
    serial: u64,
    results: HashMap<String, Arc<Vec<Json>>>,
    order: VecDeque<String>,
}

const MAX_CURSORS: usize = 1000;

impl Cursors {
    fn keep(&mut self, rows: Arc<Vec<Json>>) -> String {
        self.serial += 1;
        let locator = format!("01g5e{:013}", self.serial);
        self.results.insert(locator.clone(), rows);
        self.order.push_back(locator.clone());
        while self.order.len() > MAX_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
        locator
    }
}

/// `Sforce-Query-Options: batchSize=N`, bounded by the configured size.
fn batch_size(st: &Emu, headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(st.query_batch_size, |n| n.clamp(1, st.query_batch_size))
}

async fn query(
    State(st): State<Arc<Emu>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Answer {
    let q = params
        .as_ref()
        .ok()
        .and_then(|p| p.get("q"))
        .ok_or_else(|| SfError::bad("MALFORMED_QUERY", "A query string is required (q)"))?;
    let parsed = soql::parse(q).map_err(|e| SfError::bad("MALFORMED_QUERY", e.to_string()))?;
    let rows = {
        let store = lock(&st.store);
        exec::run(&st.schema, &store, &parsed, &v)?
    };
    page(&st, &v, Arc::new(rows), 0, batch_size(&st, &headers))
}

async fn query_more(
    State(st): State<Arc<Emu>>,
    Path((v, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let bad = || SfError::bad("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (loc, offset) = locator.rsplit_once('-').ok_or_else(bad)?;
    let offset: usize = offset.parse().map_err(|_| bad())?;
    let rows = lock(&st.cursors)
        .results
        .get(loc)
        .cloned()
        .ok_or_else(bad)?;
    if offset > rows.len() {
        return Err(bad());
    }
    page(&st, &v, rows, offset, batch_size(&st, &headers))
}

fn page(st: &Emu, version: &str, rows: Arc<Vec<Json>>, offset: usize, size: usize) -> Answer {
    let end = offset.saturating_add(size).min(rows.len());
    let records: Vec<Json> = rows.get(offset..end).unwrap_or_default().to_vec();
    let mut body = json!({"totalSize": rows.len(), "done": end >= rows.len(), "records": records});
    if end < rows.len() {
        let locator = lock(&st.cursors).keep(rows.clone());
        body["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{locator}-{end}"));
    }
    ok_json(StatusCode::OK, body)
}

pub mod soql {
    //! The SOQL the connector sends, and a little more:
    //!
    //! ```text
    //! query  := SELECT field ("," field)* FROM object
    //!           [WHERE cond (AND cond)*]
    //!           [ORDER BY field [ASC | DESC]]
    //!           [LIMIT integer]
    //! field  := name ("." name)*               -- Rel.Field for parents
    //! cond   := field op literal | field [NOT] IN "(" literal ("," literal)* ")"
    //! op     := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    //! literal:= 'text' | number | date | datetime | TRUE | FALSE | NULL
    //! ```
    //!
    //! Keywords are case-insensitive. Anything else is a `ParseError`
    //! (answered 400 `MALFORMED_QUERY`); the lexer and parser loop, never
    //! recurse, so no input can exhaust the stack.

    use std::fmt;

    /// Salesforce's limit on the length of a SOQL statement.
    pub const MAX_LEN: usize = 100_000;

    #[derive(Debug, Clone, PartialEq)]
    pub enum Literal {
        Str(String),
        Num(f64),
        /// `2026-11-11T10:00:00Z`, kept as written and parsed.
        DateTime(jiff::Timestamp),
        Date(String),
        Bool(bool),
        Null,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Op {
        Eq,
        Ne,
        Lt,
        Le,
        Gt,
        Ge,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub enum Cond {
        Cmp {
            field: String,
            op: Op,
            value: Literal,
        },
        In {
            field: String,
            negated: bool,
            values: Vec<Literal>,
        },
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct Query {
        pub fields: Vec<String>,
        pub object: String,
        pub conds: Vec<Cond>,
        /// The field, and whether descending.
        pub order: Option<(String, bool)>,
        pub limit: Option<u64>,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ParseError(pub String);

    impl fmt::Display for ParseError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for ParseError {}

    fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError(msg.into()))
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Word(String),
        Lit(Literal),
        Op(Op),
        Comma,
        Open,
        Close,
    }

    fn describe(t: Option<&Tok>) -> String {
        match t {
            None => "end of query".into(),
            Some(Tok::Word(w)) => format!("'{w}'"),
            Some(Tok::Lit(_)) => "a literal".into(),
            Some(Tok::Op(_)) => "an operator".into(),
            Some(Tok::Comma) => "','".into(),
            Some(Tok::Open) => "'('".into(),
            Some(Tok::Close) => "')'".into(),
        }
    }

    // ------------------------------------------------------------ lexer

    fn lex(src: &str) -> Result<Vec<Tok>, ParseError> {
        let chars: Vec<char> = src.chars().collect();
        let mut toks = vec![];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let start = i;
            i += 1;
            let tok = match c {
                c if c.is_whitespace() => continue,
                ',' => Tok::Comma,
                '(' => Tok::Open,
                ')' => Tok::Close,
                '=' => Tok::Op(Op::Eq),
                '!' | '<' | '>' => {
                    let (op, used) = operator(c, chars.get(i).copied())
                        .ok_or_else(|| ParseError(format!("unexpected '{c}' at {start}")))?;
                    i += used;
                    Tok::Op(op)
                }
                '\'' => {
                    let (s, next) = string(&chars, i)?;
                    i = next;
                    Tok::Lit(Literal::Str(s))
                }
                c if c.is_ascii_alphabetic() || c == '_' => {
                    while chars
                        .get(i)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                    {
                        i += 1;
                    }
                    Tok::Word(chars[start..i].iter().collect())
                }
                c if c.is_ascii_digit()
                    || (c == '-' && chars.get(i).is_some_and(char::is_ascii_digit)) =>
                {
                    while chars.get(i).is_some_and(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-')
                    }) {
                        i += 1;
                    }
                    let word: String = chars[start..i].iter().collect();
                    Tok::Lit(literal(&word)?)
                }
                other => return err(format!("unexpected character '{other}' at {start}")),
            };
            toks.push(tok);
        }
        Ok(toks)
    }

    fn operator(c: char, next: Option<char>) -> Option<(Op, usize)> {
        match (c, next) {
            ('!', Some('=')) => Some((Op::Ne, 1)),
            ('<', Some('>')) => Some((Op::Ne, 1)),
            ('<', Some('=')) => Some((Op::Le, 1)),
            ('>', Some('=')) => Some((Op::Ge, 1)),
            ('<', _) => Some((Op::Lt, 0)),
            ('>', _) => Some((Op::Gt, 0)),
            _ => None,
        }
    }

    /// A quoted string from just after the opening quote; returns the
    /// text and the index after the closing quote.
    fn string(chars: &[char], mut i: usize) -> Result<(String, usize), ParseError> {
        let mut s = String::new();
        loop {
            match chars.get(i) {
                None => return err("unterminated string literal"),
                Some('\'') => return Ok((s, i + 1)),
                Some('\\') => {
                    let e = chars
                        .get(i + 1)
                        .ok_or_else(|| ParseError("unterminated string literal".into()))?;
                    s.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        '\'' | '"' | '\\' | '_' | '%' => *e,
                        other => return err(format!("invalid escape sequence '\\{other}'")),
                    });
                    i += 2;
                }
                Some(c) => {
                    s.push(*c);
                    i += 1;
                }
            }
        }
    }

    /// A number, a date (`2026-11-11`) or a datetime.
    fn literal(word: &str) -> Result<Literal, ParseError> {
        let numeric = word
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.');
        if numeric {
            return match word.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Literal::Num(n)),
                _ => err(format!("invalid number '{word}'")),
            };
        }
        if word.len() == 10 && word.parse::<jiff::civil::Date>().is_ok() {
            return Ok(Literal::Date(word.to_string()));
        }
        match super::parse_stamp(word) {
            Some(t) if word.contains('T') => Ok(Literal::DateTime(t)),
            _ => err(format!("invalid literal '{word}'")),
        }
    }

    // ------------------------------------------------------------ parser

    struct Parser {
        toks: Vec<Tok>,
        pos: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<&Tok> {
            self.toks.get(self.pos)
        }

        fn next(&mut self) -> Option<Tok> {
            let t = self.toks.get(self.pos).cloned();
            self.pos += 1;
            t
        }

        fn at_keyword(&self, kw: &str) -> bool {
            matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
        }

        fn keyword(&mut self, kw: &str) -> Result<(), ParseError> {
            if self.at_keyword(kw) {
                self.pos += 1;
                Ok(())
            } else {
                err(format!("expected {kw}, found {}", describe(self.peek())))
            }
        }

        fn name(&mut self, what: &str) -> Result<String, ParseError> {
            match self.next() {
                Some(Tok::Word(w)) if !is_reserved(&w) && valid_path(&w) => Ok(w),
                other => err(format!(
                    "expected {what}, found {}",
                    describe(other.as_ref())
                )),
            }
        }

        fn literal(&mut self) -> Result<Literal, ParseError> {
            match self.next() {
                Some(Tok::Lit(l)) => Ok(l),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
                other => err(format!(
                    "expected a value, found {}",
                    describe(other.as_ref())
                )),
            }
        }

        fn fields(&mut self) -> Result<Vec<String>, ParseError> {
            let mut out = vec![self.name("a field")?];
            while self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
                out.push(self.name("a field")?);
            }
            Ok(out)
        }

        fn cond(&mut self) -> Result<Cond, ParseError> {
            let field = self.name("a field")?;
            let negated = self.at_keyword("not");
            if negated {
                self.pos += 1;
            }
            if self.at_keyword("in") {
                self.pos += 1;
                return Ok(Cond::In {
                    field,
                    negated,
                    values: self.list()?,
                });
            }
            if negated {
                return err("expected IN after NOT");
            }
            match self.next() {
                Some(Tok::Op(op)) => Ok(Cond::Cmp {
                    field,
                    op,
                    value: self.literal()?,
                }),
                other => err(format!(
                    "expected an operator, found {}",
                    describe(other.as_ref())
                )),
            }
        }

        fn list(&mut self) -> Result<Vec<Literal>, ParseError> {
            if self.next() != Some(Tok::Open) {
                return err("expected '(' after IN");
            }
            let mut values = vec![self.literal()?];
            loop {
                match self.next() {
                    Some(Tok::Comma) => values.push(self.literal()?),
                    Some(Tok::Close) => return Ok(values),
                    other => {
                        return err(format!(
                            "expected ',' or ')', found {}",
                            describe(other.as_ref())
                        ))
                    }
                }
            }
        }

        fn order(&mut self) -> Result<(String, bool), ParseError> {
            self.keyword("by")?;
            let field = self.name("a field")?;
            let desc = if self.at_keyword("desc") {
                self.pos += 1;
                true
            } else {
                if self.at_keyword("asc") {
                    self.pos += 1;
                }
                false
            };
            Ok((field, desc))
        }

        fn limit(&mut self) -> Result<u64, ParseError> {
            match self.next() {
                Some(Tok::Lit(Literal::Num(n))) if n >= 0.0 && n.fract() == 0.0 && n < 1e15 => {
                    Ok(n as u64)
                }
                other => err(format!(
                    "expected a whole number after LIMIT, found {}",
                    describe(other.as_ref())
                )),
            }
        }
    }

    const RESERVED: &[&str] = &[
        "select", "from", "where", "and", "or", "not", "in", "order", "by", "limit", "asc", "desc",
        "null", "true", "false",
    ];

    fn is_reserved(w: &str) -> bool {
        RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w))
    }

    /// `A.B.C`: no empty segment, none starting with a digit.
    fn valid_path(w: &str) -> bool {
        w.split('.')
            .all(|s| s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
    }

    pub fn parse(src: &str) -> Result<Query, ParseError> {
        if src.len() > MAX_LEN {
            return err(format!("query is longer than {MAX_LEN} characters"));
        }
        let mut p = Parser {
            toks: lex(src)?,
            pos: 0,
        };
        p.keyword("select")?;
        let fields = p.fields()?;
        p.keyword("from")?;
        let object = p.name("an object")?;
        if object.contains('.') {
            return err(format!("invalid object name '{object}'"));
        }
        let mut conds = vec![];
        if p.at_keyword("where") {
            p.pos += 1;
            conds.push(p.cond()?);
            while p.at_keyword("and") {
                p.pos += 1;
                conds.push(p.cond()?);
            }
            if p.at_keyword("or") {
                return err("OR is not supported by the emulator; use IN (...)");
            }
        }
        let order = if p.at_keyword("order") {
            p.pos += 1;
            Some(p.order()?)
        } else {
            None
        };
        let limit = if p.at_keyword("limit") {
            p.pos += 1;
            Some(p.limit()?)
        } else {
            None
        };
        if p.peek().is_some() {
            return err(format!("unexpected token {}", describe(p.peek())));
        }
        Ok(Query {
            fields,
            object,
            conds,
            order,
            limit,
        })
    }
}

mod exec {
    //! Runs a parsed query against the store: resolves names against the
    //! schema (INVALID_TYPE, INVALID_FIELD), filters, sorts, projects.

    use super::soql::{Cond, Literal, Op, Query};
    use super::*;

    /// A selected or filtered field: on the object itself, or on the
    /// parent reached through a reference (`Account.SLA_Tier__c`).
    struct Resolved<'a> {
        path: String,
        parent: Option<Parent<'a>>,
        field: &'a FieldSchema,
    }

    struct Parent<'a> {
        /// The reference field on the queried object (`AccountId`).
        via: String,
        /// How the result names it (`Account`).
        rel: String,
        object: &'a ObjectSchema,
    }

    fn no_column(name: &str, obj: &str) -> SfError {
        SfError::bad(
            "INVALID_FIELD",
            format!(
                "No such column '{name}' on entity '{obj}'. If you are attempting to use a \
                 custom field, be sure to append the '__c' after the custom field name."
            ),
        )
        .with_fields(vec![name.to_string()])
    }

    fn resolve<'a>(
        schema: &'a Schema,
        obj: &'a ObjectSchema,
        path: &str,
    ) -> Result<Resolved<'a>, SfError> {
        let Some((rel, rest)) = path.split_once('.') else {
            let field = obj.field(path).ok_or_else(|| no_column(path, &obj.name))?;
            return Ok(Resolved {
                path: field.name.clone(),
                parent: None,
                field,
            });
        };
        let reference = obj
            .relationship(rel)
            .ok_or_else(|| no_column(rel, &obj.name))?;
        let target = reference
            .reference_to
            .first()
            .and_then(|t| schema.object(t))
            .ok_or_else(|| no_column(rel, &obj.name))?;
        if rest.contains('.') {
            return Err(SfError::bad(
                "MALFORMED_QUERY",
                "the emulator follows one relationship level",
            ));
        }
        let field = target
            .field(rest)
            .ok_or_else(|| no_column(rest, &target.name))?;
        let rel_name = reference.relationship_name().unwrap_or_default();
        Ok(Resolved {
            path: format!("{rel_name}.{}", field.name),
            parent: Some(Parent {
                via: reference.name.clone(),
                rel: rel_name,
                object: target,
            }),
            field,
        })
    }

    fn value<'r>(store: &'r Store, rec: &'r Record, r: &Resolved) -> Option<&'r Json> {
        match &r.parent {
            None => rec.get(&r.field.name),
            Some(p) => {
                let id = rec.get(&p.via)?.as_str()?;
                store.find(&p.object.name, id)?.get(&r.field.name)
            }
        }
    }

    pub fn run(
        schema: &Schema,
        store: &Store,
        q: &Query,
        version: &str,
    ) -> Result<Vec<Json>, SfError> {
        let obj = schema.object(&q.object).ok_or_else(|| {
            SfError::bad(
                "INVALID_TYPE",
                format!("sObject type '{}' is not supported.", q.object),
            )
        })?;
        let select: Vec<Resolved> = q
            .fields
            .iter()
            .map(|f| resolve(schema, obj, f))
            .collect::<Result<_, _>>()?;
        let conds: Vec<(Resolved, &Cond)> = q
            .conds
            .iter()
            .map(|c| Ok((resolve(schema, obj, cond_field(c))?, c)))
            .collect::<Result<_, SfError>>()?;
        let order = match &q.order {
            Some((f, desc)) => Some((resolve(schema, obj, f)?, *desc)),
            None => None,
        };
        let mut rows: Vec<&Record> = vec![];
        for rec in store
            .records
            .get(&obj.name)
            .into_iter()
            .flat_map(|m| m.values())
        {
            if matches_all(store, rec, &conds)? {
                rows.push(rec);
            }
        }
        if let Some((r, desc)) = &order {
            rows.sort_by(|a, b| {
                let o = compare_json(value(store, a, r), value(store, b, r));
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        let limit = q
            .limit
            .map_or(usize::MAX, |n| n.min(usize::MAX as u64) as usize);
        Ok(rows
            .into_iter()
            .take(limit)
            .map(|rec| project(store, rec, obj, &select, version))
            .collect())
    }

    fn cond_field(c: &Cond) -> &str {
        match c {
            Cond::Cmp { field, .. } | Cond::In { field, .. } => field,
        }
    }

    fn matches_all(
        store: &Store,
        rec: &Record,
        conds: &[(Resolved, &Cond)],
    ) -> Result<bool, SfError> {
        for (r, c) in conds {
            let v = value(store, rec, r).unwrap_or(&Json::Null);
            let ok = match c {
                Cond::Cmp { op, value: lit, .. } => test(r, v, *op, lit)?,
                Cond::In {
                    negated, values, ..
                } => {
                    let mut any = false;
                    for lit in values {
                        any |= test(r, v, Op::Eq, lit)?;
                    }
                    any != *negated
                }
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn mismatch(r: &Resolved) -> SfError {
        SfError::bad(
            "INVALID_FIELD",
            format!(
                "value of filter criterion for field '{}' must be of type {} and should{} be \
                 enclosed in quotes",
                r.path,
                r.field.ty.api_name(),
                if r.field.ty.is_text() { "" } else { " not" }
            ),
        )
        .with_fields(vec![r.path.clone()])
    }

    /// One comparison, typed by the field: text compares case-insensitively
    /// (as SOQL does), Ids by their 15-character form.
    fn test(r: &Resolved, v: &Json, op: Op, lit: &Literal) -> Result<bool, SfError> {
        if *lit == Literal::Null {
            return match op {
                Op::Eq => Ok(v.is_null()),
                Op::Ne => Ok(!v.is_null()),
                _ => Err(mismatch(r)),
            };
        }
        let ord = match (r.field.ty, lit) {
            (FieldType::Id | FieldType::Reference, Literal::Str(s)) => {
                let a = v.as_str().map(|x| x.get(..15).unwrap_or(x));
                a.map(|a| a.cmp(s.get(..15).unwrap_or(s)))
            }
            (t, Literal::Str(s)) if t.is_text() => {
                v.as_str().map(|x| x.to_lowercase().cmp(&s.to_lowercase()))
            }
            (FieldType::Currency | FieldType::Double, Literal::Num(n)) => {
                v.as_f64().and_then(|x| x.partial_cmp(n))
            }
            (FieldType::Boolean, Literal::Bool(b)) => v.as_bool().map(|x| x.cmp(b)),
            (FieldType::Date, Literal::Date(d)) => v.as_str().map(|x| x.cmp(d.as_str())),
            (FieldType::DateTime, Literal::DateTime(t)) => {
                v.as_str().and_then(parse_stamp).map(|x| x.cmp(t))
            }
            _ => return Err(mismatch(r)),
        };
        let Some(ord) = ord else {
            // A null field matches only `!=`.
            return Ok(op == Op::Ne);
        };
        Ok(match op {
            Op::Eq => ord == CmpOrdering::Equal,
            Op::Ne => ord != CmpOrdering::Equal,
            Op::Lt => ord == CmpOrdering::Less,
            Op::Le => ord != CmpOrdering::Greater,
            Op::Gt => ord == CmpOrdering::Greater,
            Op::Ge => ord != CmpOrdering::Less,
        })
    }

    /// Nulls first, as SOQL sorts ascending by default.
    fn compare_json(a: Option<&Json>, b: Option<&Json>) -> CmpOrdering {
        let a = a.filter(|v| !v.is_null());
        let b = b.filter(|v| !v.is_null());
        match (a, b) {
            (None, None) => CmpOrdering::Equal,
            (None, _) => CmpOrdering::Less,
            (_, None) => CmpOrdering::Greater,
            (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
                (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(CmpOrdering::Equal),
                _ => {
                    let s = |v: &Json| v.as_str().map(str::to_lowercase).unwrap_or_default();
                    s(x).cmp(&s(y))
                }
            },
        }
    }

    /// A result row: selected fields in order, parent fields grouped under
    /// the relationship name with their own `attributes`, or null.
    fn project(
        store: &Store,
        rec: &Record,
        obj: &ObjectSchema,
        select: &[Resolved],
        version: &str,
    ) -> Json {
        let id = rec.get("Id").and_then(Json::as_str).unwrap_or_default();
        let mut out = Record::new();
        out.insert(
            "attributes".into(),
            json!({"type": obj.name, "url": record_url(version, &obj.name, id)}),
        );
        for r in select {
            let Some(p) = &r.parent else {
                let v = rec.get(&r.field.name).cloned().unwrap_or(Json::Null);
                out.insert(r.field.name.clone(), v);
                continue;
            };
            let parent = rec
                .get(&p.via)
                .and_then(Json::as_str)
                .and_then(|pid| store.find(&p.object.name, pid));
            let slot = out.entry(p.rel.clone()).or_insert(Json::Null);
            let Some(parent) = parent else {
                continue;
            };
            if !slot.is_object() {
                let pid = parent.get("Id").and_then(Json::as_str).unwrap_or_default();
                *slot = json!({"attributes": {"type": p.object.name, "url": record_url(version, &p.object.name, pid)}});
            }
            if let Json::Object(m) = slot {
                let v = parent.get(&r.field.name).cloned().unwrap_or(Json::Null);
                m.insert(r.field.name.clone(), v);
            }
        }
        Json::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_valid_checksums() {
        let id = ids::make("500", 1);
        assert_eq!(id.len(), 18);
        assert!(ids::is_valid(&id));
        assert!(ids::is_valid(&id[..15]));
        assert!(!ids::is_valid("500xx"));
        // A published Id and its checksum.
        assert_eq!(ids::with_checksum("001D000000IRFma"), "001D000000IRFmaIAH");
    }

    #[test]
    fn stamps_parse_in_every_salesforce_form() {
        for s in [
            "2026-11-11T10:00:00Z",
            "2026-11-11T10:00:00.000+0000",
            "2026-11-11T02:00:00-08:00",
        ] {
            assert!(parse_stamp(s).is_some(), "{s}");
        }
        assert!(parse_stamp(&now_stamp()).is_some());
        assert!(parse_stamp("2026-11-11").is_none());
    }

    #[test]
    fn versions_are_checked() {
        assert!(valid_version("/services/data/v60.0/query"));
        assert!(!valid_version("/services/data/60.0/query"));
        assert!(!valid_version("/services/data/vX.0/query"));
    }

    #[test]
    fn form_decoding_never_fails() {
        let f = form_pairs(&Bytes::from_static(b"a=b%20c&d=%zz&%=&e=%2"));
        assert_eq!(f.get("a").map(String::as_str), Some("b c"));
        assert_eq!(f.get("d").map(String::as_str), Some("%zz"));
        assert_eq!(f.get("e").map(String::as_str), Some("%2"));
    }
}
