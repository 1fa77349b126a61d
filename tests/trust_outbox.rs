//! Issue 13, items 5 and 6, from the outside: `l3map emulate` and
//! `l3map run --config` as two real processes on 127.0.0.1, with a TCP
//! proxy of the test's own between the runtime and the Salesforce
//! emulator, so the test can take Salesforce down (every connection is
//! dropped as it opens, as a load balancer with no healthy backend does),
//! slow it down, and bring it back.
//!
//! - An outage longer than the old attempt budget (connections dropped, or
//!   refused outright) ends with every action applied once and nothing
//!   parked.
//! - An outage longer than the outage window parks the actions as an
//!   outage; when Salesforce answers again they come back by themselves
//!   and are applied once.
//! - An ops person holding the SQLite file's write lock (as `sqlite3` with
//!   `BEGIN EXCLUSIVE` would) while a request is out, for longer than the
//!   store's busy timeout: the record completes without a restart, later
//!   actions of the same record follow, nothing twice.

use crate::common;

use common::stack;

use serde_json::{json, Value};
use stack::{Stack, AGENT_TOKEN};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const SF_CLIENT: &str = "l3map-emulator-client";
const SF_SECRET: &str = "l3map-emulator-secret";
const SF_REFRESH: &str = "l3map-emulator-refresh";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Up,
    /// Every connection, new or open, is dropped.
    Down,
    /// Nothing listens: connections are refused (a connect error), and the
    /// open ones are cut.
    Refused,
    /// Each chunk from the client is held this long before it goes on.
    Slow(Duration),
}

/// A TCP proxy the test controls.
struct Proxy {
    url: String,
    mode: watch::Sender<Mode>,
    /// Connections dropped because Salesforce was down.
    dropped: Arc<AtomicU32>,
    /// Chunks held back while slow: a request is on its way.
    held: Arc<AtomicU32>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the emulator's address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (mode, modes) = watch::channel(Mode::Up);
        let (dropped, held) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let (d, h) = (dropped.clone(), held.clone());
        let addr = listener.local_addr().expect("addr");
        let mut modes = modes;
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let Some(l) = &listener else {
                    // Refused: wait for the mode to change, then listen on
                    // the same port again.
                    if modes.wait_for(|m| *m != Mode::Refused).await.is_err() {
                        return;
                    }
                    listener = TcpListener::bind(addr).await.ok();
                    assert!(listener.is_some(), "the proxy's port is taken");
                    continue;
                };
                let accepted = tokio::select! {
                    a = l.accept() => a,
                    _ = modes.wait_for(|m| *m == Mode::Refused) => {
                        listener = None;
                        continue;
                    }
                };
                let Ok((client, _)) = accepted else { return };
                if *modes.borrow() == Mode::Down {
                    d.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                tokio::spawn(pipe(client, upstream, modes.clone(), h.clone()));
            }
        });
        Proxy {
            url,
            mode,
            dropped,
            held,
        }
    }

    fn set(&self, m: Mode) {
        self.mode.send_replace(m);
    }
}

async fn pipe(
    client: TcpStream,
    upstream: SocketAddr,
    mut modes: watch::Receiver<Mode>,
    held: Arc<AtomicU32>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let slow = modes.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let hold = match *slow.borrow() {
                Mode::Slow(d) => Some(d),
                _ => None,
            };
            if let Some(d) = hold {
                held.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(d).await;
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Taking Salesforce down cuts the connections already open too.
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = modes.wait_for(|m| matches!(m, Mode::Down | Mode::Refused)) => {}
    }
}

/// The stack with Salesforce behind `proxy` and `outbox` as the `[outbox]`
/// settings; polling off, so every request on the crm connection is the
/// outbox's own.
async fn stack(name: &str, outbox: &str) -> (Stack, Proxy) {
    let mut s = Stack::start(name, "").await;
    let proxy = Proxy::start(&s.salesforce).await;
    s.kill_runtime();
    let path = s.dir.join("l3map.toml");
    let text = std::fs::read_to_string(&path).expect("l3map.toml");
    let text = text
        .replace(
            &format!("login_url = \"{}\"", s.salesforce),
            &format!("login_url = \"{}\"", proxy.url),
        )
        .replace(
            "[outbox]\nmax_attempts = 8\nworkers_per_connection = 4\n",
            &format!(
                "[outbox]\nworkers_per_connection = 4\n{outbox}\n\n[poll]\nzendesk_interval_secs = 0\nsalesforce_interval_secs = 0\n"
            ),
        );
    assert!(text.contains(&proxy.url) && text.contains(outbox), "{text}");
    std::fs::write(&path, text).expect("l3map.toml");
    s.start_runtime().await;
    (s, proxy)
}

