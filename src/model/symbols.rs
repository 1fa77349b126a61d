//! The resolved symbol tables of a project: what the checker declares and
//! resolves, and what lowering reads to build the IR. They carry spans, so a
//! later lint can point at the declaration.

use super::{Category, Kind, Ty};
use crate::syntax::ast;
use crate::syntax::Span;
use std::collections::BTreeMap;

/// A credential reference as declared (`env("X")` / `file("/p")`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SecretRef {
    pub key: String,
    pub source: ast::SecretSource,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub name: String,
    pub kind: Kind,
    pub span: Span,
    pub decl: Span,
    pub scopes: Vec<(String, Span)>,
    pub scopes_span: Option<Span>,
    pub objects: Vec<(String, Span)>,
    /// The currencies the conversations on this connection deal in
    /// (`currencies USD, EUR`), for the money lint.
    pub currencies: Vec<(String, Span)>,
    pub secrets: Vec<SecretRef>,
    /// Plain settings (subdomain, url, instance, plan, ...), as text.
    pub settings: BTreeMap<String, String>,
    pub rate_limit_rpm: Option<u32>,
    pub max_concurrent: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub id: Option<u64>,
    pub ty: Ty,
    pub span: Span,
    pub label: Option<String>,
    /// Salesforce field attributes as declared: `external_id`, `unique`,
    /// `indexed` (what a record link may look a record up by).
    pub attrs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StatusInfo {
    pub name: String,
    pub category: Category,
    pub label: Option<String>,
    pub terminal: Option<Span>,
    pub initial: bool,
    pub id: Option<u64>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct TableInfo {
    pub statuses: Vec<StatusInfo>,
    pub span: Span,
    /// `forms "Billing", ...` as declared (empty: every active form).
    pub forms: Vec<(String, Span)>,
    /// What the lockfile says about the connection's forms, when it says
    /// (filled in by the lockfile check; the IR carries it to the runtime).
    pub locked: Option<LockedForms>,
}

/// A Zendesk connection's ticket forms and default custom statuses, from
/// the schema lockfile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LockedForms {
    pub forms: Vec<FormFacts>,
    /// Each category's default custom status.
    pub defaults: Vec<(Category, u64)>,
}

impl LockedForms {
    /// The custom status a declared status is on the instance: its `#id`,
    /// else its category's default.
    pub fn resolved(&self, info: &StatusInfo) -> Option<u64> {
        info.id.or_else(|| {
            self.defaults
                .iter()
                .find(|(c, _)| *c == info.category)
                .map(|(_, id)| *id)
        })
    }
}

/// A ticket form and the custom statuses it offers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FormFacts {
    pub id: u64,
    pub name: String,
    pub active: bool,
    pub custom_status_ids: Vec<u64>,
}

impl TableInfo {
    pub fn get(&self, name: &str) -> Option<&StatusInfo> {
        self.statuses.iter().find(|s| s.name == name)
    }
}

/// The resolved symbol tables of a project: what lowering needs.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub conns: BTreeMap<String, ConnInfo>,
    /// Per connection: Zendesk alias or Salesforce `Object.Field` -> field.
    pub fields: BTreeMap<String, BTreeMap<String, FieldInfo>>,
    pub tables: BTreeMap<String, TableInfo>,
    pub templates: BTreeMap<String, Span>,
    /// SKU table -> its declared products.
    pub skus: BTreeMap<String, Vec<String>>,
}
