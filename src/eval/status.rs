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
    let zendesk = p
        .connections
        .iter()
        .any(|c| c.name == table.connection && c.kind == Kind::Zendesk);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{check, lower};
    use crate::project::load;
    use std::path::PathBuf;

    fn fintech() -> Program {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
        let p = load(&[dir]).unwrap().remove(0);
        let c = check(&p.sources, None);
        lower(&c, &p.sources).expect("the fintech example compiles")
    }

    fn event(ticket: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z","ticket":{ticket}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_transition_whose_amount_cannot_be_compared_is_refused_saying_why() {
        let mut s = crate::syntax::SourceMap::new();
        s.add(
            "t.l3map",
            r#"
connection desk: zendesk {
  subdomain "acme"
  token     env("ZENDESK_OAUTH_TOKEN")
  scopes    read, tickets:write
}
statuses desk {
  new     new     "New"
  open    open    "Open"
  solved  solved  "Solved"
  new -> open
  open -> solved  when turn.refund_amount <= $50
  solved -> open  when comment.author == end_user
}
"#
            .to_string(),
        );
        let c = check(&s, None);
        assert!(!c.has_errors());
        let p = lower(&c, &s).unwrap();
        let ev = Event::from_json(
            r#"{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
                "ticket":{"id":1,"status":"open"},
                "turn":{"intent":"refund","refund_amount":{"amount":"40","currency":"EUR"}}}"#,
        )
        .unwrap();
        match decide(&p, &p.status_tables[0], "open", "solved", &ev) {
            Transition::Refused { reason, rule } => {
                assert!(reason.contains("cannot tell whether it holds"), "{reason}");
                assert!(
                    reason.contains("40.00 EUR") && reason.contains("50.00 USD"),
                    "{reason}"
                );
                assert_eq!(rule.map(|l| l.line), Some(12));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn allowed_refused_and_why() {
        let p = fintech();
        let t = p
            .status_tables
            .iter()
            .find(|t| t.connection == "desk")
            .unwrap();
        let plain = event(r#"{"id":1,"status":"open"}"#);
        assert!(matches!(
            decide(&p, t, "new", "open", &plain),
            Transition::Allowed { .. }
        ));
        // Conditional: the risk decision field must say `cleared`.
        let cleared = event(r#"{"id":1,"custom_fields":{"360001237":"cleared"}}"#);
        assert!(matches!(
            decide(&p, t, "pending_risk_review", "in_progress", &cleared),
            Transition::Allowed { .. }
        ));
        match decide(&p, t, "pending_risk_review", "in_progress", &plain) {
            Transition::Refused { reason, rule } => {
                assert!(
                    reason.contains("only when `ticket.risk_decision == cleared`, and"),
                    "{reason}"
                );
                assert!(rule.is_some());
            }
            other => panic!("{other:?}"),
        }
        let cases = [
            ("open", "closed", "no transition `open -> closed`"),
            ("closed", "open", "terminal"),
            ("open", "new", "category new"),
            ("open", "open", "already"),
            ("open", "vanished", "not a status"),
        ];
        for (from, to, why) in cases {
            match decide(&p, t, from, to, &plain) {
                Transition::Refused { reason, .. } => {
                    assert!(reason.contains(why), "{from}->{to}: {reason}")
                }
                other => panic!("{from}->{to}: {other:?}"),
            }
        }
    }
}
