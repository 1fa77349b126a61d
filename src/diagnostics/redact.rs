//! Credentials written into a `.l3map` file are masked before any source
//! text is shown: a diagnostic's frame quotes the lines around the
//! problem, and `l3map check`, `l3map run` and every reload refusal print
//! frames. The masked text keeps every byte offset (each masked byte
//! becomes one `*`; newlines and quotes stay), so spans and line numbers
//! still point where they did.
//!
//! This is lexical on purpose: it must also work on a file that does not
//! parse (a syntax error next to a pasted token draws that token's line).
//! Two rules:
//!
//! * Inside a `connection` block every value is masked except the values
//!   of the settings the language defines as holding no secret
//!   ([`holds_no_secret`]: `subdomain`, `url`, `scopes`, `plan`, ...) and
//!   credential references (`env("…")`, `file("…")`). An allowlist, not a
//!   list of credential-looking names: a mistyped key (`tokne "…"`) or an
//!   unknown one holds whatever was pasted after it. Once a value is
//!   masked, the rest of its line is too (a paste with spaces in it).
//!   Keys stay visible, so "did you mean `token`?" still has its frame.
//! * Anywhere in the file, the user-info of a URL
//!   (`https://user:pass@host`) is masked, keeping its `:`.

use crate::check::holds_no_secret;
use std::borrow::Cow;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tok {
    Newline,
    Space,
    Comment,
    Open,
    Close,
    Comma,
    Paren,
    /// `"…"` or `"""…"""`.
    Str,
    /// Anything else up to a space or one of the above.
    Bare,
}

