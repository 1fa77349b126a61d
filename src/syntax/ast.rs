//! The typed syntax tree. Pure data with spans; no logic lives here.
//!
//! Trees compare by structure: equality ignores where a node stands in the
//! text (each span field is `#[educe(PartialEq(ignore))]`, Cedar's `Node<T>`
//! in spirit), so `l3map fmt` can check that its output parses to the same
//! tree. A [`Span`] itself compares for real. Where a span is the only sign
//! of something written (`terminal`), its presence still counts.

use super::span::Span;
use educe::Educe;
use serde::Serialize;

/// `terminal` written on both sides or on neither, wherever it stands.
fn same_presence(a: &Option<Span>, b: &Option<Span>) -> bool {
    a.is_some() == b.is_some()
}

/// The same optional value (an id, a product), wherever it stands.
fn same_value<T: PartialEq>(a: &Option<(T, Span)>, b: &Option<(T, Span)>) -> bool {
    a.as_ref().map(|(v, _)| v) == b.as_ref().map(|(v, _)| v)
}

/// The same name, wherever it stands.
fn same_name(a: &(String, Span), b: &(String, Span)) -> bool {
    a.0 == b.0
}

/// The same names in the same order, wherever they stand.
fn same_names(a: &[(String, Span)], b: &[(String, Span)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0)
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Ident {
    pub name: String,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

/// A string literal: `"..."` (escapes processed) or `"""..."""` (raw).
#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Text {
    pub value: String,
    #[educe(PartialEq(ignore))]
    pub span: Span,
    /// Span of the body between the quotes, as written in the source.
    #[educe(PartialEq(ignore))]
    pub body: Span,
    pub raw: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Item {
    Connection(Connection),
    Statuses(StatusTable),
    Fields(FieldBlock),
    Map(Mapping),
    Sku(SkuTable),
    Template(Template),
    Escalation(Escalation),
    Test(TestBlock),
    Link(Link),
}

impl Item {
    pub fn name(&self) -> &Ident {
        match self {
            Item::Connection(c) => &c.name,
            Item::Statuses(s) => &s.conn,
            Item::Fields(f) => &f.conn,
            Item::Map(m) => &m.from,
            Item::Sku(s) => &s.name,
            Item::Template(t) => &t.name,
            Item::Escalation(e) => &e.name,
            Item::Test(t) => &t.name,
            Item::Link(l) => &l.object,
        }
    }
}

// ------------------------------------------------------------- connections

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Connection {
    pub name: Ident,
    pub kind: Ident,
    pub props: Vec<Property>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Property {
    pub key: Ident,
    pub values: Vec<PropValue>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct PropValue {
    pub kind: PropKind,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SecretSource {
    Env,
    File,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum PropKind {
    Secret {
        source: SecretSource,
        name: String,
    },
    Rate(u32),
    Money(Money),
    Number(f64),
    Text(String),
    Bool(bool),
    /// `tickets:write`, `hc:*`
    Scope(String),
    /// A bare word or a dotted Salesforce path.
    Word(String),
}

/// A decimal amount with a currency. `units` is the amount × 10⁴ so
/// comparisons are exact for every real currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub units: i64,
    pub currency: String,
}

// ------------------------------------------------------------- statuses

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct StatusTable {
    /// The connection whose ticket (or Case) statuses these are.
    pub conn: Ident,
    /// `forms "Billing", "Refunds"`: the Zendesk ticket forms the table
    /// applies to; empty: every active form.
    pub forms: Vec<Text>,
    pub statuses: Vec<StatusDecl>,
    pub transitions: Vec<Transition>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct StatusDecl {
    pub name: Ident,
    pub category: Ident,
    pub label: Option<Text>,
    #[educe(PartialEq(method(same_presence)))]
    pub terminal: Option<Span>,
    #[educe(PartialEq(method(same_presence)))]
    pub initial: Option<Span>,
    #[educe(PartialEq(method(same_value)))]
    pub id: Option<(u64, Span)>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub enum From {
    Any(#[educe(PartialEq(ignore))] Span),
    List(Vec<Ident>),
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Transition {
    pub from: From,
    pub to: Vec<Ident>,
    pub when: Option<Expr>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

// ------------------------------------------------------------- fields

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct FieldBlock {
    pub conn: Ident,
    pub fields: Vec<FieldDecl>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

/// A Zendesk field alias (`sla_tier`) or a Salesforce path (`Account.SLA_Tier__c`).
#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub enum FieldName {
    Alias(Ident),
    Sf(Vec<Ident>, #[educe(PartialEq(ignore))] Span),
}

impl FieldName {
    pub fn span(&self) -> Span {
        match self {
            FieldName::Alias(i) => i.span,
            FieldName::Sf(_, s) => *s,
        }
    }

    pub fn display(&self) -> String {
        match self {
            FieldName::Alias(i) => i.name.clone(),
            FieldName::Sf(segs, _) => segs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join("."),
        }
    }
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct FieldDecl {
    pub name: FieldName,
    #[educe(PartialEq(method(same_value)))]
    pub id: Option<(u64, Span)>,
    pub ty: TypeExpr,
    /// `external_id`, `unique`, `indexed`, as written.
    pub attrs: Vec<Ident>,
    pub label: Option<Text>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct TypeExpr {
    pub name: Ident,
    #[educe(PartialEq(method(same_names)))]
    pub args: Vec<(String, Span)>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

// ------------------------------------------------------------- links

mod links;
pub use links::{Link, LinkOn, LinkTickets};

// ------------------------------------------------------------- mappings

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Mapping {
    pub from: Ident,
    pub to: Ident,
    pub rules: Vec<MapRule>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct MapRule {
    pub source: FieldName,
    pub target: FieldName,
    pub table: Option<Translation>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Translation {
    pub arms: Vec<Arm>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Arm {
    /// `None` for the default arm `_`.
    pub patterns: Option<Vec<Expr>>,
    pub value: Expr,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

// ------------------------------------------------------------- sku

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct SkuTable {
    pub name: Ident,
    pub normalize: Vec<NormStep>,
    #[educe(PartialEq(method(same_names)))]
    pub products: Vec<(String, Span)>,
    pub rules: Vec<SkuRule>,
    pub tests: Vec<SkuTest>,
    pub applies: Vec<SkuApply>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

/// `apply turn.product -> helpdesk product_id`: where the table is used.
#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct SkuApply {
    pub source: Vec<Ident>,
    #[educe(PartialEq(ignore))]
    pub source_span: Span,
    pub conn: Ident,
    pub field: FieldName,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct NormStep {
    pub name: Ident,
    pub arg: Option<Text>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub enum SkuPattern {
    Alias(Text),
    Regex {
        source: String,
        #[educe(PartialEq(ignore))]
        span: Span,
    },
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct SkuRule {
    pub patterns: Vec<SkuPattern>,
    #[educe(PartialEq(method(same_name)))]
    pub target: (String, Span),
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct SkuTest {
    pub input: Text,
    /// `None` for `=> none`.
    #[educe(PartialEq(method(same_value)))]
    pub expected: Option<(String, Span)>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

// ------------------------------------------------------------- templates

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Template {
    pub name: Ident,
    pub body: TemplateBody,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct TemplateBody {
    pub parts: Vec<TemplatePart>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub enum TemplatePart {
    Text(String),
    Var {
        path: Vec<Ident>,
        filters: Vec<Filter>,
        #[educe(PartialEq(ignore))]
        span: Span,
    },
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Filter {
    pub name: Ident,
    pub args: Vec<Expr>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

// ------------------------------------------------------------- escalations

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Escalation {
    pub name: Ident,
    pub stmts: Vec<EscStmt>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CommentBody {
    Template(Ident),
    Inline(TemplateBody),
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub enum EscStmt {
    When(Expr),
    Reason(Text),
    Comment {
        conn: Ident,
        body: CommentBody,
        #[educe(PartialEq(ignore))]
        span: Span,
    },
    Set {
        conn: Ident,
        field: FieldName,
        value: Expr,
        #[educe(PartialEq(ignore))]
        span: Span,
    },
    Assign {
        conn: Ident,
        group: Text,
        #[educe(PartialEq(ignore))]
        span: Span,
    },
    Status {
        conn: Ident,
        status: Ident,
        #[educe(PartialEq(ignore))]
        span: Span,
    },
}

// ------------------------------------------------------------- tests

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct TestBlock {
    pub name: Ident,
    /// The event as JSON text; more than one is an error the checker reports.
    pub events: Vec<Text>,
    pub expects: Vec<Expect>,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Expect {
    pub what: Expectation,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub enum Expectation {
    /// No action and no refusal at all.
    Nothing,
    /// No action of this kind (`status`, `field`, ...; `refusal`).
    No(Ident),
    Status {
        conn: Ident,
        status: Ident,
    },
    Field {
        conn: Ident,
        field: FieldName,
        value: Expr,
    },
    Comment {
        conn: Ident,
        contains: bool,
        text: Text,
    },
    Group {
        conn: Ident,
        group: Text,
    },
    /// `None` for `expect sku products none`: the input matches no product.
    Sku {
        table: Ident,
        #[educe(PartialEq(method(same_value)))]
        product: Option<(String, Span)>,
    },
    Refused(Text),
}

// ------------------------------------------------------------- expressions

#[derive(Debug, Clone, Educe, Serialize)]
#[educe(PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    #[educe(PartialEq(ignore))]
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinOp {
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

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::Has => "has",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Lit {
    Str(String),
    Num(f64),
    Money(Money),
    Bool(bool),
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ExprKind {
    Lit(Lit),
    List(Vec<Expr>),
    /// `ticket.sla_tier`, `Account.SLA_Tier__c`
    Path(Vec<Ident>),
    /// A bare name: a status, an enum value.
    Symbol(Ident),
    Not(Box<Expr>),
    /// `a and b and c`, flattened so long chains stay shallow.
    And(Vec<Expr>),
    /// `a or b or c`, flattened likewise.
    Or(Vec<Expr>),
    /// A comparison, `in` or `has`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
}
