//! `POST /oauth/tokens`, Zendesk's "Create Token for Grant Type": the
//! authorization-code, refresh-token and client-credentials grants of the
//! registered OAuth clients, and the access tokens they issue.
//!
//! Issued tokens live in bounded maps: a client that asks for tokens in a
//! loop fills them to `max_oauth_tokens`, after which expired entries and
//! then the soonest to expire make room, so memory stays flat however long
//! the emulator runs. Refresh tokens rotate as Zendesk's do: using one
//! deletes it and the access token issued with it.

use super::form::parse_query;
use super::{lock, Shared, TokenGrant};
use crate::connectors::Secret;
use crate::emulator::bounded;
use crate::emulator::same_secret;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// An OAuth client registered in Admin Center (Apps and integrations >
/// APIs > OAuth clients): its unique identifier, its secret, and the
/// scopes its tokens may carry.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub identifier: String,
    pub secret: Secret,
    pub scopes: Vec<String>,
}

impl OAuthClient {
    pub fn new(identifier: impl Into<String>, secret: &str, scopes: &[&str]) -> OAuthClient {
        OAuthClient {
            identifier: identifier.into(),
            secret: Secret::new(secret),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Zendesk keeps an authorization code for 120 seconds.
const CODE_LIFETIME: Duration = Duration::from_secs(120);
/// The `expires_in` a request may ask for (Zendesk: 5 minutes to 2 days).
const ACCESS_TTL_RANGE: (u64, u64) = (300, 172_800);
/// The `refresh_token_expires_in` a request may ask for (7 to 90 days).
const REFRESH_TTL_RANGE: (u64, u64) = (604_800, 7_776_000);

/// One issued token. `lineage` names the authorization it descends from:
/// it survives refreshes, and the rate limit is counted against it.
#[derive(Debug, Clone)]
pub(super) struct Issued {
    pub(super) client: String,
    pub(super) scopes: Vec<String>,
    pub(super) expires: Instant,
    lineage: u64,
    /// The token issued with this one (access <-> refresh), if any.
    pair: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct OAuthState {
    access: HashMap<String, Issued>,
    refresh: HashMap<String, Issued>,
    codes: HashMap<String, Issued>,
    lineages: u64,
    pub(super) grants: u32,
    /// Refresh-token grants refused `invalid_grant` (a reused, revoked or
    /// expired refresh token).
    refused: u32,
    /// Of those, refresh tokens that had been used before.
    reused: u32,
    /// Refresh-token grants applied.
    refreshes: u32,
    /// Tokens made by the OAuth Tokens API's Create Token.
    pub(super) created: u32,
    /// Refresh tokens already used (bounded: cleared past the token cap).
    spent: HashSet<String>,
    /// The next refresh grant is applied and its answer then held this
    /// long (`POST /__l3map/oauth/hold/{ms}`).
    hold: Option<Duration>,
    /// Answers held so far.
    held: u32,
    /// Every token issued (bounded like the maps): for a test's secrets
    /// scan (`GET /__l3map/oauth/issued`).
    issued: Vec<String>,
}

impl OAuthState {
    fn remember(&mut self, cap: usize, tokens: &[&String]) {
        if self.issued.len() + tokens.len() > cap {
            self.issued.clear();
        }
        self.issued.extend(tokens.iter().map(|t| t.to_string()));
    }
}

/// An answer withheld this long after its refresh took effect: the
/// lost-answer window, for tests (`/__l3map/oauth/hold/{ms}`).
#[derive(Clone, Copy)]
pub(super) struct HeldAnswer(pub(super) Duration);

/// What an access token the emulator issued turned out to be.
pub(super) enum Looked {
    Valid(TokenGrant, String),
    Expired,
    Unknown,
}

/// Inserts, first making room if the map is at `cap`: expired entries go,
/// then the one closest to expiring. Expired tokens are kept until then so
/// that using one still answers `invalid_token` rather than "unknown".
fn insert_bounded(map: &mut HashMap<String, Issued>, key: String, v: Issued, cap: usize) {
    let now = Instant::now();
    bounded::insert_bounded(map, key, v, cap, |i| i.expires <= now, |i| i.expires);
}

fn new_token() -> String {
    (0..4)
        .map(|_| format!("{:016x}", fastrand::u64(..)))
        .collect()
}

impl Shared {
    /// An access token issued by the token endpoint, with the rate key of
    /// its lineage. An expired token is forgotten as it is found.
    pub(super) fn issued_access(&self, token: &str) -> Looked {
        let mut st = lock(&self.oauth);
        let Some(i) = st.access.get(token) else {
            return Looked::Unknown;
        };
        if i.expires <= Instant::now() {
            st.access.remove(token);
            return Looked::Expired;
        }
        let grant = TokenGrant {
            token: Secret::new(token),
            scopes: i.scopes.clone(),
        };
        Looked::Valid(grant, format!("oauth-lineage-{}", i.lineage))
    }

    /// A code as the authorization page would hand it to the redirect URI
    /// once a user approved `scopes` for `client` (which must be
    /// registered, and allowed every scope).
    pub(super) fn authorization_code(&self, client: &str, scopes: &[&str]) -> Option<String> {
        let registered = self
            .opts
            .oauth_clients
            .iter()
            .find(|c| c.identifier == client)?;
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        if !scopes.iter().all(|s| registered.scopes.contains(s)) {
            return None;
        }
        let code = new_token();
        let mut st = lock(&self.oauth);
        st.lineages += 1;
        let issued = Issued {
            client: client.into(),
            scopes,
            expires: Instant::now() + CODE_LIFETIME,
            lineage: st.lineages,
            pair: None,
        };
        let cap = self.opts.max_oauth_tokens;
        insert_bounded(&mut st.codes, code.clone(), issued, cap);
        Some(code)
    }

    /// The issued access token `token` describes, if it is still valid.
    pub(super) fn access_entry(&self, token: &str) -> Option<Issued> {
        lock(&self.oauth)
            .access
            .get(token)
            .filter(|i| i.expires > Instant::now())
            .cloned()
    }

    /// A new lineage for `client` (the OAuth Tokens API's Create Token):
    /// an access token and, as Zendesk's token object has one "if
    /// generated", a refresh token, with the emulator's default lifetimes.
    pub(super) fn create_lineage(&self, client: &str, scopes: Vec<String>) -> (String, String) {
        let mut st = lock(&self.oauth);
        st.lineages += 1;
        let lineage = st.lineages;
        st.created += 1;
        let now = Instant::now();
        let (access, refresh) = (new_token(), new_token());
        let cap = self.opts.max_oauth_tokens;
        let issued = |expires, pair: &String| Issued {
            client: client.into(),
            scopes: scopes.clone(),
            expires,
            lineage,
            pair: Some(pair.clone()),
        };
        let a = issued(now + self.opts.access_token_lifetime, &refresh);
        let r = issued(now + self.opts.refresh_token_lifetime, &access);
        insert_bounded(&mut st.access, access.clone(), a, cap);
        insert_bounded(&mut st.refresh, refresh.clone(), r, cap);
        st.remember(cap, &[&access, &refresh]);
        (access, refresh)
    }

    pub(super) fn expire_access_tokens(&self) {
        let now = Instant::now();
        for i in lock(&self.oauth).access.values_mut() {
            i.expires = now;
        }
    }
}

/// Zendesk's OAuth error body: `{"error", "error_description"}`.
#[derive(Debug)]
struct OAuthErr {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl IntoResponse for OAuthErr {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        no_store((self.status, axum::Json(body)).into_response())
    }
}

/// Token answers are never cached (RFC 6749, 5.1).
fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> OAuthErr {
    OAuthErr {
        status,
        error,
        description: description.into(),
    }
}

fn invalid_request(description: &str) -> OAuthErr {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant() -> OAuthErr {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
    )
}

/// The 401 for a bearer token the endpoint issued and that has expired.
pub(super) fn expired_token() -> Response {
    let mut resp = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "The access token provided is expired, revoked, malformed or invalid for other reasons.",
    )
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    resp
}

/// The request's parameters: a JSON object (what Zendesk documents) or a
/// form (what OAuth libraries send). Numbers are kept as their text.
fn params(headers: &HeaderMap, body: &Bytes) -> Result<HashMap<String, String>, OAuthErr> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"))
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !json_body {
        return Ok(parse_query(Some(&String::from_utf8_lossy(body))));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid_request("The request body is not a JSON object."));
    };
    let mut out = HashMap::new();
    for (k, v) in map {
        let text = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Null => continue,
            _ => {
                return Err(invalid_request(&format!(
                    "The parameter {k:?} must be a string or a number."
                )))
            }
        };
        out.insert(k, text);
    }
    Ok(out)
}

