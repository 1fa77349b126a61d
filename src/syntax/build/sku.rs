//! SKU tables and test blocks.

use super::Builder;
use crate::syntax::ast::*;
use crate::syntax::parser::{Pair, Rule};
use crate::syntax::span::Span;

impl Builder<'_> {
    pub(super) fn sku(&mut self, p: Pair) -> SkuTable {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "sku table");
        let mut t = SkuTable {
            name,
            normalize: vec![],
            products: vec![],
            rules: vec![],
            tests: vec![],
            applies: vec![],
            span,
        };
        for c in it {
            match c.as_rule() {
                Rule::normalize => {
                    for step in c.into_inner() {
                        let sspan = self.span(&step);
                        let mut si = step.into_inner();
                        let name = self.ident(si.next().expect("step"));
                        let arg = si.next().map(|a| self.text(a));
                        t.normalize.push(NormStep {
                            name,
                            arg,
                            span: sspan,
                        });
                    }
                }
                Rule::products => {
                    for prod in c.into_inner() {
                        let s = self.span(&prod);
                        t.products.push((prod.as_str().to_string(), s));
                    }
                }
                Rule::sku_rule => {
                    let rspan = self.span(&c);
                    let mut patterns = vec![];
                    let mut target = (String::new(), rspan);
                    for part in c.into_inner() {
                        match part.as_rule() {
                            Rule::sku_pattern => {
                                let inner = part.into_inner().next().expect("pattern");
                                if inner.as_rule() == Rule::regex {
                                    let s = self.span(&inner);
                                    let body = inner.into_inner().next().expect("regex body");
                                    patterns.push(SkuPattern::Regex {
                                        source: body.as_str().replace("\\/", "/"),
                                        span: s,
                                    });
                                } else {
                                    patterns.push(SkuPattern::Alias(self.text(inner)));
                                }
                            }
                            Rule::sku_target => target = self.sku_target(part),
                            _ => {}
                        }
                    }
                    t.rules.push(SkuRule {
                        patterns,
                        target,
                        span: rspan,
                    });
                }
                Rule::sku_apply => {
                    let aspan = self.span(&c);
                    let mut ai = c.into_inner().skip(1);
                    let path = ai.next().expect("source path");
                    let source_span = self.span(&path);
                    let source = path.into_inner().map(|w| self.ident(w)).collect();
                    let _arrow = ai.next();
                    let conn = self.ident(ai.next().expect("connection"));
                    let field = self.field_name(ai.next().expect("field"));
                    t.applies.push(SkuApply {
                        source,
                        source_span,
                        conn,
                        field,
                        span: aspan,
                    });
                }
                Rule::sku_test => {
                    let tspan = self.span(&c);
                    let mut ti = c.into_inner();
                    let input = self.text(ti.next().expect("input"));
                    let _fat = ti.next();
                    let exp = ti.next().expect("expected");
                    let expected = match exp.as_rule() {
                        Rule::none => None,
                        _ => Some(self.sku_target(exp)),
                    };
                    t.tests.push(SkuTest {
                        input,
                        expected,
                        span: tspan,
                    });
                }
                _ => {}
            }
        }
        t
    }

    pub(super) fn sku_target(&mut self, p: Pair) -> (String, Span) {
        let s = self.span(&p);
        let inner = p.into_inner().next().expect("target");
        if inner.as_rule() == Rule::string {
            (self.text(inner).value, s)
        } else {
            (inner.as_str().to_string(), s)
        }
    }

    // ------------------------------------------------------------ tests

    pub(super) fn test_block(&mut self, p: Pair) -> TestBlock {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "test");
        let mut t = TestBlock {
            name,
            events: vec![],
            expects: vec![],
            span,
        };
        for stmt in it {
            let sspan = self.span(&stmt);
            match stmt.as_rule() {
                Rule::test_event => {
                    let text = stmt.into_inner().nth(1).expect("event text");
                    t.events.push(self.text(text));
                }
                Rule::expect => {
                    let exp = stmt.into_inner().nth(1).expect("expectation");
                    let what = self.expectation(exp);
                    t.expects.push(Expect { what, span: sspan });
                }
                _ => {}
            }
        }
        t
    }

    pub(super) fn expectation(&mut self, p: Pair) -> Expectation {
        let rule = p.as_rule();
        if rule == Rule::exp_nothing {
            return Expectation::Nothing;
        }
        // Every other form starts with its keyword.
        let mut it = p.into_inner().skip(1);
        let mut next = || it.next().expect("grammar guarantees the parts");
        match rule {
            Rule::exp_no => Expectation::No(self.ident(next())),
            Rule::exp_status => {
                let conn = self.ident(next());
                let status = self.ident(next());
                Expectation::Status { conn, status }
            }
            Rule::exp_field => {
                let conn = self.ident(next());
                let field = self.field_name(next());
                let value = self.literal(next());
                Expectation::Field { conn, field, value }
            }
            Rule::exp_comment => {
                let conn = self.ident(next());
                let mut body = next();
                let contains = body.as_rule() == Rule::kw_contains;
                if contains {
                    body = next();
                }
                let text = self.text(body);
                Expectation::Comment {
                    conn,
                    contains,
                    text,
                }
            }
            Rule::exp_group => {
                let conn = self.ident(next());
                let group = self.text(next());
                Expectation::Group { conn, group }
            }
            Rule::exp_sku => {
                let table = self.ident(next());
                let target = next();
                let product = match target.as_rule() {
                    Rule::none => None,
                    _ => Some(self.sku_target(target)),
                };
                Expectation::Sku { table, product }
            }
            _ => Expectation::Refused(self.text(next())),
        }
    }
}
