//! The last look at an agent's field write before it is sent: a write the
//! agent asked for (`turn.requested_fields`, rule `agent request`) was
//! allowed by the revision that decided it, but it may wait in the outbox
//! (an outage) across a reload that makes the field a guard of a
//! transition or a hand-off's record. It is sent only if the revision
//! live now still lets an agent write that field; otherwise it is settled
//! unsent, with the reason in the audit trail.

use crate::eval::decide::not_the_agents;
use crate::ir::Program;
use crate::runtime::engine::Engine;
use crate::runtime::ops::Op;
use crate::runtime::store::Group;

/// The rule name agent-requested writes carry (`eval::decide::Rule::Request`).
const AGENT_REQUEST: &str = "agent request";

/// Why the live program no longer lets an agent write `op`, if it does not.
fn refused(p: &Program, op: &Op) -> Option<String> {
    let Op::ZendeskField { field, .. } = op else {
        return None;
    };
    let Some(f) = p.ticket_fields.iter().find(|f| f.alias() == field) else {
        return Some(format!(
            "not applied: `{field}` is no longer a ticket field the running mappings declare"
        ));
    };
    not_the_agents(p, f).map(|(why, _)| format!("not applied: since the agent asked, {why}"))
}

/// `groups` without the agent writes the live revision refuses; those are
/// settled (never sent) with the reason.
pub async fn screen(engine: &Engine, groups: Vec<Group>) -> Vec<Group> {
    let live = engine.live();
    let mut kept = Vec::with_capacity(groups.len());
    let mut dropped: Vec<(i64, String)> = Vec::new();
    for mut g in groups {
        g.items.retain(|c| {
            if c.rule != AGENT_REQUEST {
                return true;
            }
            let why = serde_json::from_str::<Op>(&c.op)
                .ok()
                .and_then(|op| refused(&live.program, &op));
            match why {
                Some(reason) => {
                    dropped.push((c.id, reason));
                    false
                }
                None => true,
            }
        });
        if !g.items.is_empty() {
            kept.push(g);
        }
    }
    for (id, note) in dropped {
        tracing::warn!(action = id, "{note}");
        let store = engine.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.done_noted(&[id], &note)).await;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::FieldRef;

    fn fintech() -> Program {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
        let p = crate::project::load(&[dir]).unwrap().remove(0);
        crate::compile::compile(&p.sources).expect("fintech compiles")
    }

    fn write(field: &str) -> Op {
        Op::ZendeskField {
            field: field.into(),
            id: None,
            value: serde_json::json!("x"),
        }
    }

    /// A write queued before a reload made its field a guard is not sent.
    #[test]
    fn a_queued_agent_write_to_a_field_that_became_a_guard_is_not_sent() {
        let p = fintech();
        let why = refused(&p, &write("risk_decision")).expect("refused");
        assert!(
            why.contains("decides on or writes") && why.starts_with("not applied"),
            "{why}"
        );
        assert!(refused(&p, &write("no_such_field")).is_some());
        let mut free = p.clone();
        let mut f = free.ticket_fields[0].clone();
        f.field = FieldRef::Zendesk {
            connection: "desk".into(),
            field: "preferred_channel".into(),
            id: Some(1),
        };
        free.ticket_fields.push(f);
        assert_eq!(refused(&free, &write("preferred_channel")), None);
        let status = Op::ZendeskComment { body: "b".into() };
        assert_eq!(refused(&p, &status), None);
    }
}
