//! Issue 16's acceptance through the real binaries: `l3map emulate`
//! (Zendesk, Salesforce and its Pub/Sub gRPC port) and `l3map run` with
//! `[cdc] enabled = true` and Salesforce polling off. An Account's tier
//! changed in Salesforce as a person would reaches the unsolved tickets of
//! its linked organization through the change stream in one update_many;
//! a `kill -9` mid-stream decides every change once; gaps, overflows and
//! stream cuts heal; mappings both ways end quiet; 2,000 tickets fan out
//! with nothing lost, nothing twice, no window over the limit.

mod common;

use common::stack::{Stack, SLA_TIER};
use l3map::emulator::zendesk::salesforce_account_ids;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The first seeded organization; the n-th Account's is this + n.
const FIRST_ORG: u64 = 360200001;
const UPDATE_MANY: &str = "update_many";

/// CDC on, Salesforce polling off, Zendesk polling out of the way.
fn cdc_config(s_pubsub: &str) -> String {
    format!(
        "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 0\n\n\
         [cdc]\nenabled = true\nendpoint = \"{s_pubsub}\"\n"
    )
}

/// Starts the stack with CDC pointing at the emulator's Pub/Sub port
/// (known only once the emulator runs: the runtime is restarted on it).
async fn cdc_stack(name: &str, files: &[(&str, &str)], extra: &str) -> Stack {
    let mut s = Stack::start_with_files(name, QUIET_START, false, files).await;
    s.kill_runtime();
    let toml = s.dir.join("l3map.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace(QUIET_START, &format!("{}{extra}", cdc_config(&s.pubsub)));
    std::fs::write(&toml, text).unwrap();
    // A fresh store: the first start subscribes from LATEST.
    let _ = std::fs::remove_dir_all(s.dir.join("state"));
    s.start_runtime().await;
    stream_up(&s).await;
    s
}

const QUIET_START: &str = "[poll]\nzendesk_interval_secs = 3600\nsalesforce_interval_secs = 3600\n";

/// Waits for the Account channel's stream to be open.
async fn stream_up(s: &Stack) {
    common::eventually("the CDC stream is up", Duration::from_secs(15), || async {
        let m = s.metrics().await;
        if m.lines().any(|l| {
            l.starts_with("l3map_cdc_stream_up")
                && l.contains("AccountChangeEvent")
                && l.ends_with(" 1")
        }) {
            Ok(())
        } else {
            Err(m
                .lines()
                .filter(|l| l.contains("cdc"))
                .collect::<Vec<_>>()
                .join("\n"))
        }
    })
    .await;
}

/// The sum of a metric's samples whose line contains every one of `has`.
async fn metric(s: &Stack, name: &str, has: &[&str]) -> f64 {
    s.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with(name) && has.iter().all(|h| l.contains(h)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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

async fn zd_stats(s: &Stack) -> Value {
    s.http
        .get(format!("{}/__l3map/stats", s.zendesk))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json")
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

/// The SLA tier of every ticket of `org` (search export, a page of up
/// to 1,000 at a time).
async fn org_tiers(s: &Stack, org: u64) -> HashMap<u64, Value> {
    let mut out = HashMap::new();
    let mut path = format!(
        "/api/v2/search/export.json?query=organization:{org}&filter%5Btype%5D=ticket&page%5Bsize%5D=1000"
    );
    loop {
        let v = s.zendesk(reqwest::Method::GET, &path, None).await;
        for t in v["results"].as_array().cloned().unwrap_or_default() {
            let tier = t["custom_fields"]
                .as_array()
                .and_then(|f| f.iter().find(|f| f["id"] == json!(SLA_TIER)))
                .map_or(Value::Null, |f| f["value"].clone());
            out.insert(t["id"].as_u64().unwrap(), tier);
        }
        match v["links"]["next"].as_str() {
            Some(next) if v["meta"]["has_more"] == json!(true) => {
                path = next.strip_prefix(&s.zendesk).unwrap_or(next).to_string()
            }
            _ => return out,
        }
    }
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
    let before = zd_stats(&s).await;

    person_change(&s, &account, json!({"SLA_Tier__c": "Ent"})).await;
    let took = all_tier(&s, org, &open, "enterprise", Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    s.drained(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let after = zd_stats(&s).await;
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
        metric(&s, "l3map_cdc_events_total", &["outcome=\"applied\""]).await >= 1.0,
        "{}",
        s.metrics().await
    );
}
