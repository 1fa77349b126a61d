//! The typed syntax tree. Pure data with spans; no logic lives here.

use super::span::Span;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal: `"..."` (escapes processed) or `"""..."""` (raw).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Text {
    pub value: String,
    pub span: Span,
    /// Span of the body between the quotes, as written in the source.
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
        }
    }
}

// ------------------------------------------------------------- connections

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connection {
    pub name: Ident,
    pub kind: Ident,
    pub props: Vec<Property>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Property {
    pub key: Ident,
    pub values: Vec<PropValue>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropValue {
    pub kind: PropKind,
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusTable {
    /// The connection whose ticket (or Case) statuses these are.
    pub conn: Ident,
    pub statuses: Vec<StatusDecl>,
    pub transitions: Vec<Transition>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusDecl {
    pub name: Ident,
    pub category: Ident,
    pub label: Option<Text>,
    pub terminal: Option<Span>,
    pub initial: Option<Span>,
    pub id: Option<(u64, Span)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum From {
    Any(Span),
    List(Vec<Ident>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub from: From,
    pub to: Vec<Ident>,
    pub when: Option<Expr>,
    pub span: Span,
}

// ------------------------------------------------------------- fields

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldBlock {
    pub conn: Ident,
    pub fields: Vec<FieldDecl>,
    pub span: Span,
}

/// A Zendesk field alias (`sla_tier`) or a Salesforce path (`Account.SLA_Tier__c`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FieldName {
    Alias(Ident),
    Sf(Vec<Ident>, Span),
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDecl {
    pub name: FieldName,
    pub id: Option<(u64, Span)>,
    pub ty: TypeExpr,
    pub label: Option<Text>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeExpr {
    pub name: Ident,
    pub args: Vec<(String, Span)>,
    pub span: Span,
}

// ------------------------------------------------------------- mappings

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mapping {
    pub from: Ident,
    pub to: Ident,
    pub rules: Vec<MapRule>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapRule {
    pub source: FieldName,
    pub target: FieldName,
    pub table: Option<Translation>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Translation {
    pub arms: Vec<Arm>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    /// `None` for the default arm `_`.
    pub patterns: Option<Vec<Expr>>,
    pub value: Expr,
    pub span: Span,
}

// ------------------------------------------------------------- sku

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkuTable {
    pub name: Ident,
    pub normalize: Vec<NormStep>,
    pub products: Vec<(String, Span)>,
    pub rules: Vec<SkuRule>,
    pub tests: Vec<SkuTest>,
    pub applies: Vec<SkuApply>,
    pub span: Span,
}

/// `apply turn.product -> helpdesk product_id`: where the table is used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkuApply {
    pub source: Vec<Ident>,
    pub source_span: Span,
    pub conn: Ident,
    pub field: FieldName,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormStep {
    pub name: Ident,
    pub arg: Option<Text>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SkuPattern {
    Alias(Text),
    Regex { source: String, span: Span },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkuRule {
    pub patterns: Vec<SkuPattern>,
    pub target: (String, Span),
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkuTest {
    pub input: Text,
    /// `None` for `=> none`.
    pub expected: Option<(String, Span)>,
    pub span: Span,
}

// ------------------------------------------------------------- templates

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    pub name: Ident,
    pub body: TemplateBody,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateBody {
    pub parts: Vec<TemplatePart>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TemplatePart {
    Text(String),
    Var {
        path: Vec<Ident>,
        filters: Vec<Filter>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filter {
    pub name: Ident,
    pub args: Vec<Expr>,
    pub span: Span,
}

// ------------------------------------------------------------- escalations

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub name: Ident,
    pub stmts: Vec<EscStmt>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum CommentBody {
    Template(Ident),
    Inline(TemplateBody),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum EscStmt {
    When(Expr),
    Reason(Text),
    Comment {
        conn: Ident,
        body: CommentBody,
        span: Span,
    },
    Set {
        conn: Ident,
        field: FieldName,
        value: Expr,
        span: Span,
    },
    Assign {
        conn: Ident,
        group: Text,
        span: Span,
    },
    Status {
        conn: Ident,
        status: Ident,
        span: Span,
    },
}

// ------------------------------------------------------------- tests

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestBlock {
    pub name: Ident,
    /// The event as JSON text; more than one is an error the checker reports.
    pub events: Vec<Text>,
    pub expects: Vec<Expect>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expect {
    pub what: Expectation,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
        product: Option<(String, Span)>,
    },
    Refused(Text),
}

// ------------------------------------------------------------- expressions

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
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
