//! Issue 14, the newcomer's stumbles with the runtime, the agent API and
//! the Zendesk emulator, found by someone who set up a new org's project
//! from the docs and the binary alone. Every test drives the real binaries
//! (`l3map emulate`, `l3map run --config`) over 127.0.0.1:
//!
//! 1. a hot reload that refuses the edited files shows in `/healthz`
//!    (`mappings.files`, with the first error and since when) and the log
//!    says once when the files on disk compile again;
//! 2. the `/healthz` answer and docs/RUNTIME.md agree, both ways;
//! 3. docs/AGENT_API.md says that a duplicate turn replays its answer,
//!    `queued` included;
//! 4. a mistyped `requested_status` is refused with a did-you-mean;
//! 5. `POST /api/v2/groups.json` creates a group, kept by `--state`;
//! 6. a comment's `author_id` is honoured, an end user's comment reopens a
//!    pending ticket as Zendesk does, and the webhook names the end user;
//! 7. a webhook the receiver refuses is logged by the emulator too, and
//!    `emulate PROJECT` seeds that project's own fields.

use crate::common::stack;

use reqwest::Method;
use serde_json::{json, Value};
use stack::{Stack, AGENT_TOKEN, DEV_TOKEN};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(60);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Polls `probe` until it gives `Some`, or fails with `what` after
/// [`PATIENCE`].
async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(started.elapsed() < PATIENCE, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------ /healthz

/// Every key of a JSON value, as `a.b.c` paths (objects only).
fn key_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.insert(path.clone());
            key_paths(child, &path, out);
        }
    }
}

