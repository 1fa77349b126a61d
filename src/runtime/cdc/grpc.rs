//! The Pub/Sub API over gRPC: the channel (TLS for `https://`, plain
//! HTTP/2 for a loopback emulator's `http://`), the credentials every call
//! carries, the schema cache, and what a failed call's status and
//! `error-code` trailer mean for the stream.
//!
//! - Credentials: metadata `accesstoken`, `instanceurl`, `tenantid`
//!   (https://developer.salesforce.com/docs/platform/pub-sub-api/guide/supported-auth.html).
//! - Errors: a gRPC status, with Salesforce's code in the `error-code`
//!   trailer
//!   (https://developer.salesforce.com/docs/platform/pub-sub-api/guide/handling-errors.html).

use crate::connectors::salesforce::pubsub::proto::pub_sub_client::PubSubClient;
use crate::connectors::salesforce::pubsub::proto::{SchemaRequest, TopicInfo, TopicRequest};
use crate::connectors::salesforce::PubSubSession;
use apache_avro::Schema;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The stored replay id is outside the retention window or not one of
/// this topic's (the documented cause: older than 72 hours).
pub const REPLAY_ID_CORRUPTED: &str =
    "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted";
pub const REPLAY_ID_INVALID: &str =
    "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed";

/// What a failed call means for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The token expired or was revoked: sign in again, then reconnect.
    Unauthenticated,
    /// The replay id cannot be resumed from: subscribe from LATEST and
    /// catch up by polling.
    ReplayIdRejected,
    /// The topic does not exist, CDC is not enabled for the object, or the
    /// user may not subscribe: retried slowly, it will not heal alone.
    Refused,
    /// Anything else (unavailable, a timeout, a server error): reconnect
    /// with backoff.
    Transient,
}

/// The status's Salesforce `error-code` trailer, if it has one.
pub fn error_code(status: &tonic::Status) -> Option<String> {
    status
        .metadata()
        .get("error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub fn classify(status: &tonic::Status) -> Failure {
    let code = error_code(status).unwrap_or_default();
    if code == REPLAY_ID_CORRUPTED || code == REPLAY_ID_INVALID || code.contains(".replayid.") {
        return Failure::ReplayIdRejected;
    }
    match status.code() {
        tonic::Code::Unauthenticated => Failure::Unauthenticated,
        _ if code.contains("auth") => Failure::Unauthenticated,
        tonic::Code::NotFound | tonic::Code::PermissionDenied => Failure::Refused,
        _ => Failure::Transient,
    }
}

/// The endpoint to dial: `api.pubsub.salesforce.com:7443` with or
/// without a scheme (TLS unless the URL says `http://`).
pub fn endpoint(url: &str) -> Result<Endpoint, String> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    let mut e = Endpoint::from_shared(full.clone())
        .map_err(|e| format!("the Pub/Sub endpoint {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(10))
        // HTTP/2 pings find a dead connection between keepalives.
        .http2_keep_alive_interval(Duration::from_secs(60))
        .keep_alive_while_idle(true);
    if full.starts_with("https://") {
        e = e
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(|e| format!("the Pub/Sub endpoint {url:?}: {e}"))?;
    }
    Ok(e)
}

/// Why connecting to the Pub/Sub endpoint `written` (as configured)
/// failed, said so a person can act on it: tonic's own text is only
/// "transport error", the causes under it say what happened, and the most
/// common mistake, a bare `host:port` (TLS) in front of a plain HTTP/2
/// server such as `l3map emulate`'s Pub/Sub port, gets its fix.
pub fn connect_error(written: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut causes: Vec<String> = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !causes.iter().any(|k| k.contains(&t)) {
            causes.push(t);
        }
        cur = c.source();
    }
    let detail = if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    };
    let lower = detail.to_lowercase();
    let tls = !written.contains("://") || written.starts_with("https://");
    let hint = if lower.contains("refused") {
        format!(
            "; nothing accepts connections at {written}: is the Pub/Sub server running, and is this its port (`l3map emulate` prints its Pub/Sub port)?"
        )
    } else if tls {
        let host = written.strip_prefix("https://").unwrap_or(written);
        format!(
            "; l3map speaks TLS to {written} ({}), and the TLS handshake likely failed: if the server speaks plain HTTP/2, as `l3map emulate`'s Pub/Sub port does, write `endpoint = \"http://{host}\"` in [cdc]",
            if written.contains("://") {
                "it says https://"
            } else {
                "an endpoint without a scheme means TLS"
            }
        )
    } else {
        String::new()
    };
    format!("connecting to {written}: {detail}{hint}")
}

