//! Issue 14, item 13: the emulators as a third-party client sees them.
//! One `l3map emulate` process (the real binary) serves every test here,
//! over HTTP on 127.0.0.1, and each test checks one documented behaviour
//! of the real API, citing the page that documents it. Nothing here knows
//! the emulator's code; the docs are the judge.
//!
//! Each test creates its own tickets (with a word of its own to search
//! for), so they can share the process and run in parallel.

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ZD_TOKEN: &str = "l3map-dev-token";

struct Emulators {
    zd: String,
    sf: String,
}

/// `l3map emulate` on free ports, started once. It runs under a shell
/// that waits on its stdin: the pipe's write end lives in this static
/// until the test process exits (however it exits), and then the shell
/// stops the emulator, so none outlives the tests. (Nothing waits for the
/// shell: it ends after this process, and init reaps it.)
#[allow(clippy::zombie_processes)]
fn emulators() -> &'static Emulators {
    static E: OnceLock<(Emulators, std::process::ChildStdin)> = OnceLock::new();
    &E.get_or_init(|| {
        let mut child = Command::new("sh")
            .args([
                "-c",
                r#""$0" emulate --zendesk-port 0 --salesforce-port 0 & pid=$!; read _; kill $pid"#,
                env!("CARGO_BIN_EXE_l3map"),
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("l3map emulate starts");
        let (zd, sf, _) = crate::common::emulator_urls(&mut child);
        (Emulators { zd, sf }, child.stdin.take().expect("stdin"))
    })
    .0
}

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a client")
}

/// A request to the Zendesk emulator with the development token.
async fn zd(method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", emulators().zd)
    };
    let mut req = client().request(method, url).bearer_auth(ZD_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("the emulator answers")
}

