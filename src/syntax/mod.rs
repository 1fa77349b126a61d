//! Text -> typed syntax tree with spans. No name resolution, no checks.

pub mod ast;
mod build;
pub mod error;
mod located;
pub mod parser;
pub mod span;

pub use error::{SyntaxError, SyntaxErrorKind};
pub use located::{Located, PrimaryLabel};
pub use span::{FileId, SourceFile, SourceMap, Span};

/// Parses one file. Returns every item that parsed and every syntax error;
/// a broken block does not hide the blocks after it.
pub fn parse_file(file: FileId, text: &str) -> (ast::File, Vec<SyntaxError>) {
    // pest and the passes after it recurse once per nesting level; refuse
    // absurd nesting up front instead of overflowing the stack.
    if let Some(at) = too_deep(text) {
        let err = SyntaxErrorKind::TooDeep { limit: MAX_DEPTH }.at(Span::new(file, at, at + 1));
        return (ast::File { items: vec![] }, vec![err]);
    }
    let mut b = build::Builder {
        file,
        base: 0,
        src: text,
        errors: Vec::new(),
    };
    let mut items = Vec::new();
    let mut errors = parser::parse_items_recovering(file, text, |pair, base| {
        b.base = base;
        if let Some(item) = b.item(pair) {
            items.push(item);
        }
    });
    errors.append(&mut b.errors);
    errors.sort_by_key(|e| e.span.start);
    (ast::File { items }, errors)
}

pub use build::decimal_units;

/// The deepest nesting of brackets and `not`s a file may have.
pub const MAX_DEPTH: usize = 32;

/// The offset where nesting first exceeds [`MAX_DEPTH`], ignoring strings,
/// regexes and comments.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut nots = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let raw = text[i..].starts_with("\"\"\"");
                if raw {
                    i += text[i + 3..]
                        .find("\"\"\"")
                        .map(|e| e + 6)
                        .unwrap_or(b.len() - i);
                } else {
                    i += 1;
                    while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i += text[i..].find('\n').unwrap_or(b.len() - i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'n' if text[i..].starts_with("not")
                && !b
                    .get(i + 3)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                nots += 1;
                i += 3;
                if nots > MAX_DEPTH {
                    return Some(i - 3);
                }
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            _ => nots = 0,
        }
        if depth > MAX_DEPTH {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trees compare by structure, spans by place: `l3map fmt` relies on the
    /// first (its output must parse to the same tree), diagnostics on the
    /// second.
    #[test]
    fn trees_ignore_places_spans_do_not() {
        let (a, _) = parse_file(FileId(0), "template t \"\"\"hi\"\"\"\n");
        let (b, _) = parse_file(FileId(0), "\n\ntemplate   t   \"\"\"hi\"\"\"\n");
        let (c, _) = parse_file(FileId(0), "template u \"\"\"hi\"\"\"\n");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a.items[0].name().span, b.items[0].name().span);
        assert_eq!(a.items[0].name().span, a.items[0].name().span);
    }
}
