//! Deterministic generator of a large, valid `.l3map` project for the
//! front-end benchmark (`benches/check.rs`).
//!
//! The project models a support organisation with many Zendesk desks, each
//! with its own status table, custom fields, CRM mappings, templates and
//! escalations, a handful of Salesforce orgs feeding them, and multi-script
//! SKU tables. Everything is meant to check with **zero** diagnostics
//! (errors and warnings) under `/work/notes/SEMANTICS.md`; the generator
//! re-checks the properties it can (status graph reachability, dead ends,
//! Zendesk reopen paths, duplicate transitions, SKU test vectors, alias /
//! regex overlaps) with `assert!`s so a generator bug fails loudly instead
//! of producing a corpus that benchmarks the error path.
//!
//! No `rand`: a seeded xorshift64* keeps the output byte-identical across
//! runs and machines.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use unicode_normalization::UnicodeNormalization as _;

// ------------------------------------------------------------------ PRNG

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// `k` distinct elements, in their original order.
    pub fn subset<T: Clone>(&mut self, xs: &[T], k: usize) -> Vec<T> {
        let k = k.min(xs.len());
        let mut idx: Vec<usize> = (0..xs.len()).collect();
        for i in 0..k {
            let j = i + self.below(xs.len() - i);
            idx.swap(i, j);
        }
        let mut chosen = idx[..k].to_vec();
        chosen.sort_unstable();
        chosen.into_iter().map(|i| xs[i].clone()).collect()
    }
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

// ------------------------------------------------------------------ params

#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub seed: u64,
    /// Zendesk desks (each with statuses, fields, maps, templates, escalations).
    pub desks: usize,
    /// Salesforce orgs; desks are spread over them round-robin.
    pub crms: usize,
    /// SKU tables.
    pub sku_tables: usize,
    /// Pattern (regex) rules per SKU table; every other rule is exact aliases.
    pub regexes_per_table: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            seed: 0x13_u64 << 40 | 0x5EED,
            desks: 200,
            crms: 20,
            sku_tables: 12,
            regexes_per_table: 6,
        }
    }
}

/// A generated project: `(path, text)` pairs, all in one directory.
pub type Project = Vec<(String, String)>;

pub fn size(project: &Project) -> (usize, usize) {
    let lines = project.iter().map(|(_, t)| t.lines().count()).sum();
    let bytes = project.iter().map(|(_, t)| t.len()).sum();
    (lines, bytes)
}

pub fn generate(p: Params) -> Project {
    assert!(p.desks >= 1 && p.crms >= 1 && p.crms <= p.desks);
    let mut rng = Rng::new(p.seed);
    let mut ids = IdGen(360_000_100);
    let mut out: Project = Vec::new();

    // Which CRM feeds which desk.
    let desk_crm: Vec<usize> = (0..p.desks).map(|d| d % p.crms).collect();
    let desks: Vec<Desk> = (0..p.desks)
        .map(|d| gen_desk(&mut rng, &mut ids, d, desk_crm[d]))
        .collect();

    // Connections: Zendesk desks, 25 per file; Salesforce orgs in one file.
    for (chunk_no, chunk) in desks.chunks(25).enumerate() {
        let mut s = String::new();
        writeln!(
            s,
            "// Zendesk desks, batch {}. Tokens are references only: the values live\n\
             // in the environment or in mounted secret files.\n",
            chunk_no + 1
        )
        .unwrap();
        for d in chunk {
            zendesk_connection(&mut s, &mut rng, d);
        }
        out.push((format!("connections_zendesk_{:02}.l3map", chunk_no + 1), s));
    }
    let mut s = String::from("// Salesforce orgs feeding the desks.\n\n");
    for c in 0..p.crms {
        salesforce_connection(&mut s, &mut rng, c);
    }
    out.push(("connections_salesforce.l3map".into(), s));

    // One file per CRM with its field declarations.
    for c in 0..p.crms {
        let served: Vec<&Desk> = desks.iter().filter(|d| d.crm == c).collect();
        let mut text = crm_fields(&mut rng, c, &served);
        text.push_str(&crm_links(c, &served[0].name));
        out.push((format!("crm_{:02}.l3map", c), text));
    }

    // One file per desk.
    for d in &desks {
        out.push((format!("desk_{:03}.l3map", d.no), desk_file(&mut rng, d)));
    }

    // SKU tables.
    for t in 0..p.sku_tables {
        let (name, text) = sku_table(&mut rng, t, p.regexes_per_table);
        out.push((format!("sku_{name}.l3map"), text));
    }
    out
}

struct IdGen(u64);
impl IdGen {
    fn next(&mut self) -> u64 {
        self.0 += 1 + (self.0 % 7);
        self.0
    }
}

// ------------------------------------------------------------------ types

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    Str,
    Num,
    Bool,
    Date,
    Money(&'static str),
    Enum(&'static [&'static str]),
}

impl Ty {
    fn render(self) -> String {
        match self {
            Ty::Str => "string".into(),
            Ty::Num => "number".into(),
            Ty::Bool => "bool".into(),
            Ty::Date => "date".into(),
            Ty::Money(c) => format!("money({c})"),
            Ty::Enum(vs) => format!("enum({})", vs.join(", ")),
        }
    }
}

/// A Zendesk custom ticket field kind. A given alias has the same type on
/// every desk (so `ticket.<alias>` means the same thing everywhere).
struct FieldKind {
    alias: &'static str,
    ty: Ty,
    label: &'static str,
    common: bool,
}

const FIELD_KINDS: &[FieldKind] = &[
    // present on every desk (escalations and templates use them)
    FieldKind {
        alias: "sla_tier",
        ty: Ty::Enum(&["enterprise", "premium", "standard"]),
        label: "SLA tier",
        common: true,
    },
    FieldKind {
        alias: "contract_value",
        ty: Ty::Money("USD"),
        label: "Annual contract value",
        common: true,
    },
    FieldKind {
        alias: "risk_score",
        ty: Ty::Num,
        label: "Risk score (0-100)",
        common: true,
    },
    FieldKind {
        alias: "risk_decision",
        ty: Ty::Enum(&["pending", "cleared", "escalate"]),
        label: "Risk team decision",
        common: true,
    },
    FieldKind {
        alias: "dispute_type",
        ty: Ty::Enum(&[
            "no_dispute",
            "chargeback",
            "retrieval_request",
            "fraud_claim",
        ]),
        label: "Dispute type",
        common: true,
    },
    FieldKind {
        alias: "refund_issued",
        ty: Ty::Bool,
        label: "Refund issued",
        common: true,
    },
    FieldKind {
        alias: "renewal_date",
        ty: Ty::Date,
        label: "Contract renewal",
        common: true,
    },
    FieldKind {
        alias: "handoff_reason",
        ty: Ty::Str,
        label: "AI hand-off reason",
        common: true,
    },
    FieldKind {
        alias: "plan_tier",
        ty: Ty::Enum(&["free", "starter", "pro", "business", "enterprise"]),
        label: "Subscription plan",
        common: true,
    },
    FieldKind {
        alias: "preferred_language",
        ty: Ty::Enum(&["en", "ja", "th", "ms", "vi", "de", "fr", "es"]),
        label: "Preferred language",
        common: true,
    },
    FieldKind {
        alias: "escalation_count",
        ty: Ty::Num,
        label: "Times escalated",
        common: true,
    },
    // optional: each desk picks some
    FieldKind {
        alias: "region",
        ty: Ty::Enum(&["amer", "emea", "apac", "latam"]),
        label: "Region",
        common: false,
    },
    FieldKind {
        alias: "product_line",
        ty: Ty::Enum(&[
            "phones",
            "tablets",
            "laptops",
            "wearables",
            "accessories",
            "services",
        ]),
        label: "Product line",
        common: false,
    },
    FieldKind {
        alias: "order_value",
        ty: Ty::Money("USD"),
        label: "Order value",
        common: false,
    },
    FieldKind {
        alias: "local_amount",
        ty: Ty::Money("JPY"),
        label: "Amount in yen",
        common: false,
    },
    FieldKind {
        alias: "order_ref",
        ty: Ty::Str,
        label: "Order reference",
        common: false,
    },
    FieldKind {
        alias: "shipping_carrier",
        ty: Ty::Enum(&["dhl", "fedex", "ups", "kerry", "yamato", "jnt"]),
        label: "Carrier",
        common: false,
    },
    FieldKind {
        alias: "warranty_expires",
        ty: Ty::Date,
        label: "Warranty end",
        common: false,
    },
    FieldKind {
        alias: "churn_risk",
        ty: Ty::Num,
        label: "Churn risk",
        common: false,
    },
    FieldKind {
        alias: "is_vip",
        ty: Ty::Bool,
        label: "VIP customer",
        common: false,
    },
    FieldKind {
        alias: "nps_score",
        ty: Ty::Num,
        label: "Last NPS",
        common: false,
    },
    FieldKind {
        alias: "account_manager",
        ty: Ty::Str,
        label: "Account manager",
        common: false,
    },
    FieldKind {
        alias: "kyc_status",
        ty: Ty::Enum(&["not_started", "submitted", "verified", "rejected"]),
        label: "KYC status",
        common: false,
    },
    FieldKind {
        alias: "chargeback_amount",
        ty: Ty::Money("USD"),
        label: "Chargeback amount",
        common: false,
    },
    FieldKind {
        alias: "device_serial",
        ty: Ty::Str,
        label: "Device serial number",
        common: false,
    },
    FieldKind {
        alias: "return_reason",
        ty: Ty::Enum(&[
            "damaged",
            "wrong_item",
            "not_as_described",
            "changed_mind",
            "late_delivery",
        ]),
        label: "Return reason",
        common: false,
    },
    FieldKind {
        alias: "refund_method",
        ty: Ty::Enum(&["original_payment", "store_credit", "bank_transfer"]),
        label: "Refund method",
        common: false,
    },
    FieldKind {
        alias: "first_response_breached",
        ty: Ty::Bool,
        label: "First response SLA breached",
        common: false,
    },
    FieldKind {
        alias: "partner_ticket",
        ty: Ty::Str,
        label: "Partner ticket id",
        common: false,
    },
    FieldKind {
        alias: "units_affected",
        ty: Ty::Num,
        label: "Units affected",
        common: false,
    },
    FieldKind {
        alias: "billing_cycle",
        ty: Ty::Enum(&["monthly", "quarterly", "yearly"]),
        label: "Billing cycle",
        common: false,
    },
    FieldKind {
        alias: "outage_started",
        ty: Ty::Date,
        label: "Outage start",
        common: false,
    },
    FieldKind {
        alias: "invoice_total",
        ty: Ty::Money("EUR"),
        label: "Invoice total (EUR)",
        common: false,
    },
    FieldKind {
        alias: "store_code",
        ty: Ty::Str,
        label: "Store code",
        common: false,
    },
    FieldKind {
        alias: "contact_channel",
        ty: Ty::Enum(&["web", "email", "chat", "voice", "line", "whatsapp"]),
        label: "First contact channel",
        common: false,
    },
];

