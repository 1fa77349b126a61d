//! One channel of one connection: subscribe, pass every change on, store
//! where it is, reconnect when the stream breaks.
//!
//! The Subscribe call
//! (https://developer.salesforce.com/docs/platform/pub-sub-api/references/methods/subscribe-rpc.html)
//! is a bidirectional stream: the first `FetchRequest` names the topic,
//! where to start (`LATEST`, `EARLIEST`, or `CUSTOM` with a replay id) and
//! how many events to send (at most 100); later requests ask for more.
//! The server answers with batches of events and, when it has none for a
//! while, an empty response carrying the latest replay id (a keepalive,
//! within 270 s). Requests for more go out once half of what was asked
//! has arrived, so the server never sits at 0 pending.
//!
//! A change is passed to [`Fanout::apply`] until it returns Ok (retried
//! with backoff, never skipped); only then is its replay id stored, so a
//! crash replays it, and the fan-out's event ids (built from the change's
//! key) make the replay decide nothing twice.

use super::ctx::{Ctx, Stopped};
use super::cursor::{self, Position};
use super::decode::{decode, Decoded};
use super::grpc::{self, Failure};
use super::{heal, LOG_TARGET};
use crate::connectors::backoff::Backoff;
use crate::connectors::salesforce::pubsub::proto::pub_sub_client::PubSubClient;
use crate::connectors::salesforce::pubsub::proto::{ConsumerEvent, FetchRequest, ReplayPreset};
use crate::connectors::salesforce::PubSubSession;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// Events asked for at a time: the API's maximum.
pub const MAX_REQUESTED: i32 = 100;
/// No message at all (keepalives come within 270 s) for this long: the
/// connection is dead though no error said so.
const SILENCE: Duration = Duration::from_secs(300);

/// Why a subscription ended.
enum Ended {
    Stopped,
    Failed(tonic::Status),
    /// The server closed the stream, or fell silent.
    Closed,
    /// Could not get as far as subscribing (sign-in, a bad endpoint).
    Local(String),
}

/// l3map's own write, by the client name its REST calls send in
/// `Sforce-Call-Options` (`…;client=l3map`, maybe with a trailing `/`).
pub fn is_own(origin: Option<&str>) -> bool {
    let want = format!(
        "client={}",
        crate::connectors::salesforce::CALL_OPTIONS_CLIENT
    );
    origin.is_some_and(|o| {
        o.split(';')
            .any(|part| part.trim().trim_end_matches('/') == want)
    })
}

