//! What only a shared store has to do: migrations checked at start, and
//! several replicas (stores on one database) claiming, settling and
//! deduplicating without stepping on each other. What every backend does
//! is in `store/tests.rs`, run here too.

use super::*;
use crate::runtime::store::tests::{action, event};
use crate::runtime::store::{Accepted, Store};

fn target(url: &str, lease: Duration) -> PgTarget {
    PgTarget {
        url: url.into(),
        password: None,
        pool: 4,
        lease,
    }
}

fn two(name: &str, lease: Duration) -> Option<(Store, Store)> {
    let url = cluster::database(name)?;
    let a = Store::open_postgres(&target(&url, lease)).unwrap();
    let b = Store::open_postgres(&target(&url, lease)).unwrap();
    Some((a, b))
}

#[test]
fn a_newer_schema_is_refused_and_migrating_twice_changes_nothing() {
    let Some(url) = cluster::database("schema") else {
        return;
    };
    let t = target(&url, Duration::from_secs(30));
    let s = PgStore::open(&t).unwrap();
    let pool = s.pool.clone();
    let again = s
        .block(async move { migrate(&pool, "test").await })
        .unwrap();
    assert_eq!(
        (again.from, again.to),
        (migrate::latest(), migrate::latest())
    );
    assert!(again.applied.is_empty());
    let pool = s.pool.clone();
    s.block(async move {
        let c = pool.get().await.map_err(PgError::from)?;
        c.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (999, 'from_the_future', '2030-01-01', '0')",
            &[],
        )
        .await
        .map_err(PgError::from)?;
        Ok(())
    })
    .unwrap();
    let err = PgStore::open(&t).unwrap_err().to_string();
    assert!(
        err.contains("version 999") && err.contains("newer l3map"),
        "{err}"
    );
    assert!(!err.contains("password"), "{err}");
}

#[test]
fn an_unreachable_database_is_one_line_naming_it_without_the_password() {
    let t = PgTarget {
        url: "host=127.0.0.1 port=1 user=l3map dbname=nowhere connect_timeout=2".into(),
        password: Some(crate::connectors::Secret::new("hunter2-secret")),
        pool: 1,
        lease: Duration::from_secs(30),
    };
    let err = PgStore::open(&t).unwrap_err().to_string();
    assert!(
        err.contains("postgres://l3map@127.0.0.1:1/nowhere"),
        "{err}"
    );
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn an_event_reaching_two_replicas_at_once_is_accepted_once() {
    let Some((a, b)) = two("dedupe", Duration::from_secs(30)) else {
        return;
    };
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let mut news = 0;
    for i in 0..50 {
        let key = format!("zd:{i}");
        let handles: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|s| {
                let key = key.clone();
                std::thread::spawn(move || {
                    s.accept(&event(&key), &[action(&format!("k{key}"), "7")], None)
                        .unwrap()
                })
            })
            .collect();
        for h in handles {
            if matches!(h.join().unwrap(), Accepted::New { .. }) {
                news += 1;
            }
        }
    }
    assert_eq!(news, 50);
    assert_eq!(a.stats().unwrap().pending, 50);
}

