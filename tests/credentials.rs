//! OAuth grants that survive: a runtime on an `auth oauth_code` connection
//! against the Zendesk emulator with short access tokens and single-use
//! refresh tokens, killed with SIGKILL again and again under a load of
//! webhook events (at seeded moments, some of them deliberately inside a
//! refresh whose answer the emulator holds back after applying it: the
//! lost-answer window), keeps working after every restart with no
//! operator action: every event's actions applied exactly once, a refresh
//! token reused only in the deliberate lost-answer cases (and recovered by
//! the standby lineage), no token in any output or in the store file.
//!
//! `L3MAP_SOAK_MINUTES=10` runs the acceptance soak of issue 17 (60-second
//! access tokens, ten minutes); `L3MAP_SOAK_SEED=N` replays a run.

use crate::common::{self, emulator_urls, free_port, temp_dir};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A base64 key of 32 bytes, for the test only.
const KEY: &str = "bDNtYXAtdGVzdC1rZXktMzItYnl0ZXMtbG9uZy0tLS0=";

struct Soak {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    zendesk: String,
    emulate: Child,
    run: Option<Child>,
    http: reqwest::Client,
    runtime: String,
}

/// The webhook secret of the runtime and the emulator's webhooks.
const WEBHOOK_SECRET: &str = "cred-webhook-secret-7c2e";
/// The emulator's development token: the test's own reads and writes (a
/// person's), never the runtime's.
const DEV_TOKEN: &str = "l3map-dev-token";
/// The agent API's token (the storm test reads tickets through it).
const AGENT_TOKEN: &str = "cred-agent-token-3b9d";
/// The fintech desk's custom fields (mappings/fintech/fields.l3map).
const SLA_TIER: u64 = 360001234;
const DISPUTE_TYPE: u64 = 360001238;

impl Drop for Soak {
    fn drop(&mut self) {
        let _ = self.emulate.kill();
        if let Some(r) = self.run.as_mut() {
            let _ = r.kill();
        }
    }
}