/// The `/healthz` examples of docs/RUNTIME.md's Health section: its
/// `json` blocks that are objects with a `status`.
fn documented_answers(runtime_md: &str) -> Vec<Value> {
    let health = runtime_md
        .split("\n### Health\n")
        .nth(1)
        .expect("a Health section in docs/RUNTIME.md");
    let health = health.split("\n### ").next().unwrap_or(health);
    health
        .split("```json\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter(|v| v.get("status").is_some())
        .collect()
}

/// The names the Endpoints table gives the 200 answer of `GET /healthz`.
fn documented_names(runtime_md: &str) -> BTreeSet<String> {
    let row = runtime_md
        .lines()
        .find(|l| l.starts_with("| `GET` | `/healthz` |"))
        .expect("the /healthz row of the Endpoints table");
    let answer = row
        .split("200 `")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .expect("the row names the 200 answer");
    answer
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|n| *n != "ok")
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_shows_in_healthz_and_the_docs_match_the_answer() {
    let stack = Stack::start("polrt-health", "").await;
    let healthy = stack.health().await;
    let revision = healthy["revision"].clone();
    assert_eq!(
        healthy["mappings"],
        json!({"revision": revision, "files": "current", "refused_since": null, "error": null}),
        "{healthy:#}"
    );

    // Item 2: the documented answer and the real one have the same keys,
    // both ways, at every depth; and so has the Endpoints table.
    let docs = std::fs::read_to_string(root().join("docs/RUNTIME.md")).expect("RUNTIME.md");
    let examples = documented_answers(&docs);
    assert!(
        !examples.is_empty(),
        "docs/RUNTIME.md's Health section shows a /healthz answer"
    );
    let mut real = BTreeSet::new();
    key_paths(&healthy, "", &mut real);
    for example in &examples {
        let mut documented = BTreeSet::new();
        key_paths(example, "", &mut documented);
        assert_eq!(
            documented.difference(&real).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "documented but not answered"
        );
        assert_eq!(
            real.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "answered but not documented"
        );
    }
    let leaves: BTreeSet<String> = real
        .iter()
        .map(|p| p.rsplit('.').next().unwrap_or(p).to_string())
        .collect();
    assert_eq!(
        documented_names(&docs),
        leaves,
        "the Endpoints table's /healthz row"
    );

    // Item 1: a broken save is refused; /healthz says so (still 200: the
    // previous revision serves) with the first error and since when.
    let file = stack.mappings().join("statuses.l3map");
    let good = std::fs::read(&file).expect("statuses.l3map");
    let text = String::from_utf8(good.clone()).expect("utf-8");
    let broken = text.replacen(
        "solved, solved_refunded      -> closed",
        "solved, solved_refunded      -> closd ",
        1,
    );
    assert_ne!(broken, text, "the edit applies");
    let line = 1 + text
        .lines()
        .position(|l| l.contains("solved, solved_refunded      -> closed"))
        .expect("the edited line");
    std::fs::write(&file, &broken).expect("break the file");
    let refused = until("/healthz to show the refused files", || async {
        let r = stack
            .http
            .get(format!("{}/healthz", stack.runtime))
            .send()
            .await
            .ok()?;
        assert_eq!(r.status(), 200, "a refused reload keeps serving");
        let h: Value = r.json().await.ok()?;
        (h["mappings"]["files"] == "refused").then_some(h)
    })
    .await;
    let m = &refused["mappings"];
    assert_eq!(refused["status"], "ok");
    assert_eq!(m["revision"], revision, "still serving the old revision");
    let error = m["error"].as_str().expect("the first error");
    assert!(
        error.starts_with(&format!("statuses.l3map:{line}:"))
            && error.contains("unknown status `closd`")
            && error.contains("did you mean `closed`?")
            && !error.contains('\n'),
        "one line naming the place within the project: {error}"
    );
    let since = m["refused_since"].as_str().expect("since when");
    assert!(since.parse::<jiff::Timestamp>().is_ok(), "{since}");
    let mut keys = BTreeSet::new();
    key_paths(&refused, "", &mut keys);
    assert_eq!(keys, real, "a refused answer has the same shape");

    // Undo the edit: the same bytes as the served revision. The files are
    // current again, and the log says so once.
    std::fs::write(&file, &good).expect("fix the file");
    let back = until("/healthz to show current files again", || async {
        let h = stack.health().await;
        (h["mappings"]["files"] == "current").then_some(h)
    })
    .await;
    assert_eq!(back["mappings"]["revision"], revision);
    assert_eq!(back["mappings"]["error"], Value::Null);
    let said = "the mapping files on disk compile again";
    until("the log to say the files compile again", || async {
        stack.log().contains(said).then_some(())
    })
    .await;
    assert_eq!(stack.log().matches(said).count(), 1, "{}", stack.log());
}

// ------------------------------------------------------------ agent API

async fn turn(stack: &Stack, body: Value) -> Value {
    let r = stack
        .http
        .post(format!("{}/v1/turns", stack.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("turn");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

/// The row of a Markdown table whose first cell is `` `name` ``.
fn table_row<'a>(md: &'a str, name: &str) -> &'a str {
    let start = format!("| `{name}` |");
    md.lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("a table row for `{name}`"))
}

/// `l3map emulate` with a webhook signed with `secret` and the project
/// `project`; stderr to `log`. Returns the process and the Zendesk URL.
fn emulate(args: &[&str], secret: &str, log: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"])
        .args(args)
        .env("L3MAP_WEBHOOK_SECRET", secret)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("l3map emulate starts");
    let (url, _, lines) = crate::common::emulator_urls(&mut child);
    crate::common::drain(lines);
    (child, url)
}

struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Emulator {
    /// SIGTERM (the state is written on the way out), then the exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        self.0.wait().expect("exits")
    }
}

