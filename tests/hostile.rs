//! Hostile input: whatever reaches the payload converters, the webhook
//! handler, the agent API or the template renderer, the answer is an event,
//! a 2xx, a 4xx with a JSON error, or a typed error — never a panic, a 5xx
//! or unbounded memory.
//!
//! * Properties (proptest, a fixed seed and a bounded number of cases so
//!   the file runs in seconds): the CI-sized equivalents of the cargo-fuzz
//!   targets `events`, `webhook` and `template` in `fuzz/`, plus agent API
//!   turn bodies. HTTP properties go over real HTTP on 127.0.0.1 to the
//!   runtime's router, with the Zendesk and Salesforce emulators behind it.
//! * Named tests: oversized bodies (refused with a 413 before the rest is
//!   sent), 100,000 nested `[`, invalid UTF-8, against the runtime and
//!   both emulators; a template of megabytes and a huge, deep `.l3map` file.
//!
//! `PROPTEST_CASES` overrides the number of cases per property and
//! `PROPTEST_RNG_SEED` the seed. docs/RELIABILITY.md ("Hostile input")
//! lists every test with its figures.

use crate::common;

use common::answer;
use common::rig::{fintech, Emulators, Rig};
use l3map::compile::{check, lower};
use l3map::connectors::Secret;
use l3map::emulator::salesforce::SalesforceOptions;
use l3map::emulator::zendesk::{webhook_signature, DEV_TOKEN};
use l3map::eval::convert::{from_source_json, ConvertContext, SalesforceOptions as SfLink};
use l3map::eval::decide::{decide, ActionKind};
use l3map::eval::event::Event;
use l3map::eval::expr::Scope;
use l3map::eval::template::{render, MAX_RENDER};
use l3map::runtime::compile::compile;
use l3map::runtime::server::App;
use l3map::syntax::SourceMap;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ------------------------------------------------------------------ config

const SEED: u64 = 0x0405_711e;
const AGENT_TOKEN: &str = "hostile-agent-token-3b7e";
const WEBHOOK_SECRET: &str = "hostile-webhook-secret";

/// `cases` per property ([`common::proptest_config`]), the seed `SEED`
/// plus `salt` so properties sharing a strategy draw different inputs.
fn runner(cases: u32, salt: u64) -> TestRunner {
    TestRunner::new(common::proptest_config(cases, SEED.wrapping_add(salt)))
}

/// The source payloads of tests/fixtures/sources and the first recorded
/// events of each stream: what the fuzz corpus is seeded with too.
fn payloads() -> Vec<String> {
    let mut out = Vec::new();
    let dir = common::root().join("tests/fixtures/sources");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/sources")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for f in files {
        out.push(std::fs::read_to_string(f).expect("fixture"));
    }
    for stream in ["fintech", "saas", "shop"] {
        let text = std::fs::read_to_string(
            common::root().join(format!("tests/data/events/{stream}.jsonl")),
        )
        .expect("sample events");
        out.extend(text.lines().take(10).map(str::to_string));
    }
    out
}

// ------------------------------------------------------------------ strategies

/// Any JSON value, a few levels deep, with the keys the converters look for.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id".to_string()),
        Just("kind".to_string()),
        Just("at".to_string()),
        Just("type".to_string()),
        Just("ticket".to_string()),
        Just("tickets".to_string()),
        Just("detail".to_string()),
        Just("status".to_string()),
        Just("updated_at".to_string()),
        Just("attributes".to_string()),
        Just("records".to_string()),
        Just("totalSize".to_string()),
        Just("ChangeEventHeader".to_string()),
        Just("custom_fields".to_string()),
        Just("turn".to_string()),
        "[a-zA-Z_]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!("zen:event-type:ticket.status_changed")),
        Just(json!("2026-11-11T10:00:00Z")),
        Just(json!("agent_turn")),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer of `v`, the root included.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// A real payload with one value replaced by another, or its text cut,
