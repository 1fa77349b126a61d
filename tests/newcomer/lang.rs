//! Issue 14, items 11 and 12, from the outside: the language's meaning
//! against what Zendesk, Salesforce and a first-time user expect, driven
//! through the real binary.
//!
//! * Scopes as the services grant them. Zendesk's OAuth Tokens API reference
//!   (developer.zendesk.com/api-reference/ticketing/oauth/oauth_tokens/,
//!   "Scopes"): a scope is `[resource:]access`; without a resource it covers
//!   every resource; `read` is GET, `write` is POST/PUT/DELETE. Every write
//!   l3map makes is an update of the ticket, so `write` alone, or
//!   `tickets:write` alone, is enough. Salesforce Help, "OAuth Tokens and
//!   Scopes": `refresh_token` and `offline_access` are one scope.
//! * Money across currencies: `turn.refund_amount > $200` for a refund of
//!   25,000 EUR is refused where the agent, `l3map test` and `l3map plan`
//!   see it, never a silent "no"; `check` warns when a connection's
//!   `currencies` lists one the rule has no threshold for.

use crate::common::stack;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use tempfile::TempDir;

/// A project folder of its own: one `desk.l3map` holding `text`.
struct Project(TempDir);

impl Project {
    fn new(name: &str, text: &str) -> Project {
        Project(crate::common::project(
            &format!("newcomer-lang-{name}"),
            &[("desk.l3map", text)],
        ))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

fn l3map(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(args)
        .arg(dir)
        .output()
        .expect("l3map runs")
}

/// `l3map check --format json`: the exit code and the diagnostics.
fn check(dir: &Path) -> (i32, Vec<Value>) {
    let out = l3map(&["check", "--deny", "warnings", "--format", "json"], dir);
    let text = String::from_utf8_lossy(&out.stdout);
    let diags: Vec<Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("check --format json: {e}\n{text}"));
    (out.status.code().unwrap_or(-1), diags)
}

fn codes(diags: &[Value]) -> Vec<String> {
    diags
        .iter()
        .map(|d| format!("{} {}", d["code"].as_str().unwrap_or(""), d["message"]))
        .collect()
}

/// A Zendesk desk whose escalation writes every kind of ticket update: a
/// private comment, a field, a group and a status.
fn desk(scopes: &str, extra: &str) -> String {
    format!(
        r#"connection desk: zendesk {{
  subdomain  "acme"
  token      env("ZENDESK_OAUTH_TOKEN")
  scopes     {scopes}
{extra}}}

statuses desk {{
  new      new      "New"
  open     open     "Open"
  pending  pending  "Waiting on the customer"
  solved   solved   "Solved"

  new -> open
  open -> pending, solved
  pending, solved -> open  when comment.author == end_user
}}

fields desk {{
  refund_reason  #360001241  string  "Refund reason"
}}

escalation refund_over_threshold {{
  when    turn.intent == "refund" and turn.refund_amount > $200
  reason  "Customer is requesting a refund above the $200 pre-authorised threshold"
  comment desk "{{{{ escalation.reason }}}}. The customer asked: {{{{ turn.summary }}}}"
  set     desk refund_reason = "above threshold"
  assign  desk "Billing"
  status  desk open
}}
"#
    )
}

#[test]
fn zendesk_write_or_tickets_write_alone_covers_every_ticket_update() {
    // `write` covers every resource, tickets included (comments, fields,
    // the group, the status): no `tickets:write` on top.
    let only_write = Project::new("only-write", &desk("read, write", ""));
    let (code, diags) = check(only_write.path());
    assert_eq!((code, codes(&diags)), (0, vec![]), "read, write");

    // `tickets:write` covers the ticket's comments and fields, not only
    // its status: no `write` on top.
    let tickets_write = Project::new("tickets-write", &desk("read, tickets:write", ""));
    let (code, diags) = check(tickets_write.path());
    assert_eq!((code, codes(&diags)), (0, vec![]), "read, tickets:write");
}

