//! The pest layer: the derived parser, item-by-item parsing with recovery,
//! and pest errors rewritten for humans.

use super::error::{SyntaxError, SyntaxErrorKind};
use super::span::{FileId, Span};
use pest::error::{ErrorVariant, InputLocation};
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "grammar/l3map.pest"]
pub struct L3Parser;

pub type Pair<'i> = pest::iterators::Pair<'i, Rule>;

/// Keywords that open a top-level block; recovery resumes at the next line
/// starting with one of them.
pub const ITEM_KEYWORDS: &[&str] = &[
    "connection",
    "statuses",
    "fields",
    "map",
    "sku",
    "template",
    "escalation",
    "test",
    "link",
];

/// Words with a meaning in conditions and blocks: never names. The block
/// keywords come first, then these.
const OTHER_KEYWORDS: &[&str] = &[
    "when", "and", "or", "not", "in", "has", "true", "false", "none", "terminal", "initial",
];

/// Whether `word` is reserved (a block keyword or one of the others).
pub fn is_keyword(word: &str) -> bool {
    ITEM_KEYWORDS.contains(&word) || OTHER_KEYWORDS.contains(&word)
}

/// Parses every top-level item of `text`, calling `on_item` for each one
/// that parses, and returns the syntax errors of the rest. `on_item`
/// receives the pair and the byte offset of the slice it was parsed from.
pub fn parse_items<'i>(
    file: FileId,
    text: &'i str,
    mut on_item: impl FnMut(Pair<'i>, usize),
) -> Vec<SyntaxError> {
    items(file, text, OnItem::Borrowed(&mut on_item))
}

/// As [`parse_items`], and a block never closed is also passed to
/// `on_item`, parsed as if its `}` stood before the next block (that pair
/// borrows a patched copy of the text, hence the callback for any lifetime).
pub fn parse_items_recovering(
    file: FileId,
    text: &str,
    mut on_item: impl FnMut(Pair<'_>, usize),
) -> Vec<SyntaxError> {
    items(file, text, OnItem::Any(&mut on_item))
}

/// Where parsed items go: pairs of the file's text only, or any pair.
enum OnItem<'a, 'i> {
    Borrowed(&'a mut dyn FnMut(Pair<'i>, usize)),
    Any(&'a mut dyn FnMut(Pair<'_>, usize)),
}

