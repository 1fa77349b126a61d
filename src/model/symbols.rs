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
