//! The IR: plain, versioned data (serde), independent of pest and of the
//! AST. Every rule carries a [`Loc`] so a runtime error can point at the
//! `.l3map` line that caused it.

mod field;
pub mod fold;
mod graph;
pub mod index;
mod link;
mod lower;

pub use field::TicketField;
pub use index::{Index, Named, Site, Use};
pub use link::{Link, Pick, ZdKey, ZdObject};
pub use lower::{
    lower, lower_tests, revision as lower_revision, revision_with_lock as lower_revision_with_lock,
    ty as lower_ty,
};

pub use crate::model::{Category, FormFacts as Form, Kind, SecretSource};
use crate::sku::{Pattern, Step};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped on every incompatible change of the IR's shape.
pub const IR_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub ir_version: u32,
    /// Content hash of the sources: identifies a mapping revision.
    pub revision: String,
    pub files: Vec<String>,
    pub connections: Vec<Connection>,
    pub status_tables: Vec<StatusTable>,
    pub mappings: Vec<Mapping>,
    pub sku_tables: Vec<SkuTable>,
    pub templates: Vec<Template>,
    pub escalations: Vec<Escalation>,
    /// How records of a Zendesk and a Salesforce connection correspond.
    #[serde(default)]
    pub links: Vec<Link>,
    /// The custom ticket fields of Zendesk connections as `fields` declares
    /// them: what an agent may ask to write (`turn.requested_fields`), and
    /// the typed inputs the MCP tools offer. An addition: `IR_VERSION` stays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ticket_fields: Vec<TicketField>,
    /// [`Program::index`], made on first use.
    #[serde(skip)]
    index: index::IndexCache,
}

/// Where a rule came from: index into `files`, 1-based line/column, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub file: u32,
    pub line: u32,
    pub col: u32,
    pub start: u32,
    pub end: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretRef {
    /// The property it is for: `token`, `client_secret`, ...
    pub key: String,
    /// Where it is read from; serialised `"env"` or `"file"`.
    pub source: SecretSource,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub name: String,
    pub kind: Kind,
    pub settings: BTreeMap<String, String>,
    pub secrets: Vec<SecretRef>,
    pub scopes: Vec<String>,
    pub objects: Vec<String>,
    pub rate_limit_rpm: Option<u32>,
    pub max_concurrent: Option<u32>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub name: String,
    pub category: Category,
    pub label: Option<String>,
    pub terminal: bool,
    pub initial: bool,
    pub custom_status_id: Option<u64>,
    /// The custom status it is on the instance: `custom_status_id`, else
    /// its category's default (from the lockfile; unknown without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_status_id: Option<u64>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Expanded: `*` becomes every non-terminal status.
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub wildcard: bool,
    pub when: Option<Expr>,
    /// The condition as written, so a refusal can quote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusTable {
    pub connection: String,
    pub statuses: Vec<Status>,
    pub transitions: Vec<Transition>,
    pub loc: Loc,
    /// Every ticket form of the instance and the custom statuses each
    /// offers (from the lockfile; empty: unknown). A move to a status the
    /// ticket's form does not offer is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forms: Vec<Form>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "of", rename_all = "snake_case")]
pub enum Type {
    String,
    Number,
    Bool,
    Date,
    Money(Option<String>),
    Enum(Vec<String>),
    Status(Option<String>),
    List(Box<Type>),
    Any,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "system", rename_all = "snake_case")]
pub enum FieldRef {
    /// A Zendesk ticket field: custom (with its id) or standard (no id).
    Zendesk {
        connection: String,
        field: String,
        id: Option<u64>,
    },
    /// A Salesforce field, `Object.Field` or a relation path.
    Salesforce {
        connection: String,
        object: String,
        path: String,
    },
}

