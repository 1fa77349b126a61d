//! Issue 16's acceptance through the real binaries: `l3map emulate`
//! (Zendesk, Salesforce and its Pub/Sub gRPC port) and `l3map run` with
//! `[cdc] enabled = true` and Salesforce polling off. An Account's tier
//! changed in Salesforce as a person would reaches the unsolved tickets of
//! its linked organization through the change stream in one update_many;
//! a `kill -9` mid-stream decides every change once; gaps, overflows and
//! stream cuts heal; a field mapped both ways (ticket <-> Case) keeps a
//! person's edit on either side and ends quiet after one write each way;
//! 2,000 tickets fan out with nothing lost, nothing twice, no window over
//! the limit.

use crate::common;

use common::stack::{Stack, SLA_TIER};
use l3map::emulator::zendesk::salesforce_account_ids;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The first seeded organization; the n-th Account's is this + n.
const FIRST_ORG: u64 = 360200001;
const UPDATE_MANY: &str = "update_many";

/// Starts the stack with CDC on (Zendesk polling out of the way).
async fn cdc_stack(name: &str, files: &[(&str, &str)], extra: &str) -> Stack {
    cdc_stack_limited(name, files, extra, 100_000).await
}

async fn cdc_stack_limited(name: &str, files: &[(&str, &str)], extra: &str, rate: u32) -> Stack {
    let mut s = Stack::start_limited(name, QUIET_START, false, files, rate).await;
    s.restart_with_cdc(QUIET_START, 3600, extra, "AccountChangeEvent")
        .await;
    s
}

const QUIET_START: &str = "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 3600\n";

/// Waits for the Account channel's stream to be open.
async fn stream_up(s: &Stack) {
    s.stream_up("AccountChangeEvent").await;
}

/// A change to an Account made as a person in the Salesforce UI would.
async fn person_change(s: &Stack, account: &str, fields: Value) {
    let r = s
        .http
        .patch(format!(
            "{}/__l3map/person/sobjects/Account/{account}",
            s.salesforce
        ))
        .json(&fields)
        .send()
        .await
        .expect("the admin call answers");
    assert!(r.status().is_success(), "person change: {}", r.status());
}

