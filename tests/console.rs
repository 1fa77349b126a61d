//! The ops console (`/ui`, docs/CONSOLE.md) over 127.0.0.1, against the
//! real `l3map run` beside `l3map emulate`: who may see it, what a forged
//! or cross-site request gets, and what it shows and does with a dead
//! letter, a refused reload and a ticket's audit trail. The browser drives
//! the same in tests/console_browser.rs.

use crate::common::stack::{Stack, StackEnv, AGENT_TOKEN};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub const OPS_TOKEN: &str = "ops-lead-token-7c1e0b5a";
pub const READER_TOKEN: &str = "ops-reader-token-2f9d";
/// What the Zendesk emulator answers the refused update with: markup, so
/// the page is seen to show it as text.
pub const HOSTILE: &str = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";

/// `[ops]` for a stack: a lead who may act, a reader who may not, their
/// tokens in files beside the test.
pub fn ops_config(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).expect("dir");
    let (lead, reader) = (dir.join("ops-lead"), dir.join("ops-reader"));
    std::fs::write(&lead, OPS_TOKEN).expect("token file");
    std::fs::write(&reader, READER_TOKEN).expect("token file");
    format!(
        "[ops.lead]\ntoken_file = {:?}\nactions = true\n\n[ops.reader]\ntoken_file = {:?}\n",
        lead.display().to_string(),
        reader.display().to_string()
    )
}

/// A stack with the console on.
pub async fn console_stack(name: &str) -> (Stack, tempfile::TempDir) {
    let tokens = tempfile::tempdir().expect("tmp");
    let s = Stack::start(name, &ops_config(tokens.path())).await;
    (s, tokens)
}

