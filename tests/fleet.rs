//! `l3map run` as a fleet (issue 18): several replicas of the real binary
//! on one PostgreSQL store (a database of its own on the test cluster,
//! `l3map::runtime::store::postgres::cluster`), beside the emulators,
//! checked from the emulator's side.

use crate::common::stack::{Stack, StackEnv};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `l3map run --config` replica, its log in `replica-N.log`.
pub(crate) struct Replica {
    pub(crate) child: Child,
    pub(crate) url: String,
}

pub(crate) async fn start(s: &Stack, n: usize) -> Replica {
    start_edited(s, n, |t| t).await
}

/// [`start`] with its l3map.toml edited by `edit` first.
pub(crate) async fn start_edited(s: &Stack, n: usize, edit: impl Fn(String) -> String) -> Replica {
    let (config, url) = s.replica_config(n);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, edit(text)).unwrap();
    let log = std::fs::File::create(s.dir.join(format!("replica-{n}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .stack_env()
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("a replica starts");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{url}/healthz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replica {n} did not answer /healthz:\n{}",
            std::fs::read_to_string(s.dir.join(format!("replica-{n}.log"))).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Replica { child, url }
}

pub(crate) fn logs(s: &Stack) -> String {
    (1..=3)
        .map(|n| {
            format!(
                "--- replica {n}\n{}",
                std::fs::read_to_string(s.dir.join(format!("replica-{n}.log"))).unwrap_or_default()
            )
        })
        .collect()
}

/// Three replicas polling one Zendesk and taking its webhooks; one is
/// killed (SIGKILL) in the middle of a burst of escalations. Every ticket
/// gets its hand-off note once: nothing lost with the replica, nothing
/// done twice by the three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_and_a_kill_hand_each_ticket_off_once() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_kill") else {
        return;
    };
    let s = Stack::fleet(
        "fleet-kill",
        "[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 0\n",
        &url,
    );
    let mut replicas = Vec::new();
    for n in 1..=3 {
        replicas.push(start(&s, n).await);
    }
    let log = std::fs::read_to_string(s.dir.join("replica-2.log")).unwrap();
    assert!(log.contains("postgres://l3map@127.0.0.1"), "{log}");
    assert!(
        !s.dir.join("state").exists(),
        "no SQLite store beside the fleet"
    );
    let replicas_0_pid = replicas[0].child.id();
    let mut ids = Vec::new();
    for n in 0..30 {
        if n == 10 {
            // The replica the emulator delivers webhooks to: the other two
            // find its events by polling.
            replicas[0].child.kill().unwrap();
            replicas[0].child.wait().unwrap();
        }
        ids.push(
            s.create_ticket(
                &format!("Disputed charge {n}"),
                "standard",
                Some("fraud_claim"),
            )
            .await,
        );
    }
    each_once(&s, &ids, Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let health: serde_json::Value = http
        .get(format!("{}/healthz", replicas[1].url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["outbox"]["dead"], 0, "{health}");
    // `l3map status` sees the fleet: the replicas on one revision, the
    // Zendesk poller held by a live one, nothing dead.
    let (config, _) = s.replica_config(2);
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["status", "--format", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let st: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let rows = st["replicas"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{st}");
    let revisions: std::collections::BTreeSet<&str> =
        rows.iter().filter_map(|r| r["revision"].as_str()).collect();
    assert_eq!(revisions.len(), 1, "{st}");
    let killed = format!(":{replicas_0_pid}:");
    let poller = st["leases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "zendesk_poll:desk")
        .unwrap_or_else(|| panic!("{st}"));
    assert!(
        !poller["holder"].as_str().unwrap().contains(&killed),
        "{st}"
    );
    assert!(
        st["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["dead"] == 0),
        "{st}"
    );
    for r in &mut replicas[1..] {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig}");
}

async fn each_once(s: &Stack, ids: &[u64], within: Duration) {
    let started = Instant::now();
    loop {
        let mut missing = Vec::new();
        for id in ids {
            if s.private_notes(*id).await.is_empty() {
                missing.push(*id);
            }
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < within,
            "tickets without a hand-off note: {missing:?}\n{}",
            logs(s)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // More poll rounds: nothing more is written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in ids {
        let notes = s.private_notes(*id).await;
        assert_eq!(notes.len(), 1, "ticket {id}: {notes:?}\n{}", logs(s));
    }
}

/// A replica stopped (SIGSTOP) past its lease while it holds claims and
/// the pollers' leases, then continued; PostgreSQL restarted (`pg_ctl
/// restart -m immediate`) under traffic; a replica drained with SIGTERM
/// hands its leases back and says so on /readyz. Every ticket is handed
/// off once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_replica_and_a_database_restart_lose_nothing_and_double_nothing() {
    // A server of its own: its restart must not cut the other tests'.
    let Some(pg) = l3map::runtime::store::postgres::cluster::private("fleet_stall") else {
        return;
    };
    let url = pg.database("fleet_stall");
    let s = Stack::fleet(
        "fleet-stall",
        "[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 0\n",
        &url,
    );
    let mut a = start(&s, 1).await;
    let mut b = start(&s, 2).await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            s.create_ticket(
                &format!("Before the stall {n}"),
                "standard",
                Some("fraud_claim"),
            )
            .await,
        );
    }
    // Replica 1 takes the webhooks: stopped, its deliveries time out and
    // replica 2 must find those tickets by polling, and take over what
    // replica 1 had claimed once the lease (3 s) runs out.
    signal(&a.child, "-STOP");
    for n in 0..10 {
        ids.push(
            s.create_ticket(
                &format!("During the stall {n}"),
                "standard",
                Some("fraud_claim"),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    signal(&a.child, "-CONT");
    pg.restart_immediate().expect("pg_ctl restart");
    for n in 0..10 {
        ids.push(
            s.create_ticket(
                &format!("After the restart {n}"),
                "standard",
                Some("fraud_claim"),
            )
            .await,
        );
    }
    each_once(&s, &ids, Duration::from_secs(90)).await;
    // A drain: /readyz is 503 `draining` or the port is closed, and the
    // replica's leases are given back at once (the other polls on).
    let http = reqwest::Client::new();
    let ready = http.get(format!("{}/readyz", b.url)).send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "{}",
        ready.text().await.unwrap_or_default()
    );
    signal(&b.child, "-TERM");
    let status = b.child.wait().unwrap();
    assert!(status.success(), "{status}\n{}", logs(&s));
    let more: Vec<u64> = {
        let mut v = Vec::new();
        for n in 0..5 {
            v.push(
                s.create_ticket(
                    &format!("After the drain {n}"),
                    "standard",
                    Some("fraud_claim"),
                )
                .await,
            );
        }
        v
    };
    each_once(&s, &more, Duration::from_secs(60)).await;
    let _ = a.child.kill();
    let _ = a.child.wait();
}

/// Red team: a replica started with `--state` (or `$L3MAP_STATE`) beside a
/// configuration with `[store]` would run on a SQLite store of its own,
/// outside the fleet, and hand tickets off a second time: refused in one
/// line, before anything starts.
#[test]
fn a_replica_pointed_at_a_store_of_its_own_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = dir.path().join("l3map.toml");
    std::fs::write(
        &config,
        format!(
            "mappings = \"{}\"\n[store]\nurl = \"postgres://l3map@127.0.0.1:1/fleet\"\n",
            root.join("mappings/fintech").display()
        ),
    )
    .unwrap();
    let stray = dir.path().join("stray.db");
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .stack_env()
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--state")
        .arg(&stray)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("[store]"), "{err}");
    assert!(!stray.exists(), "no store of its own was created");
    for args in [&["run"][..], &["outbox", "list"][..], &["status"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
            .stack_env()
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("L3MAP_STATE", &stray)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains("L3MAP_STATE"), "{args:?}: {err}");
        assert!(!stray.exists(), "{args:?}");
    }
}

/// `migrate` and `status` where no store exists yet say so and create
/// none (they used to leave an empty store behind, "up to date").
#[test]
fn migrate_and_status_create_no_store() {
    let dir = tempfile::tempdir().unwrap();
    for (args, code) in [(&["migrate"][..], 0), (&["status"][..], 2)] {
        let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("L3MAP_CONFIG")
            .env_remove("L3MAP_STATE")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{args:?}: {said}");
        assert!(
            said.contains("no store yet") || said.contains("no state store"),
            "{args:?}: {said}"
        );
        assert!(
            !dir.path().join(".l3map").exists(),
            "{args:?} created a store"
        );
    }
}

/// A replica whose database link is cut waits for the fleet's shared
/// budget and sends nothing; the agent is told the store could not be
/// reached (503, try again), not that Zendesk rate limited it (the third
/// red team's F5: an operator chased a rate limit that was not there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_held_by_an_unreachable_store_says_so_not_rate_limited() {
    use crate::common::proxy::Proxy;
    let Some(url) = l3map::runtime::store::postgres::cluster::database("fleet_store_cut") else {
        return;
    };
    let s = Stack::fleet(
        "fleet-store-cut",
        "[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n",
        &url,
    );
    let pg_port: u16 = url
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
        .expect("the store URL's port");
    let link = Proxy::start(([127, 0, 0, 1], pg_port).into()).await;
    let through = link.port;
    let mut r = start_edited(&s, 1, move |t| {
        t.replace(&format!("port={pg_port} "), &format!("port={through} "))
    })
    .await;
    let ticket = s.create_ticket("Store cut", "standard", None).await;
    link.cut();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/turns", r.url))
        .bearer_auth(crate::common::stack::AGENT_TOKEN)
        .json(&serde_json::json!({"turn_id": "cut-1", "ticket": ticket, "intent": "question"}))
        .timeout(Duration::from_secs(90))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    assert_eq!(status, 503, "{body}\n{}", logs(&s));
    assert_eq!(body["error"], "unavailable", "{body}");
    let said = body["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("store could not be reached") && !said.contains("rate_limited"),
        "{said}"
    );
    link.heal();
    let _ = r.child.kill();
    let _ = r.child.wait();
}