async fn zd_get(path: &str) -> (StatusCode, Value) {
    let r = zd(reqwest::Method::GET, path, None).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A word no other test uses, to find this test's tickets by.
fn word(tag: &str) -> String {
    format!("{tag}{}", std::process::id())
}

/// Creates a ticket; its JSON (`ticket`) and the whole answer.
async fn create(ticket: Value) -> (Value, Value, reqwest::header::HeaderMap) {
    let r = zd(
        reqwest::Method::POST,
        "/api/v2/tickets.json",
        Some(json!({ "ticket": ticket })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let headers = r.headers().clone();
    let body: Value = r.json().await.expect("JSON");
    (body["ticket"].clone(), body, headers)
}

async fn me() -> Value {
    let (status, body) = zd_get("/api/v2/users/me.json").await;
    assert_eq!(status, StatusCode::OK);
    body["user"].clone()
}

/// "An audit object is generated and included in the response when you
/// create or update a ticket. The audit object has an events array listing
/// all the updates made to the new ticket."
/// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#create-ticket
/// (audit format: https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_audits/)
#[tokio::test]
async fn zendesk_create_answers_with_the_audit() {
    let (ticket, body, _) = create(json!({
        "subject": "My printer is on fire!",
        "comment": {"body": "The smoke is very colorful."},
        "priority": "urgent"
    }))
    .await;
    let audit = &body["audit"];
    assert!(audit.is_object(), "no audit in {body}");
    assert_eq!(audit["ticket_id"], ticket["id"], "{audit}");
    assert!(
        audit["id"].is_u64() && audit["author_id"].is_u64(),
        "{audit}"
    );
    let events = audit["events"].as_array().expect("an events array");
    let comment = events
        .iter()
        .find(|e| e["type"] == "Comment")
        .expect("the first comment is an event");
    assert_eq!(comment["body"], "The smoke is very colorful.");
    assert_eq!(comment["public"], true);
    let created = |field: &str| {
        events
            .iter()
            .find(|e| e["type"] == "Create" && e["field_name"] == field)
            .map(|e| e["value"].clone())
    };
    assert_eq!(created("priority"), Some(json!("urgent")), "{audit}");
    assert_eq!(created("status"), Some(json!("new")), "{audit}");
    assert_eq!(created("subject"), Some(json!("My printer is on fire!")));
    // "... when you create or update a ticket": an update's audit has a
    // Change event with the previous value.
    let r = zd(
        reqwest::Method::PUT,
        &format!("/api/v2/tickets/{}.json", ticket["id"]),
        Some(json!({"ticket": {"priority": "low", "comment": {"body": "cooled down", "public": false}}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let events = body["audit"]["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["type"] == "Change"
            && e["field_name"] == "priority"
            && e["value"] == "low"
            && e["previous_value"] == "urgent"),
        "{body}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "Comment" && e["body"] == "cooled down" && e["public"] == false),
        "{body}"
    );
    assert!(
        body["audit"]["id"].as_u64() > audit["id"].as_u64(),
        "{body}"
    );
}

/// "You can optionally append .json to the resource name ... Appending
/// .json doesn't change the way the endpoint works in any way."
/// https://developer.zendesk.com/api-reference/introduction/doc-conventions/
#[tokio::test]
async fn zendesk_paths_work_the_same_without_json() {
    for path in [
        "/api/v2/tickets/4211",
        "/api/v2/ticket_fields",
        "/api/v2/custom_statuses",
        "/api/v2/groups",
        "/api/v2/users/me",
        "/api/v2/tickets/4211/comments",
    ] {
        let (plain, without) = zd_get(path).await;
        let (suffixed, with) = zd_get(&format!("{path}.json")).await;
        assert_eq!(plain, StatusCode::OK, "{path}: {without}");
        assert_eq!((plain, &without), (suffixed, &with), "{path}");
    }
    // Writes too: create, update and the bulk endpoint without `.json`.
    let r = zd(
        reqwest::Method::POST,
        "/api/v2/tickets",
        Some(json!({"ticket": {"comment": {"body": "no suffix"}}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["ticket"]["id"].clone();
    let r = zd(
        reqwest::Method::PUT,
        &format!("/api/v2/tickets/{id}"),
        Some(json!({"ticket": {"priority": "high"}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = zd(
        reqwest::Method::PUT,
        &format!("/api/v2/tickets/update_many?ids={id}"),
        Some(json!({"ticket": {"priority": "low"}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let job = r.json::<Value>().await.unwrap()["job_status"]["id"].clone();
    let (status, _) = zd_get(&format!("/api/v2/job_statuses/{}", job.as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK);
}

/// Polls a job status until it is `completed` (generous deadline).
async fn finished(job: &Value) -> Value {
    let id = job["id"].as_str().expect("a job id");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = zd_get(&format!("/api/v2/job_statuses/{id}.json")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["job_status"]["status"] == "completed" {
            return body["job_status"].clone();
        }
        assert!(Instant::now() < deadline, "job never completed: {body}");
        // As a client of the real API would: jobs run in the background
        // (the emulator's take 100 ms), and every poll costs a request of
        // the token's budget, which the other tests here share.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// "Accepts an array of up to 100 ticket objects, or a comma-separated list
/// of up to 100 ticket ids. This endpoint returns a job_status JSON object"
/// - batch updates: `{"tickets": [{"id": 1, "status": "solved"}, ...]}`;
/// - bulk updates: `update_many.json?ids=1,2,3` with `{"ticket": {...}}`.
/// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-many-tickets
/// Job results of a bulk update: `{"id", "action": "update", "success",
/// "status": "Updated"}`.
/// https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/
#[tokio::test]
async fn zendesk_update_many_takes_the_batch_and_the_bulk_form() {
    let (a, _, _) = create(json!({"comment": {"body": "batch a"}})).await;
    let (b, _, _) = create(json!({"comment": {"body": "batch b"}})).await;
    let (c, _, _) = create(json!({"comment": {"body": "batch c"}})).await;
    let r = zd(
        reqwest::Method::PUT,
        "/api/v2/tickets/update_many.json",
        Some(json!({"tickets": [
            {"id": a["id"], "status": "pending"},
            {"id": b["id"], "priority": "high"},
            {"id": c["id"], "priority": "whenever"}
        ]})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let job = &body["job_status"];
    assert!(
        ["queued", "working", "completed"].contains(&job["status"].as_str().unwrap_or("")),
        "{body}"
    );
    assert_eq!(job["total"], 3, "{body}");
    let done = finished(job).await;
    let results = done["results"].as_array().expect("results");
    // The ticket with an invalid change fails alone, in its result.
    assert_eq!(results[2]["id"], c["id"], "{done}");
    assert_eq!(results[2]["success"], false, "{done}");
    assert_eq!(results[2]["error"], "RecordInvalid", "{done}");
    for (r, t) in results.iter().zip([&a, &b]) {
        assert_eq!(
            (&r["id"], &r["action"], &r["success"], &r["status"]),
            (&t["id"], &json!("update"), &json!(true), &json!("Updated")),
            "{done}"
        );
    }
    let (_, shown_a) = zd_get(&format!("/api/v2/tickets/{}.json", a["id"])).await;
    let (_, shown_b) = zd_get(&format!("/api/v2/tickets/{}.json", b["id"])).await;
    assert_eq!(shown_a["ticket"]["status"], "pending");
    assert_eq!(shown_b["ticket"]["priority"], "high");
    assert_eq!(
        shown_b["ticket"]["status"], "new",
        "batch changes are per ticket"
    );

    // The bulk form: one change for every id.
    let r = zd(
        reqwest::Method::PUT,
        &format!(
            "/api/v2/tickets/update_many.json?ids={},{}",
            a["id"], b["id"]
        ),
        Some(json!({"ticket": {"additional_tags": ["bulk_tag"]}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = finished(&r.json::<Value>().await.unwrap()["job_status"]).await;
    assert_eq!(done["total"], 2, "{done}");
    for t in [&a, &b] {
        let (_, shown) = zd_get(&format!("/api/v2/tickets/{}.json", t["id"])).await;
        assert_eq!(shown["ticket"]["tags"], json!(["bulk_tag"]), "{shown}");
    }
}

/// "When you create or update a resource, the API ... may set a Location
/// header pointing to the resource. Example: Status: 201 Created Location:
/// https://{subdomain}.zendesk.com/api/v2/items/123.json"
/// https://developer.zendesk.com/api-reference/introduction/requests/
#[tokio::test]
async fn zendesk_location_is_an_absolute_url_to_the_ticket() {
    let (ticket, _, headers) = create(json!({"comment": {"body": "where am I"}})).await;
    let location = headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header");
    let parsed = reqwest::Url::parse(location).expect("an absolute URL");
    assert!(parsed
        .path()
        .ends_with(&format!("/api/v2/tickets/{}.json", ticket["id"])));
    // Following it as a client would reaches the same ticket.
    let (status, shown) = zd_get(location).await;
    assert_eq!(status, StatusCode::OK, "{location}");
    assert_eq!(shown["ticket"]["id"], ticket["id"]);
}

/// "Use the URL in the links[next] property to retrieve the next page of
/// results" (cursor pagination; offset pagination's `next_page` is a URL
/// too), https://developer.zendesk.com/api-reference/introduction/pagination/;
/// a job status' `url` is "The URL to poll for status updates",
/// https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/;
/// the export's `after_url` is the next page's URL,
/// https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/.
/// Followed as given, each must reach the API that gave it.
#[tokio::test]
async fn zendesk_urls_to_follow_lead_back_to_the_api() {
    let (_, first) = zd_get("/api/v2/ticket_fields.json?page[size]=1").await;
    let next = first["links"]["next"].as_str().expect("links.next");
    let (status, second) = zd_get(next).await;
    assert_eq!(status, StatusCode::OK, "{next}: {second}");
    assert_ne!(
        second["ticket_fields"][0]["id"],
        first["ticket_fields"][0]["id"]
    );
    let (_, first) = zd_get("/api/v2/groups.json?per_page=1").await;
    let next = first["next_page"].as_str().expect("next_page");
    let (status, second) = zd_get(next).await;
    assert_eq!(status, StatusCode::OK, "{next}: {second}");
    assert_ne!(second["groups"][0]["id"], first["groups"][0]["id"]);
    let r = zd(
        reqwest::Method::PUT,
        "/api/v2/tickets/update_many.json?ids=5105",
        Some(json!({"ticket": {"additional_tags": ["followed"]}})),
    )
    .await;
    let job = r.json::<Value>().await.unwrap()["job_status"].clone();
    let url = job["url"].as_str().expect("a job url");
    let (status, polled) = zd_get(url).await;
    assert_eq!(status, StatusCode::OK, "{url}: {polled}");
    assert_eq!(polled["job_status"]["id"], job["id"]);
    let (_, page) = zd_get("/api/v2/incremental/tickets/cursor.json?start_time=0").await;
    let after = page["after_url"].as_str().expect("after_url");
    let (status, _) = zd_get(after).await;
    assert_eq!(status, StatusCode::OK, "{after}");
}

/// "The submitter is the user who created a ticket. By default, the
/// requester of a ticket is the submitter." Through the API, the creator is
/// the authenticated user.
/// https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/ (Requesters and submitters)
#[tokio::test]
async fn zendesk_ticket_without_requester_is_requested_by_the_caller() {
    let me = me().await;
    let (ticket, _, _) = create(json!({"comment": {"body": "who asked"}})).await;
    assert_eq!(ticket["requester_id"], me["id"], "{ticket}");
    assert_eq!(ticket["submitter_id"], me["id"], "{ticket}");
    // An explicit requester is kept.
    let (other, _, _) =
        create(json!({"comment": {"body": "for a customer"}, "requester_id": 2000})).await;
    assert_eq!(other["requester_id"], 2000, "{other}");
    assert_eq!(
        other["submitter_id"], 2000,
        "the requester submitted it: {other}"
    );
    // "passing the agent's user ID as the submitter_id ... the agent, who
    // is the submitter, becomes the author of the ticket's first comment".
    let (on_behalf, _, _) = create(json!({
        "comment": {"body": "on behalf"}, "requester_id": 2000, "submitter_id": me["id"]
    }))
    .await;
    assert_eq!(on_behalf["submitter_id"], me["id"], "{on_behalf}");
    let (_, comments) = zd_get(&format!(
        "/api/v2/tickets/{}/comments.json",
        on_behalf["id"]
    ))
    .await;
    assert_eq!(comments["comments"][0]["author_id"], me["id"], "{comments}");
}

/// Show User: `GET /api/v2/users/{user_id}` answers `{"user": {"id", "name", ...}}`.
/// https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user
#[tokio::test]
async fn zendesk_shows_a_user_by_id() {
    let me = me().await;
    let (status, body) = zd_get(&format!("/api/v2/users/{}.json", me["id"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], me["id"]);
    assert_eq!(body["user"]["name"], me["name"]);
    assert_eq!(body["user"]["role"], "agent");
    // The requester of a seeded ticket is a user the account knows.
    let (_, t) = zd_get("/api/v2/tickets/4211.json").await;
    let requester = &t["ticket"]["requester_id"];
    let (status, body) = zd_get(&format!("/api/v2/users/{requester}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(&body["user"]["id"], requester);
    assert!(body["user"]["email"].is_string(), "{body}");
    let (status, body) = zd_get("/api/v2/users/987654321.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "RecordNotFound");
}

/// Search Users: `GET /api/v2/users/search?query=` "can specify a partial
/// or full value of any user property, including name, email address";
/// answers `{"users": [...]}`, offset pagination.
/// https://developer.zendesk.com/api-reference/ticketing/users/users/#search-users
#[tokio::test]
async fn zendesk_searches_users() {
    let me = me().await;
    let email = me["email"].as_str().expect("an email");
    let part = &email[..email.find('@').unwrap_or(email.len())];
    for query in [part.to_string(), email.to_string()] {
        let (status, body) = zd_get(&format!("/api/v2/users/search.json?query={query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let ids: Vec<&Value> = body["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| &u["id"])
            .collect();
        assert_eq!(ids, [&me["id"]], "{query}: {body}");
    }
    let (status, body) = zd_get("/api/v2/users/search?query=nobody-by-this-name").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["users"], json!([]), "{body}");
    assert_eq!(body["count"], 0);
    // The seed's end users: Ana, and one per seeded Salesforce Contact
    // (users linked to Contacts by email, docs/emulators/zendesk.md).
    let (_, body) = zd_get("/api/v2/users/search.json?query=role:end-user").await;
    assert_eq!(body["users"][0]["id"], 2000, "{body}");
    let ends = body["users"].as_array().expect("users");
    assert!(ends.iter().all(|u| u["role"] == "end-user"), "{body}");
    assert_eq!(body["count"], ends.len(), "{body}");
    let (status, body) = zd_get("/api/v2/users/search.json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// List Search Results: `GET /api/v2/search?query=` with `type:ticket`,
/// `status:`, `requester:` and free text ("Search by ticket status:
/// type:ticket status:open"); results carry `result_type`; the answer has
/// `count` (every match), `next_page`/`previous_page` (offset pagination,
/// at most 100 a page).
/// https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/
/// https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/searching-with-the-zendesk-api
#[tokio::test]
async fn zendesk_searches_tickets_with_the_basic_syntax() {
    let w = word("searchword");
    let mut open = Vec::new();
    for i in 0..3 {
        let (t, _, _) = create(json!({"subject": format!("{w} printer {i}"), "comment": {"body": "x"}, "status": "open"})).await;
        open.push(t["id"].clone());
    }
    let (pending, _, _) =
        create(json!({"comment": {"body": format!("the {w} is pending")}, "status": "pending"}))
            .await;
    let search = |q: String| async move {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v2/search.json", emulators().zd),
            &[("query", q.as_str())],
        )
        .unwrap();
        zd_get(url.as_str()).await
    };
    let ids = |body: &Value| -> Vec<Value> {
        body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["id"].clone())
            .collect()
    };
    let (status, body) = search(format!("type:ticket status:open {w}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut found = ids(&body);
    found.sort_by_key(|v| v.as_u64());
    assert_eq!(found, open, "{body}");
    assert_eq!(body["count"], 3);
    assert!(body["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["result_type"] == "ticket"));
    // Free text finds the comment too; status narrows it.
    let (_, body) = search(format!("{w} status:pending")).await;
    assert_eq!(ids(&body), [pending["id"].clone()], "{body}");
    // requester: the caller's own tickets (created without a requester).
    let me = me().await;
    let (_, body) = search(format!(
        "type:ticket requester:{} {w}",
        me["email"].as_str().unwrap()
    ))
    .await;
    assert_eq!(body["count"], 4, "{body}");
    // Offset pagination: one a page, next_page an absolute URL to follow.
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v2/search.json", emulators().zd),
        &[
            ("query", format!("type:ticket {w}").as_str()),
            ("per_page", "1"),
        ],
    )
    .unwrap();
    let (_, first) = zd_get(url.as_str()).await;
    assert_eq!(first["count"], 4, "{first}");
    assert_eq!(first["results"].as_array().unwrap().len(), 1);
    assert_eq!(first["previous_page"], Value::Null);
    let next = first["next_page"].as_str().expect("a next page");
    let (status, second) = zd_get(next).await;
    assert_eq!(status, StatusCode::OK, "{next}: {second}");
    assert_eq!(second["results"].as_array().unwrap().len(), 1);
    assert_ne!(second["results"][0]["id"], first["results"][0]["id"]);
    assert!(second["previous_page"].is_string(), "{second}");
    // status< in Zendesk's order, requester:me, types, sorting.
    let (_, body) = search(format!("status<pending {w}")).await;
    assert_eq!(body["count"], 3, "{body}");
    let (_, body) = search(format!("requester:me {w}")).await;
    assert_eq!(body["count"], 4, "{body}");
    let (_, body) = search(format!("type:user {}", me["name"].as_str().unwrap())).await;
    assert_eq!(body["results"][0]["result_type"], "user", "{body}");
    assert_eq!(body["results"][0]["id"], me["id"], "{body}");
    let sorted = reqwest::Url::parse_with_params(
        &format!("{}/api/v2/search.json", emulators().zd),
        &[
            ("query", format!("type:ticket {w}").as_str()),
            ("sort_by", "created_at"),
            ("sort_order", "asc"),
        ],
    )
    .unwrap();
    let (_, body) = zd_get(sorted.as_str()).await;
    let mut in_order = open.clone();
    in_order.push(pending["id"].clone());
    assert_eq!(ids(&body), in_order, "{body}");
    // "If you request a page past the limit (page=11 at 100 results per
    // page), a 422 Insufficient Resource Error is returned."
    let (status, body) = zd_get(&format!(
        "{}&page=11",
        url.as_str().replace("per_page=1", "per_page=100")
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = zd_get(&format!("{}&page=two", url.as_str())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["title"], "Invalid attribute", "{body}");
    // "Search for a ticket by id: 3245227"; groups by name.
    let (_, body) = search("type:ticket 4211".into()).await;
    assert_eq!(ids(&body), [json!(4211)], "{body}");
    let (_, body) = search("type:group payments".into()).await;
    assert_eq!(body["results"][0]["result_type"], "group", "{body}");
    assert_eq!(body["results"][0]["name"], "Payments Tier 2", "{body}");
    // A keyword the emulator does not implement is refused, by name.
    let (status, body) = search(format!("created>2024-01-01 {w}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["description"]
            .as_str()
            .unwrap_or("")
            .contains("`created`"),
        "{body}"
    );
}

/// The Limits resource: `GET /services/data/vXX.X/limits/`, each limit
/// `{"Max": the limit for the org, "Remaining": calls left}`, among them
/// `DailyApiRequests`.
/// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_limits.htm
/// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm
#[tokio::test]
async fn salesforce_limits_reports_daily_api_requests_as_counted() {
    let sf = &emulators().sf;
    let c = client();
    let token: Value = c
        .post(format!("{sf}/services/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "l3map-emulator-client"),
            ("client_secret", "l3map-emulator-secret"),
            ("refresh_token", "l3map-emulator-refresh"),
        ])
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let bearer = token["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    let limits = || async {
        let r = c
            .get(format!("{sf}/services/data/v60.0/limits/"))
            .bearer_auth(&bearer)
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status(), StatusCode::OK);
        let header = r.headers()["sforce-limit-info"]
            .to_str()
            .unwrap()
            .to_string();
        (header, r.json::<Value>().await.expect("JSON"))
    };
    let (header, first) = limits().await;
    for (name, l) in first.as_object().expect("an object of limits") {
        assert!(l["Max"].is_u64() && l["Remaining"].is_u64(), "{name}: {l}");
    }
    let daily = &first["DailyApiRequests"];
    let (max, remaining) = (
        daily["Max"].as_u64().unwrap(),
        daily["Remaining"].as_u64().unwrap(),
    );
    // The body agrees with the answer's own Sforce-Limit-Info.
    assert_eq!(header, format!("api-usage={}/{max}", max - remaining));
    // Three more calls, and the limits call after them: four fewer left.
    for _ in 0..3 {
        let r = c
            .get(format!(
                "{sf}/services/data/v60.0/query?q=SELECT+Id+FROM+Account"
            ))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let (_, second) = limits().await;
    assert_eq!(second["DailyApiRequests"]["Max"], max);
    assert_eq!(
        second["DailyApiRequests"]["Remaining"],
        remaining - 4,
        "{second}"
    );
}

// ------------------------------------------------ hostile upstream (issue 14, red team)

/// A fake Zendesk on 127.0.0.1 that answers every request 200 with a
/// chunked body that never ends (`{"ticket_fields":[{…},{…},…`), until
/// the client hangs up. Returns its URL and the most bytes it managed to
/// send on one connection.
fn endless_zendesk() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let most = seen.clone();
            std::thread::spawn(move || {
                // The request head; its body (none for a GET) is ignored.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let start = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Transfer-Encoding: chunked\r\n\r\n12\r\n{\"ticket_fields\":[\r\n";
                if s.write_all(start.as_bytes()).is_err() {
                    return;
                }
                let item = r#"{"id":360001234,"type":"text","title":"padding padding padding"},"#;
                let piece = item.repeat(1000);
                let frame = format!("{:x}\r\n{piece}\r\n", piece.len());
                let mut sent = 0;
                while s.write_all(frame.as_bytes()).is_ok() {
                    sent += frame.len();
                    most.fetch_max(sent, Ordering::Relaxed);
                }
            });
        }
    });
    (url, most)
}

/// The red team's endless `{"ticket_fields":[…` grew `schema diff` to
/// 1.7 GB. Every response body is now read against a 32 MiB bound
/// (docs/RUNTIME.md, "Limits and guarantees"): the request fails with a
/// permanent error naming the limit, the client stops reading, and the
/// process stays small.
#[test]
fn an_endless_upstream_body_fails_the_request_at_the_limit() {
    use std::sync::atomic::Ordering;
    let (url, most) = endless_zendesk();
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(
        dir.path().join("desk.l3map"),
        format!(
            r#"connection desk: zendesk {{
  url     "{url}"
  token   env("L3MAP_TEST_ZD_TOKEN")
  scopes  read, write
}}
"#
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["schema", "diff", "--connection", "desk"])
        .arg(dir.path())
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("L3MAP_TEST_ZD_TOKEN", "l3map-dev-token")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // The most memory it held, sampled while it runs (a missed sample
    // can only make this smaller, never flake the bound).
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    let code = loop {
        if let Some(s) = child.try_wait().expect("waits") {
            break s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("schema diff still running after 180 s (peak {peak_kib} KiB)");
        }
        if let Ok(text) = std::fs::read_to_string(&status) {
            let rss = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0);
            peak_kib = peak_kib.max(rss);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_ne!(code, Some(0), "{err}");
    assert_ne!(code, None, "a signal, not an error: {err}");
    assert!(err.contains("larger than the 32 MiB limit"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Reading stopped at the bound: what one connection got out is the
    // limit plus what the socket buffers held, not gigabytes.
    let sent = most.load(Ordering::Relaxed);
    assert!(sent < 96 << 20, "the client read on: {sent} bytes sent");
    assert!(peak_kib < 512 * 1024, "peak RSS {peak_kib} KiB");
}

// ------------------------------------------------ Zendesk's status rules

async fn put_ticket(id: &Value, ticket: Value) -> (StatusCode, Value) {
    let r = zd(
        reqwest::Method::PUT,
        &format!("/api/v2/tickets/{id}.json"),
        Some(json!({ "ticket": ticket })),
    )
    .await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The 422 `RecordInvalid` that blames `status`, with `description`.
fn refused_status(status: StatusCode, body: &Value, description: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "RecordInvalid", "{body}");
    let said = body["details"]["status"][0]["description"]
        .as_str()
        .unwrap_or("");
    assert!(said.contains(description), "{body}");
}

/// "Tickets with a status set to Closed can't be updated in most cases
/// ... Requesters can create a follow-up request that references a closed
/// ticket, but they can't reopen the closed ticket."
/// https://support.zendesk.com/hc/en-us/articles/4408894213018 (About
/// native system ticket rules); "Once a ticket is closed (as distinct from
/// solved), it can't be reopened",
/// https://developer.zendesk.com/documentation/ticketing/managing-tickets/creating-and-updating-tickets/
/// Zendesk's answer: 422 RecordInvalid, `details.status`: "Status: closed
/// prevents ticket update".
#[tokio::test]
async fn zendesk_refuses_updates_to_a_closed_ticket() {
    let (t, _, _) = create(json!({"comment": {"body": "to be closed"}})).await;
    let id = &t["id"];
    for status in ["solved", "closed"] {
        let (code, body) = put_ticket(id, json!({"status": status})).await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    for change in [
        json!({"comment": {"body": "one more thing", "public": false}}),
        json!({"status": "open"}),
        json!({"priority": "urgent", "tags": ["late"]}),
    ] {
        let (code, body) = put_ticket(id, change.clone()).await;
        refused_status(code, &body, "Status: closed prevents ticket update");
    }
    // Nothing changed: still closed, one comment, no priority.
    let (_, shown) = zd_get(&format!("/api/v2/tickets/{id}.json")).await;
    assert_eq!(shown["ticket"]["status"], "closed", "{shown}");
    assert_eq!(shown["ticket"]["priority"], Value::Null, "{shown}");
    let (_, comments) = zd_get(&format!("/api/v2/tickets/{id}/comments.json")).await;
    assert_eq!(comments["comments"].as_array().map(Vec::len), Some(1));
    // In a batch update the closed ticket fails alone.
    let (other, _, _) = create(json!({"comment": {"body": "still open"}})).await;
    let r = zd(
        reqwest::Method::PUT,
        "/api/v2/tickets/update_many.json",
        Some(json!({"tickets": [
            {"id": id, "priority": "high"},
            {"id": other["id"], "priority": "high"}
        ]})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = finished(&r.json::<Value>().await.unwrap()["job_status"]).await;
    assert_eq!(done["results"][0]["success"], false, "{done}");
    assert_eq!(done["results"][0]["error"], "RecordInvalid", "{done}");
    assert!(
        done["results"][0]["details"]
            .as_str()
            .unwrap_or("")
            .contains("closed prevents ticket update"),
        "{done}"
    );
    assert_eq!(done["results"][1]["success"], true, "{done}");
}

/// "After a ticket's status has been changed from New, it can never be set
/// back to New." https://support.zendesk.com/hc/en-us/articles/4408894213018
/// (About native system ticket rules; also "Once a New ticket's status has
/// been changed, it can never be set back to New",
/// https://support.zendesk.com/hc/en-us/articles/4408832151834).
#[tokio::test]
async fn zendesk_never_sets_a_ticket_back_to_new() {
    let (t, _, _) = create(json!({"comment": {"body": "new, then open"}})).await;
    let id = &t["id"];
    assert_eq!(t["status"], "new");
    // Still New: saying so again is no change, and allowed.
    let (code, body) = put_ticket(id, json!({"status": "new"})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = put_ticket(id, json!({"status": "open"})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = put_ticket(id, json!({"status": "new"})).await;
    refused_status(code, &body, "can never be set back to New");
    // Nor through a custom status of the New category.
    let (_, statuses) = zd_get("/api/v2/custom_statuses.json").await;
    let new_one = statuses["custom_statuses"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["status_category"] == "new"))
        .map(|s| s["id"].clone())
        .expect("a custom status in the New category");
    let (code, body) = put_ticket(id, json!({"custom_status_id": new_one})).await;
    refused_status(code, &body, "can never be set back to New");
    let (_, shown) = zd_get(&format!("/api/v2/tickets/{id}.json")).await;
    assert_eq!(shown["ticket"]["status"], "open", "{shown}");
}

/// Tickets reach Closed through the account's automations after they are
/// solved ("Understanding how tickets are closed",
/// https://support.zendesk.com/hc/en-us/articles/8263915942938); closed
/// historical tickets come in through the Ticket Import API ("any ticket
/// created with a closed status bypasses the normal ticket lifecycle",
/// https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_import/).
/// A ticket created through the Tickets API cannot start out closed.
#[tokio::test]
async fn zendesk_does_not_create_a_closed_ticket() {
    let r = zd(
        reqwest::Method::POST,
        "/api/v2/tickets.json",
        Some(json!({"ticket": {"comment": {"body": "born closed"}, "status": "closed"}})),
    )
    .await;
    let code = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    refused_status(code, &body, "Status: closed is not valid for a new ticket");
    // Every other status may start a ticket.
    let (t, _, _) = create(json!({"comment": {"body": "born solved"}, "status": "solved"})).await;
    assert_eq!(t["status"], "solved");
}

async fn search_for(q: &str) -> (StatusCode, Value) {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v2/search.json", emulators().zd),
        &[("query", q)],
    )
    .unwrap();
    zd_get(url.as_str()).await
}

fn result_ids(body: &Value) -> Vec<Value> {
    let mut ids: Vec<Value> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    ids.sort_by_key(|v| v.as_u64());
    ids
}

/// "Minus sign (-): Excludes items containing a word (or property value)
/// from the search results. For example, the following search returns
/// tickets with the status pending but excludes tickets with the tag
/// invoice: status:pending -tags:invoice" (Zendesk Support search
/// reference, https://support.zendesk.com/hc/en-us/articles/4408886879258;
/// the API takes the same operators: "the minus sign - (negation), and
/// the wildcard (*) character",
/// https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/searching-with-the-zendesk-api).
/// A query the emulator cannot answer (`*` alone) is a 400 naming it, never
/// a silent `count: 0`.
#[tokio::test]
async fn zendesk_search_negates_terms_and_refuses_a_bare_wildcard() {
    let w = word("negword");
    let (open, _, _) = create(
        json!({"subject": format!("{w} open one"), "comment": {"body": "x"}, "status": "open"}),
    )
    .await;
    let (pending, _, _) = create(json!({
        "subject": format!("{w} pending one"), "comment": {"body": "x"},
        "status": "pending", "tags": ["invoice"]
    }))
    .await;
    let (other, _, _) = create(json!({
        "subject": format!("{w} pending two"), "comment": {"body": "x"}, "status": "pending"
    }))
    .await;
    let (code, body) = search_for(&format!("{w} -status:open")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        result_ids(&body),
        [pending["id"].clone(), other["id"].clone()],
        "{body}"
    );
    // The documented example: pending, but not tagged invoice.
    let (_, body) = search_for(&format!("{w} status:pending -tags:invoice")).await;
    assert_eq!(result_ids(&body), [other["id"].clone()], "{body}");
    // A negated word; a negated phrase.
    let (_, body) = search_for(&format!("{w} -two")).await;
    assert_eq!(
        result_ids(&body),
        [open["id"].clone(), pending["id"].clone()],
        "{body}"
    );
    let (_, body) = search_for(&format!("{w} -\"pending one\"")).await;
    assert_eq!(
        result_ids(&body),
        [open["id"].clone(), other["id"].clone()],
        "{body}"
    );
    // A negated ticket property alone: tickets only, none of them open.
    let (code, body) = search_for("-status:open").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let results = body["results"].as_array().expect("results");
    assert!(!results.is_empty(), "{body}");
    assert!(
        results
            .iter()
            .all(|r| r["result_type"] == "ticket" && r["status"] != "open"),
        "{body}"
    );
    // A trailing wildcard: words that start with the stem.
    let stem = &w[..w.len() - 2];
    let (code, body) = search_for(&format!("type:ticket {stem}*")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 3, "{body}");
    // `*` alone, or inside a word: refused, naming it.
    for q in ["*", "type:ticket *", "neg*word"] {
        let (code, body) = search_for(q).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["error"], "invalid", "{q}: {body}");
        assert!(
            body["description"].as_str().unwrap_or("").contains('*'),
            "{q}: {body}"
        );
    }
}

/// One raw request to the Zendesk emulator (so the test chooses exactly
/// what `Host` says, or that there is none); the answer's head and body.
fn raw_zd(request_head: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let addr = emulators().zd.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{request_head}\r\nAuthorization: Bearer {ZD_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_string(), body.to_string())
}

/// Zendesk's `Location` is absolute and names the API that created the
/// resource (https://developer.zendesk.com/api-reference/introduction/requests/);
/// the emulator's always leads back to the emulator: from `Host` when it
/// is a host and port, else (HTTP/1.0 sends none; a broken one) from the
/// address it listens on, never to a zendesk.com that is not there.
#[tokio::test]
async fn zendesk_location_leads_back_to_the_emulator_without_a_usable_host() {
    let zd = emulators().zd.clone();
    let create = r#"{"ticket": {"comment": {"body": "no host"}}}"#;
    for head in [
        "POST /api/v2/tickets.json HTTP/1.0".to_string(),
        "POST /api/v2/tickets.json HTTP/1.1\r\nHost: bad host!".to_string(),
        "POST /api/v2/tickets.json HTTP/1.1\r\nHost: 127.0.0.1:99999".to_string(),
    ] {
        let (answer, body) = raw_zd(&head, create);
        assert!(answer.contains(" 201 "), "{head}: {answer}\n{body}");
        let location = answer
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("{head}: no Location in {answer}"));
        assert!(
            location.starts_with(&format!("{zd}/api/v2/tickets/")),
            "{head}: {location}, not on {zd}"
        );
        // And following it reaches the ticket.
        let (status, shown) = zd_get(&location).await;
        assert_eq!(status, StatusCode::OK, "{location}");
        assert_eq!(shown["ticket"]["description"], "no host", "{shown}");
    }
    // The search's next_page too, on an HTTP/1.0 request.
    let (answer, body) = raw_zd(
        "GET /api/v2/search.json?query=type:ticket&per_page=1 HTTP/1.0",
        "",
    );
    assert!(answer.contains(" 200 "), "{answer}");
    let page: Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        page["next_page"]
            .as_str()
            .is_some_and(|n| n.starts_with(&zd)),
        "{page}"
    );
}

/// Ticket ids are plain decimal numbers; `GET /api/v2/tickets/{ticket_id}`
/// for an id no ticket has is 404 RecordNotFound
/// (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#show-ticket):
/// `+5106` and `05106` are not the id 5106.
#[tokio::test]
async fn zendesk_ticket_ids_in_paths_are_plain_decimal() {
    let (t, _, _) = create(json!({"comment": {"body": "plain id"}})).await;
    let id = t["id"].as_u64().expect("an id");
    let (status, _) = zd_get(&format!("/api/v2/tickets/{id}.json")).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        format!("/api/v2/tickets/+{id}.json"),
        format!("/api/v2/tickets/0{id}"),
        format!("/api/v2/tickets/0{id}.json"),
        format!("/api/v2/users/+{}", me().await["id"]),
    ] {
        let (status, body) = zd_get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let r = zd(
        reqwest::Method::PUT,
        &format!("/api/v2/tickets/0{id}.json"),
        Some(json!({"ticket": {"priority": "high"}})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
