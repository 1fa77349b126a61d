//! The SOQL the connector sends, and a little more:
//!
//! ```text
//! query  := SELECT field ("," field)* FROM object
//!           [WHERE cond (AND cond)*]
//!           [ORDER BY field [ASC | DESC]]
//!           [LIMIT integer]
//! field  := name ("." name)*               -- Rel.Field for parents
//! cond   := field op literal | field [NOT] IN "(" literal ("," literal)* ")"
//! op     := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal:= 'text' | number | date | datetime | TRUE | FALSE | NULL
//! ```
//!
//! Keywords are case-insensitive. Anything else is a `ParseError`
//! (answered 400 `MALFORMED_QUERY`); the lexer and parser loop, never
//! recurse, so no input can exhaust the stack.

use std::fmt;

/// Salesforce's limit on the length of a SOQL statement.
pub const MAX_LEN: usize = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
    /// `2026-11-11T10:00:00Z`, kept as written and parsed.
    DateTime(jiff::Timestamp),
    Date(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp {
        field: String,
        op: Op,
        value: Literal,
    },
    In {
        field: String,
        negated: bool,
        values: Vec<Literal>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub fields: Vec<String>,
    pub object: String,
    pub conds: Vec<Cond>,
    /// The field, and whether descending.
    pub order: Option<(String, bool)>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Lit(Literal),
    Op(Op),
    Comma,
    Open,
    Close,
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "end of query".into(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Lit(_)) => "a literal".into(),
        Some(Tok::Op(_)) => "an operator".into(),
        Some(Tok::Comma) => "','".into(),
        Some(Tok::Open) => "'('".into(),
        Some(Tok::Close) => "')'".into(),
    }
}

fn lex(src: &str) -> Result<Vec<Tok>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        i += 1;
        let tok = match c {
            c if c.is_whitespace() => continue,
            ',' => Tok::Comma,
            '(' => Tok::Open,
            ')' => Tok::Close,
            '=' => Tok::Op(Op::Eq),
            '!' | '<' | '>' => {
                let (op, used) = operator(c, chars.get(i).copied())
                    .ok_or_else(|| ParseError(format!("unexpected '{c}' at {start}")))?;
                i += used;
                Tok::Op(op)
            }
            '\'' => {
                let (s, next) = string(&chars, i)?;
                i = next;
                Tok::Lit(Literal::Str(s))
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                {
                    i += 1;
                }
                Tok::Word(chars[start..i].iter().collect())
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i).is_some_and(char::is_ascii_digit)) =>
            {
                while chars.get(i).is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-')
                }) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                Tok::Lit(literal(&word)?)
            }
            other => return err(format!("unexpected character '{other}' at {start}")),
        };
        toks.push(tok);
    }
    Ok(toks)
}

fn operator(c: char, next: Option<char>) -> Option<(Op, usize)> {
    match (c, next) {
        ('!', Some('=')) => Some((Op::Ne, 1)),
        ('<', Some('>')) => Some((Op::Ne, 1)),
        ('<', Some('=')) => Some((Op::Le, 1)),
        ('>', Some('=')) => Some((Op::Ge, 1)),
        ('<', _) => Some((Op::Lt, 0)),
        ('>', _) => Some((Op::Gt, 0)),
        _ => None,
    }
}

/// A quoted string from just after the opening quote; returns the
/// text and the index after the closing quote.
fn string(chars: &[char], mut i: usize) -> Result<(String, usize), ParseError> {
    let mut s = String::new();
    loop {
        match chars.get(i) {
            None => return err("unterminated string literal"),
            Some('\'') => return Ok((s, i + 1)),
            Some('\\') => {
                let e = chars
                    .get(i + 1)
                    .ok_or_else(|| ParseError("unterminated string literal".into()))?;
                s.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    '\'' | '"' | '\\' | '_' | '%' => *e,
                    other => return err(format!("invalid escape sequence '\\{other}'")),
                });
                i += 2;
            }
            Some(c) => {
                s.push(*c);
                i += 1;
            }
        }
    }
}

