//! pest pairs -> typed AST. Shape only: names are not resolved here.
//!
//! One [`Builder`], its methods by what they build: `literals.rs`,
//! `expr.rs` (conditions), `decls.rs` (connections, statuses, fields,
//! mappings), `sku.rs` (SKU tables and tests), `templates.rs` (templates
//! and escalations).

mod decls;
mod expr;
mod links;
mod literals;
mod sku;
mod templates;

use super::ast::*;
use super::error::{SyntaxError, SyntaxErrorKind};
use super::parser::{Pair, Rule};
use super::span::{FileId, Span};

/// Converts pairs of one item into AST nodes. `base` is the byte offset of
/// the slice the pairs were parsed from, `src` the whole file text.
pub(crate) struct Builder<'s> {
    pub file: FileId,
    pub base: usize,
    pub src: &'s str,
    pub errors: Vec<SyntaxError>,
}

impl<'s> Builder<'s> {
    /// The span of a pair without the whitespace and comments pest leaves
    /// at its end when an optional part after it did not match.
    fn span(&self, p: &Pair) -> Span {
        let s = p.as_span();
        let end = last_token_end(p).unwrap_or(s.end());
        Span::new(self.file, self.base + s.start(), self.base + end)
    }

    fn ident(&self, p: Pair) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    /// A declared name: keywords are refused so conditions stay readable.
    fn decl(&mut self, p: Pair, what: &'static str) -> Ident {
        let id = self.ident(p);
        if super::parser::is_keyword(&id.name) {
            self.errors.push(
                SyntaxErrorKind::Reserved {
                    name: id.name.clone(),
                    what,
                }
                .at(id.span),
            );
        }
        id
    }

    pub fn item(&mut self, p: Pair) -> Option<Item> {
        let inner = p.into_inner().next()?;
        Some(match inner.as_rule() {
            Rule::connection => Item::Connection(self.connection(inner)),
            Rule::statuses => Item::Statuses(self.statuses(inner)),
            Rule::fields => Item::Fields(self.fields(inner)),
            Rule::mapping => Item::Map(self.mapping(inner)),
            Rule::sku => Item::Sku(self.sku(inner)),
            Rule::template => Item::Template(self.template(inner)),
            Rule::escalation => Item::Escalation(self.escalation(inner)),
            Rule::test_block => Item::Test(self.test_block(inner)),
            Rule::link => Item::Link(self.link(inner)),
            _ => return None,
        })
    }
}

fn last_token_end(p: &Pair) -> Option<usize> {
    // Trailing trivia always ends in white space (a comment is followed by
    // its newline): most pairs need no search at all.
    if !p.as_str().ends_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    match p.clone().into_inner().last() {
        // Literal tokens (`}`, `->`) are not pairs: only trim when the pair
        // ends with trailing trivia after its last inner pair.
        Some(last) => {
            let inner_end = last_token_end(&last).unwrap_or(last.as_span().end());
            let tail = &p.as_str()[inner_end - p.as_span().start()..];
            if is_trivia(tail) {
                Some(inner_end)
            } else {
                Some(p.as_span().end())
            }
        }
        None => None,
    }
}

/// Whitespace and `//` comments only.
fn is_trivia(s: &str) -> bool {
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return true;
        }
        match rest.strip_prefix("//") {
            Some(r) => rest = r.split_once('\n').map(|(_, after)| after).unwrap_or(""),
            None => return false,
        }
    }
}

/// `"200.5"` -> 2_005_000 (amount × 10⁴); `None` past 4 decimals or on overflow.
pub fn decimal_units(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    // Digits only: `parse` would take a second sign ("--250", "1.-5").
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if frac.len() > 4 || int.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let mut frac_v: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..4 {
        frac_v *= 10;
    }
    let v = int.checked_mul(10_000)?.checked_add(frac_v)?;
    if v > 9_000_000_000_000_000_000 / 1000 {
        return None;
    }
    Some(if neg { -v } else { v })
}