/// End of the string starting at `i` (`"…"` or `"""…"""`), or the end of
/// the line / text when it is not closed.
fn string_end(b: &[u8], i: usize) -> usize {
    if b[i..].starts_with(b"\"\"\"") {
        return find(b, i + 3, b"\"\"\"").map_or(b.len(), |e| e + 3);
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            b'\n' => return j,
            _ => j += 1,
        }
    }
    b.len()
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The token at byte `i` (a char boundary) and where it ends (a char
/// boundary too: every token ends at an ASCII byte or the end).
fn token(text: &str, i: usize) -> (Tok, usize) {
    let b = text.as_bytes();
    let c = text[i..].chars().next().unwrap_or(' ');
    let one = i + c.len_utf8();
    match c {
        '\n' => (Tok::Newline, one),
        '{' => (Tok::Open, one),
        '}' => (Tok::Close, one),
        ',' => (Tok::Comma, one),
        '(' | ')' => (Tok::Paren, one),
        '"' => (Tok::Str, string_end(b, i).min(b.len())),
        '/' if b.get(i + 1) == Some(&b'/') => (Tok::Comment, find(b, i, b"\n").unwrap_or(b.len())),
        // Unicode White_Space, as the grammar's WHITESPACE.
        _ if c.is_whitespace() => (Tok::Space, one),
        _ => {
            let mut j = one;
            while let Some(c) = text[j..].chars().next() {
                if c.is_whitespace()
                    || matches!(c, '{' | '}' | ',' | '(' | ')' | '"')
                    || text[j..].starts_with("//")
                {
                    break;
                }
                j += c.len_utf8();
            }
            (Tok::Bare, j)
        }
    }
}

fn is_ident(w: &str) -> bool {
    w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && w.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The unit of a rate or an amount (`200 rpm`, `1500 EUR`).
fn is_unit(w: &str) -> bool {
    w == "rpm" || (w.len() == 3 && w.bytes().all(|c| c.is_ascii_uppercase()))
}

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    Key,
    Value,
    /// Inside `env(` / `file(` … `)`.
    Reference,
    AfterValue,
}

/// Byte ranges of the values in connection blocks that may hold a secret.
fn connection_values(text: &str, masks: &mut Vec<(usize, usize)>) {
    let (mut i, mut depth) = (0usize, 0usize);
    let mut block: Option<usize> = None; // brace depth of the connection block
    let mut after_keyword = false;
    let mut expect = Expect::Key;
    // The current key's values may hold a secret.
    let mut secret = false;
    // A value was masked on this line: the rest of the line is masked too.
    let mut tail = false;
    // The last token was a number of a non-secret key (a unit may follow).
    let mut number = false;
    while i < text.len() {
        let (tok, end) = token(text, i);
        let word = &text[i..end];
        let start = i;
        i = end.max(i + 1);
        match tok {
            Tok::Newline => {
                tail = false;
                number = false;
                continue;
            }
            Tok::Space => continue,
            Tok::Open => {
                depth += 1;
                if block.is_none() && after_keyword {
                    block = Some(depth);
                    (expect, secret, tail, number) = (Expect::Key, false, false, false);
                }
                after_keyword = false;
                continue;
            }
            Tok::Close => {
                if block == Some(depth) {
                    block = None;
                }
                depth = depth.saturating_sub(1);
                (tail, after_keyword) = (false, false);
                continue;
            }
            _ => {}
        }
        let Some(at) = block else {
            // `connection NAME: KIND {`: the next brace opens the block.
            if tok == Tok::Bare && word == "connection" {
                after_keyword = true;
            }
            continue;
        };
        let mut mask = || masks.push((start, end));
        if depth > at || tail {
            // Nested braces are a syntax error; mask what they hold.
            if tok != Tok::Comment || tail {
                mask();
            }
            continue;
        }
        let was_number = std::mem::take(&mut number);
        match (expect, tok) {
            (_, Tok::Comment) => {}
            (Expect::Key | Expect::AfterValue, Tok::Bare) if is_ident(word) => {
                if expect == Expect::AfterValue && !secret && was_number && is_unit(word) {
                    continue;
                }
                secret = !holds_no_secret(word);
                expect = Expect::Value;
            }
            (Expect::AfterValue, Tok::Comma) => expect = Expect::Value,
            (Expect::Value, Tok::Bare) if word == "env" || word == "file" => {
                expect = Expect::Reference;
            }
            (Expect::Reference, Tok::Paren) if word == "(" => {}
            (Expect::Reference, Tok::Str) => {}
            (Expect::Reference, Tok::Paren) => expect = Expect::AfterValue,
            (Expect::Value, Tok::Bare | Tok::Str) if !secret => {
                number = word.starts_with(|c: char| c.is_ascii_digit() || c == '$');
                expect = Expect::AfterValue;
            }
            // A value that may hold a secret, or something where no value
            // or key belongs (a pasted token with spaces in it).
            _ => {
                mask();
                tail = true;
                secret = true;
                expect = Expect::AfterValue;
            }
        }
    }
}

/// Byte ranges of the user name and password of every `scheme://user:pass@host`.
fn url_userinfo(text: &str, masks: &mut Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(sep) = find(b, from, b"://") {
        let start = sep + 3;
        // Up to where a URL cannot go on; not only to the first `/`: a
        // pasted password may hold one, and over-masking a path is harmless.
        let end = b[start..]
            .iter()
            .position(|&c| {
                c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'<' | b'>' | b'`')
            })
            .map_or(b.len(), |p| p + start);
        if let Some(at) = b[start..end].iter().rposition(|&c| c == b'@') {
            let mut piece = start;
            for (k, &c) in b[start..start + at].iter().enumerate() {
                if c == b':' {
                    masks.push((piece, start + k));
                    piece = start + k + 1;
                }
            }
            masks.push((piece, start + at));
        }
        from = end.max(start);
    }
}

