//! An emulator of the Zendesk Support API v2, for everything the Zendesk
//! connector uses: tickets (show, list, create with `Idempotency-Key`,
//! update, bulk update with job statuses), comments, the cursor-based
//! incremental ticket export, ticket fields, custom statuses and groups.
//! OAuth bearer and API-token auth with scopes, per-token rate limits with
//! Zendesk's headers, Zendesk's error bodies, and signed webhooks.
//!
//! One fallback handler dispatches on method and path segments: Zendesk
//! puts `.json` on every path (`/tickets/{id}.json`), which route patterns
//! cannot capture, and one place for auth, counting and the body limit keeps
//! every answer, even to nonsense, in Zendesk's shape.
//!
//! State lives behind one `std::sync::Mutex`, never held across an await.
//! docs/emulators/zendesk.md documents every endpoint and what differs.

use super::faults::{self, Faults};
use super::window::{Count, Windows};
use super::Running;
use crate::connectors::Secret;
use crate::ir::{EscAction, Expr, ExprKind, FieldRef, Program, Ref, Type};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Zendesk Team plan: 200 requests per minute per token.
pub const DEFAULT_RPM: u32 = 200;
/// Bodies above this are refused with 413 before they are parsed.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// The token `l3map emulate` accepts when none is configured.
pub const DEV_TOKEN: &str = "l3map-dev-token";
/// Zendesk accepts at most 100 ids in one `update_many`.
const MAX_BULK_IDS: usize = 100;
/// Zendesk keeps an idempotency key for two hours.
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(2 * 60 * 60);
const AGENT_ID: u64 = 1000;
const REQUESTER_ID: u64 = 2000;
/// Zendesk's status categories; `closed` has no custom statuses of its own.
const CATEGORIES: [&str; 5] = ["new", "open", "pending", "hold", "solved"];

// ---------------------------------------------------------------- options

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
    fn can_write(&self) -> bool {
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
}

