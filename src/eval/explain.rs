//! Why a test's expectation did not hold, when a documented rule explains
//! it: the failure then says so instead of leaving the reader to guess.

use super::decide::{current_status, ActionKind, Decision};
use super::event::Event;
use super::expr::{holds, resolve, Scope};
use crate::ir::{EscAction, Escalation, Expect, Expectation, Program, Ref};

/// The rule that explains why `e` missed, if one does.
pub fn why(p: &Program, ev: &Event, e: &Expect, d: &Decision) -> Option<String> {
    if let Some(reason) = escalation_rule(p, ev, e) {
        return Some(reason);
    }
    match &e.what {
        Expectation::Status { connection, status } => transition_rule(p, ev, d, connection, status),
        _ => None,
    }
}

/// The escalation that would have done what `e` expects did not: a value
/// the event does not carry never makes a comparison true (section 12.2),
/// and only the first escalation whose condition holds hands off (section
/// 10).
fn escalation_rule(p: &Program, ev: &Event, e: &Expect) -> Option<String> {
    let would = p
        .escalations
        .iter()
        .find(|x| x.actions.iter().any(|a| does(a, &e.what)))?;
    let fired = p
        .escalations
        .iter()
        .find(|x| holds(&x.when, ev, Scope::default()));
    let place = |x: &Escalation| {
        format!(
            "`{}` ({}:{})",
            x.name,
            p.files.get(x.loc.file as usize).map_or("?", |f| f.as_str()),
            x.loc.line
        )
    };
    match fired {
        // The escalation that handed off does this: the miss is in what it
        // wrote, which `actual` shows.
        Some(f) if f.actions.iter().any(|a| does(a, &e.what)) => None,
        Some(f) if holds(&would.when, ev, Scope::default()) => Some(format!(
            "escalation {} would do this and its condition holds, but only the first escalation whose condition holds hands off, and that is {} (docs/LANGUAGE.md, section 10)",
            place(would),
            place(f)
        )),
        _ => {
            let mut refs = Vec::new();
            would.when.refs(&mut refs);
            let mut missing: Vec<String> = Vec::new();
            for r in refs {
                let name = path(r);
                if resolve(r, ev, Scope::default()).is_null() && !missing.contains(&name) {
                    missing.push(name);
                }
            }
            Some(if missing.is_empty() {
                format!(
                    "escalation {} would do this, but its condition does not hold for this event",
                    place(would)
                )
            } else {
                let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
                format!(
                    "escalation {} would do this, but its condition reads {}, which this event does not carry: a value the event does not carry never makes a comparison true (docs/LANGUAGE.md, section 12.2)",
                    place(would),
                    names.join(", ")
                )
            })
        }
    }
}

/// Whether an escalation's action is what the expectation looks for.
fn does(a: &EscAction, what: &Expectation) -> bool {
    match (a, what) {
        (
            EscAction::SetStatus {
                connection, status, ..
            },
            Expectation::Status {
                connection: c,
                status: s,
            },
        ) => connection == c && status == s,
        (EscAction::Comment { connection, .. }, Expectation::Comment { connection: c, .. }) => {
            connection == c
        }
        (
            EscAction::AssignGroup {
                connection, group, ..
            },
            Expectation::Group {
                connection: c,
                group: g,
            },
        ) => connection == c && group == g,
        (EscAction::SetField { field, .. }, Expectation::Field { field: f, .. }) => {
            field.same_field(f)
        }
        _ => false,
    }
}

/// A reference as a condition writes it.
fn path(r: &Ref) -> String {
    match r {
        Ref::Event { root, field } => format!("{root}.{field}"),
        Ref::TicketField { alias, .. } => format!("ticket.{alias}"),
        Ref::Salesforce { path, .. } => path.clone(),
    }
}

