//! `l3map run`: events from Zendesk and Salesforce through the compiled
//! mappings, the decided actions kept in a durable outbox and applied by
//! the connectors, with nothing lost and nothing applied twice.

pub mod agent_api;
pub mod app;
pub mod apply;
pub mod cdc;
pub mod clients;
pub mod compile;
pub mod config;
pub mod console;
pub mod demo;
pub mod engine;
pub mod files;
pub mod fleet;
pub mod intake;
pub mod keeper;
pub mod links;
pub mod listen;
pub mod login;
pub mod logs;
pub mod metrics;
pub mod ops;
pub mod poll;
pub mod reach;
pub mod reload;
pub mod reloads;
pub mod revision;
pub mod screen;
pub mod seal;
pub mod server;
pub mod snapshot;
pub mod stack;
pub mod store;
pub mod tally;
pub mod tickets;
pub mod webhook;
pub mod worker;
