//! Credentials written into a `.l3map` file are masked before any source
//! text is shown: a diagnostic's frame quotes the lines around the
//! problem, and `l3map check`, `l3map run` and every reload refusal print
//! frames. The masked text keeps every byte offset (each masked byte
//! becomes one `*`, newlines stay), so spans and line numbers still point
//! where they did.
//!
//! This is lexical on purpose: it must also work on a file that does not
//! parse (a syntax error next to a pasted token draws that token's line).
//! Inside a `connection` block, a property whose key names a credential
//! has its value masked to the end of its line (to the end of a
//! `"""` string), unless the value is a reference, `env("…")` or
//! `file("…")`.

use std::borrow::Cow;

/// Keys whose value is a credential: the ones the checker knows
/// (`token`, `webhook_secret`, `client_secret`, `refresh_token`,
/// `private_key`) and any misspelled or unknown key that looks like one.
fn is_credential_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "secret", "password", "passwd", "key", "credential"]
        .iter()
        .any(|w| k.contains(w))
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// End of the string starting at `i` (`"…"` or `"""…"""`), or the end of
/// the text when it is not closed.
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

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| p + i)
}

/// Where the value after a credential key at `i` ends, if it is a literal
/// (masked from its first byte); `None` for a reference.
fn literal_value(b: &[u8], mut i: usize) -> Option<(usize, usize)> {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    let mut j = i;
    while j < b.len() && is_ident(b[j]) {
        j += 1;
    }
    let word = &b[i..j];
    let mut k = j;
    while k < b.len() && (b[k] == b' ' || b[k] == b'\t') {
        k += 1;
    }
    if (word == b"env" || word == b"file") && b.get(k) == Some(&b'(') {
        return None;
    }
    if start >= b.len() || b[start] == b'}' {
        return None;
    }
    let end = if b[start..].starts_with(b"\"\"\"") {
        let close = string_end(b, start);
        line_end(b, close.min(b.len()))
    } else {
        line_end(b, start)
    };
    Some((start, end))
}

/// `text` with every literal credential masked; borrowed when there is
/// none.
pub fn redact(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut masks: Vec<(usize, usize)> = Vec::new();
    let (mut i, mut in_connection, mut after_connection, mut first_on_line) =
        (0, false, false, true);
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                first_on_line = true;
                i += 1;
            }
            _ if c.is_ascii_whitespace() => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => i = line_end(b, i),
            b'"' => {
                i = string_end(b, i);
                first_on_line = false;
            }
            b'{' => {
                if after_connection {
                    in_connection = true;
                    after_connection = false;
                }
                // The first word after `{` is a property key.
                first_on_line = true;
                i += 1;
            }
            b'}' => {
                in_connection = false;
                first_on_line = false;
                i += 1;
            }
            _ if is_ident_start(c) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = &text[start..i];
                if !in_connection && word == "connection" {
                    after_connection = true;
                } else if in_connection && first_on_line && is_credential_key(word) {
                    if let Some((from, to)) = literal_value(b, i) {
                        masks.push((from, to));
                        i = to;
                    }
                }
                first_on_line = false;
            }
            _ => {
                first_on_line = false;
                i += 1;
            }
        }
    }
    if masks.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = b.to_vec();
    for (from, to) in masks {
        for x in &mut out[from..to] {
            if !matches!(*x, b'\n' | b'\r' | b'"') {
                *x = b'*';
            }
        }
    }
    // Every byte of a masked character became ASCII; the rest is untouched.
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
            text in r#"(connection|token|\{|\}|"|\"\"\"|env\(|//|\n| |[a-zé\-_]{1,6}){0,40}"#
        ) {
            let r = redact(&text);
            prop_assert_eq!(r.len(), text.len());
            prop_assert_eq!(r.matches('\n').count(), text.matches('\n').count());
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
}
