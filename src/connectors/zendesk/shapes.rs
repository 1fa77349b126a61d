//! The connector's reading of Zendesk's documented answers (the examples
//! of developer.zendesk.com, trimmed) and the requests it builds.

use super::bulk::{JobResult, JobState, JobStatus, TicketUpdate};
use super::endpoints::field;
use super::parties::{Organization, User};
use super::search::{TicketFilter, STATUS_ORDER};
use super::types::{Ticket, TicketChanges};
use serde_json::{json, Value};

/// Show Job Status, a finished `update_many`
/// (https://developer.zendesk.com/api-reference/ticketing/ticket-management/job_statuses/).
#[test]
fn a_completed_job_has_one_result_per_ticket() {
    let v = json!({"job_status": {
        "id": "8b726e606741012ffc2d782bcb7848fe",
        "message": "Completed at Fri Apr 13 02:51:53 +0000 2012",
        "progress": 2,
        "results": [
            {"action": "update", "id": 380, "status": "Updated", "success": true},
            {"id": 381, "error": "TicketUpdateFailed", "details": "Status: closed prevents ticket update"}
        ],
        "status": "completed",
        "total": 2,
        "url": "https://company.zendesk.com/api/v2/job_statuses/8b726e606741012ffc2d782bcb7848fe.json"
    }});
    let job: JobStatus = field(v, "job_status").unwrap();
    assert_eq!(job.status, JobState::Completed);
    assert!(job.finished());
    assert_eq!((job.total, job.progress), (Some(2), Some(2)));
    assert_eq!(job.results.len(), 2);
    assert_eq!(
        job.results[0],
        JobResult {
            id: 380,
            success: true,
            status: Some("Updated".into()),
            ..JobResult::default()
        }
    );
    let failed = &job.results[1];
    assert_eq!(failed.id, 381);
    assert!(!failed.success);
    assert_eq!(failed.error.as_deref(), Some("TicketUpdateFailed"));
    assert_eq!(
        failed.details.as_deref(),
        Some("Status: closed prevents ticket update")
    );
}