impl WebhookTarget {
    pub fn new(url: impl Into<String>, secret: Secret) -> WebhookTarget {
        WebhookTarget {
            url: url.into(),
            secret,
            attempts: 4,
            backoff: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZendeskOptions {
    pub seed: Seed,
    pub tokens: Vec<TokenGrant>,
    /// Requests per window per token.
    pub rate_limit: u32,
    /// Zendesk's window is one minute; tests shrink it.
    pub window: Duration,
    pub faults: Arc<Faults>,
    pub webhook: Option<WebhookTarget>,
    pub max_body: usize,
    /// How many polls of a job status answer `working` before `completed`.
    pub job_polls: u32,
    /// Tickets per incremental export page (Zendesk: up to 1000).
    pub export_page: usize,
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
            rate_limit: DEFAULT_RPM,
            window: Duration::from_secs(60),
            faults: Faults::none(),
            webhook: None,
            max_body: DEFAULT_MAX_BODY,
            job_polls: 1,
            export_page: 1000,
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

// ---------------------------------------------------------------- seed

/// A custom ticket field's type, as Zendesk names them.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text,
    Decimal,
    Checkbox,
    Date,
    /// A drop-down: the values (tags) it accepts.
    Tagger(Vec<String>),
}

impl FieldKind {
    fn zendesk_type(&self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Decimal => "decimal",
            FieldKind::Checkbox => "checkbox",
            FieldKind::Date => "date",
            FieldKind::Tagger(_) => "tagger",
        }
    }

    fn from_type(ty: &Type) -> FieldKind {
        match ty {
            Type::Enum(options) => FieldKind::Tagger(options.clone()),
            Type::Bool => FieldKind::Checkbox,
            Type::Number | Type::Money(_) => FieldKind::Decimal,
            Type::Date => FieldKind::Date,
            _ => FieldKind::Text,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeedField {
    pub id: u64,
    pub title: String,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeedStatus {
    pub id: u64,
    /// The mapping's name for it (`pending_risk_review`).
    pub name: String,
    /// `new`, `open`, `pending`, `hold` or `solved`.
    pub category: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeedTicket {
    pub id: u64,
    pub subject: String,
    /// A seeded status name, or a category.
    pub status: String,
    pub fields: Vec<(u64, Value)>,
    pub tags: Vec<String>,
}

/// What the emulator starts with: the desks' fields, statuses and groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seed {
    pub fields: Vec<SeedField>,
    pub statuses: Vec<SeedStatus>,
    pub groups: Vec<String>,
    pub tickets: Vec<SeedTicket>,
}

const FINTECH: [(&str, &str); 5] = [
    (
        "fintech/connections.l3map",
        include_str!("../../mappings/fintech/connections.l3map"),
    ),
    (
        "fintech/escalations.l3map",
        include_str!("../../mappings/fintech/escalations.l3map"),
    ),
    (
        "fintech/fields.l3map",
        include_str!("../../mappings/fintech/fields.l3map"),
    ),
    (
        "fintech/kyc.l3map",
        include_str!("../../mappings/fintech/kyc.l3map"),
    ),
    (
        "fintech/statuses.l3map",
        include_str!("../../mappings/fintech/statuses.l3map"),
    ),
];

const SHOP: [(&str, &str); 2] = [
    (
        "shop/shop.l3map",
        include_str!("../../mappings/shop/shop.l3map"),
    ),
    (
        "shop/tickets.l3map",
        include_str!("../../mappings/shop/tickets.l3map"),
    ),
];

fn compile(files: &[(&str, &str)]) -> Option<Program> {
    let mut sources = crate::syntax::SourceMap::new();
    for (path, text) in files {
        sources.add(*path, *text);
    }
    let checked = crate::check::check(&sources);
    crate::ir::lower(&checked, &sources)
}

impl Seed {
    /// The fintech desk and the shop, compiled from the mapping files built
    /// into the binary, so the seed follows the mappings. Should they stop
    /// compiling, [`Seed::fallback`] keeps the emulator usable.
    pub fn embedded() -> Seed {
        match (compile(&FINTECH), compile(&SHOP)) {
            (Some(fintech), Some(shop)) => Seed::from_programs(&[fintech, shop]),
            _ => {
                tracing::warn!("embedded mappings do not compile; using the fallback seed");
                Seed::fallback()
            }
        }
    }

    /// Fields, statuses and groups of the Zendesk connections in `programs`:
    /// every custom field the rules read or write (typed from the rules),
    /// every status (declared `#id`s kept, the others numbered), every group
    /// an escalation assigns, and a handful of tickets.
    pub fn from_programs(programs: &[Program]) -> Seed {
        let mut fields = BTreeMap::new();
        let mut statuses: Vec<(String, String, String, Option<u64>)> = Vec::new();
        let mut groups = Vec::new();
        for p in programs {
            collect_fields(p, &mut fields);
            for table in &p.status_tables {
                for s in &table.statuses {
                    if statuses.iter().all(|(n, ..)| *n != s.name) {
                        let label = s.label.clone().unwrap_or_else(|| s.name.clone());
                        let cat = s.category.as_str().to_string();
                        statuses.push((s.name.clone(), cat, label, s.custom_status_id));
                    }
                }
            }
            for e in &p.escalations {
                for a in &e.actions {
                    if let EscAction::AssignGroup { group, .. } = a {
                        if !groups.contains(group) {
                            groups.push(group.clone());
                        }
                    }
                }
            }
        }
        let fields: Vec<SeedField> = fields
            .into_iter()
            .map(|(id, (title, kind))| SeedField { id, title, kind })
            .collect();
        let statuses = number_statuses(statuses);
        let tickets = sample_tickets(&fields, &statuses);
        Seed {
            fields,
            statuses,
            groups,
            tickets,
        }
    }

    /// The same desks written out by hand: used only if the embedded
    /// mappings fail to compile.
    pub fn fallback() -> Seed {
        let tagger = |v: &[&str]| FieldKind::Tagger(v.iter().map(|s| s.to_string()).collect());
        let f = |id, title: &str, kind| SeedField {
            id,
            title: title.into(),
            kind,
        };
        let fields = vec![
            f(
                360001234,
                "sla_tier",
                tagger(&["enterprise", "premium", "standard"]),
            ),
            f(360001235, "contract_value", FieldKind::Decimal),
            f(360001236, "risk_score", FieldKind::Decimal),
            f(
                360001237,
                "risk_decision",
                tagger(&["pending", "cleared", "escalate"]),
            ),
            f(
                360001238,
                "dispute_type",
                tagger(&[
                    "no_dispute",
                    "chargeback",
                    "retrieval_request",
                    "fraud_claim",
                ]),
            ),
            f(360001239, "refund_issued", FieldKind::Checkbox),
            f(360001240, "renewal_date", FieldKind::Date),
            f(360001241, "handoff_reason", FieldKind::Text),
            f(900000101, "product", FieldKind::Text),
            f(900000102, "order_id", FieldKind::Text),
            f(
                900000103,
                "marketplace",
                tagger(&["own_store", "shopee", "tokopedia", "lazada", "rakuten"]),
            ),
            f(900000104, "product_id", FieldKind::Text),
        ];
        let names = [
            ("new", "new"),
            ("open", "open"),
            ("in_progress", "open"),
            ("pending_customer", "pending"),
            ("pending_risk_review", "pending"),
            ("awaiting_regulator_response", "hold"),
            ("escalated_tier2", "open"),
            ("solved", "solved"),
            ("closed", "solved"),
        ];
        let statuses = number_statuses(
            names
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_string(), n.to_string(), None))
                .collect(),
        );
        let groups = [
            "Payments Tier 2",
            "Fraud Operations",
            "Compliance",
            "Returns & Replacements",
            "Japan Team",
            "Regional Support",
        ]
        .map(String::from)
        .to_vec();
        let tickets = sample_tickets(&fields, &statuses);
        Seed {
            fields,
            statuses,
            groups,
            tickets,
        }
    }
}

/// Every custom field a program reads or writes, with the best type known:
/// a declared type from a rule beats "text".
fn collect_fields(p: &Program, out: &mut BTreeMap<u64, (String, FieldKind)>) {
    let mut add = |r: &FieldRef, ty: Option<&Type>| {
        if let FieldRef::Zendesk {
            field,
            id: Some(id),
            ..
        } = r
        {
            let kind = ty.map(FieldKind::from_type).unwrap_or(FieldKind::Text);
            let entry = out.entry(*id).or_insert((field.clone(), FieldKind::Text));
            if entry.1 == FieldKind::Text {
                entry.1 = kind;
            }
        }
    };
    for m in &p.mappings {
        for r in &m.rules {
            add(&r.source, Some(&r.source_type));
            add(&r.target, Some(&r.target_type));
        }
    }
    for t in &p.sku_tables {
        for a in &t.applies {
            add(&a.target, None);
        }
    }
    let mut refs = Vec::new();
    for t in &p.status_tables {
        for tr in &t.transitions {
            if let Some(w) = &tr.when {
                expr_refs(w, &mut refs);
            }
        }
    }
    for e in &p.escalations {
        expr_refs(&e.when, &mut refs);
        for a in &e.actions {
            if let EscAction::SetField { field, value, .. } = a {
                add(field, None);
                expr_refs(value, &mut refs);
            }
        }
    }
    for (alias, id, ty) in refs {
        let r = FieldRef::Zendesk {
            connection: String::new(),
            field: alias,
            id: Some(id),
        };
        add(&r, ty.as_ref());
    }
}

fn expr_refs(e: &Expr, out: &mut Vec<(String, u64, Option<Type>)>) {
    match &e.kind {
        ExprKind::Ref(Ref::TicketField { alias, id, ty }) => {
            out.push((alias.clone(), *id, ty.clone()));
        }
        ExprKind::Lit(_) | ExprKind::Ref(_) => {}
        ExprKind::Not(x) => expr_refs(x, out),
        ExprKind::List(xs) | ExprKind::And(xs) | ExprKind::Or(xs) => {
            xs.iter().for_each(|x| expr_refs(x, out));
        }
        ExprKind::Cmp(_, a, b) => {
            expr_refs(a, out);
            expr_refs(b, out);
        }
    }
}

/// Declared custom status ids are kept; the others get fresh ids, and every
/// category gets a status, since Zendesk has a default one per category.
fn number_statuses(mut declared: Vec<(String, String, String, Option<u64>)>) -> Vec<SeedStatus> {
    for cat in CATEGORIES {
        if declared.iter().all(|(_, c, ..)| c != cat) {
            declared.push((cat.into(), cat.into(), cat.into(), None));
        }
    }
    let taken: BTreeSet<u64> = declared.iter().filter_map(|s| s.3).collect();
    let mut next = 360_000_001u64;
    declared
        .into_iter()
        .map(|(name, category, label, id)| {
            let id = id.unwrap_or_else(|| {
                while taken.contains(&next) {
                    next += 1;
                }
                next += 1;
                next - 1
            });
            SeedStatus {
                id,
                name,
                category,
                label,
            }
        })
        .collect()
}

/// A few tickets like the mappings' tests describe, with only the fields
/// and statuses the seed has.
fn sample_tickets(fields: &[SeedField], statuses: &[SeedStatus]) -> Vec<SeedTicket> {
    let has_field = |id: u64| fields.iter().any(|f| f.id == id);
    let status = |name: &str, fallback: &str| {
        if statuses.iter().any(|s| s.name == name) {
            name.to_string()
        } else {
            fallback.to_string()
        }
    };
    let t = |id, subject: &str, st: String, fs: Vec<(u64, Value)>, tags: &[&str]| SeedTicket {
        id,
        subject: subject.into(),
        status: st,
        fields: fs.into_iter().filter(|(f, _)| has_field(*f)).collect(),
        tags: tags.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        t(
            4211,
            "Refund for order 1182",
            status("in_progress", "open"),
            vec![(360001234, json!("premium"))],
            &["refund"],
        ),
        t(
            4213,
            "Card used in another country",
            status("open", "open"),
            vec![],
            &["fraud"],
        ),
        t(
            4214,
            "Third time asking",
            status("open", "open"),
            vec![(360001234, json!("enterprise"))],
            &[],
        ),
        t(
            5101,
            "iPhone screen cracked on arrival",
            status("open", "open"),
            vec![(900000103, json!("rakuten"))],
            &[],
        ),
        t(
            5105,
            "Wrong colour delivered",
            status("new", "new"),
            vec![(900000101, json!("iph15pm"))],
            &[],
        ),
    ]
}

// ---------------------------------------------------------------- state

#[derive(Debug, Clone)]
struct CommentRec {
    id: u64,
    author_id: u64,
    body: String,
    public: bool,
    created_at: i64,
}

#[derive(Debug, Clone)]
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
    tags: Vec<String>,
    fields: BTreeMap<u64, Value>,
    created_at: i64,
    updated_at: i64,
    /// Position in the change stream, for the incremental export cursor.
    seq: u64,
    comments: Vec<CommentRec>,
}

#[derive(Debug)]
struct Job {
    total: usize,
    polls_left: u32,
    results: Vec<Value>,
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
    groups: Vec<(u64, String)>,
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
    by_path: HashMap<String, u32>,
    /// Token fingerprint -> requests.
    by_token: HashMap<String, u32>,
    rate_limited: u32,
    deliveries: Vec<Delivery>,
}

struct Shared {
    opts: ZendeskOptions,
    windows: Windows,
    /// When each token's current window opened, for `ratelimit-reset`.
    window_starts: Mutex<HashMap<String, Instant>>,
    db: Mutex<Db>,
    stats: Arc<Mutex<Stats>>,
    hooks: Option<HookQueue>,
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
            groups: seed
                .groups
                .iter()
                .enumerate()
                .map(|(i, g)| (360_100_001 + i as u64, g.clone()))
                .collect(),
            next_ticket: 1,
            next_comment: 1,
            next_job: 1,
            ..Db::default()
        };
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
                    requester_id: REQUESTER_ID,
                    tags: t.tags.clone(),
                    fields: t.fields.iter().cloned().collect(),
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

    /// The first status of a category is its default.
    fn default_status(&self, category: &str) -> Option<&SeedStatus> {
        let category = if category == "closed" {
            "solved"
        } else {
            category
        };
        self.statuses.iter().find(|s| s.category == category)
    }
}

// ---------------------------------------------------------------- errors

/// An answer in Zendesk's error shape.
#[derive(Debug)]
struct ZdErr {
    status: StatusCode,
    body: Value,
}

impl ZdErr {
    fn not_found() -> ZdErr {
        ZdErr {
            status: StatusCode::NOT_FOUND,
            body: json!({"error": "RecordNotFound", "description": "Not found"}),
        }
    }

    fn bad_json() -> ZdErr {
        ZdErr {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": "Unprocessable Entity", "message": "Server could not parse JSON"}),
        }
    }

    fn bad_request(error: &str, description: impl Into<String>) -> ZdErr {
        ZdErr {
            status: StatusCode::BAD_REQUEST,
            body: json!({"error": error, "description": description.into()}),
        }
    }

    fn invalid(details: BTreeMap<String, Vec<Value>>) -> ZdErr {
        ZdErr {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: json!({
                "error": "RecordInvalid",
                "description": "Record validation errors",
                "details": details,
            }),
        }
    }

    fn forbidden() -> ZdErr {
        ZdErr {
            status: StatusCode::FORBIDDEN,
            body: json!({
                "error": "Forbidden",
                "description": "You do not have access to this page. Please contact the account owner of this help desk for further help."
            }),
        }
    }
}

impl IntoResponse for ZdErr {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

type Answer = Result<(StatusCode, Value), ZdErr>;

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, body))
}

