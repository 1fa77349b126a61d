//! Salesforce's OAuth 2.0 JWT-bearer flow, the signing half: an RS256
//! assertion (`iss` the consumer key, `sub` the integration user, `aud` the
//! authorization server, `exp` a few minutes out) exchanged at the token
//! endpoint for an access token. There is no refresh token in this flow, so
//! re-authenticating is minting a new assertion; the private key is parsed
//! once, when the client is built, so a bad key fails at start-up rather
//! than on the first expired session.
//!
//! The key never leaves this module except as a signature: errors say what
//! is wrong with it, never what it is.

use super::super::error::{ApiError, System};
use super::super::secret::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// The grant type the token endpoint is asked for.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Salesforce asks for an `exp` "within 3 minutes".
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(180);

/// What a connected app with a digital certificate signs in with.
#[derive(Clone)]
pub struct JwtBearer {
    /// The integration user's Salesforce username (`sub`).
    pub username: String,
    /// The RSA private key matching the connected app's certificate, PEM
    /// (`BEGIN RSA PRIVATE KEY` or `BEGIN PRIVATE KEY`).
    pub private_key: Secret,
    /// `aud`: `https://login.salesforce.com`, `https://test.salesforce.com`
    /// or the org's My Domain URL. Defaults to the login URL.
    pub audience: String,
    /// How far ahead `exp` is set.
    pub lifetime: Duration,
}

impl JwtBearer {
    pub fn new(
        username: impl Into<String>,
        private_key: Secret,
        audience: impl Into<String>,
    ) -> JwtBearer {
        JwtBearer {
            username: username.into(),
            private_key,
            audience: audience.into(),
            lifetime: DEFAULT_LIFETIME,
        }
    }
}

impl fmt::Debug for JwtBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBearer")
            .field("username", &self.username)
            .field("private_key", &self.private_key)
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

/// The parsed key and the claims that do not change between assertions.
pub struct Signer {
    key: EncodingKey,
    client_id: String,
    username: String,
    audience: String,
    lifetime: Duration,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Parses the key and signs one throwaway assertion with it: PEM
    /// parsing alone accepts some keys the signer then refuses.
    pub fn new(system: System, client_id: &str, jwt: &JwtBearer) -> Result<Signer, ApiError> {
        let key = EncodingKey::from_rsa_pem(jwt.private_key.expose().trim().as_bytes())
            .map_err(|_| bad_key(system, "it is not an RSA private key in PEM form"))?;
        let signer = Signer {
            key,
            client_id: client_id.to_string(),
            username: jwt.username.clone(),
            audience: jwt.audience.trim_end_matches('/').to_string(),
            lifetime: jwt.lifetime,
        };
        signer.assertion(system)?;
        Ok(signer)
    }

    /// A fresh assertion, valid for `lifetime` from now.
    pub fn assertion(&self, system: System) -> Result<Secret, ApiError> {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            iss: &self.client_id,
            sub: &self.username,
            aud: &self.audience,
            exp: jiff::Timestamp::now().as_second().saturating_add(lifetime),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(Secret::new)
            .map_err(|_| bad_key(system, "signing with it failed (is it an RSA key?)"))
    }
}

/// Status 0: nothing was sent; the credential itself is unusable (as the
/// Zendesk client reports a token that cannot go in a header).
fn bad_key(system: System, why: &str) -> ApiError {
    ApiError::Auth {
        system,
        status: 0,
        message: format!("the JWT-bearer private key is unusable: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_key_is_refused_without_echoing_it() {
        let jwt = JwtBearer::new(
            "ai@acme.com",
            Secret::new("-----BEGIN RSA PRIVATE KEY-----\nbm90LWEta2V5LTQyNDI0Mg==\n-----END RSA PRIVATE KEY-----"),
            "https://login.salesforce.com",
        );
        let err = Signer::new(System::Salesforce, "app", &jwt).unwrap_err();
        let shown = format!("{err} {err:?} {jwt:?}");
        assert!(matches!(err, ApiError::Auth { status: 0, .. }), "{shown}");
        assert!(!shown.contains("bm90LWEta2V5"), "{shown}");
        assert!(shown.contains("ai@acme.com"), "{shown}");
    }
}
