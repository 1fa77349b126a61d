//! `link` blocks -> [`Link`], through the same resolution the checker used
//! (`crate::check::links`), so what was checked is what runs.

use super::Lower;
use crate::check::links::{sides, ticket_statuses, zd_key, ZdKeyRef};
use crate::ir::*;
use crate::syntax::ast;

impl Lower<'_> {
    pub(super) fn link(&self, l: &ast::Link) -> Link {
        let zendesk = match l.zendesk.name.as_str() {
            "ticket" => ZdObject::Ticket,
            "organization" => ZdObject::Organization,
            _ => ZdObject::User,
        };
        // A project that checked has exactly one `on` with a side for each.
        let on = &l.on[0];
        let (zd, _, sf, _) = sides(l, on).expect("a checked link's `on`");
        let rest: Vec<&str> = zd[1..].iter().map(|s| s.name.as_str()).collect();
        let zendesk_key = match zd_key(&l.zendesk.name, &rest).expect("a checked Zendesk key") {
            ZdKeyRef::Id => ZdKey::Id,
            ZdKeyRef::ExternalId => ZdKey::ExternalId,
            ZdKeyRef::Email => ZdKey::Email,
            ZdKeyRef::Field(key) => ZdKey::Field { key },
            ZdKeyRef::TicketField(name) => {
                let id = self
                    .env
                    .fields
                    .get(&l.desk.name)
                    .and_then(|m| m.get(&name))
                    .and_then(|f| f.id)
                    .unwrap_or_default();
                ZdKey::TicketField { name, id }
            }
        };
        Link {
            desk: l.desk.name.clone(),
            zendesk,
            zendesk_key,
            crm: l.crm.name.clone(),
            object: l.object.name.clone(),
            field: sf[1].name.clone(),
            pick: if l.pick.iter().any(|p| p.name == "newest") {
                Pick::Newest
            } else {
                Pick::One
            },
            tickets: ticket_statuses(l),
            loc: self.loc(l.span),
        }
    }
}