/// Collects validation errors the way Zendesk reports them: by attribute,
/// custom fields under `base` with their `field_key`.
#[derive(Default)]
struct Problems(BTreeMap<String, Vec<Value>>);

impl Problems {
    fn attr(&mut self, attr: &str, description: String) {
        self.0
            .entry(attr.into())
            .or_default()
            .push(json!({"description": description, "error": "InvalidValue"}));
    }

    fn field(&mut self, id: Value, description: String) {
        self.0
            .entry("base".into())
            .or_default()
            .push(json!({"description": description, "error": "InvalidValue", "field_key": id}));
    }

    fn finish(self) -> Result<(), ZdErr> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ZdErr::invalid(self.0))
        }
    }
}

// ---------------------------------------------------------------- emulator

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
            window_starts: Mutex::new(HashMap::new()),
            db: Mutex::new(Db::from_seed(&opts.seed)),
            stats: Arc::new(Mutex::new(Stats::default())),
            hooks,
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
        Ok((running, self.handle()))
    }
}

impl Handle {
    /// Requests received for `"METHOD /path"`, e.g. `"PUT /api/v2/tickets/1.json"`.
    pub fn requests(&self, method_path: &str) -> u32 {
        lock(&self.shared.stats)
            .by_path
            .get(method_path)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_requests(&self) -> u32 {
        lock(&self.shared.stats).by_path.values().sum()
    }

    /// Authenticated requests made with `token`.
    pub fn requests_for_token(&self, token: &Secret) -> u32 {
        lock(&self.shared.stats)
            .by_token
            .get(&token.fingerprint())
            .copied()
            .unwrap_or(0)
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
            .find(|(_, n)| n == name)
            .map(|(id, _)| *id)
    }

    /// The fault switches: `faults().burst_5xx.store(3, ..)` fails the next
    /// three requests with 503.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.shared.opts.faults
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.stats).deliveries.clone()
    }
}

// ---------------------------------------------------------------- dispatch

async fn dispatch(State(sh): State<Arc<Shared>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    sh.count(&parts.method, parts.uri.path());
    let Some(grant) = authenticate(&sh, &parts.headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "Couldn't authenticate you"})),
        )
            .into_response();
    };
    let key = grant.token.fingerprint();
    sh.count_token(&key);
    let limits = match sh.admit(&key) {
        Ok(h) => h,
        Err(resp) => return *resp,
    };
    let mut resp = match axum::body::to_bytes(body, sh.opts.max_body).await {
        Ok(bytes) => route(&sh, &parts.method, &parts.uri, &parts.headers, &grant, &bytes),
        Err(_) => ZdErr {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            body: json!({"error": "RequestTooLarge", "description": format!("Request body exceeds {} bytes", sh.opts.max_body)}),
        }
        .into_response(),
    };
    resp.headers_mut().extend(limits);
    resp
}

/// Bearer tokens (OAuth) or Basic `email/token:TOKEN` (API token).
fn authenticate(sh: &Shared, headers: &HeaderMap) -> Option<TokenGrant> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let token = if let Some(t) = value.strip_prefix("Bearer ") {
        t.trim().to_string()
    } else {
        let encoded = value.strip_prefix("Basic ")?.trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, token) = text.split_once(':')?;
        // Only API tokens: Zendesk has retired password access to the API.
        user.strip_suffix("/token")?;
        token.to_string()
    };
    sh.opts
        .tokens
        .iter()
        .find(|g| g.token.expose() == token)
        .cloned()
}

