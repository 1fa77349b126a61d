//! The fleet's store (issue 18): PostgreSQL against SQLite, measured
//! through the same `Store` API the runtime uses, in one run.
//!
//! * **durable events/s**: batches of 50 events (one action each) accepted
//!   and committed; SQLite (one process) vs PostgreSQL with 1, 2 and 3
//!   replicas (each a `Store` of its own: its own pool and runtime, as a
//!   process would have), all writing at once;
//! * **actions/s**: claim + settle as fast as the store allows, the same
//!   four setups, 4 claimers per replica (the default
//!   `workers_per_connection`);
//! * **rate-bucket decisions/s**: the shared GCRA bucket
//!   (`l3map_budget_take`), one key, a limit nothing reaches;
//! * **claim latency with one hot ticket**: p50/p99 of a claim while one
//!   ticket holds 20,000 queued actions, against the same with one
//!   queued: the head is one index probe, so the ratio must stay near 1.
//!
//! PostgreSQL is the test cluster (`postgres::cluster`: a throwaway one
//! from the server binaries, or `L3MAP_TEST_DATABASE_URL`), run with
//! `fsync=off`; SQLite runs with `synchronous=FULL` on the same disk. The
//! durability costs therefore differ (see BENCHMARKS.md): the figures
//! compare the stores' work, not two disks.
//!
//! Run: `cargo bench --bench fleet`. Smoke test: `cargo bench --bench fleet -- --test`.

use l3map::runtime::store::postgres::{cluster, PgTarget};
use l3map::runtime::store::{now_ms, NewAction, NewEvent, Store, Submission};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn action(key: String, record: String) -> NewAction {
    NewAction {
        key,
        connection: "desk".into(),
        record,
        kind: "set_field".into(),
        op: r#"{"op":"zendesk_field","id":1,"value":"x"}"#.into(),
        rule: "bench".into(),
        source_loc: "bench.l3map:1:1".into(),
        revision: "r1".into(),
    }
}

/// Accepts one batch of `(event key, its actions)`.
fn accept(s: &Store, keys: &[(String, Vec<NewAction>)]) {
    let batch: Vec<Submission<'_>> = keys
        .iter()
        .map(|(k, a)| Submission {
            event: NewEvent {
                key: k,
                source: "bench",
                revision: "r1",
                event: "{}",
                refused: "[]",
                record: None,
                tallies: &[],
            },
            actions: a,
            cursor: None,
        })
        .collect();
    s.accept_all(&batch).expect("accepted");
}

fn pg(label: &str, url: &str) -> Store {
    Store::open_postgres(&PgTarget {
        url: url.into(),
        password: None,
        pool: 8,
        lease: Duration::from_secs(30),
    })
    .unwrap_or_else(|e| panic!("{label}: {e}"))
}

