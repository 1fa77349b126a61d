//! The Zendesk emulator's organizations, users, ticket search by party and
//! batched writes, driven over loopback against a spawned `l3map emulate`,
//! with reqwest as any client would, and with the connector
//! (`l3map::connectors::zendesk`) as l3map does.

use crate::common;

use l3map::connectors::zendesk::{
    Credentials, JobState, TicketFilter, TicketUpdate, ZendeskClient, ZendeskConfig,
};
use l3map::connectors::Secret;
use l3map::emulator::zendesk::{salesforce_account_ids, DEV_TOKEN};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SLA_TIER: u64 = 360001234;
/// The second seeded Account's organization (Acme Payments).
const ACME: u64 = 360_200_002;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `l3map emulate` on free ports: the Zendesk and Salesforce base URLs.
fn emulate() -> (Kill, String, String) {
    let mut child = Command::new(common::BIN)
        .args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"])
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("l3map emulate starts");
    let (zd, sf, lines) = common::emulator_urls(&mut child);
    common::drain(lines);
    (Kill(child), zd, sf)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn get(zd: &str, path: &str) -> (u16, Value) {
    common::answer(http().get(format!("{zd}{path}")).bearer_auth(DEV_TOKEN)).await
}

async fn send(method: reqwest::Method, url: String, body: Value, auth: bool) -> (u16, Value) {
    let mut req = http().request(method, url).json(&body);
    if auth {
        req = req.bearer_auth(DEV_TOKEN);
    }
    let resp = req.send().await.expect("answer");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `n` tickets created by the admin call: their ids.
async fn load(zd: &str, n: u64, ticket: Value) -> Vec<u64> {
    let (status, body) = send(
        reqwest::Method::POST,
        format!("{zd}/__l3map/tickets"),
        json!({"count": n, "ticket": ticket}),
        false,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

/// A job polled until it is no longer queued or working.
async fn finished(zd: &str, job: &Value) -> Value {
    let id = job["id"].as_str().expect("job id").to_string();
    common::eventually("the job finishes", Duration::from_secs(10), || async {
        let (status, body) = get(zd, &format!("/api/v2/job_statuses/{id}.json")).await;
        assert_eq!(status, 200, "{body}");
        let s = body["job_status"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if s == "completed" || s == "failed" {
            Ok(body["job_status"].clone())
        } else {
            Err(format!("still {s}"))
        }
    })
    .await
}

fn client(zd: &str) -> ZendeskClient {
    let mut cfg = ZendeskConfig::new(zd, Credentials::OAuth(Secret::new(DEV_TOKEN)));
    cfg.job_poll_interval = Duration::from_millis(50);
    ZendeskClient::new(cfg).expect("client")
}

#[tokio::test]
async fn organizations_and_users_link_to_the_salesforce_seed() {
    let (_kill, zd, _sf) = emulate();
    let acme_account = &salesforce_account_ids()[1];
    let (status, body) = get(
        &zd,
        &format!("/api/v2/organizations/search.json?external_id={acme_account}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["organizations"][0]["id"], json!(ACME));
    assert_eq!(body["organizations"][0]["name"], "Acme Payments");

    // One read: the ticket, its organization and its requester.
    let (_, t) = get(&zd, "/api/v2/tickets/6101.json?include=users,organizations").await;
    assert_eq!(t["ticket"]["organization_id"], json!(ACME));
    assert_eq!(t["organizations"][0]["external_id"], json!(acme_account));
    assert_eq!(t["users"][0]["email"], "ben@example.com");

    // The connector reads the same.
    let zdc = client(&zd);
    let parties = zdc
        .ticket_with_parties(6101)
        .await
        .unwrap()
        .expect("ticket");
    assert_eq!(parties.organization.expect("org").id, ACME);
    assert_eq!(
        parties.requester.expect("requester").email.as_deref(),
        Some("ben@example.com")
    );
    assert!(zdc.ticket_with_parties(99_999_999).await.unwrap().is_none());
    let orgs = zdc
        .organizations_by_external_id(acme_account)
        .await
        .unwrap();
    assert_eq!(orgs.len(), 1);
    let ben = zdc.users_by_email("BEN@example.com").await.unwrap();
    assert_eq!(ben.len(), 1);
    assert_eq!(ben[0].organization_id, Some(ACME));

    // Admin calls: a user and an organization field, found by the connector.
    let (s, _) = send(
        reqwest::Method::PUT,
        format!("{zd}/__l3map/users/{}", ben[0].id),
        json!({"user": {"external_id": "003-ben", "user_fields": {"tier": "gold"}}}),
        false,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        reqwest::Method::PUT,
        format!("{zd}/__l3map/organizations/{ACME}"),
        json!({"organization": {"organization_fields": {"crm_id": "ACME-1"}}}),
        false,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(zdc.users_by_external_id("003-ben").await.unwrap().len(), 1);
    assert_eq!(zdc.users_by_field("tier", "gold").await.unwrap().len(), 1);
    let by_field = zdc
        .organizations_by_field("crm_id", "ACME-1")
        .await
        .unwrap();
    assert_eq!(by_field.iter().map(|o| o.id).collect::<Vec<_>>(), [ACME]);
    assert!(zdc.organization(ACME).await.unwrap().is_some());
    assert!(zdc.user(999_999).await.unwrap().is_none());

    // Tickets by organization, unsolved only: the three open, not the solved.
    let f = TicketFilter {
        organization: Some(ACME),
        statuses: ["new", "open", "pending", "hold"]
            .map(String::from)
            .to_vec(),
        ..TicketFilter::default()
    };
    let page = zdc.tickets_page(&f, None).await.unwrap();
    let ids: Vec<u64> = page.tickets.iter().map(|t| t.id).collect();
    assert_eq!(ids, [6101, 6102, 6103]);
    assert!(page.next.is_none());
}

#[tokio::test]
async fn update_many_runs_a_job_with_results_per_ticket() {
    let (_kill, zd, _sf) = emulate();
    let ids = load(&zd, 100, json!({"organization_id": ACME, "status": "open"})).await;
    let (s, _) = send(
        reqwest::Method::POST,
        format!("{zd}/__l3map/tickets/{}/fail_next_update", ids[7]),
        json!({"details": "Locked by a trigger"}),
        false,
    )
    .await;
    assert_eq!(s, 204);
    let tickets: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "custom_fields": [{"id": SLA_TIER, "value": "premium"}]}))
        .collect();
    let (status, body) = send(
        reqwest::Method::PUT,
        format!("{zd}/api/v2/tickets/update_many.json"),
        json!({"tickets": tickets}),
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["job_status"]["status"], "queued");
    assert_eq!(body["job_status"]["results"], Value::Null);
    let done = finished(&zd, &body["job_status"]).await;
    assert_eq!(done["status"], "completed");
    let results = done["results"].as_array().expect("results");
    assert_eq!(results.len(), 100);
    let failed: Vec<&Value> = results
        .iter()
        .filter(|r| r["success"] != json!(true))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["id"], json!(ids[7]));
    assert_eq!(failed[0]["details"], "Locked by a trigger");
    let (_, t) = get(&zd, &format!("/api/v2/tickets/{}.json", ids[0])).await;
    let sla = t["ticket"]["custom_fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == json!(SLA_TIER)).cloned());
    assert_eq!(sla.map(|f| f["value"].clone()), Some(json!("premium")));
    // The batch was one request against the token's rate limit.
    let (_, stats) = common::answer(http().get(format!("{zd}/__l3map/stats"))).await;
    assert_eq!(
        stats["by_path"]["PUT /api/v2/tickets/update_many.json"],
        json!(1)
    );

    // A closed ticket fails alone; a job-level failure applies nothing.
    let closed = load(&zd, 1, json!({"status": "closed"})).await[0];
    let zdc = client(&zd);
    let ups = [
        TicketUpdate::new(
            ids[1],
            json!({"priority": "high"}).as_object().cloned().unwrap(),
        ),
        TicketUpdate::new(
            closed,
            json!({"priority": "high"}).as_object().cloned().unwrap(),
        ),
    ];
    let job = zdc
        .wait_for_job(zdc.update_many(&ups).await.unwrap())
        .await
        .unwrap();
    assert_eq!(job.status, JobState::Completed);
    assert!(job.result_for(ids[1], &ups).is_some_and(|r| r.success));
    let refused = job
        .result_for(closed, &ups)
        .expect("a result for the closed ticket");
    assert!(!refused.success);
    assert!(
        refused.details.as_deref().unwrap_or("").contains("closed"),
        "{refused:?}"
    );

    let (s, _) = send(
        reqwest::Method::POST,
        format!("{zd}/__l3map/jobs/fail_next"),
        json!({"message": "Job timed out"}),
        false,
    )
    .await;
    assert_eq!(s, 204);
    let ups = [TicketUpdate::new(
        ids[2],
        json!({"priority": "urgent"}).as_object().cloned().unwrap(),
    )];
    let job = zdc
        .wait_for_job(zdc.update_many(&ups).await.unwrap())
        .await
        .unwrap();
    assert_eq!(job.status, JobState::Failed);
    assert_eq!(job.message.as_deref(), Some("Job timed out"));
    let (_, t) = get(&zd, &format!("/api/v2/tickets/{}.json", ids[2])).await;
    assert_eq!(t["ticket"]["priority"], "normal");
    // More than 100, or a ticket twice, never leaves the client.
    let many: Vec<TicketUpdate> = (0..101)
        .map(|i| TicketUpdate::new(i + 1, Default::default()))
        .collect();
    assert!(zdc.update_many(&many).await.is_err());
}

#[tokio::test]
async fn search_export_pages_past_a_thousand() {
    let (_kill, zd, _sf) = emulate();
    let (s, org) = send(
        reqwest::Method::POST,
        format!("{zd}/__l3map/organizations"),
        json!({"organization": {"name": "Big Co", "external_id": "001BIG"}}),
        false,
    )
    .await;
    assert_eq!(s, 201, "{org}");
    let org = org["organization"]["id"].as_u64().expect("org id");
    let open = load(&zd, 1200, json!({"organization_id": org, "status": "open"})).await;
    load(&zd, 30, json!({"organization_id": org, "status": "solved"})).await;

    // Raw: page[size]=1000, then page[after] while has_more.
    let q = format!("type:ticket organization:{org} status<solved");
    let mut seen = BTreeSet::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!(
            "/api/v2/search/export.json?query={}&filter%5Btype%5D=ticket&page%5Bsize%5D=1000",
            urlencode(&q)
        );
        if let Some(c) = &after {
            path.push_str(&format!("&page%5Bafter%5D={}", urlencode(c)));
        }
        let (status, body) = get(&zd, &path).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for r in body["results"].as_array().expect("results") {
            assert_eq!(r["status"], "open");
            assert!(seen.insert(r["id"].as_u64().expect("id")), "a ticket twice");
        }
        if body["meta"]["has_more"] != json!(true) {
            break;
        }
        after = body["meta"]["after_cursor"].as_str().map(String::from);
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, open.iter().copied().collect());
    // Without filter[type], the export refuses.
    let (status, _) = get(
        &zd,
        &format!("/api/v2/search/export.json?query={}", urlencode(&q)),
    )
    .await;
    assert_eq!(status, 400);

    // The connector pages the same way.
    let zdc = client(&zd);
    let f = TicketFilter {
        organization: Some(org),
        statuses: vec!["open".into()],
        ..TicketFilter::default()
    };
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = zdc.tickets_page(&f, cursor.as_deref()).await.unwrap();
        count += page.tickets.len();
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(count, 1200);
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
