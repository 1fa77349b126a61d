//! `fields` declarations, types, and `map` blocks with translation tables.

use super::types::{Ty, TICKET, TICKET_WRITABLE};
use super::{did_you_mean, CheckErrorKind, Ctx, FieldInfo, Kind, Scope};
use crate::syntax::ast::{Expr, ExprKind, FieldBlock, FieldName, Lit, Mapping, TypeExpr};
use crate::syntax::Span;
use std::collections::BTreeMap;

const TYPES: &[&str] = &["string", "number", "bool", "date", "money", "enum"];

pub(super) fn type_of(cx: &mut Ctx, t: &TypeExpr) -> Ty {
    let no_args = |cx: &mut Ctx, ty: Ty| {
        if let Some((_, s)) = t.args.first() {
            cx.err(
                CheckErrorKind::BadTypeArgs {
                    message: format!("type `{}` takes no arguments", t.name.name),
                    help: format!("write just `{}`", t.name.name),
                }
                .at(*s),
            );
        }
        ty
    };
    match t.name.name.as_str() {
        "string" | "text" => no_args(cx, Ty::Str),
        "number" => no_args(cx, Ty::Num),
        "bool" => no_args(cx, Ty::Bool),
        "date" => no_args(cx, Ty::Date),
        "money" => match t.args.as_slice() {
            [] => Ty::Money(Some("USD".into())),
            [(c, s)] => {
                if c.len() == 3 && c.chars().all(|x| x.is_ascii_uppercase()) {
                    Ty::Money(Some(c.clone()))
                } else {
                    cx.err(
                        CheckErrorKind::BadTypeArgs {
                            message: format!("`{c}` is not a currency code"),
                            help: "use a three-letter ISO 4217 code such as USD, EUR, JPY".into(),
                        }
                        .at(*s),
                    );
                    Ty::Money(None)
                }
            }
            [_, (_, s), ..] => {
                cx.err(
                    CheckErrorKind::BadTypeArgs {
                        message: "money takes one currency".into(),
                        help: "write `money(USD)`".into(),
                    }
                    .at(*s),
                );
                Ty::Money(None)
            }
        },
        "enum" => {
            if t.args.is_empty() {
                cx.err(
                    CheckErrorKind::BadTypeArgs {
                        message: "an enum needs its values".into(),
                        help: "write `enum(gold, silver, bronze)`".into(),
                    }
                    .at(t.span),
                );
                return Ty::Any;
            }
            let mut values: Vec<String> = Vec::new();
            let mut spans: Vec<Span> = Vec::new();
            for (v, s) in &t.args {
                if ["none", "true", "false"].contains(&v.as_str()) {
                    cx.err(CheckErrorKind::BadTypeArgs {
                        message: format!("`{v}` cannot be an enum value"),
                        help: format!("`{v}` is a reserved word in conditions; name the value differently, e.g. `no_{v}`"),
                    }.at(*s));
                }
                if let Some(pos) = values.iter().position(|x| x == v) {
                    let first = spans[pos];
                    cx.duplicate(
                        "enum value",
                        v.clone(),
                        *s,
                        Some(first),
                        "list each value once",
                    );
                } else {
                    values.push(v.clone());
                    spans.push(*s);
                }
            }
            Ty::Enum(values.into())
        }
        other => {
            cx.err(
                CheckErrorKind::UnknownType {
                    name: other.into(),
                    help: did_you_mean(other, TYPES.iter().copied())
                        .or_else(|| Some(format!("types are {}", TYPES.join(", ")))),
                }
                .at(t.name.span),
            );
            Ty::Any
        }
    }
}