/// The channel's task: runs until `stop` turns true.
pub async fn run(mut ctx: Ctx) {
    let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut failures: u32 = 0;
    let mut session: Option<PubSubSession> = None;
    // The last "could not subscribe" said, so a repeat is not said again.
    let mut last_local: Option<String> = None;
    tracing::info!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, endpoint = %ctx.endpoint, "subscribing to Change Data Capture");
    loop {
        // A fleet subscribes each channel on one replica at a time (its
        // replay id's lease); the others wait to take it over.
        let (engine, key) = (ctx.engine.clone(), ctx.key());
        if lease(&engine, &key).await.is_none() {
            if ctx.pause(LEASE_RENEW).await.is_err() {
                break;
            }
            continue;
        }
        let ended = tokio::select! {
            ended = subscribe(&mut ctx, &mut session, &mut failures) => ended,
            () = lost(&engine, &key) => {
                tracing::info!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, "another replica holds this channel now; this one stops its subscription");
                Ended::Closed
            }
        };
        ctx.metrics.cdc_up(&ctx.connection, &ctx.channel, false);
        let local = matches!(ended, Ended::Local(_));
        let wait = match ended {
            Ended::Stopped => break,
            Ended::Failed(status) => {
                let code = grpc::error_code(&status).unwrap_or_default();
                match grpc::classify(&status) {
                    Failure::ReplayIdRejected => {
                        // Beyond the 72-hour retention, or not this topic's.
                        tracing::error!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, error_code = %code, status = %status.message(), "Salesforce refused the stored replay id (older than the 72-hour retention, or invalid); subscribing from LATEST and catching up by SystemModstamp from the last change passed on");
                        let mut p = load(&ctx).await.unwrap_or_default();
                        p.replay = None;
                        ctx.save(&p).await;
                        Duration::ZERO
                    }
                    Failure::Unauthenticated => {
                        tracing::info!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, error_code = %code, "the Pub/Sub API refused the session; signing in again");
                        if let Some(stale) = session.take() {
                            match ctx.client.renew_pubsub_session(&stale).await {
                                Ok(s) => session = Some(s),
                                Err(e) => {
                                    tracing::warn!(target: LOG_TARGET, connection = %ctx.connection, error = %e, "could not sign in again")
                                }
                            }
                        }
                        next_wait(&backoff, &mut failures)
                    }
                    Failure::Refused => {
                        tracing::error!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, code = ?status.code(), error_code = %code, status = %status.message(), "the Pub/Sub API refused the subscription (is Change Data Capture enabled for the object, and may the user subscribe?); trying again later");
                        failures = failures.max(5);
                        next_wait(&backoff, &mut failures)
                    }
                    Failure::Transient => {
                        tracing::warn!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, code = ?status.code(), error_code = %code, status = %status.message(), "the change stream broke; reconnecting");
                        next_wait(&backoff, &mut failures)
                    }
                }
            }
            Ended::Closed => {
                tracing::info!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, "the change stream ended; reconnecting");
                next_wait(&backoff, &mut failures)
            }
            Ended::Local(e) => {
                // Once per distinct error: the same failure every retry
                // would bury everything else (debug keeps the count).
                if last_local.as_ref() == Some(&e) {
                    tracing::debug!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, error = %e, "could not subscribe; will retry");
                } else {
                    tracing::warn!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, error = %e, "could not subscribe; will retry (logged again only if the error changes)");
                    last_local = Some(e);
                }
                next_wait(&backoff, &mut failures)
            }
        };
        if !local {
            last_local = None;
        }
        ctx.metrics.cdc_reconnect(&ctx.connection, &ctx.channel);
        if ctx.pause(wait).await.is_err() {
            break;
        }
    }
    ctx.metrics.cdc_up(&ctx.connection, &ctx.channel, false);
    tracing::info!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, "Change Data Capture stream stopped");
}

/// How often a subscribed channel's lease is renewed, and how often a
/// replica without it asks again.
const LEASE_RENEW: Duration = Duration::from_secs(5);
/// How long the lease outlives a silent holder.
const LEASE_TTL: Duration = Duration::from_secs(20);

/// Takes or renews the channel's lease; `None`: another replica holds it
/// (or the store cannot say, which counts as not held).
async fn lease(engine: &std::sync::Arc<crate::runtime::engine::Engine>, key: &str) -> Option<i64> {
    let (store, name) = (engine.store.clone(), key.to_string());
    // A replica that cannot decide by the fleet's revision lets the
    // channel go to one that can.
    if engine.fleet.unloadable().is_some() {
        let _ = tokio::task::spawn_blocking(move || store.release(&name)).await;
        engine.metrics.lease_seen(key, None);
        return None;
    }
    match tokio::task::spawn_blocking(move || store.lease(&name, LEASE_TTL)).await {
        Ok(Ok(held)) => {
            engine.metrics.lease_seen(key, held);
            held
        }
        _ => None,
    }
}

/// Returns when the channel's lease can no longer be renewed.
async fn lost(engine: &std::sync::Arc<crate::runtime::engine::Engine>, key: &str) {
    loop {
        tokio::time::sleep(LEASE_RENEW).await;
        if lease(engine, key).await.is_none() {
            return;
        }
    }
}

fn next_wait(backoff: &Backoff, failures: &mut u32) -> Duration {
    let d = backoff.bound(*failures);
    *failures = failures.saturating_add(1);
    d
}

async fn load(ctx: &Ctx) -> Option<Position> {
    match cursor::load(&ctx.engine, &ctx.key()).await {
        Ok(Some(v)) => match Position::decode(&v) {
            Some(p) => Some(p),
            None => {
                tracing::warn!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, cursor = %v, "unreadable stored replay id; subscribing from LATEST");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::error!(target: LOG_TARGET, error = %e, "could not read the stored replay id");
            None
        }
    }
}

