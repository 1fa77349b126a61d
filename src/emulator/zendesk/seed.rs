//! What the emulator starts with, compiled from the mappings.

use super::forms::{Forms, SeedForm};
use super::CATEGORIES;
use crate::ir::{EscAction, FieldRef, Named, Program, Ref, Site, Type, Use};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A custom ticket field's type, as Zendesk names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FieldKind {
    Text,
    Decimal,
    Checkbox,
    Date,
    /// A drop-down: the values (tags) it accepts.
    Tagger(Vec<String>),
}

impl FieldKind {
    pub(super) fn zendesk_type(&self) -> &'static str {
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedField {
    pub id: u64,
    pub title: String,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// `None`: no organization (the seeded tickets 4211..5105 predate their
    /// requester joining one).
    pub organization_id: Option<u64>,
    /// `None`: the end user Ana Souza (2000).
    pub requester_id: Option<u64>,
}

/// What the emulator starts with: the desks' fields, statuses and groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seed {
    pub fields: Vec<SeedField>,
    pub statuses: Vec<SeedStatus>,
    pub groups: Vec<String>,
    pub tickets: Vec<SeedTicket>,
    /// Ticket forms with the statuses each offers, and category defaults.
    pub forms: Forms,
}

const FINTECH: [(&str, &str); 5] = [
    (
        "fintech/connections.l3map",
        include_str!("../../../mappings/fintech/connections.l3map"),
    ),
    (
        "fintech/escalations.l3map",
        include_str!("../../../mappings/fintech/escalations.l3map"),
    ),
    (
        "fintech/fields.l3map",
        include_str!("../../../mappings/fintech/fields.l3map"),
    ),
    (
        "fintech/kyc.l3map",
        include_str!("../../../mappings/fintech/kyc.l3map"),
    ),
    (
        "fintech/statuses.l3map",
        include_str!("../../../mappings/fintech/statuses.l3map"),
    ),
];

const SHOP: [(&str, &str); 2] = [
    (
        "shop/shop.l3map",
        include_str!("../../../mappings/shop/shop.l3map"),
    ),
    (
        "shop/tickets.l3map",
        include_str!("../../../mappings/shop/tickets.l3map"),
    ),
];

