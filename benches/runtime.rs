//! The runtime's own cost, measured end to end on this machine (issue 5):
//!
//! 1. **Overhead per event**: a signed Zendesk webhook POSTed over loopback
//!    to the real router, until its 200 says the event and its actions are
//!    durably in the outbox (verify, decode, decide, commit). No upstream
//!    read is made (no Zendesk client is wired), so no emulator latency is
//!    in the figure. Baseline, same run: the same POST with a wrong
//!    signature (HTTP and routing only, refused with a 401).
//! 2. **Sustained events/s** with the durable outbox on: many sources
//!    ingesting at once, every event committed before it is acknowledged.
//!    Baseline, same run: deciding the same events without storing them.
//! 3. **Reload latency**: a mapping file written (an editor's atomic save)
//!    until the new revision is the one deciding events; 100 reloads while
//!    events keep arriving, then every acknowledged event is counted in the
//!    store (lost must be 0).
//!
//! `cargo bench --bench runtime` prints the figures BENCHMARKS.md quotes;
//! `-- --test` runs each part briefly (a smoke test, no figures kept).

use l3map::connectors::Secret;
use l3map::emulator::zendesk::webhook_signature;
use l3map::eval::decide::decide;
use l3map::eval::event::Event;
use l3map::runtime::compile::compile;
use l3map::runtime::engine::{Engine, Live};
use l3map::runtime::metrics::Metrics;
use l3map::runtime::server::{router, App};
use l3map::runtime::store::{Accepted, Store};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const SECRET: &str = "bench-webhook-signing-secret";

