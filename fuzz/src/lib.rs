//! The invariants the fuzz targets assert; the same as `tests/robustness.rs`.

use l3map::check::check;
use l3map::compile::lower;
use l3map::diagnostics::{render_github, render_human, to_json};
use l3map::ir::Program;
use l3map::syntax::{parse_file, FileId, SourceMap};

/// The real projects, compiled in: a fuzzed file is also checked next to
/// one of them so that name resolution has something to resolve against.
pub const PROJECTS: &[&[(&str, &str)]] = &[
    &[
        (
            "mappings/fintech/connections.l3map",
            include_str!("../../mappings/fintech/connections.l3map"),
        ),
        (
            "mappings/fintech/escalations.l3map",
            include_str!("../../mappings/fintech/escalations.l3map"),
        ),
        (
            "mappings/fintech/fields.l3map",
            include_str!("../../mappings/fintech/fields.l3map"),
        ),
        (
            "mappings/fintech/kyc.l3map",
            include_str!("../../mappings/fintech/kyc.l3map"),
        ),
        (
            "mappings/fintech/statuses.l3map",
            include_str!("../../mappings/fintech/statuses.l3map"),
        ),
    ],
    &[
        (
            "mappings/saas/connections.l3map",
            include_str!("../../mappings/saas/connections.l3map"),
        ),
        (
            "mappings/saas/escalations.l3map",
            include_str!("../../mappings/saas/escalations.l3map"),
        ),
        (
            "mappings/saas/fields.l3map",
            include_str!("../../mappings/saas/fields.l3map"),
        ),
        (
            "mappings/saas/statuses.l3map",
            include_str!("../../mappings/saas/statuses.l3map"),
        ),
    ],
    &[
        (
            "mappings/shop/shop.l3map",
            include_str!("../../mappings/shop/shop.l3map"),
        ),
        (
            "mappings/shop/tickets.l3map",
            include_str!("../../mappings/shop/tickets.l3map"),
        ),
    ],
];

fn span_ok(text: &str, start: usize, end: usize) -> bool {
    start <= end && end <= text.len() && text.is_char_boundary(start) && text.is_char_boundary(end)
}

/// Parses `text` alone: no panic, every error span inside the text.
pub fn parse_one(text: &str) {
    let (_ast, errors) = parse_file(FileId(0), text);
    for e in &errors {
        let s = e.span();
        assert!(
            span_ok(text, s.start as usize, s.end as usize),
            "bad span: {e:?}"
        );
        let _ = e.to_string();
    }
}

/// Checks `files` as one project and asserts every robustness invariant.
pub fn check_project(files: &[(&str, &str)]) {
    let mut sources = SourceMap::new();
    for (path, text) in files {
        sources.add(*path, *text);
    }
    let checked = check(&sources);
    let _ = render_human(&checked.diagnostics, &sources, false);
    let github = render_github(&checked.diagnostics, &sources);
    assert_eq!(github.lines().count(), checked.diagnostics.len());
    for d in &checked.diagnostics {
        let _ = serde_json::to_string(&to_json(d, &sources)).expect("diagnostic serialises");
        let text = &sources.get(d.file).text;
        let labels = d.labels();
        assert!(!labels.is_empty(), "diagnostic without a label: {d:?}");
        for l in labels {
            assert!(
                span_ok(text, l.offset(), l.offset() + l.len()),
                "bad label: {d:?}"
            );
        }
    }
    let program = lower(&checked, &sources).ok();
    assert_eq!(program.is_some(), !checked.has_errors());
    if let Some(p) = program {
        let s = serde_json::to_string(&p).expect("IR serialises");
        let back: Program = serde_json::from_str(&s).expect("IR deserialises");
        assert_eq!(back, p);
    }
}

/// The check target: the input alone, then next to one real project chosen
/// by the input's length.
pub fn check_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_project(&[("fuzz.l3map", &text)]);
    let mut files: Vec<(&str, &str)> = PROJECTS[data.len() % PROJECTS.len()].to_vec();
    files.push(("fuzz.l3map", &text));
    check_project(&files);
}