#[test]
fn a_really_missing_zendesk_scope_is_an_error_naming_what_needs_it() {
    // Only reads: the hand-off's comment, field, group and status are
    // ticket updates nothing allows.
    let read_only = Project::new("read-only", &desk("read", ""));
    let (code, diags) = check(read_only.path());
    assert_eq!(code, 1, "{:?}", codes(&diags));
    let missing: Vec<&Value> = diags
        .iter()
        .filter(|d| d["code"] == "l3map::scope::missing")
        .collect();
    assert_eq!(missing.len(), 1, "{:?}", codes(&diags));
    let m = missing[0]["message"].as_str().unwrap_or("");
    assert!(m.contains("`tickets:write`"), "{m}");
    assert!(
        missing[0]["help"]
            .as_str()
            .is_some_and(|h| h.contains("comments")),
        "{}",
        missing[0]
    );

    // `tickets:read` reads tickets, but `assign` looks the group up in
    // /api/v2/groups, which only the global `read` opens.
    let no_global_read = Project::new("no-global-read", &desk("tickets:read, tickets:write", ""));
    let (code, diags) = check(no_global_read.path());
    assert_eq!(code, 1, "{:?}", codes(&diags));
    let m: Vec<String> = codes(&diags);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].starts_with("l3map::scope::missing")
            && m[0].contains("`read`")
            && m[0].contains("groups"),
        "{m:?}"
    );
    // The place that needs it: the `assign` line.
    let uses = &diags[0]["labels"];
    assert!(
        uses.as_array().is_some_and(|l| l
            .iter()
            .any(|l| l["message"] == "needs `read`" && l["line"] == 27)),
        "{uses}"
    );
}

#[test]
fn a_really_broader_scope_is_flagged_as_too_broad() {
    // `users:write` lets the token change every user; l3map never does.
    let users = Project::new("users-write", &desk("read, tickets:write, users:write", ""));
    let (code, diags) = check(users.path());
    assert_eq!(code, 1, "--deny warnings fails on it: {:?}", codes(&diags));
    assert_eq!(diags.len(), 1, "{:?}", codes(&diags));
    assert_eq!(diags[0]["code"], "l3map::scope::too_broad");
    assert_eq!(diags[0]["severity"], "warning");
    assert!(
        diags[0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("`users:write`"),
        "{}",
        diags[0]
    );
    assert_eq!(
        (diags[0]["line"].as_u64(), diags[0]["column"].as_u64()),
        (Some(4), Some(35))
    );
}

#[test]
fn salesforce_refresh_token_and_offline_access_are_one_scope() {
    let project = |scopes: &str| {
        format!(
            r#"connection desk: zendesk {{
  subdomain  "acme"
  token      env("ZENDESK_OAUTH_TOKEN")
  scopes     read, tickets:write
}}

connection crm: salesforce {{
  instance       "https://acme.my.salesforce.com"
  client_id      env("SF_CLIENT_ID")
  client_secret  env("SF_CLIENT_SECRET")
  refresh_token  env("SF_REFRESH_TOKEN")
  scopes         {scopes}
  objects        Case
}}

link desk.ticket <-> crm.Case {{
  on ticket.external_id == Case.Id
}}

map crm -> desk {{
  Case.Subject -> subject
}}
"#
        )
    };
    for scopes in ["api, refresh_token", "api, offline_access"] {
        let p = Project::new("sf-offline", &project(scopes));
        let (code, diags) = check(p.path());
        assert_eq!((code, codes(&diags)), (0, vec![]), "{scopes}");
    }
    // `web` opens an API l3map never calls.
    let p = Project::new("sf-web", &project("api, refresh_token, web"));
    let (_, diags) = check(p.path());
    assert_eq!(codes(&diags).len(), 1, "{:?}", codes(&diags));
    assert_eq!(diags[0]["code"], "l3map::scope::too_broad");
    assert!(diags[0]["message"].as_str().unwrap_or("").contains("`web`"));
}

/// The first project of docs/LANGUAGE.md, and a test that a refund of
/// 25,000 EUR decides nothing — which is what it silently did.
fn euro_refund_project(expect: &str) -> String {
    format!(
        r#"{}
test a_big_refund_in_euros {{
  event """
  {{"kind": "agent_turn",
   "ticket": {{"id": 7, "status": "pending"}},
   "turn": {{"intent": "refund", "summary": "Wants 25,000 EUR back",
            "refund_amount": {{"amount": "25000.00", "currency": "EUR"}}}}}}
  """
  {expect}
}}
"#,
        // Scopes every version of l3map accepts: this is about money.
        desk("read, write, tickets:write", "")
    )
}

