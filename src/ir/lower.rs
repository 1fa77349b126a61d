//! AST + resolved symbol tables -> IR. Runs only on a project that checked
//! without errors, so every name here resolves: call it through
//! [`crate::compile`], which refuses a project with errors first.

mod expect;
mod fields;
mod links;
mod sku;

use super::*;
use crate::model::event::{COMMENT, ESCALATION, TICKET, TURN};
use crate::model::{ConnInfo, Env, Ty};
use crate::syntax::ast::{self, Item};
use crate::syntax::{SourceMap, Span};
use sha2::{Digest, Sha256};

struct Lower<'a> {
    env: &'a Env,
    sources: &'a SourceMap,
}

/// Lowers the files of a project that checked without errors, with the
/// symbol tables the checker resolved.
/// `lock_json` is the schema lockfile the project was checked against (its
/// canonical JSON, [`crate::schema::Lockfile::to_json`]): the form data it
/// holds decides refusals, so it is part of the revision.
pub fn lower(
    files: &[ast::File],
    env: &Env,
    sources: &SourceMap,
    lock_json: Option<&str>,
) -> Program {
    let l = Lower { env, sources };
    let mut p = Program {
        ir_version: IR_VERSION,
        revision: revision_with_lock(sources, lock_json),
        files: sources.files().map(|(_, f)| f.path.clone()).collect(),
        connections: vec![],
        status_tables: vec![],
        mappings: vec![],
        sku_tables: vec![],
        templates: vec![],
        escalations: vec![],
        links: vec![],
        ticket_fields: l.ticket_fields(),
        index: Default::default(),
    };
    for item in files.iter().flat_map(|f| f.items.iter()) {
        match item {
            Item::Connection(c) => p.connections.push(l.connection(c)),
            Item::Statuses(t) => p.status_tables.push(l.statuses(t)),
            Item::Fields(_) => {}
            Item::Map(m) => p.mappings.push(l.mapping(m)),
            Item::Sku(s) => p.sku_tables.push(l.sku(s)),
            Item::Template(t) => p.templates.push(Template {
                name: t.name.name.clone(),
                parts: l.template(&t.body),
                loc: l.loc(t.span),
            }),
            Item::Escalation(e) => p.escalations.push(l.escalation(e)),
            Item::Test(_) => {}
            Item::Link(k) => p.links.push(l.link(k)),
        }
    }
    p
}

/// The `test` blocks of a project that checked without errors.
pub fn lower_tests(files: &[ast::File], env: &Env, sources: &SourceMap) -> Vec<TestCase> {
    let l = Lower { env, sources };
    files
        .iter()
        .flat_map(|f| f.items.iter())
        .filter_map(|item| match item {
            Item::Test(t) => Some(l.test(t)),
            _ => None,
        })
        .collect()
}

/// A stable hash of every file's name and text, in name order. Only the
/// name counts, not the directory: the same files checked out elsewhere, or
/// named from another working directory, are the same revision (a project's
/// files sit in one directory, so their names are unique).
pub fn revision(sources: &SourceMap) -> String {
    revision_with_lock(sources, None)
}

