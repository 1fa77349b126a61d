//! The Salesforce connector against the Salesforce emulator, over real
//! HTTP on 127.0.0.1: every operation, session refresh, errors, limits,
//! paging, batching, the cache, concurrency, and the SOQL parser.

use crate::common;

use l3map::connectors::jwt_bearer::JwtBearer;
use l3map::connectors::retry::RetryPolicy;
use l3map::connectors::salesforce::{
    RecordUpdate, SalesforceAuth, SalesforceClient, SalesforceConfig,
};
use l3map::connectors::{ApiError, Secret};
use l3map::emulator::faults::Faults;
use l3map::emulator::salesforce::{soql, Handle, JwtApp, SalesforceEmulator, SalesforceOptions};
use l3map::emulator::Running;
use serde_json::{json, Map, Value as Json};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "client-secret-7f3a9c";
const REFRESH: &str = "refresh-token-5be21d";

fn options() -> SalesforceOptions {
    SalesforceOptions {
        client_id: "app-1".into(),
        client_secret: SECRET.into(),
        refresh_token: REFRESH.into(),
        ..SalesforceOptions::default()
    }
}

async fn start(opts: SalesforceOptions) -> (Running, Handle) {
    SalesforceEmulator::new(opts)
        .start(0)
        .await
        .expect("the emulator starts")
}

/// Fast retries: tests wait milliseconds, not the production seconds.
fn config(run: &Running) -> SalesforceConfig {
    let mut c = SalesforceConfig::new(
        run.base_url(),
        "app-1",
        Secret::new(SECRET),
        Secret::new(REFRESH),
    );
    c.retry = RetryPolicy {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        max_total: Duration::from_secs(2),
        max_attempts: 5,
        ..RetryPolicy::default()
    };
    c
}

fn client(run: &Running) -> SalesforceClient {
    SalesforceClient::new(config(run)).expect("a client")
}