/// The Salesforce emulator, read and written directly (not through the
/// proxy), as a person with the org's API access.
struct Org {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Org {
    async fn connect(s: &Stack) -> Org {
        let http = reqwest::Client::new();
        let grant: Value = http
            .post(format!("{}/services/oauth2/token", s.salesforce))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", SF_CLIENT),
                ("client_secret", SF_SECRET),
                ("refresh_token", SF_REFRESH),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        Org {
            base: s.salesforce.clone(),
            token: grant["access_token"].as_str().expect("a token").into(),
            http,
        }
    }

    async fn new_case(&self, subject: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/services/data/v60.0/sobjects/Case", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"Subject": subject, "Status": "New", "Origin": "Web"}))
            .send()
            .await
            .expect("create a Case");
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert!(status.is_success(), "{status}: {body}");
        body["id"].as_str().expect("an Id").to_string()
    }

    async fn case(&self, id: &str) -> Value {
        self.http
            .get(format!(
                "{}/services/data/v60.0/sobjects/Case/{id}",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("read a Case")
            .json()
            .await
            .expect("json")
    }

    /// The bodies of a Case's CaseComments.
    async fn comments(&self, case: &str) -> Vec<String> {
        let soql = format!("SELECT Id, CommentBody FROM CaseComment WHERE ParentId = '{case}'");
        let v: Value = self
            .http
            .get(format!("{}/services/data/v60.0/query", self.base))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        v["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|r| r["CommentBody"].as_str().map(str::to_string))
            .collect()
    }
}

/// An agent turn on a ticket and its Case, sent until the runtime records
/// it (same `turn_id`, so a repeat is a duplicate, never a second turn).
async fn turn(s: &Stack, body: Value) {
    let started = Instant::now();
    loop {
        let sent = s
            .http
            .post(format!("{}/v1/turns", s.runtime))
            .bearer_auth(AGENT_TOKEN)
            .json(&body)
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return,
            other => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the turn was never recorded: {other:?}\n{}",
                    s.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A stack whose Salesforce answers after `slow`, and a refund hand-off
/// (turn `TAG-1` on a new ticket and Case) whose request to Salesforce is
/// out.
async fn refund_in_flight(
    name: &str,
    tag: &str,
    slow: Duration,
) -> (Stack, Proxy, Org, u64, String) {
    let (s, proxy) = stack(name, "max_attempts = 8").await;
    let org = Org::connect(&s).await;
    let ticket = s
        .create_ticket(&format!("{tag} refund"), "enterprise", None)
        .await;
    let case = org.new_case(&format!("{tag} refund")).await;
    proxy.set(Mode::Slow(slow));
    turn(&s, refund(&format!("{tag}-1"), ticket, &case)).await;
    until(
        "a request to Salesforce is out",
        Duration::from_secs(30),
        &s,
        || async { proxy.held.load(Ordering::SeqCst) >= 1 },
    )
    .await;
    (s, proxy, org, ticket, case)
}

fn refund(turn_id: &str, ticket: u64, case: &str) -> Value {
    json!({
        "turn_id": turn_id,
        "ticket": ticket,
        "case": case,
        "intent": "refund",
        "summary": format!("Wants a refund ({turn_id})"),
        "attempts": ["looked up the order"],
        "sentiment": "negative",
        "refund_amount": {"amount": "450.00", "currency": "USD"}
    })
}

/// Waits for `check` with a generous deadline (a loaded 2-core machine).
async fn until<F, Fut>(what: &str, within: Duration, s: &Stack, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < within,
            "{what}: not within {within:?}\nhealth: {}\n{}",
            s.health().await,
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The outbox's rows as `(connection, record, state, last_error)`, read
/// from the SQLite file read-only, as an ops person with `sqlite3` would.
fn rows(state: &Path) -> Vec<(String, String, String, Option<String>)> {
    let db = rusqlite::Connection::open_with_flags(
        state,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("the store opens read-only");
    db.busy_timeout(Duration::from_secs(10)).expect("timeout");
    let mut q = db
        .prepare("SELECT connection, record, state, last_error FROM outbox ORDER BY id")
        .expect("query");
    let rows = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// Tickets and Cases for `n` refund turns, the turns sent.
async fn refunds(s: &Stack, org: &Org, name: &str, n: usize) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let ticket = s
            .create_ticket(&format!("{name} refund {i}"), "premium", None)
            .await;
        let case = org.new_case(&format!("{name} refund {i}")).await;
        turn(s, refund(&format!("{name}-{i}"), ticket, &case)).await;
        out.push((ticket, case));
    }
    out
}

/// Every ticket has one hand-off note and every Case one CaseComment and
/// the hand-off reason: applied, and applied once.
async fn applied_once(s: &Stack, org: &Org, work: &[(u64, String)], reason: &str) {
    for (ticket, case) in work {
        let notes = s.private_notes(*ticket).await;
        assert_eq!(notes.len(), 1, "ticket {ticket}: {notes:?}");
        let comments = org.comments(case).await;
        assert_eq!(comments.len(), 1, "Case {case}: {comments:?}");
        assert!(comments[0].contains("Wants a refund"), "{comments:?}");
        assert_eq!(
            org.case(case).await["AI_Handoff_Reason__c"],
            reason,
            "Case {case}"
        );
    }
}

async fn all_applied(org: &Org, work: &[(u64, String)], reason: &str) -> bool {
    for (_, case) in work {
        if org.case(case).await["AI_Handoff_Reason__c"] != reason
            || org.comments(case).await.is_empty()
        {
            return false;
        }
    }
    true
}

/// Item 5: with `max_attempts = 1` the old outbox parked every action at
/// its first failed try. Salesforce stays down through many tries; nothing
/// is parked, and when it is back everything lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_attempt_budget_parks_nothing() {
    let (s, proxy) = stack(
        "trust-outage",
        // Only what the old runtime read too: with it, the first failed
        // try parked every action.
        "max_attempts = 1",
    )
    .await;
    let org = Org::connect(&s).await;
    proxy.set(Mode::Down);
    let work = refunds(&s, &org, "outage", 3).await;
    // Many tries of every Salesforce group fail while it is down.
    until(
        "repeated failed tries",
        Duration::from_secs(60),
        &s,
        || async { proxy.dropped.load(Ordering::SeqCst) >= 15 },
    )
    .await;
    let health = s.health().await;
    assert_eq!(
        health["outbox"]["dead"], 0,
        "parked during an outage: {health}"
    );
    let waiting = rows(&s.state())
        .into_iter()
        .filter(|(c, _, st, _)| c == "crm" && st != "done")
        .count();
    assert_eq!(waiting, 6, "a CaseComment and a field per turn wait");
    proxy.set(Mode::Up);
    until(
        "applied after the outage",
        Duration::from_secs(60),
        &s,
        || all_applied(&org, &work, "refund_threshold"),
    )
    .await;
    s.drained(Duration::from_secs(30)).await;
    applied_once(&s, &org, &work, "refund_threshold").await;
    let health = s.health().await;
    assert_eq!(health["outbox"]["dead"], 0, "{health}");
    let m = s.metrics().await;
    assert!(
        !m.lines()
            .any(|l| l.contains(r#"result="parked""#) && !l.ends_with(" 0")),
        "nothing was ever parked: {m}"
    );
}

/// Item 5, with connect errors: nothing listens where Salesforce was.
/// Each try spends the connector's own retries (up to 30 s), then counts
/// as an outage, not as one of `max_attempts = 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_an_outage_not_a_failed_attempt() {
    let (s, proxy) = stack("trust-refused", "max_attempts = 1").await;
    let org = Org::connect(&s).await;
    proxy.set(Mode::Refused);
    let work = refunds(&s, &org, "refused", 2).await;
    // Every group has had a whole try fail.
    until(
        "a failed try per group",
        Duration::from_secs(120),
        &s,
        || async {
            let m = s.metrics().await;
            m.lines()
                .find(|l| l.starts_with(r#"l3map_actions_total{kind="comment",result="failed"}"#))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= 2)
        },
    )
    .await;
    let health = s.health().await;
    assert_eq!(
        health["outbox"]["dead"], 0,
        "parked during an outage: {health}"
    );
    assert!(
        s.log().contains("could not connect"),
        "the failures were connect errors: {}",
        s.log()
    );
    proxy.set(Mode::Up);
    until(
        "applied after the outage",
        Duration::from_secs(90),
        &s,
        || all_applied(&org, &work, "refund_threshold"),
    )
    .await;
    s.drained(Duration::from_secs(30)).await;
    applied_once(&s, &org, &work, "refund_threshold").await;
    assert_eq!(s.health().await["outbox"]["dead"], 0);
}

/// Item 5: past a (tiny) outage window the actions park, with the window
/// named in the reason; when Salesforce answers again they are requeued by
/// themselves, applied once, and the requeue is logged and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_parked_by_an_outage_come_back_when_the_connection_does() {
    let (s, proxy) = stack(
        "trust-window",
        "outage_window_secs = 1\nretry_min_ms = 100\nretry_max_secs = 1",
    )
    .await;
    let org = Org::connect(&s).await;
    proxy.set(Mode::Down);
    let work = refunds(&s, &org, "window", 2).await;
    // A probe puts one group back now and then, so each Case's actions
    // are seen parked at some moment, not necessarily all at once.
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    until(
        "parked as an outage",
        Duration::from_secs(90),
        &s,
        || async {
            let mut seen = seen.lock().expect("seen");
            for (c, record, st, e) in rows(&s.state()) {
                let outage = e
                    .as_deref()
                    .is_some_and(|e| e.contains("past [outbox] outage_window_secs = 1"));
                if c == "crm" && st == "dead" && outage {
                    seen.insert(record);
                }
            }
            seen.len() == work.len()
        },
    )
    .await;
    let desk_dead = rows(&s.state())
        .into_iter()
        .filter(|(c, _, st, _)| c == "desk" && st == "dead")
        .count();
    assert_eq!(desk_dead, 0, "Zendesk was up all along");
    proxy.set(Mode::Up);
    until("requeued and applied", Duration::from_secs(60), &s, || {
        all_applied(&org, &work, "refund_threshold")
    })
    .await;
    s.drained(Duration::from_secs(30)).await;
    applied_once(&s, &org, &work, "refund_threshold").await;
    let health = s.health().await;
    assert_eq!(health["outbox"]["dead"], 0, "{health}");
    let m = s.metrics().await;
    assert!(
        m.lines()
            .any(|l| l.contains(r#"result="requeued""#) && !l.ends_with(" 0")),
        "{m}"
    );
    assert!(s.log().contains("an outage had parked"), "{}", s.log());
}

/// Item 6: the store refuses the outcome of a request that went out (an
/// ops person holds the write lock past the busy timeout). The record is
/// finished without a restart, the same Case's later action is applied,
/// and nothing is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_while_sending_recovers_without_a_restart() {
    // Salesforce answers slowly: the request is out while the lock is
    // taken, and its answer comes back while the lock is held.
    let (s, proxy, org, ticket, case) =
        refund_in_flight("trust-lock", "lock", Duration::from_millis(1500)).await;
    let state = s.state();
    let lock = std::thread::spawn(move || {
        let db = rusqlite::Connection::open(&state).expect("the store");
        db.busy_timeout(Duration::from_secs(30)).expect("timeout");
        db.execute_batch("BEGIN EXCLUSIVE").expect("the write lock");
        // More than twice the runtime's 5 s busy timeout: its workers'
        // claims queue on the same store and fail.
        std::thread::sleep(Duration::from_secs(12));
        db.execute_batch("COMMIT").expect("released");
    });
    tokio::task::spawn_blocking(move || lock.join().expect("the lock thread"))
        .await
        .expect("join");
    proxy.set(Mode::Up);
    let sending = rows(&s.state())
        .into_iter()
        .filter(|(_, _, st, _)| st == "sending")
        .count();
    eprintln!("rows sending when the lock was released: {sending}");
    // A later turn on the same ticket and Case: its write to the Case
    // must not wait behind the first forever.
    turn(
        &s,
        json!({
            "turn_id": "lock-2",
            "ticket": ticket,
            "case": case,
            "intent": "question",
            "summary": "Third time asking",
            "sentiment": "angry"
        }),
    )
    .await;
    until(
        "the later action applied",
        Duration::from_secs(60),
        &s,
        || async { org.case(&case).await["AI_Handoff_Reason__c"] == "sentiment" },
    )
    .await;
    s.drained(Duration::from_secs(30)).await;
    let comments = org.comments(&case).await;
    assert_eq!(comments.len(), 1, "{comments:?}");
    let notes = s.private_notes(ticket).await;
    assert_eq!(notes.len(), 2, "one note per hand-off: {notes:?}");
    let health = s.health().await;
    assert_eq!(health["outbox"]["dead"], 0, "{health}");
    assert_eq!(health["outbox"]["sending"], 0, "{health}");
    // The lock did refuse the store's writes. Whether the outcome's own
    // write was among them depends on who wins the store's mutex on a
    // loaded machine; when it was, the worker said so and went on.
    let log = s.log();
    assert!(
        log.contains("the state store cannot be written"),
        "the lock refused no write: {log}"
    );
    if log.contains("cannot record an outcome in the outbox") {
        assert!(
            log.contains("recorded an outcome the store had refused"),
            "{log}"
        );
    }
}

/// `l3map outbox list` is for ops while the runtime runs (RUNTIME.md,
/// "The audit trail"). Opening the store used to turn every `sending` row
/// back to pending, so the worker took a request still in flight back,
/// found nothing applied yet and sent it again: two CaseComments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_commands_while_sending_take_nothing_in_flight_back() {
    // Salesforce answers slowly: the CaseComment's create is out while
    // ops look at the outbox.
    let (s, proxy, org, _, case) =
        refund_in_flight("trust-cli-open", "cli", Duration::from_millis(3000)).await;
    for args in [
        vec!["outbox", "list", "--only", "sending"],
        vec!["outbox", "list", "--format", "json"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_l3map"))
            .args(&args)
            .arg("--state")
            .arg(s.state())
            .output()
            .expect("l3map outbox");
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let sending = rows(&s.state())
        .into_iter()
        .filter(|(c, _, st, _)| c == "crm" && st == "sending")
        .count();
    assert!(sending >= 1, "the send in flight stays `sending`");
    proxy.set(Mode::Up);
    until(
        "the hand-off applied",
        Duration::from_secs(60),
        &s,
        || async { org.case(&case).await["AI_Handoff_Reason__c"] == "refund_threshold" },
    )
    .await;
    s.drained(Duration::from_secs(30)).await;
    // Settle time for a second, wrongly repeated create to land.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let comments = org.comments(&case).await;
    assert_eq!(comments.len(), 1, "{comments:?}");
}

/// A Case Id is 15 characters, or 18 in any case: one record. Each
/// spelling used to be its own record to the hand-off key, so a Case named
/// once by its 15 and once by its 18 characters got two CaseComments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_a_case_id_is_handed_off_once() {
    let (s, _proxy) = stack("trust-case-ids", "max_attempts = 8").await;
    let org = Org::connect(&s).await;
    let ticket = s.create_ticket("ids refund", "enterprise", None).await;
    let case = org.new_case("ids refund").await;
    assert_eq!(case.len(), 18, "{case}");
    let spellings = [
        case.clone(),
        case[..15].to_string(),
        case.to_ascii_uppercase(),
        case.to_ascii_lowercase(),
    ];
    for (i, spelling) in spellings.iter().enumerate() {
        turn(&s, refund(&format!("ids-{i}"), ticket, spelling)).await;
    }
    s.drained(Duration::from_secs(60)).await;
    let comments = org.comments(&case).await;
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(s.private_notes(ticket).await.len(), 1);
    let health = s.health().await;
    assert_eq!(health["outbox"]["dead"], 0, "{health}");
    // Not an Id: its suffix does not fit its first 15 characters.
    let mut bad = case[..15].to_string();
    bad.push_str("999");
    let r = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(&refund("ids-bad", ticket, &bad))
        .send()
        .await
        .expect("turn");
    assert_eq!(r.status(), 400);
}
