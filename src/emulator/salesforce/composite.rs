//! `POST /services/data/vXX.X/composite/batch`: up to 25 subrequests run
//! in order, each answered as it would be alone, in one answer
//! `{"hasErrors", "results": [{"statusCode", "result"}]}`. A subrequest's
//! `url` starts at the version (`v60.0/query?q=...`).
//!
//! Emulated: GET subrequests of records (`sobjects/{Object}/{Id}`) and
//! queries (`query?q=`), which is what l3map batches; any other method or
//! resource is answered, per subrequest, with the 400 Salesforce gives a
//! URL it cannot route. The whole batch counts as one request against the
//! emulator's limit window (Salesforce counts each subrequest against the
//! daily limit). `haltOnError: true` answers 412 `BATCH_PROCESSING_HALTED`
//! for the subrequests after a failure, as Salesforce does.
//! <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_batch.htm>
//!
//! `POST /services/data/vXX.X/composite`: up to 25 subrequests, at most 5
//! queries, `{"allOrNone", "compositeRequest": [{"method", "url",
//! "referenceId"}]}`, each `url` the full path (`/services/data/v60.0/
//! query?q=...`); answered `{"compositeResponse": [{"body", "httpHeaders",
//! "httpStatusCode", "referenceId"}]}`. Emulated: the same GET
//! subrequests as the batch, run independently (`allOrNone: false`; the
//! emulator writes nothing through it, so there is nothing to roll back);
//! references to earlier answers (`@{ref.field}`) are not. One request
//! against the limit window, as Salesforce counts it.
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html>

use super::bodies::{ok_json, read_object};
use super::errors::{Answer, SfError};
use super::query::query;
use super::sobjects::get_record;
use super::Emu;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// Salesforce's cap on subrequests per batch.
const MAX_SUBREQUESTS: usize = 25;

/// A subrequest's answer body is one record or one page: bounded well
/// below the emulator's body limit.
const MAX_SUB_BODY: usize = 16 * 1024 * 1024;

