//! What every backend must do, through the [`Store`] handle: each test
//! body runs on SQLite (`on_sqlite::`) and on PostgreSQL (`on_postgres::`,
//! a database of its own on the test cluster, `postgres::cluster`). Each
//! backend's own (schema, migrations, locks, leases) are in its
//! `tests.rs`.

use super::*;
use std::path::PathBuf;

pub(super) fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "l3map-store-{name}-{}-{}",
        std::process::id(),
        now_ms()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("state.db")
}

pub(super) fn action(key: &str, record: &str) -> NewAction {
    NewAction {
        key: key.into(),
        connection: "desk".into(),
        record: record.into(),
        kind: "set_field".into(),
        op: r#"{"op":"zendesk_field","id":1,"value":"x"}"#.into(),
        rule: "map crm -> desk".into(),
        source_loc: "fields.l3map:3:1".into(),
        revision: "r1".into(),
    }
}

pub(super) fn event(key: &str) -> NewEvent<'_> {
    NewEvent {
        key,
        source: "webhook",
        revision: "r1",
        event: "{}",
        refused: "[]",
        record: None,
        tallies: &[],
    }
}

/// How many of a new event's actions were queued and how many were
/// already there; `None` for a duplicate.
fn counts(a: &Accepted) -> Option<(usize, usize)> {
    match a {
        Accepted::New {
            queued, already, ..
        } => Some((*queued, *already)),
        Accepted::Duplicate => None,
    }
}

fn an_event_is_accepted_once_and_its_actions_queued_once(s: &Store) {
    let got = s
        .accept(&event("zd:1"), &[action("a", "7"), action("b", "7")], None)
        .unwrap();
    assert_eq!(counts(&got), Some((2, 0)));
    assert_eq!(
        s.accept(&event("zd:1"), &[action("a", "7")], None).unwrap(),
        Accepted::Duplicate
    );
    // Another event deciding the same hand-off: queued once.
    let got = s
        .accept(&event("zd:2"), &[action("b", "7"), action("c", "7")], None)
        .unwrap();
    assert_eq!(counts(&got), Some((1, 1)));
    let st = s.stats().unwrap();
    assert_eq!((st.events, st.pending), (2, 3));
    assert!(st.oldest_waiting_ms.is_some());
}

fn a_group_commit_decides_each_event_as_if_alone(s: &Store) {
    s.accept(&event("old"), &[action("k-old", "7")], None)
        .unwrap();
    let (a1, a2, a3) = (
        [action("k1", "7")],
        [action("k1", "7"), action("k2", "8")],
        [action("k3", "9")],
    );
    let got = s
        .accept_all(&[
            Submission {
                event: event("e1"),
                actions: &a1,
                cursor: Some(("zendesk_poll", "c1")),
            },
            // The same key again within the batch: a duplicate.
            Submission {
                event: event("e1"),
                actions: &a3,
                cursor: Some(("zendesk_poll", "c2")),
            },
            // A new event whose first action an earlier one queued.
            Submission {
                event: event("e2"),
                actions: &a2,
                cursor: None,
            },
            Submission {
                event: event("old"),
                actions: &a3,
                cursor: None,
            },
        ])
        .unwrap();
    assert_eq!(counts(&got[0]), Some((1, 0)));
    assert_eq!(got[1], Accepted::Duplicate);
    assert_eq!(counts(&got[2]), Some((1, 1)));
    assert_eq!(got[3], Accepted::Duplicate);
    let st = s.stats().unwrap();
    // old, e1, e2; k-old, k1, k2 (k3 belonged only to duplicates).
    assert_eq!((st.events, st.pending), (3, 3));
    assert_eq!(s.cursor("zendesk_poll").unwrap().as_deref(), Some("c2"));
}

fn the_cursor_moves_with_the_event_even_when_it_is_a_duplicate(s: &Store) {
    assert_eq!(s.cursor("zendesk_poll").unwrap(), None);
    s.accept(&event("e1"), &[], Some(("zendesk_poll", "c1")))
        .unwrap();
    s.accept(&event("e1"), &[], Some(("zendesk_poll", "c2")))
        .unwrap();
    assert_eq!(s.cursor("zendesk_poll").unwrap().as_deref(), Some("c2"));
}

