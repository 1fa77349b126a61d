//! The MCP server from outside: the real `l3map run` and `l3map mcp`
//! binaries, the emulators, and clients nobody here wrote. Here the
//! official Rust SDK's client (rmcp), which runs everywhere; the official
//! TypeScript and Python SDKs drive the same binary in
//! `mcp_sdks` (tests/mcp_sdks.rs).

use crate::common::stack::{Stack, AGENT_TOKEN, DEV_TOKEN};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::NotificationContext;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

const LIMITED_TOKEN: &str = "mcp-limited-agent-token-77c1";

/// A SKU table beside the fintech example's files, so every tool has
/// something to work on.
pub const CARDS: &str = "// The cards the desk supports, as customers name them.
sku cards {
  normalize upper, strip \" -_\"
  products CARD-PLATINUM, CARD-BASIC
  \"PLATINUM\" | \"PLAT\" | \"PLATINUMCARD\" => CARD-PLATINUM
  \"BASIC\" | \"BASICCARD\"                => CARD-BASIC
}

// What the agent records about the conversation: no rule decides on it.
fields desk {
  preferred_channel  #360001299  enum(email, phone, chat)  \"Preferred channel\"
}
";

/// The stack with the cards' SKU table and a second agent limited to
/// reading context.
pub async fn stack(name: &str) -> Stack {
    let dir_token = std::env::temp_dir().join(format!("l3map-mcp-{name}-{}", std::process::id()));
    std::fs::write(&dir_token, LIMITED_TOKEN).unwrap();
    Stack::start_with_files(
        name,
        &format!(
            "[agents.limited]\ntoken_file = \"{}\"\ntools = [\"get_ticket_context\", \"explain_decision\"]\n",
            dir_token.display()
        ),
        true,
        &[("cards.l3map", CARDS)],
    )
    .await
}

/// The Rust SDK's Streamable HTTP transport to `runtime`'s `/mcp`.
fn transport(runtime: &str, token: &str) -> impl rmcp::transport::Transport<RoleClient> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{runtime}/mcp")).auth_header(token),
    )
}

pub async fn connect(runtime: &str, token: &str) -> RunningService<RoleClient, ()> {
    ().serve(transport(runtime, token))
        .await
        .expect("the MCP client connects")
}

/// The edit a reload test makes: `suspected_fraud` renamed
/// `suspected_card_fraud`, so the tools change.
pub fn rename_an_escalation(s: &Stack) {
    let path = s.mappings().join("escalations.l3map");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "escalation suspected_fraud {",
            "escalation suspected_card_fraud {",
        ),
    )
    .unwrap();
}

fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn call(c: &RunningService<RoleClient, ()>, tool: &'static str, a: Value) -> CallToolResult {
    c.call_tool(CallToolRequestParams::new(tool).with_arguments(args(a)))
        .await
        .expect("a tool result")
}

