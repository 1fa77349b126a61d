//! `l3map auth login` and `l3map auth status` through the real binary,
//! against `l3map emulate`'s authorization endpoints (Zendesk
//! `/oauth/authorizations/new`, Salesforce `/services/oauth2/authorize`,
//! both with PKCE). The test plays the browser: it reads the URL the
//! login prints, GETs it without following the redirect, and GETs the
//! `Location` on the login's loopback listener. Also: a refused, forged
//! or late sign-in exits non-zero with one error line; a running `l3map
//! run` whose grant was revoked resumes after a login, without a restart;
//! a Salesforce connection whose refresh tokens rotate survives `kill -9`.

use crate::common::{self, emulator_urls, free_port, temp_dir};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A base64 key of 32 bytes, for the tests only.
const KEY: &str = "bDNtYXAtdGVzdC1rZXktMzItYnl0ZXMtbG9uZy0tLS0=";
const DEV_TOKEN: &str = "l3map-dev-token";

struct Rig {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    zendesk: String,
    salesforce: String,
    emulate: Child,
    run: Option<Child>,
    http: reqwest::Client,
    runtime: String,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.emulate.kill();
        if let Some(r) = self.run.as_mut() {
            let _ = r.kill();
        }
    }
}

/// How the two connections sign in.
struct Setup<'a> {
    /// The desk's `auth oauth_code` block lines (None: its fixed token).
    desk: Option<&'a str>,
    /// What replaces the crm's `refresh_token` line.
    crm: &'a str,
    emulate: &'a [&'a str],
}