impl Shared {
    fn count(&self, method: &Method, path: &str) {
        let mut s = lock(&self.stats);
        *s.by_path.entry(format!("{method} {path}")).or_default() += 1;
    }

    fn count_token(&self, key: &str) {
        *lock(&self.stats).by_token.entry(key.into()).or_default() += 1;
    }

    /// Counts the request in the token's window: the rate headers to add,
    /// or the 429 to send.
    fn admit(&self, key: &str) -> Result<HeaderMap, Box<Response>> {
        match self.windows.count(key) {
            Count::Allowed { limit, remaining } => {
                let reset = self.reset_after(key, limit, remaining);
                Ok(rate_headers(limit, remaining, reset))
            }
            Count::Limited { limit, retry_after } => {
                lock(&self.stats).rate_limited += 1;
                let secs = retry_after.as_secs();
                let mut h = rate_headers(limit, 0, secs);
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                let body = json!({
                    "error": "APIRateLimitExceeded",
                    "description": format!("Number of allowed API requests per minute exceeded. Try again in {secs} seconds."),
                });
                Err(Box::new(
                    (StatusCode::TOO_MANY_REQUESTS, h, axum::Json(body)).into_response(),
                ))
            }
        }
    }

    /// Seconds until the token's window reopens. A window opens with the
    /// request that leaves `limit - 1` remaining.
    fn reset_after(&self, key: &str, limit: u32, remaining: u32) -> u64 {
        let now = Instant::now();
        let mut starts = lock(&self.window_starts);
        if remaining + 1 >= limit {
            starts.insert(key.to_string(), now);
        }
        let start = starts.get(key).copied().unwrap_or(now);
        let left = self.opts.window.saturating_sub(now.duration_since(start));
        (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
    }
}

/// Zendesk's classic headers and the IETF-draft ones it also sends.
fn rate_headers(limit: u32, remaining: u32, reset: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    let pairs = [
        ("x-rate-limit", u64::from(limit)),
        ("x-rate-limit-remaining", u64::from(remaining)),
        ("ratelimit-limit", u64::from(limit)),
        ("ratelimit-remaining", u64::from(remaining)),
        ("ratelimit-reset", reset),
    ];
    for (name, v) in pairs {
        h.insert(HeaderName::from_static(name), HeaderValue::from(v));
    }
    h
}

fn route(
    sh: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    grant: &TokenGrant,
    body: &Bytes,
) -> Response {
    let segs: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let query = parse_query(uri.query());
    let writes = matches!(*method, Method::POST | Method::PUT | Method::DELETE);
    if writes && !grant.can_write() {
        return ZdErr::forbidden().into_response();
    }
    let answer = match (method.clone(), segs.as_slice()) {
        (Method::GET, ["api", "v2", "tickets.json"]) => list_tickets(sh),
        (Method::POST, ["api", "v2", "tickets.json"]) => {
            return create_ticket(sh, headers, grant, body);
        }
        (Method::PUT, ["api", "v2", "tickets", "update_many.json"]) => {
            update_many(sh, &query, body)
        }
        (Method::GET, ["api", "v2", "tickets", file]) => json_id(file).and_then(|id| show(sh, id)),
        (Method::PUT, ["api", "v2", "tickets", file]) => {
            json_id(file).and_then(|id| update_ticket(sh, id, body))
        }
        (Method::GET, ["api", "v2", "tickets", id, "comments.json"]) => id
            .parse::<u64>()
            .map_err(|_| ZdErr::not_found())
            .and_then(|id| list_comments(sh, id)),
        (Method::GET, ["api", "v2", "job_statuses", file]) => match file.strip_suffix(".json") {
            Some(id) => job_status(sh, id),
            None => Err(ZdErr::not_found()),
        },
        (Method::GET, ["api", "v2", "incremental", "tickets", "cursor.json"]) => {
            incremental(sh, &query)
        }
        (Method::GET, ["api", "v2", "ticket_fields.json"]) => ticket_fields(sh),
        (Method::GET, ["api", "v2", "custom_statuses.json"]) => custom_statuses(sh),
        (Method::GET, ["api", "v2", "groups.json"]) => groups(sh),
        (Method::GET, ["api", "v2", "users", "me.json"]) => ok(json!({"user": agent_json()})),
        _ => Err(ZdErr {
            status: StatusCode::NOT_FOUND,
            body: json!({"error": "InvalidEndpoint", "description": "Not found"}),
        }),
    };
    match answer {
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (!k.is_empty()).then(|| (k.to_string(), percent_decode(v)))
        })
        .collect()
}

/// Enough of percent-decoding for ids and cursors (`%2C`, `%3D`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `35436.json` -> 35436.
fn json_id(file: &str) -> Result<u64, ZdErr> {
    file.strip_suffix(".json")
        .and_then(|id| id.parse().ok())
        .ok_or_else(ZdErr::not_found)
}

// ---------------------------------------------------------------- JSON views

fn ticket_json(db: &Db, t: &Ticket, opts: &ZendeskOptions) -> Value {
    let mut fields: BTreeMap<u64, Value> = db.fields.iter().map(|f| (f.id, Value::Null)).collect();
    fields.extend(t.fields.iter().map(|(k, v)| (*k, v.clone())));
    let custom: Vec<Value> = fields
        .into_iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect();
    json!({
        "id": t.id,
        "url": format!("https://{}.zendesk.com/api/v2/tickets/{}.json", opts.subdomain, t.id),
        "subject": t.subject,
        "raw_subject": t.subject,
        "description": t.description,
        "status": t.status,
        "custom_status_id": t.custom_status_id,
        "priority": t.priority,
        "type": t.kind,
        "group_id": t.group_id,
        "assignee_id": t.assignee_id,
        "requester_id": t.requester_id,
        "submitter_id": t.requester_id,
        "organization_id": null,
        "tags": t.tags,
        "custom_fields": custom.clone(),
        "fields": custom,
        "is_public": true,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
        "generated_timestamp": t.updated_at,
        "via": {"channel": "api"},
    })
}

fn comment_json(c: &CommentRec) -> Value {
    json!({
        "id": c.id,
        "type": "Comment",
        "author_id": c.author_id,
        "body": c.body,
        "html_body": format!("<p>{}</p>", c.body),
        "plain_body": c.body,
        "public": c.public,
        "attachments": [],
        "created_at": rfc3339(c.created_at),
    })
}

fn agent_json() -> Value {
    json!({"id": AGENT_ID, "name": "l3map AI agent", "role": "agent", "email": "ai-agent@l3map.invalid"})
}

fn list(name: &str, items: Vec<Value>) -> Value {
    json!({name: items.clone(), "next_page": null, "previous_page": null, "count": items.len()})
}

// ---------------------------------------------------------------- handlers

fn list_tickets(sh: &Shared) -> Answer {
    let db = lock(&sh.db);
    let items = db
        .tickets
        .values()
        .map(|t| ticket_json(&db, t, &sh.opts))
        .collect();
    ok(list("tickets", items))
}

