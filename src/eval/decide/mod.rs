//! From an event to a decision: the actions to take, each with the rule
//! that produced it and an idempotency key, and the requests refused.
//!
//! A decision borrows from the program and the event it was made from:
//! deciding runs on every event, and copying names and field references
//! into each action cost more than deciding.

use super::event::Event;
use super::expr::{equal, eval, resolve, truth, Incomparable, Scope, Truth, Val};
use super::mapping::{fit, read, translate, Changes, Translated};
use super::status::{decide as decide_status, Transition};
use super::template::render;
use crate::check::Kind;
use crate::ir::{
    CommentBody, EscAction, ExprKind, FieldRef, Loc, Program, StatusTable, Type, Value,
};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;

/// The record an action writes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "system", rename_all = "snake_case")]
pub enum Record<'a> {
    Ticket { id: u64 },
    Salesforce { object: &'a str, id: &'a str },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionKind<'a> {
    SetStatus {
        connection: &'a str,
        from: &'a str,
        to: &'a str,
        /// What the API takes: Zendesk's status category (`open`, `hold`,
        /// ...), or the Salesforce picklist value (the status's label).
        value: &'a str,
        /// Zendesk: the custom status, when the table declares its `#id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        custom_status_id: Option<u64>,
    },
    SetField {
        field: &'a FieldRef,
        value: Value,
    },
    /// A private Zendesk comment, or an internal Salesforce CaseComment.
    Comment {
        connection: &'a str,
        kind: Kind,
        body: String,
    },
    AssignGroup {
        connection: &'a str,
        group: &'a str,
    },
    /// A product id from a SKU table, written to a field.
    NormalizeSku {
        table: &'a str,
        input: &'a str,
        sku: String,
        field: &'a FieldRef,
    },
}

/// What produced an action; reads (and serialises) as `transition`,
/// `map crm -> desk`, `sku products`, `escalation refund_over_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule<'a> {
    Transition,
    Map { from: &'a str, to: &'a str },
    Sku(&'a str),
    Escalation(&'a str),
}

impl fmt::Display for Rule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Transition => f.write_str("transition"),
            Rule::Map { from, to } => write!(f, "map {from} -> {to}"),
            Rule::Sku(t) => write!(f, "sku {t}"),
            Rule::Escalation(e) => write!(f, "escalation {e}"),
        }
    }
}

impl Serialize for Rule<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl PartialEq<&str> for Rule<'_> {
    fn eq(&self, other: &&str) -> bool {
        let o = *other;
        match self {
            Rule::Transition => o == "transition",
            Rule::Map { from, to } => {
                o.strip_prefix("map ").and_then(|r| r.split_once(" -> ")) == Some((from, to))
            }
            Rule::Sku(t) => o.strip_prefix("sku ") == Some(t),
            Rule::Escalation(e) => o.strip_prefix("escalation ") == Some(e),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action<'a> {
    #[serde(flatten)]
    pub kind: ActionKind<'a>,
    pub record: Record<'a>,
    pub rule: Rule<'a>,
    pub loc: Loc,
    /// The outbox applies a key once, so a redelivered event never writes
    /// twice, and a hand-off is applied once per record (see [`Keys`]).
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub what: String,
    pub reason: String,
    pub loc: Option<Loc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision<'a> {
    pub event: &'a str,
    pub revision: &'a str,
    pub actions: Vec<Action<'a>>,
    pub refused: Vec<Refusal>,
}

/// Idempotency keys for one event. The hash is fixed-length; the rest is
/// injective, so two actions never share a key.
///
/// A field write or a status change (a `map`, `sku` or transition rule):
/// a hash of (revision, event id), then where its rule is, the how-manyth
/// action of that rule it is, and its record (`9f2c...-1.529.0-t4211`).
/// A redelivered event gets the same keys, and a later event that writes
/// the same field again gets new ones (a tier that goes Ent, Prem, Ent
/// must end at Ent).
///
/// A hand-off (every action of an escalation): the escalation's
/// [`handoff_id`](crate::ir::Escalation::handoff_id) — its name and
/// meaning, not the revision, the event or where it is written — then
/// the action's index in the escalation and its record
/// (`h3b0c...-e2-t4211`). Whichever event triggers it (a later ticket
/// update, the same change seen by both the webhook and the poller, an
/// update after an unrelated mapping edit or `l3map fmt`), a record is
/// handed off once per escalation, and a person's later reassignment is
/// never undone by it. Changing the escalation's meaning (its condition,
/// reason, actions or the templates it renders) or its name re-arms it.
/// Most events decide nothing, so the hashes are made on first use.
struct Keys<'a> {
    revision: &'a str,
    event: &'a str,
    prefix: std::cell::OnceCell<String>,
}