/// Three events on two records: e1 (a1, a2) and e2 (b1) on record
/// Case/7, e3 (c1) on record Case/8 (records that are not Zendesk tickets:
/// one event at a time).
fn two_records(s: &Store) {
    s.accept(
        &event("e1"),
        &[action("a1", "Case/7"), action("a2", "Case/7")],
        None,
    )
    .unwrap();
    s.accept(&event("e2"), &[action("b1", "Case/7")], None)
        .unwrap();
    s.accept(&event("e3"), &[action("c1", "Case/8")], None)
        .unwrap();
}

fn comment(key: &str, record: &str) -> NewAction {
    NewAction {
        kind: "comment".into(),
        op: r#"{"op":"zendesk_comment","body":"n"}"#.into(),
        ..action(key, record)
    }
}

fn a_tickets_queued_events_are_claimed_as_one_group_with_at_most_one_comment(s: &Store) {
    s.accept(&event("e1"), &[action("a1", "7")], None).unwrap();
    s.accept(&event("e2"), &[comment("n2", "7"), action("b2", "7")], None)
        .unwrap();
    s.accept(&event("e3"), &[action("c3", "7")], None).unwrap();
    s.accept(&event("e4"), &[comment("n4", "7")], None).unwrap();
    s.accept(&event("e5"), &[action("e5", "7")], None).unwrap();
    let now = now_ms();
    let g = s.claim("desk", now, 10).unwrap();
    assert_eq!(g.len(), 1);
    let keys: Vec<&str> = g[0].items.iter().map(|c| c.key.as_str()).collect();
    // The second comment (e4) waits for the next update, and e5 behind it.
    assert_eq!(keys, vec!["a1", "n2", "b2", "c3"]);
    let events: Vec<i64> = g[0].items.iter().map(|c| c.event_id).collect();
    assert!(events.windows(2).all(|w| w[0] <= w[1]), "{events:?}");
    assert!(g[0].bases.is_empty(), "no Zendesk ticket events here");
    assert!(s.claim("desk", now, 10).unwrap().is_empty(), "in flight");
    let ids: Vec<i64> = g[0].items.iter().map(|c| c.id).collect();
    s.done(&ids).unwrap();
    let next = s.claim("desk", now, 10).unwrap();
    let keys: Vec<&str> = next[0].items.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, vec!["n4", "e5"]);
    assert_eq!(next[0].recent_updates.len(), 1, "the settled update");
    // A follower waiting for a retry is not taken before its time.
    let ids: Vec<i64> = next[0].items.iter().map(|c| c.id).collect();
    s.retry_later(&ids[1..], "429", now + 60_000, false, true)
        .unwrap();
    s.done(&ids[..1]).unwrap();
    s.accept(&event("e6"), &[action("f6", "7")], None).unwrap();
    assert!(s.claim("desk", now, 10).unwrap().is_empty());
    let later = s.claim("desk", now + 60_000, 10).unwrap();
    let keys: Vec<&str> = later[0].items.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, vec!["e5", "f6"]);
}

fn a_record_is_claimed_one_event_at_a_time_in_order(s: &Store) {
    two_records(s);
    let now = now_ms();
    let g = s.claim("desk", now, 10).unwrap();
    let keys: Vec<Vec<&str>> = g
        .iter()
        .map(|g| g.items.iter().map(|c| c.key.as_str()).collect())
        .collect();
    assert_eq!(keys, vec![vec!["a1", "a2"], vec!["c1"]]);
    assert!(g.iter().all(|g| !g.unconfirmed && g.items[0].attempts == 1));
    // Both records are in flight: nothing more to claim.
    assert!(s.claim("desk", now, 10).unwrap().is_empty());
    // e1 waits for a retry: e2 (same record) waits behind it.
    let ids: Vec<i64> = g[0].items.iter().map(|c| c.id).collect();
    s.retry_later(&ids, "HTTP 503", now + 60_000, false, false)
        .unwrap();
    assert!(s.claim("desk", now, 10).unwrap().is_empty());
    let later = s.claim("desk", now + 60_000, 10).unwrap();
    assert_eq!(later[0].items[0].key, "a1");
    assert_eq!(later[0].items[0].attempts, 2);
    s.done(&ids).unwrap();
    let next = s.claim("desk", now, 10).unwrap();
    assert_eq!(next[0].items[0].key, "b1");
    // Another connection's queue is separate.
    assert!(s.claim("crm", now, 10).unwrap().is_empty());
}