#[test]
fn a_refund_in_euros_against_a_dollar_threshold_is_no_silent_no_match() {
    // `expect nothing` held on the old code: the rule quietly did not fire.
    let silent = Project::new("euro-silent", &euro_refund_project("expect nothing"));
    let out = l3map(&["test"], silent.path());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the test must fail now:\n{text}"
    );
    for needed in [
        "refused escalation refund_over_threshold",
        "25,000.00 EUR",
        "200.00 USD",
        "does not convert currencies",
    ] {
        assert!(text.contains(needed), "{needed:?} missing from:\n{text}");
    }

    // What the refusal is, tested the way a user writes it.
    let refused = Project::new(
        "euro-refused",
        &euro_refund_project("expect refused \"no threshold in EUR\"\n  expect no comment"),
    );
    let out = l3map(&["test"], refused.path());
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // `plan` names the rule's line and both currencies.
    let events = refused.path().join("events.jsonl");
    std::fs::write(
        &events,
        r#"{"id":"e1","kind":"agent_turn","at":"2026-01-01T00:00:00Z","ticket":{"id":7,"status":"pending"},"turn":{"intent":"refund","refund_amount":{"amount":"25000.00","currency":"EUR"}}}
"#,
    )
    .expect("events");
    let out = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["plan", "--format", "json", "--events"])
        .arg(&events)
        .arg(refused.path())
        .output()
        .expect("plan");
    let text = String::from_utf8_lossy(&out.stdout);
    let decision: Value = serde_json::from_str(text.lines().next().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(decision["actions"], serde_json::json!([]), "{decision}");
    let r = &decision["refused"][0];
    assert_eq!(r["what"], "escalation refund_over_threshold", "{decision}");
    let reason = r["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("25,000.00 EUR") && reason.contains("200.00 USD"),
        "{reason}"
    );
    let source = r["source"].as_str().unwrap_or("");
    assert!(
        source.ends_with("desk.l3map:23:39"),
        "the `when` comparison: {source}"
    );
}

#[test]
fn check_warns_when_a_rule_has_no_threshold_in_a_declared_currency() {
    let p = Project::new(
        "currencies",
        &desk("read, write, tickets:write", "  currencies USD, EUR\n"),
    );
    let (code, diags) = check(p.path());
    assert_eq!(code, 1, "--deny warnings fails on it: {:?}", codes(&diags));
    assert_eq!(diags.len(), 1, "{:?}", codes(&diags));
    let d = &diags[0];
    assert_eq!(d["code"], "l3map::money::uncovered_currency");
    assert_eq!(d["severity"], "warning");
    let m = d["message"].as_str().unwrap_or("");
    assert!(
        m.contains("`turn.refund_amount`") && m.contains("USD") && m.contains("EUR"),
        "{m}"
    );
    // It points at the comparison, and its help says what to write.
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(24), Some(39)),
        "{d}"
    );
    assert!(
        d["help"].as_str().is_some_and(|h| h.contains("EUR)")),
        "{d}"
    );

    // A threshold per currency is what it asks for: clean.
    let fixed = desk("read, write, tickets:write", "  currencies USD, EUR\n").replace(
        "turn.refund_amount > $200",
        "(turn.refund_amount > $200 or turn.refund_amount > 180 EUR)",
    );
    let p = Project::new("currencies-fixed", &fixed);
    let (code, diags) = check(p.path());
    assert_eq!((code, codes(&diags)), (0, vec![]));
}

/// The agent's own view: a turn on the real `l3map run` (the fintech
/// desk: thresholds in USD, EUR and GBP) asking for a refund in yen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_sees_a_refund_it_cannot_compare_as_refused_with_its_line() {
    let s = stack::Stack::start("newcomer-lang-yen", "").await;
    let r = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(stack::AGENT_TOKEN)
        .json(&serde_json::json!({
            "turn_id": "yen-1",
            "ticket": 4211,
            "intent": "refund",
            "summary": "返金の依頼",
            "refund_amount": {"amount": "25000", "currency": "JPY"},
            "requested_status": "solved"
        }))
        .send()
        .await
        .expect("turn");
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.expect("json");
    assert_eq!(answer["accepted"], serde_json::json!([]), "{answer}");
    assert_eq!(answer["queued"], 0, "{answer}");
    let refused = answer["refused"].as_array().cloned().unwrap_or_default();
    let handoff = refused
        .iter()
        .find(|r| r["what"] == "escalation refund_over_threshold")
        .unwrap_or_else(|| panic!("no refusal of the hand-off: {answer}"));
    let reason = handoff["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("25,000.00 JPY")
            && reason.contains("USD")
            && reason.contains("a person must decide"),
        "{reason}"
    );
    let source = handoff["source"].as_str().unwrap_or("");
    // The first comparison it could not make: `> $200`, under `when`.
    assert!(
        source.ends_with("escalations.l3map:17:16"),
        "the comparison's line: {source}"
    );
    // The status the agent asked for waits for that person too.
    assert!(
        refused
            .iter()
            .any(|r| r["what"].as_str().is_some_and(|w| w.ends_with("-> solved"))),
        "{answer}"
    );
}