async fn zd(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(DEV_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("the Zendesk emulator answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_replies_and_refused_webhooks_say_what_happened() {
    let stack = Stack::start("polrt-turns", "").await;

    // Item 3: a retried turn replays the first answer, `queued` included,
    // and the docs say so instead of "nothing was queued".
    let body = json!({"turn_id": "polrt-dup-1", "ticket": 4211, "intent": "refund",
        "summary": "Wants a refund for order 1182", "sentiment": "negative",
        "refund_amount": {"amount": "250.00", "currency": "USD"}});
    let first = turn(&stack, body.clone()).await;
    let again = turn(&stack, body).await;
    assert_eq!(first["duplicate"], false);
    assert!(first["queued"].as_u64() > Some(0), "{first:#}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(
        again["queued"], first["queued"],
        "the original count, replayed"
    );
    assert_eq!(again["accepted"], first["accepted"]);
    let agent_api = std::fs::read_to_string(root().join("docs/AGENT_API.md")).expect("docs");
    let duplicate = table_row(&agent_api, "duplicate");
    assert!(
        duplicate.contains("replays") && !duplicate.contains("Nothing new was recorded or queued"),
        "{duplicate}"
    );
    let queued = table_row(&agent_api, "queued");
    assert!(
        queued.contains("duplicate") && queued.contains("original"),
        "{queued}"
    );

    // Item 4: a mistyped status gets a did-you-mean.
    let typo = turn(
        &stack,
        json!({"turn_id": "polrt-typo", "ticket": 4213, "intent": "question",
               "requested_status": "slved"}),
    )
    .await;
    let reason = typo["refused"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`slved` is not a status of `desk`")
            && reason.contains("did you mean `solved`?"),
        "{typo:#}"
    );

    // Item 6: an escalation on the end user's reply, added by hot reload.
    let revision = stack.health().await["revision"].clone();
    std::fs::write(
        stack.mappings().join("zz_replies.l3map"),
        "escalation customer_replied {\n  when    comment.author == end_user\n  \
         reason  \"The customer replied\"\n  comment desk \"Customer replied: {{ comment.body }}\"\n}\n",
    )
    .expect("a new mapping file");
    until("the new escalation to be live", || async {
        let h = stack.health().await;
        (h["revision"] != revision && h["mappings"]["files"] == "current").then_some(())
    })
    .await;
    let replied = stack
        .create_ticket("Printer on fire", "standard", None)
        .await;
    let untouched = stack
        .create_ticket("Printer smokes", "standard", None)
        .await;
    for id in [replied, untouched] {
        let r = zd(
            &stack.http,
            &stack.zendesk,
            Method::PUT,
            &format!("/api/v2/tickets/{id}.json"),
            Some(json!({"ticket": {"status": "pending"}})),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    // The agent's own comment on a pending ticket: it stays pending.
    let r = zd(
        &stack.http,
        &stack.zendesk,
        Method::PUT,
        &format!("/api/v2/tickets/{untouched}.json"),
        Some(json!({"ticket": {"comment": {"body": "We are on it", "public": true}}})),
    )
    .await;
    let t: Value = r.json().await.expect("json");
    assert_eq!(t["ticket"]["status"], "pending", "{t:#}");
    // The requester's (user 2000, an end user) reply reopens the ticket:
    // "If an end user comments on a ticket with a status set to Pending,
    // Solved, or On-hold, the ticket status is changed to Open"
    // (support.zendesk.com/hc/en-us/articles/4408894213018).
    let r = zd(
        &stack.http,
        &stack.zendesk,
        Method::PUT,
        &format!("/api/v2/tickets/{replied}.json"),
        Some(json!({"ticket": {"comment": {"body": "It is still on fire", "author_id": 2000}}})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.expect("json");
    assert_eq!(t["ticket"]["status"], "open", "{t:#}");
    let comments = stack.comments(replied).await;
    let last = comments.last().expect("the reply");
    assert_eq!(last["author_id"], 2000, "{last:#}");
    // A comment by someone the account does not have is refused.
    let r = zd(
        &stack.http,
        &stack.zendesk,
        Method::PUT,
        &format!("/api/v2/tickets/{replied}.json"),
        Some(json!({"ticket": {"comment": {"body": "who?", "author_id": 31337}}})),
    )
    .await;
    assert_eq!(r.status(), 422);
    // The webhook said `end_user`: the runtime handed off.
    until("the hand-off on the end user's reply", || async {
        stack
            .private_notes(replied)
            .await
            .iter()
            .any(|n| n == "Customer replied: It is still on fire")
            .then_some(())
    })
    .await;
    stack.drained(PATIENCE).await;
    assert!(
        !stack
            .private_notes(untouched)
            .await
            .iter()
            .any(|n| n.starts_with("Customer replied")),
        "the agent's own comment is not the customer's"
    );

    // Item 7: an emulator signing with another secret is refused by the
    // runtime, and the emulator says so too.
    let log = stack.dir.join("wrong-secret.log");
    let (child, zendesk) = emulate(
        &[
            "--webhook-url",
            &format!("{}/webhooks/zendesk", stack.runtime),
            "mappings/saas",
        ],
        "not-the-runtimes-secret",
        &log,
    );
    let _emulator = Emulator(child);
    let r = zd(
        &stack.http,
        &zendesk,
        Method::POST,
        "/api/v2/tickets.json",
        Some(json!({"ticket": {"subject": "Hello", "comment": {"body": "Hello"}}})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let warned = until(
        "the emulator to warn about the refused delivery",
        || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains("webhook delivery refused").then_some(text)
        },
    )
    .await;
    assert!(
        warned.contains("401") && warned.contains("WARN"),
        "{warned}"
    );
    assert!(
        !warned.contains("not-the-runtimes-secret"),
        "no secret in the log"
    );
    assert!(stack.log().contains("bad_signature"), "{}", stack.log());
}

// ------------------------------------------------------------ emulator

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_created_and_kept_and_a_project_seeds_its_own_fields() {
    let tmp = crate::common::temp_dir("polrt-emulate");
    let dir: PathBuf = tmp.path().to_path_buf();
    let state = dir.join("state.json");
    let state_arg = state.display().to_string();
    let http = reqwest::Client::new();
    let args = ["--state", state_arg.as_str(), "mappings/saas"];
    let (child, zendesk) = emulate(&args, "unused", &dir.join("first.log"));
    let first = Emulator(child);

    // Item 7: the saas project's own fields (mappings/saas/fields.l3map)
    // hold values on the seeded tickets, not nulls.
    let t: Value = zd(
        &http,
        &zendesk,
        Method::GET,
        "/api/v2/tickets/4211.json",
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    let fields = t["ticket"]["custom_fields"].as_array().expect("fields");
    assert!(!fields.is_empty(), "{t:#}");
    for f in fields {
        assert!(!f["value"].is_null(), "seeded: {f}");
    }
    let sla = fields
        .iter()
        .find(|f| f["id"] == 360004101)
        .expect("sla_tier");
    assert!(
        ["enterprise", "business", "standard"].contains(&sla["value"].as_str().unwrap_or("")),
        "{sla}"
    );

    // Item 5: "Create Group", POST /api/v2/groups
    // (developer.zendesk.com/api-reference/ticketing/groups/groups/):
    // `{"group": {"name"}}`, 201 with the group.
    let r = zd(
        &http,
        &zendesk,
        Method::POST,
        "/api/v2/groups.json",
        Some(json!({"group": {"name": "Tier 3 Escalations", "description": "Humans only"}})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().expect("text").to_string();
    let g: Value = r.json().await.expect("json");
    let id = g["group"]["id"].as_u64().expect("an id");
    assert_eq!(g["group"]["name"], "Tier 3 Escalations");
    assert_eq!(g["group"]["description"], "Humans only");
    assert_eq!(location, format!("{zendesk}/api/v2/groups/{id}.json"));
    // `name` is mandatory; a name already used is refused.
    for body in [
        json!({"group": {}}),
        json!({"group": {"name": "tier 3 escalations"}}),
    ] {
        let r = zd(&http, &zendesk, Method::POST, "/api/v2/groups", Some(body)).await;
        assert_eq!(r.status(), 422);
    }
    let r = zd(
        &http,
        &zendesk,
        Method::PUT,
        "/api/v2/tickets/4211.json",
        Some(json!({"ticket": {"group_id": id}})),
    )
    .await;
    assert_eq!(r.status(), 200, "the new group takes tickets");
    assert!(first.terminate().success());

    // Restarted from the state file: the group is still there.
    let (child, zendesk) = emulate(&args, "unused", &dir.join("second.log"));
    let _second = Emulator(child);
    let groups: Value = zd(&http, &zendesk, Method::GET, "/api/v2/groups.json", None)
        .await
        .json()
        .await
        .expect("json");
    let kept = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("group {id} kept: {groups:#}"));
    assert_eq!(kept["name"], "Tier 3 Escalations");
    assert_eq!(kept["description"], "Humans only");
    let t: Value = zd(
        &http,
        &zendesk,
        Method::GET,
        "/api/v2/tickets/4211.json",
        None,
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(t["ticket"]["group_id"], id);
}
