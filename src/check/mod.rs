//! Name resolution, types and lints over the whole project. Every problem
//! is collected (never just the first) as a [`Diagnostic`].

mod both_ways;
mod connections;
mod currency;
mod diagnostic;
pub mod error;
mod escalations;
mod link_values;
pub(crate) mod links;
mod mappings;
mod parse;
mod sku;
mod statuses;
mod test_event;
mod tests;
pub mod types;
mod unlinked;

pub use crate::model::{
    Category, ConnInfo, Env, FieldInfo, Kind, SecretRef, StatusInfo, TableInfo,
};
pub(crate) use connections::holds_no_secret;
pub use diagnostic::{DiagKind, Diagnostic};
pub use error::{CheckError, CheckErrorKind, LinkErrorKind};
pub use types::{Resolved, Scope, Ty};

use crate::syntax::ast::{self, Item};
use crate::syntax::{SourceMap, Span, SyntaxError, SyntaxErrorKind};
use std::collections::{BTreeMap, BTreeSet};

/// What the project does with each connection, for the scope lints.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    pub conns: BTreeSet<String>,
    /// conn -> (what writes, where)
    pub writes: BTreeMap<String, Vec<(String, Span)>>,
    pub status_writes: BTreeMap<String, Vec<(String, Span)>>,
    pub objects: BTreeSet<(String, String)>,
    pub templates: BTreeSet<String>,
    /// Salesforce fields written: (connection, `Object.Field`, where).
    pub sf_writes: Vec<(String, String, Span)>,
    /// Zendesk groups assigned: (connection, group name, where).
    pub groups: Vec<(String, String, Span)>,
    /// Salesforce `Object.Field` paths read or written anywhere: what a
    /// test's `records` may carry.
    pub sf_paths: BTreeSet<String>,
    /// What `map` translation tables write into Zendesk fields, for the
    /// help on a test event that holds the source value instead.
    pub translations: Vec<Translated>,
    /// Salesforce objects a `link` ties to Zendesk (what a test's
    /// `records` may carry, and what `map` rules reach tickets through).
    pub linked: BTreeSet<String>,
    /// Zendesk resources links read: (connection, `organizations` /
    /// `users`, where), for the scope lints.
    pub zd_reads: Vec<(String, &'static str, Span)>,
}

/// One translation arm's pattern into a Zendesk field: `"Infusion Pump" =>
/// infusion` of `map crm -> desk { Asset.Device_Class__c -> device_class {...} }`.
#[derive(Debug, Clone)]
pub(crate) struct Translated {
    /// `map crm -> desk`.
    pub map: String,
    /// The Zendesk connection and field alias written.
    pub conn: String,
    pub target: String,
    /// The source field and the value the arm matches.
    pub source: String,
    pub from: String,
    /// What the arm writes.
    pub to: String,
}

pub(crate) struct Ctx<'a> {
    pub sources: &'a SourceMap,
    pub env: Env,
    pub diags: Vec<Diagnostic>,
    pub usage: Usage,
}

impl<'a> Ctx<'a> {
    pub fn err(&mut self, e: CheckError) {
        self.diags.push(Diagnostic::check(e));
    }

    /// Only keeps a secondary span if it is in the same file as the primary
    /// one: miette draws one file per diagnostic.
    pub fn same_file(&self, primary: Span, other: Span) -> Option<Span> {
        (primary.file == other.file).then_some(other)
    }

    /// Reports `ident` declared again when `first` is where it was declared
    /// before; whether it was, so the caller skips the second declaration.
    pub fn declared_again(
        &mut self,
        kind: &'static str,
        ident: &crate::syntax::ast::Ident,
        first: Option<Span>,
        help: &str,
    ) -> bool {
        let Some(first) = first else {
            return false;
        };
        self.duplicate(kind, ident.name.clone(), ident.span, Some(first), help);
        true
    }

