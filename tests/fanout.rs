//! The fan-out and batched writes against the emulators over loopback:
//! an Account's tier change reaches the open tickets of its linked
//! organization (not the solved one) and goes out as ONE update_many job;
//! 2,000 tickets get the value once each within the token's budget; a
//! ticket failing inside a job is retried alone; a replayed change records
//! nothing new.

use crate::common;

use common::rig::{fintech, Emulators, Rig};
use l3map::emulator::zendesk::salesforce_account_ids;
use l3map::ir::{Link, Loc, Pick, ZdKey, ZdObject};
use l3map::runtime::links::fanout::Fanout;
use l3map::runtime::links::{ChangeType, CrmChange};
use serde_json::{json, Map, Value};
use std::time::Duration;

const SLA_TIER: u64 = 360001234;
const UPDATE_MANY: &str = "PUT /api/v2/tickets/update_many.json";

fn org_link() -> Link {
    Link {
        desk: "desk".into(),
        zendesk: ZdObject::Organization,
        zendesk_key: ZdKey::ExternalId,
        crm: "crm".into(),
        object: "Account".into(),
        field: "Id".into(),
        pick: Pick::One,
        tickets: ["new", "open", "pending", "hold"]
            .map(String::from)
            .to_vec(),
        loc: Loc {
            file: 0,
            line: 1,
            col: 1,
            start: 0,
            end: 0,
        },
    }
}

async fn rig(rate_limit: Option<u32>) -> Rig {
    let mut program = fintech();
    program.links = vec![org_link()];
    Rig::start(Emulators::start(program, rate_limit).await).await
}

/// `n` tickets in `org` with `status`, made by the emulator's admin call.
async fn load(zd: &str, n: u64, org: u64, status: &str) -> Vec<u64> {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{zd}/__l3map/tickets"))
        .json(&json!({"count": n, "ticket": {"organization_id": org, "status": status}}))
        .send()
        .await
        .expect("the admin call answers");
    assert_eq!(resp.status().as_u16(), 201);
    let body: Value = resp.json().await.unwrap();
    body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

fn tier_change(account: &str, tier: &str, stamp: &str) -> CrmChange {
    let mut fields = Map::new();
    fields.insert("SLA_Tier__c".into(), Value::String(tier.into()));
    CrmChange {
        connection: "crm".into(),
        object: "Account".into(),
        ids: vec![account.into()],
        change_type: ChangeType::Update,
        fields,
        changed: vec!["SLA_Tier__c".into()],
        key: format!("Account:{account}:{stamp}"),
        at: stamp.into(),
        origin: None,
    }
}

fn tier_of(rig: &Rig, id: u64) -> Value {
    let t = rig.emulators.zd.ticket(id).expect("the ticket exists");
    t["custom_fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["id"] == json!(SLA_TIER)))
        .map_or(Value::Null, |f| f["value"].clone())
}

/// The organization the emulator seeded for an Account (external_id).
async fn org_of(rig: &Rig, account: &str) -> u64 {
    let l3map::runtime::apply::Client::Zendesk(zd) = &rig.clients["desk"] else {
        panic!("desk is Zendesk");
    };
    zd.organizations_by_external_id(account).await.unwrap()[0].id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_change_reaches_the_open_tickets_in_one_bulk_update() {
    let mut rig = rig(None).await;
    let account = salesforce_account_ids()[1].clone();
    let org = org_of(&rig, &account).await;
    let open = load(&rig.emulators.zendesk_url, 3, org, "open").await;
    let solved = load(&rig.emulators.zendesk_url, 1, org, "solved").await;
    let fanout = Fanout::new(rig.engine.clone(), rig.clients.clone());
    let change = tier_change(&account, "Ent", "2026-12-06T10:00:00.000Z");
    let got = fanout.apply(&change).await.expect("fanned out");
    // The 3 loaded here and whatever unsolved tickets the emulator seeded
    // for the organization; never the solved one.
    assert!(got.tickets >= 3 && got.tickets < 100, "{got:?}");
    assert_eq!(got.new_events, got.tickets);
    rig.start_workers(3, 4);
    common::until(
        "the 3 open tickets are enterprise",
        Duration::from_secs(20),
        || {
            open.iter()
                .all(|t| tier_of(&rig, *t) == json!("enterprise"))
        },
    )
    .await;
    assert_eq!(
        tier_of(&rig, solved[0]),
        Value::Null,
        "the solved one is left alone"
    );
    assert_eq!(rig.emulators.zd.requests(UPDATE_MANY), 1, "one bulk update");
    for t in &open {
        assert_eq!(
            rig.emulators
                .zd
                .requests(&format!("PUT /api/v2/tickets/{t}.json")),
            0
        );
    }
    // Delivered again: nothing new is recorded, nothing sent.
    let again = fanout.apply(&change).await.unwrap();
    assert_eq!((again.tickets, again.new_events), (got.tickets, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.emulators.zd.requests(UPDATE_MANY), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_tickets_get_the_value_once_each_within_the_budget() {
    let mut rig = rig(None).await;
    let account = salesforce_account_ids()[2].clone();
    let org = org_of(&rig, &account).await;
    let ids = load(&rig.emulators.zendesk_url, 2_000, org, "open").await;
    let fanout = Fanout::new(rig.engine.clone(), rig.clients.clone());
    let got = fanout
        .apply(&tier_change(&account, "Prem", "2026-12-06T11:00:00.000Z"))
        .await
        .expect("fanned out");
    assert!(got.tickets >= 2_000, "{got:?}");
    assert_eq!(got.new_events, got.tickets);
    rig.start_workers(3, 4);
    let n = got.tickets as u64;
    common::until("every action settled", Duration::from_secs(120), || {
        let s = rig.engine.store.stats().unwrap();
        s.done + s.dead == n
    })
    .await;
    let stats = rig.engine.store.stats().unwrap();
    assert_eq!((stats.done, stats.dead), (n, 0), "each action applied once");
    assert!(ids.iter().all(|t| tier_of(&rig, *t) == json!("premium")));
    let jobs = rig.emulators.zd.requests(UPDATE_MANY);
    assert!(
        (20..=40).contains(&jobs),
        "{jobs} bulk updates for 2,000 tickets"
    );
    assert_eq!(
        rig.emulators.zd.rate_limited(),
        0,
        "no window over the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_failing_inside_a_job_is_retried_alone() {
    let mut rig = rig(None).await;
    let account = salesforce_account_ids()[0].clone();
    let org = org_of(&rig, &account).await;
    let zd = rig.emulators.zendesk_url.clone();
    let ids = load(&zd, 5, org, "open").await;
    rig.emulators
        .zd
        .fail_next_update(ids[2], "Locked by a trigger");
    let fanout = Fanout::new(rig.engine.clone(), rig.clients.clone());
    fanout
        .apply(&tier_change(&account, "Std", "2026-12-06T12:00:00.000Z"))
        .await
        .unwrap();
    rig.start_workers(3, 4);
    common::until("every ticket is standard", Duration::from_secs(30), || {
        ids.iter().all(|t| tier_of(&rig, *t) == json!("standard"))
    })
    .await;
    // The last write's row is marked done a moment after the ticket shows it.
    common::until("every action settled", Duration::from_secs(10), || {
        let s = rig.engine.store.stats().unwrap();
        s.done + s.dead == 5
    })
    .await;
    let stats = rig.engine.store.stats().unwrap();
    assert_eq!((stats.done, stats.dead), (5, 0));
    // One job for the five, then the failed ticket again on its own path.
    assert_eq!(rig.emulators.zd.requests(UPDATE_MANY), 1);
}
