//! `l3map emulate PROJECT` creates every Salesforce field the project
//! declares in `fields CRM { ... }`, with its type, also those no rule maps
//! (a key only a link compares): describe, REST, SOQL and the Change Data
//! Capture schema over gRPC all know them. Driven through the real binary.

use crate::common;

use l3map::connectors::salesforce::pubsub::proto::pub_sub_client::PubSubClient;
use l3map::connectors::salesforce::pubsub::proto::{SchemaRequest, TopicRequest};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use tonic::Request;

const PROJECT: &str = r#"connection desk: zendesk {
  subdomain "acme"
  token     env("ZD_TOKEN")
  scopes    read, tickets:write
}

connection crm: salesforce {
  instance      "https://acme.my.salesforce.com"
  client_id     env("SF_CLIENT_ID")
  client_secret env("SF_CLIENT_SECRET")
  refresh_token env("SF_REFRESH_TOKEN")
  scopes        api, refresh_token
  objects       Account
}

fields desk {
  sla_tier  #360001  enum(enterprise, standard)
}

fields crm {
  Account.Tier__c      enum("Ent", "Std")
  Account.Acct_Key__c  string  external_id unique  "Account key"
  Account.Region__c    enum("EU", "US")
  Account.Seats__c     number
}

map crm -> desk {
  Account.Tier__c -> sla_tier {
    "Ent" => enterprise
    _     => standard
  }
}

link desk.organization <-> crm.Account {
  on organization.fields.acct_key == Account.Acct_Key__c
}
"#;

struct Emulate(Child);