fn show(sh: &Shared, id: u64) -> Answer {
    let db = lock(&sh.db);
    let t = db.tickets.get(&id).ok_or_else(ZdErr::not_found)?;
    ok(json!({"ticket": ticket_json(&db, t, &sh.opts)}))
}

fn list_comments(sh: &Shared, id: u64) -> Answer {
    let db = lock(&sh.db);
    let t = db.tickets.get(&id).ok_or_else(ZdErr::not_found)?;
    ok(list(
        "comments",
        t.comments.iter().map(comment_json).collect(),
    ))
}

fn ticket_fields(sh: &Shared) -> Answer {
    let db = lock(&sh.db);
    let items = db.fields.iter().map(field_json).collect();
    ok(list("ticket_fields", items))
}

fn field_json(f: &SeedField) -> Value {
    let options: Vec<Value> = match &f.kind {
        FieldKind::Tagger(vs) => vs
            .iter()
            .enumerate()
            .map(
                |(i, v)| json!({"id": f.id.wrapping_mul(100).wrapping_add(i as u64), "name": v, "raw_name": v, "value": v}),
            )
            .collect(),
        _ => vec![],
    };
    let mut v = json!({
        "id": f.id,
        "type": f.kind.zendesk_type(),
        "title": f.title,
        "raw_title": f.title,
        "active": true,
        "required": false,
        "removable": true,
    });
    if let (Some(obj), false) = (v.as_object_mut(), options.is_empty()) {
        obj.insert("custom_field_options".into(), Value::Array(options));
    }
    v
}

fn custom_statuses(sh: &Shared) -> Answer {
    let db = lock(&sh.db);
    let mut seen = BTreeSet::new();
    let items: Vec<Value> = db
        .statuses
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "status_category": s.category,
                "agent_label": s.label,
                "end_user_label": s.label,
                "description": s.name,
                "active": true,
                // The first of each category is its default, as in Zendesk.
                "default": seen.insert(s.category.clone()),
            })
        })
        .collect();
    ok(json!({"custom_statuses": items}))
}

fn groups(sh: &Shared) -> Answer {
    let db = lock(&sh.db);
    let items = db
        .groups
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name, "default": false, "deleted": false, "is_public": true, "description": ""}))
        .collect();
    ok(list("groups", items))
}

fn job_status(sh: &Shared, id: &str) -> Answer {
    let mut db = lock(&sh.db);
    let job = db.jobs.get_mut(id).ok_or_else(ZdErr::not_found)?;
    let view = if job.polls_left > 0 {
        job.polls_left -= 1;
        job_json(&sh.opts, id, job, "working")
    } else {
        job_json(&sh.opts, id, job, "completed")
    };
    ok(json!({"job_status": view}))
}

fn job_json(opts: &ZendeskOptions, id: &str, job: &Job, status: &str) -> Value {
    let done = status == "completed";
    json!({
        "id": id,
        "url": format!("https://{}.zendesk.com/api/v2/job_statuses/{id}.json", opts.subdomain),
        "job_type": "ThirdPartyTicketUpdate",
        "total": job.total,
        "progress": if done { job.total } else { job.total / 2 },
        "status": status,
        "message": if done { Value::from("Completed at now") } else { Value::Null },
        "results": if done { Value::Array(job.results.clone()) } else { Value::Null },
    })
}

// ---------------------------------------------------------------- writes

/// What a request asked to change, validated against the seed.
#[derive(Debug, Default, Clone)]
struct Changes {
    subject: Option<String>,
    status: Option<String>,
    custom_status_id: Option<u64>,
    priority: Option<String>,
    kind: Option<String>,
    group_id: Option<Option<u64>>,
    tags: Option<Vec<String>>,
    additional_tags: Vec<String>,
    remove_tags: Vec<String>,
    fields: Vec<(u64, Value)>,
    comment: Option<(String, bool)>,
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, ZdErr> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => Err(ZdErr::bad_json()),
    }
}

fn ticket_object(m: &Map<String, Value>) -> Result<&Map<String, Value>, ZdErr> {
    m.get("ticket").and_then(Value::as_object).ok_or_else(|| {
        ZdErr::bad_request(
            "InvalidParameter",
            "Parameter ticket is required and must be an object",
        )
    })
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(String::from))
        .collect()
}

/// Reads and validates the ticket attributes Zendesk would; unknown
/// attributes are ignored, as Zendesk ignores them.
fn read_changes(db: &Db, t: &Map<String, Value>) -> Result<Changes, ZdErr> {
    let mut p = Problems::default();
    let mut c = Changes {
        subject: t.get("subject").and_then(Value::as_str).map(String::from),
        ..Changes::default()
    };
    read_status(db, t, &mut c, &mut p);
    read_enum(
        t,
        "priority",
        &["low", "normal", "high", "urgent"],
        &mut c.priority,
        &mut p,
    );
    read_enum(
        t,
        "type",
        &["question", "incident", "problem", "task"],
        &mut c.kind,
        &mut p,
    );
    read_group(db, t, &mut c, &mut p);
    for (key, slot) in [
        ("tags", None),
        ("additional_tags", Some(0)),
        ("remove_tags", Some(1)),
    ] {
        let Some(v) = t.get(key) else { continue };
        match (str_list(v), slot) {
            (Some(list), None) => c.tags = Some(list),
            (Some(list), Some(0)) => c.additional_tags = list,
            (Some(list), Some(_)) => c.remove_tags = list,
            (None, _) => p.attr(key, format!("{key}: must be a list of strings")),
        }
    }
    let fields = t.get("custom_fields").or_else(|| t.get("fields"));
    if let Some(v) = fields {
        c.fields = read_fields(db, v, &mut p);
    }
    c.comment = read_comment(t, &mut p);
    p.finish()?;
    Ok(c)
}

fn read_enum(
    t: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
    slot: &mut Option<String>,
    p: &mut Problems,
) {
    match t.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => *slot = Some(s.clone()),
        Some(v) => p.attr(key, format!("{key}: {v} is not valid")),
    }
}

/// `custom_status_id` wins and sets the category; `status` alone takes
/// the category's default custom status, as in Zendesk.
fn read_status(db: &Db, t: &Map<String, Value>, c: &mut Changes, p: &mut Problems) {
    let status = t.get("status").filter(|v| !v.is_null());
    let status = match status {
        None => None,
        Some(Value::String(s)) if CATEGORIES.contains(&s.as_str()) || s == "closed" => {
            Some(s.clone())
        }
        Some(v) => {
            p.attr("status", format!("Status: {v} is not valid"));
            return;
        }
    };
    match t.get("custom_status_id").filter(|v| !v.is_null()) {
        None => {
            if let Some(s) = status {
                c.custom_status_id = db.default_status(&s).map(|d| d.id);
                c.status = Some(s);
            }
        }
        Some(v) => {
            let found = as_id(v).and_then(|id| db.statuses.iter().find(|s| s.id == id));
            match found {
                None => p.attr(
                    "custom_status_id",
                    format!("Custom status: {v} is not a custom status of this account"),
                ),
                Some(s)
                    if status
                        .as_deref()
                        .is_some_and(|st| st != s.category && st != "closed") =>
                {
                    p.attr(
                        "custom_status_id",
                        format!(
                            "Custom status: {} belongs to {}, not {}",
                            s.id,
                            s.category,
                            status.unwrap_or_default()
                        ),
                    )
                }
                Some(s) => {
                    c.custom_status_id = Some(s.id);
                    c.status = Some(status.unwrap_or_else(|| s.category.clone()));
                }
            }
        }
    }
}