/// or bytes flipped: near-valid input, where converters are most likely
/// to trust what they should not.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let n = seeds.len();
    (
        0..n,
        any::<prop::sample::Index>(),
        json_value(),
        0..3u8,
        any::<u8>(),
    )
        .prop_map(move |(i, at, with, how, byte)| {
            let text = &seeds[i];
            match (how, serde_json::from_str::<Value>(text)) {
                (0, Ok(mut v)) => {
                    let mut ps = Vec::new();
                    pointers(&v, String::new(), &mut ps);
                    let p = &ps[at.index(ps.len())];
                    if let Some(slot) = v.pointer_mut(p) {
                        *slot = with;
                    }
                    v.to_string()
                }
                (1, _) => {
                    let mut cut = at.index(text.len() + 1);
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text[..cut].to_string()
                }
                _ => {
                    let mut bytes = text.clone().into_bytes();
                    if !bytes.is_empty() {
                        let k = at.index(bytes.len());
                        bytes[k] = byte;
                    }
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            }
        })
}

/// A payload: a real one mutated, a JSON tree, or any text.
fn payload(seeds: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => mutated(seeds),
        3 => json_value().prop_map(|v| v.to_string()),
        1 => any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

// ------------------------------------------------------------------ the rig

/// The runtime's router on 127.0.0.1 twice over one engine: `full` reads
/// tickets from the Zendesk emulator (the agent API needs it), `bare` has
/// no clients, so a webhook's answer depends on its body alone.
struct Hostile {
    full: String,
    bare: String,
    zendesk: String,
    salesforce: String,
    http: reqwest::Client,
    _rig: Rig,
}

async fn rig() -> Hostile {
    let mut rig = Rig::start(Emulators::start(fintech(), Some(1_000_000)).await).await;
    let app = |zendesk| {
        Arc::new(App {
            webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
            agents: vec![("bot".to_string(), Secret::new(AGENT_TOKEN))],
            zendesk,
            salesforce: None,
            ..rig.app()
        })
    };
    let (full, bare) = (app(rig.zendesk()), app(None));
    let full = rig.serve(full).await;
    let bare = rig.serve(bare).await;
    Hostile {
        full,
        bare,
        zendesk: rig.emulators.zendesk_url.clone(),
        salesforce: rig.emulators.salesforce_url.clone(),
        http: reqwest::Client::new(),
        _rig: rig,
    }
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Signature headers Zendesk would send for `body`, stamped now.
fn signed(req: reqwest::RequestBuilder, body: &[u8]) -> reqwest::RequestBuilder {
    let ts = jiff::Timestamp::now().to_string();
    let sig = webhook_signature(&Secret::new(WEBHOOK_SECRET), &ts, body);
    req.header("x-zendesk-webhook-signature", sig)
        .header("x-zendesk-webhook-signature-timestamp", ts)
}

/// A refusal: the status is in `allowed` and the JSON says what was wrong.
fn assert_refusal(what: &str, status: u16, v: &Value, allowed: &[u16]) {
    assert!(allowed.contains(&status), "{what}: answered {status}: {v}");
    let said = v["error"].is_string()
        || v[0]["errorCode"].is_string()
        || v["description"].is_string()
        || v["error_description"].is_string();
    assert!(said, "{what}: {status} without a JSON error: {v}");
}

// ------------------------------------------------------------------ properties

/// The `events` fuzz target, CI-sized: any payload through the converters,
/// with and without a Salesforce ticket link. What they accept reads back
/// from its JSON unchanged (the store keeps events as JSON) and the
/// interpreter decides it.
#[test]
fn event_decoding_never_panics() {
    let program = fintech();
    let plain = ConvertContext::new(&program);
    let linked = plain.clone().with_salesforce(SfLink {
        ticket_field: Some("Zendesk_Ticket_Id__c".into()),
    });
    let (accepted, refused) = (Cell::new(0u32), Cell::new(0u32));
    runner(512, 1)
        .run(&payload(payloads()), |text| {
            for ctx in [&plain, &linked] {
                match from_source_json(&text, ctx) {
                    Ok(events) => {
                        accepted.set(accepted.get() + 1);
                        for ev in &events {
                            let stored = serde_json::to_string(ev).expect("an event serialises");
                            let back = Event::from_json(&stored).map_err(|e| {
                                TestCaseError::fail(format!("does not read back: {e}: {stored}"))
                            })?;
                            prop_assert_eq!(&back, ev);
                            let _ = decide(&program, ev);
                        }
                    }
                    Err(e) => {
                        refused.set(refused.get() + 1);
                        prop_assert!(!e.message.is_empty());
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    // The strategy reaches both sides of the converters.
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(
        accepted > 20 && refused > 20,
        "{accepted} accepted, {refused} refused"
    );
}

/// The `webhook` fuzz target, CI-sized, over HTTP: signed deliveries of any
/// payload are a 200 or a 400 with a JSON error; unsigned ones a 401.
#[test]
fn webhook_handler_answers_every_body() {
    let rt = tokio_rt();
    let rig = rt.block_on(rig());
    let strategy = (payload(payloads()), 0..4u8);
    let seen = RefCell::new(BTreeMap::<u16, u32>::new());
    runner(160, 2)
        .run(&strategy, |(body, mode)| {
            let url = format!("{}/webhooks/zendesk", rig.bare);
            let req = rig
                .http
                .post(url)
                .header("content-type", "application/json");
            let (req, allowed): (_, &[u16]) = match mode {
                0 => (req, &[401]),
                _ => (signed(req, body.as_bytes()), &[200, 400]),
            };
            let (status, v) = rt.block_on(answer(req.body(body.clone())));
            *seen.borrow_mut().entry(status).or_default() += 1;
            if status == 200 {
                prop_assert!(v["accepted"].is_u64(), "{}", v);
            } else {
                assert_refusal(&body, status, &v, allowed);
            }
            prop_assert!(allowed.contains(&status), "{} for {}", status, body);
            Ok(())
        })
        .unwrap();
    let seen = seen.into_inner();
    assert!(
        seen.contains_key(&200) && seen.contains_key(&400) && seen.contains_key(&401),
        "{seen:?}"
    );
}

/// Agent turn bodies: any JSON object with the API's keys (and others),
/// any text. The answer is a 200 or a 4xx with a JSON error, never a 5xx.
#[test]
fn agent_turns_answer_every_body() {
    let rt = tokio_rt();
    let rig = rt.block_on(rig());
    let field = prop_oneof![
        Just("turn_id"),
        Just("ticket"),
        Just("case"),
        Just("intent"),
        Just("summary"),
        Just("attempts"),
        Just("sentiment"),
        Just("requested_status"),
        Just("refund_amount"),
        Just("fields"),
        Just("confidence"),
        Just("language"),
        Just("order_id"),
        Just("product"),
        Just("surprise"),
    ];
    let value = prop_oneof![
        2 => json_value(),
        1 => prop_oneof![Just(4211u64), Just(4213), Just(4214), Just(5105), any::<u64>()]
            .prop_map(|t| json!(t)),
        1 => Just(json!({"amount": "250.00", "currency": "USD"})),
        1 => Just(json!({"sla_tier": "enterprise", "risk_score": 99})),
        1 => Just(json!("refund")),
    ];
    let object = prop::collection::btree_map(field, value, 0..8).prop_map(|m| {
        Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()).to_string()
    });
    let body = prop_oneof![
        6 => object,
        1 => json_value().prop_map(|v| v.to_string()),
        1 => any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    let seen = RefCell::new(BTreeMap::<u16, u32>::new());
    runner(128, 3)
        .run(&body, |body| {
            let req = rig
                .http
                .post(format!("{}/v1/turns", rig.full))
                .bearer_auth(AGENT_TOKEN)
                .header("content-type", "application/json")
                .body(body.clone());
            let (status, v) = rt.block_on(answer(req));
            *seen.borrow_mut().entry(status).or_default() += 1;
            if status != 200 {
                assert_refusal(&body, status, &v, &[400, 404, 409, 422]);
            }
            Ok(())
        })
        .unwrap();
    let seen = seen.into_inner();
    assert!(seen.contains_key(&400), "{seen:?}");
}

/// A template of the fintech project made of random text, placeholders
/// over real and unknown paths, and filters with random arguments.
fn template_text() -> impl Strategy<Value = String> {
    let path = prop_oneof![
        Just("turn.summary"),
        Just("turn.attempts"),
        Just("turn.refund_amount"),
        Just("turn.confidence"),
        Just("turn.sentiment"),
        Just("ticket.tags"),
        Just("ticket.sla_tier"),
        Just("ticket.risk_score"),
        Just("escalation.reason"),
        Just("Contact.Name"),
        Just("no.such"),
    ];
    let arg = prop_oneof![
        Just(String::new()),
        "-?[0-9]{1,20}(\\.[0-9]{1,4})?",
        "\"[^\"\\\\]{0,12}\"".prop_map(|s| s),
        Just("\"; \"".to_string()),
        Just("1e308".to_string()),
    ];
    let filter = (
        prop_oneof![
            Just("upper"),
            Just("lower"),
            Just("trim"),
            Just("join"),
            Just("default"),
            Just("truncate"),
            Just("money"),
            Just("nope"),
        ],
        prop::collection::vec(arg, 0..3),
    )
        .prop_map(|(name, args)| {
            if args.is_empty() {
                name.to_string()
            } else {
                format!("{name}({})", args.join(", "))
            }
        });
    let placeholder = (path, prop::collection::vec(filter, 0..4)).prop_map(|(p, fs)| {
        let mut s = format!("{{{{ {p}");
        for f in fs {
            s.push_str(" | ");
            s.push_str(&f);
        }
        s.push_str(" }}");
        s
    });
    let text = prop_oneof![
        "[ -~]{0,20}",
        Just("\n".to_string()),
        Just("{".to_string()),
        Just("}}".to_string()),
        Just("\"\"\"".to_string()),
        Just("アイフォン «é»".to_string()),
    ];
    prop::collection::vec(prop_oneof![3 => placeholder, 2 => text], 0..12)
        .prop_map(|parts| parts.concat())
}

/// An agent turn with large and odd values.
fn turn_event() -> impl Strategy<Value = String> {
    (
        ".{0,40}",
        prop::collection::vec(".{0,8}", 0..300),
        prop_oneof![Just("1234.5"), Just("-0.0001"), Just("899999999999.9999")],
        prop::collection::vec("[a-z_]{0,10}", 0..5),
        0..4000usize,
    )
        .prop_map(|(summary, attempts, amount, tags, repeat)| {
            json!({
                "id": "e", "kind": "agent_turn", "at": "2026-11-11T10:00:00Z",
                "ticket": {"id": 42, "tags": tags, "custom_fields": {"360001234": "enterprise"}},
                "turn": {"intent": "refund", "summary": summary.repeat(repeat),
                         "attempts": attempts, "sentiment": "angry",
                         "refund_amount": {"amount": amount, "currency": "EUR"}}
            })
            .to_string()
        })
}

/// The `template` fuzz target, CI-sized: a template that checks renders
/// within [`MAX_RENDER`], the same each time; one that does not check is
/// a diagnostic. Neither panics.
#[test]
fn template_rendering_is_bounded() {
    let files: Vec<(String, String)> = ["connections", "escalations", "fields", "kyc", "statuses"]
        .iter()
        .map(|f| {
            let path = format!("mappings/fintech/{f}.l3map");
            let text = std::fs::read_to_string(common::root().join(&path)).expect("fintech");
            (path, text)
        })
        .collect();
    let (rendered, diagnosed) = (Cell::new(0u32), Cell::new(0u32));
    runner(192, 4)
        .run(&(template_text(), turn_event()), |(body, event)| {
            let mut sources = SourceMap::new();
            for (path, text) in &files {
                sources.add(path.clone(), text.as_str());
            }
            sources.add("hostile.l3map", template_file(&body));
            let checked = check(&sources, None);
            let Ok(program) = lower(&checked, &sources) else {
                diagnosed.set(diagnosed.get() + 1);
                prop_assert!(checked.has_errors());
                return Ok(());
            };
            rendered.set(rendered.get() + 1);
            let ev = Event::from_json(&event).expect("the generated event reads");
            let esc = program
                .escalations
                .iter()
                .find(|e| e.name == "hostile_e")
                .expect("the escalation lowers");
            let scope = Scope {
                escalation: Some((&esc.name, &esc.reason)),
            };
            let t = program
                .templates
                .iter()
                .find(|t| t.name == "hostile_t")
                .expect("the template lowers");
            let out = render(&t.parts, &ev, scope);
            prop_assert!(out.len() <= MAX_RENDER, "{} bytes", out.len());
            prop_assert_eq!(&out, &render(&t.parts, &ev, scope));
            let _ = decide(&program, &ev);
            Ok(())
        })
        .unwrap();
    let (rendered, diagnosed) = (rendered.get(), diagnosed.get());
    assert!(
        rendered > 20 && diagnosed > 5,
        "{rendered} rendered, {diagnosed} diagnosed"
    );
}

/// A file that adds a template with `body` and an escalation using it.
fn template_file(body: &str) -> String {
    format!(
        "template hostile_t \"\"\"{body}\"\"\"\nescalation hostile_e {{\n  when    turn.intent == \"refund\"\n  reason  \"Refund above the $200 pre-authorised threshold\"\n  comment desk hostile_t\n  comment crm hostile_t\n}}\n"
    )
}

// ------------------------------------------------------------------ named: HTTP

/// Where each server under test takes a JSON body, with the credentials
/// it needs: the runtime's webhook and turn endpoints and a write on each
/// emulator.
struct Target {
    name: &'static str,
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    /// The webhook signs each body.
    sign: bool,
}

async fn salesforce_token(base: &str) -> String {
    let sf = SalesforceOptions::default();
    let resp: Value = reqwest::Client::new()
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", sf.client_id.as_str()),
            ("client_secret", sf.client_secret.as_str()),
            ("refresh_token", sf.refresh_token.as_str()),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("token JSON");
    resp["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

async fn targets(rig: &Hostile) -> Vec<Target> {
    let sf_token = salesforce_token(&rig.salesforce).await;
    vec![
        Target {
            name: "runtime POST /webhooks/zendesk",
            method: "POST",
            url: format!("{}/webhooks/zendesk", rig.full),
            headers: vec![],
            sign: true,
        },
        Target {
            name: "runtime POST /v1/turns",
            method: "POST",
            url: format!("{}/v1/turns", rig.full),
            headers: vec![("authorization", format!("Bearer {AGENT_TOKEN}"))],
            sign: false,
        },
        Target {
            name: "Zendesk emulator POST /api/v2/tickets.json",
            method: "POST",
            url: format!("{}/api/v2/tickets.json", rig.zendesk),
            headers: vec![("authorization", format!("Bearer {DEV_TOKEN}"))],
            sign: false,
        },
        Target {
            name: "Salesforce emulator POST /sobjects/Case",
            method: "POST",
            url: format!("{}/services/data/v60.0/sobjects/Case", rig.salesforce),
            headers: vec![("authorization", format!("Bearer {sf_token}"))],
            sign: false,
        },
    ]
}

async fn send(rig: &Hostile, t: &Target, body: Vec<u8>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(t.method.as_bytes()).expect("a method");
    let mut req = rig
        .http
        .request(method, &t.url)
        .header("content-type", "application/json");
    for (k, v) in &t.headers {
        req = req.header(*k, v);
    }
    if t.sign {
        req = signed(req, &body);
    }
    answer(req.body(body)).await
}

/// 100,000 nested `[` (and `{"a":`), alone and inside a payload: a 400
/// with a JSON error, on the handler's own stack, without overflowing it.
#[test]
fn deeply_nested_json_is_a_400() {
    let rt = tokio_rt();
    let rig = rt.block_on(rig());
    let bodies = [
        "[".repeat(100_000),
        format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
        "{\"a\":".repeat(100_000),
        format!(
            "{{\"type\":\"zen:event-type:ticket.created\",\"detail\":{}}}",
            "[".repeat(100_000)
        ),
        format!(
            "{{\"ticket\":4213,\"intent\":\"refund\",\"fields\":{{\"sla_tier\":{}}}}}",
            "[".repeat(100_000)
        ),
    ];
    rt.block_on(async {
        for t in targets(&rig).await {
            for body in &bodies {
                let (status, v) = send(&rig, &t, body.clone().into_bytes()).await;
                assert_refusal(t.name, status, &v, &[400]);
            }
        }
    });
}

/// Bytes that are not UTF-8, inside a string and outside one: a 400 with
/// a JSON error.
#[test]
fn invalid_utf8_is_a_400() {
    let rt = tokio_rt();
    let rig = rt.block_on(rig());
    let bodies: [&[u8]; 4] = [
        b"\xff\xfe\xfd",
        b"{\"type\":\"zen:event-type:ticket.created\",\"subject\":\"caf\xe9\"}",
        b"{\"ticket\":4213,\"intent\":\"refund\xc3\x28\"}",
        b"{\"Subject\":\"\xed\xa0\x80 a lone surrogate\"}",
    ];
    rt.block_on(async {
        for t in targets(&rig).await {
            for body in bodies {
                let (status, v) = send(&rig, &t, body.to_vec()).await;
                assert_refusal(t.name, status, &v, &[400]);
            }
        }
    });
}

/// How the body of [`declared_gigabyte`] is framed.
#[derive(Clone, Copy)]
enum Framing {
    /// `content-length: 1 GiB`.
    Length,
    /// `transfer-encoding: chunked`, no length announced.
    Chunked,
}

/// What a server answers to a request that announces a 1 GiB body (or a
/// chunked one) and sends its first 8 MiB (twice the largest limit), over a raw socket: the answer
/// must come while most of the body was never sent, which is what bounds
/// the memory a request can take.
async fn declared_gigabyte(t: &Target, framing: Framing) -> (u16, Value) {
    const DECLARED: usize = 1 << 30;
    let rest = t.url.strip_prefix("http://").expect("http");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n{}\r\n",
        t.method,
        match framing {
            Framing::Length => format!("content-length: {DECLARED}"),
            Framing::Chunked => "transfer-encoding: chunked".to_string(),
        }
    );
    for (k, v) in &t.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if t.sign {
        // Signed over nothing: the size is refused before the signature
        // is looked at.
        let ts = jiff::Timestamp::now().to_string();
        let sig = webhook_signature(&Secret::new(WEBHOOK_SECRET), &ts, b"");
        head.push_str(&format!(
            "x-zendesk-webhook-signature: {sig}\r\nx-zendesk-webhook-signature-timestamp: {ts}\r\n"
        ));
    }
    head.push_str("\r\n");
    let stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(head.as_bytes()).await.expect("headers");
    // At most 8 MiB of the declared 1 GiB, then silence: a server that
    // waited for the whole body would never answer.
    let writer = tokio::spawn(async move {
        let chunk = match framing {
            Framing::Length => vec![b' '; 64 * 1024],
            Framing::Chunked => [&b"10000\r\n"[..], &[b' '; 64 * 1024], b"\r\n"].concat(),
        };
        for _ in 0..128 {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        wr
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 8192];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if let Some(v) = common::parse_response(&got) {
                return Some(v);
            }
        }
        common::parse_response(&got)
    })
    .await;
    writer.abort();
    match read {
        Ok(Some(v)) => v,
        Ok(None) => panic!(
            "{}: no complete answer: {:?}",
            t.name,
            String::from_utf8_lossy(&got)
        ),
        Err(_) => panic!(
            "{}: no answer within 20 s: it waits for the whole body",
            t.name
        ),
    }
}

/// A body over the limit is a 413 with a JSON error, answered before the
/// client has sent it: the runtime (limit `server::MAX_BODY`) and both emulators.
#[test]
fn oversized_bodies_are_a_413_before_they_are_read() {
    let rt = tokio_rt();
    let rig = rt.block_on(rig());
    rt.block_on(async {
        for t in targets(&rig).await {
            let (status, v) = declared_gigabyte(&t, Framing::Length).await;
            assert_refusal(t.name, status, &v, &[413]);
        }
        // Chunked, with no length to refuse on: refused once past the limit.
        for t in targets(&rig).await {
            let (status, v) = declared_gigabyte(&t, Framing::Chunked).await;
            assert_refusal(t.name, status, &v, &[413]);
        }
    });
}

// ------------------------------------------------------------------ named: mapping files

/// A copy of mappings/fintech in a fresh folder, plus `extra` as
/// `hostile.l3map`.
fn project_with(extra: &str) -> TempDir {
    let dir = common::temp_dir("hostile-project");
    common::copy_mappings(&common::example("fintech"), dir.path(), str::to_string);
    std::fs::write(dir.path().join("hostile.l3map"), extra).expect("write");
    dir
}

/// A template of 4 MB, with a placeholder every few hundred bytes, checks
/// like any other; rendered over a 900 KB summary it stops at
/// [`MAX_RENDER`] instead of asking for gigabytes (4 MB × 10,000
/// placeholders × 900 KB).
#[test]
fn a_huge_template_renders_within_the_cap() {
    let chunk = format!(
        "{}{{{{ turn.summary }}}} {{{{ turn.attempts | join(\"{}\") }}}}\n",
        "x".repeat(380),
        "-".repeat(20)
    );
    let body = chunk.repeat(4_000_000 / chunk.len());
    let dir = project_with(&template_file(&body));
    let program = compile(dir.path());
    drop(dir);
    let program = program.expect("a huge template is still a template");
    let t = program
        .templates
        .iter()
        .find(|t| t.name == "hostile_t")
        .expect("the template");
    let ev = Event::from_json(
        &json!({"id": "e", "kind": "agent_turn", "at": "2026-11-11T10:00:00Z",
                "ticket": {"id": 1},
                "turn": {"intent": "refund", "summary": "s".repeat(900_000),
                         "attempts": vec!["a"; 50_000]}})
        .to_string(),
    )
    .expect("the event reads");
    let out = render(&t.parts, &ev, Scope::default());
    assert!(
        out.len() <= MAX_RENDER && out.ends_with('…'),
        "{}",
        out.len()
    );
    assert!(out.starts_with(&"x".repeat(380)));
    // Decided: both hand-off comments (Zendesk and Salesforce) carry the
    // capped text.
    let decision = decide(&program, &ev);
    let comments: Vec<usize> = decision
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Comment { body, .. } if body.starts_with('x') => Some(body.len()),
            _ => None,
        })
        .collect();
    assert!(!comments.is_empty(), "{comments:?}");
    assert!(comments.iter().all(|n| *n <= MAX_RENDER), "{comments:?}");
}

/// A 100,000-deep condition, and a 2 MB file of 12,000 escalations with
/// one mistake at its end: a diagnostic pointing into the file, no stack
/// overflow.
#[test]
fn a_huge_or_deep_mapping_file_is_a_diagnostic() {
    let deep = format!(
        "escalation deep {{\n  when {}turn.intent == \"x\"{}\n  reason \"r\"\n  comment desk \"x\"\n}}\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let mut huge: String = (0..12_000)
        .map(|i| {
            format!(
                "escalation e{i} {{\n  when turn.intent == \"intent {i}\" and ticket.tags has \"{}\"\n  reason \"{}\"\n  status desk escalated_tier2\n}}\n",
                "t".repeat(20),
                "r".repeat(60)
            )
        })
        .collect();
    huge.push_str(
        "escalation last {\n  when turn.intent == \"x\"\n  reason \"r\"\n  status desk solvd\n}\n",
    );
    assert!(huge.len() > 2_000_000);
    for (what, text, says) in [
        ("deep", deep, "nesting deeper than"),
        ("huge", huge, "solvd"),
    ] {
        let dir = project_with(&text);
        let started = std::time::Instant::now();
        let result = compile(dir.path());
        drop(dir);
        let message = result.expect_err(what);
        assert!(
            message.contains("hostile.l3map") && message.contains(says),
            "{what}: {}",
            &message[..message.len().min(500)]
        );
        eprintln!(
            "{what}: {} bytes checked in {:?}",
            text.len(),
            started.elapsed()
        );
    }
}
