//! Linked records at run time, through the real binaries (`l3map emulate`
//! and `l3map run`) over 127.0.0.1, with reqwest as the agent: a turn finds
//! the ticket's Case through a `link` without naming it, says through
//! which link, costs no Salesforce request the second time, and a ticket
//! with no match answers cleanly, the miss cached.

use crate::common;

use common::stack::{Stack, AGENT_TOKEN};
use serde_json::{json, Value};
use std::time::Duration;

/// The ticket <-> Case link of docs/LANGUAGE.md, on the fintech desk.
const CASE_LINK: &str = r#"
fields crm {
  Case.Zendesk_Ticket_Id__c  string  external_id unique  "Zendesk ticket"
}

// The Case that Salesforce opened for a ticket holds the ticket's id.
link desk.ticket <-> crm.Case {
  on ticket.id == Case.Zendesk_Ticket_Id__c
}
"#;

/// A hand-off that reads the linked Account's tier: the agent names no
/// Account.
const ACCOUNT_RULE: &str = r#"
escalation angry_enterprise_account {
  when    turn.sentiment == angry and Account.SLA_Tier__c == "Ent"
  reason  "Enterprise Account, found through its organization, is angry"
  comment desk handoff
}
"#;

/// No polling at all, so the only Salesforce requests are the turns'. (An
/// interval of an hour still polled once at start, and that round's link
/// lookups, paced by a loaded CI machine, could land between a `before`
/// and the turn it measured.)
const QUIET: &str = "[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n";