/// Which of the two key shapes an action gets (see [`Keys`]).
#[derive(Clone, Copy)]
enum Slot<'a> {
    /// A field write or status change: its rule's place, and the
    /// how-manyth action of that rule it is.
    Rule(Loc),
    /// A hand-off: the escalation's id and the action's index in it.
    Handoff(&'a str, usize),
}

impl<'a> Keys<'a> {
    fn new(p: &'a Program, ev: &'a Event) -> Keys<'a> {
        Keys {
            revision: &p.revision,
            event: &ev.id,
            prefix: std::cell::OnceCell::new(),
        }
    }

    fn prefix(&self) -> &str {
        self.prefix.get_or_init(|| {
            let mut h = Sha256::new();
            h.update((self.revision.len() as u32).to_le_bytes());
            h.update(self.revision.as_bytes());
            h.update(self.event.as_bytes());
            let mut prefix = String::with_capacity(20);
            hex(&h.finalize()[..10], &mut prefix);
            prefix
        })
    }

    fn key(&self, slot: Slot<'_>, record: &Record<'_>, n: usize) -> String {
        let mut k = String::with_capacity(72);
        match slot {
            Slot::Rule(loc) => {
                k.push_str(self.prefix());
                k.push('-');
                push_num(&mut k, loc.file as u64);
                k.push('.');
                push_num(&mut k, loc.start as u64);
                k.push('.');
                push_num(&mut k, n as u64);
            }
            Slot::Handoff(id, index) => {
                k.push_str(id);
                k.push_str("-e");
                push_num(&mut k, index as u64);
            }
        }
        match record {
            Record::Ticket { id } => {
                k.push_str("-t");
                push_num(&mut k, *id);
            }
            Record::Salesforce { object, id } => {
                k.push_str("-s");
                k.push_str(object);
                k.push('/');
                k.push_str(id);
            }
        }
        k
    }
}

fn hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

fn push_num(out: &mut String, n: u64) {
    out.push_str(super::expr::decimal(n, &mut [0; 20]));
}

fn record_of<'a>(ev: &'a Event, object: &'a str) -> Option<Record<'a>> {
    ev.records
        .get(object)
        .and_then(|r| r.get("Id"))
        .and_then(|v| v.as_str())
        .map(|id| Record::Salesforce { object, id })
}

fn field_name(f: &FieldRef) -> &str {
    match f {
        FieldRef::Zendesk { field, .. } => field,
        FieldRef::Salesforce { path, .. } => path,
    }
}

/// The record a field belongs to, as far as the event names it.
fn record_for<'a>(f: &'a FieldRef, ev: &'a Event) -> Option<Record<'a>> {
    match f {
        FieldRef::Zendesk { .. } => ev.ticket.as_ref().map(|t| Record::Ticket { id: t.id }),
        FieldRef::Salesforce { object, .. } => record_of(ev, object),
    }
}

