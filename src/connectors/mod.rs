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
pub mod retry;
pub mod salesforce;
pub mod secret;
pub mod transport;
pub mod zendesk;

pub use error::{ApiError, System};
/// Salesforce's JWT-bearer signing and record ids, at their old paths.
pub use salesforce::{id as salesforce_id, jwt_bearer};
pub use secret::Secret;
