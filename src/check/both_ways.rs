//! Fields mapped both ways (`Case.Priority -> priority` and `priority ->
//! Case.Priority`). Through a link that ties one ticket to one record
//! (`desk.ticket <-> crm.Case`) it works, with a caveat worth a warning:
//! edits of both sides within seconds of each other cross. Through a link
//! that ties many tickets to one record (an organization's Account, a
//! requester's Contact) it cannot: each ticket's value would be written to
//! the one record, each change of the record to all its tickets, and each
//! of those writes would come back as a ticket change; the tickets would
//! fight over the record. That is an error.

use super::{CheckErrorKind, Ctx, Kind, LinkErrorKind};
use crate::syntax::ast::{self, Item};
use crate::syntax::span::Span;

/// One `map` rule, by the names of its two sides.
struct Rule {
    desk: String,
    crm: String,
    /// The Zendesk field alias (or standard field).
    field: String,
    /// `Object.Field` on the Salesforce side.
    sf: String,
    object: String,
    to_crm: bool,
    sf_span: Span,
    desk_span: Span,
}

pub(super) fn lint(cx: &mut Ctx, files: &[ast::File]) {
    let items = || files.iter().flat_map(|f| f.items.iter());
    let kind = |cx: &Ctx, c: &str| cx.env.conns.get(c).map(|c| c.kind);
    let mut rules = Vec::new();
    for item in items() {
        let Item::Map(m) = item else { continue };
        let to_crm = match (kind(cx, &m.from.name), kind(cx, &m.to.name)) {
            (Some(Kind::Zendesk), Some(Kind::Salesforce)) => true,
            (Some(Kind::Salesforce), Some(Kind::Zendesk)) => false,
            _ => continue,
        };
        for r in &m.rules {
            let (desk_side, sf_side) = if to_crm {
                (&r.source, &r.target)
            } else {
                (&r.target, &r.source)
            };
            let ast::FieldName::Sf(segs, sf_span) = sf_side else {
                continue;
            };
            let Some(object) = segs.first() else { continue };
            let (desk, crm) = if to_crm {
                (&m.from.name, &m.to.name)
            } else {
                (&m.to.name, &m.from.name)
            };
            rules.push(Rule {
                desk: desk.clone(),
                crm: crm.clone(),
                field: desk_side.display(),
                sf: sf_side.display(),
                object: object.name.clone(),
                to_crm,
                sf_span: *sf_span,
                desk_span: desk_side.span(),
            });
        }
    }
    for back in rules.iter().filter(|r| r.to_crm) {
        let Some(forth) = rules.iter().find(|f| {
            !f.to_crm
                && f.desk == back.desk
                && f.crm == back.crm
                && f.field == back.field
                && f.sf == back.sf
        }) else {
            continue;
        };
        // Which Zendesk object links the record's object to tickets.
        let link = items().find_map(|i| match i {
            Item::Link(l) if l.crm.name == back.crm && l.object.name == back.object => Some(l),
            _ => None,
        });
        let other = cx.same_file(back.desk_span, forth.sf_span);
        let err = match link {
            Some(l) if l.zendesk.name != "ticket" => LinkErrorKind::BothWaysMany {
                field: back.field.clone(),
                link: format!(
                    "{}.{} <-> {}.{}",
                    l.desk.name, l.zendesk.name, l.crm.name, l.object.name
                ),
                object: back.object.clone(),
                crm: back.crm.clone(),
                desk: back.desk.clone(),
                other,
            },
            _ => LinkErrorKind::BothWays {
                field: back.field.clone(),
                other,
            },
        };
        cx.err(CheckErrorKind::from(err).at(back.desk_span));
    }
}
