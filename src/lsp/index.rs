//! Where every name of a project is declared and used: the one walk over
//! the syntax trees that go-to-definition, find-references and hover share.
//!
//! Names are resolved the way the checker resolves them: statuses within
//! their connection's table, fields within their connection's block,
//! `ticket.<alias>` to the Zendesk field that declares the alias and
//! `Object.Field__c` to the Salesforce connection that declares the field.

use crate::check::{Env, Kind};
use crate::syntax::ast::{self, Expr, ExprKind, FieldName, Item, TemplateBody, TemplatePart};
use crate::syntax::{FileId, Span};

/// A named thing of a project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sym {
    Conn(String),
    /// (connection, status)
    Status(String, String),
    /// (connection, alias or `Object.Field`)
    Field(String, String),
    Template(String),
    Sku(String),
    Escalation(String),
}

#[derive(Debug, Clone)]
pub struct Occurrence {
    pub sym: Sym,
    pub span: Span,
    pub def: bool,
}

/// A statement whose hover says what it does.
#[derive(Debug, Clone)]
pub struct Rule {
    pub span: Span,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct Index {
    pub occurrences: Vec<Occurrence>,
    pub rules: Vec<Rule>,
}

impl Index {
    pub fn build(files: &[ast::File], env: &Env, text: impl Fn(Span) -> String) -> Index {
        let mut w = Walker {
            env,
            text: &text,
            out: Index::default(),
        };
        for f in files {
            for item in &f.items {
                w.item(item);
            }
        }
        w.out
    }

    /// The innermost occurrence at a byte offset of a file.
    pub fn at(&self, file: FileId, offset: usize) -> Option<&Occurrence> {
        self.occurrences
            .iter()
            .filter(|o| contains(o.span, file, offset))
            .min_by_key(|o| o.span.len())
    }

    /// The innermost rule at a byte offset of a file.
    pub fn rule_at(&self, file: FileId, offset: usize) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| contains(r.span, file, offset))
            .min_by_key(|r| r.span.len())
    }

    pub fn of<'a>(&'a self, sym: &'a Sym) -> impl Iterator<Item = &'a Occurrence> + 'a {
        self.occurrences.iter().filter(move |o| &o.sym == sym)
    }
}

fn contains(span: Span, file: FileId, offset: usize) -> bool {
    span.file == file && span.start as usize <= offset && offset <= span.end as usize
}

struct Walker<'a> {
    env: &'a Env,
    text: &'a dyn Fn(Span) -> String,
    out: Index,
}