pub(super) fn declare_fields(cx: &mut Ctx, b: &FieldBlock) {
    let used_before = cx.usage.conns.contains(&b.conn.name);
    let kind = cx.use_conn(&b.conn, None, "a fields block");
    // Declaring fields alone does not use a connection.
    if !used_before {
        cx.usage.conns.remove(&b.conn.name);
    }
    let Some(kind) = kind else { return };
    let mut ids: BTreeMap<u64, Span> = cx
        .env
        .fields
        .get(&b.conn.name)
        .map(|m| {
            m.values()
                .filter_map(|f| f.id.map(|i| (i, f.span)))
                .collect()
        })
        .unwrap_or_default();
    for f in &b.fields {
        let ty = type_of(cx, &f.ty);
        super::links::field_attrs(cx, kind, f);
        let name = match (&f.name, kind) {
            (FieldName::Alias(a), Kind::Zendesk) => {
                if f.id.is_none() {
                    cx.err(
                        CheckErrorKind::BadFieldDecl {
                            message: format!("Zendesk field `{}` has no id", a.name),
                            help: format!(
                                "write its numeric id from Admin Center: `{} #360001234 {}`",
                                a.name, f.ty.name.name
                            ),
                        }
                        .at(a.span),
                    );
                }
                if TICKET.iter().any(|s| s.name == a.name) {
                    cx.err(CheckErrorKind::BadFieldDecl {
                        message: format!("`{}` is a standard ticket field", a.name),
                        help: "custom fields need their own alias; standard fields are always available".into(),
                    }.at(a.span));
                }
                a.name.clone()
            }
            (FieldName::Sf(segs, _), Kind::Salesforce) => {
                if let Some((_, s)) = f.id {
                    cx.err(
                        CheckErrorKind::BadFieldDecl {
                            message: "Salesforce fields have no numeric id".into(),
                            help: "remove the `#id`; Salesforce fields are named by API name"
                                .into(),
                        }
                        .at(s),
                    );
                }
                segs.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(".")
            }
            (FieldName::Alias(a), Kind::Salesforce) => {
                cx.err(
                    CheckErrorKind::BadFieldDecl {
                        message: format!("`{}` is not a Salesforce field name", a.name),
                        help:
                            "Salesforce fields are written Object.Field, e.g. Account.SLA_Tier__c"
                                .into(),
                    }
                    .at(a.span),
                );
                continue;
            }
            (FieldName::Sf(_, s), Kind::Zendesk) => {
                cx.err(CheckErrorKind::BadFieldDecl {
                    message: "Zendesk fields are declared by alias and id".into(),
                    help:
                        "write `alias #360001234 type`; dotted Object.Field names are Salesforce's"
                            .into(),
                }.at(*s));
                continue;
            }
        };
        if let Some((id, s)) = f.id {
            if let Some(first) = ids.insert(id, s) {
                cx.duplicate(
                    "field id",
                    format!("#{id}"),
                    s,
                    Some(first),
                    "two aliases for one Zendesk field would write it twice",
                );
            }
        }
        let span = f.name.span();
        let table = cx.env.fields.entry(b.conn.name.clone()).or_default();
        if let Some(prev) = table.get(&name) {
            let first = prev.span;
            cx.duplicate("field", name, span, Some(first), "declare each field once");
            continue;
        }
        table.insert(
            name,
            FieldInfo {
                id: f.id.map(|(i, _)| i),
                ty,
                span,
                label: f.label.as_ref().map(|l| l.value.clone()),
                attrs: f.attrs.iter().map(|a| a.name.clone()).collect(),
            },
        );
    }
}