struct Sizes {
    latency_events: usize,
    throughput_events: usize,
    concurrency: usize,
    reloads: usize,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let sizes = if quick {
        Sizes {
            latency_events: 50,
            throughput_events: 500,
            concurrency: 16,
            reloads: 3,
        }
    } else {
        Sizes {
            latency_events: 5_000,
            throughput_events: 60_000,
            concurrency: 64,
            reloads: 100,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(run(sizes, quick));
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("l3map-bench-runtime-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// The fintech sample events (agent turns and ticket changes), as JSON
/// objects whose `id` each use replaces to keep every event new.
fn samples() -> Vec<Json> {
    let text = std::fs::read_to_string(root().join("tests/data/events/fintech.jsonl"))
        .expect("tests/data/events/fintech.jsonl");
    // The sample file holds a few deliberately broken lines (as recorded
    // streams do); the benchmark keeps the events the runtime accepts.
    text.lines()
        .filter(|l| Event::from_json(l).is_ok())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn with_id(sample: &Json, id: String) -> Json {
    let mut v = sample.clone();
    v["id"] = Json::String(id);
    v
}

fn engine_at(dir: &Path, mappings: &Path) -> Arc<Engine> {
    let program = compile(mappings).expect("the mappings compile");
    let store = Store::open(&dir.join("state.db")).expect("a store");
    Arc::new(Engine::new(
        Live::new(program),
        Arc::new(store),
        Metrics::new(),
    ))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

struct Dist {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn dist(mut v: Vec<Duration>) -> Dist {
    v.sort();
    Dist {
        p50: percentile(&v, 0.50),
        p99: percentile(&v, 0.99),
        max: v.last().copied().unwrap_or_default(),
    }
}

async fn run(sizes: Sizes, quick: bool) {
    let samples = samples();
    println!("l3map runtime benchmark ({} sample events)", samples.len());
    let overhead = overhead(&samples, sizes.latency_events).await;
    let throughput = throughput(&samples, sizes.throughput_events, sizes.concurrency).await;
    let reload = reloads(&samples, sizes.reloads).await;
    if quick {
        println!("(--test: a smoke run; figures are not meaningful)");
    }
    println!();
    println!("| measure | result | baseline (same run) | ratio | target |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| webhook → enqueued, p50 | {} | {} (refused, 401) | {:.2} | |",
        ms(overhead.0.p50),
        ms(overhead.1.p50),
        overhead.0.p50.as_secs_f64() / overhead.1.p50.as_secs_f64()
    );
    println!(
        "| webhook → enqueued, p99 | {} | {} (refused, 401) | {:.2} | < 5 ms |",
        ms(overhead.0.p99),
        ms(overhead.1.p99),
        overhead.0.p99.as_secs_f64() / overhead.1.p99.as_secs_f64()
    );
    println!(
        "| webhook → enqueued, max | {} | {} | | |",
        ms(overhead.0.max),
        ms(overhead.1.max)
    );
    println!(
        "| events/s, durable outbox, {} sources at once | {:.0} | {:.0} (decide only) | {:.3} | ≥ 10,000 |",
        sizes.concurrency,
        throughput.0,
        throughput.1,
        throughput.0 / throughput.1
    );
    println!(
        "| events/s over HTTP (signed webhooks), {} clients | {:.0} | | | |",
        sizes.concurrency, throughput.2
    );
    println!(
        "| reload, file written → new revision serving, p50 | {} | | | |",
        ms(reload.latency.p50)
    );
    println!(
        "| reload, p99 ({} reloads) | {} | | | < 250 ms |",
        reload.reloads,
        ms(reload.latency.p99)
    );
    println!(
        "| events during the reloads: acknowledged / stored / lost | {} / {} / {} | | | lost = 0 |",
        reload.acked,
        reload.stored,
        reload.acked - reload.stored
    );
    println!(
        "| revisions that decided events during the reloads | {} | | | |",
        reload.revisions
    );
    assert_eq!(
        reload.acked, reload.stored,
        "an acknowledged event was lost"
    );
}

async fn serve(engine: Arc<Engine>) -> String {
    let app = Arc::new(App {
        engine,
        webhook_secret: Some(Secret::new(SECRET)),
        tolerance: Duration::from_secs(300),
        agents: Vec::new(),
        agent_policy: Default::default(),
        zendesk: None,
        salesforce: None,
        resolver: Default::default(),
        probes: Default::default(),
        console: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(app)).await;
    });
    format!("http://{addr}/webhooks/zendesk")
}

fn signed(http: &reqwest::Client, url: &str, body: String, good: bool) -> reqwest::RequestBuilder {
    let ts = jiff::Timestamp::now().to_string();
    let key = Secret::new(if good { SECRET } else { "not-the-secret" });
    let sig = webhook_signature(&key, &ts, body.as_bytes());
    http.post(url)
        .header("content-type", "application/json")
        .header("x-zendesk-webhook-signature", sig)
        .header("x-zendesk-webhook-signature-timestamp", ts)
        .body(body)
}

/// One client, one event at a time: the latency of a webhook through the
/// runtime, and of a refused one (the HTTP floor).
async fn overhead(samples: &[Json], n: usize) -> (Dist, Dist) {
    let dir = scratch("overhead");
    let engine = engine_at(&dir, &root().join("mappings/fintech"));
    let url = serve(engine.clone()).await;
    let http = reqwest::Client::new();
    let mut accepted = Vec::with_capacity(n);
    let mut refused = Vec::with_capacity(n);
    // Warm up the connection, the caches and SQLite's pages.
    for i in 0..50 {
        let body = with_id(&samples[i % samples.len()], format!("warm:{i}")).to_string();
        let r = signed(&http, &url, body, true)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 200);
    }
    for i in 0..n {
        let body = with_id(&samples[i % samples.len()], format!("lat:{i}")).to_string();
        let req = signed(&http, &url, body.clone(), true);
        let t = Instant::now();
        let r = req.send().await.expect("answered");
        let status = r.status();
        let _ = r.bytes().await;
        accepted.push(t.elapsed());
        assert_eq!(status, 200, "accepted");
        let req = signed(&http, &url, body, false);
        let t = Instant::now();
        let r = req.send().await.expect("answered");
        let status = r.status();
        let _ = r.bytes().await;
        refused.push(t.elapsed());
        assert_eq!(status, 401, "refused");
    }
    let stats = engine.store.stats().expect("stats");
    assert_eq!(stats.events as usize, n + 50, "every event stored");
    let _ = std::fs::remove_dir_all(&dir);
    (dist(accepted), dist(refused))
}

/// Events/s: `concurrency` sources ingesting at once, in-process and over
/// HTTP; and deciding alone, for the ratio.
async fn throughput(samples: &[Json], n: usize, concurrency: usize) -> (f64, f64, f64) {
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let v = with_id(&samples[i % samples.len()], format!("tp:{i}"));
            Event::from_json(&v.to_string()).expect("a sample event")
        })
        .collect();

    // Baseline: decide only.
    let program = compile(&root().join("mappings/fintech")).expect("compiles");
    let t = Instant::now();
    let mut actions = 0usize;
    for ev in &events {
        actions += decide(&program, ev).actions.len();
    }
    let decide_rate = n as f64 / t.elapsed().as_secs_f64();
    assert!(actions > 0, "the samples decide actions");

    // Durable: through Engine::ingest, `concurrency` tasks at once.
    let dir = scratch("throughput");
    let engine = engine_at(&dir, &root().join("mappings/fintech"));
    let queue = Arc::new(std::sync::Mutex::new(events));
    let t = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let engine = engine.clone();
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut new = 0usize;
                loop {
                    let next = queue.lock().expect("queue").pop();
                    let Some(ev) = next else { break };
                    let got = engine.ingest("bench", ev, None).await.expect("stored");
                    if matches!(got.accepted, Accepted::New { .. }) {
                        new += 1;
                    }
                }
                new
            })
        })
        .collect();
    let mut new = 0;
    for task in tasks {
        new += task.await.expect("no panic");
    }
    let durable_rate = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(new, n, "every event new and stored");
    assert_eq!(engine.store.stats().expect("stats").events as usize, n);
    let _ = std::fs::remove_dir_all(&dir);

    // Over HTTP: signed webhooks from `concurrency` clients.
    let dir = scratch("http");
    let engine = engine_at(&dir, &root().join("mappings/fintech"));
    let url = Arc::new(serve(engine.clone()).await);
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..n)
            .map(|i| with_id(&samples[i % samples.len()], format!("http:{i}")).to_string())
            .collect(),
    );
    let t = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, url, next, bodies) =
                (http.clone(), url.clone(), next.clone(), bodies.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(body) = bodies.get(i) else { break };
                    let r = signed(&http, &url, body.clone(), true)
                        .send()
                        .await
                        .expect("answered");
                    assert_eq!(r.status(), 200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no panic");
    }
    let http_rate = n as f64 / t.elapsed().as_secs_f64();
    assert_eq!(engine.store.stats().expect("stats").events as usize, n);
    let _ = std::fs::remove_dir_all(&dir);
    (durable_rate, decide_rate, http_rate)
}

