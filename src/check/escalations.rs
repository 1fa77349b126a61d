//! Templates and escalation rules: the hand-off to a human.

use super::mappings::field;
use super::{did_you_mean, Category, CheckErrorKind, Ctx, Kind, Scope, Ty};
use crate::syntax::ast::{
    CommentBody, EscStmt, Escalation, ExprKind, Lit, Template, TemplateBody, TemplatePart,
};

pub const FILTERS: &[(&str, &str)] = &[
    ("upper", "UPPER CASE"),
    ("lower", "lower case"),
    ("trim", "strip surrounding spaces"),
    ("join", "join a list: join(\", \")"),
    ("default", "a value when missing: default(\"n/a\")"),
    ("truncate", "cut to N characters: truncate(200)"),
    ("money", "format an amount: 1,234.50 USD"),
];

pub(super) fn check_template(cx: &mut Ctx, t: &Template) {
    check_body(cx, &t.body);
}

fn check_body(cx: &mut Ctx, body: &TemplateBody) {
    let scope = Scope {
        ticket_conn: None,
        in_template: true,
    };
    for part in &body.parts {
        let TemplatePart::Var { path, filters, .. } = part else {
            continue;
        };
        let ty = if path.len() < 2 {
            cx.err(CheckErrorKind::Unknown {
                kind: "template variable",
                name: path[0].name.clone(),
                help: Some(match path[0].name.as_str() {
                    "reason" | "name" => format!("write `escalation.{}`", path[0].name),
                    "summary" | "attempts" | "sentiment" | "intent" => {
                        format!("write `turn.{}`", path[0].name)
                    }
                    _ => "variables are paths such as turn.summary, ticket.id or escalation.reason"
                        .into(),
                }),
            }.at(path[0].span));
            Ty::Any
        } else {
            cx.resolve_path(path, &scope)
                .map(|(_, t)| t)
                .unwrap_or(Ty::Any)
        };
        let mut current = ty;
        for f in filters {
            let arity = |cx: &mut Ctx, n: usize, example: &str| {
                if f.args.len() != n {
                    cx.err(
                        CheckErrorKind::BadFilter {
                            message: format!(
                                "`{}` takes {}",
                                f.name.name,
                                if n == 0 {
                                    "no arguments"
                                } else {
                                    "one argument"
                                }
                            ),
                            help: format!("write `{example}`"),
                        }
                        .at(f.span),
                    );
                    false
                } else {
                    true
                }
            };
            current = match f.name.name.as_str() {
                "upper" | "lower" | "trim" => {
                    arity(cx, 0, &format!("| {}", f.name.name));
                    Ty::Str
                }
                "join" => {
                    if arity(cx, 1, "| join(\", \")")
                        && !matches!(f.args[0].kind, ExprKind::Lit(Lit::Str(_)))
                    {
                        cx.err(
                            CheckErrorKind::BadFilter {
                                message: "`join` takes the separator as text".into(),
                                help: "write `| join(\", \")`".into(),
                            }
                            .at(f.args[0].span),
                        );
                    }
                    if !matches!(current, Ty::List(_) | Ty::Any) {
                        cx.err(
                            CheckErrorKind::BadFilter {
                                message: format!("`join` needs a list, but this is {current}"),
                                help: "remove `| join(...)`; it is for lists such as turn.attempts"
                                    .into(),
                            }
                            .at(f.span),
                        );
                    }
                    Ty::Str
                }
                "default" => {
                    arity(cx, 1, "| default(\"n/a\")");
                    current
                }
                "truncate" => {
                    if arity(cx, 1, "| truncate(200)")
                        && !matches!(f.args[0].kind, ExprKind::Lit(Lit::Num(n)) if n >= 1.0 && n.fract() == 0.0)
                    {
                        cx.err(
                            CheckErrorKind::BadFilter {
                                message: "`truncate` takes a whole number of characters".into(),
                                help: "write `| truncate(200)`".into(),
                            }
                            .at(f.args[0].span),
                        );
                    }
                    Ty::Str
                }
                "money" => {
                    arity(cx, 0, "| money");
                    if !matches!(current, Ty::Money(_) | Ty::Any) {
                        cx.err(
                            CheckErrorKind::BadFilter {
                                message: format!("`money` formats amounts, but this is {current}"),
                                help: "remove `| money`".into(),
                            }
                            .at(f.span),
                        );
                    }
                    Ty::Str
                }
                other => {
                    cx.err(
                        CheckErrorKind::BadFilter {
                            message: format!("unknown filter `{other}`"),
                            help: did_you_mean(other, FILTERS.iter().map(|(n, _)| *n))
                                .unwrap_or_else(|| {
                                    format!(
                                        "filters are {}",
                                        FILTERS
                                            .iter()
                                            .map(|(n, _)| *n)
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    )
                                }),
                        }
                        .at(f.name.span),
                    );
                    Ty::Any
                }
            };
        }
    }
}