pub async fn get(s: &Stack, path: &str, token: &str) -> (u16, Value) {
    let r = s
        .http
        .get(format!("{}{path}", s.runtime))
        .bearer_auth(token)
        .send()
        .await
        .expect("runtime answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(s: &Stack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}{path}", s.runtime))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("runtime answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A new ticket whose next update the emulator refuses with [`HOSTILE`],
/// and an agent turn that moves it `new -> in_progress`: a dead letter.
/// Returns the ticket and the dead letter's id.
pub async fn dead_letter(s: &Stack) -> (u64, i64) {
    let ticket = s
        .create_ticket("Card declined twice", "premium", None)
        .await;
    (ticket, dead_move(s, ticket, "in_progress").await)
}

/// A person's status change on the emulator (`custom` picks the custom
/// status of the category).
async fn as_a_person(s: &Stack, ticket: u64, status: &str, custom: u64) {
    let r = s
        .http
        .put(format!("{}/__l3map/tickets/{ticket}", s.zendesk))
        .json(&json!({"ticket": {"status": status, "custom_status_id": custom}}))
        .send()
        .await
        .expect("emulator");
    assert!(r.status().is_success(), "{}", r.status());
}

/// The emulator refuses `ticket`'s next update with [`HOSTILE`]; an agent
/// turn asks for `to`: the dead letter's id.
async fn dead_move(s: &Stack, ticket: u64, to: &str) -> i64 {
    let r = s
        .http
        .post(format!(
            "{}/__l3map/tickets/{ticket}/fail_next_update",
            s.zendesk
        ))
        .json(&json!({"details": HOSTILE}))
        .send()
        .await
        .expect("emulator");
    assert!(r.status().is_success(), "{}", r.status());
    let turn = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(&json!({
            "turn_id": format!("console-{ticket}-{to}"),
            "ticket": ticket,
            "intent": "question",
            "summary": "picks the ticket up",
            "sentiment": "neutral",
            "requested_status": to
        }))
        .send()
        .await
        .expect("turn");
    assert!(turn.status().is_success(), "{:?}", turn.text().await);
    let started = Instant::now();
    loop {
        let (status, page) = get(s, "/ui/api/dead", OPS_TOKEN).await;
        assert_eq!(status, 200, "{page}");
        if let Some(row) = page["rows"].as_array().and_then(|r| {
            r.iter()
                .find(|r| r["record"].as_str() == Some(&*ticket.to_string()))
        }) {
            return row["id"].as_i64().expect("id");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no dead letter for ticket {ticket}: {page}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Retries dead letter `id` of `ticket` from the console and waits for
/// it to settle superseded: its last try.
async fn retried_unsent(s: &Stack, ticket: u64, id: i64) -> Value {
    let (status, body) = post(
        s,
        &format!("/ui/api/actions/{id}/retry"),
        OPS_TOKEN,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let last = settled_try(s, ticket, id).await;
    assert_eq!(last["outcome"], "superseded", "{last}");
    last
}

/// The last try of action `id` of `ticket` once it settled after a
/// retry (at least parked, requeued and one more).
async fn settled_try(s: &Stack, ticket: u64, id: i64) -> Value {
    let started = Instant::now();
    loop {
        let (_, t) = get(s, &format!("/ui/api/trail/{ticket}"), OPS_TOKEN).await;
        let tries: Vec<Value> = t["trail"]["attempts"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["action_id"] == id).cloned().collect())
            .unwrap_or_default();
        if let Some(last) = tries
            .last()
            .filter(|a| a["outcome"] != "requeued" && tries.len() >= 3)
        {
            return last.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{t}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for `check` to hold on the ticket as the emulator has it.
pub async fn ticket_becomes(s: &Stack, id: u64, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let t = s.ticket(id).await;
        if check(&t) {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "ticket {id} never became as expected: {t}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Without `[ops]` the console does not exist: every `/ui` path is a 404
/// with a JSON body saying how to turn it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ops_users_the_console_is_not_there() {
    let s = Stack::start("console-off", "").await;
    for path in ["/ui", "/ui/app.js", "/ui/api/dead"] {
        let r = s
            .http
            .get(format!("{}{path}", s.runtime))
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.expect("json body");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains("[ops.NAME]"),
            "{body}"
        );
    }
}

/// Signing in: a wrong token is refused (and, past a few a minute, every
/// sign-in waits); the right one gets an HttpOnly, SameSite=Strict cookie
/// holding no token; the page and script hold none either. A forged or
/// cross-site write with the cookie is refused, and so is any write by a
/// read-only user; the session's CSRF token lets the page write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_cookies_and_forged_writes() {
    let (s, _tokens) = console_stack("console-auth").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", s.runtime);
    // Nothing without a session.
    let r = http.get(url("/ui/api/dead")).send().await.expect("answers");
    assert_eq!(r.status(), 401);
    // The page is served to anyone (it holds nothing), with a strict CSP.
    let page = http.get(url("/ui")).send().await.expect("answers");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    let js = http
        .get(url("/ui/app.js"))
        .send()
        .await
        .expect("js")
        .text()
        .await
        .expect("js");
    for text in [&html, &js] {
        assert!(!text.contains(OPS_TOKEN) && !text.contains(READER_TOKEN));
    }
    // A login from a form on another site, or not as JSON: refused.
    let r = http
        .post(url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={OPS_TOKEN}"))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 400);
    let wrong = http
        .post(url("/ui/login"))
        .json(&json!({"token": "not-a-token"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(wrong.status(), 401);
    let ok = http
        .post(url("/ui/login"))
        .json(&json!({"token": OPS_TOKEN}))
        .send()
        .await
        .expect("answers");
    assert_eq!(ok.status(), 200);
    let set = ok.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(OPS_TOKEN), "{set}");
    let cookie = set.split(';').next().expect("name=value").to_string();
    let who: Value = http
        .get(url("/ui/api/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(who["name"], "lead");
    assert_eq!(who["actions"], true);
    let csrf = who["csrf"].as_str().expect("csrf").to_string();
    assert!(!csrf.is_empty() && !csrf.contains(OPS_TOKEN));
    // A tampered cookie (another name, or the expiry moved) is nobody.
    let (name, rest) = cookie.split_once('=').expect("cookie");
    let parts: Vec<&str> = rest.splitn(3, '.').collect();
    for forged in [
        format!("{name}={}.{}.{}", hex(b"reader"), parts[1], parts[2]),
        format!("{name}={}.{}.{}", parts[0], "9999999999", parts[2]),
    ] {
        let r = http
            .get(url("/ui/api/whoami"))
            .header("cookie", forged)
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status(), 401);
    }
    // Writes with the cookie: without the CSRF token, from another
    // origin, or as a form: refused before anything is looked up.
    let write = |headers: Vec<(&'static str, String)>, json_body: bool| {
        let mut req = http
            .post(url("/ui/api/actions/1/retry"))
            .header("cookie", cookie.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if json_body {
            req = req.json(&json!({}));
        } else {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=1");
        }
        req.send()
    };
    let no_csrf = write(vec![], true).await.expect("answers");
    assert_eq!(no_csrf.status(), 403);
    let cross = write(
        vec![
            ("x-l3map-csrf", csrf.clone()),
            ("origin", "https://evil.example".into()),
        ],
        true,
    )
    .await
    .expect("answers");
    assert_eq!(cross.status(), 403);
    let form = write(vec![("x-l3map-csrf", csrf.clone())], false)
        .await
        .expect("answers");
    assert_eq!(form.status(), 403);
    // With it: looked up (action 1 is no dead letter here).
    let fine = write(vec![("x-l3map-csrf", csrf.clone())], true)
        .await
        .expect("answers");
    assert_eq!(fine.status(), 409, "{:?}", fine.text().await);
    // The reader may look and may not act, with a bearer token too.
    let (status, _) = get(&s, "/ui/api/dead", READER_TOKEN).await;
    assert_eq!(status, 200);
    let (status, body) = post(&s, "/ui/api/actions/1/retry", READER_TOKEN, json!({})).await;
    assert_eq!(status, 403, "{body}");
    // A login from another origin, or not quite JSON: refused.
    for (origin, ct) in [
        ("http://evil.example", "application/json"),
        ("null", "application/json"),
        ("", "application/jsonx"),
    ] {
        let mut req = http
            .post(url("/ui/login"))
            .header("content-type", ct)
            .body(json!({"token": OPS_TOKEN}).to_string());
        if !origin.is_empty() {
            req = req.header("origin", origin);
        }
        assert_eq!(
            req.send().await.expect("answers").status(),
            400,
            "{origin} {ct}"
        );
    }
    // Bad query values are JSON errors too.
    for path in [
        "/ui/api/dead?before=abc",
        "/ui/api/dead?limit=-1",
        "/ui/api/actions/abc",
    ] {
        let r = http
            .get(url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status(), 400, "{path}");
        let body: Value = r.json().await.expect("a JSON body");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    // Signed out, the cookie (and any copy of it) is nobody's.
    let out = http
        .post(url("/ui/logout"))
        .header("cookie", &cookie)
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(out.status(), 200);
    let r = http
        .get(url("/ui/api/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 401);
    // Many wrong tokens in a minute, by sign-in or as bearer tokens: the
    // wrong ones wait (429, Retry-After); the right one still gets in.
    let mut last = 0;
    for i in 0..25 {
        last = if i % 2 == 0 {
            http.post(url("/ui/login"))
                .json(&json!({"token": "guess"}))
                .send()
        } else {
            http.get(url("/ui/api/whoami")).bearer_auth("guess").send()
        }
        .await
        .expect("answers")
        .status()
        .as_u16();
    }
    assert_eq!(last, 429);
    let r = http
        .get(url("/ui/api/whoami"))
        .bearer_auth("guess-again")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let ok = http
        .post(url("/ui/login"))
        .json(&json!({"token": OPS_TOKEN}))
        .send()
        .await
        .expect("answers");
    assert_eq!(ok.status(), 200, "a right token is never locked out");
    // No token reached the log.
    let log = s.log();
    assert!(!log.contains(OPS_TOKEN) && !log.contains(READER_TOKEN));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A refused update becomes a dead letter the console shows with its
/// reason class, rule, `file:line` and the API's answer (as sent, markup
/// and all, in JSON); Retry sends it again and the emulator has the
/// status; the ticket's audit trail has the event, the action with its
/// key, and each try: parked, requeued, applied. The status graph counts
/// the move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_shown_retried_and_its_trail_read() {
    let (s, _tokens) = console_stack("console-dead").await;
    let (ticket, id) = dead_letter(&s).await;
    let (_, page) = get(&s, "/ui/api/dead", OPS_TOKEN).await;
    let row = page["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == id))
        .expect("row")
        .clone();
    assert_eq!(row["parked"], "validation", "{row}");
    assert_eq!(row["rule"], "transition", "{row}");
    assert!(
        row["source_loc"]
            .as_str()
            .is_some_and(|l| l.starts_with("statuses.l3map:20:")),
        "{row}"
    );
    assert!(
        row["last_error"]
            .as_str()
            .is_some_and(|e| e.contains(HOSTILE)),
        "{row}"
    );
    assert!(page["groups"]
        .as_array()
        .is_some_and(|g| g.iter().any(|g| g["parked"] == "validation" && g["n"] == 1)));
    let (status, filtered) = get(&s, "/ui/api/dead?reason=auth", OPS_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(filtered["rows"].as_array().map(Vec::len), Some(0));
    assert_eq!(s.ticket(ticket).await["status"], "new");
    // Retry.
    let (status, body) = post(
        &s,
        &format!("/ui/api/actions/{id}/retry"),
        OPS_TOKEN,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    ticket_becomes(&s, ticket, |t| t["status"] == "open").await;
    // Twice is a conflict, not a second send.
    let (status, _) = post(
        &s,
        &format!("/ui/api/actions/{id}/retry"),
        OPS_TOKEN,
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
    // The trail.
    let started = Instant::now();
    let trail = loop {
        let (status, t) = get(&s, &format!("/ui/api/trail/{ticket}"), OPS_TOKEN).await;
        assert_eq!(status, 200, "{t}");
        let outcomes: Vec<String> = t["trail"]["attempts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["outcome"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if outcomes.contains(&"applied".to_string()) {
            assert_eq!(outcomes, ["parked", "requeued", "applied"], "{t}");
            break t;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let action = &trail["trail"]["actions"][0];
    assert_eq!(action["id"], id);
    assert!(action["key"].as_str().is_some_and(|k| !k.is_empty()));
    let events = trail["trail"]["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["key"] == format!("turn:console-{ticket}")
                || e["key"]
                    .as_str()
                    .is_some_and(|k| k.contains(&format!("console-{ticket}")))),
        "{trail}"
    );
    // The graph counts the move on its edge.
    let (_, overview) = get(&s, "/ui/api/overview?window=15m", OPS_TOKEN).await;
    let edge = overview["tables"][0]["edges"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|e| e["from"] == "new" && e["to"] == "in_progress")
        })
        .expect("edge")
        .clone();
    assert_eq!(edge["decided"], 1, "{overview}");
    // Bad input is a 4xx with a JSON body.
    for path in [
        "/ui/api/trail/1%27--",
        "/ui/api/overview?window=1y",
        "/ui/api/actions/999999",
    ] {
        let (status, body) = get(&s, path, OPS_TOKEN).await;
        assert!((400..500).contains(&status), "{path}: {status}");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
}

/// A save that does not compile is listed as refused with its
/// diagnostics (naming the file and line, no absolute path); a save that
/// does goes live, and the two live revisions diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_show_refusals_with_diagnostics_and_diff() {
    let (s, _tokens) = console_stack("console-reloads").await;
    let file = s.mappings().join("statuses.l3map");
    let good = std::fs::read_to_string(&file).expect("statuses");
    let wait_for = |want: &'static str, n: usize| {
        let s = &s;
        async move {
            let started = Instant::now();
            loop {
                let (_, r) = get(s, "/ui/api/reloads", OPS_TOKEN).await;
                let rows = r["reloads"].as_array().cloned().unwrap_or_default();
                if rows.iter().filter(|x| x["outcome"] == want).count() >= n {
                    return rows;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{r}\n{}",
                    s.log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let rows = wait_for("live", 1).await;
    assert_eq!(rows[0]["cause"], "start");
    let first = rows[0]["revision"].as_str().expect("revision").to_string();
    std::fs::write(
        &file,
        good.replacen("-> open, in_progress", "-> opne, in_progress", 1),
    )
    .expect("edit");
    let rows = wait_for("refused", 1).await;
    let refused = rows
        .iter()
        .find(|x| x["outcome"] == "refused")
        .expect("refused");
    let diag = refused["diagnostics"].as_str().expect("diagnostics");
    assert!(
        diag.contains("opne") && diag.contains("statuses.l3map"),
        "{diag}"
    );
    assert!(
        !diag.contains(&s.mappings().display().to_string()),
        "{diag}"
    );
    std::fs::write(
        &file,
        good.replace(
            "Anything not listed here is refused.",
            "Anything else is refused.",
        ),
    )
    .expect("edit");
    let rows = wait_for("live", 2).await;
    let second = rows
        .iter()
        .find(|x| x["outcome"] == "live" && x["revision"] != first.as_str())
        .expect("second live")["revision"]
        .as_str()
        .expect("revision")
        .to_string();
    let (status, diff) = get(
        &s,
        &format!("/ui/api/diff?from={first}&to={second}"),
        OPS_TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{diff}");
    let text = diff["files"][0]["diff"].as_str().expect("a diff");
    assert!(
        text.contains("-// may make. Anything not listed here is refused."),
        "{text}"
    );
    assert!(
        text.contains("+// may make. Anything else is refused."),
        "{text}"
    );
    let (status, _) = get(&s, "/ui/api/diff?from=nope&to=nope", OPS_TOKEN).await;
    assert_eq!(status, 404);
}

/// Two replicas on one PostgreSQL store show one console: a dead letter
/// decided on one is retried from the other, a cookie of one is good on
/// the other, and the reloads, tallies and the fleet are every replica's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgresql_show_one_console() {
    let Some(url) = l3map::runtime::store::postgres::cluster::database("console_fleet") else {
        return;
    };
    let tokens = tempfile::tempdir().expect("tmp");
    let s = Stack::fleet("console-fleet", &ops_config(tokens.path()), &url);
    let mut one = crate::fleet::start(&s, 1).await;
    let mut two = crate::fleet::start(&s, 2).await;
    let (ticket, id) = dead_letter(&s).await;
    let at = |base: &str, path: &str, token: &str| {
        let (http, url, token) = (s.http.clone(), format!("{base}{path}"), token.to_string());
        async move {
            let r = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("answers");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // The other replica lists it, and retries it.
    let (_, page) = at(&two.url, "/ui/api/dead", OPS_TOKEN).await;
    assert!(
        page["rows"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["id"] == id)),
        "{page}"
    );
    let r = s
        .http
        .post(format!("{}/ui/api/actions/{id}/retry", two.url))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 200);
    ticket_becomes(&s, ticket, |t| t["status"] == "open").await;
    // A session signed in on one replica is good on the other.
    let login = s
        .http
        .post(format!("{}/ui/login", one.url))
        .json(&json!({"token": OPS_TOKEN}))
        .send()
        .await
        .expect("answers");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("value")
        .to_string();
    let who = s
        .http
        .get(format!("{}/ui/api/whoami", two.url))
        .header("cookie", cookie)
        .send()
        .await
        .expect("answers");
    assert_eq!(who.status(), 200);
    // Both replicas' starts, the fleet, and the move counted once.
    let (_, reloads) = at(&two.url, "/ui/api/reloads", OPS_TOKEN).await;
    let replicas: std::collections::BTreeSet<String> = reloads["reloads"]
        .as_array()
        .expect("reloads")
        .iter()
        .filter(|r| r["cause"] == "start")
        .filter_map(|r| r["replica"].as_str().map(str::to_string))
        .collect();
    assert_eq!(replicas.len(), 2, "{reloads}");
    let (_, budgets) = at(&one.url, "/ui/api/budgets", OPS_TOKEN).await;
    assert_eq!(
        budgets["fleet"]["replicas"].as_array().map(Vec::len),
        Some(2),
        "{budgets}"
    );
    let (_, overview) = at(&two.url, "/ui/api/overview?window=1h", OPS_TOKEN).await;
    let edge = overview["tables"][0]["edges"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|e| e["from"] == "new" && e["to"] == "in_progress")
        })
        .expect("edge")
        .clone();
    assert_eq!(edge["decided"], 1, "{overview}");
    let (_, trail) = at(&one.url, &format!("/ui/api/trail/{ticket}"), OPS_TOKEN).await;
    let outcomes: Vec<&str> = trail["trail"]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["outcome"].as_str())
        .collect();
    assert_eq!(outcomes.first(), Some(&"parked"), "{trail}");
    for r in [&mut one, &mut two] {
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
}

/// A dead letter retried after a person moved the ticket on is decided
/// again against the ticket as it is: the person's status stands, and the
/// trail says the action was superseded, not applied (red team, issue 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_does_not_write_over_what_a_person_did_since() {
    let (s, _tokens) = console_stack("console-retry-person").await;
    let (ticket, id) = dead_letter(&s).await;
    let r = s
        .http
        .put(format!("{}/__l3map/tickets/{ticket}", s.zendesk))
        .json(&json!({"ticket": {"status": "solved"}}))
        .send()
        .await
        .expect("emulator");
    assert!(r.status().is_success(), "{}", r.status());
    let last = retried_unsent(&s, ticket, id).await;
    assert!(
        last["answer"].as_str().is_some_and(
            |a| a.contains("a person's change") || a.contains("before sending it again")
        ),
        "{last}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.ticket(ticket).await["status"], "solved");
}

/// A short `[ops]` token, or one that is also an agent's, stops the start
/// with one line naming the entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_or_shared_ops_tokens_stop_the_start() {
    let tokens = tempfile::tempdir().expect("tmp");
    for (token, says) in [("short-one", "at least 20"), (AGENT_TOKEN, "its own")] {
        let file = tokens.path().join("t");
        std::fs::write(&file, token).expect("token");
        let s = Stack::without_runtime(
            "console-weak",
            &format!(
                "[ops.lead]\ntoken_file = {:?}\n",
                file.display().to_string()
            ),
            &[],
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_l3map"))
            .stack_env()
            .args(["run", "--config"])
            .arg(s.dir.join("l3map.toml"))
            .output()
            .expect("runs");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("[ops.lead]") && err.contains(says), "{err}");
        assert!(!err.contains(token) || token == "short-one", "{err}");
    }
}

/// A ticket `in_progress` (a person's doing) whose move to
/// `pending_customer`, asked by an agent turn, is a dead letter.
async fn to_pending_customer_dead(s: &Stack) -> (u64, i64) {
    let ticket = s
        .create_ticket("Card declined twice", "premium", None)
        .await;
    as_a_person(s, ticket, "open", 18794539035103).await;
    ticket_becomes(s, ticket, |t| t["custom_status_id"] == 18794539035103u64).await;
    (ticket, dead_move(s, ticket, "pending_customer").await)
}

/// A retry after a person's status change whose move is still one the
/// table allows: the person's status stands all the same (red team round
/// 2): what the decision read and what the ticket shows now differ on
/// what the action writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_keeps_a_persons_status_where_the_move_is_still_allowed() {
    let (s, _tokens) = console_stack("console-retry-legal").await;
    let (ticket, id) = to_pending_customer_dead(&s).await;
    // The person takes it back to plain open (open -> pending_customer is
    // allowed too).
    as_a_person(&s, ticket, "open", 18794539035102).await;
    let last = retried_unsent(&s, ticket, id).await;
    assert!(
        last["answer"]
            .as_str()
            .is_some_and(|a| a.contains("a person's change")),
        "{last}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = s.ticket(ticket).await;
    assert_eq!(t["custom_status_id"], 18794539035102u64, "{t}");
}

/// A person's change that lands between the retry's fresh read and its
/// write: the write is a safe update stamped with that read, so Zendesk
/// answers 409 and the person's status stands (red team round 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_between_the_retrys_read_and_its_write_wins() {
    let (s, _tokens) = console_stack("console-retry-race").await;
    let (ticket, id) = to_pending_customer_dead(&s).await;
    let r = s
        .http
        .post(format!(
            "{}/__l3map/tickets/{ticket}/person_before_next_update",
            s.zendesk
        ))
        .json(&json!({"ticket": {"status": "open", "custom_status_id": 18794539035102u64, "priority": "urgent"}}))
        .send()
        .await
        .expect("emulator");
    assert!(r.status().is_success(), "{}", r.status());
    let last = retried_unsent(&s, ticket, id).await;
    assert!(
        last["answer"]
            .as_str()
            .is_some_and(|a| a.contains("a person's change")),
        "{last}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = s.ticket(ticket).await;
    assert_eq!(t["custom_status_id"], 18794539035102u64, "{t}");
    assert_eq!(t["priority"], "urgent", "{t}");
}