/// Two replicas claiming one queue as fast as they can: no row is ever
/// claimed twice, and each record's rows are claimed in their order.
#[test]
fn two_replicas_claiming_at_once_never_share_a_row_and_keep_each_records_order() {
    let Some((a, b)) = two("claims", Duration::from_secs(30)) else {
        return;
    };
    for e in 0..60 {
        let record = format!("Case/{}", e % 6);
        a.accept(
            &event(&format!("e{e}")),
            &[action(&format!("k{e}"), &record)],
            None,
        )
        .unwrap();
    }
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let seen = std::sync::Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
    let workers: Vec<_> = [a, b]
        .into_iter()
        .flat_map(|s| [s.clone(), s])
        .map(|s| {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut idle = 0;
                while idle < 20 {
                    let groups = s.claim("desk", crate::runtime::store::now_ms(), 3).unwrap();
                    if groups.is_empty() {
                        idle += 1;
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    idle = 0;
                    for g in groups {
                        let ids: Vec<i64> = g.items.iter().map(|c| c.id).collect();
                        seen.lock()
                            .unwrap()
                            .extend(ids.iter().map(|id| (g.record.clone(), *id)));
                        s.done(&ids).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let mut ids: Vec<i64> = seen.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 60, "every row once");
    assert_eq!(seen.len(), 60, "no row twice");
    for r in 0..6 {
        let order: Vec<i64> = seen
            .iter()
            .filter(|(rec, _)| *rec == format!("Case/{r}"))
            .map(|(_, id)| *id)
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "Case/{r}: {order:?}");
    }
}

/// A replica that stalls past its lease loses its claim: another claims
/// the row again (unconfirmed: it may have been sent), and the stalled
/// one's late answer changes nothing.
#[test]
fn a_stalled_replicas_claim_is_taken_over_and_its_late_answer_fenced() {
    let Some((a, b)) = two("lease", Duration::from_millis(300)) else {
        return;
    };
    a.accept(&event("e1"), &[action("k1", "7")], None).unwrap();
    // No heartbeat for `a` (recover_in_flight starts it): it is stalled.
    let mine = a
        .claim("desk", crate::runtime::store::now_ms(), 10)
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert!(
        b.claim("desk", crate::runtime::store::now_ms(), 10)
            .unwrap()
            .is_empty(),
        "leased"
    );
    std::thread::sleep(Duration::from_millis(500));
    let theirs = b
        .claim("desk", crate::runtime::store::now_ms(), 10)
        .unwrap();
    assert_eq!(theirs.len(), 1, "taken over after the lease");
    assert!(theirs[0].unconfirmed);
    assert_eq!(theirs[0].items[0].attempts, 2);
    let id = theirs[0].items[0].id;
    // The stalled replica wakes up and says "retry later": fenced.
    a.retry_later(&[id], "late", 0, false, true).unwrap();
    assert_eq!(a.stats().unwrap().sending, 1, "still b's");
    b.done(&[id]).unwrap();
    assert_eq!(b.stats().unwrap().done, 1);
}

/// With a heartbeat, a claim held longer than its lease is kept.
#[test]
fn a_live_replicas_heartbeat_keeps_its_claims() {
    let Some((a, b)) = two("heartbeat", Duration::from_millis(600)) else {
        return;
    };
    assert_eq!(a.recover_in_flight().unwrap(), 0);
    a.accept(&event("e1"), &[action("k1", "7")], None).unwrap();
    assert_eq!(
        a.claim("desk", crate::runtime::store::now_ms(), 10)
            .unwrap()
            .len(),
        1
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        b.claim("desk", crate::runtime::store::now_ms(), 10)
            .unwrap()
            .is_empty(),
        "the heartbeat kept the lease"
    );
}

/// A singleton's lease goes to one replica at a time; its successor takes
/// it when it runs out, with a new epoch, and the old holder can no longer
/// move the cursor of that name.
#[test]
fn a_singletons_cursor_is_moved_only_by_its_lease_holder() {
    let Some((a, b)) = two("singleton", Duration::from_secs(30)) else {
        return;
    };
    let ttl = Duration::from_millis(300);
    let first = a
        .lease("zendesk_poll:desk", ttl)
        .unwrap()
        .expect("a holds it");
    assert_eq!(b.lease("zendesk_poll:desk", ttl).unwrap(), None);
    assert_eq!(
        a.lease("zendesk_poll:desk", ttl).unwrap(),
        Some(first),
        "renewed, same epoch"
    );
    a.accept(&event("e1"), &[], Some(("zendesk_poll:desk", "c1")))
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let second = b
        .lease("zendesk_poll:desk", ttl)
        .unwrap()
        .expect("taken over");
    assert!(second > first);
    b.set_cursor("zendesk_poll:desk", "c2").unwrap();
    // `a` wakes up and writes what it read before it stalled: ignored.
    a.accept(&event("e2"), &[], Some(("zendesk_poll:desk", "c-stale")))
        .unwrap();
    a.set_cursor("zendesk_poll:desk", "c-stale").unwrap();
    assert_eq!(
        b.cursor("zendesk_poll:desk").unwrap().as_deref(),
        Some("c2")
    );
    assert!(
        b.event("e2").unwrap().is_some(),
        "its event is kept all the same"
    );
    // A drain hands the lease over at once.
    b.release_all().unwrap();
    assert!(a.lease("zendesk_poll:desk", ttl).unwrap().is_some());
}

/// Two replicas asking one shared bucket as fast as they can: no window
/// holds more than the limit between them; a hold stops both.
#[test]
fn two_replicas_share_one_rate_budget() {
    let Some((a, b)) = two("budget", Duration::from_secs(30)) else {
        return;
    };
    let window = Duration::from_millis(2000);
    let limit = 20;
    let sent = std::sync::Arc::new(Mutex::new(Vec::<std::time::Instant>::new()));
    let start = std::time::Instant::now();
    let threads: Vec<_> = [a, b]
        .into_iter()
        .map(|s| {
            let sent = sent.clone();
            std::thread::spawn(move || {
                let budget = s.shared_budget().expect("PostgreSQL shares budgets");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    while start.elapsed() < Duration::from_secs(5) {
                        match budget.take("zendesk:token", limit, window).await {
                            Ok(w) if w.is_zero() => {
                                sent.lock().unwrap().push(std::time::Instant::now())
                            }
                            Ok(w) => tokio::time::sleep(w).await,
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
                s
            })
        })
        .collect();
    let stores: Vec<Store> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut sent = sent.lock().unwrap().clone();
    sent.sort();
    // Used: the bucket's log keeps each send a trip (1 s) past the 2 s
    // window, so 5 s hold two windows' worth (40), less what the last
    // partial one had not yet freed.
    assert!(sent.len() >= 30, "the budget was used: {}", sent.len());
    // Seen by the callers, after each answer's trip back: one more than
    // the bucket allows may fall in a window by that jitter (the bound
    // itself, on the bucket's clock, is shared_budget.rs's test).
    for (i, t) in sent.iter().enumerate() {
        let n = sent[i..].iter().take_while(|s| **s < *t + window).count();
        assert!(n <= limit as usize + 1, "{n} requests in one window");
    }
    // Without sharing, two replicas would have sent twice the limit.
    let per_window = sent.len() as f64 / (5.0 / window.as_secs_f64());
    assert!(
        per_window <= f64::from(limit) + 2.0,
        "{per_window} per window"
    );
    // A 429 seen by one replica holds the other too.
    let (one, other) = (
        stores[0].shared_budget().unwrap(),
        stores[1].shared_budget().unwrap(),
    );
    one.hold("zendesk:token", Duration::from_millis(1500), limit, window);
    std::thread::sleep(Duration::from_millis(200));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wait = rt
        .block_on(other.take("zendesk:token", limit, window))
        .unwrap();
    assert!(wait >= Duration::from_millis(1000), "held: {wait:?}");
}

/// What a command must not do to a database: give l3map's tables to one
/// that is not a store (a mistyped name), run on an edited migration, or
/// migrate when it only reads (`status`, `outbox`: `l3map migrate` or
/// `l3map run` do).
#[test]
fn a_foreign_an_edited_or_an_older_schema_is_refused_by_what_only_reads() {
    let Some(url) = cluster::database("refusals") else {
        return;
    };
    let t = target(&url, Duration::from_secs(30));
    let err = PgStore::open_existing(&t).unwrap_err().to_string();
    assert!(err.contains("run `l3map migrate` first"), "{err}");
    let check = PgStore::migrate_target(&t, true).unwrap();
    assert_eq!((check.to, migrate::latest() > 0), (0, true));
    // An application's database.
    let foreign = cluster::database("foreign").unwrap();
    let ft = target(&foreign, Duration::from_secs(30));
    let s = PgStore::open(&t).unwrap();
    let f = foreign.clone();
    s.block(async move {
        let (c, conn) = tokio_postgres::connect(&f, tokio_postgres::NoTls)
            .await
            .map_err(PgError::from)?;
        tokio::spawn(conn);
        c.batch_execute("CREATE TABLE customers (id INT)")
            .await
            .map_err(PgError::from)?;
        Ok(())
    })
    .unwrap();
    for e in [
        PgStore::open(&ft).unwrap_err().to_string(),
        PgStore::migrate_target(&ft, true).unwrap_err().to_string(),
        PgStore::migrate_target(&ft, false).unwrap_err().to_string(),
    ] {
        assert!(e.contains("not an l3map store"), "{e}");
    }
    // An applied migration edited.
    let pool = s.pool.clone();
    s.block(async move {
        let c = pool.get().await.map_err(PgError::from)?;
        c.execute(
            "UPDATE refinery_schema_history SET checksum = '1' WHERE version = 1",
            &[],
        )
        .await
        .map_err(PgError::from)?;
        Ok(())
    })
    .unwrap();
    for e in [
        PgStore::open(&t).unwrap_err().to_string(),
        PgStore::migrate_target(&t, true).unwrap_err().to_string(),
    ] {
        assert!(e.contains("differs from this l3map's"), "{e}");
    }
}

fn bundle(revision: &str) -> crate::runtime::store::Bundle {
    crate::runtime::store::Bundle {
        revision: revision.into(),
        files: vec![("m/a.l3map".into(), format!("// {revision}\n"))],
        lock: None,
    }
}

#[test]
fn a_switch_refuses_events_decided_by_the_revision_it_left() {
    use crate::runtime::store::{NewEvent, Publish, StoreError};
    let Some((a, b)) = two("revisions", Duration::from_secs(30)) else {
        return;
    };
    assert_eq!(a.active_revision().unwrap(), None);
    // No active revision yet: any event is taken.
    a.accept(&event("before"), &[], None).unwrap();
    assert_eq!(
        a.publish(&bundle("r1"), Publish::IfNew, "").unwrap(),
        Some("r1".into())
    );
    // New files rolled out switch the fleet; files it moved on from do not.
    assert_eq!(
        b.publish(&bundle("r2"), Publish::IfNew, "").unwrap(),
        Some("r2".into())
    );
    assert_eq!(
        a.publish(&bundle("r1"), Publish::IfNew, "").unwrap(),
        Some("r2".into())
    );
    let by = |key, revision| NewEvent {
        key,
        source: "webhook",
        revision,
        event: "{}",
        refused: "[]",
        record: None,
        tallies: &[],
    };
    match a.accept(&by("old", "r1"), &[action("k-old", "7")], None) {
        Err(StoreError::RevisionMoved { active }) => assert_eq!(active, "r2"),
        other => panic!("an event decided by r1 after the switch: {other:?}"),
    }
    assert_eq!(a.event("old").unwrap(), None, "nothing of it written");
    assert!(a.write_failure().is_none(), "a refusal is no write failure");
    a.accept(&by("new", "r2"), &[action("k-new", "7")], None)
        .unwrap();
    // An operator's publish switches back; the sources stay fetchable.
    assert_eq!(
        b.publish(&bundle("r1"), Publish::Switch, "l3map publish")
            .unwrap(),
        Some("r1".into())
    );
    assert_eq!(a.active_revision().unwrap(), Some("r1".into()));
    assert_eq!(a.bundle("r2").unwrap(), Some(bundle("r2")));
    assert_eq!(a.bundle("r9").unwrap(), None);
    let st = a.fleet_status().unwrap();
    let active = st.active_revision.expect("an active revision");
    assert_eq!(
        (active.revision.as_str(), active.published_by.as_str()),
        ("r1", "l3map publish")
    );
}

/// A switch waits for the event transactions that read the old revision
/// and they for it: with events and switches racing, no event is ever
/// recorded with a revision that was not active when it committed.
#[test]
fn events_and_switches_racing_never_record_a_left_revision() {
    use crate::runtime::store::{NewEvent, Publish, StoreError};
    let Some(url) = cluster::database("revision-race") else {
        return;
    };
    let t = target(&url, Duration::from_secs(30));
    let (a, b) = (
        Store::open_postgres(&t).unwrap(),
        Store::open_postgres(&t).unwrap(),
    );
    let raw = PgStore::open(&t).unwrap();
    a.publish(&bundle("r0"), Publish::IfNew, "").unwrap();
    let a = std::sync::Arc::new(a);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let a = a.clone();
            std::thread::spawn(move || {
                let mut revision = "r0".to_string();
                let mut stored = 0;
                for i in 0..150 {
                    let key = format!("w{w}-{i}");
                    let ev = NewEvent {
                        key: &key,
                        source: "webhook",
                        revision: &revision,
                        event: "{}",
                        refused: "[]",
                        record: None,
                        tallies: &[],
                    };
                    match a.accept(&ev, &[], None) {
                        Ok(_) => stored += 1,
                        Err(StoreError::RevisionMoved { active }) => revision = active,
                        Err(e) => panic!("{e}"),
                    }
                }
                stored
            })
        })
        .collect();
    for n in 1..=20 {
        b.publish(&bundle(&format!("r{n}")), Publish::Switch, "")
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let stored: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(stored > 0);
    // Every event's revision was active from before its id was taken to
    // after its commit: ids (taken in the transaction) never go back to
    // an earlier revision.
    let pool = raw.pool.clone();
    let rows: Vec<(i64, String)> = raw
        .block(async move {
            let c = pool.get().await.map_err(PgError::from)?;
            Ok(c.query("SELECT id, revision FROM events ORDER BY id", &[])
                .await
                .map_err(PgError::from)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
        .unwrap();
    let number = |r: &str| r[1..].parse::<u32>().unwrap();
    for w in rows.windows(2) {
        assert!(
            number(&w[0].1) <= number(&w[1].1),
            "{w:?}: an event decided by a left revision committed after the switch"
        );
    }
}

/// Salesforce's concurrent long-request cap is one pool for the fleet: a
/// replica cannot take a permit the others hold, gets one given back, and
/// gets the permits of a replica that stopped beating.
#[test]
fn the_permit_pool_is_one_for_the_fleet() {
    let Some(url) = cluster::database("permits") else {
        return;
    };
    let t = target(&url, Duration::from_secs(3));
    let (a, b) = (PgStore::open(&t).unwrap(), PgStore::open(&t).unwrap());
    // Both are replicas (rows in `replicas`, beating).
    a.start_heartbeat().unwrap();
    b.start_heartbeat().unwrap();
    let (pa, pb) = (
        crate::runtime::store::api::Leases::shared_budget(&a).unwrap(),
        crate::runtime::store::api::Leases::shared_budget(&b).unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lease = Duration::from_secs(60);
    rt.block_on(async {
        let one = pa
            .permit("sf-app", 2, lease)
            .await
            .unwrap()
            .expect("a permit");
        let two = pa
            .permit("sf-app", 2, lease)
            .await
            .unwrap()
            .expect("a permit");
        assert_eq!(pb.permit("sf-app", 2, lease).await.unwrap(), None, "full");
        // Another key has a pool of its own.
        assert!(pb.permit("other-app", 2, lease).await.unwrap().is_some());
        pa.give_back(one);
        let mut got = None;
        for _ in 0..50 {
            got = pb.permit("sf-app", 2, lease).await.unwrap();
            if got.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(got.is_some(), "a permit given back is taken");
        assert_eq!(pb.permit("sf-app", 2, lease).await.unwrap(), None);
        // A replica that stopped beating (killed) holds the last permit:
        // it goes back once its heartbeat is older than the lease.
        pa.give_back(two);
        let c = a.pool.get().await.unwrap();
        c.execute(
            "INSERT INTO replicas (id, host, pid, started_ms, heartbeat_ms)
             VALUES ('ghost', 'gone', 1, 0, l3map_now_ms() - 60000)",
            &[],
        )
        .await
        .unwrap();
        let mut ghost = None;
        for _ in 0..50 {
            let took: Option<i64> = c
                .query_one(
                    "SELECT l3map_permit_take('sf-app', 2, 60000, 'ghost', 3000)",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if took.is_some() {
                ghost = took;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ghost.is_some(), "the ghost took the pool's last permit");
        assert!(
            pb.permit("sf-app", 2, lease).await.unwrap().is_some(),
            "a dead replica's permit is taken back"
        );
    });
}

/// Singletons spread across the live replicas: the first replica takes
/// every lease while it is alone, gives back what is over its share when a
/// second one joins, and the second takes those; neither takes a lease
/// the other holds.
#[test]
fn singletons_spread_across_the_replicas() {
    use crate::runtime::store::api::Leases;
    let Some(url) = cluster::database("spread") else {
        return;
    };
    let t = target(&url, Duration::from_secs(30));
    let (a, b) = (PgStore::open(&t).unwrap(), PgStore::open(&t).unwrap());
    let ttl = Duration::from_secs(60);
    let names = [
        "zendesk_poll:desk",
        "salesforce_poll:crm:Case",
        "cdc:x",
        "retention",
    ];
    a.start_heartbeat().unwrap();
    for n in names {
        assert!(a.lease(n, ttl).unwrap().is_some(), "{n}: alone, a takes it");
    }
    b.start_heartbeat().unwrap();
    // a's renewals give back what is over half.
    let kept: Vec<&str> = names
        .into_iter()
        .filter(|n| a.lease(n, ttl).unwrap().is_some())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let taken: Vec<&str> = names
        .into_iter()
        .filter(|n| b.lease(n, ttl).unwrap().is_some())
        .collect();
    assert_eq!(taken.len(), 2, "{taken:?}");
    assert!(
        kept.iter().all(|n| !taken.contains(n)),
        "{kept:?} {taken:?}"
    );
    // Steady: renewals change nothing.
    for n in &kept {
        assert!(a.lease(n, ttl).unwrap().is_some());
        assert!(b.lease(n, ttl).unwrap().is_none());
    }
    for n in &taken {
        assert!(b.lease(n, ttl).unwrap().is_some());
    }
}

/// A replica that cannot load the fleet's revision (a rollout of a
/// `connection` change, half done) gives its singletons back; the one
/// replica that can decide takes every one of them, not its share of a
/// fleet that counted the others (the red team's fleet stopped polling).
#[test]
fn the_replicas_that_can_decide_take_every_singleton() {
    use crate::runtime::store::api::{Leases, Revisions};
    use crate::runtime::store::Publish;
    let Some(url) = cluster::database("deciding_share") else {
        return;
    };
    let t = target(&url, Duration::from_secs(30));
    let stores: Vec<PgStore> = (0..3).map(|_| PgStore::open(&t).unwrap()).collect();
    for s in &stores {
        s.start_heartbeat().unwrap();
    }
    stores[0]
        .publish(&bundle("new"), Publish::IfNew, "")
        .unwrap();
    stores[0].report("new", None).unwrap();
    for s in &stores[1..] {
        s.report("old", Some("cannot load the fleet's mapping revision new"))
            .unwrap();
    }
    let ttl = Duration::from_secs(60);
    let names = [
        "zendesk_poll:desk",
        "salesforce_poll:crm:Case",
        "salesforce_poll:crm:Account",
        "cdc:x",
        "retention",
    ];
    for n in names {
        assert!(stores[0].lease(n, ttl).unwrap().is_some(), "{n}");
    }
    // Renewals keep them all while the others cannot decide.
    for n in names {
        assert!(stores[0].lease(n, ttl).unwrap().is_some(), "{n}");
    }
    // Once another decides by the fleet's revision, they spread again.
    stores[1].report("new", None).unwrap();
    let kept = names
        .into_iter()
        .filter(|n| stores[0].lease(n, ttl).unwrap().is_some())
        .count();
    assert_eq!(kept, 3, "a share of five over two replicas");
}

/// The shared bucket's sliding window holds across a limit learned
/// mid-window: what went at the plan's pace before a replica learned the
/// account's lower limit counts against it (the red team's 105 requests
/// in a minute against 100, replicas started together).
#[test]
fn a_limit_learned_mid_window_counts_what_already_went() {
    let Some((a, _b)) = two("budget_window", Duration::from_secs(30)) else {
        return;
    };
    let budget = a.shared_budget().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let window = Duration::from_secs(4);
    rt.block_on(async {
        // At the plan's 100 a window, ten go at once (its burst).
        let mut went = 0;
        for _ in 0..10 {
            if budget.take("zd", 100, window).await.unwrap().is_zero() {
                went += 1;
            }
        }
        assert_eq!(went, 10);
        // The account's answer says 10 a window: the window is full until
        // those ten leave it, whatever GCRA's pace says.
        let wait = budget.take("zd", 10, window).await.unwrap();
        assert!(wait >= Duration::from_millis(3000), "{wait:?}");
        tokio::time::sleep(wait).await;
        assert!(budget.take("zd", 10, window).await.unwrap().is_zero());
    });
}