fn read_group(db: &Db, t: &Map<String, Value>, c: &mut Changes, p: &mut Problems) {
    match t.get("group_id") {
        None => {}
        Some(Value::Null) => c.group_id = Some(None),
        Some(v) => match as_id(v).filter(|id| db.groups.iter().any(|(g, _)| g == id)) {
            Some(id) => c.group_id = Some(Some(id)),
            None => p.attr(
                "group_id",
                format!("Group: {v} is not a group of this account"),
            ),
        },
    }
}

fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn read_fields(db: &Db, v: &Value, p: &mut Problems) -> Vec<(u64, Value)> {
    let Some(items) = v.as_array() else {
        p.attr(
            "custom_fields",
            "Custom fields: must be a list of {id, value}".into(),
        );
        return vec![];
    };
    let mut out = Vec::new();
    for item in items {
        let id_value = item.get("id").cloned().unwrap_or(Value::Null);
        let Some(id) = as_id(&id_value) else {
            p.field(
                id_value,
                "Custom field: id is missing or not a number".into(),
            );
            continue;
        };
        let value = item.get("value").cloned().unwrap_or(Value::Null);
        match db.fields.iter().find(|f| f.id == id) {
            None => p.field(json!(id), format!("Ticket field {id} does not exist")),
            Some(f) => match check_value(f, &value) {
                Ok(v) => out.push((id, v)),
                Err(why) => p.field(json!(id), format!("{}: {why}", f.title)),
            },
        }
    }
    out
}

/// The value as Zendesk stores it, or why it is refused.
fn check_value(f: &SeedField, v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    match (&f.kind, v) {
        (FieldKind::Tagger(opts), Value::String(s)) if opts.contains(s) => Ok(v.clone()),
        (FieldKind::Tagger(_), _) => Err(format!("{v} is not one of the field's options")),
        (FieldKind::Checkbox, Value::Bool(_)) => Ok(v.clone()),
        (FieldKind::Decimal, Value::Number(_)) => Ok(v.clone()),
        (FieldKind::Decimal, Value::String(s)) if s.trim().parse::<f64>().is_ok() => Ok(v.clone()),
        (FieldKind::Date, Value::String(s)) if s.parse::<jiff::civil::Date>().is_ok() => {
            Ok(v.clone())
        }
        (FieldKind::Text, Value::String(_) | Value::Number(_) | Value::Bool(_)) => Ok(v.clone()),
        (kind, _) => Err(format!("{v} is not a valid {} value", kind.zendesk_type())),
    }
}

fn read_comment(t: &Map<String, Value>, p: &mut Problems) -> Option<(String, bool)> {
    let c = t.get("comment")?;
    let (body, public) = match c {
        Value::String(s) => (Some(s.clone()), true),
        Value::Object(o) => (
            o.get("body")
                .or_else(|| o.get("html_body"))
                .and_then(Value::as_str)
                .map(String::from),
            o.get("public").and_then(Value::as_bool).unwrap_or(true),
        ),
        _ => (None, true),
    };
    match body.filter(|b| !b.trim().is_empty()) {
        Some(b) => Some((b, public)),
        None => {
            p.attr("comment", "Comment: body cannot be blank".into());
            None
        }
    }
}

/// Applies validated changes; the events a webhook subscriber would get.
fn apply(db: &mut Db, id: u64, c: &Changes, author: u64) -> Vec<(String, Value)> {
    db.seq += 1;
    let seq = db.seq;
    let comment_id = db.next_comment;
    let Some(t) = db.tickets.get_mut(&id) else {
        return vec![];
    };
    let before = t.clone();
    let now = now_secs();
    if let Some(s) = &c.subject {
        t.subject.clone_from(s);
    }
    if let Some(s) = &c.status {
        t.status.clone_from(s);
    }
    if let Some(cs) = c.custom_status_id {
        t.custom_status_id = cs;
    }
    if c.priority.is_some() {
        t.priority.clone_from(&c.priority);
    }
    if c.kind.is_some() {
        t.kind.clone_from(&c.kind);
    }
    if let Some(g) = c.group_id {
        t.group_id = g;
    }
    apply_tags(t, c);
    for (fid, v) in &c.fields {
        t.fields.insert(*fid, v.clone());
    }
    let mut events = Vec::new();
    if let Some((body, public)) = &c.comment {
        t.comments.push(CommentRec {
            id: comment_id,
            author_id: author,
            body: body.clone(),
            public: *public,
            created_at: now,
        });
        events.push(("comment_added".to_string(), json!({"comment": {
            "id": comment_id.to_string(), "body": body, "is_public": public,
            "author": {"id": author.to_string(), "is_staff": author == AGENT_ID, "name": "l3map AI agent"}
        }})));
    }
    t.updated_at = now;
    t.seq = seq;
    events.extend(change_events(&before, t));
    if c.comment.is_some() {
        db.next_comment += 1;
    }
    events
}

fn apply_tags(t: &mut Ticket, c: &Changes) {
    if let Some(tags) = &c.tags {
        t.tags.clone_from(tags);
    }
    for tag in &c.additional_tags {
        if !t.tags.contains(tag) {
            t.tags.push(tag.clone());
        }
    }
    t.tags.retain(|x| !c.remove_tags.contains(x));
}

fn change_events(before: &Ticket, after: &Ticket) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut changed = |name: &str, prev: Value, cur: Value| {
        if prev != cur {
            out.push((name.to_string(), json!({"previous": prev, "current": cur})));
        }
    };
    changed(
        "status_changed",
        json!(before.status.to_uppercase()),
        json!(after.status.to_uppercase()),
    );
    changed(
        "custom_status_changed",
        json!(before.custom_status_id.to_string()),
        json!(after.custom_status_id.to_string()),
    );
    changed(
        "group_assignment_changed",
        json!(before.group_id.map(|g| g.to_string())),
        json!(after.group_id.map(|g| g.to_string())),
    );
    changed("tags_changed", json!(before.tags), json!(after.tags));
    for (id, v) in &after.fields {
        let prev = before.fields.get(id).cloned().unwrap_or(Value::Null);
        if prev != *v {
            out.push((
                "custom_field_changed".to_string(),
                json!({"previous": prev, "current": v, "field": {"id": id.to_string()}}),
            ));
        }
    }
    out
}