impl FieldRef {
    /// Whether two references name the same field: one connection and one
    /// field name or path (a custom field's id and the Salesforce object
    /// aside, which the name already decides).
    pub fn same_field(&self, other: &FieldRef) -> bool {
        match (self, other) {
            (
                FieldRef::Zendesk {
                    connection: c1,
                    field: f1,
                    ..
                },
                FieldRef::Zendesk {
                    connection: c2,
                    field: f2,
                    ..
                },
            ) => c1 == c2 && f1 == f2,
            (
                FieldRef::Salesforce {
                    connection: c1,
                    path: p1,
                    ..
                },
                FieldRef::Salesforce {
                    connection: c2,
                    path: p2,
                    ..
                },
            ) => c1 == c2 && p1 == p2,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// `None` for the default arm.
    pub patterns: Option<Vec<Value>>,
    pub value: Value,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapRule {
    pub source: FieldRef,
    pub source_type: Type,
    pub target: FieldRef,
    pub target_type: Type,
    pub table: Option<Vec<Arm>>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub from: String,
    pub to: String,
    pub rules: Vec<MapRule>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuRule {
    pub patterns: Vec<Pattern>,
    pub target: String,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuTest {
    pub input: String,
    pub expected: Option<String>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuTable {
    pub name: String,
    pub steps: Vec<Step>,
    pub products: Vec<String>,
    pub rules: Vec<SkuRule>,
    pub tests: Vec<SkuTest>,
    /// Where the table is used: each an action when its source has text.
    #[serde(default)]
    pub applies: Vec<SkuApply>,
    pub loc: Loc,
    /// The compiled matcher, built on first use and shared by every event.
    #[serde(skip)]
    pub compiled: CompiledSku,
}

impl SkuTable {
    /// The table as one alias hash table and one regex set.
    pub fn matcher(&self) -> &crate::sku::Matcher {
        self.compiled.0.get_or_init(|| {
            let rules: Vec<(Pattern, usize, String)> = self
                .rules
                .iter()
                .enumerate()
                .flat_map(|(i, r)| {
                    r.patterns
                        .iter()
                        .map(move |p| (p.clone(), i, r.target.clone()))
                })
                .collect();
            crate::sku::Matcher::new(self.steps.clone(), &rules)
        })
    }
}

/// A cache, not data: equal whatever it holds, and empty when read back.
#[derive(Debug, Clone, Default)]
pub struct CompiledSku(std::sync::OnceLock<crate::sku::Matcher>);

impl PartialEq for CompiledSku {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// `apply turn.product -> helpdesk product_id`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkuApply {
    pub source: Ref,
    pub target: FieldRef,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub name: String,
    pub args: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplatePart {
    Text(String),
    Var {
        var: Ref,
        filters: Vec<Filter>,
        loc: Loc,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub parts: Vec<TemplatePart>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentBody {
    Template(String),
    Inline(Vec<TemplatePart>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum EscAction {
    /// A private Zendesk comment, or an internal Salesforce CaseComment.
    Comment {
        connection: String,
        kind: Kind,
        body: CommentBody,
        loc: Loc,
    },
    SetField {
        field: FieldRef,
        value: Expr,
        loc: Loc,
    },
    AssignGroup {
        connection: String,
        group: String,
        loc: Loc,
    },
    SetStatus {
        connection: String,
        status: String,
        loc: Loc,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub name: String,
    pub when: Expr,
    /// The condition as written, so a refusal and a tool's description can
    /// quote it (not part of [`Escalation::handoff_id`]: `when` is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub reason: String,
    pub actions: Vec<EscAction>,
    pub loc: Loc,
    /// [`Escalation::handoff_id`], made on first use.
    #[serde(skip)]
    pub handoff: HandoffId,
}

/// A cache, not data: equal whatever it holds, and empty when read back.
#[derive(Debug, Clone, Default)]
pub struct HandoffId(std::sync::OnceLock<String>);

impl PartialEq for HandoffId {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Escalation {
    /// What a hand-off's idempotency key is made of: `h` and 20 hex digits
    /// of a hash of the escalation's name and meaning. The meaning is its
    /// lowered condition, reason and actions (with the text of the
    /// templates they render, and the connections and statuses they
    /// name), every source location left out. So spaces, comments, `l3map
    /// fmt`, declaration order, moving it to another file and edits to
    /// other rules keep the id (a ticket already handed off is not handed
    /// off again); renaming the escalation or changing what it does gives
    /// a new one. The version of l3map is not hashed in: an upgrade keeps
    /// the ids unless it changes how an escalation compiles (its IR), which
    /// would re-arm hand-offs and must be said in the release notes.
    pub fn handoff_id(&self, templates: &[Template]) -> &str {
        self.handoff.0.get_or_init(|| {
            use sha2::{Digest, Sha256};
            let actions: Vec<serde_json::Value> = self
                .actions
                .iter()
                .map(|a| match a {
                    EscAction::Comment {
                        body: CommentBody::Template(name),
                        connection,
                        kind,
                        ..
                    } => serde_json::json!({
                        "action": "comment",
                        "connection": connection,
                        "kind": kind,
                        // The text it renders, not the template's name or place.
                        "template": templates.iter().find(|t| &t.name == name).map(|t| &t.parts),
                    }),
                    other => serde_json::to_value(other).unwrap_or_default(),
                })
                .collect();
            let mut meaning = serde_json::json!({
                "name": self.name,
                "when": self.when,
                "reason": self.reason,
                "actions": actions,
            });
            strip_locs(&mut meaning);
            strip_read_connections(&mut meaning);
            let mut h = Sha256::new();
            h.update(b"l3map hand-off\0");
            h.update(meaning.to_string().as_bytes());
            let mut id = String::with_capacity(21);
            id.push('h');
            id.push_str(&hex::encode(&h.finalize()[..10]));
            id
        })
    }
}

/// Removes every `loc` (where a rule or expression is written) from a
/// serialised IR value: what it means, not where it stands. A field's
/// enum type keeps only that it is an enum: adding a value to the field's
/// declaration does not change a condition that reads the field.
fn strip_locs(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("loc");
            if m.get("type").and_then(|t| t.as_str()) == Some("enum") {
                m.remove("of");
            }
            m.values_mut().for_each(strip_locs);
        }
        serde_json::Value::Array(xs) => xs.iter_mut().for_each(strip_locs),
        _ => {}
    }
}

/// Removes the connection of every Salesforce read (`Ref::Salesforce`,
/// serialised `{"salesforce": {"connection", "path", ...}}`) from a
/// hand-off's meaning. Reads gained their connection after hand-off ids
/// were first issued; hashing it would re-arm every escalation that reads
/// a Salesforce field or renders one. It adds no meaning: it follows from
/// the object, which is hashed, and the connections' declarations.
/// (`FieldRef::Salesforce` is tagged `"system"` and keeps its connection,
/// which it always had.)
fn strip_read_connections(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(read)) = m.get_mut("salesforce") {
                read.remove("connection");
            }
            m.values_mut().for_each(strip_read_connections);
        }
        serde_json::Value::Array(xs) => xs.iter_mut().for_each(strip_read_connections),
        _ => {}
    }
}

/// What a path refers to in the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ref {
    /// `ticket.status`, `turn.summary`, `comment.author`, `escalation.reason`
    Event { root: String, field: String },
    /// A Zendesk custom ticket field. `ty` is its declared type: payloads
    /// carry decimals as text and amounts as bare numbers.
    TicketField {
        alias: String,
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ty: Option<Type>,
    },
    /// A Salesforce record field, e.g. `Account.SLA_Tier__c`, of the
    /// connection it is read from: the one declaring it, else the first
    /// listing its object (as the checker resolves it). IR written before
    /// reads carried it reads back with none, which counts as every
    /// Salesforce connection: an addition, so `IR_VERSION` stays.
    Salesforce {
        #[serde(default)]
        connection: String,
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ty: Option<Type>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Value {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    /// Amount × 10⁴ and ISO currency.
    Money(i64, String),
    List(Vec<Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Has,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExprKind {
    Lit(Value),
    Ref(Ref),
    List(Vec<Expr>),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    #[serde(flatten)]
    pub kind: ExprKind,
    pub loc: Loc,
}

/// A `test` block: not part of a [`Program`] (the runtime never needs it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    pub name: String,
    /// The event as written (JSON); `id` and `at` may be missing.
    pub event: String,
    pub expects: Vec<Expect>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    pub what: Expectation,
    /// The source text of the `expect` line, for reports.
    pub source: String,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "expect", rename_all = "snake_case")]
pub enum Expectation {
    Nothing,
    /// No action of this kind: status, field, comment, group, sku, refusal.
    No {
        kind: String,
    },
    Status {
        connection: String,
        status: String,
    },
    Field {
        field: FieldRef,
        value: Value,
    },
    Comment {
        connection: String,
        contains: bool,
        text: String,
    },
    Group {
        connection: String,
        group: String,
    },
    Sku {
        table: String,
        product: Option<String>,
    },
    Refused {
        text: String,
    },
}