fn items<'i>(file: FileId, text: &'i str, mut on_item: OnItem<'_, 'i>) -> Vec<SyntaxError> {
    let mut errors = Vec::new();
    let bom = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
    let mut pos = skip_gap(text, bom);
    while pos < text.len() {
        match L3Parser::parse(Rule::item, &text[pos..]) {
            Ok(mut pairs) => {
                let pair = pairs.next().expect("pest returns the item pair");
                let end = pos + pair.as_span().end();
                match &mut on_item {
                    OnItem::Borrowed(f) => f(pair, pos),
                    OnItem::Any(f) => f(pair, pos),
                }
                pos = skip_gap(text, end);
            }
            Err(e) => {
                if let Some((mut errs, next)) = unclosed(file, text, pos, &e, &mut on_item) {
                    errors.append(&mut errs);
                    pos = next;
                    continue;
                }
                errors.push(humanize(file, text, pos, &e));
                match resync(text, pos) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    errors
}

/// A block whose `}` is missing runs on into the next block, and the parse
/// fails there, far from the mistake. When the failure comes after a line
/// that opens a top-level block while the item still has a `{` open, the
/// item is reported as never closed (pointing at its `{`), then parsed as
/// if closed right before that line: its names stay declared, so the
/// blocks that use them do not fail too.
fn unclosed(
    file: FileId,
    text: &str,
    pos: usize,
    e: &pest::error::Error<Rule>,
    on_item: &mut OnItem<'_, '_>,
) -> Option<(Vec<SyntaxError>, usize)> {
    let at = pos
        + match e.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
    // A top-level block names something next (`test NAME {`); an SKU
    // table's `test "input" => ...` at column 0 is no block of its own.
    let names_something = |n: usize| {
        let mut words = text[n..].split_whitespace();
        words.next();
        words
            .next()
            .and_then(|w| w.chars().next())
            .is_some_and(|c| c.is_alphabetic() || c == '_')
    };
    let next = resync(text, pos).filter(|&n| n <= at && names_something(n))?;
    let (braces, _) = open_brackets(&text[pos..at]);
    if braces <= 0 {
        return None;
    }
    let open = pos + first_brace(&text[pos..next])?;
    let head = text[pos..open]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let next_word = text[next..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or_default();
    let line = text[..next].matches('\n').count() + 1;
    let err = SyntaxErrorKind::Unclosed {
        head,
        next: Span::new(file, next, next + next_word.len()),
        help: format!("add `}}` at the end of the block, before `{next_word}` on line {line}"),
    }
    .at(Span::new(file, open, open + 1));
    // The same text with the `}` added: offsets up to `next` are the file's.
    // As many `}` as the block leaves open (a table inside it may be open too).
    let (open_at_next, _) = open_brackets(&text[pos..next]);
    let patched = format!(
        "{}{}",
        &text[..next],
        "}".repeat(open_at_next.max(1) as usize)
    );
    let mut errors = vec![err];
    match L3Parser::parse(Rule::item, &patched[pos..]) {
        Ok(mut pairs) => {
            let pair = pairs.next().expect("pest returns the item pair");
            if let OnItem::Any(f) = on_item {
                f(pair, pos);
            }
        }
        // Something else is wrong inside the block as well: say that too.
        Err(inner) => {
            let inner = humanize(file, &patched, pos, &inner);
            if inner.span().end as usize <= next {
                errors.push(inner);
            }
        }
    }
    Some((errors, next))
}

/// The offset of the first `{` outside strings and comments.
fn first_brace(item: &str) -> Option<usize> {
    let mut in_str = false;
    let mut it = item.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '\\' if in_str => {
                it.next();
            }
            '"' => in_str = !in_str,
            '/' if !in_str && it.peek().is_some_and(|(_, c)| *c == '/') => {
                for (_, c) in it.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' if !in_str => return Some(i),
            _ => {}
        }
    }
    None
}

/// Skips white space and `//` comments between blocks, exactly as the
/// grammar's WHITESPACE (Unicode White_Space, as `char::is_whitespace`)
/// and COMMENT do: a pest call per gap would cost a parser state each.
fn skip_gap(text: &str, mut pos: usize) -> usize {
    loop {
        let rest = &text[pos..];
        let trimmed = rest.trim_start_matches(char::is_whitespace);
        pos += rest.len() - trimmed.len();
        if trimmed.starts_with("//") {
            pos += trimmed.find('\n').unwrap_or(trimmed.len());
        } else {
            return pos;
        }
    }
}

/// The start of the next line after `pos` that opens a top-level block.
fn resync(text: &str, pos: usize) -> Option<usize> {
    let mut line_start = text[pos..].find('\n').map(|i| pos + i + 1)?;
    loop {
        let line = &text[line_start..];
        if ITEM_KEYWORDS.iter().any(|k| {
            line.starts_with(k)
                && line[k.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_whitespace())
        }) {
            return Some(line_start);
        }
        line_start = line.find('\n').map(|i| line_start + i + 1)?;
    }
}

/// The words a user sees for a grammar rule in "expected ..." messages.
pub fn rule_name(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        item => "a block (connection, statuses, fields, map, link, sku, template, escalation or test)",
        ident | symbol => "a name",
        word => "a word",
        int => "a whole number",
        number => "a number",
        money => "an amount such as `$200` or `200 USD`",
        string | raw_string => "a string in double quotes",
        boolean => "true or false",
        none => "none",
        regex => "a /regex/",
        property => "a property",
        property_value => "a value",
        secret_ref => "env(\"NAME\") or file(\"path\")",
        rate => "a rate such as `200 rpm`",
        scope => "a scope such as tickets:write",
        status_decl => "a status (`name category \"label\"`)",
        status_forms | kw_forms => "`forms \"Form name\", ...`",
        status_attr | terminal | initial => "`terminal` or `initial`",
        status_id => "an id such as `#360001234`",
        transition => "a transition (`from -> to`)",
        from_list => "a status name",
        to_list => "a status name",
        wildcard => "`*`",
        arrow => "`->`",
        fat_arrow => "`=>`",
        kw_when => "`when`",
        field_decl => "a field (`name #id type`)",
        field_name => "a field name",
        sf_path | sf_object => "a Salesforce field such as Account.SLA_Tier__c",
        field_type => "a type (string, number, bool, money, date, enum(...))",
        type_arg => "a type argument",
        map_rule => "a mapping (`source -> target`)",
        translation => "a translation table `{ ... }`",
        translation_arm => "a translation (`\"value\" => value` or `_ => value`)",
        pattern_list | value => "a value",
        default_pattern => "`_`",
        normalize => "`normalize`",
        norm_step | kw_strip => "a normalisation step (nfkc, upper, lower, casefold, trim, collapse_spaces, strip \"...\")",
        products => "`products`",
        product => "a product id",
        sku_rule => "an alias rule (`\"alias\" | /regex/ => PRODUCT`)",
        sku_pattern => "an alias string or a /regex/",
        sku_target => "a product id",
        sku_test => "`test`",
        sku_apply | kw_apply => "`apply`",
        test_block => "`test`",
        test_event | kw_event => "`event`",
        expect | kw_expect => "`expect`",
        exp_nothing => "`nothing`",
        exp_no | kw_no => "`no`",
        exp_kind => "status, field, comment, group, sku or refusal",
        exp_status | kw_status => "`status`",
        exp_field | kw_field => "`field`",
        exp_comment | kw_comment => "`comment`",
        kw_contains => "`contains`",
        exp_group | kw_group => "`group`",
        exp_sku | kw_sku => "`sku`",
        exp_refused | kw_refused => "`refused`",
        template_body | template_text => "template text",
        interpolation => "`{{`",
        tpl_var => "a variable such as turn.summary",
        filter => "a filter such as `| upper`",
        esc_when => "`when`",
        esc_reason => "`reason`",
        esc_comment => "`comment`",
        esc_set => "`set`",
        esc_assign => "`assign`",
        esc_status => "`status`",
        expr => "an expression",
        list => "a list `[...]`",
        path => "a field path such as ticket.status",
        op_or => "`or`",
        op_and => "`and`",
        op_eq | op_ne | op_lt | op_le | op_gt | op_ge => "a comparison (==, !=, <, <=, >, >=)",
        op_in => "`in`",
        op_not_in => "`not in`",
        op_has => "`has`",
        op_not => "`not`",
        connection => "`connection`",
        statuses => "`statuses`",
        fields => "`fields`",
        mapping => "`map`",
        sku => "`sku`",
        template => "`template`",
        escalation => "`escalation`",
        link => "`link`",
        link_end => "a connection and object such as `desk.organization` or `crm.Account`",
        link_arrow => "`<->`",
        link_on | kw_on => "`on`",
        link_tickets | kw_tickets => "`tickets`",
        link_pick | kw_pick => "`pick`",
        field_attr => "`external_id`, `unique` or `indexed`",
        _ => return None,
    })
}

fn humanize(file: FileId, text: &str, base: usize, e: &pest::error::Error<Rule>) -> SyntaxError {
    let at = base
        + match e.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
    let mut expected: Vec<&str> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            if let Some(n) = rule_name(*r) {
                if !expected.contains(&n) {
                    expected.push(n);
                }
            }
        }
    }
    let rest = &text[at..];
    if let Some(e) = field_ref(file, text, (base, at), &expected) {
        return e;
    }
    // An error inside a pasted credential must not quote it.
    let masked = crate::diagnostics::redact(text);
    let found = if masked.as_bytes().get(at) == text.as_bytes().get(at) {
        describe_token(rest)
    } else {
        "credential text (not shown)".into()
    };
    let (braces, parens) = open_brackets(&text[base..at]);
    let closing_brace_possible = braces > 0 && parens == 0;
    if closing_brace_possible && !expected.contains(&"`}`") {
        expected.push("`}`");
    }
    let expected_s = join_or(&expected);
    let tok_len = token_len(rest).max(if rest.is_empty() { 0 } else { 1 });
    // At the end of the file, underline the last character so the label shows.
    let span = if rest.is_empty() && at > 0 {
        let prev = text[..at]
            .chars()
            .next_back()
            .map(char::len_utf8)
            .unwrap_or(1);
        Span::new(file, at - prev, at)
    } else {
        Span::new(file, at, at + tok_len)
    };
    let block = (rest.is_empty() && closing_brace_possible).then(|| {
        let line_end = text[base..]
            .find('\n')
            .map(|i| base + i)
            .unwrap_or(text.len());
        Span::new(file, base, line_end)
    });
    let help = hint(rest, &expected, closing_brace_possible, &text[base..at]);
    SyntaxErrorKind::Unexpected {
        found,
        expected: if expected_s.is_empty() {
            "something else".into()
        } else {
            expected_s
        },
        block,
        help,
    }
    .at(span)
}

