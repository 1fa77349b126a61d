//! The fan-out against a desk of fixed records (a stand-in for Zendesk's
//! API, not for any l3map code): which tickets a change reaches, event
//! ids, replays, l3map's own changes, paging, equal values.

use super::desk::{Desk, Page, Same, Scope};
use super::*;
use crate::connectors::error::ApiError;
use crate::connectors::zendesk::Ticket;
use crate::ir::{Loc, Pick};
use crate::runtime::engine::Live;
use crate::runtime::metrics::Metrics;
use crate::runtime::store::Store;
use serde_json::{json, Map, Value as Json};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Organizations by external id, tickets with their organization; pages
/// of `page` tickets, counted.
struct FixedDesk {
    orgs: Vec<(u64, String)>,
    tickets: Vec<(Ticket, u64)>,
    page: usize,
    pages: AtomicUsize,
    /// Organization lookups answer this error (a stand-in for Zendesk's).
    refuse: Option<ApiError>,
}

fn ticket(id: u64, status: &str, tier: Option<&str>) -> Ticket {
    let mut fields = vec![];
    if let Some(t) = tier {
        fields.push(json!({"id": 360001234u64, "value": t}));
    }
    serde_json::from_value(json!({"id": id, "status": status, "custom_fields": fields}))
        .expect("a ticket")
}

impl Desk for FixedDesk {
    async fn organizations(
        &self,
        key: &ZdKey,
        value: &str,
        same: Same,
    ) -> Result<Vec<u64>, ApiError> {
        assert_eq!(key, &ZdKey::ExternalId);
        if let Some(e) = &self.refuse {
            return Err(e.clone());
        }
        Ok(self
            .orgs
            .iter()
            .filter(|(_, x)| same.holds(x, value))
            .map(|(id, _)| *id)
            .collect())
    }
    async fn users(&self, _: &ZdKey, _: &str, _: Same) -> Result<Vec<u64>, ApiError> {
        Ok(vec![])
    }
    async fn ticket(&self, id: u64) -> Result<Option<Ticket>, ApiError> {
        Ok(self
            .tickets
            .iter()
            .find(|(t, _)| t.id == id)
            .map(|(t, _)| t.clone()))
    }
    async fn tickets_page(&self, scope: &Scope, cursor: Option<&str>) -> Result<Page, ApiError> {
        self.pages.fetch_add(1, Ordering::SeqCst);
        let from: usize = cursor.map_or(0, |c| c.parse().unwrap());
        let all: Vec<&Ticket> = self
            .tickets
            .iter()
            .filter(|(t, org)| {
                Some(*org) == scope.organization && scope.statuses.contains(&t.status)
            })
            .map(|(t, _)| t)
            .collect();
        let to = (from + self.page).min(all.len());
        Ok(Page {
            tickets: all[from..to].iter().map(|t| (*t).clone()).collect(),
            next: (to < all.len()).then(|| to.to_string()),
        })
    }
}

fn unsolved() -> Vec<String> {
    ["new", "open", "pending", "hold"]
        .map(String::from)
        .to_vec()
}

fn org_link() -> Link {
    Link {
        desk: "desk".into(),
        zendesk: ZdObject::Organization,
        zendesk_key: ZdKey::ExternalId,
        crm: "crm".into(),
        object: "Account".into(),
        field: "Id".into(),
        pick: Pick::One,
        tickets: unsolved(),
        loc: Loc {
            file: 0,
            line: 1,
            col: 1,
            start: 0,
            end: 0,
        },
    }
}

fn engine(name: &str, links: Vec<Link>) -> Arc<Engine> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut program = crate::runtime::compile::compile(&root.join("mappings/fintech"))
        .expect("mappings/fintech compiles");
    program.links = links;
    let path = std::env::temp_dir().join(format!(
        "l3map-fanout-{name}-{}-{}.db",
        std::process::id(),
        fastrand::u32(..)
    ));
    Arc::new(Engine::new(
        Live::new(program),
        Arc::new(Store::open(&path).expect("a store")),
        Metrics::new(),
    ))
}

fn change(id: &str, tier: &str, origin: Option<&str>) -> CrmChange {
    let mut fields = Map::new();
    fields.insert("SLA_Tier__c".into(), Json::String(tier.into()));
    CrmChange {
        connection: "crm".into(),
        object: "Account".into(),
        ids: vec![id.into()],
        change_type: ChangeType::Update,
        fields,
        changed: vec!["SLA_Tier__c".into()],
        key: format!("Account:{id}:2026-12-06T10:00:00.000Z"),
        at: "2026-12-06T10:00:00Z".into(),
        origin: origin.map(String::from),
    }
}