/// Resolves a field of a connection, marking Salesforce objects as used.
pub(super) fn field(
    cx: &mut Ctx,
    conn: &str,
    kind: Kind,
    name: &FieldName,
    writing: bool,
) -> Option<Ty> {
    match (name, kind) {
        (FieldName::Alias(a), Kind::Zendesk) => {
            if let Some(f) = cx.env.fields.get(conn).and_then(|m| m.get(&a.name)) {
                return Some(f.ty.clone());
            }
            if let Some(std) = TICKET.iter().find(|f| f.name == a.name) {
                if !writing || TICKET_WRITABLE.contains(&std.name) {
                    return Some((std.ty)());
                }
            }
            let mut cands: Vec<String> = cx
                .env
                .fields
                .get(conn)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            cands.extend(TICKET_WRITABLE.iter().map(|s| s.to_string()));
            cx.err(
                CheckErrorKind::Unknown {
                    kind: "Zendesk field",
                    name: a.name.clone(),
                    help: did_you_mean(&a.name, cands.iter().map(|s| s.as_str())).or_else(|| {
                        Some(format!(
                            "declare it: `fields {conn} {{ {} #360001234 string }}`",
                            a.name
                        ))
                    }),
                }
                .at(a.span),
            );
            None
        }
        (FieldName::Sf(segs, _), Kind::Salesforce) => {
            if segs.len() < 2 {
                return None;
            }
            let c = cx.use_object(&segs[0].name, segs[0].span, Some(conn))?;
            let full = segs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(".");
            cx.usage.sf_paths.insert(full.clone());
            if writing {
                let span = segs[0].span.to(segs[segs.len() - 1].span);
                cx.usage.sf_writes.push((c.clone(), full.clone(), span));
            }
            Some(
                cx.env
                    .fields
                    .get(&c)
                    .and_then(|m| m.get(&full))
                    .map(|f| f.ty.clone())
                    .unwrap_or(Ty::Any),
            )
        }
        (FieldName::Alias(a), Kind::Salesforce) => {
            cx.err(
                CheckErrorKind::Unknown {
                    kind: "Salesforce field",
                    name: a.name.clone(),
                    help: Some(format!(
                        "`{conn}` is Salesforce: write Object.Field, e.g. Case.{}",
                        a.name
                    )),
                }
                .at(a.span),
            );
            None
        }
        (FieldName::Sf(_, s), Kind::Zendesk) => {
            cx.err(
                CheckErrorKind::Unknown {
                    kind: "Zendesk field",
                    name: name.display(),
                    help: Some(format!(
                        "`{conn}` is Zendesk: use a field alias declared in `fields {conn}`"
                    )),
                }
                .at(*s),
            );
            None
        }
    }
}

pub(super) fn check_map(cx: &mut Ctx, m: &Mapping, writers: &mut BTreeMap<(String, String), Span>) {
    let from = cx.use_conn(&m.from, None, "a mapping");
    let to = cx.use_conn(&m.to, None, "a mapping");
    let (Some(from), Some(to)) = (from, to) else {
        return;
    };
    if from == to {
        cx.err(
            CheckErrorKind::MapSides {
                kind: from.as_str().into(),
            }
            .at(m.from.span.to(m.to.span)),
        );
        return;
    }
    let scope = Scope::default();
    for r in &m.rules {
        let src_ty = field(cx, &m.from.name, from, &r.source, false);
        let dst_ty = field(cx, &m.to.name, to, &r.target, true);
        cx.record_write(
            &m.to.name,
            format!(
                "`map {} -> {}` writes {}",
                m.from.name,
                m.to.name,
                r.target.display()
            ),
            r.target.span(),
        );
        let key = (m.to.name.clone(), r.target.display());
        if let Some(first) = writers.get(&key) {
            let first = *first;
            cx.err(
                CheckErrorKind::ConflictingWrite {
                    field: r.target.display(),
                    first: cx.same_file(r.target.span(), first),
                }
                .at(r.target.span()),
            );
        } else {
            writers.insert(key, r.target.span());
        }
        let (Some(src_ty), Some(dst_ty)) = (src_ty, dst_ty) else {
            continue;
        };
        match &r.table {
            None => direct(
                cx,
                (r.source.display(), r.target.display()),
                &src_ty,
                &dst_ty,
                r.span,
            ),
            Some(table) => {
                if to == Kind::Zendesk {
                    record_translations(cx, m, r, table);
                }
                translation(cx, r.source.display(), &src_ty, &dst_ty, table, &scope)
            }
        }
    }
}

fn direct(cx: &mut Ctx, (source, target): (String, String), src: &Ty, dst: &Ty, span: Span) {
    let ok = match (src, dst) {
        (Ty::Enum(a), Ty::Enum(b)) => a.iter().all(|v| b.contains(v)),
        (Ty::Str, Ty::Enum(_)) => false,
        (Ty::Num | Ty::Money(_) | Ty::Date | Ty::Bool | Ty::Enum(_), Ty::Str) => true,
        (a, b) => a.compatible(b),
    };
    if !ok {
        let help = match (src, dst) {
            (Ty::Enum(_) | Ty::Str, Ty::Enum(b)) => Some(format!(
                "add a translation table: `{source} -> {target} {{ \"x\" => {} ... _ => {} }}`",
                b.first().map(|s| s.as_str()).unwrap_or("value"),
                b.last().map(|s| s.as_str()).unwrap_or("value"),
            )),
            (Ty::Money(_), Ty::Num) | (Ty::Num, Ty::Money(_)) => {
                Some("declare both sides as money (with the same currency)".into())
            }
            (Ty::Money(Some(a)), Ty::Money(Some(b))) => Some(format!(
                "l3map does not convert currencies; declare `{target}` as money({a}) or map a {b} field"
            )),
            _ => None,
        };
        cx.mismatch(
            format!("`{source}` ({src}) cannot be written to a field of type {dst}"),
            span,
            src,
            help,
        );
    }
}

