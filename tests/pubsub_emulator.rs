//! The Salesforce emulator's Pub/Sub API, driven through the real binary
//! (`l3map emulate`) with the generated tonic client: topics and schemas,
//! Change Data Capture events for REST writes (with the client id l3map
//! sends in `Sforce-Call-Options`) and for a person's change, flow control,
//! replay from a stored id, and the error for an expired one.

use crate::common;

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use l3map::connectors::salesforce::pubsub::proto::pub_sub_client::PubSubClient;
use l3map::connectors::salesforce::pubsub::proto::{
    FetchRequest, FetchResponse, ReplayPreset, SchemaRequest, TopicRequest,
};
use l3map::emulator::salesforce::pubsub::bitmap;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Request, Streaming};

struct Emulate(Child);

impl Drop for Emulate {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Org {
    sf: String,
    token: String,
    http: reqwest::Client,
    client: PubSubClient<Channel>,
}

impl Org {
    fn authed<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        let md = r.metadata_mut();
        md.insert("accesstoken", self.token.parse().unwrap());
        md.insert("instanceurl", self.sf.parse().unwrap());
        md.insert("tenantid", "00D5e0000000001".parse().unwrap());
        r
    }

    /// A Subscribe call: the sender for further FetchRequests and the
    /// response stream (or the status the call ended with at once).
    async fn subscribe(
        &self,
        first: FetchRequest,
    ) -> Result<(mpsc::Sender<FetchRequest>, Streaming<FetchResponse>), tonic::Status> {
        let (tx, rx) = mpsc::channel(4);
        tx.send(first).await.unwrap();
        let resp = self
            .client
            .clone()
            .subscribe(self.authed(ReceiverStream::new(rx)))
            .await?;
        Ok((tx, resp.into_inner()))
    }

    async fn patch(&self, path: &str, body: Value, client_id: Option<&str>) {
        let mut req = self
            .http
            .patch(format!("{}{path}", self.sf))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(c) = client_id {
            req = req.header("Sforce-Call-Options", format!("client={c}"));
        }
        let status = req.send().await.unwrap().status().as_u16();
        assert_eq!(status, 204, "PATCH {path}");
    }
}

fn fetch(topic: &str, preset: ReplayPreset, replay: Vec<u8>, n: i32) -> FetchRequest {
    FetchRequest {
        topic_name: topic.into(),
        replay_preset: preset as i32,
        replay_id: replay,
        num_requested: n,
        auth_refresh: String::new(),
    }
}

/// The next response within `within`, `None` when none came.
async fn next(s: &mut Streaming<FetchResponse>, within: Duration) -> Option<FetchResponse> {
    match tokio::time::timeout(within, s.message()).await {
        Ok(r) => r.expect("the stream stays healthy"),
        Err(_) => None,
    }
}

/// Decoded change event: header fields and the record's fields.
fn decode(schema: &Schema, payload: &[u8]) -> Vec<(String, Avro)> {
    match l3map::emulator::salesforce::pubsub::avro::decode(schema, payload).expect("Avro") {
        Avro::Record(r) => r,
        other => panic!("not a record: {other:?}"),
    }
}

fn field<'a>(rec: &'a [(String, Avro)], name: &str) -> &'a Avro {
    &rec.iter().find(|(n, _)| n == name).expect(name).1
}

fn text(v: &Avro) -> String {
    match v {
        Avro::String(s) => s.clone(),
        Avro::Enum(_, s) => s.clone(),
        Avro::Union(_, b) => text(b),
        other => panic!("not text: {other:?}"),
    }
}

