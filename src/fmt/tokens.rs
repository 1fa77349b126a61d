//! The file as a list of tokens, each with the line breaks before it.
//!
//! The formatter only ever changes the white space between tokens, so the
//! tokens must be exactly those pest sees: every atomic rule of the grammar
//! (strings, regexes, money, paths, `not in`, ...) is one token taken from
//! the concrete tree, never re-lexed; only the literal keywords and
//! punctuation between them (`{`, `,`, `reason`, `=`) are lexed here, and
//! `//` comments, which the grammar drops.

use crate::syntax::parser::{Pair, Rule};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// An atomic rule of the grammar, copied as written.
    Atom,
    /// A literal keyword between atoms (`connection`, `reason`, `set`).
    Word,
    /// One punctuation character between atoms (`{`, `,`, `(`, `=`, `|`).
    Punct,
    /// A `//` comment, without its line break.
    Comment,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok {
    pub start: usize,
    pub end: usize,
    pub kind: TokKind,
    /// Line breaks in the white space just before the token.
    pub breaks: usize,
}

/// Rules kept whole although pest gives them inner pairs.
const WHOLE: &[Rule] = &[
    Rule::money,
    Rule::string,
    Rule::raw_string,
    Rule::regex,
    Rule::rate,
    Rule::path,
    Rule::sf_path,
    Rule::status_id,
    Rule::link_end,
];

/// The byte ranges of the atoms of one item, in source order.
pub(crate) fn atoms(pair: &Pair, base: usize, out: &mut Vec<(usize, usize)>) {
    let inner: Vec<Pair> = pair.clone().into_inner().collect();
    if inner.is_empty() || WHOLE.contains(&pair.as_rule()) {
        let s = pair.as_span();
        if s.end() > s.start() {
            out.push((base + s.start(), base + s.end()));
        }
        return;
    }
    for p in &inner {
        atoms(p, base, out);
    }
}

/// Splits `text` into tokens; `atoms` are the ranges pest matched as atomic
/// rules (sorted). `None` when an atom does not start on a token boundary,
/// which would mean the grammar and this lexer disagree.
pub(crate) fn lex(text: &str, start: usize, atoms: &[(usize, usize)]) -> Option<Vec<Tok>> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut next_atom = atoms.iter().peekable();
    let mut pos = start;
    let mut breaks = 0;
    while pos < text.len() {
        let atom_start = next_atom.peek().map(|a| a.0);
        if atom_start == Some(pos) {
            let (s, e) = *next_atom.next()?;
            toks.push(Tok {
                start: s,
                end: e,
                kind: TokKind::Atom,
                breaks,
            });
            breaks = 0;
            pos = e;
            continue;
        }
        if atom_start.is_some_and(|a| a < pos) {
            return None;
        }
        let limit = atom_start.unwrap_or(text.len());
        let c = text[pos..].chars().next()?;
        if c.is_whitespace() {
            if c == '\n' {
                breaks += 1;
            }
            pos += c.len_utf8();
            continue;
        }
        let (end, kind) = if text[pos..].starts_with("//") {
            let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
            (end, TokKind::Comment)
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let len = bytes[pos..limit]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            (pos + len, TokKind::Word)
        } else {
            (pos + c.len_utf8(), TokKind::Punct)
        };
        if end > limit && kind != TokKind::Comment {
            return None;
        }
        toks.push(Tok {
            start: pos,
            end,
            kind,
            breaks,
        });
        breaks = 0;
        pos = end;
    }
    if next_atom.next().is_some() {
        return None;
    }
    Some(toks)
}
