//! Lines to text: indentation, the spaces between tokens, alignment of the
//! stops of neighbouring rows, and continuation lines.
//!
//! Every width is measured in terminal columns (`unicode-width`), so a
//! table of Japanese or Thai aliases lines up the way an editor shows it.

use super::layout::{Line, Row};
use super::tokens::{Tok, TokKind};
use std::collections::BTreeMap;
use unicode_width::UnicodeWidthStr;

/// Spaces per block level.
pub(crate) const INDENT: usize = 2;
/// Extra indent of a continuation line that has nothing to hang from.
const CONTINUATION: usize = 4;
/// Columns between a row and its trailing comment, at least.
const COMMENT_GAP: usize = 2;

/// Words after which `(` opens a group rather than an argument list.
const OPERATORS: &[&str] = &["and", "or", "not", "in", "has", "when"];

pub(crate) struct Renderer<'t> {
    pub text: &'t str,
    pub toks: &'t [Tok],
}

/// A row rendered without its trailing comment, and where its stops fell.
struct Rendered {
    text: String,
    end_col: usize,
    /// Stop id -> (column before the padding, width of the cell before it).
    measured: BTreeMap<u8, (usize, usize)>,
}

impl<'t> Renderer<'t> {
    fn tok(&self, i: usize) -> &'t str {
        let t = self.toks[i];
        &self.text[t.start..t.end]
    }

    /// The text a token is written as: comments lose trailing blanks and
    /// `not in` is always one space (the grammar allows any white space).
    fn written(&self, i: usize) -> String {
        let s = self.tok(i);
        match self.toks[i].kind {
            TokKind::Comment => s.trim_end().to_string(),
            TokKind::Atom if s.starts_with("not") && s.contains(char::is_whitespace) => {
                "not in".to_string()
            }
            _ => s.to_string(),
        }
    }

    fn spacing(&self, prev: usize, next: usize) -> usize {
        let (p, n) = (self.tok(prev), self.tok(next));
        let (pk, nk) = (self.toks[prev].kind, self.toks[next].kind);
        if nk == TokKind::Comment {
            return COMMENT_GAP;
        }
        if nk == TokKind::Punct && matches!(n, "," | ")" | "]" | ":") {
            return 0;
        }
        if pk == TokKind::Punct && matches!(p, "(" | "[") {
            return 0;
        }
        let word = p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        let operator = p
            .split_whitespace()
            .next()
            .is_some_and(|w| OPERATORS.contains(&w));
        if nk == TokKind::Punct && n == "(" && pk != TokKind::Punct && word && !operator {
            return 0;
        }
        1
    }

    fn render_row(&self, row: &Row, cols: &BTreeMap<u8, usize>) -> Rendered {
        let indent = row.depth * INDENT;
        let mut out = " ".repeat(indent);
        let mut col = indent;
        let mut cell_start = indent;
        let mut brackets: Vec<usize> = Vec::new();
        let mut anchor: Option<usize> = None;
        let mut measured = BTreeMap::new();
        for i in row.first..=row.last {
            if i > row.first {
                let broken = self.toks[i - 1].kind == TokKind::Comment || self.toks[i].breaks > 0;
                if broken {
                    let hang = brackets
                        .last()
                        .copied()
                        .or(anchor.filter(|&a| a > indent))
                        .unwrap_or(indent + CONTINUATION);
                    out.push('\n');
                    out.push_str(&" ".repeat(hang));
                    col = hang;
                    cell_start = hang;
                } else {
                    let mut gap = self.spacing(i - 1, i);
                    if let Some(stop) = row.stops.iter().find(|s| s.tok == i) {
                        measured.insert(stop.id, (col, col - cell_start));
                        gap = match cols.get(&stop.id) {
                            Some(&c) if c >= col + stop.gap => c - col,
                            _ => stop.gap,
                        };
                        cell_start = col + gap;
                    }
                    out.push_str(&" ".repeat(gap));
                    col += gap;
                }
            }
            if row.anchors.contains(&i) {
                anchor = Some(col);
            }
            let s = self.written(i);
            col = match s.rfind('\n') {
                Some(nl) => s[nl + 1..].width(),
                None => col + s.width(),
            };
            out.push_str(&s);
            if self.toks[i].kind == TokKind::Punct {
                match s.as_str() {
                    "(" | "[" => brackets.push(col),
                    ")" | "]" => {
                        brackets.pop();
                    }
                    _ => {}
                }
            }
        }
        Rendered {
            text: out,
            end_col: col,
            measured,
        }
    }

    /// The stop columns of one run of rows that align, per row.
    fn align(&self, rows: &[&Row]) -> Vec<BTreeMap<u8, usize>> {
        let mut ids: Vec<u8> = rows
            .iter()
            .flat_map(|r| r.stops.iter().map(|s| s.id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut cols: BTreeMap<u8, usize> = BTreeMap::new();
        // Per row: the first stop it no longer aligns at.
        let mut excluded: Vec<u8> = vec![u8::MAX; rows.len()];
        let own = |cols: &BTreeMap<u8, usize>, from: u8| -> BTreeMap<u8, usize> {
            cols.range(..from).map(|(k, v)| (*k, *v)).collect()
        };
        for id in ids {
            let mut best: Option<usize> = None;
            for (r, row) in rows.iter().enumerate() {
                if excluded[r] <= id {
                    continue;
                }
                let Some(stop) = row.stops.iter().find(|s| s.id == id) else {
                    continue;
                };
                let m = self.render_row(row, &own(&cols, excluded[r]));
                let Some(&(col, width)) = m.measured.get(&id) else {
                    continue;
                };
                if width > stop.limit {
                    excluded[r] = id;
                    continue;
                }
                best = best.max(Some(col + stop.gap));
            }
            if let Some(b) = best {
                cols.insert(id, b);
            }
        }
        excluded.iter().map(|&from| own(&cols, from)).collect()
    }

    /// Renders rows of one run, trailing comments aligned among them.
    fn run(&self, rows: &[&Row], out: &mut Vec<String>) {
        let cols = if rows.first().is_some_and(|r| r.kind.aligns()) {
            self.align(rows)
        } else {
            vec![BTreeMap::new(); rows.len()]
        };
        let rendered: Vec<Rendered> = rows
            .iter()
            .zip(&cols)
            .map(|(r, c)| self.render_row(r, c))
            .collect();
        let comment_col = rows
            .iter()
            .zip(&rendered)
            .filter(|(r, _)| r.trailing.is_some())
            .map(|(_, x)| x.end_col + COMMENT_GAP)
            .max()
            .unwrap_or(0);
        for (row, mut r) in rows.iter().zip(rendered) {
            if let Some(c) = row.trailing {
                let at = if rows.len() > 1 {
                    comment_col
                } else {
                    r.end_col + COMMENT_GAP
                };
                r.text.push_str(&" ".repeat(at - r.end_col));
                r.text.push_str(&self.written(c));
            }
            out.push(r.text);
        }
    }

    /// The whole file.
    pub fn render(&self, lines: &[Line]) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            match &lines[i] {
                Line::Blank => {
                    out.push(String::new());
                    i += 1;
                }
                Line::Comment { depth, tok } => {
                    out.push(format!(
                        "{}{}",
                        " ".repeat(depth * INDENT),
                        self.written(*tok)
                    ));
                    i += 1;
                }
                Line::Row(first) => {
                    // A run: rows of one kind and depth, with only comments
                    // of that depth between them.
                    let mut end = i + 1;
                    if first.kind.aligns() {
                        while let Some(l) = lines.get(end) {
                            match l {
                                Line::Row(r) if r.kind == first.kind && r.depth == first.depth => {}
                                Line::Comment { depth, .. } if *depth == first.depth => {}
                                _ => break,
                            }
                            end += 1;
                        }
                        while matches!(lines.get(end - 1), Some(Line::Comment { .. })) {
                            end -= 1;
                        }
                    }
                    let rows: Vec<&Row> = lines[i..end]
                        .iter()
                        .filter_map(|l| match l {
                            Line::Row(r) => Some(r),
                            _ => None,
                        })
                        .collect();
                    let mut rendered = Vec::new();
                    self.run(&rows, &mut rendered);
                    let mut rendered = rendered.into_iter();
                    for l in &lines[i..end] {
                        match l {
                            Line::Row(_) => out.extend(rendered.next()),
                            Line::Comment { depth, tok } => out.push(format!(
                                "{}{}",
                                " ".repeat(depth * INDENT),
                                self.written(*tok)
                            )),
                            Line::Blank => out.push(String::new()),
                        }
                    }
                    i = end;
                }
            }
        }
        let mut text = out.join("\n");
        text.push('\n');
        if self.text.starts_with('\u{FEFF}') {
            text.insert(0, '\u{FEFF}');
        }
        if text.trim().is_empty() {
            return String::new();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::Kind;
    use super::*;

    #[test]
    fn argument_lists_hug_their_name_but_groups_do_not() {
        let text = "enum ( a ) and ( b )";
        let toks = vec![
            tok(0, 4, TokKind::Atom),
            tok(5, 6, TokKind::Punct),
            tok(7, 8, TokKind::Atom),
            tok(9, 10, TokKind::Punct),
            tok(11, 14, TokKind::Atom),
            tok(15, 16, TokKind::Punct),
        ];
        let r = Renderer { text, toks: &toks };
        assert_eq!(r.spacing(0, 1), 0);
        assert_eq!(r.spacing(1, 2), 0);
        assert_eq!(r.spacing(2, 3), 0);
        assert_eq!(r.spacing(3, 4), 1);
        assert_eq!(r.spacing(4, 5), 1);
    }

    fn tok(start: usize, end: usize, kind: TokKind) -> Tok {
        Tok {
            start,
            end,
            kind,
            breaks: 0,
        }
    }

    #[test]
    fn kinds_that_align() {
        assert!(Kind::Transition.aligns());
        assert!(!Kind::Open.aligns());
    }
}