/// A Case for `ticket`, created as a person would; its Id.
async fn case_for(s: &Stack, ticket: u64) -> String {
    let token = s.sf_token().await;
    let created: Value = s
        .http
        .post(format!(
            "{}/services/data/v60.0/sobjects/Case",
            s.salesforce
        ))
        .bearer_auth(token)
        .json(&json!({"Subject": "Chargeback", "Status": "New",
                      "Zendesk_Ticket_Id__c": ticket.to_string()}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string()
}

async fn turn(s: &Stack, body: Value) -> Value {
    let (status, v) = common::answer(
        s.http
            .post(format!("{}/v1/turns", s.runtime))
            .bearer_auth(AGENT_TOKEN)
            .json(&body),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// `l3map_api_calls_total` of the `crm` connection, all outcomes.
async fn crm_calls(s: &Stack) -> f64 {
    s.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("l3map_api_calls_total") && l.contains("connection=\"crm\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `l3map_link_lookups_total` of the link (`link="..."`) and result.
async fn lookups(s: &Stack, link: &str, result: &str) -> f64 {
    let result = format!("result=\"{result}\"");
    s.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("l3map_link_lookups_total"))
        .filter(|l| l.contains(link) && l.contains(&result))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `crm` call count once the startup poll's requests are over.
async fn settled_crm_calls(s: &Stack) -> f64 {
    let mut last = crm_calls(s).await;
    loop {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = crm_calls(s).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_finds_the_linked_case_through_its_link_and_then_from_the_cache() {
    let s = Stack::start_with_files(
        "links-resolve",
        QUIET,
        false,
        &[
            ("case_link.l3map", CASE_LINK),
            ("account_rule.l3map", ACCOUNT_RULE),
        ],
    )
    .await;

    // A ticket of Nimbus Analytics (seeded organization 360200001, whose
    // external_id is the Enterprise Account's Id), requested by Ana.
    let ids = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/tickets",
            Some(
                json!({"count": 1, "ticket": {"subject": "Card declined", "status": "open",
                        "organization_id": 360200001u64, "requester_id": 2000}}),
            ),
        )
        .await;
    let nimbus = ids["ids"][0].as_u64().expect("a ticket id");
    let v = turn(
        &s,
        json!({"ticket": nimbus, "intent": "complaint", "sentiment": "angry",
                            "summary": "Card declined again"}),
    )
    .await;
    assert_eq!(
        v["linked"]["records"]["Account"]["SLA_Tier__c"], "Ent",
        "{v}"
    );
    // What an agent calls the customer, though no rule reads it
    // (AGENT_API.md: `Id`, `Name` and the fields the mappings read).
    assert_eq!(
        v["linked"]["records"]["Account"]["Name"], "Nimbus Analytics",
        "{v}"
    );
    let via = v["linked"]["via"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["object"] == "Account")
        .cloned()
        .expect("a via for the Account");
    assert_eq!(via["link"], "desk.organization <-> crm.Account");
    assert_eq!(via["on"], "organization.external_id == Account.Id");
    assert!(
        via["source"].as_str().unwrap().contains("/links.l3map:"),
        "{via}"
    );
    assert!(
        v["handoff_comment"]
            .as_str()
            .unwrap_or_default()
            .contains("Enterprise Account, found through its organization"),
        "the Enterprise hand-off, without the agent naming the Account: {v}"
    );
    assert_eq!(
        v["linked"]["records"]["Contact"]["Email"], "ana@example.com",
        "{v}"
    );

    // An organization no Account matches: a clean answer, a miss, cached.
    let org = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/organizations",
            Some(json!({"organization": {"name": "Unlinked Ltd", "external_id": "001000000000000AAA"}})),
        )
        .await;
    let org_id = org["organization"]["id"].as_u64().expect("an org id");
    let ids = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/tickets",
            Some(
                json!({"count": 1, "ticket": {"subject": "Hello", "status": "open",
                        "organization_id": org_id}}),
            ),
        )
        .await;
    let unlinked = ids["ids"][0].as_u64().expect("a ticket id");
    let before = settled_crm_calls(&s).await;
    let v = turn(
        &s,
        json!({"ticket": unlinked, "intent": "complaint", "sentiment": "angry",
                            "summary": "Hello"}),
    )
    .await;
    assert!(v["linked"]["records"].get("Account").is_none(), "{v}");
    let miss = v["linked"]["misses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["object"] == "Account")
        .cloned()
        .expect("a miss");
    assert!(
        miss["reason"]
            .as_str()
            .unwrap()
            .contains("no Account has Id"),
        "{miss}"
    );
    assert!(
        v["handoff_comment"].is_null(),
        "no Account, no Enterprise hand-off: {v}"
    );
    // Its Account and its Case were looked up, neither cached: one
    // Salesforce request (a Composite request, which the org's daily
    // limit counts once).
    assert_eq!(
        crm_calls(&s).await,
        before + 1.0,
        "one request for two lookups"
    );
    s.drained(Duration::from_secs(20)).await;
    let before = settled_crm_calls(&s).await;
    let v = turn(
        &s,
        json!({"ticket": unlinked, "intent": "question", "summary": "Again"}),
    )
    .await;
    assert!(
        v["linked"]["misses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["object"] == "Account"),
        "{v}"
    );
    assert_eq!(crm_calls(&s).await, before, "the negative entry is cached");
    // Each lookup counted by its link and what it came to.
    let account = "link=\"desk.organization <-> crm.Account\"";
    assert!(
        lookups(&s, account, "miss").await >= 2.0,
        "{}",
        s.metrics().await
    );
    assert!(lookups(&s, account, "negative_hit").await >= 1.0);

    let ticket = s
        .create_ticket("Chargeback on my card", "enterprise", None)
        .await;
    let case = case_for(&s, ticket).await;

    // Angry and enterprise: the hand-off sets a field on the Case, which
    // the agent does not name.
    let v = turn(
        &s,
        json!({"ticket": ticket, "intent": "complaint", "sentiment": "angry",
                            "summary": "Angry about a chargeback"}),
    )
    .await;
    let linked = &v["linked"];
    assert_eq!(linked["records"]["Case"]["Id"], json!(case), "{v}");
    assert_eq!(linked["records"]["Case"]["Status"], json!("New"), "{v}");
    let via = linked["via"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["object"] == "Case")
        .expect("a via for the Case");
    assert_eq!(via["link"], "desk.ticket <-> crm.Case");
    assert_eq!(via["on"], "ticket.id == Case.Zendesk_Ticket_Id__c");
    assert_eq!(via["value"], json!(ticket.to_string()));
    assert!(
        via["source"]
            .as_str()
            .unwrap()
            .contains("/case_link.l3map:"),
        "{via}"
    );
    let set_case = v["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "set_field" && a["record"].to_string().contains(&case));
    assert!(
        set_case.is_some(),
        "the Case is written through the link: {v}"
    );

    // The first turn's write of the Case made the resolver forget Cases
    // (what it kept predates the write): the context read reads it again.
    s.drained(Duration::from_secs(20)).await;
    // The context shows the linked records, no `?account=` needed.
    let (status, ctx) = common::answer(
        s.http
            .get(format!("{}/v1/context/{ticket}", s.runtime))
            .bearer_auth(AGENT_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{ctx}");
    assert_eq!(ctx["linked"]["records"]["Case"]["Id"], json!(case), "{ctx}");

    // A second turn: the Case comes from the cache, and no Salesforce
    // request is made (this turn decides no Salesforce write).
    let before = settled_crm_calls(&s).await;
    let v = turn(
        &s,
        json!({"ticket": ticket, "intent": "question", "summary": "And now?"}),
    )
    .await;
    let via = v["linked"]["via"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["object"] == "Case")
        .cloned()
        .expect("a via");
    assert_eq!(via["cached"], true, "{v}");
    assert_eq!(
        crm_calls(&s).await,
        before,
        "the second turn asked Salesforce nothing"
    );

    // A ticket no Case names: a clean answer with a miss, cached too.
    let other = s.create_ticket("Just a question", "standard", None).await;
    let v = turn(
        &s,
        json!({"ticket": other, "intent": "question", "summary": "Hi"}),
    )
    .await;
    assert!(v["linked"]["records"].get("Case").is_none(), "{v}");
    assert!(
        v["linked"]["via"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["object"] != "Case"),
        "{v}"
    );
    let miss = v["linked"]["misses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["object"] == "Case")
        .cloned()
        .expect("a miss");
    assert!(
        miss["reason"].as_str().unwrap().contains("no Case has"),
        "{miss}"
    );
    assert_eq!(v["linked"]["errors"], json!([]), "{v}");
    let before = settled_crm_calls(&s).await;
    turn(
        &s,
        json!({"ticket": other, "intent": "question", "summary": "Hi again"}),
    )
    .await;
    assert_eq!(crm_calls(&s).await, before, "the miss is cached");
}
