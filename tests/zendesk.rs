//! The Zendesk client against the Zendesk emulator, over real HTTP on
//! 127.0.0.1: every operation, every error class, rate limits, bulk jobs,
//! idempotent creates, signed webhooks, concurrency, and secrets.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use l3map::connectors::limit::Limiters;
use l3map::connectors::retry::RetryPolicy;
use l3map::connectors::zendesk::{
    Credentials, ExportFrom, TicketChanges, ZendeskClient, ZendeskConfig,
};
use l3map::connectors::{ApiError, Secret};
use l3map::emulator::zendesk::{
    Handle, OAuthClient, TokenGrant, WebhookTarget, ZendeskEmulator, ZendeskOptions,
};
use l3map::emulator::Running;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const SLA_TIER: u64 = 360001234;

/// Backoff in milliseconds, so retries cost the tests little time.
fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(500),
        max_total: Duration::from_secs(30),
        max_attempts: 10,
        ..RetryPolicy::default()
    }
}

fn opts(tokens: Vec<TokenGrant>) -> ZendeskOptions {
    ZendeskOptions {
        tokens,
        ..ZendeskOptions::default()
    }
}

async fn start(opts: ZendeskOptions) -> (Running, Handle) {
    ZendeskEmulator::new(opts)
        .start(0)
        .await
        .expect("bind 127.0.0.1")
}

fn config(base: &str, creds: Credentials, rpm: u32) -> ZendeskConfig {
    let mut cfg = ZendeskConfig::new(base, creds);
    cfg.rpm = rpm;
    cfg.retry = quick_retry();
    cfg.timeout = Duration::from_secs(10);
    cfg.job_poll_interval = Duration::from_millis(10);
    cfg
}

fn client_for(base: &str, token: &str, rpm: u32) -> ZendeskClient {
    let cfg = config(base, Credentials::OAuth(Secret::new(token)), rpm);
    ZendeskClient::with_limiters(cfg, &Limiters::default()).expect("client")
}

/// A client whose rate window is an emulator's shortened minute: `limit`
/// per `window`, as the emulator's headers will say.
fn client_per_window(base: &str, token: &str, limit: u32, window: Duration) -> ZendeskClient {
    let mut cfg = config(base, Credentials::OAuth(Secret::new(token)), limit);
    cfg.rate_window = window;
    ZendeskClient::with_limiters(cfg, &Limiters::default()).expect("client")
}

fn rw(token: &str) -> TokenGrant {
    TokenGrant::new(token, &["read", "write"])
}

// ---------------------------------------------------------------- operations

#[tokio::test]
async fn every_operation_works_against_the_emulator() {
    let (srv, h) = start(ZendeskOptions {
        export_page: 2,
        ..opts(vec![rw("tok-ops")])
    })
    .await;
    let zd = client_for(&srv.base_url(), "tok-ops", 6000);

    let t = zd.get_ticket(4211).await.expect("seeded ticket");
    assert_eq!(t.field(SLA_TIER), Some(&json!("premium")));

    // Reference data, cached: the second group lookup costs no request.
    let fields = zd.ticket_fields().await.expect("fields");
    let sla = fields.iter().find(|f| f.id == SLA_TIER).expect("sla field");
    assert_eq!(sla.kind, "tagger");
    assert_eq!(sla.custom_field_options.len(), 3);
    let statuses = zd.custom_statuses().await.expect("statuses");
    let escalated = statuses
        .iter()
        .find(|s| s.agent_label == "With tier 2")
        .expect("escalated_tier2 status")
        .clone();
    assert_eq!(escalated.status_category, "open");
    let tier2 = zd.group_id("Payments Tier 2").await.expect("group");
    assert_eq!(zd.group_id("Payments Tier 2").await, Ok(tier2));
    assert_eq!(zd.groups().await.expect("groups").len(), 6);
    assert_eq!(h.requests("GET /api/v2/groups.json"), 1);

    // The runtime's four actions in one update.
    let changes = TicketChanges::default()
        .status("open", Some(escalated.id))
        .field(SLA_TIER, "enterprise")
        .field(360001241, "refund_threshold")
        .private_comment("AI hand-off: refund above $200")
        .group(tier2);
    let t = zd.update_ticket(4211, &changes).await.expect("update");
    assert_eq!(t.custom_status_id, Some(escalated.id));
    assert_eq!(t.group_id, Some(tier2));
    assert_eq!(t.field(360001241), Some(&json!("refund_threshold")));
    let comments = zd.list_comments(4211).await.expect("comments");
    let last = comments.last().expect("a comment");
    assert!(!last.public, "hand-off notes are private");
    assert_eq!(last.body, "AI hand-off: refund above $200");

    let created = zd
        .create_ticket(
            &TicketChanges::default()
                .subject("Card declined abroad")
                .public_comment("My card keeps getting declined in Lisbon."),
            None,
        )
        .await
        .expect("create");
    assert_eq!(created.status, "new");
    assert!(h.ticket(created.id).is_some());

    // The export pages through everything, then resumes from its cursor.
    let mut seen = BTreeSet::new();
    let mut from = ExportFrom::StartTime(0);
    loop {
        let page = zd.export_tickets(&from).await.expect("export");
        seen.extend(page.tickets.iter().map(|t| t.id));
        let cursor = page.after_cursor.expect("cursor");
        from = ExportFrom::Cursor(cursor);
        if page.end_of_stream {
            break;
        }
    }
    assert_eq!(seen, h.ticket_ids().into_iter().collect());
    zd.update_ticket(4213, &TicketChanges::default().field(SLA_TIER, "standard"))
        .await
        .expect("update");
    let page = zd.export_tickets(&from).await.expect("resume");
    let ids: Vec<u64> = page.tickets.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![4213]);
    assert!(page.end_of_stream);
}

