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
        if let Some(reason) = zendesk.then(|| not_on_form(table, target, ev)).flatten() {
            return refuse(reason, Some(t.loc));
        }
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

/// Why the ticket's form refuses `target`, if it does: the form (from the
/// event's `ticket_form_id`) is in the lockfile's forms the IR carries and
/// does not offer the custom status `target` is on the instance. Nothing
/// known (no lockfile forms, no form on the ticket, a form or status the
/// lockfile does not know): no refusal.
fn not_on_form(table: &StatusTable, target: &crate::ir::Status, ev: &Event) -> Option<String> {
    let form_id = ev.ticket.as_ref()?.ticket_form_id?;
    let form = table.forms.iter().find(|f| f.id == form_id)?;
    let id = target.instance_status_id?;
    if form.custom_status_ids.contains(&id) {
        return None;
    }
    let label = target.label.as_deref().unwrap_or(&target.name);
    Some(format!(
        "custom status `{}` (\"{label}\", #{id}) is not offered on ticket form \"{}\" (#{}); offer it on that form in Zendesk and run `l3map schema pull`, or move the ticket to a form that offers it",
        target.name, form.name, form.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Form;

    #[test]
    fn a_form_that_does_not_offer_the_target_refuses_with_the_reason() {
        let mut p = crate::compile::program_of(
            r#"
connection desk: zendesk {
  subdomain "acme"
  token     env("ZD_TOKEN")
  scopes    tickets:read, tickets:write
}
statuses desk {
  new       new     "New"
  open      open    "Open"
  vendor    pending "Waiting on vendor"  #7001
  solved    solved  "Solved"
  new -> open
  open -> vendor, solved
  vendor -> open
  solved -> open
}
"#,
        );
        let t = &mut p.status_tables[0];
        t.statuses[2].instance_status_id = Some(7001);
        t.forms = vec![
            Form {
                id: 1,
                name: "Billing".into(),
                active: true,
                custom_status_ids: vec![],
            },
            Form {
                id: 2,
                name: "Vendors".into(),
                active: true,
                custom_status_ids: vec![7001],
            },
        ];
        let table = p.status_tables[0].clone();
        let on = |form: Option<u64>| {
            let mut ev = Event::from_json(
                r#"{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z","ticket":{"id":1,"status":"open"}}"#,
            )
            .unwrap();
            ev.ticket.as_mut().unwrap().ticket_form_id = form;
            decide(&p, &table, "open", "vendor", &ev)
        };
        match on(Some(1)) {
            Transition::Refused { reason, .. } => assert!(
                reason.contains("not offered on ticket form \"Billing\" (#1)")
                    && reason.contains("#7001"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(on(Some(2)), Transition::Allowed { .. }));
        // Nothing known about the form: the table decides alone.
        assert!(matches!(on(None), Transition::Allowed { .. }));
        assert!(matches!(on(Some(3)), Transition::Allowed { .. }));
    }
}