fn compile(files: &[(&str, &str)]) -> Option<Program> {
    let mut sources = crate::syntax::SourceMap::new();
    for (path, text) in files {
        sources.add(*path, *text);
    }
    crate::compile::compile(&sources).ok()
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
        // From the lockfile, through the IR: its forms, and the category
        // defaults its category-only statuses resolve to.
        let mut locked_forms = Vec::new();
        let mut defaults = BTreeMap::new();
        for p in programs {
            collect_fields(p, &mut fields);
            for table in &p.status_tables {
                for f in &table.forms {
                    if locked_forms.iter().all(|l: &SeedForm| l.id != f.id) {
                        locked_forms.push(SeedForm {
                            id: f.id,
                            name: f.name.clone(),
                            active: f.active,
                            default: false,
                            custom_status_ids: f.custom_status_ids.clone(),
                        });
                    }
                }
                for s in &table.statuses {
                    let cat = s.category.as_str().to_string();
                    let id = s.custom_status_id.or_else(|| {
                        // A category-only status is its category's default.
                        let d = s.instance_status_id?;
                        (!defaults.contains_key(&cat)).then(|| {
                            defaults.insert(cat.clone(), d);
                            d
                        })
                    });
                    if statuses.iter().all(|(n, ..)| *n != s.name) {
                        let label = s.label.clone().unwrap_or_else(|| s.name.clone());
                        statuses.push((s.name.clone(), cat, label, id));
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
        let forms = match locked_forms.is_empty() {
            true => Forms::default_for(statuses.iter().map(|st| st.id)),
            false => {
                // The first active form stands for the account's default
                // (the IR does not carry which one it is).
                if let Some(f) = locked_forms.iter_mut().find(|f| f.active) {
                    f.default = true;
                }
                Forms {
                    forms: locked_forms,
                    defaults,
                }
            }
        };
        Seed {
            fields,
            statuses,
            groups,
            tickets,
            forms,
        }
    }

    /// The same desks written out by hand: used only if the embedded
    /// mappings fail to compile.
    pub fn fallback() -> Seed {
        let fields = demo_fields();
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
            forms: Forms::default_for(statuses.iter().map(|st| st.id)),
            fields,
            statuses,
            groups,
            tickets,
        }
    }
}

/// The fintech desk's and the shop's custom fields, written out by hand:
/// the fallback seed's, and the ones the sample tickets hold hand-written
/// values for.
fn demo_fields() -> Vec<SeedField> {
    let tagger = |v: &[&str]| FieldKind::Tagger(v.iter().map(|s| s.to_string()).collect());
    let f = |id, title: &str, kind| SeedField {
        id,
        title: title.into(),
        kind,
    };
    vec![
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
    ]
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
    let index = p.index();
    for u in index.uses() {
        if let Named::Field { field, ty } = &u.named {
            add(field, ty.as_ref());
        }
    }
    // Then the fields conditions and `set` values read, typed by their
    // declaration. (Fields only templates or SKU tables read are not
    // seeded: they never were.)
    let read = |u: &&Use| {
        matches!(
            u.site,
            Site::Transition | Site::EscalationWhen | Site::SetValue
        )
    };
    for u in index.uses().filter(read) {
        if let Named::Read(Ref::TicketField { alias, id, ty }) = &u.named {
            let r = FieldRef::Zendesk {
                connection: String::new(),
                field: alias.clone(),
                id: Some(*id),
            };
            add(&r, ty.as_ref());
        }
    }
    // And every field `fields` declares: the instance has them whether a
    // rule names them or not (an agent may write one through MCP).
    for f in &p.ticket_fields {
        add(&f.field, Some(&f.ty));
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
/// and statuses the seed has. The demo desks' fields keep their
/// hand-written values; every other field (a user's own project) gets a
/// sample value of its type on every ticket ([`sample_value`]), so a
/// project's own fields are never all empty.
fn sample_tickets(fields: &[SeedField], statuses: &[SeedStatus]) -> Vec<SeedTicket> {
    let has_field = |id: u64| fields.iter().any(|f| f.id == id);
    let demo: BTreeSet<u64> = demo_fields().iter().map(|f| f.id).collect();
    let own: Vec<&SeedField> = fields.iter().filter(|f| !demo.contains(&f.id)).collect();
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
        organization_id: None,
        requester_id: None,
    };
    let mut tickets = vec![
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
    ];
    // Acme Payments (the second seeded Account's organization): three
    // unsolved tickets and a solved one, requested by its Contact, for a
    // fan-out to reach the three and leave the fourth alone.
    let acme = super::parties::FIRST_ORG_ID + 1;
    for (id, subject, st) in [
        (6101, "Payout delayed", "open"),
        (6102, "API key rotation", "open"),
        (6103, "Invoice missing VAT number", "open"),
        (6104, "Password reset", "solved"),
    ] {
        let mut ticket = t(id, subject, st.to_string(), vec![], &[]);
        ticket.organization_id = Some(acme);
        ticket.requester_id = Some(super::REQUESTER_ID + 1);
        tickets.push(ticket);
    }
    for (i, ticket) in tickets.iter_mut().enumerate() {
        for f in &own {
            ticket.fields.push((f.id, sample_value(f, i, ticket.id)));
        }
    }
    tickets
}

/// The `i`th sample ticket's value of a field of the user's project:
/// drop-down values in turn (ticket `i` gets option `i` modulo their
/// number), a checkbox false then true in turn, decimals 250, 1200,
/// 18000, 64000, 99.5, dates 2027-01-15 to 2027-05-15, text
/// `"<field alias> <ticket id>"`.
fn sample_value(f: &SeedField, i: usize, ticket: u64) -> Value {
    const DECIMALS: [f64; 5] = [250.0, 1200.0, 18000.0, 64000.0, 99.5];
    match &f.kind {
        FieldKind::Tagger(options) if !options.is_empty() => json!(options[i % options.len()]),
        FieldKind::Tagger(_) => Value::Null,
        FieldKind::Checkbox => json!(!i.is_multiple_of(2)),
        FieldKind::Decimal => match DECIMALS[i % DECIMALS.len()] {
            // Whole amounts as integers, as a client would send them.
            n if n.fract() == 0.0 => json!(n as i64),
            n => json!(n),
        },
        FieldKind::Date => json!(format!("2027-{:02}-15", i % 12 + 1)),
        FieldKind::Text => json!(format!("{} {ticket}", f.title)),
    }
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
}
