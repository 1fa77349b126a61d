//! The OAuth Tokens API for a token the token endpoint issued
//! (developer.zendesk.com/api-reference/ticketing/oauth/oauth_tokens/):
//! `GET /api/v2/oauth/tokens/current` (Show Token for the bearer token)
//! and `POST /api/v2/oauth/tokens` (Create Token), which l3map uses to
//! mint its standby lineage (docs/RUNTIME.md, "The standby").
//!
//! Create Token takes `{"token": {"client_id": ID, "scopes": [...]}}`,
//! `client_id` being the OAuth client's resource id (an integer), and
//! answers 201 with the token object, its `refresh_token` included: the
//! documentation lists `refresh_token` "if generated" and does not say
//! when; the emulator always generates one (unverified, EMULATORS.md).
//! Zendesk allows Create Token for admins; the emulator's OAuth grants
//! act as its one agent and are not refused for their role.

use super::{Shared, TokenGrant};
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The resource id Zendesk gives a registered client (its `id`, not its
/// unique identifier): here, by its place in the emulator's options.
pub(super) fn client_id(sh: &Shared, identifier: &str) -> Option<u64> {
    sh.opts
        .oauth_clients
        .iter()
        .position(|c| c.identifier == identifier)
        .map(|i| 9_000 + i as u64)
}

fn fail(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "description": description})),
    )
        .into_response()
}

/// `/api/v2/oauth/tokens[...]`, or `None` for another path.
pub(super) fn route(
    sh: &Shared,
    method: &Method,
    segs: &[&str],
    grant: &TokenGrant,
    body: &Bytes,
) -> Option<Response> {
    match (method.clone(), segs) {
        (Method::GET, ["api", "v2", "oauth", "tokens", "current"]) => Some(current(sh, grant)),
        (Method::POST, ["api", "v2", "oauth", "tokens"]) => Some(create(sh, grant, body)),
        _ => None,
    }
}

fn token_json(sh: &Shared, client: &str, scopes: &[String], token: &str) -> Value {
    json!({
        "client_id": client_id(sh, client),
        "scopes": scopes,
        // "only the first 10 characters of the access token are included"
        "token": token.chars().take(10).collect::<String>(),
        "user_id": super::AGENT_ID,
    })
}

fn current(sh: &Shared, grant: &TokenGrant) -> Response {
    match sh.access_entry(grant.token.expose()) {
        Some(i) => (
            StatusCode::OK,
            axum::Json(
                json!({"token": token_json(sh, &i.client, &i.scopes, grant.token.expose())}),
            ),
        )
            .into_response(),
        // A configured (non-OAuth) token has no token object.
        None => fail(StatusCode::NOT_FOUND, "RecordNotFound", "Not found"),
    }
}

fn create(sh: &Shared, grant: &TokenGrant, body: &Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The body is not JSON.",
        );
    };
    let Some(id) = v["token"]["client_id"].as_u64() else {
        return fail(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "token.client_id (the OAuth client's resource id, an integer) is required.",
        );
    };
    let Some(client) = sh
        .opts
        .oauth_clients
        .iter()
        .find(|c| client_id(sh, &c.identifier) == Some(id))
        .cloned()
    else {
        return fail(
            StatusCode::NOT_FOUND,
            "RecordNotFound",
            "No such OAuth client.",
        );
    };
    if sh.access_entry(grant.token.expose()).is_none() {
        // Only a token the token endpoint issued may make another here.
        return fail(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "You do not have access to this page.",
        );
    }
    // "The endpoint returns an access token even if you specify an
    // invalid scope": unknown ones are kept out of the grant here.
    let scopes: Vec<String> = v["token"]["scopes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|s| client.scopes.iter().any(|c| c == s))
                .map(String::from)
                .collect()
        })
        .unwrap_or_else(|| client.scopes.clone());
    let (access, refresh) = sh.create_lineage(&client.identifier, scopes.clone());
    let mut t = token_json(sh, &client.identifier, &scopes, &access);
    t["token"] = json!(access);
    t["refresh_token"] = json!(refresh);
    (StatusCode::CREATED, axum::Json(json!({"token": t}))).into_response()
}
