//! l3map: support-ops knowledge for AI agents on Zendesk and Salesforce,
//! declared in `.l3map` files, checked, and lowered to a plain-data IR.
#![forbid(unsafe_code)]

pub mod check;
pub mod cli;
pub mod diagnostics;
pub mod ir;
pub mod project;
pub mod sku;
pub mod syntax;