/// `text` with every literal credential masked; borrowed when there is
/// none.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut masks: Vec<(usize, usize)> = Vec::new();
    connection_values(text, &mut masks);
    url_userinfo(text, &mut masks);
    if masks.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = text.as_bytes().to_vec();
    for (from, to) in masks {
        for x in &mut out[from..to] {
            if !matches!(*x, b'\n' | b'\r' | b'"') {
                *x = b'*';
            }
        }
    }
    // Ranges start and end on char boundaries and every byte in them became
    // ASCII; the rest is untouched.
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|e| {
        String::from_utf8_lossy(e.as_bytes())
            .chars()
            .map(|c| if c.is_ascii() { c } else { '*' })
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::redact;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_keeps_its_length_and_lines(
            text in r#"(connection|token|tokne|subdomain|rate_limit|200|rpm|\{|\}|\(|\)|,|"|\\|\"\"\"|env\(|//|://|@|:|\n| |\u{a0}|[a-zé\-_]{1,6}){0,40}"#
        ) {
            let r = redact(&text);
            prop_assert_eq!(r.len(), text.len());
            prop_assert_eq!(r.matches('\n').count(), text.matches('\n').count());
            // Masking never moves a byte: each is kept or becomes `*`.
            for (x, y) in text.bytes().zip(r.bytes()) {
                prop_assert!(x == y || y == b'*');
            }
        }
    }

    #[test]
    fn literal_credentials_are_masked_and_offsets_kept() {
        let text = "connection desk: zendesk {\n  subdomain \"acme\"\n  token \"zd-SECRET-1\"\n  webhook_secret wh_SECRET_2 // pasted\n  client_secret \"\"\"multi\nline SECRET_3\"\"\"\n  refresh_token env(\"SF_REFRESH\")\n}\nescalation token { when ticket.token == \"x\" }\n";
        let r = redact(text);
        assert_eq!(r.len(), text.len());
        assert_eq!(r.lines().count(), text.lines().count());
        for secret in ["SECRET_1", "SECRET-1", "SECRET_2", "SECRET_3", "multi"] {
            assert!(!r.contains(secret), "{secret} in:\n{r}");
        }
        for kept in [
            "subdomain \"acme\"",
            "env(\"SF_REFRESH\")",
            "ticket.token == \"x\"",
        ] {
            assert!(r.contains(kept), "{kept} lost:\n{r}");
        }
    }

    #[test]
    fn multibyte_and_unclosed_values_are_masked_to_valid_text() {
        let text = "connection d: zendesk {\n token \"ключ-SECRET\n}\n";
        let r = redact(text);
        assert_eq!(r.len(), text.len());
        assert!(!r.contains("SECRET") && !r.contains('к'), "{r}");
        let key_on_its_own_line = "connection d: zendesk {\n token\n   \"SECRET\"\n}\n";
        assert!(!redact(key_on_its_own_line).contains("SECRET"));
        let none = "connection d: zendesk { token env(\"X\") }";
        assert!(matches!(redact(none), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn only_settings_without_secrets_are_shown_in_a_connection() {
        let text = "connection desk: zendesk {\n  subdomain \"acme\"\n  tokne \"LEAKB-2222-typo\"\n  scopes read,\n    write\n  rate_limit 180 rpm // headroom\n  plan team\n  \"LEAKC-3333\"\n  pasted LEAKD 4444 // LEAKE\n}\nconnection crm: salesforce { instance \"https://x.my.salesforce.com\" passwrd LEAKG objects Case }\n";
        let r = redact(text);
        assert_eq!(r.len(), text.len());
        assert_eq!(r.lines().count(), text.lines().count());
        assert!(!r.contains("LEAK"), "{r}");
        for kept in [
            "subdomain \"acme\"",
            "  tokne \"",
            "scopes read,\n    write",
            "rate_limit 180 rpm // headroom",
            "plan team",
            "  pasted ",
            "instance \"https://x.my.salesforce.com\" passwrd ",
            "}\n",
        ] {
            assert!(r.contains(kept), "{kept} lost:\n{r}");
        }
    }

    #[test]
    fn url_user_info_is_masked_anywhere_keeping_its_length() {
        let text = "connection desk: zendesk {\n  url \"https://admin:LEAKF-6666@acme.zendesk.com\"\n}\ntemplate t \"see ftp://bob@LEAKH:x@files.acme.com/a and https://acme.com/x\"\n// https://user:LEAKI@host\n";
        let r = redact(text);
        assert_eq!(r.len(), text.len());
        assert!(!r.contains("LEAK") && !r.contains("admin"), "{r}");
        assert!(
            r.contains("url \"https://*****:**********@acme.zendesk.com\""),
            "{r}"
        );
        assert!(r.contains("https://acme.com/x"), "{r}");
        assert!(r.contains("@files.acme.com/a"), "{r}");
    }
}