fn update_ticket(sh: &Shared, id: u64, body: &Bytes) -> Answer {
    let m = parse_body(body)?;
    let t = ticket_object(&m)?;
    let (view, events) = {
        let mut db = lock(&sh.db);
        if !db.tickets.contains_key(&id) {
            return Err(ZdErr::not_found());
        }
        let changes = read_changes(&db, t)?;
        let events = apply(&mut db, id, &changes, AGENT_ID);
        let view = db.tickets.get(&id).map(|t| ticket_json(&db, t, &sh.opts));
        (view, events)
    };
    sh.publish(id, events);
    ok(json!({"ticket": view, "audit": {"ticket_id": id, "author_id": AGENT_ID}}))
}

fn create_ticket(sh: &Shared, headers: &HeaderMap, grant: &TokenGrant, body: &Bytes) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let parsed = match parse_body(body) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let mut db = lock(&sh.db);
    let remembered = key.as_ref().map(|k| (grant.token.fingerprint(), k.clone()));
    if let Some(r) = remembered.as_ref().and_then(|rk| db.idempotency.get(rk)) {
        if r.at.elapsed() < IDEMPOTENCY_TTL {
            if r.body != Value::Object(parsed.clone()) {
                return ZdErr::bad_request(
                    "IdempotentRequestError",
                    "Request parameters don't match those of the original request with this Idempotency-Key",
                )
                .into_response();
            }
            let mut resp = (r.status, axum::Json(r.response.clone())).into_response();
            resp.headers_mut()
                .insert("x-idempotency-lookup", HeaderValue::from_static("hit"));
            return resp;
        }
    }
    let created = create_in(&mut db, sh, &parsed);
    let (id, view, events) = match created {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let response = json!({"ticket": view});
    if let Some(rk) = remembered.clone() {
        db.idempotency.insert(
            rk,
            Remembered {
                body: Value::Object(parsed),
                status: StatusCode::CREATED,
                response: response.clone(),
                at: Instant::now(),
            },
        );
    }
    drop(db);
    sh.publish(id, events);
    let mut resp = (StatusCode::CREATED, axum::Json(response)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v2/tickets/{id}.json")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    if remembered.is_some() {
        resp.headers_mut()
            .insert("x-idempotency-lookup", HeaderValue::from_static("miss"));
    }
    resp
}

type Created = (u64, Value, Vec<(String, Value)>);

fn create_in(db: &mut Db, sh: &Shared, m: &Map<String, Value>) -> Result<Created, ZdErr> {
    let t = ticket_object(m)?;
    let mut c = read_changes(db, t)?;
    let description = c.comment.clone().or_else(|| {
        t.get("description")
            .and_then(Value::as_str)
            .map(|d| (d.to_string(), true))
    });
    let Some(description) = description else {
        let mut p = Problems::default();
        p.attr("description", "Description: cannot be blank".into());
        return Err(ZdErr::invalid(p.0));
    };
    c.comment = Some(description.clone());
    let status = c.status.clone().unwrap_or_else(|| "new".into());
    let custom = c
        .custom_status_id
        .or_else(|| db.default_status(&status).map(|s| s.id))
        .unwrap_or(0);
    let id = db.next_ticket;
    db.next_ticket += 1;
    let now = now_secs();
    let requester = t
        .get("requester_id")
        .and_then(as_id)
        .unwrap_or(REQUESTER_ID);
    db.tickets.insert(
        id,
        Ticket {
            id,
            subject: c
                .subject
                .clone()
                .unwrap_or_else(|| description.0.chars().take(80).collect()),
            description: description.0.clone(),
            status,
            custom_status_id: custom,
            priority: c.priority.clone(),
            kind: c.kind.clone(),
            group_id: None,
            assignee_id: None,
            requester_id: requester,
            tags: vec![],
            fields: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            seq: 0,
            comments: vec![],
        },
    );
    // The creation is one change: its events collapse into `created`.
    apply(db, id, &c, requester);
    let view = db
        .tickets
        .get(&id)
        .map(|t| ticket_json(db, t, &sh.opts))
        .unwrap_or(Value::Null);
    Ok((id, view, vec![("created".into(), json!({}))]))
}

fn update_many(sh: &Shared, query: &HashMap<String, String>, body: &Bytes) -> Answer {
    let ids: Vec<u64> = match query.get("ids") {
        Some(s) => s
            .split(',')
            .map(|x| x.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                ZdErr::bad_request(
                    "InvalidParameter",
                    "ids must be a comma-separated list of ticket ids",
                )
            })?,
        None => return Err(ZdErr::bad_request("InvalidParameter", "ids is required")),
    };
    if ids.is_empty() || ids.len() > MAX_BULK_IDS {
        return Err(ZdErr::bad_request(
            "InvalidParameter",
            format!("ids must list 1 to {MAX_BULK_IDS} tickets"),
        ));
    }
    let m = parse_body(body)?;
    let t = ticket_object(&m)?;
    let mut published = Vec::new();
    let job_id = {
        let mut db = lock(&sh.db);
        let changes = read_changes(&db, t)?;
        let mut results = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            if db.tickets.contains_key(id) {
                published.push((*id, apply(&mut db, *id, &changes, AGENT_ID)));
                results.push(json!({"index": index, "id": id, "action": "update", "success": true, "status": "Updated"}));
            } else {
                results.push(json!({"index": index, "id": id, "action": "update", "success": false, "status": "Failed", "error": "TicketNotFound", "details": "Ticket not found"}));
            }
        }
        let job_id = format!(
            "{:032x}",
            u128::from(db.next_job) << 64 | u128::from(fastrand::u64(..))
        );
        db.next_job += 1;
        db.jobs.insert(
            job_id.clone(),
            Job {
                total: ids.len(),
                polls_left: sh.opts.job_polls,
                results,
            },
        );
        job_id
    };
    for (id, events) in published {
        sh.publish(id, events);
    }
    let queued = Job {
        total: ids.len(),
        polls_left: 0,
        results: vec![],
    };
    let mut view = job_json(&sh.opts, &job_id, &queued, "queued");
    if let Some(o) = view.as_object_mut() {
        o.insert("progress".into(), Value::Null);
    }
    ok(json!({"job_status": view}))
}

// ---------------------------------------------------------------- export

fn encode_cursor(seq: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("l3map:{seq}"))
}

fn decode_cursor(c: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("l3map:")?
        .parse()
        .ok()
}