struct ReloadFigures {
    latency: Dist,
    reloads: usize,
    acked: u64,
    stored: u64,
    revisions: u64,
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("mappings") {
        let entry = entry.expect("an entry");
        if entry.file_type().expect("a type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copied");
        }
    }
}

/// Writes the file the way editors save: a temporary beside it, renamed
/// over it.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("l3map.swp");
    std::fs::write(&tmp, text).expect("written");
    std::fs::rename(&tmp, path).expect("renamed");
}

async fn reloads(samples: &[Json], count: usize) -> ReloadFigures {
    let dir = scratch("reload");
    let mappings = dir.join("mappings");
    std::fs::create_dir_all(&mappings).expect("a folder");
    copy_dir(&root().join("mappings/fintech"), &mappings);
    let engine = engine_at(&dir, &mappings);
    let (stop_tx, stop) = watch::channel(false);
    let watcher = l3map::runtime::reload::spawn(
        mappings.clone(),
        engine.live().program.revision.clone(),
        engine.clone(),
        stop,
        None,
        None,
    )
    .expect("watching the mappings");

    // Load: 8 sources ingesting without pause while the files change.
    let running = Arc::new(AtomicBool::new(true));
    let acked = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..8)
        .map(|w| {
            let (engine, running, acked) = (engine.clone(), running.clone(), acked.clone());
            let samples = samples.to_vec();
            tokio::spawn(async move {
                let mut i = 0usize;
                while running.load(Ordering::Relaxed) {
                    let v = with_id(&samples[i % samples.len()], format!("reload:{w}:{i}"));
                    let ev = Event::from_json(&v.to_string()).expect("a sample");
                    if engine.ingest("bench", ev, None).await.is_ok() {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        })
        .collect();

    let statuses = mappings.join("statuses.l3map");
    let original = std::fs::read_to_string(&statuses).expect("statuses.l3map");
    assert!(original.contains("\"Agent working\""), "a label to edit");
    let mut latencies = Vec::with_capacity(count);
    for n in 0..count {
        let before = engine.live().program.revision.clone();
        let edited = original.replace("\"Agent working\"", &format!("\"Agent working ({n})\""));
        let t = Instant::now();
        save(&statuses, &edited);
        loop {
            if engine.live().program.revision != before {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "reload {n} never happened"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        latencies.push(t.elapsed());
        // Editors do not save continuously; let the debouncer settle.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    running.store(false, Ordering::Relaxed);
    for task in load {
        task.await.expect("no panic");
    }
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    let stored = engine.store.stats().expect("stats").events;
    let db = rusqlite::Connection::open(dir.join("state.db")).expect("the store");
    let revisions: u64 = db
        .query_row("SELECT COUNT(DISTINCT revision) FROM events", [], |r| {
            r.get(0)
        })
        .expect("revisions");
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    ReloadFigures {
        latency: dist(latencies),
        reloads: count,
        acked: acked.load(Ordering::Relaxed),
        stored,
        revisions,
    }
}