/// One subscription, from connecting to its end.
async fn subscribe(
    ctx: &mut Ctx,
    session: &mut Option<PubSubSession>,
    failures: &mut u32,
) -> Ended {
    if *ctx.stop.borrow() {
        return Ended::Stopped;
    }
    let s = match session.clone() {
        Some(s) => s,
        None => match ctx.client.pubsub_session().await {
            Ok(s) => {
                *session = Some(s.clone());
                s
            }
            Err(e) => return Ended::Local(format!("signing in: {e}")),
        },
    };
    let endpoint = match grpc::endpoint(&ctx.endpoint) {
        Ok(e) => e,
        Err(e) => return Ended::Local(e),
    };
    let channel = tokio::select! {
        biased;
        _ = ctx.stop.wait_for(|s| *s) => return Ended::Stopped,
        c = endpoint.connect() => match c {
            Ok(c) => c,
            Err(e) => return Ended::Local(grpc::connect_error(&ctx.endpoint, &e)),
        },
    };
    let mut client = PubSubClient::new(channel);
    // GetTopic first: a topic that does not exist, or that the user may
    // not read, is said plainly instead of as a broken stream.
    match grpc::topic(&mut client, &s, &ctx.channel).await {
        Ok(t) if !t.can_subscribe => {
            return Ended::Local(format!(
                "the user may not subscribe to {} (GetTopic: can_subscribe is false)",
                ctx.channel
            ))
        }
        Ok(_) => {}
        Err(status) => return Ended::Failed(status),
    }
    let mut pos = load(ctx).await.unwrap_or_default();
    let (preset, replay_id) = match &pos.replay {
        Some(r) => (ReplayPreset::Custom, r.clone()),
        None => (ReplayPreset::Latest, Vec::new()),
    };
    let (tx, rx) = mpsc::channel::<FetchRequest>(4);
    let first = FetchRequest {
        topic_name: ctx.channel.clone(),
        replay_preset: preset as i32,
        replay_id,
        num_requested: ctx.batch,
        auth_refresh: String::new(),
    };
    if tx.send(first).await.is_err() {
        return Ended::Closed;
    }
    let req = match grpc::authed(&s, tokio_stream::wrappers::ReceiverStream::new(rx)) {
        Ok(r) => r,
        Err(e) => return Ended::Local(e),
    };
    let mut stream = tokio::select! {
        biased;
        _ = ctx.stop.wait_for(|s| *s) => return Ended::Stopped,
        r = client.subscribe(req) => match r {
            Ok(r) => r.into_inner(),
            Err(status) => return Ended::Failed(status),
        },
    };
    ctx.metrics.cdc_up(&ctx.connection, &ctx.channel, true);
    tracing::info!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, from = if pos.replay.is_some() { "the stored replay id" } else { "LATEST" }, "Change Data Capture stream up");
    // From LATEST with a time stored: the events in between are read by
    // SystemModstamp (the stream is already open, so nothing falls
    // between the poll and the stream; what both see is keyed apart but
    // equal, and the fan-out writes nothing twice for equal values).
    if pos.replay.is_none() {
        match pos.at {
            // The first stream, from LATEST: nothing is owed before now.
            // Stored at once, so a stream that breaks before its first
            // event or keepalive (which store a replay id) catches up from
            // here on reconnecting, rather than losing the changes made
            // while it was down to another LATEST.
            None => {
                pos.at = Some(jiff::Timestamp::now());
                ctx.save(&pos).await;
            }
            Some(since) => {
                let object = ctx.object.clone();
                match heal::catch_up(ctx, &object, since).await {
                    Ok(newest) => {
                        pos.at = Some(newest);
                        ctx.save(&pos).await;
                    }
                    Err(Stopped) => return Ended::Stopped,
                }
            }
        }
    }
    let mut pending = ctx.batch;
    loop {
        let msg = tokio::select! {
            biased;
            _ = ctx.stop.wait_for(|s| *s) => return Ended::Stopped,
            m = tokio::time::timeout(SILENCE, stream.message()) => m,
        };
        let resp = match msg {
            Err(_) => return Ended::Closed,
            Ok(Ok(None)) => return Ended::Closed,
            Ok(Err(status)) => return Ended::Failed(status),
            Ok(Ok(Some(r))) => r,
        };
        *failures = 0;
        if resp.events.is_empty() {
            // A keepalive: nothing is pending before its replay id, so a
            // restart may resume from it (and stays inside retention
            // through quiet days).
            if !resp.latest_replay_id.is_empty() && pending > 0 {
                pos.replay = Some(resp.latest_replay_id.clone());
                if pos.at.is_none() {
                    pos.at = Some(jiff::Timestamp::now());
                }
                ctx.save(&pos).await;
            }
        }
        for ev in resp.events {
            pending -= 1;
            match handle(ctx, &mut client, &s, &ev, &mut pos).await {
                Ok(()) => {}
                Err(e) => return e,
            }
            pos.replay = Some(ev.replay_id.clone());
            ctx.save(&pos).await;
        }
        if pending <= ctx.batch / 2 {
            let more = FetchRequest {
                topic_name: ctx.channel.clone(),
                num_requested: ctx.batch - pending.max(0),
                ..Default::default()
            };
            if tx.send(more).await.is_err() {
                return Ended::Closed;
            }
            pending = ctx.batch;
        }
    }
}

