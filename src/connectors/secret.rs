//! Credentials in memory: readable where a request is built, and nowhere
//! else — not in `Debug`, not in errors, not in logs.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for an `Authorization` header or a token request.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short, stable, non-reversible name for logs and limiter keys:
    /// the first 8 hex digits of the value's SHA-256.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.0.as_bytes());
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(…{})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("zd-oauth-0123456789abcdef");
        let shown = format!("{s:?} {:?}", vec![s.clone()]);
        assert!(!shown.contains("0123456789"), "{shown}");
        assert_eq!(s.fingerprint().len(), 8);
        assert_eq!(s.expose(), "zd-oauth-0123456789abcdef");
    }
}
