//! The resolver against the Salesforce emulator over 127.0.0.1: lookups,
//! the one batched request, the caches (negative entries included), the
//! single flight, and a unique link matching two records.

use super::*;
use crate::compile::compile;
use crate::connectors::salesforce::SalesforceConfig;
use crate::connectors::Secret;
use crate::emulator::salesforce::{Handle, SalesforceEmulator, SalesforceOptions};
use crate::emulator::Running;
use crate::ir::{Loc, ZdKey, ZdObject};
use crate::project::load;
use serde_json::json;
use std::path::PathBuf;

fn fintech() -> Program {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mappings/fintech");
    let p = load(&[dir]).unwrap().remove(0);
    compile(&p.sources).expect("the fintech example compiles")
}

fn link(zd: ZdObject, key: ZdKey, object: &str, field: &str, pick: Pick) -> Link {
    Link {
        desk: "desk".into(),
        zendesk: zd,
        zendesk_key: key,
        crm: "crm".into(),
        object: object.into(),
        field: field.into(),
        pick,
        tickets: vec![],
        loc: Loc {
            file: 0,
            line: 12,
            col: 1,
            start: 0,
            end: 0,
        },
    }
}

/// fintech plus: organization.external_id == Account.Id, user.email ==
/// Contact.Email (pick newest), Case by its Subject (unique, to show two).
fn linked_program() -> Program {
    let mut p = fintech();
    p.links = vec![
        link(
            ZdObject::Organization,
            ZdKey::ExternalId,
            "Account",
            "Id",
            Pick::One,
        ),
        link(
            ZdObject::User,
            ZdKey::Email,
            "Contact",
            "Email",
            Pick::Newest,
        ),
        link(
            ZdObject::Ticket,
            ZdKey::ExternalId,
            "Case",
            "Subject",
            Pick::One,
        ),
    ];
    p
}

async fn emulator(p: &Program) -> (Running, Handle, SalesforceClient) {
    let opts = SalesforceOptions {
        client_id: "app".into(),
        client_secret: "s".into(),
        refresh_token: "r".into(),
        ..SalesforceOptions::default()
    }
    .with_program(p);
    let (run, h) = SalesforceEmulator::new(opts).start(0).await.unwrap();
    let cfg = SalesforceConfig::new(run.base_url(), "app", Secret::new("s"), Secret::new("r"));
    let sf = SalesforceClient::new(cfg).unwrap();
    (run, h, sf)
}

fn side(account: &str, email: &str, external: Option<&str>) -> TicketSide {
    TicketSide::from_answer(&json!({
        "ticket": {"id": 7, "organization_id": 40, "requester_id": 50, "external_id": external},
        "organizations": [{"id": 40, "external_id": account}],
        "users": [{"id": 50, "email": email}]
    }))
    .unwrap()
}

fn data_requests(h: &Handle) -> u32 {
    h.requests()
        .iter()
        .filter(|(k, _)| k.contains("/services/data/"))
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test]
async fn linked_records_in_one_request_then_none() {
    let p = linked_program();
    let (_run, h, sf) = emulator(&p).await;
    let account = h.records("Account")[0].clone();
    let account_id = account["Id"].as_str().unwrap().to_string();
    let r = Resolver::default();
    let s = side(&account_id, "ana@example.com", None);
    let got = r.for_ticket(&p, "desk", &s, Some(("crm", &sf))).await;
    assert_eq!(got.errors, vec![], "{got:?}");
    assert_eq!(got.records["Account"]["Id"], json!(account_id));
    assert_eq!(
        got.records["Account"]["SLA_Tier__c"],
        account["SLA_Tier__c"]
    );
    assert!(!got.records["Account"].contains_key("attributes"));
    assert_eq!(got.records["Contact"]["Email"], json!("ana@example.com"));
    let via = &got.via[0];
    assert_eq!(via.link, "desk.organization <-> crm.Account");
    assert_eq!(via.on, "organization.external_id == Account.Id");
    assert_eq!(via.value, account_id);
    assert!(!via.cached);
    // The ticket has no external_id: the Case link has nothing to ask.
    assert_eq!(got.misses.len(), 1, "{:?}", got.misses);
    assert_eq!(got.misses[0].object, "Case");
    assert_eq!(got.salesforce_reads, 1);
    // One Composite request, one call of the daily limit (a Composite
    // Batch would count each query).
    assert_eq!(
        h.requests().get("POST /services/data/v60.0/composite"),
        Some(&1),
        "{:?}",
        h.requests()
    );
    assert_eq!(h.count("POST", "composite/batch"), 0);

    let before = data_requests(&h);
    let again = r.for_ticket(&p, "desk", &s, Some(("crm", &sf))).await;
    assert_eq!(again.records, got.records);
    assert!(again.via.iter().all(|v| v.cached));
    assert_eq!(again.salesforce_reads, 0);
    assert_eq!(
        data_requests(&h),
        before,
        "a second resolution asks nothing"
    );
}

