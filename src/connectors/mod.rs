//! Zendesk and Salesforce clients (reqwest), one folder each, on one
//! transport (`transport/`: budget, session, send, observe, with a small
//! per-vendor policy). Shared here: typed errors, credentials that never
//! print, the per-token rate limiter, the one retry layer and the one
//! backoff, the read-through cache, and the bound on every response body.

pub mod backoff;
pub mod body;
pub mod cache;
pub mod error;
pub mod limit;
pub mod pkce;
pub mod retry;
pub mod salesforce;
pub mod secret;
pub mod shared_budget;
pub mod transport;
pub mod zendesk;

pub use error::{ApiError, System};
/// Salesforce's JWT-bearer signing and record ids, at their old paths.
pub use salesforce::{id as salesforce_id, jwt_bearer};
pub use secret::Secret;

/// What a query-string value keeps as is: RFC 3986's unreserved
/// characters; every other byte is `%XX` (a base64 cursor's `+`, `/`, `=`
/// among them).
pub const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_keep_only_unreserved_characters() {
        let encoded =
            percent_encoding::utf8_percent_encode("aZ09-_.~+/= é&", super::QUERY_VALUE).to_string();
        assert_eq!(encoded, "aZ09-_.~%2B%2F%3D%20%C3%A9%26");
    }
}
