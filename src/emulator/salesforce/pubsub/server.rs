//! The gRPC service: `GetTopic`, `GetSchema` and `Subscribe` as the
//! Pub/Sub API answers them. Auth travels as metadata (`accesstoken`,
//! `instanceurl`, `tenantid`); errors carry Salesforce's `error-code`
//! trailer and the `rpcId:` suffix.
//! <https://developer.salesforce.com/docs/platform/pub-sub-api/references/methods/subscribe-rpc.html>
//! <https://developer.salesforce.com/docs/platform/pub-sub-api/guide/handling-errors.html>

use super::super::{lock, Emu};
use super::log::{replay_bytes, replay_of, ReplayError, Stored};
use super::{uuid_like, Keepalive, Topic, ORG_ID};
use crate::connectors::salesforce::pubsub::proto::pub_sub_server::{PubSub, PubSubServer};
use crate::connectors::salesforce::pubsub::proto::{
    ConsumerEvent, FetchRequest, FetchResponse, ProducerEvent, ReplayPreset, SchemaInfo,
    SchemaRequest, TopicInfo, TopicRequest,
};
use crate::emulator::Running;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status, Streaming};

/// Most events a subscription may have requested and not yet received.
pub const MAX_REQUESTED: i32 = 100;

pub const AUTH_ERROR: &str = "sfdc.platform.eventbus.grpc.service.auth.error";
pub const REPLAY_CORRUPTED: &str =
    "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";
pub const REPLAY_INVALID: &str =
    "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed";
pub const TOPIC_NOT_FOUND: &str = "sfdc.platform.eventbus.grpc.topic.not.found";
pub const SCHEMA_NOT_FOUND: &str = "sfdc.platform.eventbus.grpc.schema.not.found";
pub const BAD_REQUEST: &str = "sfdc.platform.eventbus.grpc.subscription.fetch.invalid.request";

/// A status as Pub/Sub API sends one: the message ends with the rpc id,
/// and the trailers carry `error-code` and `rpc-id`.
pub fn error(code: Code, error_code: &str, message: &str, rpc_id: &str) -> Status {
    let mut md = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(error_code) {
        md.insert("error-code", v);
    }
    if let Ok(v) = MetadataValue::try_from(rpc_id) {
        md.insert("rpc-id", v);
    }
    Status::with_metadata(code, format!("{message} rpcId: {rpc_id}"), md)
}

struct Service {
    emu: Arc<Emu>,
}

/// Serves the Pub/Sub API on 127.0.0.1 (`port` 0 picks a free one).
pub(in crate::emulator::salesforce) async fn serve(
    emu: Arc<Emu>,
    port: u16,
) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let svc = PubSubServer::new(Service { emu });
    let task = tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(error = %e, "Pub/Sub emulator stopped");
        }
    });
    Ok(Running { addr, task })
}

