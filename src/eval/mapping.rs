//! Field mappings: a source value present in the event, translated and
//! written to the target field.

use super::event::{Event, EventKind};
use super::expr::{custom_field, equal, event_field, salesforce_field, Scope, Val};
use crate::ir::{FieldRef, MapRule, Type, Value};

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

/// What the event says changed, by side. A Salesforce record change
/// lists its changed fields and says nothing of the ticket: the ticket it
/// carries is context, so rules from a Zendesk field do not run on it (they
/// would write the ticket's old value back over a person's Salesforce
/// edit). A ticket update is about the ticket: the linked records it
/// carries are context, so rules from a Salesforce field do not run on it
/// (they would undo a person's Zendesk edit). A new ticket, an agent turn,
/// or a record change without a list take everything present. Many mapped
/// fields meet many changed ones, so a long list is hashed once per event.
pub struct Changes<'e> {
    zendesk: bool,
    salesforce: Listed<'e>,
}

enum Listed<'e> {
    None,
    Everything,
    Few(&'e [String]),
    Many(rustc_hash::FxHashSet<&'e str>),
}

impl<'e> Changes<'e> {
    pub fn new(ev: &'e Event) -> Changes<'e> {
        let listed = match ev.changed.len() {
            0 => Listed::Everything,
            1..=4 => Listed::Few(&ev.changed),
            _ => Listed::Many(ev.changed.iter().map(String::as_str).collect()),
        };
        match ev.kind {
            EventKind::RecordChanged => Changes {
                zendesk: false,
                salesforce: listed,
            },
            EventKind::TicketUpdated | EventKind::CommentAdded => Changes {
                zendesk: true,
                salesforce: Listed::None,
            },
            EventKind::TicketCreated | EventKind::AgentTurn => Changes {
                zendesk: true,
                salesforce: listed,
            },
        }
    }

    /// Whether a rule reading `field` runs on this event.
    pub fn includes(&self, field: &FieldRef) -> bool {
        let FieldRef::Salesforce { path, .. } = field else {
            return self.zendesk;
        };
        match &self.salesforce {
            Listed::None => false,
            Listed::Everything => true,
            Listed::Few(list) => list.iter().any(|c| c == path),
            Listed::Many(set) => set.contains(path.as_str()),
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

/// A translated value as the target field's type, or why it does not fit
/// (a payload can carry anything; the checker only saw the declarations).
pub fn fit(v: &Val, ty: &Type) -> Result<Value, String> {
    let ok = match (ty, v) {
        (_, Val::Null) => true,
        (Type::String, Val::Str(_)) => true,
        // A number or a flag written to a text field reads as it displays.
        (Type::String, Val::Num(_) | Val::Bool(_)) => {
            return Ok(Value::Str(super::display::display(&v.to_value())))
        }
        (Type::Number, Val::Num(n)) => n.is_finite(),
        (Type::Bool, Val::Bool(_)) => true,
        (Type::Date, Val::Str(s)) => crate::model::looks_like_date(s),
        (Type::Money(None), Val::Money(..)) => true,
        (Type::Money(Some(cur)), Val::Money(_, c)) => c == cur,
        (Type::Enum(options), Val::Str(s)) => options.iter().any(|o| o == s),
        (Type::Status(_) | Type::Any | Type::List(_), _) => true,
        _ => false,
    };
    if ok {
        Ok(v.to_value())
    } else {
        Err(format!(
            "{} is not {}",
            match v {
                Val::Str(s) => format!("{s:?}"),
                other => super::display::display(&other.to_value()),
            },
            type_name(ty)
        ))
    }
}

fn type_name(ty: &Type) -> String {
    match ty {
        Type::String => "text".into(),
        Type::Number => "a number".into(),
        Type::Bool => "true or false".into(),
        Type::Date => "a date such as 2027-01-31".into(),
        Type::Money(Some(c)) => format!("an amount in {c}"),
        Type::Money(None) => "an amount".into(),
        Type::Enum(o) => format!("one of {}", o.join(", ")),
        Type::Status(_) => "a status".into(),
        Type::List(_) => "a list".into(),
        Type::Any => "a value".into(),
    }
}