/// Salesforce field -> desk field (or standard ticket field) with its table.
struct SfMap {
    src: &'static str,
    src_ty: &'static str,
    /// desk alias or standard field (`priority`, `type`, `subject`)
    target: &'static str,
    arms: &'static [&'static str],
}

const SF_MAPS: &[SfMap] = &[
    SfMap {
        src: "Account.SLA_Tier__c",
        src_ty: r#"enum("Ent", "Prem", "Std", "Legacy")"#,
        target: "sla_tier",
        arms: &[
            r#""Ent"            => enterprise"#,
            r#""Prem"           => premium"#,
            r#""Std", "Legacy"  => standard"#,
        ],
    },
    SfMap {
        src: "Account.Contract_Value__c",
        src_ty: "money(USD)",
        target: "contract_value",
        arms: &[],
    },
    SfMap {
        src: "Account.Renewal_Date__c",
        src_ty: "date",
        target: "renewal_date",
        arms: &[],
    },
    SfMap {
        src: "Subscription__c.Plan__c",
        src_ty: r#"enum("Free", "Trial", "Starter", "Pro", "Business", "Enterprise")"#,
        target: "plan_tier",
        arms: &[
            r#""Free", "Trial"  => free"#,
            r#""Starter"        => starter"#,
            r#""Pro"            => pro"#,
            r#""Business"       => business"#,
            r#""Enterprise"     => enterprise"#,
        ],
    },
    SfMap {
        src: "Contact.Preferred_Language__c",
        src_ty: r#"enum("English", "Japanese", "Thai", "Malay", "Vietnamese", "German", "French", "Spanish", "Other")"#,
        target: "preferred_language",
        arms: &[
            r#""Japanese"   => ja"#,
            r#""Thai"       => th"#,
            r#""Malay"      => ms"#,
            r#""Vietnamese" => vi"#,
            r#""German"     => de"#,
            r#""French"     => fr"#,
            r#""Spanish"    => es"#,
            r#"_            => en"#,
        ],
    },
    SfMap {
        src: "Case.Priority__c",
        src_ty: r#"enum("P1", "P2", "P3", "P4")"#,
        target: "priority",
        arms: &[
            r#""P1" => urgent"#,
            r#""P2" => high"#,
            r#""P3" => normal"#,
            r#""P4" => low"#,
        ],
    },
    SfMap {
        src: "Case.Type__c",
        src_ty: r#"enum("Problem", "Incident", "Question", "Task", "Feature Request")"#,
        target: "type",
        arms: &[
            r#""Problem"                      => problem"#,
            r#""Incident"                     => incident"#,
            r#""Question", "Feature Request" => question"#,
            r#""Task"                         => task"#,
        ],
    },
    SfMap {
        src: "Case.Subject",
        src_ty: "string",
        target: "subject",
        arms: &[],
    },
    SfMap {
        src: "Account.Region__c",
        src_ty: r#"enum("AMER", "EMEA", "APAC", "LATAM")"#,
        target: "region",
        arms: &[
            r#""AMER" => amer"#,
            r#""EMEA" => emea"#,
            r#""APAC" => apac"#,
            r#""LATAM" => latam"#,
        ],
    },
    SfMap {
        src: "Account.Is_VIP__c",
        src_ty: "bool",
        target: "is_vip",
        arms: &[],
    },
    SfMap {
        src: "Account.Churn_Risk__c",
        src_ty: "number",
        target: "churn_risk",
        arms: &[],
    },
    SfMap {
        src: "Contact.Last_NPS__c",
        src_ty: "number",
        target: "nps_score",
        arms: &[],
    },
    SfMap {
        src: "Account.Owner_Name__c",
        src_ty: "string",
        target: "account_manager",
        arms: &[],
    },
    SfMap {
        src: "Contact.KYC_Status__c",
        src_ty: r#"enum("Not Started", "Submitted", "In Review", "Verified", "Rejected")"#,
        target: "kyc_status",
        arms: &[
            r#""Not Started"            => not_started"#,
            r#""Submitted", "In Review" => submitted"#,
            r#""Verified"               => verified"#,
            r#""Rejected"               => rejected"#,
        ],
    },
    SfMap {
        src: "Subscription__c.Billing_Cycle__c",
        src_ty: r#"enum("Monthly", "Quarterly", "Annual", "Multi-year")"#,
        target: "billing_cycle",
        arms: &[
            r#""Monthly"   => monthly"#,
            r#""Quarterly" => quarterly"#,
            r#"_           => yearly"#,
        ],
    },
];

// ------------------------------------------------------------------ desks

#[derive(Clone)]
struct Status {
    name: String,
    cat: &'static str,
    label: String,
    terminal: bool,
    initial: bool,
    id: Option<u64>,
}

struct Transition {
    from: Option<Vec<String>>, // None = `*`
    to: Vec<String>,
    cond: Option<String>,
    comment: Option<&'static str>,
}

