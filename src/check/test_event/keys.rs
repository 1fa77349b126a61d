//! Where each key of a test's event stands in its JSON text, so a
//! diagnostic about a key can point at it.

use std::ops::Range;

/// Byte ranges of the keys of `text` (JSON that already parsed), by the
/// path of each key: `["ticket", "custom_fields", "360001234"]`. serde_json
/// keeps no positions; over text known to be valid, strings and brackets
/// are all a scan needs to tell keys from values.
pub(in crate::check) fn key_spans(text: &str) -> Vec<(Vec<String>, Range<usize>)> {
    enum Frame {
        Obj { key: Option<String>, want_key: bool },
        Arr { index: usize },
    }
    let elem = |f: &Frame| match f {
        Frame::Obj { key, .. } => key.clone().unwrap_or_default(),
        Frame::Arr { index } => index.to_string(),
    };
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let end = (i + 1).min(b.len());
                let depth = stack.len();
                if let Some(Frame::Obj { key, want_key }) = stack.last_mut() {
                    if *want_key {
                        let k: String = serde_json::from_str(&text[start..end]).unwrap_or_default();
                        *key = Some(k.clone());
                        *want_key = false;
                        let mut path: Vec<String> = stack[..depth - 1].iter().map(elem).collect();
                        path.push(k);
                        out.push((path, start..end));
                    }
                }
                i = end;
                continue;
            }
            b'{' => stack.push(Frame::Obj {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Arr { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Obj { want_key, .. }) => *want_key = true,
                Some(Frame::Arr { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_spans_follow_paths() {
        let text = r#"{"a": {"b": [1, {"c\"d": 2}], "e": "}"}, "f": 3}"#;
        let spans = key_spans(text);
        let at = |p: &[&str]| {
            let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            let r = spans
                .iter()
                .find(|(q, _)| *q == p)
                .expect("a span")
                .1
                .clone();
            &text[r]
        };
        assert_eq!(at(&["a"]), "\"a\"");
        assert_eq!(at(&["a", "b", "1", "c\"d"]), r#""c\"d""#);
        assert_eq!(at(&["a", "e"]), "\"e\"");
        assert_eq!(at(&["f"]), "\"f\"");
        assert_eq!(spans.len(), 5);
    }
}
