//! What the IR keeps of a project's text beyond its rules: the declared
//! ticket fields, and conditions as written.

use super::*;

impl Lower<'_> {
    /// Every Zendesk connection's declared custom fields, in name order.
    pub(super) fn ticket_fields(&self) -> Vec<TicketField> {
        let mut out = vec![];
        for (conn, fields) in &self.env.fields {
            let zendesk = self
                .env
                .conns
                .get(conn)
                .is_some_and(|c| c.kind == crate::model::Kind::Zendesk);
            if !zendesk {
                continue;
            }
            for (alias, f) in fields {
                out.push(TicketField {
                    field: FieldRef::Zendesk {
                        connection: conn.clone(),
                        field: alias.clone(),
                        id: f.id,
                    },
                    ty: ty(&f.ty),
                    label: f.label.clone(),
                    loc: self.loc(f.span),
                });
            }
        }
        out
    }

    /// A condition as written. An expression's span ends at its last
    /// operand, which leaves out the `)` of a parenthesised one at the end
    /// (`a and (b or c)`): the closing parentheses that follow are taken in.
    pub(super) fn condition_text(&self, s: Span) -> String {
        let text = &self.sources.get(s.file).text;
        let mut out = self.text_of(s);
        let mut open = out.matches('(').count() as i64 - out.matches(')').count() as i64;
        let mut rest = text[s.end as usize..].chars();
        while open > 0 {
            match rest.next() {
                Some(c) if c.is_whitespace() => out.push(c),
                Some(')') => {
                    out.push(')');
                    open -= 1;
                }
                _ => break,
            }
        }
        out
    }
}