/// One event: decoded, then passed on (or healed); `Ok` once it may be
/// stored as handled.
async fn handle(
    ctx: &mut Ctx,
    client: &mut PubSubClient<Channel>,
    s: &PubSubSession,
    ev: &ConsumerEvent,
    pos: &mut Position,
) -> Result<(), Ended> {
    let Some(event) = &ev.event else {
        return Ok(());
    };
    let schema = match ctx.schemas.get(client, s, &event.schema_id).await {
        Ok(schema) => schema,
        Err(grpc::SchemaError::Call(status)) => return Err(Ended::Failed(status)),
        Err(grpc::SchemaError::Local(e)) => {
            ctx.metrics
                .cdc_event(&ctx.connection, &ctx.channel, "undecodable");
            tracing::error!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, event_id = %event.id, error = %e, "skipped an event whose schema cannot be read");
            return Ok(());
        }
    };
    let decoded = match decode(&schema, &event.payload, &ctx.connection) {
        Ok(d) => d,
        Err(e) => {
            ctx.metrics
                .cdc_event(&ctx.connection, &ctx.channel, "undecodable");
            tracing::error!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, event_id = %event.id, error = %e, "skipped an event that does not decode");
            return Ok(());
        }
    };
    let at: Option<jiff::Timestamp> = decoded.change().at.parse().ok();
    match decoded {
        Decoded::Change(c) if is_own(c.origin.as_deref()) => {
            ctx.metrics.cdc_event(&ctx.connection, &ctx.channel, "own");
        }
        Decoded::Change(c) => ctx.apply(&c).await.map_err(|_| Ended::Stopped)?,
        Decoded::Gap(gap) => {
            ctx.metrics.cdc_gap(&ctx.connection, &ctx.channel);
            tracing::info!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, object = %gap.object, records = gap.ids.len(), "a gap event: reading its records again");
            for c in heal::refetch(ctx, &gap).await.map_err(|_| Ended::Stopped)? {
                ctx.apply(&c).await.map_err(|_| Ended::Stopped)?;
            }
        }
        Decoded::Overflow(o) => {
            ctx.metrics.cdc_overflow(&ctx.connection, &ctx.channel);
            // From the last change passed on, or a minute before the
            // overflow's commit when nothing was yet.
            let since = pos
                .at
                .or_else(|| {
                    at.and_then(|t| t.checked_sub(jiff::SignedDuration::from_secs(60)).ok())
                })
                .unwrap_or_else(jiff::Timestamp::now);
            tracing::info!(target: LOG_TARGET, connection = %ctx.connection, channel = %ctx.channel, object = %o.object, "an overflow event: catching up by SystemModstamp");
            heal::catch_up(ctx, &o.object, since)
                .await
                .map_err(|_| Ended::Stopped)?;
        }
    }
    if let Some(t) = at {
        pos.at = Some(pos.at.map_or(t, |p| p.max(t)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_writes_are_recognised_by_the_client_name() {
        assert!(is_own(Some("com/salesforce/api/rest/60.0;client=l3map")));
        assert!(is_own(Some("com/salesforce/api/rest/60.0;client=l3map/")));
        assert!(!is_own(Some(
            "com/salesforce/api/rest/60.0;client=l3mapper"
        )));
        assert!(!is_own(Some(
            "com/salesforce/api/soap/60.0;client=SfdcInternalAPI/"
        )));
        assert!(!is_own(None));
    }
}