/// Lists longer than a page are read to the end: a lockfile from a
/// truncated list would report fields and groups as missing.
#[tokio::test]
async fn lists_are_read_through_every_page() {
    let (srv, h) = start(ZendeskOptions {
        list_page_max: 2,
        ..opts(vec![rw("tok-pages")])
    })
    .await;
    let zd = client_for(&srv.base_url(), "tok-pages", 6000);
    let groups = zd.groups().await.expect("groups");
    assert_eq!(groups.len(), 6);
    assert_eq!(h.requests("GET /api/v2/groups.json"), 3);
    let names: BTreeSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names.len(), 6, "no page read twice");
    let fields = zd.ticket_fields().await.expect("fields");
    assert!(fields.len() > 2);
    assert!(fields.iter().any(|f| f.id == SLA_TIER));
    for n in 0..5 {
        zd.update_ticket(
            4211,
            &TicketChanges::default().private_comment(format!("note {n}")),
        )
        .await
        .expect("comment");
    }
    let comments = zd.list_comments(4211).await.expect("comments");
    assert_eq!(comments.len(), h.comments(4211).len());
    assert_eq!(comments.last().map(|c| c.body.as_str()), Some("note 4"));

    // The raw pages, as Zendesk shapes them: cursor and offset.
    let http = reqwest::Client::new();
    let get = |q: &str| {
        http.get(format!("{}/api/v2/groups.json?{q}", srv.base_url()))
            .bearer_auth("tok-pages")
            .send()
    };
    let first: Value = get("page[size]=2").await.unwrap().json().await.unwrap();
    assert_eq!(first["groups"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["meta"]["has_more"], json!(true));
    assert!(first["links"]["next"].as_str().is_some());
    let offset: Value = get("page=3").await.unwrap().json().await.unwrap();
    assert_eq!(offset["count"], json!(6));
    assert_eq!(offset["next_page"], Value::Null);
    assert!(offset["previous_page"].as_str().is_some());
    let bad = get("page[size]=0").await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = get("page[size]=2&page[after]=not-a-cursor").await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "InvalidPaginationParameter");
}

/// The 15-minute cache, over HTTP: 50 concurrent lookups make one request
/// (per page), and an expired entry is read again.
#[tokio::test]
async fn settings_are_cached_with_single_flight_and_expire() {
    let (srv, h) = start(opts(vec![rw("tok-cache")])).await;
    let mut cfg = config(
        &srv.base_url(),
        Credentials::OAuth(Secret::new("tok-cache")),
        6000,
    );
    cfg.cache_ttl = Duration::from_secs(2);
    let zd = ZendeskClient::with_limiters(cfg, &Limiters::default()).expect("client");
    let lookups: Vec<_> = (0..50)
        .map(|i| {
            let zd = zd.clone();
            tokio::spawn(async move {
                let name = if i % 2 == 0 {
                    "Payments Tier 2"
                } else {
                    "Fraud Operations"
                };
                zd.group_id(name).await
            })
        })
        .collect();
    for l in lookups {
        assert!(l.await.expect("task").is_ok());
    }
    assert_eq!(h.requests("GET /api/v2/groups.json"), 1);
    // A name the account lacks reloads the list once (it may be new), not
    // once per lookup.
    for _ in 0..10 {
        let err = zd.group_id("Payments Tier 9").await.unwrap_err();
        assert!(matches!(err, ApiError::NotFound { .. }), "{err:?}");
    }
    assert_eq!(h.requests("GET /api/v2/groups.json"), 2);
    zd.groups().await.expect("cached");
    assert_eq!(h.requests("GET /api/v2/groups.json"), 2);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    zd.groups().await.expect("read again");
    assert_eq!(h.requests("GET /api/v2/groups.json"), 3);
}

#[tokio::test]
async fn bulk_updates_poll_the_job_until_it_completes() {
    let (srv, h) = start(ZendeskOptions {
        job_polls: 2,
        ..opts(vec![rw("tok-bulk")])
    })
    .await;
    let zd = client_for(&srv.base_url(), "tok-bulk", 6000);
    let ids = [4211, 4213, 4214, 999_999];
    let results = zd
        .update_many_same(&ids, &TicketChanges::default().field(SLA_TIER, "standard"))
        .await
        .expect("bulk");
    assert_eq!(results.len(), 4);
    let ok: Vec<bool> = results.iter().map(|r| r.success).collect();
    assert_eq!(ok, vec![true, true, true, false]);
    assert_eq!(h.requests("PUT /api/v2/tickets/update_many.json"), 1);
    // One update_many, then two polls answered `working` and the third `completed`.
    assert_eq!(h.total_requests(), 4);

    // More than Zendesk's 100 per request: split, each job awaited.
    let many: Vec<u64> = (1..=150).collect();
    let results = zd
        .update_many_same(&many, &TicketChanges::default().field(SLA_TIER, "premium"))
        .await
        .expect("bulk");
    assert_eq!(results.len(), 150);
    assert_eq!(h.requests("PUT /api/v2/tickets/update_many.json"), 3);
    for id in [4211, 4213, 4214] {
        let t = h.ticket(id).expect("ticket");
        let sla = t["custom_fields"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["id"] == json!(SLA_TIER)))
            .map(|f| f["value"].clone());
        assert_eq!(sla, Some(json!("standard")));
    }
}