/// Why a write has nowhere to go, and how to give it somewhere.
fn no_record(target: &FieldRef) -> String {
    match target {
        FieldRef::Zendesk { .. } => "the event names no Zendesk ticket to write to; a Salesforce change reaches its ticket through the field that links them (docs/EVENTS.md, \"Linking a Salesforce record to its Zendesk ticket\")".into(),
        FieldRef::Salesforce { object, .. } => format!(
            "the event carries no {object} record (with its `Id`) to write to"
        ),
    }
}

fn kind_of(p: &Program, table: &StatusTable) -> Option<Kind> {
    p.connections
        .iter()
        .find(|c| c.name == table.connection)
        .map(|c| c.kind)
}

/// The record a status table governs and its current status: the ticket
/// for Zendesk, the Case for Salesforce (whose `Status` holds the picklist
/// value: the status's label, or its name).
pub(crate) fn current_status<'a>(
    p: &'a Program,
    table: &'a StatusTable,
    ev: &'a Event,
) -> Option<(Record<'a>, &'a str)> {
    match kind_of(p, table)? {
        Kind::Zendesk => {
            let t = ev.ticket.as_ref()?;
            Some((Record::Ticket { id: t.id }, t.status.as_deref()?))
        }
        Kind::Salesforce => {
            let value = ev.records.get("Case")?.get("Status")?.as_str()?;
            let name = table
                .statuses
                .iter()
                .find(|s| s.name == value || s.label.as_deref() == Some(value))
                .map_or(value, |s| s.name.as_str());
            Some((record_of(ev, "Case")?, name))
        }
    }
}

/// The table an agent's status request is decided against: the Zendesk
/// table when the event shows the ticket's status, else a Salesforce table
/// when it shows the Case's.
fn requested_table<'a>(
    p: &'a Program,
    ev: &'a Event,
) -> Option<(&'a StatusTable, Record<'a>, &'a str)> {
    let mut tables: Vec<&StatusTable> = p.status_tables.iter().collect();
    tables.sort_by_key(|t| kind_of(p, t) != Some(Kind::Zendesk));
    tables
        .into_iter()
        .find_map(|t| current_status(p, t, ev).map(|(r, s)| (t, r, s)))
}

/// The status `to` of `table` as an action: what the API takes for it.
fn set_status<'a>(
    p: &'a Program,
    table: &'a StatusTable,
    from: &'a str,
    to: &'a str,
) -> ActionKind<'a> {
    let status = table.statuses.iter().find(|s| s.name == to);
    let zendesk = kind_of(p, table) == Some(Kind::Zendesk);
    let value = match status {
        Some(s) if zendesk => s.category.as_str(),
        Some(s) => s.label.as_deref().unwrap_or(&s.name),
        None => to,
    };
    ActionKind::SetStatus {
        connection: &table.connection,
        from,
        to,
        value,
        custom_status_id: status.and_then(|s| s.custom_status_id).filter(|_| zendesk),
    }
}

