//! The Salesforce Pub/Sub API (gRPC, `eventbus.v1`), emulated for Change
//! Data Capture: every record change the emulator makes (REST, sObject
//! Collections, the admin "as a person" call) is published as an
//! Avro-encoded change event on `/data/<Object>ChangeEvent` and
//! `/data/ChangeEvents`; `Subscribe` serves them with flow control, replay
//! and keepalives; admin calls inject gaps, overflows, stream errors and
//! expired replay ids. Behaviour and deviations: docs/EMULATORS.md.

mod admin;
pub mod avro;
pub mod bitmap;
pub mod log;
mod server;

pub(super) use admin::routes as admin_routes;
pub(super) use server::serve;

use super::schema::Schema;
use super::{lock, Record};
use avro::{EventSchema, Header};
use log::{EventLog, Stored};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// The emulated org's Id (15 characters; the `tenantid` metadata names it).
pub const ORG_ID: &str = "00D5e0000000001";
/// The integration user every API write is committed by.
pub const API_USER: &str = "0055e0000000001";
/// The user the "as a person would" admin call commits as.
pub const PERSON_USER: &str = "0055e0000000002";
/// The channel carrying every object's change events.
pub const ALL_CHANGES: &str = "/data/ChangeEvents";

/// How the Pub/Sub side behaves.
#[derive(Debug, Clone)]
pub struct PubSubOptions {
    /// How long a subscription with requested events waits without events
    /// before an empty keepalive `FetchResponse`. Salesforce: within 270 s;
    /// short by default here so tests see keepalives.
    pub keepalive: Duration,
    /// How long events are kept for replay (Salesforce: 72 hours).
    pub retention: Duration,
}

impl Default for PubSubOptions {
    fn default() -> Self {
        PubSubOptions {
            keepalive: Duration::from_secs(5),
            retention: Duration::from_secs(72 * 3600),
        }
    }
}

/// A live stream cut on request: its gRPC status and `error-code` trailer.
#[derive(Debug, Clone)]
pub struct Cut {
    pub code: tonic::Code,
    pub error_code: String,
    pub message: String,
}

/// Keepalives as configured, later than that, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keepalive {
    Normal,
    Delay(Duration),
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Create,
    Update,
    Delete,
}

/// One record change the store made, waiting to be published.
#[derive(Debug, Clone)]
pub(crate) struct StoreChange {
    pub object: String,
    pub id: String,
    pub kind: Kind,
    /// The values the event carries: every non-null field on create, the
    /// changed ones on update, none on delete.
    pub fields: Record,
    pub changed: BTreeSet<String>,
    pub nulled: BTreeSet<String>,
}

/// Who made a change and through what (`changeOrigin`, `commitUser`).
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub change_origin: String,
    pub commit_user: String,
}

impl Origin {
    /// A REST call: `com/salesforce/api/rest/<version>[;client=<id>]`, the
    /// client from the request's `Sforce-Call-Options` header.
    /// <https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_event_fields_header.htm>
    pub fn rest(version: &str, headers: &axum::http::HeaderMap) -> Origin {
        let version = version.trim_start_matches('v');
        let client = headers
            .get("sforce-call-options")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split([',', ';'])
                    .filter_map(|p| p.trim().strip_prefix("client="))
                    .map(str::trim)
                    .find(|c| !c.is_empty())
                    .map(str::to_string)
            });
        let mut change_origin = format!("com/salesforce/api/rest/{version}");
        if let Some(c) = client {
            change_origin.push_str(";client=");
            change_origin.push_str(&c);
        }
        Origin {
            change_origin,
            commit_user: super::ids::with_checksum(API_USER),
        }
    }

    /// A person in the Salesforce UI: no API origin, another user.
    pub fn person() -> Origin {
        Origin {
            change_origin: String::new(),
            commit_user: super::ids::with_checksum(PERSON_USER),
        }
    }
}

/// A topic a client names.
pub(crate) enum Topic<'a> {
    All,
    Object(&'a EventSchema),
}

/// The event bus: schemas by object, the stored events, and the signals
/// live subscriptions wait on.
pub struct Bus {
    opts: PubSubOptions,
    schemas: BTreeMap<String, EventSchema>,
    log: Mutex<EventLog>,
    commit_number: Mutex<i64>,
    /// The last replay id, for subscriptions to wake on.
    latest: watch::Sender<u64>,
    cuts: broadcast::Sender<Cut>,
    keepalive: Mutex<Keepalive>,
}

impl Bus {
    pub(crate) fn new(schema: &Schema, opts: PubSubOptions) -> Bus {
        let schemas = schema
            .objects
            .iter()
            .filter_map(|o| match EventSchema::for_object(o) {
                Ok(s) => Some((o.name.clone(), s)),
                Err(e) => {
                    tracing::warn!(object = %o.name, error = %e, "no change event schema");
                    None
                }
            })
            .collect();
        Bus {
            opts,
            schemas,
            log: Mutex::new(EventLog::default()),
            commit_number: Mutex::new(0),
            latest: watch::channel(0).0,
            cuts: broadcast::channel(16).0,
            keepalive: Mutex::new(Keepalive::Normal),
        }
    }

