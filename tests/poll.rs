//! The polling sources of `l3map run` against the emulators, in process:
//! changes are picked up within a few polls, a restart resumes from the
//! stored cursor, a change seen twice is a duplicate, and Salesforce
//! records sharing a `SystemModstamp` (even more than a page of them) are
//! all read.

use crate::common;

use common::rig::{fintech, Emulators};
use l3map::connectors::salesforce::SalesforceClient;
use l3map::connectors::zendesk::{TicketChanges, ZendeskClient};
use l3map::runtime::apply::Client;
use l3map::runtime::engine::{Engine, Live};
use l3map::runtime::links::fanout::Fanout;
use l3map::runtime::metrics::Metrics;
use l3map::runtime::poll::{self, salesforce_cursor_key, zendesk_cursor_key};
use l3map::runtime::store::Store;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::watch;

const INTERVAL: Duration = Duration::from_millis(100);
const PATIENCE: Duration = Duration::from_secs(4);

/// The emulators seeded from mappings/fintech, their clients, and a store
/// path in a temp dir that each [`Rig::engine`] opens afresh.
struct Rig {
    emulators: Emulators,
    zendesk: ZendeskClient,
    salesforce: SalesforceClient,
    db: PathBuf,
    _dir: TempDir,
}

async fn rig(name: &str) -> Rig {
    // The fintech desk without its links: these tests are about the
    // poller's cursors, so every change is one event of its own. A linked
    // object's changes go through the fan-out instead (tests/fanout.rs).
    let mut program = fintech();
    program.links.clear();
    let emulators = Emulators::start(program, None).await;
    let mut clients = emulators.clients();
    let Some(Client::Zendesk(zendesk)) = clients.remove("desk") else {
        panic!("fintech has a Zendesk connection `desk`");
    };
    let Some(Client::Salesforce(salesforce)) = clients.remove("crm") else {
        panic!("fintech has a Salesforce connection `crm`");
    };
    let dir = common::temp_dir(&format!("poll-{name}"));
    Rig {
        emulators,
        zendesk: *zendesk,
        salesforce,
        db: dir.path().join("state.db"),
        _dir: dir,
    }
}

impl Rig {
    /// A fresh process's engine on the rig's store: what a restart gets.
    fn engine(&self) -> Arc<Engine> {
        let store = Store::open(&self.db).expect("the store opens");
        Arc::new(Engine::new(
            Live::new(self.emulators.program.clone()),
            Arc::new(store),
            Metrics::new(),
        ))
    }

    fn zendesk_poller(&self, engine: &Arc<Engine>) -> Poller {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(poll::zendesk(
            engine.clone(),
            self.zendesk.clone(),
            "desk".into(),
            INTERVAL,
            stopped,
        ));
        Poller { stop, task }
    }

    fn salesforce_poller(&self, engine: &Arc<Engine>, objects: &[&str]) -> Poller {
        let (stop, stopped) = watch::channel(false);
        let fanout = Arc::new(Fanout::new(engine.clone(), self.emulators.clients()));
        let task = tokio::spawn(poll::salesforce(
            engine.clone(),
            fanout,
            self.salesforce.clone(),
            "crm".into(),
            objects.iter().map(|o| o.to_string()).collect(),
            INTERVAL,
            stopped,
        ));
        Poller { stop, task }
    }

    /// Every event key in the store, a ticket's without the hash of its
    /// state (`zendesk:ticket:ID:UPDATED_AT:HASH`): these tests know the
    /// id and stamp of what they changed.
    fn keys(&self) -> BTreeSet<String> {
        let db = rusqlite::Connection::open(&self.db).expect("the store reads");
        let mut q = db.prepare("SELECT key FROM events").expect("a query");
        q.query_map([], |r| r.get::<_, String>(0))
            .expect("rows")
            .map(|k| k.expect("a key"))
            .map(|k| match k.strip_prefix("zendesk:ticket:") {
                Some(rest) if rest.matches(':').count() > 3 => {
                    k.rsplit_once(':').map_or(k.clone(), |(s, _)| s.to_string())
                }
                _ => k,
            })
            .collect()
    }

    async fn ticket(&self, subject: &str) -> u64 {
        let changes = TicketChanges::default()
            .subject(subject)
            .public_comment(format!("{subject}: please help"));
        self.zendesk
            .create_ticket(&changes, None)
            .await
            .expect("the ticket is created")
            .id
    }

