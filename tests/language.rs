//! The language, its checker, formatter, IR, evaluator, docs and editor
//! support, mostly in process.
//!
//! One test binary per group, not one per file: each binary links the
//! whole library (a minute of CI per dozen), and one harness runs a group's
//! tests side by side, so a file's slow test no longer waits alone. A file
//! here is a module; it reaches the shared helpers as `crate::common`.
//! Run one file's tests with `cargo test --test language {file}::`.

mod common;

// The benchmarks' project generator, for corpus.rs and fmt.rs.
#[path = "../benches/corpus/mod.rs"]
#[allow(dead_code)]
mod bench_corpus;

mod architecture;
mod convert;
mod corpus;
mod decisions;
mod diagnostics;
mod docs;
mod docs_claims;
mod editor;
mod eval_fixtures;
mod fmt;
mod ir_index;
mod ir_snapshots;
mod links_lang;
mod lsp;
mod robustness;
mod sample_events;