#[tokio::test]
async fn creates_with_an_idempotency_key_happen_once() {
    let (srv, h) = start(opts(vec![rw("tok-idem")])).await;
    let zd = client_for(&srv.base_url(), "tok-idem", 6000);
    let before = h.ticket_ids().len();
    let new = TicketChanges::default()
        .subject("Refund missing")
        .public_comment("I was promised a refund.");
    let a = zd.create_ticket(&new, Some("key-1")).await.expect("first");
    let b = zd.create_ticket(&new, Some("key-1")).await.expect("replay");
    assert_eq!(a.id, b.id);
    assert_eq!(h.ticket_ids().len(), before + 1);

    let other = new.clone().subject("Something else");
    let err = zd.create_ticket(&other, Some("key-1")).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Validation { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(h.ticket_ids().len(), before + 1);
}

/// A long session keeps at most `max_idempotency_keys` keys and
/// `max_jobs` job statuses: an evicted key creates anew, a recent one
/// still replays, and an evicted job answers 404 like an expired one.
#[tokio::test]
async fn idempotency_keys_and_jobs_stay_bounded() {
    let (srv, h) = start(ZendeskOptions {
        max_idempotency_keys: 3,
        max_jobs: 2,
        ..opts(vec![rw("tok-bound")])
    })
    .await;
    let base = srv.base_url();
    let http = reqwest::Client::new();
    let create = |key: String| {
        http.post(format!("{base}/api/v2/tickets.json"))
            .bearer_auth("tok-bound")
            .header("idempotency-key", key)
            .json(&json!({"ticket": {"subject": "s", "comment": {"body": "b"}}}))
            .send()
    };
    let mut ids = Vec::new();
    for i in 0..10 {
        let r = create(format!("key-{i}")).await.expect("create");
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.expect("json");
        ids.push(v["ticket"]["id"].as_u64().expect("an id"));
    }
    let before = h.ticket_ids().len();
    let recent = create("key-9".into()).await.expect("replay");
    assert_eq!(recent.headers()["x-idempotency-lookup"], "hit");
    let v: Value = recent.json().await.expect("json");
    assert_eq!(v["ticket"]["id"].as_u64(), Some(ids[9]));
    assert_eq!(h.ticket_ids().len(), before, "a recent key replays");
    let evicted = create("key-0".into()).await.expect("create again");
    assert_eq!(evicted.headers()["x-idempotency-lookup"], "miss");
    let v: Value = evicted.json().await.expect("json");
    assert_ne!(v["ticket"]["id"].as_u64(), Some(ids[0]));
    assert_eq!(h.ticket_ids().len(), before + 1, "an evicted key creates");

    let mut jobs = Vec::new();
    for _ in 0..5 {
        let r = http
            .put(format!("{base}/api/v2/tickets/update_many.json?ids=4211"))
            .bearer_auth("tok-bound")
            .json(&json!({"ticket": {"priority": "high"}}))
            .send()
            .await
            .expect("bulk update");
        let v: Value = r.json().await.expect("json");
        jobs.push(
            v["job_status"]["id"]
                .as_str()
                .expect("a job id")
                .to_string(),
        );
    }
    let poll = |id: &str| {
        http.get(format!("{base}/api/v2/job_statuses/{id}.json"))
            .bearer_auth("tok-bound")
            .send()
    };
    for (i, id) in jobs.iter().enumerate() {
        let want = if i >= 3 { 200 } else { 404 };
        let r = poll(id).await.expect("poll");
        assert_eq!(r.status().as_u16(), want, "job {i}");
        let v: Value = r.json().await.expect("a JSON body");
        assert!(v.is_object(), "{v}");
    }
}

// ---------------------------------------------------------------- errors

#[tokio::test]
async fn errors_are_typed_with_zendesks_message() {
    let (srv, _h) = start(opts(vec![
        rw("tok-err"),
        TokenGrant::new("tok-readonly", &["read"]),
    ]))
    .await;
    let base = srv.base_url();
    let zd = client_for(&base, "tok-err", 6000);

    let e = client_for(&base, "tok-unknown", 6000)
        .get_ticket(4211)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApiError::Auth { status: 401, message, .. } if message == "Couldn't authenticate you"),
        "{e:?}"
    );

    let api_token = Credentials::ApiToken {
        email: "ops@example.com".into(),
        token: Secret::new("tok-err"),
    };
    let by_api_token =
        ZendeskClient::with_limiters(config(&base, api_token, 6000), &Limiters::default())
            .expect("client");
    assert_eq!(by_api_token.get_ticket(4211).await.map(|t| t.id), Ok(4211));

    let ro = client_for(&base, "tok-readonly", 6000);
    assert!(ro.get_ticket(4211).await.is_ok(), "reads are allowed");
    let e = ro
        .update_ticket(4211, &TicketChanges::default().private_comment("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Permission { .. }), "{e:?}");

    let e = zd.get_ticket(987_654).await.unwrap_err();
    assert!(
        matches!(&e, ApiError::NotFound { message, .. } if message == "Not found"),
        "{e:?}"
    );

    let cases = [
        (TicketChanges::default().field(360009999, "x"), "360009999"),
        (
            TicketChanges::default().field(SLA_TIER, "platinum"),
            "360001234",
        ),
        (
            TicketChanges::default().status("open", Some(1)),
            "custom_status_id",
        ),
        (TicketChanges::default().group(42), "group_id"),
    ];
    for (changes, blamed) in cases {
        let e = zd.update_ticket(4211, &changes).await.unwrap_err();
        match &e {
            ApiError::Validation {
                status: 422,
                fields,
                message,
                ..
            } => {
                assert_eq!(fields, &vec![blamed.to_string()]);
                // The summary, then what `details` says of each problem.
                assert!(
                    message.starts_with("Record validation errors: "),
                    "{message}"
                );
            }
            other => panic!("{blamed}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn malformed_bodies_get_zendesks_400_and_nothing_panics() {
    let (srv, h) = start(ZendeskOptions {
        max_body: 64 * 1024,
        ..opts(vec![rw("tok-raw")])
    })
    .await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", srv.base_url());
    let send = |method: reqwest::Method, path: &str, body: Vec<u8>| {
        http.request(method, url(path))
            .bearer_auth("tok-raw")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = send(
        reqwest::Method::PUT,
        "/api/v2/tickets/4211.json",
        b"{not json".to_vec(),
    )
    .await
    .expect("answer");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().contains_key("x-rate-limit-remaining"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["message"], "Server could not parse JSON");

    let r = send(
        reqwest::Method::POST,
        "/api/v2/tickets.json",
        vec![b'a'; 100 * 1024],
    )
    .await
    .expect("answer");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Unknown attributes are ignored, as Zendesk ignores them.
    let r = send(
        reqwest::Method::PUT,
        "/api/v2/tickets/4211.json",
        br#"{"ticket":{"no_such_attribute":1,"priority":"high"},"extra":true}"#.to_vec(),
    )
    .await
    .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);

    // Whatever arrives, an answer in Zendesk's shape comes back.
    let bodies: [&[u8]; 8] = [
        b"",
        b"null",
        b"[]",
        br#"{"ticket":[]}"#,
        br#"{"ticket":{"custom_fields":"x","tags":[1],"comment":{"body":""}}}"#,
        br#"{"ticket":{"status":"weird","custom_status_id":"x","group_id":-1}}"#,
        &[0xff, 0xfe, 0x00],
        br#"{"ticket":{"custom_fields":[{"id":18446744073709551615,"value":{}}]}}"#,
    ];
    let paths = [
        "/api/v2/tickets.json",
        "/api/v2/tickets/4211.json",
        "/api/v2/tickets/update_many.json?ids=4211,x",
        "/api/v2/tickets/update_many.json?ids=4211",
        "/api/v2/tickets/abc.json",
        "/api/v2/incremental/tickets/cursor.json?cursor=%%%",
        "/api/v2/job_statuses/nope.json",
        "/nowhere",
    ];
    for path in paths {
        for body in bodies {
            for m in [
                reqwest::Method::POST,
                reqwest::Method::PUT,
                reqwest::Method::GET,
            ] {
                let r = send(m, path, body.to_vec()).await.expect("answer");
                assert!(
                    r.status().is_client_error() || r.status().is_success(),
                    "{path}: {}",
                    r.status()
                );
                let v: Value = r.json().await.expect("a JSON body");
                assert!(v.is_object(), "{path}: {v}");
            }
        }
    }
    assert!(h.total_requests() > 190);
}

#[tokio::test]
async fn injected_5xx_are_retried() {
    let (srv, h) = start(opts(vec![rw("tok-5xx")])).await;
    let zd = client_for(&srv.base_url(), "tok-5xx", 6000);
    h.faults().burst_5xx.store(2, Ordering::SeqCst);
    assert_eq!(zd.get_ticket(4214).await.map(|t| t.id), Ok(4214));
    assert_eq!(h.faults().injected.load(Ordering::SeqCst), 2);
}

/// The emulator makes the change and then loses the answer: a comment
/// must not be sent again (it would be written twice), a field write may.
#[tokio::test]
async fn a_lost_answer_never_writes_a_comment_twice() {
    let (srv, h) = start(opts(vec![rw("tok-lost")])).await;
    let zd = client_for(&srv.base_url(), "tok-lost", 6000);
    let before = zd.list_comments(4211).await.expect("comments").len();

    h.faults().lose_answers.store(1, Ordering::SeqCst);
    let note = TicketChanges::default().private_comment("AI hand-off: chargeback dispute");
    match zd.update_ticket(4211, &note).await {
        Err(ApiError::Unconfirmed { last, .. }) => {
            assert!(
                matches!(
                    *last,
                    ApiError::Transient {
                        status: Some(502),
                        ..
                    }
                ),
                "{last:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let after = zd.list_comments(4211).await.expect("comments");
    assert_eq!(after.len(), before + 1, "applied once, not repeated");

    // Setting a field lands the same however often it is sent: retried.
    h.faults().lose_answers.store(1, Ordering::SeqCst);
    let t = zd
        .update_ticket(
            4211,
            &TicketChanges::default().field(SLA_TIER, "enterprise"),
        )
        .await
        .expect("retried");
    assert_eq!(t.field(SLA_TIER), Some(&json!("enterprise")));

    // A create with an idempotency key is retried and still creates one.
    let tickets = h.ticket_ids().len();
    h.faults().lose_answers.store(1, Ordering::SeqCst);
    let created = zd
        .create_ticket(
            &TicketChanges::default()
                .subject("Lost answer")
                .public_comment("hello"),
            Some("l3map-lost-1"),
        )
        .await
        .expect("created");
    assert_eq!(h.ticket_ids().len(), tickets + 1);
    assert!(h.ticket(created.id).is_some());
    // Without a key, the lost answer is reported, not repeated.
    h.faults().lose_answers.store(1, Ordering::SeqCst);
    let err = zd
        .create_ticket(
            &TicketChanges::default()
                .subject("No key")
                .public_comment("hello"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unconfirmed { .. }), "{err:?}");
    assert_eq!(h.ticket_ids().len(), tickets + 2);
}

// ---------------------------------------------------------------- rate limits

/// A GET of `path` by another process holding `token`, outside the client
/// under test.
async fn raw_get(http: &reqwest::Client, base: &str, path: &str, token: &str) -> reqwest::Response {
    http.get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answer")
}

/// `n` such GETs, each answered: another process spending the token's
/// window.
async fn spend(http: &reqwest::Client, base: &str, path: &str, token: &str, n: usize) {
    for _ in 0..n {
        let r = raw_get(http, base, path, token).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_429_waits_the_retry_after() {
    let (srv, h) = start(ZendeskOptions {
        rate_limit: 3,
        window: Duration::from_secs(2),
        ..opts(vec![rw("tok-429")])
    })
    .await;
    // Another process spends the token's window...
    let http = reqwest::Client::new();
    spend(&http, &srv.base_url(), "/api/v2/groups.json", "tok-429", 3).await;
    let r = raw_get(&http, &srv.base_url(), "/api/v2/groups.json", "tok-429").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((1..=2).contains(&retry_after));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "APIRateLimitExceeded");

    // ...so this client gets a 429, waits as told, and succeeds.
    let zd = client_for(&srv.base_url(), "tok-429", 6000);
    let started = Instant::now();
    assert_eq!(zd.get_ticket(4211).await.map(|t| t.id), Ok(4211));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(h.rate_limited() >= 2);
}

/// Another integration has spent most of the token's window: the client
/// spreads what is left over the window instead of sending its whole
/// queue into 429s.
#[tokio::test]
async fn a_window_shared_with_another_integration_is_paced_not_hit() {
    let (srv, h) = start(ZendeskOptions {
        rate_limit: 20,
        window: Duration::from_secs(2),
        ..opts(vec![rw("tok-shared")])
    })
    .await;
    let http = reqwest::Client::new();
    spend(
        &http,
        &srv.base_url(),
        "/api/v2/tickets/4211.json",
        "tok-shared",
        16,
    )
    .await;
    // This client believes it has 6000 a window; the headers say otherwise.
    let zd = client_per_window(&srv.base_url(), "tok-shared", 6000, Duration::from_secs(2));
    zd.get_ticket(4211).await.expect("first");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let zd = zd.clone();
            tokio::spawn(async move { zd.get_ticket(4211).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("no panic").expect("every request succeeds");
    }
    assert!(
        h.rate_limited() <= 1,
        "{} requests got a 429: the headers should have paced them",
        h.rate_limited()
    );
}

/// A token paused longer than the call's budget fails at once with a clear
/// error instead of sleeping past the budget.
#[tokio::test]
async fn the_retry_budget_bounds_the_wait_for_the_rate_limit() {
    let (srv, _h) = start(ZendeskOptions {
        rate_limit: 1,
        window: Duration::from_secs(60),
        ..opts(vec![rw("tok-budget")])
    })
    .await;
    let mut cfg = config(
        &srv.base_url(),
        Credentials::OAuth(Secret::new("tok-budget")),
        6000,
    );
    cfg.retry.max_total = Duration::from_secs(2);
    let zd = ZendeskClient::with_limiters(cfg, &Limiters::default()).expect("client");
    zd.get_ticket(4211)
        .await
        .expect("the one request of the window");
    let started = Instant::now();
    let err = zd.get_ticket(4211).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match err {
        ApiError::GaveUp { last, .. } => {
            assert!(matches!(*last, ApiError::RateLimited { .. }), "{last:?}")
        }
        other => panic!("{other:?}"),
    }
}

/// The article's load test, time scaled by 7.5: a window of 8 s with the
/// 200 requests a minute allows, and 250 requests of work pushed at once
/// through one token. The client's limiter runs on the same scaled
/// window (200 per 8 s). Everything must arrive, and 429s must
/// stay rare: the limiter paces, the retry layer only mops up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_fifty_requests_against_a_limit_of_two_hundred() {
    let window = Duration::from_secs(8);
    let (srv, h) = start(ZendeskOptions {
        rate_limit: 200,
        window,
        ..opts(vec![rw("tok-load")])
    })
    .await;
    let zd = client_per_window(&srv.base_url(), "tok-load", 200, window);
    let started = Instant::now();
    let tasks: Vec<_> = (0..250u64)
        .map(|i| {
            let zd = zd.clone();
            tokio::spawn(async move {
                let changes = TicketChanges::default().field(360001236, i);
                zd.update_ticket(4211 + (i % 2) * 2, &changes)
                    .await
                    .map(|t| t.id)
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("no panic") {
            Ok(_) => ok += 1,
            Err(e) => panic!("lost a request: {e}"),
        }
    }
    assert_eq!(ok, 250, "none lost");
    let attempts = h.requests_for_token(&Secret::new("tok-load"));
    let limited = h.rate_limited();
    assert!(
        limited * 20 < attempts,
        "{limited} of {attempts} attempts got a 429"
    );
    assert!(
        started.elapsed() >= window - Duration::from_secs(1),
        "the second window was waited for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_concurrent_clients_are_all_answered() {
    let tokens: Vec<String> = (0..60).map(|i| format!("tok-many-{i}")).collect();
    let (srv, h) = start(opts(tokens.iter().map(|t| rw(t)).collect())).await;
    let base = srv.base_url();
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, tok)| {
            let zd = client_for(&base, tok, 200);
            tokio::spawn(async move {
                let id = [4211u64, 4213, 4214, 5101, 5105][i % 5];
                zd.get_ticket(id).await?;
                zd.update_ticket(
                    id,
                    &TicketChanges::default().private_comment(format!("note {i}")),
                )
                .await?;
                zd.group_id("Compliance").await
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.expect("no panic").is_ok());
    }
    let notes: usize = [4211u64, 4213, 4214, 5101, 5105]
        .iter()
        .map(|id| h.comments(*id).len())
        .sum();
    assert_eq!(notes, 60);
}

/// The issue's wording, faithfully: 250 requests a minute of work arrive
/// *spread over* the minute, through one token, against the 200-a-minute
/// plan. Time is scaled tenfold: a window of 6 s stands for the minute,
/// and the client's limiter runs on the same window: the plan's 200 per
/// (scaled) minute. What the window cannot take waits for the
/// next one; nothing is lost, and 429s stay under 5 % of attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_fifty_paced_requests_a_minute_against_a_limit_of_two_hundred() {
    let window = Duration::from_secs(6);
    let (srv, h) = start(ZendeskOptions {
        rate_limit: 200,
        window,
        ..opts(vec![rw("tok-paced")])
    })
    .await;
    let zd = client_per_window(&srv.base_url(), "tok-paced", 200, window);
    let gap = window / 250;
    let mut tick = tokio::time::interval(gap);
    let mut tasks = Vec::new();
    for i in 0..250u64 {
        tick.tick().await;
        let zd = zd.clone();
        tasks.push(tokio::spawn(async move {
            let changes = TicketChanges::default().field(360001236, i);
            zd.update_ticket(4211 + (i % 2) * 2, &changes).await
        }));
    }
    for t in tasks {
        if let Err(e) = t.await.expect("no panic") {
            panic!("lost a request: {e}");
        }
    }
    let attempts = h.requests_for_token(&Secret::new("tok-paced"));
    let limited = h.rate_limited();
    assert!(attempts >= 250, "{attempts}");
    assert!(
        limited * 20 < attempts,
        "{limited} of {attempts} attempts got a 429"
    );
}

// ---------------------------------------------------------------- OAuth

const CLIENT: &str = "l3map-support-bot";
const CLIENT_SECRET: &str = "zd-client-SECRET-9f8e7d";

fn oauth_opts() -> ZendeskOptions {
    ZendeskOptions {
        oauth_clients: vec![OAuthClient::new(
            CLIENT,
            CLIENT_SECRET,
            &["read", "write", "tickets:write"],
        )],
        ..opts(vec![])
    }
}

/// `POST /oauth/tokens` with a JSON body, as Zendesk documents it.
async fn token_request(base: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/oauth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("answer");
    let status = r.status();
    (status, r.json().await.expect("a JSON body"))
}

async fn get_with(base: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{base}/api/v2/tickets/4211.json"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answer")
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_token_endpoint_issues_scoped_tokens_and_rotates_refresh_tokens() {
    let (srv, h) = start(oauth_opts()).await;
    let base = srv.base_url();

    // Authorization code: the scopes the user approved.
    let code = h
        .authorization_code(CLIENT, &["read", "write"])
        .expect("a code for a registered client");
    assert_eq!(h.authorization_code(CLIENT, &["hc:write"]), None);
    assert_eq!(h.authorization_code("nobody", &["read"]), None);
    let (status, tok) = token_request(
        &base,
        json!({"grant_type": "authorization_code", "code": code, "client_id": CLIENT,
               "client_secret": CLIENT_SECRET, "redirect_uri": "https://example.com/cb"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    assert_eq!(tok["token_type"], "bearer");
    assert_eq!(tok["scope"], "read write");
    assert_eq!(tok["expires_in"], 1800);
    assert_eq!(tok["refresh_token_expires_in"], 30 * 24 * 3600);
    let (access, refresh) = (text(&tok, "access_token"), text(&tok, "refresh_token"));
    assert_eq!(get_with(&base, &access).await.status(), StatusCode::OK);
    // A code is good once.
    let (status, e) = token_request(
        &base,
        json!({"grant_type": "authorization_code", "code": code, "client_id": CLIENT, "client_secret": CLIENT_SECRET}),
    )
    .await;
    assert_eq!(
        (status, text(&e, "error").as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    // Refresh, narrowing to read and asking for a shorter life: a new pair,
    // and the old pair is gone (rotation).
    let (status, fresh) = token_request(
        &base,
        json!({"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT,
               "client_secret": CLIENT_SECRET, "scope": "read", "expires_in": 600}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(
        (fresh["scope"].clone(), fresh["expires_in"].clone()),
        (json!("read"), json!(600))
    );
    assert_ne!(text(&fresh, "refresh_token"), refresh);
    let old = get_with(&base, &access).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let (status, e) = token_request(
        &base,
        json!({"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT, "client_secret": CLIENT_SECRET}),
    )
    .await;
    assert_eq!(
        (status, text(&e, "error").as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert!(e["error_description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    // The read-only token reads but may not write.
    let narrowed = text(&fresh, "access_token");
    assert_eq!(get_with(&base, &narrowed).await.status(), StatusCode::OK);
    let put = reqwest::Client::new()
        .put(format!("{base}/api/v2/tickets/4211.json"))
        .bearer_auth(&narrowed)
        .json(&json!({"ticket": {"priority": "high"}}))
        .send()
        .await
        .expect("answer");
    assert_eq!(put.status(), StatusCode::FORBIDDEN);
    // A refresh cannot widen past what the user approved.
    let (status, e) = token_request(
        &base,
        json!({"grant_type": "refresh_token", "refresh_token": text(&fresh, "refresh_token"),
               "client_id": CLIENT, "client_secret": CLIENT_SECRET, "scope": "read tickets:write"}),
    )
    .await;
    assert_eq!(
        (status, text(&e, "error").as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );

    // Client credentials, as a form: the client's own scopes, narrowed on
    // request; no refresh token.
    let r = reqwest::Client::new()
        .post(format!("{base}/oauth/tokens"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", CLIENT_SECRET),
            ("scope", "read tickets:write"),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    let cc: Value = r.json().await.expect("json");
    assert_eq!(cc["scope"], "read tickets:write");
    assert!(cc.get("refresh_token").is_none(), "{cc}");
    let put = reqwest::Client::new()
        .put(format!("{base}/api/v2/tickets/4211.json"))
        .bearer_auth(text(&cc, "access_token"))
        .json(&json!({"ticket": {"priority": "high"}}))
        .send()
        .await
        .expect("answer");
    assert_eq!(put.status(), StatusCode::OK);
    let (status, e) = token_request(
        &base,
        json!({"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": CLIENT_SECRET, "scope": "hc:write"}),
    )
    .await;
    assert_eq!(
        (status, text(&e, "error").as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope")
    );
    assert_eq!(h.token_grants(), 3);
}

/// Access tokens live `access_token_lifetime`; past it Zendesk answers 401,
/// and the client swaps its token once, for all the requests that were
/// refused at the same time, and sends each again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_token_is_refreshed_once_and_the_requests_sent_again() {
    let (srv, h) = start(ZendeskOptions {
        access_token_lifetime: Duration::from_millis(800),
        ..oauth_opts()
    })
    .await;
    let base = srv.base_url();
    let code = h
        .authorization_code(CLIENT, &["read", "write"])
        .expect("code");
    let (_, tok) = token_request(
        &base,
        json!({"grant_type": "authorization_code", "code": code, "client_id": CLIENT, "client_secret": CLIENT_SECRET}),
    )
    .await;
    let creds = Credentials::OAuthClient {
        client_id: CLIENT.into(),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        refresh_token: Some(Secret::new(text(&tok, "refresh_token"))),
        scopes: vec![],
    };
    let zd = ZendeskClient::with_limiters(config(&base, creds, 6000), &Limiters::default())
        .expect("client");
    zd.get_ticket(4211)
        .await
        .expect("first token from the refresh token");
    assert_eq!(
        h.token_grants(),
        2,
        "the code, then the client's first refresh"
    );

    let (_, raw) = token_request(
        &base,
        json!({"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": CLIENT_SECRET}),
    )
    .await;
    let before = h.token_grants();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let r = get_with(&base, &text(&raw, "access_token")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token", "{body}");
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let zd = zd.clone();
            tokio::spawn(async move {
                zd.update_ticket(4211, &TicketChanges::default().field(360001236, i))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("no panic")
            .expect("replayed with the new token");
    }
    assert_eq!(
        h.token_grants(),
        before + 1,
        "exactly one refresh for all the 401s"
    );
    assert!(h.requests("PUT /api/v2/tickets/4211.json") >= 12);

    // A client-credentials client needs no refresh token at all.
    let cc = Credentials::OAuthClient {
        client_id: CLIENT.into(),
        client_secret: Some(Secret::new(CLIENT_SECRET)),
        refresh_token: None,
        scopes: vec!["read".into()],
    };
    let zd = ZendeskClient::with_limiters(config(&base, cc, 6000), &Limiters::default())
        .expect("client");
    assert_eq!(zd.get_ticket(4213).await.map(|t| t.id), Ok(4213));
    let denied = zd
        .update_ticket(4213, &TicketChanges::default().subject("x"))
        .await;
    assert!(
        matches!(denied, Err(ApiError::Permission { .. })),
        "{denied:?}"
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_an_auth_error_that_keeps_the_secret_out() {
    let (srv, h) = start(oauth_opts()).await;
    let wrong = "zd-client-SECRET-wrong-0000";
    for refresh in [None, Some(Secret::new("zd-refresh-SECRET-1234"))] {
        let creds = Credentials::OAuthClient {
            client_id: CLIENT.into(),
            client_secret: Some(Secret::new(wrong)),
            refresh_token: refresh,
            scopes: vec![],
        };
        let zd = ZendeskClient::with_limiters(
            config(&srv.base_url(), creds.clone(), 6000),
            &Limiters::default(),
        )
        .expect("client");
        let e = zd.get_ticket(4211).await.unwrap_err();
        match &e {
            ApiError::Auth {
                status, message, ..
            } => {
                assert_eq!(*status, 401);
                assert!(message.contains("invalid_client"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let shown = format!("{e} {e:?} {zd:?} {creds:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
    assert_eq!(h.token_grants(), 0);
    assert_eq!(h.requests("GET /api/v2/tickets/4211.json"), 0);
}

#[tokio::test]
async fn malformed_token_requests_get_a_400_in_json() {
    let (srv, h) = start(ZendeskOptions {
        max_body: 4096,
        ..oauth_opts()
    })
    .await;
    let url = format!("{}/oauth/tokens", srv.base_url());
    let http = reqwest::Client::new();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("application/json", b"{".to_vec(), 400, "invalid_request"),
        ("application/json", b"[1, 2]".to_vec(), 400, "invalid_request"),
        ("application/json", b"\"grant\"".to_vec(), 400, "invalid_request"),
        ("application/json", br#"{"grant_type": ["refresh_token"]}"#.to_vec(), 400, "invalid_request"),
        ("application/json", br#"{"client_id": "x"}"#.to_vec(), 400, "invalid_request"),
        ("application/json", br#"{"grant_type": "password"}"#.to_vec(), 400, "unsupported_grant_type"),
        ("application/json", br#"{"grant_type": 7}"#.to_vec(), 400, "unsupported_grant_type"),
        ("application/x-www-form-urlencoded", b"".to_vec(), 400, "invalid_request"),
        ("application/x-www-form-urlencoded", b"%zz=%%&grant_type=%ff%fe".to_vec(), 400, "unsupported_grant_type"),
        ("application/octet-stream", vec![0xff, 0x00, 0xfe, b'&', b'='], 400, "invalid_request"),
        ("application/json",
         format!(r#"{{"grant_type": "client_credentials", "client_id": "{CLIENT}", "client_secret": "{CLIENT_SECRET}", "expires_in": 5}}"#).into_bytes(),
         400, "invalid_request"),
        ("application/json",
         format!(r#"{{"grant_type": "client_credentials", "client_id": "{CLIENT}", "client_secret": "{CLIENT_SECRET}", "expires_in": "soon"}}"#).into_bytes(),
         400, "invalid_request"),
        ("application/json", br#"{"grant_type": "refresh_token", "client_id": "nobody"}"#.to_vec(), 401, "invalid_client"),
    ];
    for (ct, body, want, error) in cases {
        let r = http
            .post(&url)
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .expect("answer");
        let status = r.status().as_u16();
        let v: Value = r.json().await.expect("always JSON");
        assert_eq!(
            (status, v["error"].as_str()),
            (want, Some(error)),
            "{} -> {v}",
            String::from_utf8_lossy(&body)
        );
    }
    let r = http
        .post(&url)
        .body(vec![b'a'; 10_000])
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = http.get(&url).send().await.expect("answer");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.json::<Value>().await.is_ok());
    assert_eq!(h.token_grants(), 0);
}

// ---------------------------------------------------------------- webhooks

type Received = mpsc::UnboundedSender<(HeaderMap, Bytes)>;

/// A receiver that fails its first `fail_first` deliveries with 500.
async fn receiver(fail_first: u32) -> (Running, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let failures = Arc::new(AtomicU32::new(fail_first));
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |axum::extract::State(tx): axum::extract::State<Received>,
                      headers: HeaderMap,
                      body: Bytes| {
                    let failures = failures.clone();
                    async move {
                        if failures
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok()
                        {
                            return StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        let _ = tx.send((headers, body));
                        StatusCode::OK
                    }
                },
            ),
        )
        .with_state(tx);
    (l3map::emulator::serve(app, 0).await.expect("bind"), rx)
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let (Some(sig), Some(ts)) = (
        headers
            .get("x-zendesk-webhook-signature")
            .and_then(|v| v.to_str().ok()),
        headers
            .get("x-zendesk-webhook-signature-timestamp")
            .and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(ts.as_bytes());
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) -> (HeaderMap, Value) {
    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("delivered within 5 s")
        .expect("receiver open");
    assert!(verify("whsec-test", &headers, &body), "signature verifies");
    assert!(!verify("wrong-secret", &headers, &body));
    (
        headers,
        serde_json::from_slice(&body).expect("JSON payload"),
    )
}

#[tokio::test]
async fn ticket_changes_are_delivered_signed_and_retried() {
    let (hook, mut rx) = receiver(1).await;
    let mut target = WebhookTarget::new(
        format!("{}/hook", hook.base_url()),
        Secret::new("whsec-test"),
    );
    target.backoff = Duration::from_millis(20);
    let (srv, h) = start(ZendeskOptions {
        webhook: Some(target),
        ..opts(vec![rw("tok-hook")])
    })
    .await;
    let zd = client_for(&srv.base_url(), "tok-hook", 6000);
    let t = zd
        .create_ticket(
            &TicketChanges::default().public_comment("Card declined abroad"),
            None,
        )
        .await
        .expect("create");
    let (_, created) = next_event(&mut rx).await;
    assert_eq!(created["type"], "zen:event-type:ticket.created");
    assert_eq!(created["detail"]["id"], t.id.to_string());
    assert_eq!(created["detail"]["status"], "NEW");

    zd.update_ticket(
        t.id,
        &TicketChanges::default()
            .status("open", None)
            .private_comment("looking"),
    )
    .await
    .expect("update");
    let (_, first) = next_event(&mut rx).await;
    let (_, second) = next_event(&mut rx).await;
    assert_eq!(first["type"], "zen:event-type:ticket.comment_added");
    assert_eq!(first["event"]["comment"]["is_public"], false);
    assert_eq!(second["type"], "zen:event-type:ticket.status_changed");
    assert_eq!(second["event"]["current"], "OPEN");

    // The payloads are what the webhook converter reads.
    let statuses = l3map::eval::convert::StatusIndex::default();
    for v in [&created, &first, &second] {
        assert!(
            l3map::eval::convert::zendesk::from_webhook(v, &statuses).is_ok(),
            "{v}"
        );
    }
    let deliveries = h.deliveries();
    assert_eq!(
        deliveries.first().map(|d| d.attempts),
        Some(2),
        "{deliveries:?}"
    );
}

// ---------------------------------------------------------------- secrets

#[tokio::test]
async fn tokens_never_appear_in_errors_or_debug_output() {
    let secret = "zd-SECRET-oauth-4f9a8b7c6d5e";
    let (srv, _h) = start(opts(vec![TokenGrant::new(secret, &["read"])])).await;
    let mut shown = Vec::new();
    for creds in [
        Credentials::OAuth(Secret::new(secret)),
        Credentials::ApiToken {
            email: "ops@example.com".into(),
            token: Secret::new(secret),
        },
        Credentials::OAuth(Secret::new(format!("{secret}-wrong"))),
    ] {
        let zd = ZendeskClient::with_limiters(
            config(&srv.base_url(), creds.clone(), 6000),
            &Limiters::default(),
        )
        .expect("client");
        shown.push(format!("{zd:?} {creds:?}"));
        for e in [
            zd.get_ticket(1).await.err(),
            zd.update_ticket(4211, &TicketChanges::default().private_comment("x"))
                .await
                .err(),
        ]
        .into_iter()
        .flatten()
        {
            shown.push(format!("{e} {e:?}"));
        }
    }
    // A dead host: the transport error carries no URL or header.
    let mut cfg = config(
        "http://127.0.0.1:9",
        Credentials::OAuth(Secret::new(secret)),
        6000,
    );
    cfg.retry.max_attempts = 2;
    let zd = ZendeskClient::with_limiters(cfg, &Limiters::default()).expect("client");
    let e = zd.get_ticket(1).await.unwrap_err();
    assert!(matches!(e, ApiError::GaveUp { .. }), "{e:?}");
    shown.push(format!("{e} {e:?}"));
    assert!(shown.len() >= 8);
    for s in shown {
        assert!(!s.contains("SECRET"), "{s}");
    }
}
