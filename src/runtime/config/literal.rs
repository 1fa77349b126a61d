//! Credentials never go in l3map.toml. A key named `token`, `secret`,
//! `password`, `client_secret`, `refresh_token` or `api_token` holding a
//! value, anywhere, is refused without repeating the value; and the text a
//! diagnostic shows has every credential-looking value masked.

use std::ops::Range;

use toml::de::{DeArray, DeTable, DeValue};

use super::doc::Doc;
use super::error::ConfigError;

pub(super) const LITERAL_SECRET_KEYS: [&str; 6] = [
    "token",
    "secret",
    "password",
    "client_secret",
    "refresh_token",
    "api_token",
];

/// Refuses the first literal secret in the file. Runs before typed
/// parsing, so a literal secret under a misspelt or misplaced key is still
/// reported as what it is.
pub(super) fn refuse(doc: &Doc<'_>, root: &DeTable<'_>) -> Result<(), ConfigError> {
    let mut found = Vec::new();
    walk_table(root, &mut Vec::new(), &mut found);
    // The map is ordered by key, not by position: report the first in
    // the file, where the reader will look first.
    match found.into_iter().min_by_key(|(_, span)| span.start) {
        None => Ok(()),
        Some((key_path, span)) => {
            let (line, column) = doc.position(span.start);
            Err(ConfigError::LiteralSecret {
                path: doc.path(),
                hint: literal_secret_hint(&key_path),
                key: key_path.join("."),
                line,
                column,
                text: doc.shown(),
                span: Some(span.into()),
            })
        }
    }
}

/// Whether `s` can be an environment variable's name. A value that is not
/// may well be the secret pasted into a `*_env` key.
pub(super) fn is_var_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `text` with every value that is or may be a credential replaced by
/// `*`, byte for byte (line breaks kept), so spans and line numbers still
/// fit: literal secrets, a `*_env` value that is no variable name, a URL
/// with a user or password. What a diagnostic shows of the file.
pub(super) fn redact(text: &str, root: &DeTable<'_>) -> String {
    let mut spans = Vec::new();
    mask_table(root, &mut spans);
    let mut bytes = text.as_bytes().to_vec();
    for span in spans {
        let end = span.end.min(bytes.len());
        let start = span.start.min(end);
        for b in &mut bytes[start..end] {
            if *b != b'\n' {
                *b = b'*';
            }
        }
    }
    // Spans start and end on character boundaries, so masking whole
    // characters keeps the text UTF-8; if one did not, show nothing.
    String::from_utf8(bytes).unwrap_or_else(|_| {
        text.chars()
            .map(|c| {
                if c == '\n' {
                    "\n".to_string()
                } else {
                    "*".repeat(c.len_utf8())
                }
            })
            .collect()
    })
}

fn mask_table(table: &DeTable<'_>, spans: &mut Vec<Range<usize>>) {
    for (key, value) in table {
        match value.get_ref() {
            DeValue::Table(t) => mask_table(t, spans),
            _ if is_secret_key(key.get_ref()) => spans.push(value.span()),
            DeValue::String(s) => {
                let pasted = key.get_ref().ends_with("_env") && !is_var_name(s);
                if pasted || has_credentials(s) {
                    spans.push(value.span());
                }
            }
            DeValue::Array(items) => mask_array(items, spans),
            _ => {}
        }
    }
}

fn mask_array(items: &DeArray<'_>, spans: &mut Vec<Range<usize>>) {
    for item in items.iter() {
        match item.get_ref() {
            DeValue::Table(t) => mask_table(t, spans),
            DeValue::Array(inner) => mask_array(inner, spans),
            DeValue::String(s) if has_credentials(s) => spans.push(item.span()),
            _ => {}
        }
    }
}

/// A URL with a user or password in it (`https://me:pw@host`).
pub(super) fn has_credentials(text: &str) -> bool {
    reqwest::Url::parse(text.trim())
        .is_ok_and(|u| u.password().is_some() || !u.username().is_empty())
}

fn is_secret_key(key: &str) -> bool {
    LITERAL_SECRET_KEYS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(key))
}

/// Collects every secret-named key holding a value. A secret-named table
/// is a name (`[agents.token]` is an agent called "token"), so it is walked
/// into, not refused.
fn walk_table(
    table: &DeTable<'_>,
    at: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, Range<usize>)>,
) {
    for (key, value) in table {
        at.push(key.get_ref().to_string());
        match value.get_ref() {
            DeValue::Table(t) => walk_table(t, at, found),
            other => {
                if is_secret_key(key.get_ref()) {
                    found.push((at.clone(), key.span()));
                } else if let DeValue::Array(items) = other {
                    walk_array(items, at, found);
                }
            }
        }
        at.pop();
    }
}

fn walk_array(
    items: &toml::de::DeArray<'_>,
    at: &mut Vec<String>,
    found: &mut Vec<(Vec<String>, Range<usize>)>,
) {
    for (i, item) in items.iter().enumerate() {
        let last = at.pop().unwrap_or_default();
        at.push(format!("{last}[{i}]"));
        match item.get_ref() {
            DeValue::Table(t) => walk_table(t, at, found),
            DeValue::Array(inner) => walk_array(inner, at, found),
            _ => {}
        }
        at.pop();
        at.push(last);
    }
}

fn literal_secret_hint(key_path: &[String]) -> String {
    let leaf = key_path.last().map_or("secret", String::as_str);
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    match key_path.first().map(String::as_str) {
        Some(w) if w.starts_with("webhook") => {
            "use secret_env = \"VAR\" or secret_file = \"/path\"".into()
        }
        Some(a) if a.starts_with("agents") || a.starts_with("ops") => {
            "use token_env = \"VAR\" or token_file = \"/path\"".into()
        }
        Some(c) if c.starts_with("connections") => format!(
            "declare it in the mapping's connection block as {leaf} env(\"VAR\") or {leaf} file(\"/path\")"
        ),
        _ => "read it from an environment variable or a file instead".into(),
    }
}
