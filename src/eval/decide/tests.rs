use super::*;
use crate::compile::compile;
use crate::project::load;
use std::path::PathBuf;

fn fintech() -> Program {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
    let p = load(&[dir]).unwrap().remove(0);
    compile(&p.sources).expect("the fintech example compiles")
}

const REFUND: &str = r#"{"id":"evt-1","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
    "ticket":{"id":4211,"status":"in_progress","custom_fields":{"360001234":"premium"}},
    "turn":{"intent":"refund","summary":"Wants a refund for order 1182",
            "attempts":["looked up order 1182","offered store credit"],"sentiment":"negative",
            "refund_amount":{"amount":"250.00","currency":"USD"}},
    "records":{"Case":{"Id":"5003k00001AbCdE"}}}"#;

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

/// A status by category only is written as the custom status the form
/// checks used: the lockfile's default for its category, not a bare
/// `status` that takes whatever default the instance has by then; and a
/// ticket there reads back as that status.
#[test]
fn a_category_only_status_is_written_as_the_lockfiles_default() {
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
  waiting   pending "Waiting on the customer"
  solved    solved  "Solved"
  new -> open
  open -> waiting, solved
  waiting -> open
  solved -> open
}
"#,
    );
    let ev = Event::from_json(
        r#"{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z","ticket":{"id":1,"status":"open"},
            "turn":{"intent":"question","requested_status":"waiting"}}"#,
    )
    .unwrap();
    let written = |p: &Program| {
        decide(p, &ev)
            .actions
            .iter()
            .find_map(|a| match &a.kind {
                ActionKind::SetStatus {
                    value,
                    custom_status_id,
                    ..
                } => Some((value.to_string(), *custom_status_id)),
                _ => None,
            })
            .expect("a status move")
    };
    // No lockfile: the default is unknown, only the category is sent.
    assert_eq!(written(&p), ("pending".to_string(), None));
    p.status_tables[0].statuses[2].instance_status_id = Some(7001);
    assert_eq!(written(&p), ("pending".to_string(), Some(7001)));
    let index = crate::eval::convert::StatusIndex::new(&p);
    assert_eq!(
        index.resolve(Some("pending"), Some(7001)).as_deref(),
        Some("waiting")
    );
}

/// A hand-off whose own status move the ticket's form refuses: the agent's
/// request is refused naming the hand-off, without claiming the hand-off
/// sets the status (it does not: the ticket stays).
#[test]
fn a_handoff_whose_status_is_refused_does_not_claim_to_set_it() {
    let mut p = crate::compile::program_of(
        r#"
connection desk: zendesk {
  subdomain "acme"
  token     env("ZD_TOKEN")
  scopes    tickets:read, tickets:write
}
statuses desk {
  open      open    "Open"
  vendor    pending "Waiting on vendor"  #7001
  hold      hold    "On hold"            #7002
  open -> vendor, hold
  vendor, hold -> open
}
escalation vendor_handoff {
  when   turn.intent == "vendor_issue"
  reason "A vendor must act"
  status desk vendor
}
"#,
    );
    let t = &mut p.status_tables[0];
    t.statuses[1].instance_status_id = Some(7001);
    t.statuses[2].instance_status_id = Some(7002);
    t.forms = vec![crate::ir::Form {
        id: 9,
        name: "Refunds".into(),
        active: true,
        custom_status_ids: vec![7002],
    }];
    let ev = |form: u64| {
        Event::from_json(&format!(
            r#"{{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
                "ticket":{{"id":1,"status":"open","ticket_form_id":{form}}},
                "turn":{{"intent":"vendor_issue","summary":"s","requested_status":"hold"}}}}"#
        ))
        .unwrap()
    };
    let on_refunds = ev(9);
    let d = decide(&p, &on_refunds);
    let reasons: Vec<&str> = d.refused.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("`vendor_handoff`")
            && r.contains("its own move to `vendor` is refused too")
            && !r.contains("sets the status itself")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not offered on ticket form")),
        "{reasons:?}"
    );
    // On a form the lockfile does not know, the hand-off does set it.
    let elsewhere = ev(10);
    let d = decide(&p, &elsewhere);
    assert!(
        d.refused
            .iter()
            .any(|r| r.reason.contains("sets the status itself")),
        "{:?}",
        d.refused
    );
}

fn turn(turn: &str, ticket: &str) -> Event {
    Event::from_json(&format!(
        r#"{{"id":"evt-r","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
            "ticket":{ticket},"turn":{turn}}}"#
    ))
    .unwrap()
}

const OPEN: &str = r#"{"id":4300,"status":"open","custom_fields":{"360001234":"premium"}}"#;