/// A status table lists permissions: `pending -> open when comment.author
/// == end_user` lets the change happen, it does not make it (LANGUAGE.md
/// section 14). A status changes only on the agent's `requested_status` or
/// an escalation's `status`.
fn transition_rule(
    p: &Program,
    ev: &Event,
    d: &Decision,
    connection: &str,
    status: &str,
) -> Option<String> {
    let moved = d.actions.iter().any(
        |a| matches!(&a.kind, ActionKind::SetStatus { connection: c, .. } if *c == connection),
    );
    let requested = ev
        .turn
        .as_ref()
        .is_some_and(|t| t.requested_status.is_some());
    if moved || requested {
        // A refusal in `actual` already says why.
        return None;
    }
    let table = p
        .status_tables
        .iter()
        .find(|t| t.connection == connection)?;
    let rule = "a status changes only when the agent's turn asks for it (`turn.requested_status`) or an escalation that fires sets it (`status`)";
    let from = current_status(p, table, ev).map(|(_, s)| s);
    let permit = from.and_then(|from| {
        table
            .transitions
            .iter()
            .find(|t| t.from.iter().any(|f| f == from) && t.to.iter().any(|x| x == status))
            .map(|t| (from, t))
    });
    Some(match permit {
        Some((from, t)) => {
            let when = t
                .condition
                .as_deref()
                .map(|c| format!(" when {c}"))
                .unwrap_or_default();
            format!(
                "transitions permit, they do not trigger: `{from} -> {status}{when}` ({}:{}) allows this change but does not make it; {rule}, and this event does neither (docs/LANGUAGE.md, section 14)",
                p.files.get(t.loc.file as usize).map_or("?", |f| f.as_str()),
                t.loc.line
            )
        }
        None => format!(
            "nothing in this event asks for a status change: {rule} (docs/LANGUAGE.md, section 14)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use crate::compile::{check, lower, lower_tests};
    use crate::eval::testing::run;
    use crate::syntax::SourceMap;

    const DESK: &str = r#"
connection desk: zendesk {
  subdomain "acme"
  token     env("ZENDESK_OAUTH_TOKEN")
  scopes    read, write, tickets:write
}
statuses desk {
  new      new      "New"
  open     open     "Open"
  pending  pending  "Waiting"
  solved   solved   "Solved"
  new -> open
  open -> pending, solved
  pending, solved -> open  when comment.author == end_user
}
escalation angry_first {
  when    turn.sentiment == angry
  reason  "Angry"
  assign  desk "Tier 1"
}
escalation refund {
  when    turn.intent == "refund" and turn.refund_amount > $200
  reason  "Refund"
  assign  desk "Payments"
}
test no_amount {
  event """{"kind": "agent_turn", "ticket": {"id": 1}, "turn": {"intent": "refund"}}"""
  expect group desk "Payments"
}
test angry_wins {
  event """{"kind": "agent_turn", "ticket": {"id": 1}, "turn": {"intent": "refund",
    "sentiment": "angry", "refund_amount": {"amount": "250.00", "currency": "USD"}}}"""
  expect group desk "Payments"
}
test reply {
  event """{"kind": "comment_added", "ticket": {"id": 1, "status": "pending"},
    "comment": {"author": "end_user"}}"""
  expect status desk open
}
test right {
  event """{"kind": "agent_turn", "ticket": {"id": 1}, "turn": {"sentiment": "angry"}}"""
  expect group desk "Tier 1"
}
"#;

    #[test]
    fn each_miss_names_its_rule() {
        let mut sources = SourceMap::new();
        sources.add("desk.l3map", DESK);
        let checked = check(&sources, None);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let program = lower(&checked, &sources).expect("compiles");
        let why = |name: &str| {
            let case = lower_tests(&checked, &sources)
                .expect("compiles")
                .into_iter()
                .find(|t| t.name == name)
                .expect("the test");
            let out = run(&program, &case);
            out.failures.first().and_then(|f| f.why.clone())
        };
        let w = why("no_amount").expect("a why");
        assert!(
            w.contains("reads `turn.refund_amount`, which this event does not carry"),
            "{w}"
        );
        let w = why("angry_wins").expect("a why");
        assert!(
            w.contains("only the first escalation") && w.contains("`angry_first`"),
            "{w}"
        );
        let w = why("reply").expect("a why");
        assert!(
            w.starts_with("transitions permit, they do not trigger: `pending -> open when"),
            "{w}"
        );
        assert_eq!(why("right"), None, "a passing test has no failure");
    }
}