impl Drop for Emulate {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_fields_no_rule_maps_exist_in_the_emulator() {
    let dir = common::project("fields", &[("p.l3map", PROJECT)]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"])
        .arg(dir.path())
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("l3map emulate starts");
    let (_zd, sf, pubsub, lines) = common::emulator_endpoints(&mut child);
    let _emulate = Emulate(child);
    common::drain(lines);

    let http = reqwest::Client::new();
    let grant: Value = http
        .post(format!("{sf}/services/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "l3map-emulator-client"),
            ("client_secret", "l3map-emulator-secret"),
            ("refresh_token", "l3map-emulator-refresh"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = grant["access_token"].as_str().expect("a token").to_string();

    // describe: each declared field, with the type its declaration says.
    let describe: Value = http
        .get(format!(
            "{sf}/services/data/v64.0/sobjects/Account/describe"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let field = |name: &str| {
        describe["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in describe: {describe:#}"))
    };
    assert_eq!(field("Acct_Key__c")["type"], "string");
    // Marked as the declaration says (describe's externalId / unique).
    assert_eq!(field("Acct_Key__c")["externalId"], true);
    assert_eq!(field("Acct_Key__c")["unique"], true);
    assert_eq!(field("Seats__c")["externalId"], false);
    assert_eq!(field("Seats__c")["type"], "double");
    assert_eq!(field("Region__c")["type"], "picklist");
    assert_eq!(
        field("Region__c")["picklistValues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].clone())
            .collect::<Vec<_>>(),
        vec![json!("EU"), json!("US")]
    );

    // REST: a person creates an Account with the link's key; a value the
    // picklist does not have is refused, as Salesforce's restricted
    // picklists are.
    let (status, created) = common::answer(
        http.post(format!("{sf}/__l3map/person/sobjects/Account"))
            .json(
                &json!({"Name": "Keyed", "Acct_Key__c": "k-1", "Region__c": "EU", "Seats__c": 3}),
            ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, refused) = common::answer(
        http.post(format!("{sf}/__l3map/person/sobjects/Account"))
            .json(&json!({"Name": "Bad", "Region__c": "APAC"})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");

    // SOQL filters on the key, as the link's lookup does.
    let found: Value = http
        .get(format!("{sf}/services/data/v64.0/query"))
        .query(&[(
            "q",
            "SELECT Id, Acct_Key__c, Seats__c FROM Account WHERE Acct_Key__c = 'k-1'",
        )])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalSize"], 1, "{found}");
    assert_eq!(found["records"][0]["Id"], created["id"], "{found}");
    assert_eq!(found["records"][0]["Seats__c"], 3.0, "{found}");

    // CDC: the change event schema carries the fields.
    let mut client = PubSubClient::connect(pubsub).await.expect("gRPC connects");
    fn authed<T>(msg: T, token: &str, sf: &str) -> Request<T> {
        let mut r = Request::new(msg);
        let md = r.metadata_mut();
        md.insert("accesstoken", token.parse().unwrap());
        md.insert("instanceurl", sf.parse().unwrap());
        md.insert("tenantid", "00D5e0000000001".parse().unwrap());
        r
    }
    let topic = client
        .get_topic(authed(
            TopicRequest {
                topic_name: "/data/AccountChangeEvent".into(),
            },
            &token,
            &sf,
        ))
        .await
        .expect("GetTopic")
        .into_inner();
    let req = SchemaRequest {
        schema_id: topic.schema_id,
    };
    let schema = client
        .get_schema(authed(req, &token, &sf))
        .await
        .expect("GetSchema")
        .into_inner();
    for f in ["Acct_Key__c", "Region__c", "Seats__c"] {
        assert!(
            schema.schema_json.contains(&format!("\"{f}\"")),
            "{f} not in the CDC schema"
        );
    }
    common::keep_on_panic(dir);
}

/// EMULATORS.md's `l3map.toml` for running a project against the
/// emulators is a valid configuration, and turns Change Data Capture on
/// against the emulator's plain HTTP/2 Pub/Sub port.
#[test]
fn the_documented_emulator_configuration_parses_with_cdc_on() {
    let doc = std::fs::read_to_string(common::root().join("docs/EMULATORS.md")).unwrap();
    let section = doc
        .split("### Running your own project against the emulators")
        .nth(1)
        .expect("the section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block");
    let dir = common::temp_dir("emu-config");
    let config = l3map::runtime::config::Config::parse(toml, dir.path())
        .unwrap_or_else(|e| panic!("EMULATORS.md's l3map.toml: {e}\n{toml}"));
    assert!(config.cdc.enabled, "{toml}");
    assert_eq!(config.cdc.endpoint, "http://127.0.0.1:8803");
    assert!(section.contains("Change Data Capture is off by default"));
}

/// `l3map emulate PROJECT` with a schema lockfile creates the ticket forms
/// it records, with the statuses each offers (docs/EMULATORS.md, "Ticket
/// forms"), not only "Default Ticket Form".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lockfiles_ticket_forms_exist_in_the_emulator() {
    const DESK: &str = r#"connection desk: zendesk {
  subdomain "acme"
  token     env("ZD_TOKEN")
  scopes    read, tickets:write
}

statuses desk {
  forms "Billing", "Vendors"
  new      new      "New"
  open     open     "Open"
  vendor   pending  "Waiting on vendor"  #7001
  solved   solved   "Solved"

  new -> open
  open -> vendor, solved
  vendor -> open
  solved -> open
}
"#;
    let lock = json!({"lock_version": 2, "zendesk": {"desk": {
    "ticket_fields": [],
    "custom_statuses": [
        {"id": 7000, "agent_label": "Pending", "status_category": "pending", "default": true},
        {"id": 7001, "agent_label": "Waiting on vendor", "status_category": "pending"},
        {"id": 7002, "agent_label": "Open", "status_category": "open", "default": true},
        {"id": 7003, "agent_label": "Solved", "status_category": "solved", "default": true},
        {"id": 7004, "agent_label": "New", "status_category": "new", "default": true}
    ],
    "ticket_forms": [
        {"id": 501, "name": "Billing", "active": true, "default": true, "custom_status_ids": [7001, 7002, 7003, 7004]},
        {"id": 502, "name": "Vendors", "active": true, "custom_status_ids": [7000, 7001, 7002, 7003, 7004]}
    ]}}});
    let dir = common::project(
        "forms",
        &[("desk.l3map", DESK), ("l3map.lock.json", &lock.to_string())],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"])
        .arg(dir.path())
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("l3map emulate starts");
    let (zd, _sf, _pubsub, lines) = common::emulator_endpoints(&mut child);
    let _emulate = Emulate(child);
    common::drain(lines);
    let forms: Value = reqwest::Client::new()
        .get(format!("{zd}/api/v2/ticket_forms"))
        .bearer_auth("l3map-dev-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut got: Vec<(u64, String)> = forms["ticket_forms"]
        .as_array()
        .unwrap_or_else(|| panic!("{forms}"))
        .iter()
        .map(|f| {
            (
                f["id"].as_u64().unwrap_or_default(),
                f["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![(501, "Billing".to_string()), (502, "Vendors".to_string())],
        "{forms}"
    );
}