#[tokio::test]
async fn no_match_is_cached_and_two_matches_are_an_error() {
    let p = linked_program();
    let (_run, h, sf) = emulator(&p).await;
    let r = Resolver::default();
    // A valid Id of no Account, and an email of nobody.
    let s = side("001000000000000AAA", "nobody@example.com", None);
    let got = r.for_ticket(&p, "desk", &s, Some(("crm", &sf))).await;
    assert!(got.records.is_empty(), "{got:?}");
    assert!(got.via.is_empty());
    assert_eq!(got.errors, vec![]);
    assert!(
        got.misses
            .iter()
            .any(|m| m.reason.contains("no Account has Id")),
        "{:?}",
        got.misses
    );
    let before = data_requests(&h);
    let again = r.for_ticket(&p, "desk", &s, Some(("crm", &sf))).await;
    assert_eq!(again.misses, got.misses);
    assert_eq!(data_requests(&h), before, "the negative entries are cached");

    // Two Cases share a Subject: the unique link names the error.
    let mut twin = serde_json::Map::new();
    twin.insert("Subject".into(), json!("Seeded case 1"));
    h.insert("Case", twin).unwrap();
    let s = side("x", "x", Some("Seeded case 1"));
    let got = r.for_ticket(&p, "desk", &s, Some(("crm", &sf))).await;
    assert!(!got.records.contains_key("Case"));
    assert_eq!(got.errors.len(), 1, "{got:?}");
    assert_eq!(got.errors[0].link, "desk.ticket <-> crm.Case");
    assert!(
        got.errors[0].message.contains("more than one Case"),
        "{}",
        got.errors[0].message
    );
}

#[tokio::test]
async fn concurrent_resolutions_of_one_ticket_make_one_request() {
    let p = Arc::new(linked_program());
    let (_run, h, sf) = emulator(&p).await;
    let id = h.records("Account")[1]["Id"].as_str().unwrap().to_string();
    let r = Arc::new(Resolver::default());
    let s = Arc::new(side(&id, "ben@example.com", None));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (p, r, s, sf) = (p.clone(), r.clone(), s.clone(), sf.clone());
            tokio::spawn(async move { r.for_ticket(&p, "desk", &s, Some(("crm", &sf))).await })
        })
        .collect();
    for t in tasks {
        let got = t.await.unwrap();
        assert_eq!(got.records["Account"]["Id"], json!(id));
    }
    assert_eq!(data_requests(&h), 1, "{:?}", h.requests());
}

#[tokio::test]
async fn a_reload_reading_more_fields_misses_the_cache() {
    let p = linked_program();
    let (_run, h, sf) = emulator(&p).await;
    let id = h.records("Account")[2]["Id"].as_str().unwrap().to_string();
    let r = Resolver::default();
    let s = side(&id, "x@example.com", None);
    r.for_ticket(&p, "desk", &s, Some(("crm", &sf))).await;
    let one = key_of(&p, &p.links[0], id.clone());
    let mut more = one.clone();
    more.fields.push("Name".into());
    assert_ne!(one, more);
    assert!(r.lookups.get(&one).await.is_some());
    assert!(r.lookups.get(&more).await.is_none());
}

