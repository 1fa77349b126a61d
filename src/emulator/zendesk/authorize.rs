//! `GET /oauth/authorizations/new`: Zendesk's authorization page for the
//! authorization-code grant, with PKCE
//! (developer.zendesk.com/documentation/api-basics/authentication/oauth-pkce).
//!
//! There is no browser and no person here: the emulator approves at once
//! and answers `302 Found` to `redirect_uri?code=...&state=...`, as Zendesk
//! does after the user clicks Allow. `l3map_decision=deny` in the query
//! plays the user who clicks Deny (`error=access_denied`).
//!
//! The code lives 120 seconds ("an authorization code valid for 120
//! seconds", developer.zendesk.com/api-reference/ticketing/oauth/grant_type_tokens/),
//! is good once, and is bound to the client, the redirect URI and the
//! challenge: the token endpoint's `authorization_code` grant asks
//! [`redeem`] before it issues anything. Only `S256` is accepted
//! ("Specify \"S256\" as the value", the PKCE guide above); `plain` is
//! refused.
//!
//! What the emulator assumes (docs/EMULATORS.md): any redirect URI on
//! https or on the loopback is taken as registered on the client (Zendesk
//! compares it with the client's list of redirect URLs); errors before the
//! redirect URI is trusted (unknown client, bad redirect URI) are a 400
//! page, never a redirect (RFC 6749, 4.1.2.1).

use super::form::parse_query;
use super::{lock, Shared};
use crate::connectors::pkce::{challenge_of, verifier_is_valid};
use crate::emulator::redirect::{acceptable as acceptable_redirect, to as redirect};
use crate::emulator::{bounded, same_secret};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// The same lifetime oauth.rs gives the code it mints.
const CODE_LIFETIME: Duration = Duration::from_secs(120);

/// What a code issued by the authorization page was bound to.
#[derive(Debug, Clone)]
struct Bound {
    client: String,
    redirect_uri: String,
    challenge: String,
    expires: Instant,
    /// Tried once: good or not, never again.
    spent: bool,
}

/// Codes the authorization page issued, by code.
#[derive(Debug, Default)]
pub(super) struct Pending {
    codes: HashMap<String, Bound>,
}

fn page(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The 302 to `redirect_uri`, `state` echoed.
fn back(redirect_uri: &str, state: &str, pairs: &[(&str, &str)]) -> Response {
    let mut all = pairs.to_vec();
    if !state.is_empty() {
        all.push(("state", state));
    }
    redirect(redirect_uri, &all)
}

/// `GET /oauth/authorizations/new?response_type=code&client_id&redirect_uri&scope&state&code_challenge&code_challenge_method`.
pub(super) fn authorize(sh: &Shared, query: Option<&str>) -> Response {
    let p = parse_query(query);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let Some(client) = sh
        .opts
        .oauth_clients
        .iter()
        .find(|c| c.identifier == get("client_id"))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "client_id names no OAuth client of this account",
        );
    };
    let redirect_uri = get("redirect_uri");
    if !acceptable_redirect(redirect_uri) {
        return page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri must be an absolute https URL, or http on localhost or 127.0.0.1",
        );
    }
    let state = get("state");
    let refuse = |error: &str, description: &str| {
        back(
            redirect_uri,
            state,
            &[("error", error), ("error_description", description)],
        )
    };
    if get("response_type") != "code" {
        return refuse("unsupported_response_type", "response_type must be code");
    }
    let challenge = get("code_challenge");
    if challenge.is_empty() {
        // The emulator's client is confidential, but l3map always sends
        // PKCE; asking for it keeps the client honest.
        return refuse("invalid_request", "code_challenge is required");
    }
    if get("code_challenge_method") != "S256" {
        return refuse("invalid_request", "code_challenge_method must be S256");
    }
    if get("l3map_decision") == "deny" {
        return refuse("access_denied", "The end-user denied the request");
    }
    let scopes: Vec<&str> = match p.get("scope") {
        Some(s) => s.split_whitespace().collect(),
        None => client.scopes.iter().map(String::as_str).collect(),
    };
    let Some(code) = sh.authorization_code(&client.identifier, &scopes) else {
        return refuse(
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
        );
    };
    let now = Instant::now();
    let bound = Bound {
        client: client.identifier.clone(),
        redirect_uri: redirect_uri.to_string(),
        challenge: challenge.to_string(),
        expires: now + CODE_LIFETIME,
        spent: false,
    };
    let cap = sh.opts.max_oauth_tokens;
    bounded::insert_bounded(
        &mut lock(&sh.authorize).codes,
        code.clone(),
        bound,
        cap,
        |b| b.expires <= now,
        |b| b.expires,
    );
    back(redirect_uri, state, &[("code", code.as_str())])
}

/// The PKCE half of the `authorization_code` grant: a code the page
/// issued must come back with its client, its redirect URI and a verifier
/// whose S256 is its challenge. `Err((error, description))` refuses the
/// grant; a code the page did not issue (minted by the test hook) is left
/// to the token endpoint.
pub(super) fn redeem(
    sh: &Shared,
    params: &HashMap<String, String>,
    client: &str,
) -> Result<(), (&'static str, String)> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let mut pending = lock(&sh.authorize);
    let Some(b) = pending.codes.get_mut(get("code")) else {
        return Ok(());
    };
    let invalid = |why: &str| ("invalid_grant", why.to_string());
    if b.spent || b.expires <= Instant::now() {
        return Err(invalid(
            "The authorization code was used already, or expired.",
        ));
    }
    b.spent = true;
    if b.client != client {
        return Err(invalid(
            "The authorization code was issued to another client.",
        ));
    }
    if b.redirect_uri != get("redirect_uri") {
        return Err(invalid(
            "The redirect_uri does not match the one of the authorization request.",
        ));
    }
    let verifier = get("code_verifier");
    if verifier.is_empty() {
        return Err(invalid("code_verifier is required for this code."));
    }
    if !verifier_is_valid(verifier) || !same_secret(&challenge_of(verifier), &b.challenge) {
        return Err(invalid(
            "The code_verifier does not match the code_challenge.",
        ));
    }
    Ok(())
}