fn translation(
    cx: &mut Ctx,
    source: String,
    src: &Ty,
    dst: &Ty,
    table: &crate::syntax::ast::Translation,
    scope: &Scope,
) {
    let mut seen: Vec<(String, Span)> = Vec::new();
    let mut default_at: Option<Span> = None;
    for arm in &table.arms {
        if default_at.is_some() {
            cx.err(
                CheckErrorKind::UnreachableArm {
                    help: "the default arm `_` takes every value; put it last".into(),
                }
                .at(arm.span),
            );
        }
        match &arm.patterns {
            None => default_at = Some(arm.span),
            Some(pats) => {
                for p in pats {
                    let t = cx.expr(p, Some(src), scope);
                    if !t.compatible(src) {
                        cx.mismatch_expecting(format!("`{source}` is {src}"), p.span, &t, src);
                    }
                    let key = literal_key(p);
                    if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                        let first = *first;
                        cx.duplicate(
                            "translation of",
                            key.clone(),
                            p.span,
                            Some(first),
                            "each value is translated once; the first arm would win",
                        );
                    } else {
                        seen.push((key, p.span));
                    }
                }
            }
        }
        let out = match dst {
            Ty::Str => match &arm.value.kind {
                // A bare word into a text field is the text itself.
                ExprKind::Symbol(_) => Ty::Str,
                _ => cx.expr(&arm.value, Some(dst), scope),
            },
            _ => cx.expr(&arm.value, Some(dst), scope),
        };
        if !out.compatible(dst)
            || matches!((&out, dst), (Ty::Str, Ty::Enum(_)))
                && !matches!(arm.value.kind, ExprKind::Lit(Lit::Str(_)))
        {
            cx.mismatch_expecting(format!("the target is {dst}"), arm.value.span, &out, dst);
        }
    }
    if default_at.is_none() {
        let missing: Vec<String> = match src {
            Ty::Enum(values) => values
                .iter()
                .filter(|v| !seen.iter().any(|(k, _)| k == *v))
                .map(|v| format!("`{v}`"))
                .collect(),
            Ty::Bool => ["true", "false"]
                .iter()
                .filter(|v| !seen.iter().any(|(k, _)| k == *v))
                .map(|v| format!("`{v}`"))
                .collect(),
            _ => vec!["any other value".into()],
        };
        if !missing.is_empty() {
            cx.err(
                CheckErrorKind::NotExhaustive {
                    source_field: source,
                    missing: missing.join(", "),
                }
                .at(table.span),
            );
        }
    }
}

/// Remembers what each arm of a table into a Zendesk field matches and
/// writes (see [`super::Translated`]).
fn record_translations(
    cx: &mut Ctx,
    m: &Mapping,
    r: &crate::syntax::ast::MapRule,
    table: &crate::syntax::ast::Translation,
) {
    for arm in &table.arms {
        for p in arm.patterns.iter().flatten() {
            cx.usage.translations.push(super::Translated {
                map: format!("map {} -> {}", m.from.name, m.to.name),
                conn: m.to.name.clone(),
                target: r.target.display(),
                source: r.source.display(),
                from: literal_key(p),
                to: literal_key(&arm.value),
            });
        }
    }
}

fn literal_key(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Lit(Lit::Str(s)) => s.clone(),
        ExprKind::Lit(Lit::Num(n)) => n.to_string(),
        ExprKind::Lit(Lit::Bool(b)) => b.to_string(),
        ExprKind::Lit(Lit::Money(m)) => format!("{} {}", m.units, m.currency),
        ExprKind::Lit(Lit::None) => "none".into(),
        ExprKind::Symbol(i) => i.name.clone(),
        _ => String::new(),
    }
}
