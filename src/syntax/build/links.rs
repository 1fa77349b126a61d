//! Record links: `link desk.organization <-> crm.Account { ... }`.

use super::Builder;
use crate::syntax::ast::*;
use crate::syntax::parser::{Pair, Rule};
use crate::syntax::span::Span;

impl Builder<'_> {
    pub(super) fn link(&mut self, p: Pair) -> Link {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let (desk, zendesk) = self.link_end(it.next().expect("zendesk side"));
        let _arrow = it.next();
        let (crm, object) = self.link_end(it.next().expect("salesforce side"));
        let mut l = Link {
            desk,
            zendesk,
            crm,
            object,
            on: vec![],
            tickets: vec![],
            pick: vec![],
            span,
        };
        for c in it {
            let s = self.span(&c);
            match c.as_rule() {
                Rule::link_on => {
                    let mut parts = c.into_inner().filter(|x| x.as_rule() == Rule::path);
                    let (left, left_span) = self.link_path(parts.next().expect("left"));
                    let (right, right_span) = self.link_path(parts.next().expect("right"));
                    l.on.push(LinkOn {
                        left,
                        left_span,
                        right,
                        right_span,
                        span: s,
                    });
                }
                Rule::link_tickets => l.tickets.push(LinkTickets {
                    names: c
                        .into_inner()
                        .filter(|x| x.as_rule() == Rule::ident)
                        .map(|x| self.ident(x))
                        .collect(),
                    span: s,
                }),
                Rule::link_pick => {
                    if let Some(w) = c.into_inner().find(|x| x.as_rule() == Rule::ident) {
                        l.pick.push(self.ident(w));
                    }
                }
                _ => {}
            }
        }
        l
    }

    /// `desk.organization` -> (connection, object).
    fn link_end(&mut self, p: Pair) -> (Ident, Ident) {
        let mut it = p.into_inner();
        let conn = self.ident(it.next().expect("connection"));
        let obj = self.ident(it.next().expect("object"));
        (conn, obj)
    }

    fn link_path(&mut self, p: Pair) -> (Vec<Ident>, Span) {
        let s = self.span(&p);
        (p.into_inner().map(|w| self.ident(w)).collect(), s)
    }
}
