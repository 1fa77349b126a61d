//! Templates with their `{{ ... }}` interpolations, and escalations.

use super::Builder;
use crate::syntax::ast::*;
use crate::syntax::error::SyntaxErrorKind;
use crate::syntax::parser::{L3Parser, Pair, Rule};
use crate::syntax::span::Span;
use pest::error::InputLocation as InputLocationAlias;
use pest::Parser as _;

impl Builder<'_> {
    pub(super) fn template(&mut self, p: Pair) -> Template {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "template");
        let text = it.next().expect("body");
        let body = self.template_body(text);
        Template { name, body, span }
    }

    /// Parses the `{{ ... }}` parts of a string literal from its raw source,
    /// so interpolation spans point at the right bytes.
    pub(super) fn template_body(&mut self, text_pair: Pair) -> TemplateBody {
        let raw = text_pair.as_rule() == Rule::raw_string;
        // Escapes are reported once, by the text parts below, with exact spans.
        let reported = self.errors.len();
        let text = self.text(text_pair);
        self.errors.truncate(reported);
        let body_src = &self.src[text.body.start as usize..text.body.end as usize];
        let offset = text.body.start as usize;
        let mut parts = Vec::new();
        match L3Parser::parse(Rule::template_body, body_src) {
            Ok(mut pairs) => {
                let root = pairs.next().expect("template body");
                let sub = Builder {
                    file: self.file,
                    base: offset,
                    src: self.src,
                    errors: vec![],
                };
                let mut sub = sub;
                for part in root.into_inner() {
                    match part.as_rule() {
                        Rule::template_text => {
                            let s = sub.span(&part);
                            let v = if raw {
                                part.as_str().to_string()
                            } else {
                                sub.unescape(part.as_str(), s.start as usize)
                            };
                            parts.push(TemplatePart::Text(v));
                        }
                        Rule::interpolation => {
                            let s = sub.span(&part);
                            let mut it = part.into_inner();
                            let var = it.next().expect("var");
                            let path = var.into_inner().map(|w| sub.ident(w)).collect();
                            let filters = it
                                .map(|f| {
                                    let fs = sub.span(&f);
                                    let mut fi = f.into_inner();
                                    let name = sub.ident(fi.next().expect("filter name"));
                                    let args = fi.map(|a| sub.literal(a)).collect();
                                    Filter {
                                        name,
                                        args,
                                        span: fs,
                                    }
                                })
                                .collect();
                            parts.push(TemplatePart::Var {
                                path,
                                filters,
                                span: s,
                            });
                        }
                        _ => {}
                    }
                }
                self.errors.extend(sub.errors);
            }
            Err(e) => {
                let at = match e.location {
                    InputLocationAlias::Pos(p) => p,
                    InputLocationAlias::Span((s, _)) => s,
                };
                let mut expected: Vec<&str> = vec![];
                if let pest::error::ErrorVariant::ParsingError { positives, .. } = &e.variant {
                    for r in positives {
                        if let Some(n) = crate::syntax::parser::rule_name(*r) {
                            if !expected.contains(&n) {
                                expected.push(n);
                            }
                        }
                    }
                }
                if !expected.contains(&"`}}`") {
                    expected.push("`}}`");
                }
                self.errors.push(
                    SyntaxErrorKind::BadTemplate {
                        expected: crate::syntax::parser::join_or(&expected),
                    }
                    .at(Span::new(
                        self.file,
                        offset + at,
                        offset + at + body_src[at..].chars().next().map_or(1, char::len_utf8),
                    )),
                );
                parts.push(TemplatePart::Text(text.value.clone()));
            }
        }
        TemplateBody {
            parts,
            span: text.span,
        }
    }

    // ------------------------------------------------------------ escalations

    pub(super) fn escalation(&mut self, p: Pair) -> Escalation {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "escalation");
        let mut stmts = Vec::new();
        for s in it {
            let sspan = self.span(&s);
            let rule = s.as_rule();
            let mut si = s.into_inner();
            let stmt = match rule {
                Rule::esc_when => {
                    let e = si.find(|x| x.as_rule() == Rule::expr).expect("expr");
                    EscStmt::When(self.expr(e))
                }
                Rule::esc_reason => EscStmt::Reason(self.text(si.next().expect("reason"))),
                Rule::esc_comment => {
                    let conn = self.ident(si.next().expect("conn"));
                    let b = si.next().expect("body");
                    let body = if b.as_rule() == Rule::ident {
                        CommentBody::Template(self.ident(b))
                    } else {
                        CommentBody::Inline(self.template_body(b))
                    };
                    EscStmt::Comment {
                        conn,
                        body,
                        span: sspan,
                    }
                }
                Rule::esc_set => {
                    let conn = self.ident(si.next().expect("conn"));
                    let field = self.field_name(si.next().expect("field"));
                    let value = self.expr(si.next().expect("value"));
                    EscStmt::Set {
                        conn,
                        field,
                        value,
                        span: sspan,
                    }
                }
                Rule::esc_assign => {
                    let conn = self.ident(si.next().expect("conn"));
                    let group = self.text(si.next().expect("group"));
                    EscStmt::Assign {
                        conn,
                        group,
                        span: sspan,
                    }
                }
                _ => {
                    let conn = self.ident(si.next().expect("conn"));
                    let status = self.ident(si.next().expect("status"));
                    EscStmt::Status {
                        conn,
                        status,
                        span: sspan,
                    }
                }
            };
            stmts.push(stmt);
        }
        Escalation { name, stmts, span }
    }
}
