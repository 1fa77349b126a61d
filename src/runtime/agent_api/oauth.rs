//! l3map as the OAuth 2.1 authorization server of its own agent API and
//! MCP endpoint, for clients that only speak OAuth (Zendesk's MCP
//! connections): an agent with `[agents.NAME.oauth]` is a confidential
//! client that obtains access tokens here, by client credentials or by an
//! authorization code with PKCE (S256), and refreshes them.
//!
//! Tokens are HS256 JWTs signed with a key derived from the client's
//! secret (HMAC-SHA256 of a fixed label), so every replica of a fleet and
//! every restart accepts them without a store, and rotating the secret in
//! `l3map.toml` revokes every token of that client at once. The
//! authorization endpoint asks no person: the client and its redirect URIs
//! were registered by the operator in `l3map.toml` (consent by
//! configuration), the code goes only to a registered URI, and redeeming
//! it takes the client's secret and the PKCE verifier.
//!
//! Metadata: RFC 8414 at `/.well-known/oauth-authorization-server`; the
//! protected resource's (RFC 9728) names this server when any agent has a
//! client.

use crate::connectors::Secret;
use crate::runtime::app::{App, OauthClient};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// This server as the client reached it: `X-Forwarded-Proto` (a TLS
/// proxy in front) or http, and the `Host` it asked for.
pub(super) fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

const ACCESS_SECS: u64 = 3600;
const REFRESH_SECS: u64 = 30 * 86_400;
const CODE_SECS: u64 = 60;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The agent.
    sub: String,
    /// `access`, `refresh` or `code`.
    typ: String,
    aud: String,
    iat: u64,
    exp: u64,
    /// A code's PKCE challenge and redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ru: Option<String>,
    /// Makes each token distinct.
    jti: String,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The signing key of a client's tokens: derived from its secret, never
/// the secret itself.
fn key(secret: &Secret) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(b"l3map oauth token key v1");
    mac.finalize().into_bytes().to_vec()
}

fn mint(
    c: &OauthClient,
    typ: &str,
    aud: &str,
    secs: u64,
    extra: (Option<String>, Option<String>),
) -> String {
    let iat = now();
    let claims = Claims {
        sub: c.agent.clone(),
        typ: typ.into(),
        aud: aud.into(),
        iat,
        exp: iat + secs,
        cc: extra.0,
        ru: extra.1,
        jti: format!("{:032x}", fastrand::u128(..)),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(c.client_id.clone());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key(&c.secret)))
        .unwrap_or_default()
}

/// A token of `typ` this server signed for one of its clients, unexpired.
fn verify<'a>(app: &'a App, token: &str, typ: &str) -> Option<(&'a OauthClient, Claims)> {
    let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
    let client = app.agent_policy.oauth.iter().find(|c| c.client_id == kid)?;
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_aud = false;
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "sub"]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&key(&client.secret)), &v)
            .ok()?;
    (data.claims.typ == typ && data.claims.sub == client.agent).then_some((client, data.claims))
}

/// The agent an OAuth access token of this server was issued to.
/// Only for this server's `/mcp` (RFC 8707): a token minted for another
/// resource is not one here.
pub(super) fn agent_of(app: &App, token: &str, headers: &HeaderMap) -> Option<String> {
    if app.agent_policy.oauth.is_empty() || token.matches('.').count() != 2 {
        return None;
    }
    let (c, claims) = verify(app, token, "access")?;
    (claims.aud == format!("{}/mcp", origin(headers))).then(|| c.agent.clone())
}

/// Marks a code's or refresh token's `jti` redeemed; `false` when it was
/// already. Expired entries are dropped as it goes.
fn redeem(app: &App, claims: &Claims) -> bool {
    let mut spent = app
        .agent_policy
        .spent
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let now = now();
    spent.retain(|_, exp| *exp >= now);
    spent.insert(claims.jti.clone(), claims.exp).is_none()
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub(super) async fn metadata(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if app.agent_policy.oauth.is_empty() {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no agent of this l3map has an [agents.NAME.oauth] client",
        );
    }
    let base = origin(&headers);
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"l3map\""),
        );
    }
    r
}

#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    state: Option<String>,
    resource: Option<String>,
}

