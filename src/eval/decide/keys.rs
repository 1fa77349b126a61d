//! Idempotency keys: what makes an action applied once.

use super::action::Record;
use crate::eval::event::Event;
use crate::ir::{Loc, Program};
use sha2::{Digest, Sha256};

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
pub(super) struct Keys<'a> {
    revision: &'a str,
    event: &'a str,
    prefix: std::cell::OnceCell<String>,
}

/// Which of the two key shapes an action gets (see [`Keys`]).
#[derive(Clone, Copy)]
pub(super) enum Slot<'a> {
    /// A field write or status change: its rule's place, and the
    /// how-manyth action of that rule it is.
    Rule(Loc),
    /// A hand-off: the escalation's id and the action's index in it.
    Handoff(&'a str, usize),
}

impl<'a> Keys<'a> {
    pub(super) fn new(p: &'a Program, ev: &'a Event) -> Keys<'a> {
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
            hex::encode(&h.finalize()[..10])
        })
    }

    pub(super) fn key(&self, slot: Slot<'_>, record: &Record<'_>, n: usize) -> String {
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

fn push_num(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}