#[test]
fn a_crash_while_sending_leaves_the_action_unconfirmed() {
    let path = temp("crash");
    {
        let s = Store::open(&path).unwrap();
        s.accept(&event("e1"), &[action("a", "7")], None).unwrap();
        let g = s.claim("desk", now_ms(), 10).unwrap();
        assert_eq!(g.len(), 1);
        // Dropped without done(): the process died mid-request.
    }
    let s = Store::open(&path).unwrap();
    // Another process opening the store (`l3map outbox list`) takes
    // nothing back; the runtime's start does.
    assert!(s.claim("desk", now_ms(), 10).unwrap().is_empty());
    assert_eq!(s.recover_in_flight().unwrap(), 1);
    let g = s.claim("desk", now_ms(), 10).unwrap();
    assert_eq!(g.len(), 1);
    assert!(g[0].unconfirmed);
    assert_eq!(g[0].items[0].attempts, 2);
}

fn dead_letters_are_listed_requeued_and_dropped(s: &Store) {
    s.accept(&event("e1"), &[action("a", "7"), action("b", "8")], None)
        .unwrap();
    let g = s.claim("desk", now_ms(), 10).unwrap();
    for grp in &g {
        let ids: Vec<i64> = grp.items.iter().map(|c| c.id).collect();
        s.park(
            &ids,
            "Zendesk: rejected (HTTP 422): Status invalid",
            "validation",
            false,
        )
        .unwrap();
    }
    let dead = s.list(Some(State::Dead), 10).unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].event_key, "e1");
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("Zendesk: rejected (HTTP 422): Status invalid")
    );
    assert_eq!(dead[0].op["op"], "zendesk_field");
    assert_eq!(s.requeue_dead(&[dead[0].id]).unwrap(), 1);
    assert_eq!(s.stats().unwrap().dead, 1);
    let again = s.claim("desk", now_ms(), 10).unwrap();
    assert!(again[0].unconfirmed, "a requeued letter is read back first");
    assert_eq!(again[0].items[0].attempts, 1);
    assert_eq!(s.drop_dead(&[]).unwrap(), 1);
    assert_eq!(s.stats().unwrap().dead, 0);
    // Only dead letters can be dropped.
    assert_eq!(s.drop_dead(&[again[0].items[0].id]).unwrap(), 0);
}

fn outage_retries_do_not_count_and_start_the_outage_clock_once(s: &Store) {
    s.accept(&event("e1"), &[action("a", "7")], None).unwrap();
    let now = now_ms();
    let ids = |g: &[Group]| g[0].items.iter().map(|c| c.id).collect::<Vec<_>>();
    let g = s.claim("desk", now, 10).unwrap();
    assert_eq!(g[0].items[0].failing_since, None);
    s.retry_later(&ids(&g), "could not connect", 0, false, true)
        .unwrap();
    let g = s.claim("desk", now, 10).unwrap();
    let first = g[0].items[0].failing_since.expect("the outage clock runs");
    assert_eq!((g[0].items[0].attempts, g[0].items[0].counted), (2, 1));
    s.retry_later(&ids(&g), "HTTP 503", 0, true, true).unwrap();
    let g = s.claim("desk", now, 10).unwrap();
    assert_eq!(g[0].items[0].failing_since, Some(first), "kept, not reset");
    assert!(g[0].unconfirmed);
    // An auth error counts.
    s.retry_later(&ids(&g), "HTTP 401", 0, false, false)
        .unwrap();
    let g = s.claim("desk", now, 10).unwrap();
    assert_eq!((g[0].items[0].attempts, g[0].items[0].counted), (4, 2));
}

