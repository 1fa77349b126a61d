//! Salesforce Change Data Capture over the Pub/Sub API, for `l3map run`:
//! one task per (connection, channel), subscribed over gRPC, each change
//! decoded from Avro and passed to the fan-out, its replay id stored once
//! the fan-out has it (docs/RUNTIME.md, "Change Data Capture").
//!
//! The files: `grpc.rs` (channel, credentials, schema cache, errors),
//! `decode.rs` (Avro to [`CrmChange`](crate::runtime::links::CrmChange)),
//! `bitmap.rs` (`changedFields` and friends), `cursor.rs` (the stored
//! replay id), `ctx.rs` (a task's state and its retried waits), `stream.rs` (one channel's subscription), `heal.rs` (gaps,
//! overflows, catch-up polls). This file keeps exactly one task per
//! channel alive, also across hot reloads.

mod bitmap;
mod ctx;
mod cursor;
mod decode;
mod grpc;
mod heal;
mod stream;

pub use bitmap::{expand, field_name, BitmapError, Records};
pub use cursor::{replay_key, Position, CDC_SOURCE};
pub use decode::{decode, DecodeError, Decoded};
pub use grpc::{REPLAY_ID_CORRUPTED, REPLAY_ID_INVALID};
pub use stream::{is_own, MAX_REQUESTED};

use crate::connectors::salesforce::SalesforceClient;
use crate::ir::{Kind, Program};
use crate::runtime::config::Cdc;
use crate::runtime::engine::Engine;
use crate::runtime::links::fanout::Fanout;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub(crate) const LOG_TARGET: &str = "l3map::runtime::cdc";

/// How often the mappings in use are compared with the running streams.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// An object's change event channel: `/data/AccountChangeEvent`, and for a
/// custom object `/data/Foo__ChangeEvent` (the `__c` suffix becomes
/// `__ChangeEvent`).
/// https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_subscribe_channels.htm
pub fn channel_of(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(stem) => format!("/data/{stem}__ChangeEvent"),
        None => format!("/data/{object}ChangeEvent"),
    }
}

/// The object a single-entity channel is about; `None` for a custom
/// channel (`/data/Sales__chn`) or anything else.
pub fn object_of(channel: &str) -> Option<String> {
    let topic = channel.strip_prefix("/data/")?;
    if let Some(stem) = topic.strip_suffix("__ChangeEvent") {
        return (!stem.is_empty()).then(|| format!("{stem}__c"));
    }
    let object = topic.strip_suffix("ChangeEvent")?;
    (!object.is_empty()).then(|| object.to_string())
}

/// The (connection, channel) pairs to subscribe to: for each Salesforce
/// connection with a client, `[cdc] channels`, or one channel per object
/// its mappings and links name.
pub fn wanted(
    program: &Program,
    cfg: &Cdc,
    clients: &HashMap<String, SalesforceClient>,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for c in &program.connections {
        if c.kind != Kind::Salesforce || !clients.contains_key(&c.name) {
            continue;
        }
        match &cfg.channels {
            Some(channels) => {
                for ch in channels {
                    out.insert((c.name.clone(), ch.clone()));
                }
            }
            None => {
                let links = program
                    .links
                    .iter()
                    .filter(|l| l.crm == c.name)
                    .map(|l| &l.object);
                for object in c.objects.iter().chain(links) {
                    out.insert((c.name.clone(), channel_of(object)));
                }
            }
        }
    }
    out
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Keeps one stream per wanted (connection, channel) until `stop`: the
/// set is read from the mappings in use every second, so a hot reload
/// that adds or drops an object starts or ends its stream. A stream is
/// ended (and waited for) before any other starts for its channel, so one
/// channel never has two.
pub fn spawn(
    engine: Arc<Engine>,
    fanout: Arc<Fanout>,
    clients: HashMap<String, SalesforceClient>,
    cfg: Cdc,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let schemas: HashMap<String, grpc::Schemas> = clients
            .keys()
            .map(|k| (k.clone(), grpc::Schemas::default()))
            .collect();
        let mut running: BTreeMap<(String, String), Running> = BTreeMap::new();
        loop {
            let want = wanted(&engine.live().program, &cfg, &clients);
            let gone: Vec<(String, String)> = running
                .keys()
                .filter(|k| !want.contains(*k))
                .cloned()
                .collect();
            for key in gone {
                if let Some(r) = running.remove(&key) {
                    tracing::info!(target: LOG_TARGET, connection = %key.0, channel = %key.1, "the mappings no longer name this channel's object; unsubscribing");
                    let _ = r.stop.send(true);
                    let _ = r.task.await;
                }
            }
            for key in want {
                if running.contains_key(&key) {
                    continue;
                }
                let (connection, channel) = key.clone();
                let Some(object) = object_of(&channel) else {
                    tracing::warn!(target: LOG_TARGET, connection = %connection, channel = %channel, "not a single-object change event channel; not subscribed");
                    continue;
                };
                let (Some(client), Some(schemas)) =
                    (clients.get(&connection), schemas.get(&connection))
                else {
                    continue;
                };
                engine.metrics.cdc_channel(&connection, &channel);
                let (tx, rx) = watch::channel(false);
                let ctx = ctx::Ctx {
                    engine: engine.clone(),
                    fanout: fanout.clone(),
                    client: client.clone(),
                    schemas: schemas.clone(),
                    endpoint: cfg.endpoint_for(&connection).to_string(),
                    batch: cfg.batch.clamp(1, MAX_REQUESTED),
                    connection,
                    channel,
                    object,
                    stop: rx,
                    metrics: engine.metrics.clone(),
                };
                let task = tokio::spawn(stream::run(ctx));
                running.insert(key, Running { stop: tx, task });
            }
            let stopped = tokio::select! {
                _ = stop.wait_for(|s| *s) => true,
                _ = tokio::time::sleep(RECONCILE_EVERY) => false,
            };
            if stopped {
                break;
            }
        }
        for r in running.values() {
            let _ = r.stop.send(true);
        }
        for (_, r) in running {
            let _ = r.task.await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_objects_correspond() {
        for (object, channel) in [
            ("Account", "/data/AccountChangeEvent"),
            ("Case", "/data/CaseChangeEvent"),
            ("Ticket__c", "/data/Ticket__ChangeEvent"),
        ] {
            assert_eq!(channel_of(object), channel);
            assert_eq!(object_of(channel).as_deref(), Some(object));
        }
        assert_eq!(object_of("/data/ChangeEvents"), None);
        assert_eq!(object_of("/data/Sales__chn"), None);
        assert_eq!(object_of("/event/Foo__e"), None);
    }
}
