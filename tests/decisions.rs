//! What the interpreter decides for hand-picked events, snapshotted: every
//! action kind, the forbidden-transition refusal, template rendering
//! (missing values, `default`, Unicode), SKU normalisation in several
//! scripts, and idempotency keys.

use crate::common;

use common::REFUND_TURN as REFUND;
use l3map::eval::decide::decide;
use l3map::eval::Event;
use l3map::ir::Program;
use l3map::syntax::SourceMap;
use std::path::{Path, PathBuf};

/// Relative, as ops type it: refusal reasons quote `file:line`, and the
/// snapshots must not depend on where the checkout lives. (Cargo runs
/// integration tests from the package root.)
fn project_dir(name: &str) -> PathBuf {
    Path::new("mappings").join(name)
}

fn compile(sources: &SourceMap) -> Program {
    let checked = l3map::compile::check(sources, None);
    l3map::compile::lower(&checked, sources).expect("compiles")
}

fn program(name: &str) -> Program {
    let p = l3map::project::load(&[project_dir(name)])
        .expect("loads")
        .remove(0);
    compile(&p.sources)
}

fn event(json: &str) -> Event {
    Event::from_json(json).expect("a valid event")
}

/// The decision as JSON: what the outbox stores and `plan --format json`
/// prints.
fn decided(p: &Program, json: &str) -> serde_json::Value {
    let ev = event(json);
    serde_json::to_value(decide(p, &ev)).expect("serialises")
}

fn actions(d: &serde_json::Value) -> &Vec<serde_json::Value> {
    d["actions"].as_array().expect("actions")
}

#[test]
fn every_escalation_action_kind() {
    let d = decided(&program("fintech"), REFUND);
    let kinds: Vec<&str> = actions(&d)
        .iter()
        .map(|a| a["action"].as_str().unwrap_or("?"))
        .collect();
    // The private comment comes first: it is written before the ticket
    // changes hands, so the next person reads it on arrival.
    assert_eq!(
        kinds,
        [
            "comment",
            "comment",
            "set_field",
            "set_field",
            "assign_group",
            "set_status"
        ]
    );
    insta::assert_json_snapshot!(d);
}

#[test]
fn a_forbidden_transition_is_refused_with_its_reason() {
    let p = program("fintech");
    let d = decided(
        &p,
        r#"{"id":"evt-close","kind":"agent_turn","at":"2026-11-11T10:05:00Z",
            "ticket":{"id":9,"status":"open"},
            "turn":{"intent":"question","requested_status":"closed"}}"#,
    );
    assert!(actions(&d).is_empty());
    insta::assert_json_snapshot!("forbidden_transition", d);
    let d = decided(
        &p,
        r#"{"id":"evt-refunded","kind":"agent_turn","at":"2026-11-11T10:06:00Z",
            "ticket":{"id":10,"status":"in_progress"},
            "turn":{"intent":"refund","requested_status":"solved_refunded"}}"#,
    );
    insta::assert_json_snapshot!("transition_whose_condition_fails", d);
}

#[test]
fn a_salesforce_change_is_translated_onto_the_ticket() {
    let d = decided(
        &program("saas"),
        r#"{"id":"evt-acct","kind":"record_changed","at":"2026-11-11T11:00:00Z",
            "ticket":{"id":7103,"status":"open","priority":"normal"},
            "records":{"Account":{"Id":"0015e00000Fld03","SLA_Tier__c":"Gold",
                                  "Contract_Value__c":64000,"Renewal_Date__c":"2027-06-30"},
                       "Case":{"Id":"5005e00000Fld04","Priority":"High"}},
            "changed":["Account.SLA_Tier__c","Account.Contract_Value__c",
                       "Account.Renewal_Date__c","Case.Priority"]}"#,
    );
    insta::assert_json_snapshot!(d);
}