fn strings(v: &Avro) -> Vec<String> {
    match v {
        Avro::Array(a) => a.iter().map(text).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_events_flow_control_replay_and_expiry_over_grpc() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l3map"))
        .args(["emulate", "--zendesk-port", "0", "--salesforce-port", "0"])
        .args(["--pubsub-keepalive-ms", "400"])
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
    let client = PubSubClient::connect(pubsub.clone())
        .await
        .expect("gRPC connects");
    let org = Org {
        sf: sf.clone(),
        token,
        http: http.clone(),
        client,
    };

    // A bad token is refused with Salesforce's auth error code.
    let mut bad = Request::new(TopicRequest {
        topic_name: "/data/AccountChangeEvent".into(),
    });
    bad.metadata_mut()
        .insert("accesstoken", "nope".parse().unwrap());
    let err = org.client.clone().get_topic(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        err.metadata().get("error-code").unwrap(),
        "sfdc.platform.eventbus.grpc.service.auth.error"
    );

    let topic = org
        .client
        .clone()
        .get_topic(org.authed(TopicRequest {
            topic_name: "/data/AccountChangeEvent".into(),
        }))
        .await
        .expect("GetTopic")
        .into_inner();
    assert!(topic.can_subscribe && !topic.schema_id.is_empty());
    let info = org
        .client
        .clone()
        .get_schema(org.authed(SchemaRequest {
            schema_id: topic.schema_id.clone(),
        }))
        .await
        .expect("GetSchema")
        .into_inner();
    let schema = Schema::parse_str(&info.schema_json).expect("an Avro schema");
    let unknown = org
        .client
        .clone()
        .get_topic(org.authed(TopicRequest {
            topic_name: "/data/NopeChangeEvent".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let accounts: Value = http
        .get(format!(
            "{sf}/services/data/v64.0/query?q=SELECT+Id+FROM+Account"
        ))
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = accounts["records"][0]["Id"].as_str().unwrap().to_string();
    let path = format!("/services/data/v64.0/sobjects/Account/{account}");

    // Subscribed from LATEST with room for 2; the first keepalive says the
    // subscription is live before anything changes.
    let topic_name = "/data/AccountChangeEvent";
    let (tx, mut stream) = org
        .subscribe(fetch(topic_name, ReplayPreset::Latest, vec![], 2))
        .await
        .expect("Subscribe");
    let keepalive = next(&mut stream, Duration::from_secs(5))
        .await
        .expect("a keepalive");
    assert!(keepalive.events.is_empty());
    assert_eq!(keepalive.pending_num_requested, 2);
    assert_eq!(keepalive.latest_replay_id.len(), 8);

    org.patch(
        &path,
        json!({"Name": "Nimbus Analytics Ltd"}),
        Some("l3map"),
    )
    .await;
    let person = http
        .patch(format!("{sf}/__l3map/person/sobjects/Account/{account}"))
        .json(&json!({"SLA_Tier__c": "Gold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(person.status().as_u16(), 204);

    let mut events = vec![];
    while events.len() < 2 {
        let resp = next(&mut stream, Duration::from_secs(5))
            .await
            .expect("events");
        events.extend(resp.events);
    }
    let decoded: Vec<_> = events
        .iter()
        .map(|e| {
            let ev = e.event.as_ref().unwrap();
            assert_eq!(ev.schema_id, topic.schema_id);
            decode(&schema, &ev.payload)
        })
        .collect();
    let header = |i: usize| match field(&decoded[i], "ChangeEventHeader") {
        Avro::Record(h) => h.clone(),
        other => panic!("{other:?}"),
    };
    let (api, person) = (header(0), header(1));
    assert_eq!(text(field(&api, "changeType")), "UPDATE");
    assert_eq!(strings(field(&api, "recordIds")), vec![account.clone()]);
    assert_eq!(
        text(field(&api, "changeOrigin")),
        "com/salesforce/api/rest/64.0;client=l3map"
    );
    let mut changed = bitmap::expand(&schema, &strings(field(&api, "changedFields")));
    changed.sort();
    assert_eq!(changed, vec!["LastModifiedDate", "Name"]);
    assert_eq!(text(field(&decoded[0], "Name")), "Nimbus Analytics Ltd");
    assert!(matches!(
        field(&decoded[0], "SLA_Tier__c"),
        Avro::Union(0, _)
    ));

    assert_eq!(text(field(&person, "changeOrigin")), "");
    assert_ne!(
        text(field(&person, "commitUser")),
        text(field(&api, "commitUser"))
    );
    let mut changed = bitmap::expand(&schema, &strings(field(&person, "changedFields")));
    changed.sort();
    assert_eq!(changed, vec!["LastModifiedDate", "SLA_Tier__c"]);
    assert_eq!(text(field(&decoded[1], "SLA_Tier__c")), "Gold");

    // Flow control: both requested events delivered, nothing more is sent
    // (not even keepalives) until more are requested.
    org.patch(&path, json!({"Contract_Value__c": 1.0}), Some("l3map"))
        .await;
    assert!(next(&mut stream, Duration::from_millis(1200))
        .await
        .is_none());
    tx.send(fetch("", ReplayPreset::Latest, vec![], 1))
        .await
        .unwrap();
    let third = next(&mut stream, Duration::from_secs(5))
        .await
        .expect("the third event");
    assert_eq!(third.events.len(), 1);
    assert_eq!(third.pending_num_requested, 0);
    drop((tx, stream));

    // Resuming from the first event's replay id: only the later events.
    let stored = events[0].replay_id.clone();
    let (_tx, mut resumed) = org
        .subscribe(fetch(topic_name, ReplayPreset::Custom, stored.clone(), 10))
        .await
        .expect("Subscribe CUSTOM");
    let mut replays = vec![];
    while replays.len() < 2 {
        let resp = next(&mut resumed, Duration::from_secs(5))
            .await
            .expect("replayed events");
        replays.extend(resp.events.into_iter().map(|e| e.replay_id));
    }
    assert_eq!(
        replays,
        vec![
            events[1].replay_id.clone(),
            third.events[0].replay_id.clone()
        ]
    );

    // Past the retention window, the stored id is refused.
    let (status, _) = common::answer(
        http.post(format!("{sf}/__l3map/pubsub/expire"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let err = match org
        .subscribe(fetch(topic_name, ReplayPreset::Custom, stored, 10))
        .await
    {
        Err(e) => e,
        Ok((_tx, mut s)) => match tokio::time::timeout(Duration::from_secs(5), s.message()).await {
            Ok(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        },
    };
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.metadata().get("error-code").unwrap(),
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed"
    );
}
