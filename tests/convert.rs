//! Every source payload sample in tests/fixtures/sources converted to
//! normalised events, pinned. `broken_*` samples must be refused; their
//! snapshot is the error message.

use l3map::compile::{check, lower};
use l3map::eval::convert::{from_source_json, ConvertContext, SalesforceOptions};
use l3map::syntax::SourceMap;

/// A desk whose statuses are Zendesk custom statuses (with their ids), and
/// a CRM whose Cases carry the Zendesk ticket id.
const DESK: &str = r#"
connection desk: zendesk {
  subdomain  "acme-fintech"
  token      env("ZENDESK_OAUTH_TOKEN")
  scopes     read, write, tickets:write
}

statuses desk {
  new               new      "New"                      #360000010
  open              open     "Open"                     #360000011
  in_progress       open     "Agent working"            #360000012
  pending_customer  pending  "Waiting on the customer"  #360000020
  pending_chargeback pending "Chargeback filed"         #360000021
  solved            solved   "Solved"                   #360000030
  closed            solved   "Closed"  terminal         #360000031

  new -> open, in_progress
  open, in_progress -> pending_customer, pending_chargeback, solved
  pending_customer, pending_chargeback -> open  when comment.author == end_user
  solved -> open  when comment.author == end_user
  solved -> closed
}
"#;

fn context() -> ConvertContext {
    let mut sources = SourceMap::new();
    sources.add("desk.l3map", DESK);
    let checked = check(&sources, None);
    assert!(
        !checked.has_errors(),
        "{:?}",
        checked
            .diagnostics
            .iter()
            .map(|d| d.message())
            .collect::<Vec<_>>()
    );
    let program = lower(&checked, &sources).expect("the desk compiles");
    ConvertContext::new(&program).with_salesforce(SalesforceOptions {
        ticket_field: Some("Zendesk_Ticket_Id__c".into()),
    })
}

#[test]
fn every_source_sample() {
    let ctx = context();
    insta::glob!("fixtures/sources/*.json", |path| {
        let text = std::fs::read_to_string(path).expect("fixture readable");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let result = from_source_json(&text, &ctx);
        if name.starts_with("broken_") {
            let err = result.expect_err("a broken sample must be refused");
            insta::assert_json_snapshot!(serde_json::json!({ "error": err.message }));
        } else {
            let events = result.unwrap_or_else(|e| panic!("{name}: {}", e.message));
            assert!(!events.is_empty(), "{name}: no events");
            insta::assert_json_snapshot!(events);
        }
    });
}

/// Converting is pure: the same payload gives the same events, ids
/// included, which is what makes a redelivered payload harmless.
#[test]
fn redelivery_gives_the_same_ids() {
    let ctx = context();
    insta::glob!("fixtures/sources/*.json", |path| {
        let text = std::fs::read_to_string(path).expect("fixture readable");
        let ids = |t: &str| {
            from_source_json(t, &ctx)
                .map(|evs| evs.into_iter().map(|e| e.id).collect::<Vec<_>>())
                .map_err(|e| e.message)
        };
        assert_eq!(ids(&text), ids(&text));
    });
}

/// Every converted event is itself a valid normalised event: it survives
/// a round trip through its JSON form and `Event::from_json`.
#[test]
fn converted_events_read_back() {
    let ctx = context();
    insta::glob!("fixtures/sources/*.json", |path| {
        let text = std::fs::read_to_string(path).expect("fixture readable");
        for ev in from_source_json(&text, &ctx).unwrap_or_default() {
            let json = serde_json::to_string(&ev).expect("serialises");
            assert_eq!(l3map::eval::Event::from_json(&json).as_ref(), Ok(&ev));
        }
    });
}