fn comment_bodies(d: &serde_json::Value) -> String {
    actions(d)
        .iter()
        .filter(|a| a["action"] == "comment")
        .map(|a| {
            format!(
                "--- {}\n{}\n",
                a["connection"].as_str().unwrap_or("?"),
                a["body"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn templates_render_missing_values_defaults_and_unicode() {
    let p = program("fintech");
    // Nothing but the trigger: every placeholder is missing.
    let bare = decided(
        &p,
        r#"{"id":"evt-bare","kind":"agent_turn","at":"2026-11-11T12:00:00Z",
            "ticket":{"id":4300,"status":"open"},
            "turn":{"intent":"fraud_report"}}"#,
    );
    insta::assert_snapshot!("template_missing_values", comment_bodies(&bare));
    // Thai and Japanese text, and a sentiment `upper` must case-map.
    let unicode = decided(
        &p,
        r#"{"id":"evt-unicode","kind":"agent_turn","at":"2026-11-11T12:01:00Z",
            "ticket":{"id":4301,"status":"open","custom_fields":{"360001234":"enterprise"}},
            "turn":{"intent":"fraud_report",
                    "summary":"ลูกค้าแจ้งว่ามีการใช้บัตรที่ญี่ปุ่น (カードの不正利用)",
                    "attempts":["カードを一時停止しました","ส่งลิงก์ยืนยันตัวตน"],
                    "sentiment":"ärgerlich"}}"#,
    );
    insta::assert_snapshot!("template_unicode", comment_bodies(&unicode));
    let shop = decided(
        &program("shop"),
        r#"{"id":"evt-doa","kind":"agent_turn","at":"2026-11-11T12:02:00Z",
            "ticket":{"id":5201,"status":"open","requester_name":"สมชาย ใจดี"},
            "turn":{"intent":"damaged_on_arrival","language":"th",
                    "summary":"จอแตกตั้งแต่แกะกล่อง","product":"ไอโฟน 15 โปร แม็กซ์",
                    "sentiment":"negative"}}"#,
    );
    insta::assert_snapshot!("template_shop_thai", comment_bodies(&shop));
}

#[test]
fn sku_normalisation_in_several_scripts() {
    let p = program("shop");
    let mut lines = String::new();
    for (i, said) in [
        "iph 15 pm",
        "ｉＰｈｏｎｅ　１５　Ｐｒｏ",
        "ｱｲﾌｫﾝ15ﾌﾟﾛﾏｯｸｽ",
        "アイフォーン１５プロ",
        "ซัมซุง กาแล็กซี่ S24 อัลตร้า",
        "HP Samsung S24 Ultra SEIN",
        "sm-s928b/ds",
        "เรดมี่ โน้ต 13 โปร 5g",
        "Redmi Note 13 Pro",
        "casing iPhone 15 Pro Max",
        "nokia 3310",
    ]
    .iter()
    .enumerate()
    {
        let d = decided(
            &p,
            &serde_json::json!({
                "id": format!("evt-sku-{i}"), "kind": "agent_turn", "at": "2026-11-11T13:00:00Z",
                "ticket": {"id": 5300 + i, "status": "open"},
                "turn": {"intent": "question", "language": "en", "product": said}
            })
            .to_string(),
        );
        let got = actions(&d)
            .iter()
            .find(|a| a["action"] == "normalize_sku")
            .map(|a| format!("{} -> {}", a["sku"].as_str().unwrap_or("?"), a["field"]))
            .or_else(|| {
                d["refused"][0]["reason"]
                    .as_str()
                    .map(|r| format!("refused: {r}"))
            })
            .unwrap_or_else(|| "nothing".into());
        lines.push_str(&format!("{said} => {got}\n"));
    }
    insta::assert_snapshot!(lines);
}

#[test]
fn idempotency_keys_are_stable_across_runs_and_paths() {
    let a = decided(&program("fintech"), REFUND);
    // The same files named by an absolute path are the same revision.
    let absolute = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
    let p = l3map::project::load(&[absolute]).expect("loads").remove(0);
    let b = decided(&compile(&p.sources), REFUND);
    assert_eq!(a, b);
    // Fixed in the snapshot: a key never depends on the process, the
    // machine or the time.
    let keys: Vec<&str> = actions(&a)
        .iter()
        .map(|x| x["idempotency_key"].as_str().unwrap_or("?"))
        .collect();
    insta::assert_json_snapshot!(keys);
}

#[test]
fn idempotency_keys_differ_across_revisions_events_and_records() {
    let p = l3map::project::load(&[project_dir("fintech")])
        .expect("loads")
        .remove(0);
    let (program, ev) = (compile(&p.sources), event(REFUND));
    let base = decide(&program, &ev);
    // A new revision that only edits a comment keeps the hand-off's keys:
    // a hand-off is keyed by its escalation's meaning, not the revision
    // (the audit trail still says which revision wrote what).
    let mut edited = SourceMap::new();
    for (_, f) in p.sources.files() {
        edited.add(f.path.clone(), format!("{}\n// reviewed\n", f.text));
    }
    let edited = compile(&edited);
    let other = decide(&edited, &ev);
    assert_ne!(base.revision, other.revision);
    assert_eq!(base.actions.len(), other.actions.len());
    for (x, y) in base.actions.iter().zip(&other.actions) {
        assert_eq!(x.kind, y.kind);
        assert_eq!(x.idempotency_key, y.idempotency_key);
    }
    // A hand-off happens once per record and escalation: the
    // same escalation triggered again by another event (a later update, or
    // the poller seeing what the webhook saw) has the same keys, so the
    // outbox writes its comment once.
    let later = event(&REFUND.replace("evt-refund-1", "evt-refund-2"));
    let again = decide(&program, &later);
    let keys = |d: &l3map::eval::decide::Decision| -> Vec<String> {
        d.actions
            .iter()
            .map(|a| a.idempotency_key.clone())
            .collect()
    };
    assert_eq!(keys(&base), keys(&again));
    // Another ticket is another hand-off.
    let elsewhere = event(&REFUND.replace("4211", "4212").replace("AbCdE", "AbCdF"));
    let other_ticket = decide(&program, &elsewhere);
    let mut all: Vec<String> = keys(&base);
    all.extend(keys(&other_ticket));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), base.actions.len() * 2, "every key is distinct");
}