fn desk(tickets: Vec<(Ticket, u64)>, page: usize) -> FixedDesk {
    FixedDesk {
        orgs: vec![(7, "001A000001".into()), (8, "001A000002".into())],
        tickets,
        page,
        pages: AtomicUsize::new(0),
        refuse: None,
    }
}

fn stored_keys(engine: &Engine) -> Vec<String> {
    let db = rusqlite::Connection::open(engine.store.path()).unwrap();
    let mut q = db.prepare("SELECT key FROM events ORDER BY key").unwrap();
    q.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|k| k.unwrap())
        .collect()
}

#[tokio::test]
async fn a_tier_change_reaches_the_unsolved_tickets_of_the_linked_organization_once() {
    let engine = engine("reach", vec![org_link()]);
    let desk = desk(
        vec![
            (ticket(1, "open", None), 7),
            (ticket(2, "pending", None), 7),
            (ticket(3, "new", None), 7),
            (ticket(4, "solved", None), 7),
            (ticket(5, "open", None), 8),
        ],
        100,
    );
    let c = change("001A000001", "Ent", None);
    let got = fan_out(&engine, &desk, None, &org_link(), &c)
        .await
        .unwrap();
    assert_eq!((got.tickets, got.new_events), (3, 3));
    let keys = stored_keys(&engine);
    let want: Vec<String> = [1, 2, 3]
        .iter()
        .map(|t| format!("sf:crm:Account:001A000001:2026-12-06T10:00:00.000Z:t{t}"))
        .collect();
    assert_eq!(keys, want);
    // Each ticket's event carries the Account with its Id and the change.
    let ev = engine.store.event(&want[0]).unwrap().unwrap();
    let ev: Json = serde_json::from_str(&ev).unwrap();
    assert_eq!(ev["records"]["Account"]["Id"], json!("001A000001"));
    assert_eq!(ev["records"]["Account"]["SLA_Tier__c"], json!("Ent"));
    assert_eq!(ev["changed"], json!(["Account.SLA_Tier__c"]));
    assert_eq!(ev["ticket"]["id"], json!(1));
    assert_eq!(engine.store.stats().unwrap().pending, 3, "one write each");

    // Delivered again (a replay, a poll re-reading): nothing new.
    let again = fan_out(&engine, &desk, None, &org_link(), &c)
        .await
        .unwrap();
    assert_eq!((again.tickets, again.new_events), (3, 0));
    assert_eq!(engine.store.stats().unwrap().pending, 3);
}

#[tokio::test]
/// The page may predate a write still in the outbox (two quick changes of
/// one Account), so the value is written even where the page shows it.
async fn a_ticket_showing_the_value_is_written_anyway() {
    let engine = engine("equal", vec![org_link()]);
    let desk = desk(
        vec![
            (ticket(1, "open", Some("enterprise")), 7),
            (ticket(2, "open", Some("standard")), 7),
        ],
        100,
    );
    let got = fan_out(
        &engine,
        &desk,
        None,
        &org_link(),
        &change("001A000001", "Ent", None),
    )
    .await
    .unwrap();
    assert_eq!(got.new_events, 2);
    assert_eq!(
        engine.store.stats().unwrap().pending,
        2,
        "both tickets are written: the page is not trusted for equality"
    );
}

#[tokio::test]
async fn thousands_of_tickets_are_read_a_page_at_a_time() {
    let engine = engine("many", vec![org_link()]);
    let n = 2_500;
    let desk = desk(
        (1..=n).map(|i| (ticket(i, "open", None), 7)).collect(),
        1_000,
    );
    let got = fan_out(
        &engine,
        &desk,
        None,
        &org_link(),
        &change("001A000001", "Prem", None),
    )
    .await
    .unwrap();
    assert_eq!((got.tickets, got.new_events), (n as usize, n as usize));
    assert_eq!(desk.pages.load(Ordering::SeqCst), 3);
    assert_eq!(engine.store.stats().unwrap().events, n);
}

#[tokio::test]
async fn own_changes_and_unlinked_objects_reach_nothing() {
    let engine = engine("own", vec![org_link()]);
    let fanout = Fanout::new(engine.clone(), HashMap::new());
    let own = change(
        "001A000001",
        "Ent",
        Some("com/salesforce/api/rest/60.0;client=l3map"),
    );
    let got = fanout.apply(&own).await.unwrap();
    assert!(got.own);
    let mut contact = change("003A000001", "Ent", None);
    contact.object = "Contact".into();
    assert_eq!(fanout.apply(&contact).await.unwrap(), Applied::default());
    // A linked object with no Zendesk connection to read is an error,
    // so the source keeps the change and tries again.
    assert!(matches!(
        fanout.apply(&change("001A000001", "Ent", None)).await,
        Err(FanoutError::Unavailable(_))
    ));
    assert_eq!(engine.store.stats().unwrap().events, 0);
}

