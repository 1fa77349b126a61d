//! Field mappings: a source value present in the event, translated and
//! written to the target field.

use super::event::Event;
use super::expr::{equal, resolve, Scope};
use crate::ir::{FieldRef, MapRule, Ref, Type, Value};

/// The value of a mapped field in the event (`Null` when absent), read as
/// the field's declared type.
pub fn read(field: &FieldRef, ty: &Type, ev: &Event) -> Value {
    let ty = Some(ty.clone());
    let r = match field {
        FieldRef::Zendesk {
            field,
            id: Some(id),
            ..
        } => Ref::TicketField {
            alias: field.clone(),
            id: *id,
            ty,
        },
        FieldRef::Zendesk {
            field, id: None, ..
        } => Ref::Event {
            root: "ticket".into(),
            field: field.clone(),
        },
        FieldRef::Salesforce { path, .. } => Ref::Salesforce {
            path: path.clone(),
            ty,
        },
    };
    resolve(&r, ev, Scope::default())
}

/// Whether the event says this source changed: record changes list what
/// changed; other events carry the whole record, so anything present counts.
pub fn changed(field: &FieldRef, ev: &Event) -> bool {
    match field {
        FieldRef::Salesforce { path, .. } if !ev.changed.is_empty() => ev.changed.contains(path),
        _ => true,
    }
}

/// What a rule does with a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Translated {
    Write(Value),
    /// The target already holds the value: nothing to write.
    Unchanged,
    /// No arm matches and there is no default arm.
    NoArm(Value),
}

/// Translates `value` by the rule's table (or passes it through).
pub fn translate(rule: &MapRule, value: Value, ev: &Event) -> Translated {
    let out = match &rule.table {
        None => value,
        Some(arms) => {
            let hit = arms.iter().find(|a| match &a.patterns {
                Some(ps) => ps.iter().any(|p| equal(p, &value)),
                None => true,
            });
            match hit {
                Some(a) => a.value.clone(),
                None => return Translated::NoArm(value),
            }
        }
    };
    if equal(&read(&rule.target, &rule.target_type, ev), &out) {
        Translated::Unchanged
    } else {
        Translated::Write(out)
    }
}