    pub(crate) fn topic(&self, name: &str) -> Option<Topic<'_>> {
        if name == ALL_CHANGES {
            return Some(Topic::All);
        }
        self.schemas
            .values()
            .find(|s| s.topic == name)
            .map(Topic::Object)
    }

    pub(crate) fn schema_by_id(&self, id: &str) -> Option<&EventSchema> {
        self.schemas.values().find(|s| s.id == id)
    }

    pub fn schema_of(&self, object: &str) -> Option<&EventSchema> {
        self.schemas.get(object)
    }

    pub(crate) fn options(&self) -> &PubSubOptions {
        &self.opts
    }

    pub(crate) fn log(&self) -> std::sync::MutexGuard<'_, EventLog> {
        let mut log = lock(&self.log);
        log.purge_older(jiff::Timestamp::now(), self.opts.retention);
        log
    }

    pub(crate) fn watch_latest(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    pub(crate) fn watch_cuts(&self) -> broadcast::Receiver<Cut> {
        self.cuts.subscribe()
    }

    pub(crate) fn keepalive_mode(&self) -> Keepalive {
        *lock(&self.keepalive)
    }

    /// Publishes the changes of one transaction (one API call), in order.
    pub(crate) fn commit(&self, changes: Vec<StoreChange>, origin: &Origin) {
        if changes.is_empty() {
            return;
        }
        let number = {
            let mut n = lock(&self.commit_number);
            *n += 1;
            *n
        };
        let key = uuid_like();
        let now = jiff::Timestamp::now();
        for (i, c) in changes.iter().enumerate() {
            let Some(schema) = self.schemas.get(&c.object) else {
                continue;
            };
            let change_type = match c.kind {
                Kind::Create => "CREATE",
                Kind::Update => "UPDATE",
                Kind::Delete => "DELETE",
            };
            let header = Header {
                entity_name: c.object.clone(),
                record_ids: vec![c.id.clone()],
                change_type,
                change_origin: origin.change_origin.clone(),
                transaction_key: key.clone(),
                sequence_number: i as i32 + 1,
                commit_timestamp: now.as_millisecond(),
                commit_number: number,
                commit_user: origin.commit_user.clone(),
                nulled_fields: schema.bitmaps(&c.nulled),
                diff_fields: vec![],
                changed_fields: schema.bitmaps(&c.changed),
            };
            self.append(schema, &header, &c.fields, now);
        }
    }

    fn append(&self, schema: &EventSchema, header: &Header, fields: &Record, at: jiff::Timestamp) {
        let payload = match schema.encode(header, fields) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(object = %schema.object, error = %e, "change event not encoded");
                return;
            }
        };
        let replay = self.log().append(Stored {
            replay: 0,
            at,
            object: schema.object.clone(),
            schema_id: schema.id.clone(),
            id: uuid_like(),
            payload: Arc::new(payload),
        });
        self.latest.send_replace(replay);
    }

    /// A header-only event: a gap (`GAP_CREATE`, `GAP_UPDATE`, …) for
    /// `ids`, or `GAP_OVERFLOW` (ids empty: the object's key prefix and `*`).
    pub fn inject(&self, object: &str, change_type: &str, ids: &[String]) -> Result<u64, String> {
        let schema = self
            .schemas
            .get(object)
            .ok_or_else(|| format!("no change events for object {object:?}"))?;
        let change_type = *avro::CHANGE_TYPES
            .iter()
            .find(|c| **c == change_type && c.starts_with("GAP_"))
            .ok_or_else(|| format!("{change_type:?} is not a GAP_ change type"))?;
        let record_ids = if ids.is_empty() {
            vec![format!("{}*", schema.key_prefix)]
        } else {
            ids.to_vec()
        };
        let number = {
            let mut n = lock(&self.commit_number);
            *n += 1;
            *n
        };
        let now = jiff::Timestamp::now();
        let header = Header {
            entity_name: object.into(),
            record_ids,
            change_type,
            change_origin: String::new(),
            transaction_key: uuid_like(),
            sequence_number: 1,
            commit_timestamp: now.as_millisecond(),
            commit_number: number,
            commit_user: super::ids::with_checksum(API_USER),
            nulled_fields: vec![],
            diff_fields: vec![],
            changed_fields: vec![],
        };
        self.append(schema, &header, &Record::new(), now);
        Ok(self.log().last())
    }

    /// Ends every live subscription with `cut`; how many there were.
    pub fn cut(&self, cut: Cut) -> usize {
        self.cuts.send(cut).unwrap_or(0)
    }

    pub fn set_keepalive(&self, k: Keepalive) {
        *lock(&self.keepalive) = k;
        // Wake subscriptions so a new delay applies now.
        self.latest.send_modify(|_| {});
    }

    /// Purges stored events up to `through` (all when `None`): their replay
    /// ids are then refused as too old.
    pub fn expire(&self, through: Option<u64>) {
        self.log().expire(through);
    }

    /// The last replay id given out (0: none).
    pub fn last_replay(&self) -> u64 {
        self.log().last()
    }

    /// Events stored now.
    pub fn stored(&self) -> usize {
        self.log().len()
    }

    /// Topic names served: one per object, and `/data/ChangeEvents`.
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.schemas.values().map(|s| s.topic.clone()).collect();
        t.push(ALL_CHANGES.into());
        t
    }
}

/// A random UUID-shaped string (event ids, transaction keys, rpc ids).
pub(crate) fn uuid_like() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}