/// A field named where `set`, `expect field` or `map` name a field, but
/// written as another place writes it: by its Zendesk id, with or without
/// `#`, or as a condition's path `ticket.ALIAS`. Pest only sees "not a
/// field name"; the user needs to hear what to write instead.
fn field_ref(
    file: FileId,
    text: &str,
    (base, at): (usize, usize),
    expected: &[&str],
) -> Option<SyntaxError> {
    let wants_field = expected
        .iter()
        .any(|e| *e == "a field name" || e.starts_with("a Salesforce field"));
    // A connection's property values may be Salesforce paths too; no
    // field is named there.
    if !wants_field || text[base..].starts_with("connection") {
        return None;
    }
    let rest = &text[at..];
    let word_len = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    // The connection named right before, as in `set desk 24100001`.
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let words: Vec<&str> = text[line_start..at].split_whitespace().collect();
    let conn = match words.as_slice() {
        [.., "set" | "field", conn] => Some(conn.to_string()),
        _ => None,
    };
    let digits = rest.strip_prefix('#').unwrap_or(rest);
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    if n > 0 && word_len(digits) == n {
        let len = rest.len() - digits.len() + n;
        let written = &rest[..len];
        if text[base..].starts_with("fields") {
            // A declaration without its alias: nothing to look up.
            return Some(SyntaxErrorKind::FieldRef {
                message: format!("the field `{written}` has no alias"),
                help: format!(
                    "declare it with a name of your choice first, `ALIAS #{} TYPE`; `set`, `map` and `expect field` then name it by that alias",
                    &digits[..n]
                ),
                label: "an id without an alias".into(),
                id: None,
                alias: None,
                conn: None,
            }.at(Span::new(file, at, at + len)));
        }
        return Some(
            SyntaxErrorKind::FieldRef {
                message: format!("`{written}` is a field id; a field is named here by its alias"),
                help: format!(
                "write the alias the `fields` block declares for it (`ALIAS #{} TYPE`), not its id",
                &digits[..n]
            ),
                label: "an id, not an alias".into(),
                id: digits[..n].parse().ok(),
                alias: None,
                conn,
            }
            .at(Span::new(file, at, at + len)),
        );
    }
    let after = rest.strip_prefix("ticket.")?;
    let n = word_len(after);
    if n == 0 {
        return None;
    }
    let written = &rest[.."ticket.".len() + n];
    let alias = &after[..n];
    Some(
        SyntaxErrorKind::FieldRef {
            message: format!(
                "`{written}` is how a condition reads the field; here the field is named alone"
            ),
            help: format!("on a Zendesk connection, write `{alias}` without `ticket.`"),
            label: "write the field's alias".into(),
            id: None,
            alias: Some(alias.to_string()),
            conn,
        }
        .at(Span::new(file, at, at + written.len())),
    )
}