/// `req` with the session's credentials as metadata.
pub fn authed<T>(session: &PubSubSession, body: T) -> Result<tonic::Request<T>, String> {
    let mut req = tonic::Request::new(body);
    let md = req.metadata_mut();
    let value = |v: &str, what: &str| {
        MetadataValue::try_from(v).map_err(|_| format!("the session's {what} is not ASCII"))
    };
    md.insert(
        "accesstoken",
        value(session.access_token.expose(), "access token")?,
    );
    md.insert("instanceurl", value(&session.instance_url, "instance URL")?);
    md.insert("tenantid", value(&session.tenant_id, "org id")?);
    Ok(req)
}

/// Parsed schemas by schema id, shared by a connection's streams: a
/// schema id names one schema forever, so entries never go stale.
#[derive(Clone, Default)]
pub struct Schemas {
    by_id: Arc<Mutex<HashMap<String, Arc<Schema>>>>,
}

/// Few topics, each with a schema per field change: a bound that only a
/// runaway would reach, and then the cache starts over.
const MAX_SCHEMAS: usize = 1_000;

impl Schemas {
    /// The schema `id`, from the cache or `GetSchema`.
    pub async fn get(
        &self,
        client: &mut PubSubClient<Channel>,
        session: &PubSubSession,
        id: &str,
    ) -> Result<Arc<Schema>, SchemaError> {
        if let Some(s) = self.by_id.lock().await.get(id) {
            return Ok(s.clone());
        }
        let req = authed(
            session,
            SchemaRequest {
                schema_id: id.to_string(),
            },
        )
        .map_err(SchemaError::Local)?;
        let info = client
            .get_schema(req)
            .await
            .map_err(SchemaError::Call)?
            .into_inner();
        let schema = Arc::new(
            Schema::parse_str(&info.schema_json)
                .map_err(|e| SchemaError::Local(format!("schema {id} does not parse: {e}")))?,
        );
        let mut cache = self.by_id.lock().await;
        if cache.len() >= MAX_SCHEMAS {
            cache.clear();
        }
        cache.insert(id.to_string(), schema.clone());
        Ok(schema)
    }
}

#[derive(Debug)]
pub enum SchemaError {
    Call(tonic::Status),
    Local(String),
}

/// `GetTopic`: whether the topic exists and this user may subscribe.
pub async fn topic(
    client: &mut PubSubClient<Channel>,
    session: &PubSubSession,
    name: &str,
) -> Result<TopicInfo, tonic::Status> {
    let req = authed(
        session,
        TopicRequest {
            topic_name: name.to_string(),
        },
    )
    .map_err(tonic::Status::internal)?;
    Ok(client.get_topic(req).await?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_code(code: tonic::Code, trailer: Option<&str>) -> tonic::Status {
        let mut md = tonic::metadata::MetadataMap::new();
        if let Some(t) = trailer {
            md.insert("error-code", t.parse().unwrap());
        }
        tonic::Status::with_metadata(code, "x", md)
    }

    #[test]
    fn statuses_and_trailers_decide_the_reconnect() {
        use tonic::Code::*;
        assert_eq!(
            classify(&with_code(InvalidArgument, Some(REPLAY_ID_CORRUPTED))),
            Failure::ReplayIdRejected
        );
        assert_eq!(
            classify(&with_code(InvalidArgument, Some(REPLAY_ID_INVALID))),
            Failure::ReplayIdRejected
        );
        assert_eq!(
            classify(&with_code(
                Unauthenticated,
                Some("sfdc.platform.eventbus.grpc.service.auth.error")
            )),
            Failure::Unauthenticated
        );
        assert_eq!(classify(&with_code(NotFound, None)), Failure::Refused);
        assert_eq!(classify(&with_code(Unavailable, None)), Failure::Transient);
        assert_eq!(classify(&with_code(Internal, None)), Failure::Transient);
    }

    #[test]
    fn a_connect_error_says_its_cause_and_the_fix() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let eof = E(
            "transport error",
            Some(Box::new(E("tls handshake eof", None))),
        );
        let m = connect_error("127.0.0.1:8803", &eof);
        assert!(m.contains("tls handshake eof"), "{m}");
        assert!(m.contains("without a scheme means TLS"), "{m}");
        assert!(m.contains("endpoint = \"http://127.0.0.1:8803\""), "{m}");
        let refused = E(
            "transport error",
            Some(Box::new(E("Connection refused (os error 111)", None))),
        );
        let m = connect_error("http://127.0.0.1:8803", &refused);
        assert!(m.contains("nothing accepts connections"), "{m}");
        let m = connect_error("http://127.0.0.1:8803", &E("transport error", None));
        assert_eq!(m, "connecting to http://127.0.0.1:8803: transport error");
    }

    #[test]
    fn endpoints_default_to_tls() {
        assert!(endpoint("api.pubsub.salesforce.com:7443").is_ok());
        assert!(endpoint("http://127.0.0.1:7443").is_ok());
        assert!(endpoint("not a url at all").is_err());
    }
}
