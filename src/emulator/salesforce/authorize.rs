//! The web server flow's authorization endpoint,
//! `GET /services/oauth2/authorize`, with PKCE; the refresh tokens the
//! org has issued, optionally rotated; and the emulator's OAuth hooks.
//!
//! Salesforce: "The application redirects the user to the appropriate
//! Salesforce authorization endpoint ... response_type Must be code ...
//! code_challenge Specifies the SHA256 hash value of the code_verifier
//! value in the token request ... base64url encoded"; a verifier that does
//! not match fails `invalid_request`, a challenge with no verifier
//! `invalid_grant`
//! (developer.salesforce.com/docs/atlas.en-us.222.0.api_rest.meta/api/intro_understanding_web_server_oauth_flow.htm,
//! error codes from its ja-jp 224.0 revision).
//!
//! No login page and no person: the emulator approves at once and answers
//! 302 to `redirect_uri?code=...&state=...`; `l3map_decision=deny` plays
//! the user who denies (`error=access_denied`). Codes are good once, for
//! 15 minutes (unverified: Salesforce documents no lifetime on the pages
//! above), bound to the client, redirect URI and challenge.
//!
//! Refresh token rotation is a setting of the connected app or external
//! client app: "the connected app issues a new refresh token along with
//! the access token each time the flow is invoked. The previous refresh
//! token is automatically invalidated ... If someone tries to use a
//! refresh token that's been rotated out, Salesforce invalidates the
//! current refresh token and any associated access tokens"
//! (help.salesforce.com/apex/HTViewHelpDoc?id=xcloud.remoteaccess_oauth_refresh_token_flow_ca.htm).
//! With [`super::SalesforceOptions::rotate_refresh_tokens`] the emulator
//! does the same (the access tokens of the lineage stay valid here until
//! they expire: documented in docs/EMULATORS.md).

use super::{lock, Emu};
use crate::connectors::pkce::{challenge_of, verifier_is_valid};
use crate::emulator::bounded::insert_bounded;
use crate::emulator::redirect::{acceptable, to as redirect};
use crate::emulator::same_secret;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const CODE_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Codes, rotated-out tokens and live refresh tokens kept, each.
const CAP: usize = 10_000;

struct Code {
    redirect_uri: String,
    challenge: String,
    expires: Instant,
}

/// The org's OAuth grants: live refresh tokens by lineage (one lineage per
/// authorization), the rotated-out ones, and the codes not yet redeemed.
/// No `Debug`: it holds live tokens.
pub(super) struct Grants {
    live: HashMap<String, u64>,
    rotated: HashMap<String, u64>,
    codes: HashMap<String, Code>,
    lineages: u64,
    pub(super) refused: u32,
    pub(super) rotations: u32,
}

impl Grants {
    /// The configured refresh token is the first authorization.
    pub(super) fn new(configured: &str) -> Grants {
        let mut live = HashMap::new();
        live.insert(configured.to_string(), 0);
        Grants {
            live,
            rotated: HashMap::new(),
            codes: HashMap::new(),
            lineages: 0,
            refused: 0,
            rotations: 0,
        }
    }

    fn new_lineage(&mut self) -> String {
        self.lineages += 1;
        let token = new_refresh_token();
        let l = self.lineages;
        insert_bounded(&mut self.live, token.clone(), l, CAP, |_| false, |v| *v);
        token
    }

    /// The refresh-token grant: `Ok(Some(new))` when the token rotated,
    /// `Ok(None)` when it stays, `Err` for a token that is not live (a
    /// rotated-out one also ends its lineage).
    pub(super) fn refresh(&mut self, token: &str, rotate: bool) -> Result<Option<String>, ()> {
        let Some(&lineage) = self.live.get(token) else {
            if let Some(lineage) = self.rotated.get(token).copied() {
                self.live.retain(|_, l| *l != lineage);
            }
            self.refused += 1;
            return Err(());
        };
        if !rotate {
            return Ok(None);
        }
        self.live.remove(token);
        insert_bounded(
            &mut self.rotated,
            token.to_string(),
            lineage,
            CAP,
            |_| false,
            |v| *v,
        );
        let next = new_refresh_token();
        insert_bounded(
            &mut self.live,
            next.clone(),
            lineage,
            CAP,
            |_| false,
            |v| *v,
        );
        self.rotations += 1;
        Ok(Some(next))
    }
}

