//! The one fallback handler: counting, auth, the body limit, and routing
//! on method and path segments.

use super::auth::{authenticate, Refused};
use super::errors::{ok, ZdErr};
use super::export::incremental;
use super::form::parse_query;
use super::groups::{create_group, created, list_groups};
use super::jobs::{job_status, update_many};
use super::oauth::{expired_token, token};
use super::parties::{search_orgs, show_org};
use super::reads::{custom_statuses, list_comments, list_tickets, show, show_many, ticket_fields};
use super::requests::{now_ms, Logged};
use super::search::{search, search_users};
use super::search_export::search_export;
use super::users::{show_user, user_json};
use super::writes::{create_ticket, delete_ticket, update_ticket};
use super::{Shared, TokenGrant, AGENT_ID};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// `GET` it for what the emulator measured: requests, 429s, and per token
/// the most requests any sliding rate-limit window held.
pub const STATS_PATH: &str = "/__l3map/stats";
/// `GET` it for the request log (requests.rs): who called what, and when.
pub const REQUESTS_PATH: &str = "/__l3map/requests";

pub(super) async fn dispatch(State(sh): State<Arc<Shared>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    if parts.method == Method::GET && parts.uri.path() == STATS_PATH {
        // The emulator's own report, for tests and the e2e: not a
        // Zendesk path, not counted, no token (it shows fingerprints).
        let by_path = super::lock(&sh.stats).by_path.map().clone();
        let ticket_updates = super::lock(&sh.stats).ticket_updates.map().clone();
        return axum::Json(json!({
            "requests": sh.total_requests(),
            "by_path": by_path,
            "ticket_updates": ticket_updates,
            "rate_limited": sh.rate_limited_count(),
            "windows": sh.sliding.stats(),
        }))
        .into_response();
    }
    if parts.method == Method::GET && parts.uri.path() == REQUESTS_PATH {
        // The request log (requests.rs): not counted, no token, as the stats.
        let q = parse_query(parts.uri.query());
        return axum::Json(super::lock(&sh.stats).log.answer(&q)).into_response();
    }
    if let Some(rest) = parts.uri.path().strip_prefix("/__l3map/") {
        // The emulator's admin calls (admin.rs): not Zendesk paths, not
        // counted, no token, as the stats.
        let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        if segs.first() == Some(&"oauth") {
            return super::oauth::admin(&sh, &parts.method, &segs[1..]);
        }
        return match read_body(&sh, body).await {
            Ok(bytes) => into_response(super::admin::route(
                &sh,
                &parts.method,
                &segs,
                parts.uri.query(),
                &bytes,
            )),
            Err(too_large) => too_large,
        };
    }
    sh.count(&parts.method, parts.uri.path());
    if parts.uri.path() == "/oauth/authorizations/new" && parts.method == Method::GET {
        return super::authorize::authorize(&sh, parts.uri.query());
    }
    if parts.uri.path() == "/oauth/tokens" {
        return match (parts.method.clone(), read_body(&sh, body).await) {
            (Method::POST, Ok(bytes)) => {
                let resp = token(&sh, &parts.headers, &bytes);
                if let Some(super::oauth::HeldAnswer(d)) = resp.extensions().get().copied() {
                    tokio::time::sleep(d).await;
                }
                resp
            }
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
    let arrived = Logged {
        seq: 0,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        host: parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string),
        token: key.clone(),
        status: 0,
        at_ms: now_ms(),
        done_ms: 0,
    };
    let resp = answer(&sh, &parts, body, &grant, &key).await;
    let mut done = arrived;
    done.status = resp.status().as_u16();
    done.done_ms = now_ms();
    super::lock(&sh.stats).log.push(done);
    resp
}

/// An authenticated request past its count: the rate limit, then the route.
async fn answer(
    sh: &Arc<Shared>,
    parts: &axum::http::request::Parts,
    body: Body,
    grant: &TokenGrant,
    key: &str,
) -> Response {
    let limits = match sh.admit(key) {
        Ok(h) => h,
        Err(resp) => return *resp,
    };
    let mut resp = match read_body(sh, body).await {
        Ok(bytes) if parts.uri.path().starts_with("/api/v2/oauth/tokens") => {
            let segs: Vec<&str> = parts
                .uri
                .path()
                .trim_start_matches('/')
                .trim_end_matches(".json")
                .split('/')
                .collect();
            super::oauth_tokens::route(sh, &parts.method, &segs, grant, &bytes).unwrap_or_else(
                || route(sh, &parts.method, &parts.uri, &parts.headers, grant, &bytes),
            )
        }
        Ok(bytes) => route(sh, &parts.method, &parts.uri, &parts.headers, grant, &bytes),
        Err(too_large) => too_large,
    };
    resp.headers_mut().extend(limits);
    if let Some(StallAnswer(d)) = resp.extensions().get::<StallAnswer>().cloned() {
        tokio::time::sleep(d).await;
    }
    resp
}

/// An answer withheld this long after its request took effect
/// (`/__l3map/tickets/{id}/stall_next_update`).
#[derive(Clone, Copy)]
struct StallAnswer(std::time::Duration);

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
    sh: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    grant: &TokenGrant,
    body: &Bytes,
) -> Response {
    let mut segs: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    // "You can optionally append .json to the resource name ... Appending
    // .json doesn't change the way the endpoint works in any way"
    // (developer.zendesk.com/api-reference/introduction/doc-conventions/).
    if let Some(last) = segs.last_mut() {
        *last = last.strip_suffix(".json").unwrap_or(last);
    }
    let query = parse_query(uri.query());
    let writes = matches!(*method, Method::POST | Method::PUT | Method::DELETE);
    if writes && !grant.can_write() {
        return ZdErr::forbidden().into_response();
    }
    let base = origin(sh, headers);
    let answer = match (method.clone(), segs.as_slice()) {
        (Method::GET, ["api", "v2", "tickets"]) => list_tickets(sh),
        (Method::POST, ["api", "v2", "tickets"]) => {
            return create_ticket(sh, headers, grant, body, &base);
        }
        (Method::PUT, ["api", "v2", "tickets", "update_many"]) => {
            update_many(sh, &query, body, &base)
        }
        (Method::GET, ["api", "v2", "tickets", "show_many"]) => show_many(sh, &query),
        (Method::GET, ["api", "v2", "tickets", id]) => {
            path_id(id).and_then(|id| show(sh, id, &query))
        }
        (Method::PUT, ["api", "v2", "tickets", id]) => {
            let stall = path_id(id)
                .ok()
                .and_then(|id| super::lock(&sh.db).stall_next.remove(&id));
            let answer = path_id(id).and_then(|id| update_ticket(sh, id, body));
            if let Some(d) = stall {
                let mut resp = into_response(answer);
                resp.extensions_mut().insert(StallAnswer(d));
                return resp;
            }
            answer
        }
        (Method::DELETE, ["api", "v2", "tickets", id]) => {
            path_id(id).and_then(|id| delete_ticket(sh, id))
        }
        (Method::GET, ["api", "v2", "tickets", id, "comments"]) => {
            path_id(id).and_then(|id| list_comments(sh, id, &query, &base))
        }
        (Method::GET, ["api", "v2", "job_statuses", id]) => job_status(sh, id, &base),
        (Method::GET, ["api", "v2", "incremental", "tickets", "cursor"]) => {
            incremental(sh, &query, &base)
        }
        (Method::GET, ["api", "v2", "ticket_fields"]) => ticket_fields(sh, &query, &base),
        (Method::GET, ["api", "v2", "custom_statuses"]) => custom_statuses(sh, &query),
        (Method::PUT, ["api", "v2", "custom_status", "default"]) => {
            super::forms::put_defaults(sh, body)
        }
        (Method::GET, ["api", "v2", "ticket_forms"]) => super::forms::list(sh),
        (Method::GET, ["api", "v2", "ticket_forms", id]) => {
            path_id(id).and_then(|id| super::forms::show(sh, id))
        }
        (Method::GET, ["api", "v2", "ticket_forms", id, "ticket_form_statuses"]) => {
            path_id(id).and_then(|id| super::forms::statuses(sh, Some(id)))
        }
        (Method::GET, ["api", "v2", "ticket_form_statuses"]) => super::forms::statuses(sh, None),
        (Method::GET, ["api", "v2", "groups"]) => list_groups(sh, &query, &base),
        (Method::POST, ["api", "v2", "groups"]) => {
            let answer = create_group(sh, body);
            let id = answer.as_ref().ok().map(|(id, _)| *id);
            let mut resp = into_response(created(answer));
            // Absolute, as Zendesk sends `Location`, on the origin reached.
            if let Some(loc) = id.and_then(|id| {
                HeaderValue::from_str(&format!("{base}/api/v2/groups/{id}.json")).ok()
            }) {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            return resp;
        }
        (Method::GET, ["api", "v2", "users", "me"]) => {
            ok(json!({"user": user_json(sh, &super::lock(&sh.db), AGENT_ID)}))
        }
        (Method::GET, ["api", "v2", "organizations", "search"]) => search_orgs(sh, &query),
        (Method::GET, ["api", "v2", "organizations", id]) => {
            path_id(id).and_then(|id| show_org(sh, id))
        }
        (Method::GET, ["api", "v2", "search", "export"]) => search_export(sh, &query, &base),
        (Method::GET, ["api", "v2", "users", "search"]) => search_users(sh, &query, &base),
        (Method::GET, ["api", "v2", "users", id]) => path_id(id).and_then(|id| show_user(sh, id)),
        (Method::GET, ["api", "v2", "search"]) => search(sh, &query, &base),
        _ => Err(ZdErr {
            status: StatusCode::NOT_FOUND,
            body: json!({"error": "InvalidEndpoint", "description": "Not found"}),
        }),
    };
    into_response(answer)
}

fn into_response(answer: super::errors::Answer) -> Response {
    match answer {
        Ok((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((status, body)) => (status, axum::Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Where this emulator was reached (`http://127.0.0.1:PORT`), for the URLs
/// a client follows: `Location`, the lists' `next_page`/`links`, search's
/// pages, a job's `url`, the export's `after_url`. Zendesk sends them
/// absolute; built from `Host` they lead back here, not to the internet.
/// Without a usable `Host` (HTTP/1.0 sends none; anything that is not a
/// host with an optional port is not one), the address the emulator
/// listens on. Only a router mounted without [`super::ZendeskEmulator::start`]
/// has no address; it names the account's zendesk.com URL.
pub(super) fn origin(sh: &Shared, headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| usable_host(h));
    match (host, sh.listen.get()) {
        (Some(h), _) => format!("http://{h}"),
        (None, Some(addr)) => format!("http://{addr}"),
        (None, None) => format!("https://{}.zendesk.com", sh.opts.subdomain),
    }
}

/// `host` or `host:port` (a name, an IPv4 address or a bracketed IPv6
/// one; a port that fits in 16 bits), nothing else: no user info, path or
/// spaces can reach a URL the emulator hands out.
fn usable_host(h: &str) -> bool {
    let allowed = h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    let Ok(authority) = h.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    // `port()` is `None` both without a port and with one out of range.
    let has_port = h.len() > authority.host().len();
    let port_ok = !has_port || authority.port_u16().is_some();
    allowed && !authority.host().is_empty() && port_ok
}

/// A path's id segment (its `.json`, if any, already taken off): plain
/// decimal as Zendesk writes ids, so `+5106` and `05106` are 404 there
/// and here (Rust's `u64::from_str` would take both as 5106).
fn path_id(segment: &str) -> Result<u64, ZdErr> {
    let plain = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && !segment.starts_with('0');
    plain
        .then(|| segment.parse().ok())
        .flatten()
        .ok_or_else(ZdErr::not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_decimal() {
        assert_eq!(path_id("5106").ok(), Some(5106));
        for bad in [
            "+5106",
            "05106",
            "0",
            "",
            "-1",
            "5106 ",
            "99999999999999999999",
        ] {
            assert!(path_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_a_host_and_port_is_a_usable_host() {
        for good in ["127.0.0.1:8080", "localhost", "emulator:80", "[::1]:9000"] {
            assert!(usable_host(good), "{good}");
        }
        for bad in [
            "",
            ":80",
            "127.0.0.1:99999",
            "a:b",
            "127.0.0.1:",
            "u@h",
            "h/x",
            "a b",
            "[::1",
        ] {
            assert!(!usable_host(bad), "{bad}");
        }
    }
}