    /// Reports a second declaration of `name`; `first` is where it was first
    /// declared (shown as a label when in the same file, else as a location).
    pub fn duplicate(
        &mut self,
        kind: &'static str,
        name: impl Into<String>,
        span: Span,
        first: Option<Span>,
        help: impl Into<String>,
    ) {
        let mut help = help.into();
        let label = first.and_then(|f| self.same_file(span, f));
        if let (Some(f), None) = (first, label) {
            help = format!("{help} (first declared at {})", self.sources.locate(f));
        }
        self.err(
            CheckErrorKind::Duplicate {
                kind,
                name: name.into(),
                first: label,
                help,
            }
            .at(span),
        );
    }

    pub fn use_conn(
        &mut self,
        id: &ast::Ident,
        expected: Option<Kind>,
        what: &str,
    ) -> Option<Kind> {
        let Some(info) = self.env.conns.get(&id.name) else {
            let names: Vec<String> = self.env.conns.keys().cloned().collect();
            let help = did_you_mean(&id.name, names.iter().map(|s| s.as_str())).or_else(|| {
                Some(if names.is_empty() {
                    "declare it: `connection NAME: zendesk { ... }`".into()
                } else {
                    format!("declared connections: {}", names.join(", "))
                })
            });
            self.err(
                CheckErrorKind::Unknown {
                    kind: "connection",
                    name: id.name.clone(),
                    help,
                }
                .at(id.span),
            );
            return None;
        };
        let kind = info.kind;
        self.usage.conns.insert(id.name.clone());
        if let Some(exp) = expected {
            if exp != kind {
                let others: Vec<String> = self
                    .env
                    .conns
                    .values()
                    .filter(|c| c.kind == exp)
                    .map(|c| format!("`{}`", c.name))
                    .collect();
                self.err(
                    CheckErrorKind::WrongConnectionKind {
                        name: id.name.clone(),
                        actual: kind.as_str().into(),
                        expected: exp.as_str(),
                        what: what.into(),
                        help: if others.is_empty() {
                            format!("declare a {} connection", exp.as_str())
                        } else {
                            format!("use {}", others.join(" or "))
                        },
                    }
                    .at(id.span),
                );
                return None;
            }
        }
        Some(kind)
    }

    /// Marks a Salesforce object as used and returns the connection that
    /// holds it: `conn` when the statement names one, else the first
    /// Salesforce connection that lists the object.
    pub fn use_object(&mut self, object: &str, span: Span, conn: Option<&str>) -> Option<String> {
        let sf: Vec<&ConnInfo> = self
            .env
            .conns
            .values()
            .filter(|c| c.kind == Kind::Salesforce && conn.is_none_or(|n| c.name == n))
            .collect();
        if let Some(c) = sf
            .iter()
            .find(|c| c.objects.iter().any(|(o, _)| o == object))
        {
            let name = c.name.clone();
            self.usage
                .objects
                .insert((name.clone(), object.to_string()));
            self.usage.conns.insert(name.clone());
            return Some(name);
        }
        match sf.first() {
            Some(c) => {
                let conn = c.name.clone();
                self.usage.conns.insert(conn.clone());
                self.err(
                    CheckErrorKind::UndeclaredObject {
                        object: object.into(),
                        conn: conn.clone(),
                    }
                    .at(span),
                );
                Some(conn)
            }
            None => {
                self.err(
                    CheckErrorKind::Unknown {
                        kind: "Salesforce object",
                        name: object.into(),
                        help: Some(
                            "declare a `connection NAME: salesforce { objects ... }` that lists it"
                                .into(),
                        ),
                    }
                    .at(span),
                );
                None
            }
        }
    }

    pub fn record_write(&mut self, conn: &str, what: String, span: Span) {
        self.usage
            .writes
            .entry(conn.to_string())
            .or_default()
            .push((what, span));
    }
}

