use super::*;
use crate::check::{check, Kind};
use crate::ir::lower;
use crate::ir::{FieldRef, Value};
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
        .all(|a| a.rule == Rule::Escalation("refund_over_threshold")));
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
    assert_eq!(
        d.actions[0].rule,
        Rule::Map {
            from: "crm",
            to: "desk"
        }
    );
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
        .all(|a| a.rule == Rule::Escalation("angry_enterprise_customer")));
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
