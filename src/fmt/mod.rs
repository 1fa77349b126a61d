//! `l3map fmt`: one canonical layout for `.l3map` files.
//!
//! Only the white space between tokens changes: every statement starts on
//! a line of its own, indented two spaces per block; the columns of
//! neighbouring statements of one kind line up (status tables, transition
//! arrows, field tables, mapping and translation arrows, SKU rules); line
//! breaks inside a statement are kept where the author put them, and the
//! continuation hangs under the value it continues (or just inside an open
//! bracket); at most one blank line is kept, and exactly one separates
//! top-level blocks. Strings, raw strings, regexes and comments are copied
//! byte for byte (comments lose trailing blanks).
//!
//! The result is parsed again before it is returned: if its syntax tree or
//! its comments differ from the original's in any way, the file is left
//! alone with an [`FmtError::Internal`], so formatting can never change
//! what a mapping means or lose a comment. A file with syntax errors is not
//! formatted at all.

mod layout;
mod render;
mod tokens;

use crate::syntax::{parse_file, parser, FileId, SourceFile, SyntaxError};
use thiserror::Error;

/// Why a file was not formatted.
#[derive(Debug, Error, PartialEq)]
pub enum FmtError {
    /// Returned when the file does not parse; it is left unchanged.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// Returned when the formatter could not keep the file's meaning or
    /// comments (a bug); the file is left unchanged.
    #[error("not formatted: {0} (please report this; the file is left as it is)")]
    Internal(String),
}

/// The canonical layout of `text`.
pub fn format(text: &str) -> Result<String, FmtError> {
    let (ast, errors) = parse_file(FileId(0), text);
    if let Some(e) = errors.first() {
        return Err(syntax_error(text, e));
    }
    let mut items = Vec::new();
    let errors = parser::parse_items(FileId(0), text, |pair, base| items.push((pair, base)));
    if let Some(e) = errors.first() {
        return Err(syntax_error(text, e));
    }
    let mut atoms = Vec::new();
    for (pair, base) in &items {
        tokens::atoms(pair, *base, &mut atoms);
    }
    let bom = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    let toks = tokens::lex(text, bom, &atoms)
        .ok_or_else(|| FmtError::Internal("the tokens disagree with the grammar".into()))?;
    let mut b = layout::Builder::new(text, &toks);
    for (pair, base) in items {
        b.item(pair, base).map_err(|u| unplaced(text, &toks, u))?;
    }
    b.finish().map_err(|u| unplaced(text, &toks, u))?;
    let out = render::Renderer { text, toks: &toks }.render(&b.lines);
    verify(text, &ast, &out)?;
    Ok(out)
}

fn syntax_error(text: &str, e: &SyntaxError) -> FmtError {
    let (line, column) = SourceFile::new("", text).line_col(e.span().start);
    FmtError::Syntax {
        line,
        column,
        message: e.to_string(),
    }
}

fn unplaced(text: &str, toks: &[tokens::Tok], u: layout::Unplaced) -> FmtError {
    let at = toks.get(u.0).map_or(0, |t| t.start);
    let (line, column) = SourceFile::new("", text).line_col(at as u32);
    FmtError::Internal(format!(
        "a token at {line}:{column} has no place in the layout"
    ))
}

/// The formatted text must mean exactly what the original did and keep
/// every comment.
fn verify(original: &str, ast: &crate::syntax::ast::File, out: &str) -> Result<(), FmtError> {
    let (again, errors) = parse_file(FileId(0), out);
    if !errors.is_empty() {
        return Err(FmtError::Internal("the result does not parse".into()));
    }
    if &again != ast {
        return Err(FmtError::Internal(
            "the result parses to a different syntax tree".into(),
        ));
    }
    if comments(original) != comments(out) {
        return Err(FmtError::Internal("a comment would change".into()));
    }
    Ok(())
}

/// Every comment of a file, in order, without trailing blanks.
pub(crate) fn comments(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    parser::parse_items(FileId(0), text, |pair, base| items.push((pair, base)));
    let mut atoms = Vec::new();
    for (pair, base) in &items {
        tokens::atoms(pair, *base, &mut atoms);
    }
    let bom = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    tokens::lex(text, bom, &atoms)
        .unwrap_or_default()
        .iter()
        .filter(|t| t.kind == tokens::TokKind::Comment)
        .map(|t| text[t.start..t.end].trim_end().to_string())
        .collect()
}
