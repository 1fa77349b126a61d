//! The file as lines: each statement of a block is a row starting on a line
//! of its own, with the places where rows of its kind align ("stops") and
//! the columns its continuation lines hang from ("anchors"); comments and
//! blank lines sit between rows.
//!
//! Statements come from pest's concrete tree, not the AST, because the AST
//! drops the boundaries a layout needs (one `normalize` or three, the
//! keyword of an escalation statement).

use super::tokens::{Tok, TokKind};
use crate::syntax::parser::{Pair, Rule};

/// See [`Stop::limit`]: about two status names.
const TRANSITION_CELL_LIMIT: usize = 32;

/// What a row is; rows align only with neighbours of the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `statuses desk {`, and any other line that opens a block.
    Open,
    /// The `}` of a block.
    Close,
    Property,
    Status,
    Transition,
    Field,
    MapRule,
    Arm,
    SkuRule,
    SkuTest,
    SkuApply,
    Escalation,
    /// `on`, `tickets`, `pick` of a link: their values align.
    LinkStmt,
    /// A statement that aligns with nothing (`products`, `expect`, ...).
    Plain,
}

impl Kind {
    /// Whether neighbouring rows of this kind are aligned at all.
    pub fn aligns(self) -> bool {
        !matches!(self, Kind::Open | Kind::Close | Kind::Plain)
    }
}

/// A place in a row where rows of a run line up: the token at `tok` starts
/// at the same column in every row of the run that has stop `id`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stop {
    pub id: u8,
    pub tok: usize,
    /// Columns at least between the token before and `tok`.
    pub gap: usize,
    /// A cell wider than this before the stop keeps its row out of this
    /// column's alignment (and the later ones): one long list of statuses
    /// should not push a whole transition table to the right.
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub depth: usize,
    pub kind: Kind,
    /// Token indices, first and last inclusive (comments inside included).
    pub first: usize,
    pub last: usize,
    pub stops: Vec<Stop>,
    /// Continuation lines hang from the column of the latest anchor token
    /// before them (unless a bracket is open).
    pub anchors: Vec<usize>,
    /// A `//` comment after the row on its last line.
    pub trailing: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) enum Line {
    Row(Row),
    Comment { depth: usize, tok: usize },
    Blank,
}

/// Why a file could not be laid out: a token the structure does not
/// account for. A bug, reported instead of writing a changed meaning.
#[derive(Debug)]
pub(crate) struct Unplaced(pub usize);

pub(crate) struct Builder<'t> {
    pub text: &'t str,
    pub toks: &'t [Tok],
    pub lines: Vec<Line>,
    /// The next token not yet placed.
    next: usize,
}

impl<'t> Builder<'t> {
    pub fn new(text: &'t str, toks: &'t [Tok]) -> Self {
        Builder {
            text,
            toks,
            lines: Vec::new(),
            next: 0,
        }
    }

