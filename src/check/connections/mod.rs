//! Connection blocks: properties, credentials by reference, scopes, and the
//! least-privilege lints that need the whole project's usage.
//!
//! - `props.rs`: which properties each kind takes, and their value forms;
//! - `declare.rs`: checking one block against that table;
//! - `auth.rs`: which properties go with each way of signing in;
//! - `scopes.rs`: the scope vocabularies and the least-privilege lints.

mod auth;
mod declare;
mod props;
mod scopes;

pub(super) use declare::declare;
pub(crate) use props::holds_no_secret;
pub(super) use scopes::lint_usage;