pub(super) fn check_escalation(cx: &mut Ctx, e: &Escalation) {
    let mut when = None;
    let mut reason = None;
    let mut acts = 0;
    for s in &e.stmts {
        match s {
            EscStmt::When(x) => {
                if let Some(prev) = when.replace(x.span) {
                    cx.err(
                        CheckErrorKind::EscalationShape {
                            message: format!(
                                "escalation `{}` has two `when` conditions",
                                e.name.name
                            ),
                            help: "join them into one: `when A or B`".into(),
                            first: Some(prev),
                        }
                        .at(x.span),
                    );
                }
                cx.condition(x, &Scope::default());
            }
            EscStmt::Reason(t) => {
                if let Some(prev) = reason.replace(t.span) {
                    cx.err(
                        CheckErrorKind::EscalationShape {
                            message: format!("escalation `{}` has two reasons", e.name.name),
                            help: "keep one `reason`; it is what the human reads first".into(),
                            first: Some(prev),
                        }
                        .at(t.span),
                    );
                }
                if t.value.trim().is_empty() {
                    cx.err(CheckErrorKind::EscalationShape {
                        message: "the reason is empty".into(),
                        help: "say why the AI hands off, e.g. \"refund above the $200 pre-authorised threshold\"".into(),
            first: None,
        }.at(t.span));
                }
            }
            EscStmt::Comment { conn, body, span } => {
                acts += 1;
                let Some(kind) = cx.use_conn(conn, None, "a hand-off comment") else {
                    continue;
                };
                match kind {
                    Kind::Zendesk => cx.record_write(
                        &conn.name,
                        format!("escalation `{}` writes a private comment", e.name.name),
                        *span,
                    ),
                    Kind::Salesforce => {
                        cx.use_object("Case", conn.span, Some(&conn.name));
                    }
                }
                match body {
                    CommentBody::Template(t) => {
                        if cx.env.templates.contains_key(&t.name) {
                            cx.usage.templates.insert(t.name.clone());
                        } else {
                            let names: Vec<String> = cx.env.templates.keys().cloned().collect();
                            cx.err(
                                CheckErrorKind::Unknown {
                                    kind: "template",
                                    name: t.name.clone(),
                                    help: did_you_mean(&t.name, names.iter().map(|s| s.as_str()))
                                        .or_else(|| {
                                            Some(format!(
                                                "declare it: `template {} \"\"\"...\"\"\"`",
                                                t.name
                                            ))
                                        }),
                                }
                                .at(t.span),
                            );
                        }
                    }
                    CommentBody::Inline(b) => check_body(cx, b),
                }
            }
            EscStmt::Set {
                conn,
                field: f,
                value,
                span,
            } => {
                acts += 1;
                let Some(kind) = cx.use_conn(conn, None, "a field write") else {
                    continue;
                };
                cx.record_write(
                    &conn.name,
                    format!("escalation `{}` sets {}", e.name.name, f.display()),
                    *span,
                );
                if let Some(ty) = field(cx, &conn.name, kind, f, true) {
                    let scope = Scope::default();
                    let vt = match (&ty, &value.kind) {
                        (Ty::Str, ExprKind::Symbol(_)) => Ty::Str,
                        _ => cx.expr(value, Some(&ty), &scope),
                    };
                    if !vt.compatible(&ty) {
                        cx.mismatch_expecting(
                            format!("`{}` is {ty}", f.display()),
                            value.span,
                            &vt,
                            &ty,
                        );
                    }
                }
            }
            EscStmt::Assign { conn, group, span } => {
                acts += 1;
                if cx
                    .use_conn(conn, Some(Kind::Zendesk), "`assign` (Zendesk groups)")
                    .is_some()
                {
                    cx.record_write(
                        &conn.name,
                        format!("escalation `{}` assigns a group", e.name.name),
                        *span,
                    );
                    cx.usage
                        .groups
                        .push((conn.name.clone(), group.value.clone(), group.span));
                }
                if group.value.trim().is_empty() {
                    cx.err(
                        CheckErrorKind::EscalationShape {
                            message: "the group name is empty".into(),
                            help: "write the Zendesk group's name, e.g. \"Payments Tier 2\"".into(),
                            first: None,
                        }
                        .at(group.span),
                    );
                }
            }
            EscStmt::Status { conn, status, span } => {
                acts += 1;
                let Some(kind) = cx.use_conn(conn, None, "a status change") else {
                    continue;
                };
                if let Some(Category::New) = super::statuses::lookup(cx, conn, status) {
                    cx.err(
                        CheckErrorKind::TransitionToNew {
                            status: status.name.clone(),
                        }
                        .at(status.span),
                    );
                }
                let what = format!("escalation `{}` sets the status", e.name.name);
                match kind {
                    Kind::Zendesk => cx
                        .usage
                        .status_writes
                        .entry(conn.name.clone())
                        .or_default()
                        .push((what, *span)),
                    Kind::Salesforce => cx.record_write(&conn.name, what, *span),
                }
            }
        }
    }
    if when.is_none() {
        cx.err(
            CheckErrorKind::EscalationShape {
                message: format!("escalation `{}` has no `when` condition", e.name.name),
                help: "add `when ...`, e.g. `when turn.refund_amount > $200`".into(),
                first: None,
            }
            .at(e.name.span),
        );
    }
    if reason.is_none() {
        cx.err(
            CheckErrorKind::EscalationShape {
                message: format!("escalation `{}` has no `reason`", e.name.name),
                help: "add `reason \"...\"`: the human agent needs to know why the AI handed off"
                    .into(),
                first: None,
            }
            .at(e.name.span),
        );
    }
    if acts == 0 {
        cx.err(
            CheckErrorKind::EmptyEscalation {
                name: e.name.name.clone(),
            }
            .at(e.name.span),
        );
    }
}
