//! The token endpoint's `urn:ietf:params:oauth:grant-type:jwt-bearer`
//! grant: the assertion is checked the way Salesforce checks it, and each
//! failure is the `{"error", "error_description"}` Salesforce answers with.
//!
//! Checked, in order: the JWT's shape, `iss` is the connected app's
//! consumer key, the RS256 signature verifies against the app's configured
//! public key, `aud` is an authorization server of this org, `exp` is not
//! past (no leeway: the emulator and its clients share one clock) nor
//! further ahead than [`MAX_AHEAD_SECS`], and `sub` is the integration user the
//! app is approved for.

pub use crate::connectors::jwt_bearer::GRANT_TYPE;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashSet;

/// Salesforce asks for an `exp` within 3 minutes; a little more is
/// allowed for clock skew between a client and the org.
const MAX_AHEAD_SECS: i64 = 5 * 60;

/// A connected app set up for the JWT-bearer flow: its certificate's public
/// key and the one user pre-authorized for it.
#[derive(Debug, Clone)]
pub struct JwtApp {
    /// `BEGIN PUBLIC KEY` (or `BEGIN RSA PUBLIC KEY`) PEM.
    pub public_key_pem: String,
    /// The integration user's username (`sub`).
    pub username: String,
}

/// [`JwtApp`] with the key parsed once, when the emulator starts.
pub(super) struct Verifier {
    /// `None`: the configured PEM did not parse, so no assertion verifies.
    key: Option<DecodingKey>,
    username: String,
}

impl Verifier {
    pub(super) fn new(app: &JwtApp) -> Verifier {
        let key = DecodingKey::from_rsa_pem(app.public_key_pem.trim().as_bytes()).ok();
        if key.is_none() {
            tracing::warn!("salesforce emulator: the JWT-bearer public key is not an RSA public key in PEM form; every assertion will be refused");
        }
        Verifier {
            key,
            username: app.username.clone(),
        }
    }
}

/// A refusal: the OAuth `error` and `error_description`.
pub(super) type Refusal = (&'static str, &'static str);

const INVALID_ASSERTION: Refusal = ("invalid_grant", "invalid assertion");

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    aud: Audience,
    #[serde(default)]
    exp: Option<i64>,
}

/// `aud` may be one string or a list of them (RFC 7519).
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl Audience {
    fn any(&self, ok: impl Fn(&str) -> bool) -> bool {
        match self {
            Audience::One(a) => ok(a),
            Audience::Many(v) => v.iter().any(|a| ok(a)),
            Audience::None => false,
        }
    }
}

/// Checks `assertion` for the app `client_id`; `audiences` are the URLs
/// this org answers to. Returns the user it signs in.
pub(super) fn verify(
    verifier: Option<&Verifier>,
    client_id: &str,
    audiences: &[String],
    assertion: &str,
    now: i64,
) -> Result<String, Refusal> {
    if assertion.is_empty() {
        return Err(("invalid_request", "assertion parameter is required"));
    }
    // The header names RS256, and the claims can be read, before anything
    // is trusted: `iss` picks the connected app whose key verifies the rest.
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| INVALID_ASSERTION)?;
    if header.alg != Algorithm::RS256 {
        return Err(INVALID_ASSERTION);
    }
    let unverified = unverified_claims(assertion).ok_or(INVALID_ASSERTION)?;
    if unverified.iss != client_id {
        return Err(("invalid_client_id", "client identifier invalid"));
    }
    let Some(verifier) = verifier else {
        // The app has no certificate: nothing can verify the signature.
        return Err(INVALID_ASSERTION);
    };
    let key = verifier.key.as_ref().ok_or(INVALID_ASSERTION)?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Only the signature here; the claims below, one answer each.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let claims = jsonwebtoken::decode::<Claims>(assertion, key, &validation)
        .map_err(|_| INVALID_ASSERTION)?
        .claims;
    let ok_aud = |a: &str| {
        let a = a.trim_end_matches('/');
        audiences.iter().any(|x| x.trim_end_matches('/') == a)
    };
    if !claims.aud.any(ok_aud) {
        return Err(("invalid_grant", "audience is invalid"));
    }
    match claims.exp {
        Some(exp) if exp <= now => return Err(("invalid_grant", "expired authorization code")),
        Some(exp) if exp > now.saturating_add(MAX_AHEAD_SECS) => return Err(INVALID_ASSERTION),
        Some(_) => {}
        None => return Err(INVALID_ASSERTION),
    }
    if claims.sub.is_empty() || claims.sub != verifier.username {
        return Err(("invalid_grant", "user hasn't approved this consumer"));
    }
    Ok(claims.sub)
}

/// The payload, decoded without checking the signature (only to find the
/// app; everything that matters is read again after verification).
fn unverified_claims(assertion: &str) -> Option<Claims> {
    use base64::Engine;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_assertions_are_refused_not_panicked_on() {
        let aud = vec!["https://login.salesforce.com".to_string()];
        for bad in [
            "",
            ".",
            "..",
            "a.b.c",
            "eyJhbGciOiJSUzI1NiJ9.e30.",
            "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhcHAifQ.sig",
            "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhcHAiLCJhdWQiOjF9.sig",
            "eyJhbGciOiJSUzI1NiJ9.////.sig",
        ] {
            let got = verify(None, "app", &aud, bad, 0);
            assert!(got.is_err(), "{bad:?}");
        }
        // Right app, no certificate configured: the signature cannot verify.
        let claims = "eyJpc3MiOiJhcHAifQ"; // {"iss":"app"}
        let got = verify(
            None,
            "app",
            &aud,
            &format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2ln"),
            0,
        );
        assert_eq!(got, Err(INVALID_ASSERTION));
        let got = verify(
            None,
            "other",
            &aud,
            &format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2ln"),
            0,
        );
        assert_eq!(got.map_err(|e| e.0), Err("invalid_client_id"));
    }
}
