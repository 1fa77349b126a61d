//! The real binaries end to end over 127.0.0.1: `l3map run` beside `l3map
//! emulate`, restarts, outages, attacks, load.
//!
//! One test binary per group, not one per file: each binary links the
//! whole library (a minute of CI per dozen), and one harness runs a group's
//! tests side by side, so a file's slow test no longer waits alone. A file
//! here is a module; it reaches the shared helpers as `crate::common`.
//! Run one file's tests with `cargo test --test e2e {file}::`.

mod common;

mod agent_api;
mod auth_login;
mod cdc;
mod ci_hooks;
mod cli;
mod coalesce;
mod collision;
mod console;
mod console_browser;
mod crash;
mod credentials;
mod crm_reaches_desk;
mod deploy;
mod fanout;
mod fanout_e2e;
mod faults;
mod fleet;
mod fleet_chaos;
mod fleet_collision;
mod fleet_permits;
mod fleet_revision;
mod fleet_turns;
mod forms_e2e;
mod hostile;
mod link_unique;
mod links_resolve;
mod load;
mod mcp;
mod mcp_sdks;
mod newcomer;
mod packaging;
mod poll;
mod runtime;
mod runtime_e2e;
mod secrets;
mod ticket_links;
mod trust_dos;
mod trust_handoff;
mod trust_outbox;
mod trust_reload;
mod trust_secrets;
mod trust_store;
mod trust_webhook;