/// Tickets changed at or after `start_time`, or after `cursor`, oldest
/// change first; a ticket changed twice shows once, where it last changed.
fn incremental(sh: &Shared, q: &HashMap<String, String>) -> Answer {
    let (after_seq, since) = match (q.get("cursor"), q.get("start_time")) {
        (Some(c), _) => (
            decode_cursor(c).ok_or_else(|| {
                ZdErr::bad_request("InvalidPaginationParameter", "cursor is invalid")
            })?,
            i64::MIN,
        ),
        (None, Some(s)) => (
            0,
            s.parse::<i64>().map_err(|_| {
                ZdErr::bad_request(
                    "InvalidPaginationParameter",
                    "start_time must be a Unix epoch time",
                )
            })?,
        ),
        (None, None) => {
            return Err(ZdErr::bad_request(
                "InvalidPaginationParameter",
                "start_time or cursor is required",
            ));
        }
    };
    let page = q
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(sh.opts.export_page)
        .clamp(1, 1000);
    let db = lock(&sh.db);
    let mut changed: Vec<&Ticket> = db
        .tickets
        .values()
        .filter(|t| t.seq > after_seq && t.updated_at >= since)
        .collect();
    changed.sort_by_key(|t| t.seq);
    let end_of_stream = changed.len() <= page;
    changed.truncate(page);
    let last = changed.last().map_or(after_seq, |t| t.seq);
    let cursor = encode_cursor(last);
    let tickets: Vec<Value> = changed
        .iter()
        .map(|t| ticket_json(&db, t, &sh.opts))
        .collect();
    ok(json!({
        "tickets": tickets,
        "after_url": format!("https://{}.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor={cursor}", sh.opts.subdomain),
        "after_cursor": cursor,
        "before_url": null,
        "before_cursor": null,
        "end_of_stream": end_of_stream,
    }))
}

// ---------------------------------------------------------------- webhooks

impl Shared {
    /// Queues the events of one ticket change for delivery.
    fn publish(&self, ticket_id: u64, events: Vec<(String, Value)>) {
        let (Some(hooks), Some(target)) = (&self.hooks, &self.opts.webhook) else {
            return;
        };
        if let Some(rx) = lock(&hooks.rx).take() {
            tokio::spawn(deliver_all(rx, target.clone(), self.stats.clone()));
        }
        let detail = {
            let db = lock(&self.db);
            db.tickets.get(&ticket_id).map(webhook_detail)
        };
        let Some(detail) = detail else { return };
        let total = events.len();
        let sequence = format!("{:032x}", fastrand::u128(..));
        for (i, (name, event)) in events.into_iter().enumerate() {
            let mut event = event;
            if let Some(o) = event.as_object_mut() {
                o.insert(
                    "meta".into(),
                    json!({"sequence": {"id": sequence, "position": i + 1, "total": total}}),
                );
            }
            let payload = json!({
                "type": format!("zen:event-type:ticket.{name}"),
                "account_id": self.opts.account_id,
                "id": format!("{:032x}", fastrand::u128(..)),
                "time": rfc3339(now_secs()),
                "zendesk_event_version": "2022-11-06",
                "subject": format!("zen:ticket:{ticket_id}"),
                "detail": detail,
                "event": event,
            });
            // The receiver is gone only when the emulator is: nothing to do.
            let _ = hooks.tx.send(payload);
        }
    }
}

/// The ticket as event subscriptions show it: ids as strings, enums upper case.
fn webhook_detail(t: &Ticket) -> Value {
    json!({
        "actor_id": AGENT_ID.to_string(),
        "assignee_id": t.assignee_id.map(|a| a.to_string()),
        "brand_id": "360000123",
        "created_at": rfc3339(t.created_at),
        "custom_status": t.custom_status_id.to_string(),
        "description": t.description,
        "external_id": null,
        "form_id": "360000456",
        "group_id": t.group_id.map(|g| g.to_string()),
        "id": t.id.to_string(),
        "is_public": true,
        "organization_id": null,
        "priority": t.priority.as_ref().map(|p| p.to_uppercase()),
        "requester_id": t.requester_id.to_string(),
        "status": t.status.to_uppercase(),
        "subject": t.subject,
        "submitter_id": t.requester_id.to_string(),
        "tags": t.tags,
        "type": t.kind.as_ref().map(|k| k.to_uppercase()),
        "updated_at": rfc3339(t.updated_at),
        "via": {"channel": "api"},
    })
}

/// Zendesk's scheme: base64(HMAC-SHA256(secret, timestamp + body)).
pub fn webhook_signature(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Delivers events one at a time, in order, each retried with doubling
/// waits; the outcome of each is recorded.
async fn deliver_all(
    mut rx: mpsc::UnboundedReceiver<Value>,
    target: WebhookTarget,
    stats: Arc<Mutex<Stats>>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client");
            return;
        }
    };
    while let Some(payload) = rx.recv().await {
        let delivery = deliver_one(&client, &target, &payload).await;
        lock(&stats).deliveries.push(delivery);
    }
}

async fn deliver_one(
    client: &reqwest::Client,
    target: &WebhookTarget,
    payload: &Value,
) -> Delivery {
    let body = payload.to_string();
    let mut delivery = Delivery {
        event_type: payload["type"].as_str().unwrap_or_default().to_string(),
        ticket_id: payload["detail"]["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        attempts: 0,
        status: None,
    };
    let mut wait = target.backoff;
    for attempt in 1..=target.attempts.max(1) {
        delivery.attempts = attempt;
        let timestamp = rfc3339(now_secs());
        let signature = webhook_signature(&target.secret, &timestamp, body.as_bytes());
        let sent = client
            .post(&target.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-zendesk-webhook-signature", signature)
            .header("x-zendesk-webhook-signature-timestamp", timestamp)
            .header("x-zendesk-webhook-id", "01L3MAPWEBHOOK")
            .body(body.clone())
            .send()
            .await;
        if let Ok(r) = &sent {
            delivery.status = Some(r.status().as_u16());
            if r.status().is_success() {
                return delivery;
            }
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
    delivery
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_seed_follows_the_mappings() {
        let seed = Seed::embedded();
        let sla = seed.fields.iter().find(|f| f.id == 360001234);
        assert_eq!(
            sla.map(|f| &f.kind),
            Some(&FieldKind::Tagger(vec![
                "enterprise".into(),
                "premium".into(),
                "standard".into()
            ]))
        );
        assert!(seed.fields.iter().any(|f| f.id == 900000104));
        for g in [
            "Payments Tier 2",
            "Fraud Operations",
            "Compliance",
            "Returns & Replacements",
            "Japan Team",
            "Regional Support",
        ] {
            assert!(seed.groups.iter().any(|x| x == g), "{g}");
        }
        assert!(seed
            .statuses
            .iter()
            .any(|s| s.name == "pending_risk_review" && s.category == "pending"));
        for cat in CATEGORIES {
            assert!(seed.statuses.iter().any(|s| s.category == cat), "{cat}");
        }
        let ids: BTreeSet<u64> = seed.statuses.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), seed.statuses.len(), "status ids are unique");
        assert!(!seed.tickets.is_empty());
        assert_eq!(Seed::fallback().groups.len(), 6);
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor(""), None);
        assert_eq!(percent_decode("1%2C2+3%zz"), "1,2 3%zz");
    }

    #[test]
    fn signatures_match_zendesks_scheme() {
        // Known answer, computed independently (Python's hmac module):
        // base64(HMAC-SHA256("secret", "ts" + "body")).
        let s = webhook_signature(&Secret::new("secret"), "ts", b"body");
        assert_eq!(s, "S/61XcPfC9APW0fvpHj/hz9SrafsS/wAU+DoQbDS6mE=");
        assert_ne!(s, webhook_signature(&Secret::new("other"), "ts", b"body"));
    }
}