impl Walker<'_> {
    fn add(&mut self, sym: Sym, span: Span, def: bool) {
        self.out.occurrences.push(Occurrence { sym, span, def });
    }

    fn conn(&mut self, id: &ast::Ident) {
        self.add(Sym::Conn(id.name.clone()), id.span, false);
    }

    fn status(&mut self, conn: &str, id: &ast::Ident, def: bool) {
        self.add(Sym::Status(conn.into(), id.name.clone()), id.span, def);
    }

    fn field(&mut self, conn: &str, f: &FieldName, def: bool) {
        self.add(Sym::Field(conn.into(), f.display()), f.span(), def);
    }

    fn rule(&mut self, span: Span, what: String) {
        self.out.rules.push(Rule { span, what });
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Connection(c) => self.add(Sym::Conn(c.name.name.clone()), c.name.span, true),
            Item::Statuses(t) => {
                self.conn(&t.conn);
                let conn = &t.conn.name;
                for s in &t.statuses {
                    self.status(conn, &s.name, true);
                }
                for tr in &t.transitions {
                    let from = match &tr.from {
                        ast::From::Any(_) => "any status".to_string(),
                        ast::From::List(l) => {
                            for id in l {
                                self.status(conn, id, false);
                            }
                            names(l, " or ")
                        }
                    };
                    for id in &tr.to {
                        self.status(conn, id, false);
                    }
                    let when = match &tr.when {
                        Some(e) => {
                            self.expr(e);
                            format!(" when `{}`", one_line(&(self.text)(e.span)))
                        }
                        None => String::new(),
                    };
                    self.rule(
                        tr.span,
                        format!(
                            "**transition** on `{conn}`: a ticket in {from} may move to {}{when}. \
                             A status change the table does not list is refused.",
                            names(&tr.to, " or ")
                        ),
                    );
                }
            }
            Item::Fields(f) => {
                self.conn(&f.conn);
                for d in &f.fields {
                    self.field(&f.conn.name, &d.name, true);
                }
            }
            Item::Map(m) => {
                self.conn(&m.from);
                self.conn(&m.to);
                for r in &m.rules {
                    self.field(&m.from.name, &r.source, false);
                    self.field(&m.to.name, &r.target, false);
                    let how = match &r.table {
                        Some(t) => format!(
                            ", translated by its table of {} arm{} (a value no arm covers is refused, never guessed)",
                            t.arms.len(),
                            if t.arms.len() == 1 { "" } else { "s" }
                        ),
                        None => " as it is".into(),
                    };
                    self.rule(
                        r.span,
                        format!(
                            "**mapping**: when `{}` changes on `{}`, its value is written to `{}` on `{}`{how}.",
                            r.source.display(),
                            m.from.name,
                            r.target.display(),
                            m.to.name
                        ),
                    );
                }
            }
            Item::Sku(s) => {
                self.add(Sym::Sku(s.name.name.clone()), s.name.span, true);
                for a in &s.applies {
                    self.conn(&a.conn);
                    self.field(&a.conn.name, &a.field, false);
                    let source = a.source.iter().map(|i| i.name.as_str()).collect::<Vec<_>>();
                    self.rule(
                        a.span,
                        format!(
                            "**apply**: `{}` is normalised and matched against `{}`; the product id found is written to `{}` on `{}`.",
                            source.join("."),
                            s.name.name,
                            a.field.display(),
                            a.conn.name
                        ),
                    );
                }
                for r in &s.rules {
                    self.rule(
                        r.span,
                        format!(
                            "**SKU rule**: any of these {} pattern{} (after normalisation) means product `{}`.",
                            r.patterns.len(),
                            if r.patterns.len() == 1 { "" } else { "s" },
                            r.target.0
                        ),
                    );
                }
            }
            Item::Template(t) => {
                self.add(Sym::Template(t.name.name.clone()), t.name.span, true);
                self.template(&t.body);
            }
            Item::Escalation(e) => self.escalation(e),
            Item::Link(l) => {
                self.conn(&l.desk);
                self.conn(&l.crm);
                self.rule(
                    l.span,
                    format!(
                        "**Record link**: a Zendesk {} is the `{}` record of `{}` whose field matches (see `on`); a change of that record reaches the linked tickets.",
                        l.zendesk.name, l.object.name, l.crm.name
                    ),
                );
            }
            Item::Test(t) => {
                for x in &t.expects {
                    use ast::Expectation::*;
                    match &x.what {
                        Status { conn, status } => {
                            self.conn(conn);
                            self.status(&conn.name, status, false);
                        }
                        Field { conn, field, value } => {
                            self.conn(conn);
                            self.field(&conn.name, field, false);
                            self.expr(value);
                        }
                        Comment { conn, .. } | Group { conn, .. } => self.conn(conn),
                        Sku { table, .. } => {
                            self.add(Sym::Sku(table.name.clone()), table.span, false)
                        }
                        Nothing | No(_) | Refused(_) => {}
                    }
                }
            }
        }
    }

    fn escalation(&mut self, e: &ast::Escalation) {
        self.add(Sym::Escalation(e.name.name.clone()), e.name.span, true);
        let mut when = None;
        let mut actions = Vec::new();
        for s in &e.stmts {
            match s {
                ast::EscStmt::When(x) => {
                    self.expr(x);
                    when = Some(one_line(&(self.text)(x.span)));
                }
                ast::EscStmt::Reason(_) => {}
                ast::EscStmt::Comment { conn, body, .. } => {
                    self.conn(conn);
                    match body {
                        ast::CommentBody::Template(t) => {
                            self.add(Sym::Template(t.name.clone()), t.span, false);
                            actions
                                .push(format!("write the `{}` comment on `{}`", t.name, conn.name));
                        }
                        ast::CommentBody::Inline(b) => {
                            self.template(b);
                            actions.push(format!("write a comment on `{}`", conn.name));
                        }
                    }
                }
                ast::EscStmt::Set {
                    conn, field, value, ..
                } => {
                    self.conn(conn);
                    self.field(&conn.name, field, false);
                    self.expr(value);
                    actions.push(format!("set `{}` on `{}`", field.display(), conn.name));
                }
                ast::EscStmt::Assign { conn, group, .. } => {
                    self.conn(conn);
                    actions.push(format!(
                        "assign group \"{}\" on `{}`",
                        group.value, conn.name
                    ));
                }
                ast::EscStmt::Status { conn, status, .. } => {
                    self.conn(conn);
                    self.status(&conn.name, status, false);
                    actions.push(format!("move `{}` to `{}`", conn.name, status.name));
                }
            }
        }
        let when = when.map_or("(no `when`: it never fires)".to_string(), |w| {
            format!("when `{w}`")
        });
        let actions = if actions.is_empty() {
            "does nothing".to_string()
        } else {
            actions.join(", then ")
        };
        self.rule(
            e.span,
            format!(
                "**escalation** `{}`: {when}, the AI agent hands the conversation to a person: {actions}.",
                e.name.name
            ),
        );
    }

    fn template(&mut self, body: &TemplateBody) {
        for p in &body.parts {
            if let TemplatePart::Var { path, filters, .. } = p {
                self.path(path);
                for f in filters {
                    for a in &f.args {
                        self.expr(a);
                    }
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Path(p) => self.path(p),
            ExprKind::List(xs) | ExprKind::And(xs) | ExprKind::Or(xs) => {
                xs.iter().for_each(|x| self.expr(x))
            }
            ExprKind::Not(x) => self.expr(x),
            ExprKind::Binary(_, a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Lit(_) | ExprKind::Symbol(_) => {}
        }
    }

    /// `ticket.sla_tier` or `Account.SLA_Tier__c`: a use of a declared field.
    fn path(&mut self, path: &[ast::Ident]) {
        let (Some(first), Some(last)) = (path.first(), path.last()) else {
            return;
        };
        let span = first.span.to(last.span);
        let zendesk = first.name == "ticket" && path.len() == 2;
        let name = if zendesk {
            path[1].name.clone()
        } else {
            path.iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(".")
        };
        let want = if zendesk {
            Kind::Zendesk
        } else {
            Kind::Salesforce
        };
        let owner = self.env.fields.iter().find(|(conn, fields)| {
            fields.contains_key(&name) && self.env.conns.get(*conn).is_some_and(|c| c.kind == want)
        });
        if let Some((conn, _)) = owner {
            let span = if zendesk { path[1].span } else { span };
            self.add(Sym::Field(conn.clone(), name), span, false);
        }
    }
}

fn names(ids: &[ast::Ident], sep: &str) -> String {
    ids.iter()
        .map(|i| format!("`{}`", i.name))
        .collect::<Vec<_>>()
        .join(sep)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
