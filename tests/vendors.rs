//! The connectors against the vendor emulators, and the emulators as a
//! client sees them, over 127.0.0.1.
//!
//! One test binary per group, not one per file: each binary links the
//! whole library (a minute of CI per dozen), and one harness runs a group's
//! tests side by side, so a file's slow test no longer waits alone. A file
//! here is a module; it reaches the shared helpers as `crate::common`.
//! Run one file's tests with `cargo test --test vendors {file}::`.

mod common;

mod cdc_endpoint;
mod connector_logs;
mod emulate_fields;
mod oauth_pkce;
mod pubsub_emulator;
mod safe_update;
mod salesforce;
mod zendesk;
mod zendesk_forms;
mod zendesk_links;
