//! `test` blocks: the event as written and what each `expect` line wants.

use super::{value, Lower};
use crate::ir::*;
use crate::syntax::ast;

impl Lower<'_> {
    pub(super) fn test(&self, t: &ast::TestBlock) -> TestCase {
        TestCase {
            name: t.name.name.clone(),
            event: t
                .events
                .first()
                .map(|e| e.value.clone())
                .unwrap_or_default(),
            expects: t
                .expects
                .iter()
                .map(|e| Expect {
                    what: self.expectation(&e.what),
                    source: self.text_of(e.span),
                    loc: self.loc(e.span),
                })
                .collect(),
            loc: self.loc(t.name.span),
        }
    }

    fn expectation(&self, e: &ast::Expectation) -> Expectation {
        use ast::Expectation as E;
        match e {
            E::Nothing => Expectation::Nothing,
            E::No(kind) => Expectation::No {
                kind: kind.name.clone(),
            },
            E::Status { conn, status } => Expectation::Status {
                connection: conn.name.clone(),
                status: status.name.clone(),
            },
            E::Field {
                conn,
                field,
                value: v,
            } => Expectation::Field {
                field: self.field_ref(&conn.name, field).0,
                value: value(v),
            },
            E::Comment {
                conn,
                contains,
                text,
            } => Expectation::Comment {
                connection: conn.name.clone(),
                contains: *contains,
                // A `"""` block is indented with the test around it.
                text: if text.raw {
                    crate::eval::testing::block_text(&text.value)
                } else {
                    text.value.clone()
                },
            },
            E::Group { conn, group } => Expectation::Group {
                connection: conn.name.clone(),
                group: group.value.clone(),
            },
            E::Sku { table, product } => Expectation::Sku {
                table: table.name.clone(),
                product: product.as_ref().map(|(p, _)| p.clone()),
            },
            E::Refused(t) => Expectation::Refused {
                text: t.value.clone(),
            },
        }
    }
}
