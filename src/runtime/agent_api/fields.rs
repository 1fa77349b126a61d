//! Which Zendesk ticket fields the mappings name.

use crate::ir::{CommentBody, EscAction, FieldRef, Program, Ref, TemplatePart};
use std::collections::BTreeMap;

// replaced by the IR index at merge
/// The Zendesk custom fields the mappings name, l3map name to field id.
/// The IR keeps no list of declarations, only the references the rules
/// make, so a field no rule reads or writes is not here (nor needed).
pub(super) fn ticket_field_ids(p: &Program) -> BTreeMap<String, u64> {
    fn part_refs<'a>(parts: &'a [TemplatePart], out: &mut Vec<&'a Ref>) {
        for p in parts {
            if let TemplatePart::Var { var, .. } = p {
                out.push(var);
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut field = |r: &FieldRef| {
        if let FieldRef::Zendesk {
            field,
            id: Some(id),
            ..
        } = r
        {
            out.entry(field.clone()).or_insert(*id);
        }
    };
    let mut refs = Vec::new();
    for m in &p.mappings {
        for r in &m.rules {
            field(&r.source);
            field(&r.target);
        }
    }
    for t in &p.sku_tables {
        for a in &t.applies {
            field(&a.target);
            refs.push(&a.source);
        }
    }
    for t in &p.status_tables {
        for tr in &t.transitions {
            if let Some(w) = &tr.when {
                w.refs(&mut refs);
            }
        }
    }
    for e in &p.escalations {
        e.when.refs(&mut refs);
        for a in &e.actions {
            match a {
                EscAction::SetField {
                    field: f, value, ..
                } => {
                    field(f);
                    value.refs(&mut refs);
                }
                EscAction::Comment {
                    body: CommentBody::Inline(parts),
                    ..
                } => part_refs(parts, &mut refs),
                _ => {}
            }
        }
    }
    for t in &p.templates {
        part_refs(&t.parts, &mut refs);
    }
    for r in refs {
        if let Ref::TicketField { alias, id, .. } = r {
            out.entry(alias.clone()).or_insert(*id);
        }
    }
    out
}