    fn tok_text(&self, i: usize) -> &'t str {
        let t = self.toks[i];
        &self.text[t.start..t.end]
    }

    /// The index of the first token starting at or after `offset`.
    fn tok_at(&self, offset: usize) -> usize {
        self.toks.partition_point(|t| t.start < offset)
    }

    /// The last non-comment token ending at or before `end`.
    fn last_before(&self, end: usize) -> usize {
        let mut i = self.toks.partition_point(|t| t.end <= end);
        while i > 0 && self.toks[i - 1].kind == TokKind::Comment {
            i -= 1;
        }
        i.saturating_sub(1)
    }

    fn range(&self, p: &Pair, base: usize) -> (usize, usize) {
        let s = p.as_span();
        (
            self.tok_at(base + s.start()),
            self.last_before(base + s.end()),
        )
    }

    /// Places the comments before token `upto` (exclusive); anything else
    /// there is a token the layout lost.
    fn comments(&mut self, upto: usize, depth: usize, top: bool) -> Result<(), Unplaced> {
        while self.next < upto {
            let i = self.next;
            let t = self.toks[i];
            if t.kind != TokKind::Comment {
                return Err(Unplaced(i));
            }
            let trailing = t.breaks == 0
                && match self.lines.last_mut() {
                    Some(Line::Row(r)) if r.trailing.is_none() => {
                        r.trailing = Some(i);
                        true
                    }
                    _ => false,
                };
            if !trailing {
                self.separate(t.breaks, top);
                self.lines.push(Line::Comment { depth, tok: i });
            }
            self.next += 1;
        }
        Ok(())
    }

    /// A blank line before the next line when the source had one; at the
    /// top level, always one after a block.
    fn separate(&mut self, breaks: usize, top: bool) {
        let after_item = top
            && matches!(self.lines.last(), Some(Line::Row(r)) if r.depth == 0 && matches!(r.kind, Kind::Close | Kind::Plain));
        match self.lines.last() {
            None | Some(Line::Blank) => {}
            Some(Line::Row(r)) if r.kind == Kind::Open => {}
            _ if breaks >= 2 || after_item => self.lines.push(Line::Blank),
            _ => {}
        }
    }

    fn push_row(&mut self, row: Row, top: bool) -> Result<(), Unplaced> {
        self.comments(row.first, row.depth, top)?;
        if row.kind == Kind::Close {
            while matches!(self.lines.last(), Some(Line::Blank)) {
                self.lines.pop();
            }
        } else {
            self.separate(self.toks[row.first].breaks, top);
        }
        self.next = row.last + 1;
        self.lines.push(Line::Row(row));
        Ok(())
    }

    fn row(&self, depth: usize, kind: Kind, first: usize, last: usize) -> Row {
        Row {
            depth,
            kind,
            first,
            last,
            stops: Vec::new(),
            anchors: Vec::new(),
            trailing: None,
        }
    }

    /// One top-level item (`base`: the offset pest's spans are relative to).
    pub fn item(&mut self, item: Pair, base: usize) -> Result<(), Unplaced> {
        let Some(inner) = item.into_inner().next() else {
            return Ok(());
        };
        let (first, last) = self.range(&inner, base);
        if inner.as_rule() == Rule::template {
            let mut row = self.row(0, Kind::Plain, first, last);
            row.anchors.push(first + 2);
            return self.push_row(row, true);
        }
        let children: Vec<Pair> = inner.into_inner().collect();
        let open = (first..=last)
            .find(|&i| self.toks[i].kind == TokKind::Punct && self.tok_text(i) == "{")
            .ok_or(Unplaced(first))?;
        let body: Vec<Pair> = children
            .into_iter()
            .filter(|p| base + p.as_span().start() > self.toks[open].start)
            .collect();
        let head = self.row(0, Kind::Open, first, open);
        self.block(head, &body, last, base)
    }

    fn statement(&mut self, p: &Pair, depth: usize, base: usize) -> Result<(), Unplaced> {
        let (first, last) = self.range(p, base);
        let children: Vec<Pair> = p.clone().into_inner().collect();
        let at = |pair: &Pair| self.tok_at(base + pair.as_span().start());
        let child = |rule: Rule| children.iter().find(|c| c.as_rule() == rule).map(at);
        let mut row = self.row(depth, Kind::Plain, first, last);
        let stop = |row: &mut Row, id: u8, tok: Option<usize>, gap: usize| {
            if let Some(tok) = tok {
                let limit = usize::MAX;
                row.stops.push(Stop {
                    id,
                    tok,
                    gap,
                    limit,
                });
                row.anchors.push(tok);
            }
        };
        match p.as_rule() {
            Rule::property => {
                row.kind = Kind::Property;
                stop(&mut row, 0, children.get(1).map(at), 2);
            }
            Rule::status_decl => {
                row.kind = Kind::Status;
                for (id, c) in children.iter().enumerate().skip(1) {
                    stop(&mut row, id as u8, Some(at(c)), 2);
                }
            }
            Rule::transition => {
                row.kind = Kind::Transition;
                stop(&mut row, 0, child(Rule::arrow), 1);
                stop(&mut row, 1, child(Rule::kw_when), 2);
                for s in &mut row.stops {
                    s.limit = TRANSITION_CELL_LIMIT;
                }
                row.anchors.extend(child(Rule::to_list));
                row.anchors.extend(child(Rule::expr));
            }
            Rule::field_decl => {
                row.kind = Kind::Field;
                stop(&mut row, 0, child(Rule::status_id), 2);
                stop(&mut row, 1, child(Rule::field_type), 2);
                let label = children
                    .iter()
                    .find(|c| matches!(c.as_rule(), Rule::string | Rule::raw_string));
                stop(&mut row, 2, label.map(at), 2);
            }
            Rule::map_rule => {
                row.kind = Kind::MapRule;
                stop(&mut row, 0, child(Rule::arrow), 1);
                if let Some(t) = children.iter().find(|c| c.as_rule() == Rule::translation) {
                    // `source -> target {`, the arms, `}`.
                    let (t_first, t_last) = self.range(t, base);
                    row.kind = Kind::Open;
                    row.last = t_first;
                    row.stops.clear();
                    let arms: Vec<Pair> = t.clone().into_inner().collect();
                    return self.block(row, &arms, t_last, base);
                }
            }
            Rule::translation_arm => {
                row.kind = Kind::Arm;
                stop(&mut row, 0, child(Rule::fat_arrow), 1);
            }
            Rule::sku_rule => {
                row.kind = Kind::SkuRule;
                row.anchors.extend(
                    (first..=last)
                        .find(|&i| self.toks[i].kind == TokKind::Punct && self.tok_text(i) == "|"),
                );
                stop(&mut row, 0, child(Rule::fat_arrow), 1);
            }
            Rule::sku_test => {
                row.kind = Kind::SkuTest;
                stop(&mut row, 0, child(Rule::fat_arrow), 1);
            }
            Rule::sku_apply => {
                row.kind = Kind::SkuApply;
                stop(&mut row, 0, child(Rule::arrow), 1);
            }
            Rule::esc_when
            | Rule::esc_reason
            | Rule::esc_comment
            | Rule::esc_set
            | Rule::esc_assign
            | Rule::esc_status => {
                row.kind = Kind::Escalation;
                let after_keyword = if p.as_rule() == Rule::esc_when { 1 } else { 0 };
                stop(&mut row, 0, children.get(after_keyword).map(at), 1);
            }
            Rule::link_on | Rule::link_tickets | Rule::link_pick => {
                row.kind = Kind::LinkStmt;
                stop(&mut row, 0, children.get(1).map(at), 1);
            }
            // normalize, products, event, expect: hang under the first value.
            _ => row.anchors.extend((first < last).then_some(first + 1)),
        }
        self.push_row(row, false)
    }

    /// A block: the row opening it (ending in `{`), its statements one
    /// level deeper, and the `}` at token `close`.
    fn block(
        &mut self,
        head: Row,
        body: &[Pair],
        close: usize,
        base: usize,
    ) -> Result<(), Unplaced> {
        let depth = head.depth;
        let top = depth == 0;
        self.push_row(head, top)?;
        for p in body {
            self.statement(p, depth + 1, base)?;
        }
        if self.toks[close].kind != TokKind::Punct || self.tok_text(close) != "}" {
            return Err(Unplaced(close));
        }
        self.comments(close, depth + 1, false)?;
        self.push_row(self.row(depth, Kind::Close, close, close), top)
    }

    /// Comments after the last item.
    pub fn finish(&mut self) -> Result<(), Unplaced> {
        let n = self.toks.len();
        self.comments(n, 0, true)
    }
}
