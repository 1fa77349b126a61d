//! l3map: support-ops knowledge for AI agents on Zendesk and Salesforce,
//! declared in `.l3map` files, checked, and lowered to a plain-data IR.
//!
//! The pipeline is visible in the modules: [`syntax`] (text to a typed
//! tree with spans), [`check`] (names, types, lints), [`ir`] (the versioned
//! IR the runtime executes), [`eval`] (decisions) and [`runtime`]; the
//! vocabulary they share (connection kinds, status categories, value types,
//! event fields) is the floor below them all, [`model`]. [`compile`] runs
//! the front end one stage at a time; the whole path, from text to IR:
//!
//! ```
//! use l3map::compile::{check, lower};
//! use l3map::syntax::SourceMap;
//!
//! let mut sources = SourceMap::new();
//! sources.add("desk.l3map", r#"
//!     connection desk: zendesk {
//!       subdomain "acme"
//!       token     env("ZENDESK_OAUTH_TOKEN")
//!       scopes    read, tickets:write
//!     }
//!     statuses desk {
//!       new     new
//!       open    open
//!       solved  solved  terminal
//!       new -> open
//!       open -> solved  when ticket.priority != urgent
//!     }
//! "#);
//! let checked = check(&sources, None);
//! assert!(checked.diagnostics.is_empty());
//! let program = lower(&checked, &sources).expect("no errors");
//! assert_eq!(program.status_tables[0].transitions.len(), 2);
//!
//! // A mistake is a diagnostic with a place and a fix, never a panic.
//! let mut broken = SourceMap::new();
//! broken.add("desk.l3map", "statuses desk { open opn }");
//! let checked = check(&broken, None);
//! assert!(checked.has_errors());
//! let error = lower(&checked, &broken).unwrap_err();
//! assert_eq!(error.diagnostics(), checked.diagnostics);
//! ```
#![forbid(unsafe_code)]

pub mod check;
pub mod cli;
pub mod compile;
pub mod connectors;
pub mod diagnostics;
pub mod e2e;
pub mod emulator;
pub mod eval;
pub mod fmt;
pub mod ir;
pub mod lsp;
pub mod model;
pub mod project;
pub mod runtime;
pub mod schema;
pub mod sku;
pub mod syntax;