/// [`revision`] of the files plus the schema lockfile they were checked
/// against (its canonical JSON): a lockfile-only change (a form's statuses,
/// a category's default) is a new revision, so hot reload applies it and
/// the audit's revision tells which form data decided. Without a lockfile
/// it is [`revision`].
pub fn revision_with_lock(sources: &SourceMap, lock_json: Option<&str>) -> String {
    let name = |p: &str| {
        std::path::Path::new(p)
            .file_name()
            .map_or_else(|| p.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let mut files: Vec<(String, &str)> = sources
        .files()
        .map(|(_, f)| (name(&f.path), &*f.text))
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for (path, text) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    if let Some(lock) = lock_json {
        // A name no `.l3map` file can have, so the lockfile cannot pose as one.
        h.update(b"l3map.lock.json\0");
        h.update(lock.as_bytes());
        h.update([0]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn ty(t: &Ty) -> Type {
    match t {
        Ty::Str => Type::String,
        Ty::Num => Type::Number,
        Ty::Bool => Type::Bool,
        Ty::Date => Type::Date,
        Ty::Money(c) => Type::Money(c.clone()),
        Ty::Enum(v) => Type::Enum(v.to_vec()),
        Ty::Status(c) => Type::Status(c.clone()),
        Ty::List(e) => Type::List(Box::new(ty(e))),
        Ty::Any | Ty::Null => Type::Any,
    }
}

impl Lower<'_> {
    fn loc(&self, s: Span) -> Loc {
        let (line, col) = self.sources.get(s.file).line_col(s.start);
        Loc {
            file: s.file.0,
            line: line as u32,
            col: col as u32,
            start: s.start,
            end: s.end,
        }
    }

    /// The source text of a span, for messages that quote the rule.
    fn text_of(&self, s: Span) -> String {
        self.sources.get(s.file).text[s.start as usize..s.end as usize].to_string()
    }

    fn connection(&self, c: &ast::Connection) -> Connection {
        let info = &self.env.conns[&c.name.name];
        Connection {
            name: info.name.clone(),
            kind: info.kind,
            settings: info.settings.clone(),
            secrets: info
                .secrets
                .iter()
                .map(|s| SecretRef {
                    key: s.key.clone(),
                    source: match s.source {
                        ast::SecretSource::Env => SecretSource::Env,
                        ast::SecretSource::File => SecretSource::File,
                    },
                    name: s.name.clone(),
                })
                .collect(),
            scopes: info.scopes.iter().map(|(s, _)| s.clone()).collect(),
            objects: info.objects.iter().map(|(o, _)| o.clone()).collect(),
            rate_limit_rpm: info.rate_limit_rpm,
            max_concurrent: match info.kind {
                Kind::Salesforce => Some(info.max_concurrent.unwrap_or(100)),
                Kind::Zendesk => info.max_concurrent,
            },
            loc: self.loc(c.span),
        }
    }

    fn statuses(&self, t: &ast::StatusTable) -> StatusTable {
        let info = &self.env.tables[&t.conn.name];
        let zendesk = self.env.conns.get(&t.conn.name).map(|c| c.kind) == Some(Kind::Zendesk);
        let ticket_conn = zendesk.then(|| t.conn.name.clone());
        StatusTable {
            connection: t.conn.name.clone(),
            statuses: info
                .statuses
                .iter()
                .map(|s| Status {
                    name: s.name.clone(),
                    category: s.category,
                    label: s.label.clone(),
                    terminal: s.terminal.is_some(),
                    initial: s.initial,
                    custom_status_id: s.id,
                    instance_status_id: info.locked.as_ref().and_then(|l| l.resolved(s)),
                    loc: self.loc(s.span),
                })
                .collect(),
            transitions: t
                .transitions
                .iter()
                .map(|tr| {
                    let (from, wildcard) = match &tr.from {
                        ast::From::Any(_) => (
                            info.statuses
                                .iter()
                                .filter(|s| s.terminal.is_none())
                                .map(|s| s.name.clone())
                                .collect(),
                            true,
                        ),
                        ast::From::List(l) => (l.iter().map(|i| i.name.clone()).collect(), false),
                    };
                    Transition {
                        from,
                        to: tr.to.iter().map(|i| i.name.clone()).collect(),
                        wildcard,
                        when: tr
                            .when
                            .as_ref()
                            .map(|w| self.expr(w, ticket_conn.as_deref())),
                        condition: tr.when.as_ref().map(|w| self.condition_text(w.span)),
                        loc: self.loc(tr.span),
                    }
                })
                .collect(),
            loc: self.loc(t.span),
            forms: info
                .locked
                .as_ref()
                .map(|l| l.forms.clone())
                .unwrap_or_default(),
        }
    }

    fn field_ref(&self, conn: &str, name: &ast::FieldName) -> (FieldRef, Type) {
        match name {
            ast::FieldName::Alias(a) => {
                let custom = self.env.fields.get(conn).and_then(|m| m.get(&a.name));
                let t = custom
                    .map(|f| ty(&f.ty))
                    .or_else(|| {
                        TICKET
                            .iter()
                            .find(|f| f.name == a.name)
                            .map(|f| ty(&(f.ty)()))
                    })
                    .unwrap_or(Type::Any);
                (
                    FieldRef::Zendesk {
                        connection: conn.into(),
                        field: a.name.clone(),
                        id: custom.and_then(|f| f.id),
                    },
                    t,
                )
            }
            ast::FieldName::Sf(segs, _) => {
                let path = name.display();
                let object = segs[0].name.clone();
                let lists = |c: &ConnInfo| c.objects.iter().any(|(o, _)| *o == object);
                let holder = match self.env.conns.get(conn) {
                    Some(c) if lists(c) => conn.to_string(),
                    _ => self
                        .env
                        .conns
                        .values()
                        .find(|c| lists(c))
                        .map(|c| c.name.clone())
                        .unwrap_or_else(|| conn.to_string()),
                };
                let t = self
                    .env
                    .fields
                    .get(&holder)
                    .and_then(|m| m.get(&path))
                    .map(|f| ty(&f.ty))
                    .unwrap_or(Type::Any);
                (
                    FieldRef::Salesforce {
                        connection: holder,
                        object,
                        path,
                    },
                    t,
                )
            }
        }
    }

    fn mapping(&self, m: &ast::Mapping) -> Mapping {
        Mapping {
            from: m.from.name.clone(),
            to: m.to.name.clone(),
            rules: m
                .rules
                .iter()
                .map(|r| {
                    let (source, source_type) = self.field_ref(&m.from.name, &r.source);
                    let (target, target_type) = self.field_ref(&m.to.name, &r.target);
                    MapRule {
                        source,
                        source_type,
                        target,
                        target_type,
                        table: r.table.as_ref().map(|t| {
                            t.arms
                                .iter()
                                .map(|a| Arm {
                                    patterns: a
                                        .patterns
                                        .as_ref()
                                        .map(|ps| ps.iter().map(value).collect()),
                                    value: value(&a.value),
                                    loc: self.loc(a.span),
                                })
                                .collect()
                        }),
                        loc: self.loc(r.span),
                    }
                })
                .collect(),
            loc: self.loc(m.span),
        }
    }

    /// The line break after an opening `"""` and the blank end before the
    /// closing one are layout, not text: a comment must not start with an
    /// empty line.
    fn template(&self, b: &ast::TemplateBody) -> Vec<TemplatePart> {
        let mut parts = self.template_parts(b);
        if let Some(TemplatePart::Text(t)) = parts.first_mut() {
            if let Some(rest) = t.strip_prefix("\r\n").or_else(|| t.strip_prefix('\n')) {
                *t = rest.to_string();
            }
        }
        if let Some(TemplatePart::Text(t)) = parts.last_mut() {
            t.truncate(t.trim_end().len());
        }
        parts.retain(|p| !matches!(p, TemplatePart::Text(t) if t.is_empty()));
        parts
    }

    fn template_parts(&self, b: &ast::TemplateBody) -> Vec<TemplatePart> {
        b.parts
            .iter()
            .map(|p| match p {
                ast::TemplatePart::Text(t) => TemplatePart::Text(t.clone()),
                ast::TemplatePart::Var {
                    path,
                    filters,
                    span,
                } => TemplatePart::Var {
                    var: self.resolve(path, None),
                    filters: filters
                        .iter()
                        .map(|f| Filter {
                            name: f.name.name.clone(),
                            args: f.args.iter().map(value).collect(),
                        })
                        .collect(),
                    loc: self.loc(*span),
                },
            })
            .collect()
    }

    fn escalation(&self, e: &ast::Escalation) -> Escalation {
        let mut when = None;
        let mut condition = None;
        let mut reason = String::new();
        let mut actions = Vec::new();
        for s in &e.stmts {
            match s {
                ast::EscStmt::When(x) => {
                    when = Some(self.expr(x, None));
                    condition = Some(self.condition_text(x.span));
                }
                ast::EscStmt::Reason(t) => reason = t.value.clone(),
                ast::EscStmt::Comment { conn, body, span } => actions.push(EscAction::Comment {
                    connection: conn.name.clone(),
                    kind: self.env.conns[&conn.name].kind,
                    body: match body {
                        ast::CommentBody::Template(t) => CommentBody::Template(t.name.clone()),
                        ast::CommentBody::Inline(b) => CommentBody::Inline(self.template(b)),
                    },
                    loc: self.loc(*span),
                }),
                ast::EscStmt::Set {
                    conn,
                    field,
                    value,
                    span,
                } => actions.push(EscAction::SetField {
                    field: self.field_ref(&conn.name, field).0,
                    value: self.value_expr(value),
                    loc: self.loc(*span),
                }),
                ast::EscStmt::Assign { conn, group, span } => {
                    actions.push(EscAction::AssignGroup {
                        connection: conn.name.clone(),
                        group: group.value.clone(),
                        loc: self.loc(*span),
                    })
                }
                ast::EscStmt::Status { conn, status, span } => actions.push(EscAction::SetStatus {
                    connection: conn.name.clone(),
                    status: status.name.clone(),
                    loc: self.loc(*span),
                }),
            }
        }
        Escalation {
            name: e.name.name.clone(),
            when: when.unwrap_or(Expr {
                kind: ExprKind::Lit(Value::Bool(false)),
                loc: self.loc(e.span),
            }),
            condition,
            reason,
            actions,
            loc: self.loc(e.span),
            handoff: Default::default(),
        }
    }

    /// A value written to a field: bare names are text.
    fn value_expr(&self, e: &ast::Expr) -> Expr {
        match &e.kind {
            ast::ExprKind::Symbol(i) => Expr {
                kind: ExprKind::Lit(Value::Str(i.name.clone())),
                loc: self.loc(e.span),
            },
            _ => self.expr(e, None),
        }
    }

    fn resolve(&self, path: &[ast::Ident], ticket_conn: Option<&str>) -> Ref {
        let root = path[0].name.as_str();
        if root.starts_with(|c: char| c.is_ascii_uppercase()) {
            let path = path
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(".");
            let declared = self
                .env
                .fields
                .iter()
                .find_map(|(c, m)| m.get(&path).map(|f| (c, f)));
            // The connection declaring the field, else the one the checker
            // resolved the object to (the first Salesforce connection
            // listing it).
            let connection = declared.map(|(c, _)| c.clone()).or_else(|| {
                let sf = || {
                    self.env
                        .conns
                        .values()
                        .filter(|c| c.kind == Kind::Salesforce)
                };
                sf().find(|c| c.objects.iter().any(|(o, _)| o == root))
                    .or_else(|| sf().next())
                    .map(|c| c.name.clone())
            });
            return Ref::Salesforce {
                connection: connection.unwrap_or_default(),
                ty: declared.map(|(_, f)| ty(&f.ty)),
                path,
            };
        }
        let field = path.get(1).map(|i| i.name.clone()).unwrap_or_default();
        let std = match root {
            "ticket" => TICKET,
            "comment" => COMMENT,
            "turn" => TURN,
            _ => ESCALATION,
        };
        if root == "ticket" && !std.iter().any(|f| f.name == field) {
            let conns = ticket_conn
                .map(|c| vec![c.to_string()])
                .unwrap_or_else(|| self.env.fields.keys().cloned().collect());
            for c in conns {
                if let Some(f) = self.env.fields.get(&c).and_then(|m| m.get(&field)) {
                    return Ref::TicketField {
                        alias: field,
                        id: f.id.unwrap_or(0),
                        ty: Some(ty(&f.ty)),
                    };
                }
            }
        }
        Ref::Event {
            root: root.into(),
            field,
        }
    }

    fn expr(&self, e: &ast::Expr, tc: Option<&str>) -> Expr {
        let b = |x: &ast::Expr| Box::new(self.expr(x, tc));
        let kind = match &e.kind {
            ast::ExprKind::Lit(_) | ast::ExprKind::Symbol(_) => ExprKind::Lit(value(e)),
            ast::ExprKind::List(items) => {
                ExprKind::List(items.iter().map(|i| self.expr(i, tc)).collect())
            }
            ast::ExprKind::Path(p) => ExprKind::Ref(self.resolve(p, tc)),
            ast::ExprKind::Not(x) => ExprKind::Not(b(x)),
            ast::ExprKind::And(t) => ExprKind::And(t.iter().map(|x| self.expr(x, tc)).collect()),
            ast::ExprKind::Or(t) => ExprKind::Or(t.iter().map(|x| self.expr(x, tc)).collect()),
            ast::ExprKind::Binary(op, l, r) => {
                use ast::BinOp as B;
                ExprKind::Cmp(
                    match op {
                        B::Eq => Op::Eq,
                        B::Ne => Op::Ne,
                        B::Lt => Op::Lt,
                        B::Le => Op::Le,
                        B::Gt => Op::Gt,
                        B::Ge => Op::Ge,
                        B::In => Op::In,
                        B::NotIn => Op::NotIn,
                        B::Has => Op::Has,
                    },
                    b(l),
                    b(r),
                )
            }
        };
        Expr {
            kind,
            loc: self.loc(e.span),
        }
    }
}

/// A literal or bare name as a runtime value (names are their text).
fn value(e: &ast::Expr) -> Value {
    match &e.kind {
        ast::ExprKind::Lit(l) => match l {
            ast::Lit::Str(s) => Value::Str(s.clone()),
            ast::Lit::Num(n) => Value::Num(*n),
            ast::Lit::Money(m) => Value::Money(m.units, m.currency.clone()),
            ast::Lit::Bool(b) => Value::Bool(*b),
            ast::Lit::None => Value::Null,
        },
        ast::ExprKind::Symbol(i) => Value::Str(i.name.clone()),
        ast::ExprKind::List(items) => Value::List(items.iter().map(value).collect()),
        _ => Value::Null,
    }
}
