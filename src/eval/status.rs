//! Status transitions: the table is a list of permissions, and a requested
//! transition is allowed only along one of them.

use super::event::Event;
use super::expr::{truth, Scope, Truth};
use crate::ir::{Loc, Program, StatusTable};
use crate::model::{Category, Kind};

/// The answer to "may this ticket go from `from` to `to`?".
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Allowed by the transition declared at `rule`.
    Allowed { rule: Loc },
    /// Refused; `reason` says why in words an agent can relay.
    Refused { reason: String, rule: Option<Loc> },
}

/// Decides a requested status change against the table of `table.connection`.
pub fn decide(p: &Program, table: &StatusTable, from: &str, to: &str, ev: &Event) -> Transition {
    let refuse = |reason: String, rule: Option<Loc>| Transition::Refused { reason, rule };
    let zendesk = p.kind_of(&table.connection) == Some(Kind::Zendesk);
    let record = if zendesk { "ticket" } else { "Case" };
    let Some(target) = table.statuses.iter().find(|s| s.name == to) else {
        // A typo is the likeliest reason: say which status was meant.
        let hint = crate::model::did_you_mean(to, table.statuses.iter().map(|s| s.name.as_str()))
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        return refuse(
            format!("`{to}` is not a status of `{}`{hint}", table.connection),
            None,
        );
    };
    let Some(source) = table.statuses.iter().find(|s| s.name == from) else {
        return refuse(
            format!(
                "the {record}'s status `{from}` is not declared in the table of `{}`",
                table.connection
            ),
            None,
        );
    };
    if from == to {
        return refuse(format!("the {record} is already `{to}`"), None);
    }
    if source.terminal {
        return refuse(
            format!("`{from}` is terminal: nothing leaves it"),
            Some(source.loc),
        );
    }
    if target.category == Category::New {
        let reason = if zendesk {
            format!("Zendesk never lets a ticket return to `{to}`, a status of category new")
        } else {
            format!("`{to}` is the table's status of category new: no record returns to it")
        };
        return refuse(reason, Some(target.loc));
    }
    let candidates: Vec<_> = table
        .transitions
        .iter()
        .filter(|t| t.from.iter().any(|f| f == from) && t.to.iter().any(|t| t == to))
        .collect();
    let mut undecided = None;
    if let Some(t) = candidates.iter().find(|t| {
        t.when
            .as_ref()
            .is_none_or(|w| match truth(w, ev, Scope::default()) {
                Truth::Yes => true,
                Truth::No => false,
                Truth::Unknown(why) => {
                    undecided.get_or_insert((t.condition.clone(), why));
                    false
                }
            })
    }) {
        return Transition::Allowed { rule: t.loc };
    }
    // A permission whose condition cannot be decided is refused, saying so.
    if let Some((condition, why)) = undecided {
        return refuse(
            format!(
                "`{from} -> {to}` is allowed only when `{}`, and l3map cannot tell whether it holds: {}",
                condition.as_deref().unwrap_or("its condition"),
                why.reason
            ),
            Some(why.loc),
        );
    }
    match candidates.first() {
        Some(t) => refuse(
            // The place is in `rule`: a reason without file names reads the
            // same in every checkout, so `l3map diff` compares like with like.
            format!(
                "`{from} -> {to}` is allowed only when `{}`, and that does not hold",
                t.condition.as_deref().unwrap_or("its condition"),
            ),
            Some(t.loc),
        ),
        None => refuse(
            format!("the table has no transition `{from} -> {to}`"),
            None,
        ),
    }
}
