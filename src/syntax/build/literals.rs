//! Literals: text with its escapes, numbers, ids and amounts of money.

use super::{decimal_units, Builder};
use crate::syntax::ast::*;
use crate::syntax::error::SyntaxErrorKind;
use crate::syntax::parser::{Pair, Rule};
use crate::syntax::span::Span;

impl Builder<'_> {
    pub(super) fn text(&mut self, p: Pair) -> Text {
        let span = self.span(&p);
        let raw = p.as_rule() == Rule::raw_string;
        let body_pair = p.into_inner().next();
        let (body, value) = match body_pair {
            Some(b) => {
                let bs = self.span(&b);
                let v = if raw {
                    b.as_str().to_string()
                } else {
                    self.unescape(b.as_str(), bs.start as usize)
                };
                (bs, v)
            }
            None => (span, String::new()),
        };
        Text {
            value,
            span,
            body,
            raw,
        }
    }

    pub(super) fn unescape(&mut self, s: &str, offset: usize) -> String {
        let mut out = String::with_capacity(s.len());
        let mut it = s.char_indices().peekable();
        while let Some((i, c)) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = it.next() else { break };
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'u' => {
                    let rest = &s[i + 2..];
                    let parsed = rest
                        .strip_prefix('{')
                        .and_then(|r| r.find('}').map(|end| &r[..end]))
                        .and_then(|hex| {
                            u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .map(|c| (c, hex.len() + 2))
                        });
                    match parsed {
                        Some((ch, len)) => {
                            out.push(ch);
                            for _ in 0..len {
                                it.next();
                            }
                        }
                        None => {
                            // Show what was written, e.g. `\u00e9` (braces missing).
                            let shown: String = s[i..].chars().take(6).collect();
                            let len = shown.len();
                            self.errors.push(
                                SyntaxErrorKind::BadEscape { escape: shown }.at(Span::new(
                                    self.file,
                                    offset + i,
                                    offset + i + len,
                                )),
                            )
                        }
                    }
                }
                other => self.errors.push(
                    SyntaxErrorKind::BadEscape {
                        escape: format!("\\{other}"),
                    }
                    .at(Span::new(
                        self.file,
                        offset + i,
                        offset + i + 1 + other.len_utf8(),
                    )),
                ),
            }
        }
        out
    }

    pub(super) fn number(&mut self, p: &Pair) -> f64 {
        match p.as_str().parse::<f64>() {
            Ok(n) if n.is_finite() => n,
            _ => {
                self.errors.push(
                    SyntaxErrorKind::BadNumber {
                        text: p.as_str().into(),
                        help: "numbers must stay within ±1.7e308".into(),
                    }
                    .at(self.span(p)),
                );
                0.0
            }
        }
    }

    pub(super) fn uint(&mut self, p: &Pair, what: &str) -> u64 {
        match p.as_str().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                self.errors.push(
                    SyntaxErrorKind::BadNumber {
                        text: p.as_str().into(),
                        help: format!("{what} must be below 18446744073709551616"),
                    }
                    .at(self.span(p)),
                );
                0
            }
        }
    }

    pub(super) fn money(&mut self, p: Pair) -> Money {
        let span = self.span(&p);
        let whole = p.as_str();
        let mut num = "";
        let mut currency = "USD".to_string();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::number => num = c.as_str(),
                Rule::currency => currency = c.as_str().to_string(),
                _ => {}
            }
        }
        let units = decimal_units(num).unwrap_or_else(|| {
            self.errors.push(
                SyntaxErrorKind::BadNumber {
                    text: whole.into(),
                    help: "amounts are limited to 4 decimal places and ±900 trillion".into(),
                }
                .at(span),
            );
            0
        });
        Money { units, currency }
    }

    pub(super) fn literal(&mut self, p: Pair) -> Expr {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::money => ExprKind::Lit(Lit::Money(self.money(p))),
            Rule::number => ExprKind::Lit(Lit::Num(self.number(&p))),
            Rule::string | Rule::raw_string => ExprKind::Lit(Lit::Str(self.text(p).value)),
            Rule::esc_string => {
                let body = p.into_inner().next().map(|b| b.as_str()).unwrap_or("");
                ExprKind::Lit(Lit::Str(body.to_string()))
            }
            Rule::boolean => ExprKind::Lit(Lit::Bool(p.as_str() == "true")),
            Rule::none => ExprKind::Lit(Lit::None),
            Rule::symbol => ExprKind::Symbol(self.ident(p.into_inner().next().expect("ident"))),
            Rule::list => ExprKind::List(p.into_inner().map(|v| self.literal(v)).collect()),
            Rule::path => ExprKind::Path(p.into_inner().map(|w| self.ident(w)).collect()),
            Rule::expr => return self.expr(p),
            _ => ExprKind::Lit(Lit::None),
        };
        Expr { kind, span }
    }
}