struct Desk {
    no: usize,
    name: String,
    crm: usize,
    crm_name: String,
    fields: Vec<(&'static FieldKind, u64)>,
    statuses: Vec<Status>,
    transitions: Vec<Transition>,
    /// Distinct product of a brand, for flavour text.
    brand: &'static str,
}

impl Desk {
    fn has(&self, alias: &str) -> bool {
        self.fields.iter().any(|(k, _)| k.alias == alias)
    }
    fn prefix(&self) -> String {
        format!("d{:03}", self.no)
    }
    fn status_of(&self, cat: &str) -> Vec<&Status> {
        self.statuses
            .iter()
            .filter(|s| s.cat == cat && !s.terminal)
            .collect()
    }
}

const BRANDS: &[&str] = &[
    "Acme Fintech",
    "ShopSEA",
    "Kumo Telecom",
    "Nordlicht Energy",
    "Sabai Travel",
    "Pixelforge",
    "Hanami Foods",
    "Tidewater Bank",
    "Orbit Mobility",
    "Lumen Health",
    "Bangkok Bikes",
    "Yokohama Rail",
];

const OPEN_POOL: &[(&str, &str)] = &[
    ("escalated_tier2", "With tier 2"),
    ("escalated_tier3", "With tier 3"),
    ("with_engineering", "With engineering"),
    ("with_billing", "With billing"),
    ("with_logistics", "With logistics"),
    ("in_review", "Under review"),
    ("investigating", "Investigating"),
    ("with_risk_team", "With the risk team"),
    ("with_account_manager", "With the account manager"),
    ("reopened", "Reopened by the customer"),
    ("qa_check", "Quality check"),
    ("with_partner_desk", "With the partner desk"),
];
const PENDING_POOL: &[(&str, &str)] = &[
    ("pending_customer", "Waiting on the customer"),
    ("pending_kyc_documents", "Waiting for KYC documents"),
    ("pending_payment", "Waiting for payment"),
    ("pending_return_shipment", "Waiting for the return parcel"),
    ("pending_photos", "Waiting for photos of the damage"),
    ("pending_proof_of_purchase", "Waiting for a receipt"),
    (
        "pending_confirmation",
        "Waiting for the customer to confirm",
    ),
    ("pending_address_check", "Waiting for address verification"),
    ("pending_risk_review", "Held for the risk team"),
    (
        "pending_chargeback",
        "Chargeback filed with the card scheme",
    ),
    ("pending_refund_approval", "Refund awaiting approval"),
    ("pending_feedback", "Waiting for feedback"),
    ("pending_device_logs", "Waiting for device logs"),
    ("pending_callback", "Callback scheduled"),
];
const HOLD_POOL: &[(&str, &str)] = &[
    ("awaiting_regulator", "Waiting on the regulator"),
    ("awaiting_bank_partner", "Waiting on the partner bank"),
    ("awaiting_carrier", "Waiting on the carrier"),
    ("awaiting_warehouse", "Waiting on the warehouse"),
    ("awaiting_vendor_rma", "Waiting for the vendor RMA"),
    ("awaiting_engineering_fix", "Waiting for a fix"),
    ("awaiting_parts", "Waiting for spare parts"),
    ("awaiting_legal", "With legal"),
    ("fraud_investigation", "Fraud team investigating"),
    ("awaiting_insurer", "Waiting on the insurer"),
    ("awaiting_field_visit", "Technician visit booked"),
    ("awaiting_supplier", "Waiting on the supplier"),
];
const SOLVED_POOL: &[(&str, &str)] = &[
    ("solved_refunded", "Solved with a refund"),
    ("solved_replaced", "Solved with a replacement"),
    ("solved_workaround", "Solved with a workaround"),
    ("solved_duplicate", "Duplicate of another ticket"),
    ("solved_no_response", "Solved: no response"),
    ("solved_store_credit", "Solved with store credit"),
    ("solved_self_service", "Solved by self-service"),
    ("solved_by_partner", "Solved by the partner"),
];
const TAGS: &[&str] = &[
    "kyc",
    "risk_flag",
    "regulator",
    "vip",
    "legal",
    "gdpr",
    "warranty",
    "rma",
    "damaged_in_transit",
    "press",
    "social_media",
    "bulk_order",
    "b2b",
    "outage",
    "security",
    "accessibility",
    "beta",
];

fn gen_desk(rng: &mut Rng, ids: &mut IdGen, no: usize, crm: usize) -> Desk {
    let name = format!("desk_{no:03}");
    // ---- fields
    let optional: Vec<&'static FieldKind> = FIELD_KINDS.iter().filter(|k| !k.common).collect();
    let n_opt = rng.range(10, optional.len());
    let mut kinds: Vec<&'static FieldKind> = FIELD_KINDS.iter().filter(|k| k.common).collect();
    kinds.extend(rng.subset(&optional, n_opt));
    let fields = kinds.into_iter().map(|k| (k, ids.next())).collect();

    // ---- statuses
    let mut statuses = vec![Status {
        name: "new".into(),
        cat: "new",
        label: "New".into(),
        terminal: false,
        initial: false,
        id: None,
    }];
    let triage = rng.chance(30);
    if triage {
        statuses.push(Status {
            name: "triage".into(),
            cat: "new",
            label: "Triage by the AI".into(),
            terminal: false,
            initial: false,
            id: None,
        });
    }
    statuses.push(st("open", "open", "Open"));
    statuses.push(st("in_progress", "open", "Agent working"));
    let imported = rng.chance(15);
    if imported {
        let mut s = st("imported", "open", "Imported from the legacy desk");
        s.initial = true;
        statuses.push(s);
    }
    let n_open = rng.range(3, 8);
    let n_pend = rng.range(5, 11);
    let n_hold = rng.range(3, 8);
    let n_solv = rng.range(3, 6);
    let opens = rng.subset(OPEN_POOL, n_open);
    let pends = rng.subset(PENDING_POOL, n_pend);
    let holds = rng.subset(HOLD_POOL, n_hold);
    let solvs = rng.subset(SOLVED_POOL, n_solv);
    for (n, l) in &opens {
        statuses.push(st(n, "open", l));
    }
    for (n, l) in &pends {
        statuses.push(st(n, "pending", l));
    }
    for (n, l) in &holds {
        statuses.push(st(n, "hold", l));
    }
    statuses.push(st("solved", "solved", "Solved"));
    for (n, l) in &solvs {
        statuses.push(st(n, "solved", l));
    }
    let mut closed = st("closed", "solved", "Closed");
    closed.terminal = true;
    statuses.push(closed);
    // Zendesk tells the statuses of one category apart by their custom
    // status id: the first of each category may go without (the category's
    // default), every other one has its id (l3map::status::indistinct).
    let mut seen: Vec<&'static str> = Vec::new();
    for s in statuses.iter_mut() {
        let coin = s.cat != "new" && rng.chance(40);
        let first = !seen.contains(&s.cat);
        seen.push(s.cat);
        if coin || !first {
            s.id = Some(ids.next());
        }
    }

    let mut desk = Desk {
        no,
        name,
        crm,
        crm_name: format!("crm_{crm:02}"),
        fields,
        statuses,
        transitions: Vec::new(),
        brand: BRANDS[no % BRANDS.len()],
    };

    // ---- transitions
    let opens: Vec<String> = opens.iter().map(|(n, _)| n.to_string()).collect();
    let pends: Vec<String> = pends.iter().map(|(n, _)| n.to_string()).collect();
    let holds: Vec<String> = holds.iter().map(|(n, _)| n.to_string()).collect();
    let mut solved_all = vec!["solved".to_string()];
    solved_all.extend(solvs.iter().map(|(n, _)| n.to_string()));
    let workers = ["open".to_string(), "in_progress".to_string()];
    let mut tb = TransitionBuilder::default();

    tb.add(&desk, Some(&["new"]), &["open", "in_progress"], None, None);
    if triage {
        tb.add(
            &desk,
            Some(&["triage"]),
            &["open"],
            None,
            Some("the AI may route triaged tickets"),
        );
        tb.add(
            &desk,
            Some(&["triage"]),
            &["in_progress"],
            Some(cond(rng, &desk)),
            None,
        );
    }
    if imported {
        tb.add(&desk, Some(&["imported"]), &["in_progress"], None, None);
    }
    tb.add(&desk, Some(&["open"]), &["in_progress"], None, None);
    for o in &opens {
        let k = rng.range(1, 2);
        let from = rng.subset(&workers, k);
        let c = rng.chance(50).then(|| cond(rng, &desk));
        tb.add(&desk, Some(&strs(&from)), &[o.as_str()], c, None);
        tb.add(&desk, Some(&[o.as_str()]), &["in_progress"], None, None);
    }
    for p in &pends {
        let k = rng.range(1, 2);
        let mut from = rng.subset(&workers, k);
        if rng.chance(30) && !opens.is_empty() {
            from.push(rng.pick(&opens).clone());
        }
        let c = rng.chance(60).then(|| cond(rng, &desk));
        tb.add(&desk, Some(&strs(&from)), &[p.as_str()], c, None);
    }
    // Zendesk reopens pending tickets when the requester replies.
    for chunk in pends.chunks(3) {
        tb.add(
            &desk,
            Some(&strs(chunk)),
            &["open"],
            Some("comment.author == end_user".into()),
            Some("Zendesk reopens a pending ticket when the requester replies"),
        );
    }
    for p in &pends {
        if rng.chance(35) {
            let c = cond(rng, &desk);
            tb.add(&desk, Some(&[p.as_str()]), &["in_progress"], Some(c), None);
        }
    }
    for h in &holds {
        let c = rng.chance(50).then(|| cond(rng, &desk));
        tb.add(&desk, Some(&["in_progress"]), &[h.as_str()], c, None);
    }
    for chunk in holds.chunks(2) {
        tb.add(&desk, Some(&strs(chunk)), &["in_progress"], None, None);
    }
    for s in &solved_all {
        let mut from = vec!["in_progress".to_string()];
        if !opens.is_empty() && rng.chance(60) {
            let k = rng.range(1, 2.min(opens.len()));
            from.extend(rng.subset(&opens, k));
        }
        let c = (s != "solved").then(|| cond(rng, &desk));
        tb.add(&desk, Some(&strs(&from)), &[s.as_str()], c, None);
    }
    tb.add(
        &desk,
        Some(&strs(&solved_all)),
        &["open"],
        Some("comment.author == end_user".into()),
        Some("and solved ones too"),
    );
    if rng.chance(50) {
        tb.add(
            &desk,
            None,
            &["closed"],
            Some(format!(
                "ticket.tags has \"{}\"",
                rng.pick(&["spam", "abuse", "test_ticket"])
            )),
            Some("spam and abuse can be closed from anywhere"),
        );
    } else {
        tb.add(&desk, Some(&strs(&solved_all)), &["closed"], None, None);
    }
    desk.transitions = tb.lines;
    validate_statuses(&desk);
    desk
}

fn st(name: &str, cat: &'static str, label: &str) -> Status {
    Status {
        name: name.into(),
        cat,
        label: label.into(),
        terminal: false,
        initial: false,
        id: None,
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

#[derive(Default)]
struct TransitionBuilder {
    lines: Vec<Transition>,
    pairs: HashSet<(String, String)>,
}

impl TransitionBuilder {
    fn add(
        &mut self,
        desk: &Desk,
        from: Option<&[&str]>,
        to: &[&str],
        cond: Option<String>,
        comment: Option<&'static str>,
    ) {
        let froms: Vec<String> = match from {
            Some(f) => f.iter().map(|s| s.to_string()).collect(),
            None => desk
                .statuses
                .iter()
                .filter(|s| !s.terminal)
                .map(|s| s.name.clone())
                .collect(),
        };
        for f in &froms {
            for t in to {
                assert!(
                    self.pairs.insert((f.clone(), t.to_string())),
                    "duplicate transition {f} -> {t}"
                );
                assert_ne!(f, t, "self transition");
            }
        }
        self.lines.push(Transition {
            from: from.map(|f| f.iter().map(|s| s.to_string()).collect()),
            to: to.iter().map(|s| s.to_string()).collect(),
            cond,
            comment,
        });
    }
}

fn validate_statuses(d: &Desk) {
    let by_name: HashMap<&str, &Status> = d.statuses.iter().map(|s| (s.name.as_str(), s)).collect();
    assert_eq!(
        by_name.len(),
        d.statuses.len(),
        "duplicate status in {}",
        d.name
    );
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in &d.transitions {
        let froms: Vec<&str> = match &t.from {
            Some(f) => f.iter().map(|s| s.as_str()).collect(),
            None => d
                .statuses
                .iter()
                .filter(|s| !s.terminal)
                .map(|s| s.name.as_str())
                .collect(),
        };
        for f in froms {
            for to in &t.to {
                let fs = by_name[f];
                let ts = by_name[to.as_str()];
                assert!(!fs.terminal, "transition out of terminal");
                assert_ne!(ts.cat, "new", "transition into new");
                edges.entry(f).or_default().insert(to);
            }
        }
    }
    let mut seen: BTreeSet<&str> = d
        .statuses
        .iter()
        .filter(|s| s.cat == "new" || s.initial)
        .map(|s| s.name.as_str())
        .collect();
    let mut stack: Vec<&str> = seen.iter().copied().collect();
    while let Some(s) = stack.pop() {
        for &n in edges.get(s).into_iter().flatten() {
            if seen.insert(n) {
                stack.push(n);
            }
        }
    }
    for s in &d.statuses {
        assert!(
            seen.contains(s.name.as_str()),
            "{}: {} unreachable",
            d.name,
            s.name
        );
        if !s.terminal {
            let outs = edges.get(s.name.as_str()).cloned().unwrap_or_default();
            assert!(!outs.is_empty(), "{}: {} is a dead end", d.name, s.name);
            if matches!(s.cat, "pending" | "hold" | "solved") {
                assert!(
                    outs.iter().any(|o| by_name[o].cat == "open"),
                    "{}: {} has no reopen",
                    d.name,
                    s.name
                );
            }
        }
    }
}

/// A boolean condition that type-checks against the desk's fields.
fn cond(rng: &mut Rng, d: &Desk) -> String {
    let simple = |rng: &mut Rng| -> String {
        match rng.below(12) {
            0 => format!("ticket.tags has \"{}\"", rng.pick(TAGS)),
            1 => format!(
                "ticket.priority in [{}]",
                rng.pick(&["high, urgent", "urgent", "normal, high", "low, normal"])
            ),
            2 => format!(
                "turn.sentiment {}",
                rng.pick(&["in [negative, angry]", "== angry", "!= positive"])
            ),
            3 => format!(
                "turn.confidence {} {}",
                rng.pick(&["<", ">=", "<="]),
                rng.pick(&["0.4", "0.75", "0.9", "0.25"])
            ),
            4 => format!(
                "turn.intent == \"{}\"",
                rng.pick(&[
                    "refund",
                    "cancel",
                    "return",
                    "exchange",
                    "billing_dispute",
                    "password_reset",
                    "delivery_status"
                ])
            ),
            5 => format!(
                "ticket.type {}",
                rng.pick(&[
                    "== incident",
                    "== problem",
                    "in [question, task]",
                    "!= task"
                ])
            ),
            6 => "comment.author == end_user".into(),
            7 => format!("not (ticket.tags has \"{}\")", rng.pick(TAGS)),
            8 => format!(
                "turn.refund_amount {} ${}",
                rng.pick(&["<", "<=", ">"]),
                rng.pick(&["50", "200", "1000", "49.99"])
            ),
            9 => format!("comment.public == {}", rng.pick(&["true", "false"])),
            10 => format!(
                "turn.attempts has \"{}\"",
                rng.pick(&[
                    "password_reset",
                    "resend_invoice",
                    "track_parcel",
                    "reset_device"
                ])
            ),
            _ => field_cond(rng, d),
        }
    };
    match rng.below(10) {
        0..=4 => simple(rng),
        5 | 6 => field_cond(rng, d),
        7 => format!("{} and {}", simple(rng), field_cond(rng, d)),
        8 => format!("{} or {}", field_cond(rng, d), simple(rng)),
        _ => format!(
            "({} or {}) and {}",
            simple(rng),
            field_cond(rng, d),
            simple(rng)
        ),
    }
}

fn field_cond(rng: &mut Rng, d: &Desk) -> String {
    let (k, _) = d.fields[rng.below(d.fields.len())];
    let a = k.alias;
    match k.ty {
        Ty::Enum(vs) => match rng.below(3) {
            0 => format!("ticket.{a} == {}", rng.pick(vs)),
            1 => format!("ticket.{a} != {}", rng.pick(vs)),
            _ => format!("ticket.{a} in [{}]", rng.subset(vs, 2).join(", ")),
        },
        Ty::Num => format!(
            "ticket.{a} {} {}",
            rng.pick(&[">=", ">", "<", "=="]),
            rng.range(1, 99)
        ),
        Ty::Bool => format!("ticket.{a} == {}", rng.pick(&["true", "false"])),
        Ty::Money("USD") => format!(
            "ticket.{a} {} ${}",
            rng.pick(&[">", ">=", "<"]),
            rng.range(1, 200) * 50
        ),
        Ty::Money(c) => format!("ticket.{a} > {} {c}", rng.range(1, 90) * 1000),
        Ty::Str => format!("ticket.{a} != \"\""),
        Ty::Date => format!("ticket.{a} < ticket.updated_at"),
    }
}

// ------------------------------------------------------------------ connections

fn zendesk_connection(s: &mut String, rng: &mut Rng, d: &Desk) {
    let plans = [
        "team",
        "growth",
        "professional",
        "enterprise",
        "enterprise_plus",
    ];
    let plan = rng.pick(&plans);
    writeln!(s, "// {} ({})", d.brand, d.name).unwrap();
    writeln!(s, "connection {}: zendesk {{", d.name).unwrap();
    if rng.chance(85) {
        writeln!(s, "  subdomain  \"{}-{}\"", slug(d.brand), d.no).unwrap();
    } else {
        writeln!(s, "  url        \"https://support-{}.example.com\"", d.no).unwrap();
    }
    let var = format!("ZD_{:03}", d.no);
    if rng.chance(30) {
        // An OAuth client l3map refreshes (API tokens are retired by
        // Zendesk in 2027, and `check` warns about them).
        writeln!(s, "  auth       oauth_code").unwrap();
        writeln!(s, "  client_id  \"l3map_{}_{}\"", slug(d.brand), d.no).unwrap();
        writeln!(s, "  refresh_token env(\"{var}_REFRESH_TOKEN\")").unwrap();
    } else {
        writeln!(s, "  token      env(\"{var}_OAUTH_TOKEN\")").unwrap();
    }
    writeln!(s, "  scopes     read, write, tickets:write").unwrap();
    let rpm = match *plan {
        "team" => 200,
        "growth" | "professional" => 400,
        "enterprise" => 700,
        _ => 2500,
    };
    writeln!(
        s,
        "  plan       {plan:<16}// {rpm} requests per minute per token"
    )
    .unwrap();
    if rng.chance(20) {
        writeln!(s, "  rate_limit {} rpm", rpm / 2).unwrap();
    }
    if rng.chance(40) {
        writeln!(
            s,
            "  webhook_secret file(\"/run/secrets/zd_{:03}_webhook\")",
            d.no
        )
        .unwrap();
    }
    s.push_str("}\n\n");
}

fn salesforce_connection(s: &mut String, rng: &mut Rng, c: usize) {
    writeln!(s, "connection crm_{c:02}: salesforce {{").unwrap();
    writeln!(
        s,
        "  instance       \"https://org{c:02}.my.salesforce.com\""
    )
    .unwrap();
    writeln!(s, "  client_id      env(\"SF_{c:02}_CLIENT_ID\")").unwrap();
    writeln!(
        s,
        "  client_secret  file(\"/run/secrets/sf_{c:02}_client_secret\")"
    )
    .unwrap();
    writeln!(s, "  refresh_token  env(\"SF_{c:02}_REFRESH_TOKEN\")").unwrap();
    writeln!(s, "  scopes         api, refresh_token, offline_access").unwrap();
    writeln!(
        s,
        "  objects        Case, Contact, Account, Subscription__c"
    )
    .unwrap();
    if rng.chance(50) {
        writeln!(s, "  api_version    \"v60.0\"").unwrap();
    }
    if rng.chance(40) {
        writeln!(s, "  max_concurrent {}", rng.pick(&[25, 50, 100])).unwrap();
    }
    s.push_str("}\n\n");
}

/// How the CRM's records reach the desk's tickets: without links every
/// `map crm -> desk` rule is dead in `l3map run` (and `check` says so).
fn crm_links(c: usize, desk: &str) -> String {
    format!(
        "link {desk}.organization <-> crm_{c:02}.Account {{\n  on organization.external_id == Account.Id\n}}\n\n\
         link {desk}.user <-> crm_{c:02}.Contact {{\n  on   user.email == Contact.Email\n  pick newest\n}}\n\n\
         link {desk}.ticket <-> crm_{c:02}.Case {{\n  on ticket.external_id == Case.Id\n}}\n\n\
         link {desk}.organization <-> crm_{c:02}.Subscription__c {{\n  on      organization.fields.subscription_id == Subscription__c.Id\n  tickets all\n}}\n\n"
    )
}

fn slug(s: &str) -> String {
    s.to_lowercase().replace(' ', "-")
}

// ------------------------------------------------------------------ CRM fields

/// Per-desk Salesforce fields that desks write back (`map desk -> crm`).
fn writeback_fields(d: &Desk) -> Vec<(String, &'static str, &'static str)> {
    let p = format!("D{:03}", d.no);
    let mut v = vec![
        (
            format!("Case.{p}_Risk_Decision__c"),
            r#"enum("Pending", "Cleared", "Escalated")"#,
            "risk_decision",
        ),
        (
            format!("Case.{p}_Refund_Issued__c"),
            "bool",
            "refund_issued",
        ),
        (
            format!("Case.{p}_Handoff_Reason__c"),
            "string",
            "handoff_reason",
        ),
        (
            format!("Case.{p}_Escalations__c"),
            "number",
            "escalation_count",
        ),
    ];
    if d.has("return_reason") {
        v.push((
            format!("Case.{p}_Return_Reason__c"),
            r#"enum("Damaged", "Wrong item", "Not as described", "Other")"#,
            "return_reason",
        ));
    }
    if d.has("order_value") {
        v.push((
            format!("Case.{p}_Order_Value__c"),
            "money(USD)",
            "order_value",
        ));
    }
    v
}

fn crm_fields(rng: &mut Rng, c: usize, served: &[&Desk]) -> String {
    let mut s = String::new();
    writeln!(
        s,
        "// Salesforce org crm_{c:02}: the fields the desks read from it and write back.\n"
    )
    .unwrap();
    writeln!(s, "fields crm_{c:02} {{").unwrap();
    for m in SF_MAPS {
        if rng.chance(20) {
            writeln!(
                s,
                "  {:<34}{}  \"{}\"",
                m.src,
                m.src_ty,
                m.target.replace('_', " ")
            )
            .unwrap();
        } else {
            writeln!(s, "  {:<34}{}", m.src, m.src_ty).unwrap();
        }
    }
    writeln!(
        s,
        "  {:<34}string  \"Why the AI handed the case over\"",
        "Case.AI_Handoff_Reason__c"
    )
    .unwrap();
    for d in served {
        writeln!(s, "  // write-back from {}", d.name).unwrap();
        for (path, ty, _) in writeback_fields(d) {
            writeln!(s, "  {path:<34}{ty}").unwrap();
        }
    }
    s.push_str("}\n");
    s
}

// ------------------------------------------------------------------ desk file

fn desk_file(rng: &mut Rng, d: &Desk) -> String {
    let mut s = String::new();
    writeln!(
        s,
        "// {} — {}: statuses, custom fields, CRM mappings and hand-offs.",
        d.name, d.brand
    )
    .unwrap();
    writeln!(s, "// Generated for the l3map front-end benchmark.\n").unwrap();

    // statuses
    writeln!(
        s,
        "// The statuses of {} and the transitions the AI agent may make.",
        d.name
    )
    .unwrap();
    writeln!(s, "// Anything not listed here is refused.").unwrap();
    writeln!(s, "statuses {} {{", d.name).unwrap();
    let w = d.statuses.iter().map(|x| x.name.len()).max().unwrap_or(8) + 2;
    for x in &d.statuses {
        let mut line = format!("  {:<w$}{:<9}\"{}\"", x.name, x.cat, x.label);
        if x.terminal {
            line.push_str("  terminal");
        }
        if x.initial {
            line.push_str("  initial");
        }
        if let Some(id) = x.id {
            write!(line, "  #{id}").unwrap();
        }
        s.push_str(&line);
        s.push('\n');
    }
    s.push('\n');
    for t in &d.transitions {
        if let Some(c) = t.comment {
            writeln!(s, "  // {c}").unwrap();
        }
        let from = match &t.from {
            Some(f) => f.join(", "),
            None => "*".into(),
        };
        let mut line = format!("  {from} -> {}", t.to.join(", "));
        if let Some(c) = &t.cond {
            write!(line, "  when {c}").unwrap();
        }
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str("}\n\n");

    // fields
    writeln!(
        s,
        "// Zendesk custom ticket fields of {} (by id, with a readable alias).",
        d.name
    )
    .unwrap();
    writeln!(s, "fields {} {{", d.name).unwrap();
    for (k, id) in &d.fields {
        let ty = k.ty.render();
        if rng.chance(75) {
            writeln!(s, "  {:<26}#{id}  {:<44}\"{}\"", k.alias, ty, k.label).unwrap();
        } else {
            writeln!(s, "  {:<26}#{id}  {ty}", k.alias).unwrap();
        }
    }
    s.push_str("}\n\n");

    // crm -> desk
    writeln!(s, "// What {} reads from {}.", d.name, d.crm_name).unwrap();
    writeln!(s, "map {} -> {} {{", d.crm_name, d.name).unwrap();
    let standard = ["priority", "type", "subject"];
    for m in SF_MAPS {
        if !(standard.contains(&m.target) || d.has(m.target)) {
            continue;
        }
        if m.arms.is_empty() {
            writeln!(s, "  {} -> {}", m.src, m.target).unwrap();
        } else {
            writeln!(s, "  {} -> {} {{", m.src, m.target).unwrap();
            for a in m.arms {
                writeln!(s, "    {a}").unwrap();
            }
            s.push_str("  }\n");
        }
    }
    s.push_str("}\n\n");

    // desk -> crm
    writeln!(s, "map {} -> {} {{", d.name, d.crm_name).unwrap();
    for (path, _, src) in writeback_fields(d) {
        match src {
            "risk_decision" => writeln!(s, "  risk_decision -> {path} {{\n    pending  => \"Pending\"\n    cleared  => \"Cleared\"\n    escalate => \"Escalated\"\n  }}").unwrap(),
            "return_reason" => writeln!(s, "  return_reason -> {path} {{\n    damaged          => \"Damaged\"\n    wrong_item       => \"Wrong item\"\n    not_as_described => \"Not as described\"\n    _                => \"Other\"\n  }}").unwrap(),
            _ => writeln!(s, "  {src} -> {path}").unwrap(),
        }
    }
    s.push_str("}\n\n");

    // templates
    let p = d.prefix();
    writeln!(
        s,
        "// What the AI writes when it hands a conversation to a human."
    )
    .unwrap();
    writeln!(s, "template {p}_handoff \"\"\"").unwrap();
    writeln!(s, "AI hand-off ({}): {{{{ escalation.reason }}}}", d.brand).unwrap();
    s.push('\n');
    writeln!(
        s,
        "Customer asked: {{{{ turn.summary | truncate({}) }}}}",
        rng.pick(&[200, 400, 800])
    )
    .unwrap();
    writeln!(
        s,
        "What the AI tried: {{{{ turn.attempts | join(\"; \") | default(\"nothing yet\") }}}}"
    )
    .unwrap();
    writeln!(s, "Sentiment: {{{{ turn.sentiment | upper }}}}").unwrap();
    writeln!(
        s,
        "SLA tier: {{{{ ticket.sla_tier | default(\"unknown\") }}}}"
    )
    .unwrap();
    if rng.chance(50) {
        writeln!(s, "Refund requested: {{{{ turn.refund_amount | money }}}}").unwrap();
    }
    if rng.chance(50) {
        writeln!(
            s,
            "Last message: {{{{ comment.body | trim | truncate(300) }}}}"
        )
        .unwrap();
    }
    writeln!(
        s,
        "Requester: {{{{ ticket.requester_name }}}} <{{{{ ticket.requester_email | lower }}}}>"
    )
    .unwrap();
    s.push_str("\"\"\"\n\n");
    writeln!(s, "template {p}_crm_note \"\"\"").unwrap();
    writeln!(s, "[{{{{ escalation.name }}}}] {{{{ escalation.reason }}}}").unwrap();
    writeln!(
        s,
        "Zendesk ticket {{{{ ticket.id }}}}: {{{{ ticket.subject | default(\"(no subject)\") }}}}"
    )
    .unwrap();
    writeln!(
        s,
        "Intent: {{{{ turn.intent }}}}, language: {{{{ turn.language | upper }}}}"
    )
    .unwrap();
    s.push_str("\"\"\"\n\n");

    escalations(&mut s, rng, d);
    s
}

fn escalations(s: &mut String, rng: &mut Rng, d: &Desk) {
    let p = d.prefix();
    let desk = &d.name;
    let crm = &d.crm_name;
    let working: Vec<&Status> = d.statuses.iter().filter(|x| x.cat == "open").collect();
    let parked: Vec<&Status> = d
        .status_of("pending")
        .into_iter()
        .chain(d.status_of("hold"))
        .collect();
    let pick_working = |rng: &mut Rng| rng.pick(&working).name.clone();
    let pick_parked = |rng: &mut Rng| rng.pick(&parked).name.clone();

    // The first one always uses both templates.
    writeln!(s, "escalation {p}_refund_over_threshold {{").unwrap();
    let lim = rng.pick(&[100, 200, 250, 500, 1000]);
    writeln!(
        s,
        "  when    turn.intent == \"refund\" and turn.refund_amount > ${lim}"
    )
    .unwrap();
    writeln!(
        s,
        "  reason  \"Customer is requesting a refund above the ${lim} pre-authorised threshold\""
    )
    .unwrap();
    writeln!(s, "  comment {desk} {p}_handoff").unwrap();
    writeln!(s, "  comment {crm} {p}_crm_note").unwrap();
    writeln!(
        s,
        "  set     {crm} Case.AI_Handoff_Reason__c = \"refund_threshold\""
    )
    .unwrap();
    writeln!(s, "  set     {desk} handoff_reason = \"refund_threshold\"").unwrap();
    writeln!(s, "  assign  {desk} \"Payments Tier 2\"").unwrap();
    writeln!(s, "  status  {desk} {}", pick_working(rng)).unwrap();
    s.push_str("}\n\n");

    let mut kinds: Vec<usize> = (0..7).collect();
    rng.shuffle(&mut kinds);
    let n = rng.range(3, 6);
    for &k in &kinds[..n] {
        match k {
            0 => {
                writeln!(s, "escalation {p}_suspected_fraud {{").unwrap();
                writeln!(s, "  when    turn.intent == \"fraud_report\" or ticket.dispute_type == fraud_claim").unwrap();
                writeln!(
                    s,
                    "  reason  \"Customer reports an unauthorised transaction\""
                )
                .unwrap();
                writeln!(s, "  comment {desk} {p}_handoff").unwrap();
                writeln!(s, "  set     {desk} risk_decision = escalate").unwrap();
                writeln!(s, "  assign  {desk} \"Fraud Operations\"").unwrap();
                writeln!(s, "  status  {desk} {}", pick_parked(rng)).unwrap();
            }
            1 => {
                writeln!(s, "escalation {p}_angry_enterprise_customer {{").unwrap();
                writeln!(
                    s,
                    "  when    turn.sentiment == angry and ticket.sla_tier == enterprise"
                )
                .unwrap();
                writeln!(
                    s,
                    "  reason  \"Enterprise customer is angry; a human owns the relationship\""
                )
                .unwrap();
                writeln!(s, "  comment {desk} {p}_handoff").unwrap();
                writeln!(
                    s,
                    "  set     {crm} Case.AI_Handoff_Reason__c = \"sentiment\""
                )
                .unwrap();
                writeln!(s, "  status  {desk} {}", pick_working(rng)).unwrap();
            }
            2 => {
                writeln!(s, "escalation {p}_low_confidence {{").unwrap();
                writeln!(s, "  // the model is unsure twice in a row: stop guessing").unwrap();
                writeln!(
                    s,
                    "  when    turn.confidence < 0.35 and not (ticket.tags has \"ai_ok\")"
                )
                .unwrap();
                writeln!(s, "  reason  \"The AI is not confident enough to answer\"").unwrap();
                writeln!(s, "  comment {desk} \"Low confidence on: {{{{ turn.summary | truncate(120) }}}}\"").unwrap();
                writeln!(s, "  assign  {desk} \"Tier 1 {}\"", d.brand).unwrap();
            }
            3 => {
                writeln!(s, "escalation {p}_high_value_account {{").unwrap();
                writeln!(
                    s,
                    "  when    ticket.contract_value >= $50000 or ticket.risk_score >= 80"
                )
                .unwrap();
                writeln!(s, "  reason  \"High-value or high-risk account\"").unwrap();
                writeln!(s, "  comment {crm} {p}_crm_note").unwrap();
                writeln!(
                    s,
                    "  set     {crm} Case.AI_Handoff_Reason__c = turn.summary"
                )
                .unwrap();
                writeln!(s, "  set     {desk} risk_score = 90").unwrap();
                writeln!(s, "  status  {desk} {}", pick_working(rng)).unwrap();
            }
            4 => {
                writeln!(s, "escalation {p}_repeated_password_resets {{").unwrap();
                writeln!(s, "  when    turn.attempts has \"password_reset\" and ticket.priority in [high, urgent]").unwrap();
                writeln!(
                    s,
                    "  reason  \"Password resets keep failing for an urgent ticket\""
                )
                .unwrap();
                writeln!(s, "  comment {desk} {p}_handoff").unwrap();
                writeln!(s, "  assign  {desk} \"Identity & Access\"").unwrap();
                writeln!(s, "  set     {desk} escalation_count = 1").unwrap();
            }
            5 => {
                writeln!(s, "escalation {p}_unsupported_language {{").unwrap();
                writeln!(s, "  when    turn.language not in [\"en\", \"ja\", \"th\", \"ms\"] and ticket.preferred_language != en").unwrap();
                writeln!(
                    s,
                    "  reason  \"The customer writes in a language the AI does not support here\""
                )
                .unwrap();
                writeln!(s, "  comment {desk} \"Language {{{{ turn.language | upper }}}}: needs a human translator\"").unwrap();
                writeln!(s, "  assign  {desk} \"Localisation\"").unwrap();
                writeln!(s, "  status  {desk} {}", pick_working(rng)).unwrap();
            }
            _ => {
                writeln!(s, "escalation {p}_legal_threat {{").unwrap();
                writeln!(s, "  when    ticket.tags has \"legal\" or turn.intent in [\"gdpr_request\", \"legal_threat\"]").unwrap();
                writeln!(s, "  reason  \"Legal or data-protection request\"").unwrap();
                writeln!(s, "  comment {desk} {p}_handoff").unwrap();
                writeln!(
                    s,
                    "  comment {crm} \"Legal hand-off for ticket {{{{ ticket.id }}}}\""
                )
                .unwrap();
                writeln!(s, "  set     {crm} Case.AI_Handoff_Reason__c = \"legal\"").unwrap();
                writeln!(s, "  assign  {desk} \"Legal & Privacy\"").unwrap();
                writeln!(s, "  status  {desk} {}", pick_parked(rng)).unwrap();
            }
        }
        s.push_str("}\n\n");
    }
}

// ------------------------------------------------------------------ SKU tables

struct Family {
    code: &'static str,
    id: &'static str,
    /// separator between id and generation in the product id
    sep: &'static str,
    en: &'static str,
    ja: &'static str,
    th: &'static str,
    gens: &'static [u32],
}

const FAMILIES: &[Family] = &[
    Family {
        code: "IPH",
        id: "APPLE-IPHONE",
        sep: "-",
        en: "iPhone",
        ja: "アイフォン",
        th: "ไอโฟน",
        gens: &[11, 12, 13, 14, 15, 16],
    },
    Family {
        code: "IPD",
        id: "APPLE-IPAD",
        sep: "-",
        en: "iPad",
        ja: "アイパッド",
        th: "ไอแพด",
        gens: &[9, 10, 11],
    },
    Family {
        code: "AWS",
        id: "APPLE-WATCH-SERIES",
        sep: "-",
        en: "Apple Watch Series",
        ja: "アップルウォッチシリーズ",
        th: "แอปเปิ้ลวอทช์ซีรีส์",
        gens: &[7, 8, 9, 10],
    },
    Family {
        code: "SGS",
        id: "SAMSUNG-GALAXY-S",
        sep: "",
        en: "Galaxy S",
        ja: "ギャラクシーS",
        th: "กาแลคซี่ S",
        gens: &[21, 22, 23, 24, 25],
    },
    Family {
        code: "SGA",
        id: "SAMSUNG-GALAXY-A",
        sep: "",
        en: "Galaxy A",
        ja: "ギャラクシーA",
        th: "กาแลคซี่ A",
        gens: &[15, 25, 35, 55],
    },
    Family {
        code: "SGZF",
        id: "SAMSUNG-GALAXY-Z-FOLD",
        sep: "",
        en: "Galaxy Z Fold",
        ja: "ギャラクシーZフォールド",
        th: "กาแลคซี่ Z โฟลด์",
        gens: &[4, 5, 6],
    },
    Family {
        code: "GPX",
        id: "GOOGLE-PIXEL",
        sep: "-",
        en: "Pixel",
        ja: "ピクセル",
        th: "พิกเซล",
        gens: &[6, 7, 8, 9],
    },
    Family {
        code: "XRN",
        id: "XIAOMI-REDMI-NOTE",
        sep: "-",
        en: "Redmi Note",
        ja: "レッドミーノート",
        th: "เรดมี่โน้ต",
        gens: &[11, 12, 13, 14],
    },
    Family {
        code: "SXP",
        id: "SONY-XPERIA",
        sep: "-",
        en: "Xperia",
        ja: "エクスペリア",
        th: "เอ็กซ์พีเรีย",
        gens: &[1, 5, 10],
    },
    Family {
        code: "OPR",
        id: "OPPO-RENO",
        sep: "",
        en: "OPPO Reno",
        ja: "オッポリノ",
        th: "ออปโป้รีโน่",
        gens: &[8, 10, 11, 12],
    },
    Family {
        code: "VVV",
        id: "VIVO-V",
        sep: "",
        en: "vivo V",
        ja: "ビボV",
        th: "วีโว่ V",
        gens: &[27, 29, 30],
    },
    Family {
        code: "OPL",
        id: "ONEPLUS",
        sep: "-",
        en: "OnePlus",
        ja: "ワンプラス",
        th: "วันพลัส",
        gens: &[10, 11, 12, 13],
    },
    Family {
        code: "HWP",
        id: "HUAWEI-P",
        sep: "",
        en: "Huawei P",
        ja: "ファーウェイP",
        th: "หัวเว่ย P",
        gens: &[40, 50, 60],
    },
    Family {
        code: "RGT",
        id: "REALME-GT",
        sep: "-",
        en: "realme GT",
        ja: "リアルミーGT",
        th: "เรียลมี GT",
        gens: &[2, 3, 5, 6],
    },
    Family {
        code: "NPH",
        id: "NOTHING-PHONE",
        sep: "-",
        en: "Nothing Phone",
        ja: "ナッシングフォン",
        th: "นัทติงโฟน",
        gens: &[1, 2, 3],
    },
    Family {
        code: "ASZ",
        id: "ASUS-ZENFONE",
        sep: "-",
        en: "Zenfone",
        ja: "ゼンフォン",
        th: "เซนโฟน",
        gens: &[9, 10, 11],
    },
];

struct Variant {
    code: &'static str,
    id: &'static str,
    en: &'static str,
    ja: &'static str,
    th: &'static str,
}

const VARIANTS: &[Variant] = &[
    Variant {
        code: "",
        id: "",
        en: "",
        ja: "",
        th: "",
    },
    Variant {
        code: "PM",
        id: "-PRO-MAX",
        en: " Pro Max",
        ja: "プロマックス",
        th: " โปร แม็กซ์",
    },
    Variant {
        code: "P",
        id: "-PRO",
        en: " Pro",
        ja: "プロ",
        th: " โปร",
    },
    Variant {
        code: "U",
        id: "-ULTRA",
        en: " Ultra",
        ja: "ウルトラ",
        th: " อัลตร้า",
    },
    Variant {
        code: "PL",
        id: "-PLUS",
        en: " Plus",
        ja: "プラス",
        th: " พลัส",
    },
    Variant {
        code: "M",
        id: "-MINI",
        en: " mini",
        ja: "ミニ",
        th: " มินิ",
    },
    Variant {
        code: "L",
        id: "-LITE",
        en: " Lite",
        ja: "ライト",
        th: " ไลท์",
    },
    Variant {
        code: "FE",
        id: "-FE",
        en: " FE",
        ja: "FE",
        th: " FE",
    },
    Variant {
        code: "XL",
        id: "-XL",
        en: " XL",
        ja: "XL",
        th: " XL",
    },
];

#[derive(Clone, Copy, PartialEq)]
enum Style {
    /// `nfkc, upper, strip " -_/."`, `$1` regexes, no `products` list
    UpperOpen,
    /// `nfkc, upper, strip " -_/."`, declared `products`, fixed regex targets
    UpperClosed,
    /// `nfkc, lower|casefold, collapse_spaces, trim`, `$1` regexes
    Lower(&'static str),
}

#[derive(Clone, Copy)]
enum Step {
    Nfkc,
    Upper,
    Lower,
    CollapseSpaces,
    Trim,
    Strip(&'static str),
}

fn normalize(steps: &[Step], s: &str) -> String {
    let mut s = s.to_string();
    for st in steps {
        s = match st {
            Step::Nfkc => s.nfkc().collect(),
            Step::Upper => s.to_uppercase(),
            Step::Lower => s.to_lowercase(),
            Step::CollapseSpaces => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Step::Trim => s.trim().to_string(),
            Step::Strip(cs) => s.chars().filter(|c| !cs.contains(*c)).collect(),
        };
    }
    s
}

fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' => '\u{3000}',
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap(),
            c => c,
        })
        .collect()
}

struct SkuRegex {
    src: String,
    re: Regex,
    target: String,
}

fn sku_table(rng: &mut Rng, t: usize, regexes_per_table: usize) -> (String, String) {
    const REGIONS: &[&str] = &[
        "apac", "japan", "thailand", "sea", "emea", "amer", "anz", "korea", "latam", "india",
        "mena", "global",
    ];
    let style = match t % 4 {
        0 | 2 => Style::UpperOpen,
        1 => Style::UpperClosed,
        _ => Style::Lower(if t % 8 == 3 { "lower" } else { "casefold" }),
    };
    let name = format!("{}_devices_{}", REGIONS[t % REGIONS.len()], t);
    let (steps, norm_src): (Vec<Step>, String) = match style {
        Style::UpperOpen | Style::UpperClosed => (
            vec![Step::Nfkc, Step::Upper, Step::Strip(" -_/.")],
            "nfkc, upper, strip \" -_/.\"".into(),
        ),
        Style::Lower(l) => (
            // Product names pasted from shop pages carry the registered sign.
            vec![
                Step::Nfkc,
                Step::Lower,
                Step::CollapseSpaces,
                Step::Trim,
                Step::Strip("®"),
            ],
            format!("nfkc, {l}, collapse_spaces, trim, strip \"®\""),
        ),
    };
    let upper = !matches!(style, Style::Lower(_));
    let case = |s: &str| {
        if upper {
            s.to_uppercase()
        } else {
            s.to_lowercase()
        }
    };

    // Families of this table, and which (family, variant) pairs get a regex.
    let n_fams = rng.range(9, 13);
    let fams: Vec<usize> = rng.subset(&(0..FAMILIES.len()).collect::<Vec<_>>(), n_fams);
    let mut regexes: Vec<SkuRegex> = Vec::new();
    let mut regex_pairs: HashSet<(usize, usize)> = HashSet::new();
    if style != Style::UpperClosed {
        let all_pairs: Vec<(usize, usize)> = fams
            .iter()
            .flat_map(|&f| (0..VARIANTS.len()).map(move |v| (f, v)))
            .collect();
        let chosen: HashSet<(usize, usize)> = rng
            .subset(&all_pairs, regexes_per_table)
            .into_iter()
            .collect();
        for &f in &fams {
            for (v, var) in VARIANTS.iter().enumerate() {
                if chosen.contains(&(f, v)) {
                    regex_pairs.insert((f, v));
                    let fam = &FAMILIES[f];
                    let sep = if upper { "" } else { " ?" };
                    let src = format!(
                        "^{}{sep}(\\d{{1,2}}){sep}{}$",
                        case(fam.code),
                        case(var.code)
                    );
                    let src = src.replace(&format!("{sep}$"), "$");
                    regexes.push(SkuRegex {
                        re: Regex::new(&src).unwrap(),
                        src,
                        target: format!("{}{}$1{}", fam.id, fam.sep, var.id),
                    });
                }
            }
        }
    }

    // Products and their aliases.
    struct Prod {
        id: String,
        aliases: Vec<String>,
        code: String,
        en: String,
        ja: String,
        th: String,
    }
    let mut prods: Vec<Prod> = Vec::new();
    let mut seen_norm: HashMap<String, String> = HashMap::new();
    for &f in &fams {
        let fam = &FAMILIES[f];
        for &g in fam.gens {
            for (vi, var) in VARIANTS.iter().enumerate() {
                if !rng.chance(55) {
                    continue;
                }
                let id = format!("{}{}{}{}", fam.id, fam.sep, g, var.id);
                let code = format!("{}{}{}", fam.code, g, var.code);
                let en = format!("{} {}{}", fam.en, g, var.en);
                let ja = format!("{}{}{}", fam.ja, g, var.ja);
                let th = format!("{} {}{}", fam.th, g, var.th);
                let mut aliases = Vec::new();
                let mut cands: Vec<String> = vec![];
                if !regex_pairs.contains(&(f, vi)) {
                    cands.push(if upper {
                        code.clone()
                    } else {
                        code.to_lowercase()
                    });
                }
                cands.push(en.clone());
                if rng.chance(50) {
                    cands.push(format!(
                        "{} {}",
                        fam.id.split('-').next().unwrap().to_lowercase(),
                        en
                    ));
                }
                cands.push(ja.clone());
                cands.push(th.clone());
                for a in cands {
                    let n = normalize(&steps, &a);
                    if n.is_empty()
                        || regexes.iter().any(|r| r.re.is_match(&n))
                        || seen_norm.contains_key(&n)
                    {
                        continue;
                    }
                    seen_norm.insert(n, id.clone());
                    aliases.push(a);
                }
                if aliases.is_empty() {
                    continue;
                }
                prods.push(Prod {
                    id,
                    aliases,
                    code,
                    en,
                    ja,
                    th,
                });
            }
        }
    }

    // Closed tables: a few regexes with fixed targets, e.g. a `5G` suffix.
    if style == Style::UpperClosed {
        let picks: HashSet<usize> = rng
            .subset(&(0..prods.len()).collect::<Vec<_>>(), regexes_per_table)
            .into_iter()
            .collect();
        for (pi, p) in prods.iter().enumerate() {
            if !picks.contains(&pi) {
                continue;
            }
            let n = normalize(&steps, &p.code);
            let src = format!("^{n}(?:5G|LTE)$");
            let re = Regex::new(&src).unwrap();
            let clash = seen_norm.keys().any(|a| re.is_match(a));
            if !clash {
                regexes.push(SkuRegex {
                    src,
                    re,
                    target: p.id.clone(),
                });
            }
        }
    }

    // Pairwise: no regex matches another's sample inputs (disjointness by construction, spot-checked).
    let samples: Vec<Vec<String>> = regexes.iter().map(regex_samples).collect();
    for (i, r) in regexes.iter().enumerate() {
        for (j, ss) in samples.iter().enumerate() {
            for x in ss {
                assert!(
                    r.re.is_match(x) == (i == j),
                    "sku regex overlap {} vs {x}",
                    r.src
                );
            }
        }
    }

    let lookup = |input: &str| -> Option<String> {
        let n = normalize(&steps, input);
        if let Some(t) = seen_norm.get(&n) {
            return Some(t.clone());
        }
        for r in &regexes {
            if let Some(c) = r.re.captures(&n) {
                let mut out = String::new();
                c.expand(&r.target, &mut out);
                return Some(out);
            }
        }
        None
    };

    // ---- render
    let mut s = String::new();
    writeln!(
        s,
        "// Product codes for {}: they arrive abbreviated, in English, Japanese and Thai.",
        name
    )
    .unwrap();
    writeln!(
        s,
        "// Exact aliases are looked up first, then the regexes in order.\n"
    )
    .unwrap();
    writeln!(s, "sku {name} {{").unwrap();
    writeln!(s, "  normalize {norm_src}").unwrap();
    if style == Style::UpperClosed {
        let mut ids: Vec<&str> = prods.iter().map(|p| p.id.as_str()).collect();
        ids.dedup();
        s.push_str("  products ");
        for (i, chunk) in ids.chunks(4).enumerate() {
            if i > 0 {
                s.push_str(",\n           ");
            }
            s.push_str(&chunk.join(", "));
        }
        s.push('\n');
    }
    s.push('\n');
    let mut last_family = String::new();
    for p in &prods {
        let fam = p.id.split('-').take(2).collect::<Vec<_>>().join("-");
        if fam != last_family {
            writeln!(s, "  // {fam}").unwrap();
            last_family = fam;
        }
        let quoted: Vec<String> = p.aliases.iter().map(|a| format!("\"{a}\"")).collect();
        if quoted.len() > 3 && rng.chance(30) {
            writeln!(
                s,
                "  {}\n    | {} => {}",
                quoted[..2].join(" | "),
                quoted[2..].join(" | "),
                p.id
            )
            .unwrap();
        } else {
            writeln!(s, "  {} => {}", quoted.join(" | "), p.id).unwrap();
        }
    }
    if !regexes.is_empty() {
        s.push_str("\n  // families whose codes follow a pattern\n");
        for r in &regexes {
            if style == Style::UpperClosed {
                writeln!(s, "  /{}/ => {}", r.src, r.target).unwrap();
            } else {
                writeln!(s, "  /{}/ => \"{}\"", r.src, r.target).unwrap();
            }
        }
    }

    // ---- test vectors
    s.push('\n');
    let mut tests: Vec<(String, Option<String>)> = Vec::new();
    for _ in 0..rng.range(14, 24) {
        let p = &prods[rng.below(prods.len())];
        let input = match rng.below(6) {
            0 if upper => p
                .code
                .to_lowercase()
                .chars()
                .flat_map(|c| {
                    if c.is_ascii_digit() && rng.chance(40) {
                        vec![' ', c]
                    } else {
                        vec![c]
                    }
                })
                .collect(),
            0 => format!("  {}®  ", p.en.to_uppercase()),
            1 => fullwidth(&p.en),
            2 if upper => {
                p.ja.chars()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(if rng.chance(50) { " " } else { "" })
            }
            2 => p.ja.clone(),
            3 if upper => p.th.replace(' ', ""),
            3 => p.th.replace(' ', "  "),
            4 => {
                p.en.to_lowercase()
                    .replace(' ', if upper { "-" } else { "   " })
            }
            _ => p.aliases[rng.below(p.aliases.len())].clone(),
        };
        let got = lookup(&input);
        if got.is_some() {
            tests.push((input, got));
        }
    }
    // regex-only inputs (generations not in the alias list)
    for r in regexes.iter().take(4) {
        let x = regex_samples(r)[0].clone();
        let input = if upper {
            x.to_lowercase()
        } else {
            x.to_uppercase()
        };
        if let Some(got) = lookup(&input) {
            tests.push((input, Some(got)));
        }
    }
    for miss in [
        "nokia 3310",
        "ノキア3310",
        "โนเกีย 3310",
        "Walkman NW-A306",
        "unknown device",
    ] {
        if rng.chance(60) {
            assert!(lookup(miss).is_none(), "{miss} unexpectedly matches");
            tests.push((miss.to_string(), None));
        }
    }
    let mut seen_tests = HashSet::new();
    tests.retain(|(i, _)| seen_tests.insert(i.clone()));
    for (input, want) in &tests {
        let input_q = format!("\"{}\"", input.replace('\\', "\\\\").replace('"', "\\\""));
        match want {
            Some(w)
                if w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                writeln!(s, "  test {input_q:<32} => {w}").unwrap()
            }
            Some(w) => writeln!(s, "  test {input_q:<32} => \"{w}\"").unwrap(),
            None => writeln!(s, "  test {input_q:<32} => none").unwrap(),
        }
    }
    s.push_str("}\n");
    (name, s)
}

/// A couple of inputs matched by a generated regex.
fn regex_samples(r: &SkuRegex) -> Vec<String> {
    let body = &r.src[1..r.src.len() - 1]; // strip ^ and $
    if let Some(b) = body.strip_suffix("(?:5G|LTE)") {
        return vec![format!("{b}5G"), format!("{b}LTE")];
    }
    let (pre, post) = body.split_once("(\\d{1,2})").expect("digit group");
    let pre = pre.trim_end_matches(" ?");
    let post = post.trim_start_matches(" ?");
    vec![format!("{pre}99{post}"), format!("{pre}7{post}")]
}