fn fields(v: Json) -> Map<String, Json> {
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

fn first_id(h: &Handle, object: &str) -> String {
    h.records(object)[0]["Id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_record_operation() {
    let (run, h) = start(options()).await;
    let sf = client(&run);
    let case_id = first_id(&h, "Case");

    let case = sf.get("Case", &case_id, None).await.unwrap();
    assert_eq!(case["Id"], json!(case_id));
    assert_eq!(case["attributes"]["type"], json!("Case"));
    let some = sf
        .get("Case", &case_id, Some(&["Status", "CaseNumber"]))
        .await
        .unwrap();
    assert!(some.contains_key("CaseNumber") && !some.contains_key("Subject"));

    let before = h.record("Case", &case_id).unwrap()["SystemModstamp"].clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    sf.update("Case", &case_id, &fields(json!({"Priority": "High"})))
        .await
        .unwrap();
    sf.set_case_status(&case_id, "Escalated").await.unwrap();
    let after = h.record("Case", &case_id).unwrap();
    assert_eq!(after["Priority"], json!("High"));
    assert_eq!(after["Status"], json!("Escalated"));
    assert_ne!(after["SystemModstamp"], before, "writes stamp the record");

    let account = first_id(&h, "Account");
    let contact = sf
        .create(
            "Contact",
            &fields(json!({"LastName": "Ito", "AccountId": account})),
        )
        .await
        .unwrap();
    assert_eq!(contact.len(), 18);
    assert_eq!(
        h.record("Contact", &contact).unwrap()["LastName"],
        json!("Ito")
    );

    let comment = sf
        .create_case_comment(&case_id, "AI hand-off: refund above $200")
        .await
        .unwrap();
    let stored = h.record("CaseComment", &comment).unwrap();
    assert_eq!(stored["IsPublished"], json!(false));
    assert_eq!(stored["ParentId"], json!(case_id));

    let usage = sf.api_usage().expect("Sforce-Limit-Info was read");
    assert!(usage.used >= 6 && usage.limit == 100_000, "{usage:?}");
}

#[tokio::test]
async fn describe_is_cached_and_carries_picklists() {
    let (run, h) = start(options()).await;
    let sf = client(&run);
    let d = sf.describe("Case").await.unwrap();
    let status = d.field("Status").unwrap();
    assert_eq!(status.ty, "picklist");
    assert!(status.updateable);
    assert!(status
        .picklist_values
        .iter()
        .any(|p| p.value == "Working" && p.active));
    assert!(!d.field("CaseNumber").unwrap().updateable);
    sf.describe("Case").await.unwrap();
    assert_eq!(h.count("GET", "/describe"), 1);
}

fn saas_program() -> l3map::ir::Program {
    let p = l3map::project::load(&[std::path::PathBuf::from("mappings/saas")])
        .expect("loads")
        .remove(0);
    let checked = l3map::compile::check(&p.sources, None);
    l3map::compile::lower(&checked, &p.sources).expect("compiles")
}

#[tokio::test]
async fn the_schema_comes_from_the_mappings() {
    let opts = options().with_program(&saas_program());
    let (run, h) = start(opts).await;
    let sf = client(&run);
    let d = sf.describe("Case").await.unwrap();
    let labels: Vec<&str> = d
        .field("Status")
        .unwrap()
        .picklist_values
        .iter()
        .map(|p| p.value.as_str())
        .collect();
    assert!(labels.contains(&"Waiting on Customer"), "{labels:?}");
    let tiers = sf.describe("Account").await.unwrap();
    let tiers = &tiers.field("SLA_Tier__c").unwrap().picklist_values;
    assert!(tiers.iter().any(|p| p.value == "Gold"), "{tiers:?}");
    let case_id = first_id(&h, "Case");
    sf.set_case_status(&case_id, "Waiting on Customer")
        .await
        .unwrap();
    let err = sf.set_case_status(&case_id, "Pending").await.unwrap_err();
    match err {
        ApiError::Validation {
            status,
            fields,
            message,
            ..
        } => {
            assert_eq!(status, 400);
            assert_eq!(fields, vec!["Status"]);
            assert!(
                message.contains("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn errors_name_the_fields_and_codes() {
    let (run, h) = start(options()).await;
    let sf = client(&run);
    let case_id = first_id(&h, "Case");

    let unknown = sf
        .update("Case", &case_id, &fields(json!({"Foo__c": 1})))
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, ApiError::Validation { fields, message, .. }
            if fields == &["Foo__c"] && message.starts_with("INVALID_FIELD:")),
        "{unknown:?}"
    );
    assert!(unknown.to_string().contains("Foo__c"));

    let read_only = sf
        .update("Case", &case_id, &fields(json!({"CaseNumber": "1"})))
        .await
        .unwrap_err();
    assert!(
        matches!(&read_only, ApiError::Validation { fields, message, .. }
            if fields == &["CaseNumber"] && message.contains("INVALID_FIELD_FOR_INSERT_UPDATE")),
        "{read_only:?}"
    );

    let missing = l3map::emulator::salesforce::ids::make("500", 999_999);
    let nf = sf.get("Case", &missing, None).await.unwrap_err();
    assert!(matches!(nf, ApiError::NotFound { .. }), "{nf:?}");
    let nf = sf.get("NoSuchObject", &missing, None).await.unwrap_err();
    assert!(matches!(nf, ApiError::NotFound { .. }), "{nf:?}");

    let bad = sf.query("SELECT Id FROM Case WHERE").await.unwrap_err();
    assert!(
        matches!(&bad, ApiError::Validation { status: 400, message, .. } if message.starts_with("MALFORMED_QUERY")),
        "{bad:?}"
    );
    let bad = sf.query("SELECT Nope FROM Case").await.unwrap_err();
    assert!(matches!(&bad, ApiError::Validation { fields, .. } if fields == &["Nope"]));
    let bad = sf.query("SELECT Id FROM Nope").await.unwrap_err();
    assert!(bad.to_string().contains("INVALID_TYPE"), "{bad}");
    let bad = sf
        .query("SELECT Id FROM Case WHERE SystemModstamp > '2026-01-01'")
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("type datetime"), "{bad}");
    // A path-changing Id never leaves the client.
    assert!(matches!(
        sf.get("Case", "../../x", None).await,
        Err(ApiError::Validation { .. })
    ));
}

/// An integration user without "API Enabled": signing in works, every
/// data request is a 403 that the client types as a permission problem
/// with Salesforce's own code and message, and does not retry.
#[tokio::test]
async fn a_user_without_api_access_gets_a_permission_error() {
    let (run, h) = start(SalesforceOptions {
        api_disabled: true,
        ..options()
    })
    .await;
    let sf = client(&run);
    let err = sf.get("Case", "500000000000001", None).await.unwrap_err();
    match &err {
        ApiError::Permission { message, .. } => {
            assert!(message.starts_with("API_DISABLED_FOR_ORG"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(h.requests().values().sum::<u32>(), 2, "{:?}", h.requests());
}

#[tokio::test]
async fn the_daily_limit_answers_request_limit_exceeded() {
    let opts = SalesforceOptions {
        api_limit: 3,
        ..options()
    };
    let (run, h) = start(opts).await;
    let sf = client(&run);
    let id = first_id(&h, "Account");
    for _ in 0..3 {
        sf.get("Account", &id, None).await.unwrap();
    }
    assert_eq!(sf.api_usage().map(|u| u.remaining()), Some(0));
    // The raw answer, as Salesforce sends it.
    let token = raw_token(&run).await;
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/services/data/v60.0/sobjects/Account/{id}",
            run.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["sforce-limit-info"], "api-usage=3/3");
    let body: Json = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED", "fields": []}])
    );
    // The client: the daily quota is exhausted, which no retry within
    // minutes can fix, so it answers at once with Salesforce's message.
    let fresh = SalesforceClient::new(config(&run)).unwrap();
    match fresh.get("Account", &id, None).await.unwrap_err() {
        ApiError::QuotaExhausted { message, .. } => {
            assert!(message.contains("TotalRequests"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

async fn raw_token(run: &Running) -> String {
    let resp: Json = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", run.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "app-1"),
            ("client_secret", SECRET),
            ("refresh_token", REFRESH),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["token_type"], json!("Bearer"));
    assert!(resp["issued_at"].is_string() && resp["signature"].is_string());
    assert_eq!(resp["instance_url"], json!(run.base_url()));
    resp["access_token"].as_str().unwrap().to_string()
}

/// `n` reads of one Case at once, every one of which must succeed.
async fn concurrent_gets(sf: &SalesforceClient, id: &str, n: usize) {
    let calls = (0..n)
        .map(|_| {
            let (sf, id) = (sf.clone(), id.to_string());
            tokio::spawn(async move { sf.get("Case", &id, None).await })
        })
        .collect::<Vec<_>>();
    for c in calls {
        c.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn an_expired_session_is_refreshed_once() {
    let (run, h) = start(options()).await;
    let sf = client(&run);
    let id = first_id(&h, "Case");
    sf.get("Case", &id, None).await.unwrap();
    assert_eq!(h.token_grants(), 1);
    h.expire_tokens();
    sf.get("Case", &id, None).await.unwrap();
    assert_eq!(h.token_grants(), 2);

    h.expire_tokens();
    concurrent_gets(&sf, &id, 20).await;
    assert_eq!(h.token_grants(), 3, "20 concurrent 401s, one refresh");
}

#[tokio::test]
async fn a_refused_refresh_token_is_an_auth_error_without_secrets() {
    let (run, h) = start(options()).await;
    let mut cfg = config(&run);
    cfg.auth = SalesforceAuth::RefreshToken {
        client_secret: Secret::new(SECRET),
        refresh_token: Secret::new("wrong-refresh-0000"),
    };
    let sf = SalesforceClient::new(cfg).unwrap();
    let err = sf
        .get("Case", &first_id(&h, "Case"), None)
        .await
        .unwrap_err();
    // A refused refresh token is a refused grant (it needs a login), not
    // an authentication error of the request.
    assert!(
        matches!(&err, ApiError::GrantRevoked { message, .. } if message.starts_with("invalid_grant")),
        "{err:?}"
    );
    let shown = format!("{err} {err:?} {sf:?}");
    for secret in [SECRET, REFRESH, "wrong-refresh-0000"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let raw = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", run.base_url()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "app-1"),
            ("client_secret", SECRET),
            ("refresh_token", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Json = raw.json().await.unwrap();
    assert_eq!(body["error"], json!("invalid_grant"));
}

#[tokio::test]
async fn queries_follow_next_records_url_through_every_page() {
    let opts = SalesforceOptions {
        query_batch_size: 2,
        ..options()
    };
    let (run, h) = start(opts).await;
    for i in 0..4 {
        h.insert(
            "Case",
            fields(json!({"Subject": format!("Extra {i}"), "Status": "Working"})),
        )
        .unwrap();
    }
    let sf = client(&run);
    let all = sf
        .query("SELECT Id, Subject, SystemModstamp FROM Case ORDER BY Subject DESC")
        .await
        .unwrap();
    assert_eq!(all.total_size, 7);
    assert_eq!(all.records.len(), 7);
    assert_eq!(all.records[0]["Subject"], json!("Seeded case 3"));
    assert_eq!(h.count("GET", "/query/"), 3, "pages 2, 3 and 4");

    let some = sf
        .query(
            "SELECT Id, Status, Account.SLA_Tier__c, Account.Name FROM Case \
             WHERE Status IN ('working', 'New') AND SystemModstamp > 2020-01-01T00:00:00Z LIMIT 5",
        )
        .await
        .unwrap();
    assert_eq!(some.records.len(), 5);
    let with_account = some
        .records
        .iter()
        .find(|r| r["Account"].is_object())
        .expect("a seeded case has an account");
    assert_eq!(
        with_account["Account"]["attributes"]["type"],
        json!("Account")
    );
    assert!(with_account["Account"]["Name"].is_string());
    let none = sf
        .query("SELECT Id FROM Case WHERE SystemModstamp > 2999-01-01T00:00:00.000+0000")
        .await
        .unwrap();
    assert_eq!(none.total_size, 0);

    // What the event converter reads: a query result becomes events.
    let page = json!({"totalSize": 1, "done": true, "records": [all.records[0].clone()]});
    let events = l3map::eval::convert::salesforce::from_records(&page, &Default::default())
        .expect("the converter reads emulator records");
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn batches_are_chunked_at_two_hundred() {
    let (run, h) = start(options()).await;
    let ids: Vec<String> = (0..450)
        .map(|i| {
            h.insert("Case", fields(json!({"Subject": format!("Bulk {i}")})))
                .unwrap()
        })
        .collect();
    let sf = client(&run);
    let updates: Vec<RecordUpdate> = ids
        .iter()
        .map(|id| RecordUpdate {
            object: "Case".into(),
            id: id.clone(),
            fields: fields(json!({"Priority": "Low"})),
        })
        .collect();
    let results = sf.update_many(&updates, false).await.unwrap();
    assert_eq!(results.len(), 450);
    assert!(results.iter().all(|r| r.success));
    assert_eq!(h.count("PATCH", "/composite/sobjects"), 3);
    assert_eq!(
        h.record("Case", &ids[449]).unwrap()["Priority"],
        json!("Low")
    );

    // All or none: one bad record rolls the others back.
    let mut mixed = updates[..3].to_vec();
    for u in &mut mixed {
        u.fields = fields(json!({"Priority": "High"}));
    }
    mixed[1].fields = fields(json!({"Priority": "Urgent"}));
    let results = sf.update_many(&mixed, true).await.unwrap();
    assert!(results.iter().all(|r| !r.success));
    assert_eq!(results[1].errors[0].fields, vec!["Priority"]);
    assert_eq!(
        results[0].errors[0].status_code,
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(h.record("Case", &ids[0]).unwrap()["Priority"], json!("Low"));
    // Without it, the good ones are applied.
    let results = sf.update_many(&mixed, false).await.unwrap();
    assert_eq!(results.iter().filter(|r| r.success).count(), 2);
    assert_eq!(
        h.record("Case", &ids[0]).unwrap()["Priority"],
        json!("High")
    );
}

#[tokio::test]
async fn account_lookups_are_cached_and_coalesced() {
    let (run, h) = start(options()).await;
    let mut cfg = config(&run);
    cfg.cache_ttl = Duration::from_millis(300);
    let sf = SalesforceClient::new(cfg).unwrap();
    let id = first_id(&h, "Account");
    let lookups = (0..50)
        .map(|_| {
            let (sf, id) = (sf.clone(), id.clone());
            tokio::spawn(async move { sf.account(&id).await })
        })
        .collect::<Vec<_>>();
    for l in lookups {
        let acct = l.await.unwrap().unwrap();
        assert!(acct.contains_key("SLA_Tier__c"));
    }
    assert_eq!(h.count("GET", "/sobjects/Account/"), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    sf.account(&id).await.unwrap();
    assert_eq!(h.count("GET", "/sobjects/Account/"), 2);
}

#[tokio::test]
async fn fifty_clients_at_once() {
    let (run, h) = start(options()).await;
    let id = first_id(&h, "Case");
    let tasks = (0..50)
        .map(|_| {
            let sf = client(&run);
            let id = id.clone();
            tokio::spawn(async move { sf.get("Case", &id, None).await.map(|_| ()) })
        })
        .collect::<Vec<_>>();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(h.token_grants(), 50);
    assert_eq!(h.count("GET", "/sobjects/Case/"), 50);
}

#[tokio::test]
async fn concurrency_is_capped_per_connected_app() {
    let faults = Arc::new(Faults {
        latency: Duration::from_millis(30),
        ..Faults::default()
    });
    let opts = SalesforceOptions {
        faults,
        ..options()
    };
    let (run, h) = start(opts).await;
    let mut cfg = config(&run);
    cfg.max_concurrent = 3;
    // Two clients of one connected app (two runtimes' worth of callers in
    // one process, built with the process's one registry) share the
    // app's cap.
    let limiters = l3map::connectors::limit::Limiters::default();
    let sf = SalesforceClient::with_limiters(cfg.clone(), &limiters).unwrap();
    let other = SalesforceClient::with_limiters(cfg, &limiters).unwrap();
    let id = first_id(&h, "Case");
    sf.get("Case", &id, None).await.unwrap();
    other.get("Case", &id, None).await.unwrap();
    h.reset_counts();
    let calls = (0..20)
        .map(|i| {
            let sf = if i % 2 == 0 {
                sf.clone()
            } else {
                other.clone()
            };
            let id = id.clone();
            tokio::spawn(async move { sf.get("Case", &id, None).await })
        })
        .collect::<Vec<_>>();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert!(h.peak_concurrency() <= 3, "{}", h.peak_concurrency());
    assert!(
        h.peak_concurrency() >= 2,
        "{} {:?}",
        h.peak_concurrency(),
        h.requests()
    );
}

#[tokio::test]
async fn injected_5xx_are_retried() {
    let (run, h) = start(options()).await;
    let sf = client(&run);
    let id = first_id(&h, "Case");
    sf.get("Case", &id, None).await.unwrap();
    h.faults().burst_5xx.store(2, Ordering::SeqCst);
    sf.get("Case", &id, None).await.unwrap();
    assert_eq!(h.faults().injected.load(Ordering::SeqCst), 2);
}

/// The emulator creates the CaseComment and loses the answer: the client
/// reports that it cannot know, and does not create a second one. A PATCH
/// lands the same every time, so it is retried.
#[tokio::test]
async fn a_lost_answer_never_creates_twice() {
    let (run, h) = start(options()).await;
    let sf = client(&run);
    let id = first_id(&h, "Case");
    sf.get("Case", &id, None).await.unwrap();
    let before = h.records("CaseComment").len();
    h.faults().lose_answers.store(1, Ordering::SeqCst);
    let err = sf
        .create_case_comment(&id, "AI hand-off: refund above threshold")
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unconfirmed { .. }), "{err:?}");
    assert_eq!(h.records("CaseComment").len(), before + 1);

    h.faults().lose_answers.store(1, Ordering::SeqCst);
    sf.set_case_status(&id, "Escalated").await.expect("retried");
    let case = sf.get("Case", &id, Some(&["Status"])).await.unwrap();
    assert_eq!(case["Status"], json!("Escalated"));
}

#[tokio::test]
async fn raw_answers_have_salesforce_shapes() {
    let opts = SalesforceOptions {
        max_body_bytes: 1024,
        ..options()
    };
    let (run, h) = start(opts).await;
    let token = raw_token(&run).await;
    let http = reqwest::Client::new();
    let base = format!("{}/services/data/v58.0", run.base_url());
    let case_id = first_id(&h, "Case");

    let resp = http
        .patch(format!("{base}/sobjects/Case/{case_id}"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"Status\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers()["sforce-limit-info"]
        .to_str()
        .unwrap()
        .starts_with("api-usage="));
    let body: Json = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], json!("JSON_PARSER_ERROR"));

    let resp = http
        .patch(format!("{base}/sobjects/Case/{case_id}"))
        .bearer_auth(&token)
        .body(format!("{{\"Subject\": \"{}\"}}", "x".repeat(4096)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    let resp = http
        .patch(format!("{base}/sobjects/Case/{case_id}"))
        .bearer_auth(&token)
        .json(&json!({"Subject": "ok"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let resp = http
        .get(format!("{base}/sobjects/Case/"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Json = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], json!("INVALID_SESSION_ID"));
    assert_eq!(body[0]["message"], json!("Session expired or invalid"));

    let resp = http
        .get(format!("{base}/sobjects/Case/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: Json = resp.json().await.unwrap();
    assert_eq!(body["objectDescribe"]["keyPrefix"], json!("500"));

    let resp = http
        .post(format!("{base}/composite/sobjects"))
        .bearer_auth(&token)
        .json(&json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Account"}, "Name": "New Co"},
            {"attributes": {"type": "Account"}},
        ]}))
        .send()
        .await
        .unwrap();
    let body: Json = resp.json().await.unwrap();
    assert_eq!(body[0]["success"], json!(true));
    assert_eq!(
        body[1]["errors"][0]["statusCode"],
        json!("REQUIRED_FIELD_MISSING")
    );

    // Hostile queries are answered, never crash the server.
    for q in [
        "",
        "SELECT",
        "SELECT Id FROM Case WHERE Id = '\\",
        "SELECT ((((",
        "\u{0}\u{ffff}",
    ] {
        let resp = http
            .get(format!("{base}/query"))
            .query(&[("q", q)])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{q:?}");
    }
    let resp = http
        .get(format!("{base}/query/01gnope-2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

// ---------------------------------------------------------------- SOQL

#[test]
fn soql_parses_the_supported_grammar() {
    let q = soql::parse(
        "select Id, Account.SLA_Tier__c FROM Case WHERE Status = 'Working' AND Amount >= -1.5 \
         AND SystemModstamp > 2026-11-11T10:00:00Z AND Type IN ('a', 'b\\'c') \
         AND Renewal_Date__c < 2027-01-01 AND IsClosed = false ORDER BY CreatedDate DESC LIMIT 10",
    )
    .unwrap();
    assert_eq!(q.fields, vec!["Id", "Account.SLA_Tier__c"]);
    assert_eq!(q.object, "Case");
    assert_eq!(q.conds.len(), 6);
    assert_eq!(q.order, Some(("CreatedDate".into(), true)));
    assert_eq!(q.limit, Some(10));
    match &q.conds[3] {
        soql::Cond::In { values, .. } => {
            assert_eq!(values[1], soql::Literal::Str("b'c".into()))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn soql_refuses_what_it_does_not_support() {
    for q in [
        "",
        "SELECT",
        "SELECT FROM Case",
        "SELECT Id, FROM Case",
        "SELECT Id FROM",
        "SELECT Id FROM Case WHERE",
        "SELECT Id FROM Case WHERE Status = 'x' OR Status = 'y'",
        "SELECT Id FROM Case WHERE Status = 'unterminated",
        "SELECT Id FROM Case WHERE Status == 'x'",
        "SELECT Id FROM Case LIMIT -1",
        "SELECT Id FROM Case LIMIT 1.5",
        "SELECT Id FROM Case WHERE X > 2026-13-45T99:00:00Z",
        "SELECT Id FROM Case WHERE X IN ()",
        "SELECT Id FROM Case WHERE X IN ('a' 'b')",
        "SELECT Id FROM Case trailing",
        "SELECT a..b FROM Case",
        "SELECT Id FROM Case WHERE X = 1e999",
        "SELECT Id FROM Case WHERE X = '\\q'",
        "DELETE FROM Case",
        "SELECT Id FROM Case; DROP TABLE x",
    ] {
        assert!(soql::parse(q).is_err(), "{q:?} should be refused");
    }
}

#[test]
fn soql_never_panics_on_hostile_input() {
    let long = format!("SELECT {} FROM Case", vec!["Id"; 30_000].join(","));
    let mut inputs = vec![
        "(".repeat(100_000),
        "'".repeat(10_001),
        "SELECT Id FROM Case WHERE X IN (".to_string() + &"'a',".repeat(20_000),
        long,
        "x".repeat(soql::MAX_LEN + 1),
        "SELECT Id FROM Case WHERE X = -".into(),
        "SELECT Id FROM Case WHERE X = 2026-".into(),
        "SELECT Id FROM Case WHERE X = '\u{1F600}\\".into(),
        "SELECT \u{00e9}t\u{00e9} FROM Case".into(),
        "SELECT Id FROM Case LIMIT 99999999999999999999999".into(),
    ];
    // A small deterministic generator: every byte pattern a fuzzer would
    // start with, without a fuzzing dependency.
    let alphabet: Vec<char> = "SELCTFROMWHEANDINRBYLIMT ,()'=<>!-.:0123456789Z\\\u{e9}"
        .chars()
        .collect();
    let mut seed: u64 = 0x5eed;
    for _ in 0..2000 {
        let len = (seed % 60) as usize;
        let s: String = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                alphabet[(seed >> 33) as usize % alphabet.len()]
            })
            .collect();
        inputs.push(format!("SELECT Id FROM Case WHERE {s}"));
        inputs.push(s);
    }
    for i in &inputs {
        let _ = soql::parse(i);
    }
}

#[test]
fn secrets_never_print() {
    let cfg = SalesforceConfig::new(
        "http://127.0.0.1:1",
        "app-1",
        Secret::new(SECRET),
        Secret::new(REFRESH),
    );
    let sf = SalesforceClient::new(cfg.clone()).unwrap();
    let shown = format!("{cfg:?} {sf:?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains(REFRESH),
        "{shown}"
    );
}

// ------------------------------------------------------------ JWT bearer

const JWT_USER: &str = "integration@acme.com";

/// An RSA key pair as PEM: the private key PKCS#8 and PKCS#1, the public
/// key SPKI.
struct KeyPair {
    pkcs8: String,
    pkcs1: String,
    public: String,
}

/// Two key pairs, generated once per test binary (2048-bit generation is
/// slow in the dev profile): the app's, and one the app does not know.
/// Never committed: a private key in the repository is a leaked key.
fn keys() -> &'static (KeyPair, KeyPair) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    static KEYS: std::sync::OnceLock<(KeyPair, KeyPair)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let pair = || {
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
            KeyPair {
                pkcs8: key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
                pkcs1: key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string(),
                public: key
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap(),
            }
        };
        (pair(), pair())
    })
}

fn jwt_options() -> SalesforceOptions {
    SalesforceOptions {
        jwt: Some(JwtApp {
            public_key_pem: keys().0.public.clone(),
            username: JWT_USER.into(),
        }),
        ..options()
    }
}

fn jwt_config(run: &Running, private_key: &str) -> SalesforceConfig {
    let mut c =
        SalesforceConfig::jwt_bearer(run.base_url(), "app-1", JWT_USER, Secret::new(private_key));
    c.retry = config(run).retry;
    c
}

fn jwt_of(cfg: &mut SalesforceConfig) -> &mut JwtBearer {
    match &mut cfg.auth {
        SalesforceAuth::JwtBearer(j) => j,
        _ => panic!("not a JWT-bearer config"),
    }
}

/// Lines of a PEM's base64 body: any of them in an error, a Debug or a
/// log is key material leaking.
fn key_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[tokio::test]
async fn a_jwt_client_does_record_operations() {
    let (run, h) = start(jwt_options()).await;
    let sf = SalesforceClient::new(jwt_config(&run, &keys().0.pkcs8)).unwrap();
    let case_id = first_id(&h, "Case");
    let case = sf.get("Case", &case_id, None).await.unwrap();
    assert_eq!(case["Id"], json!(case_id));
    sf.set_case_status(&case_id, "Escalated").await.unwrap();
    assert_eq!(
        h.record("Case", &case_id).unwrap()["Status"],
        json!("Escalated")
    );
    let comment = sf
        .create_case_comment(&case_id, "AI hand-off over JWT")
        .await
        .unwrap();
    assert_eq!(
        h.record("CaseComment", &comment).unwrap()["ParentId"],
        json!(case_id)
    );
    let q = sf
        .query(&format!(
            "SELECT Id, Status FROM Case WHERE Id = '{case_id}'"
        ))
        .await
        .unwrap();
    assert_eq!(q.total_size, 1);
    assert_eq!(h.token_grants(), 1, "one sign-in for every call");

    // `openssl genrsa` writes PKCS#1 (BEGIN RSA PRIVATE KEY): it signs too.
    let pkcs1 = SalesforceClient::new(jwt_config(&run, &keys().0.pkcs1)).unwrap();
    pkcs1.get("Case", &case_id, None).await.unwrap();
    assert_eq!(h.token_grants(), 2);
}

#[tokio::test]
async fn an_expired_jwt_session_mints_one_new_assertion() {
    let (run, h) = start(jwt_options()).await;
    let sf = SalesforceClient::new(jwt_config(&run, &keys().0.pkcs8)).unwrap();
    let id = first_id(&h, "Case");
    sf.get("Case", &id, None).await.unwrap();
    assert_eq!(h.token_grants(), 1);

    h.expire_tokens();
    concurrent_gets(&sf, &id, 20).await;
    assert_eq!(h.token_grants(), 2, "20 concurrent 401s, one new assertion");
    assert_eq!(h.count("POST", "/services/oauth2/token"), 2);
}

#[tokio::test]
async fn jwt_refusals_are_auth_errors_without_key_material() {
    let (run, h) = start(jwt_options()).await;
    let (app, stranger) = keys();
    let case_id = first_id(&h, "Case");
    let mut wrong_audience = jwt_config(&run, &app.pkcs8);
    jwt_of(&mut wrong_audience).audience = "https://evil.example.com".into();
    let mut unknown_user = jwt_config(&run, &app.pkcs8);
    jwt_of(&mut unknown_user).username = "someone-else@acme.com".into();
    let mut expired = jwt_config(&run, &app.pkcs8);
    jwt_of(&mut expired).lifetime = Duration::ZERO;
    let mut too_long = jwt_config(&run, &app.pkcs8);
    jwt_of(&mut too_long).lifetime = Duration::from_secs(3600);
    let mut wrong_app = jwt_config(&run, &app.pkcs8);
    wrong_app.client_id = "app-2".into();
    let cases = [
        (
            "wrong key",
            jwt_config(&run, &stranger.pkcs8),
            "invalid_grant: invalid assertion",
        ),
        (
            "wrong audience",
            wrong_audience,
            "invalid_grant: audience is invalid",
        ),
        (
            "unknown user",
            unknown_user,
            "invalid_grant: user hasn't approved this consumer",
        ),
        (
            "expired",
            expired,
            "invalid_grant: expired authorization code",
        ),
        (
            "exp too far ahead",
            too_long,
            "invalid_grant: invalid assertion",
        ),
        (
            "unknown app",
            wrong_app,
            "invalid_client_id: client identifier invalid",
        ),
    ];
    for (what, cfg, want) in cases {
        let sf = SalesforceClient::new(cfg.clone()).unwrap();
        let err = sf.get("Case", &case_id, None).await.unwrap_err();
        assert!(
            matches!(&err, ApiError::Auth { status: 400, message, .. } if message == want),
            "{what}: {err:?}"
        );
        let shown = format!("{err} {err:?} {sf:?} {cfg:?}");
        for line in key_lines(&app.pkcs8)
            .into_iter()
            .chain(key_lines(&stranger.pkcs8))
        {
            assert!(!shown.contains(line), "{what}: key material in {shown}");
        }
    }
    assert_eq!(h.token_grants(), 0, "nothing was signed in");
}

#[tokio::test]
async fn an_unusable_private_key_fails_when_the_client_is_built() {
    let (run, _h) = start(jwt_options()).await;
    let public_as_private = keys().0.public.clone();
    let mangled = keys().0.pkcs8.replacen("MII", "MIJ", 1);
    for pem in [public_as_private.as_str(), mangled.as_str(), "not a key"] {
        let err = SalesforceClient::new(jwt_config(&run, pem)).unwrap_err();
        assert!(matches!(&err, ApiError::Auth { status: 0, .. }), "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("private key is unusable"), "{shown}");
        for line in key_lines(pem) {
            assert!(!shown.contains(line), "{shown}");
        }
    }
}

/// An assertion signed here, the way any client would.
fn assertion(key_pem: &str, iss: &str, aud: &str, sub: &str, exp_in: i64) -> String {
    let claims = json!({
        "iss": iss,
        "aud": aud,
        "sub": sub,
        "exp": jiff::Timestamp::now().as_second() + exp_in,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

async fn jwt_grant(run: &Running, assertion: &str) -> (u16, Json) {
    let resp = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", run.base_url()))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_jwt_grant_answers_like_salesforce() {
    let (run, h) = start(jwt_options()).await;
    let key = &keys().0.pkcs8;
    let login = "https://login.salesforce.com";

    let (status, body) = jwt_grant(&run, &assertion(key, "app-1", login, JWT_USER, 120)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], json!("Bearer"));
    assert_eq!(body["instance_url"], json!(run.base_url()));
    assert!(body["access_token"].is_string() && body["signature"].is_string());
    assert!(
        body.get("refresh_token").is_none(),
        "the JWT-bearer flow issues no refresh token: {body}"
    );
    let access = body["access_token"].as_str().unwrap();
    let case = reqwest::Client::new()
        .get(format!(
            "{}/services/data/v60.0/sobjects/Case/{}",
            run.base_url(),
            first_id(&h, "Case")
        ))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(case.status(), 200, "the issued token opens the API");

    // The sandbox login server and a trailing slash are audiences too.
    let sandbox = assertion(key, "app-1", "https://test.salesforce.com/", JWT_USER, 60);
    assert_eq!(jwt_grant(&run, &sandbox).await.0, 200);

    for (what, bad, error, description) in [
        (
            "no assertion",
            String::new(),
            "invalid_request",
            "assertion parameter is required",
        ),
        (
            "not a JWT",
            "a.b.c".to_string(),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            "tampered",
            {
                let good = assertion(key, "app-1", login, JWT_USER, 60);
                let forged = assertion(key, "app-1", login, "admin@acme.com", 60);
                // The forged claims under the genuine signature.
                let (g, f): (Vec<&str>, Vec<&str>) =
                    (good.split('.').collect(), forged.split('.').collect());
                format!("{}.{}.{}", g[0], f[1], g[2])
            },
            "invalid_grant",
            "invalid assertion",
        ),
        (
            "unknown app",
            assertion(key, "app-9", login, JWT_USER, 60),
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            "expired",
            assertion(key, "app-1", login, JWT_USER, -30),
            "invalid_grant",
            "expired authorization code",
        ),
    ] {
        let (status, body) = jwt_grant(&run, &bad).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], json!(error), "{what}: {body}");
        assert_eq!(
            body["error_description"],
            json!(description),
            "{what}: {body}"
        );
    }
    assert_eq!(h.token_grants(), 2);

    // The refresh-token grant still works beside it.
    raw_token(&run).await;
    assert_eq!(h.token_grants(), 3);

    // An org whose app has no certificate refuses every assertion.
    let (plain, _) = start(options()).await;
    let (status, body) = jwt_grant(&plain, &assertion(key, "app-1", login, JWT_USER, 60)).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
}

/// The connection block as `l3map run` and `l3map schema pull` read it: a
/// `username` and a `private_key file(...)` sign in with the JWT-bearer flow.
#[tokio::test]
async fn run_and_schema_pull_sign_in_with_a_jwt_connection_block() {
    use l3map::runtime::apply::Client;
    use l3map::schema::pull::{pull, Pulled};
    let (run, h) = start(jwt_options()).await;
    let tmp = common::temp_dir("salesforce-jwt-block");
    let dir = tmp.path();
    let key_path = dir.join("sf_key.pem");
    std::fs::write(&key_path, &keys().0.pkcs1).unwrap();
    let compile = |key_file: &std::path::Path| {
        let text = format!(
            r#"connection crm: salesforce {{
  instance     "{}"
  client_id    "app-1"
  username     "{JWT_USER}"
  private_key  file("{}")
  scopes       api
  objects      Case
}}
"#,
            run.base_url(),
            key_file.display()
        );
        let mut sources = l3map::syntax::SourceMap::new();
        sources.add("jwt.l3map", text);
        let checked = l3map::compile::check(&sources, None);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        l3map::compile::lower(&checked, &sources).expect("compiles")
    };
    let program = compile(&key_path);

    let clients =
        l3map::runtime::clients::from_config(&program, &Default::default()).expect("clients");
    let Some(Client::Salesforce(sf)) = clients.get("crm") else {
        panic!("no Salesforce client for crm");
    };
    sf.get("Case", &first_id(&h, "Case"), None).await.unwrap();
    assert_eq!(h.token_grants(), 1);

    let crm = &program.connections[0];
    match pull(crm).await.expect("pulls") {
        Pulled::Salesforce(s) => assert!(s.objects.contains_key("Case"), "{s:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.token_grants(), 2);

    // A key file that is not there: named, and nothing sent.
    let gone = compile(&dir.join("missing.pem"));
    let err = pull(&gone.connections[0]).await.unwrap_err();
    assert!(
        err.contains("private_key") && err.contains("missing.pem"),
        "{err}"
    );
    assert!(l3map::runtime::clients::from_config(&gone, &Default::default()).is_err());
    assert_eq!(h.token_grants(), 2);
}
