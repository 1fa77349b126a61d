//! Composite Batch: up to 25 independent subrequests in one HTTP request
//! (`POST /services/data/vXX.X/composite/batch`), so the record lookups of
//! one ticket (its Account, Contact and Case) cost one round trip.
//!
//! The request is `{"batchRequests": [{"method": "GET", "url":
//! "v60.0/query?q=..."}], "haltOnError": false}`; the answer is
//! `{"hasErrors": bool, "results": [{"statusCode": 200, "result": ...}]}`,
//! in the order asked, a failed subrequest's `result` being Salesforce's
//! usual error list. Each subrequest still counts against the org's daily
//! API limit; what the batch saves is round trips and the per-request
//! concurrency slot.
//! <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_batch.htm>,
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/requests-composite-batch.md>,
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/responses-composite-batch.html>
//!
//! Composite (`POST /services/data/vXX.X/composite`): up to 25
//! subrequests, at most 5 of them queries, and "the entire series of
//! requests counts as a single call toward your API limits"
//! (<https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html>).
//! The record lookups of one ticket go this way: one round trip and one
//! call of the daily limit for up to 5 queries. The request is
//! `{"allOrNone": false, "compositeRequest": [{"method": "GET", "url":
//! "/services/data/v60.0/query?q=...", "referenceId": "q0"}]}`; the answer
//! `{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode",
//! "referenceId"}]}`, a failed subrequest's `body` being the usual error
//! list.

use super::super::error::ApiError;
use super::policy::protocol;
use super::types::Record;
use super::SalesforceClient;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value as Json};

/// Salesforce's cap on subrequests per Composite Batch request.
pub const COMPOSITE_BATCH_LIMIT: usize = 25;

/// One subrequest's answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SubResult {
    #[serde(rename = "statusCode")]
    pub status: u16,
    #[serde(default)]
    pub result: Json,
}

impl SubResult {
    /// Salesforce's message for a failed subrequest (`[{"errorCode",
    /// "message"}]`), or the status alone.
    pub fn error(&self) -> Option<String> {
        if self.status < 400 {
            return None;
        }
        let first = self.result.as_array().and_then(|a| a.first());
        let code = first
            .and_then(|e| e.get("errorCode"))
            .and_then(Json::as_str);
        let msg = first.and_then(|e| e.get("message")).and_then(Json::as_str);
        Some(match (code, msg) {
            (Some(c), Some(m)) => format!("HTTP {} {c}: {m}", self.status),
            _ => format!("HTTP {}", self.status),
        })
    }
}

#[derive(Deserialize)]
struct BatchAnswer {
    results: Vec<SubResult>,
}

/// Salesforce's cap on query subrequests per Composite request.
pub const COMPOSITE_QUERY_LIMIT: usize = 5;

#[derive(Deserialize)]
struct CompositeAnswer {
    #[serde(rename = "compositeResponse")]
    responses: Vec<CompositeSub>,
}

#[derive(Deserialize)]
struct CompositeSub {
    #[serde(rename = "httpStatusCode")]
    status: u16,
    #[serde(default)]
    body: Json,
    #[serde(rename = "referenceId")]
    reference: String,
}

/// What one query subrequest came to: its records, or why it failed.
pub type QueryOutcome = Result<Vec<Record>, String>;

impl SalesforceClient {
    /// GET subrequests (`rest` relative to the version, `query?q=...`,
    /// `sobjects/Account/001...`), sent 25 to a request; the answers in
    /// the order asked. A failed subrequest is an answer, not an error:
    /// only the batch request itself failing is.
    pub async fn composite_batch_get(&self, rests: &[String]) -> Result<Vec<SubResult>, ApiError> {
        let version = &self.inner.cfg.api_version;
        let mut out = Vec::with_capacity(rests.len());
        for chunk in rests.chunks(COMPOSITE_BATCH_LIMIT) {
            let subs: Vec<Json> = chunk
                .iter()
                .map(|r| json!({"method": "GET", "url": format!("{version}/{r}")}))
                .collect();
            let body = json!({"batchRequests": subs, "haltOnError": false});
            let mut call = self.call(Method::POST, "composite/batch".into());
            call.body = Some(&body);
            let got: BatchAnswer = self.json(call).await?;
            if got.results.len() != chunk.len() {
                return Err(protocol(format!(
                    "Composite Batch answered {} results for {} subrequests",
                    got.results.len(),
                    chunk.len()
                )));
            }
            out.extend(got.results);
        }
        Ok(out)
    }