/// A field named by its id or as `ticket.ALIAS` where its alias belongs: the
/// parser cannot know the declared fields (they may be in another file);
/// here they are known, so the help names the alias to write.
fn field_ref_help(env: &Env, e: &mut SyntaxError) {
    let SyntaxErrorKind::FieldRef {
        help,
        id,
        alias,
        conn,
        ..
    } = &mut e.kind
    else {
        return;
    };
    let kind = conn
        .as_deref()
        .and_then(|c| env.conns.get(c))
        .map(|c| c.kind);
    if let Some(id) = *id {
        let declared: Vec<(&str, &str)> = env
            .fields
            .iter()
            .filter(|(c, _)| conn.as_deref().is_none_or(|n| n == c.as_str()))
            .flat_map(|(c, fs)| {
                fs.iter()
                    .filter(|(_, f)| f.id == Some(id))
                    .map(move |(a, _)| (c.as_str(), a.as_str()))
            })
            .collect();
        *help = match declared.as_slice() {
            [(_, a), ..] => format!("write the field's alias (`{a}`), not its id"),
            [] => match conn {
                Some(c) if kind == Some(Kind::Zendesk) => format!(
                    "no `fields {c}` block declares #{id}: declare it (`ALIAS #{id} TYPE`) and write the alias here"
                ),
                _ => format!(
                    "no `fields` block declares #{id}: declare it (`ALIAS #{id} TYPE`) and write the alias here"
                ),
            },
        };
    } else if let (Some(a), Some(Kind::Salesforce), Some(c)) =
        (alias.as_deref(), kind, conn.as_deref())
    {
        *help = format!("`{c}` is Salesforce: name the field `Object.Field`, e.g. `Case.{a}`");
    } else if let Some(a) = alias {
        if kind == Some(Kind::Zendesk) {
            *help = format!("write `{a}` without `ticket.`");
        }
    }
}

/// Shared with the runtime, which must not depend on the checker.
pub use crate::model::did_you_mean;

/// The result of checking a project.
pub struct Checked {
    pub files: Vec<ast::File>,
    pub env: Env,
    pub diagnostics: Vec<Diagnostic>,
    /// The schema lockfile checked against, as canonical JSON: part of the
    /// program's revision.
    pub lock_json: Option<String>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.is_error())
    }
}

/// Parses and checks every file of a project, parsing on every core.
pub fn check(sources: &SourceMap) -> Checked {
    check_against(sources, None)
}

/// [`check`], and, with the project's schema lockfile, against what the
/// live instances hold (unknown field ids, options, statuses, read-only
/// fields).
pub fn check_against(sources: &SourceMap, lock: Option<&crate::schema::Lockfile>) -> Checked {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    check_inner(sources, threads, lock)
}

/// [`check`] with at most `threads` parser threads (1: all on this one).
pub fn check_with_threads(sources: &SourceMap, threads: usize) -> Checked {
    check_inner(sources, threads, None)
}