    /// The event key of the ticket as it is now.
    async fn key_of(&self, id: u64) -> String {
        let t = self.zendesk.get_ticket(id).await.unwrap();
        ticket_key(id, &t.updated_at.unwrap())
    }

    async fn retouch(&self, id: u64, subject: &str) -> String {
        self.zendesk
            .update_ticket(id, &TicketChanges::default().subject(subject))
            .await
            .expect("the ticket is updated")
            .updated_at
            .expect("an updated_at")
    }
}

struct Poller {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    /// Stops it and checks it stops promptly.
    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(1), self.task)
            .await
            .expect("the poller stops within a second")
            .expect("the poller does not panic");
    }
}

async fn until(what: &str, ok: impl FnMut() -> bool) {
    common::until(what, PATIENCE, ok).await
}

async fn cursor_stored(engine: &Engine, key: &str) -> String {
    common::eventually(format!("cursor {key}"), PATIENCE, || async {
        engine
            .store
            .cursor(key)
            .expect("the store reads")
            .ok_or_else(|| "none stored".to_string())
    })
    .await
}

/// Zendesk stamps to the second and a ticket's event id is its id and
/// `updated_at`: a second change must land in a later second to be news.
async fn next_second() {
    let ms = jiff::Timestamp::now().as_millisecond().rem_euclid(1000);
    tokio::time::sleep(Duration::from_millis((1000 - ms) as u64 + 20)).await;
}

fn ticket_key(id: u64, updated_at: &str) -> String {
    format!("zendesk:ticket:{id}:{updated_at}")
}

fn duplicates(engine: &Engine, source: &str) -> u64 {
    engine
        .metrics
        .counter_value("l3map_events_duplicate_total", &[("source", source)])
}

fn new_events(engine: &Engine, source: &str) -> u64 {
    engine
        .metrics
        .counter_value("l3map_events_total", &[("source", source)])
}

// ------------------------------------------------------------------ Zendesk