/// How many `{` and `(`/`[` the text of an item leaves unclosed.
fn open_brackets(prefix: &str) -> (i32, i32) {
    let mut depth = 0i32;
    let mut parens = 0i32;
    let mut in_str = false;
    let mut chars = prefix.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_str => {
                chars.next();
            }
            '"' => in_str = !in_str,
            '/' if !in_str && chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '{' if !in_str => depth += 1,
            '}' if !in_str => depth -= 1,
            '(' | '[' if !in_str => parens += 1,
            ')' | ']' if !in_str => parens -= 1,
            _ => {}
        }
    }
    (depth, parens)
}

fn token_len(rest: &str) -> usize {
    const OPERATORS: &[&str] = &["=>", "->", "==", "!=", "<=", ">=", "&&", "||", "{{", "}}"];
    if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
        return op.len();
    }
    let mut it = rest.char_indices();
    match it.next() {
        None => 0,
        Some((_, c)) if c.is_alphanumeric() || c == '_' => rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len()),
        Some((_, c)) => c.len_utf8(),
    }
}

fn describe_token(rest: &str) -> String {
    match rest.chars().next() {
        None => "end of file".into(),
        Some('\n') | Some('\r') => "end of line".into(),
        Some(_) => format!("`{}`", &rest[..token_len(rest)]),
    }
}