async fn rig(name: &str, setup: Setup<'_>) -> Rig {
    let tmp = temp_dir(&format!("auth-{name}"));
    let dir = tmp.path().to_path_buf();
    let secret_file = dir.join("sf_client_secret");
    std::fs::write(&secret_file, "l3map-emulator-secret\n").unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    common::stack::copy_project(
        &root.join("mappings/fintech"),
        &dir.join("mappings"),
        &secret_file,
    );
    let mut emulate = Command::new(common::BIN)
        .args([
            "emulate",
            "--zendesk-port",
            "0",
            "--salesforce-port",
            "0",
            "--rate-limit",
            "100000",
        ])
        .args(setup.emulate)
        .arg(dir.join("mappings"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("l3map emulate starts");
    let (zendesk, salesforce, lines) = emulator_urls(&mut emulate);
    common::drain(lines);
    std::fs::write(dir.join("client_secret"), "l3map-dev-client-secret").unwrap();
    std::fs::write(dir.join("key"), KEY).unwrap();
    let conns = dir.join("mappings/connections.l3map");
    let mut text = std::fs::read_to_string(&conns).unwrap();
    if let Some(desk) = setup.desk {
        text = text.replace(
            "  token       env(\"ZENDESK_OAUTH_TOKEN\")\n",
            &desk.replace(
                "CLIENT_SECRET",
                &dir.join("client_secret").display().to_string(),
            ),
        );
    }
    text = text.replace("  refresh_token  env(\"SF_REFRESH_TOKEN\")\n", setup.crm);
    std::fs::write(&conns, text).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("l3map.toml"),
        format!(
            "mappings = \"mappings\"\nstate = \"state/state.db\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[poll]\nzendesk_interval_secs = 1\nsalesforce_interval_secs = 1\n\n[connections.desk]\nbase_url = \"{zendesk}\"\n\n[connections.crm]\nlogin_url = \"{salesforce}\"\n\n[credentials]\nkey_file = \"key\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    Rig {
        _tmp: tmp,
        dir,
        zendesk,
        salesforce,
        emulate,
        run: None,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        runtime: format!("http://127.0.0.1:{port}"),
    }
}

const DESK_CODE: &str = "  auth          oauth_code\n  client_id     \"l3map-dev-client\"\n  client_secret file(\"CLIENT_SECRET\")\n";
const CRM_WEB_SERVER: &str = "  flow           web_server\n";

/// A running `l3map auth login`, its URL read from its first line.
struct Login {
    child: Child,
    out: BufReader<ChildStdout>,
    url: String,
}

impl Rig {
    fn l3map(&self) -> Command {
        let mut c = Command::new(common::BIN);
        c.env("SF_CLIENT_ID", "l3map-emulator-client")
            .env("SF_REFRESH_TOKEN", "l3map-emulator-refresh")
            .env("ZENDESK_OAUTH_TOKEN", DEV_TOKEN)
            .env_remove("L3MAP_WEBHOOK_SECRET")
            .env_remove("L3MAP_CREDENTIALS_KEY")
            .env_remove("L3MAP_CONFIG");
        c
    }

    fn login(&self, connection: &str, extra: &[&str]) -> Login {
        let mut child = self
            .l3map()
            .args(["auth", "login", "--connection", connection, "--config"])
            .arg(self.dir.join("l3map.toml"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("l3map auth login starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        out.read_line(&mut url).unwrap();
        Login {
            child,
            out,
            url: url.trim().to_string(),
        }
    }

    /// The browser: the authorization page's redirect, then the login's
    /// listener. The `Location` and the page the listener answered.
    async fn browse(&self, url: &str, edit: impl Fn(String) -> String) -> (String, String) {
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302, "{}", r.text().await.unwrap());
        let location = edit(r.headers()["location"].to_str().unwrap().to_string());
        let page = self.http.get(&location).send().await.unwrap();
        (location, page.text().await.unwrap())
    }

    fn status(&self, format: &str) -> (i32, String) {
        let out = self
            .l3map()
            .args(["auth", "status", "--format", format, "--config"])
            .arg(self.dir.join("l3map.toml"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.join("state/state.db")).unwrap()
    }

    /// (state, generation) of a connection's row.
    fn row(&self, connection: &str) -> Option<(String, i64)> {
        self.db()
            .query_row(
                "SELECT state, generation FROM credentials WHERE connection = ?1",
                [connection],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok()
    }

    fn start_runtime(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("run.log"))
            .unwrap();
        let child = self
            .l3map()
            .args(["run", "--config"])
            .arg(self.dir.join("l3map.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("l3map run starts");
        self.run = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut r) = self.run.take() {
            r.kill().unwrap();
            r.wait().unwrap();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("run.log")).unwrap_or_default()
    }

    async fn healthy(&mut self) {
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
            if let Some(Ok(Some(st))) = self.run.as_mut().map(|c| c.try_wait()) {
                panic!("l3map run exited with {st}:\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get_json(&self, url: String) -> serde_json::Value {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, url: String) {
        let r = self.http.post(url).send().await.unwrap();
        assert!(r.status().is_success());
    }
}

impl Login {
    /// Exit code, stdout after the URL, stderr.
    fn finish(mut self) -> (i32, String, String) {
        let status = self.child.wait().unwrap();
        let mut out = String::new();
        self.out.read_to_string(&mut out).unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code().unwrap_or(-1), out, err)
    }
}

/// The one error line (the URL hint before it is not an error).
fn one_error(err: &str) -> &str {
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{err}");
    assert!(
        err.lines().count() <= 2,
        "nothing but the hint and the error:\n{err}"
    );
    errors[0]
}

fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn zendesk_login_stores_a_grant_that_status_shows_without_the_key() {
    let r = rig(
        "zendesk",
        Setup {
            desk: Some(DESK_CODE),
            crm: "  refresh_token  env(\"SF_REFRESH_TOKEN\")\n",
            emulate: &[],
        },
    )
    .await;
    // Nothing stored yet: `none`, exit 1.
    let (code, text) = r.status("human");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("desk") && text.contains("none"), "{text}");
    let login = r.login("desk", &["--timeout-secs", "30"]);
    assert!(
        login
            .url
            .starts_with(&format!("{}/oauth/authorizations/new?", r.zendesk)),
        "{}",
        login.url
    );
    assert_eq!(
        query_param(&login.url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&login.url, "response_type").as_deref(),
        Some("code")
    );
    let (location, page) = r.browse(&login.url, |l| l).await;
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    assert_eq!(
        query_param(&location, "state"),
        query_param(&login.url, "state")
    );
    assert!(page.contains("l3map received the sign-in"), "{page}");
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("stored a grant for connection desk (access token expires in 30m"),
        "{out}"
    );
    assert_eq!(r.row("desk"), Some(("ok".into(), 1)));
    // The code was single use: the emulator refuses it a second time.
    let code_param = query_param(&location, "code").unwrap();
    let again = r
        .http
        .post(format!("{}/oauth/tokens", r.zendesk))
        .json(
            &serde_json::json!({"grant_type": "authorization_code", "code": code_param,
            "client_id": "l3map-dev-client", "client_secret": "l3map-dev-client-secret"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 400);

    // Status reads the plaintext columns: no key needed.
    std::fs::remove_file(r.dir.join("key")).unwrap();
    let (code, json) = r.status("json");
    assert_eq!(code, 0, "{json}");
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let desk = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["connection"] == "desk")
        .unwrap();
    assert_eq!(desk["state"], "ok");
    assert_eq!(desk["flow"], "zendesk_code");
    assert_eq!(desk["generation"], 1);
    assert!(desk["access_expires_ms"].as_i64().unwrap() > 0);
    assert!(desk["refresh_expires_ms"].as_i64().unwrap() > 0);
    let (_, human) = r.status("human");
    assert!(
        human.contains("zendesk_code") && human.contains("in 29m"),
        "{human}"
    );
    // A login without the key is refused before the browser.
    let (code, _, err) = r.login("desk", &[]).finish();
    assert_eq!(code, 2);
    assert!(one_error(&err).contains("credentials"), "{err}");
    // With another key (the old one lost), a login with --replace-key
    // replaces the row: the next generation, sealed with the new key.
    std::fs::write(
        r.dir.join("key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )
    .unwrap();
    let key_id = |r: &Rig| -> String {
        r.db()
            .query_row(
                "SELECT key_id FROM credentials WHERE connection = 'desk'",
                [],
                |x| x.get(0),
            )
            .unwrap()
    };
    let before = key_id(&r);
    // Refused while the grant works (a running service with the other key
    // could not open a new one), before the browser: --replace-key says
    // the key is being replaced.
    let (code, _, err) = r.login("desk", &["--timeout-secs", "30"]).finish();
    assert_eq!(code, 2, "{err}");
    assert!(
        one_error(&err).contains("sealed with another key") && err.contains("--replace-key"),
        "{err}"
    );
    assert_eq!(key_id(&r), before);
    let login = r.login("desk", &["--timeout-secs", "30", "--replace-key"]);
    r.browse(&login.url, |l| l).await;
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(r.row("desk"), Some(("ok".into(), 2)));
    assert_ne!(key_id(&r), before);
}

#[tokio::test]
async fn salesforce_web_server_login_stores_instance_and_refresh_token() {
    let mut r = rig(
        "salesforce",
        Setup {
            desk: None,
            crm: CRM_WEB_SERVER,
            emulate: &[],
        },
    )
    .await;
    let login = r.login("crm", &["--timeout-secs", "30"]);
    assert!(
        login
            .url
            .starts_with(&format!("{}/services/oauth2/authorize?", r.salesforce)),
        "{}",
        login.url
    );
    let (_, page) = r.browse(&login.url, |l| l).await;
    assert!(page.contains("l3map received"), "{page}");
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("stored a grant for connection crm"), "{out}");
    assert_eq!(r.row("crm"), Some(("ok".into(), 1)));
    // The runtime signs in with the stored grant (no seed is configured):
    // Salesforce is polled, and nothing is refused.
    r.start_runtime();
    r.healthy().await;
    let sf = r.salesforce.clone();
    let started = Instant::now();
    loop {
        let st = r.get_json(format!("{sf}/__l3map/oauth/stats")).await;
        if st["grants"].as_u64().unwrap_or(0) >= 2 {
            assert_eq!(st["refused"], 0, "{}", r.log());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{st}\n{}",
            r.log()
        );
        // Sessions end: the runtime refreshes with the stored token.
        r.post(format!("{sf}/__l3map/oauth/expire")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!r.log().contains("grant was refused"), "{}", r.log());
}

#[tokio::test]
async fn a_forged_denied_or_late_sign_in_exits_non_zero_with_one_line() {
    let r = rig(
        "refusals",
        Setup {
            desk: Some(DESK_CODE),
            crm: "  refresh_token  env(\"SF_REFRESH_TOKEN\")\n",
            emulate: &[],
        },
    )
    .await;
    // A redirect whose state is not this login's.
    let login = r.login("desk", &["--timeout-secs", "30"]);
    let (_, page) = r
        .browse(&login.url, |l| l.replace("state=", "state=forged"))
        .await;
    assert!(page.contains("did not match"), "{page}");
    let (code, out, err) = login.finish();
    assert_eq!(code, 1, "{out}{err}");
    assert!(one_error(&err).contains("`state` does not match"), "{err}");
    // The user denies.
    let login = r.login("desk", &["--timeout-secs", "30"]);
    let url = format!("{}&l3map_decision=deny", login.url);
    let (location, _) = r.browse(&url, |l| l).await;
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    let (code, _, err) = login.finish();
    assert_eq!(code, 1);
    assert!(one_error(&err).contains("access_denied"), "{err}");
    // Nobody comes back.
    let (code, _, err) = r.login("desk", &["--timeout-secs", "1"]).finish();
    assert_eq!(code, 1);
    assert!(one_error(&err).contains("within 1 s"), "{err}");
    // Nothing was stored by any of them.
    assert_eq!(r.row("desk"), None);
    // Not an OAuth connection, or no such connection: usage errors.
    let (code, _, err) = r.login("crm", &[]).finish();
    assert_eq!(code, 2);
    assert!(one_error(&err).contains("flow web_server"), "{err}");
    let (code, _, err) = r.login("nope", &[]).finish();
    assert_eq!(code, 2);
    assert!(one_error(&err).contains("no connection `nope`"), "{err}");
}

#[tokio::test]
async fn a_run_waiting_for_a_login_resumes_after_it_without_a_restart() {
    let mut r = rig(
        "resume",
        Setup {
            desk: Some(&format!("{DESK_CODE}  refresh_token file(\"SEED\")\n")),
            crm: "  refresh_token  env(\"SF_REFRESH_TOKEN\")\n",
            emulate: &["--oauth-access-ttl", "2"],
        },
    )
    .await;
    // Seed the first grant (as an admin's earlier consent would).
    let grant: serde_json::Value = r
        .http
        .post(format!(
            "{}/__l3map/oauth/grant/l3map-dev-client",
            r.zendesk
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seed = grant["refresh_token"].as_str().unwrap().to_string();
    std::fs::write(r.dir.join("seed"), &seed).unwrap();
    let conns = r.dir.join("mappings/connections.l3map");
    let text = std::fs::read_to_string(&conns)
        .unwrap()
        .replace("SEED", &r.dir.join("seed").display().to_string());
    std::fs::write(&conns, text).unwrap();
    r.start_runtime();
    r.healthy().await;
    common::until(
        "the seeded grant is stored",
        Duration::from_secs(30),
        || r.row("desk").is_some(),
    )
    .await;
    // An admin revokes the grant: the run marks it and waits.
    r.post(format!("{}/__l3map/oauth/revoke", r.zendesk)).await;
    common::until("needs_login", Duration::from_secs(30), || {
        r.row("desk").is_some_and(|(s, _)| s == "needs_login")
    })
    .await;
    let (_, generation) = r.row("desk").unwrap();
    let (code, status) = r.status("human");
    assert_eq!(code, 1, "{status}");
    assert!(
        status.contains("needs_login") && status.contains("l3map auth login --connection desk")
    );
    for t in [&grant["access_token"], &grant["refresh_token"]] {
        assert!(
            !status.contains(t.as_str().unwrap()),
            "a token in auth status"
        );
    }
    let refused = r
        .get_json(format!("{}/__l3map/oauth/stats", r.zendesk))
        .await["refused"]
        .as_u64()
        .unwrap();

    let login = r.login("desk", &["--timeout-secs", "30"]);
    r.browse(&login.url, |l| l).await;
    let (code, out, err) = login.finish();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("stored a grant for connection desk"), "{out}");
    // The same process adopts the new grant and renews it itself (2 s
    // tokens): the generation moves past the login's.
    common::until(
        "the run refreshes the new grant",
        Duration::from_secs(30),
        || {
            r.row("desk")
                .is_some_and(|(s, g)| s == "ok" && g > generation + 1)
        },
    )
    .await;
    assert!(
        r.run.as_mut().unwrap().try_wait().unwrap().is_none(),
        "no restart"
    );
    let st = r
        .get_json(format!("{}/__l3map/oauth/stats", r.zendesk))
        .await;
    assert_eq!(st["refused"].as_u64().unwrap(), refused, "{st}");
    // Nothing was dead-lettered while it waited.
    let dead: i64 = r
        .db()
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'dead'",
            [],
            |x| x.get(0),
        )
        .unwrap();
    assert_eq!(dead, 0, "{}", r.log());
    let log = r.log();
    for t in [&grant["access_token"], &grant["refresh_token"]] {
        assert!(!log.contains(t.as_str().unwrap()));
    }
}

#[tokio::test]
async fn a_rotating_salesforce_grant_survives_kill_9() {
    let mut r = rig(
        "sf-rotation",
        Setup {
            desk: None,
            crm: "  flow           refresh_token\n  refresh_token  env(\"SF_REFRESH_TOKEN\")\n",
            emulate: &["--sf-refresh-rotation", "on"],
        },
    )
    .await;
    let sf = r.salesforce.clone();
    let rotations = |v: &serde_json::Value| v["rotations"].as_u64().unwrap_or(0);
    for round in 0..3u64 {
        r.start_runtime();
        r.healthy().await;
        // Sessions end until the runtime has rotated once more this round.
        let before = rotations(&r.get_json(format!("{sf}/__l3map/oauth/stats")).await);
        let started = Instant::now();
        loop {
            let st = r.get_json(format!("{sf}/__l3map/oauth/stats")).await;
            assert_eq!(st["refused"], 0, "round {round}: {st}\n{}", r.log());
            if rotations(&st) > before {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: no refresh: {st}\n{}",
                r.log()
            );
            r.post(format!("{sf}/__l3map/oauth/expire")).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The rotated token is in the store before it is used.
        common::until("the rotation is stored", Duration::from_secs(10), || {
            r.row("crm").is_some_and(|(_, g)| g as u64 > round)
        })
        .await;
        r.kill();
    }
    let st = r.get_json(format!("{sf}/__l3map/oauth/stats")).await;
    assert_eq!(st["refused"], 0, "{st}");
    assert!(rotations(&st) >= 3, "{st}");
    assert!(!r.log().contains("grant was refused"), "{}", r.log());
}