    /// SOQL queries in one Composite Batch (per 25); each query's first
    /// page of records, in the order asked. Meant for lookups with a
    /// `LIMIT` well under a page, which is all a first page can hold.
    pub async fn query_batch(&self, soqls: &[String]) -> Result<Vec<QueryOutcome>, ApiError> {
        let rests: Vec<String> = soqls
            .iter()
            .map(|q| {
                format!(
                    "query?q={}",
                    form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
                )
            })
            .collect();
        let results = self.composite_batch_get(&rests).await?;
        Ok(results.into_iter().map(query_outcome).collect())
    }
}

impl SalesforceClient {
    /// SOQL queries in one Composite request (per 5, Salesforce's cap on
    /// queries in one): each query's first page of records, in the order
    /// asked. Each request counts once against the org's daily API limit,
    /// whatever it holds. Meant for lookups with a `LIMIT` well under a
    /// page.
    pub async fn query_composite(&self, soqls: &[String]) -> Result<Vec<QueryOutcome>, ApiError> {
        let version = &self.inner.cfg.api_version;
        let mut out = Vec::with_capacity(soqls.len());
        for chunk in soqls.chunks(COMPOSITE_QUERY_LIMIT) {
            let subs: Vec<Json> = chunk
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
                    json!({"method": "GET", "url": format!("/services/data/{version}/query?q={q}"),
                           "referenceId": format!("q{i}")})
                })
                .collect();
            let body = json!({"allOrNone": false, "compositeRequest": subs});
            let mut call = self.call(Method::POST, "composite".into());
            call.body = Some(&body);
            let got: CompositeAnswer = self.json(call).await?;
            for i in 0..chunk.len() {
                let reference = format!("q{i}");
                let sub = got
                    .responses
                    .iter()
                    .find(|r| r.reference == reference)
                    .ok_or_else(|| {
                        protocol(format!(
                            "the Composite answer has no subrequest {reference}"
                        ))
                    })?;
                out.push(query_outcome(SubResult {
                    status: sub.status,
                    result: sub.body.clone(),
                }));
            }
        }
        Ok(out)
    }
}

fn query_outcome(r: SubResult) -> QueryOutcome {
    if let Some(e) = r.error() {
        return Err(e);
    }
    let records = r
        .result
        .get("records")
        .and_then(Json::as_array)
        .ok_or_else(|| format!("HTTP {}: the answer has no records", r.status))?;
    records
        .iter()
        .map(|v| {
            v.as_object()
                .cloned()
                .ok_or_else(|| "a record is not an object".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_subrequests_say_salesforces_error() {
        let r: SubResult = serde_json::from_value(json!({
            "statusCode": 400,
            "result": [{"errorCode": "INVALID_FIELD", "message": "No such column 'X'"}]
        }))
        .unwrap();
        assert_eq!(
            r.error().as_deref(),
            Some("HTTP 400 INVALID_FIELD: No such column 'X'")
        );
        assert_eq!(
            query_outcome(r),
            Err("HTTP 400 INVALID_FIELD: No such column 'X'".into())
        );
        let ok: SubResult = serde_json::from_value(json!({
            "statusCode": 200,
            "result": {"totalSize": 1, "done": true, "records": [{"Id": "001A"}]}
        }))
        .unwrap();
        assert_eq!(ok.error(), None);
        assert_eq!(query_outcome(ok).unwrap()[0]["Id"], json!("001A"));
    }
}
