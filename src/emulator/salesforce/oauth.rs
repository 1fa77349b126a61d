//! The token endpoint: the web server flow's code exchange
//! ([`super::authorize`]), the refresh-token grant (rotating when the app
//! says so) and the JWT-bearer grant ([`super::jwt`]), each answered with
//! Salesforce's bodies.
//!
//! Every grant issues a new access token and clients re-grant whenever a
//! session ends, so the live tokens are pruned of expired ones on each
//! grant and capped at [`MAX_TOKENS`]: memory stays flat however long
//! `l3map emulate` runs.

use super::{jwt, lock, Emu};
use crate::emulator::bounded::insert_bounded;
use crate::emulator::same_secret;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;

/// Access tokens kept live at once; past it the soonest to expire goes.
const MAX_TOKENS: usize = 10_000;

/// Issued access tokens: each live one with the instant it expires, and
/// the latest handed out, expired or not, for [`super::Handle::issued_tokens`].
/// No `Debug`: it holds live tokens.
#[derive(Default)]
pub(super) struct Tokens {
    live: HashMap<String, Instant>,
    issued: VecDeque<String>,
}

impl Tokens {
    fn issue(&mut self, token: String, expires: Instant, cap: usize, now: Instant) {
        // A session past its end answers INVALID_SESSION_ID whether it is
        // kept or not, so expired ones can go.
        self.live.retain(|_, e| *e > now);
        insert_bounded(
            &mut self.live,
            token.clone(),
            expires,
            cap,
            |_| false,
            |e| *e,
        );
        if self.issued.len() >= cap.max(1) {
            self.issued.pop_front();
        }
        self.issued.push_back(token);
    }

    pub(super) fn valid(&self, token: &str, now: Instant) -> bool {
        self.live.get(token).is_some_and(|e| *e > now)
    }

    pub(super) fn expire_all(&mut self, now: Instant) {
        for e in self.live.values_mut() {
            *e = now;
        }
    }

    pub(super) fn issued(&self) -> Vec<String> {
        self.issued.iter().cloned().collect()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `grant_type=refresh_token` with the connected app's key and secret, or
/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with a signed
/// assertion.
pub(super) async fn token(
    State(st): State<Arc<Emu>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "could not read the request body",
        );
    };
    let params: HashMap<String, String> = form_pairs(&body);
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    match get("grant_type") {
        "refresh_token" => {}
        // The web server flow's code exchange (super::authorize).
        "authorization_code" => {
            return match super::authorize::redeem(&st, &params) {
                Ok(refresh) => issue(
                    &st,
                    &headers,
                    "api refresh_token offline_access",
                    Some(refresh),
                ),
                Err((error, description)) => {
                    oauth_error(StatusCode::BAD_REQUEST, error, description)
                }
            };
        }
        jwt::GRANT_TYPE => {
            let audiences = [
                "https://login.salesforce.com".to_string(),
                "https://test.salesforce.com".to_string(),
                // The emulator's own URL stands in for the org's My Domain.
                format!("http://{}", host(&headers)),
            ];
            let now = jiff::Timestamp::now().as_second();
            let checked = jwt::verify(
                st.jwt.as_ref(),
                &st.client_id,
                &audiences,
                get("assertion"),
                now,
            );
            return match checked {
                // No refresh token in this flow: the client signs a new
                // assertion when the session ends.
                Ok(_user) => issue(&st, &headers, "api", None),
                Err((error, description)) => {
                    oauth_error(StatusCode::BAD_REQUEST, error, description)
                }
            };
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant type not supported",
            )
        }
    }
    if get("client_id") != st.client_id || !same_secret(get("client_secret"), &st.client_secret) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "invalid client credentials",
        );
    }
    let refreshed = lock(&st.grants).refresh(get("refresh_token"), st.rotate_refresh_tokens);
    match refreshed {
        Err(()) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "expired access/refresh token",
        ),
        // With rotation, the new refresh token is in the answer.
        Ok(rotated) => issue(&st, &headers, "api refresh_token offline_access", rotated),
    }
}

fn host(headers: &HeaderMap) -> &str {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
}

/// A new access token, answered as Salesforce does: a `refresh_token` in
/// the body after a code exchange, and after a refresh only when the app
/// rotates refresh tokens (otherwise the client reuses the one it has).
fn issue(st: &Emu, headers: &HeaderMap, scope: &str, refresh: Option<String>) -> Response {
    let serial = st.token_serial.fetch_add(1, Ordering::SeqCst) + 1;
    let access = format!("00D5e0000000001!AQ{serial:08}{:016x}", fastrand::u64(..));
    let now = Instant::now();
    lock(&st.tokens).issue(access.clone(), now + st.token_lifetime, MAX_TOKENS, now);
    st.stats.grants.fetch_add(1, Ordering::SeqCst);
    let host = host(headers);
    let issued = jiff::Timestamp::now().as_millisecond();
    let mut body = json!({
        "access_token": access,
        "instance_url": format!("http://{host}"),
        "id": format!("http://{host}/id/00D5e0000000001/0055e0000000001"),
        "token_type": "Bearer",
        "issued_at": issued.to_string(),
        "scope": scope,
        "signature": signature(&access, issued),
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    axum::Json(body).into_response()
}

/// base64(HMAC-SHA256(id + issued_at)) in Salesforce; here a stand-in of
/// the same shape (the emulator has no private key to sign with).
fn signature(access: &str, issued: i64) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{access}{issued}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// `application/x-www-form-urlencoded`, decoded leniently: a bad escape
/// keeps its bytes rather than failing the whole form.
fn form_pairs(body: &Bytes) -> HashMap<String, String> {
    form_urlencoded::parse(body)
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_tokens_are_pruned_and_capped_and_the_log_is_bounded() {
        let mut t = Tokens::default();
        let now = Instant::now();
        let hour = std::time::Duration::from_secs(3600);
        t.issue("old".into(), now + hour, 3, now);
        t.expire_all(now);
        assert!(!t.valid("old", now));
        t.issue("a".into(), now + hour, 3, now);
        assert!(!t.live.contains_key("old"), "expired on the next grant");
        assert_eq!(t.issued(), ["old", "a"], "still listed for log scans");
        for (i, k) in ["b", "c", "d"].into_iter().enumerate() {
            let secs = std::time::Duration::from_secs(i as u64 + 1);
            t.issue(k.into(), now + hour + secs, 3, now);
        }
        assert_eq!(t.live.len(), 3);
        assert!(!t.valid("a", now), "the soonest to expire made room");
        assert!(t.valid("d", now) && t.valid("b", now));
        assert_eq!(t.issued(), ["b", "c", "d"]);
    }

    #[test]
    fn form_decoding_never_fails() {
        let f = form_pairs(&Bytes::from_static(b"a=b%20c&d=%zz&%=&e=%2"));
        assert_eq!(f.get("a").map(String::as_str), Some("b c"));
        assert_eq!(f.get("d").map(String::as_str), Some("%zz"));
        assert_eq!(f.get("e").map(String::as_str), Some("%2"));
    }
}
