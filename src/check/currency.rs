//! Money across currencies. An amount whose currency comes with the event
//! (`turn.refund_amount`) can only be ordered against a threshold in the
//! same currency: l3map never converts, so a refund of 25,000 EUR held
//! against `$200` is undecided, and the rule is refused for a person
//! (`eval::expr::truth`). This lint finds those rules before they run: a
//! condition that gives such an amount thresholds in some currencies, while
//! a connection's `currencies` lists others.

use super::{CheckErrorKind, Ctx};
use crate::syntax::ast::{self, BinOp, EscStmt, Expr, ExprKind, Item, Lit};
use crate::syntax::Span;
use std::collections::BTreeMap;

pub(super) fn lint(cx: &mut Ctx, files: &[ast::File]) {
    for cond in conditions(files) {
        never_both(cx, cond);
    }
    // Currency -> the connection that first declares it, and where.
    let mut declared: BTreeMap<String, (String, Span)> = BTreeMap::new();
    for c in cx.env.conns.values() {
        for (cur, span) in &c.currencies {
            declared
                .entry(cur.clone())
                .or_insert_with(|| (c.name.clone(), *span));
        }
    }
    if declared.is_empty() {
        return;
    }
    for cond in conditions(files) {
        // Per amount: the currencies it has thresholds in, and where it is
        // first compared.
        let mut thresholds: BTreeMap<String, (Vec<String>, Span)> = BTreeMap::new();
        collect(cond, &mut thresholds);
        for (path, (covered, at)) in thresholds {
            let missing: Vec<&String> = declared.keys().filter(|c| !covered.contains(c)).collect();
            let Some(first) = missing.first() else {
                continue;
            };
            let (conn, decl) = &declared[*first];
            let declared_here = cx.same_file(at, *decl);
            let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            let covered: Vec<&String> = covered.iter().collect();
            cx.err(
                CheckErrorKind::UncoveredCurrency {
                    path,
                    covered: list(&covered),
                    missing: list(&missing),
                    missing_one: first.to_string(),
                    conn: conn.clone(),
                    declared: declared_here,
                }
                .at(at),
            );
        }
    }
}

/// Every escalation and transition condition.
fn conditions(files: &[ast::File]) -> Vec<&Expr> {
    let mut conditions: Vec<&Expr> = Vec::new();
    for item in files.iter().flat_map(|f| f.items.iter()) {
        match item {
            Item::Escalation(e) => conditions.extend(e.stmts.iter().filter_map(|s| match s {
                EscStmt::When(w) => Some(w),
                _ => None,
            })),
            Item::Statuses(t) => {
                conditions.extend(t.transitions.iter().filter_map(|t| t.when.as_ref()))
            }
            _ => {}
        }
    }
    conditions
}

/// `turn.refund_amount > $200 and turn.refund_amount > 180 EUR`: each
/// `and` whose own terms order one amount against two currencies. (Under
/// `or`, one threshold per currency is the documented way to cover them.)
fn never_both(cx: &mut Ctx, e: &Expr) {
    match &e.kind {
        ExprKind::Not(x) => never_both(cx, x),
        ExprKind::Or(terms) => terms.iter().for_each(|t| never_both(cx, t)),
        ExprKind::And(terms) => {
            let mut direct: BTreeMap<String, (Vec<String>, Span)> = BTreeMap::new();
            for t in terms {
                if matches!(t.kind, ExprKind::Binary(..)) {
                    collect(t, &mut direct);
                }
                never_both(cx, t);
            }
            for (path, (currencies, _)) in direct {
                if let [first, second, ..] = currencies.as_slice() {
                    cx.err(
                        CheckErrorKind::NeverBoth {
                            currencies: currencies.join(" and "),
                            first: first.clone(),
                            second: second.clone(),
                            path,
                        }
                        .at(e.span),
                    );
                }
            }
        }
        _ => {}
    }
}

/// Whether `path` is an amount whose currency comes with the event.
fn event_currency(path: &[ast::Ident]) -> Option<String> {
    let [root, field] = path else {
        return None;
    };
    let std = super::types::TURN
        .iter()
        .find(|f| root.name == "turn" && f.name == field.name)?;
    matches!((std.ty)(), super::Ty::Money(None)).then(|| format!("turn.{}", field.name))
}

fn collect(e: &Expr, out: &mut BTreeMap<String, (Vec<String>, Span)>) {
    match &e.kind {
        ExprKind::Not(x) => collect(x, out),
        ExprKind::And(terms) | ExprKind::Or(terms) => {
            for t in terms {
                collect(t, out);
            }
        }
        ExprKind::Binary(BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge, l, r) => {
            let pair = match (&l.kind, &r.kind) {
                (ExprKind::Path(p), ExprKind::Lit(Lit::Money(m)))
                | (ExprKind::Lit(Lit::Money(m)), ExprKind::Path(p)) => {
                    event_currency(p).map(|path| (path, m.currency.clone()))
                }
                _ => None,
            };
            if let Some((path, currency)) = pair {
                let entry = out.entry(path).or_insert_with(|| (Vec::new(), e.span));
                if !entry.0.contains(&currency) {
                    entry.0.push(currency);
                }
            }
        }
        _ => {}
    }
}
