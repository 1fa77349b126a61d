//! Credentials, per-request counting and per-token rate limits.

use super::oauth::Looked;
use super::{lock, Shared, TokenGrant};
use crate::emulator::same_secret;
use crate::emulator::window::Count;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use tokio::time::Instant;

/// Window starts held before the closed ones are swept out.
const STARTS_KEPT: usize = 1024;

/// Why a request is not let in.
pub(super) enum Refused {
    /// No credential, a malformed one, or one the account does not know.
    Unknown,
    /// An access token `POST /oauth/tokens` issued, past its lifetime.
    Expired,
}

/// Bearer tokens (configured, or issued by the token endpoint) or Basic
/// `email/token:TOKEN` (API token): the grant, and the key its requests
/// are counted and limited under. A configured token is its own key; an
/// issued one counts against its authorization, so a refresh does not
/// open a fresh window.
pub(super) fn authenticate(
    sh: &Shared,
    headers: &HeaderMap,
) -> Result<(TokenGrant, String), Refused> {
    let (token, bearer) = credential(headers).ok_or(Refused::Unknown)?;
    if let Some(g) = sh
        .opts
        .tokens
        .iter()
        .find(|g| same_secret(&token, g.token.expose()))
    {
        return Ok((g.clone(), g.token.fingerprint()));
    }
    if !bearer {
        return Err(Refused::Unknown);
    }
    match sh.issued_access(&token) {
        Looked::Valid(grant, key) => Ok((grant, key)),
        Looked::Expired => Err(Refused::Expired),
        Looked::Unknown => Err(Refused::Unknown),
    }
}

/// The token of the `Authorization` header, and whether it came as a
/// bearer token.
fn credential(headers: &HeaderMap) -> Option<(String, bool)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Some((t.trim().to_string(), true));
    }
    let encoded = value.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, token) = text.split_once(':')?;
    // Only API tokens: Zendesk has retired password access to the API.
    user.strip_suffix("/token")?;
    Some((token.to_string(), false))
}

impl Shared {
    pub(super) fn count(&self, method: &Method, path: &str) {
        lock(&self.stats).by_path.bump(&format!("{method} {path}"));
    }

    pub(super) fn total_requests(&self) -> u32 {
        lock(&self.stats).by_path.total()
    }

    pub(super) fn rate_limited_count(&self) -> u32 {
        lock(&self.stats).rate_limited
    }

    pub(super) fn count_token(&self, key: &str) {
        lock(&self.stats).by_token.bump(key);
        self.sliding.arrive(key);
    }

    /// Counts the request in the token's window: the rate headers to add,
    /// or the 429 to send.
    pub(super) fn admit(&self, key: &str) -> Result<HeaderMap, Box<Response>> {
        match self.windows.count(key) {
            Count::Allowed { limit, remaining } => {
                let reset = self.reset_after(key, limit, remaining);
                Ok(rate_headers(limit, remaining, reset))
            }
            Count::Limited { limit, retry_after } => {
                lock(&self.stats).rate_limited += 1;
                let secs = retry_after.as_secs();
                let mut h = rate_headers(limit, 0, secs);
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                let body = json!({
                    "error": "APIRateLimitExceeded",
                    "description": format!("Number of allowed API requests per minute exceeded. Try again in {secs} seconds."),
                });
                Err(Box::new(
                    (StatusCode::TOO_MANY_REQUESTS, h, axum::Json(body)).into_response(),
                ))
            }
        }
    }

    /// Seconds until the token's window reopens. A window opens with the
    /// request that leaves `limit - 1` remaining.
    fn reset_after(&self, key: &str, limit: u32, remaining: u32) -> u64 {
        let now = Instant::now();
        let mut starts = lock(&self.window_starts);
        if remaining + 1 >= limit {
            // A closed window's start says nothing; forget them before
            // they pile up (one per OAuth lineage ever seen).
            if starts.len() >= STARTS_KEPT {
                starts.retain(|_, s| now.duration_since(*s) < self.opts.window);
            }
            starts.insert(key.to_string(), now);
        }
        let start = starts.get(key).copied().unwrap_or(now);
        let left = self.opts.window.saturating_sub(now.duration_since(start));
        (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
    }
}

/// Zendesk's classic headers and the IETF-draft ones it also sends.
fn rate_headers(limit: u32, remaining: u32, reset: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    let pairs = [
        ("x-rate-limit", u64::from(limit)),
        ("x-rate-limit-remaining", u64::from(remaining)),
        ("ratelimit-limit", u64::from(limit)),
        ("ratelimit-remaining", u64::from(remaining)),
        ("ratelimit-reset", reset),
    ];
    for (name, v) in pairs {
        h.insert(HeaderName::from_static(name), HeaderValue::from(v));
    }
    h
}