#[test]
fn field_writes_are_keyed_by_event_so_a_later_change_is_written() {
    // Ent, then Prem, then Ent again: the third write must not be taken for
    // a repeat of the first. A redelivery of the same event must be.
    let program = program("fintech");
    let change = |id: &str, tier: &str| {
        event(&format!(
            r#"{{"id":"{id}","kind":"record_changed","at":"2026-11-11T10:00:00Z",
                "ticket":{{"id":77,"status":"open"}},
                "records":{{"Account":{{"Id":"001A","SLA_Tier__c":"{tier}"}}}},
                "changed":["Account.SLA_Tier__c"]}}"#
        ))
    };
    let (first, third, redelivered) = (
        change("c-1", "Ent"),
        change("c-3", "Ent"),
        change("c-1", "Ent"),
    );
    let key = |ev: &Event| decide(&program, ev).actions[0].idempotency_key.clone();
    assert_ne!(key(&first), key(&third));
    assert_eq!(key(&first), key(&redelivered));
    assert!(!key(&first).starts_with('h'));
}

#[test]
fn a_value_that_does_not_fit_its_field_is_refused_not_written() {
    let d = decided(
        &program("saas"),
        r#"{"id":"evt-bad-values","kind":"record_changed","at":"2026-11-11T11:00:00Z",
            "ticket":{"id":7200,"status":"open"},
            "records":{"Account":{"Id":"0015e00000Bad01","Contract_Value__c":"lots",
                                  "Renewal_Date__c":"next tuesday","SLA_Tier__c":"Biz"}},
            "changed":["Account.Contract_Value__c","Account.Renewal_Date__c","Account.SLA_Tier__c"]}"#,
    );
    let written: Vec<&str> = actions(&d)
        .iter()
        .map(|a| a["field"]["field"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(written, ["sla_tier"], "only the value that fits is written");
    let reasons: Vec<&str> = d["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        reasons,
        [
            "\"lots\" is not an amount in USD, so `contract_value` is not written",
            "\"next tuesday\" is not a date such as 2027-01-31, so `renewal_date` is not written",
        ]
    );
}
