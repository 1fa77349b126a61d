//! The one fallback handler: counting, auth, the body limit, and routing
//! on method and path segments.

use super::auth::{authenticate, Refused};
use super::errors::{ok, ZdErr};
use super::export::incremental;
use super::oauth::{expired_token, token};
use super::reads::{
    custom_statuses, groups, job_status, list_comments, list_tickets, show, ticket_fields,
};
use super::views::agent_json;
use super::writes::{create_ticket, delete_ticket, update_many, update_ticket};
use super::{Shared, TokenGrant};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// `GET` it for what the emulator measured: requests, 429s, and per token
/// the most requests any sliding rate-limit window held.
pub const STATS_PATH: &str = "/__l3map/stats";

pub(super) async fn dispatch(State(sh): State<Arc<Shared>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    if parts.method == Method::GET && parts.uri.path() == STATS_PATH {
        // The emulator's own report, for tests and the e2e: not a
        // Zendesk path, not counted, no token (it shows fingerprints).
        let by_path = super::lock(&sh.stats).by_path.map().clone();
        return axum::Json(json!({
            "requests": sh.total_requests(),
            "by_path": by_path,
            "rate_limited": sh.rate_limited_count(),
            "windows": sh.sliding.stats(),
        }))
        .into_response();
    }
    sh.count(&parts.method, parts.uri.path());
    if parts.uri.path() == "/oauth/tokens" {
        return match (parts.method.clone(), read_body(&sh, body).await) {
            (Method::POST, Ok(bytes)) => token(&sh, &parts.headers, &bytes),
            (Method::POST, Err(too_large)) => too_large,
            _ => ZdErr {
                status: StatusCode::METHOD_NOT_ALLOWED,
                body: json!({"error": "invalid_request", "error_description": "POST the token request."}),
            }
            .into_response(),
        };
    }
    let (grant, key) = match authenticate(&sh, &parts.headers) {
        Ok(found) => found,
        Err(Refused::Expired) => return expired_token(),
        Err(Refused::Unknown) => {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "Couldn't authenticate you"})),
            )
                .into_response()
        }
    };
    sh.count_token(&key);
    let limits = match sh.admit(&key) {
        Ok(h) => h,
        Err(resp) => return *resp,
    };
    let mut resp = match read_body(&sh, body).await {
        Ok(bytes) => route(
            &sh,
            &parts.method,
            &parts.uri,
            &parts.headers,
            &grant,
            &bytes,
        ),
        Err(too_large) => too_large,
    };
    resp.headers_mut().extend(limits);
    resp
}

/// The body, or the 413 when it is over `max_body`.
async fn read_body(sh: &Shared, body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, sh.opts.max_body)
        .await
        .map_err(|_| {
            ZdErr {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                body: json!({"error": "RequestTooLarge", "description": format!("Request body exceeds {} bytes", sh.opts.max_body)}),
            }
            .into_response()
        })
}

fn route(
    sh: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    grant: &TokenGrant,
    body: &Bytes,
) -> Response {
    let segs: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let query = parse_query(uri.query());
    let writes = matches!(*method, Method::POST | Method::PUT | Method::DELETE);
    if writes && !grant.can_write() {
        return ZdErr::forbidden().into_response();
    }
    let answer = match (method.clone(), segs.as_slice()) {
        (Method::GET, ["api", "v2", "tickets.json"]) => list_tickets(sh),
        (Method::POST, ["api", "v2", "tickets.json"]) => {
            return create_ticket(sh, headers, grant, body);
        }
        (Method::PUT, ["api", "v2", "tickets", "update_many.json"]) => {
            update_many(sh, &query, body)
        }
        (Method::GET, ["api", "v2", "tickets", file]) => json_id(file).and_then(|id| show(sh, id)),
        (Method::PUT, ["api", "v2", "tickets", file]) => {
            json_id(file).and_then(|id| update_ticket(sh, id, body))
        }
        (Method::DELETE, ["api", "v2", "tickets", file]) => {
            json_id(file).and_then(|id| delete_ticket(sh, id))
        }
        (Method::GET, ["api", "v2", "tickets", id, "comments.json"]) => id
            .parse::<u64>()
            .map_err(|_| ZdErr::not_found())
            .and_then(|id| list_comments(sh, id, &query)),
        (Method::GET, ["api", "v2", "job_statuses", file]) => match file.strip_suffix(".json") {
            Some(id) => job_status(sh, id),
            None => Err(ZdErr::not_found()),
        },
        (Method::GET, ["api", "v2", "incremental", "tickets", "cursor.json"]) => {
            incremental(sh, &query)
        }
        (Method::GET, ["api", "v2", "ticket_fields.json"]) => ticket_fields(sh, &query),
        (Method::GET, ["api", "v2", "custom_statuses.json"]) => custom_statuses(sh),
        (Method::GET, ["api", "v2", "groups.json"]) => groups(sh, &query),
        (Method::GET, ["api", "v2", "users", "me.json"]) => ok(json!({"user": agent_json()})),
        _ => Err(ZdErr {
            status: StatusCode::NOT_FOUND,
            body: json!({"error": "InvalidEndpoint", "description": "Not found"}),
        }),
    };
    match answer {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (!k.is_empty()).then(|| (percent_decode(k), percent_decode(v)))
        })
        .collect()
}

/// Enough of percent-decoding for ids and cursors (`%2C`, `%3D`).
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `35436.json` -> 35436.
fn json_id(file: &str) -> Result<u64, ZdErr> {
    file.strip_suffix(".json")
        .and_then(|id| id.parse().ok())
        .ok_or_else(ZdErr::not_found)
}
