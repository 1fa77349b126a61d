//! Fan-out cost in Zendesk API calls: one Account change reaching N open
//! tickets of its linked organization, written by the real worker, counted
//! by kind at the Zendesk emulator, divided by the tickets written.
//!
//! For each N (1,000 and 2,000; `--test`: 150), two runs on fresh emulators
//! and a fresh store:
//!
//! * **batched**: the worker as `l3map run` starts it (up to 100 tickets
//!   per `update_many` job, each job polled to completion);
//! * **baseline, one PUT per ticket**: the same worker with
//!   `Applier::without_batches`, so every ticket takes the single path.
//!
//! The change goes through `Fanout::apply` (the organization looked up by
//! the link, the tickets read page by page through the search export, one
//! `record_changed` event per ticket decided on `mappings/saas` and stored),
//! then the real worker, one per connection with 4 tasks in flight as in
//! tests/fanout.rs, until every action is applied. Wall time runs from the
//! change handed to the fan-out to the last action recorded.
//!
//! The emulator's rate limit is raised far above any plan's, for both runs,
//! so the wall times compare the work and not the pacing; what the calls
//! would cost against a real budget is their count.
//!
//! Run: `cargo bench --bench fanout`. Smoke test: `cargo bench --bench fanout -- --test`.

use l3map::emulator::salesforce::{SalesforceEmulator, SalesforceOptions};
use l3map::emulator::zendesk::{salesforce_account_ids, ZendeskEmulator, ZendeskOptions};
use l3map::ir::Program;
use l3map::runtime::apply::{Applier, Client};
use l3map::runtime::clients::for_emulators;
use l3map::runtime::engine::{Engine, Live};
use l3map::runtime::links::fanout::Fanout;
use l3map::runtime::links::{ChangeType, CrmChange};
use l3map::runtime::metrics::Metrics;
use l3map::runtime::store::Store;
use l3map::runtime::worker;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mappings/saas`'s `sla_tier`.
const SLA_TIER: u64 = 360004101;
/// Far above any Zendesk plan (Enterprise Plus: 2,500 a minute).
const WIDE_OPEN: u32 = 1_000_000;
/// Worker tasks in flight per connection (tests/fanout.rs uses the same).
const CONCURRENCY: usize = 4;

/// Zendesk calls by kind during one run.
#[derive(Debug, Default, Clone)]
struct Calls {
    search_pages: u64,
    update_many: u64,
    job_polls: u64,
    single_puts: u64,
    ticket_reads: u64,
    other: BTreeMap<String, u64>,
}

impl Calls {
    fn from_paths(paths: &BTreeMap<String, u64>) -> Calls {
        let mut c = Calls::default();
        for (path, n) in paths {
            let n = *n;
            let (method, p) = path.split_once(' ').unwrap_or(("", path));
            let ticket_path = p
                .strip_prefix("/api/v2/tickets/")
                .and_then(|r| r.strip_suffix(".json"))
                .is_some_and(|id| id.parse::<u64>().is_ok());
            match (method, p) {
                ("GET", "/api/v2/search/export.json") => c.search_pages += n,
                ("PUT", "/api/v2/tickets/update_many.json") => c.update_many += n,
                ("GET", p) if p.starts_with("/api/v2/job_statuses/") => c.job_polls += n,
                ("PUT", _) if ticket_path => c.single_puts += n,
                ("GET", _) if ticket_path => c.ticket_reads += n,
                _ => *c.other.entry(path.clone()).or_default() += n,
            }
        }
        c
    }

    fn writes(&self) -> u64 {
        self.update_many + self.single_puts
    }

    fn total(&self) -> u64 {
        self.search_pages
            + self.update_many
            + self.job_polls
            + self.single_puts
            + self.ticket_reads
            + self.other.values().sum::<u64>()
    }
}

struct Run {
    tickets: u64,
    calls: Calls,
    fanout: Duration,
    wall: Duration,
}

/// A progress line on stderr when `L3MAP_BENCH_TRACE` is set.
fn trace(what: &str) {
    if std::env::var_os("L3MAP_BENCH_TRACE").is_some() {
        eprintln!("[fanout] {what}");
    }
}

fn saas() -> Program {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/saas");
    l3map::runtime::compile::compile(&dir).expect("mappings/saas compiles")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client")
}

/// Requests the emulator counted, by `METHOD /path`.
async fn paths(zd: &str) -> BTreeMap<String, u64> {
    let stats: Value = http()
        .get(format!("{zd}/__l3map/stats"))
        .send()
        .await
        .expect("the stats answer")
        .json()
        .await
        .expect("JSON");
    stats["by_path"]
        .as_object()
        .expect("by_path")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect()
}

fn minus(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

async fn run(program: &Program, n: u64, batched: bool) -> Run {
    let zd_opts = ZendeskOptions {
        rate_limit: std::env::var("L3MAP_BENCH_ZENDESK_RPM")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(WIDE_OPEN),
        ..ZendeskOptions::default().with_programs(std::slice::from_ref(program))
    };
    let (zd_run, zd) = ZendeskEmulator::new(zd_opts)
        .start(0)
        .await
        .expect("the Zendesk emulator starts");
    let (sf_run, _sf) = SalesforceEmulator::new(SalesforceOptions::default().with_program(program))
        .start(0)
        .await
        .expect("the Salesforce emulator starts");
    let zd_url = zd_run.base_url();
    let clients = for_emulators(program, &zd_url, &sf_run.base_url()).expect("clients");
    let dir = tempfile::Builder::new()
        .prefix("l3map-bench-fanout-")
        .tempdir()
        .expect("a temp dir");
    let store = Store::open(&dir.path().join("state.db")).expect("the store opens");
    let engine = Arc::new(Engine::new(
        Live::new(program.clone()),
        Arc::new(store),
        Metrics::new(),
    ));

    // The Account and its organization, and N open tickets in it.
    let account = salesforce_account_ids()[1].clone();
    trace("emulators up");
    let Some(Client::Zendesk(desk)) = clients.get("desk") else {
        panic!("mappings/saas has a Zendesk connection `desk`");
    };
    let org = desk
        .organizations_by_external_id(&account)
        .await
        .expect("the organization")[0]
        .id;
    let loaded: Value = http()
        .post(format!("{zd_url}/__l3map/tickets"))
        .json(&json!({"count": n, "ticket": {"organization_id": org, "status": "open"}}))
        .send()
        .await
        .expect("the admin call answers")
        .json()
        .await
        .expect("JSON");
    let ids: Vec<u64> = loaded["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(ids.len() as u64, n);

    trace("tickets loaded");
    let before = paths(&zd_url).await;
    let started = Instant::now();
    let mut fields = Map::new();
    fields.insert("SLA_Tier__c".into(), json!("Ent"));
    let change = CrmChange {
        connection: "crm".into(),
        object: "Account".into(),
        ids: vec![account],
        change_type: ChangeType::Update,
        fields,
        changed: vec!["SLA_Tier__c".into()],
        key: "0001bench-fanout:1".into(),
        at: "2026-12-06T10:00:00.000Z".into(),
        origin: None,
    };
    let fan = Fanout::new(engine.clone(), clients.clone());
    let got = fan.apply(&change).await.expect("fanned out");
    let fanout = started.elapsed();
    trace("fanned out");
    assert!(got.tickets as u64 >= n, "{got:?}");
    assert_eq!(got.new_events, got.tickets);

    let mut applier = Applier::new(clients.clone(), 3);
    if !batched {
        applier = applier.without_batches();
    }
    let applier = Arc::new(applier);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = applier
        .connections()
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .map(|conn| {
            tokio::spawn(worker::run(
                engine.clone(),
                applier.clone(),
                conn,
                CONCURRENCY,
                stop.clone(),
                None,
            ))
        })
        .collect();
    // Every event's actions are stored when `apply` returns; a ticket that
    // already holds the value has none.
    let deadline = Instant::now() + Duration::from_secs(900);
    let written = loop {
        let s = engine.store.stats().expect("stats");
        if s.pending + s.sending == 0 {
            assert_eq!(s.dead, 0, "nothing parked");
            break s.done;
        }
        assert!(
            Instant::now() < deadline,
            "not settled in 15 minutes: {s:?}"
        );
        trace(&format!("{s:?} {:?}", paths(&zd_url).await));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed();
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    let calls = Calls::from_paths(&minus(&paths(&zd_url).await, &before));
    for id in &ids {
        let t = zd.ticket(*id).expect("the ticket");
        let tier = t["custom_fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["id"] == json!(SLA_TIER)))
            .map(|f| f["value"].clone());
        assert_eq!(tier, Some(json!("enterprise")), "ticket {id}");
    }
    assert_eq!(zd.rate_limited(), 0, "no 429");
    assert!(written >= n, "{written} tickets written, {n} loaded");
    Run {
        tickets: written,
        calls,
        fanout,
        wall,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let sizes: &[u64] = if quick { &[150] } else { &[1_000, 2_000] };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let program = saas();
    println!("fan-out of one Account change, mappings/saas, {CONCURRENCY} worker tasks, Zendesk emulator limit raised to {WIDE_OPEN}/min");
    println!(
        "{:>6} {:>9} {:>7} | {:>6} {:>11} {:>8} {:>10} {:>7} {:>5} | {:>8} {:>8} {:>8} | {:>8} {:>8}",
        "N",
        "path",
        "tickets",
        "search",
        "update_many",
        "job_poll",
        "single_PUT",
        "GET_tkt",
        "other",
        "writes/t",
        "total/t",
        "target",
        "fanout_s",
        "wall_s"
    );
    for &n in sizes {
        let mut walls = vec![];
        for batched in [true, false] {
            let r = rt.block_on(run(&program, n, batched));
            let t = r.tickets as f64;
            let c = &r.calls;
            println!(
                "{:>6} {:>9} {:>7} | {:>6} {:>11} {:>8} {:>10} {:>7} {:>5} | {:>8.4} {:>8.4} {:>8} | {:>8.2} {:>8.2}",
                n,
                if batched { "batched" } else { "one PUT" },
                r.tickets,
                c.search_pages,
                c.update_many,
                c.job_polls,
                c.single_puts,
                c.ticket_reads,
                c.other.values().sum::<u64>(),
                c.writes() as f64 / t,
                c.total() as f64 / t,
                if batched {
                    if c.update_many as f64 / t <= 0.02 {
                        "met"
                    } else {
                        "MISSED"
                    }
                } else {
                    "-"
                },
                r.fanout.as_secs_f64(),
                r.wall.as_secs_f64()
            );
            if !c.other.is_empty() {
                println!("        other calls: {:?}", c.other);
            }
            walls.push((r.wall, c.total()));
        }
        let (b, u) = (walls[0], walls[1]);
        println!(
            "        N={n}: one-PUT / batched: {:.1}x the wall time, {:.1}x the calls",
            u.0.as_secs_f64() / b.0.as_secs_f64(),
            u.1 as f64 / b.1 as f64
        );
    }
}