async fn sf_admin(s: &Stack, path: &str, body: Value) -> Value {
    let r = s
        .http
        .post(format!("{}/__l3map/pubsub/{path}", s.salesforce))
        .json(&body)
        .send()
        .await
        .expect("the admin call answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

/// `n` tickets of `org` in `status`, made by the Zendesk emulator's admin call.
async fn load(s: &Stack, n: u64, org: u64, status: &str) -> Vec<u64> {
    let v = s
        .zendesk(
            reqwest::Method::POST,
            "/__l3map/tickets",
            Some(json!({"count": n, "ticket": {"organization_id": org, "status": status}})),
        )
        .await;
    v["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// The Zendesk emulator's counters once the runtime has settled: new
/// tickets are read by the poller and take their linked Account's values
/// (a ticket event resolves its links), which costs writes of their own;
/// a test counting one change's writes starts after those.
async fn settled_stats(s: &Stack) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut last = s.zendesk_stats().await;
    loop {
        s.drained(Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = s.zendesk_stats().await;
        if now["by_path"] == last["by_path"] || std::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Requests by `METHOD /path` whose key contains `part`.
fn by_path(stats: &Value, part: &str) -> u64 {
    stats["by_path"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.contains(part))
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Every ticket of `org` (search export, a page of up to 1,000 at a time).
async fn org_tickets(s: &Stack, org: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!(
        "/api/v2/search/export.json?query=organization:{org}&filter%5Btype%5D=ticket&page%5Bsize%5D=1000"
    );
    loop {
        let v = s.zendesk(reqwest::Method::GET, &path, None).await;
        out.extend(v["results"].as_array().cloned().unwrap_or_default());
        match v["links"]["next"].as_str() {
            Some(next) if v["meta"]["has_more"] == json!(true) => {
                path = next.strip_prefix(&s.zendesk).unwrap_or(next).to_string()
            }
            _ => return out,
        }
    }
}

/// The SLA tier of every ticket of `org`.
async fn org_tiers(s: &Stack, org: u64) -> HashMap<u64, Value> {
    org_tickets(s, org)
        .await
        .iter()
        .map(|t| {
            let tier = t["custom_fields"]
                .as_array()
                .and_then(|f| f.iter().find(|f| f["id"] == json!(SLA_TIER)))
                .map_or(Value::Null, |f| f["value"].clone());
            (t["id"].as_u64().unwrap(), tier)
        })
        .collect()
}

async fn tiers(s: &Stack, org: u64, ids: &[u64]) -> HashMap<u64, Value> {
    let all = org_tiers(s, org).await;
    ids.iter()
        .map(|i| (*i, all.get(i).cloned().unwrap_or(Value::Null)))
        .collect()
}

async fn all_tier(s: &Stack, org: u64, ids: &[u64], tier: &str, within: Duration) -> Duration {
    let started = Instant::now();
    common::eventually(
        format!("{} tickets at {tier}", ids.len()),
        within,
        || async {
            let t = tiers(s, org, ids).await;
            let off: Vec<_> = ids
                .iter()
                .filter(|i| t.get(i) != Some(&json!(tier)))
                .collect();
            if off.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} not yet: {:?}",
                    off.len(),
                    &off[..off.len().min(5)]
                ))
            }
        },
    )
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_change_reaches_the_open_tickets_through_the_stream_in_one_bulk_write() {
    let s = cdc_stack("crm-desk-tier", &[], "").await;
    let account = salesforce_account_ids()[1].clone();
    let org = FIRST_ORG + 1;
    let open = load(&s, 3, org, "open").await;
    let solved = load(&s, 1, org, "solved").await;
    let before = settled_stats(&s).await;

    person_change(&s, &account, json!({"SLA_Tier__c": "Ent"})).await;
    let took = all_tier(&s, org, &open, "enterprise", Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    s.drained(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let after = s.zendesk_stats().await;
    assert_eq!(
        tiers(&s, org, &solved).await[&solved[0]],
        Value::Null,
        "the solved ticket is left alone"
    );
    assert_eq!(
        by_path(&after, UPDATE_MANY) - by_path(&before, UPDATE_MANY),
        1,
        "one batched write: {}",
        after["by_path"]
    );
    for t in &open {
        assert_eq!(by_path(&after, &format!("PUT /api/v2/tickets/{t}")), 0);
    }
    assert!(
        s.metric_sum("l3map_cdc_events_total", &["outcome=\"applied\""])
            .await
            >= 1.0,
        "{}",
        s.metrics().await
    );
}

/// The unsolved tickets of `org` (what the link's `tickets unsolved` governs).
async fn unsolved(s: &Stack, org: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = org_tickets(s, org)
        .await
        .iter()
        .filter(|t| !matches!(t["status"].as_str(), Some("solved" | "closed")))
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// The store's Salesforce change events: (change key, ticket) pairs, one
/// row each (the key column is unique, so a row is one decision).
fn cdc_events(s: &Stack) -> Vec<(String, u64)> {
    let db = rusqlite::Connection::open_with_flags(
        s.state(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store opens");
    let mut st = db
        .prepare("SELECT key FROM events WHERE source = 'salesforce_cdc' ORDER BY id")
        .unwrap();
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    rows.iter()
        .map(|k| {
            let (change, t) = k.rsplit_once(":t").expect("sf:crm:KEY:tTICKET");
            (change.to_string(), t.parse().unwrap())
        })
        .collect()
}

fn cursor(s: &Stack, source: &str) -> Option<String> {
    let db = rusqlite::Connection::open_with_flags(
        s.state(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    db.query_row(
        "SELECT value FROM cursors WHERE source = ?1",
        [source],
        |r| r.get(0),
    )
    .ok()
}

async fn pubsub_status(s: &Stack) -> Value {
    s.http
        .get(format!("{}/__l3map/pubsub", s.salesforce))
        .send()
        .await
        .expect("pubsub status")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_stream_decides_every_change_once_after_the_restart() {
    let mut s = cdc_stack("crm-desk-kill", &[], "").await;
    let accounts = salesforce_account_ids();
    let mut governed = Vec::new();
    for i in 0..3u64 {
        load(&s, 3, FIRST_ORG + i, "open").await;
        governed.push(unsolved(&s, FIRST_ORG + i).await);
    }
    // Seeded: Ent, Prem, Std. Six changes, each a new value, fired at once.
    let first = [
        ("Std", 0),
        ("Ent", 1),
        ("Prem", 2),
        ("Prem", 0),
        ("Std", 1),
        ("Ent", 2),
    ];
    for (tier, i) in first {
        person_change(&s, &accounts[i], json!({"SLA_Tier__c": tier})).await;
    }
    // Killed as soon as the first change is passed on (its replay id
    // stored: the counter moves a moment before the store does, and a kill
    // in between resumes by a SystemModstamp catch-up, not this replay):
    // the rest in flight.
    common::eventually("a replay id stored", Duration::from_secs(10), || async {
        match cursor(&s, "salesforce_cdc:crm:/data/AccountChangeEvent") {
            Some(c) if !c.starts_with('|') => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    s.kill_runtime();
    let at_kill = cdc_events(&s).len();
    eprintln!("events recorded at the kill: {at_kill}");
    // Three more while it is down.
    // Final values none of the earlier changes gave.
    let down = [("Ent", 0), ("Prem", 1), ("Std", 2)];
    for (tier, i) in down {
        person_change(&s, &accounts[i], json!({"SLA_Tier__c": tier})).await;
    }
    s.start_runtime().await;
    stream_up(&s).await;
    let finals = ["enterprise", "premium", "standard"];
    for i in 0..3 {
        all_tier(
            &s,
            FIRST_ORG + i as u64,
            &governed[i],
            finals[i],
            Duration::from_secs(15),
        )
        .await;
    }
    // The finals are the seeded tiers (so a ticket can show them before
    // anything was replayed): wait for the nine changes themselves, which
    // a loaded machine replays after the tiers already look right.
    common::eventually("nine changes recorded", Duration::from_secs(20), || async {
        let changes: std::collections::HashSet<String> =
            cdc_events(&s).into_iter().map(|(c, _)| c).collect();
        if changes.len() >= 9 {
            Ok(())
        } else {
            Err(format!("{} changes so far", changes.len()))
        }
    })
    .await;
    s.drained(Duration::from_secs(10)).await;

    // Every change reached every ticket its Account governs, once.
    let events = cdc_events(&s);
    let mut by_change: HashMap<String, Vec<u64>> = HashMap::new();
    for (change, t) in &events {
        by_change.entry(change.clone()).or_default().push(*t);
    }
    assert_eq!(
        by_change.len(),
        9,
        "nine changes, at kill {at_kill}: {by_change:?}"
    );
    let mut counts: Vec<usize> = by_change.values().map(Vec::len).collect();
    counts.sort_unstable();
    let mut want: Vec<usize> = governed.iter().flat_map(|g| [g.len(); 3]).collect();
    want.sort_unstable();
    assert_eq!(counts, want, "each change once per governed ticket");
    for tickets in by_change.values() {
        let mut t = tickets.clone();
        t.sort_unstable();
        assert!(governed.contains(&t), "{t:?} is one organization's tickets");
    }
    // The stored replay id is the bus's last: the replay resumed from it.
    let last = pubsub_status(&s).await["last_replay"].as_u64().unwrap();
    let c = cursor(&s, "salesforce_cdc:crm:/data/AccountChangeEvent").expect("a cursor");
    assert!(c.starts_with(&format!("{last:016x}|")), "{c} vs {last}");
    // Nothing twice in the outbox: one action per event at most.
    assert!(
        s.health().await["outbox"]["dead"] == 0,
        "{}",
        s.health().await
    );
}

/// A REST write to an Account as l3map makes it (`Sforce-Call-Options:
/// client=l3map`): its change event is l3map's own and skipped, so the
/// value reaches tickets only when a gap or a catch-up reads it.
async fn own_write(s: &Stack, account: &str, fields: Value) {
    let token = s.sf_token().await;
    let r = s
        .http
        .patch(format!(
            "{}/services/data/v60.0/sobjects/Account/{account}",
            s.salesforce
        ))
        .bearer_auth(token)
        .header("Sforce-Call-Options", "client=l3map")
        .json(&fields)
        .send()
        .await
        .expect("patch");
    assert!(r.status().is_success(), "{}", r.status());
}

async fn metric_at_least(s: &Stack, name: &str, has: &[&str], n: f64) {
    common::eventually(
        format!("{name} {has:?} >= {n}"),
        Duration::from_secs(10),
        || async {
            let v = s.metric_sum(name, has).await;
            if v >= n {
                Ok(())
            } else {
                Err(format!("{v}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_read_again_and_an_overflow_caught_up() {
    let s = cdc_stack("crm-desk-gap", &[], "").await;
    let accounts = salesforce_account_ids();
    let (a0, a2) = (FIRST_ORG, FIRST_ORG + 2);
    let t0 = load(&s, 3, a0, "open").await;
    let t2 = load(&s, 3, a2, "open").await;
    // A change passed on first, so the channel has a commit time stored.
    person_change(&s, &accounts[1], json!({"SLA_Tier__c": "Std"})).await;
    metric_at_least(
        &s,
        "l3map_cdc_events_total",
        &["Account", "outcome=\"applied\""],
        1.0,
    )
    .await;

    // Account 2 changes without a usable event (own write, skipped); a
    // GAP_UPDATE names it: read again, its tickets get the value.
    own_write(&s, &accounts[2], json!({"SLA_Tier__c": "Ent"})).await;
    metric_at_least(
        &s,
        "l3map_cdc_events_total",
        &["Account", "outcome=\"own\""],
        1.0,
    )
    .await;
    sf_admin(
        &s,
        "gap",
        json!({"object": "Account", "ids": [accounts[2]], "change_type": "GAP_UPDATE"}),
    )
    .await;
    all_tier(&s, a2, &t2, "enterprise", Duration::from_secs(5)).await;
    metric_at_least(&s, "l3map_cdc_gaps_total", &["Account"], 1.0).await;

    // Account 0 likewise; a GAP_OVERFLOW names nothing: the catch-up poll
    // from the stored commit time finds it.
    own_write(&s, &accounts[0], json!({"SLA_Tier__c": "Prem"})).await;
    metric_at_least(
        &s,
        "l3map_cdc_events_total",
        &["Account", "outcome=\"own\""],
        2.0,
    )
    .await;
    sf_admin(&s, "overflow", json!({"object": "Account"})).await;
    all_tier(&s, a0, &t0, "premium", Duration::from_secs(5)).await;
    metric_at_least(&s, "l3map_cdc_overflows_total", &["Account"], 1.0).await;
    metric_at_least(&s, "l3map_cdc_catch_up_polls_total", &["Account"], 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_reconnects_and_later_changes_arrive() {
    let s = cdc_stack("crm-desk-cut", &[], "").await;
    let accounts = salesforce_account_ids();
    let org = FIRST_ORG + 2;
    let tickets = load(&s, 3, org, "open").await;
    let cut = sf_admin(
        &s,
        "cut",
        json!({"code": "UNAVAILABLE",
               "error_code": "sfdc.platform.eventbus.grpc.service.unavailable",
               "message": "the test cut the stream"}),
    )
    .await;
    assert!(cut["streams"].as_u64().unwrap_or(0) >= 1, "{cut}");
    metric_at_least(
        &s,
        "l3map_cdc_reconnects_total",
        &["AccountChangeEvent"],
        1.0,
    )
    .await;
    stream_up(&s).await;
    person_change(&s, &accounts[2], json!({"SLA_Tier__c": "Prem"})).await;
    all_tier(&s, org, &tickets, "premium", Duration::from_secs(5)).await;
    assert!(
        s.log()
            .contains("sfdc.platform.eventbus.grpc.service.unavailable"),
        "the trailer's error code is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_tickets_fan_out_once_each_within_the_budget() {
    // Zendesk's Team plan: 200 requests a minute per token.
    let s = cdc_stack_limited("crm-desk-2000", &[], "", 200).await;
    let account = salesforce_account_ids()[0].clone();
    let org = FIRST_ORG;
    load(&s, 2_000, org, "open").await;
    let governed = unsolved(&s, org).await;
    assert!(governed.len() >= 2_000);
    // The seeded tickets' own start (their events resolve their links and
    // may write a tier) settles first: what follows counts this change.
    settled_stats(&s).await;
    let done_before = s.health().await["outbox"]["done"].as_u64().unwrap_or(0);
    let started = Instant::now();
    person_change(&s, &account, json!({"SLA_Tier__c": "Prem"})).await;
    // The runtime's own view, so the test spends none of the token's budget.
    common::eventually("2,000 actions settled", Duration::from_secs(90), || async {
        let h = s.health().await;
        let o = &h["outbox"];
        let settled = o["done"].as_u64().unwrap_or(0) + o["dead"].as_u64().unwrap_or(0);
        if settled >= done_before + governed.len() as u64 && o["pending"] == 0 && o["sending"] == 0
        {
            Ok(())
        } else {
            Err(h.to_string())
        }
    })
    .await;
    let took = started.elapsed();
    let h = s.health().await;
    assert_eq!(h["outbox"]["dead"], 0, "{h}");
    assert_eq!(
        h["outbox"]["done"].as_u64().unwrap_or(0) - done_before,
        governed.len() as u64,
        "one action a ticket: {h}"
    );
    let events = cdc_events(&s);
    assert_eq!(events.len(), governed.len(), "one event a ticket");
    let mut seen: Vec<u64> = events.iter().map(|(_, t)| *t).collect();
    seen.sort_unstable();
    assert_eq!(seen, governed, "every governed ticket, none twice");
    all_tier(&s, org, &governed, "premium", Duration::from_secs(5)).await;
    let stats = s.zendesk_stats().await;
    let jobs = by_path(&stats, UPDATE_MANY);
    assert!(
        (20..=40).contains(&jobs),
        "{jobs} bulk updates: {}",
        stats["by_path"]
    );
    assert_eq!(stats["rate_limited"], 0, "{stats}");
    for w in stats["windows"].as_array().unwrap() {
        assert_eq!(w["windows_over"], 0, "no window over the limit: {w}");
    }
    eprintln!(
        "2,000 tickets in {took:?}: {} requests, {jobs} jobs",
        stats["requests"]
    );
}

/// Writes on both sides: Zendesk ticket writes, Salesforce record changes
/// (every one publishes a change event), and CDC events by outcome.
async fn activity(s: &Stack) -> (u64, u64, f64, f64) {
    let stats = s.zendesk_stats().await;
    let zd_writes = by_path(&stats, "PUT /api/v2/tickets");
    let sf_changes = pubsub_status(s).await["last_replay"].as_u64().unwrap_or(0);
    let applied = s
        .metric_sum("l3map_cdc_events_total", &["outcome=\"applied\""])
        .await;
    let own = s
        .metric_sum("l3map_cdc_events_total", &["outcome=\"own\""])
        .await;
    (zd_writes, sf_changes, applied, own)
}

/// Waits until `activity` holds still for 3 s, and returns it.
async fn quiet(s: &Stack) -> (u64, u64, f64, f64) {
    let started = Instant::now();
    let mut last = activity(s).await;
    let mut still = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = activity(s).await;
        if now != last {
            last = now;
            still = Instant::now();
        } else if still.elapsed() >= Duration::from_secs(3) {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still busy after 20 s: {now:?}"
        );
    }
}

/// A CDC stack with `files` beside the fintech project, webhooks on and
/// Zendesk polled every second.
async fn both_ways_with(name: &str, files: &[(&str, &str)]) -> Stack {
    // Webhooks on and Zendesk polled every second: l3map's own ticket
    // writes come back as Zendesk events and must write nothing.
    let mut s = Stack::start_limited(name, QUIET_START, true, files, 100_000).await;
    s.restart_with_cdc(QUIET_START, 1, "", "AccountChangeEvent")
        .await;
    s
}

/// A ticket and a Case linked through the Case's ticket-id field, with
/// the priority mapped both ways.
const CASE_BOTH_WAYS: &str = r#"
fields crm {
  Case.Zendesk_Ticket_Id__c  string  external_id unique  "Zendesk ticket"
  Case.Priority              enum("High", "Medium", "Low")
}

link desk.ticket <-> crm.Case {
  on ticket.id == Case.Zendesk_Ticket_Id__c
}

map crm -> desk {
  Case.Priority -> priority {
    "High"   => high
    "Medium" => normal
    "Low"    => low
  }
}

map desk -> crm {
  priority -> Case.Priority {
    high   => "High"
    normal => "Medium"
    low    => "Low"
    urgent => "High"
  }
}
"#;

/// A Salesforce record as a person in the UI would change it (`POST`
/// creates, `PATCH` updates); the created record's Id.
async fn as_person(s: &Stack, method: reqwest::Method, path: &str, body: Value) -> Option<String> {
    let r = s
        .http
        .request(
            method,
            format!("{}/__l3map/person/sobjects/{path}", s.salesforce),
        )
        .json(&body)
        .send()
        .await
        .expect("the admin call answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    let v: Value = r.json().await.unwrap_or(Value::Null);
    v["id"].as_str().map(str::to_string)
}

async fn case_priority(s: &Stack, id: &str) -> Value {
    let token = s.sf_token().await;
    let c: Value = s
        .http
        .get(format!(
            "{}/services/data/v60.0/sobjects/Case/{id}",
            s.salesforce
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("case")
        .json()
        .await
        .expect("json");
    c["Priority"].clone()
}

async fn ticket_priority(s: &Stack, id: u64) -> Value {
    s.zendesk(
        reqwest::Method::GET,
        &format!("/api/v2/tickets/{id}.json"),
        None,
    )
    .await["ticket"]["priority"]
        .clone()
}

/// The red team's first finding: with a field mapped both ways, one
/// decision of a person's Case edit wrote the Case's new priority to the
/// ticket and the ticket's old one back to the Case, so the two sides
/// ended swapped and the person's edit was lost. A change now runs only
/// the rules from its own side: an edit on either side is kept there and
/// copied to the other once, and it ends quiet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_edit_on_either_side_is_kept_with_a_field_mapped_both_ways() {
    let s = both_ways_with(
        "crm-desk-case-both",
        &[("case_priority.l3map", CASE_BOTH_WAYS)],
    )
    .await;
    let ticket = load(&s, 1, FIRST_ORG, "open").await[0];
    s.zendesk(
        reqwest::Method::PUT,
        &format!("/__l3map/tickets/{ticket}"),
        Some(json!({"ticket": {"priority": "normal"}})),
    )
    .await;
    let case = as_person(
        &s,
        reqwest::Method::POST,
        "Case",
        json!({"Subject": "both ways", "Status": "New", "Priority": "Medium",
               "Zendesk_Ticket_Id__c": ticket.to_string()}),
    )
    .await
    .expect("the new Case's Id");
    quiet(&s).await;
    assert_eq!(ticket_priority(&s, ticket).await, "normal");
    assert_eq!(case_priority(&s, &case).await, "Medium");

    // Salesforce -> Zendesk: the person's High reaches the ticket, and the
    // Case keeps it.
    as_person(
        &s,
        reqwest::Method::PATCH,
        &format!("Case/{case}"),
        json!({"Priority": "High"}),
    )
    .await;
    common::eventually("the ticket's priority", Duration::from_secs(5), || async {
        match ticket_priority(&s, ticket).await {
            p if p == "high" => Ok(()),
            p => Err(p.to_string()),
        }
    })
    .await;
    let one = quiet(&s).await;
    assert_eq!(
        case_priority(&s, &case).await,
        "High",
        "the person's edit stays"
    );
    assert_eq!(ticket_priority(&s, ticket).await, "high");

    // Zendesk -> Salesforce: a person lowers the ticket's priority; the
    // Case follows once, and the ticket keeps it.
    s.zendesk(
        reqwest::Method::PUT,
        &format!("/__l3map/tickets/{ticket}"),
        Some(json!({"ticket": {"priority": "low"}})),
    )
    .await;
    common::eventually("the Case's priority", Duration::from_secs(10), || async {
        match case_priority(&s, &case).await {
            p if p == "Low" => Ok(()),
            p => Err(p.to_string()),
        }
    })
    .await;
    let two = quiet(&s).await;
    assert_eq!(
        ticket_priority(&s, ticket).await,
        "low",
        "the person's edit stays"
    );
    assert_eq!(two.1 - one.1, 1, "one Salesforce write: {two:?}");
    assert_eq!(two.0, one.0, "no ticket write back: {two:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(activity(&s).await, two, "counts stopped growing");
    assert_eq!(case_priority(&s, &case).await, "Low");
}

/// Salesforce ends the session (revoked, timed out): the reconnect is
/// refused `UNAUTHENTICATED`, the runtime signs in again and the stream
/// goes on; a later change reaches its tickets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_pub_sub_api_refuses_is_signed_in_again() {
    let s = cdc_stack("crm-desk-reauth", &[], "").await;
    let accounts = salesforce_account_ids();
    let org = FIRST_ORG + 1;
    let tickets = load(&s, 3, org, "open").await;
    let r = s
        .http
        .post(format!("{}/__l3map/sessions/expire", s.salesforce))
        .send()
        .await
        .expect("the admin call answers");
    assert!(r.status().is_success(), "{}", r.status());
    // Open streams outlive the session, as on Salesforce: cut them. The
    // change is made while the stream is down, before it ever carried an
    // event or a keepalive: the reconnect (from LATEST) catches up on it.
    sf_admin(
        &s,
        "cut",
        json!({"code": "UNAVAILABLE", "message": "the test cut the stream"}),
    )
    .await;
    person_change(&s, &accounts[1], json!({"SLA_Tier__c": "Ent"})).await;
    common::eventually("the re-sign-in", Duration::from_secs(15), || async {
        let log = s.log();
        if log.contains("the Pub/Sub API refused the session; signing in again") {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    all_tier(&s, org, &tickets, "enterprise", Duration::from_secs(15)).await;
    // And the stream carries the next change.
    stream_up(&s).await;
    person_change(&s, &accounts[1], json!({"SLA_Tier__c": "Std"})).await;
    all_tier(&s, org, &tickets, "standard", Duration::from_secs(10)).await;
}

/// Down for longer than Salesforce keeps events (72 hours; purged here):
/// the stored replay id is refused, the runtime subscribes from LATEST and
/// catches up by SystemModstamp, so the change made while it was down
/// still reaches the tickets, and the catch-up is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_id_past_the_retention_is_caught_up_by_a_poll() {
    let mut s = cdc_stack("crm-desk-retention", &[], "").await;
    let accounts = salesforce_account_ids();
    let org = FIRST_ORG + 1;
    let tickets = load(&s, 3, org, "open").await;
    person_change(&s, &accounts[1], json!({"SLA_Tier__c": "Std"})).await;
    all_tier(&s, org, &tickets, "standard", Duration::from_secs(5)).await;
    s.drained(Duration::from_secs(5)).await;
    // The change's replay id stored (a cursor without one, `|time`, is
    // the first stream's start).
    common::eventually("a replay id stored", Duration::from_secs(10), || async {
        match cursor(&s, "salesforce_cdc:crm:/data/AccountChangeEvent") {
            Some(c) if !c.starts_with('|') => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    s.kill_runtime();
    person_change(&s, &accounts[1], json!({"SLA_Tier__c": "Prem"})).await;
    let purged = sf_admin(&s, "expire", json!({})).await;
    assert_eq!(purged["stored"], 0, "{purged}");
    s.start_runtime().await;
    all_tier(&s, org, &tickets, "premium", Duration::from_secs(15)).await;
    common::eventually("the refusal said", Duration::from_secs(5), || async {
        if s.log().contains("Salesforce refused the stored replay id") {
            Ok(())
        } else {
            Err(s.log())
        }
    })
    .await;
    metric_at_least(
        &s,
        "l3map_cdc_catch_up_polls_total",
        &["AccountChangeEvent"],
        1.0,
    )
    .await;
}