#[tokio::test]
async fn a_case_naming_its_ticket_reaches_that_ticket_in_scope() {
    let link = Link {
        zendesk: ZdObject::Ticket,
        zendesk_key: ZdKey::Id,
        object: "Case".into(),
        field: "Zendesk_Ticket_Id__c".into(),
        ..org_link()
    };
    let engine = engine("case", vec![link.clone()]);
    let desk = desk(
        vec![
            (ticket(41, "open", None), 7),
            (ticket(42, "closed", None), 7),
        ],
        100,
    );
    let mut c = change("500A000001", "x", None);
    c.object = "Case".into();
    c.key = "Case:500A000001:2026-12-06T10:00:00.000Z".into();
    for (tid, reached) in [("41", 1), ("42", 0), ("", 0)] {
        c.fields
            .insert("Zendesk_Ticket_Id__c".into(), Json::String(tid.into()));
        let got = fan_out(&engine, &desk, None, &link, &c).await.unwrap();
        assert_eq!(got.tickets, reached, "ticket {tid:?}");
    }
}

#[test]
fn origins_and_sources_are_told_apart() {
    assert!(is_own(Some("com/salesforce/api/rest/60.0;client=l3map")));
    assert!(is_own(Some("client=l3map")));
    assert!(!is_own(Some("com/salesforce/api/rest/60.0;client=l3mapx")));
    assert!(!is_own(Some(
        "com/salesforce/api/soap/60.0;client=SfdcInternalAPI"
    )));
    assert!(!is_own(None));
    let poll = change("001A000001", "Ent", None);
    assert_eq!(source_of(&poll), "salesforce_poll");
    let mut cdc = poll.clone();
    cdc.key = "0002a7e5-9b1c-4b3e-8f3a-1c2d3e4f5a6b:1".into();
    assert_eq!(source_of(&cdc), CDC_SOURCE);
}

/// A lookup Zendesk refuses for good (400/422) passes the change over as
/// refused; one that may pass (429, 5xx) fails it, to be tried again.
#[tokio::test]
async fn a_lookup_refused_for_good_passes_the_change_over() {
    use crate::connectors::error::System;
    let engine = engine("refused", vec![org_link()]);
    let mut d = desk(vec![(ticket(1, "open", None), 7)], 100);
    d.refuse = Some(ApiError::Validation {
        system: System::Zendesk,
        status: 400,
        message: "bad query".into(),
        fields: vec![],
    });
    let c = change("001A000001", "Ent", None);
    let got = fan_out(&engine, &d, None, &org_link(), &c).await.unwrap();
    assert_eq!(got.tickets, 0);
    let why = got.refused.expect("recorded as refused");
    assert!(
        why.contains("001A000001") && why.contains("bad query"),
        "{why}"
    );
    d.refuse = Some(ApiError::RateLimited {
        system: System::Zendesk,
        retry_after: None,
        message: "slow down".into(),
    });
    assert!(fan_out(&engine, &d, None, &org_link(), &c).await.is_err());
    d.refuse = Some(ApiError::Transient {
        system: System::Zendesk,
        status: Some(503),
        message: "down".into(),
        sent: true,
    });
    assert!(fan_out(&engine, &d, None, &org_link(), &c).await.is_err());
}

/// An organization holding the Account Id as 15 characters, or as 18 in
/// another case, is reached; a 15-character id differing in case is
/// another record and is not.
#[tokio::test]
async fn every_spelling_of_the_account_id_is_reached() {
    let id18 = "0015e0000000001AAA";
    let engine = engine("spellings", vec![org_link()]);
    let mut d = desk(
        vec![
            (ticket(1, "open", None), 7),
            (ticket(2, "open", None), 8),
            (ticket(3, "open", None), 9),
            (ticket(4, "open", None), 10),
        ],
        100,
    );
    d.orgs = vec![
        (7, id18.into()),
        (8, "0015e0000000001".into()),
        (9, "0015e0000000001aaa".into()),
        (10, "0015E0000000001".into()),
    ];
    let got = fan_out(&engine, &d, None, &org_link(), &change(id18, "Ent", None))
        .await
        .unwrap();
    assert_eq!(got.tickets, 3, "{got:?}");
    assert_eq!(
        lookups(&org_link(), id18),
        (
            Same::RecordId,
            vec![id18.to_string(), "0015e0000000001".into()]
        )
    );
    // Not an Id link: the value is looked up as it is.
    let mut by_name = org_link();
    by_name.field = "Name".into();
    assert_eq!(
        lookups(&by_name, id18),
        (Same::Exactly, vec![id18.to_string()])
    );
    assert!(Same::RecordId.holds("0015e0000000001aaa", id18));
    assert!(!Same::RecordId.holds("0015E0000000001", id18));
    assert!(!Same::Exactly.holds("0015e0000000001", id18));
}