pub(super) async fn batch(
    State(st): State<Arc<Emu>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = read_object(body)?;
    let subs = body
        .get("batchRequests")
        .and_then(Json::as_array)
        .ok_or_else(|| SfError::bad("INVALID_BATCH_REQUEST", "batchRequests is required"))?;
    if subs.len() > MAX_SUBREQUESTS {
        return Err(SfError::bad(
            "LIMIT_EXCEEDED",
            format!("The request can't contain more than {MAX_SUBREQUESTS} operations."),
        ));
    }
    let halt = body.get("haltOnError").and_then(Json::as_bool) == Some(true);
    // Deserialization comes first: a subrequest without a method or url
    // refuses the whole batch before any runs.
    let mut parsed = Vec::with_capacity(subs.len());
    for s in subs {
        let method = s.get("method").and_then(Json::as_str);
        let url = s.get("url").and_then(Json::as_str);
        match (method, url) {
            (Some(m), Some(u)) => parsed.push((m.to_ascii_uppercase(), u.to_string())),
            _ => {
                return Err(SfError::bad(
                    "INVALID_BATCH_REQUEST",
                    "every subrequest needs a method and a url",
                ))
            }
        }
    }
    let mut results = Vec::with_capacity(parsed.len());
    let mut failed = false;
    for (method, url) in parsed {
        let (status, result) = if halt && failed {
            (
                412,
                json!([{"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}]),
            )
        } else {
            run(&st, &v, &headers, &method, &url).await
        };
        failed |= status >= 400;
        results.push(json!({"statusCode": status, "result": result}));
    }
    let has_errors = results
        .iter()
        .any(|r| r["statusCode"].as_u64().is_some_and(|s| s >= 400));
    ok_json(
        StatusCode::OK,
        json!({"hasErrors": has_errors, "results": results}),
    )
}

/// Salesforce's cap on query subrequests in one Composite request.
const MAX_COMPOSITE_QUERIES: usize = 5;

pub(super) async fn composite(
    State(st): State<Arc<Emu>>,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = read_object(body)?;
    let subs = body
        .get("compositeRequest")
        .and_then(Json::as_array)
        .ok_or_else(|| SfError::bad("JSON_PARSER_ERROR", "compositeRequest is required"))?;
    if subs.len() > MAX_SUBREQUESTS {
        return Err(SfError::bad(
            "LIMIT_EXCEEDED",
            format!("The request can't contain more than {MAX_SUBREQUESTS} operations."),
        ));
    }
    let mut parsed = Vec::with_capacity(subs.len());
    for s in subs {
        let field = |k: &str| s.get(k).and_then(Json::as_str).map(str::to_string);
        match (field("method"), field("url"), field("referenceId")) {
            (Some(m), Some(u), Some(r)) => parsed.push((m.to_ascii_uppercase(), u, r)),
            _ => {
                return Err(SfError::bad(
                    "JSON_PARSER_ERROR",
                    "every subrequest needs a method, a url and a referenceId",
                ))
            }
        }
    }
    let queries = parsed
        .iter()
        .filter(|(_, u, _)| u.contains("/query"))
        .count();
    if queries > MAX_COMPOSITE_QUERIES {
        return Err(SfError::bad(
            "LIMIT_EXCEEDED",
            format!(
                "The request can't contain more than {MAX_COMPOSITE_QUERIES} query operations."
            ),
        ));
    }
    let mut out = Vec::with_capacity(parsed.len());
    for (method, url, reference) in parsed {
        let (status, result) = if url.starts_with("/services/data/") {
            run(&st, &v, &headers, &method, &url).await
        } else {
            (
                400,
                json!([{"errorCode": "INVALID_URL", "message": "a subrequest's url starts with /services/data/"}]),
            )
        };
        out.push(
            json!({"body": result, "httpHeaders": {}, "httpStatusCode": status,
                        "referenceId": reference}),
        );
    }
    ok_json(StatusCode::OK, json!({"compositeResponse": out}))
}

/// One subrequest, through the same handler a lone request reaches.
async fn run(
    st: &Arc<Emu>,
    batch_v: &str,
    headers: &HeaderMap,
    method: &str,
    url: &str,
) -> (u16, Json) {
    let (path, query_string) = url.split_once('?').unwrap_or((url, ""));
    let path = path.trim_start_matches('/');
    let path = path.strip_prefix("services/data/").unwrap_or(path);
    let mut parts = path.trim_end_matches('/').split('/');
    let version = parts.next().unwrap_or_default().to_string();
    let rest: Vec<&str> = parts.collect();
    let params: HashMap<String, String> = form_urlencoded::parse(query_string.as_bytes())
        .into_owned()
        .collect();
    if !version.starts_with('v') || version_number(&version) > version_number(batch_v) {
        return answer(Err(SfError::not_found())).await;
    }
    let state = State(st.clone());
    let reply = match (method, rest.as_slice()) {
        ("GET", ["query"]) => query(state, Path(version), headers.clone(), Ok(Query(params))).await,
        ("GET", ["sobjects", object, id]) => {
            let p = Path((version, (*object).to_string(), (*id).to_string()));
            get_record(state, p, Ok(Query(params))).await
        }
        _ => Err(SfError::bad(
            "INVALID_BATCH_REQUEST",
            format!("the emulator does not batch {method} {url}"),
        )),
    };
    answer(reply).await
}

fn version_number(v: &str) -> f64 {
    v.trim_start_matches('v').parse().unwrap_or(0.0)
}

async fn answer(reply: Answer) -> (u16, Json) {
    let resp: Response = match reply {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), MAX_SUB_BODY)
        .await
        .unwrap_or_default();
    let result = if bytes.is_empty() {
        Json::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Json::Null)
    };
    (status, result)
}