/// fintech plus a field no rule reads or writes.
fn with_free_field() -> Program {
    let mut p = fintech();
    let mut f = p.ticket_fields[0].clone();
    f.field = crate::ir::FieldRef::Zendesk {
        connection: "desk".into(),
        field: "preferred_channel".into(),
        id: Some(360001299),
    };
    f.ty = crate::ir::Type::Enum(vec!["email".into(), "chat".into()]);
    p.ticket_fields.push(f);
    p
}

#[test]
fn a_requested_field_is_written_only_when_declared_typed_and_no_rule_owns_it() {
    let p = with_free_field();
    let ev = turn(
        r#"{"intent":"x","requested_fields":{"preferred_channel":"chat","risk_decision":"cleared",
            "refund_issued":true,"handoff_reason":"x","sla_tier":"enterprise","colour":"red"}}"#,
        OPEN,
    );
    let d = decide(&p, &ev);
    assert_eq!(d.actions.len(), 1, "{d:?}");
    assert_eq!(d.actions[0].rule.to_string(), "agent request");
    let why = |f: &str| {
        d.refused
            .iter()
            .find(|r| r.what == format!("field {f}"))
            .map(|r| r.reason.clone())
            .unwrap_or_default()
    };
    // What a transition or an escalation decides on, or a hand-off writes,
    // is a person's: the agent cannot unlock what it guards.
    assert!(
        why("risk_decision")
            .contains("the transition `pending_risk_review -> in_progress` decides on"),
        "{d:?}"
    );
    assert!(why("refund_issued").contains("decides on"), "{d:?}");
    assert!(
        why("handoff_reason").contains("escalation `refund_over_threshold`"),
        "{d:?}"
    );
    assert!(
        why("sla_tier").contains("decides on")
            || why("sla_tier").contains("written by `map crm -> desk`"),
        "{d:?}"
    );
    assert!(why("colour").contains("not a ticket field the mappings declare"));
    let wrong = turn(
        r#"{"intent":"x","requested_fields":{"preferred_channel":{"a":1}}}"#,
        OPEN,
    );
    let d = decide(&p, &wrong);
    assert!(
        d.actions.is_empty() && d.refused[0].reason.contains("an object"),
        "{d:?}"
    );
    let typo = turn(
        r#"{"intent":"x","requested_fields":{"preferred_channel":"fax"}}"#,
        OPEN,
    );
    assert!(decide(&p, &typo).refused[0]
        .reason
        .contains("is not one of email, chat"));
    // The value it already holds is no write.
    let same = turn(
        r#"{"intent":"x","requested_fields":{"preferred_channel":"chat"}}"#,
        r#"{"id":4300,"status":"open","custom_fields":{"360001299":"chat"}}"#,
    );
    let d = decide(&p, &same);
    assert!(d.actions.is_empty(), "{d:?}");
    assert!(d.refused[0].reason.contains("already holds"), "{d:?}");
}

#[test]
fn a_requested_escalation_hands_off_only_when_it_is_the_one_that_holds() {
    let p = fintech();
    let fraud = turn(
        r#"{"intent":"fraud_report","summary":"card stolen","requested_escalation":"suspected_fraud"}"#,
        OPEN,
    );
    let d = decide(&p, &fraud);
    assert!(d.refused.is_empty(), "{d:?}");
    assert!(d
        .actions
        .iter()
        .any(|a| a.rule.to_string() == "escalation suspected_fraud"));
    let not_yet = turn(
        r#"{"intent":"refund","summary":"s","requested_escalation":"refund_over_threshold",
            "refund_amount":{"amount":"20.00","currency":"USD"}}"#,
        OPEN,
    );
    let d = decide(&p, &not_yet);
    assert!(d.actions.is_empty(), "{d:?}");
    assert!(
        d.refused[0].reason.contains("condition does not hold"),
        "{d:?}"
    );
    assert!(
        d.refused[0].reason.contains("turn.refund_amount > $200"),
        "{d:?}"
    );
    let other = turn(
        r#"{"intent":"fraud_report","summary":"s","requested_escalation":"angry_enterprise_customer"}"#,
        OPEN,
    );
    let d = decide(&p, &other);
    assert!(
        d.refused[0]
            .reason
            .contains("`suspected_fraud` comes first"),
        "{d:?}"
    );
    let typo = turn(
        r#"{"intent":"x","requested_escalation":"suspected_frod"}"#,
        OPEN,
    );
    assert!(decide(&p, &typo).refused[0]
        .reason
        .contains("suspected_fraud"));
}