pub(crate) fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn hint(rest: &str, expected: &[&str], open: bool, before: &str) -> Option<String> {
    let first = rest.chars().next();
    if rest.is_empty() && open {
        return Some("a block is never closed: add `}` at its end".into());
    }
    if first == Some('\'') {
        return Some("strings use double quotes: \"like this\"".into());
    }
    if first == Some('"')
        && rest
            .lines()
            .next()
            .is_some_and(|l| l.matches('"').count() == 1)
    {
        return Some(
            "this string is not closed on its line; use \"\"\"...\"\"\" for text over several lines"
                .into(),
        );
    }
    if first == Some('=') && !rest.starts_with("==") && !rest.starts_with("=>") {
        if expected.iter().any(|e| e.contains("comparison")) {
            return Some("compare with `==`".into());
        }
        if before.trim_end().ends_with("->") || expected.contains(&"`=>`") {
            return Some("translations are written `\"from\" => to`".into());
        }
    }
    if first == Some('&') || rest.starts_with("||") {
        return Some("combine conditions with `and` / `or`".into());
    }
    if rest.starts_with("=>") && expected.contains(&"`->`") {
        return Some(
            "transitions and mappings use `->`; `=>` is for translations and SKU rules".into(),
        );
    }
    if first == Some(':') && before.trim_start().starts_with("connection") {
        return Some("write the connection as `connection NAME: zendesk { ... }`".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(rule: Rule, input: &str) {
        match L3Parser::parse(rule, input) {
            Ok(p) => assert_eq!(
                p.last().map(|p| p.as_span().end()),
                Some(input.len()),
                "{rule:?} did not consume all of {input:?}"
            ),
            Err(e) => panic!("{rule:?} rejected {input:?}: {e}"),
        }
    }

    fn not_whole(rule: Rule, input: &str) {
        if let Ok(p) = L3Parser::parse(rule, input) {
            assert_ne!(
                p.last().map(|p| p.as_span().end()),
                Some(input.len()),
                "{rule:?} accepted {input:?}"
            );
        }
    }

    #[test]
    fn literals() {
        ok(Rule::money, "$200");
        ok(Rule::money, "200 USD");
        ok(Rule::money, "1500.50EUR");
        not_whole(Rule::money, "200 usd");
        ok(Rule::string, r#""a \"b\" c""#);
        ok(Rule::raw_string, "\"\"\"multi\nline \"quoted\" \"\"\"");
        ok(Rule::regex, r"/^IPH(\d{2})PM$/");
        ok(Rule::regex, r"/a\/b/");
        ok(Rule::scope, "tickets:write");
        ok(Rule::scope, "hc:*");
        ok(Rule::rate, "200 rpm");
        ok(Rule::status_id, "#360001234");
    }

    #[test]
    fn identifiers_and_paths() {
        ok(Rule::ident, "whenever");
        ok(Rule::ident, "pending_risk_review");
        ok(Rule::path, "Account.SLA_Tier__c");
        ok(Rule::path, "ticket.status");
        not_whole(Rule::path, "ticket");
    }

    #[test]
    fn expressions() {
        ok(
            Rule::expr,
            "turn.intent == \"refund\" and turn.refund_amount > $200",
        );
        ok(
            Rule::expr,
            "not (ticket.tags has \"vip\" or ticket.priority in [high, urgent])",
        );
        ok(Rule::expr, "ticket.status not in [open, solved]");
    }

    #[test]
    fn transitions_and_statuses() {
        ok(Rule::transition, "* -> solved");
        ok(
            Rule::transition,
            "open, pending -> hold when ticket.tags has \"x\"",
        );
        ok(Rule::status_decl, "closed solved \"Closed\" terminal #12");
    }

    #[test]
    fn templates() {
        ok(
            Rule::template_body,
            "Hi {{ turn.summary }} / {{ turn.attempts | join(\", \") | default(\"none\") }}.",
        );
        not_whole(Rule::template_body, "broken {{ turn. }}");
    }

    #[test]
    fn recovery_reports_errors_in_several_blocks() {
        let src =
            "connection a: zendesk {\n  token = 1\n}\nsku s {\n  \"x\" => \n}\ntemplate t \"ok\"\n";
        let mut names = vec![];
        let errs = parse_items(FileId(0), src, |p, _| names.push(p.as_str().to_string()));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(names, vec!["template t \"ok\"".to_string()]);
    }
}
