//! Field mappings: a source value present in the event, translated and
//! written to the target field.

use super::event::Event;
use super::expr::{custom_field, equal, event_field, salesforce_field, Scope, Val};
use crate::ir::{FieldRef, MapRule, Type};

/// The value of a mapped field in the event (`Null` when absent), read as
/// the field's declared type. Runs for every rule on every event, so it
/// borrows and looks the value up directly.
pub fn read<'a>(field: &'a FieldRef, ty: &'a Type, ev: &'a Event) -> Val<'a> {
    match field {
        FieldRef::Zendesk { id: Some(id), .. } => custom_field(*id, Some(ty), ev),
        FieldRef::Zendesk {
            field, id: None, ..
        } => event_field("ticket", field, ev, Scope::default()),
        FieldRef::Salesforce { path, .. } => salesforce_field(path, Some(ty), ev),
    }
}

/// What the event says changed: record changes list their changed
/// fields; other events carry the whole record, so anything present
/// counts. Many mapped fields meet many changed ones, so a long list is
/// hashed once per event.
pub enum Changes<'e> {
    Everything,
    Few(&'e [String]),
    Many(rustc_hash::FxHashSet<&'e str>),
}

impl<'e> Changes<'e> {
    pub fn new(ev: &'e Event) -> Changes<'e> {
        match ev.changed.len() {
            0 => Changes::Everything,
            1..=4 => Changes::Few(&ev.changed),
            _ => Changes::Many(ev.changed.iter().map(String::as_str).collect()),
        }
    }

    /// Whether `field` changed. Only Salesforce sources come with a list.
    pub fn includes(&self, field: &FieldRef) -> bool {
        let FieldRef::Salesforce { path, .. } = field else {
            return true;
        };
        match self {
            Changes::Everything => true,
            Changes::Few(list) => list.iter().any(|c| c == path),
            Changes::Many(set) => set.contains(path.as_str()),
        }
    }
}

/// What a rule does with a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Translated<'a> {
    Write(Val<'a>),
    /// The target already holds the value: nothing to write.
    Unchanged,
    /// No arm matches and there is no default arm.
    NoArm(Val<'a>),
}

/// Translates `value` by the rule's table (or passes it through).
pub fn translate<'a>(rule: &'a MapRule, value: Val<'a>, ev: &'a Event) -> Translated<'a> {
    let out = match &rule.table {
        None => value,
        Some(arms) => {
            let hit = arms.iter().find(|a| match &a.patterns {
                Some(ps) => ps.iter().any(|p| equal(&Val::of(p), &value)),
                None => true,
            });
            match hit {
                Some(a) => Val::of(&a.value),
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