/// A number, a date (`2026-11-11`) or a datetime.
fn literal(word: &str) -> Result<Literal, ParseError> {
    let numeric = word
        .trim_start_matches('-')
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.');
    if numeric {
        return match word.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Literal::Num(n)),
            _ => err(format!("invalid number '{word}'")),
        };
    }
    if word.len() == 10 && word.parse::<jiff::civil::Date>().is_ok() {
        return Ok(Literal::Date(word.to_string()));
    }
    match super::store::parse_stamp(word) {
        Some(t) if word.contains('T') => Ok(Literal::DateTime(t)),
        _ => err(format!("invalid literal '{word}'")),
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn at_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.at_keyword(kw) {
            self.pos += 1;
            Ok(())
        } else {
            err(format!("expected {kw}, found {}", describe(self.peek())))
        }
    }

    fn name(&mut self, what: &str) -> Result<String, ParseError> {
        match self.next() {
            Some(Tok::Word(w)) if !is_reserved(&w) && valid_path(&w) => Ok(w),
            other => err(format!(
                "expected {what}, found {}",
                describe(other.as_ref())
            )),
        }
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        match self.next() {
            Some(Tok::Lit(l)) => Ok(l),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Ok(Literal::Bool(true)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Ok(Literal::Bool(false)),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            other => err(format!(
                "expected a value, found {}",
                describe(other.as_ref())
            )),
        }
    }

    fn fields(&mut self) -> Result<Vec<String>, ParseError> {
        let mut out = vec![self.name("a field")?];
        while self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            out.push(self.name("a field")?);
        }
        Ok(out)
    }

    fn cond(&mut self) -> Result<Cond, ParseError> {
        let field = self.name("a field")?;
        let negated = self.at_keyword("not");
        if negated {
            self.pos += 1;
        }
        if self.at_keyword("in") {
            self.pos += 1;
            return Ok(Cond::In {
                field,
                negated,
                values: self.list()?,
            });
        }
        if negated {
            return err("expected IN after NOT");
        }
        match self.next() {
            Some(Tok::Op(op)) => Ok(Cond::Cmp {
                field,
                op,
                value: self.literal()?,
            }),
            other => err(format!(
                "expected an operator, found {}",
                describe(other.as_ref())
            )),
        }
    }

    fn list(&mut self) -> Result<Vec<Literal>, ParseError> {
        if self.next() != Some(Tok::Open) {
            return err("expected '(' after IN");
        }
        let mut values = vec![self.literal()?];
        loop {
            match self.next() {
                Some(Tok::Comma) => values.push(self.literal()?),
                Some(Tok::Close) => return Ok(values),
                other => {
                    return err(format!(
                        "expected ',' or ')', found {}",
                        describe(other.as_ref())
                    ))
                }
            }
        }
    }

    fn order(&mut self) -> Result<(String, bool), ParseError> {
        self.keyword("by")?;
        let field = self.name("a field")?;
        let desc = if self.at_keyword("desc") {
            self.pos += 1;
            true
        } else {
            if self.at_keyword("asc") {
                self.pos += 1;
            }
            false
        };
        Ok((field, desc))
    }

    fn limit(&mut self) -> Result<u64, ParseError> {
        match self.next() {
            Some(Tok::Lit(Literal::Num(n))) if n >= 0.0 && n.fract() == 0.0 && n < 1e15 => {
                Ok(n as u64)
            }
            other => err(format!(
                "expected a whole number after LIMIT, found {}",
                describe(other.as_ref())
            )),
        }
    }
}

const RESERVED: &[&str] = &[
    "select", "from", "where", "and", "or", "not", "in", "order", "by", "limit", "asc", "desc",
    "null", "true", "false",
];

fn is_reserved(w: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w))
}

/// `A.B.C`: no empty segment, none starting with a digit.
fn valid_path(w: &str) -> bool {
    w.split('.')
        .all(|s| s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
}

pub fn parse(src: &str) -> Result<Query, ParseError> {
    if src.len() > MAX_LEN {
        return err(format!("query is longer than {MAX_LEN} characters"));
    }
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
    };
    p.keyword("select")?;
    let fields = p.fields()?;
    p.keyword("from")?;
    let object = p.name("an object")?;
    if object.contains('.') {
        return err(format!("invalid object name '{object}'"));
    }
    let mut conds = vec![];
    if p.at_keyword("where") {
        p.pos += 1;
        conds.push(p.cond()?);
        while p.at_keyword("and") {
            p.pos += 1;
            conds.push(p.cond()?);
        }
        if p.at_keyword("or") {
            return err("OR is not supported by the emulator; use IN (...)");
        }
    }
    let order = if p.at_keyword("order") {
        p.pos += 1;
        Some(p.order()?)
    } else {
        None
    };
    let limit = if p.at_keyword("limit") {
        p.pos += 1;
        Some(p.limit()?)
    } else {
        None
    };
    if p.peek().is_some() {
        return err(format!("unexpected token {}", describe(p.peek())));
    }
    Ok(Query {
        fields,
        object,
        conds,
        order,
        limit,
    })
}