/// A lifetime the request asked for, within Zendesk's bounds.
fn requested_ttl(
    p: &HashMap<String, String>,
    name: &str,
    (min, max): (u64, u64),
    default: Duration,
) -> Result<Duration, OAuthErr> {
    match p.get(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(s) if (min..=max).contains(&s) => Ok(Duration::from_secs(s)),
            _ => Err(invalid_request(&format!(
                "{name} must be a whole number of seconds from {min} to {max}."
            ))),
        },
    }
}

/// Space-separated `scope`, each within `allowed`; absent means all of
/// `allowed`.
fn scopes(p: &HashMap<String, String>, allowed: &[String]) -> Result<Vec<String>, OAuthErr> {
    let Some(asked) = p.get("scope") else {
        return Ok(allowed.to_vec());
    };
    let asked: BTreeSet<&str> = asked.split_whitespace().collect();
    if asked.is_empty() || !asked.iter().all(|s| allowed.iter().any(|a| a == s)) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
        ));
    }
    Ok(asked.into_iter().map(String::from).collect())
}

/// `POST /oauth/tokens`. A refresh applied while a hold is armed carries
/// [`HeldAnswer`]: the dispatcher sends it that much later.
pub(super) fn token(sh: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    match grant(sh, headers, body) {
        Ok(answer) => {
            let refreshed = answer.get("refresh_token").is_some()
                && params(headers, body).ok().is_some_and(|p| {
                    p.get("grant_type").map(String::as_str) == Some("refresh_token")
                });
            let mut resp = no_store((StatusCode::OK, axum::Json(answer)).into_response());
            if refreshed {
                let mut st = lock(&sh.oauth);
                if let Some(d) = st.hold.take() {
                    st.held += 1;
                    resp.extensions_mut().insert(HeldAnswer(d));
                }
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

fn grant(sh: &Shared, headers: &HeaderMap, body: &Bytes) -> Result<Value, OAuthErr> {
    let p = params(headers, body)?;
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let grant_type = get("grant_type");
    if grant_type.is_empty() {
        return Err(invalid_request("The grant_type parameter is missing."));
    }
    if !matches!(
        grant_type,
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        ));
    }
    let client = sh
        .opts
        .oauth_clients
        .iter()
        .find(|c| {
            c.identifier == get("client_id") && same_secret(get("client_secret"), c.secret.expose())
        })
        .ok_or_else(|| {
            oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
            )
        })?;
    let access_ttl = requested_ttl(
        &p,
        "expires_in",
        ACCESS_TTL_RANGE,
        sh.opts.access_token_lifetime,
    )?;
    let refresh_ttl = requested_ttl(
        &p,
        "refresh_token_expires_in",
        REFRESH_TTL_RANGE,
        sh.opts.refresh_token_lifetime,
    )?;
    if grant_type == "authorization_code" {
        // A code from the authorization page: its PKCE binding first.
        super::authorize::redeem(sh, &p, &client.identifier)
            .map_err(|(error, why)| oauth_error(StatusCode::BAD_REQUEST, error, &why))?;
    }
    let mut st = lock(&sh.oauth);
    let now = Instant::now();
    // The authorization this grant continues, its scopes, and whether it
    // earns a refresh token (client credentials do not: the client can
    // always ask again).
    let (lineage, allowed, refreshable) = match grant_type {
        "authorization_code" => {
            let code = st
                .codes
                .remove(get("code"))
                .filter(|c| c.client == client.identifier && c.expires > now)
                .ok_or_else(invalid_grant)?;
            (code.lineage, code.scopes, true)
        }
        "refresh_token" => {
            let old = st
                .refresh
                .get(get("refresh_token"))
                .filter(|r| r.client == client.identifier && r.expires > now)
                .cloned();
            let Some(old) = old else {
                st.refused += 1;
                if st.spent.contains(get("refresh_token")) {
                    st.reused += 1;
                }
                return Err(invalid_grant());
            };
            st.refresh.remove(get("refresh_token"));
            if st.spent.len() >= sh.opts.max_oauth_tokens {
                st.spent.clear();
            }
            st.spent.insert(get("refresh_token").to_string());
            st.refreshes += 1;
            if let Some(access) = &old.pair {
                st.access.remove(access);
            }
            (old.lineage, old.scopes, true)
        }
        _ => {
            st.lineages += 1;
            (st.lineages, client.scopes.clone(), false)
        }
    };
    let scopes = scopes(&p, &allowed)?;
    let cap = sh.opts.max_oauth_tokens;
    let access = new_token();
    let refresh = refreshable.then(new_token);
    st.remember(cap, &[&access]);
    if let Some(r) = &refresh {
        st.remember(cap, &[r]);
    }
    insert_bounded(
        &mut st.access,
        access.clone(),
        Issued {
            client: client.identifier.clone(),
            scopes: scopes.clone(),
            expires: now + access_ttl,
            lineage,
            pair: refresh.clone(),
        },
        cap,
    );
    let mut answer = json!({
        "access_token": access,
        "token_type": "bearer",
        "scope": scopes.join(" "),
        "expires_in": access_ttl.as_secs(),
    });
    if let Some(r) = refresh {
        insert_bounded(
            &mut st.refresh,
            r.clone(),
            Issued {
                client: client.identifier.clone(),
                // A refresh may narrow the scopes again, never widen them
                // past what was authorized.
                scopes: allowed,
                expires: now + refresh_ttl,
                lineage,
                pair: Some(access),
            },
            cap,
        );
        answer["refresh_token"] = json!(r);
        answer["refresh_token_expires_in"] = json!(refresh_ttl.as_secs());
    }
    st.grants += 1;
    Ok(answer)
}

/// The emulator's OAuth admin calls (`/__l3map/oauth/...`), what a test
/// does in place of a person at the authorization page or an admin in
/// Admin Center:
/// - `POST grant?client_id=ID&scope=read+write`: a user approved the
///   client; the answer is the token endpoint's for the code exchange
///   (access and refresh token);
/// - `POST revoke`: every token issued so far is revoked (as deleting the
///   grant in Admin Center does);
/// - `POST hold/{ms}`: the next refresh grant is applied (the old tokens
///   deleted) and its answer held `ms` milliseconds: the window in which
///   a client killed, or timing out, loses the new refresh token;
/// - `POST expire`: every access token issued so far expires now (a
///   clock that ran ahead, or tokens that lived their lifetime);
/// - `GET issued`: every token issued (the most recent `max_oauth_tokens`),
///   for a test to scan its outputs with;
/// - `GET stats`: grants issued, refreshes applied, refresh grants refused
///   (and of those, `reused`: a refresh token used before), tokens made
///   by Create Token, answers held.
pub(super) fn admin(sh: &Shared, method: &axum::http::Method, segs: &[&str]) -> Response {
    use axum::http::Method;
    match (method.clone(), segs) {
        (Method::POST, ["grant", client]) => {
            let Some(registered) = sh
                .opts
                .oauth_clients
                .iter()
                .find(|c| c.identifier == *client)
                .cloned()
            else {
                return invalid_request("unknown client").into_response();
            };
            let scopes: Vec<&str> = registered.scopes.iter().map(String::as_str).collect();
            let Some(code) = sh.authorization_code(client, &scopes) else {
                return invalid_request("the client may not have these scopes").into_response();
            };
            let body = json!({
                "grant_type": "authorization_code",
                "code": code,
                "client_id": registered.identifier,
                "client_secret": registered.secret.expose(),
            });
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            token(sh, &headers, &Bytes::from(body.to_string()))
        }
        (Method::POST, ["revoke"]) => {
            let mut st = lock(&sh.oauth);
            let revoked = st.access.len() + st.refresh.len();
            st.access.clear();
            st.refresh.clear();
            (StatusCode::OK, axum::Json(json!({"revoked": revoked}))).into_response()
        }
        (Method::POST, ["hold", ms]) => match ms.parse::<u64>() {
            Ok(ms) => {
                lock(&sh.oauth).hold = Some(Duration::from_millis(ms));
                (StatusCode::OK, axum::Json(json!({"hold_ms": ms}))).into_response()
            }
            Err(_) => invalid_request("hold/{milliseconds}").into_response(),
        },
        (Method::POST, ["expire"]) => {
            sh.expire_access_tokens();
            (StatusCode::OK, axum::Json(json!({"expired": true}))).into_response()
        }
        (Method::GET, ["issued"]) => (
            StatusCode::OK,
            axum::Json(json!({"tokens": lock(&sh.oauth).issued})),
        )
            .into_response(),
        (Method::GET, ["stats"]) => {
            let st = lock(&sh.oauth);
            (
                StatusCode::OK,
                axum::Json(json!({
                    "grants": st.grants,
                    "refreshes": st.refreshes,
                    "refused": st.refused,
                    "reused": st.reused,
                    "created": st.created,
                    "held": st.held,
                    "hold_armed": st.hold.is_some(),
                })),
            )
                .into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "InvalidEndpoint"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(expires_in: u64) -> Issued {
        Issued {
            client: "c".into(),
            scopes: vec![],
            expires: Instant::now() + Duration::from_secs(expires_in),
            lineage: 1,
            pair: None,
        }
    }

    #[test]
    fn issued_tokens_stay_within_the_bound() {
        let mut m = HashMap::new();
        for i in 0..50u64 {
            insert_bounded(&mut m, format!("t{i}"), issued(100 + i), 10);
        }
        assert_eq!(m.len(), 10);
        // The newest survive: the soonest to expire made room.
        assert!(m.contains_key("t49") && !m.contains_key("t0"));
        insert_bounded(&mut m, "x".into(), issued(1), 0);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn bodies_are_read_as_json_or_form() {
        let h = HeaderMap::new();
        let form = params(
            &h,
            &Bytes::from_static(b"grant_type=refresh_token&scope=read+write"),
        )
        .ok();
        assert_eq!(
            form.as_ref()
                .and_then(|p| p.get("scope"))
                .map(String::as_str),
            Some("read write")
        );
        let json = params(&h, &Bytes::from_static(br#" {"expires_in": 600}"#)).ok();
        assert_eq!(
            json.as_ref()
                .and_then(|p| p.get("expires_in"))
                .map(String::as_str),
            Some("600")
        );
        for bad in [&b"{"[..], b"{\"scope\": [1]}", b"[1]"] {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            assert!(params(&h, &Bytes::copy_from_slice(bad)).is_err());
        }
    }
}