fn an_outage_letter_holds_its_record_and_comes_back_on_recovery(s: &Store) {
    two_records(s);
    let now = now_ms();
    let g = s.claim("desk", now, 10).unwrap();
    let (seven, eight): (Vec<i64>, Vec<i64>) = (
        g[0].items.iter().map(|c| c.id).collect(),
        g[1].items.iter().map(|c| c.id).collect(),
    );
    s.park(&seven, "down past the window", "outage", true)
        .unwrap();
    s.park(&eight, "HTTP 422", "validation", false).unwrap();
    // e2 waits behind the outage letters of its record.
    assert!(s.claim("desk", now, 10).unwrap().is_empty());
    // A probe puts the oldest outage group back, unconfirmed.
    assert_eq!(s.probe_outage("desk").unwrap().len(), 2);
    let probe = s.claim("desk", now, 10).unwrap();
    assert_eq!(probe.len(), 1);
    assert!(probe[0].unconfirmed);
    assert_eq!(probe[0].items[0].key, "a1");
    s.park(&seven, "still down", "outage", true).unwrap();
    assert!(s.probe_outage("crm").unwrap().is_empty());
    // Recovery: the outage letters go back; the 422 stays for a human.
    assert_eq!(s.requeue_outage("desk").unwrap().len(), 2);
    assert!(s.requeue_outage("desk").unwrap().is_empty());
    assert_eq!(s.stats().unwrap().dead, 1);
    let back = s.claim("desk", now, 10).unwrap();
    assert_eq!(back[0].items[0].key, "a1");
    assert!(back[0].unconfirmed);
    assert_eq!(back[0].items[0].failing_since, None, "a fresh window");
}

fn retention_keeps_what_is_still_needed(s: &Store) {
    let mut handoff = action("h0123-1.2.0-t7", "7");
    handoff.kind = "comment".into();
    s.accept(&event("old-done"), &[action("x1", "1")], None)
        .unwrap();
    s.accept(&event("old-handoff"), &[handoff], None).unwrap();
    s.accept(&event("old-dead"), &[action("x3", "3")], None)
        .unwrap();
    s.accept(&event("old-bare"), &[], None).unwrap();
    for g in s.claim("desk", now_ms(), 10).unwrap() {
        let ids: Vec<i64> = g.items.iter().map(|c| c.id).collect();
        if g.record == "3" {
            s.park(&ids, "HTTP 422", "validation", false).unwrap();
        } else {
            s.done(&ids).unwrap();
        }
    }
    let r = Retention {
        events: Some(Duration::from_secs(60)),
        done_actions: Some(Duration::from_secs(60)),
    };
    // Nothing is old yet.
    assert_eq!(s.sweep(&r, now_ms()).unwrap(), (0, 0));
    let later = now_ms() + 120_000;
    // The plain done action and its event go, and the bare event; the
    // hand-off, the dead letter and their events stay.
    assert_eq!(s.sweep(&r, later).unwrap(), (2, 1));
    assert!(s.event("old-done").unwrap().is_none());
    assert!(s.event("old-bare").unwrap().is_none());
    assert!(s.event("old-handoff").unwrap().is_some());
    assert!(s.event("old-dead").unwrap().is_some());
    let st = s.stats().unwrap();
    assert_eq!((st.events, st.done, st.dead), (2, 1, 1));
    assert_eq!(s.sweep(&r, later).unwrap(), (0, 0));
    // Keeping for good deletes nothing.
    let keep = Retention {
        events: None,
        done_actions: None,
    };
    assert_eq!(s.sweep(&keep, later + 10_000_000).unwrap(), (0, 0));
}

/// A store on a new database of the test cluster; `None` (said loudly)
/// without PostgreSQL, unless CI requires it.
pub(super) fn pg(name: &str) -> Option<Store> {
    let url = postgres::cluster::database(name)?;
    Some(
        Store::open_postgres(&postgres::PgTarget {
            url,
            password: None,
            pool: 4,
            lease: Duration::from_secs(30),
        })
        .expect("the test database opens"),
    )
}

/// Each body as a test on each backend.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Store::open(&super::temp(stringify!($name))).unwrap())
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(s) = super::pg(stringify!($name)) {
                        super::$name(&s)
                    }
                }
            )*
        }
    };
}

on_both!(
    an_event_is_accepted_once_and_its_actions_queued_once,
    a_group_commit_decides_each_event_as_if_alone,
    the_cursor_moves_with_the_event_even_when_it_is_a_duplicate,
    a_tickets_queued_events_are_claimed_as_one_group_with_at_most_one_comment,
    a_record_is_claimed_one_event_at_a_time_in_order,
    dead_letters_are_listed_requeued_and_dropped,
    outage_retries_do_not_count_and_start_the_outage_clock_once,
    an_outage_letter_holds_its_record_and_comes_back_on_recovery,
    retention_keeps_what_is_still_needed,
);