fn check_inner(
    sources: &SourceMap,
    threads: usize,
    lock: Option<&crate::schema::Lockfile>,
) -> Checked {
    let mut diagnostics = Vec::new();
    let mut files = Vec::with_capacity(sources.len());
    for (_, (ast, errs)) in parse::parse_all(sources, threads) {
        diagnostics.extend(errs.into_iter().map(Diagnostic::syntax));
        files.push(ast);
    }
    let mut cx = Ctx {
        sources,
        env: Env::default(),
        diags: Vec::new(),
        usage: Usage::default(),
    };
    check_files(&mut cx, &files);
    for d in &mut diagnostics {
        if let DiagKind::Syntax(e) = &mut d.kind {
            field_ref_help(&cx.env, e);
        }
    }
    for e in crate::schema::forms::declared(&cx.env) {
        cx.err(e);
    }
    if let Some(lock) = lock {
        for e in crate::schema::validate::against(&cx.env, &cx.usage, lock) {
            cx.err(e);
        }
        for e in crate::schema::forms::check(&mut cx.env, &files, lock) {
            cx.err(e);
        }
    }
    if !diagnostics.is_empty() {
        // A block that did not parse uses things too; "never used" lints
        // would only blame the syntax error on its neighbours.
        cx.diags.retain(|d| {
            !matches!(
                &d.kind,
                DiagKind::Check(CheckError {
                    kind: CheckErrorKind::Unused { .. }
                        | CheckErrorKind::UnusedScope { .. }
                        | CheckErrorKind::UnusedObject { .. }
                        | CheckErrorKind::UnreachedProduct { .. },
                    ..
                })
            )
        });
    }
    diagnostics.append(&mut cx.diags);
    if diagnostics.iter().any(|d| d.is_error()) {
        // "Never reaches a ticket in `l3map run`" is about running; a
        // project with errors does not run, and the warning would only
        // bury the errors that stop it.
        diagnostics.retain(|d| {
            !matches!(
                &d.kind,
                DiagKind::Check(CheckError {
                    kind: CheckErrorKind::Link(LinkErrorKind::UnlinkedMap { .. }),
                    ..
                })
            )
        });
    }
    diagnostics.sort_by_key(|d| (d.file, d.offset()));
    Checked {
        files,
        env: cx.env,
        diagnostics,
        lock_json: lock.map(crate::schema::Lockfile::to_json),
    }
}

fn check_files(cx: &mut Ctx, files: &[ast::File]) {
    let items = || files.iter().flat_map(|f| f.items.iter());
    // Declarations first, so uses may come before declarations.
    for item in items() {
        if let Item::Connection(c) = item {
            connections::declare(cx, c);
        }
    }
    for item in items() {
        match item {
            Item::Fields(f) => mappings::declare_fields(cx, f),
            Item::Statuses(t) => statuses::declare(cx, t),
            _ => {}
        }
    }
    let mut names: BTreeMap<(&str, String), Span> = BTreeMap::new();
    for item in items() {
        let kind = match item {
            Item::Template(_) => "template",
            Item::Escalation(_) => "escalation",
            Item::Sku(_) => "sku table",
            Item::Test(_) => "test",
            _ => continue,
        };
        let id = item.name();
        if let Some(first) = names.get(&(kind, id.name.clone())) {
            let first = *first;
            cx.duplicate(kind, id.name.clone(), id.span, Some(first), "rename one");
        } else {
            names.insert((kind, id.name.clone()), id.span);
            match item {
                Item::Template(t) => {
                    cx.env.templates.insert(t.name.name.clone(), t.name.span);
                }
                Item::Sku(s) => {
                    let products = s.products.iter().map(|(p, _)| p.clone()).collect();
                    cx.env.skus.insert(s.name.name.clone(), products);
                }
                _ => {}
            }
        }
    }
    let mut linked = BTreeMap::new();
    for item in items() {
        if let Item::Link(l) = item {
            links::check(cx, l, &mut linked);
        }
    }
    let mut writers = BTreeMap::new();
    for item in items() {
        match item {
            Item::Statuses(t) => statuses::check(cx, t),
            Item::Map(m) => mappings::check_map(cx, m, &mut writers),
            Item::Template(t) => escalations::check_template(cx, t),
            Item::Escalation(e) => escalations::check_escalation(cx, e),
            Item::Sku(s) => sku::check(cx, s),
            _ => {}
        }
    }
    // Tests last: they name what everything above declares.
    for item in items() {
        if let Item::Test(t) = item {
            tests::check(cx, t);
        }
    }
    for item in items() {
        if let Item::Template(t) = item {
            if !cx.usage.templates.contains(&t.name.name) {
                cx.err(
                    CheckErrorKind::Unused {
                        kind: "template",
                        name: t.name.name.clone(),
                        help: "use it in an escalation (`comment CONN NAME`) or remove it".into(),
                    }
                    .at(t.name.span),
                );
            }
        }
    }
    unlinked::lint(cx, files);
    both_ways::lint(cx, files);
    connections::lint_usage(cx);
    currency::lint(cx, files);
}