// ------------------------------------------------------------------ events, webhook, template

use l3map::connectors::Secret;
use l3map::eval::convert::{from_source_json, ConvertContext, SalesforceOptions};
use l3map::eval::decide::decide;
use l3map::eval::event::Event;
use l3map::eval::expr::Scope;
use l3map::eval::template::{render, MAX_RENDER};
use std::sync::OnceLock;

/// The fintech project, compiled once: the events and webhook targets read
/// payloads against its status table, as the runtime would.
pub fn fintech() -> &'static Program {
    static P: OnceLock<Program> = OnceLock::new();
    P.get_or_init(|| {
        let mut sources = SourceMap::new();
        for (path, text) in PROJECTS[0] {
            sources.add(*path, *text);
        }
        let checked = check(&sources);
        lower(&checked, &sources).expect("mappings/fintech compiles")
    })
}

/// The events target: any text through the payload converters, with and
/// without a Salesforce ticket field. Whatever they accept is an event the
/// runtime can store and read back, and the interpreter decides it.
pub fn events_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let program = fintech();
    let plain = ConvertContext::new(program);
    let linked = plain.clone().with_salesforce(SalesforceOptions {
        ticket_field: Some("Zendesk_Ticket_Id__c".into()),
    });
    for ctx in [&plain, &linked] {
        let Ok(events) = from_source_json(&text, ctx) else {
            continue;
        };
        for ev in &events {
            let stored = serde_json::to_string(ev).expect("an event serialises");
            let back = Event::from_json(&stored)
                .unwrap_or_else(|e| panic!("an accepted event does not read back: {e}\n{stored}"));
            assert_eq!(&back, ev, "the event changed through JSON");
            let _ = decide(program, ev);
        }
    }
    if let Ok(ev) = Event::from_json(&text) {
        let _ = decide(program, &ev);
    }
}

/// The file the template target adds to the fintech project (so that its
/// fields, Salesforce objects and connections resolve): `body` is the
/// template's text.
pub fn template_file(body: &str) -> String {
    format!(
        r#"template fuzz_t """{body}"""
escalation fuzz_e {{
  when    turn.intent == "refund"
  reason  "Refund above the $200 pre-authorised threshold"
  comment desk fuzz_t
  comment crm fuzz_t
}}
"#
    )
}

/// An event with every kind of value a template can read.
pub const RICH_EVENT: &str = r#"{"id":"e","kind":"agent_turn","at":"2026-11-11T10:00:00Z",
  "ticket":{"id":42,"status":"open","tags":["vip","kyc"],"custom_fields":{"360001234":"enterprise"}},
  "comment":{"body":"hello","author":"end_user","public":true},
  "turn":{"intent":"refund","summary":"Wants 250 € back — «urgent» アイフォン","attempts":["a","b","c"],
          "sentiment":"angry","refund_amount":{"amount":"1234.5","currency":"EUR"},"confidence":0.5}}"#;

/// The template target: the input up to the first NUL is a template's
/// text, the rest an event (the rich event when it is not one). A template
/// that checks renders within the cap, the same twice.
pub fn template_input(data: &[u8]) {
    let (body, event) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = template_file(&String::from_utf8_lossy(body));
    let mut sources = SourceMap::new();
    for (path, text) in PROJECTS[0] {
        sources.add(*path, *text);
    }
    sources.add("fuzz.l3map", text.as_str());
    let checked = check(&sources);
    let Ok(program) = lower(&checked, &sources) else {
        return;
    };
    let ev = Event::from_json(&String::from_utf8_lossy(event))
        .or_else(|_| Event::from_json(RICH_EVENT))
        .expect("the rich event reads");
    let Some(e) = program.escalations.iter().find(|e| e.name == "fuzz_e") else {
        return;
    };
    let scope = Scope {
        escalation: Some((&e.name, &e.reason)),
    };
    for t in &program.templates {
        let out = render(&t.parts, &ev, scope);
        assert!(out.len() <= MAX_RENDER, "render of {} bytes", out.len());
        assert_eq!(
            out,
            render(&t.parts, &ev, scope),
            "render is not deterministic"
        );
    }
    let _ = decide(&program, &ev);
}