/// Decides what one event means under one compiled revision.
pub fn decide<'a>(p: &'a Program, ev: &'a Event) -> Decision<'a> {
    let mut d = Decision {
        event: &ev.id,
        revision: &p.revision,
        actions: vec![],
        refused: vec![],
    };
    let keys = Keys::new(p, ev);
    let changes = Changes::new(ev);
    let push = |d: &mut Decision<'a>,
                kind: ActionKind<'a>,
                record: Record<'a>,
                rule,
                loc: Loc,
                handoff: Option<(&str, usize)>| {
        let slot = match handoff {
            Some((id, index)) => Slot::Handoff(id, index),
            None => Slot::Rule(loc),
        };
        let n = d.actions.iter().filter(|a| a.loc == loc).count();
        let idempotency_key = keys.key(slot, &record, n);
        d.actions.push(Action {
            kind,
            record,
            rule,
            loc,
            idempotency_key,
        });
    };
    // The escalation that hands off, if any: the first whose condition
    // holds. One whose condition cannot be decided (amounts in two
    // currencies, see `truth`) neither hands off nor is passed over in
    // silence: it is refused below, where the agent sees it.
    let mut undecided: Vec<(&crate::ir::Escalation, Incomparable)> = vec![];
    let escalation = p
        .escalations
        .iter()
        .find(|e| match truth(&e.when, ev, Scope::default()) {
            Truth::Yes => true,
            Truth::No => false,
            Truth::Unknown(why) => {
                undecided.push((e, why));
                false
            }
        });
    for (e, why) in &undecided {
        d.refused.push(Refusal {
            what: format!("escalation {}", e.name),
            reason: format!(
                "cannot decide whether to hand off: {}; a person must decide",
                why.reason
            ),
            loc: Some(why.loc),
        });
    }
    // An undecided escalation that would set a table's status keeps the
    // agent from moving that status meanwhile, as a hand-off would.
    let may_hand_off = |table: &StatusTable| {
        undecided.iter().map(|(e, _)| *e).find(|e| {
            e.actions.iter().any(|a| {
                matches!(a, EscAction::SetStatus { connection, .. } if *connection == table.connection)
            })
        })
    };
    // The agent's own request for a status change.
    if let Some(to) = ev.turn.as_ref().and_then(|t| t.requested_status.as_deref()) {
        // A hand-off that moves the same record decides its status; two
        // moves from one status in one decision would race.
        let handed_off = |table: &StatusTable| {
            escalation.filter(|e| {
                e.actions.iter().any(|a| {
                    matches!(a, EscAction::SetStatus { connection, .. } if *connection == table.connection)
                })
            })
        };
        match requested_table(p, ev) {
            Some((table, _, from)) if handed_off(table).is_some() => d.refused.push(Refusal {
                what: format!("status {from} -> {to}"),
                reason: format!(
                    "escalation `{}` hands the conversation off and sets the status itself",
                    handed_off(table).map_or("", |e| e.name.as_str())
                ),
                loc: handed_off(table).map(|e| e.loc),
            }),
            Some((table, _, from)) if may_hand_off(table).is_some() => {
                let e = may_hand_off(table).expect("checked just above");
                d.refused.push(Refusal {
                    what: format!("status {from} -> {to}"),
                    reason: format!(
                        "escalation `{}` may hand the conversation off and set the status itself, and cannot be decided",
                        e.name
                    ),
                    loc: Some(e.loc),
                })
            }
            Some((table, record, from)) => match decide_status(p, table, from, to, ev) {
                Transition::Allowed { rule } => push(
                    &mut d,
                    set_status(p, table, from, to),
                    record,
                    Rule::Transition,
                    rule,
                    None,
                ),
                Transition::Refused { reason, rule } => d.refused.push(Refusal {
                    what: format!("status {from} -> {to}"),
                    reason,
                    loc: rule,
                }),
            },
            None => d.refused.push(Refusal {
                what: format!("status -> {to}"),
                reason: if p.status_tables.is_empty() {
                    "the project declares no status table".into()
                } else {
                    "the event carries no current status (the ticket's `status`, or a Case's `Status`) for any status table".into()
                },
                loc: None,
            }),
        }
    }
    // Field mappings whose source the event carries (and, for a record
    // change, lists as changed).
    for m in &p.mappings {
        let rule = Rule::Map {
            from: &m.from,
            to: &m.to,
        };
        for r in &m.rules {
            if !changes.includes(&r.source) {
                continue;
            }
            let value = read(&r.source, &r.source_type, ev);
            if value.is_null() {
                continue;
            }
            match (translate(r, value, ev), record_for(&r.target, ev)) {
                (Translated::Unchanged, _) => {}
                (Translated::NoArm(v), _) => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&r.source)),
                    reason: format!(
                        "no translation for {} and no default arm `_`",
                        super::template::display(&v.to_value())
                    ),
                    loc: Some(r.loc),
                }),
                (Translated::Write(v), Some(record)) => match fit(&v, &r.target_type) {
                    Ok(value) => push(
                        &mut d,
                        ActionKind::SetField {
                            field: &r.target,
                            value,
                        },
                        record,
                        rule,
                        r.loc,
                        None,
                    ),
                    Err(why) => d.refused.push(Refusal {
                        what: format!(
                            "{rule}: {} -> {}",
                            field_name(&r.source),
                            field_name(&r.target)
                        ),
                        reason: format!("{why}, so `{}` is not written", field_name(&r.target)),
                        loc: Some(r.loc),
                    }),
                },
                (Translated::Write(_), None) => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&r.target)),
                    reason: no_record(&r.target),
                    loc: Some(r.loc),
                }),
            }
        }
    }
    // What the customer called the product, as the catalogue's id.
    for t in &p.sku_tables {
        let rule = Rule::Sku(&t.name);
        for a in &t.applies {
            let Val::Str(input) = resolve(&a.source, ev, Scope::default()) else {
                continue;
            };
            if input.trim().is_empty() {
                continue;
            }
            let Some(m) = t.matcher().lookup(input) else {
                d.refused.push(Refusal {
                    what: format!("{rule}: \"{input}\""),
                    reason: format!(
                        "no product matches \"{input}\"; ask the customer which product they mean"
                    ),
                    loc: Some(a.loc),
                });
                continue;
            };
            if equal(&read(&a.target, &Type::String, ev), &Val::Str(&m.product)) {
                continue;
            }
            match record_for(&a.target, ev) {
                Some(record) => push(
                    &mut d,
                    ActionKind::NormalizeSku {
                        table: &t.name,
                        input,
                        sku: m.product,
                        field: &a.target,
                    },
                    record,
                    rule,
                    a.loc,
                    None,
                ),
                None => d.refused.push(Refusal {
                    what: format!("{rule}: {}", field_name(&a.target)),
                    reason: no_record(&a.target),
                    loc: Some(a.loc),
                }),
            }
        }
    }
    if let Some(e) = escalation {
        escalate(p, ev, e, &mut d, &push);
    }
    d
}

