//! Proof Key for Code Exchange (RFC 7636) for the authorization-code
//! flows of `l3map auth login`, and the check the emulators make.
//!
//! Only `S256` is used and accepted: Zendesk's PKCE guide says "Specify
//! \"S256\" as the value" of `code_challenge_method`
//! (developer.zendesk.com/documentation/api-basics/authentication/oauth-pkce),
//! and Salesforce takes the "SHA256 hash value of the code_verifier ...
//! base64url encoded"
//! (developer.salesforce.com/docs/atlas.en-us.222.0.api_rest.meta/api/intro_understanding_web_server_oauth_flow.htm).
//!
//! Randomness comes from ring's system CSPRNG (already in the tree through
//! rustls and the credential sealing), SHA-256 from sha2 and base64url
//! from base64, all locked already: nothing new is pulled in.

use super::Secret;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// A verifier (kept until the code exchange) and its challenge (sent in
/// the authorize URL).
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

/// `n` random bytes, base64url without padding: 32 bytes make the 43
/// characters RFC 7636 asks a verifier to have at least, from its
/// unreserved alphabet.
pub fn random_token(n: usize) -> Result<String, &'static str> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random number generator failed")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))` (RFC 7636, 4.2).
pub fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` is one RFC 7636 allows: 43 to 128 characters of
/// `[A-Za-z0-9-._~]`.
pub fn verifier_is_valid(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl Pkce {
    pub fn new() -> Result<Pkce, &'static str> {
        let verifier = random_token(48)?;
        Ok(Pkce {
            challenge: challenge_of(&verifier),
            verifier: Secret::new(verifier),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_challenge() {
        // RFC 7636, Appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifiers_are_random_and_valid() {
        let (a, b) = (Pkce::new().unwrap(), Pkce::new().unwrap());
        assert_ne!(a.verifier.expose(), b.verifier.expose());
        assert!(verifier_is_valid(a.verifier.expose()));
        assert_eq!(a.challenge, challenge_of(a.verifier.expose()));
        assert!(!verifier_is_valid("short"));
        assert!(!verifier_is_valid(&"a+".repeat(30)));
    }
}
