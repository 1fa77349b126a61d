//! The warning that a `map` rule from Salesforce to Zendesk can never reach
//! a ticket: no record link ties its object to Zendesk.

use super::{CheckErrorKind, Ctx, Kind, LinkErrorKind};
use crate::syntax::ast::{self, Item};

/// A `map` rule from Salesforce to Zendesk whose object no link ties to
/// Zendesk can never reach a ticket in `l3map run`: warn, with the link
/// to add.
pub(super) fn lint(cx: &mut Ctx, files: &[ast::File]) {
    let links: Vec<(String, String)> = files
        .iter()
        .flat_map(|f| f.items.iter())
        .filter_map(|i| match i {
            Item::Link(l) => Some((l.crm.name.clone(), l.object.name.clone())),
            _ => None,
        })
        .collect();
    let kind = |cx: &Ctx, c: &str| cx.env.conns.get(c).map(|c| c.kind);
    for item in files.iter().flat_map(|f| f.items.iter()) {
        let Item::Map(m) = item else { continue };
        if kind(cx, &m.from.name) != Some(Kind::Salesforce)
            || kind(cx, &m.to.name) != Some(Kind::Zendesk)
        {
            continue;
        }
        let mut warned: Vec<String> = Vec::new();
        for r in &m.rules {
            let ast::FieldName::Sf(segs, span) = &r.source else {
                continue;
            };
            let Some(object) = segs.first().map(|s| s.name.clone()) else {
                continue;
            };
            if links.iter().any(|(c, o)| *c == m.from.name && *o == object)
                || warned.contains(&object)
            {
                continue;
            }
            warned.push(object.clone());
            let example = match object.as_str() {
                "Contact" => format!(
                    "link {}.user <-> {}.Contact {{ on user.email == Contact.Email  pick newest }}",
                    m.to.name, m.from.name
                ),
                "Case" => format!(
                    "link {}.ticket <-> {}.Case {{ on ticket.id == Case.Zendesk_Ticket_Id__c }}",
                    m.to.name, m.from.name
                ),
                o => format!(
                    "link {}.organization <-> {}.{o} {{ on organization.external_id == {o}.Id }}",
                    m.to.name, m.from.name
                ),
            };
            cx.err(
                CheckErrorKind::from(LinkErrorKind::UnlinkedMap {
                    conn: m.from.name.clone(),
                    object,
                    help: format!("add a link that says which tickets it governs: `{example}`"),
                })
                .at(*span),
            );
        }
    }
}
