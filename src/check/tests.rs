//! `test` blocks: the event must decode, and every expectation must name
//! something the project declares, so a typo fails `check`, not a test run.

use super::mappings::field;
use super::types::{Scope, Ty};
use super::{did_you_mean, CheckError, Ctx};
use crate::check::Kind;
use crate::syntax::ast::{Expectation, ExprKind, TestBlock};
use crate::syntax::Span;

pub(super) fn check(cx: &mut Ctx, t: &TestBlock) {
    match t.events.as_slice() {
        [] => cx.err(CheckError::TestShape {
            message: format!("test `{}` has no event", t.name.name),
            help: "add `event \"\"\" {\"kind\": \"agent_turn\", ...} \"\"\"` (see docs/EVENTS.md)"
                .into(),
            span: t.name.span,
            first: None,
        }),
        [ev, rest @ ..] => {
            for extra in rest {
                cx.err(CheckError::TestShape {
                    message: format!("test `{}` has two events", t.name.name),
                    help: "one event per test: split it into two tests".into(),
                    span: extra.span,
                    first: Some(ev.span),
                });
            }
            if let Err(e) = crate::eval::testing::test_event(&t.name.name, &ev.value) {
                // In a raw string the JSON is the source text, so the error
                // can point at the exact byte.
                let span = match e.offset {
                    Some(at) if ev.raw => {
                        let start = ev.body.start as usize + at;
                        let len = ev.value[at..].chars().next().map_or(0, char::len_utf8);
                        Span::new(ev.span.file, start, start + len)
                    }
                    _ => ev.span,
                };
                cx.err(CheckError::TestEvent {
                    message: e.message,
                    span,
                });
            }
        }
    }
    if t.expects.is_empty() {
        cx.err(CheckError::TestShape {
            message: format!("test `{}` expects nothing", t.name.name),
            help: "add `expect ...` lines, or `expect nothing` if the event must do nothing".into(),
            span: t.name.span,
            first: None,
        });
    }
    for e in &t.expects {
        match &e.what {
            Expectation::Nothing | Expectation::No(_) | Expectation::Refused(_) => {}
            Expectation::Status { conn, status } => {
                if cx.use_conn(conn, None, "a status expectation").is_none() {
                    continue;
                }
                super::statuses::lookup(cx, conn, status);
            }
            Expectation::Field {
                conn,
                field: f,
                value,
            } => {
                let Some(kind) = cx.use_conn(conn, None, "a field expectation") else {
                    continue;
                };
                if let Some(ty) = field(cx, &conn.name, kind, f, false) {
                    let vt = match (&ty, &value.kind) {
                        (Ty::Str, ExprKind::Symbol(_)) => Ty::Str,
                        _ => cx.expr(value, Some(&ty), &Scope::default()),
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
            Expectation::Comment { conn, .. } => {
                cx.use_conn(conn, None, "a comment expectation");
            }
            Expectation::Group { conn, .. } => {
                cx.use_conn(conn, Some(Kind::Zendesk), "a group expectation");
            }
            Expectation::Sku { table, product } => {
                let Some(products) = cx.env.skus.get(&table.name) else {
                    let names: Vec<String> = cx.env.skus.keys().cloned().collect();
                    cx.err(CheckError::Unknown {
                        kind: "sku table",
                        name: table.name.clone(),
                        span: table.span,
                        help: did_you_mean(&table.name, names.iter().map(|s| s.as_str())),
                    });
                    continue;
                };
                if let Some((p, span)) = product {
                    if !products.is_empty() && !products.contains(p) {
                        let help = did_you_mean(p, products.iter().map(|s| s.as_str()));
                        cx.err(CheckError::Unknown {
                            kind: "product",
                            name: p.clone(),
                            span: *span,
                            help,
                        });
                    }
                }
            }
        }
    }
}