/// Events/s accepted by `stores` writing at once for `secs`.
fn events_per_sec(stores: &[Arc<Store>], secs: f64, tag: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(r, s)| {
            let (s, done, tag) = (s.clone(), done.clone(), tag.to_string());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed().as_secs_f64() < secs {
                    let keys: Vec<(String, Vec<NewAction>)> = (0..50)
                        .map(|i| {
                            let k = format!("{tag}-{r}-{n}-{i}");
                            let a =
                                vec![action(format!("a{k}"), format!("{}", (n * 50 + i) % 997))];
                            (k, a)
                        })
                        .collect();
                    accept(&s, &keys);
                    done.fetch_add(50, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Actions/s claimed and settled by `stores`, 4 claimers each, for `secs`.
fn actions_per_sec(stores: &[Arc<Store>], secs: f64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = stores
        .iter()
        .flat_map(|s| (0..4).map(move |_| s.clone()))
        .map(|s| {
            let done = done.clone();
            std::thread::spawn(move || {
                while start.elapsed().as_secs_f64() < secs {
                    let groups = s.claim("desk", now_ms(), 8).expect("claim");
                    if groups.is_empty() {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    for g in groups {
                        let ids: Vec<i64> = g.items.iter().map(|c| c.id).collect();
                        s.done(&ids).expect("done");
                        done.fetch_add(ids.len() as u64, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// p50 and p99 of `n` claims (each settled again as `retry_later` now,
/// so the queue keeps its depth) on `s`.
fn claim_latency(s: &Store, n: usize) -> (f64, f64) {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let g = s.claim("desk", now_ms(), 1).expect("claim");
        took.push(t.elapsed().as_secs_f64() * 1000.0);
        for g in g {
            let ids: Vec<i64> = g.items.iter().map(|c| c.id).collect();
            s.retry_later(&ids, "bench", 0, false, false).expect("back");
        }
    }
    took.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (took[n / 2], took[(n * 99) / 100])
}

/// One hot record with `depth` queued actions, one event each.
fn hot(s: &Store, depth: usize, tag: &str) {
    for chunk in 0..depth.div_ceil(500) {
        let keys: Vec<(String, Vec<NewAction>)> = (0..500.min(depth - chunk * 500))
            .map(|i| {
                let k = format!("{tag}-{chunk}-{i}");
                (k.clone(), vec![action(format!("a{k}"), "Case/hot".into())])
            })
            .collect();
        accept(s, &keys);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let secs = if quick { 0.5 } else { 5.0 };
    let Some(_) = cluster::database("bench_probe") else {
        eprintln!("fleet bench: no PostgreSQL; nothing measured");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    println!("store                     events/s   actions/s");
    let sqlite = Arc::new(Store::open(&tmp.path().join("state.db")).unwrap());
    let e = events_per_sec(std::slice::from_ref(&sqlite), secs, "sqlite");
    let a = actions_per_sec(&[sqlite], secs);
    println!("sqlite (baseline)        {e:>9.0}   {a:>9.0}");
    let (base_e, base_a) = (e, a);
    for replicas in 1..=3 {
        let url = cluster::database(&format!("bench_{replicas}")).unwrap();
        let stores: Vec<Arc<Store>> = (0..replicas)
            .map(|r| Arc::new(pg(&format!("replica {r}"), &url)))
            .collect();
        let e = events_per_sec(&stores, secs, &format!("pg{replicas}"));
        let a = actions_per_sec(&stores, secs);
        println!(
            "postgres, {replicas} replica(s)    {e:>9.0}   {a:>9.0}   ({:.2}x / {:.2}x sqlite)",
            e / base_e,
            a / base_a
        );
    }
    // The shared bucket.
    let url = cluster::database("bench_bucket").unwrap();
    let s = pg("bucket", &url);
    let budget = s.shared_budget().expect("a shared budget");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    rt.block_on(async {
        while start.elapsed().as_secs_f64() < secs {
            budget
                .take("zendesk:bench", 100_000_000, Duration::from_secs(60))
                .await
                .unwrap();
            n += 1;
        }
    });
    println!(
        "rate-bucket decisions/s (one caller): {:.0}",
        n as f64 / start.elapsed().as_secs_f64()
    );
    // Claim latency: one hot ticket, shallow and deep.
    let samples = if quick { 50 } else { 500 };
    let depth = if quick { 2_000 } else { 20_000 };
    let shallow = pg("shallow", &cluster::database("bench_shallow").unwrap());
    hot(&shallow, 1, "s");
    let (p50a, p99a) = claim_latency(&shallow, samples);
    let deep = pg("deep", &cluster::database("bench_deep").unwrap());
    hot(&deep, depth, "d");
    let (p50b, p99b) = claim_latency(&deep, samples);
    println!("claim latency, hot ticket with 1 queued:      p50 {p50a:.2} ms  p99 {p99a:.2} ms");
    println!(
        "claim latency, hot ticket with {depth} queued:  p50 {p50b:.2} ms  p99 {p99b:.2} ms  ({:.2}x / {:.2}x)",
        p50b / p50a,
        p99b / p99a
    );
}