/// `GET /oauth/authorize`: a code for a registered client, sent only to
/// one of its registered redirect URIs.
pub(super) async fn authorize(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<AuthorizeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the query is not an authorization request",
        );
    };
    let Some(client) = q
        .client_id
        .as_deref()
        .and_then(|id| app.agent_policy.oauth.iter().find(|c| c.client_id == id))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown client_id",
        );
    };
    // Until the redirect URI is known to be the client's, errors are not
    // sent there (an open redirector otherwise).
    let redirect = match (&q.redirect_uri, client.redirect_uris.as_slice()) {
        (Some(r), uris) if uris.iter().any(|u| u == r) => r.clone(),
        (None, [only]) => only.clone(),
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "redirect_uri is not one of the client's redirect_uris in l3map.toml",
            )
        }
    };
    let base = origin(&headers);
    let back = |params: &[(&str, &str)]| -> Response {
        let mut url = match reqwest::Url::parse(&redirect) {
            Ok(u) => u,
            Err(_) => {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri")
            }
        };
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in params {
                pairs.append_pair(k, v);
            }
            if let Some(s) = &q.state {
                pairs.append_pair("state", s);
            }
            pairs.append_pair("iss", &base);
        }
        Redirect::to(url.as_str()).into_response()
    };
    if q.response_type.as_deref() != Some("code") {
        return back(&[("error", "unsupported_response_type")]);
    }
    let challenge = match (&q.code_challenge, q.code_challenge_method.as_deref()) {
        (Some(c), Some("S256")) if (43..=128).contains(&c.len()) => c.clone(),
        _ => {
            return back(&[
                ("error", "invalid_request"),
                (
                    "error_description",
                    "PKCE is required: code_challenge with code_challenge_method=S256",
                ),
            ])
        }
    };
    let aud = format!("{base}/mcp");
    if q.resource.as_ref().is_some_and(|r| *r != aud) {
        return back(&[
            ("error", "invalid_target"),
            (
                "error_description",
                "resource: this server's tokens are for its /mcp only",
            ),
        ]);
    }
    let code = mint(
        client,
        "code",
        &aud,
        CODE_SECS,
        (Some(challenge), Some(redirect.clone())),
    );
    tracing::info!(agent = %client.agent, "OAuth: an authorization code was issued");
    back(&[("code", &code)])
}

#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    resource: Option<String>,
}

/// The client a token request authenticates as: HTTP Basic, or the
/// secret in the body; compared in constant time.
fn client<'a>(app: &'a App, headers: &HeaderMap, f: &TokenForm) -> Option<&'a OauthClient> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let d = |x: &str| urlencoding_decode(x);
            Some((d(id), d(secret)))
        });
    let (id, secret) = match basic {
        Some(p) => p,
        None => (f.client_id.clone()?, f.client_secret.clone()?),
    };
    let c = app.agent_policy.oauth.iter().find(|c| c.client_id == id)?;
    let a: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let b: [u8; 32] = Sha256::digest(c.secret.expose().as_bytes()).into();
    bool::from(a.ct_eq(&b)).then_some(c)
}

/// `application/x-www-form-urlencoded` decoding of a Basic credential
/// (RFC 6749, section 2.3.1).
fn urlencoding_decode(s: &str) -> String {
    reqwest::Url::parse(&format!("http://x/?v={s}"))
        .ok()
        .and_then(|u| u.query_pairs().next().map(|(_, v)| v.into_owned()))
        .unwrap_or_else(|| s.to_string())
}

fn tokens(c: &OauthClient, aud: &str, refresh: bool) -> Response {
    let mut body = json!({
        "access_token": mint(c, "access", aud, ACCESS_SECS, (None, None)),
        "token_type": "Bearer",
        "expires_in": ACCESS_SECS,
    });
    if refresh {
        body["refresh_token"] = json!(mint(c, "refresh", aud, REFRESH_SECS, (None, None)));
    }
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /oauth/token`.
pub(super) async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the request as application/x-www-form-urlencoded",
        );
    };
    let Some(c) = client(&app, &headers, &f) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client, or a wrong secret",
        );
    };
    let aud = format!("{}/mcp", origin(&headers));
    if f.resource.as_ref().is_some_and(|r| *r != aud) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "resource: this server's tokens are for its /mcp only",
        );
    }
    let invalid_grant = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    match f.grant_type.as_deref() {
        Some("client_credentials") => {
            tracing::info!(agent = %c.agent, "OAuth: client credentials exchanged for an access token");
            tokens(c, &aud, false)
        }
        Some("authorization_code") => {
            let Some((owner, claims)) = f
                .code
                .as_deref()
                .and_then(|code| verify(&app, code, "code"))
            else {
                return invalid_grant("the code is not valid, or it expired (codes live 60 s)");
            };
            if owner.client_id != c.client_id {
                return invalid_grant("the code was issued to another client");
            }
            if f.redirect_uri.is_some() && f.redirect_uri != claims.ru {
                return invalid_grant("redirect_uri differs from the authorization request's");
            }
            let verifier = f.code_verifier.unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            if claims.cc.as_deref() != Some(computed.as_str()) {
                return invalid_grant("code_verifier does not match the code_challenge");
            }
            if !redeem(&app, &claims) {
                return invalid_grant("the code was already redeemed");
            }
            tokens(c, &claims.aud, true)
        }
        Some("refresh_token") => {
            match f
                .refresh_token
                .as_deref()
                .and_then(|t| verify(&app, t, "refresh"))
            {
                // Rotated: the one sent is good no more.
                Some((owner, claims)) if owner.client_id == c.client_id => {
                    if !redeem(&app, &claims) {
                        return invalid_grant(
                            "the refresh token was already used; use the one its renewal gave",
                        );
                    }
                    tokens(c, &claims.aud, true)
                }
                _ => invalid_grant("the refresh token is not valid, or it expired"),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type: client_credentials, authorization_code or refresh_token",
        ),
    }
}