type Push<'p, 'a> = dyn Fn(&mut Decision<'a>, ActionKind<'a>, Record<'a>, Rule<'a>, Loc, Option<(&str, usize)>)
    + 'p;

/// The hand-off: each of the escalation's statements, in order (so the
/// comment a person reads is written before the ticket changes hands).
fn escalate<'a>(
    p: &'a Program,
    ev: &'a Event,
    e: &'a crate::ir::Escalation,
    d: &mut Decision<'a>,
    push: &Push<'_, 'a>,
) {
    let scope = Scope {
        escalation: Some((&e.name, &e.reason)),
    };
    let rule = Rule::Escalation(&e.name);
    let ticket = ev.ticket.as_ref();
    let id = e.handoff_id(&p.templates);
    for (index, a) in e.actions.iter().enumerate() {
        let handoff = Some((id, index));
        match a {
            EscAction::Comment {
                connection,
                kind,
                body,
                loc,
            } => {
                let text = match body {
                    CommentBody::Template(name) => p
                        .templates
                        .iter()
                        .find(|t| &t.name == name)
                        .map(|t| render(&t.parts, ev, scope))
                        .unwrap_or_default(),
                    CommentBody::Inline(parts) => render(parts, ev, scope),
                };
                let record = match kind {
                    Kind::Zendesk => ticket.map(|t| Record::Ticket { id: t.id }),
                    Kind::Salesforce => record_of(ev, "Case"),
                };
                match record {
                    Some(record) => push(
                        d,
                        ActionKind::Comment {
                            connection,
                            kind: *kind,
                            body: text,
                        },
                        record,
                        rule,
                        *loc,
                        handoff,
                    ),
                    None => d.refused.push(Refusal {
                        what: format!("{rule}: comment on {connection}"),
                        reason: "the event names no record to comment on".into(),
                        loc: Some(*loc),
                    }),
                }
            }
            EscAction::SetField { field, value, loc } => {
                let v = eval(value, ev, scope);
                // A value the event does not carry is not written: `set
                // desk order_id = turn.order_id` must not erase an order id
                // the ticket already has. Only a literal `none` clears.
                let literal_none = matches!(&value.kind, ExprKind::Lit(Value::Null));
                if v.is_null() && !literal_none {
                    continue;
                }
                match record_for(field, ev) {
                    Some(record) => push(
                        d,
                        ActionKind::SetField {
                            field,
                            value: v.to_value(),
                        },
                        record,
                        rule,
                        *loc,
                        handoff,
                    ),
                    None => d.refused.push(Refusal {
                        what: format!("{rule}: {}", field_name(field)),
                        reason: no_record(field),
                        loc: Some(*loc),
                    }),
                }
            }
            EscAction::AssignGroup {
                connection,
                group,
                loc,
            } => {
                if let Some(t) = ticket {
                    push(
                        d,
                        ActionKind::AssignGroup { connection, group },
                        Record::Ticket { id: t.id },
                        rule,
                        *loc,
                        handoff,
                    );
                }
            }
            EscAction::SetStatus {
                connection,
                status,
                loc,
            } => {
                let table = p.status_tables.iter().find(|t| &t.connection == connection);
                match table.and_then(|t| current_status(p, t, ev).map(|c| (t, c))) {
                    // Already there: the hand-off needs no move.
                    Some((_, (_, from))) if from == status => {}
                    Some((table, (record, from))) => {
                        match decide_status(p, table, from, status, ev) {
                            Transition::Allowed { .. } => push(
                                d,
                                set_status(p, table, from, status),
                                record,
                                rule,
                                *loc,
                                handoff,
                            ),
                            Transition::Refused { reason, .. } => d.refused.push(Refusal {
                                what: format!("{rule}: status {from} -> {status}"),
                                reason,
                                loc: Some(*loc),
                            }),
                        }
                    }
                    None => d.refused.push(Refusal {
                        what: format!("{rule}: status -> {status}"),
                        reason: format!("the event carries no current status for `{connection}`"),
                        loc: Some(*loc),
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;
    use crate::ir::lower;
    use crate::project::load;
    use std::path::PathBuf;

    fn fintech() -> Program {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
        let p = load(&[dir]).unwrap().remove(0);
        lower(&check(&p.sources), &p.sources).expect("the fintech example compiles")
    }

    const REFUND: &str = r#"{"id":"evt-1","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
        "ticket":{"id":4211,"status":"in_progress","custom_fields":{"360001234":"premium"}},
        "turn":{"intent":"refund","summary":"Wants a refund for order 1182",
                "attempts":["looked up order 1182","offered store credit"],"sentiment":"negative",
                "refund_amount":{"amount":"250.00","currency":"USD"}},
        "records":{"Case":{"Id":"5003k00001AbCdE"}}}"#;

    #[test]
    fn refund_above_threshold_hands_off_with_full_context() {
        let p = fintech();
        let ev = Event::from_json(REFUND).unwrap();
        let d = decide(&p, &ev);
        assert!(d.refused.is_empty(), "{:#?}", d.refused);
        let kinds: Vec<&ActionKind> = d.actions.iter().map(|a| &a.kind).collect();
        let zendesk_comment = kinds.iter().find_map(|k| match k {
            ActionKind::Comment {
                kind: Kind::Zendesk,
                body,
                ..
            } => Some(body),
            _ => None,
        });
        let body = zendesk_comment.expect("a private Zendesk comment");
        for needed in [
            "pre-authorised threshold",
            "Wants a refund for order 1182",
            "looked up order 1182; offered store credit",
            "NEGATIVE",
        ] {
            assert!(body.contains(needed), "{needed:?} missing from:\n{body}");
        }
        assert!(kinds.iter().any(|k| matches!(
            k,
            ActionKind::Comment {
                kind: Kind::Salesforce,
                ..
            }
        )));
        assert!(kinds.iter().any(
            |k| matches!(k, ActionKind::AssignGroup { group, .. } if *group == "Payments Tier 2")
        ));
        assert!(kinds
            .iter()
            .any(|k| matches!(k, ActionKind::SetStatus { to, .. } if *to == "escalated_tier2")));
        assert!(kinds.iter().any(|k| matches!(k,
            ActionKind::SetField { field: FieldRef::Salesforce { path, .. }, value: Value::Str(v) }
                if path == "Case.AI_Handoff_Reason__c" && v == "refund_threshold")));
        assert!(d
            .actions
            .iter()
            .all(|a| a.rule == "escalation refund_over_threshold"));
    }

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        let p = fintech();
        let ev = Event::from_json(REFUND).unwrap();
        let a = decide(&p, &ev);
        let b = decide(&p, &ev);
        assert_eq!(a, b, "a redelivered event decides the same, keys included");
        let keys: std::collections::BTreeSet<_> =
            a.actions.iter().map(|x| &x.idempotency_key).collect();
        assert_eq!(keys.len(), a.actions.len(), "one key per action");
        // A hand-off is keyed by its escalation, not by the revision or
        // the event: another revision, or another event of the ticket,
        // hands it off no second time.
        let mut other_revision = p.clone();
        other_revision.revision = "0000000000000000".into();
        let c = decide(&other_revision, &ev);
        let later = Event::from_json(&REFUND.replace("evt-1", "evt-9")).unwrap();
        let l = decide(&p, &later);
        for other in [&c, &l] {
            let theirs: Vec<_> = other.actions.iter().map(|x| &x.idempotency_key).collect();
            let ours: Vec<_> = a.actions.iter().map(|x| &x.idempotency_key).collect();
            assert_eq!(ours, theirs);
        }
        assert!(a.actions.iter().all(|x| x.idempotency_key.starts_with('h')));
    }

    #[test]
    fn field_writes_are_keyed_by_revision_and_event() {
        let p = fintech();
        let json = r#"{"id":"evt-4","kind":"record_changed","at":"2026-11-11T10:00:00Z",
                "ticket":{"id":77,"status":"open"},
                "records":{"Account":{"Id":"001A","SLA_Tier__c":"Legacy"}},
                "changed":["Account.SLA_Tier__c"]}"#;
        let ev = Event::from_json(json).unwrap();
        let key = |p: &Program, ev: &Event| decide(p, ev).actions[0].idempotency_key.clone();
        let first = key(&p, &ev);
        assert_eq!(first, key(&p, &ev), "a redelivery gets the same key");
        let mut other_revision = p.clone();
        other_revision.revision = "0000000000000000".into();
        assert_ne!(first, key(&other_revision, &ev));
        let later = Event::from_json(&json.replace("evt-4", "evt-5")).unwrap();
        assert_ne!(
            first,
            key(&p, &later),
            "a later write of the field is a new write"
        );
    }

    #[test]
    fn a_forbidden_requested_transition_is_refused_with_its_reason() {
        let p = fintech();
        let ev = Event::from_json(
            r#"{"id":"evt-2","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
                "ticket":{"id":9,"status":"open"},
                "turn":{"intent":"question","requested_status":"closed"}}"#,
        )
        .unwrap();
        let d = decide(&p, &ev);
        assert!(d.actions.is_empty(), "{:#?}", d.actions);
        assert_eq!(d.refused.len(), 1);
        assert!(
            d.refused[0]
                .reason
                .contains("no transition `open -> closed`"),
            "{}",
            d.refused[0].reason
        );
    }

    #[test]
    fn salesforce_changes_are_translated_onto_the_ticket() {
        let p = fintech();
        let ev = Event::from_json(
            r#"{"id":"evt-4","kind":"record_changed","at":"2026-11-11T10:00:00Z",
                "ticket":{"id":77,"status":"open","custom_fields":{"360001235":null}},
                "records":{"Account":{"Id":"001A","SLA_Tier__c":"Legacy","Renewal_Date__c":"2027-01-31"}},
                "changed":["Account.SLA_Tier__c"]}"#,
        )
        .unwrap();
        let d = decide(&p, &ev);
        assert!(d.refused.is_empty(), "{:#?}", d.refused);
        assert_eq!(
            d.actions.len(),
            1,
            "only the changed field is written: {:#?}",
            d.actions
        );
        match &d.actions[0].kind {
            ActionKind::SetField {
                field: FieldRef::Zendesk { field, id, .. },
                value,
            } => {
                assert_eq!((field.as_str(), *id), ("sla_tier", Some(360001234)));
                assert_eq!(
                    value,
                    &Value::Str("standard".into()),
                    "\"Legacy\" translates to standard"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.actions[0].record, Record::Ticket { id: 77 });
        assert_eq!(d.actions[0].rule, "map crm -> desk");
    }

    #[test]
    fn unknown_source_values_are_refused_and_equal_values_skipped() {
        let p = fintech();
        let unknown = Event::from_json(
            r#"{"id":"evt-5","kind":"record_changed","at":"2026-11-11T10:00:00Z","ticket":{"id":77},
                "records":{"Account":{"Id":"001A","SLA_Tier__c":"Platinum"}},"changed":["Account.SLA_Tier__c"]}"#,
        )
        .unwrap();
        let d = decide(&p, &unknown);
        assert!(d.actions.is_empty());
        assert!(
            d.refused[0].reason.contains("no translation for Platinum"),
            "{:#?}",
            d.refused
        );
        let same = Event::from_json(
            r#"{"id":"evt-6","kind":"record_changed","at":"2026-11-11T10:00:00Z",
                "ticket":{"id":77,"custom_fields":{"360001234":"enterprise"}},
                "records":{"Account":{"Id":"001A","SLA_Tier__c":"Ent"}},"changed":["Account.SLA_Tier__c"]}"#,
        )
        .unwrap();
        let d = decide(&p, &same);
        assert!(d.actions.is_empty() && d.refused.is_empty(), "{d:#?}");
    }

    #[test]
    fn an_undecided_hand_off_is_refused_and_later_escalations_still_run() {
        let p = fintech();
        // Yen: no threshold in the refund rule. The customer is an angry
        // enterprise customer, which the next escalation hands off.
        let ev = Event::from_json(
            r#"{"id":"evt-7","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
                "ticket":{"id":4214,"status":"open","custom_fields":{"360001234":"enterprise"}},
                "turn":{"intent":"refund","sentiment":"angry",
                        "refund_amount":{"amount":"25000","currency":"JPY"}},
                "records":{"Case":{"Id":"5003k00001AbCdE"}}}"#,
        )
        .unwrap();
        let d = decide(&p, &ev);
        assert_eq!(d.refused.len(), 1, "{:#?}", d.refused);
        assert_eq!(d.refused[0].what, "escalation refund_over_threshold");
        assert!(d.refused[0].reason.contains("25,000.00 JPY"));
        assert!(!d.actions.is_empty());
        assert!(d
            .actions
            .iter()
            .all(|a| a.rule == "escalation angry_enterprise_customer"));
    }

    #[test]
    fn nothing_fires_on_a_quiet_event() {
        let p = fintech();
        let ev = Event::from_json(
            r#"{"id":"evt-3","kind":"ticket_updated","at":"2026-11-11T10:00:00Z","ticket":{"id":1,"status":"open"}}"#,
        )
        .unwrap();
        let d = decide(&p, &ev);
        assert!(d.actions.is_empty() && d.refused.is_empty(), "{d:#?}");
    }
}