impl Soak {
    fn start_runtime(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("run.log"))
            .unwrap();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("run.out"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_l3map"))
            .args(["run", "--config"])
            .arg(self.dir.join("l3map.toml"))
            .env("SF_CLIENT_ID", "l3map-emulator-client")
            .env("SF_REFRESH_TOKEN", "l3map-emulator-refresh")
            .env("RUST_LOG", "info")
            .env("L3MAP_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("L3MAP_AGENT_TOKEN", AGENT_TOKEN)
            .stdout(out)
            .stderr(log)
            .spawn()
            .expect("l3map run starts");
        self.run = Some(child);
    }

    async fn healthy(&mut self, within: Duration) {
        let started = Instant::now();
        loop {
            if let Ok(r) = self
                .http
                .get(format!("{}/healthz", self.runtime))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.run.as_mut().map(|c| c.try_wait()) {
                panic!("l3map run exited with {status}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < within,
                "l3map run did not answer /healthz:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/healthz`: its status and body.
    async fn health(&self) -> (u16, serde_json::Value) {
        common::answer(self.http.get(format!("{}/healthz", self.runtime))).await
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.runtime))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn kill(&mut self) {
        if let Some(mut r) = self.run.take() {
            // SIGKILL: no shutdown code runs.
            r.kill().unwrap();
            r.wait().unwrap();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("run.log")).unwrap_or_default()
    }

    async fn oauth(&self, method: reqwest::Method, what: &str) -> serde_json::Value {
        self.http
            .request(method, format!("{}/__l3map/oauth/{what}", self.zendesk))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn oauth_stats(&self) -> serde_json::Value {
        self.oauth(reqwest::Method::GET, "stats").await
    }

    async fn requests(&self) -> u64 {
        let v: serde_json::Value = self
            .http
            .get(format!("{}/__l3map/stats", self.zendesk))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["requests"].as_u64().unwrap_or(0)
    }

    /// A call on the emulator as a person (the development token).
    async fn zendesk(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.zendesk))
            .bearer_auth(DEV_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    /// A disputed premium ticket: its webhook is decided into a hand-off
    /// (one private note, a group, a status) the runtime applies with its
    /// OAuth grant.
    async fn disputed_ticket(&self, subject: &str) -> u64 {
        let t = self
            .zendesk(
                reqwest::Method::POST,
                "/api/v2/tickets.json",
                Some(serde_json::json!({"ticket": {
                    "subject": subject,
                    "comment": {"body": subject},
                    "custom_fields": [
                        {"id": SLA_TIER, "value": "premium"},
                        {"id": DISPUTE_TYPE, "value": "fraud_claim"}
                    ]
                }})),
            )
            .await;
        t["ticket"]["id"].as_u64().unwrap()
    }

    async fn private_notes(&self, ticket: u64) -> usize {
        let v = self
            .zendesk(
                reqwest::Method::GET,
                &format!("/api/v2/tickets/{ticket}/comments.json"),
                None,
            )
            .await;
        v["comments"]
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["public"] == false).count())
    }
}

/// The emulator (access tokens living `ttl` seconds, webhooks to the
/// runtime), a grant minted for the dev client, and the fintech mappings
/// with `desk` on `auth oauth_code` seeded with that grant's refresh token.
async fn soak(name: &str, ttl: u64) -> (Soak, serde_json::Value) {
    let tmp = temp_dir(&format!("cred-{name}"));
    let dir = tmp.path().to_path_buf();
    let secret_file = dir.join("sf_client_secret");
    std::fs::write(&secret_file, "l3map-emulator-secret\n").unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::common::stack::copy_project(
        &root.join("mappings/fintech"),
        &dir.join("mappings"),
        &secret_file,
    );
    let port = free_port();
    let runtime = format!("http://127.0.0.1:{port}");
    let mut emulate = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args([
            "emulate",
            "--zendesk-port",
            "0",
            "--salesforce-port",
            "0",
            "--rate-limit",
            "100000",
            "--oauth-access-ttl",
            &ttl.to_string(),
            "--webhook-url",
        ])
        .arg(format!("{runtime}/webhooks/zendesk"))
        .arg(dir.join("mappings"))
        .env("L3MAP_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("l3map emulate starts");
    let (zendesk, _salesforce, lines) = emulator_urls(&mut emulate);
    common::drain(lines);
    let salesforce = _salesforce;
    let http = reqwest::Client::new();
    let grant: serde_json::Value = http
        .post(format!("{zendesk}/__l3map/oauth/grant/l3map-dev-client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = grant["refresh_token"].as_str().expect("a refresh token");
    std::fs::write(dir.join("refresh_token"), refresh).unwrap();
    std::fs::write(dir.join("client_secret"), "l3map-dev-client-secret").unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    let conns = dir.join("mappings/connections.l3map");
    let text = std::fs::read_to_string(&conns).unwrap().replace(
        "  token       env(\"ZENDESK_OAUTH_TOKEN\")\n",
        &format!(
            "  auth          oauth_code\n  client_id     \"l3map-dev-client\"\n  client_secret file(\"{}\")\n  refresh_token file(\"{}\")\n",
            dir.join("client_secret").display(),
            dir.join("refresh_token").display()
        ),
    );
    assert!(
        text.contains("oauth_code"),
        "the desk connection was rewritten"
    );
    std::fs::write(&conns, text).unwrap();
    std::fs::write(
        dir.join("l3map.toml"),
        format!(
            r#"mappings = "mappings"
state = "state/state.db"

[server]
listen = "127.0.0.1:{port}"

[webhook]
secret_env = "L3MAP_WEBHOOK_SECRET"
tolerance_secs = 300

[poll]
zendesk_interval_secs = 1
salesforce_interval_secs = 0

[connections.desk]
base_url = "{zendesk}"

[connections.crm]
login_url = "{salesforce}"

[outbox]
retry_min_ms = 200
retry_max_secs = 2

[agents.cred]
token_env = "L3MAP_AGENT_TOKEN"

[credentials]
key_file = "key"
"#
        ),
    )
    .unwrap();
    let s = Soak {
        _tmp: tmp,
        dir,
        zendesk,
        emulate,
        run: None,
        http,
        runtime,
    };
    (s, grant)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Waits until the emulator says `key` reached `at_least`.
async fn stat_reaches(s: &Soak, key: &str, at_least: u64, within: Duration) {
    let started = Instant::now();
    loop {
        let st = s.oauth_stats().await;
        if st[key].as_u64().unwrap_or(0) >= at_least {
            return;
        }
        assert!(
            started.elapsed() < within,
            "emulator {key} never reached {at_least}: {st}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the runtime inside a refresh whose answer the emulator holds
/// back after applying it: the stored refresh token is spent and the new
/// one never reaches the store.
async fn kill_in_held_refresh(s: &mut Soak, within: Duration) {
    let held = s.oauth_stats().await["held"].as_u64().unwrap();
    s.oauth(reqwest::Method::POST, "hold/5000").await;
    stat_reaches(s, "held", held + 1, within).await;
    s.kill();
}

/// No token the emulator ever issued is in the run's stderr (its log) or
/// stdout, its metrics, or the store file, its WAL or its shared memory.
async fn no_token_anywhere(s: &Soak, metrics: &str) {
    let issued = s.oauth(reqwest::Method::GET, "issued").await;
    let tokens: Vec<String> = issued["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert!(tokens.len() >= 3, "{issued}");
    let log = s.log() + &std::fs::read_to_string(s.dir.join("run.out")).unwrap_or_default();
    let mut files = Vec::new();
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        if let Ok(bytes) = std::fs::read(s.dir.join("state").join(f)) {
            files.push((f, bytes));
        }
    }
    for t in &tokens {
        assert!(!log.contains(t.as_str()), "a token in run.log or run.out");
        assert!(!metrics.contains(t.as_str()), "a token in /metrics");
        for (f, bytes) in &files {
            assert!(!contains(bytes, t), "a token in {f}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotating_grant_survives_twenty_kills_under_load() {
    let seed: u64 = std::env::var("L3MAP_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let minutes: Option<u64> = std::env::var("L3MAP_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok());
    // The acceptance soak: 60-second tokens for `minutes`; by default 3-
    // second tokens through 20 kills (about a minute and a half).
    let ttl = if minutes.is_some() { 60 } else { 3 };
    let length = Duration::from_secs(minutes.unwrap_or(0) * 60);
    println!("L3MAP_SOAK_SEED={seed} ttl {ttl}s");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut s, grant) = soak("soak", ttl).await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    // The standby is minted once the first grant is stored.
    stat_reaches(&s, "created", 1, Duration::from_secs(30)).await;
    let started = Instant::now();
    let mut tickets = Vec::new();
    let (mut kills, mut held_kills) = (0u32, 0u32);
    let mut round = 0;
    while kills < 20 || started.elapsed() < length {
        round += 1;
        for i in 0..2 {
            tickets.push(
                s.disputed_ticket(&format!("Disputed charge r{round}i{i}"))
                    .await,
            );
        }
        let before = s.requests().await;
        // Every fourth kill lands inside a held refresh answer (at least
        // five); the others at a random moment of a token's life.
        if round % 4 == 0 {
            kill_in_held_refresh(&mut s, Duration::from_secs(ttl * 2 + 10)).await;
            held_kills += 1;
        } else {
            let spread = if minutes.is_some() {
                30_000
            } else {
                ttl * 1000 + 500
            };
            tokio::time::sleep(Duration::from_millis(rng.u64(200..spread))).await;
            s.kill();
        }
        kills += 1;
        s.start_runtime();
        s.healthy(Duration::from_secs(30)).await;
        if round % 4 == 0 {
            // The restarted runtime finds the lost answer and recovers by
            // itself; the next kill comes after that (a kill during the
            // recovery would only have the next start redo it).
            let dir = s.dir.clone();
            common::until("the standby recovers", Duration::from_secs(30), || {
                std::fs::read_to_string(dir.join("run.log")).is_ok_and(|l| {
                    l.matches("recovered with the standby grant").count() == held_kills as usize
                })
            })
            .await;
        }
        // Working again: it calls Zendesk with a token it can use.
        let t = Instant::now();
        while s.requests().await < before + 3 {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "round {round} (seed {seed}): no requests after the restart:\n{}",
                s.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let st = s.oauth_stats().await;
        assert_eq!(
            st["reused"].as_u64(),
            Some(u64::from(held_kills)),
            "round {round} (seed {seed}): a refresh token was reused outside a held answer: {st}\n{}",
            s.log()
        );
    }
    // Every ticket's hand-off applied exactly once.
    let wait = Instant::now();
    'settle: loop {
        assert!(
            wait.elapsed() < Duration::from_secs(90),
            "not every ticket was handed off (seed {seed}):\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        for id in &tickets {
            if s.private_notes(*id).await == 0 {
                continue 'settle;
            }
        }
        break;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut duplicated = 0;
    for id in &tickets {
        if s.private_notes(*id).await != 1 {
            duplicated += 1;
        }
    }
    let st = s.oauth_stats().await;
    let log = s.log();
    let recovered = log.matches("recovered with the standby grant").count();
    let metrics = s.metrics().await;
    let (code, health) = s.health().await;
    println!(
        "soak: seed {seed}, ttl {ttl}s, {kills} kills ({held_kills} inside a held refresh answer), {} tickets, duplicated {duplicated}, {recovered} recoveries, emulator {st}, {:.0} s",
        tickets.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(duplicated, 0, "{log}");
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["outbox"]["dead"], 0, "{health}");
    assert!(kills >= 20 && held_kills >= 5);
    // Each lost answer was recovered by the standby, and nothing else was
    // ever refused.
    assert_eq!(st["reused"].as_u64(), Some(u64::from(held_kills)), "{st}");
    assert_eq!(st["refused"], st["reused"], "{st}");
    assert_eq!(recovered, held_kills as usize, "{log}");
    assert!(
        st["created"].as_u64().unwrap() > u64::from(held_kills),
        "{st}"
    );
    assert!(!log.contains("grant was refused"), "{log}");
    assert!(!log.contains("undecryptable"), "{log}");
    s.kill();
    no_token_anywhere(&s, &metrics).await;
    for t in [&grant["access_token"], &grant["refresh_token"]] {
        assert!(!log.contains(t.as_str().unwrap()));
    }
}

/// The lost-answer window, once, with its metrics: the refresh is applied
/// by the vendor, the process dies before the answer is stored, and the
/// restarted process recovers with the standby without an operator.
#[tokio::test]
async fn a_lost_refresh_answer_is_recovered_by_the_standby() {
    let (mut s, _) = soak("lost", 3).await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    stat_reaches(&s, "created", 1, Duration::from_secs(30)).await;
    let m = s.metrics().await;
    for r in ["ok", "transient", "invalid_grant", "recovered"] {
        assert!(
            m.contains(&format!(
                "l3map_credential_refresh_total{{connection=\"desk\",result=\"{r}\"}}"
            )),
            "{m}"
        );
    }
    assert!(
        m.contains("l3map_credential_needs_login{connection=\"desk\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("l3map_credential_access_expires_seconds{connection=\"desk\"}"),
        "{m}"
    );
    kill_in_held_refresh(&mut s, Duration::from_secs(20)).await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    let dir = s.dir.clone();
    common::until("the standby recovers", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.join("run.log"))
            .is_ok_and(|l| l.contains("recovered with the standby grant"))
    })
    .await;
    // A new standby is minted for the next time.
    stat_reaches(&s, "created", 2, Duration::from_secs(10)).await;
    let m = s.metrics().await;
    assert!(
        m.contains("l3map_credential_refresh_total{connection=\"desk\",result=\"recovered\"} 1"),
        "{m}"
    );
    let st = s.oauth_stats().await;
    assert_eq!(
        (st["reused"].as_u64(), st["refused"].as_u64()),
        (Some(1), Some(1)),
        "{st}"
    );
    // And it goes on refreshing with the recovered lineage.
    let refreshes = st["refreshes"].as_u64().unwrap();
    stat_reaches(&s, "refreshes", refreshes + 2, Duration::from_secs(15)).await;
    assert_eq!(s.oauth_stats().await["refused"].as_u64(), Some(1));
    assert_eq!(s.health().await.0, 200);
}

#[tokio::test]
async fn a_wrong_key_is_undecryptable_and_loud_never_a_fallback() {
    let (mut s, _) = soak("wrong-key", 30).await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    // The grant is stored once the first token is needed.
    let state = s.dir.join("state/state.db");
    common::until("the grant is stored", Duration::from_secs(30), || {
        rusqlite::Connection::open(&state)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM credentials WHERE connection = 'desk'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n == 1)
    })
    .await;
    s.kill();
    std::fs::write(
        s.dir.join("key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )
    .unwrap();
    let refused_before = s.oauth_stats().await["refused"].as_u64().unwrap();
    s.start_runtime();
    let dir = s.dir.clone();
    common::until("undecryptable is logged", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.join("run.log")).is_ok_and(|l| l.contains("undecryptable"))
    })
    .await;
    // Up, but not ready: it says which connection and what to do.
    let (code, health) = s.health().await;
    assert_eq!(code, 503, "{health}");
    assert!(
        health
            .to_string()
            .contains("cannot be opened with the configured key"),
        "{health}"
    );
    // Nothing fell back to the configured (already rotated) seed.
    assert_eq!(
        s.oauth_stats().await["refused"].as_u64().unwrap(),
        refused_before
    );
    let st: String = rusqlite::Connection::open(&state)
        .unwrap()
        .query_row(
            "SELECT state FROM credentials WHERE connection = 'desk'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(st, "undecryptable");
}

/// `l3map auth login` as the store sees it: a new grant, sealed with the
/// key, committed over the refused one while `run` is up.
fn login(s: &Soak, refresh: &serde_json::Value) {
    use l3map::runtime::seal::{Grant, SealKey, Vault};
    let store = std::sync::Arc::new(
        l3map::runtime::store::Store::open(&s.dir.join("state/state.db")).unwrap(),
    );
    let key = SealKey::parse(&l3map::connectors::Secret::new(KEY)).unwrap();
    let vault = Vault::new(store, std::sync::Arc::new(key));
    let generation = vault.load("desk").unwrap().unwrap().generation;
    let grant = Grant {
        access: l3map::connectors::Secret::new(refresh["access_token"].as_str().unwrap()),
        refresh: refresh["refresh_token"]
            .as_str()
            .map(l3map::connectors::Secret::new),
        access_expires_ms: None,
        refresh_expires_ms: None,
        instance_url: None,
    };
    assert!(vault
        .commit("desk", "zendesk_code", Some(generation), &grant)
        .unwrap());
}

#[tokio::test]
async fn a_revoked_grant_is_loud_once_waits_and_resumes_after_a_login() {
    let (mut s, _) = soak("revoked", 2).await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    let state = s.dir.join("state/state.db");
    common::until("the grant is stored", Duration::from_secs(30), || {
        rusqlite::Connection::open(&state)
            .and_then(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM credentials WHERE connection = 'desk'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n == 1)
    })
    .await;
    // An admin deletes the grant in Admin Center (its standby lineage
    // too: a revocation is never worked around).
    s.http
        .post(format!("{}/__l3map/oauth/revoke", s.zendesk))
        .send()
        .await
        .unwrap();
    let dir = s.dir.clone();
    common::until("the refusal is logged", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.join("run.log")).is_ok_and(|l| l.contains("grant was refused"))
    })
    .await;
    // Work that arrives meanwhile waits.
    let ticket = s.disputed_ticket("Disputed charge while revoked").await;
    let refused = s.oauth_stats().await["refused"].as_u64().unwrap();
    // Polled every second for 5 more seconds: no more refresh requests
    // with the dead token, and no second ERROR line.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(s.oauth_stats().await["refused"].as_u64().unwrap(), refused);
    let log = s.log();
    let errors = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("grant was refused"))
        .count();
    assert_eq!(errors, 1, "one ERROR per change of state:\n{log}");
    assert!(!log.contains("recovered with the standby"), "{log}");
    // The connection's actions wait as in an outage, never dead letters.
    let count = |q: &str| -> i64 {
        rusqlite::Connection::open(&state)
            .unwrap()
            .query_row(q, [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("SELECT COUNT(*) FROM outbox WHERE state = 'dead'"), 0);
    // (The ticket's event itself waits upstream: reading the ticket needs
    // the grant too, so the poll cursor does not move past it.)
    assert_eq!(s.private_notes(ticket).await, 0);
    assert!(log.contains("l3map auth login --connection desk"), "{log}");
    let st: String = rusqlite::Connection::open(&state)
        .unwrap()
        .query_row(
            "SELECT state FROM credentials WHERE connection = 'desk'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(st, "needs_login");
    // Loud: not ready, saying what to run; the metric says so too.
    let (code, health) = s.health().await;
    assert_eq!(code, 503, "{health}");
    let why = health.to_string();
    assert!(
        why.contains("connection desk") && why.contains("l3map auth login --connection desk"),
        "{why}"
    );
    let m = s.metrics().await;
    assert!(
        m.contains("l3map_credential_needs_login{connection=\"desk\"} 1"),
        "{m}"
    );
    assert!(
        m.contains(
            "l3map_credential_refresh_total{connection=\"desk\",result=\"invalid_grant\"} 1"
        ),
        "{m}"
    );
    // A person signs in again (the grant lands in the store while run is
    // up): the waiting actions go on by themselves.
    let fresh = s
        .oauth(reqwest::Method::POST, "grant/l3map-dev-client")
        .await;
    login(&s, &fresh);
    common::eventually(
        "the waiting hand-off is applied",
        Duration::from_secs(60),
        || async {
            match s.private_notes(ticket).await {
                1 => Ok(()),
                n => Err(format!("{n} notes\n{}", s.log())),
            }
        },
    )
    .await;
    let (code, health) = s.health().await;
    assert_eq!(code, 200, "{health}");
    let m = s.metrics().await;
    assert!(
        m.contains("l3map_credential_needs_login{connection=\"desk\"} 0"),
        "{m}"
    );
    s.healthy(Duration::from_secs(5)).await;
}

/// Sets the stored access token's wall-clock expiry (a plaintext column,
/// outside the sealed bytes): what a clock skewed ahead or behind makes
/// of it.
fn store_expiry(s: &Soak, at_ms: i64) {
    rusqlite::Connection::open(s.dir.join("state/state.db"))
        .unwrap()
        .execute(
            "UPDATE credentials SET access_expires_ms = ?1 WHERE connection = 'desk'",
            rusqlite::params![at_ms],
        )
        .unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits until the grant is stored and its standby minted.
async fn settled(s: &mut Soak) {
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    stat_reaches(s, "created", 1, Duration::from_secs(30)).await;
}

/// A skewed view of the clock: the store says the access token is good
/// for a day while Zendesk has expired it (a 401 forces exactly one
/// refresh), then that it expired an hour ago while it is good (it is
/// refreshed once before use); neither loops.
#[tokio::test]
async fn a_skewed_expiry_costs_one_refresh_and_never_loops() {
    let (mut s, _) = soak("skew", 600).await;
    settled(&mut s).await;
    s.kill();
    store_expiry(&s, now_ms() + 86_400_000);
    s.oauth(reqwest::Method::POST, "expire").await;
    let before = s.oauth_stats().await["refreshes"].as_u64().unwrap();
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    stat_reaches(&s, "refreshes", before + 1, Duration::from_secs(20)).await;
    // Polled every second for five more: nothing more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let st = s.oauth_stats().await;
    assert_eq!(
        st["refreshes"].as_u64(),
        Some(before + 1),
        "{st}\n{}",
        s.log()
    );
    assert_eq!(st["refused"], 0, "{st}");
    s.kill();
    store_expiry(&s, now_ms() - 3_600_000);
    let before = before + 1;
    let requests = s.requests().await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    stat_reaches(&s, "refreshes", before + 1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let st = s.oauth_stats().await;
    assert_eq!(
        st["refreshes"].as_u64(),
        Some(before + 1),
        "{st}\n{}",
        s.log()
    );
    assert_eq!(st["refused"], 0, "{st}");
    assert!(s.requests().await > requests + 3, "{}", s.log());
    assert_eq!(s.health().await.0, 200);
}

/// 200 concurrent agent reads through one process on an expired access
/// token: one refresh for all of them, and again one for the next
/// generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_on_an_expired_token_refreshes_once_per_generation() {
    let (mut s, _) = soak("storm", 600).await;
    settled(&mut s).await;
    let mut tickets = Vec::new();
    for i in 0..20 {
        tickets.push(s.disputed_ticket(&format!("Storm {i}")).await);
    }
    // The webhooks and polls of those settle first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for generation in 0..2 {
        let before = s.oauth_stats().await["refreshes"].as_u64().unwrap();
        s.oauth(reqwest::Method::POST, "expire").await;
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let req = s
                    .http
                    .get(format!(
                        "{}/v1/context/{}",
                        s.runtime,
                        tickets[i % tickets.len()]
                    ))
                    .bearer_auth(AGENT_TOKEN)
                    .timeout(Duration::from_secs(30));
                tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
            })
            .collect();
        let mut ok = 0;
        for c in calls {
            let status = c.await.unwrap().expect("answered");
            // The API may shed load (503 busy); never a credential error.
            assert!(matches!(status, 200 | 503 | 429), "{status}");
            ok += usize::from(status == 200);
        }
        assert!(ok > 0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let st = s.oauth_stats().await;
        assert_eq!(
            st["refreshes"].as_u64(),
            Some(before + 1),
            "storm {generation}: {st}\n{}",
            s.log()
        );
        assert_eq!(st["refused"], 0, "{st}");
    }
}

/// A client-credentials connection keeps its token in the store too (a
/// key is configured): a restart uses the stored access token instead of
/// asking for another, and no standby is minted (nothing rotates).
#[tokio::test]
async fn client_credentials_tokens_are_kept_in_the_store_across_a_restart() {
    let (mut s, _) = soak("cc", 600).await;
    let conns = s.dir.join("mappings/connections.l3map");
    let text: String = std::fs::read_to_string(&conns)
        .unwrap()
        .replace(
            "  auth          oauth_code\n",
            "  auth          client_credentials\n",
        )
        .lines()
        .filter(|l| !l.trim_start().starts_with("refresh_token file("))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(text.contains("client_credentials"));
    std::fs::write(&conns, text).unwrap();
    let grants = s.oauth_stats().await["grants"].as_u64().unwrap();
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    let state = s.dir.join("state/state.db");
    common::until("the token is stored", Duration::from_secs(30), || {
        rusqlite::Connection::open(&state)
            .and_then(|c| {
                c.query_row(
                    "SELECT flow FROM credentials WHERE connection = 'desk'",
                    [],
                    |r| r.get::<_, String>(0),
                )
            })
            .is_ok_and(|f| f == "zendesk_client_credentials")
    })
    .await;
    assert_eq!(s.oauth_stats().await["grants"].as_u64(), Some(grants + 1));
    s.kill();
    let before = s.requests().await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    common::eventually(
        "requests after the restart",
        Duration::from_secs(30),
        || async {
            let n = s.requests().await;
            if n > before + 3 {
                Ok(())
            } else {
                Err(format!("{n}"))
            }
        },
    )
    .await;
    let st = s.oauth_stats().await;
    assert_eq!(st["grants"].as_u64(), Some(grants + 1), "{st}\n{}", s.log());
    assert_eq!(st["created"], 0, "{st}");
    s.kill();
    no_token_anywhere(&s, "").await;
}

/// `l3map schema pull --config` beside a running `l3map run` on the same
/// `auth oauth_code` connection, its access token expired: the pull signs
/// in with the grant in the runtime's store (a refresh it stores there),
/// and the runtime goes on without a login: it adopts the stored grant
/// instead of needing one, and still applies a hand-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_pull_beside_run_shares_the_stored_grant() {
    let (mut s, _) = soak("pull", 600).await;
    settled(&mut s).await;
    s.oauth(reqwest::Method::POST, "expire").await;
    let before = s.oauth_stats().await;
    let pulled = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["schema", "pull", "--connection", "desk", "--config"])
        .arg(s.dir.join("l3map.toml"))
        .output()
        .expect("schema pull runs");
    let err = String::from_utf8_lossy(&pulled.stderr).to_string();
    assert!(pulled.status.success(), "{err}");
    assert!(s.dir.join("mappings/l3map.lock.json").exists());
    let after = s.oauth_stats().await;
    assert_eq!(
        after["refreshes"].as_u64(),
        before["refreshes"].as_u64().map(|n| n + 1),
        "the pull refreshed once: {after}"
    );
    // The runtime's own copy of the spent refresh token is never the end:
    // it rereads the store and uses the pull's grant.
    let ticket = s.disputed_ticket("Pulled beside run").await;
    let started = Instant::now();
    while s.private_notes(ticket).await < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hand-off never landed: {}\n{}",
            s.oauth_stats().await,
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.private_notes(ticket).await, 1);
    // It adopted the pull's access token: no refresh of its own, no
    // refused (spent) refresh token.
    let end = s.oauth_stats().await;
    assert_eq!(end["refreshes"], after["refreshes"], "{end}");
    assert_eq!(end["refused"], 0, "{end}");
    assert_eq!(s.health().await.0, 200, "{}", s.log());
    let m = s.metrics().await;
    assert!(
        m.contains("l3map_credential_needs_login{connection=\"desk\"} 0"),
        "{m}"
    );
    no_token_anywhere(&s, &m).await;
    assert!(!err.contains("refresh_token"), "{err}");
}

/// The Salesforce emulator's URL, as the soak's l3map.toml names it.
fn salesforce_url(s: &Soak) -> String {
    let toml = std::fs::read_to_string(s.dir.join("l3map.toml")).unwrap();
    toml.lines()
        .find_map(|l| l.strip_prefix("login_url = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("login_url")
        .to_string()
}

/// Red team F2/F1: a Salesforce refresh token (the block's older form,
/// without `flow`, kept in the store since a key is configured) that
/// Salesforce refuses is as loud as a Zendesk one: /healthz names the
/// connection and the command, the gauge is 1, and `auth status` says
/// `needs_login`; nothing is sent again with the refused token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_salesforce_refresh_token_is_loud() {
    let (mut s, _) = soak("sf-revoked", 600).await;
    settled(&mut s).await;
    let sf = salesforce_url(&s);
    let post = |what: &str| s.http.post(format!("{sf}/__l3map/oauth/{what}")).send();
    assert!(post("revoke").await.unwrap().status().is_success());
    // A ticket's links look its requester up in Salesforce.
    s.disputed_ticket("Salesforce revoked").await;
    let started = Instant::now();
    loop {
        let (code, body) = s.health().await;
        if code == 503 && body.to_string().contains("auth login --connection crm") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{code} {body}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = s.metrics().await;
    assert!(
        m.contains("l3map_credential_needs_login{connection=\"crm\"} 1"),
        "{m}"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["auth", "status", "--config"])
        .arg(s.dir.join("l3map.toml"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        out.lines()
            .any(|l| l.contains("crm") && l.contains("needs_login")),
        "{out}"
    );
    assert!(!out.contains("l3map-emulator-refresh"), "{out}");
}

/// Red team F9/F8: a configured seed that the vendor refuses (a typo, an
/// old token) is loud from the first refusal and across a restart, and is
/// not sent again: the store keeps the refusal until a login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_seed_is_loud_and_not_sent_again() {
    let (mut s, _) = soak("bad-seed", 600).await;
    std::fs::write(
        s.dir.join("refresh_token"),
        "not-a-refresh-token-of-zendesk",
    )
    .unwrap();
    s.start_runtime();
    let wait_503 = |s: &Soak| {
        let (http, url) = (s.http.clone(), format!("{}/healthz", s.runtime));
        async move {
            let started = Instant::now();
            loop {
                if let Ok(r) = http.get(&url).send().await {
                    let code = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    if code == 503 && body.contains("auth login --connection desk") {
                        return;
                    }
                }
                assert!(started.elapsed() < Duration::from_secs(40), "never 503");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_503(&s).await;
    let refused = s.oauth_stats().await["refused"].as_u64().unwrap();
    assert!(refused >= 1);
    let errors = |log: &str| {
        log.lines()
            .filter(|l| l.contains("ERROR") && l.contains("the OAuth grant was refused"))
            .count()
    };
    assert_eq!(errors(&s.log()), 1, "{}", s.log());
    s.kill();
    s.start_runtime();
    wait_503(&s).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        s.oauth_stats().await["refused"].as_u64(),
        Some(refused),
        "the refused seed was sent again:\n{}",
        s.log()
    );
}

/// Red team F3: another process (`schema diff --config`) killed inside its
/// refresh, after Zendesk applied it: the running `l3map run`, whose next
/// refresh is refused, sees that process's unanswered intent in the store
/// and recovers with the standby instead of asking for a login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_killed_in_its_refresh_is_recovered_by_the_standby() {
    let (mut s, _) = soak("other-killed", 600).await;
    settled(&mut s).await;
    // The standby the runtime minted is committed (generation 2) before
    // the expiry is edited: that commit writes the expiry again.
    let state = s.dir.join("state/state.db");
    common::until("the standby is stored", Duration::from_secs(30), || {
        rusqlite::Connection::open(&state)
            .and_then(|c| {
                c.query_row(
                    "SELECT generation FROM credentials WHERE connection = 'desk'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|g| g >= 2)
    })
    .await;
    // Expired as the store says (the other process refreshes first), not
    // yet for the runtime, whose clock says an hour is left.
    store_expiry(&s, now_ms() - 3_600_000);
    let held = s.oauth_stats().await["held"].as_u64().unwrap();
    s.oauth(reqwest::Method::POST, "hold/10000").await;
    let mut diff = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["schema", "diff", "--connection", "desk", "--config"])
        .arg(s.dir.join("l3map.toml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.dir.join("diff.err")).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while s.oauth_stats().await["held"].as_u64().unwrap() < held + 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the other process never refreshed: {}
{}",
            s.oauth_stats().await,
            std::fs::read_to_string(s.dir.join("diff.err")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    diff.kill().unwrap();
    diff.wait().unwrap();
    // The runtime's next call: its token expired. The dead process's
    // intent does not hold it off (its OS lock died with it); its refresh
    // is refused.
    let ticket = s.disputed_ticket("After the other process died").await;
    let started = Instant::now();
    while s.private_notes(ticket).await < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{}\n{}",
            s.oauth_stats().await,
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.health().await.0, 200, "{}", s.log());
    let m = s.metrics().await;
    assert!(
        m.contains("l3map_credential_refresh_total{connection=\"desk\",result=\"recovered\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("l3map_credential_needs_login{connection=\"desk\"} 0"),
        "{m}"
    );
}