/// The values a tool's input schema enumerates at `pointer`.
fn enum_of(tools: &[rmcp::model::Tool], tool: &str, pointer: &str) -> Vec<String> {
    let t = tools.iter().find(|t| t.name == tool).expect("the tool");
    let schema = Value::Object((*t.input_schema).clone());
    schema
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn structured(r: &CallToolResult) -> Value {
    r.structured_content.clone().unwrap_or_else(|| {
        let text = r
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<String>();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    })
}

async fn wait_for(what: &str, within: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !ok().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Tools derived from the mappings, a refusal that names the allowed
/// targets and writes nothing, a legal change applied once however often
/// it is retried, and a read that costs no write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_lists_tools_and_calls_them_through_the_mappings() {
    let s = stack("mcp-rust").await;
    let c = connect(&s.runtime, AGENT_TOKEN).await;
    let tools = c.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "get_ticket_context",
            "request_status_change",
            "set_ticket_field",
            "normalise_sku",
            "escalate",
            "explain_decision",
            "submit_turn"
        ]
    );
    let status = tools
        .iter()
        .find(|t| t.name == "request_status_change")
        .unwrap();
    let statuses = enum_of(&tools, "request_status_change", "/properties/status/enum");
    assert!(
        statuses.contains(&"pending_kyc_documents".to_string()),
        "{statuses:?}"
    );
    assert!(status
        .description
        .as_deref()
        .unwrap()
        .contains("pending_risk_review -> in_progress (when ticket.risk_decision == cleared)"));
    assert_eq!(
        status.annotations.as_ref().unwrap().read_only_hint,
        Some(false)
    );
    let fields = tools.iter().find(|t| t.name == "set_ticket_field").unwrap();
    let props = &fields.input_schema["properties"]["fields"]["properties"];
    assert_eq!(
        props["preferred_channel"]["enum"],
        json!(["email", "phone", "chat"])
    );
    // What a map feeds, or a rule decides on, is not the agent's to write.
    for owned in [
        "sla_tier",
        "risk_decision",
        "refund_issued",
        "dispute_type",
        "handoff_reason",
    ] {
        assert!(props.get(owned).is_none(), "{owned}: {props}");
    }

    let id = s.create_ticket("MCP status", "standard", None).await;
    // Illegal: refused with the reason and the targets, nothing written.
    let r = call(
        &c,
        "request_status_change",
        json!({"ticket": id, "status": "closed"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let v = structured(&r);
    assert_eq!(v["outcome"], "refused", "{v}");
    assert!(
        v["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no transition"),
        "{v}"
    );
    let targets: Vec<&str> = v["allowed_targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["status"].as_str())
        .collect();
    assert_eq!(targets, ["open", "in_progress"], "{v}");
    // Legal, sent three times (twice at once): applied once.
    let a =
        json!({"ticket": id.to_string(), "status": "in_progress", "idempotency_key": "pickup-1"});
    let (r1, r2) = tokio::join!(
        call(&c, "request_status_change", a.clone()),
        call(&c, "request_status_change", a.clone())
    );
    let r3 = call(&c, "request_status_change", a).await;
    let outs: Vec<Value> = [&r1, &r2, &r3].iter().map(|r| structured(r)).collect();
    assert!(outs.iter().all(|v| v["outcome"] == "accepted"), "{outs:?}");
    assert_eq!(
        outs.iter().filter(|v| v["duplicate"] == false).count(),
        1,
        "{outs:?}"
    );
    assert!(outs.iter().all(|v| v["call_id"] == outs[0]["call_id"]));
    wait_for("the status change", Duration::from_secs(20), async || {
        s.ticket(id).await["status"] == "open"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.ticket_writes(id).await, 1, "one write for three calls");
    // A refused call retried under its key is answered as refused again.
    let closed = json!({"ticket": id, "status": "closed", "idempotency_key": "close-1"});
    let _ = call(&c, "request_status_change", closed.clone()).await;
    let again_closed = call(&c, "request_status_change", closed).await;
    assert_eq!(again_closed.is_error, Some(true));
    let v = structured(&again_closed);
    assert_eq!(
        (v["outcome"].as_str(), v["duplicate"].as_bool()),
        (Some("refused"), Some(true)),
        "{v}"
    );
    // The same call without a key, on the ticket it already moved: no write.
    let again = structured(
        &call(
            &c,
            "request_status_change",
            json!({"ticket": id, "status": "in_progress"}),
        )
        .await,
    );
    assert_eq!(again["outcome"], "refused", "{again}");
    assert!(
        again["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("already"),
        "{again}"
    );
    // explain_decision quotes the rule that refused.
    let first = structured(
        &call(
            &c,
            "request_status_change",
            json!({"ticket": id, "status": "solved_refunded"}),
        )
        .await,
    );
    let why = structured(&call(&c, "explain_decision", json!({"call_id": first["call_id"]})).await);
    let rule = why["refused"][0]["rule"].as_str().unwrap_or_default();
    assert!(rule.contains("refund_issued == true"), "{why}");
    assert!(
        why["refused"][0]["source"]
            .as_str()
            .unwrap()
            .contains("statuses.l3map:"),
        "{why}"
    );
    // Context: the desk's own status names.
    let ctx = structured(&call(&c, "get_ticket_context", json!({"ticket": id})).await);
    assert_eq!(ctx["ticket"]["status"], "in_progress", "{ctx}");
    // A field write: typed, and applied.
    let f = structured(
        &call(
            &c,
            "set_ticket_field",
            json!({"ticket": id, "fields": {"preferred_channel": "chat"}}),
        )
        .await,
    );
    assert_eq!(f["outcome"], "accepted", "{f}");
    wait_for("the field write", Duration::from_secs(20), async || {
        s.ticket(id).await["custom_fields"]
            .as_array()
            .is_some_and(|fs| {
                fs.iter()
                    .any(|f| f["id"] == 360001299 && f["value"] == "chat")
            })
    })
    .await;
    let bad = call(
        &c,
        "set_ticket_field",
        json!({"ticket": id, "fields": {"preferred_channel": "fax"}}),
    )
    .await;
    assert_eq!(bad.is_error, Some(true), "{bad:?}");
    assert!(
        structured(&bad)["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("is not one of"),
        "{bad:?}"
    );
    // A field a transition decides on, asked for through submit_turn: the
    // agent cannot unlock what it guards.
    let sneak = structured(
        &call(
            &c,
            "submit_turn",
            json!({"ticket": id, "intent": "x", "requested_fields": {"risk_decision": "cleared"}}),
        )
        .await,
    );
    assert_eq!(sneak["outcome"], "refused", "{sneak}");
    assert!(
        sneak["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("decides on"),
        "{sneak}"
    );
    // SKU: a read, from the mappings' table.
    let sku = structured(&call(&c, "normalise_sku", json!({"product": "plat-inum card"})).await);
    assert_eq!(sku["sku"], "CARD-PLATINUM", "{sku}");
    let none = structured(&call(&c, "normalise_sku", json!({"product": "gold card"})).await);
    assert_eq!(none["sku"], Value::Null, "{none}");
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .contains("ask the customer"),
        "{none}"
    );
    // Per tool and result in /metrics.
    let m = s.metrics().await;
    assert!(
        m.contains("l3map_mcp_tool_calls_total{tool=\"request_status_change\",result=\"refused\"}"),
        "{m}"
    );
    assert!(
        m.contains(
            "l3map_mcp_tool_calls_total{tool=\"request_status_change\",result=\"duplicate\"} 3"
        ),
        "{m}"
    );
    c.cancel().await.ok();
}

/// `escalate` hands off exactly as the escalation declares: the comment
/// from its template, its fields, group and status on Zendesk, and its
/// CaseComment and Case field on Salesforce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalate_writes_what_the_escalation_declares_on_both_emulators() {
    let s = stack("mcp-escalate").await;
    let c = connect(&s.runtime, AGENT_TOKEN).await;
    let id = s.create_ticket("Refund please", "premium", None).await;
    // in_progress first, as a person picking it up would.
    s.zendesk(
        reqwest::Method::PUT,
        &format!("/api/v2/tickets/{id}.json"),
        Some(json!({"ticket": {"status": "open", "custom_status_id": 18794539035103u64}})),
    )
    .await;
    let token = s.sf_token().await;
    let case: Value = s
        .http
        .post(format!(
            "{}/services/data/v60.0/sobjects/Case/",
            s.salesforce
        ))
        .bearer_auth(&token)
        .json(&json!({"Subject": "Refund over threshold"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let case_id = case["id"].as_str().unwrap().to_string();
    // Its condition does not hold yet: refused, nothing written.
    let small = structured(&call(&c, "escalate", json!({"ticket": id, "escalation": "refund_over_threshold", "summary": "Refund", "intent": "refund", "refund_amount": {"amount": "20.00", "currency": "USD"}})).await);
    assert_eq!(small["outcome"], "refused", "{small}");
    assert!(
        small["refused"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("condition does not hold"),
        "{small}"
    );
    let r = structured(&call(&c, "escalate", json!({
        "ticket": id, "escalation": "refund_over_threshold", "case": case_id,
        "summary": "Wants a refund for order 1182", "attempts": ["looked up order 1182", "offered store credit"],
        "sentiment": "negative", "intent": "refund", "refund_amount": {"amount": "250.00", "currency": "USD"}
    })).await);
    assert_eq!(r["outcome"], "accepted", "{r}");
    let expected = "AI hand-off: Customer is requesting a refund above the $200 pre-authorised threshold\n\nCustomer asked: Wants a refund for order 1182\nWhat the AI tried: looked up order 1182; offered store credit\nSentiment: NEGATIVE\nSLA tier: premium";
    assert_eq!(r["handoff_comment"], expected, "{r}");
    wait_for(
        "the hand-off on Zendesk",
        Duration::from_secs(30),
        async || {
            let t = s.ticket(id).await;
            t["custom_status_id"] == 18794539035111u64 && !s.private_notes(id).await.is_empty()
        },
    )
    .await;
    assert_eq!(s.private_notes(id).await, [expected]);
    let t = s.ticket(id).await;
    let reason = t["custom_fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == 360001241)
        .map(|f| f["value"].clone());
    assert_eq!(reason, Some(json!("refund_threshold")), "{t}");
    assert!(t["group_id"].is_number(), "{t}");
    let sf = |path: String| {
        let (http, token) = (s.http.clone(), token.clone());
        async move {
            http.get(path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let base = format!("{}/services/data/v60.0", s.salesforce);
    wait_for(
        "the hand-off on Salesforce",
        Duration::from_secs(30),
        async || {
            sf(format!("{base}/sobjects/Case/{case_id}")).await["AI_Handoff_Reason__c"]
                == "refund_threshold"
        },
    )
    .await;
    let q = format!("SELECT CommentBody FROM CaseComment WHERE ParentId = '{case_id}'");
    let comments = sf(format!("{base}/query?q={}", urlencoding(&q))).await;
    let bodies: Vec<&str> = comments["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["CommentBody"].as_str())
        .collect();
    assert_eq!(bodies, [expected], "{comments}");
    c.cancel().await.ok();
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Least privilege and tokens: a limited agent sees and calls only its
/// tools; no token, a wrong token, or another agent's session are refused;
/// the 401 points at the protected-resource metadata (RFC 9728).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_see_their_tools_and_nothing_without_a_token() {
    let s = stack("mcp-auth").await;
    let limited = connect(&s.runtime, LIMITED_TOKEN).await;
    let names: Vec<String> = limited
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["get_ticket_context", "explain_decision"]);
    let id = s.create_ticket("Limited", "standard", None).await;
    // Another agent's call is not this one's to explain: as if none.
    let theirs = call(
        &limited,
        "explain_decision",
        json!({"call_id": "agent:e2e:mcp.request_status_change.pickup-1"}),
    )
    .await;
    assert_eq!(theirs.is_error, Some(true));
    assert!(format!("{theirs:?}").contains("not_found"), "{theirs:?}");
    let denied = limited
        .call_tool(
            CallToolRequestParams::new("request_status_change")
                .with_arguments(args(json!({"ticket": id, "status": "open"}))),
        )
        .await;
    assert!(denied.is_err(), "{denied:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.ticket_writes(id).await, 0);
    let r = s
        .http
        .post(format!("{}/mcp", s.runtime))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("resource_metadata=\"http://127.0.0.1:"),
        "{challenge}"
    );
    let meta: Value = s
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            s.runtime
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], format!("{}/mcp", s.runtime));
    assert_eq!(meta["bearer_methods_supported"], json!(["header"]));
    let wrong = s
        .http
        .post(format!("{}/mcp", s.runtime))
        .bearer_auth("not-a-token")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // A session opened by one agent refuses another's token.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |token: &'static str, body: Value, sid: Option<String>| {
        let mut r = s
            .http
            .post(format!("{}/mcp", s.runtime))
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&body);
        if let Some(id) = sid {
            r = r.header("Mcp-Session-Id", id);
        }
        r.send()
    };
    let opened = post(AGENT_TOKEN, init, None).await.unwrap();
    let sid = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = post(
        AGENT_TOKEN,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        Some(sid.clone()),
    )
    .await;
    let hijack = post(
        LIMITED_TOKEN,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        Some(sid),
    )
    .await
    .unwrap();
    assert_eq!(hijack.status(), 404);
    let text = hijack.text().await.unwrap();
    assert!(text.contains("no such session"), "{text}");
    assert!(!text.contains("request_status_change"), "{text}");
    let _ = DEV_TOKEN;
}

/// An edit to the mappings reaches a connected client as
/// `notifications/tools/list_changed`, and the tools it lists next are
/// the new revision's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_edit_is_announced_and_changes_the_tools() {
    let s = stack("mcp-reload").await;
    let (told, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let transport = transport(&s.runtime, AGENT_TOKEN);
    let c = Heard(told)
        .serve(transport)
        .await
        .expect("the MCP client connects");
    rename_an_escalation(&s);
    tokio::time::timeout(Duration::from_secs(30), heard.recv())
        .await
        .expect("notifications/tools/list_changed within 30 s")
        .expect("the client is still connected");
    let tools = c.list_all_tools().await.unwrap();
    let names = enum_of(&tools, "escalate", "/properties/escalation/enum");
    assert!(
        names.contains(&"suspected_card_fraud".to_string()),
        "{names:?}"
    );
    c.cancel().await.ok();
}

/// A client that says when the server announces new tools.
#[derive(Clone)]
struct Heard(tokio::sync::mpsc::UnboundedSender<()>);

impl rmcp::ClientHandler for Heard {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        let _ = self.0.send(());
    }
}

/// An agent that only speaks OAuth (Zendesk's MCP connections) obtains
/// tokens from l3map itself: the metadata of RFC 9728 and RFC 8414 lead to
/// the token endpoint; client credentials, and an authorization code with
/// PKCE sent only to a registered redirect URI, give access tokens the MCP
/// endpoint takes; a wrong secret, verifier or signature gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_client_gets_its_tokens_from_l3map() {
    let secret = std::env::temp_dir().join(format!("l3map-mcp-oauth-{}", std::process::id()));
    std::fs::write(&secret, "zendesk-ai-client-secret-81f0").unwrap();
    let extra = format!(
        "[agents.zendesk-ai]\ntoken_file = \"{0}\"\n[agents.zendesk-ai.oauth]\nclient_id = \"zendesk-ai\"\nclient_secret_file = \"{0}\"\nredirect_uris = [\"https://acme.zendesk.com/mcp/callback\"]\n",
        secret.display()
    );
    let s = Stack::start_with_files("mcp-oauth", &extra, true, &[("cards.l3map", CARDS)]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| http.get(format!("{}{path}", s.runtime)).send();
    let pr: Value = get("/.well-known/oauth-protected-resource/mcp")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pr["authorization_servers"], json!([s.runtime]), "{pr}");
    let meta: Value = get("/.well-known/oauth-authorization-server")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token_url = meta["token_endpoint"].as_str().unwrap().to_string();
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    // A token request: its status and its JSON.
    let post = |form: Vec<(&str, String)>, basic: Option<(&str, &str)>| {
        let mut r = http.post(&token_url).form(&form);
        if let Some((id, pw)) = basic {
            r = r.basic_auth(id, Some(pw));
        }
        async move {
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    const SECRET: (&str, &str) = ("zendesk-ai", "zendesk-ai-client-secret-81f0");
    // Client credentials.
    let (wrong, _) = post(
        vec![("grant_type", "client_credentials".into())],
        Some(("zendesk-ai", "guess")),
    )
    .await;
    assert_eq!(wrong, 401);
    let cc = post(
        vec![("grant_type", "client_credentials".into())],
        Some(SECRET),
    )
    .await
    .1;
    let access = cc["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    assert!(!access.contains("zendesk-ai-client-secret"), "{access}");
    let c = connect(&s.runtime, &access).await;
    assert!(!c.list_all_tools().await.unwrap().is_empty());
    // An authorization code, with PKCE, to the registered URI only.
    let verifier = "l3map-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let elsewhere = get(&format!("/oauth/authorize?response_type=code&client_id=zendesk-ai&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&code_challenge={challenge}&code_challenge_method=S256")).await.unwrap();
    assert_eq!(elsewhere.status(), 400, "never redirected elsewhere");
    let r = get(&format!("/oauth/authorize?response_type=code&client_id=zendesk-ai&redirect_uri=https%3A%2F%2Facme.zendesk.com%2Fmcp%2Fcallback&code_challenge={challenge}&code_challenge_method=S256&state=xyz")).await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let location = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with("https://acme.zendesk.com/mcp/callback?"),
        "{location}"
    );
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    let code = q["code"].clone();
    let exchange = |v: &str| {
        post(
            vec![
                ("grant_type", "authorization_code".into()),
                ("code", code.clone()),
                (
                    "redirect_uri",
                    "https://acme.zendesk.com/mcp/callback".into(),
                ),
                ("code_verifier", v.into()),
                ("client_id", "zendesk-ai".into()),
                ("client_secret", "zendesk-ai-client-secret-81f0".into()),
            ],
            None,
        )
    };
    let bad = exchange("not-the-verifier-at-all-not-the-verifier-at-all")
        .await
        .1;
    assert_eq!(bad["error"], "invalid_grant", "{bad}");
    let good = exchange(verifier).await.1;
    let refresh = good["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    // A code is good once.
    let replayed = exchange(verifier).await.1;
    assert_eq!(replayed["error"], "invalid_grant", "{replayed}");
    // Tokens are for this server's /mcp only.
    let elsewhere = post(
        vec![
            ("grant_type", "client_credentials".into()),
            ("resource", "https://evil.example/mcp".into()),
        ],
        Some(SECRET),
    )
    .await
    .1;
    assert_eq!(elsewhere["error"], "invalid_target", "{elsewhere}");
    let renewed = post(
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh),
        ],
        Some(SECRET),
    )
    .await
    .1;
    let fresh = renewed["access_token"]
        .as_str()
        .expect("a renewed token")
        .to_string();
    // The refresh token sent was rotated out.
    let stale = post(
        vec![
            ("grant_type", "refresh_token".into()),
            (
                "refresh_token",
                good["refresh_token"].as_str().unwrap().into(),
            ),
        ],
        Some(SECRET),
    )
    .await
    .1;
    assert_eq!(stale["error"], "invalid_grant", "{stale}");
    let c2 = connect(&s.runtime, &fresh).await;
    assert!(!c2.list_all_tools().await.unwrap().is_empty());
    // A token signed with another key, or a refresh token used as an
    // access token, is not a token.
    let forged = {
        let mut parts: Vec<String> = fresh.split('.').map(str::to_string).collect();
        parts[2] = "AAAA".repeat(10);
        parts.join(".")
    };
    for t in [
        forged,
        renewed["refresh_token"].as_str().unwrap().to_string(),
    ] {
        let r = http
            .post(format!("{}/mcp", s.runtime))
            .bearer_auth(t)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let log = s.log();
    assert!(
        !log.contains("zendesk-ai-client-secret-81f0"),
        "the secret is never logged"
    );
    assert!(!log.contains(&access), "no token is logged");
}

/// Red team: the `tools` limit holds at the agent API's door too; another
/// agent can neither end nor listen on a session; an agent's sessions and
/// streams are bounded, and probes still answer while it holds them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_cannot_bypass_its_limit_or_hold_the_listener() {
    let s = stack("mcp-bounds").await;
    let id = s.create_ticket("Bounds", "standard", None).await;
    let turn = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(LIMITED_TOKEN)
        .json(&json!({"ticket": id, "intent": "question", "requested_status": "open"}))
        .send()
        .await
        .unwrap();
    assert_eq!(turn.status(), 403, "a limited agent submits no turn");
    let long = s
        .http
        .post(format!("{}/v1/turns", s.runtime))
        .bearer_auth(AGENT_TOKEN)
        .json(&json!({"ticket": id, "intent": "x", "requested_fields": {"x".repeat(5000): 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status(), 400, "a field name is at most 100 bytes");
    let ctx = s
        .http
        .get(format!("{}/v1/context/{id}", s.runtime))
        .bearer_auth(LIMITED_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ctx.status(), 200, "it may read context");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.ticket_writes(id).await, 0);

    let url = format!("{}/mcp", s.runtime);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let open = |token: &'static str| {
        s.http
            .post(&url)
            .bearer_auth(token)
            .header("Accept", "application/json, text/event-stream")
            .json(&init)
            .send()
    };
    let sid = open(AGENT_TOKEN).await.unwrap().headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let with = |m: reqwest::Method, token: &'static str| {
        s.http
            .request(m, &url)
            .bearer_auth(token)
            .header("Accept", "text/event-stream")
            .header("Mcp-Session-Id", &sid)
            .header("MCP-Protocol-Version", "2025-11-25")
            .send()
    };
    assert_eq!(
        with(reqwest::Method::DELETE, LIMITED_TOKEN)
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        with(reqwest::Method::GET, LIMITED_TOKEN)
            .await
            .unwrap()
            .status(),
        404
    );
    // The owner's session is intact.
    let ping = s
        .http
        .post(&url)
        .bearer_auth(AGENT_TOKEN)
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", &sid)
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);

    // Sessions: bounded per agent.
    let mut refused = 0;
    for _ in 0..40 {
        if open(LIMITED_TOKEN).await.unwrap().status() == 429 {
            refused += 1;
        }
    }
    assert_eq!(refused, 8, "32 sessions, then 429");
    // Streams: bounded per agent, held open and never read.
    let mut held = vec![];
    let mut statuses = vec![];
    for _ in 0..6 {
        let sid = open(AGENT_TOKEN).await.unwrap().headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let r = s
            .http
            .get(&url)
            .bearer_auth(AGENT_TOKEN)
            .header("Accept", "text/event-stream")
            .header("Mcp-Session-Id", &sid)
            .header("MCP-Protocol-Version", "2025-11-25")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        held.push(r);
    }
    assert_eq!(
        statuses.iter().filter(|c| **c == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|c| **c == 429).count(),
        2,
        "{statuses:?}"
    );
    // A stateless (2026-07-28) subscriptions/listen is a stream too.
    let listen = s
        .http
        .post(&url)
        .bearer_auth(AGENT_TOKEN)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "subscriptions/listen", "params": {"notifications": {"toolsListChanged": true}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(listen.status(), 429, "the agent's four streams are taken");
    assert_eq!(s.health().await["status"], "ok");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sid = open(AGENT_TOKEN).await.unwrap();
    assert_eq!(
        sid.status(),
        200,
        "streams given back when their clients go"
    );
}

/// `l3map mcp` answers a line that is not JSON with a parse error and
/// goes on serving; closing stdin ends it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_answers_a_bad_line_and_goes_on() {
    use crate::common::stack::StackEnv;
    use std::io::{BufRead, Write};
    let s = Stack::without_runtime("mcp-stdio-bad", "", &[("cards.l3map", CARDS)]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_l3map"))
        .stack_env()
        .args(["mcp", "--config"])
        .arg(s.dir.join("l3map.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    writeln!(stdin, "garbage").unwrap();
    writeln!(stdin, "{init}").unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    writeln!(stdin, "{{not json").unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    )
    .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = vec![];
    while seen
        .iter()
        .filter(|v: &&Value| v["id"] == 1 || v["id"] == 2)
        .count()
        < 2
    {
        let line = tokio::task::block_in_place(|| lines.next())
            .expect("an answer")
            .unwrap();
        seen.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(
        seen.iter().filter(|v| v["error"]["code"] == -32700).count(),
        2,
        "{seen:?}"
    );
    let tools = seen.iter().find(|v| v["id"] == 2).unwrap();
    assert!(
        tools["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.len() == 7),
        "{tools}"
    );
    drop(stdin);
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(status.success(), "{status}");
}

/// The status table as a resource (with its Mermaid graph) and the
/// escalation policy as a prompt, from the mappings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_table_and_the_escalation_policy_are_readable() {
    let s = stack("mcp-guide").await;
    let c = connect(&s.runtime, AGENT_TOKEN).await;
    let resources = c.list_resources(None).await.expect("resources/list");
    let uris: Vec<String> = resources.resources.iter().map(|r| r.uri.clone()).collect();
    assert!(
        uris.contains(&"l3map://statuses/desk".to_string()),
        "{uris:?}"
    );
    let read = c
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "l3map://statuses/desk",
        ))
        .await
        .expect("resources/read");
    let text = serde_json::to_string(&read).unwrap();
    assert!(
        text.contains("```mermaid") && text.contains("flowchart LR"),
        "{text}"
    );
    assert!(text.contains("s_pending_risk_review[pending_risk_review] -->|\\\"ticket.risk_decision == cleared\\\"| s_in_progress"), "{text}");
    let missing = c
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "file:///etc/passwd",
        ))
        .await;
    assert!(missing.is_err(), "{missing:?}");
    let prompts = c.list_prompts(None).await.expect("prompts/list");
    assert_eq!(prompts.prompts[0].name, "escalation_policy");
    let policy = c
        .get_prompt(rmcp::model::GetPromptRequestParams::new(
            "escalation_policy",
        ))
        .await
        .expect("prompts/get");
    let text = serde_json::to_string(&policy).unwrap();
    assert!(text.contains("1. `refund_over_threshold`"), "{text}");
    assert!(
        text.contains("the ticket assigned to the group Payments Tier 2"),
        "{text}"
    );
    c.cancel().await.ok();
}