/// Update Many Tickets answers the job queued, `results: null`.
#[test]
fn a_queued_job_has_no_results_yet() {
    let v = json!({"job_status": {
        "id": "82de0b044094f0c67893ac9fe64f1a99", "message": null, "progress": null,
        "results": null, "status": "queued", "total": 2,
        "url": "https://example.zendesk.com/api/v2/job_statuses/82de0b04.json"
    }});
    let job: JobStatus = field(v, "job_status").unwrap();
    assert_eq!(job.status, JobState::Queued);
    assert!(!job.finished());
    assert!(job.results.is_empty());
    for (s, done) in [
        ("working", false),
        ("failed", true),
        ("killed", true),
        ("paused", false),
    ] {
        let j: JobStatus = serde_json::from_value(json!({"id": "x", "status": s})).unwrap();
        assert_eq!(j.finished(), done, "{s}");
    }
    // A success flag contradicted by an error is a failure; a status word
    // alone says the outcome; details that are an object are kept as text.
    let r: JobResult =
        serde_json::from_value(json!({"id": 1, "success": true, "error": "X"})).unwrap();
    assert!(!r.success);
    let r: JobResult = serde_json::from_value(json!({"id": 1, "status": "Updated"})).unwrap();
    assert!(r.success);
    let r: JobResult = serde_json::from_value(
        json!({"index": 3, "error": "RecordInvalid", "details": {"status": ["x"]}}),
    )
    .unwrap();
    assert_eq!((r.id, r.index), (0, Some(3)));
    assert_eq!(r.details.as_deref(), Some(r#"{"status":["x"]}"#));
}

/// The body of the batch form: `{"tickets": [{"id": .., ...}]}`.
#[test]
fn a_ticket_update_is_its_id_and_its_changes() {
    let changes = TicketChanges::default()
        .field(360001234, "enterprise")
        .status("open", None);
    let u = TicketUpdate::from_changes(4211, &changes);
    let mut with_id = u.body.clone();
    with_id.insert("id".into(), json!(999)); // cannot redirect the write
    let sneaky = TicketUpdate::new(4211, with_id);
    for u in [u, sneaky] {
        let v = u_to_json(&u);
        assert_eq!(v["id"], json!(4211));
        assert_eq!(v["status"], json!("open"));
        assert_eq!(
            v["custom_fields"],
            json!([{"id": 360001234, "value": "enterprise"}])
        );
    }
    let job = JobStatus {
        id: "j".into(),
        status: JobState::Completed,
        total: Some(2),
        progress: Some(2),
        message: None,
        results: vec![JobResult {
            index: Some(1),
            success: true,
            ..JobResult::default()
        }],
    };
    let ups = [
        TicketUpdate::new(7, Default::default()),
        TicketUpdate::new(8, Default::default()),
    ];
    assert!(job.result_for(8, &ups).is_some_and(|r| r.success));
    assert!(job.result_for(7, &ups).is_none());
}

/// What `update_many` sends for it.
fn u_to_json(u: &TicketUpdate) -> Value {
    u.to_json()
}

/// Search Organizations by External ID / Show Organization.
#[test]
fn organizations_read_as_documented() {
    let v = json!({"organizations": [{
        "created_at": "2009-07-20T22:55:29Z", "details": "This is a kind of organization",
        "domain_names": ["example.com", "test.com"], "external_id": "ABC123", "group_id": null,
        "id": 35436, "name": "One Organization", "notes": "",
        "organization_fields": {"org_decimal": 5.2, "org_dropdown": "option_1"},
        "shared_comments": true, "shared_tickets": true, "tags": ["enterprise", "other_tag"],
        "updated_at": "2011-05-05T10:38:52Z",
        "url": "https://company.zendesk.com/api/v2/organizations/35436.json"
    }, {"id": 2, "name": "No fields", "organization_fields": null}]});
    let orgs: Vec<Organization> = field(v, "organizations").unwrap();
    assert_eq!(orgs[0].id, 35436);
    assert_eq!(orgs[0].external_id.as_deref(), Some("ABC123"));
    assert_eq!(
        orgs[0].organization_fields["org_dropdown"],
        json!("option_1")
    );
    assert_eq!(orgs[0].updated_at.as_deref(), Some("2011-05-05T10:38:52Z"));
    assert!(orgs[1].organization_fields.is_empty());
}

/// Search Users.
#[test]
fn users_read_as_documented() {
    let v = json!({"users": [{
        "id": 35436, "name": "Johnny Agent", "email": "johnny@example.com", "external_id": null,
        "organization_id": 57542, "role": "agent", "active": true,
        "user_fields": {"user_date": "2012-07-23T00:00:00Z", "user_decimal": 5.1}
    }], "next_page": null, "previous_page": null, "count": 1});
    let users: Vec<User> = field(v, "users").unwrap();
    assert_eq!(users[0].organization_id, Some(57542));
    assert_eq!(users[0].email.as_deref(), Some("johnny@example.com"));
    assert_eq!(users[0].external_id, None);
    assert_eq!(users[0].user_fields["user_decimal"], json!(5.1));
}

/// Show Ticket with `include=users,organizations`: the ticket names its
/// organization and requester; the lists carry them.
#[test]
fn a_ticket_names_its_organization_and_requester() {
    let t: Ticket = serde_json::from_value(json!({
        "id": 35436, "status": "open", "organization_id": 509974, "requester_id": 20978392,
        "external_id": "ahg35h3jh", "custom_fields": [{"id": 27642, "value": "745"}]
    }))
    .unwrap();
    assert_eq!(t.organization_id, Some(509974));
    assert_eq!(t.requester_id, Some(20978392));
    assert_eq!(t.external_id.as_deref(), Some("ahg35h3jh"));
}

#[test]
fn a_filter_is_one_search_query() {
    let unsolved: Vec<String> = ["new", "open", "pending", "hold"]
        .map(String::from)
        .to_vec();
    let f = TicketFilter {
        organization: Some(509974),
        statuses: unsolved,
        ..TicketFilter::default()
    };
    assert_eq!(
        f.query().unwrap(),
        "type:ticket organization:509974 status<solved"
    );
    let f = TicketFilter {
        requester: Some(7),
        field: Some((360001234, "Acme \"Ltd\"".into())),
        external_id: Some("SF-1".into()),
        statuses: vec!["solved".into()],
        ..TicketFilter::default()
    };
    assert_eq!(
        f.query().unwrap(),
        r#"type:ticket requester:7 custom_field_360001234:"Acme  Ltd " external_id:"SF-1" status:solved"#
    );
    let q = |s: &[&str]| {
        TicketFilter {
            statuses: s.iter().map(|s| s.to_string()).collect(),
            ..TicketFilter::default()
        }
        .query()
        .unwrap()
    };
    assert_eq!(q(&STATUS_ORDER), "type:ticket");
    assert_eq!(q(&[]), "type:ticket");
    assert_eq!(q(&["solved", "closed"]), "type:ticket status>hold");
    assert_eq!(q(&["open", "pending"]), "type:ticket status<hold");
    assert_eq!(q(&["new", "closed"]), "type:ticket");
    assert!(TicketFilter {
        statuses: vec!["Open".into()],
        ..TicketFilter::default()
    }
    .query()
    .is_err());
}

/// The range may take in more than asked: the page keeps only matches.
#[test]
fn a_filter_keeps_only_what_it_describes() {
    let t = |status: &str, org: Option<u64>| -> Ticket {
        serde_json::from_value(json!({"id": 1, "status": status, "organization_id": org,
            "custom_fields": [{"id": 5, "value": "gold"}, {"id": 6, "value": 12}]}))
        .unwrap()
    };
    let f = TicketFilter {
        organization: Some(9),
        statuses: vec!["open".into(), "hold".into()],
        field: Some((5, "gold".into())),
        ..TicketFilter::default()
    };
    assert!(f.matches(&t("open", Some(9))));
    assert!(!f.matches(&t("pending", Some(9))));
    assert!(!f.matches(&t("open", Some(8))));
    assert!(!f.matches(&t("open", None)));
    let num = TicketFilter {
        field: Some((6, "12".into())),
        ..TicketFilter::default()
    };
    assert!(num.matches(&t("solved", None)));
}
