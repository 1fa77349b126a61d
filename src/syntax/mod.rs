//! Text -> typed syntax tree with spans. No name resolution, no checks.

pub mod ast;
mod build;
pub mod error;
pub mod parser;
pub mod span;

pub use error::SyntaxError;
pub use span::{FileId, SourceFile, SourceMap, Span};

/// Parses one file. Returns every item that parsed and every syntax error;
/// a broken block does not hide the blocks after it.
pub fn parse_file(file: FileId, text: &str) -> (ast::File, Vec<SyntaxError>) {
    let mut b = build::Builder {
        file,
        base: 0,
        src: text,
        errors: Vec::new(),
    };
    let mut items = Vec::new();
    let mut errors = parser::parse_items(file, text, |pair, base| {
        b.base = base;
        if let Some(item) = b.item(pair) {
            items.push(item);
        }
    });
    errors.append(&mut b.errors);
    errors.sort_by_key(|e| e.span().start);
    (ast::File { items }, errors)
}

pub use build::decimal_units;