#[test]
fn queries_escape_values_and_pick_newest() {
    let k = LookupKey {
        connection: "crm".into(),
        object: "Contact".into(),
        field: "Email".into(),
        value: "o'neil\\@x".into(),
        fields: vec!["Email".into(), "Id".into()],
        newest: true,
    };
    assert_eq!(
        soql_of(&k).unwrap().unwrap(),
        "SELECT Email, Id FROM Contact WHERE Email = 'o\\'neil\\\\@x' ORDER BY SystemModstamp DESC LIMIT 1"
    );
    let id = LookupKey {
        field: "Id".into(),
        value: "not an id".into(),
        newest: false,
        ..k.clone()
    };
    assert_eq!(soql_of(&id), Ok(None));
    let bad = LookupKey {
        object: "Contact; DROP".into(),
        ..k
    };
    assert!(soql_of(&bad).is_err());
}

#[tokio::test]
async fn a_lookup_answered_across_a_forget_is_not_cached() {
    let p = linked_program();
    let faults = Arc::new(crate::emulator::faults::Faults {
        latency: std::time::Duration::from_millis(400),
        ..Default::default()
    });
    let opts = SalesforceOptions {
        client_id: "app".into(),
        client_secret: "s".into(),
        refresh_token: "r".into(),
        faults,
        ..SalesforceOptions::default()
    }
    .with_program(&p);
    let (run, h) = SalesforceEmulator::new(opts).start(0).await.unwrap();
    let cfg = SalesforceConfig::new(run.base_url(), "app", Secret::new("s"), Secret::new("r"));
    let sf = SalesforceClient::new(cfg).unwrap();
    let ids: Vec<String> = h
        .records("Account")
        .iter()
        .map(|a| a["Id"].as_str().unwrap().to_string())
        .collect();
    let r = Arc::new(Resolver::default());
    // The client signs in first, so the next lookup is one slow query.
    r.for_ticket(
        &p,
        "desk",
        &side(&ids[0], "x@example.com", None),
        Some(("crm", &sf)),
    )
    .await;
    let (p2, r2, sf2, id) = (p.clone(), r.clone(), sf.clone(), ids[1].clone());
    let asking = tokio::spawn(async move {
        let s = side(&id, "y@example.com", None);
        r2.for_ticket(&p2, "desk", &s, Some(("crm", &sf2))).await
    });
    // A change of an Account is known while the query is out.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    r.forget("crm", "Account").await;
    let got = asking.await.unwrap();
    assert_eq!(got.records["Account"]["Id"], json!(ids[1]), "{got:?}");
    let key = key_of(&p, &p.links[0], ids[1].clone());
    assert!(
        r.lookups.get(&key).await.is_none(),
        "an answer that may predate the change is not cached"
    );
    let again = r
        .for_ticket(
            &p,
            "desk",
            &side(&ids[1], "y@example.com", None),
            Some(("crm", &sf)),
        )
        .await;
    assert!(again.via.iter().all(|v| !v.cached), "{again:?}");
    assert!(r.lookups.get(&key).await.is_some(), "a fresh answer is");
}

#[tokio::test]
async fn composite_queries_go_five_to_a_request_and_fail_one_by_one() {
    let p = linked_program();
    let (_run, h, sf) = emulator(&p).await;
    let ids: Vec<String> = h
        .records("Account")
        .iter()
        .map(|a| a["Id"].as_str().unwrap().to_string())
        .collect();
    let mut qs: Vec<String> = (0..6)
        .map(|i| format!("SELECT Id FROM Account WHERE Id = '{}'", ids[i % ids.len()]))
        .collect();
    qs.insert(2, "SELECT Nope__c FROM Account".into());
    let got = sf.query_composite(&qs).await.unwrap();
    assert_eq!(got.len(), 7);
    for (i, g) in got.iter().enumerate() {
        if i == 2 {
            let e = g.as_ref().unwrap_err();
            assert!(e.contains("HTTP 400"), "{e}");
        } else {
            let recs = g.as_ref().unwrap();
            assert_eq!(recs.len(), 1, "{i}: {recs:?}");
        }
    }
    assert_eq!(
        h.requests().get("POST /services/data/v60.0/composite"),
        Some(&2),
        "{:?}",
        h.requests()
    );
}
