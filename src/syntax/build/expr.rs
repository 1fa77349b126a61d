//! Conditions: operators by precedence (pest's Pratt parser), paths and
//! lists.

use super::Builder;
use crate::syntax::ast::*;
use crate::syntax::error::SyntaxErrorKind;
use crate::syntax::parser::{Pair, Rule};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::LazyLock;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_eq, Assoc::Left)
            | Op::infix(Rule::op_ne, Assoc::Left)
            | Op::infix(Rule::op_lt, Assoc::Left)
            | Op::infix(Rule::op_le, Assoc::Left)
            | Op::infix(Rule::op_gt, Assoc::Left)
            | Op::infix(Rule::op_ge, Assoc::Left)
            | Op::infix(Rule::op_in, Assoc::Left)
            | Op::infix(Rule::op_not_in, Assoc::Left)
            | Op::infix(Rule::op_has, Assoc::Left))
});

impl Builder<'_> {
    pub fn expr(&mut self, p: Pair) -> Expr {
        let pairs = p.into_inner();
        // The closures of the Pratt parser all need `self`; a RefCell-free
        // way is to collect into a small owned structure first.
        let cell = std::cell::RefCell::new(self);
        let parsed = PRATT
            .map_primary(|prim| cell.borrow_mut().literal(prim))
            .map_prefix(|op, rhs| {
                let b = cell.borrow();
                let span = b.span(&op).to(rhs.span);
                match rhs.kind {
                    // `not not x` is `x`: keeps hostile `not` runs shallow.
                    ExprKind::Not(inner) => Expr { span, ..*inner },
                    kind => Expr {
                        kind: ExprKind::Not(Box::new(Expr {
                            kind,
                            span: rhs.span,
                        })),
                        span,
                    },
                }
            })
            .map_infix(|lhs, op, rhs| {
                let span = lhs.span.to(rhs.span);
                let flatten = |lhs: Expr, and: bool| {
                    let mut terms = match lhs.kind {
                        ExprKind::And(t) if and => t,
                        ExprKind::Or(t) if !and => t,
                        kind => vec![Expr {
                            kind,
                            span: lhs.span,
                        }],
                    };
                    terms.push(rhs.clone());
                    Expr {
                        kind: if and {
                            ExprKind::And(terms)
                        } else {
                            ExprKind::Or(terms)
                        },
                        span,
                    }
                };
                let op_span = cell.borrow().span(&op);
                let op = match op.as_rule() {
                    Rule::op_or => return flatten(lhs, false),
                    Rule::op_and => return flatten(lhs, true),
                    Rule::op_eq => BinOp::Eq,
                    Rule::op_ne => BinOp::Ne,
                    Rule::op_lt => BinOp::Lt,
                    Rule::op_le => BinOp::Le,
                    Rule::op_gt => BinOp::Gt,
                    Rule::op_ge => BinOp::Ge,
                    Rule::op_in => BinOp::In,
                    Rule::op_not_in => BinOp::NotIn,
                    _ => BinOp::Has,
                };
                if let ExprKind::Binary(..) = lhs.kind {
                    // `a < b < c` would compare a yes/no answer with `c`;
                    // refusing it also keeps left-deep chains out of the tree.
                    cell.borrow_mut()
                        .errors
                        .push(SyntaxErrorKind::ChainedComparison { op: op.symbol() }.at(op_span));
                    return lhs;
                }
                Expr {
                    kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                    span,
                }
            })
            .parse(pairs);
        parsed
    }
}
