//! Admin calls of the emulator (no Salesforce counterpart, no auth; the
//! emulator listens on loopback only): change a record as a person in the
//! UI would, and inject Pub/Sub faults. Documented in docs/EMULATORS.md.

use super::super::bodies::read_object;
use super::super::errors::SfError;
use super::super::validate::write_one;
use super::super::{lock, Emu};
use super::{Cut, Keepalive, Origin};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub(in crate::emulator::salesforce) fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/__l3map/person/sobjects/{object}", post(person_create))
        .route(
            "/__l3map/person/sobjects/{object}/{id}",
            patch(person_update).delete(person_delete),
        )
        .route("/__l3map/pubsub", get(status))
        .route("/__l3map/pubsub/gap", post(gap))
        .route("/__l3map/pubsub/overflow", post(overflow))
        .route("/__l3map/pubsub/cut", post(cut))
        .route("/__l3map/pubsub/keepalive", post(keepalive))
        .route("/__l3map/pubsub/expire", post(expire))
        .route("/__l3map/sessions/expire", post(expire_sessions))
}

/// Ends every session now, as an admin revoking them or a session timeout
/// would: the next REST call with an issued token is answered 401
/// `INVALID_SESSION_ID`, and the next Pub/Sub call `UNAUTHENTICATED`.
/// Streams already open stay open, as on Salesforce.
async fn expire_sessions(State(st): State<Arc<Emu>>) -> Response {
    lock(&st.tokens).expire_all(tokio::time::Instant::now());
    StatusCode::NO_CONTENT.into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

/// The body as a JSON object (empty: `{}`), or why not.
fn body_json(body: Result<Bytes, BytesRejection>) -> Result<Value, String> {
    let bytes = body.map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    if !v.is_object() {
        return Err("the body must be a JSON object".into());
    }
    Ok(v)
}

fn object_of<'a>(st: &'a Emu, name: &str) -> Option<&'a super::super::ObjectSchema> {
    st.schema.object(name)
}

/// `PATCH /emulator/person/sobjects/{object}/{id}`: the same body and
/// validation as the REST update, committed by another user with no API
/// origin (`changeOrigin` empty), as a change in the Salesforce UI is.
async fn person_update(
    State(st): State<Arc<Emu>>,
    Path((object, id)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(obj) = object_of(&st, &object) else {
        return SfError::not_found().into_response();
    };
    let body = match read_object(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut store = lock(&st.store);
    if store.find(&obj.name, &id).is_none() {
        return SfError::not_found().into_response();
    }
    match write_one(obj, &mut store, Some(&id), &body, false) {
        Ok(_) => {
            st.commit(&mut store, &Origin::person());
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn person_create(
    State(st): State<Arc<Emu>>,
    Path(object): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(obj) = object_of(&st, &object) else {
        return SfError::not_found().into_response();
    };
    let body = match read_object(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut store = lock(&st.store);
    match write_one(obj, &mut store, None, &body, false) {
        Ok(id) => {
            st.commit(&mut store, &Origin::person());
            (
                StatusCode::CREATED,
                Json(json!({"id": id, "success": true, "errors": []})),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn person_delete(
    State(st): State<Arc<Emu>>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    let Some(obj) = object_of(&st, &object) else {
        return SfError::not_found().into_response();
    };
    let mut store = lock(&st.store);
    if !store.delete(&obj.name, &id) {
        return SfError::not_found().into_response();
    }
    st.commit(&mut store, &Origin::person());
    StatusCode::NO_CONTENT.into_response()
}

async fn status(State(st): State<Arc<Emu>>) -> Response {
    let bus = &st.bus;
    Json(json!({
        "last_replay": bus.last_replay(),
        "stored": bus.stored(),
        "topics": bus.topics(),
        "keepalive_ms": bus.options().keepalive.as_millis() as u64,
        "retention_seconds": bus.options().retention.as_secs(),
    }))
    .into_response()
}

/// `{"object": "Account", "ids": ["001…"], "change_type": "GAP_UPDATE"}`.
async fn gap(State(st): State<Arc<Emu>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match body_json(body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let object = b["object"].as_str().unwrap_or_default();
    let kind = b["change_type"].as_str().unwrap_or("GAP_UPDATE");
    let ids: Vec<String> = b["ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() || kind == "GAP_OVERFLOW" {
        return bad("ids: one or more record Ids; GAP_OVERFLOW goes to /__l3map/pubsub/overflow");
    }
    injected(st.bus.inject(object, kind, &ids))
}

/// `{"object": "Account"}`: a `GAP_OVERFLOW` event.
async fn overflow(State(st): State<Arc<Emu>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match body_json(body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let object = b["object"].as_str().unwrap_or_default();
    injected(st.bus.inject(object, "GAP_OVERFLOW", &[]))
}

fn injected(r: Result<u64, String>) -> Response {
    match r {
        Ok(replay) => Json(json!({"replay": replay})).into_response(),
        Err(e) => bad(e),
    }
}

/// A gRPC status by its number or name (`UNAVAILABLE`, `Unavailable`).
fn code_of(v: &Value) -> Option<tonic::Code> {
    if let Some(n) = v.as_i64() {
        return (0..=16).contains(&n).then(|| tonic::Code::from(n as i32));
    }
    let want: String = v.as_str()?.chars().filter(|c| *c != '_').collect();
    (1..=16)
        .map(tonic::Code::from)
        .find(|c| format!("{c:?}").eq_ignore_ascii_case(&want))
}

/// `{"code": "UNAVAILABLE", "error_code": "sfdc.platform.eventbus.grpc.service.unavailable", "message": "…"}`:
/// every live subscription ends with that status and trailer.
async fn cut(State(st): State<Arc<Emu>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match body_json(body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let Some(code) = code_of(&b["code"]) else {
        return bad("code: a gRPC status, by number (14) or name (UNAVAILABLE)");
    };
    let c = Cut {
        code,
        error_code: b["error_code"]
            .as_str()
            .unwrap_or("sfdc.platform.eventbus.grpc.service.unavailable")
            .into(),
        message: b["message"]
            .as_str()
            .unwrap_or("The Pub/Sub API service is unavailable.")
            .into(),
    };
    Json(json!({"streams": st.bus.cut(c)})).into_response()
}

/// `{"mode": "normal" | "stop" | "delay", "delay_ms": 3000}`.
async fn keepalive(State(st): State<Arc<Emu>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match body_json(body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let k = match b["mode"].as_str() {
        Some("normal") => Keepalive::Normal,
        Some("stop") => Keepalive::Stop,
        Some("delay") => match b["delay_ms"].as_u64() {
            Some(ms) => Keepalive::Delay(Duration::from_millis(ms)),
            None => return bad("delay_ms: milliseconds to add to the keepalive interval"),
        },
        _ => return bad("mode: normal, stop or delay"),
    };
    st.bus.set_keepalive(k);
    StatusCode::NO_CONTENT.into_response()
}

/// `{"through": 12}` (a replay id as a number), or `{}` for every stored
/// event: their replay ids become too old to resume from.
async fn expire(State(st): State<Arc<Emu>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b = match body_json(body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let through = match &b["through"] {
        Value::Null => None,
        v => match v.as_u64() {
            Some(n) => Some(n),
            None => return bad("through: a replay id as a number"),
        },
    };
    st.bus.expire(through);
    Json(json!({"last_replay": st.bus.last_replay(), "stored": st.bus.stored()})).into_response()
}
