//! One HTTP exchange: the request as the vendor's policy built it, sent
//! with the client's per-attempt timeout, the headers handed to the
//! observer before the body is read, and the body read under the cap
//! ([`super::super::body`]). Errors carry no URL (query strings and paths
//! can hold tokens or ids a log should not).

use super::super::body::{read_capped, MAX_RESPONSE_BODY};
use super::super::error::{ApiError, System};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// A request to a vendor's API, rebuilt for every attempt by the policy.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method,
    /// A path on the API's base (with its query, or with `query` apart).
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<&'a Value>,
    /// Sent as the vendor's idempotency header where it has one.
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, path: impl Into<String>) -> Request<'a> {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotency_key: None,
        }
    }

    /// The request to `base` and its path, with its query and JSON body:
    /// what every vendor sends alike; its policy adds its own headers.
    pub fn on(&self, http: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        let mut b = http.request(self.method.clone(), format!("{base}{}", self.path));
        if !self.query.is_empty() {
            b = b.query(&self.query);
        }
        if let Some(body) = self.body {
            b = b.json(body);
        }
        b
    }
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Raw, so a 204 (no body) and JSON share one type.
    pub body: Vec<u8>,
}

/// The HTTP client of one connector: `timeout` per attempt.
pub fn http_client(system: System, timeout: Duration) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|_| ApiError::Protocol {
            system,
            message: "could not build the HTTP client".into(),
        })
}

/// Sends `req` once; `observe` sees the answer's headers before its body
/// is read (a 429's pause applies even if the body then breaks off).
pub async fn exchange(
    system: System,
    req: reqwest::RequestBuilder,
    observe: impl FnOnce(&HeaderMap),
) -> Result<Answer, ApiError> {
    exchange_seen(system, req, |_, headers| observe(headers)).await
}

/// [`exchange`], `observe` seeing the status too (whether a
/// `Retry-After` came with a 429).
pub async fn exchange_seen(
    system: System,
    req: reqwest::RequestBuilder,
    observe: impl FnOnce(StatusCode, &HeaderMap),
) -> Result<Answer, ApiError> {
    let resp = req
        .send()
        .await
        .map_err(|e| ApiError::transport(system, &e))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    observe(status, &headers);
    let body = read_capped(system, resp, MAX_RESPONSE_BODY).await?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}
