//! Declarations: connections, status tables, fields and mappings.

use super::Builder;
use crate::syntax::ast::*;
use crate::syntax::error::SyntaxErrorKind;
use crate::syntax::parser::{Pair, Rule};
use crate::syntax::span::Span;

impl Builder<'_> {
    pub(super) fn connection(&mut self, p: Pair) -> Connection {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "connection");
        let kind = self.ident(it.next().expect("kind"));
        let props = it.map(|pp| self.property(pp)).collect();
        Connection {
            name,
            kind,
            props,
            span,
        }
    }

    pub(super) fn property(&mut self, p: Pair) -> Property {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let key = self.ident(it.next().expect("key"));
        let values = it.map(|v| self.prop_value(v)).collect();
        Property { key, values, span }
    }

    pub(super) fn prop_value(&mut self, p: Pair) -> PropValue {
        let span = self.span(&p);
        let v = p.into_inner().next().expect("value");
        let kind = match v.as_rule() {
            Rule::secret_ref => {
                let mut it = v.into_inner();
                let source = if it.next().map(|k| k.as_str()) == Some("env") {
                    SecretSource::Env
                } else {
                    SecretSource::File
                };
                let name = it.next().map(|s| self.text(s).value).unwrap_or_default();
                PropKind::Secret { source, name }
            }
            Rule::rate => {
                let n = v.into_inner().next().expect("int");
                let value = self.uint(&n, "a rate");
                PropKind::Rate(value.min(u32::MAX as u64) as u32)
            }
            Rule::money => PropKind::Money(self.money(v)),
            Rule::number => PropKind::Number(self.number(&v)),
            Rule::string | Rule::raw_string => PropKind::Text(self.text(v).value),
            Rule::boolean => PropKind::Bool(v.as_str() == "true"),
            Rule::scope => PropKind::Scope(v.as_str().to_string()),
            _ => PropKind::Word(v.as_str().to_string()),
        };
        PropValue { kind, span }
    }

    // ------------------------------------------------------------ statuses

    pub(super) fn statuses(&mut self, p: Pair) -> StatusTable {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let conn = self.ident(it.next().expect("conn"));
        let mut statuses = Vec::new();
        let mut transitions = Vec::new();
        let mut forms = Vec::new();
        for c in it {
            match c.as_rule() {
                Rule::status_forms => forms.extend(
                    c.into_inner()
                        .filter(|t| matches!(t.as_rule(), Rule::string | Rule::raw_string))
                        .map(|t| self.text(t)),
                ),
                Rule::status_decl => statuses.push(self.status_decl(c)),
                Rule::transition => transitions.push(self.transition(c)),
                _ => {}
            }
        }
        StatusTable {
            conn,
            forms,
            statuses,
            transitions,
            span,
        }
    }

    pub(super) fn status_decl(&mut self, p: Pair) -> StatusDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "status");
        let category = self.ident(it.next().expect("category"));
        let mut d = StatusDecl {
            name,
            category,
            label: None,
            terminal: None,
            initial: None,
            id: None,
            span,
        };
        for c in it {
            match c.as_rule() {
                Rule::string | Rule::raw_string => d.label = Some(self.text(c)),
                Rule::status_attr => {
                    let a = c.into_inner().next().expect("attr");
                    let s = self.span(&a);
                    match a.as_rule() {
                        Rule::terminal => d.terminal = Some(s),
                        Rule::initial => d.initial = Some(s),
                        _ => d.id = Some(self.hash_id(a)),
                    }
                }
                _ => {}
            }
        }
        d
    }

    pub(super) fn hash_id(&mut self, p: Pair) -> (u64, Span) {
        let s = self.span(&p);
        let n = p.into_inner().next().expect("int");
        (self.uint(&n, "an id"), s)
    }

    pub(super) fn transition(&mut self, p: Pair) -> Transition {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let from_p = it.next().expect("from");
        let from = {
            let mut inner = from_p.into_inner().peekable();
            if inner.peek().map(|x| x.as_rule()) == Some(Rule::wildcard) {
                From::Any(self.span(&inner.next().expect("wildcard")))
            } else {
                From::List(inner.map(|i| self.ident(i)).collect())
            }
        };
        let _arrow = it.next();
        let to = it
            .next()
            .expect("to")
            .into_inner()
            .map(|i| self.ident(i))
            .collect();
        let when = it.find(|c| c.as_rule() == Rule::expr).map(|e| self.expr(e));
        Transition {
            from,
            to,
            when,
            span,
        }
    }

    // ------------------------------------------------------------ fields

    pub(super) fn fields(&mut self, p: Pair) -> FieldBlock {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let conn = self.ident(it.next().expect("conn"));
        let fields = it.map(|f| self.field_decl(f)).collect();
        FieldBlock { conn, fields, span }
    }

    pub(super) fn field_name(&mut self, p: Pair) -> FieldName {
        let inner = p.into_inner().next().expect("field name");
        match inner.as_rule() {
            Rule::sf_path => {
                let s = self.span(&inner);
                FieldName::Sf(inner.into_inner().map(|w| self.ident(w)).collect(), s)
            }
            _ => FieldName::Alias(self.ident(inner)),
        }
    }

    pub(super) fn field_decl(&mut self, p: Pair) -> FieldDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.field_name(it.next().expect("name"));
        if let FieldName::Alias(a) = &name {
            if crate::syntax::parser::is_keyword(&a.name) {
                self.errors.push(
                    SyntaxErrorKind::Reserved {
                        name: a.name.clone(),
                        what: "field",
                    }
                    .at(a.span),
                );
            }
        }
        let mut id = None;
        let mut ty = None;
        let mut label = None;
        let mut attrs = Vec::new();
        for c in it {
            match c.as_rule() {
                Rule::status_id => id = Some(self.hash_id(c)),
                Rule::field_type => ty = Some(self.type_expr(c)),
                Rule::field_attr => attrs.push(self.ident(c)),
                Rule::string | Rule::raw_string => label = Some(self.text(c)),
                _ => {}
            }
        }
        FieldDecl {
            name,
            id,
            ty: ty.expect("grammar requires a type"),
            attrs,
            label,
            span,
        }
    }

    pub(super) fn type_expr(&mut self, p: Pair) -> TypeExpr {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().expect("type name"));
        let args = it
            .map(|a| {
                let s = self.span(&a);
                let inner = a.into_inner().next().expect("type arg");
                let v = if inner.as_rule() == Rule::string {
                    self.text(inner).value
                } else {
                    inner.as_str().to_string()
                };
                (v, s)
            })
            .collect();
        TypeExpr { name, args, span }
    }

    // ------------------------------------------------------------ mappings

    pub(super) fn mapping(&mut self, p: Pair) -> Mapping {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let from = self.ident(it.next().expect("from"));
        let _arrow = it.next();
        let to = self.ident(it.next().expect("to"));
        let rules = it.map(|r| self.map_rule(r)).collect();
        Mapping {
            from,
            to,
            rules,
            span,
        }
    }

    pub(super) fn map_rule(&mut self, p: Pair) -> MapRule {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let source = self.field_name(it.next().expect("source"));
        let _arrow = it.next();
        let target = self.field_name(it.next().expect("target"));
        let table = it.next().map(|t| self.translation(t));
        MapRule {
            source,
            target,
            table,
            span,
        }
    }

    pub(super) fn translation(&mut self, p: Pair) -> Translation {
        let span = self.span(&p);
        let arms = p
            .into_inner()
            .map(|arm| {
                let aspan = self.span(&arm);
                let mut it = arm.into_inner();
                let pat = it.next().expect("pattern");
                let patterns = match pat.as_rule() {
                    Rule::default_pattern => None,
                    _ => Some(pat.into_inner().map(|v| self.literal(v)).collect()),
                };
                let _fat = it.next();
                let value = self.literal(it.next().expect("value"));
                Arm {
                    patterns,
                    value,
                    span: aspan,
                }
            })
            .collect();
        Translation { arms, span }
    }
}
