//! pest pairs -> typed AST. Shape only: names are not resolved here.

use super::ast::*;
use super::error::{SyntaxError, SyntaxErrorKind};
use super::parser::{L3Parser, Pair, Rule};
use super::span::{FileId, Span};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;
use std::sync::LazyLock;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_eq, Assoc::Left)
            | Op::infix(Rule::op_ne, Assoc::Left)
            | Op::infix(Rule::op_lt, Assoc::Left)
            | Op::infix(Rule::op_le, Assoc::Left)
            | Op::infix(Rule::op_gt, Assoc::Left)
            | Op::infix(Rule::op_ge, Assoc::Left)
            | Op::infix(Rule::op_in, Assoc::Left)
            | Op::infix(Rule::op_not_in, Assoc::Left)
            | Op::infix(Rule::op_has, Assoc::Left))
});

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
            _ => return None,
        })
    }

    // ------------------------------------------------------------ literals

    fn text(&mut self, p: Pair) -> Text {
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

    fn unescape(&mut self, s: &str, offset: usize) -> String {
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

    fn number(&mut self, p: &Pair) -> f64 {
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

    fn uint(&mut self, p: &Pair, what: &str) -> u64 {
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

    fn money(&mut self, p: Pair) -> Money {
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

    fn literal(&mut self, p: Pair) -> Expr {
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

    // ------------------------------------------------------------ expressions

    pub fn expr(&mut self, p: Pair) -> Expr {
        let pairs = p.into_inner();
        // The closures of the Pratt parser all need `self`; a RefCell-free
        // way is to collect into a small owned structure first.
        let cell = std::cell::RefCell::new(self);
        let parsed = PRATT
            .map_primary(|prim| cell.borrow_mut().literal(prim))
            .map_prefix(|op, rhs| {
                let b = cell.borrow();
                let span = b.span(&op).to(rhs.span);
                match rhs.kind {
                    // `not not x` is `x`: keeps hostile `not` runs shallow.
                    ExprKind::Not(inner) => Expr { span, ..*inner },
                    kind => Expr {
                        kind: ExprKind::Not(Box::new(Expr {
                            kind,
                            span: rhs.span,
                        })),
                        span,
                    },
                }
            })
            .map_infix(|lhs, op, rhs| {
                let span = lhs.span.to(rhs.span);
                let flatten = |lhs: Expr, and: bool| {
                    let mut terms = match lhs.kind {
                        ExprKind::And(t) if and => t,
                        ExprKind::Or(t) if !and => t,
                        kind => vec![Expr {
                            kind,
                            span: lhs.span,
                        }],
                    };
                    terms.push(rhs.clone());
                    Expr {
                        kind: if and {
                            ExprKind::And(terms)
                        } else {
                            ExprKind::Or(terms)
                        },
                        span,
                    }
                };
                let op_span = cell.borrow().span(&op);
                let op = match op.as_rule() {
                    Rule::op_or => return flatten(lhs, false),
                    Rule::op_and => return flatten(lhs, true),
                    Rule::op_eq => BinOp::Eq,
                    Rule::op_ne => BinOp::Ne,
                    Rule::op_lt => BinOp::Lt,
                    Rule::op_le => BinOp::Le,
                    Rule::op_gt => BinOp::Gt,
                    Rule::op_ge => BinOp::Ge,
                    Rule::op_in => BinOp::In,
                    Rule::op_not_in => BinOp::NotIn,
                    _ => BinOp::Has,
                };
                if let ExprKind::Binary(..) = lhs.kind {
                    // `a < b < c` would compare a yes/no answer with `c`;
                    // refusing it also keeps left-deep chains out of the tree.
                    cell.borrow_mut()
                        .errors
                        .push(SyntaxErrorKind::ChainedComparison { op: op.symbol() }.at(op_span));
                    return lhs;
                }
                Expr {
                    kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                    span,
                }
            })
            .parse(pairs);
        parsed
    }

    // ------------------------------------------------------------ connections

    fn connection(&mut self, p: Pair) -> Connection {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "connection");
        let kind = self.ident(it.next().expect("kind"));
        let props = it.map(|pp| self.property(pp)).collect();
        Connection {
            name,
            kind,
            props,
            span,
        }
    }

    fn property(&mut self, p: Pair) -> Property {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let key = self.ident(it.next().expect("key"));
        let values = it.map(|v| self.prop_value(v)).collect();
        Property { key, values, span }
    }

    fn prop_value(&mut self, p: Pair) -> PropValue {
        let span = self.span(&p);
        let v = p.into_inner().next().expect("value");
        let kind = match v.as_rule() {
            Rule::secret_ref => {
                let mut it = v.into_inner();
                let source = if it.next().map(|k| k.as_str()) == Some("env") {
                    SecretSource::Env
                } else {
                    SecretSource::File
                };
                let name = it.next().map(|s| self.text(s).value).unwrap_or_default();
                PropKind::Secret { source, name }
            }
            Rule::rate => {
                let n = v.into_inner().next().expect("int");
                let value = self.uint(&n, "a rate");
                PropKind::Rate(value.min(u32::MAX as u64) as u32)
            }
            Rule::money => PropKind::Money(self.money(v)),
            Rule::number => PropKind::Number(self.number(&v)),
            Rule::string | Rule::raw_string => PropKind::Text(self.text(v).value),
            Rule::boolean => PropKind::Bool(v.as_str() == "true"),
            Rule::scope => PropKind::Scope(v.as_str().to_string()),
            _ => PropKind::Word(v.as_str().to_string()),
        };
        PropValue { kind, span }
    }

    // ------------------------------------------------------------ statuses

    fn statuses(&mut self, p: Pair) -> StatusTable {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let conn = self.ident(it.next().expect("conn"));
        let mut statuses = Vec::new();
        let mut transitions = Vec::new();
        for c in it {
            match c.as_rule() {
                Rule::status_decl => statuses.push(self.status_decl(c)),
                Rule::transition => transitions.push(self.transition(c)),
                _ => {}
            }
        }
        StatusTable {
            conn,
            statuses,
            transitions,
            span,
        }
    }

    fn status_decl(&mut self, p: Pair) -> StatusDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "status");
        let category = self.ident(it.next().expect("category"));
        let mut d = StatusDecl {
            name,
            category,
            label: None,
            terminal: None,
            initial: None,
            id: None,
            span,
        };
        for c in it {
            match c.as_rule() {
                Rule::string | Rule::raw_string => d.label = Some(self.text(c)),
                Rule::status_attr => {
                    let a = c.into_inner().next().expect("attr");
                    let s = self.span(&a);
                    match a.as_rule() {
                        Rule::terminal => d.terminal = Some(s),
                        Rule::initial => d.initial = Some(s),
                        _ => d.id = Some(self.hash_id(a)),
                    }
                }
                _ => {}
            }
        }
        d
    }

    fn hash_id(&mut self, p: Pair) -> (u64, Span) {
        let s = self.span(&p);
        let n = p.into_inner().next().expect("int");
        (self.uint(&n, "an id"), s)
    }

    fn transition(&mut self, p: Pair) -> Transition {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let from_p = it.next().expect("from");
        let from = {
            let mut inner = from_p.into_inner().peekable();
            if inner.peek().map(|x| x.as_rule()) == Some(Rule::wildcard) {
                From::Any(self.span(&inner.next().expect("wildcard")))
            } else {
                From::List(inner.map(|i| self.ident(i)).collect())
            }
        };
        let _arrow = it.next();
        let to = it
            .next()
            .expect("to")
            .into_inner()
            .map(|i| self.ident(i))
            .collect();
        let when = it.find(|c| c.as_rule() == Rule::expr).map(|e| self.expr(e));
        Transition {
            from,
            to,
            when,
            span,
        }
    }

    // ------------------------------------------------------------ fields

    fn fields(&mut self, p: Pair) -> FieldBlock {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let conn = self.ident(it.next().expect("conn"));
        let fields = it.map(|f| self.field_decl(f)).collect();
        FieldBlock { conn, fields, span }
    }

    fn field_name(&mut self, p: Pair) -> FieldName {
        let inner = p.into_inner().next().expect("field name");
        match inner.as_rule() {
            Rule::sf_path => {
                let s = self.span(&inner);
                FieldName::Sf(inner.into_inner().map(|w| self.ident(w)).collect(), s)
            }
            _ => FieldName::Alias(self.ident(inner)),
        }
    }

    fn field_decl(&mut self, p: Pair) -> FieldDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.field_name(it.next().expect("name"));
        if let FieldName::Alias(a) = &name {
            if super::parser::is_keyword(&a.name) {
                self.errors.push(
                    SyntaxErrorKind::Reserved {
                        name: a.name.clone(),
                        what: "field",
                    }
                    .at(a.span),
                );
            }
        }
        let mut id = None;
        let mut ty = None;
        let mut label = None;
        for c in it {
            match c.as_rule() {
                Rule::status_id => id = Some(self.hash_id(c)),
                Rule::field_type => ty = Some(self.type_expr(c)),
                Rule::string | Rule::raw_string => label = Some(self.text(c)),
                _ => {}
            }
        }
        FieldDecl {
            name,
            id,
            ty: ty.expect("grammar requires a type"),
            label,
            span,
        }
    }

    fn type_expr(&mut self, p: Pair) -> TypeExpr {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().expect("type name"));
        let args = it
            .map(|a| {
                let s = self.span(&a);
                let inner = a.into_inner().next().expect("type arg");
                let v = if inner.as_rule() == Rule::string {
                    self.text(inner).value
                } else {
                    inner.as_str().to_string()
                };
                (v, s)
            })
            .collect();
        TypeExpr { name, args, span }
    }

    // ------------------------------------------------------------ mappings

    fn mapping(&mut self, p: Pair) -> Mapping {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let from = self.ident(it.next().expect("from"));
        let _arrow = it.next();
        let to = self.ident(it.next().expect("to"));
        let rules = it.map(|r| self.map_rule(r)).collect();
        Mapping {
            from,
            to,
            rules,
            span,
        }
    }

    fn map_rule(&mut self, p: Pair) -> MapRule {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let source = self.field_name(it.next().expect("source"));
        let _arrow = it.next();
        let target = self.field_name(it.next().expect("target"));
        let table = it.next().map(|t| self.translation(t));
        MapRule {
            source,
            target,
            table,
            span,
        }
    }

    fn translation(&mut self, p: Pair) -> Translation {
        let span = self.span(&p);
        let arms = p
            .into_inner()
            .map(|arm| {
                let aspan = self.span(&arm);
                let mut it = arm.into_inner();
                let pat = it.next().expect("pattern");
                let patterns = match pat.as_rule() {
                    Rule::default_pattern => None,
                    _ => Some(pat.into_inner().map(|v| self.literal(v)).collect()),
                };
                let _fat = it.next();
                let value = self.literal(it.next().expect("value"));
                Arm {
                    patterns,
                    value,
                    span: aspan,
                }
            })
            .collect();
        Translation { arms, span }
    }

    // ------------------------------------------------------------ sku

    fn sku(&mut self, p: Pair) -> SkuTable {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "sku table");
        let mut t = SkuTable {
            name,
            normalize: vec![],
            products: vec![],
            rules: vec![],
            tests: vec![],
            applies: vec![],
            span,
        };
        for c in it {
            match c.as_rule() {
                Rule::normalize => {
                    for step in c.into_inner() {
                        let sspan = self.span(&step);
                        let mut si = step.into_inner();
                        let name = self.ident(si.next().expect("step"));
                        let arg = si.next().map(|a| self.text(a));
                        t.normalize.push(NormStep {
                            name,
                            arg,
                            span: sspan,
                        });
                    }
                }
                Rule::products => {
                    for prod in c.into_inner() {
                        let s = self.span(&prod);
                        t.products.push((prod.as_str().to_string(), s));
                    }
                }
                Rule::sku_rule => {
                    let rspan = self.span(&c);
                    let mut patterns = vec![];
                    let mut target = (String::new(), rspan);
                    for part in c.into_inner() {
                        match part.as_rule() {
                            Rule::sku_pattern => {
                                let inner = part.into_inner().next().expect("pattern");
                                if inner.as_rule() == Rule::regex {
                                    let s = self.span(&inner);
                                    let body = inner.into_inner().next().expect("regex body");
                                    patterns.push(SkuPattern::Regex {
                                        source: body.as_str().replace("\\/", "/"),
                                        span: s,
                                    });
                                } else {
                                    patterns.push(SkuPattern::Alias(self.text(inner)));
                                }
                            }
                            Rule::sku_target => target = self.sku_target(part),
                            _ => {}
                        }
                    }
                    t.rules.push(SkuRule {
                        patterns,
                        target,
                        span: rspan,
                    });
                }
                Rule::sku_apply => {
                    let aspan = self.span(&c);
                    let mut ai = c.into_inner().skip(1);
                    let path = ai.next().expect("source path");
                    let source_span = self.span(&path);
                    let source = path.into_inner().map(|w| self.ident(w)).collect();
                    let _arrow = ai.next();
                    let conn = self.ident(ai.next().expect("connection"));
                    let field = self.field_name(ai.next().expect("field"));
                    t.applies.push(SkuApply {
                        source,
                        source_span,
                        conn,
                        field,
                        span: aspan,
                    });
                }
                Rule::sku_test => {
                    let tspan = self.span(&c);
                    let mut ti = c.into_inner();
                    let input = self.text(ti.next().expect("input"));
                    let _fat = ti.next();
                    let exp = ti.next().expect("expected");
                    let expected = match exp.as_rule() {
                        Rule::none => None,
                        _ => Some(self.sku_target(exp)),
                    };
                    t.tests.push(SkuTest {
                        input,
                        expected,
                        span: tspan,
                    });
                }
                _ => {}
            }
        }
        t
    }

    fn sku_target(&mut self, p: Pair) -> (String, Span) {
        let s = self.span(&p);
        let inner = p.into_inner().next().expect("target");
        if inner.as_rule() == Rule::string {
            (self.text(inner).value, s)
        } else {
            (inner.as_str().to_string(), s)
        }
    }

    // ------------------------------------------------------------ tests

    fn test_block(&mut self, p: Pair) -> TestBlock {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "test");
        let mut t = TestBlock {
            name,
            events: vec![],
            expects: vec![],
            span,
        };
        for stmt in it {
            let sspan = self.span(&stmt);
            match stmt.as_rule() {
                Rule::test_event => {
                    let text = stmt.into_inner().nth(1).expect("event text");
                    t.events.push(self.text(text));
                }
                Rule::expect => {
                    let exp = stmt.into_inner().nth(1).expect("expectation");
                    let what = self.expectation(exp);
                    t.expects.push(Expect { what, span: sspan });
                }
                _ => {}
            }
        }
        t
    }

    fn expectation(&mut self, p: Pair) -> Expectation {
        let rule = p.as_rule();
        if rule == Rule::exp_nothing {
            return Expectation::Nothing;
        }
        // Every other form starts with its keyword.
        let mut it = p.into_inner().skip(1);
        let mut next = || it.next().expect("grammar guarantees the parts");
        match rule {
            Rule::exp_no => Expectation::No(self.ident(next())),
            Rule::exp_status => {
                let conn = self.ident(next());
                let status = self.ident(next());
                Expectation::Status { conn, status }
            }
            Rule::exp_field => {
                let conn = self.ident(next());
                let field = self.field_name(next());
                let value = self.literal(next());
                Expectation::Field { conn, field, value }
            }
            Rule::exp_comment => {
                let conn = self.ident(next());
                let mut body = next();
                let contains = body.as_rule() == Rule::kw_contains;
                if contains {
                    body = next();
                }
                let text = self.text(body);
                Expectation::Comment {
                    conn,
                    contains,
                    text,
                }
            }
            Rule::exp_group => {
                let conn = self.ident(next());
                let group = self.text(next());
                Expectation::Group { conn, group }
            }
            Rule::exp_sku => {
                let table = self.ident(next());
                let target = next();
                let product = match target.as_rule() {
                    Rule::none => None,
                    _ => Some(self.sku_target(target)),
                };
                Expectation::Sku { table, product }
            }
            _ => Expectation::Refused(self.text(next())),
        }
    }

    // ------------------------------------------------------------ templates

    fn template(&mut self, p: Pair) -> Template {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "template");
        let text = it.next().expect("body");
        let body = self.template_body(text);
        Template { name, body, span }
    }

    /// Parses the `{{ ... }}` parts of a string literal from its raw source,
    /// so interpolation spans point at the right bytes.
    fn template_body(&mut self, text_pair: Pair) -> TemplateBody {
        let raw = text_pair.as_rule() == Rule::raw_string;
        // Escapes are reported once, by the text parts below, with exact spans.
        let reported = self.errors.len();
        let text = self.text(text_pair);
        self.errors.truncate(reported);
        let body_src = &self.src[text.body.start as usize..text.body.end as usize];
        let offset = text.body.start as usize;
        let mut parts = Vec::new();
        match L3Parser::parse(Rule::template_body, body_src) {
            Ok(mut pairs) => {
                let root = pairs.next().expect("template body");
                let sub = Builder {
                    file: self.file,
                    base: offset,
                    src: self.src,
                    errors: vec![],
                };
                let mut sub = sub;
                for part in root.into_inner() {
                    match part.as_rule() {
                        Rule::template_text => {
                            let s = sub.span(&part);
                            let v = if raw {
                                part.as_str().to_string()
                            } else {
                                sub.unescape(part.as_str(), s.start as usize)
                            };
                            parts.push(TemplatePart::Text(v));
                        }
                        Rule::interpolation => {
                            let s = sub.span(&part);
                            let mut it = part.into_inner();
                            let var = it.next().expect("var");
                            let path = var.into_inner().map(|w| sub.ident(w)).collect();
                            let filters = it
                                .map(|f| {
                                    let fs = sub.span(&f);
                                    let mut fi = f.into_inner();
                                    let name = sub.ident(fi.next().expect("filter name"));
                                    let args = fi.map(|a| sub.literal(a)).collect();
                                    Filter {
                                        name,
                                        args,
                                        span: fs,
                                    }
                                })
                                .collect();
                            parts.push(TemplatePart::Var {
                                path,
                                filters,
                                span: s,
                            });
                        }
                        _ => {}
                    }
                }
                self.errors.extend(sub.errors);
            }
            Err(e) => {
                let at = match e.location {
                    InputLocationAlias::Pos(p) => p,
                    InputLocationAlias::Span((s, _)) => s,
                };
                let mut expected: Vec<&str> = vec![];
                if let pest::error::ErrorVariant::ParsingError { positives, .. } = &e.variant {
                    for r in positives {
                        if let Some(n) = super::parser::rule_name(*r) {
                            if !expected.contains(&n) {
                                expected.push(n);
                            }
                        }
                    }
                }
                if !expected.contains(&"`}}`") {
                    expected.push("`}}`");
                }
                self.errors.push(
                    SyntaxErrorKind::BadTemplate {
                        expected: super::parser::join_or(&expected),
                    }
                    .at(Span::new(
                        self.file,
                        offset + at,
                        offset + at + body_src[at..].chars().next().map_or(1, char::len_utf8),
                    )),
                );
                parts.push(TemplatePart::Text(text.value.clone()));
            }
        }
        TemplateBody {
            parts,
            span: text.span,
        }
    }

    // ------------------------------------------------------------ escalations

    fn escalation(&mut self, p: Pair) -> Escalation {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.decl(it.next().expect("name"), "escalation");
        let mut stmts = Vec::new();
        for s in it {
            let sspan = self.span(&s);
            let rule = s.as_rule();
            let mut si = s.into_inner();
            let stmt = match rule {
                Rule::esc_when => {
                    let e = si.find(|x| x.as_rule() == Rule::expr).expect("expr");
                    EscStmt::When(self.expr(e))
                }
                Rule::esc_reason => EscStmt::Reason(self.text(si.next().expect("reason"))),
                Rule::esc_comment => {
                    let conn = self.ident(si.next().expect("conn"));
                    let b = si.next().expect("body");
                    let body = if b.as_rule() == Rule::ident {
                        CommentBody::Template(self.ident(b))
                    } else {
                        CommentBody::Inline(self.template_body(b))
                    };
                    EscStmt::Comment {
                        conn,
                        body,
                        span: sspan,
                    }
                }
                Rule::esc_set => {
                    let conn = self.ident(si.next().expect("conn"));
                    let field = self.field_name(si.next().expect("field"));
                    let value = self.expr(si.next().expect("value"));
                    EscStmt::Set {
                        conn,
                        field,
                        value,
                        span: sspan,
                    }
                }
                Rule::esc_assign => {
                    let conn = self.ident(si.next().expect("conn"));
                    let group = self.text(si.next().expect("group"));
                    EscStmt::Assign {
                        conn,
                        group,
                        span: sspan,
                    }
                }
                _ => {
                    let conn = self.ident(si.next().expect("conn"));
                    let status = self.ident(si.next().expect("status"));
                    EscStmt::Status {
                        conn,
                        status,
                        span: sspan,
                    }
                }
            };
            stmts.push(stmt);
        }
        Escalation { name, stmts, span }
    }
}

use pest::error::InputLocation as InputLocationAlias;

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