#[tokio::test]
async fn a_zendesk_change_is_ingested_within_a_few_polls() {
    let rig = rig("zd-live").await;
    let engine = rig.engine();
    let poller = rig.zendesk_poller(&engine);
    cursor_stored(&engine, &zendesk_cursor_key("desk")).await;

    let created = rig
        .zendesk
        .create_ticket(
            &TicketChanges::default()
                .subject("Card declined abroad")
                .public_comment("My card keeps getting declined in Lisbon."),
            None,
        )
        .await
        .expect("created");
    let key = ticket_key(created.id, created.updated_at.as_deref().unwrap());
    until("the new ticket's event", || rig.keys().contains(&key)).await;

    // Its event is the ticket as the export showed it, read by the live
    // mappings' converter.
    let db = rusqlite::Connection::open(&rig.db).unwrap();
    let (source, event): (String, String) = db
        .query_row(
            "SELECT source, event FROM events WHERE key >= ?1 AND key < ?1 || ':~'",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(source, "zendesk_poll");
    let event: Json = serde_json::from_str(&event).unwrap();
    assert_eq!(event["ticket"]["id"], json!(created.id));
    assert_eq!(event["ticket"]["subject"], json!("Card declined abroad"));
    assert_eq!(event["ticket"]["status"], json!("new"));

    // An update in a later second is a new event for the same ticket.
    next_second().await;
    let updated = rig
        .retouch(created.id, "Card declined abroad (again)")
        .await;
    let key2 = ticket_key(created.id, &updated);
    until("the update's event", || rig.keys().contains(&key2)).await;
    assert!(rig.keys().contains(&key), "the first event stays");
    poller.stop().await;
}

#[tokio::test]
async fn a_restarted_zendesk_poller_resumes_from_its_cursor() {
    let rig = rig("zd-restart").await;
    let first = rig.engine();
    let poller = rig.zendesk_poller(&first);
    cursor_stored(&first, &zendesk_cursor_key("desk")).await;
    let a = rig.ticket("Before the restart").await;
    let a_key = rig.key_of(a).await;
    until("ticket A", || rig.keys().contains(&a_key)).await;
    poller.stop().await;
    drop(first);
    let before = rig.keys();

    // While it is down: A changes again, B is created.
    next_second().await;
    let a_again = ticket_key(a, &rig.retouch(a, "Changed while down").await);
    let b = rig.ticket("Created while down").await;
    let b_key = rig.key_of(b).await;

    let second = rig.engine();
    let poller = rig.zendesk_poller(&second);
    until("the changes made while down", || {
        let k = rig.keys();
        k.contains(&a_again) && k.contains(&b_key)
    })
    .await;
    // A few more polls change nothing.
    tokio::time::sleep(INTERVAL * 4).await;
    poller.stop().await;
    let after = rig.keys();
    let added: BTreeSet<&String> = after.difference(&before).collect();
    assert_eq!(added, BTreeSet::from([&a_again, &b_key]));
    assert_eq!(duplicates(&second, "zendesk_poll"), 0, "nothing replayed");
    assert_eq!(new_events(&second, "zendesk_poll"), 2);
}

#[tokio::test]
async fn a_zendesk_change_seen_twice_is_a_duplicate() {
    let rig = rig("zd-dup").await;
    let first = rig.engine();
    let key = zendesk_cursor_key("desk");
    // Where to replay from, set by hand as an operator would.
    let started = format!("start_time:{}", jiff::Timestamp::now().as_second());
    first.store.set_cursor(&key, &started).unwrap();
    let poller = rig.zendesk_poller(&first);
    let id = rig.ticket("Seen twice").await;
    let k = rig.key_of(id).await;
    until("the ticket's event", || rig.keys().contains(&k)).await;
    poller.stop().await;
    let polled = new_events(&first, "zendesk_poll");
    let events = first.store.stats().unwrap().events;
    assert_eq!(polled, events, "a stop lets the page being written finish");
    drop(first);

    // The cursor goes back to where the first poller started: the same
    // tickets, unchanged, come again.
    let second = rig.engine();
    second.store.set_cursor(&key, &started).unwrap();
    let poller = rig.zendesk_poller(&second);
    let what = format!("{polled} replayed tickets recognised");
    until(&what, || duplicates(&second, "zendesk_poll") >= polled).await;
    tokio::time::sleep(INTERVAL * 3).await;
    poller.stop().await;
    assert_eq!(duplicates(&second, "zendesk_poll"), polled);
    assert_eq!(new_events(&second, "zendesk_poll"), 0);
    assert_eq!(second.store.stats().unwrap().events, events);
    assert_ne!(
        second.store.cursor(&key).unwrap().unwrap(),
        started,
        "the cursor moved on"
    );
}

#[tokio::test]
async fn a_refused_cursor_is_counted_and_polling_goes_on() {
    let rig = rig("zd-error").await;
    let engine = rig.engine();
    let key = zendesk_cursor_key("desk");
    engine.store.set_cursor(&key, "not-a-cursor").unwrap();
    // As `l3map run` does: the client's every attempt is counted.
    let observed = std::collections::HashMap::from([(
        "desk".to_string(),
        Client::Zendesk(Box::new(rig.zendesk.clone())),
    )]);
    l3map::runtime::stack::observe(&observed, &engine.metrics);
    let poller = rig.zendesk_poller(&engine);
    let errors = || {
        engine.metrics.counter_value(
            "l3map_api_errors_total",
            &[("connection", "desk"), ("kind", "validation")],
        )
    };
    until("the refused cursor counted", || errors() >= 1).await;
    assert!(!poller.task.is_finished(), "the poller keeps going");
    // An operator points it at a time: it resumes from there.
    let now = jiff::Timestamp::now().as_second();
    engine
        .store
        .set_cursor(&key, &format!("start_time:{now}"))
        .unwrap();
    let id = rig.ticket("After the fix").await;
    let k = rig.key_of(id).await;
    until("the ticket after the fix", || rig.keys().contains(&k)).await;
    poller.stop().await;
}

// --------------------------------------------------------------- Salesforce

fn fields(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

fn record_key(object: &str, id: &str, stamp: &str) -> String {
    let at = stamp.replace("+0000", "Z");
    format!("salesforce:{object}:{id}:{at}")
}

/// A stamp as the emulator writes it, a little after now (so it is news
/// to a poller that already started).
fn stamp_soon() -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_millis(5))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

#[tokio::test]
async fn salesforce_changes_are_ingested_and_a_restart_resumes() {
    let rig = rig("sf").await;
    let first = rig.engine();
    let poller = rig.salesforce_poller(&first, &["Account", "Case"]);
    cursor_stored(&first, &salesforce_cursor_key("crm", "Account")).await;
    cursor_stored(&first, &salesforce_cursor_key("crm", "Case")).await;
    // Starting does not replay what was there before.
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(first.store.stats().unwrap().events, 0);

    let account = rig.emulators.sf.records("Account")[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    rig.salesforce
        .update("Account", &account, &fields(json!({"SLA_Tier__c": "Prem"})))
        .await
        .unwrap();
    let stamp = rig.emulators.sf.record("Account", &account).unwrap()["SystemModstamp"]
        .as_str()
        .unwrap()
        .to_string();
    let account_key = record_key("Account", &account, &stamp);
    until("the Account change", || rig.keys().contains(&account_key)).await;
    // The event carries the fields the mappings read.
    let db = rusqlite::Connection::open(&rig.db).unwrap();
    let event: String = db
        .query_row(
            "SELECT event FROM events WHERE key = ?1",
            [&account_key],
            |r| r.get(0),
        )
        .unwrap();
    let event: Json = serde_json::from_str(&event).unwrap();
    assert_eq!(event["records"]["Account"]["SLA_Tier__c"], json!("Prem"));
    assert!(event["records"]["Account"]
        .get("Contract_Value__c")
        .is_some());

    // Two records with one stamp: both read.
    let tie = stamp_soon();
    let mut tied = vec![];
    for name in ["Tie One", "Tie Two"] {
        let id = rig
            .emulators
            .sf
            .insert(
                "Account",
                fields(json!({"Name": name, "SystemModstamp": tie, "LastModifiedDate": tie})),
            )
            .unwrap();
        tied.push(record_key("Account", &id, &tie));
    }
    until("both tied records", || {
        let k = rig.keys();
        tied.iter().all(|t| k.contains(t))
    })
    .await;
    poller.stop().await;
    drop(first);
    let before = rig.keys();

    // While it is down, a Case changes.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let case = rig.emulators.sf.records("Case")[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    rig.salesforce
        .set_case_status(&case, "Escalated")
        .await
        .unwrap();
    let stamp = rig.emulators.sf.record("Case", &case).unwrap()["SystemModstamp"]
        .as_str()
        .unwrap()
        .to_string();
    let case_key = record_key("Case", &case, &stamp);

    let second = rig.engine();
    let poller = rig.salesforce_poller(&second, &["Account", "Case"]);
    until("the Case change made while down", || {
        rig.keys().contains(&case_key)
    })
    .await;
    tokio::time::sleep(INTERVAL * 4).await;
    poller.stop().await;
    let after = rig.keys();
    let added: BTreeSet<&String> = after.difference(&before).collect();
    assert_eq!(added, BTreeSet::from([&case_key]));
    assert_eq!(
        duplicates(&second, "salesforce_poll"),
        0,
        "nothing replayed"
    );
}

#[tokio::test]
async fn more_records_on_one_stamp_than_a_page_are_all_read() {
    let rig = rig("sf-ties").await;
    let engine = rig.engine();
    let poller = rig.salesforce_poller(&engine, &["Account"]);
    let key = salesforce_cursor_key("crm", "Account");
    cursor_stored(&engine, &key).await;
    let tie = stamp_soon();
    let n = poll::SALESFORCE_PAGE + 45;
    let mut want = BTreeSet::new();
    for i in 0..n {
        let id = rig
            .emulators
            .sf
            .insert(
                "Account",
                fields(json!({"Name": format!("Bulk {i}"), "SystemModstamp": tie, "LastModifiedDate": tie})),
            )
            .unwrap();
        want.insert(record_key("Account", &id, &tie));
    }
    until("every tied record", || rig.keys().is_superset(&want)).await;
    tokio::time::sleep(INTERVAL * 3).await;
    poller.stop().await;
    assert_eq!(rig.keys().len(), n, "each once, nothing else");
    assert_eq!(new_events(&engine, "salesforce_poll"), n as u64);
    assert_eq!(duplicates(&engine, "salesforce_poll"), 0);
    let at = tie.replace("+0000", "Z");
    assert_eq!(
        engine.store.cursor(&key).unwrap().as_deref(),
        Some(at.as_str())
    );
}
