//! The program's index credits each Salesforce field to its own
//! connection. A condition reading a field through one connection's
//! object (`Case.Account.Tier__c`, resolved to `crm_a`) once made every
//! Salesforce connection's poller select it too: with two orgs, the org
//! that has no such field refused the whole query, and that connection's
//! polling dropped to its basic field list.

use crate::common;

use l3map::ir::Program;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Two Salesforce connections, both polling Case. The escalation reads
/// `Case.Account.Tier__c`, a field of `crm_a`'s org (the first listing
/// Case, as the checker resolves it); `crm_b` maps only its own field.
const PROJECT: &str = r#"
connection desk: zendesk {
  subdomain  "two-orgs"
  token      env("ZENDESK_OAUTH_TOKEN")
  scopes     read, write
}

connection crm_a: salesforce {
  instance       "https://a.my.salesforce.com"
  client_id      env("SF_CLIENT_ID")
  client_secret  env("SF_CLIENT_SECRET")
  refresh_token  env("SF_REFRESH_TOKEN")
  scopes         api, refresh_token, offline_access
  objects        Case, Account
}

connection crm_b: salesforce {
  instance       "https://b.my.salesforce.com"
  client_id      env("SF_CLIENT_ID")
  client_secret  env("SF_CLIENT_SECRET")
  refresh_token  env("SF_REFRESH_TOKEN")
  scopes         api, refresh_token, offline_access
  objects        Case
}

fields desk {
  tier        #900000201  string  "Tier"
  b_priority  #900000202  string  "Priority in org B"
}

fields crm_a {
  Account.Tier__c  string
}

map crm_a -> desk {
  Account.Tier__c -> tier
}

map crm_b -> desk {
  Case.Priority -> b_priority
}

escalation gold_case {
  when    Case.Account.Tier__c == "Gold"
  reason  "A Gold account's case"
  assign  desk "Gold Desk"
}
"#;

const CLIENT_ID: &str = "l3map-emulator-client";
const CLIENT_SECRET: &str = "l3map-emulator-secret";
const REFRESH_TOKEN: &str = "l3map-emulator-refresh";

fn project(dir: &Path) -> std::path::PathBuf {
    let mappings = dir.join("mappings");
    std::fs::create_dir_all(&mappings).expect("project dir");
    std::fs::write(mappings.join("two.l3map"), PROJECT).expect("project file");
    mappings
}

fn compiled(dir: &Path) -> Program {
    l3map::runtime::compile::compile(&project(dir)).expect("the project compiles")
}

#[test]
fn a_condition_credits_its_field_to_its_own_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = compiled(dir.path());
    let case_a = p.salesforce_fields("crm_a", "Case");
    let case_b = p.salesforce_fields("crm_b", "Case");
    assert!(case_a.contains("Account.Tier__c"), "{case_a:?}");
    assert!(!case_b.contains("Account.Tier__c"), "{case_b:?}");
    assert!(case_b.contains("Priority"), "{case_b:?}");
    assert!(p.salesforce_fields("crm_a", "Account").contains("Tier__c"));
    assert!(p.salesforce_fields("desk", "Case").is_empty());
}

/// An IR written before reads carried their connection reads back with
/// none: such a read is credited to every Salesforce connection, as it
/// always was, and hand-off ids do not move.
#[test]
fn ir_without_read_connections_reads_back_as_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = compiled(dir.path());
    let mut json = serde_json::to_value(&p).expect("serialises");
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(r)) = m.get_mut("salesforce") {
                    r.remove("connection");
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(xs) => xs.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut json);
    let old: Program = serde_json::from_value(json).expect("old IR reads");
    assert!(old
        .salesforce_fields("crm_b", "Case")
        .contains("Account.Tier__c"));
    assert!(!old
        .salesforce_fields("desk", "Case")
        .contains("Account.Tier__c"));
    assert_eq!(p.escalations.len(), old.escalations.len());
    for (then, now) in old.escalations.iter().zip(&p.escalations) {
        assert_eq!(
            then.handoff_id(&old.templates),
            now.handoff_id(&p.templates)
        );
    }
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `l3map emulate` in `cwd` (seeded from `mappings` when given); the
/// Zendesk and Salesforce base URLs.
fn emulate(cwd: &Path, mappings: Option<&Path>) -> (Kill, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l3map"));
    cmd.args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"]);
    if let Some(m) = mappings {
        cmd.arg(m);
    }
    let mut child = cmd
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("l3map emulate starts");
    let (zd, sf, lines) = common::emulator_urls(&mut child);
    // Keep reading so the emulator never blocks on a full pipe.
    common::drain(lines);
    (Kill(child), zd, sf)
}