fn new_refresh_token() -> String {
    format!(
        "5Aep861{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

fn page(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
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

/// `GET /services/oauth2/authorize`.
async fn authorize(State(st): State<Arc<Emu>>, RawQuery(q): RawQuery) -> Response {
    let p: HashMap<String, String> = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != st.client_id {
        return page("invalid_client_id", "client identifier invalid");
    }
    let redirect_uri = get("redirect_uri");
    if !acceptable(redirect_uri) {
        return page(
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        );
    }
    let state = get("state");
    let back = |pairs: &[(&str, &str)]| back(redirect_uri, state, pairs);
    if get("response_type") != "code" {
        return back(&[
            ("error", "unsupported_response_type"),
            ("error_description", "response type not supported"),
        ]);
    }
    let challenge = get("code_challenge");
    // Salesforce takes only S256 (a SHA256 hash, base64url); a method
    // other than S256 is refused rather than guessed.
    let method = get("code_challenge_method");
    if challenge.is_empty() || !(method.is_empty() || method == "S256") {
        return back(&[
            ("error", "invalid_request"),
            ("error_description", "invalid code_challenge or method"),
        ]);
    }
    if get("l3map_decision") == "deny" {
        return back(&[
            ("error", "access_denied"),
            ("error_description", "end-user denied authorization"),
        ]);
    }
    let code = format!("aPrx{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let now = Instant::now();
    let mut g = lock(&st.grants);
    insert_bounded(
        &mut g.codes,
        code.clone(),
        Code {
            redirect_uri: redirect_uri.to_string(),
            challenge: challenge.to_string(),
            expires: now + CODE_LIFETIME,
        },
        CAP,
        |c| c.expires <= now,
        |c| c.expires,
    );
    drop(g);
    back(&[("code", code.as_str())])
}

/// The `authorization_code` grant: the code's binding checked, and a new
/// lineage's refresh token. `Err((error, description))` as Salesforce
/// names them.
pub(super) fn redeem(
    st: &Emu,
    p: &HashMap<String, String>,
) -> Result<String, (&'static str, &'static str)> {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != st.client_id {
        return Err(("invalid_client_id", "client identifier invalid"));
    }
    // A confidential client sends its secret; a public one (no secret)
    // must use PKCE, which every code here carries.
    let secret = get("client_secret");
    if !secret.is_empty() && !same_secret(secret, &st.client_secret) {
        return Err(("invalid_client", "invalid client credentials"));
    }
    let mut g = lock(&st.grants);
    // Good once, whatever the outcome.
    let code = g
        .codes
        .remove(get("code"))
        .filter(|c| c.expires > Instant::now())
        .ok_or(("invalid_grant", "expired authorization code"))?;
    if code.redirect_uri != get("redirect_uri") {
        return Err((
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ));
    }
    let verifier = get("code_verifier");
    if verifier.is_empty() {
        return Err(("invalid_grant", "invalid code verifier"));
    }
    if !verifier_is_valid(verifier) || !same_secret(&challenge_of(verifier), &code.challenge) {
        return Err(("invalid_request", "invalid code verifier"));
    }
    Ok(g.new_lineage())
}

/// The emulator's OAuth hooks (not Salesforce paths):
/// - `POST /__l3map/oauth/revoke`: every refresh token and session ends,
///   as revoking the app's access for the user does;
/// - `POST /__l3map/oauth/expire`: every session ends (the next request
///   with any access token is answered 401 `INVALID_SESSION_ID`), the
///   refresh tokens stay;
/// - `GET /__l3map/oauth/stats`: grants issued, refresh grants refused,
///   rotations.
pub(super) fn routes() -> Router<Arc<Emu>> {
    Router::new()
        .route("/__l3map/oauth/revoke", post(revoke))
        .route("/__l3map/oauth/expire", post(expire))
        .route("/__l3map/oauth/stats", get(stats))
        .route("/services/oauth2/authorize", get(authorize))
}

async fn revoke(State(st): State<Arc<Emu>>) -> Response {
    let mut g = lock(&st.grants);
    let n = g.live.len();
    let tokens: Vec<(String, u64)> = g.live.drain().collect();
    for (t, l) in tokens {
        insert_bounded(&mut g.rotated, t, l, CAP, |_| false, |v| *v);
    }
    drop(g);
    lock(&st.tokens).expire_all(Instant::now());
    axum::Json(json!({"revoked": n})).into_response()
}

async fn expire(State(st): State<Arc<Emu>>) -> Response {
    lock(&st.tokens).expire_all(Instant::now());
    axum::Json(json!({"expired": true})).into_response()
}

async fn stats(State(st): State<Arc<Emu>>) -> Response {
    let g = lock(&st.grants);
    axum::Json(json!({
        "grants": st.stats.grants.load(std::sync::atomic::Ordering::SeqCst),
        "refused": g.refused,
        "rotations": g.rotations,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_single_use_and_reuse_ends_the_lineage() {
        let mut g = Grants::new("seed");
        assert_eq!(g.refresh("seed", false), Ok(None));
        let r1 = g.refresh("seed", true).unwrap().unwrap();
        assert_eq!(g.refresh("seed", true), Err(()), "rotated out");
        // Reusing the old one invalidated the current one too.
        assert_eq!(g.refresh(&r1, true), Err(()));
        let other = g.new_lineage();
        assert!(g.refresh(&other, true).unwrap().is_some());
        assert_eq!(g.refused, 2);
    }
}
