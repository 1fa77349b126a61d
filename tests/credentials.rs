//! OAuth grants that survive: a runtime on an `auth oauth_code` connection
//! against the Zendesk emulator with 3-second access tokens and single-use
//! refresh tokens, killed with SIGKILL again and again (at seeded moments,
//! so some land during a refresh), keeps working after every restart with
//! no operator action: no refresh token is ever refused, and no token is
//! ever in the store file in the clear.

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
        let child = Command::new(env!("CARGO_BIN_EXE_l3map"))
            .args(["run", "--config"])
            .arg(self.dir.join("l3map.toml"))
            .env("SF_CLIENT_ID", "l3map-emulator-client")
            .env("SF_REFRESH_TOKEN", "l3map-emulator-refresh")
            .env("RUST_LOG", "info")
            .env_remove("L3MAP_WEBHOOK_SECRET")
            .stdout(Stdio::null())
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

    async fn oauth_stats(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/__l3map/oauth/stats", self.zendesk))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
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
}

/// The emulator (access tokens living `ttl` seconds), a grant minted for
/// the dev client, and the fintech mappings with `desk` on `auth
/// oauth_code` seeded with that grant's refresh token.
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
        ])
        .arg(dir.join("mappings"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("l3map emulate starts");
    let (zendesk, salesforce, lines) = emulator_urls(&mut emulate);
    common::drain(lines);
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
    let port = free_port();
    std::fs::write(
        dir.join("l3map.toml"),
        format!(
            r#"mappings = "mappings"
state = "state/state.db"

[server]
listen = "127.0.0.1:{port}"

[poll]
zendesk_interval_secs = 1

[connections.desk]
base_url = "{zendesk}"

[connections.crm]
login_url = "{salesforce}"

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
        runtime: format!("http://127.0.0.1:{port}"),
    };
    (s, grant)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_rotating_grant_survives_repeated_kill_9() {
    let seed: u64 = std::env::var("L3MAP_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("L3MAP_SOAK_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut s, grant) = soak("soak", 2).await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    for round in 0..6 {
        // 2-second tokens renewed 0.5 s early, polled every second: a kill
        // within 0-4 s often lands during a refresh.
        let before = s.requests().await;
        tokio::time::sleep(Duration::from_millis(rng.u64(500..4000))).await;
        s.kill();
        s.start_runtime();
        s.healthy(Duration::from_secs(30)).await;
        // Working again: it calls Zendesk with a token it can use.
        let started = Instant::now();
        while s.requests().await < before + 3 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: no requests after the restart:\n{}",
                s.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let st = s.oauth_stats().await;
        assert_eq!(
            st["refused"],
            0,
            "round {round} (seed {seed}): a refresh token was refused:\n{}",
            s.log()
        );
    }
    // Several refreshes happened, and none was refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = s.oauth_stats().await;
    println!("emulator OAuth: {st}");
    assert!(st["grants"].as_u64().unwrap() >= 5, "{st}");
    assert_eq!(st["refused"], 0, "{}", s.log());
    let log = s.log();
    assert!(!log.contains("grant was refused"), "{log}");
    assert!(!log.contains("undecryptable"), "{log}");
    s.kill();
    // No token in the clear in the store, its WAL or its shared memory,
    // nor in the log.
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        let Ok(bytes) = std::fs::read(s.dir.join("state").join(f)) else {
            continue;
        };
        for t in [&grant["access_token"], &grant["refresh_token"]] {
            assert!(!contains(&bytes, t.as_str().unwrap()), "a token in {f}");
        }
    }
    for t in [&grant["access_token"], &grant["refresh_token"]] {
        assert!(!log.contains(t.as_str().unwrap()));
    }
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
                c.query_row("SELECT COUNT(*) FROM credentials", [], |r| {
                    r.get::<_, i64>(0)
                })
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
    s.healthy(Duration::from_secs(30)).await;
    let dir = s.dir.clone();
    common::until("undecryptable is logged", Duration::from_secs(30), || {
        std::fs::read_to_string(dir.join("run.log")).is_ok_and(|l| l.contains("undecryptable"))
    })
    .await;
    // Nothing fell back to the configured (already rotated) seed.
    assert_eq!(
        s.oauth_stats().await["refused"].as_u64().unwrap(),
        refused_before
    );
    let st: String = rusqlite::Connection::open(&state)
        .unwrap()
        .query_row("SELECT state FROM credentials", [], |r| r.get(0))
        .unwrap();
    assert_eq!(st, "undecryptable");
}

#[tokio::test]
async fn a_revoked_grant_is_loud_once_and_not_hammered() {
    let (mut s, _) = soak("revoked", 2).await;
    s.start_runtime();
    s.healthy(Duration::from_secs(30)).await;
    let state = s.dir.join("state/state.db");
    common::until("the grant is stored", Duration::from_secs(30), || {
        rusqlite::Connection::open(&state)
            .and_then(|c| {
                c.query_row("SELECT COUNT(*) FROM credentials", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .is_ok_and(|n| n == 1)
    })
    .await;
    // An admin deletes the grant in Admin Center.
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
    // The connection's actions wait as in an outage, never dead letters.
    let dead: i64 = rusqlite::Connection::open(&state)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'dead'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dead, 0);
    assert!(log.contains("l3map auth login --connection desk"), "{log}");
    let st: String = rusqlite::Connection::open(&state)
        .unwrap()
        .query_row("SELECT state FROM credentials", [], |r| r.get(0))
        .unwrap();
    assert_eq!(st, "needs_login");
    // The runtime itself is still up (other connections keep working).
    s.healthy(Duration::from_secs(5)).await;
}
