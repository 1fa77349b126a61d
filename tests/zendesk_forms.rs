//! Ticket forms over 127.0.0.1: the connector's reads (`ticket_forms`,
//! `ticket_form_statuses`, `custom_statuses?default=true`) against the
//! Zendesk emulator, the emulator's form admin call, its
//! `PUT /api/v2/custom_status/default`, and `ticket_form_id` on tickets.

use l3map::connectors::limit::Limiters;
use l3map::connectors::zendesk::{Credentials, TicketChanges, ZendeskClient, ZendeskConfig};
use l3map::connectors::Secret;
use l3map::emulator::zendesk::{TokenGrant, ZendeskEmulator, ZendeskOptions, DEFAULT_FORM_ID};
use serde_json::{json, Value};

const TOKEN: &str = "forms-token-3b8e";

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (u16, Value) {
    let r = http
        .request(method, url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn forms_their_statuses_and_category_defaults_read_and_change() {
    let opts = ZendeskOptions {
        tokens: vec![TokenGrant::new(TOKEN, &["read", "write"])],
        ..ZendeskOptions::default()
    };
    let (running, _handle) = ZendeskEmulator::new(opts).start(0).await.expect("binds");
    let base = running.base_url();
    let cfg = ZendeskConfig::new(&base, Credentials::OAuth(Secret::new(TOKEN)));
    let client = ZendeskClient::with_limiters(cfg, &Limiters::default()).expect("client");
    let http = reqwest::Client::new();

    // One default form offering every status, as an account without forms.
    let statuses = client.custom_statuses().await.expect("statuses");
    let forms = client.ticket_forms().await.expect("forms");
    assert_eq!(forms.len(), 1);
    assert!(forms[0].default && forms[0].active && forms[0].id == DEFAULT_FORM_ID);
    let offered = client.ticket_form_statuses().await.expect("form statuses");
    assert_eq!(offered.len(), statuses.len());
    assert!(offered
        .iter()
        .all(|o| o.id.as_ref().is_some_and(|i| !i.is_empty())));
    // One default per category.
    let defaults = client.default_custom_statuses().await.expect("defaults");
    assert_eq!(defaults.len(), 5, "{defaults:?}");

    // An admin adds a form offering two statuses.
    let open: Vec<u64> = statuses
        .iter()
        .filter(|s| s.status_category == "open")
        .map(|s| s.id)
        .collect();
    assert!(
        open.len() >= 2,
        "the seed has several open statuses: {open:?}"
    );
    let (code, v) = send(
        &http,
        reqwest::Method::POST,
        format!("{base}/__l3map/ticket_forms"),
        // Listed twice, offered once.
        json!({"ticket_form": {"name": "Billing", "custom_status_ids": [open[0], open[0]]}}),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let billing = v["ticket_form"]["id"].as_u64().expect("id");
    let (code, _) = send(
        &http,
        reqwest::Method::POST,
        format!("{base}/__l3map/ticket_forms"),
        json!({"ticket_form": {"name": "Bad", "custom_status_ids": [1]}}),
    )
    .await;
    assert_eq!(code, 400, "an unknown status is refused");
    let forms = client.ticket_forms().await.expect("forms");
    assert_eq!(
        forms.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["Default Ticket Form", "Billing"]
    );
    let (code, v) = send(
        &http,
        reqwest::Method::GET,
        format!("{base}/api/v2/ticket_forms/{billing}/ticket_form_statuses.json"),
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["ticket_form_statuses"][0]["custom_status_id"], open[0]);
    assert_eq!(v["ticket_form_statuses"].as_array().map(Vec::len), Some(1));

    // A ticket is on the default form until a write moves it.
    let t = client.get_ticket(4213).await.expect("seeded ticket");
    assert_eq!(t.ticket_form_id, Some(DEFAULT_FORM_ID));
    let (code, v) = send(
        &http,
        reqwest::Method::PUT,
        format!("{base}/api/v2/tickets/4213.json"),
        json!({"ticket": {"ticket_form_id": billing}}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        client.get_ticket(4213).await.unwrap().ticket_form_id,
        Some(billing)
    );
    let (code, v) = send(
        &http,
        reqwest::Method::PUT,
        format!("{base}/api/v2/tickets/4213.json"),
        json!({"ticket": {"ticket_form_id": 42}}),
    )
    .await;
    assert_eq!(code, 422, "{v}");

    // A category's default changes only through the bulk update, and a
    // status given by category then takes the new default.
    {
        let (code, v) = send(
            &http,
            reqwest::Method::PUT,
            format!("{base}/api/v2/custom_status/default.json"),
            json!({"ids": open[1].to_string()}),
        )
        .await;
        assert_eq!(code, 200, "{v}");
        let defaults = client.default_custom_statuses().await.expect("defaults");
        assert!(
            defaults.contains(&open[1]) && !defaults.contains(&open[0]),
            "{defaults:?}"
        );
        let changes = TicketChanges {
            status: Some("open".into()),
            ..TicketChanges::default()
        };
        let t = client.update_ticket(4214, &changes).await.expect("update");
        assert_eq!(t.custom_status_id, Some(open[1]));
    }
    for bad in [json!({}), json!({"ids": "x"}), json!({"ids": [1]})] {
        let (code, _) = send(
            &http,
            reqwest::Method::PUT,
            format!("{base}/api/v2/custom_status/default.json"),
            bad.clone(),
        )
        .await;
        assert_eq!(code, 400, "{bad}");
    }
    let two_open =
        json!({"ids": open.iter().take(2).map(|i| i.to_string()).collect::<Vec<_>>().join(",")});
    {
        let (code, _) = send(
            &http,
            reqwest::Method::PUT,
            format!("{base}/api/v2/custom_status/default.json"),
            two_open,
        )
        .await;
        assert_eq!(code, 400, "two defaults for one category");
    }
}