/// The webhook secret the webhook target signs with.
pub const WEBHOOK_SECRET: &str = "fuzz-webhook-secret";

/// The runtime's router, built once with a store in a temporary folder and
/// no Zendesk client (so no socket is opened), and a runtime to drive it.
struct WebhookRig {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

fn webhook_rig() -> &'static WebhookRig {
    use l3map::runtime::engine::{Engine, Live};
    use l3map::runtime::metrics::Metrics;
    use l3map::runtime::server::{router, App};
    use l3map::runtime::store::Store;
    use std::sync::Arc;
    static RIG: OnceLock<WebhookRig> = OnceLock::new();
    RIG.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = std::env::temp_dir().join(format!("l3map-fuzz-webhook-{}", std::process::id()));
        let store = Store::open(&dir.join("state.db")).expect("the store opens");
        let engine = {
            let _guard = rt.enter();
            Arc::new(Engine::new(
                Live::new(fintech().clone()),
                Arc::new(store),
                Metrics::new(),
            ))
        };
        let app = Arc::new(App {
            engine,
            webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
            tolerance: std::time::Duration::from_secs(300),
            agents: Vec::new(),
            zendesk: None,
            salesforce: None,
        });
        WebhookRig {
            rt,
            router: router(app),
        }
    })
}

/// The webhook target: the first byte picks the headers (signed with the
/// secret — most inputs, so the fuzzer reaches the payload converters —,
/// signed an hour ago, unsigned, or a signature made of the input), the
/// rest is the body. Every answer is 200, or a 4xx with a JSON error; a
/// signed, fresh delivery is never refused as unsigned.
pub fn webhook_input(data: &[u8]) {
    use axum::body::Body;
    use axum::http::Request;
    use l3map::emulator::zendesk::webhook_signature;
    use tower::ServiceExt;
    let Some((mode, body)) = data.split_first() else {
        return;
    };
    let rig = webhook_rig();
    let secret = Secret::new(WEBHOOK_SECRET);
    let now = jiff::Timestamp::now();
    let mut req = Request::post("/webhooks/zendesk").header("content-type", "application/json");
    let signed = mode % 8 < 5;
    match mode % 8 {
        0..=4 => {
            let ts = now.to_string();
            req = req
                .header(
                    "x-zendesk-webhook-signature",
                    webhook_signature(&secret, &ts, body),
                )
                .header("x-zendesk-webhook-signature-timestamp", ts);
        }
        5 => {
            let ts = (now - jiff::SignedDuration::from_secs(3600)).to_string();
            req = req
                .header(
                    "x-zendesk-webhook-signature",
                    webhook_signature(&secret, &ts, body),
                )
                .header("x-zendesk-webhook-signature-timestamp", ts);
        }
        6 => {}
        _ => {
            let junk = String::from_utf8_lossy(&body[..body.len().min(64)]).into_owned();
            if let Ok(v) = axum::http::HeaderValue::from_str(&junk) {
                req = req
                    .header("x-zendesk-webhook-signature", v.clone())
                    .header("x-zendesk-webhook-signature-timestamp", v);
            }
        }
    }
    let req = req.body(Body::from(body.to_vec())).expect("a request");
    let (status, answer) = rig.rt.block_on(async {
        let resp = rig.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("the answer reads");
        (status, bytes)
    });
    let json: serde_json::Value = serde_json::from_slice(&answer)
        .unwrap_or_else(|_| panic!("{status}: not JSON: {:?}", String::from_utf8_lossy(&answer)));
    match status {
        200 => assert!(json["accepted"].is_u64(), "{json}"),
        400 | 401 | 413 => assert!(json["error"].is_string(), "{status}: {json}"),
        other => panic!("answered {other}: {json}"),
    }
    if signed {
        assert_ne!(status, 401, "a fresh signed delivery was refused: {json}");
    }
}