/// A Case created in an org, as a person would; its Id.
async fn create_case(http: &reqwest::Client, sf: &str) -> String {
    let token: serde_json::Value = http
        .post(format!("{sf}/services/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", REFRESH_TOKEN),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let access = token["access_token"].as_str().expect("an access token");
    let created: serde_json::Value = http
        .post(format!("{sf}/services/data/v60.0/sobjects/Case"))
        .bearer_auth(access)
        .json(&serde_json::json!({"Subject": "Printer on fire", "Priority": "High"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    created["id"].as_str().expect("an id").to_string()
}

/// `l3map run` polls two orgs. Org A (seeded from the project) has
/// `Account.Tier__c`; org B (the emulator's own seed) does not. Org B's
/// Case poll must not select a field only `crm_a`'s condition reads: its
/// query would be refused (INVALID_FIELD) and its polling degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_read_through_one_connection_is_not_polled_on_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mappings = project(dir.path());
    let (_a, zd_a, sf_a) = emulate(dir.path(), Some(&mappings));
    let bare = dir.path().join("org-b");
    std::fs::create_dir_all(&bare).expect("org b dir");
    let (_b, _zd_b, sf_b) = emulate(&bare, None);

    let port = common::free_port();
    std::fs::write(
        dir.path().join("l3map.toml"),
        format!(
            r#"mappings = "mappings"
state = "state/state.db"

[server]
listen = "127.0.0.1:{port}"

[connections.desk]
base_url = "{zd_a}"

[connections.crm_a]
login_url = "{sf_a}"

[connections.crm_b]
login_url = "{sf_b}"

[poll]
zendesk_interval_secs = 0
salesforce_interval_secs = 1
"#
        ),
    )
    .expect("config");
    let log = dir.path().join("run.log");
    let run = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["run", "--config"])
        .arg(dir.path().join("l3map.toml"))
        .env("ZENDESK_OAUTH_TOKEN", "l3map-dev-token")
        .env("SF_CLIENT_ID", CLIENT_ID)
        .env("SF_CLIENT_SECRET", CLIENT_SECRET)
        .env("SF_REFRESH_TOKEN", REFRESH_TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("l3map run starts");
    let mut run = Kill(run);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    let http = reqwest::Client::new();
    // Org B's poller has stored its starting point: changes made from now
    // on are news to it.
    let db = dir.path().join("state/state.db");
    let cursor = |key: &str| -> Option<String> {
        let c = rusqlite::Connection::open(&db).ok()?;
        c.query_row("SELECT value FROM cursors WHERE source = ?1", [key], |r| {
            r.get(0)
        })
        .ok()
    };
    let started = Instant::now();
    while cursor("salesforce_poll:crm_b:Case").is_none() {
        if let Ok(Some(status)) = run.0.try_wait() {
            panic!("l3map run exited with {status}:\n{}", read_log());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "org B's Case poll never started:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let case = create_case(&http, &sf_b).await;
    let prefix = format!("salesforce:Case:{case}:");
    let ingested = || -> bool {
        let Ok(c) = rusqlite::Connection::open(&db) else {
            return false;
        };
        c.query_row(
            "SELECT count(*) FROM events WHERE key LIKE ?1 || '%'",
            [&prefix],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n > 0)
    };
    while !ingested() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "org B's new Case was never polled:\n{}",
            read_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = read_log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refused the fields") && l.contains("crm_b"))
        .collect();
    assert!(
        refused.is_empty(),
        "org B was asked for a field only crm_a's condition reads:\n{}",
        refused.join("\n")
    );
}
