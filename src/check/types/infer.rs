//! Resolving paths and typing expressions: the checker's methods that
//! read the schema of `mod.rs`.

use super::{
    looks_like_date, Resolved, Scope, StdField, Ty, COMMENT, ESCALATION, ROOTS, TICKET, TURN,
};
use crate::check::error::CheckErrorKind;
use crate::check::{did_you_mean, Ctx, Kind};
use crate::syntax::ast::{BinOp, Expr, ExprKind, Ident, Lit};
use crate::syntax::Span;

impl<'a> Ctx<'a> {
    /// Resolves a dotted path to its referent and type, reporting unknown parts.
    pub fn resolve_path(&mut self, path: &[Ident], scope: &Scope) -> Option<(Resolved, Ty)> {
        let root = &path[0];
        if root.name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return self.resolve_sf_path(path);
        }
        let table: &[StdField] = match root.name.as_str() {
            "ticket" => TICKET,
            "comment" => COMMENT,
            "turn" => TURN,
            "escalation" if scope.in_template => ESCALATION,
            _ => {
                let mut roots: Vec<&str> = ROOTS.to_vec();
                if !scope.in_template {
                    roots.retain(|r| *r != "escalation");
                }
                let help = if root.name == "escalation" {
                    Some("`escalation.*` only exists inside templates".into())
                } else {
                    did_you_mean(&root.name, roots.iter().copied()).or(Some(format!(
                        "paths start with {}, or a Salesforce object such as Case or Account",
                        roots.join(", ")
                    )))
                };
                self.err(
                    CheckErrorKind::Unknown {
                        kind: "root",
                        name: root.name.clone(),
                        help,
                    }
                    .at(root.span),
                );
                return None;
            }
        };
        let root_name: &'static str = match root.name.as_str() {
            "ticket" => "ticket",
            "comment" => "comment",
            "turn" => "turn",
            _ => "escalation",
        };
        let field = &path[1];
        if path.len() > 2 {
            self.err(
                CheckErrorKind::Unknown {
                    kind: "field",
                    name: path[1..]
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join("."),
                    help: Some(format!("`{}.{}` has no sub-fields", root.name, field.name)),
                }
                .at(path[2].span.to(path[path.len() - 1].span)),
            );
            return None;
        }
        if let Some(f) = table.iter().find(|f| f.name == field.name) {
            let mut ty = (f.ty)();
            if let Ty::Status(None) = ty {
                ty = Ty::Status(self.status_conn(scope));
            }
            return Some((
                Resolved::Std {
                    root: root_name,
                    field: field.name.clone(),
                },
                ty,
            ));
        }
        if root_name == "ticket" {
            if let Some((conn, info)) = self.find_custom_field(&field.name, scope) {
                return Some((
                    Resolved::Custom {
                        conn,
                        alias: field.name.clone(),
                        id: info.0,
                    },
                    info.1,
                ));
            }
        }
        let mut candidates: Vec<String> = table.iter().map(|f| f.name.to_string()).collect();
        if root_name == "ticket" {
            for (conn, fields) in &self.env.fields {
                if self.env.conns.get(conn).map(|c| c.kind) == Some(Kind::Zendesk) {
                    candidates.extend(fields.keys().cloned());
                }
            }
        }
        let help = did_you_mean(&field.name, candidates.iter().map(|s| s.as_str())).or_else(|| {
            (root_name == "ticket").then(|| {
                "custom ticket fields must be declared in a `fields` block with their id".into()
            })
        });
        self.err(
            CheckErrorKind::Unknown {
                kind: "field",
                name: format!("{}.{}", root.name, field.name),
                help,
            }
            .at(field.span),
        );
        None
    }

    fn status_conn(&self, scope: &Scope) -> Option<String> {
        scope.ticket_conn.clone().or_else(|| {
            let zd: Vec<&String> = self
                .env
                .tables
                .keys()
                .filter(|c| self.env.conns.get(*c).map(|i| i.kind) == Some(Kind::Zendesk))
                .collect();
            (zd.len() == 1).then(|| zd[0].clone())
        })
    }

    fn find_custom_field(&self, alias: &str, scope: &Scope) -> Option<(String, (u64, Ty))> {
        let lookup = |conn: &String| {
            self.env
                .fields
                .get(conn)
                .and_then(|f| f.get(alias))
                .map(|f| (conn.clone(), (f.id.unwrap_or(0), f.ty.clone())))
        };
        if let Some(c) = &scope.ticket_conn {
            if let Some(hit) = lookup(c) {
                return Some(hit);
            }
        }
        self.env
            .conns
            .iter()
            .filter(|(_, c)| c.kind == Kind::Zendesk)
            .find_map(|(name, _)| lookup(name))
    }

    fn resolve_sf_path(&mut self, path: &[Ident]) -> Option<(Resolved, Ty)> {
        if path.len() < 2 {
            return None;
        }
        let object = &path[0];
        let conn = self.use_object(&object.name, object.span, None)?;
        let full = path
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(".");
        self.usage.sf_paths.insert(full.clone());
        let ty = self
            .env
            .fields
            .get(&conn)
            .and_then(|f| f.get(&full))
            .map(|f| f.ty.clone())
            .unwrap_or(Ty::Any);
        Some((Resolved::Salesforce { conn, path: full }, ty))
    }

    /// Type-checks an expression. `expect` gives bare names a meaning.
    pub fn expr(&mut self, e: &Expr, expect: Option<&Ty>, scope: &Scope) -> Ty {
        match &e.kind {
            ExprKind::Lit(l) => match l {
                Lit::Str(s) => match expect {
                    Some(t @ (Ty::Enum(_) | Ty::Status(_))) => {
                        self.member(s, e.span, t);
                        t.clone()
                    }
                    Some(Ty::Date) if looks_like_date(s) => Ty::Date,
                    _ => Ty::Str,
                },
                Lit::Num(_) => Ty::Num,
                Lit::Money(m) => Ty::Money(Some(m.currency.clone())),
                Lit::Bool(_) => Ty::Bool,
                Lit::None => Ty::Null,
            },
            ExprKind::List(items) => {
                let elem_expect = match expect {
                    Some(Ty::List(t)) => Some((**t).clone()),
                    _ => None,
                };
                let mut elem = None;
                for it in items {
                    let t = self.expr(it, elem_expect.as_ref(), scope);
                    if let Some(prev) = &elem {
                        if !t.compatible(prev) {
                            self.mismatch(
                                format!("list items must all be {prev}"),
                                it.span,
                                &t,
                                Some("a list holds values of one type; quote text, write amounts with their currency".into()),
                            );
                        }
                    } else {
                        elem = Some(t);
                    }
                }
                Ty::List(Box::new(elem.or(elem_expect).unwrap_or(Ty::Any)))
            }
            ExprKind::Path(p) => self
                .resolve_path(p, scope)
                .map(|(_, t)| t)
                .unwrap_or(Ty::Any),
            ExprKind::Symbol(id) => match expect {
                Some(t @ (Ty::Enum(_) | Ty::Status(_))) => {
                    self.member(&id.name, id.span, t);
                    t.clone()
                }
                Some(Ty::Any) => Ty::Any,
                _ => {
                    self.err(
                        CheckErrorKind::BareName {
                            name: id.name.clone(),
                        }
                        .at(id.span),
                    );
                    Ty::Any
                }
            },
            ExprKind::Not(x) => {
                self.condition(x, scope);
                Ty::Bool
            }
            ExprKind::And(terms) | ExprKind::Or(terms) => {
                for t in terms {
                    self.condition(t, scope);
                }
                Ty::Bool
            }
            ExprKind::Binary(op, l, r) => self.binary(*op, l, r, scope),
        }
    }

    /// Checks an expression used as a condition (`when`).
    pub fn condition(&mut self, e: &Expr, scope: &Scope) {
        let t = self.expr(e, Some(&Ty::Bool), scope);
        if !matches!(t, Ty::Bool | Ty::Any) {
            let example = match &t {
                Ty::Enum(v) => format!("... == {}", v.first().map(|s| s.as_str()).unwrap_or("x")),
                Ty::List(_) => "... has \"tag\"".into(),
                Ty::Num | Ty::Money(_) => "... > 0".into(),
                _ => "... == \"value\"".into(),
            };
            self.err(
                CheckErrorKind::NotBool {
                    found: t.to_string(),
                    example,
                }
                .at(e.span),
            );
        }
    }

    fn binary(&mut self, op: BinOp, l: &Expr, r: &Expr, scope: &Scope) -> Ty {
        match op {
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                // Type the side that carries the type first, so bare names
                // and quoted enum values on the other side can be checked.
                let (lt, rt) = if is_untyped(l) && !is_untyped(r) {
                    let rt = self.expr(r, None, scope);
                    (self.expr(l, Some(&rt), scope), rt)
                } else {
                    let lt = self.expr(l, None, scope);
                    (lt.clone(), self.expr(r, Some(&lt), scope))
                };
                if !lt.compatible(&rt) {
                    let help = match (&lt, &rt) {
                        (Ty::Money(_), Ty::Num) => Some("write the amount with its currency, e.g. `200 USD` or `$200`".into()),
                        (Ty::Money(Some(a)), Ty::Money(Some(b))) => Some(format!("l3map does not convert currencies; compare with an amount in {a}, not {b}")),
                        _ => lt.example().map(|e| format!("`{}` is {lt}: compare it with a value such as `{e}`", source_text(l))),
                    };
                    self.mismatch(
                        format!("`{}` compares {lt} with {rt}", op.symbol()),
                        r.span,
                        &rt,
                        help,
                    );
                } else if !(matches!(op, BinOp::Eq | BinOp::Ne) || lt.ordered() && rt.ordered()) {
                    let bad = if lt.ordered() {
                        (&rt, r.span)
                    } else {
                        (&lt, l.span)
                    };
                    self.mismatch(
                        format!("`{}` needs numbers, money or dates", op.symbol()),
                        bad.1,
                        bad.0,
                        Some("use `==`, `!=` or `in` for text and named values".into()),
                    );
                }
            }
            BinOp::In | BinOp::NotIn
                if !matches!(r.kind, ExprKind::List(_) | ExprKind::Path(_)) =>
            {
                let lt = self.expr(l, None, scope);
                self.expr(r, Some(&lt), scope);
                self.err(
                    CheckErrorKind::TypeMismatch {
                        message: format!("`{}` needs a list on its right", op.symbol()),
                        found: "not a list".into(),
                        help: Some(format!(
                            "write the choices as a list: `[{}]`",
                            source_text(r)
                        )),
                    }
                    .at(r.span),
                );
            }
            BinOp::In | BinOp::NotIn => {
                let (lt, rt) = if is_untyped(l) {
                    let rt = self.expr(r, None, scope);
                    let elem = match &rt {
                        Ty::List(t) => (**t).clone(),
                        _ => Ty::Any,
                    };
                    (self.expr(l, Some(&elem), scope), rt)
                } else {
                    let lt = self.expr(l, None, scope);
                    let rt = self.expr(r, Some(&Ty::List(Box::new(lt.clone()))), scope);
                    (lt, rt)
                };
                match &rt {
                    Ty::List(elem) if !lt.compatible(elem) => self.mismatch(
                        format!("`{}` looks for {lt} in {rt}", op.symbol()),
                        r.span,
                        &rt,
                        None,
                    ),
                    Ty::List(_) | Ty::Any => {}
                    _ => self.mismatch(
                        format!("`{}` needs a list on its right", op.symbol()),
                        r.span,
                        &rt,
                        Some("write the choices as a list: `[a, b]`".into()),
                    ),
                }
            }
            BinOp::Has => {
                let lt = self.expr(l, None, scope);
                let elem = match &lt {
                    Ty::List(t) => (**t).clone(),
                    Ty::Any => Ty::Any,
                    other => {
                        self.mismatch(
                            "`has` needs a list on its left, such as ticket.tags".into(),
                            l.span,
                            other,
                            Some("for text use `==`".into()),
                        );
                        Ty::Any
                    }
                };
                let rt = self.expr(r, Some(&elem), scope);
                if !rt.compatible(&elem) {
                    self.mismatch(format!("`has` looks for {elem}"), r.span, &rt, None);
                }
            }
        }
        Ty::Bool
    }

    /// Reports a type mismatch; `expected` supplies an example when no
    /// better help is given.
    pub fn mismatch_expecting(&mut self, message: String, span: Span, found: &Ty, expected: &Ty) {
        let help = expected
            .example()
            .map(|e| format!("write a value such as `{e}`"));
        self.mismatch(message, span, found, help);
    }

    pub fn mismatch(&mut self, message: String, span: Span, found: &Ty, help: Option<String>) {
        self.err(
            CheckErrorKind::TypeMismatch {
                message,
                found: found.to_string(),
                help,
            }
            .at(span),
        );
    }

    /// Checks that `name` is a value of an enum or status type.
    pub fn member(&mut self, name: &str, span: Span, t: &Ty) {
        match t {
            Ty::Enum(values) if !values.iter().any(|v| v == name) => {
                let help = did_you_mean(name, values.iter().map(|s| s.as_str()));
                let mut of: Vec<&str> = values.iter().take(8).map(|s| s.as_str()).collect();
                if values.len() > 8 {
                    of.push("...");
                }
                self.err(
                    CheckErrorKind::UnknownValue {
                        name: name.to_string(),
                        of: of.join(", "),
                        help,
                    }
                    .at(span),
                );
            }
            Ty::Status(Some(conn)) => {
                let known = self
                    .env
                    .tables
                    .get(conn)
                    .map(|t| t.statuses.iter().any(|s| s.name == name));
                if known == Some(false) {
                    let names: Vec<String> = self.env.tables[conn]
                        .statuses
                        .iter()
                        .map(|s| s.name.clone())
                        .collect();
                    let help = did_you_mean(name, names.iter().map(|s| s.as_str())).or_else(|| {
                        Some(format!("the statuses of `{conn}` are {}", names.join(", ")))
                    });
                    self.err(
                        CheckErrorKind::Unknown {
                            kind: "status",
                            name: name.to_string(),
                            help,
                        }
                        .at(span),
                    );
                }
            }
            _ => {}
        }
    }
}

fn is_untyped(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::Symbol(_) | ExprKind::Lit(Lit::Str(_)) | ExprKind::Lit(Lit::None)
    )
}

/// A short rendering of a path or literal for messages.
fn source_text(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Path(p) => p
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join("."),
        ExprKind::Symbol(i) => i.name.clone(),
        ExprKind::Lit(Lit::Str(s)) => format!("{s:?}"),
        ExprKind::Lit(Lit::Num(n)) => n.to_string(),
        ExprKind::Lit(Lit::Bool(b)) => b.to_string(),
        _ => "...".into(),
    }
}