impl Service {
    /// A live session token, an instance URL, and this org's id.
    fn authorize(&self, md: &MetadataMap, rpc_id: &str) -> Result<(), Status> {
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let refuse = |why: &str| Err(error(Code::Unauthenticated, AUTH_ERROR, why, rpc_id));
        let token = get("accesstoken");
        if token.is_empty() || !lock(&self.emu.tokens).valid(token, Instant::now()) {
            return refuse("An authentication exception occurred. Provide valid authentication via metadata headers (accesstoken).");
        }
        let url = get("instanceurl");
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return refuse("An authentication exception occurred. Provide valid authentication via metadata headers (instanceurl).");
        }
        let tenant = get("tenantid");
        if tenant.get(..15) != Some(ORG_ID) || !matches!(tenant.len(), 15 | 18) {
            return refuse("An authentication exception occurred. Provide valid authentication via metadata headers (tenantid).");
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl PubSub for Service {
    type SubscribeStream = ReceiverStream<Result<FetchResponse, Status>>;

    async fn get_topic(&self, req: Request<TopicRequest>) -> Result<Response<TopicInfo>, Status> {
        let rpc_id = uuid_like();
        self.authorize(req.metadata(), &rpc_id)?;
        let name = req.into_inner().topic_name;
        let schema_id = match self.emu.bus.topic(&name) {
            Some(Topic::Object(s)) => s.id.clone(),
            // Events of many schemas: each carries its own schema id.
            Some(Topic::All) => String::new(),
            None => return Err(not_found(&name, &rpc_id)),
        };
        Ok(Response::new(TopicInfo {
            topic_name: name,
            tenant_guid: ORG_ID.into(),
            // Change events are published by Salesforce, not by clients.
            can_publish: false,
            can_subscribe: true,
            schema_id,
            rpc_id,
        }))
    }

    async fn get_schema(
        &self,
        req: Request<SchemaRequest>,
    ) -> Result<Response<SchemaInfo>, Status> {
        let rpc_id = uuid_like();
        self.authorize(req.metadata(), &rpc_id)?;
        let id = req.into_inner().schema_id;
        let Some(s) = self.emu.bus.schema_by_id(&id) else {
            return Err(error(
                Code::NotFound,
                SCHEMA_NOT_FOUND,
                &format!("Schema {id:?} not found."),
                &rpc_id,
            ));
        };
        Ok(Response::new(SchemaInfo {
            schema_json: s.json.clone(),
            schema_id: id,
            rpc_id,
        }))
    }

    async fn subscribe(
        &self,
        req: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let rpc_id = uuid_like();
        self.authorize(req.metadata(), &rpc_id)?;
        let (tx, rx) = mpsc::channel(8);
        let emu = self.emu.clone();
        tokio::spawn(async move {
            let mut inbound = req.into_inner();
            if let Err(status) = stream(&emu, &mut inbound, &tx, &rpc_id).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

fn not_found(topic: &str, rpc_id: &str) -> Status {
    error(
        Code::NotFound,
        TOPIC_NOT_FOUND,
        &format!("Topic {topic:?} not found or not subscribable."),
        rpc_id,
    )
}

/// The number a request adds to what is pending, checked.
fn requested(r: &FetchRequest, rpc_id: &str) -> Result<i32, Status> {
    if r.num_requested < 0 {
        return Err(error(
            Code::InvalidArgument,
            BAD_REQUEST,
            "num_requested must not be negative.",
            rpc_id,
        ));
    }
    Ok(r.num_requested)
}

/// One subscription, from its first FetchRequest to its end. `Err` ends it
/// with that status (and trailers).
async fn stream(
    emu: &Emu,
    inbound: &mut Streaming<FetchRequest>,
    tx: &mpsc::Sender<Result<FetchResponse, Status>>,
    rpc_id: &str,
) -> Result<(), Status> {
    let bus = &emu.bus;
    let Some(first) = inbound.message().await? else {
        return Ok(());
    };
    let object: Option<String> = match bus.topic(&first.topic_name) {
        Some(Topic::All) => None,
        Some(Topic::Object(s)) => Some(s.object.clone()),
        None => return Err(not_found(&first.topic_name, rpc_id)),
    };
    let want = |e: &Stored| object.as_deref().is_none_or(|o| o == e.object);
    let mut cursor = {
        let log = bus.log();
        match ReplayPreset::try_from(first.replay_preset) {
            Ok(ReplayPreset::Latest) => log.last(),
            Ok(ReplayPreset::Earliest) => log.earliest_cursor(),
            Ok(ReplayPreset::Custom) => {
                let checked =
                    replay_of(&first.replay_id).and_then(|r| log.check_custom(r).map(|_| r));
                match checked {
                    Ok(r) => r,
                    Err(ReplayError::Corrupted) => {
                        return Err(error(Code::InvalidArgument, REPLAY_CORRUPTED,
                            "The Replay ID value is corrupted or invalid. Provide a valid Replay ID.", rpc_id))
                    }
                    Err(ReplayError::Invalid) => {
                        return Err(error(Code::InvalidArgument, REPLAY_INVALID,
                            "The Replay ID validation failed. Ensure that the Replay ID is valid and within the retention window.", rpc_id))
                    }
                }
            }
            Err(_) => {
                return Err(error(
                    Code::InvalidArgument,
                    BAD_REQUEST,
                    "Unknown replay_preset.",
                    rpc_id,
                ))
            }
        }
    };
    let mut pending = requested(&first, rpc_id)?.min(MAX_REQUESTED);
    let mut latest = bus.watch_latest();
    let mut cuts = bus.watch_cuts();
    let mut last_sent = Instant::now();
    loop {
        if pending > 0 {
            let batch = bus.log().after(cursor, pending as usize, want);
            if let Some(last) = batch.last() {
                cursor = last.replay;
                pending -= batch.len() as i32;
                let events = batch.iter().map(consumer_event).collect();
                let resp = FetchResponse {
                    events,
                    latest_replay_id: replay_bytes(cursor),
                    rpc_id: rpc_id.into(),
                    pending_num_requested: pending,
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return Ok(());
                }
                last_sent = Instant::now();
                continue;
            }
        }
        // Keepalives only while events are requested (none are owed otherwise).
        let keepalive_at = match bus.keepalive_mode() {
            _ if pending == 0 => None,
            Keepalive::Normal => Some(last_sent + bus.options().keepalive),
            Keepalive::Delay(d) => Some(last_sent + bus.options().keepalive + d),
            Keepalive::Stop => None,
        };
        let keepalive = async {
            match keepalive_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = inbound.message() => match msg {
                Ok(Some(r)) => pending = (pending + requested(&r, rpc_id)?).min(MAX_REQUESTED),
                // The client closed its side or went away.
                Ok(None) | Err(_) => return Ok(()),
            },
            changed = latest.changed() => if changed.is_err() { return Ok(()) },
            cut = cuts.recv() => {
                if let Ok(c) = cut {
                    return Err(error(c.code, &c.error_code, &c.message, rpc_id));
                }
            }
            _ = keepalive => {
                // Nothing owed to this client up to the bus's last id: the
                // position may advance past events of other topics.
                let idle = {
                    let log = bus.log();
                    log.after(cursor, 1, want).is_empty().then(|| log.last())
                };
                if let Some(last) = idle {
                    cursor = cursor.max(last);
                    let resp = FetchResponse {
                        events: vec![],
                        latest_replay_id: replay_bytes(cursor),
                        rpc_id: rpc_id.into(),
                        pending_num_requested: pending,
                    };
                    if tx.send(Ok(resp)).await.is_err() {
                        return Ok(());
                    }
                    last_sent = Instant::now();
                }
            }
            _ = tx.closed() => return Ok(()),
        }
    }
}

fn consumer_event(e: &Stored) -> ConsumerEvent {
    ConsumerEvent {
        event: Some(ProducerEvent {
            id: e.id.clone(),
            schema_id: e.schema_id.clone(),
            payload: e.payload.as_ref().clone(),
            headers: vec![],
        }),
        replay_id: replay_bytes(e.replay),
    }
}
